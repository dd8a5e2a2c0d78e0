//! Filters on real cgroups with real loopback traffic, managed through the
//! `portwall` binary: each check sends from a process inside a test cgroup
//! (or to a receiver inside it) and counts what arrives on the other side.

mod common;

use common::cli::{ok, portwall};
use common::traffic::{self, Action, Counts, Outcome, Receiver, RemoteReceiver, TcpOutcome};
use portwall::kernel::cgroup::{self, TempCgroup};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

#[test]
fn traffic_helper() {
    traffic::helper_main();
}

/// A wait that ends early when what we expect arrives; when the check is
/// that nothing arrives, it is how long we give it.
const QUIET: Duration = Duration::from_millis(300);
const ARRIVE: Duration = Duration::from_secs(5);

/// A uniquely named filter, unloaded when the test ends (even on failure).
struct Filter {
    name: String,
}

impl Filter {
    fn load(test: &str, expr: &str) -> Filter {
        let name = format!("t-{test}-{}", std::process::id());
        ok(portwall(&["load", &name, expr]));
        Filter { name }
    }

    fn replace(&self, expr: &str) {
        ok(portwall(&["load", &self.name, expr, "--replace"]));
    }

    fn pin(&self) -> PathBuf {
        PathBuf::from("/sys/fs/bpf/portwall").join(&self.name)
    }

    fn attach(&self, cg: &Path, direction: &str) {
        ok(portwall(&[
            "attach",
            &self.name,
            "--cgroup",
            cg.to_str().unwrap(),
            direction,
        ]));
    }

    fn detach(&self, cg: &Path, direction: &str) {
        ok(portwall(&[
            "detach",
            &self.name,
            "--cgroup",
            cg.to_str().unwrap(),
            direction,
        ]));
    }

    fn show(&self) -> serde_json::Value {
        serde_json::from_str(&ok(portwall(&["show", &self.name, "--json"]))).unwrap()
    }
}

impl Drop for Filter {
    fn drop(&mut self) {
        let _ = portwall(&["unload", &self.name]);
    }
}

fn test_cgroup(test: &str) -> TempCgroup {
    let root = cgroup::cgroup2_mount().expect("cgroup2");
    TempCgroup::create(&root, &format!("portwall-test-{test}")).expect("test cgroup")
}

fn udp(addr: SocketAddr, count: u32) -> Action {
    Action::UdpSend { addr, count }
}

fn tcp(addr: SocketAddr) -> Action {
    Action::TcpConnect {
        addr,
        timeout_ms: QUIET.as_millis() as u64,
    }
}

fn privileged(test: &str) -> bool {
    portwall::kernel::require_privileges_or_skip(test)
}

#[test]
fn egress_filters_decide_what_leaves() {
    if !privileged("egress_filters_decide_what_leaves") {
        return;
    }
    let mut rx = Receiver::bind().unwrap();
    let a = rx.addrs().unwrap();
    let cg = test_cgroup("egress");
    // UDP to the IPv4 receiver only, TCP to the IPv6 listener only, ICMP.
    let filter = Filter::load(
        "egress",
        &format!(
            "icmp || (udp && ip && dst_port == {}) || (tcp && ipv6 && dst_port == {})",
            a.udp_v4.port(),
            a.tcp_v6.port()
        ),
    );
    filter.attach(cg.path(), "--egress");
    let report = traffic::run_sender(
        cg.path(),
        &[
            udp(a.udp_v4, 3),
            udp(a.udp_v6, 3),
            tcp(a.tcp_v4),
            tcp(a.tcp_v6),
            Action::IcmpEcho {
                addr: "127.0.0.1".parse().unwrap(),
                count: 2,
                timeout_ms: 2000,
            },
            Action::IcmpEcho {
                addr: "::1".parse().unwrap(),
                count: 2,
                timeout_ms: 2000,
            },
        ],
    )
    .unwrap();
    assert_eq!(report[0], Outcome::udp_sent(3));
    assert_eq!(
        report[1],
        Outcome::udp_eperm(3),
        "UDP over IPv6 must be refused"
    );
    assert_eq!(
        report[2],
        Outcome::Tcp(TcpOutcome::TimedOut),
        "TCP over IPv4 must not connect"
    );
    assert_eq!(report[3], Outcome::Tcp(TcpOutcome::Connected));
    for icmp in &report[4..] {
        assert!(
            matches!(
                icmp,
                Outcome::Icmp {
                    replies: 2,
                    eperm: 0,
                    ..
                }
            ),
            "{icmp:?}"
        );
    }
    let expected = Counts {
        udp_v4: 3,
        tcp_v6: 1,
        ..Counts::default()
    };
    assert_eq!(rx.wait_for(expected, ARRIVE).unwrap(), expected);
    assert_eq!(
        rx.wait_for(expected.plus(Counts::udp(1)), QUIET).unwrap(),
        expected
    );

    // Detached, everything flows again.
    filter.detach(cg.path(), "--egress");
    let report = traffic::run_sender(cg.path(), &[udp(a.udp_v6, 2), tcp(a.tcp_v4)]).unwrap();
    assert_eq!(report[0], Outcome::udp_sent(2));
    assert_eq!(report[1], Outcome::Tcp(TcpOutcome::Connected));
}

