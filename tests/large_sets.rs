//! Filters with large sets through the `portwall` binary: their tables are
//! pinned next to the filter, replaced with it and removed with it; a
//! failed replace leaves them alone; `compile -o` objects carry them to
//! bpftool; and real loopback traffic is judged by them. Filters come from
//! files (`-f`), as sets this large do not fit a command line.

mod common;

use common::bpffs::PrivateBpffs;
use common::cli::{ok, portwall};
// Fixed seeds: the sets are the same every run.
use common::generate::Rng;
use common::packets;
use common::traffic::{self, Action, Counts, Outcome, Receiver, TcpOutcome};
use portwall::eval::{self, Verdict};
use portwall::kernel::cgroup::{self, TempCgroup};
use portwall::lang::{check, parse};
use portwall::packet::Packet;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

#[test]
fn traffic_helper() {
    traffic::helper_main();
}

/// IPv4 prefixes of a blocklist's length mix, none in 127.0.0.0/8 (the
/// loopback traffic's) or 10.0.0.0/8 (the test packets' sources).
fn v4_prefixes(rng: &mut Rng, n: usize) -> Vec<(Ipv4Addr, u8)> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let a = rng.next() as u32;
        if matches!(a >> 24, 0 | 10 | 127) {
            continue;
        }
        let len = match rng.below(10) {
            0 => 16 + rng.below(8) as u8,
            1..=3 => 24,
            _ => 32,
        };
        let net = a & (u32::MAX << (32 - len));
        out.push((Ipv4Addr::from(net), len));
    }
    out
}

/// IPv6 prefixes in 2000::/3 (so never ::1), outside 2001:db8::/32.
fn v6_prefixes(rng: &mut Rng, n: usize) -> Vec<(Ipv6Addr, u8)> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let a = (u128::from(rng.next()) << 64 | u128::from(rng.next())) >> 3 | 1 << 125;
        if a >> 96 == 0x2001_0db8 {
            continue;
        }
        let len = match rng.below(10) {
            0..=2 => 32 + rng.below(17) as u8,
            3..=5 => 48 + rng.below(17) as u8,
            6 => 65 + rng.below(63) as u8,
            _ => 128,
        };
        let net = a & (u128::MAX << (128 - u32::from(len)));
        out.push((Ipv6Addr::from(net), len));
    }
    out
}

fn set_text(v4: &[(Ipv4Addr, u8)], v6: &[(Ipv6Addr, u8)]) -> String {
    let mut s = String::from("{\n");
    for (a, l) in v4 {
        s.push_str(&format!("  {a}/{l},\n"));
    }
    for (a, l) in v6 {
        s.push_str(&format!("  {a}/{l},\n"));
    }
    s.push('}');
    s
}

fn port_text(ports: &[u16]) -> String {
    let list: Vec<String> = ports.iter().map(|p| p.to_string()).collect();
    format!("{{{}}}", list.join(", "))
}

/// A file holding a filter, removed with the guard.
struct FilterFile {
    path: PathBuf,
}

impl FilterFile {
    fn new(test: &str, text: &str) -> FilterFile {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("portwall-{test}-{}-{n}.filter", std::process::id()));
        std::fs::write(&path, text).expect("write the filter file");
        FilterFile { path }
    }

    fn arg(&self) -> &str {
        self.path.to_str().expect("a UTF-8 path")
    }
}

impl Drop for FilterFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// `portwall --bpffs BPFFS ARGS`.
fn in_fs(bpffs: &Path, args: &[&str]) -> Output {
    let mut all = vec!["--bpffs", bpffs.to_str().expect("a UTF-8 path")];
    all.extend_from_slice(args);
    portwall(&all)
}

fn checked(text: &str) -> portwall::lang::ir::Filter {
    check::check(&parse::parse(text).expect("parses")).expect("checks")
}

/// The pins of `name` in the pin directory, sorted.
fn pins_of(dir: &Path, name: &str) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .expect("pin directory")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n == name || n.starts_with(&format!("{name}@")))
        .collect();
    out.sort();
    out
}

fn map_id(pin: &Path) -> u32 {
    aya::maps::MapInfo::from_pin(pin)
        .unwrap_or_else(|e| panic!("{}: {e}", pin.display()))
        .id()
}

