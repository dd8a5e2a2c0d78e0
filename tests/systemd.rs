//! portwall for systemd services, on a real systemd: each privileged test
//! boots its own container (tests/common/systemd.rs) and checks at a
//! receiver what a filtered service can send or receive.
//!
//! Traffic is loopback inside the container. A sender (the probe script)
//! sends, in rounds, one message per target (`udp:PORT`, `tcp:PORT`) and
//! logs each finished round; a receiver logs what arrives. A check waits
//! for rounds that started after the change under test, then flushes the
//! receiver (over a Unix socket, which filters never see) so that every
//! message sent before is in its log: what is missing was dropped. No
//! check sleeps for a fixed time.

mod common;

use common::cli::portwall;
use common::systemd::{PROBE, SHARE, Systemd};
use std::io::Write;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(20);

/// The four streams the senders use.
const TARGETS: [(&str, u16); 4] = [("udp", 7001), ("udp", 7002), ("tcp", 7001), ("tcp", 7002)];
/// A filter that lets through two of them ...
const RULE_A: &str = "(udp && dst_port == 7001) || (tcp && dst_port == 7002)";
const PASS_A: [bool; 4] = [true, false, false, true];
/// ... and one that lets through the other two.
const RULE_B: &str = "(udp && dst_port == 7002) || (tcp && dst_port == 7001)";
const PASS_B: [bool; 4] = [false, true, true, false];
const PASS_ALL: [bool; 4] = [true; 4];

/// One logged message: protocol, port, sender tag, round, sender PID.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Message {
    proto: String,
    port: u16,
    tag: String,
    seq: u64,
    pid: u32,
}

/// A receiver running as a unit in the container.
struct Receiver {
    log: PathBuf,
    control: PathBuf,
}

impl Receiver {
    /// Starts `probe.py receive` on `ports` as the transient unit `unit`
    /// (unfiltered, unless `properties` say otherwise).
    fn start(c: &Systemd, unit: &str, ports: &[u16]) -> Receiver {
        let ports: Vec<String> = ports.iter().map(u16::to_string).collect();
        c.ok(&format!(
            "systemd-run --quiet --unit={unit} /usr/bin/python3 {PROBE} receive \
             {SHARE}/out/{unit}.log {SHARE}/out/{unit}.ctl {}",
            ports.join(" ")
        ));
        Receiver::at(c, unit)
    }

    /// The receiver logging to `out/NAME.log`, once it listens.
    fn at(c: &Systemd, name: &str) -> Receiver {
        let out = c.share().join("out");
        let receiver = Receiver {
            log: out.join(format!("{name}.log")),
            control: out.join(format!("{name}.ctl")),
        };
        let ready = out.join(format!("{name}.log.ready"));
        c.wait_for(&format!("receiver {name} to listen"), WAIT, || {
            ready.exists().then_some(())
        });
        receiver
    }

    /// Everything the receiver got before now.
    fn flush(&self, c: &Systemd) -> Vec<Message> {
        static FLUSHES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let marker = format!(
            "FLUSH {}",
            FLUSHES.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let socket = UnixDatagram::unbound().expect("a Unix datagram socket");
        socket
            .send_to(marker.as_bytes(), &self.control)
            .unwrap_or_else(|e| panic!("flush {}: {e}", self.control.display()));
        c.wait_for(
            &format!("{} to log `{marker}`", self.log.display()),
            WAIT,
            || {
                let text = std::fs::read_to_string(&self.log).unwrap_or_default();
                text.lines().any(|l| l == marker).then(|| parse_log(&text))
            },
        )
    }
}

fn parse_log(text: &str) -> Vec<Message> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            (f.len() == 5).then(|| Message {
                proto: f[0].into(),
                port: f[1].parse().expect("a port"),
                tag: f[2].into(),
                seq: f[3].parse().expect("a round"),
                pid: f[4].parse().expect("a PID"),
            })
        })
        .collect()
}

