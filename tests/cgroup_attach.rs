//! Cgroups and attachments with real traffic: programs attached with the
//! legacy `BPF_PROG_ATTACH` (multi) to temporary cgroups, checked by
//! sending loopback UDP, TCP and ICMP from (egress) or to (ingress) a child
//! process inside the cgroup.
//!
//! Privileged tests build their programs first and skip late (see
//! `kernel::require_privileges_or_skip`); each creates its own uniquely
//! named cgroups under the cgroup2 mount, which `TempCgroup` kills and
//! removes even when the test fails.

mod common;

use std::fs;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::AsFd;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::traffic::{self, Action, Counts, Outcome, Receiver, RemoteReceiver, TcpOutcome};
use portwall::compiler::asm::{Asm, Program, Reg};
use portwall::compiler::elf::{ObjectOptions, write_object};
use portwall::kernel::attach::{self, AttachError, Direction};
use portwall::kernel::cgroup::{self, CgroupError, MountEntry, TempCgroup};
use portwall::kernel::{self, LoadedFilter};

/// Runs the child side of the traffic harness (see `common::traffic`).
#[test]
fn traffic_helper() {
    traffic::helper_main();
}

/// How long to wait for something that must not arrive. Loopback delivery
/// takes microseconds, so this is generous; it is also what a check that
/// nothing arrives costs.
const QUIET: Duration = Duration::from_millis(150);
/// How long to wait for something that must arrive (returns as soon as it does).
const ARRIVE: Duration = Duration::from_secs(5);
/// TCP connect timeout. A loopback handshake takes microseconds and a
/// dropped SYN is first retransmitted after 1 s, so this tells them apart.
const CONNECT_MS: u64 = 300;
/// No program ids.
const NONE: Vec<u32> = Vec::new();

// ----------------------------------------------------------------------
// Programs and fixtures.

/// An assembled program written as an ELF object, not yet loaded.
struct Built {
    elf: Vec<u8>,
    name: &'static str,
}

impl Built {
    /// `r0 = verdict; exit`, as program `name`.
    fn constant(verdict: i32, name: &'static str) -> Built {
        let mut asm = Asm::new();
        asm.mov64_imm(Reg::R0, verdict).exit();
        let program: Program = asm.finish().expect("assembles");
        let options = ObjectOptions {
            program_name: name.to_string(),
            ..ObjectOptions::default()
        };
        let elf = write_object(&program, &options).expect("object writes");
        Built { elf, name }
    }

    fn load(&self) -> LoadedFilter {
        kernel::load(&self.elf, self.name).expect("program loads")
    }
}

fn drop_all() -> Built {
    Built::constant(0, "pw_drop_all")
}

fn forward_all() -> Built {
    Built::constant(1, "pw_forward_all")
}

fn id_of(filter: &LoadedFilter) -> u32 {
    attach::prog_id(filter.fd()).expect("program id")
}

/// A fresh cgroup directly under the cgroup2 mount.
fn temp_cgroup(test: &str) -> TempCgroup {
    let mount = cgroup::cgroup2_mount().expect("cgroup2 is mounted");
    TempCgroup::create(&mount, &format!("pwtest-{test}")).expect("cgroup is created")
}

fn udp_eperm() -> Vec<Outcome> {
    vec![Outcome::udp_eperm(3), Outcome::udp_eperm(3)]
}

fn udp_sent() -> Vec<Outcome> {
    vec![Outcome::udp_sent(3), Outcome::udp_sent(3)]
}

/// UDP (3 datagrams each to 127.0.0.1 and ::1) and TCP (one connection each)
/// to `receiver` from a child in `cgroup`; returns the child's outcomes.
fn probe_from(cgroup: &Path, receiver: &Receiver) -> Vec<Outcome> {
    let actions = receiver.addrs().expect("addresses").probe(3, CONNECT_MS);
    traffic::run_sender(cgroup, &actions).expect("the sender runs")
}

fn delivered() -> Vec<Outcome> {
    let mut expected = udp_sent();
    expected.push(Outcome::Tcp(TcpOutcome::Connected));
    expected.push(Outcome::Tcp(TcpOutcome::Connected));
    expected
}

fn blocked_on_egress() -> Vec<Outcome> {
    let mut expected = udp_eperm();
    expected.push(Outcome::Tcp(TcpOutcome::TimedOut));
    expected.push(Outcome::Tcp(TcpOutcome::TimedOut));
    expected
}