#[test]
fn ingress_filters_decide_what_arrives() {
    if !privileged("ingress_filters_decide_what_arrives") {
        return;
    }
    let cg = test_cgroup("ingress");
    let mut remote = RemoteReceiver::spawn(cg.path()).unwrap();
    let a = remote.addrs();
    let filter = Filter::load(
        "ingress",
        &format!("!udp || dst_port == {}", a.udp_v6.port()),
    );
    filter.attach(cg.path(), "--ingress");
    let sent = traffic::run_actions(&[udp(a.udp_v4, 4), udp(a.udp_v6, 4), tcp(a.tcp_v4)]);
    assert_eq!(
        sent[0],
        Outcome::udp_sent(4),
        "ingress drops are silent to the sender"
    );
    assert_eq!(sent[2], Outcome::Tcp(TcpOutcome::Connected));
    let expected = Counts {
        udp_v6: 4,
        tcp_v4: 1,
        ..Counts::default()
    };
    assert_eq!(remote.wait_for(expected, ARRIVE).unwrap(), expected);
    assert_eq!(
        remote
            .wait_for(expected.plus(Counts::udp(1)), QUIET)
            .unwrap(),
        expected
    );
    let counters = &filter.show()["counters"]["ingress"];
    assert_eq!(counters["dropped_packets"], 4, "{counters}");
    remote.finish().unwrap();
}

#[test]
fn counters_match_the_traffic() {
    if !privileged("counters_match_the_traffic") {
        return;
    }
    let mut rx = Receiver::bind().unwrap();
    let a = rx.addrs().unwrap();
    let cg = test_cgroup("counters");
    let filter = Filter::load(
        "counters",
        &format!("udp && dst_port == {}", a.udp_v4.port()),
    );
    filter.attach(cg.path(), "--egress");
    let report = traffic::run_sender(cg.path(), &[udp(a.udp_v4, 7), udp(a.udp_v6, 5)]).unwrap();
    assert_eq!(report, vec![Outcome::udp_sent(7), Outcome::udp_eperm(5)]);
    assert_eq!(
        rx.wait_for(
            Counts {
                udp_v4: 7,
                ..Counts::default()
            },
            ARRIVE
        )
        .unwrap()
        .udp_v4,
        7
    );
    let c = &filter.show()["counters"];
    assert_eq!(c["egress"]["forwarded_packets"], 7, "{c}");
    assert_eq!(c["egress"]["dropped_packets"], 5, "{c}");
    // The sender's payload is a few bytes; the IP length adds 20 (v4) or
    // 40 (v6) and 8 of UDP, so bytes are packets times a fixed size.
    let fwd_bytes = c["egress"]["forwarded_bytes"].as_u64().unwrap();
    let drop_bytes = c["egress"]["dropped_bytes"].as_u64().unwrap();
    assert_eq!(fwd_bytes % 7, 0, "{c}");
    assert_eq!(drop_bytes % 5, 0, "{c}");
    assert_eq!(
        drop_bytes / 5 - fwd_bytes / 7,
        20,
        "IPv6 headers are 20 bytes longer: {c}"
    );
    assert_eq!(c["ingress"]["forwarded_packets"], 0, "{c}");
}

