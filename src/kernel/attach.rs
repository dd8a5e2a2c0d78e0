//! Attaching cgroup_skb programs to cgroups so that the attachment outlives
//! portwall, detaching them, and finding where programs are attached.
//!
//! Attachments use the legacy `BPF_PROG_ATTACH` with `BPF_F_ALLOW_MULTI`,
//! as systemd (`IPEgressFilterPath=`) and `bpftool cgroup attach ... multi`
//! do: the cgroup then holds the program until it is detached or the cgroup
//! is removed, and it runs alongside other programs attached there (any
//! drop wins). aya would attach with a `bpf_link`, which is detached when
//! the last fd to it closes unless it is pinned.

use std::ffi::CString;
use std::fs;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::error::PRIVILEGE_HINT;
use super::sys;
pub use super::sys::ProgInfo;

/// The statfs magic number of a cgroup2 file system (`CGROUP2_SUPER_MAGIC`).
const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;

pub use crate::lang::ir::{Direction, ParseDirectionError};

/// A failure attaching, detaching or looking up programs.
#[derive(thiserror::Error, Debug)]
pub enum AttachError {
    /// The cgroup directory could not be opened.
    #[error("could not open cgroup {path}: {source}{}", open_hint(source))]
    OpenCgroup {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },

    /// The directory is not in a cgroup2 file system.
    #[error(
        "{path} is not a cgroup2 directory: programs attach only to cgroup2; on a hybrid \
         layout give the path under the cgroup2 mount (often /sys/fs/cgroup/unified)"
    )]
    NotCgroup2 {
        /// The directory.
        path: PathBuf,
    },

    /// The same program is already attached there.
    #[error(
        "program {prog} is already attached to {path} for {direction}: detach it first, or \
         leave it as it is"
    )]
    AlreadyAttached {
        /// The program (its id, or `?` if it could not be read).
        prog: String,
        /// The cgroup.
        path: PathBuf,
        /// The direction.
        direction: Direction,
    },

    /// The program is not attached there.
    #[error(
        "program {prog} is not attached to {path} for {direction}: `portwall show` lists \
         where it is attached"
    )]
    NotAttached {
        /// The program (its id, or `?` if it could not be read).
        prog: String,
        /// The cgroup.
        path: PathBuf,
        /// The direction.
        direction: Direction,
    },

    /// A program is attached to the cgroup or an ancestor without
    /// `BPF_F_ALLOW_MULTI`, so no other program may be attached there or below.
    #[error(
        "{holder} has a program attached for {direction} without the multi flag (flags \
         {flags:#x}), which excludes other programs in {path}: detach it (`bpftool cgroup \
         show {holder}`) or re-attach it with `bpftool cgroup attach ... multi`"
    )]
    Exclusive {
        /// The cgroup attached to.
        path: PathBuf,
        /// The cgroup holding the exclusive program: `path` or an ancestor.
        holder: PathBuf,
        /// The direction.
        direction: Direction,
        /// The attach flags the kernel reported.
        flags: u32,
    },

    /// The kernel said `EPERM` and nothing on the cgroup explains it.
    #[error(
        "{call} on {path} was refused with EPERM: {PRIVILEGE_HINT}. As root, EPERM means a \
         parent cgroup has a program attached without the multi or override flag, which \
         forbids attaching below it (check `bpftool cgroup tree`)"
    )]
    PermissionDenied {
        /// The bpf(2) command.
        call: &'static str,
        /// The cgroup.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },

    /// The kernel refused with `E2BIG`: 64 programs are attached there.
    #[error(
        "{path} already has the most programs the kernel allows for {direction} (64): detach some"
    )]
    TooManyPrograms {
        /// The cgroup.
        path: PathBuf,
        /// The direction.
        direction: Direction,
    },

    /// The kernel refused, and this process lacks CAP_NET_ADMIN: the
    /// kernel does not always say EPERM for that (attaching says EINVAL).
    #[error(
        "{call} on {path} failed ({source}): this process lacks CAP_NET_ADMIN, which attaching \
         to cgroups needs: run portwall as root (with sudo)"
    )]
    MissingCapability {
        /// The bpf(2) command.
        call: &'static str,
        /// The cgroup.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },

    /// Any other bpf(2) failure on a cgroup.
    #[error("{call} on {path} ({direction}) failed: {source}{}", call_hint(source))]
    Syscall {
        /// The bpf(2) command.
        call: &'static str,
        /// The cgroup.
        path: PathBuf,
        /// The direction.
        direction: Direction,
        /// Why.
        #[source]
        source: io::Error,
    },

    /// A call on a program fd failed.
    #[error("{call} failed: {source}")]
    Program {
        /// What failed.
        call: &'static str,
        /// Why.
        #[source]
        source: io::Error,
    },

    /// A pinned object could not be opened.
    #[error(
        "could not open the pinned program {path} (BPF_OBJ_GET: {source}){}",
        pin_hint(source)
    )]
    Pin {
        /// The pin.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },

    /// The pinned object is not a program.
    #[error("{path} holds a BPF {kind}, not a program: give the pin of a portwall filter")]
    NotAProgram {
        /// The pin.
        path: PathBuf,
        /// What it is (`map`, `link`, ...).
        kind: String,
    },

    /// The pinned program is not a cgroup_skb program.
    #[error(
        "{path} holds a program of type {prog_type}, not a cgroup_skb program \
         ({cgroup_skb}): give the pin of a portwall filter",
        cgroup_skb = sys::BPF_PROG_TYPE_CGROUP_SKB
    )]
    WrongProgramType {
        /// The pin.
        path: PathBuf,
        /// Its `enum bpf_prog_type`.
        prog_type: u32,
    },

    /// No loaded program has that id.
    #[error("no loaded BPF program has id {id} (BPF_PROG_GET_FD_BY_ID: {source})")]
    NoSuchProgram {
        /// The id.
        id: u32,
        /// The error.
        #[source]
        source: io::Error,
    },

    /// The root of a walk could not be read.
    #[error("could not list the cgroups under {path}: {source}")]
    Walk {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
}

