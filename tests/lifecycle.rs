//! Loading, replacing, describing, counting and unloading filters, through
//! the `portwall` binary, each test in a bpffs of its own. Packets are
//! pushed through the pinned dispatcher with the kernel's test run, which
//! goes through the same tail call and counters as real traffic (the
//! traffic tests attach to cgroups).

mod common;

use common::bpffs::PrivateBpffs;
use common::cli::{fails, ok};
use common::kernel;
use common::packets;
use portwall::packet::Packet;
use std::path::Path;
use std::process::{Command, Output};

/// `portwall --bpffs BPFFS ARGS`.
fn portwall(bpffs: &Path, args: &[&str]) -> Output {
    let mut all = vec!["--bpffs", bpffs.to_str().expect("a UTF-8 path")];
    all.extend_from_slice(args);
    common::cli::portwall(&all)
}

fn show(bpffs: &Path, name: &str) -> serde_json::Value {
    serde_json::from_str(&ok(portwall(bpffs, &["show", name, "--json"]))).unwrap()
}

/// The pinned dispatcher's verdict on a packet.
fn verdict(bpffs: &Path, name: &str, p: &Packet) -> u32 {
    let pin = bpffs.join("portwall").join(name);
    portwall::kernel::test_run_pinned(&pin, &p.to_test_frame(), 1)
        .expect("test run")
        .retval
}

fn udp(port: u16) -> Packet {
    packets::ipv4_udp(packets::SRC4, packets::DST4, 1000, port)
}

#[test]
fn load_show_replace_unload() {
    if !kernel::available("load_show_replace_unload") {
        return;
    }
    let fs = PrivateBpffs::mount("lifecycle");
    let b = fs.path();
    let out = ok(portwall(b, &["load", "web", "udp && dst_port == 53 # dns"]));
    assert!(out.starts_with("loaded web at "), "{out}");
    for pin in ["web", "web@jump", "web@counters"] {
        assert!(b.join("portwall").join(pin).exists(), "{pin}");
    }
    let first = show(b, "web");
    assert_eq!(first["meta"]["expression"], "udp && dst_port == 53 # dns");
    assert_eq!(first["meta"]["canonical"], "udp && dst_port == 53");
    assert_eq!(first["meta"]["direction"], serde_json::Value::Null);
    assert_eq!(verdict(b, "web", &udp(53)), 1);
    assert_eq!(verdict(b, "web", &udp(54)), 0);

    // A second load of the same name is refused, and changes nothing.
    let err = fails(portwall(b, &["load", "web", "tcp"]));
    assert!(err.contains("already loaded; add --replace"), "{err}");
    assert_eq!(show(b, "web")["program_id"], first["program_id"]);

    // Replace: a new filter program behind the same dispatcher.
    ok(portwall(
        b,
        &[
            "load",
            "web",
            "udp && dst_port == 54",
            "--replace",
            "--direction",
            "egress",
        ],
    ));
    let second = show(b, "web");
    assert_eq!(second["dispatcher_id"], first["dispatcher_id"]);
    assert_ne!(second["program_id"], first["program_id"]);
    assert_eq!(second["meta"]["direction"], "egress");
    assert_eq!(verdict(b, "web", &udp(53)), 0);
    assert_eq!(verdict(b, "web", &udp(54)), 1);

    // A replace that fails leaves the running filter alone.
    let err = fails(portwall(
        b,
        &["load", "web", "udp && dst_prot == 1", "--replace"],
    ));
    assert!(err.contains("unknown name `dst_prot`"), "{err}");
    assert_eq!(show(b, "web")["program_id"], second["program_id"]);
    assert_eq!(verdict(b, "web", &udp(54)), 1);

    let list: serde_json::Value =
        serde_json::from_str(&ok(portwall(b, &["list", "--json"]))).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["name"], "web");

    ok(portwall(b, &["unload", "web"]));
    assert_eq!(std::fs::read_dir(b.join("portwall")).unwrap().count(), 0);
    let err = fails(portwall(b, &["unload", "web"]));
    assert!(err.contains("no filter named `web`"), "{err}");
    assert_eq!(ok(portwall(b, &["list"])), "no filters loaded\n");
}

#[test]
fn counters_count_and_survive_replace() {
    if !kernel::available("counters_count_and_survive_replace") {
        return;
    }
    let fs = PrivateBpffs::mount("counters");
    let b = fs.path();
    ok(portwall(b, &["load", "dns", "udp && dst_port == 53"]));
    let (pass, block) = (udp(53), udp(80));
    for _ in 0..5 {
        assert_eq!(verdict(b, "dns", &pass), 1);
    }
    for _ in 0..3 {
        assert_eq!(verdict(b, "dns", &block), 0);
    }
    ok(portwall(b, &["load", "dns", "udp", "--replace"]));
    assert_eq!(verdict(b, "dns", &block), 1);
    let c = &show(b, "dns")["counters"];
    // The test run has no ingress interface: it counts as egress.
    assert_eq!(c["egress"]["forwarded_packets"], 6);
    assert_eq!(c["egress"]["dropped_packets"], 3);
    let len = pass.data.len() as u64;
    assert_eq!(c["egress"]["forwarded_bytes"], 6 * len);
    assert_eq!(c["egress"]["dropped_bytes"], 3 * len);
    assert_eq!(c["ingress"]["forwarded_packets"], 0);

    let prom = ok(portwall(b, &["stats", "--prometheus"]));
    assert!(
        prom.contains("# TYPE portwall_packets_total counter\n"),
        "{prom}"
    );
    assert!(
        prom.contains(
            "portwall_packets_total{filter=\"dns\",direction=\"egress\",verdict=\"forward\"} 6\n"
        ),
        "{prom}"
    );
    assert!(
        prom.contains(&format!(
            "portwall_bytes_total{{filter=\"dns\",direction=\"egress\",verdict=\"drop\"}} {}\n",
            3 * len
        )),
        "{prom}"
    );
}

