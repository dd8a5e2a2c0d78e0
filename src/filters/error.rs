//! Errors of the filter lifecycle, each with what to do about it.

use super::FilterName;
use crate::compiler::CompileError;
use crate::kernel::KernelError;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum FilterError {
    #[error("{0} is not a bpffs mount; pass the directory where bpffs is mounted (--bpffs DIR)")]
    NotBpffs(PathBuf),
    #[error("cannot mount bpffs at {path}: {source}; mount it yourself: mount -t bpf bpf {path}")]
    MountBpffs {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot {action} {path}: {error}{}", access_hint(error))]
    Io {
        action: &'static str,
        path: PathBuf,
        error: std::io::Error,
    },
    #[error(
        "a filter named `{0}` is already loaded; add --replace to change it live, or unload it first"
    )]
    Exists(FilterName),
    #[error("no filter named `{name}` in {dir}; `portwall list` shows the loaded ones")]
    NotFound { name: FilterName, dir: PathBuf },
    #[error(
        "{path} exists but is not a portwall filter ({reason}); portwall leaves it alone: remove it yourself or pick another name"
    )]
    NotPortwall { path: PathBuf, reason: String },
    #[error(
        "refusing to use the pin directory {path}: {problem}; make it root's and not writable by others (chown root: {path} && chmod 700 {path})"
    )]
    UnsafePinDir { path: PathBuf, problem: String },
    #[error(
        "filter `{0}` cannot be traced: it was loaded by an older portwall; reload it with this version (`portwall load {0} EXPR --replace`, or `systemctl reload portwall@{0}` for a filter `portwall protect` made)"
    )]
    NoTraceHook(FilterName),
    #[error(
        "filter `{name}` is attached to {cgroup} for {attached}, and the new filter's local_/remote_ names are resolved for {resolved}: there they would mean the opposite; detach it first, or load the new filter under another name"
    )]
    AttachedOtherWay {
        name: FilterName,
        cgroup: String,
        attached: crate::lang::ir::Direction,
        resolved: crate::lang::ir::Direction,
    },
    #[error(
        "filter `{name}` was loaded for {loaded} and cannot be attached for {requested} (its local_/remote_ names and counters are resolved for {loaded}); load it for {requested} under another name: `portwall load NAME --direction {requested} ...`"
    )]
    WrongDirection {
        name: FilterName,
        loaded: crate::lang::ir::Direction,
        requested: crate::lang::ir::Direction,
    },
    #[error("cannot list cgroup attachments: {source}")]
    Attachments {
        source: Box<crate::kernel::AttachError>,
    },
    #[error(transparent)]
    Compile(#[from] CompileError),
    #[error(transparent)]
    Kernel(#[from] KernelError),
    #[error(
        "{call} failed for filter `{name}`: {source}{}",
        privilege_hint(source)
    )]
    Bpf {
        call: &'static str,
        name: FilterName,
        source: std::io::Error,
    },
    #[error("{call} failed for filter `{name}`: {message}")]
    Aya {
        call: &'static str,
        name: FilterName,
        message: String,
    },
}

impl FilterError {
    pub fn io(action: &'static str, path: &Path, error: std::io::Error) -> FilterError {
        FilterError::Io {
            action,
            path: path.to_path_buf(),
            error,
        }
    }
}

fn privilege_hint(error: &std::io::Error) -> String {
    if error.kind() == std::io::ErrorKind::PermissionDenied {
        format!(" ({})", crate::kernel::PRIVILEGE_HINT)
    } else {
        String::new()
    }
}

fn access_hint(error: &std::io::Error) -> &'static str {
    match error.kind() {
        std::io::ErrorKind::PermissionDenied => {
            " (filters live in bpffs, which only root may change: run portwall as root)"
        }
        _ => "",
    }
}