fn open_hint(err: &io::Error) -> &'static str {
    match err.kind() {
        io::ErrorKind::NotFound => {
            ": the cgroup does not exist; for a systemd service the service must be running \
             (`systemctl show -p ControlGroup UNIT` prints its cgroup)"
        }
        io::ErrorKind::PermissionDenied => ": run portwall as root",
        _ => "",
    }
}

fn call_hint(err: &io::Error) -> &'static str {
    match err.raw_os_error() {
        Some(libc::EINVAL) => {
            ": the program may not be a cgroup_skb program, or was loaded for the other direction"
        }
        Some(libc::EBADF) => ": the fd is not a BPF program or the directory not a cgroup2 cgroup",
        _ => "",
    }
}

fn pin_hint(err: &io::Error) -> &'static str {
    match err.raw_os_error() {
        Some(libc::ENOENT) => {
            ": nothing is pinned there; is the filter loaded, and is bpffs mounted \
             (`mount -t bpf bpf /sys/fs/bpf`)?"
        }
        Some(libc::EPERM | libc::EACCES) => ": run portwall as root",
        Some(libc::EINVAL) => ": the path is not in a bpffs (`mount -t bpf bpf /sys/fs/bpf`)",
        _ => "",
    }
}

/// Opens a cgroup directory for bpf(2) and checks that it is cgroup2.
fn open_cgroup(path: &Path) -> Result<OwnedFd, AttachError> {
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY)
        .open(path)
        .map_err(|source| AttachError::OpenCgroup {
            path: path.to_path_buf(),
            source,
        })?;
    let fd = OwnedFd::from(file);
    if !is_cgroup2(fd.as_fd()).map_err(|source| AttachError::OpenCgroup {
        path: path.to_path_buf(),
        source,
    })? {
        return Err(AttachError::NotCgroup2 {
            path: path.to_path_buf(),
        });
    }
    Ok(fd)
}

fn is_cgroup2(fd: BorrowedFd<'_>) -> io::Result<bool> {
    use std::os::fd::AsRawFd;
    // SAFETY: an all-zero statfs is a valid value to be overwritten.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `fd` is open and `st` is a valid statfs to write to.
    if unsafe { libc::fstatfs(fd.as_raw_fd(), &mut st) } != 0 {
        return Err(io::Error::last_os_error());
    }
    #[allow(clippy::unnecessary_cast)] // f_type's width differs between architectures.
    Ok(st.f_type as i64 == CGROUP2_SUPER_MAGIC)
}

/// The program's id for messages, or `?`: an error message must not fail.
fn prog_label(prog: BorrowedFd<'_>) -> String {
    prog_id(prog).map_or_else(|_| "?".to_string(), |id| id.to_string())
}