#[test]
fn names_and_foreign_pins_are_checked() {
    if !kernel::available("names_and_foreign_pins_are_checked") {
        return;
    }
    let fs = PrivateBpffs::mount("names");
    let b = fs.path();
    let err = fails_usage(portwall(b, &["load", "nginx.service", "tcp"]));
    assert!(
        err.contains("`.` is not allowed") && err.contains("try `nginx`"),
        "{err}"
    );
    let err = fails_usage(portwall(b, &["load", "a/b", "tcp"]));
    assert!(err.contains("`/` is not allowed"), "{err}");

    // A program pinned under our directory by someone else is not ours to
    // replace or unload.
    ok(portwall(b, &["load", "mine", "tcp"]));
    let filter =
        portwall::lang::check::check(&portwall::lang::parse::parse("tcp").unwrap()).unwrap();
    let elf = portwall::compiler::object(&portwall::compiler::compile(&filter).unwrap()).unwrap();
    let mut foreign = portwall::kernel::load(&elf, "portwall").unwrap();
    foreign
        .program_mut()
        .unwrap()
        .pin(b.join("portwall/other"))
        .unwrap();
    let err = fails(portwall(b, &["load", "other", "udp", "--replace"]));
    assert!(err.contains("is not a portwall filter"), "{err}");
    let err = fails(portwall(b, &["unload", "other"]));
    assert!(err.contains("is not a portwall filter"), "{err}");
    assert!(b.join("portwall/other").exists());
    // `list` shows only portwall's own filters.
    let list: serde_json::Value =
        serde_json::from_str(&ok(portwall(b, &["list", "--json"]))).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
}

fn fails_usage(o: Output) -> String {
    assert_eq!(o.status.code(), Some(2), "expected a usage error");
    String::from_utf8(o.stderr).unwrap()
}

#[test]
fn a_missing_bpffs_is_a_clear_error() {
    let dir = std::env::temp_dir().join(format!("portwall-not-bpffs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let err = fails(portwall(&dir, &["load", "x", "tcp"]));
    assert!(err.contains("is not a bpffs mount"), "{err}");
    let _ = std::fs::remove_dir(&dir);
}

#[test]
fn a_missing_bpffs_is_mounted() {
    if !kernel::available("a_missing_bpffs_is_mounted") {
        return;
    }
    // In a mount namespace of its own (private propagation, so nothing
    // leaks to the machine), take bpffs away, then load.
    let script = format!(
        "umount /sys/fs/bpf 2>/dev/null; \
         awk '$3 == \"bpf\" && $2 == \"/sys/fs/bpf\"' /proc/mounts | grep -q . && exit 90; \
         {} load x tcp >/dev/null || exit 91; \
         awk '$3 == \"bpf\" && $2 == \"/sys/fs/bpf\"' /proc/mounts | grep -q . || exit 92; \
         test -e /sys/fs/bpf/portwall/x || exit 93",
        env!("CARGO_BIN_EXE_portwall")
    );
    let o = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .output()
        .expect("runs unshare");
    assert!(
        o.status.success(),
        "{:?}: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn direction_aware_filters_keep_to_their_direction() {
    if !kernel::available("direction_aware_filters_keep_to_their_direction") {
        return;
    }
    let fs = PrivateBpffs::mount("direction");
    let b = fs.path();
    let err = fails(portwall(b, &["load", "dns", "udp && remote_port == 53"]));
    assert!(
        err.contains("`remote_port` needs to know the direction") && err.contains("--direction"),
        "{err}"
    );
    ok(portwall(
        b,
        &[
            "load",
            "dns",
            "udp && remote_port == 53",
            "--direction",
            "egress",
        ],
    ));
    assert_eq!(show(b, "dns")["meta"]["direction"], "egress");
    // On egress the remote port is the destination (udp() sends from 1000).
    assert_eq!(verdict(b, "dns", &udp(53)), 1);
    assert_eq!(verdict(b, "dns", &udp(54)), 0);

    let mount = portwall::kernel::cgroup::cgroup2_mount().expect("cgroup2 is mounted");
    let cgroup = portwall::kernel::cgroup::TempCgroup::create(&mount, "pwtest-direction")
        .expect("cgroup is created");
    let path = cgroup.path().to_str().expect("a UTF-8 path");
    let err = fails(portwall(
        b,
        &["attach", "dns", "--cgroup", path, "--ingress"],
    ));
    assert!(
        err.contains("was loaded for egress and cannot be attached for ingress"),
        "{err}"
    );
    ok(portwall(
        b,
        &["attach", "dns", "--cgroup", path, "--egress"],
    ));
    // A replacement resolved for ingress would read remote as local there.
    let err = fails(portwall(
        b,
        &[
            "load",
            "dns",
            "udp && local_port == 53",
            "--direction",
            "ingress",
            "--replace",
        ],
    ));
    assert!(err.contains("they would mean the opposite"), "{err}");
    assert_eq!(show(b, "dns")["meta"]["direction"], "egress");
    assert_eq!(verdict(b, "dns", &udp(53)), 1);
    // Resolved for the same direction, it replaces.
    ok(portwall(
        b,
        &[
            "load",
            "dns",
            "udp && remote_port == 54",
            "--direction",
            "egress",
            "--replace",
        ],
    ));
    assert_eq!(verdict(b, "dns", &udp(54)), 1);
    ok(portwall(
        b,
        &["detach", "dns", "--cgroup", path, "--egress"],
    ));
}
