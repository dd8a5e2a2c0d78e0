//! Where filters live in bpffs, and the lock that serializes changes.
//!
//! A filter NAME is three pins in `<bpffs>/portwall/`:
//! - `NAME`: the dispatcher program, the path systemd's
//!   `IPEgressFilterPath=`/`IPIngressFilterPath=` and `bpftool cgroup
//!   attach ... pinned` take;
//! - `NAME@jump`: its one-slot program array holding the current filter;
//!   a program array is emptied by the kernel when no file or pin refers to
//!   it any more, so it must stay pinned while the dispatcher lives;
//! - `NAME@counters`: the per-CPU counters, shared by every version of the
//!   filter so that they survive a replace;
//! - `NAME@set0`, `NAME@set1`, ...: the read-only tables of the current
//!   filter's large sets (none for a filter without). The program holds
//!   them too; the pins make them visible (`bpftool map dump pinned ...`)
//!   and are replaced with the program. While a replace is under way the
//!   new ones are pinned as `NAME@setN@new` (bpffs refuses dots in names).
//!
//! `@` cannot appear in a filter name, so these never collide.

use super::FilterName;
use super::error::FilterError;
use std::ffi::CString;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// The default bpffs mount point.
pub const DEFAULT_BPFFS: &str = "/sys/fs/bpf";
/// `BPF_FS_MAGIC` from include/uapi/linux/magic.h.
const BPF_FS_MAGIC: i64 = 0xcafe_4a11;

/// The pin directory `<bpffs>/portwall`.
#[derive(Clone, Debug)]
pub struct PinDir {
    dir: PathBuf,
}

/// The three pins of one filter.
#[derive(Clone, Debug)]
pub struct FilterPins {
    pub program: PathBuf,
    pub jump: PathBuf,
    pub counters: PathBuf,
}

impl PinDir {
    /// The pin directory under `bpffs` (default `/sys/fs/bpf`). Mounts
    /// bpffs at the default place when nothing is mounted there; a
    /// directory given explicitly must already be a bpffs.
    pub fn open(bpffs: Option<&Path>, create: bool) -> Result<PinDir, FilterError> {
        let root = bpffs.unwrap_or(Path::new(DEFAULT_BPFFS));
        if !is_bpffs(root) {
            if bpffs.is_none() && create {
                mount_bpffs(root)?;
            } else {
                return Err(FilterError::NotBpffs(root.to_path_buf()));
            }
        }
        let dir = root.join("portwall");
        if create && !dir.exists() {
            std::fs::create_dir(&dir).map_err(|e| FilterError::io("create", &dir, e))?;
        }
        Ok(PinDir { dir })
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    pub fn pins(&self, name: &FilterName) -> FilterPins {
        FilterPins {
            program: self.dir.join(name.as_str()),
            jump: self.dir.join(format!("{name}@jump")),
            counters: self.dir.join(format!("{name}@counters")),
        }
    }

    /// Where the current filter's set table `index` is pinned.
    pub fn set_table(&self, name: &FilterName, index: usize) -> PathBuf {
        self.dir.join(format!("{name}@set{index}"))
    }

    /// Where a replace pins the new filter's set table `index` until the
    /// switch.
    pub fn new_set_table(&self, name: &FilterName, index: usize) -> PathBuf {
        self.dir.join(format!("{name}@set{index}@new"))
    }

    /// Every set table pin of `name`, current and new, sorted.
    pub fn set_tables(&self, name: &FilterName) -> Result<Vec<PathBuf>, FilterError> {
        let prefix = format!("{name}@set");
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(FilterError::io("read", &self.dir, e)),
        };
        let mut out: Vec<PathBuf> = entries
            .filter_map(|e| e.ok())
            .filter(|e| {
                e.file_name().to_str().is_some_and(|n| {
                    n.strip_prefix(&prefix).is_some_and(|rest| {
                        let digits = rest.strip_suffix("@new").unwrap_or(rest);
                        !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
                    })
                })
            })
            .map(|e| e.path())
            .collect();
        out.sort();
        Ok(out)
    }

    /// The names of every filter pinned here, sorted.
    pub fn names(&self) -> Result<Vec<FilterName>, FilterError> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(FilterError::io("read", &self.dir, e)),
        };
        let mut names: Vec<FilterName> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok()))
            .collect();
        names.sort();
        Ok(names)
    }

    /// Takes the lock that serializes changes to filters, so that two
    /// `portwall load --replace` of one name cannot interleave. It is an
    /// flock on the pin directory itself: no lock file to leave behind,
    /// and the kernel drops it if the process dies.
    pub fn lock(&self) -> Result<Lock, FilterError> {
        let file = File::open(&self.dir).map_err(|e| FilterError::io("open", &self.dir, e))?;
        // SAFETY: flock on a descriptor we own.
        let ret = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
        if ret != 0 {
            return Err(FilterError::io(
                "lock",
                &self.dir,
                std::io::Error::last_os_error(),
            ));
        }
        Ok(Lock { _file: file })
    }
}

/// Held while a filter is changed; released on drop.
pub struct Lock {
    _file: File,
}

fn is_bpffs(path: &Path) -> bool {
    let Ok(c) = CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: statfs writes into the zeroed struct we pass.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    let ret = unsafe { libc::statfs(c.as_ptr(), &mut st) };
    ret == 0 && st.f_type as i64 == BPF_FS_MAGIC
}

/// Mounts a new bpffs instance at `root` (created if missing).
pub fn mount_bpffs(root: &Path) -> Result<(), FilterError> {
    std::fs::create_dir_all(root).map_err(|e| FilterError::io("create", root, e))?;
    let target = CString::new(root.as_os_str().as_bytes())
        .map_err(|_| FilterError::NotBpffs(root.to_path_buf()))?;
    // SAFETY: plain mount(2) with NUL-terminated strings.
    let ret = unsafe {
        libc::mount(
            c"bpf".as_ptr(),
            target.as_ptr(),
            c"bpf".as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if ret != 0 {
        return Err(FilterError::MountBpffs {
            path: root.to_path_buf(),
            source: std::io::Error::last_os_error(),
        });
    }
    Ok(())
}
