//! From the cgroup id a traced packet carries to a name people know: the
//! cgroup's path, and under systemd the unit that owns it.
//!
//! A cgroup2 id is the inode number of its directory (both are the kernfs
//! node id), so the tree is walked once and indexed by inode; an id not
//! seen yet (a cgroup made since) causes one more walk, and an id still
//! unknown after it (a cgroup already gone) is remembered as unknown so a
//! stream of its packets does not walk the tree for each one.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

/// Unit suffixes that own processes (slices only group other units).
const UNIT_SUFFIXES: [&str; 3] = [".service", ".scope", ".socket"];

/// What a cgroup id names.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CgroupName {
    /// The path below the cgroup2 mount (`/system.slice/nginx.service`),
    /// when the cgroup exists.
    pub path: Option<String>,
    /// The systemd unit, when systemd runs and the path is one of its.
    pub unit: Option<String>,
}

impl CgroupName {
    /// The unit if there is one, else the path, else `cgroup:ID`.
    pub fn display(&self, id: u64) -> String {
        match (&self.unit, &self.path) {
            (Some(unit), _) => unit.clone(),
            (None, Some(path)) => path.clone(),
            (None, None) => format!("cgroup:{id}"),
        }
    }
}

/// Resolves cgroup ids, caching what it found.
pub struct CgroupNames {
    root: Option<PathBuf>,
    systemd: bool,
    known: HashMap<u64, CgroupName>,
}

impl CgroupNames {
    /// Resolves below the cgroup2 mount, naming units when `systemd` runs.
    /// Without a cgroup2 mount every cgroup is shown by id.
    pub fn new(root: Option<PathBuf>, systemd: bool) -> CgroupNames {
        let mut names = CgroupNames {
            root,
            systemd,
            known: HashMap::new(),
        };
        names.walk();
        names
    }

    /// The name of cgroup `id`.
    pub fn name(&mut self, id: u64) -> CgroupName {
        if !self.known.contains_key(&id) {
            self.walk();
            self.known.entry(id).or_default();
        }
        self.known.get(&id).cloned().unwrap_or_default()
    }

    fn walk(&mut self) {
        let Some(root) = self.root.clone() else {
            return;
        };
        let mut stack = vec![root.clone()];
        while let Some(dir) = stack.pop() {
            let Ok(meta) = std::fs::metadata(&dir) else {
                continue;
            };
            let path = crate::kernel::cgroup::relative_name(&root, &dir);
            let unit = if self.systemd { unit_of(&path) } else { None };
            self.known.insert(
                meta.ino(),
                CgroupName {
                    path: Some(path),
                    unit,
                },
            );
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    stack.push(entry.path());
                }
            }
        }
    }
}

/// The unit owning a cgroup path, as systemd lays them out: the first
/// component under the slices that names a service, scope or socket
/// (`/system.slice/nginx.service/worker` is nginx.service; a user's
/// services under `user@UID.service` show as that unit).
pub fn unit_of(path: &str) -> Option<String> {
    path.split('/')
        .filter(|c| !c.is_empty())
        .find(|c| !c.ends_with(".slice"))
        .filter(|c| UNIT_SUFFIXES.iter().any(|s| c.ends_with(s)))
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_are_found_below_the_slices() {
        assert_eq!(
            unit_of("/system.slice/nginx.service").as_deref(),
            Some("nginx.service")
        );
        assert_eq!(
            unit_of("/system.slice/nginx.service/worker").as_deref(),
            Some("nginx.service")
        );
        assert_eq!(
            unit_of("/user.slice/user-1000.slice/user@1000.service/app.slice/x.service").as_deref(),
            Some("user@1000.service")
        );
        assert_eq!(
            unit_of("/user.slice/user-1000.slice/session-3.scope").as_deref(),
            Some("session-3.scope")
        );
        assert_eq!(unit_of("/system.slice"), None);
        assert_eq!(unit_of("/"), None);
        assert_eq!(unit_of("/portwall-test-1"), None);
    }

    #[test]
    fn ids_are_inode_numbers_of_the_tree() {
        let dir = std::env::temp_dir().join(format!("portwall-cgnames-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("a.slice/b.service")).unwrap();
        let ino = std::fs::metadata(dir.join("a.slice/b.service"))
            .unwrap()
            .ino();
        let mut names = CgroupNames::new(Some(dir.clone()), true);
        let name = names.name(ino);
        assert_eq!(name.path.as_deref(), Some("/a.slice/b.service"));
        assert_eq!(name.unit.as_deref(), Some("b.service"));
        // Made after the first walk: found by walking again.
        std::fs::create_dir(dir.join("late")).unwrap();
        let late = std::fs::metadata(dir.join("late")).unwrap().ino();
        assert_eq!(names.name(late).path.as_deref(), Some("/late"));
        assert_eq!(names.name(u64::MAX), CgroupName::default());
        assert_eq!(
            names.name(u64::MAX).display(u64::MAX),
            format!("cgroup:{}", u64::MAX)
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
