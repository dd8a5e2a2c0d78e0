//! The `portwall` binary as users run it: exit codes, output, errors.

mod common;

use common::cli::portwall;
use common::packets;
use portwall::packet::Packet;
use std::io::Write;
use std::process::{Command, Output, Stdio};

const EXAMPLE: &str = "icmp || (udp && dst_port == 53) || (tcp && dst_port == 80)";

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn hex(p: &Packet) -> String {
    p.data.iter().map(|b| format!("{b:02x}")).collect()
}

fn temp_file(name: &str, contents: &[u8]) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("portwall-cli-{}-{name}", std::process::id()));
    std::fs::write(&path, contents).unwrap();
    path
}

#[test]
fn check_prints_the_canonical_form() {
    let o = portwall(&["check", "icmp or (udp and dst_port==0x35) # dns"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "icmp || (udp && dst_port == 53)\n");
    let o = portwall(&["check", "--json", "tcp && dst_port == 80"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["canonical"], "tcp && dst_port == 80");
    assert_eq!(v["variables"], serde_json::json!(["tcp", "dst_port"]));
}

#[test]
fn check_errors_exit_1_with_a_caret() {
    let o = portwall(&["check", "tcp && dst_port = 80"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(o.stdout.is_empty());
    let err = stderr(&o);
    assert!(err.starts_with("error: `=` is assignment"), "{err}");
    assert!(
        err.contains("1 | tcp && dst_port = 80\n  |                 ^\n"),
        "{err}"
    );
}

#[test]
fn filters_come_from_files_and_stdin() {
    let path = temp_file("f.filter", b"# allow DNS\nudp &&\n  dst_port == 53\n");
    let o = portwall(&["check", "-f", path.to_str().unwrap()]);
    assert_eq!(stdout(&o), "udp && dst_port == 53\n", "{}", stderr(&o));

    let bad = temp_file("bad.filter", b"udp &&\n  dst_prot == 53\n");
    let o = portwall(&["check", "-f", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains(&format!("--> {}:2:3", bad.display())),
        "{}",
        stderr(&o)
    );

    let binary = temp_file("bin.filter", b"tcp \xff\xfe");
    let o = portwall(&["check", "-f", binary.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("not valid UTF-8"), "{}", stderr(&o));

    let mut child = Command::new(env!("CARGO_BIN_EXE_portwall"))
        .args(["check", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"not tcp").unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(stdout(&o), "!tcp\n");
    for p in [path, bad, binary] {
        let _ = std::fs::remove_file(p);
    }
}

#[test]
fn a_one_megabyte_filter_is_checked_quickly() {
    let mut text = String::from("0");
    while text.len() < 1 << 20 {
        text.push_str(" || (tcp && dst_port == 8080)");
    }
    let path = temp_file("big.filter", text.as_bytes());
    let started = std::time::Instant::now();
    let o = portwall(&["check", "-f", path.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(started.elapsed().as_secs() < 10);
    let deep = temp_file("deep.filter", "(".repeat(1 << 20).as_bytes());
    let o = portwall(&["check", "-f", deep.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("nests too deeply"), "{}", stderr(&o));
    let _ = std::fs::remove_file(path);
    let _ = std::fs::remove_file(deep);
}

#[test]
fn test_prints_index_verdict_and_summary() {
    let dns = packets::ipv4_udp(packets::SRC4, packets::DST4, 40000, 53);
    let https = packets::ipv4_tcp(packets::SRC4, packets::DST4, 40000, 443);
    let o = portwall(&["test", EXAMPLE, "--hex", &hex(&dns), "--hex", &hex(&https)]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines[0].starts_with("1 forward IPv4 10.0.0.1:40000 -> 10.0.0.2:53 udp"),
        "{out}"
    );
    assert!(
        lines[1].starts_with("2 drop    IPv4 10.0.0.1:40000 -> 10.0.0.2:443 tcp"),
        "{out}"
    );

    let short = packets::truncate(packets::ipv4_tcp(packets::SRC4, packets::DST4, 1, 80), 30);
    let o = portwall(&["test", "dst_port == 80", "--hex", &hex(&short), "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["packets"][0]["verdict"], "drop");
    assert!(
        v["packets"][0]["malformed"]
            .as_str()
            .unwrap()
            .contains("TCP header")
    );

    let o = portwall(&["test", "tcp", "--hex", "45zz"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("--hex number 1"), "{}", stderr(&o));
}

#[test]
fn test_reads_pcap_files() {
    use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
    let header = PcapHeader {
        datalink: pcap_file::DataLink::RAW,
        ..PcapHeader::default()
    };
    let mut file = Vec::new();
    {
        let mut w = PcapWriter::with_header(&mut file, header).unwrap();
        for p in [
            packets::ipv6_udp(packets::SRC6, packets::DST6, 1, 53),
            packets::ipv6_tcp(packets::SRC6, packets::DST6, 1, 22),
        ] {
            let len = p.data.len() as u32;
            w.write_packet(&PcapPacket::new(std::time::Duration::ZERO, len, &p.data))
                .unwrap();
        }
    }
    let path = temp_file("t.pcap", &file);
    let o = portwall(&["test", EXAMPLE, "--pcap", path.to_str().unwrap()]);
    let out = stdout(&o);
    assert!(out.starts_with("1 forward IPv6"), "{out}{}", stderr(&o));
    assert!(out.contains("\n2 drop    IPv6"), "{out}");
    let _ = std::fs::remove_file(path);
}

#[test]
fn test_samples_default_to_the_example_filter() {
    let o = portwall(&["test", "--samples"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("using the example filter"));
    let out = stdout(&o);
    assert!(out.contains("forward") && out.contains("drop"), "{out}");
}

#[test]
fn kernel_test_agrees_with_the_evaluator() {
    if !common::kernel::available("kernel_test_agrees_with_the_evaluator") {
        return;
    }
    let o = portwall(&["test", "--samples", "--kernel", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["engine"], "kernel");
    let evaluator = portwall(&["test", "--samples", "--json"]);
    let e: serde_json::Value = serde_json::from_slice(&evaluator.stdout).unwrap();
    let verdicts = |v: &serde_json::Value| -> Vec<String> {
        v["packets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["verdict"].to_string())
            .collect()
    };
    assert_eq!(verdicts(&v), verdicts(&e));
}

#[test]
fn compile_writes_an_object_bpftool_loads() {
    let path = std::env::temp_dir().join(format!("portwall-cli-{}.o", std::process::id()));
    let o = portwall(&["compile", EXAMPLE, "-o", path.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(&bytes[..4], b"\x7fELF");
    let o = portwall(&["compile", "--emit", "asm", EXAMPLE]);
    let listing = stdout(&o);
    assert!(
        listing.contains("exit") && listing.contains("drop:"),
        "{listing}"
    );
    let o = portwall(&["compile", EXAMPLE]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("needs -o FILE"));

    if !common::kernel::available("compile_writes_an_object_bpftool_loads") {
        return;
    }
    if Command::new("bpftool").arg("version").output().is_err() {
        portwall::kernel::skip_or_fail(
            "compile_writes_an_object_bpftool_loads",
            "bpftool is not installed",
        );
        return;
    }
    let pin = format!("/sys/fs/bpf/portwall-cli-test-{}", std::process::id());
    struct Unpin(String);
    impl Drop for Unpin {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
    let _guard = Unpin(pin.clone());
    let o = Command::new("bpftool")
        .args([
            "prog",
            "load",
            path.to_str().unwrap(),
            &pin,
            "type",
            "cgroup/skb",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "bpftool: {}", stderr(&o));
    let o = Command::new("bpftool")
        .args(["-j", "prog", "show", "pinned", &pin])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["type"], "cgroup_skb");
    assert_eq!(v["name"], "portwall");
    let _ = std::fs::remove_file(&path);
}

#[test]
fn unprivileged_users_are_told_what_to_do() {
    use std::os::unix::process::CommandExt;
    // SAFETY: getuid has no preconditions.
    if unsafe { libc::getuid() } != 0 {
        println!("unprivileged_users_are_told_what_to_do: skipped: needs root to become nobody");
        return;
    }
    let as_nobody = |args: &[&str]| {
        // std drops the supplementary groups when it changes the uid.
        Command::new(env!("CARGO_BIN_EXE_portwall"))
            .args(args)
            .uid(65534)
            .gid(65534)
            .current_dir("/")
            .output()
            .unwrap()
    };
    let o = as_nobody(&["test", "--samples", "--kernel"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("needs root, or the CAP_BPF"),
        "{}",
        stderr(&o)
    );
    let o = as_nobody(&["run", "--", "true"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("run portwall with sudo"),
        "{}",
        stderr(&o)
    );
    let o = as_nobody(&["load", "x", "tcp", "--bpffs", "/sys/fs/bpf"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("as root") || err.contains("sudo"), "{err}");
}

#[test]
fn kernel_test_reports_packets_it_cannot_run() {
    if !common::kernel::available("kernel_test_reports_packets_it_cannot_run") {
        return;
    }
    let short = packets::truncate(packets::ipv4_tcp(packets::SRC4, packets::DST4, 1, 80), 12);
    let good = packets::ipv4_tcp(packets::SRC4, packets::DST4, 1, 80);
    let o = portwall(&[
        "test",
        "tcp",
        "--kernel",
        "--hex",
        &hex(&short),
        "--hex",
        &hex(&good),
    ]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "an unrunnable packet makes the run fail"
    );
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("1 error"), "{out}");
    assert!(lines[0].contains("needs at least 20 bytes"), "{out}");
    assert!(lines[1].starts_with("2 forward"), "{out}");
}

#[test]
fn direction_resolves_local_and_remote_names() {
    // Without a direction the checker says which flag to give.
    let o = portwall(&["check", "tcp && local_port in {80, 443}"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("error: `local_port` needs to know the direction of the packets"),
        "{err}"
    );
    assert!(
        err.contains("give `--direction ingress` or `--direction egress`"),
        "{err}"
    );
    assert!(
        err.contains("1 | tcp && local_port in {80, 443}\n  |        ^^^^^^^^^^\n"),
        "{err}"
    );

    let o = portwall(&[
        "check",
        "--direction",
        "ingress",
        "--json",
        "local_port == 80",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["canonical"], "local_port == 80");
    assert_eq!(v["variables"], serde_json::json!(["dst_port"]));
    assert_eq!(v["direction"], "ingress");
    assert_eq!(v["parses"], serde_json::json!(["network", "ports"]));
    let o = portwall(&["check", "--direction", "out", "tcp"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));

    // The same packet from 10.0.0.1:40000 to 10.0.0.2:53, judged as sent
    // and as received.
    let dns = hex(&packets::ipv4_udp(packets::SRC4, packets::DST4, 40000, 53));
    let verdict = |direction: &str, filter: &str| {
        let o = portwall(&[
            "test",
            filter,
            "--direction",
            direction,
            "--hex",
            &dns,
            "--json",
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        v["packets"][0]["verdict"].as_str().unwrap().to_string()
    };
    assert_eq!(verdict("egress", "remote_port == 53"), "forward");
    assert_eq!(verdict("ingress", "remote_port == 53"), "drop");
    assert_eq!(verdict("ingress", "local_port == 53"), "forward");
    assert_eq!(verdict("egress", "local_ip == 10.0.0.1"), "forward");
    assert_eq!(verdict("ingress", "local_ip == 10.0.0.1"), "drop");

    let o = portwall(&["compile", "--emit", "asm", "remote_port == 53"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("`remote_port` needs to know the direction"));
    let o = portwall(&[
        "compile",
        "--emit",
        "asm",
        "--direction",
        "egress",
        "remote_port == 53",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn check_json_describes_sets_and_addresses() {
    let o = portwall(&[
        "check",
        "--json",
        "icmp_type in {0, 8} || dst_ip in {10.0.0.0/8, ::1} && len < 100",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        v["canonical"],
        "icmp_type in {0, 8} || (dst_ip in {10.0.0.0/8, ::1} && len < 100)"
    );
    assert_eq!(v["variables"], serde_json::json!(["len", "icmp_type"]));
    assert_eq!(v["addresses"], serde_json::json!(["dst_ip"]));
    assert_eq!(v["parses"], serde_json::json!(["network", "icmp"]));
    assert_eq!(v["direction"], serde_json::Value::Null);
}

#[test]
fn huge_sets_from_files_are_checked_quickly() {
    // 100,000 prefixes, half IPv4 and half IPv6, one per line; and every
    // port. The limit is for unoptimized builds on a shared machine.
    let mut text = String::from("tcp && dst_ip in {\n");
    for i in 0u32..50_000 {
        let [_, a, b, c] = (i << 4).to_be_bytes();
        text.push_str(&format!("  10.{a}.{b}.{c}/28, fd00:{i:x}::/32,\n"));
    }
    text.push_str("} && dst_port in {");
    let ports: Vec<String> = (0..65_536).map(|p| p.to_string()).collect();
    text.push_str(&ports.join(","));
    text.push_str("}\n");
    let path = temp_file("huge.filter", text.as_bytes());
    let started = std::time::Instant::now();
    let o = portwall(&["check", "-f", path.to_str().unwrap()]);
    let took = started.elapsed();
    let _ = std::fs::remove_file(&path);
    assert!(o.status.success(), "{}", stderr(&o));
    println!("check -f of 100,000 prefixes and 65,536 ports: {took:?}");
    assert!(took < std::time::Duration::from_secs(5), "took {took:?}");
    let out = stdout(&o);
    assert!(out.starts_with("tcp && dst_ip in {10.0.0.0/28, fd00::/32, 10.0.0.16/28, "));
    assert!(out.ends_with(", 65534, 65535}\n"));
}