// ----------------------------------------------------------------------
// Unprivileged: parsing and path resolution on fake trees.

const UNIFIED: &str = "\
22 1 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
25 21 0:23 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
26 21 0:24 / /sys/fs/bpf rw,nosuid,nodev,noexec,relatime shared:5 - bpf bpf rw,mode=700
";

const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime shared:9 - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw
50 31 0:38 / /mnt/second\\040cgroup2 rw,relatime - cgroup2 cgroup2 rw
51 31 0:38 /system.slice /mnt/subtree rw,relatime - cgroup2 cgroup2 rw
";

#[test]
fn mountinfo_unified_layout() {
    let entries = cgroup::parse_mountinfo(UNIFIED);
    assert_eq!(entries.len(), 3);
    assert_eq!(
        cgroup::find_cgroup2(&entries),
        Some(&MountEntry {
            root: PathBuf::from("/"),
            mount_point: PathBuf::from("/sys/fs/cgroup"),
            fstype: "cgroup2".to_string(),
        })
    );
}

#[test]
fn mountinfo_hybrid_layout_takes_the_first_cgroup2() {
    let entries = cgroup::parse_mountinfo(HYBRID);
    // Optional fields (`shared:9`) vary in number; the fstype follows `-`.
    assert_eq!(entries.len(), 6);
    assert_eq!(entries[1].fstype, "cgroup");
    let found = cgroup::find_cgroup2(&entries).expect("a cgroup2 mount");
    assert_eq!(found.mount_point, Path::new("/sys/fs/cgroup/unified"));
    // Spaces are escaped as \040.
    assert_eq!(entries[4].mount_point, Path::new("/mnt/second cgroup2"));
    // A bind mount of a subtree names the subtree as its root.
    assert_eq!(entries[5].root, Path::new("/system.slice"));
}

#[test]
fn mountinfo_without_cgroup2_or_with_garbage() {
    let v1_only = "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n";
    assert_eq!(
        cgroup::find_cgroup2(&cgroup::parse_mountinfo(v1_only)),
        None
    );
    // Lines without the `-` separator are skipped, not misread.
    assert!(cgroup::parse_mountinfo("garbage\n1 2 3 / /x rw cgroup2\n\n").is_empty());
    let err = CgroupError::NoCgroup2Mount {
        mountinfo: PathBuf::from("/proc/self/mountinfo"),
    };
    assert!(err.to_string().contains("mount -t cgroup2"), "{err}");
}

#[test]
fn proc_cgroup_line() {
    let hybrid =
        "4:memory:/user.slice\n1:name=systemd:/user.slice/x.scope\n0::/user.slice/x.scope\n";
    assert_eq!(
        cgroup::parse_proc_cgroup(hybrid),
        Some("/user.slice/x.scope")
    );
    assert_eq!(cgroup::parse_proc_cgroup("0::/\n"), Some("/"));
    assert_eq!(cgroup::parse_proc_cgroup("1:cpu:/\n"), None);
}

/// A directory tree standing in for a cgroup2 mount, removed on drop.
struct FakeMount(PathBuf);

