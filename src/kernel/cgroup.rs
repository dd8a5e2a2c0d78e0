//! Finding the cgroup2 hierarchy and cgroups in it, and temporary cgroups
//! for tests and one-off runs.
//!
//! Only cgroup2 matters: cgroup BPF programs attach to cgroup2 directories
//! (on a hybrid layout that is `/sys/fs/cgroup/unified`, on a unified one
//! `/sys/fs/cgroup`). Where it is mounted is read from
//! `/proc/self/mountinfo`, never assumed.

use std::fs;
use std::io::{self, Read, Seek};
use std::os::fd::AsRawFd;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// What to tell a user whose cgroup operation was refused.
pub const ROOT_HINT: &str = "creating cgroups, moving processes between them and attaching \
programs to them needs root: run portwall with sudo";

/// How long [`TempCgroup::kill_all`] waits for killed processes to exit.
pub const KILL_TIMEOUT: Duration = Duration::from_secs(5);

/// A failure finding, creating or changing a cgroup.
#[derive(thiserror::Error, Debug)]
pub enum CgroupError {
    /// No cgroup2 file system is mounted in this mount namespace.
    #[error(
        "no cgroup2 file system is mounted (none listed in {mountinfo}): mount one with \
         `mount -t cgroup2 none /sys/fs/cgroup/unified` (hybrid layout) or boot with \
         systemd.unified_cgroup_hierarchy=1"
    )]
    NoCgroup2Mount {
        /// The mount table that was read.
        mountinfo: PathBuf,
    },

    /// A file under /proc or the cgroup file system could not be read.
    #[error("could not read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },

    /// The cgroup asked for does not exist.
    #[error(
        "cgroup {given} does not exist (looked for {looked_up}): give a path inside the \
         cgroup2 mount {mount} or relative to it; for a systemd service that is the path \
         `systemctl show -p ControlGroup UNIT` prints, and the service must be running"
    )]
    NoSuchCgroup {
        /// The path as the user gave it.
        given: PathBuf,
        /// Where it was looked for.
        looked_up: PathBuf,
        /// The cgroup2 mount.
        mount: PathBuf,
    },

    /// The path exists but is not a directory, so it is not a cgroup.
    #[error("{path} is not a cgroup: a cgroup is a directory in the cgroup2 mount {mount}")]
    NotADirectory {
        /// The path.
        path: PathBuf,
        /// The cgroup2 mount.
        mount: PathBuf,
    },

    /// The path leads out of the cgroup2 mount (through `..` or a symlink).
    #[error(
        "{given} leads to {resolved}, outside the cgroup2 mount {mount}: give a cgroup inside it"
    )]
    OutsideMount {
        /// The path as the user gave it.
        given: PathBuf,
        /// Where it leads.
        resolved: PathBuf,
        /// The cgroup2 mount.
        mount: PathBuf,
    },

    /// The process does not exist (any more).
    #[error("there is no process with pid {pid} (reading {path}: {source})")]
    NoSuchProcess {
        /// The pid.
        pid: u32,
        /// The file that was read.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },

    /// `/proc/PID/cgroup` has no cgroup2 (`0::`) line.
    #[error("{path} has no cgroup2 line (`0::/...`): the kernel may have no cgroup2 support")]
    NoCgroup2Line {
        /// The file.
        path: PathBuf,
    },

    /// A name for a new cgroup that cannot be a single directory name.
    #[error("invalid cgroup name prefix `{prefix}`: use a non-empty name without `/`")]
    InvalidPrefix {
        /// The prefix given.
        prefix: String,
    },

    /// The cgroup directory could not be created.
    #[error("could not create cgroup {path} (mkdir: {source}){}", hint(source))]
    Create {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },

    /// A control file could not be written.
    #[error("could not write `{value}` to {path}: {source}{}", hint(source))]
    Write {
        /// The control file.
        path: PathBuf,
        /// What was written.
        value: String,
        /// Why.
        #[source]
        source: io::Error,
    },

    /// A process in the cgroup could not be killed.
    #[error(
        "could not kill process {pid} in {path} (kill: {source}){}",
        hint(source)
    )]
    Kill {
        /// The pid.
        pid: u32,
        /// The cgroup.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },

    /// Processes were killed but the cgroup did not empty in time.
    #[error(
        "the processes in {path} were killed but it still holds some after {waited:?} \
         (`populated 1` in cgroup.events); a process stuck in the kernel (state D) cannot \
         die until its I/O ends: check `cat {path}/cgroup.procs`"
    )]
    KillTimeout {
        /// The cgroup.
        path: PathBuf,
        /// How long it waited.
        waited: Duration,
    },

    /// Waiting on `cgroup.events` failed.
    #[error("could not wait for events on {path} (poll: {source})")]
    Poll {
        /// The events file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },

    /// The cgroup directory could not be removed.
    #[error(
        "could not remove cgroup {path} (rmdir: {source}){}",
        remove_hint(source)
    )]
    Remove {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
}

