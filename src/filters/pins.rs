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
//! A fourth, `NAME@trace`, exists only while `load` runs: the trace hook's
//! program array (see `codegen::counting`), pinned just long enough for
//! the new program to share it with the old one. It must not stay pinned:
//! the kernel empties a program array once no file or pin refers to it,
//! which is what turns tracing off when `portwall trace` ends, even if it
//! is killed.
//!
//! `@` cannot appear in a filter name, so these never collide.

use super::FilterName;
use super::error::FilterError;
use std::ffi::CString;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::DirBuilderExt;
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
    /// Where the trace hook is pinned while a load runs (see above).
    pub trace_hook: PathBuf,
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
            // Only its owner may list or change the filters; another
            // portwall creating it at the same moment is no error.
            match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(FilterError::io("create", &dir, e)),
            }
        }
        check_ownership(&dir)?;
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
            trace_hook: self.dir.join(format!("{name}@trace")),
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

/// Refuses a pin directory that someone other than this user (or root)
/// owns, or that others may write to: whoever can write to it can remove
/// a filter's jump table (its cgroups then drop everything) or put pins
/// of their own under a filter's name. A freshly mounted bpffs is
/// world-writable with the sticky bit, so an unprivileged user could
/// create `portwall` there before root does.
fn check_ownership(dir: &Path) -> Result<(), FilterError> {
    use std::os::unix::fs::MetadataExt;
    let meta = match std::fs::symlink_metadata(dir) {
        Ok(m) => m,
        // Missing (nothing loaded yet) or unreadable: the operation that
        // needs it reports that with its own context.
        Err(_) => return Ok(()),
    };
    // SAFETY: geteuid(2) cannot fail.
    let euid = unsafe { libc::geteuid() };
    let problem = if !meta.is_dir() {
        Some("it is not a directory".to_string())
    } else if meta.uid() != euid && meta.uid() != 0 {
        Some(format!("it belongs to uid {}, not to root", meta.uid()))
    } else if meta.mode() & 0o022 != 0 {
        Some(format!(
            "its mode {:o} lets others change the filters in it",
            meta.mode() & 0o7777
        ))
    } else {
        None
    };
    match problem {
        Some(problem) => Err(FilterError::UnsafePinDir {
            path: dir.to_path_buf(),
            problem,
        }),
        None => Ok(()),
    }
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

/// Mounts a new bpffs instance at `root` (created if missing), with mode
/// 0700 as systemd mounts it: the kernel's default is 1777, which would
/// let any user create directories in it.
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
            c"mode=0700".as_ptr().cast(),
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