impl FakeMount {
    fn new(test: &str) -> FakeMount {
        let base = std::env::temp_dir().join(format!(
            "portwall-{test}-{}-{}",
            std::process::id(),
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        fs::create_dir_all(base.join("mnt/system.slice/foo.service")).unwrap();
        fs::create_dir_all(base.join("outside")).unwrap();
        fs::write(base.join("mnt/cgroup.procs"), "").unwrap();
        std::os::unix::fs::symlink(base.join("outside"), base.join("mnt/link")).unwrap();
        FakeMount(base)
    }

    fn mount(&self) -> PathBuf {
        self.0.join("mnt")
    }
}

impl Drop for FakeMount {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[test]
fn resolve_in_accepts_paths_inside_and_relative_to_the_mount() {
    let fake = FakeMount::new("resolve-ok");
    let mount = fake.mount();
    let service = fs::canonicalize(mount.join("system.slice/foo.service")).unwrap();
    for given in [
        mount.join("system.slice/foo.service"),
        PathBuf::from("/system.slice/foo.service"),
        PathBuf::from("system.slice/foo.service"),
        PathBuf::from("system.slice/./foo.service/"),
        PathBuf::from("system.slice/foo.service/../foo.service"),
    ] {
        assert_eq!(
            cgroup::resolve_in(&mount, &given).unwrap(),
            service,
            "{given:?}"
        );
    }
    assert_eq!(
        cgroup::resolve_in(&mount, Path::new("/")).unwrap(),
        fs::canonicalize(&mount).unwrap()
    );
}

#[test]
fn resolve_in_rejects_escapes_missing_cgroups_and_files() {
    let fake = FakeMount::new("resolve-err");
    let mount = fake.mount();
    for escape in [
        "..",
        "../outside",
        "system.slice/../../outside",
        "/../outside",
    ] {
        let err = cgroup::resolve_in(&mount, Path::new(escape)).unwrap_err();
        assert!(
            matches!(err, CgroupError::OutsideMount { .. }),
            "{escape}: {err}"
        );
    }
    // A symlink out of the mount is caught after canonicalizing.
    let err = cgroup::resolve_in(&mount, Path::new("link")).unwrap_err();
    assert!(matches!(err, CgroupError::OutsideMount { .. }), "{err}");

    let err = cgroup::resolve_in(&mount, Path::new("system.slice/bar.service")).unwrap_err();
    assert!(matches!(err, CgroupError::NoSuchCgroup { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("does not exist") && text.contains("systemctl show -p ControlGroup"),
        "{text}"
    );

    let err = cgroup::resolve_in(&mount, Path::new("cgroup.procs")).unwrap_err();
    assert!(matches!(err, CgroupError::NotADirectory { .. }), "{err}");
}

#[test]
fn direction_names_and_attach_types() {
    assert_eq!(Direction::Ingress.as_str(), "ingress");
    assert_eq!(Direction::Egress.to_string(), "egress");
    assert_eq!("INGRESS".parse::<Direction>(), Ok(Direction::Ingress));
    assert_eq!("egress".parse::<Direction>(), Ok(Direction::Egress));
    let err = "out".parse::<Direction>().unwrap_err();
    assert_eq!(
        err.to_string(),
        "unknown direction `out`: use `ingress` or `egress`"
    );
    assert_eq!(Direction::Ingress.attach_type(), 0);
    assert_eq!(Direction::Egress.attach_type(), 1);
    assert_eq!(
        serde_json::to_string(&Direction::ALL).unwrap(),
        r#"["ingress","egress"]"#
    );
}

// ----------------------------------------------------------------------
// Privileged: real cgroups.

#[test]
fn resolve_and_of_pid_on_the_real_mount() {
    if !kernel::require_privileges_or_skip("resolve_and_of_pid_on_the_real_mount") {
        return;
    }
    let mount = cgroup::cgroup2_mount().expect("cgroup2 is mounted");
    let cg = temp_cgroup("resolve");
    let name = cg.path().file_name().unwrap().to_owned();
    let canonical = fs::canonicalize(cg.path()).unwrap();
    for given in [
        cg.path().to_path_buf(),
        PathBuf::from(&name),
        Path::new("/").join(&name),
    ] {
        assert_eq!(cgroup::resolve(&given).unwrap(), canonical, "{given:?}");
    }
    assert!(matches!(
        cgroup::resolve(&Path::new(&name).join("missing")),
        Err(CgroupError::NoSuchCgroup { .. })
    ));
    assert!(matches!(
        cgroup::resolve(Path::new("../..")),
        Err(CgroupError::OutsideMount { .. })
    ));

    // The test process: its 0:: line, under the mount.
    let text = fs::read_to_string("/proc/self/cgroup").unwrap();
    let line = cgroup::parse_proc_cgroup(&text).unwrap();
    assert_eq!(
        cgroup::of_pid(std::process::id()).unwrap(),
        cgroup::resolve(Path::new(line)).unwrap()
    );
    assert!(
        cgroup::of_pid(std::process::id())
            .unwrap()
            .starts_with(&mount)
    );

    // A child moved into the cgroup.
    let mut holder = traffic::spawn_holder(cg.path()).expect("holder starts");
    assert_eq!(cgroup::of_pid(holder.pid()).unwrap(), canonical);
    assert_eq!(cg.pids().unwrap(), vec![holder.pid()]);
    drop(cg);
    holder.wait().unwrap();

    assert!(matches!(
        cgroup::of_pid(u32::MAX),
        Err(CgroupError::NoSuchProcess { .. })
    ));
}

#[test]
fn temp_cgroup_kills_leftovers_and_removes_itself() {
    if !kernel::require_privileges_or_skip("temp_cgroup_kills_leftovers_and_removes_itself") {
        return;
    }
    let cg = temp_cgroup("cleanup");
    let path = cg.path().to_path_buf();
    let nested = TempCgroup::create(&path, "nested").unwrap().keep();
    let mut first = traffic::spawn_holder(&path).unwrap();
    let mut second = traffic::spawn_holder(&nested).unwrap();
    assert!(cg.populated().unwrap());

    // Drop kills both (the nested one too) and removes both directories.
    drop(cg);
    assert!(!path.exists(), "{path:?} was not removed");
    assert_eq!(first.wait().unwrap().signal(), Some(libc::SIGKILL));
    assert_eq!(second.wait().unwrap().signal(), Some(libc::SIGKILL));

    // `remove` reports; `keep` disarms.
    let cg = temp_cgroup("cleanup");
    let mut third = traffic::spawn_holder(cg.path()).unwrap();
    cg.remove().unwrap();
    assert_eq!(third.wait().unwrap().signal(), Some(libc::SIGKILL));
    let kept = temp_cgroup("cleanup").keep();
    assert!(kept.is_dir());
    cgroup::remove_tree(&kept).unwrap();
    assert!(!kept.exists());

    assert!(matches!(
        TempCgroup::create(&cgroup::cgroup2_mount().unwrap(), "a/b"),
        Err(CgroupError::InvalidPrefix { .. })
    ));
}

#[test]
fn egress_drop_blocks_udp_and_tcp_until_detached() {
    let (drop_elf, forward_elf) = (drop_all(), forward_all());
    if !kernel::require_privileges_or_skip("egress_drop_blocks_udp_and_tcp_until_detached") {
        return;
    }
    let mount = cgroup::cgroup2_mount().unwrap();
    let cg = temp_cgroup("egress");
    let dropper = drop_elf.load();
    let forwarder = forward_elf.load();
    let drop_id = id_of(&dropper);
    let mut receiver = Receiver::bind().unwrap();

    // Forward-all on egress: everything arrives.
    attach::attach(forwarder.fd(), cg.path(), Direction::Egress).unwrap();
    assert_eq!(probe_from(cg.path(), &receiver), delivered());
    let mut expected = Counts::udp(3).plus(Counts::tcp(1));
    assert_eq!(receiver.wait_for(expected, ARRIVE).unwrap(), expected);
    attach::detach(forwarder.fd(), cg.path(), Direction::Egress).unwrap();

    // Drop-all on egress: sendto fails with EPERM, SYNs vanish.
    attach::attach(dropper.fd(), cg.path(), Direction::Egress).unwrap();
    assert_eq!(
        attach::query(cg.path(), Direction::Egress).unwrap(),
        vec![drop_id]
    );
    assert_eq!(attach::query(cg.path(), Direction::Ingress).unwrap(), NONE);
    assert_eq!(
        attach::find_attachments(&mount, drop_id).unwrap(),
        vec![(fs::canonicalize(cg.path()).unwrap(), Direction::Egress)]
    );
    assert_eq!(probe_from(cg.path(), &receiver), blocked_on_egress());
    assert_eq!(
        receiver
            .wait_for(expected.plus(Counts::udp(1)), QUIET)
            .unwrap(),
        expected,
        "nothing more may arrive"
    );

    // Attaching it again is refused with a clear error.
    let err = attach::attach(dropper.fd(), cg.path(), Direction::Egress).unwrap_err();
    assert!(matches!(err, AttachError::AlreadyAttached { .. }), "{err}");
    assert!(err.to_string().contains("already attached"), "{err}");

    // Detaching restores delivery.
    attach::detach(dropper.fd(), cg.path(), Direction::Egress).unwrap();
    assert_eq!(attach::query(cg.path(), Direction::Egress).unwrap(), NONE);
    assert!(
        attach::find_attachments(&mount, drop_id)
            .unwrap()
            .is_empty()
    );
    assert_eq!(probe_from(cg.path(), &receiver), delivered());
    expected = expected.plus(Counts::udp(3)).plus(Counts::tcp(1));
    assert_eq!(receiver.wait_for(expected, ARRIVE).unwrap(), expected);

    // Detaching what is not attached is refused with a clear error.
    let err = attach::detach(dropper.fd(), cg.path(), Direction::Egress).unwrap_err();
    assert!(matches!(err, AttachError::NotAttached { .. }), "{err}");
    assert!(err.to_string().contains("is not attached to"), "{err}");
    let err = attach::detach(dropper.fd(), cg.path(), Direction::Ingress).unwrap_err();
    assert!(matches!(err, AttachError::NotAttached { .. }), "{err}");
}

#[test]
fn ingress_drop_hides_traffic_from_a_receiver_in_the_cgroup() {
    let drop_elf = drop_all();
    if !kernel::require_privileges_or_skip(
        "ingress_drop_hides_traffic_from_a_receiver_in_the_cgroup",
    ) {
        return;
    }
    let cg = temp_cgroup("ingress");
    let dropper = drop_elf.load();
    let mut remote = RemoteReceiver::spawn(cg.path()).unwrap();
    let probe = remote.addrs().probe(3, CONNECT_MS);

    attach::attach(dropper.fd(), cg.path(), Direction::Ingress).unwrap();
    assert_eq!(
        attach::query(cg.path(), Direction::Ingress).unwrap(),
        vec![id_of(&dropper)]
    );
    // Sent from outside the cgroup: sendto succeeds, nothing arrives, and
    // the SYN is dropped at the listener so connect times out.
    let mut expected = udp_sent();
    expected.push(Outcome::Tcp(TcpOutcome::TimedOut));
    expected.push(Outcome::Tcp(TcpOutcome::TimedOut));
    assert_eq!(traffic::run_actions(&probe), expected);
    assert_eq!(
        remote.wait_for(Counts::udp(1), QUIET).unwrap(),
        Counts::default()
    );

    attach::detach(dropper.fd(), cg.path(), Direction::Ingress).unwrap();
    assert_eq!(traffic::run_actions(&probe), delivered());
    let expected = Counts::udp(3).plus(Counts::tcp(1));
    assert_eq!(remote.wait_for(expected, ARRIVE).unwrap(), expected);
    remote.finish().unwrap();
}

#[test]
fn attachment_outlives_the_loaded_filter() {
    let drop_elf = drop_all();
    if !kernel::require_privileges_or_skip("attachment_outlives_the_loaded_filter") {
        return;
    }
    let cg = temp_cgroup("persist");
    let dropper = drop_elf.load();
    let id = id_of(&dropper);
    attach::attach(dropper.fd(), cg.path(), Direction::Egress).unwrap();
    // Every fd to the program closes here: only the cgroup holds it.
    drop(dropper);

    assert_eq!(
        attach::query(cg.path(), Direction::Egress).unwrap(),
        vec![id]
    );
    let receiver = Receiver::bind().unwrap();
    let addrs = receiver.addrs().unwrap();
    let udp = [
        Action::UdpSend {
            addr: addrs.udp_v4,
            count: 3,
        },
        Action::UdpSend {
            addr: addrs.udp_v6,
            count: 3,
        },
    ];
    assert_eq!(traffic::run_sender(cg.path(), &udp).unwrap(), udp_eperm());

    // It can still be found by id and detached.
    let fd = attach::prog_fd_from_id(id).unwrap();
    assert_eq!(attach::prog_id(fd.as_fd()).unwrap(), id);
    attach::detach(fd.as_fd(), cg.path(), Direction::Egress).unwrap();
    assert_eq!(traffic::run_sender(cg.path(), &udp).unwrap(), udp_sent());
}

#[test]
fn any_drop_wins_and_all_forward_delivers() {
    let (drop_elf, forward_elf) = (drop_all(), forward_all());
    if !kernel::require_privileges_or_skip("any_drop_wins_and_all_forward_delivers") {
        return;
    }
    let mount = cgroup::cgroup2_mount().unwrap();
    let cg = temp_cgroup("multi");
    let dropper = drop_elf.load();
    let forwarder = forward_elf.load();
    let forwarder2 = forward_elf.load();
    let ids = [id_of(&forwarder), id_of(&dropper), id_of(&forwarder2)];
    let receiver = Receiver::bind().unwrap();

    attach::attach(forwarder.fd(), cg.path(), Direction::Egress).unwrap();
    attach::attach(dropper.fd(), cg.path(), Direction::Egress).unwrap();
    assert_eq!(
        attach::query(cg.path(), Direction::Egress).unwrap(),
        vec![ids[0], ids[1]]
    );
    assert_eq!(probe_from(cg.path(), &receiver)[..2], udp_eperm());

    attach::detach(dropper.fd(), cg.path(), Direction::Egress).unwrap();
    attach::attach(forwarder2.fd(), cg.path(), Direction::Egress).unwrap();
    assert_eq!(
        attach::query(cg.path(), Direction::Egress).unwrap(),
        vec![ids[0], ids[2]]
    );
    assert_eq!(probe_from(cg.path(), &receiver), delivered());

    // The same program may sit on both directions and on several cgroups.
    let other = temp_cgroup("multi-other");
    attach::attach(forwarder.fd(), cg.path(), Direction::Ingress).unwrap();
    attach::attach(forwarder.fd(), other.path(), Direction::Ingress).unwrap();
    let mut expected = vec![
        (fs::canonicalize(cg.path()).unwrap(), Direction::Ingress),
        (fs::canonicalize(cg.path()).unwrap(), Direction::Egress),
        (fs::canonicalize(other.path()).unwrap(), Direction::Ingress),
    ];
    expected.sort();
    let mut found = attach::find_attachments(&mount, ids[0]).unwrap();
    found.sort();
    assert_eq!(found, expected);
}

#[test]
fn icmp_echo_replies_only_without_a_drop() {
    let (drop_elf, forward_elf) = (drop_all(), forward_all());
    if !kernel::require_privileges_or_skip("icmp_echo_replies_only_without_a_drop") {
        return;
    }
    let cg = temp_cgroup("icmp");
    let dropper = drop_elf.load();
    let forwarder = forward_elf.load();
    let echo = |timeout_ms| {
        [
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
        ]
        .map(|addr| Action::IcmpEcho {
            addr,
            count: 2,
            timeout_ms,
        })
        .to_vec()
    };
    let icmp = |sent, eperm, replies| Outcome::Icmp {
        sent,
        eperm,
        replies,
        errors: Vec::new(),
    };

    attach::attach(forwarder.fd(), cg.path(), Direction::Egress).unwrap();
    attach::attach(forwarder.fd(), cg.path(), Direction::Ingress).unwrap();
    assert_eq!(
        traffic::run_sender(cg.path(), &echo(ARRIVE.as_millis() as u64)).unwrap(),
        vec![icmp(2, 0, 2), icmp(2, 0, 2)]
    );

    // Egress drop: the request's sendto fails with EPERM.
    attach::attach(dropper.fd(), cg.path(), Direction::Egress).unwrap();
    assert_eq!(
        traffic::run_sender(cg.path(), &echo(QUIET.as_millis() as u64)).unwrap(),
        vec![icmp(0, 2, 0), icmp(0, 2, 0)]
    );
    attach::detach(dropper.fd(), cg.path(), Direction::Egress).unwrap();

    // Ingress drop: requests leave, the kernel's replies (sent from no
    // socket of this cgroup) are dropped on delivery to the raw socket.
    attach::attach(dropper.fd(), cg.path(), Direction::Ingress).unwrap();
    assert_eq!(
        traffic::run_sender(cg.path(), &echo(QUIET.as_millis() as u64)).unwrap(),
        vec![icmp(2, 0, 0), icmp(2, 0, 0)]
    );
}

#[test]
fn find_attachments_walks_nested_cgroups() {
    let (drop_elf, forward_elf) = (drop_all(), forward_all());
    if !kernel::require_privileges_or_skip("find_attachments_walks_nested_cgroups") {
        return;
    }
    let mount = cgroup::cgroup2_mount().unwrap();
    let top = temp_cgroup("walk");
    let middle = TempCgroup::create(top.path(), "middle").unwrap();
    let leaf = TempCgroup::create(middle.path(), "leaf").unwrap();
    let dropper = drop_elf.load();
    let forwarder = forward_elf.load();
    let (drop_id, forward_id) = (id_of(&dropper), id_of(&forwarder));

    attach::attach(dropper.fd(), leaf.path(), Direction::Ingress).unwrap();
    attach::attach(forwarder.fd(), top.path(), Direction::Egress).unwrap();
    let start = Instant::now();
    let found = attach::find_attachments(&mount, drop_id).unwrap();
    let elapsed = start.elapsed();
    assert_eq!(
        found,
        vec![(fs::canonicalize(leaf.path()).unwrap(), Direction::Ingress)]
    );
    assert_eq!(
        attach::find_attachments(top.path(), forward_id).unwrap(),
        vec![(fs::canonicalize(top.path()).unwrap(), Direction::Egress)]
    );
    // Not inherited: query lists only what is attached directly.
    assert_eq!(
        attach::query(middle.path(), Direction::Egress).unwrap(),
        NONE
    );

    let all = attach::all_attachments(top.path()).unwrap();
    assert_eq!(all.len(), 2, "{all:?}");
    let cgroups = count_cgroups(&mount);
    eprintln!(
        "find_attachments: {cgroups} cgroups under {} in {elapsed:?}",
        mount.display()
    );

    let err = attach::query(Path::new("/proc"), Direction::Egress).unwrap_err();
    assert!(matches!(err, AttachError::NotCgroup2 { .. }), "{err}");
    let err = attach::query(&leaf.path().join("missing"), Direction::Egress).unwrap_err();
    assert!(err.to_string().contains("does not exist"), "{err}");
}

fn count_cgroups(dir: &Path) -> usize {
    1 + fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| count_cgroups(&e.path()))
                .sum()
        })
        .unwrap_or(0)
}

#[test]
fn pinned_programs_open_by_path() {
    let forward_elf = forward_all();
    if !kernel::require_privileges_or_skip("pinned_programs_open_by_path") {
        return;
    }
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let Some(bpffs) = cgroup::parse_mountinfo(&mountinfo)
        .into_iter()
        .find(|m| m.fstype == "bpf")
    else {
        kernel::skip_or_fail("pinned_programs_open_by_path", "no bpffs is mounted");
        return;
    };
    let mut forwarder = forward_elf.load();
    let pin = bpffs.mount_point.join(format!(
        "pwtest-pin-{}-{}",
        std::process::id(),
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    forwarder.program_mut().unwrap().pin(&pin).unwrap();
    struct Unpin<'a>(&'a Path);
    impl Drop for Unpin<'_> {
        fn drop(&mut self) {
            let _ = fs::remove_file(self.0);
        }
    }
    let _unpin = Unpin(&pin);

    let fd = attach::prog_fd_from_pin(&pin).unwrap();
    assert_eq!(attach::prog_id(fd.as_fd()).unwrap(), id_of(&forwarder));
    assert_eq!(
        attach::prog_info(fd.as_fd()).unwrap().name,
        "pw_forward_all"
    );

    let err = attach::prog_fd_from_pin(&bpffs.mount_point.join("pwtest-missing")).unwrap_err();
    assert!(matches!(err, AttachError::Pin { .. }), "{err}");
    assert!(err.to_string().contains("nothing is pinned there"), "{err}");
    let err = attach::prog_fd_from_pin(Path::new("/proc/self/status")).unwrap_err();
    assert!(matches!(err, AttachError::Pin { .. }), "{err}");
}

/// A program attached without the multi flag (as `bpftool cgroup attach`
/// does by default) excludes ours there and below; the error names the
/// cgroup that holds it.
#[test]
fn exclusive_attachment_is_explained() {
    const TEST: &str = "exclusive_attachment_is_explained";
    let forward_elf = forward_all();
    if !kernel::require_privileges_or_skip(TEST) {
        return;
    }
    let Some(bpftool) = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("bpftool"))
            .find(|candidate| candidate.is_file())
    }) else {
        kernel::skip_or_fail(TEST, "bpftool is not on PATH (apt-get install bpftool)");
        return;
    };
    let cg = temp_cgroup("exclusive");
    let below = TempCgroup::create(cg.path(), "below").unwrap();
    let exclusive = forward_elf.load();
    let ours = forward_elf.load();
    let status = std::process::Command::new(bpftool)
        .args(["cgroup", "attach"])
        .arg(cg.path())
        .args(["egress", "id", &id_of(&exclusive).to_string()])
        .status()
        .expect("bpftool runs");
    assert!(status.success(), "bpftool cgroup attach failed: {status}");

    for target in [cg.path(), below.path()] {
        match attach::attach(ours.fd(), target, Direction::Egress) {
            Err(AttachError::Exclusive { holder, flags, .. }) => {
                assert_eq!(holder, cg.path());
                assert_eq!(flags, 0);
            }
            other => panic!("{target:?}: expected an exclusive-attachment error, got {other:?}"),
        }
    }
    // Ingress is not affected.
    attach::attach(ours.fd(), below.path(), Direction::Ingress).unwrap();
    drop(below);
}
