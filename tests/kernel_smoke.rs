//! End to end through the kernel: assemble, write the ELF object, load it
//! with aya (and bpftool), test-run frames and check verdicts.
//!
//! Privileged: every test builds its programs first and only then checks
//! for privileges, so unprivileged runs still exercise the assembler and
//! the ELF writer. Set `PORTWALL_REQUIRE_PRIVILEGED_TESTS=1` to turn skips
//! into failures.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use portwall::compiler::asm::{AluOp, Asm, Cond, Program, Reg, Width};
use portwall::compiler::elf::{ObjectOptions, write_object};
use portwall::kernel::{self, KernelError};

/// `__sk_buff` field offsets (include/uapi/linux/bpf.h).
const SKB_PROTOCOL: i16 = 16;
const SKB_DATA: i16 = 76;
const SKB_DATA_END: i16 = 80;

const FORWARD: u32 = 1;
const DROP: u32 = 0;

fn elf(program: &Program) -> Vec<u8> {
    write_object(program, &ObjectOptions::default()).expect("object writes")
}

fn load(program: &Program) -> kernel::LoadedFilter {
    kernel::load(&elf(program), "portwall").expect("program loads")
}

fn verdict(filter: &kernel::LoadedFilter, frame: &[u8]) -> u32 {
    kernel::test_run(filter, frame, 1)
        .expect("test run succeeds")
        .retval
}

/// `r0 = 1; exit`
fn forward_all() -> Program {
    let mut asm = Asm::new();
    asm.mov64_imm(Reg::R0, 1).exit();
    asm.finish().expect("assembles")
}

/// Drops IPv4, forwards everything else, by `skb->protocol`.
fn drop_ipv4() -> Program {
    let mut asm = Asm::new();
    let drop = asm.label("drop");
    asm.load(Width::U32, Reg::R6, Reg::R1, SKB_PROTOCOL)
        // htons(ETH_P_IP) as the little-endian kernel stores it.
        .jump(Cond::Eq, Reg::R6, 0x0008, drop)
        .mov64_imm(Reg::R0, 1)
        .exit();
    asm.bind(drop);
    asm.mov64_imm(Reg::R0, 0).exit();
    asm.finish().expect("assembles")
}

/// Reads the IPv4 protocol byte by direct packet access and drops UDP;
/// a packet too short to hold it is dropped too.
fn drop_udp_by_packet_read() -> Program {
    let mut asm = Asm::new();
    let drop = asm.label("drop");
    asm.load(Width::U32, Reg::R2, Reg::R1, SKB_DATA)
        .load(Width::U32, Reg::R3, Reg::R1, SKB_DATA_END)
        .mov64_reg(Reg::R4, Reg::R2)
        .alu64(AluOp::Add, Reg::R4, 10)
        .jump(Cond::Gt, Reg::R4, Reg::R3, drop)
        .load(Width::U8, Reg::R5, Reg::R2, 9)
        .jump(Cond::Eq, Reg::R5, 17, drop)
        .mov64_imm(Reg::R0, 1)
        .exit();
    asm.bind(drop);
    asm.mov64_imm(Reg::R0, 0).exit();
    asm.finish().expect("assembles")
}

/// Never sets r0: the verifier refuses to return an uninitialised value.
fn exit_without_r0() -> Program {
    let mut asm = Asm::new();
    asm.exit();
    asm.finish().expect("assembles")
}

/// Reads packet data without a bounds check.
fn unchecked_packet_read() -> Program {
    let mut asm = Asm::new();
    asm.load(Width::U32, Reg::R2, Reg::R1, SKB_DATA)
        .load(Width::U8, Reg::R0, Reg::R2, 0)
        .mov64_imm(Reg::R0, 1)
        .exit();
    asm.finish().expect("assembles")
}

fn ethernet(ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut frame = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2];
    frame.extend_from_slice(&ethertype.to_be_bytes());
    frame.extend_from_slice(payload);
    frame
}

/// An IPv4 frame carrying `proto` with an 8-byte transport header.
fn ipv4(proto: u8) -> Vec<u8> {
    let mut ip = vec![
        0x45, 0, 0, 28, 0, 0, 0x40, 0, 64, proto, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
    ];
    ip.extend_from_slice(&[0x30, 0x39, 0, 53, 0, 8, 0, 0]);
    ethernet(0x0800, &ip)
}

