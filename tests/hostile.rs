//! portwall in a hostile or broken environment, through the real binary:
//! not root, no capabilities, bpffs missing or read-only, cgroup2
//! missing, pins under portwall's directory that are someone else's, a
//! cgroup that disappears, and concurrent or killed `load --replace`.
//!
//! Each must end with a clear error (exit status 1) and leave nothing
//! half-done: the test compares what is pinned before and after, and that
//! the filter that ran still decides packets the way it did. Every test
//! uses a bpffs of its own and uniquely named cgroups, removed on failure
//! too.

mod common;

use common::bpffs::PrivateBpffs;
use common::packets;
use portwall::kernel::cgroup::{self, TempCgroup};
use portwall::packet::Packet;
use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_portwall");

fn available(test: &str) -> bool {
    common::kernel::available(test)
}

/// `portwall --bpffs BPFFS ARGS` as root.
fn pw(bpffs: &Path, args: &[&str]) -> Output {
    command(bpffs, args).output().expect("runs portwall")
}

fn command(bpffs: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.arg("--bpffs")
        .arg(bpffs)
        .args(args)
        .env_remove("PORTWALL_BPFFS")
        .current_dir("/");
    c
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn ok(o: Output) -> String {
    assert!(
        o.status.success(),
        "portwall failed: {}{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    text(&o.stdout)
}

/// The error of a run that must fail with status 1 and say something
/// sensible: one `portwall: error:` line of reasonable length, no panic,
/// no verifier dump.
fn clear_error(o: Output, what: &str) -> String {
    let err = text(&o.stderr);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{what}: expected exit 1, got {:?}: {}{err}",
        o.status,
        text(&o.stdout)
    );
    assert!(
        err.starts_with("portwall: error: ") || err.starts_with("error: "),
        "{what}: {err}"
    );
    assert!(!err.contains("panicked"), "{what}: {err}");
    assert!(err.lines().count() <= 3, "{what}: too long: {err}");
    err
}

/// Everything in portwall's directory of a bpffs, with what each entry
/// is: the state a failed command must not change. (The kernel puts
/// entries of its own at a bpffs's top, such as `progs.debug`.)
fn snapshot(root: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            if dir == root && e.file_name() != "portwall" {
                continue;
            }
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                stack.push(path.clone());
            }
            use std::os::unix::fs::MetadataExt;
            out.insert(
                path.strip_prefix(root).unwrap().to_path_buf(),
                format!("{:o} ino {}", meta.mode(), meta.ino()),
            );
        }
    }
    out
}

/// The pinned dispatcher's verdict (1 forward, 0 drop).
fn verdict(bpffs: &Path, name: &str, p: &Packet) -> u32 {
    let pin = bpffs.join("portwall").join(name);
    portwall::kernel::test_run_pinned(&pin, &p.to_test_frame(), 1)
        .expect("test run of the pinned filter")
        .retval
}

fn udp(port: u16) -> Packet {
    packets::ipv4_udp(packets::SRC4, packets::DST4, 1000, port)
}

fn show(bpffs: &Path, name: &str) -> serde_json::Value {
    serde_json::from_str(&ok(pw(bpffs, &["show", name, "--json"]))).unwrap()
}

fn temp_cgroup(test: &str) -> TempCgroup {
    let mount = cgroup::cgroup2_mount().expect("cgroup2 is mounted");
    TempCgroup::create(&mount, &format!("pwhostile-{test}")).expect("creates a cgroup")
}

fn attached_ids(cgroup: &Path, direction: portwall::lang::ir::Direction) -> Vec<u32> {
    portwall::kernel::attach::query(cgroup, direction).expect("queries the cgroup")
}

// ------------------------------------------------------------- not root