fn hint(err: &io::Error) -> String {
    match err.raw_os_error() {
        Some(libc::EPERM | libc::EACCES) => format!(": {ROOT_HINT}"),
        _ => String::new(),
    }
}

fn remove_hint(err: &io::Error) -> String {
    match err.raw_os_error() {
        Some(libc::EBUSY) => {
            ": it still holds processes or child cgroups; kill or move them first".to_string()
        }
        _ => hint(err),
    }
}

/// One line of `/proc/PID/mountinfo`, the fields portwall needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MountEntry {
    /// The path inside the file system that is mounted (`/` unless it is a
    /// bind mount of a subtree).
    pub root: PathBuf,
    /// Where it is mounted.
    pub mount_point: PathBuf,
    /// The file system type (`cgroup2`, `cgroup`, `tmpfs`, ...).
    pub fstype: String,
}

/// Parses the text of a `mountinfo` file (proc(5)).
///
/// Lines that do not have the documented shape are skipped: the format is
/// stable, so such a line is not one the kernel wrote and cannot describe a
/// mount we could use.
pub fn parse_mountinfo(text: &str) -> Vec<MountEntry> {
    text.lines().filter_map(parse_mountinfo_line).collect()
}

fn parse_mountinfo_line(line: &str) -> Option<MountEntry> {
    // id parent major:minor root mount-point options [optional...] - fstype source super-options
    let mut fields = line.split(' ');
    let root = fields.nth(3)?;
    let mount_point = fields.next()?;
    let mut rest = fields.skip_while(|f| *f != "-");
    rest.next()?;
    let fstype = rest.next()?;
    Some(MountEntry {
        root: PathBuf::from(unescape_octal(root)),
        mount_point: PathBuf::from(unescape_octal(mount_point)),
        fstype: unescape_octal(fstype),
    })
}

