//! Drop tracing: the trace hook of managed filters, the tracer and its
//! ring buffer, and `portwall trace` on real loopback traffic with its
//! pcap checked by the real `tcpdump -r`.

mod common;

use common::bpffs::PrivateBpffs;
use common::kernel;
use common::packets;
use common::traffic::{self, Action, Counts, Outcome, Receiver, RemoteReceiver};
use portwall::filters::{self, FilterName, LoadRequest, PinDir};
use portwall::kernel::cgroup::{self, TempCgroup};
use portwall::lang::ir::Direction;
use portwall::lang::{check, parse, print};
use portwall::packet::Packet;
use portwall::trace::record::Event;
use portwall::trace::{Health, Mode, Options, TraceError, Tracer};
use std::io::{BufRead, BufReader, Read};
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

#[test]
fn traffic_helper() {
    common::traffic::helper_main();
}

/// Loads (or replaces) `expr` as filter `name` in the pin directory.
fn load(pins: &PinDir, name: &str, expr: &str, replace: bool) {
    let ast = parse::parse(expr).unwrap();
    let filter = check::check(&ast).unwrap();
    filters::load(
        pins,
        &LoadRequest {
            name: &name.parse().unwrap(),
            expression: expr,
            canonical: print::print(&ast),
            filter: &filter,
            direction: None,
            replace,
        },
    )
    .unwrap_or_else(|e| panic!("load {name} `{expr}`: {e}"));
}

/// The pinned dispatcher's verdict on a packet, through the kernel's test
/// run (the same dispatcher, filter, counters and trace hook as traffic).
fn verdict(bpffs: &Path, name: &str, p: &Packet) -> u32 {
    let pin = bpffs.join("portwall").join(name);
    portwall::kernel::test_run_pinned(&pin, &p.to_test_frame(), 1)
        .expect("test run")
        .retval
}

/// Every record waiting in the tracer's ring buffer.
fn events(tracer: &mut Tracer) -> Vec<Event> {
    let mut out = Vec::new();
    tracer.ring().drain(usize::MAX, |r| {
        out.push(Event::decode(r).expect("a valid record"))
    });
    out
}

fn udp(port: u16) -> Packet {
    packets::ipv4_udp(packets::SRC4, packets::DST4, 1000, port)
}

#[test]
fn the_tracer_records_verdicts_without_changing_them() {
    if !kernel::available("the_tracer_records_verdicts_without_changing_them") {
        return;
    }
    let fs = PrivateBpffs::mount("trace-unit");
    let pins = PinDir::open(Some(fs.path()), true).unwrap();
    load(&pins, "web", "udp && dst_port == 53", false);
    let name: FilterName = "web".parse().unwrap();

    // No tracer: verdicts as the filter says.
    assert_eq!(verdict(fs.path(), "web", &udp(53)), 1);
    assert_eq!(verdict(fs.path(), "web", &udp(54)), 0);

    let mut tracer = Tracer::start(&pins, &name, Options::default()).unwrap();
    assert_eq!(verdict(fs.path(), "web", &udp(53)), 1);
    assert_eq!(verdict(fs.path(), "web", &udp(54)), 0);
    let seen = events(&mut tracer);
    assert_eq!(seen.len(), 1, "drops only: {seen:?}");
    let e = &seen[0];
    assert!(!e.forwarded);
    assert_eq!(e.packet, udp(54));
    assert_eq!(e.len as usize, udp(54).data.len());
    assert!(e.complete());
    // A test run has no ingress interface: the egress side.
    assert_eq!(e.direction, Direction::Egress);
    assert_eq!(tracer.lost().unwrap(), 0);

    // A second trace of the same filter is refused while this one runs.
    let err = Tracer::start(&pins, &name, Options::default())
        .err()
        .unwrap();
    assert!(matches!(err, TraceError::Busy { .. }), "{err}");

    // Stopped: nothing more is recorded, and verdicts are unchanged.
    tracer.stop().unwrap();
    assert_eq!(verdict(fs.path(), "web", &udp(54)), 0);
    assert!(events(&mut tracer).is_empty());
    drop(tracer);

    // Everything: forwards too, in order.
    let all = Options {
        mode: Mode::All,
        ..Options::default()
    };
    let mut tracer = Tracer::start(&pins, &name, all).unwrap();
    for port in [53, 54, 53] {
        verdict(fs.path(), "web", &udp(port));
    }
    let seen: Vec<(bool, Packet)> = events(&mut tracer)
        .into_iter()
        .map(|e| (e.forwarded, e.packet))
        .collect();
    assert_eq!(
        seen,
        vec![(true, udp(53)), (false, udp(54)), (true, udp(53))]
    );
}