#[test]
fn unprivileged_users_change_nothing() {
    if !available("unprivileged_users_change_nothing") {
        return;
    }
    let fs = PrivateBpffs::mount("nobody");
    let b = fs.path();
    ok(pw(b, &["load", "web", "udp && dst_port == 53"]));
    let cg = temp_cgroup("nobody");
    let before = snapshot(b);
    let program = show(b, "web")["program_id"].clone();
    let cg_arg = cg.path().to_str().unwrap().to_string();

    // As nobody (uid and gid 65534, no supplementary groups), and as root
    // with every capability dropped: the two ways of lacking privilege.
    let as_nobody = |args: &[&str]| {
        command(b, args)
            .uid(65534)
            .gid(65534)
            .output()
            .expect("runs portwall as nobody")
    };
    let without_caps = |args: &[&str]| {
        Command::new("setpriv")
            .args([
                "--inh-caps=-all",
                "--bounding-set=-all",
                "--",
                BIN,
                "--bpffs",
            ])
            .arg(b)
            .args(args)
            .env_remove("PORTWALL_BPFFS")
            .output()
            .expect("runs setpriv")
    };
    let attempts: &[&[&str]] = &[
        &["load", "other", "tcp"],
        &["load", "web", "tcp", "--replace"],
        &["unload", "web"],
        &["show", "web"],
        &["stats"],
        &["list"],
        &["attach", "web", "--cgroup", &cg_arg, "--egress"],
    ];
    for args in attempts {
        for (who, o) in [
            ("nobody", as_nobody(args)),
            ("root without capabilities", without_caps(args)),
        ] {
            // Reading counters needs only permission to open the pins
            // (the kernel asks no capability for BPF_OBJ_GET and map
            // lookups), which root without capabilities still has as
            // their owner.
            if who != "nobody" && args[0] == "stats" && o.status.success() {
                continue;
            }
            let err = clear_error(o, &format!("{who}: {args:?}"));
            assert!(
                err.contains("root") || err.contains("sudo") || err.contains("CAP_BPF"),
                "{who}: {args:?}: no hint about privileges: {err}"
            );
        }
    }
    assert_eq!(snapshot(b), before, "an unprivileged run changed bpffs");
    assert_eq!(show(b, "web")["program_id"], program);
    assert_eq!(verdict(b, "web", &udp(53)), 1);
    assert_eq!(verdict(b, "web", &udp(54)), 0);
    for d in portwall::lang::ir::Direction::ALL {
        assert!(attached_ids(cg.path(), d).is_empty());
    }
}

// ------------------------------------------------------------- bpffs