/// Attaches `prog` to the cgroup directory `cgroup` for `dir`, with
/// `BPF_PROG_ATTACH` and `BPF_F_ALLOW_MULTI`.
///
/// The attachment outlives this process and `prog`'s fd: the cgroup holds
/// the program until [`detach`] or until the cgroup is removed. Other
/// programs attached with the multi flag keep running; a packet passes
/// only if every program forwards it. Attaching the same program to the
/// same cgroup and direction again gives [`AttachError::AlreadyAttached`]
/// (the kernel itself says only EINVAL).
pub fn attach(prog: BorrowedFd<'_>, cgroup: &Path, dir: Direction) -> Result<(), AttachError> {
    let target = open_cgroup(cgroup)?;
    let err = match sys::prog_attach(
        target.as_fd(),
        prog,
        dir.attach_type(),
        sys::BPF_F_ALLOW_MULTI,
    ) {
        Ok(()) => return Ok(()),
        Err(err) => err,
    };
    let already = || AttachError::AlreadyAttached {
        prog: prog_label(prog),
        path: cgroup.to_path_buf(),
        direction: dir,
    };
    if !has_net_admin() {
        return Err(AttachError::MissingCapability {
            call: "BPF_PROG_ATTACH",
            path: cgroup.to_path_buf(),
            source: err,
        });
    }
    Err(match err.raw_os_error() {
        // The kernel says EINVAL for a program attached twice, as for a
        // wrong program type: look at the cgroup to tell which.
        Some(libc::EINVAL) if is_attached(prog, target.as_fd(), cgroup, dir) => already(),
        Some(libc::E2BIG) => AttachError::TooManyPrograms {
            path: cgroup.to_path_buf(),
            direction: dir,
        },
        // The kernel also says EPERM to root when an exclusive program
        // there or above forbids ours; tell that case apart.
        Some(libc::EPERM) => match exclusive_holder(target.as_fd(), cgroup, dir) {
            Some((holder, flags)) => AttachError::Exclusive {
                path: cgroup.to_path_buf(),
                holder,
                direction: dir,
                flags,
            },
            None => AttachError::PermissionDenied {
                call: "BPF_PROG_ATTACH",
                path: cgroup.to_path_buf(),
                source: err,
            },
        },
        _ => AttachError::Syscall {
            call: "BPF_PROG_ATTACH",
            path: cgroup.to_path_buf(),
            direction: dir,
            source: err,
        },
    })
}

