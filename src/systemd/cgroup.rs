//! A unit's cgroup: its `ControlGroup` property, under the cgroup2 mount.
//!
//! systemd keeps the same cgroup paths in the unified hierarchy whether it
//! runs unified (cgroup2 at `/sys/fs/cgroup`) or hybrid (cgroup2 at
//! `/sys/fs/cgroup/unified`), so the path is the property joined to
//! wherever cgroup2 is mounted, found in `/proc/self/mountinfo`.

use super::{SystemdError, UnitName, systemctl};
use std::path::PathBuf;

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

/// Where cgroup2 is mounted (see [`crate::kernel::cgroup::cgroup2_mount`]).
pub fn cgroup2_mount() -> Result<PathBuf, SystemdError> {
    crate::kernel::cgroup::cgroup2_mount().map_err(|_| SystemdError::NoCgroup2)
}