#[test]
fn a_directory_that_is_not_bpffs_is_refused_and_left_alone() {
    let dir = std::env::temp_dir().join(format!("portwall-hostile-plain-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for args in [
        &["load", "x", "tcp"][..],
        &["load", "x", "tcp", "--replace"],
        &["unload", "x"],
        &["show", "x"],
        &["attach", "x", "--cgroup", "/", "--egress"],
        &["stats"],
    ] {
        let err = clear_error(pw(&dir, args), &format!("{args:?}"));
        assert!(err.contains("is not a bpffs mount"), "{args:?}: {err}");
    }
    let left: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    let _ = std::fs::remove_dir(&dir);
    assert!(left.is_empty(), "portwall wrote into a plain directory");
}

/// Runs `script` with `sh` in a mount namespace of its own (private
/// propagation: nothing it mounts or unmounts is seen outside).
fn in_mount_namespace(script: &str) -> Output {
    Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-euc", script])
        .env("PW", BIN)
        .env_remove("PORTWALL_BPFFS")
        .output()
        .expect("runs unshare")
}

#[test]
fn bpffs_missing_and_not_mountable_is_a_clear_error() {
    if !available("bpffs_missing_and_not_mountable_is_a_clear_error") {
        return;
    }
    // Without CAP_SYS_ADMIN portwall cannot mount bpffs where it is
    // missing; it must say so, and mount nothing half-way.
    let o = in_mount_namespace(
        "while awk '$2 == \"/sys/fs/bpf\"' /proc/mounts | grep -q .; do umount /sys/fs/bpf; done
         set +e
         setpriv --inh-caps=-sys_admin --bounding-set=-sys_admin -- \"$PW\" load x tcp
         code=$?
         set -e
         awk '$2 == \"/sys/fs/bpf\"' /proc/mounts | grep -q . && exit 90
         exit $code",
    );
    let err = clear_error(o, "load without bpffs and CAP_SYS_ADMIN");
    assert!(
        err.contains("cannot mount bpffs at /sys/fs/bpf") && err.contains("mount -t bpf"),
        "{err}"
    );
    // `show` never mounts: it says where bpffs is missing.
    let o = in_mount_namespace(
        "while awk '$2 == \"/sys/fs/bpf\"' /proc/mounts | grep -q .; do umount /sys/fs/bpf; done
         exec \"$PW\" show x",
    );
    let err = clear_error(o, "show without bpffs");
    assert!(err.contains("is not a bpffs mount"), "{err}");
}

fn remount(path: &Path, flags: &str) {
    let o = Command::new("mount")
        .args(["-o", flags])
        .arg(path)
        .output()
        .expect("runs mount");
    assert!(o.status.success(), "mount -o {flags}: {}", text(&o.stderr));
}

#[test]
fn read_only_bpffs_leaves_everything_as_it_was() {
    if !available("read_only_bpffs_leaves_everything_as_it_was") {
        return;
    }
    let fs = PrivateBpffs::mount("ro");
    let b = fs.path();
    ok(pw(b, &["load", "web", "udp && dst_port == 53"]));
    remount(b, "remount,ro");
    let before = snapshot(b);

    // Opening a pin for writing, as every command does, is refused on a
    // read-only bpffs: each command says so and changes nothing.
    for args in [
        &["load", "new", "tcp"][..],
        &["load", "web", "udp && dst_port == 54", "--replace"],
        &["unload", "web"],
        &["show", "web"],
    ] {
        let err = clear_error(pw(b, args), &format!("{args:?} on read-only bpffs"));
        assert!(err.contains("Read-only file system"), "{args:?}: {err}");
    }
    assert_eq!(snapshot(b), before);
    remount(b, "remount,rw");
    assert_eq!(verdict(b, "web", &udp(53)), 1);
    assert_eq!(verdict(b, "web", &udp(54)), 0);
    assert_eq!(
        show(b, "web")["meta"]["expression"],
        "udp && dst_port == 53"
    );

    // A read-only bpffs without portwall's directory yet.
    let fresh = PrivateBpffs::mount("ro-fresh");
    remount(fresh.path(), "remount,ro");
    let err = clear_error(pw(fresh.path(), &["load", "x", "tcp"]), "first load");
    assert!(
        err.contains("cannot create") && err.contains("Read-only file system"),
        "{err}"
    );
    assert!(snapshot(fresh.path()).is_empty());
}

#[test]
fn a_pin_directory_others_control_is_refused() {
    if !available("a_pin_directory_others_control_is_refused") {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let fs = PrivateBpffs::mount("unsafe-dir");
    let b = fs.path();
    ok(pw(b, &["load", "web", "tcp"]));
    let dir = b.join("portwall");
    // World-writable, as a directory made in a fresh bpffs (mode 1777)
    // by anyone would be.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let before = snapshot(b);
    for args in [
        &["load", "web", "udp", "--replace"][..],
        &["unload", "web"],
        &["show", "web"],
    ] {
        let err = clear_error(pw(b, args), &format!("{args:?}"));
        assert!(err.contains("refusing to use the pin directory"), "{err}");
    }
    // Owned by someone else.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::chown(&dir, Some(65534), Some(65534)).unwrap();
    let err = clear_error(pw(b, &["unload", "web"]), "foreign owner");
    assert!(err.contains("belongs to uid 65534"), "{err}");
    std::os::unix::fs::chown(&dir, Some(0), Some(0)).unwrap();
    let mut after = snapshot(b);
    after.insert(
        PathBuf::from("portwall"),
        before[Path::new("portwall")].replace("40777", "40700"),
    );
    assert_eq!(snapshot(b), after);
    ok(pw(b, &["unload", "web"]));
}

// ------------------------------------------------------------- cgroup2

#[test]
fn cgroup2_missing_is_a_clear_error() {
    if !available("cgroup2_missing_is_a_clear_error") {
        return;
    }
    let fs = PrivateBpffs::mount("no-cgroup2");
    let b = fs.path();
    ok(pw(b, &["load", "web", "tcp"]));
    let before = snapshot(b);
    let script = format!(
        "for m in $(awk '$3 == \"cgroup2\" {{print $2}}' /proc/mounts); do umount -l \"$m\"; done
         awk '$3 == \"cgroup2\"' /proc/mounts | grep -q . && exit 90
         set +e
         \"$PW\" --bpffs {b} attach web --cgroup system.slice --egress 2>&1; echo \"exit=$?\"
         \"$PW\" --bpffs {b} attach web --pid $$ --egress 2>&1; echo \"exit=$?\"
         \"$PW\" --bpffs {b} show web >/dev/null 2>&1; echo \"exit=$?\"",
        b = b.display()
    );
    let o = in_mount_namespace(&script);
    let out = text(&o.stdout);
    assert!(o.status.success(), "{out}{}", text(&o.stderr));
    let runs: Vec<&str> = out.split_inclusive("\n").collect();
    assert_eq!(
        out.matches("exit=1").count(),
        2,
        "both attaches fail: {out}"
    );
    assert_eq!(
        out.matches("no cgroup2 file system is mounted").count(),
        2,
        "{runs:?}"
    );
    // Without cgroup2 there are no attachments to list; `show` still works.
    assert!(out.ends_with("exit=0\n"), "{out}");
    assert_eq!(snapshot(b), before);
}

// ------------------------------------------------------------- foreign pins

fn bpftool(args: &[&str]) -> Option<Output> {
    Command::new("bpftool").args(args).output().ok()
}

#[test]
fn pins_that_are_not_portwall_filters_are_left_alone() {
    if !available("pins_that_are_not_portwall_filters_are_left_alone") {
        return;
    }
    if bpftool(&["version"]).is_none_or(|o| !o.status.success()) {
        portwall::kernel::skip_or_fail(
            "pins_that_are_not_portwall_filters_are_left_alone",
            "bpftool is not installed (scripts/install-test-deps installs it)",
        );
        return;
    }
    let fs = PrivateBpffs::mount("foreign");
    let b = fs.path();
    ok(pw(b, &["load", "mine", "tcp"]));
    let dir = b.join("portwall");
    let pin = |name: &str| dir.join(name).to_str().unwrap().to_string();
    let run_bpftool = |args: &[&str]| {
        let o = bpftool(args).unwrap();
        assert!(o.status.success(), "bpftool {args:?}: {}", text(&o.stderr));
    };
    // A map where a filter would be.
    run_bpftool(&[
        "map",
        "create",
        &pin("amap"),
        "type",
        "array",
        "key",
        "4",
        "value",
        "4",
        "entries",
        "1",
        "name",
        "amap",
    ]);
    // A cgroup_skb program pinned by bpftool, without a jump table, and
    // one with a jump table that is no program array.
    let object = std::env::temp_dir().join(format!("portwall-foreign-{}.o", std::process::id()));
    ok(Command::new(BIN)
        .args(["compile", "tcp", "-o"])
        .arg(&object)
        .output()
        .unwrap());
    let obj = object.to_str().unwrap();
    run_bpftool(&["prog", "load", obj, &pin("aprog"), "type", "cgroup/skb"]);
    run_bpftool(&["prog", "load", obj, &pin("fake"), "type", "cgroup/skb"]);
    let _ = std::fs::remove_file(&object);
    run_bpftool(&[
        "map",
        "create",
        &pin("fake@jump"),
        "type",
        "array",
        "key",
        "4",
        "value",
        "4",
        "entries",
        "1",
        "name",
        "fakejump",
    ]);
    // A directory.
    std::fs::create_dir(dir.join("adir")).unwrap();

    let cg = temp_cgroup("foreign");
    let cg_arg = cg.path().to_str().unwrap().to_string();
    let before = snapshot(b);
    for name in ["amap", "aprog", "fake", "adir"] {
        for args in [
            &["show", name][..],
            &["unload", name],
            &["load", name, "udp"],
            &["load", name, "udp", "--replace"],
            &["attach", name, "--cgroup", &cg_arg, "--egress"],
            &["detach", name, "--cgroup", &cg_arg, "--egress"],
            &["stats", name],
        ] {
            let err = clear_error(pw(b, args), &format!("{args:?}"));
            assert!(err.contains("is not a portwall filter"), "{args:?}: {err}");
        }
    }
    assert_eq!(snapshot(b), before, "a foreign pin was touched");
    for d in portwall::lang::ir::Direction::ALL {
        assert!(attached_ids(cg.path(), d).is_empty());
    }
    // `list` and `stats` show portwall's own filter only, and do not fail.
    let list: serde_json::Value = serde_json::from_str(&ok(pw(b, &["list", "--json"]))).unwrap();
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["mine"]);
    assert!(ok(pw(b, &["stats"])).starts_with("mine "));
}

// ------------------------------------------------------------- cgroups that go

#[test]
fn a_cgroup_that_is_gone_is_a_clear_error() {
    if !available("a_cgroup_that_is_gone_is_a_clear_error") {
        return;
    }
    let fs = PrivateBpffs::mount("gone");
    let b = fs.path();
    ok(pw(b, &["load", "web", "tcp"]));

    // Removed before the attach.
    let cg = temp_cgroup("gone");
    let path = cg.path().to_path_buf();
    cg.remove().unwrap();
    let p = path.to_str().unwrap();
    let err = clear_error(
        pw(b, &["attach", "web", "--cgroup", p, "--egress"]),
        "attach",
    );
    assert!(err.contains("does not exist"), "{err}");

    // Removed after the attach: the attachment goes with it.
    let cg = temp_cgroup("gone-after");
    let path = cg.path().to_path_buf();
    let p = path.to_str().unwrap();
    ok(pw(b, &["attach", "web", "--cgroup", p, "--egress"]));
    assert_eq!(show(b, "web")["attachments"].as_array().unwrap().len(), 1);
    cg.remove().unwrap();
    assert_eq!(show(b, "web")["attachments"].as_array().unwrap().len(), 0);
    let err = clear_error(
        pw(b, &["detach", "web", "--cgroup", p, "--egress"]),
        "detach",
    );
    assert!(err.contains("does not exist"), "{err}");

    // The process named by --pid is gone.
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id().to_string();
    child.wait().unwrap();
    let err = clear_error(
        pw(b, &["attach", "web", "--pid", &pid, "--egress"]),
        "attach --pid",
    );
    assert!(err.contains("no process with pid"), "{err}");
}

#[test]
fn a_cgroup_removed_while_attaching_leaves_nothing() {
    if !available("a_cgroup_removed_while_attaching_leaves_nothing") {
        return;
    }
    // The removal races the attach: it may come before the lookup,
    // between the lookup and the attach, or after. Every outcome must be
    // a success or a clear error, and no attachment may outlive the
    // cgroup.
    let fs = PrivateBpffs::mount("race-cg");
    let b = fs.path();
    ok(pw(b, &["load", "web", "tcp"]));
    let (mut attached, mut refused) = (0, 0);
    for _ in 0..40 {
        let cg = temp_cgroup("race");
        let path = cg.path().to_path_buf();
        let child = command(b, &["attach", "web", "--cgroup"])
            .arg(&path)
            .arg("--egress")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        cg.remove().unwrap();
        let o = child.wait_with_output().unwrap();
        if o.status.success() {
            attached += 1;
        } else {
            let err = clear_error(o, "racing attach");
            assert!(
                err.contains("does not exist") || err.contains("could not open cgroup"),
                "{err}"
            );
            refused += 1;
        }
    }
    println!("racing attaches: {attached} attached before the removal, {refused} refused");
    assert_eq!(show(b, "web")["attachments"].as_array().unwrap().len(), 0);
}

// ------------------------------------------------------------- concurrency

fn spawn(bpffs: &Path, args: &[&str]) -> Child {
    command(bpffs, args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawns portwall")
}

/// The pins of filter `name`, or none of them: never some.
fn assert_whole_or_absent(b: &Path, name: &str) -> bool {
    let dir = b.join("portwall");
    let present: Vec<bool> = [
        name.to_string(),
        format!("{name}@jump"),
        format!("{name}@counters"),
    ]
    .iter()
    .map(|p| dir.join(p).exists())
    .collect();
    assert!(
        present.iter().all(|p| *p) || !present[0],
        "half a filter: {present:?} in {:?}",
        snapshot(b)
    );
    present[0]
}

#[test]
fn concurrent_replaces_serialize() {
    if !available("concurrent_replaces_serialize") {
        return;
    }
    const WRITERS: u16 = 4;
    let rounds = 12;
    for round in 0..rounds {
        // A fresh bpffs each round, so the first loads also race to make
        // portwall's directory.
        let fs = PrivateBpffs::mount("race-replace");
        let b = fs.path();
        let exprs: Vec<String> = (0..WRITERS)
            .map(|i| format!("udp && dst_port == {}", 5000 + i))
            .collect();
        let children: Vec<Child> = exprs
            .iter()
            .map(|e| spawn(b, &["load", "web", e, "--replace"]))
            .collect();
        let outputs: Vec<Output> = children
            .into_iter()
            .map(|c| c.wait_with_output().unwrap())
            .collect();
        let mut loaded = 0;
        for o in outputs {
            let out = ok(o);
            if out.starts_with("loaded ") {
                loaded += 1;
            } else {
                assert!(out.starts_with("replaced "), "{out}");
            }
        }
        assert_eq!(
            loaded, 1,
            "round {round}: exactly one load creates the filter"
        );
        // What runs is one of the expressions, whole, and `show` agrees.
        let shown = show(b, "web")["meta"]["expression"]
            .as_str()
            .unwrap()
            .to_string();
        let winner = exprs.iter().position(|e| *e == shown).expect("one of ours");
        for i in 0..WRITERS {
            let expected = u32::from(usize::from(i) == winner);
            assert_eq!(verdict(b, "web", &udp(5000 + i)), expected, "round {round}");
        }
        let names: Vec<String> = snapshot(b)
            .keys()
            .map(|p| p.display().to_string())
            .collect();
        assert_eq!(
            names,
            [
                "portwall",
                "portwall/web",
                "portwall/web@counters",
                "portwall/web@jump"
            ],
            "round {round}"
        );
    }
}

#[test]
fn concurrent_loads_and_unloads_never_leave_half_a_filter() {
    if !available("concurrent_loads_and_unloads_never_leave_half_a_filter") {
        return;
    }
    let fs = PrivateBpffs::mount("race-unload");
    let b = fs.path();
    let (mut present, mut absent) = (0, 0);
    for round in 0..15 {
        // Without --replace, exactly one of several loads wins.
        let children: Vec<Child> = (0..3).map(|_| spawn(b, &["load", "web", "tcp"])).collect();
        let wins = children
            .into_iter()
            .map(|c| c.wait_with_output().unwrap())
            .filter(|o| {
                if o.status.success() {
                    return true;
                }
                let err = text(&o.stderr);
                assert!(err.contains("already loaded; add --replace"), "{err}");
                false
            })
            .count();
        assert_eq!(wins, 1, "round {round}");
        // Replaces and an unload at once: afterwards the filter is whole
        // or gone.
        let children = vec![
            spawn(b, &["load", "web", "udp", "--replace"]),
            spawn(b, &["unload", "web"]),
            spawn(b, &["load", "web", "icmp", "--replace"]),
        ];
        for c in children {
            let o = c.wait_with_output().unwrap();
            if !o.status.success() {
                let err = text(&o.stderr);
                assert!(err.contains("no filter named `web`"), "{err}");
            }
        }
        if assert_whole_or_absent(b, "web") {
            present += 1;
            let expr = show(b, "web")["meta"]["expression"].clone();
            assert!(expr == "udp" || expr == "icmp", "{expr}");
            ok(pw(b, &["unload", "web"]));
        } else {
            absent += 1;
        }
        assert!(!assert_whole_or_absent(b, "web"));
    }
    println!("after racing replaces and an unload: {present} whole, {absent} gone");
}

#[test]
fn a_load_killed_midway_leaves_no_half_filter() {
    if !available("a_load_killed_midway_leaves_no_half_filter") {
        return;
    }
    let fs = PrivateBpffs::mount("killed");
    let b = fs.path();
    let (mut whole, mut gone) = (0, 0);
    for round in 0u64..20 {
        let mut child = spawn(b, &["load", "web", "tcp || udp"]);
        // Killed at a different point of its work each round.
        std::thread::sleep(std::time::Duration::from_millis(round * 10));
        let _ = child.kill();
        let _ = child.wait();
        if assert_whole_or_absent(b, "web") {
            whole += 1;
            assert_eq!(verdict(b, "web", &udp(1)), 1);
            ok(pw(b, &["unload", "web"]));
        } else {
            gone += 1;
            // Leftovers of the interrupted load do not stop the next one.
            ok(pw(b, &["load", "web", "tcp"]));
            ok(pw(b, &["unload", "web"]));
        }
    }
    println!("loads killed midway: {whole} had finished, {gone} left no filter");
}