/// Packets to and from members and non-members of the sets: network
/// addresses of listed prefixes, random addresses, both families, UDP to
/// listed and unlisted ports.
fn probes(
    rng: &mut Rng,
    v4: &[(Ipv4Addr, u8)],
    v6: &[(Ipv6Addr, u8)],
    ports: &[u16],
) -> Vec<Packet> {
    let mut out = Vec::new();
    for _ in 0..150 {
        let (a, _) = v4[rng.below(v4.len() as u64) as usize];
        let port = ports
            .get(rng.below(ports.len().max(1) as u64) as usize)
            .copied();
        out.push(packets::ipv4_tcp(packets::SRC4, a.octets(), 999, 80));
        out.push(packets::ipv4_udp(
            packets::SRC4,
            (rng.next() as u32).to_be_bytes(),
            999,
            port.unwrap_or(53),
        ));
        out.push(packets::ipv4_udp(
            packets::SRC4,
            (rng.next() as u32).to_be_bytes(),
            999,
            rng.next() as u16,
        ));
        let (a, _) = v6[rng.below(v6.len() as u64) as usize];
        out.push(packets::ipv6_tcp(packets::SRC6, a.octets(), 999, 80));
        let r = (u128::from(rng.next()) << 64 | u128::from(rng.next())) >> 3 | 1 << 125;
        out.push(packets::ipv6_tcp(packets::SRC6, r.to_be_bytes(), 999, 80));
    }
    out
}

/// Runs every probe through the pinned dispatcher and holds the verdicts
/// to the evaluator's; both verdicts must occur, or the probes say nothing.
fn verdicts_match(bpffs: &Path, name: &str, text: &str, probes: &[Packet]) {
    let filter = checked(text);
    let pin = bpffs.join("portwall").join(name);
    let (mut forwarded, mut dropped) = (0, 0);
    for p in probes {
        let want = eval::evaluate(&filter, p).verdict();
        let got = portwall::kernel::test_run_pinned(&pin, &p.to_test_frame(), 1)
            .expect("test run")
            .retval;
        assert_eq!(
            got,
            u32::from(want == Verdict::Forward),
            "{name}: {:02x?}",
            p.data
        );
        match want {
            Verdict::Forward => forwarded += 1,
            Verdict::Drop => dropped += 1,
        }
    }
    assert!(
        forwarded > 10 && dropped > 10,
        "{forwarded} forwarded, {dropped} dropped"
    );
}

#[test]
fn set_tables_are_pinned_replaced_and_removed_with_their_filter() {
    const TEST: &str = "set_tables_are_pinned_replaced_and_removed_with_their_filter";
    if !portwall::kernel::require_privileges_or_skip(TEST) {
        return;
    }
    let fs = PrivateBpffs::mount("sets");
    let b = fs.path();
    let dir = b.join("portwall");
    let mut rng = Rng::new(11);
    let (v4, v6) = (v4_prefixes(&mut rng, 20_000), v6_prefixes(&mut rng, 20_000));
    let ports: Vec<u16> = (0..1000).map(|_| rng.next() as u16).collect();
    // Three tables: the ports' bitmap, and a range table per family.
    let first = format!(
        "(udp && dst_port in {}) || dst_ip in {}",
        port_text(&ports),
        set_text(&v4, &v6)
    );
    let file = FilterFile::new("sets", &first);
    let started = Instant::now();
    ok(in_fs(b, &["load", "web", "-f", file.arg()]));
    eprintln!(
        "load of 40,000 prefixes and 1000 ports: {:?}",
        started.elapsed()
    );
    assert_eq!(
        pins_of(&dir, "web"),
        [
            "web",
            "web@counters",
            "web@jump",
            "web@set0",
            "web@set1",
            "web@set2"
        ]
    );
    let old_ids: Vec<u32> = (0..3)
        .map(|i| map_id(&dir.join(format!("web@set{i}"))))
        .collect();
    let probes_first = probes(&mut rng, &v4, &v6, &ports);
    verdicts_match(b, "web", &first, &probes_first);

    // Replace with one IPv4 table: the tables are the new program's, the
    // pins of the old tables beyond it are gone.
    let other = v4_prefixes(&mut rng, 5000);
    let second = format!("dst_ip in {}", set_text(&other, &[]));
    let file = FilterFile::new("sets", &second);
    ok(in_fs(b, &["load", "web", "-f", file.arg(), "--replace"]));
    assert_eq!(
        pins_of(&dir, "web"),
        ["web", "web@counters", "web@jump", "web@set0"]
    );
    let new_id = map_id(&dir.join("web@set0"));
    assert!(!old_ids.contains(&new_id), "{new_id} is an old table");
    let mut probes_second = probes(&mut rng, &other, &v6, &ports);
    probes_second.extend(probes_first);
    verdicts_match(b, "web", &second, &probes_second);
    // Nothing refers to the old program now: the kernel frees it, and its
    // tables with it.
    let deadline = Instant::now() + Duration::from_secs(10);
    while old_ids
        .iter()
        .any(|id| aya::maps::MapInfo::from_id(*id).is_ok())
    {
        assert!(
            Instant::now() < deadline,
            "the old tables {old_ids:?} are never freed"
        );
        std::thread::yield_now();
    }

    // Back to a filter without sets: no table pins at all.
    ok(in_fs(b, &["load", "web", "udp", "--replace"]));
    assert_eq!(pins_of(&dir, "web"), ["web", "web@counters", "web@jump"]);

    ok(in_fs(b, &["load", "web", "-f", file.arg(), "--replace"]));
    ok(in_fs(b, &["unload", "web"]));
    assert_eq!(pins_of(&dir, "web"), Vec::<String>::new());
}