/// An IPv6 frame carrying UDP.
fn ipv6_udp() -> Vec<u8> {
    let mut ip = vec![0x60, 0, 0, 0, 0, 8, 17, 64];
    ip.extend_from_slice(&[0; 32]);
    ip.extend_from_slice(&[0x30, 0x39, 0, 53, 0, 8, 0, 0]);
    ethernet(0x86dd, &ip)
}

#[test]
fn forward_all_forwards() {
    let program = forward_all();
    if !kernel::require_privileges_or_skip("forward_all_forwards") {
        return;
    }
    let filter = load(&program);
    assert_eq!(filter.name(), "portwall");
    assert_eq!(verdict(&filter, &ipv4(6)), FORWARD);
    assert_eq!(verdict(&filter, &ipv6_udp()), FORWARD);
    let many = kernel::test_run(&filter, &ipv4(17), 1000).expect("repeated run");
    assert_eq!(many.retval, FORWARD);
}

#[test]
fn loads_without_expected_attach_type() {
    let program = forward_all();
    if !kernel::require_privileges_or_skip("loads_without_expected_attach_type") {
        return;
    }
    let filter = load(&program);
    let skb = filter.program().expect("is cgroup_skb");
    // No expected attach type: attachable for ingress and egress alike.
    assert!(skb.expected_attach_type().is_none());
}

#[test]
fn aya_ebpf_load_accepts_the_object() {
    let bytes = elf(&drop_ipv4());
    if !kernel::require_privileges_or_skip("aya_ebpf_load_accepts_the_object") {
        return;
    }
    // Straight through aya's default entry point, without our wrapper.
    let mut ebpf = aya::Ebpf::load(&bytes).expect("aya parses the object");
    let program: &mut aya::programs::CgroupSkb = ebpf
        .program_mut("portwall")
        .expect("program present")
        .try_into()
        .expect("cgroup_skb");
    program.load().expect("verifier accepts");
}

#[test]
fn drop_ipv4_by_protocol() {
    let program = drop_ipv4();
    if !kernel::require_privileges_or_skip("drop_ipv4_by_protocol") {
        return;
    }
    let filter = load(&program);
    assert_eq!(verdict(&filter, &ipv4(6)), DROP);
    assert_eq!(verdict(&filter, &ipv4(17)), DROP);
    assert_eq!(verdict(&filter, &ipv6_udp()), FORWARD);
}

#[test]
fn direct_packet_access_reads_the_ip_header() {
    let program = drop_udp_by_packet_read();
    if !kernel::require_privileges_or_skip("direct_packet_access_reads_the_ip_header") {
        return;
    }
    let filter = load(&program);
    assert_eq!(verdict(&filter, &ipv4(6)), FORWARD);
    assert_eq!(verdict(&filter, &ipv4(17)), DROP);
    assert_eq!(verdict(&filter, &ipv4(1)), FORWARD);
    // A non-IP frame with no payload: the bounds check fails, so drop.
    assert_eq!(verdict(&filter, &ethernet(0x0806, &[])), DROP);
}

#[test]
fn verifier_rejections_keep_the_log() {
    let cases = [
        ("exit without r0", exit_without_r0(), "R0 !read_ok"),
        (
            "unchecked packet read",
            unchecked_packet_read(),
            "invalid access to packet",
        ),
    ];
    let objects: Vec<_> = cases
        .iter()
        .map(|(what, program, needle)| (*what, elf(program), *needle))
        .collect();
    if !kernel::require_privileges_or_skip("verifier_rejections_keep_the_log") {
        return;
    }
    for (what, bytes, needle) in objects {
        let err = kernel::load(&bytes, "portwall").expect_err(what);
        let log = err
            .verifier_log()
            .unwrap_or_else(|| panic!("{what}: {err}"));
        assert!(log.contains(needle), "{what}: log lacks {needle:?}:\n{log}");
        let message = err.to_string();
        assert!(
            message.starts_with("the kernel verifier rejected program `portwall`"),
            "{what}: {message}"
        );
        assert!(message.contains("--verbose"), "{what}: {message}");
    }
}

#[test]
fn missing_program_is_named() {
    let bytes = elf(&forward_all());
    if !kernel::require_privileges_or_skip("missing_program_is_named") {
        return;
    }
    let err = kernel::load(&bytes, "other").expect_err("no such program");
    assert!(
        matches!(&err, KernelError::ProgramNotFound { available, .. } if available == &["portwall"]),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "the BPF object has no program named `other` (it has: portwall)"
    );
}