// ---------------------------------------------------------------------------
// The hook in the kernel: shared across replaces, emptied when the tracer's
// process goes, absent from filters an older portwall loaded.

/// The program ids in the filter's trace hook slots (drop, forward).
fn hook_slots(pins: &PinDir, name: &str) -> [Option<u32>; 2] {
    let hook = filters::trace_hook(pins, &name.parse().unwrap()).unwrap();
    [0, 1].map(
        |slot| match portwall::kernel::sys::map_lookup(hook.fd().as_fd(), slot, 4) {
            Ok(v) => Some(u32::from_ne_bytes([v[0], v[1], v[2], v[3]])),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => None,
            Err(e) => panic!("lookup of slot {slot}: {e}"),
        },
    )
}

#[test]
fn a_trace_keeps_working_across_a_live_replace() {
    if !kernel::available("a_trace_keeps_working_across_a_live_replace") {
        return;
    }
    let fs = PrivateBpffs::mount("trace-replace");
    let pins = PinDir::open(Some(fs.path()), true).unwrap();
    load(&pins, "web", "udp && dst_port == 53", false);
    let name: FilterName = "web".parse().unwrap();
    let mut tracer = Tracer::start(&pins, &name, Options::default()).unwrap();
    load(&pins, "web", "udp && dst_port == 54", true);
    // The new filter drops 53, and its drop reaches the same tracer.
    assert_eq!(verdict(fs.path(), "web", &udp(53)), 0);
    let seen = events(&mut tracer);
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].packet, udp(53));
    // Nothing was left pinned by the replace.
    assert!(!fs.path().join("portwall/web@trace").exists());
}

#[test]
fn a_filter_without_a_hook_says_to_reload_it_and_a_replace_adds_one() {
    if !kernel::available("a_filter_without_a_hook_says_to_reload_it_and_a_replace_adds_one") {
        return;
    }
    let fs = PrivateBpffs::mount("trace-old");
    let pins = PinDir::open(Some(fs.path()), true).unwrap();
    load(&pins, "web", "udp && dst_port == 53", false);
    // What an older portwall ran: a filter program without the hook's
    // program array, put in the jump table behind the dispatcher.
    let filter = check::check(&parse::parse("udp && dst_port == 53").unwrap()).unwrap();
    let old = kernel::load(&filter, "udp && dst_port == 53");
    {
        let data =
            aya::maps::MapData::from_pin(fs.path().join("portwall/web@jump")).expect("jump table");
        let map = aya::maps::Map::from_map_data(data).unwrap();
        let mut jump = aya::maps::ProgramArray::try_from(map).unwrap();
        jump.set(0, old.program().unwrap().fd().unwrap(), 0)
            .unwrap();
    }
    let err = common::cli::fails(common::cli::portwall(&[
        "--bpffs",
        fs.path().to_str().unwrap(),
        "trace",
        "web",
    ]));
    assert!(
        err.contains("filter `web` cannot be traced: it was loaded by an older portwall; reload it with this version"),
        "{err}"
    );
    // A replace from that program gives the filter a hook.
    load(&pins, "web", "udp && dst_port == 53", true);
    let mut tracer = Tracer::start(&pins, &"web".parse().unwrap(), Options::default()).unwrap();
    assert_eq!(verdict(fs.path(), "web", &udp(54)), 0);
    assert_eq!(events(&mut tracer).len(), 1);
}

// ---------------------------------------------------------------------------
// `portwall trace` on real traffic.

/// A wait that ends as soon as what it waits for happens.
const DEADLINE: Duration = Duration::from_secs(20);

/// `portwall trace` running as a child, its stderr read line by line by a
/// thread (so the test can wait for one line with a deadline).
struct TraceRun {
    child: Child,
    stderr: mpsc::Receiver<String>,
    stderr_lines: Vec<String>,
}

