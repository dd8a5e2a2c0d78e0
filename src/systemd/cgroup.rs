//! A unit's cgroup: its `ControlGroup` property, under the cgroup2 mount.
//!
//! systemd keeps the same cgroup paths in the unified hierarchy whether it
//! runs unified (cgroup2 at `/sys/fs/cgroup`) or hybrid (cgroup2 at
//! `/sys/fs/cgroup/unified`), so the path is the property joined to
//! wherever cgroup2 is mounted, found in `/proc/self/mountinfo`.

use super::{SystemdError, UnitName, systemctl};
use std::path::{Path, PathBuf};

/// The cgroup2 directory of a running unit (`nginx`, `nginx.service`,
/// `user.slice`, ...), for attaching to it or querying it.
///
/// Errors say what is wrong: systemd absent, no such unit, the unit not
/// running (it has no cgroup then), no cgroup2 mounted.
pub fn unit_cgroup(unit: &str) -> Result<PathBuf, SystemdError> {
    let unit: UnitName = unit.parse()?;
    if !systemctl::booted() {
        return Err(SystemdError::NotBooted);
    }
    let props = systemctl::show(unit.as_str(), &["LoadState", "ActiveState", "ControlGroup"])?;
    let get = |k: &str| props.get(k).map_or("", String::as_str);
    if get("LoadState") == "not-found" {
        return Err(SystemdError::NoSuchUnit(unit.to_string()));
    }
    let control_group = get("ControlGroup");
    if control_group.is_empty() {
        return Err(SystemdError::NotRunning {
            unit: unit.to_string(),
            state: get("ActiveState").to_string(),
        });
    }
    let mount = cgroup2_mount()?;
    let path = mount.join(control_group.trim_start_matches('/'));
    if !path.is_dir() {
        return Err(SystemdError::CgroupMissing {
            unit: unit.to_string(),
            path,
        });
    }
    Ok(path)
}

/// Where cgroup2 is mounted, from `/proc/self/mountinfo`.
pub fn cgroup2_mount() -> Result<PathBuf, SystemdError> {
    let path = Path::new("/proc/self/mountinfo");
    let text = std::fs::read_to_string(path).map_err(|e| SystemdError::io("read", path, e))?;
    find_cgroup2(&text).ok_or(SystemdError::NoCgroup2)
}

/// The cgroup2 mount point in a mountinfo text. A mount of the whole
/// hierarchy (root `/`) wins over a bind mount of a subtree; among those,
/// the usual places (`/sys/fs/cgroup`, then the hybrid layout's
/// `/sys/fs/cgroup/unified`) win over others.
pub fn find_cgroup2(mountinfo: &str) -> Option<PathBuf> {
    let mut found: Vec<(bool, u8, PathBuf)> = Vec::new();
    for line in mountinfo.lines() {
        let Some((before, after)) = line.split_once(" - ") else {
            continue;
        };
        if after.split_whitespace().next() != Some("cgroup2") {
            continue;
        }
        let fields: Vec<&str> = before.split_whitespace().collect();
        let (Some(root), Some(point)) = (fields.get(3), fields.get(4)) else {
            continue;
        };
        let point = PathBuf::from(unescape(point));
        let rank = match point.to_str() {
            Some("/sys/fs/cgroup") => 0,
            Some("/sys/fs/cgroup/unified") => 1,
            _ => 2,
        };
        found.push((*root != "/", rank, point));
    }
    found.sort();
    found.into_iter().next().map(|(_, _, p)| p)
}

/// mountinfo escapes blanks, tabs, newlines and backslashes as `\OOO`.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 4 <= bytes.len() {
            let octal = std::str::from_utf8(&bytes[i + 1..i + 4]).unwrap_or("");
            if let Ok(b) = u8::from_str_radix(octal, 8) {
                out.push(b);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
43 42 0:39 / /sys/fs/bpf rw,relatime - bpf bpf rw,mode=700
";

    #[test]
    fn finds_cgroup2_on_hybrid_and_unified_hosts() {
        assert_eq!(
            find_cgroup2(HYBRID).unwrap(),
            Path::new("/sys/fs/cgroup/unified")
        );
        let unified =
            "30 23 0:26 / /sys/fs/cgroup rw,nosuid shared:9 - cgroup2 cgroup2 rw,nsdelegate\n";
        assert_eq!(find_cgroup2(unified).unwrap(), Path::new("/sys/fs/cgroup"));
        assert_eq!(find_cgroup2("1 0 0:1 / / rw - ext4 /dev/sda rw\n"), None);
    }

    #[test]
    fn prefers_whole_hierarchies_and_unescapes() {
        let text = "\
50 1 0:38 /sub /mnt/sub rw - cgroup2 cgroup2 rw
51 1 0:38 / /run/my\\040cgroups rw - cgroup2 cgroup2 rw
";
        assert_eq!(find_cgroup2(text).unwrap(), Path::new("/run/my cgroups"));
    }
}