/// Whether this process has CAP_NET_ADMIN in its effective set (from
/// `/proc/self/status`); `true` when that cannot be read, so that the
/// kernel's own error is reported instead.
fn has_net_admin() -> bool {
    const CAP_NET_ADMIN: u32 = 12;
    let Ok(status) = fs::read_to_string("/proc/self/status") else {
        return true;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .is_none_or(|caps| caps & (1 << CAP_NET_ADMIN) != 0)
}

/// The cgroup whose programs forbid attaching another to `cgroup` for
/// `dir`, with their flags, following the kernel's rule: the cgroup itself
/// refuses if it holds programs attached without the multi flag; otherwise
/// the nearest ancestor with programs decides, and it allows only with the
/// multi flag, or the override flag on a single program.
fn exclusive_holder(
    target: BorrowedFd<'_>,
    cgroup: &Path,
    dir: Direction,
) -> Option<(PathBuf, u32)> {
    const BPF_F_ALLOW_OVERRIDE: u32 = 1;
    let own = sys::prog_query(target, dir.attach_type(), &mut []).ok()?;
    if own.count > 0 && own.attach_flags & sys::BPF_F_ALLOW_MULTI == 0 {
        return Some((cgroup.to_path_buf(), own.attach_flags));
    }
    // Canonical, so that a relative path still has its ancestors; the walk
    // stops above the cgroup2 mount, where opening as cgroup2 fails.
    let cgroup = fs::canonicalize(cgroup).ok()?;
    let mut ancestor = cgroup.parent();
    while let Some(dir_path) = ancestor {
        let fd = open_cgroup(dir_path).ok()?;
        let q = sys::prog_query(fd.as_fd(), dir.attach_type(), &mut []).ok()?;
        if q.count > 0 {
            let allows = q.attach_flags & sys::BPF_F_ALLOW_MULTI != 0
                || (q.count == 1 && q.attach_flags & BPF_F_ALLOW_OVERRIDE != 0);
            return (!allows).then(|| (dir_path.to_path_buf(), q.attach_flags));
        }
        ancestor = dir_path.parent();
    }
    None
}

/// Whether `prog` is among the programs attached to `target` for `dir`;
/// `false` when that cannot be found out (the caller reports its own error).
fn is_attached(prog: BorrowedFd<'_>, target: BorrowedFd<'_>, path: &Path, dir: Direction) -> bool {
    match (prog_id(prog), query_fd(target, path, dir)) {
        (Ok(id), Ok(ids)) => ids.contains(&id),
        _ => false,
    }
}

/// Detaches `prog` from the cgroup directory `cgroup` for `dir`
/// (`BPF_PROG_DETACH`). A program that is not attached there gives
/// [`AttachError::NotAttached`].
pub fn detach(prog: BorrowedFd<'_>, cgroup: &Path, dir: Direction) -> Result<(), AttachError> {
    let target = open_cgroup(cgroup)?;
    sys::prog_detach(target.as_fd(), prog, dir.attach_type()).map_err(|err| {
        match err.raw_os_error() {
            Some(libc::ENOENT) => AttachError::NotAttached {
                prog: prog_label(prog),
                path: cgroup.to_path_buf(),
                direction: dir,
            },
            Some(libc::EPERM) => AttachError::PermissionDenied {
                call: "BPF_PROG_DETACH",
                path: cgroup.to_path_buf(),
                source: err,
            },
            _ => AttachError::Syscall {
                call: "BPF_PROG_DETACH",
                path: cgroup.to_path_buf(),
                direction: dir,
                source: err,
            },
        }
    })
}

/// The ids of the programs attached directly to the cgroup directory
/// `cgroup` for `dir` (`BPF_PROG_QUERY` without the effective flag, so not
/// those inherited from parents), in the order they run. Programs attached
/// with links are included.
pub fn query(cgroup: &Path, dir: Direction) -> Result<Vec<u32>, AttachError> {
    let target = open_cgroup(cgroup)?;
    query_fd(target.as_fd(), cgroup, dir)
}

fn query_fd(target: BorrowedFd<'_>, path: &Path, dir: Direction) -> Result<Vec<u32>, AttachError> {
    // Enough for any cgroup seen in practice; the kernel's limit is 64 per
    // cgroup and direction, and a larger count is fetched on the next round.
    let mut ids = vec![0u32; 16];
    loop {
        let q = sys::prog_query(target, dir.attach_type(), &mut ids).map_err(|err| {
            if err.raw_os_error() == Some(libc::EPERM) {
                AttachError::PermissionDenied {
                    call: "BPF_PROG_QUERY",
                    path: path.to_path_buf(),
                    source: err,
                }
            } else {
                AttachError::Syscall {
                    call: "BPF_PROG_QUERY",
                    path: path.to_path_buf(),
                    direction: dir,
                    source: err,
                }
            }
        })?;
        if q.count <= ids.len() {
            ids.truncate(q.count);
            return Ok(ids);
        }
        // Programs were attached between two rounds, or there are many:
        // ask again with room for all of them.
        ids = vec![0u32; q.count];
    }
}

/// Programs attached directly to one cgroup for one direction.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Attachment {
    /// The cgroup directory.
    pub cgroup: PathBuf,
    /// The direction.
    pub direction: Direction,
    /// The programs' ids, in the order they run.
    pub prog_ids: Vec<u32>,
}

/// Every cgroup under `root` (included) with programs attached, walking the
/// whole tree: systemd's, bpftool's and portwall's attachments alike.
///
/// Cgroups that vanish during the walk or cannot be opened are skipped;
/// only an unreadable `root` or a refused query (not root) is an error.
/// Ordered by path, ingress before egress.
///
/// Cost: an open, a statfs, a directory listing and two `BPF_PROG_QUERY`
/// per cgroup. Measured on our test VM (kernel 6.18, 2 vCPUs): 20-25 µs per
/// cgroup, about 25 ms for a tree of 1,000 cgroups, so a few milliseconds
/// for the few hundred cgroups of a typical systemd host.
pub fn all_attachments(root: &Path) -> Result<Vec<Attachment>, AttachError> {
    let root_fd = open_cgroup(root)?;
    let mut found = Vec::new();
    let mut pending = vec![(root.to_path_buf(), Some(root_fd))];
    while let Some((dir, fd)) = pending.pop() {
        let is_root = dir == root;
        let fd = match fd {
            Some(fd) => fd,
            None => match open_cgroup(&dir) {
                Ok(fd) => fd,
                Err(_) => continue,
            },
        };
        for direction in Direction::ALL {
            match query_fd(fd.as_fd(), &dir, direction) {
                Ok(ids) if ids.is_empty() => {}
                Ok(prog_ids) => found.push(Attachment {
                    cgroup: dir.clone(),
                    direction,
                    prog_ids,
                }),
                Err(err @ AttachError::PermissionDenied { .. }) => return Err(err),
                // A cgroup removed while we hold its fd can still answer;
                // anything else odd about one cgroup must not hide the rest.
                Err(_) => {}
            }
        }
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(source) if is_root => return Err(AttachError::Walk { path: dir, source }),
            Err(_) => continue,
        };
        for entry in entries.filter_map(Result::ok) {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                pending.push((entry.path(), None));
            }
        }
    }
    found.sort_by(|a, b| (&a.cgroup, a.direction).cmp(&(&b.cgroup, b.direction)));
    Ok(found)
}