#[test]
fn attachments_outlive_portwall_and_show_up() {
    if !privileged("attachments_outlive_portwall_and_show_up") {
        return;
    }
    let mut rx = Receiver::bind().unwrap();
    let a = rx.addrs().unwrap();
    let cg = test_cgroup("persist");
    let filter = Filter::load("persist", "!udp");
    // `portwall attach` has exited by now: the attachment is the kernel's.
    filter.attach(cg.path(), "--egress");
    let report = traffic::run_sender(cg.path(), &[udp(a.udp_v4, 2)]).unwrap();
    assert_eq!(report[0], Outcome::udp_eperm(2));
    let shown = filter.show();
    let attached = shown["attachments"].as_array().unwrap();
    assert_eq!(attached.len(), 1, "{shown}");
    assert_eq!(attached[0]["path"], cg.path().to_str().unwrap());
    assert_eq!(attached[0]["direction"], "egress");
    filter.detach(cg.path(), "--egress");
    assert_eq!(filter.show()["attachments"], serde_json::json!([]));
    let report = traffic::run_sender(cg.path(), &[udp(a.udp_v4, 2)]).unwrap();
    assert_eq!(report[0], Outcome::udp_sent(2));
    assert_eq!(
        rx.wait_for(
            Counts {
                udp_v4: 2,
                ..Counts::default()
            },
            ARRIVE
        )
        .unwrap()
        .udp_v4,
        2
    );
}