fn targets() -> String {
    TARGETS
        .iter()
        .map(|(p, n)| format!("{p}:{n}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Installs and starts a service that sends to every target, tagged with
/// its unit name's stem.
fn start_sender(c: &Systemd, unit: &str) {
    let tag = unit.trim_end_matches(".service");
    c.write(
        &format!("/etc/systemd/system/{unit}"),
        &format!(
            "[Unit]\nDescription=portwall test sender {tag}\n\n[Service]\n\
             ExecStart=/usr/bin/python3 {PROBE} send {SHARE}/out/{tag}.rounds {tag} {}\n",
            targets()
        ),
    );
    c.ok(&format!(
        "systemctl daemon-reload && systemctl start {unit}"
    ));
}

fn main_pid(c: &Systemd, unit: &str) -> u32 {
    c.property(unit, "MainPID").parse().expect("a PID")
}

/// The last round `tag`'s sender `pid` finished, if any.
fn last_round(c: &Systemd, tag: &str, pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(c.share().join(format!("out/{tag}.rounds"))).ok()?;
    text.lines().rev().find_map(|line| {
        let (seq, p) = line.split_once(' ')?;
        (p.parse() == Ok(pid)).then(|| seq.parse().ok()).flatten()
    })
}

/// Checks what the sender of `unit` (tagged `tag`) gets through to `rx`
/// from now on: `pass[i]` says whether `TARGETS[i]` must arrive. Returns
/// the sender's PID, which sent every message looked at.
fn expect_traffic(c: &Systemd, rx: &Receiver, unit: &str, tag: &str, pass: [bool; 4]) -> u32 {
    expect_streams(c, rx, unit, tag, &TARGETS, pass)
}

/// [`expect_traffic`] for a sender of other streams.
fn expect_streams(
    c: &Systemd,
    rx: &Receiver,
    unit: &str,
    tag: &str,
    streams: &[(&str, u16); 4],
    pass: [bool; 4],
) -> u32 {
    let pid = main_pid(c, unit);
    assert_ne!(pid, 0, "{unit} is not running");
    let now = c.wait_for(&format!("{unit} to finish a round"), WAIT, || {
        last_round(c, tag, pid)
    });
    // The round after `now` may have begun before the change under test.
    let window = now + 2..=now + 4;
    c.wait_for(
        &format!("{unit} to finish round {}", window.end()),
        WAIT,
        || last_round(c, tag, pid).filter(|r| r >= window.end()),
    );
    let got = rx.flush(c);
    let mine: Vec<&Message> = got
        .iter()
        .filter(|m| m.tag == tag && m.pid == pid && window.contains(&m.seq))
        .collect();
    for ((proto, port), pass) in streams.iter().zip(pass) {
        let arrived = mine
            .iter()
            .filter(|m| m.proto == *proto && m.port == *port)
            .count();
        if pass {
            assert!(
                arrived > 0,
                "{unit}: nothing from {proto}:{port} arrived in rounds {window:?}, but the filter allows it"
            );
        } else {
            assert_eq!(
                arrived, 0,
                "{unit}: {proto}:{port} arrived in rounds {window:?}, but the filter drops it"
            );
        }
    }
    assert_eq!(main_pid(c, unit), pid, "{unit} restarted during the check");
    pid
}

fn is_active(c: &Systemd, unit: &str) -> String {
    c.sh(&format!("systemctl is-active {unit}"))
        .stdout
        .iter()
        .map(|b| *b as char)
        .collect::<String>()
        .trim()
        .to_string()
}

/// The dispatcher program id of a loaded filter (what cgroups run).
fn dispatcher_id(c: &Systemd, name: &str) -> u64 {
    let json = c.ok(&format!("portwall show {name} --json"));
    let v: serde_json::Value = serde_json::from_str(&json).expect("show --json");
    v["dispatcher_id"].as_u64().expect("a dispatcher id")
}

/// `bpftool cgroup tree` of a unit's cgroup, as (program id, attach type).
fn attachments(c: &Systemd, unit: &str) -> Vec<(u64, String)> {
    let out = c.ok(&format!(
        "bpftool cgroup tree /sys/fs/cgroup/system.slice/{unit}"
    ));
    out.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let id = f.first()?.parse().ok()?;
            Some((id, f.get(1)?.to_string()))
        })
        .collect()
}

fn bpftool_available(test: &str) -> bool {
    if Command::new("bpftool").arg("version").output().is_err() {
        portwall::kernel::skip_or_fail(test, "bpftool is missing (scripts/install-test-deps)");
        return false;
    }
    true
}

/// `systemd-analyze verify` must accept the units with no warning.
fn verify(c: &Systemd, what: &str) {
    let out = c.sh(&format!("systemd-analyze verify {what}"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "systemd-analyze verify {what}: {}\n{stderr}",
        out.status
    );
}

/// Prints how long the test took when it ends, past the test harness's
/// output capture (so `cargo test` shows it without `--nocapture`).
fn timed(test: &str) -> impl Drop {
    struct Timer(String, Instant);
    impl Drop for Timer {
        fn drop(&mut self) {
            let _ = writeln!(
                std::io::stderr(),
                "{}: {:.2} s in all",
                self.0,
                self.1.elapsed().as_secs_f64()
            );
        }
    }
    Timer(test.to_string(), Instant::now())
}

#[test]
fn protect_filters_a_running_service_and_reload_changes_it_live() {
    let test = "protect_filters_a_running_service_and_reload_changes_it_live";
    let _t = timed(test);
    if !bpftool_available(test) {
        return;
    }
    let Some(c) = Systemd::boot(test) else { return };
    let rx = Receiver::start(&c, "rx", &[7001, 7002]);
    start_sender(&c, "sender.service");
    let first = expect_traffic(&c, &rx, "sender.service", "sender", PASS_ALL);

    // Protecting the running service filters it at once, same process.
    let out = c.ok(&format!("portwall protect sender --egress '{RULE_A}'"));
    assert!(
        out.contains("sender.service is running: systemd attached its filters at daemon-reload; no restart needed"),
        "{out}"
    );
    assert_eq!(is_active(&c, "portwall@sender-egress.service"), "active");
    let id = dispatcher_id(&c, "sender-egress");
    assert!(
        attachments(&c, "sender.service").contains(&(id, "cgroup_inet_egress".into())),
        "bpftool does not show dispatcher {id} on sender.service:\n{}",
        c.ok("bpftool cgroup tree")
    );
    assert_eq!(
        expect_traffic(&c, &rx, "sender.service", "sender", PASS_A),
        first
    );
    verify(
        &c,
        "/etc/systemd/system/sender.service portwall@sender-egress.service",
    );

    // After a restart, systemd attaches the filter to the new process.
    c.ok("systemctl restart sender.service");
    let second = expect_traffic(&c, &rx, "sender.service", "sender", PASS_A);
    assert_ne!(second, first);

    // Edit the config, reload the loader: the same process now runs the
    // new rule.
    c.write(
        "/etc/portwall/sender-egress.conf",
        &format!("# edited by hand\ndirection = egress\nfilter = {RULE_B}\n"),
    );
    c.ok("systemctl reload portwall@sender-egress");
    assert_eq!(is_active(&c, "portwall@sender-egress.service"), "active");
    assert_eq!(
        expect_traffic(&c, &rx, "sender.service", "sender", PASS_B),
        second
    );
    assert_eq!(
        dispatcher_id(&c, "sender-egress"),
        id,
        "the dispatcher must stay"
    );

    // As at boot: starting the service pulls in its loader first.
    c.ok("systemctl stop portwall@sender-egress.service");
    assert_eq!(
        is_active(&c, "sender.service"),
        "inactive",
        "Requires= stops it too"
    );
    assert!(!c.exists("/sys/fs/bpf/portwall/sender-egress"));
    c.ok("systemctl start sender.service");
    assert_eq!(is_active(&c, "portwall@sender-egress.service"), "active");
    let third = expect_traffic(&c, &rx, "sender.service", "sender", PASS_B);
    assert_ne!(third, second);

    let stats = c.ok("portwall stats sender-egress");
    let dropped: u64 = stats
        .lines()
        .find(|l| l.starts_with("sender-egress egress"))
        .and_then(|l| l.split_whitespace().nth(6))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no egress counters in:\n{stats}"));
    assert!(dropped > 0, "no drops counted:\n{stats}");
}

#[test]
fn protect_twice_updates_live_and_unprotect_leaves_nothing() {
    let test = "protect_twice_updates_live_and_unprotect_leaves_nothing";
    let _t = timed(test);
    if !bpftool_available(test) {
        return;
    }
    let Some(c) = Systemd::boot(test) else { return };
    let rx = Receiver::start(&c, "rx", &[7001, 7002]);
    start_sender(&c, "web.service");
    let pid = expect_traffic(&c, &rx, "web.service", "web", PASS_ALL);

    c.ok(&format!("portwall protect web.service --egress '{RULE_A}'"));
    assert_eq!(expect_traffic(&c, &rx, "web.service", "web", PASS_A), pid);

    // The same again changes no unit file, and replaces the filter live.
    let out = c.ok(&format!("portwall protect web.service --egress '{RULE_A}'"));
    assert!(
        out.contains("reloaded portwall@web-egress.service: filter `web-egress` replaced live"),
        "{out}"
    );
    assert!(
        !out.contains("daemon-reload") && !out.contains("wrote"),
        "{out}"
    );
    // A new rule through protect: live as well.
    let out = c.ok(&format!("portwall protect web.service --egress '{RULE_B}'"));
    assert!(
        out.contains("updated /etc/portwall/web-egress.conf"),
        "{out}"
    );
    assert_eq!(expect_traffic(&c, &rx, "web.service", "web", PASS_B), pid);

    // The dry run shows what would go, and changes nothing.
    let dry = c.ok("portwall unprotect web --dry-run");
    assert!(
        dry.contains("rm /etc/systemd/system/web.service.d/90-portwall.conf\n"),
        "{dry}"
    );
    assert!(
        dry.contains("systemctl stop portwall@web-egress.service\n"),
        "{dry}"
    );
    assert!(c.exists("/etc/systemd/system/web.service.d/90-portwall.conf"));

    let out = c.ok("portwall unprotect web");
    assert!(
        out.contains("web.service is running: systemd detached its filters at daemon-reload; no restart needed"),
        "{out}"
    );
    assert_eq!(expect_traffic(&c, &rx, "web.service", "web", PASS_ALL), pid);
    c.ok("systemctl restart web.service");
    let after = expect_traffic(&c, &rx, "web.service", "web", PASS_ALL);
    assert_ne!(after, pid);

    for gone in [
        "/etc/systemd/system/web.service.d",
        "/etc/portwall",
        "/etc/systemd/system/portwall@.service",
        "/sys/fs/bpf/portwall/web-egress",
        "/sys/fs/bpf/portwall/web-egress@jump",
        "/sys/fs/bpf/portwall/web-egress@counters",
    ] {
        assert!(!c.exists(gone), "{gone} is left behind");
    }
    assert_eq!(is_active(&c, "portwall@web-egress.service"), "inactive");
    assert!(
        attachments(&c, "web.service").is_empty(),
        "{}",
        c.ok("bpftool cgroup tree")
    );
    // Once more is a no-op that says so.
    let out = c.sh("portwall unprotect web");
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("web.service is not protected"));
}

#[test]
fn two_services_share_one_filter() {
    let test = "two_services_share_one_filter";
    let _t = timed(test);
    let Some(c) = Systemd::boot(test) else { return };
    let rx = Receiver::start(&c, "rx", &[7001, 7002]);
    start_sender(&c, "alpha.service");
    start_sender(&c, "beta.service");
    c.ok(&format!(
        "portwall protect alpha --egress '{RULE_A}' --name shared"
    ));
    c.ok(&format!(
        "portwall protect beta --egress '{RULE_A}' --name shared"
    ));
    // A unit whose default name happens to be the shared one does not
    // take it over by accident.
    c.write(
        "/etc/systemd/system/shared.service",
        "[Service]\nExecStart=/bin/true\n",
    );
    let err = c.fails("systemctl daemon-reload && portwall protect shared --egress udp");
    assert!(
        err.contains("filter `shared-egress` is already used by alpha.service, beta.service; pass --name shared"),
        "{err}"
    );
    let alpha = expect_traffic(&c, &rx, "alpha.service", "alpha", PASS_A);
    let beta = expect_traffic(&c, &rx, "beta.service", "beta", PASS_A);

    // One edit and reload changes both services.
    c.write(
        "/etc/portwall/shared-egress.conf",
        &format!("direction = egress\nfilter = {RULE_B}\n"),
    );
    c.ok("systemctl reload portwall@shared-egress.service");
    assert_eq!(
        expect_traffic(&c, &rx, "alpha.service", "alpha", PASS_B),
        alpha
    );
    assert_eq!(
        expect_traffic(&c, &rx, "beta.service", "beta", PASS_B),
        beta
    );

    // Unprotecting one keeps the filter for the other.
    let out = c.ok("portwall unprotect alpha");
    assert!(
        out.contains("kept filter `shared-egress`: beta.service still uses it"),
        "{out}"
    );
    assert_eq!(is_active(&c, "portwall@shared-egress.service"), "active");
    assert!(c.exists("/etc/portwall/shared-egress.conf"));
    assert_eq!(
        expect_traffic(&c, &rx, "alpha.service", "alpha", PASS_ALL),
        alpha
    );
    assert_eq!(
        expect_traffic(&c, &rx, "beta.service", "beta", PASS_B),
        beta
    );

    c.ok("portwall unprotect beta");
    assert_eq!(
        expect_traffic(&c, &rx, "beta.service", "beta", PASS_ALL),
        beta
    );
    assert_eq!(is_active(&c, "portwall@shared-egress.service"), "inactive");
    assert!(!c.exists("/sys/fs/bpf/portwall/shared-egress"));
    assert!(!c.exists("/etc/portwall"));
}

#[test]
fn one_service_with_ingress_and_egress_filters() {
    let test = "one_service_with_ingress_and_egress_filters";
    let _t = timed(test);
    if !bpftool_available(test) {
        return;
    }
    let Some(c) = Systemd::boot(test) else { return };
    let rx = Receiver::start(&c, "rx", &[7001, 7002]);
    // "both" receives on 7101/7102 and sends to the receiver.
    c.write(
        "/etc/systemd/system/both.service",
        &format!(
            "[Service]\nExecStart=/bin/sh -c '/usr/bin/python3 {PROBE} receive {SHARE}/out/both.log \
             {SHARE}/out/both.ctl 7101 7102 & exec /usr/bin/python3 {PROBE} send {SHARE}/out/both.rounds both {}'\n",
            targets()
        ),
    );
    c.ok("systemctl daemon-reload && systemctl start both.service");
    let inbox = Receiver::at(&c, "both");
    c.ok(&format!(
        "systemd-run --quiet --unit=pinger /usr/bin/python3 {PROBE} send {SHARE}/out/pinger.rounds pinger \
         udp:7101 udp:7102 tcp:7101 tcp:7102"
    ));
    const INBOX: [(&str, u16); 4] = [("udp", 7101), ("udp", 7102), ("tcp", 7101), ("tcp", 7102)];

    // The ingress filter sees the replies to the service's own TCP
    // connections too: it lets in those from the one port RULE_A lets
    // the service connect to.
    let out = c.ok(&format!(
        "portwall protect both --ingress '(udp && dst_port == 7101) || (tcp && src_port == 7002)' \
         --egress '{RULE_A}'"
    ));
    assert!(out.contains("no restart needed"), "{out}");
    for loader in [
        "portwall@both-ingress.service",
        "portwall@both-egress.service",
    ] {
        assert_eq!(is_active(&c, loader), "active");
    }
    let ingress = dispatcher_id(&c, "both-ingress");
    let egress = dispatcher_id(&c, "both-egress");
    let attached = attachments(&c, "both.service");
    assert!(
        attached.contains(&(ingress, "cgroup_inet_ingress".into())),
        "{attached:?}"
    );
    assert!(
        attached.contains(&(egress, "cgroup_inet_egress".into())),
        "{attached:?}"
    );

    expect_traffic(&c, &rx, "both.service", "both", PASS_A);
    // What reaches the service: only UDP to 7101 (TCP handshakes to it
    // are dropped on the way in).
    expect_streams(
        &c,
        &inbox,
        "pinger.service",
        "pinger",
        &INBOX,
        [true, false, false, false],
    );

    c.ok("portwall unprotect both");
    expect_traffic(&c, &rx, "both.service", "both", PASS_ALL);
    expect_streams(&c, &inbox, "pinger.service", "pinger", &INBOX, PASS_ALL);
    assert!(!c.exists("/etc/portwall"));
}

#[test]
fn the_shipped_unit_loads_a_config_for_a_transient_unit() {
    let test = "the_shipped_unit_loads_a_config_for_a_transient_unit";
    let _t = timed(test);
    let Some(c) = Systemd::boot(test) else { return };
    // The repository's unit, installed by hand as the README says, and a
    // config in the documented format.
    c.ok(&format!(
        "cp {SHARE}/portwall@.service /etc/systemd/system/"
    ));
    c.write(
        "/etc/portwall/only7001.conf",
        "# Only UDP to port 7001.\n\
         direction = egress   # the services use it with IPEgressFilterPath=\n\
         filter = udp &&\n    dst_port == 7001   # continued\n",
    );
    c.ok("portwall apply only7001 --dry-run");
    c.ok("systemctl daemon-reload && systemctl start portwall@only7001.service");
    verify(
        &c,
        "/etc/systemd/system/portwall@.service portwall@only7001.service",
    );
    let rx = Receiver::start(&c, "rx", &[7001, 7002]);

    let run = |tag: &str, filtered: bool| {
        let property = if filtered {
            "-p IPEgressFilterPath=/sys/fs/bpf/portwall/only7001"
        } else {
            ""
        };
        c.ok(&format!(
            "systemd-run --quiet --wait --pipe {property} /usr/bin/python3 {PROBE} send-once \
             {SHARE}/out/{tag}.rounds {tag} {}",
            targets()
        ));
        let got = rx.flush(&c);
        TARGETS
            .iter()
            .map(|(proto, port)| {
                got.iter()
                    .any(|m| m.tag == tag && m.proto == *proto && m.port == *port)
            })
            .collect::<Vec<bool>>()
    };
    assert_eq!(run("plain", false), [true; 4]);
    assert_eq!(run("filtered", true), [true, false, false, false]);

    // A broken edit is refused by reload, and the old filter keeps running.
    c.write(
        "/etc/portwall/only7001.conf",
        "direction = egress\nfilter = udp &&\n",
    );
    let err = c.fails("systemctl reload portwall@only7001.service");
    assert!(err.contains("portwall@only7001.service"), "{err}");
    assert_eq!(is_active(&c, "portwall@only7001.service"), "active");
    assert_eq!(run("after-bad-edit", true), [true, false, false, false]);
    let journal = c.ok("journalctl -b --no-pager -u portwall@only7001.service");
    assert!(
        journal.contains("/etc/portwall/only7001.conf:2:"),
        "{journal}"
    );
}

#[test]
fn a_filter_that_fails_to_load_changes_nothing() {
    let test = "a_filter_that_fails_to_load_changes_nothing";
    let _t = timed(test);
    let Some(c) = Systemd::boot(test) else { return };
    // An installed template whose loader always fails stands for a filter
    // the kernel refuses.
    c.write(
        "/etc/systemd/system/portwall@.service",
        "[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/false\n",
    );
    start_sender(&c, "svc.service");
    let err = c.fails("portwall protect svc --egress udp");
    assert!(
        err.contains("systemctl start portwall@svc-egress.service"),
        "{err}"
    );
    assert!(
        err.contains("portwall put back what it had changed (/etc/portwall/svc-egress.conf)"),
        "{err}"
    );
    assert!(!c.exists("/etc/portwall"));
    assert!(!c.exists("/etc/systemd/system/svc.service.d"));
    assert_eq!(c.property("svc.service", "IPEgressFilterPath"), "");
    assert_eq!(is_active(&c, "portwall@svc-egress.service"), "inactive");
    assert!(
        c.exists("/etc/systemd/system/portwall@.service"),
        "not protect's to remove"
    );
}

#[test]
fn the_harness_cleans_up_after_a_failed_check() {
    let test = "the_harness_cleans_up_after_a_failed_check";
    let _t = timed(test);
    let seen = std::sync::Mutex::new(None);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let Some(c) = Systemd::boot(test) else { return };
        *seen.lock().unwrap() = Some((c.pid(), c.cgroup().to_path_buf(), c.share()));
        c.ok("exit 3");
    }));
    let Some((pid, cgroup, share)) = seen.into_inner().unwrap() else {
        // No container: skipped, or (when skips are not allowed) failed.
        if let Err(panic) = result {
            std::panic::resume_unwind(panic);
        }
        return;
    };
    assert!(result.is_err(), "the failing check did not fail");
    assert!(
        !PathBuf::from(format!("/proc/{pid}")).exists(),
        "systemd ({pid}) still runs"
    );
    assert!(!cgroup.exists(), "{} is left behind", cgroup.display());
    assert!(!share.exists(), "{} is left behind", share.display());
}