/// Every (cgroup, direction) under `root` where the program `prog_id` is
/// attached directly, by walking the whole tree (see [`all_attachments`]
/// for what is skipped and what it costs).
pub fn find_attachments(
    root: &Path,
    prog_id: u32,
) -> Result<Vec<(PathBuf, Direction)>, AttachError> {
    Ok(all_attachments(root)?
        .into_iter()
        .filter(|a| a.prog_ids.contains(&prog_id))
        .map(|a| (a.cgroup, a.direction))
        .collect())
}

/// The kernel-wide id of the program `prog` (`BPF_OBJ_GET_INFO_BY_FD`).
///
/// aya 0.14 reads program info only through its own program types, so
/// the call is made directly.
pub fn prog_id(prog: BorrowedFd<'_>) -> Result<u32, AttachError> {
    Ok(prog_info(prog)?.id)
}

/// Type, id and name of the program `prog`; an fd that is not a BPF
/// program is an error.
pub fn prog_info(prog: BorrowedFd<'_>) -> Result<ProgInfo, AttachError> {
    let is_prog = sys::is_prog_fd(prog).map_err(|source| AttachError::Program {
        call: "reading /proc/self/fd",
        source,
    })?;
    if !is_prog {
        return Err(AttachError::Program {
            call: "BPF_OBJ_GET_INFO_BY_FD",
            source: io::Error::other("the fd is not a BPF program"),
        });
    }
    sys::prog_info(prog).map_err(|source| AttachError::Program {
        call: "BPF_OBJ_GET_INFO_BY_FD",
        source,
    })
}

/// Opens the cgroup_skb program pinned at `path` in a bpffs (`BPF_OBJ_GET`).
///
/// A pin of anything else (a map, a link, another program type) is an
/// error naming what it is. aya 0.14 opens pins only into its own program
/// types and gives out no plain fd, so the call is made directly.
pub fn prog_fd_from_pin(path: &Path) -> Result<OwnedFd, AttachError> {
    let pin_err = |source| AttachError::Pin {
        path: path.to_path_buf(),
        source,
    };
    let c_path = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| pin_err(io::Error::from_raw_os_error(libc::EINVAL)))?;
    let fd = sys::obj_get(&c_path).map_err(pin_err)?;
    let kind = sys::bpf_object_kind(fd.as_fd()).map_err(pin_err)?;
    match kind.as_deref() {
        Some("prog") => {}
        other => {
            return Err(AttachError::NotAProgram {
                path: path.to_path_buf(),
                kind: other.unwrap_or("unknown object").to_string(),
            });
        }
    }
    let info = sys::prog_info(fd.as_fd()).map_err(pin_err)?;
    if info.prog_type != sys::BPF_PROG_TYPE_CGROUP_SKB {
        return Err(AttachError::WrongProgramType {
            path: path.to_path_buf(),
            prog_type: info.prog_type,
        });
    }
    Ok(fd)
}

/// Opens the loaded program with kernel id `id` (`BPF_PROG_GET_FD_BY_ID`),
/// e.g. to detach a program found by [`find_attachments`] whose pin is gone.
pub fn prog_fd_from_id(id: u32) -> Result<OwnedFd, AttachError> {
    sys::prog_get_fd_by_id(id).map_err(|source| match source.raw_os_error() {
        Some(libc::EPERM) => AttachError::Program {
            call: "BPF_PROG_GET_FD_BY_ID (needs root)",
            source,
        },
        _ => AttachError::NoSuchProgram { id, source },
    })
}
