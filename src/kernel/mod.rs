//! The thin layer over aya that loads programs into the kernel and
//! test-runs them; the only part of portwall's compiler path that makes
//! system calls.

pub mod attach;
pub mod cgroup;
mod error;
mod load;
pub mod ringbuf;
pub mod sys;
mod test_run;

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};

pub use attach::{AttachError, Direction};
pub use cgroup::{CgroupError, TempCgroup};
pub use error::{KernelError, PRIVILEGE_HINT};
pub use load::{LoadedFilter, load, load_with_pins};
pub use test_run::{ETH_HLEN, TestRunOutput, test_run, test_run_pinned, test_run_program};

/// The environment variable that turns skipped privileged tests into
/// failures (set it in CI, where the tests must really run).
pub const REQUIRE_PRIVILEGED_ENV: &str = "PORTWALL_REQUIRE_PRIVILEGED_TESTS";

/// Checks whether this process may load a cgroup_skb program, by loading
/// the smallest one (`r0 = 1; exit`) and unloading it again.
///
/// It issues bpf(2) directly instead of going through the crate's
/// assembler, ELF writer and aya, so that a bug there fails tests instead
/// of skipping them. `Err` explains why not, in a sentence.
pub fn privileged() -> Result<(), String> {
    match probe_load() {
        Ok(()) => Ok(()),
        Err(err) if err.raw_os_error() == Some(libc::EPERM) => Err(format!(
            "BPF_PROG_LOAD was refused with EPERM: {PRIVILEGE_HINT}"
        )),
        Err(err) if err.raw_os_error() == Some(libc::ENOSYS) => {
            Err(format!("this kernel has no bpf(2) system call ({err})"))
        }
        Err(err) => Err(format!(
            "loading a minimal cgroup_skb program failed ({err}); the kernel may lack cgroup BPF support"
        )),
    }
}

/// For privileged tests: returns `true` when BPF can be loaded here.
/// Otherwise prints `TEST: skipped: REASON` and returns `false`, or, when
/// `PORTWALL_REQUIRE_PRIVILEGED_TESTS=1`, panics with the reason.
pub fn require_privileges_or_skip(test_name: &str) -> bool {
    match privileged() {
        Ok(()) => true,
        Err(reason) => {
            skip_or_fail(test_name, &reason);
            false
        }
    }
}

/// Skips a test for `reason` (printing it), or panics if skips are not
/// allowed (`PORTWALL_REQUIRE_PRIVILEGED_TESTS=1`). For privileged tests
/// whose requirement goes beyond [`privileged`], such as `bpftool`.
pub fn skip_or_fail(test_name: &str, reason: &str) {
    if std::env::var(REQUIRE_PRIVILEGED_ENV).as_deref() == Ok("1") {
        panic!("{test_name}: cannot skip ({REQUIRE_PRIVILEGED_ENV}=1): {reason}");
    }
    eprintln!("{test_name}: skipped: {reason}");
}

/// The leading fields of the kernel's `union bpf_attr` for
/// `BPF_PROG_LOAD`; the kernel zero-fills the fields we do not pass.
#[repr(C)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
}

fn probe_load() -> io::Result<()> {
    const BPF_PROG_LOAD: libc::c_long = 5;
    const BPF_PROG_TYPE_CGROUP_SKB: u32 = 8;
    // r0 = 1 (b7 00 .. 01), exit (95).
    const INSNS: [u64; 2] = [
        u64::from_le_bytes([0xb7, 0, 0, 0, 1, 0, 0, 0]),
        u64::from_le_bytes([0x95, 0, 0, 0, 0, 0, 0, 0]),
    ];
    let license = c"GPL";
    let attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_SKB,
        insn_cnt: INSNS.len() as u32,
        insns: INSNS.as_ptr() as u64,
        license: license.as_ptr() as u64,
        log_level: 0,
        log_size: 0,
        log_buf: 0,
        kern_version: 0,
        prog_flags: 0,
    };
    // SAFETY: `attr` is a valid, initialised prefix of `union bpf_attr`
    // whose pointers outlive the call; the size passed is its exact size.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_LOAD,
            &attr as *const ProgLoadAttr,
            std::mem::size_of::<ProgLoadAttr>(),
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = i32::try_from(fd).map_err(|_| io::Error::other("bpf(2) returned an invalid fd"))?;
    // SAFETY: the kernel just returned this fd to us and nothing else owns
    // it; dropping the OwnedFd closes it and unloads the probe.
    drop(unsafe { OwnedFd::from_raw_fd(fd) });
    Ok(())
}