#[test]
fn unprivileged_load_says_what_to_do() {
    let bytes = elf(&forward_all());
    // The mirror image of the other tests: only meaningful without
    // privileges (run the test binary as an unprivileged user to cover it).
    if kernel::privileged().is_ok() {
        eprintln!("unprivileged_load_says_what_to_do: skipped: running privileged");
        return;
    }
    let err = kernel::load(&bytes, "portwall").expect_err("must be refused");
    assert!(
        matches!(
            err,
            KernelError::PermissionDenied {
                call: "BPF_PROG_LOAD",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("CAP_BPF"), "{err}");
}

#[test]
fn frames_the_kernel_refuses_give_a_clear_error() {
    let program = forward_all();
    if !kernel::require_privileges_or_skip("frames_the_kernel_refuses_give_a_clear_error") {
        return;
    }
    let filter = load(&program);
    let short_ipv4 = &ipv4(6)[..14 + 19];
    let short_ipv6 = &ipv6_udp()[..14 + 39];
    let cases: [(&[u8], &str); 3] = [
        (&[0u8; 13], "shorter than the 14-byte Ethernet header"),
        (short_ipv4, "IPv4 frame needs at least 20 bytes"),
        (short_ipv6, "IPv6 frame needs at least 40 bytes"),
    ];
    for (frame, hint) in cases {
        match kernel::test_run(&filter, frame, 1) {
            Err(err @ KernelError::FrameRejected { .. }) => {
                let message = err.to_string();
                assert!(message.contains(hint), "{message}");
                assert!(
                    message.starts_with(&format!(
                        "the kernel refused to test-run a {}-byte frame",
                        frame.len()
                    )),
                    "{message}"
                );
            }
            other => panic!(
                "{}-byte frame: expected FrameRejected, got {other:?}",
                frame.len()
            ),
        }
    }
    // The smallest frames it does take.
    assert_eq!(verdict(&filter, &ipv4(6)[..14 + 20]), FORWARD);
    assert_eq!(verdict(&filter, &ipv6_udp()[..14 + 40]), FORWARD);
}

/// Removes a file (a bpffs pin, a temporary object) when dropped, so a
/// failing assertion does not leave it behind.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        // Already gone is fine; anything else is worth a note.
        if let Err(err) = std::fs::remove_file(&self.0)
            && err.kind() != std::io::ErrorKind::NotFound
        {
            eprintln!("could not remove {}: {err}", self.0.display());
        }
    }
}

fn unique_name() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("portwall-smoke-{}-{n}", std::process::id())
}

fn find_on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

#[test]
fn bpftool_loads_and_pins_the_object() {
    const TEST: &str = "bpftool_loads_and_pins_the_object";
    let bytes = elf(&drop_udp_by_packet_read());
    if !kernel::require_privileges_or_skip(TEST) {
        return;
    }
    let Some(bpftool) = find_on_path("bpftool") else {
        kernel::skip_or_fail(TEST, "bpftool is not on PATH (apt-get install bpftool)");
        return;
    };
    // bpftool mounts a bpffs on /sys/fs/bpf itself when none is there.
    let bpffs = Path::new("/sys/fs/bpf");

    let name = unique_name();
    let object = RemoveOnDrop(std::env::temp_dir().join(format!("{name}.o")));
    std::fs::write(&object.0, &bytes).expect("temporary object writes");
    let pin = RemoveOnDrop(bpffs.join(&name));

    let load = Command::new(&bpftool)
        .arg("prog")
        .arg("load")
        .arg(&object.0)
        .arg(&pin.0)
        .args(["type", "cgroup/skb"])
        .output()
        .expect("bpftool runs");
    assert!(
        load.status.success(),
        "bpftool prog load failed: {}",
        String::from_utf8_lossy(&load.stderr)
    );

    let show = Command::new(&bpftool)
        .args(["prog", "show", "pinned"])
        .arg(&pin.0)
        .output()
        .expect("bpftool runs");
    let shown = String::from_utf8_lossy(&show.stdout);
    assert!(
        show.status.success(),
        "{}",
        String::from_utf8_lossy(&show.stderr)
    );
    assert!(shown.contains("cgroup_skb"), "{shown}");
    assert!(shown.contains("name portwall"), "{shown}");

    let pin_path = pin.0.clone();
    drop(pin);
    assert!(
        !pin_path.exists(),
        "pin {} was not removed",
        pin_path.display()
    );
}
