//! Errors of the systemd integration, each saying what to do about it.

use super::config::ConfigError;
use crate::filters::FilterName;
use std::path::PathBuf;

/// Something the systemd integration could not do. Each message says
/// what went wrong and what to do; the variants are told apart by tests
/// and callers that react (e.g. a dry run without systemd).
#[derive(Debug, thiserror::Error)]
#[allow(missing_docs)]
pub enum SystemdError {
    #[error(
        "systemd is not running on this machine (no /run/systemd/system); \
         portwall's systemd commands need systemd as PID 1 (use `portwall attach --cgroup` elsewhere)"
    )]
    NotBooted,

    #[error(
        "systemd {0} cannot attach pinned filters (IPEgressFilterPath= came in systemd 243); \
         upgrade systemd, or attach with `portwall attach`"
    )]
    TooOld(u32),

    #[error("cannot run `{command}`: {source}; is systemd installed (systemctl in PATH)?")]
    Spawn {
        command: String,
        source: std::io::Error,
    },

    #[error("`{command}` failed ({status}){}{}", colon(stderr), hint_suffix(hint))]
    Command {
        command: String,
        status: String,
        stderr: String,
        /// What to look at next, e.g. the journal of the unit.
        hint: String,
    },

    #[error(
        "unexpected output from `{command}`: {detail}; please report this with your systemd version"
    )]
    Output { command: String, detail: String },

    #[error("invalid unit name `{unit}`: {reason}")]
    InvalidUnit { unit: String, reason: String },

    #[error(
        "{unit} has no cgroup to filter: only service, socket, slice, scope, mount and swap units can be filtered"
    )]
    NoCgroupUnit { unit: String },

    #[error(
        "systemd knows no unit {0}; check the name with `systemctl list-units --all` or `systemctl list-unit-files`"
    )]
    NoSuchUnit(String),

    #[error(
        "{unit} is not running ({state}), so it has no cgroup; start it first: systemctl start {unit}"
    )]
    NotRunning { unit: String, state: String },

    #[error(
        "no cgroup2 file system is mounted (none in /proc/self/mountinfo); mount one: mount -t cgroup2 none /sys/fs/cgroup"
    )]
    NoCgroup2,

    #[error(
        "{unit}'s cgroup {path} does not exist; is portwall running in another cgroup namespace than systemd?"
    )]
    CgroupMissing { unit: String, path: PathBuf },

    #[error(
        "filter `{filter}` is already used by {users}; pass --name {base} to share it on purpose, or another --name",
        base = filter.as_str().rsplit_once('-').map_or(filter.as_str(), |(b, _)| b)
    )]
    NameInUse { filter: FilterName, users: String },

    #[error(
        "a filter named `{filter}` is loaded ({pin}) but not managed by portwall@{filter}.service \
         (no {config}); unload it (`portwall unload {filter}`) or pick another --name"
    )]
    NotManaged {
        filter: FilterName,
        pin: PathBuf,
        config: PathBuf,
    },

    #[error(
        "protect pins filters where portwall@.service loads them ({expected}), not in {given}; \
         drop --bpffs / PORTWALL_BPFFS"
    )]
    CustomBpffs { given: PathBuf, expected: PathBuf },

    #[error(
        "the portwall binary's path {0} cannot be written in a unit file; install portwall at {default}",
        default = super::DEFAULT_BINARY
    )]
    BinaryPath(PathBuf),

    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },

    #[error(transparent)]
    Config(#[from] ConfigError),

    #[error("cannot unload filter `{name}`: {source}")]
    Unload {
        name: FilterName,
        source: Box<crate::filters::FilterError>,
    },

    #[error(
        "{source}\nportwall put back what it had changed ({undone}); fix the cause and run it again"
    )]
    RolledBack {
        source: Box<SystemdError>,
        undone: String,
    },

    #[error(
        "{source}\nputting the previous files back failed too: {rollback}; \
         check the files above and `systemctl status 'portwall@*'`"
    )]
    RollbackFailed {
        source: Box<SystemdError>,
        rollback: Box<SystemdError>,
    },
}

impl SystemdError {
    /// An I/O error on `path` while doing `action`.
    pub fn io(
        action: &'static str,
        path: &std::path::Path,
        source: std::io::Error,
    ) -> SystemdError {
        SystemdError::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    }
}

fn colon(stderr: &str) -> String {
    let trimmed = stderr.trim();
    if trimmed.is_empty() {
        String::new()
    } else {
        format!(": {trimmed}")
    }
}

fn hint_suffix(hint: &str) -> String {
    if hint.is_empty() {
        String::new()
    } else {
        format!("; {hint}")
    }
}