impl TraceRun {
    /// Starts `portwall --bpffs BPFFS trace ARGS` and waits until it says
    /// it is tracing.
    fn start(bpffs: &Path, args: &[&str]) -> TraceRun {
        let mut child = Command::new(env!("CARGO_BIN_EXE_portwall"))
            .args(["--bpffs", bpffs.to_str().unwrap(), "trace"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("runs portwall trace");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut run = TraceRun {
            child,
            stderr: rx,
            stderr_lines: Vec::new(),
        };
        let line = run.stderr_line("tracing ");
        assert!(line.ends_with("; Ctrl-C to stop"), "{line}");
        run
    }

    /// Waits for a line of stderr starting with `prefix`.
    fn stderr_line(&mut self, prefix: &str) -> String {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stderr.recv_timeout(left) {
                Ok(line) => {
                    self.stderr_lines.push(line.clone());
                    if line.starts_with(prefix) {
                        return line;
                    }
                }
                Err(e) => panic!(
                    "no `{prefix}` line from portwall trace ({e}); its stderr: {:?}",
                    self.stderr_lines
                ),
            }
        }
    }

    /// Reads stdout to its end in a thread, so the child never blocks on it.
    fn read_stdout(&mut self) -> std::thread::JoinHandle<String> {
        let mut stdout = self.child.stdout.take().expect("stdout not taken yet");
        std::thread::spawn(move || {
            let mut text = String::new();
            stdout.read_to_string(&mut text).expect("reads stdout");
            text
        })
    }

    fn interrupt(&self) {
        // SAFETY: kill(2) on the child this test started and has not reaped.
        assert_eq!(
            unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) },
            0
        );
    }

    /// Waits for the child to end (its summary line is the last thing it
    /// writes) and returns its status, stdout and the summary's counts
    /// (traced, lost).
    fn finish(mut self) -> (std::process::ExitStatus, String, (u64, u64)) {
        let stdout = self.read_stdout();
        let summary = self.stderr_line("traced ");
        let status = self.child.wait().unwrap();
        let stdout = stdout.join().unwrap();
        // "traced N packets of NAME, M lost"
        let words: Vec<&str> = summary.split(' ').collect();
        assert_eq!(words.len(), 7, "{summary}");
        assert_eq!(
            (words[2], words[3], words[6]),
            ("packets", "of", "lost"),
            "{summary}"
        );
        let counts = (words[1].parse().unwrap(), words[5].parse().unwrap());
        (status, stdout, counts)
    }
}

