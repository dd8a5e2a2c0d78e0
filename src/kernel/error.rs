//! Errors from the kernel layer, each naming what failed and what to do.

use std::io;

use aya::EbpfError;
use aya::programs::ProgramError;

/// What to tell a user whose BPF call got `EPERM`.
pub const PRIVILEGE_HINT: &str = "loading and test-running BPF programs needs root, or the \
CAP_BPF and CAP_NET_ADMIN capabilities (CAP_SYS_ADMIN before Linux 5.8): run portwall with \
sudo. On kernels before 5.11 BPF memory is also charged to RLIMIT_MEMLOCK: raise it \
(`ulimit -l unlimited`, or LimitMEMLOCK=infinity in a systemd unit)";

/// A failure while loading or running a program in the kernel.
#[derive(thiserror::Error, Debug)]
pub enum KernelError {
    /// aya could not parse the object file or set it up (no program was
    /// handed to the kernel yet).
    #[error("could not prepare the BPF object for loading")]
    Object(#[source] Box<EbpfError>),

    /// The object has no program of that name.
    #[error(
        "the BPF object has no program named `{name}` (it has: {})",
        list(available)
    )]
    ProgramNotFound {
        /// The name asked for.
        name: String,
        /// The programs the object does have.
        available: Vec<String>,
    },

    /// The program exists but is not a cgroup_skb program.
    #[error("program `{name}` is a {found} program, not a cgroup_skb program")]
    WrongProgramType {
        /// The program's name.
        name: String,
        /// Its type, as aya describes it.
        found: String,
    },

    /// `BPF_PROG_LOAD` failed after the verifier looked at the program.
    #[error("{}", rejected(name, io_error, verifier_log))]
    VerifierRejected {
        /// The program's name.
        name: String,
        /// The error `BPF_PROG_LOAD` returned.
        io_error: io::Error,
        /// The verifier's log; it says which instruction failed and why.
        verifier_log: String,
    },

    /// The kernel said `EPERM`: not root, or missing capabilities.
    #[error("{call} was refused with EPERM: {PRIVILEGE_HINT}")]
    PermissionDenied {
        /// The bpf(2) command that was refused.
        call: &'static str,
        /// The error it returned.
        io_error: io::Error,
    },

    /// `BPF_PROG_TEST_RUN` refused the input frame (`EINVAL`).
    #[error("the kernel refused to test-run a {len}-byte frame: {hint} ({io_error})")]
    FrameRejected {
        /// Length of the frame passed.
        len: usize,
        /// The likely reason, worked out from the frame.
        hint: String,
        /// The error the kernel returned.
        io_error: io::Error,
    },

    /// Any other failure of an aya program operation.
    #[error("{call} failed")]
    Program {
        /// What portwall was doing.
        call: &'static str,
        /// aya's error.
        #[source]
        source: ProgramError,
    },

    /// The loaded object lacks a map its compiled filter needs.
    #[error("the loaded program has no map `{0}`")]
    MissingMap(String),

    /// Filling a set table failed.
    #[error("could not fill the set table `{name}`")]
    MapUpdate {
        name: String,
        #[source]
        io_error: io::Error,
    },
}

impl KernelError {
    /// The verifier log, if the verifier rejected the program.
    pub fn verifier_log(&self) -> Option<&str> {
        match self {
            KernelError::VerifierRejected { verifier_log, .. } => Some(verifier_log),
            _ => None,
        }
    }
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "no programs".to_string()
    } else {
        names.join(", ")
    }
}

fn rejected(name: &str, io_error: &io::Error, log: &str) -> String {
    let log = log.trim_end();
    if log.is_empty() {
        format!(
            "the kernel refused to load program `{name}` ({io_error}) and wrote no verifier log"
        )
    } else if let Some(limit) = complexity_limit(log) {
        // Not a bug: the verifier bounds how much of a program it explores,
        // and a big enough filter exceeds that.
        format!(
            "the filter is too large for the kernel's verifier, which says: {limit} \
             ({io_error}); make it smaller: see docs/limits.md for the limits (about 8000 \
             comparisons joined by && or || on one path)"
        )
    } else {
        // The log is long; the CLI prints it under --verbose.
        format!(
            "the kernel verifier rejected program `{name}` ({io_error}); every filter portwall \
             accepts should load, so this is a bug in portwall: please report it with the filter \
             and the verifier's log (run with --verbose to see it)"
        )
    }
}

/// The verifier's line saying that a program exceeded one of its
/// complexity limits (`BPF_COMPLEXITY_LIMIT_JMP_SEQ`, the million
/// processed instructions, ...), if that is why it refused.
fn complexity_limit(log: &str) -> Option<&str> {
    log.lines().map(str::trim).find(|line| {
        line.contains("is too complex")
            || line.starts_with("BPF program is too large")
            || line.contains("too many states")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn complexity_limits_are_not_reported_as_bugs() {
        let e = io::Error::from_raw_os_error(libc::EFAULT);
        let log = "0: R1=ctx()\n10: (15) if r8 == 0x1fb9 goto pc+7878\n\
                   The sequence of 8193 jumps is too complex.\nprocessed 8487 insns";
        let text = rejected("portwall", &e, log);
        assert!(
            text.contains("too large for the kernel's verifier"),
            "{text}"
        );
        assert!(
            text.contains("The sequence of 8193 jumps is too complex."),
            "{text}"
        );
        assert!(!text.contains("bug"), "{text}");
        let log = "BPF program is too large. Processed 1000001 insn\n";
        assert!(rejected("p", &e, log).contains("too large for the kernel's verifier"));
        let other = rejected("p", &e, "0: R1=ctx()\ninvalid access to packet\n");
        assert!(other.contains("this is a bug in portwall"), "{other}");
    }
}