#[test]
fn a_failed_replace_leaves_the_filter_and_its_tables() {
    const TEST: &str = "a_failed_replace_leaves_the_filter_and_its_tables";
    if !portwall::kernel::require_privileges_or_skip(TEST) {
        return;
    }
    let fs = PrivateBpffs::mount("sets-fail");
    let b = fs.path();
    let dir = b.join("portwall");
    let mut rng = Rng::new(12);
    let v4 = v4_prefixes(&mut rng, 3000);
    let text = format!("dst_ip in {}", set_text(&v4, &[]));
    let file = FilterFile::new("sets-fail", &text);
    ok(in_fs(b, &["load", "web", "-f", file.arg()]));
    let table = dir.join("web@set0");
    let id = map_id(&table);
    let program = ok(in_fs(b, &["show", "web", "--json"]));
    let program: serde_json::Value = serde_json::from_str(&program).unwrap();

    // Something else is pinned where the jump table was: the replace must
    // fail (it checks the pins before it changes anything), and leave the
    // running filter, its tables and no new pins behind.
    let jump = dir.join("web@jump");
    let saved = dir.join("web@jump-saved");
    std::fs::rename(&jump, &saved).unwrap();
    std::fs::rename(&table, &jump).unwrap();
    let other = format!("dst_ip in {}", set_text(&v4_prefixes(&mut rng, 3000), &[]));
    let file2 = FilterFile::new("sets-fail", &other);
    let out = in_fs(b, &["load", "web", "-f", file2.arg(), "--replace"]);
    assert!(!out.status.success(), "the replace succeeded");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("web@jump is not a program array"), "{err}");
    std::fs::rename(&jump, &table).unwrap();
    std::fs::rename(&saved, &jump).unwrap();
    assert_eq!(
        pins_of(&dir, "web"),
        ["web", "web@counters", "web@jump", "web@set0"]
    );
    assert_eq!(map_id(&table), id);
    let now: serde_json::Value =
        serde_json::from_str(&ok(in_fs(b, &["show", "web", "--json"]))).unwrap();
    assert_eq!(now["program_id"], program["program_id"]);
    let some_v6 = v6_prefixes(&mut rng, 10);
    verdicts_match(b, "web", &text, &probes(&mut rng, &v4, &some_v6, &[]));
    ok(in_fs(b, &["unload", "web"]));
}

#[test]
fn compiled_objects_carry_their_tables_to_bpftool() {
    const TEST: &str = "compiled_objects_carry_their_tables_to_bpftool";
    if !portwall::kernel::require_privileges_or_skip(TEST) {
        return;
    }
    let Some(bpftool) = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("bpftool"))
            .find(|p| p.is_file())
    }) else {
        portwall::kernel::skip_or_fail(TEST, "bpftool is not on PATH (apt-get install bpftool)");
        return;
    };
    let fs = PrivateBpffs::mount("sets-bpftool");
    let mut rng = Rng::new(13);
    let (v4, v6) = (v4_prefixes(&mut rng, 2000), v6_prefixes(&mut rng, 2000));
    let ports: Vec<u16> = (0..500).map(|_| rng.next() as u16).collect();
    let text = format!(
        "(udp && dst_port in {}) || dst_ip in {}",
        port_text(&ports),
        set_text(&v4, &v6)
    );
    let file = FilterFile::new("sets-bpftool", &text);
    let object = std::env::temp_dir().join(format!("portwall-sets-{}.o", std::process::id()));
    ok(portwall(&[
        "compile",
        "-f",
        file.arg(),
        "-o",
        object.to_str().unwrap(),
    ]));
    let pin = fs.path().join("fw");
    let status = std::process::Command::new(bpftool)
        .args(["prog", "load"])
        .arg(&object)
        .arg(&pin)
        .args(["type", "cgroup/skb"])
        .status()
        .expect("runs bpftool");
    let _ = std::fs::remove_file(&object);
    assert!(status.success(), "bpftool prog load failed");
    let filter = checked(&text);
    for p in probes(&mut rng, &v4, &v6, &ports) {
        let want = eval::evaluate(&filter, &p).verdict();
        let got = portwall::kernel::test_run_pinned(&pin, &p.to_test_frame(), 1)
            .expect("test run")
            .retval;
        assert_eq!(got, u32::from(want == Verdict::Forward), "{:02x?}", p.data);
    }
}