#[test]
fn bpftool_attachments_of_the_pin_work_and_show() {
    if !privileged("bpftool_attachments_of_the_pin_work_and_show") {
        return;
    }
    if Command::new("bpftool").arg("version").output().is_err() {
        portwall::kernel::skip_or_fail(
            "bpftool_attachments_of_the_pin_work_and_show",
            "bpftool is not installed",
        );
        return;
    }
    let rx = Receiver::bind().unwrap();
    let a = rx.addrs().unwrap();
    let cg = test_cgroup("bpftool");
    let filter = Filter::load(
        "bpftool",
        &format!("udp && dst_port == {}", a.udp_v6.port()),
    );
    let bpftool = |verb: &str| {
        let o = Command::new("bpftool")
            .args([
                "cgroup",
                verb,
                cg.path().to_str().unwrap(),
                "egress",
                "pinned",
            ])
            .arg(filter.pin())
            .args(if verb == "attach" {
                &["multi"][..]
            } else {
                &[][..]
            })
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "bpftool cgroup {verb}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    bpftool("attach");
    let report = traffic::run_sender(cg.path(), &[udp(a.udp_v4, 1), udp(a.udp_v6, 1)]).unwrap();
    assert_eq!(report, vec![Outcome::udp_eperm(1), Outcome::udp_sent(1)]);
    let shown = filter.show();
    assert_eq!(
        shown["attachments"][0]["path"],
        cg.path().to_str().unwrap(),
        "{shown}"
    );
    // A live replace reaches the bpftool attachment too.
    filter.replace(&format!("udp && dst_port == {}", a.udp_v4.port()));
    let report = traffic::run_sender(cg.path(), &[udp(a.udp_v4, 1), udp(a.udp_v6, 1)]).unwrap();
    assert_eq!(report, vec![Outcome::udp_sent(1), Outcome::udp_eperm(1)]);
    bpftool("detach");
}

#[test]
fn live_replace_under_load_lets_nothing_forbidden_through() {
    if !privileged("live_replace_under_load_lets_nothing_forbidden_through") {
        return;
    }
    const REPLACES: usize = 100;
    let mut rx = Receiver::bind().unwrap();
    let a = rx.addrs().unwrap();
    // Both filters forbid UDP to the IPv4 socket; only A lets UDP reach the
    // IPv6 one and only B the IPv4 TCP listener.
    let (v6, t4) = (a.udp_v6.port(), a.tcp_v4.port());
    let filter_a = format!("udp && dst_port == {v6}");
    let filter_b = format!("tcp && dst_port == {t4}");
    let cg = test_cgroup("replace");
    let filter = Filter::load("replace", &filter_a);
    filter.attach(cg.path(), "--egress");

    // A sender in the cgroup hammers the forbidden socket for as long as
    // the replaces take.
    let stream = traffic::UdpStream::start(cg.path(), a.udp_v4).unwrap();
    for i in 0..REPLACES {
        let (expr, a_active) = if i % 2 == 0 {
            (&filter_b, false)
        } else {
            (&filter_a, true)
        };
        filter.replace(expr);
        // UDP answers at once (sent or EPERM); TCP is checked at the end,
        // since a dropped SYN costs a timeout.
        let report = traffic::run_sender(cg.path(), &[udp(a.udp_v6, 1)]).unwrap();
        let expected = if a_active {
            Outcome::udp_sent(1)
        } else {
            Outcome::udp_eperm(1)
        };
        assert_eq!(report[0], expected, "after replace {i}");
    }
    // The last replace (odd) installed A; one that does not compile
    // leaves it in force.
    let bad = portwall(&["load", &filter.name, "udp && dst_prot == 1", "--replace"]);
    assert_eq!(bad.status.code(), Some(1));
    let report = traffic::run_sender(cg.path(), &[udp(a.udp_v6, 1), tcp(a.tcp_v4)]).unwrap();
    assert_eq!(report[0], Outcome::udp_sent(1));
    assert_eq!(report[1], Outcome::Tcp(TcpOutcome::TimedOut));

    let streamed = stream.stop().unwrap();
    let Outcome::Udp { sent, eperm, .. } = streamed else {
        panic!("{streamed:?}")
    };
    assert_eq!(sent, 0, "a forbidden datagram got out");
    assert!(eperm > 1000, "the sender only tried {eperm} times");
    let counts = rx
        .wait_for(
            Counts {
                udp_v4: 1,
                ..Counts::default()
            },
            QUIET,
        )
        .unwrap();
    assert_eq!(counts.udp_v4, 0, "the receiver got forbidden datagrams");
    println!("{REPLACES} replaces under a stream of {eperm} forbidden datagrams: none got through");
}

#[test]
fn run_filters_the_command_and_returns_its_status() {
    if !privileged("run_filters_the_command_and_returns_its_status") {
        return;
    }
    let mut rx = Receiver::bind().unwrap();
    let a = rx.addrs().unwrap();
    // The command sends to both UDP sockets and exits 3 if the IPv6 one
    // was refused, as the filter demands.
    let script = format!(
        "import socket,sys\n\
         s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.sendto(b'x',('127.0.0.1',{}))\n\
         t=socket.socket(socket.AF_INET6,socket.SOCK_DGRAM)\n\
         try:\n    t.sendto(b'x',('::1',{}))\nexcept PermissionError:\n    sys.exit(3)\n",
        a.udp_v4.port(),
        a.udp_v6.port()
    );
    let o = portwall(&["run", "--egress", "ip", "--", "python3", "-c", &script]);
    assert_eq!(
        o.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("egress: 1 packets forwarded, 1 dropped"),
        "{err}"
    );
    assert_eq!(
        rx.wait_for(
            Counts {
                udp_v4: 1,
                ..Counts::default()
            },
            ARRIVE
        )
        .unwrap()
        .udp_v4,
        1
    );

    let o = portwall(&["run", "--", "sh", "-c", "exit 7"]);
    assert_eq!(o.status.code(), Some(7));
    assert!(String::from_utf8_lossy(&o.stderr).contains("uses the example filter"));
}

#[test]
fn run_cleans_up_on_sigterm() {
    if !privileged("run_cleans_up_on_sigterm") {
        return;
    }
    let ready = std::env::temp_dir().join(format!("portwall-run-ready-{}", std::process::id()));
    let _ = std::fs::remove_file(&ready);
    // The command reports its cgroup by writing a file, atomically.
    let mut child = Command::new(env!("CARGO_BIN_EXE_portwall"))
        .args(["run", "--egress", "tcp", "--", "sh", "-c"])
        .arg(format!(
            "cat /proc/self/cgroup > {0}.tmp && mv {0}.tmp {0} && exec sleep 60",
            ready.display()
        ))
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + ARRIVE;
    while !ready.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the command never started"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let text = std::fs::read_to_string(&ready).unwrap();
    let relative = text
        .lines()
        .find_map(|l| l.strip_prefix("0::/"))
        .expect("a cgroup2 line");
    let dir = cgroup::cgroup2_mount().unwrap().join(relative);
    assert!(dir.is_dir(), "{}", dir.display());
    assert!(relative.starts_with("portwall-run-"), "{relative}");
    // SAFETY: kill(2) on the child we spawned.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    assert_eq!(
        status.code(),
        Some(128 + libc::SIGTERM),
        "sleep was killed by SIGTERM"
    );
    assert!(!dir.exists(), "{} was left behind", dir.display());
    let _ = std::fs::remove_file(&ready);
}