// Without a container: what can be checked on any machine.

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn generated_units_pass_systemd_analyze_verify() {
    use portwall::lang::ir::Direction;
    use portwall::systemd::{Layout, UnitName, units};
    let test = "generated_units_pass_systemd_analyze_verify";
    // systemd-analyze probes BPF support by loading a program, and warns
    // about every IP*FilterPath= where it cannot.
    if !portwall::kernel::require_privileges_or_skip(test) {
        return;
    }
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        portwall::kernel::skip_or_fail(test, "systemd-analyze is missing (install systemd)");
        return;
    }
    let dir = std::env::temp_dir().join(format!("portwall-verify-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let binary = units::exec_path(std::path::Path::new(env!("CARGO_BIN_EXE_portwall"))).unwrap();
    std::fs::write(
        dir.join("portwall@.service"),
        units::template(&binary, units::TemplateOrigin::AutoInstalled),
    )
    .unwrap();
    let layout = Layout::system();
    let name = |s: &str| s.parse().unwrap();
    let mut paths = Vec::new();
    for (unit, body, filters) in [
        (
            "web.service",
            "[Service]\nExecStart=/bin/sleep infinity\n",
            vec![
                (Direction::Ingress, name("web-ingress")),
                (Direction::Egress, name("web-egress")),
            ],
        ),
        (
            "dns.socket",
            "[Socket]\nListenDatagram=127.0.0.1:5353\n",
            vec![(Direction::Egress, name("dns_socket-egress"))],
        ),
    ] {
        let u: UnitName = unit.parse().unwrap();
        std::fs::write(dir.join(unit), body).unwrap();
        std::fs::create_dir_all(dir.join(format!("{unit}.d"))).unwrap();
        std::fs::write(
            dir.join(format!("{unit}.d/90-portwall.conf")),
            units::drop_in(&layout, &u, &filters),
        )
        .unwrap();
        paths.push(dir.join(unit));
        for (_, f) in &filters {
            let instance = dir.join(format!("portwall@{f}.service"));
            std::os::unix::fs::symlink("portwall@.service", &instance).unwrap();
            paths.push(instance);
        }
    }
    std::fs::write(dir.join("dns.service"), "[Service]\nExecStart=/bin/true\n").unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .args(&paths)
        .output()
        .expect("run systemd-analyze");
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "systemd-analyze verify: {}\n{}",
        out.status,
        text(&out.stderr)
    );
}