/// Undoes the kernel's `\ooo` escaping of space, tab, newline and backslash
/// in mountinfo paths.
fn unescape_octal(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            let value = (bytes[i + 1] - b'0') as u32 * 64
                + (bytes[i + 2] - b'0') as u32 * 8
                + (bytes[i + 3] - b'0') as u32;
            if let Ok(byte) = u8::try_from(value) {
                out.push(byte);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The first cgroup2 mount listed in `entries`.
pub fn find_cgroup2(entries: &[MountEntry]) -> Option<&MountEntry> {
    entries.iter().find(|e| e.fstype == "cgroup2")
}

const MOUNTINFO: &str = "/proc/self/mountinfo";

fn cgroup2_entry() -> Result<MountEntry, CgroupError> {
    let text = read(Path::new(MOUNTINFO))?;
    find_cgroup2(&parse_mountinfo(&text))
        .cloned()
        .ok_or_else(|| CgroupError::NoCgroup2Mount {
            mountinfo: PathBuf::from(MOUNTINFO),
        })
}

/// Where the cgroup2 hierarchy is mounted, from `/proc/self/mountinfo`
/// (the first cgroup2 mount if there are several).
pub fn cgroup2_mount() -> Result<PathBuf, CgroupError> {
    Ok(cgroup2_entry()?.mount_point)
}

/// Resolves a cgroup given by a user to its canonical directory, with the
/// cgroup2 mount read from `/proc/self/mountinfo`. See [`resolve_in`].
/// A cgroup as systemd and bpftool name it: its path below the cgroup2
/// mount `root`, with a leading `/`; the full path if it is not below it.
pub fn relative_name(root: &Path, cgroup: &Path) -> String {
    match cgroup.strip_prefix(root) {
        Ok(rel) => format!("/{}", rel.display()),
        Err(_) => cgroup.display().to_string(),
    }
}

pub fn resolve(path: &Path) -> Result<PathBuf, CgroupError> {
    resolve_in(&cgroup2_mount()?, path)
}

/// Resolves a cgroup given by a user against the cgroup2 mount `mount`.
///
/// An absolute path inside `mount` is used as is; any other path, absolute
/// (`/system.slice/foo.service`, as systemd prints it) or relative, is taken
/// relative to `mount`. The result is canonical and must be a directory
/// inside `mount` (`..` and symlinks cannot lead out of it).
pub fn resolve_in(mount: &Path, path: &Path) -> Result<PathBuf, CgroupError> {
    let relative: PathBuf = match path.strip_prefix(mount) {
        Ok(inside) if path.is_absolute() => inside.to_path_buf(),
        _ => path
            .components()
            .filter(|c| !matches!(c, Component::RootDir | Component::Prefix(_)))
            .collect(),
    };
    let looked_up = mount.join(&relative);
    // Checked on the words first, so that `../x` is refused as an escape
    // whether or not `x` exists; canonicalizing below catches symlinks.
    if climbs_out(&relative) {
        return Err(CgroupError::OutsideMount {
            given: path.to_path_buf(),
            resolved: lexically_normal(&looked_up),
            mount: mount.to_path_buf(),
        });
    }
    let canonical_mount = fs::canonicalize(mount).map_err(|source| CgroupError::Read {
        path: mount.to_path_buf(),
        source,
    })?;
    let resolved = match fs::canonicalize(&looked_up) {
        Ok(resolved) => resolved,
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            // `a/../b` fails when `a` is missing even though `b` exists:
            // the user must fix the path either way.
            return Err(CgroupError::NoSuchCgroup {
                given: path.to_path_buf(),
                looked_up,
                mount: mount.to_path_buf(),
            });
        }
        Err(source) => {
            return Err(CgroupError::Read {
                path: looked_up,
                source,
            });
        }
    };
    if !resolved.starts_with(&canonical_mount) {
        return Err(CgroupError::OutsideMount {
            given: path.to_path_buf(),
            resolved,
            mount: mount.to_path_buf(),
        });
    }
    if !resolved.is_dir() {
        return Err(CgroupError::NotADirectory {
            path: resolved,
            mount: mount.to_path_buf(),
        });
    }
    Ok(resolved)
}

/// Whether a relative path climbs above its starting point with `..`.
fn climbs_out(relative: &Path) -> bool {
    let mut depth = 0usize;
    for component in relative.components() {
        match component {
            Component::ParentDir => match depth.checked_sub(1) {
                Some(d) => depth = d,
                None => return true,
            },
            Component::Normal(_) => depth += 1,
            _ => {}
        }
    }
    false
}

/// `path` with `.` and `..` applied to its words (no symlinks followed),
/// for messages.
fn lexically_normal(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// The cgroup2 path in the text of a `/proc/PID/cgroup` file: the part
/// after `0::` (like `/system.slice/foo.service`).
pub fn parse_proc_cgroup(text: &str) -> Option<&str> {
    text.lines().find_map(|line| line.strip_prefix("0::"))
}

/// The cgroup2 directory of process `pid`, from `/proc/PID/cgroup`.
pub fn of_pid(pid: u32) -> Result<PathBuf, CgroupError> {
    let file = PathBuf::from(format!("/proc/{pid}/cgroup"));
    let text = fs::read_to_string(&file).map_err(|source| {
        if source.kind() == io::ErrorKind::NotFound || source.raw_os_error() == Some(libc::ESRCH) {
            CgroupError::NoSuchProcess {
                pid,
                path: file.clone(),
                source,
            }
        } else {
            CgroupError::Read {
                path: file.clone(),
                source,
            }
        }
    })?;
    let cgroup = parse_proc_cgroup(&text)
        .ok_or_else(|| CgroupError::NoCgroup2Line { path: file.clone() })?;
    let entry = cgroup2_entry()?;
    // The path is relative to the hierarchy's root; a mount of a subtree
    // (mountinfo root other than `/`) shows it without that prefix.
    let cgroup = Path::new(cgroup);
    let inside = cgroup.strip_prefix(&entry.root).unwrap_or(cgroup);
    resolve_in(&entry.mount_point, inside)
}

fn read(path: &Path) -> Result<String, CgroupError> {
    fs::read_to_string(path).map_err(|source| CgroupError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn write(path: &Path, value: &str) -> Result<(), CgroupError> {
    fs::write(path, value).map_err(|source| CgroupError::Write {
        path: path.to_path_buf(),
        value: value.to_string(),
        source,
    })
}

/// The pids listed in the `cgroup.procs` of the cgroup `dir`.
pub fn procs(dir: &Path) -> Result<Vec<u32>, CgroupError> {
    let text = read(&dir.join("cgroup.procs"))?;
    Ok(text.lines().filter_map(|l| l.trim().parse().ok()).collect())
}

/// Whether the cgroup `dir` or any cgroup below it holds a live process,
/// from its `cgroup.events`.
pub fn populated(dir: &Path) -> Result<bool, CgroupError> {
    Ok(events_say_populated(&read(&dir.join("cgroup.events"))?))
}

fn events_say_populated(text: &str) -> bool {
    text.lines().any(|l| l.trim() == "populated 1")
}

/// Waits until `cgroup.events` of `dir` says `populated 0`, or `timeout`
/// passes. Returns whether it emptied.
///
/// The kernel notifies pollers of `cgroup.events` (POLLPRI) whenever it
/// changes, so this sleeps in poll(2) rather than re-reading on a timer;
/// the file is re-read after each wake-up, and a change between a read and
/// the poll makes the poll return at once.
pub fn wait_unpopulated(dir: &Path, timeout: Duration) -> Result<bool, CgroupError> {
    let path = dir.join("cgroup.events");
    let read_err = |source| CgroupError::Read {
        path: path.clone(),
        source,
    };
    let mut file = fs::File::open(&path).map_err(read_err)?;
    let deadline = Instant::now() + timeout;
    let mut text = String::new();
    loop {
        text.clear();
        file.rewind().map_err(read_err)?;
        file.read_to_string(&mut text).map_err(read_err)?;
        if !events_say_populated(&text) {
            return Ok(true);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(false);
        }
        let mut pfd = libc::pollfd {
            fd: file.as_raw_fd(),
            events: libc::POLLPRI,
            revents: 0,
        };
        let ms = i32::try_from(left.as_millis().max(1)).unwrap_or(i32::MAX);
        // SAFETY: one valid pollfd for the duration of the call.
        let ret = unsafe { libc::poll(&mut pfd, 1, ms) };
        if ret < 0 {
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(CgroupError::Poll { path, source: err });
            }
        }
    }
}

/// Kills every process in the cgroup `dir` and below, and waits (at most
/// `timeout`) until they have exited.
///
/// Uses `cgroup.kill` where the kernel has it (5.14+), which also catches
/// processes forked meanwhile; otherwise sends SIGKILL to each pid in
/// `cgroup.procs` of `dir` and its descendants, again after every change
/// until the cgroup is empty.
pub fn kill_all(dir: &Path, timeout: Duration) -> Result<(), CgroupError> {
    kill_all_with(dir, timeout, dir.join("cgroup.kill").exists())
}

fn kill_all_with(dir: &Path, timeout: Duration, use_kill_file: bool) -> Result<(), CgroupError> {
    let deadline = Instant::now() + timeout;
    let kill_file = dir.join("cgroup.kill");
    if use_kill_file {
        write(&kill_file, "1")?;
        if wait_unpopulated(dir, deadline.saturating_duration_since(Instant::now()))? {
            return Ok(());
        }
    } else {
        loop {
            kill_listed(dir)?;
            // Short waits so that a process forked after the listing is
            // found and killed on the next round.
            let left = deadline.saturating_duration_since(Instant::now());
            if wait_unpopulated(dir, left.min(Duration::from_millis(100)))? {
                return Ok(());
            }
            if Instant::now() >= deadline {
                break;
            }
        }
    }
    Err(CgroupError::KillTimeout {
        path: dir.to_path_buf(),
        waited: timeout,
    })
}

fn kill_listed(dir: &Path) -> Result<(), CgroupError> {
    for pid in procs(dir)? {
        let Ok(raw_pid) = libc::pid_t::try_from(pid) else {
            continue;
        };
        // SAFETY: kill(2) has no memory-safety preconditions.
        if unsafe { libc::kill(raw_pid, libc::SIGKILL) } != 0 {
            let err = io::Error::last_os_error();
            // Gone between the listing and the kill: that is what we want.
            if err.raw_os_error() != Some(libc::ESRCH) {
                return Err(CgroupError::Kill {
                    pid,
                    path: dir.to_path_buf(),
                    source: err,
                });
            }
        }
    }
    for child in child_cgroups(dir) {
        kill_listed(&child)?;
    }
    Ok(())
}

/// The cgroups directly below `dir`; unreadable entries are skipped,
/// since they are gone or not ours to manage.
fn child_cgroups(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect()
}

/// Removes the cgroup `dir` and every cgroup below it, deepest first. They
/// must hold no processes (see [`kill_all`]). A cgroup that is already gone
/// counts as removed.
pub fn remove_tree(dir: &Path) -> Result<(), CgroupError> {
    for child in child_cgroups(dir) {
        remove_tree(&child)?;
    }
    match fs::remove_dir(dir) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(CgroupError::Remove {
            path: dir.to_path_buf(),
            source,
        }),
    }
}

/// A cgroup created for the lifetime of a value: for tests, and for running
/// a command under a filter without a systemd unit.
///
/// Dropping it kills the processes left in it and removes the directory
/// (best effort: errors are ignored, it never panics). [`TempCgroup::keep`]
/// disarms that.
#[derive(Debug)]
pub struct TempCgroup {
    path: PathBuf,
    armed: bool,
}

impl TempCgroup {
    /// Creates a new cgroup below the cgroup directory `parent`, named
    /// `PREFIX-PID-COUNTER-NANOS` so that concurrent tests and processes
    /// never collide.
    pub fn create(parent: &Path, prefix: &str) -> Result<TempCgroup, CgroupError> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        if prefix.is_empty() || prefix.contains('/') || prefix == "." || prefix == ".." {
            return Err(CgroupError::InvalidPrefix {
                prefix: prefix.to_string(),
            });
        }
        let counter = COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let name = format!("{prefix}-{}-{counter}-{nanos}", std::process::id());
        let path = parent.join(name);
        fs::create_dir(&path).map_err(|source| CgroupError::Create {
            path: path.clone(),
            source,
        })?;
        Ok(TempCgroup { path, armed: true })
    }

    /// The cgroup's directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Moves process `pid` (with all its threads) into this cgroup.
    pub fn add_pid(&self, pid: u32) -> Result<(), CgroupError> {
        write(&self.path.join("cgroup.procs"), &pid.to_string())
    }

    /// The pids directly in this cgroup.
    pub fn pids(&self) -> Result<Vec<u32>, CgroupError> {
        procs(&self.path)
    }

    /// Whether a live process is in this cgroup or below it.
    pub fn populated(&self) -> Result<bool, CgroupError> {
        populated(&self.path)
    }

    /// Kills every process in the cgroup and waits until they are gone (at
    /// most [`KILL_TIMEOUT`]). See [`kill_all`].
    pub fn kill_all(&self) -> Result<(), CgroupError> {
        kill_all(&self.path, KILL_TIMEOUT)
    }

    /// Kills what is left in the cgroup and removes it, reporting errors.
    pub fn remove(mut self) -> Result<(), CgroupError> {
        self.armed = false;
        if self.path.exists() && populated(&self.path)? {
            kill_all(&self.path, KILL_TIMEOUT)?;
        }
        remove_tree(&self.path)
    }

    /// Disarms the cleanup: the cgroup stays when this value is dropped.
    /// Returns its path.
    pub fn keep(mut self) -> PathBuf {
        self.armed = false;
        std::mem::take(&mut self.path)
    }

    /// The same as [`TempCgroup::keep`].
    pub fn into_path(self) -> PathBuf {
        self.keep()
    }
}

impl Drop for TempCgroup {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if populated(&self.path).unwrap_or(false) {
            let _ = kill_all(&self.path, KILL_TIMEOUT);
        }
        let _ = remove_tree(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn octal_escapes_are_undone() {
        assert_eq!(unescape_octal(r"/mnt/a\040b"), "/mnt/a b");
        assert_eq!(unescape_octal(r"/a\011b\134c"), "/a\tb\\c");
        assert_eq!(unescape_octal(r"/a\04"), r"/a\04");
        assert_eq!(unescape_octal(r"\999"), r"\999");
    }

    /// The fallback for kernels without `cgroup.kill` (before 5.14), run
    /// on this one: SIGKILL to every listed pid, nested cgroups included.
    #[test]
    fn kill_without_cgroup_kill_file() {
        use std::os::unix::process::ExitStatusExt;
        use std::process::Command;

        if !crate::kernel::require_privileges_or_skip("kill_without_cgroup_kill_file") {
            return;
        }
        let mount = cgroup2_mount().expect("cgroup2 is mounted");
        let top = TempCgroup::create(&mount, "pwtest-killsig").unwrap();
        let nested = TempCgroup::create(top.path(), "nested").unwrap().keep();
        let mut sleepers = Vec::new();
        for dir in [top.path(), nested.as_path()] {
            let child = Command::new("sleep")
                .arg("60")
                .spawn()
                .expect("sleep starts");
            write(&dir.join("cgroup.procs"), &child.id().to_string()).unwrap();
            sleepers.push(child);
        }
        assert!(top.populated().unwrap());
        kill_all_with(top.path(), KILL_TIMEOUT, false).unwrap();
        assert!(!top.populated().unwrap());
        for mut child in sleepers {
            assert_eq!(child.wait().unwrap().signal(), Some(libc::SIGKILL));
        }
        top.remove().unwrap();
        assert!(!nested.exists());
    }

    #[test]
    fn events_populated() {
        assert!(events_say_populated("populated 1\nfrozen 0\n"));
        assert!(!events_say_populated("populated 0\nfrozen 0\n"));
    }
}