/// A uniquely named filter in the system bpffs, unloaded when the test
/// ends (even on failure).
struct Loaded {
    name: String,
}

impl Drop for Loaded {
    fn drop(&mut self) {
        let _ = portwall(&["unload", &self.name]);
    }
}

#[test]
fn large_sets_judge_real_traffic() {
    const TEST: &str = "large_sets_judge_real_traffic";
    if !portwall::kernel::require_privileges_or_skip(TEST) {
        return;
    }
    let mut rx = Receiver::bind().unwrap();
    let a = rx.addrs().unwrap();
    let root = cgroup::cgroup2_mount().expect("cgroup2");
    let cg = TempCgroup::create(&root, "portwall-test-large-sets").expect("test cgroup");
    let mut rng = Rng::new(14);
    let receivers = [a.udp_v4.port(), a.udp_v6.port()];
    let mut ports: Vec<u16> = (0..10_000)
        .map(|_| rng.next() as u16)
        .filter(|p| !receivers.contains(p))
        .collect();
    let (v4, v6) = (v4_prefixes(&mut rng, 50_000), v6_prefixes(&mut rng, 50_000));
    // UDP only to the IPv4 receiver's port; TCP only to 127.0.0.1, among
    // 100,000 other prefixes.
    ports.push(a.udp_v4.port());
    let mut v4_and_loopback = v4.clone();
    v4_and_loopback.push((Ipv4Addr::LOCALHOST, 32));
    let egress = |ports: &[u16], v4: &[(Ipv4Addr, u8)], v6: &[(Ipv6Addr, u8)]| {
        format!(
            "(udp && dst_port in {}) || (tcp && dst_ip in {})",
            port_text(ports),
            set_text(v4, v6)
        )
    };
    let file = FilterFile::new("large-traffic", &egress(&ports, &v4_and_loopback, &v6));
    let filter = Loaded {
        name: format!("t-large-sets-{}", std::process::id()),
    };
    ok(portwall(&["load", &filter.name, "-f", file.arg()]));
    ok(portwall(&[
        "attach",
        &filter.name,
        "--cgroup",
        cg.path().to_str().unwrap(),
        "--egress",
    ]));
    let quiet = Duration::from_millis(300);
    let tcp = |addr| Action::TcpConnect {
        addr,
        timeout_ms: quiet.as_millis() as u64,
    };
    let udp = |addr| Action::UdpSend { addr, count: 3 };
    let send = |actions: &[Action]| traffic::run_sender(cg.path(), actions).unwrap();
    let report = send(&[udp(a.udp_v4), udp(a.udp_v6), tcp(a.tcp_v4), tcp(a.tcp_v6)]);
    assert_eq!(report[0], Outcome::udp_sent(3));
    assert_eq!(report[1], Outcome::udp_eperm(3));
    assert_eq!(report[2], Outcome::Tcp(TcpOutcome::Connected));
    assert_eq!(report[3], Outcome::Tcp(TcpOutcome::TimedOut));
    let expected = Counts {
        udp_v4: 3,
        tcp_v4: 1,
        ..Counts::default()
    };
    assert_eq!(
        rx.wait_for(expected, Duration::from_secs(5)).unwrap(),
        expected
    );

    // Live replace with the roles swapped: the IPv6 port and ::1.
    *ports.last_mut().unwrap() = a.udp_v6.port();
    let mut v6_and_loopback = v6.clone();
    v6_and_loopback.push((Ipv6Addr::LOCALHOST, 128));
    let file = FilterFile::new("large-traffic", &egress(&ports, &v4, &v6_and_loopback));
    ok(portwall(&[
        "load",
        &filter.name,
        "-f",
        file.arg(),
        "--replace",
    ]));
    let report = send(&[udp(a.udp_v4), udp(a.udp_v6), tcp(a.tcp_v4), tcp(a.tcp_v6)]);
    assert_eq!(report[0], Outcome::udp_eperm(3));
    assert_eq!(report[1], Outcome::udp_sent(3));
    assert_eq!(report[2], Outcome::Tcp(TcpOutcome::TimedOut));
    assert_eq!(report[3], Outcome::Tcp(TcpOutcome::Connected));
    let expected = expected.plus(Counts {
        udp_v6: 3,
        tcp_v6: 1,
        ..Counts::default()
    });
    assert_eq!(
        rx.wait_for(expected, Duration::from_secs(5)).unwrap(),
        expected
    );
    ok(portwall(&[
        "detach",
        &filter.name,
        "--cgroup",
        cg.path().to_str().unwrap(),
        "--egress",
    ]));
}