#[test]
fn unloading_an_attached_filter_warns_and_fails_closed() {
    if !privileged("unloading_an_attached_filter_warns_and_fails_closed") {
        return;
    }
    let rx = Receiver::bind().unwrap();
    let a = rx.addrs().unwrap();
    let cg = test_cgroup("unload");
    let holder = traffic::spawn_holder(cg.path()).unwrap();
    let filter = Filter::load("unload", "udp");
    // Attach by the pid of a process in the cgroup.
    ok(portwall(&[
        "attach",
        &filter.name,
        "--pid",
        &holder.pid().to_string(),
        "--egress",
    ]));
    let report = traffic::run_sender(cg.path(), &[udp(a.udp_v4, 1)]).unwrap();
    assert_eq!(report[0], Outcome::udp_sent(1));
    let dispatcher = filter.show()["dispatcher_id"].as_u64().unwrap();

    let o = portwall(&["unload", &filter.name]);
    assert!(o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("still attached"), "{err}");
    assert!(err.contains(cg.path().to_str().unwrap()), "{err}");
    // The kernel empties the unpinned jump table (in a deferred work item,
    // so give it a moment): then everything is dropped.
    let deadline = std::time::Instant::now() + ARRIVE;
    loop {
        let report = traffic::run_sender(cg.path(), &[udp(a.udp_v4, 1)]).unwrap();
        if report[0] == Outcome::udp_eperm(1) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still forwarding: {report:?}"
        );
    }
    // Detach by id, as the warning says, and traffic flows again.
    let prog = portwall::kernel::attach::prog_fd_from_id(dispatcher as u32).unwrap();
    use std::os::fd::AsFd;
    portwall::kernel::attach::detach(prog.as_fd(), cg.path(), portwall::kernel::Direction::Egress)
        .unwrap();
    let report = traffic::run_sender(cg.path(), &[udp(a.udp_v4, 1)]).unwrap();
    assert_eq!(report[0], Outcome::udp_sent(1));
    drop(holder);
}

/// The README's first command: `portwall run` with the built-in default
/// filter around `scripts/probe.py`, which must report exactly what the
/// example filter allows.
#[test]
fn the_readme_main_command_works() {
    if !privileged("the_readme_main_command_works") {
        return;
    }
    let probe = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/probe.py");
    let o = portwall(&["run", "--", "python3", probe.to_str().unwrap()]);
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{out}{err}");
    assert!(err.contains("egress uses the example filter"), "{err}");
    let verdict = |name: &str| {
        out.lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no `{name}` line in:\n{out}"))
            .to_string()
    };
    assert!(
        verdict("ping 127.0.0.1").contains("reply received"),
        "{out}"
    );
    assert!(verdict("UDP to port 53").contains("sent"), "{out}");
    assert!(verdict("UDP to port 123").contains("blocked"), "{out}");
    assert!(verdict("TCP to port 80").contains("got out"), "{out}");
    assert!(verdict("TCP to port 443").contains("blocked"), "{out}");
    // Dropped: the NTP datagram and the HTTPS SYN (no retransmission within
    // the probe's half-second timeout). Forwarded depends on whether
    // something listens on port 80.
    assert!(err.contains(" packets forwarded, 2 dropped"), "{err}");
}

/// `run` with the second language: its `--egress` filter resolves the
/// direction-aware names for egress, and sets and addresses reach the
/// kernel: the IPv4 datagram to a listed port of a listed network leaves,
/// the IPv6 one (its address is in no listed prefix) is refused.
#[test]
fn run_takes_the_second_language() {
    if !privileged("run_takes_the_second_language") {
        return;
    }
    let mut rx = Receiver::bind().unwrap();
    let a = rx.addrs().unwrap();
    let script = format!(
        "import socket,sys\n\
         s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.sendto(b'x',('127.0.0.1',{}))\n\
         t=socket.socket(socket.AF_INET6,socket.SOCK_DGRAM)\n\
         try:\n    t.sendto(b'x',('::1',{}))\nexcept PermissionError:\n    sys.exit(3)\n",
        a.udp_v4.port(),
        a.udp_v6.port()
    );
    let filter = format!(
        "remote_ip in {{127.0.0.0/8, fd00::/8}} && proto == 17 && remote_port in {{1..2, {}, {}}}",
        a.udp_v4.port(),
        a.udp_v6.port()
    );
    let o = portwall(&["run", "--egress", &filter, "--", "python3", "-c", &script]);
    assert_eq!(
        o.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let got = rx
        .wait_for(
            Counts {
                udp_v4: 1,
                ..Counts::default()
            },
            ARRIVE,
        )
        .unwrap();
    assert_eq!((got.udp_v4, got.udp_v6), (1, 0));
}
