//! Running a loaded program on one frame with `BPF_PROG_TEST_RUN`.

use aya::programs::ProgramError;
use aya::sys::SyscallError;
use aya::{TestRun, TestRunOptions};

use super::error::KernelError;
use super::load::LoadedFilter;

/// Length of the Ethernet header the kernel expects in front of the packet.
pub const ETH_HLEN: usize = 14;

/// The result of a test run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TestRunOutput {
    /// The program's return value: 1 forwards the packet, 0 drops it.
    pub retval: u32,
    /// Average time of one run in nanoseconds, as the kernel measured it
    /// (including its own loop overhead of a few dozen nanoseconds).
    pub duration_ns: u32,
}

/// Runs `filter` on `frame` `repeat` times in the kernel (`0` counts as 1).
///
/// `frame` is a 14-byte Ethernet header followed by the IP packet: the
/// kernel takes `skb->protocol` from bytes 12-13 and strips the header, so
/// the program sees `skb->data` at the IP header as it would in a cgroup.
/// Frames the kernel refuses (under 14 bytes, IPv4 with under 20 IP bytes,
/// IPv6 with under 40, or larger than about a page) give
/// [`KernelError::FrameRejected`].
pub fn test_run(
    filter: &LoadedFilter,
    frame: &[u8],
    repeat: u32,
) -> Result<TestRunOutput, KernelError> {
    test_run_program(filter.program()?, frame, repeat)
}

/// As [`test_run`], for a program pinned in bpffs (such as a managed
/// filter's dispatcher).
pub fn test_run_pinned(
    path: &std::path::Path,
    frame: &[u8],
    repeat: u32,
) -> Result<TestRunOutput, KernelError> {
    // The attach type only matters for attaching, which this never does.
    let program =
        aya::programs::CgroupSkb::from_pin(path, aya::programs::CgroupSkbAttachType::Egress)
            .map_err(|source| KernelError::Program {
                call: "BPF_OBJ_GET",
                source,
            })?;
    test_run_program(&program, frame, repeat)
}

/// As [`test_run`], for any loaded cgroup_skb program.
pub fn test_run_program(
    program: &aya::programs::CgroupSkb,
    frame: &[u8],
    repeat: u32,
) -> Result<TestRunOutput, KernelError> {
    let opts = TestRunOptions {
        data_in: Some(frame),
        repeat,
        ..TestRunOptions::default()
    };
    match program.test_run(opts) {
        Ok(result) => Ok(TestRunOutput {
            retval: result.return_value,
            // The kernel reports a u32 average; aya widened it to a Duration.
            duration_ns: u32::try_from(result.duration.as_nanos()).unwrap_or(u32::MAX),
        }),
        Err(ProgramError::SyscallError(SyscallError { io_error, .. }))
            if io_error.raw_os_error() == Some(libc::EINVAL) =>
        {
            Err(KernelError::FrameRejected {
                len: frame.len(),
                hint: frame_hint(frame),
                io_error,
            })
        }
        Err(ProgramError::SyscallError(SyscallError { io_error, .. }))
            if io_error.raw_os_error() == Some(libc::EPERM) =>
        {
            Err(KernelError::PermissionDenied {
                call: "BPF_PROG_TEST_RUN",
                io_error,
            })
        }
        Err(source) => Err(KernelError::Program {
            call: "BPF_PROG_TEST_RUN",
            source,
        }),
    }
}

/// The likely reason the kernel refused `frame`, from the rules of
/// `net/bpf/test_run.c`.
fn frame_hint(frame: &[u8]) -> String {
    // PAGE_SIZE minus the skb headroom and shared-info tailroom on x86-64
    // with 4 KiB pages; only used to word the hint.
    const ROUGH_MAX: usize = 3_700;
    if frame.len() < ETH_HLEN {
        return format!("it is shorter than the {ETH_HLEN}-byte Ethernet header");
    }
    let ethertype = u16::from_be_bytes([frame[12], frame[13]]);
    let ip_len = frame.len() - ETH_HLEN;
    match ethertype {
        0x0800 if ip_len < 20 => format!(
            "an IPv4 frame needs at least 20 bytes after the Ethernet header, this one has {ip_len}"
        ),
        0x86dd if ip_len < 40 => format!(
            "an IPv6 frame needs at least 40 bytes after the Ethernet header, this one has {ip_len}"
        ),
        _ if frame.len() > ROUGH_MAX => {
            "it is larger than a test run accepts (about one page minus skb overhead)".to_string()
        }
        _ => "the kernel gave no more detail (EINVAL)".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(ethertype: u16, ip_len: usize) -> Vec<u8> {
        let mut frame = vec![0u8; ETH_HLEN + ip_len];
        frame[12..14].copy_from_slice(&ethertype.to_be_bytes());
        frame
    }

    #[test]
    fn hints_name_the_rule_that_was_broken() {
        assert!(frame_hint(&[0; 13]).contains("shorter than the 14-byte"));
        assert!(frame_hint(&frame(0x0800, 19)).contains("IPv4 frame needs at least 20"));
        assert!(frame_hint(&frame(0x86dd, 39)).contains("IPv6 frame needs at least 40"));
        assert!(frame_hint(&frame(0x0800, 5000)).contains("larger"));
        assert!(frame_hint(&frame(0x0800, 20)).contains("no more detail"));
    }
}