#[test]
fn protect_dry_run_prints_the_files_and_changes_nothing() {
    // A unit every systemd host has, for hosts where systemd runs (the
    // dry run then checks that the unit exists).
    let o = portwall(&[
        "protect",
        "systemd-journald",
        "--egress",
        "udp && dst_port == 53",
        "--ingress",
        "tcp",
        "--dry-run",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    for expected in [
        "--- write /etc/portwall/systemd-journald-egress.conf\n",
        "direction = egress\nfilter = udp && dst_port == 53\n---\n",
        "--- write /etc/systemd/system/systemd-journald.service.d/90-portwall.conf\n",
        "Requires=portwall@systemd-journald-ingress.service\n",
        "IPIngressFilterPath=/sys/fs/bpf/portwall/systemd-journald-ingress\n",
        "IPEgressFilterPath=/sys/fs/bpf/portwall/systemd-journald-egress\n",
        "systemctl start portwall@systemd-journald-egress.service\n",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
    assert!(!std::path::Path::new("/etc/portwall/systemd-journald-egress.conf").exists());
}

#[test]
fn protect_validates_before_changing_anything() {
    let o = portwall(&["protect", "web"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("nothing to protect web.service with"),
        "{}",
        text(&o.stderr)
    );

    let o = portwall(&["protect", "web", "--egress", "tcp && dst_prot == 80"]);
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(
        err.contains("error: unknown name `dst_prot`\n --> --egress:1:8\n"),
        "{err}"
    );

    let o = portwall(&["protect", "web", "--egress", "tcp", "--name", "a.b"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("bpffs refuses dots: try `a_b`"),
        "{}",
        text(&o.stderr)
    );

    let o = portwall(&["protect", "timers.target", "--egress", "tcp"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("only service, socket, slice, scope, mount and swap units"));

    let o = portwall(&["--bpffs", "/tmp", "protect", "web", "--egress", "tcp"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("drop --bpffs / PORTWALL_BPFFS"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn apply_reports_config_errors_by_line() {
    let dir = std::env::temp_dir().join(format!("portwall-apply-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = |name: &str, body: &str| {
        let path = dir.join(name);
        std::fs::write(&path, body).unwrap();
        path.display().to_string()
    };

    let good = config(
        "good.conf",
        "# dns\ndirection = egress\nfilter = udp &&\n    dst_port == 53\n",
    );
    let o = portwall(&["apply", "dns", "--config", &good, "--dry-run"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(
        text(&o.stdout),
        "dns: egress filter: udp && dst_port == 53\n"
    );

    let bad = config(
        "bad.conf",
        "direction = egress\n\nfilter = udp\nport = 53\n",
    );
    let o = portwall(&["apply", "dns", "--config", &bad, "--dry-run"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).starts_with(&format!("portwall: error: {bad}:4: unknown setting `port`")),
        "{}",
        text(&o.stderr)
    );

    let typo = config(
        "typo.conf",
        "direction = egress\nfilter = udp &&\n  dst_prot == 53\n",
    );
    let o = portwall(&["apply", "dns", "--config", &typo, "--dry-run"]);
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(err.contains(&format!("--> {typo}:3:3\n")), "{err}");
    assert!(
        err.contains("3 |   dst_prot == 53\n  |   ^^^^^^^^\n"),
        "{err}"
    );

    let o = portwall(&[
        "apply",
        "dns",
        "--config",
        &dir.join("missing.conf").display().to_string(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("missing.conf: No such file or directory (os error 2); write it")
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn unit_cgroup_explains_why_not() {
    use portwall::systemd::{SystemdError, unit_cgroup};
    let err = unit_cgroup("multi-user.target").unwrap_err();
    assert!(matches!(err, SystemdError::NoCgroupUnit { .. }), "{err}");
    let err = unit_cgroup("portwall-no-such-unit-here").unwrap_err();
    if portwall::systemd::systemctl::booted() {
        assert!(matches!(err, SystemdError::NoSuchUnit(_)), "{err}");
    } else {
        assert!(matches!(err, SystemdError::NotBooted), "{err}");
        assert!(err.to_string().contains("need systemd as PID 1"));
    }
}

#[test]
fn run_uses_a_transient_scope_under_systemd() {
    let test = "run_uses_a_transient_scope_under_systemd";
    let _t = timed(test);
    let Some(c) = Systemd::boot(test) else { return };
    // The command reports its cgroup, tries a UDP send the filter forbids,
    // and exits with a status of its own.
    let script = "cat /proc/self/cgroup; \
        python3 -c \"import socket,sys\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n\
try:\n    s.sendto(b'x',('127.0.0.1',7002)); print('sent')\nexcept PermissionError:\n    print('eperm')\"; \
        exit 5";
    let out = c.sh(&format!(
        "portwall run --egress 'udp && dst_port == 7001' -- sh -c \"{}\"",
        script.replace('"', "\\\"")
    ));
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(5), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.lines().any(|l| l.starts_with("0::/")
            && l.contains("/portwall-run-")
            && l.ends_with(".scope")),
        "not in a transient scope: {stdout}"
    );
    assert!(
        stdout.contains("eperm"),
        "the filter did not apply: {stdout}"
    );
    assert!(
        text(&out.stderr).contains("egress: 0 packets forwarded, 1 dropped"),
        "{}",
        text(&out.stderr)
    );
    // Nothing stays: no pin, no scope.
    let pins = c.ok("ls /sys/fs/bpf/portwall 2>/dev/null || true");
    assert!(!pins.contains("portwall-run"), "{pins}");
    let units = c.ok("systemctl list-units --all --no-legend 'portwall-run-*' || true");
    assert!(units.trim().is_empty(), "{units}");
}

#[test]
fn units_name_cgroups_and_filters_name_their_units() {
    let test = "units_name_cgroups_and_filters_name_their_units";
    let _t = timed(test);
    let Some(c) = Systemd::boot(test) else { return };
    c.ok("portwall load f 'udp'");
    c.ok("systemd-run --quiet --unit sleeper sleep 300");
    c.ok("systemd-run --quiet --unit user-of-f -p IPEgressFilterPath=/sys/fs/bpf/portwall/f sleep 300");

    // --unit finds the unit's cgroup through systemd.
    c.ok("portwall attach f --unit sleeper --egress");
    let shown: serde_json::Value =
        serde_json::from_str(&c.ok("portwall show --unit sleeper --json")).unwrap();
    assert!(
        shown["cgroup"]
            .as_str()
            .unwrap()
            .ends_with("/system.slice/sleeper.service"),
        "{shown}"
    );
    assert_eq!(shown["attached"][0]["filter"], "f", "{shown}");
    assert_eq!(shown["attached"][0]["direction"], "egress", "{shown}");

    // The filter names the units that use it, and shows both attachments.
    let info: serde_json::Value = serde_json::from_str(&c.ok("portwall show f --json")).unwrap();
    assert_eq!(
        info["units"],
        serde_json::json!(["user-of-f.service"]),
        "{info}"
    );
    let cgroups: Vec<&str> = info["attachments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["cgroup"].as_str().unwrap())
        .collect();
    assert_eq!(
        cgroups,
        [
            "/system.slice/sleeper.service",
            "/system.slice/user-of-f.service"
        ],
        "{info}"
    );
    c.ok("portwall detach f --unit sleeper --egress");

    // A unit that is not running has no cgroup to attach to (a stopped
    // transient unit is forgotten at once, a unit file's stays known).
    c.write(
        "/etc/systemd/system/idle.service",
        "[Service]\nExecStart=/bin/sleep 300\n",
    );
    c.ok("systemctl daemon-reload");
    let err = c.fails("portwall attach f --unit idle --egress");
    assert!(
        err.contains("idle.service") && err.contains("not running"),
        "{err}"
    );
    c.ok("systemctl stop sleeper.service");
    let err = c.fails("portwall attach f --unit sleeper --egress");
    assert!(err.contains("sleeper.service"), "{err}");
    let err = c.fails("portwall show --unit no-such-unit");
    assert!(err.contains("no-such-unit"), "{err}");
}

/// The second language under systemd: direction-aware names resolved by
/// the config's direction, sets, ranges, addresses and `proto`, applied to
/// a running service and replaced live by a reload.
#[test]
fn protect_with_the_second_language() {
    let test = "protect_with_the_second_language";
    let _t = timed(test);
    let Some(c) = Systemd::boot(test) else { return };
    let rx = Receiver::start(&c, "rx", &[7001, 7002]);
    start_sender(&c, "sender.service");
    let first = expect_traffic(&c, &rx, "sender.service", "sender", PASS_ALL);

    // On egress the remote end is the destination: this is RULE_A.
    let rule = "remote_ip in {127.0.0.0/8, ::1} && \
                ((proto == 17 && remote_port in {7001, 9000..9100}) || (tcp && remote_port in 7002..7002))";
    c.ok(&format!("portwall protect sender --egress '{rule}'"));
    assert_eq!(
        expect_traffic(&c, &rx, "sender.service", "sender", PASS_A),
        first
    );

    // The same names need a direction: a config without one is refused
    // and the running filter stays.
    c.write(
        "/etc/portwall/sender-egress.conf",
        "direction = either\nfilter = remote_port == 7001\n",
    );
    c.fails("systemctl reload portwall@sender-egress");
    assert_eq!(
        expect_traffic(&c, &rx, "sender.service", "sender", PASS_A),
        first
    );

    // A reload to another address-and-set rule changes the same process.
    c.write(
        "/etc/portwall/sender-egress.conf",
        "direction = egress\nfilter = not remote_ip in {10.0.0.0/8} && proto == 6 && remote_port in {7001}\n",
    );
    c.ok("systemctl reload portwall@sender-egress");
    assert_eq!(
        expect_traffic(
            &c,
            &rx,
            "sender.service",
            "sender",
            [false, false, true, false]
        ),
        first
    );
}