impl Drop for TraceRun {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `portwall --bpffs BPFFS ARGS`, which must succeed.
fn pw(bpffs: &Path, args: &[&str]) -> String {
    let mut all = vec!["--bpffs", bpffs.to_str().unwrap()];
    all.extend_from_slice(args);
    common::cli::ok(common::cli::portwall(&all))
}

fn test_cgroup(test: &str) -> TempCgroup {
    let root = cgroup::cgroup2_mount().expect("cgroup2");
    TempCgroup::create(&root, &format!("portwall-test-{test}")).expect("test cgroup")
}

/// The cgroup as `portwall trace` names it without systemd: its path
/// below the cgroup2 mount.
fn cgroup_name(cg: &TempCgroup) -> String {
    let root = cgroup::cgroup2_mount().unwrap();
    format!("/{}", cg.path().strip_prefix(&root).unwrap().display())
}

fn dropped(bpffs: &Path, name: &str, direction: &str) -> u64 {
    let show: serde_json::Value =
        serde_json::from_str(&pw(bpffs, &["show", name, "--json"])).unwrap();
    show["counters"][direction]["dropped_packets"]
        .as_u64()
        .unwrap()
}

/// What `portwall trace` printed about a packet, after the time.
fn rest_of_line(line: &str) -> &str {
    let (time, rest) = line.split_once(' ').unwrap_or_else(|| panic!("{line}"));
    // HH:MM:SS.uuuuuu
    assert_eq!(time.len(), 15, "{line}");
    rest
}

#[test]
fn trace_shows_the_drops_of_real_traffic_and_tcpdump_reads_its_pcap() {
    if !kernel::available("trace_shows_the_drops_of_real_traffic_and_tcpdump_reads_its_pcap") {
        return;
    }
    let fs = PrivateBpffs::mount("trace-egress");
    let b = fs.path();
    let mut rx = Receiver::bind().unwrap();
    let a = rx.addrs().unwrap();
    let cg = test_cgroup("trace-egress");
    // IPv4 UDP to the receiver passes; its IPv6 twin and ICMP are dropped.
    pw(
        b,
        &[
            "load",
            "fw",
            &format!("ip && udp && dst_port == {}", a.udp_v4.port()),
        ],
    );
    pw(
        b,
        &[
            "attach",
            "fw",
            "--cgroup",
            cg.path().to_str().unwrap(),
            "--egress",
        ],
    );
    let pcap = std::env::temp_dir().join(format!("portwall-trace-{}.pcap", std::process::id()));
    let _remove = RemoveFile(pcap.clone());
    let trace = TraceRun::start(b, &["fw", "--pcap", pcap.to_str().unwrap(), "--count", "3"]);

    let report = traffic::run_sender(
        cg.path(),
        &[
            Action::UdpSend {
                addr: a.udp_v4,
                count: 2,
            },
            Action::UdpSend {
                addr: a.udp_v6,
                count: 2,
            },
            Action::IcmpEcho {
                addr: "127.0.0.1".parse().unwrap(),
                count: 1,
                timeout_ms: 100,
            },
        ],
    )
    .unwrap();
    assert_eq!(report[0], Outcome::udp_sent(2));
    assert_eq!(report[1], Outcome::udp_eperm(2));
    assert!(
        matches!(report[2], Outcome::Icmp { eperm: 1, .. }),
        "{:?}",
        report[2]
    );
    let expected = Counts {
        udp_v4: 2,
        ..Counts::default()
    };
    assert_eq!(rx.wait_for(expected, DEADLINE).unwrap(), expected);

    // --count 3: it ends by itself after the three drops.
    let (status, stdout, counts) = trace.finish();
    assert!(status.success(), "{status}");
    assert_eq!(counts, (3, 0));
    assert_eq!(dropped(b, "fw", "egress"), 3);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    let group = cgroup_name(&cg);
    // The two datagrams went from one socket: one source port. Each is
    // the 40-byte IPv6 header, 8 of UDP and "portwall N".
    let sport = lines[0]
        .split(' ')
        .nth(5)
        .and_then(|s| s.strip_prefix("[::1]:"))
        .unwrap_or_else(|| panic!("{}", lines[0]))
        .to_string();
    for line in &lines[..2] {
        assert_eq!(
            rest_of_line(line),
            format!(
                "{group} egress drop IPv6 [::1]:{sport} -> [::1]:{} udp len 58",
                a.udp_v6.port()
            )
        );
    }
    // The echo request: 20 bytes of IPv4, 8 of ICMP, "portwall echo".
    assert_eq!(
        rest_of_line(lines[2]),
        format!("{group} egress drop IPv4 127.0.0.1 -> 127.0.0.1 icmp echo-request len 41")
    );

    // The real tcpdump reads the file: the same packets.
    let out = Command::new("tcpdump")
        .args(["-nn", "-r", pcap.to_str().unwrap()])
        .output()
        .expect("tcpdump runs (scripts/install-test-deps installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("link-type RAW (Raw IP), snapshot length 128"),
        "{err}"
    );
    let dump = String::from_utf8(out.stdout).unwrap();
    let dump: Vec<&str> = dump.lines().map(rest_of_line).collect();
    let v6 = format!("IP6 ::1.{sport} > ::1.{}: UDP, length 10", a.udp_v6.port());
    assert_eq!(dump[..2], [v6.as_str(), v6.as_str()], "{dump:?}");
    assert!(
        dump[2].starts_with("IP 127.0.0.1 > 127.0.0.1: ICMP echo request, id "),
        "{dump:?}"
    );
    assert_eq!(dump.len(), 3);

    // Tracing is off again: the hook is empty.
    let pins = PinDir::open(Some(b), false).unwrap();
    assert_eq!(hook_slots(&pins, "fw"), [None, None]);
}

#[test]
fn trace_all_shows_ingress_verdicts_as_json_with_the_cgroup() {
    if !kernel::available("trace_all_shows_ingress_verdicts_as_json_with_the_cgroup") {
        return;
    }
    let fs = PrivateBpffs::mount("trace-ingress");
    let b = fs.path();
    let cg = test_cgroup("trace-ingress");
    let mut remote = RemoteReceiver::spawn(cg.path()).unwrap();
    let a = remote.addrs();
    pw(
        b,
        &[
            "load",
            "fw",
            &format!("!udp || dst_port == {}", a.udp_v6.port()),
        ],
    );
    pw(
        b,
        &[
            "attach",
            "fw",
            "--cgroup",
            cg.path().to_str().unwrap(),
            "--ingress",
        ],
    );
    let trace = TraceRun::start(b, &["fw", "--all", "--json", "--count", "4"]);
    let sent = traffic::run_actions(&[
        Action::UdpSend {
            addr: a.udp_v4,
            count: 2,
        },
        Action::UdpSend {
            addr: a.udp_v6,
            count: 2,
        },
    ]);
    assert_eq!(sent, vec![Outcome::udp_sent(2), Outcome::udp_sent(2)]);
    let expected = Counts {
        udp_v6: 2,
        ..Counts::default()
    };
    assert_eq!(remote.wait_for(expected, DEADLINE).unwrap(), expected);

    let (status, stdout, counts) = trace.finish();
    assert!(status.success(), "{status}");
    assert_eq!(counts, (4, 0));
    let events: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(events.len(), 4, "{stdout}");
    let ino = std::fs::metadata(cg.path()).unwrap().ino();
    let mut seen: Vec<(String, String, u64)> = Vec::new();
    for e in &events {
        assert_eq!(e["direction"], "ingress", "{e}");
        assert_eq!(e["cgroup_id"], ino, "{e}");
        assert_eq!(e["cgroup"], cgroup_name(&cg).as_str(), "{e}");
        assert_eq!(e["packet"]["protocol_name"], "udp", "{e}");
        assert_eq!(e["len"], e["captured"], "{e}");
        seen.push((
            e["verdict"].as_str().unwrap().to_string(),
            e["packet"]["dst"].as_str().unwrap().to_string(),
            e["packet"]["dst_port"].as_u64().unwrap(),
        ));
    }
    seen.sort();
    let v4 = (
        "drop".to_string(),
        "127.0.0.1".to_string(),
        u64::from(a.udp_v4.port()),
    );
    let v6 = (
        "forward".to_string(),
        "::1".to_string(),
        u64::from(a.udp_v6.port()),
    );
    assert_eq!(seen, vec![v4.clone(), v4, v6.clone(), v6]);
    remote.finish().unwrap();
}

#[test]
fn lost_events_are_counted_and_reported() {
    if !kernel::available("lost_events_are_counted_and_reported") {
        return;
    }
    let fs = PrivateBpffs::mount("trace-lost");
    let b = fs.path();
    let rx = Receiver::bind().unwrap();
    let a = rx.addrs().unwrap();
    let cg = test_cgroup("trace-lost");
    pw(b, &["load", "fw", "tcp"]);
    pw(
        b,
        &[
            "attach",
            "fw",
            "--cgroup",
            cg.path().to_str().unwrap(),
            "--egress",
        ],
    );
    // One page of ring buffer holds a couple of dozen records, and this
    // test reads none of the tracer's output until the flood is over: once
    // the pipe to it is full, the tracer is stuck writing, the ring buffer
    // fills, and the rest of the drops can only be counted as lost.
    let trace = TraceRun::start(b, &["fw", "--buffer", "4K"]);
    const FLOOD: u32 = 3000;
    let report = traffic::run_sender(
        cg.path(),
        &[Action::UdpSend {
            addr: a.udp_v4,
            count: FLOOD,
        }],
    )
    .unwrap();
    assert_eq!(report[0], Outcome::udp_eperm(FLOOD));
    assert_eq!(dropped(b, "fw", "egress"), u64::from(FLOOD));
    trace.interrupt();
    let (status, stdout, (traced, lost)) = trace.finish();
    assert!(status.success(), "{status}");
    // Every drop is either shown or counted lost; at most a few pipes'
    // and ring buffers' worth are shown.
    assert_eq!(traced, stdout.lines().count() as u64);
    assert_eq!(
        traced + lost,
        u64::from(FLOOD),
        "traced {traced}, lost {lost}"
    );
    assert!(lost > 0 && traced > 0, "traced {traced}, lost {lost}");
}

#[test]
fn a_killed_trace_leaves_the_hook_empty() {
    if !kernel::available("a_killed_trace_leaves_the_hook_empty") {
        return;
    }
    let fs = PrivateBpffs::mount("trace-kill");
    let b = fs.path();
    pw(b, &["load", "fw", "tcp"]);
    let pins = PinDir::open(Some(b), false).unwrap();
    let mut trace = TraceRun::start(b, &["fw", "--all"]);
    let [drop_slot, forward_slot] = hook_slots(&pins, "fw");
    assert!(drop_slot.is_some() && drop_slot == forward_slot);
    // A second trace is refused while this one runs.
    let err = common::cli::fails(common::cli::portwall(&[
        "--bpffs",
        b.to_str().unwrap(),
        "trace",
        "fw",
    ]));
    assert!(err.contains("filter `fw` is already being traced"), "{err}");

    trace.child.kill().unwrap();
    trace.child.wait().unwrap();
    // The kernel empties the hook when the tracer's last descriptor to it
    // closes, from a work queue: there is nothing to wait on but the
    // slots themselves.
    let deadline = Instant::now() + DEADLINE;
    while hook_slots(&pins, "fw") != [None, None] {
        assert!(Instant::now() < deadline, "the hook was not emptied");
        std::thread::sleep(Duration::from_millis(10));
    }
    // And a new trace can start.
    let again = TraceRun::start(b, &["fw"]);
    again.interrupt();
    let (status, _, counts) = again.finish();
    assert!(status.success());
    assert_eq!(counts, (0, 0));
}

struct RemoveFile(std::path::PathBuf);

impl Drop for RemoveFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn a_ring_buffer_too_small_for_one_record_is_refused() {
    if !kernel::available("a_ring_buffer_too_small_for_one_record_is_refused") {
        return;
    }
    let fs = PrivateBpffs::mount("trace-small");
    let pins = PinDir::open(Some(fs.path()), true).unwrap();
    load(&pins, "web", "tcp", false);
    // A page cannot hold 32 + 8192 bytes of record and its 8-byte header.
    let options = Options {
        snap: 8192,
        ring_bytes: 4096,
        ..Options::default()
    };
    let err = Tracer::start(&pins, &"web".parse().unwrap(), options)
        .err()
        .unwrap();
    assert!(
        matches!(err, TraceError::RingTooSmall { record: 8232, .. }),
        "{err}"
    );
    assert_eq!(portwall::trace::ring_size(1), 4096);
    assert_eq!(portwall::trace::ring_size(4097), 8192);
    assert_eq!(portwall::trace::ring_size(3 * 4096), 4 * 4096);
}

#[test]
fn under_systemd_a_trace_names_the_unit() {
    let Some(c) = common::systemd::Systemd::boot("under_systemd_a_trace_names_the_unit") else {
        return;
    };
    c.ok("portwall load f 'udp && dst_port == 7001'");
    // The trace's stderr comes through a fifo: its first line says the
    // trace is in place, and its end says the trace is over.
    let out = c.ok("set -e; mkfifo /tmp/err
        portwall trace f --count 1 >/tmp/out 2>/tmp/err &
        exec 3</tmp/err
        read -r first <&3
        echo \"$first\" >&2
        systemd-run --quiet --wait --unit sender -p IPEgressFilterPath=/sys/fs/bpf/portwall/f \
            /usr/bin/python3 -c \"import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
try:
    s.sendto(b'x', ('127.0.0.1', 7002))
except PermissionError:
    pass\"
        cat <&3 >&2
        wait $!
        cat /tmp/out");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 1, "{out}");
    let rest = rest_of_line(lines[0]);
    let (before, after) = rest
        .split_once("127.0.0.1:")
        .unwrap_or_else(|| panic!("{rest}"));
    assert_eq!(before, "sender.service egress drop IPv4 ");
    // A 1-byte datagram: 20 bytes of IPv4, 8 of UDP, 1 of payload.
    assert!(after.ends_with(" -> 127.0.0.1:7002 udp len 29"), "{rest}");
}

#[test]
fn a_tracer_refills_an_emptied_hook_and_notices_an_unload() {
    if !kernel::available("a_tracer_refills_an_emptied_hook_and_notices_an_unload") {
        return;
    }
    let fs = PrivateBpffs::mount("trace-check");
    let pins = PinDir::open(Some(fs.path()), true).unwrap();
    load(&pins, "web", "udp && dst_port == 53", false);
    let name: FilterName = "web".parse().unwrap();
    let mut tracer = Tracer::start(&pins, &name, Options::default()).unwrap();
    assert_eq!(tracer.check().unwrap(), Health::Tracing);
    let [ours, None] = hook_slots(&pins, "web") else {
        panic!("drops only: slot 1 stays empty")
    };
    // What the kernel's deferred clearing of the hook does.
    let hook = filters::trace_hook(&pins, &name).unwrap();
    let mut hook =
        aya::maps::ProgramArray::try_from(aya::maps::Map::from_map_data(hook).unwrap()).unwrap();
    hook.clear_index(&0).unwrap();
    assert_eq!(hook_slots(&pins, "web"), [None, None]);
    assert_eq!(tracer.check().unwrap(), Health::Refilled);
    assert_eq!(hook_slots(&pins, "web"), [ours, None]);
    assert_eq!(verdict(fs.path(), "web", &udp(54)), 0);
    assert_eq!(events(&mut tracer).len(), 1);

    filters::unload(&pins, &name).unwrap();
    assert_eq!(tracer.check().unwrap(), Health::Unloaded);
}
