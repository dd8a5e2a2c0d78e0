//! A real systemd for tests: booted as PID 1 of private namespaces (see
//! ../shared/notes/real-systemd.md), so the tests run on machines whose
//! PID 1 is not systemd, with hybrid or unified cgroups.
//!
//! [`Systemd::boot`] gives each test its own container:
//! - a cgroup `<cgroup2>/portwall-sd-PID-N` that becomes the root of its
//!   cgroup namespace (systemd sees a pure cgroup2 hierarchy there, even on
//!   a hybrid host), its own bpffs at `/sys/fs/bpf`, its own network
//!   namespace with only `lo`;
//! - the portwall binary under test at `/usr/local/bin/portwall`, where
//!   the shipped unit expects it, and a shared folder at `/portwall-test`
//!   (the host's [`Systemd::share`]) with the probe script, the shipped
//!   unit file and whatever the test puts there.
//!
//! Commands run inside with `nsenter` ([`Systemd::sh`]). Dropping the
//! value powers systemd off, waits for it (killing it after a deadline),
//! and removes the cgroups and the folder, also when the test failed.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Where the shared folder appears inside.
pub const SHARE: &str = "/portwall-test";
/// The probe script inside (see `systemd_probe.py`).
pub const PROBE: &str = "/portwall-test/probe.py";

const INIT: &str = include_str!("systemd_init.sh");
const PROBE_SOURCE: &str = include_str!("systemd_probe.py");
const SHIPPED_UNIT: &str = include_str!("../../systemd/portwall@.service");
const BOOT_DEADLINE: Duration = Duration::from_secs(30);
const POWEROFF_DEADLINE: Duration = Duration::from_secs(15);
/// Commands inside get this long before `timeout` kills them.
const COMMAND_TIMEOUT_SECS: u32 = 60;
const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A running container with systemd as its PID 1.
pub struct Systemd {
    /// systemd's PID on the host.
    pid: u32,
    /// `unshare`, systemd's parent.
    unshare: Child,
    /// The host folder with `share/`, `root/` and `console.log`.
    work: PathBuf,
    /// The container's cgroup (its cgroup namespace root).
    cgroup: PathBuf,
    /// The sibling cgroup holding `unshare` itself.
    outer: PathBuf,
    test: String,
    /// How long booting took.
    pub boot_time: Duration,
}

impl Systemd {
    /// Boots a container for `test`, or returns `None` when this machine
    /// cannot (not root, no systemd): the test is then skipped, or fails
    /// when `PORTWALL_REQUIRE_PRIVILEGED_TESTS=1`.
    pub fn boot(test: &str) -> Option<Systemd> {
        if !portwall::kernel::require_privileges_or_skip(test) {
            return None;
        }
        for need in [
            "/lib/systemd/systemd",
            "/usr/bin/unshare",
            "/usr/bin/nsenter",
            "/usr/bin/setpriv",
            "/usr/bin/python3",
            "/usr/bin/systemd-id128",
        ] {
            if !Path::new(need).exists() {
                portwall::kernel::skip_or_fail(
                    test,
                    &format!("{need} is missing (install systemd, util-linux and python3)"),
                );
                return None;
            }
        }
        let cgroup2 = match portwall::systemd::cgroup::cgroup2_mount() {
            Ok(p) => p,
            Err(e) => {
                portwall::kernel::skip_or_fail(test, &e.to_string());
                return None;
            }
        };
        let started = Instant::now();
        let id = format!(
            "portwall-sd-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let work = std::env::temp_dir().join(&id);
        let share = work.join("share");
        std::fs::create_dir_all(share.join("out")).expect("create the shared folder");
        std::fs::create_dir_all(work.join("root")).expect("create the root mount point");
        std::fs::write(work.join("console.log"), "").expect("create the console log");
        std::fs::write(work.join("init.sh"), INIT).expect("write init.sh");
        std::fs::write(share.join("probe.py"), PROBE_SOURCE).expect("write probe.py");
        std::fs::write(share.join("portwall@.service"), SHIPPED_UNIT).expect("write the unit");
        let cgroup = cgroup2.join(&id);
        let outer = cgroup2.join(format!("{id}-outer"));
        std::fs::create_dir(&cgroup).expect("create the container cgroup");
        std::fs::create_dir(&outer).expect("create the outer cgroup");

        let procs = std::ffi::CString::new(
            cgroup
                .join("cgroup.procs")
                .into_os_string()
                .into_encoded_bytes(),
        )
        .expect("no NUL in a cgroup path");
        let mut command = Command::new("/usr/bin/unshare");
        command
            .args([
                "--fork",
                "--pid",
                "--mount",
                "--uts",
                "--ipc",
                "--net",
                "--cgroup",
                "--propagation",
                "private",
                "--kill-child",
                "/bin/sh",
            ])
            .arg(work.join("init.sh"))
            .arg(&work)
            .arg(env!("CARGO_BIN_EXE_portwall"))
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(work.join("init.log")).expect("create init.log"))
            .stderr(Stdio::from(
                std::fs::OpenOptions::new()
                    .append(true)
                    .open(work.join("init.log"))
                    .expect("open init.log"),
            ));
        // SAFETY: between fork and exec only async-signal-safe calls
        // (open, write, close, prctl) on data prepared before the fork.
        unsafe {
            command.pre_exec(move || {
                // Into the container cgroup before `unshare --cgroup`, which
                // makes the current cgroup the namespace's root.
                let fd = libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                if fd < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                let ok = libc::write(fd, b"0".as_ptr().cast(), 1) == 1;
                libc::close(fd);
                if !ok {
                    return Err(std::io::Error::last_os_error());
                }
                // If the test process dies, unshare and (by --kill-child)
                // the whole container die with it.
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let unshare = command.spawn().expect("start unshare");
        let mut container = Systemd {
            pid: 0,
            unshare,
            work,
            cgroup,
            outer,
            test: test.to_string(),
            boot_time: Duration::ZERO,
        };
        container.pid = container.wait_for_init();
        // unshare leaves the container's cgroup so that it holds only the
        // container's processes (systemd wants its root cgroup empty).
        std::fs::write(
            container.outer.join("cgroup.procs"),
            container.unshare.id().to_string(),
        )
        .expect("move unshare out of the container cgroup");
        container.wait_for_boot();
        container.boot_time = started.elapsed();
        Some(container)
    }

    /// The host path of the shared folder (`/portwall-test` inside).
    pub fn share(&self) -> PathBuf {
        self.work.join("share")
    }

    /// systemd's PID on the host.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The container's cgroup on the host.
    pub fn cgroup(&self) -> &Path {
        &self.cgroup
    }

    /// Runs a shell script inside the container, with a clean environment
    /// and a timeout.
    pub fn sh(&self, script: &str) -> Output {
        Command::new("/usr/bin/nsenter")
            .args(["-t", &self.pid.to_string(), "-a"])
            .args(["/usr/bin/env", "-i"])
            .arg(format!("PATH={PATH}"))
            .args([
                "HOME=/root",
                "LANG=C.UTF-8",
                "SYSTEMD_PAGER=",
                "SYSTEMD_COLORS=0",
                "/usr/bin/timeout",
                "-k",
                "5",
            ])
            .arg(COMMAND_TIMEOUT_SECS.to_string())
            .args(["/bin/sh", "-c", script])
            .stdin(Stdio::null())
            .output()
            .expect("run nsenter")
    }

    /// Runs a script that must succeed; returns its standard output. On
    /// failure, panics with its output and the end of the journal.
    pub fn ok(&self, script: &str) -> String {
        let out = self.sh(script);
        if !out.status.success() {
            panic!(
                "{}: `{script}` failed ({})\nstdout:\n{}\nstderr:\n{}\njournal:\n{}",
                self.test,
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                self.journal()
            );
        }
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs a script that must fail; returns its standard error.
    pub fn fails(&self, script: &str) -> String {
        let out = self.sh(script);
        assert!(
            !out.status.success(),
            "{}: `{script}` succeeded:\n{}",
            self.test,
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// The last lines of the container's journal, for failure messages.
    pub fn journal(&self) -> String {
        let out = self.sh("journalctl -b --no-pager -n 80 -o short-monotonic 2>&1");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The host path of `path` inside the container (through
    /// `/proc/PID/root`).
    pub fn host_path(&self, path: &str) -> PathBuf {
        PathBuf::from(format!("/proc/{}/root{path}", self.pid))
    }

    /// Writes a file inside the container, creating its directory.
    pub fn write(&self, path: &str, text: &str) {
        let host = self.host_path(path);
        std::fs::create_dir_all(host.parent().expect("an absolute path"))
            .unwrap_or_else(|e| panic!("{}: create the directory of {path}: {e}", self.test));
        std::fs::write(&host, text).unwrap_or_else(|e| panic!("{}: write {path}: {e}", self.test));
    }

    /// Whether `path` exists inside the container.
    pub fn exists(&self, path: &str) -> bool {
        self.host_path(path).exists()
    }

    /// A property of a unit (`systemctl show -p NAME --value UNIT`).
    pub fn property(&self, unit: &str, name: &str) -> String {
        self.ok(&format!("systemctl show -p {name} --value {unit}"))
            .trim()
            .to_string()
    }

    /// Waits until `check` returns `Some`, polling every 20 ms; panics
    /// with `what` and the journal after `deadline`.
    pub fn wait_for<T>(
        &self,
        what: &str,
        deadline: Duration,
        mut check: impl FnMut() -> Option<T>,
    ) -> T {
        let end = Instant::now() + deadline;
        loop {
            if let Some(v) = check() {
                return v;
            }
            if Instant::now() > end {
                panic!(
                    "{}: timed out after {deadline:?} waiting for {what}\njournal:\n{}",
                    self.test,
                    self.journal()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for `unshare` to fork the init script; returns its PID.
    fn wait_for_init(&mut self) -> u32 {
        let pid = self.unshare.id();
        let children = format!("/proc/{pid}/task/{pid}/children");
        let end = Instant::now() + BOOT_DEADLINE;
        loop {
            if let Ok(text) = std::fs::read_to_string(&children)
                && let Some(child) = text.split_whitespace().next()
            {
                return child.parse().expect("a PID");
            }
            self.check_alive("forking the init script");
            assert!(Instant::now() < end, "{}: unshare never forked", self.test);
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Waits until systemd's private socket exists and the boot is over.
    fn wait_for_boot(&mut self) {
        let socket = format!("/proc/{}/root/run/systemd/private", self.pid);
        let end = Instant::now() + BOOT_DEADLINE;
        while !Path::new(&socket).exists() {
            self.check_alive("systemd to listen");
            assert!(
                Instant::now() < end,
                "{}: systemd did not come up\n{}",
                self.test,
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        let out = self.sh("systemctl is-system-running --wait");
        let state = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if state != "running" {
            panic!(
                "{}: the container's systemd is `{state}`, not running:\n{}\njournal:\n{}",
                self.test,
                String::from_utf8_lossy(&self.sh("systemctl --failed --no-legend").stdout),
                self.journal()
            );
        }
    }

    fn check_alive(&mut self, what: &str) {
        if let Ok(Some(status)) = self.unshare.try_wait() {
            panic!(
                "{}: the container exited ({status}) while waiting for {what}\n{}",
                self.test,
                self.logs()
            );
        }
    }

    fn logs(&self) -> String {
        let read = |name: &str| std::fs::read_to_string(self.work.join(name)).unwrap_or_default();
        format!(
            "init.log:\n{}\nconsole.log:\n{}",
            read("init.log"),
            read("console.log")
        )
    }

    /// Powers systemd off and removes everything; returns what could not
    /// be cleaned up.
    fn teardown(&mut self) -> Vec<String> {
        let mut problems = Vec::new();
        let started = Instant::now();
        if self.pid != 0 {
            // SAFETY: kill(2) on a PID we started; SIGRTMIN+4 asks
            // systemd to power off.
            unsafe {
                libc::kill(self.pid as i32, libc::SIGRTMIN() + 4);
            }
        }
        let end = Instant::now() + POWEROFF_DEADLINE;
        loop {
            match self.unshare.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) if Instant::now() < end => std::thread::sleep(Duration::from_millis(10)),
                _ => {
                    problems.push(format!(
                        "systemd did not power off within {POWEROFF_DEADLINE:?}; killed it"
                    ));
                    // --kill-child takes the container's PID 1 along.
                    let _ = self.unshare.kill();
                    let _ = self.unshare.wait();
                    break;
                }
            }
        }
        for dir in [&self.cgroup, &self.outer] {
            if let Err(e) = remove_cgroup(dir) {
                problems.push(format!("cannot remove cgroup {}: {e}", dir.display()));
            }
        }
        if let Err(e) = std::fs::remove_dir_all(&self.work) {
            problems.push(format!("cannot remove {}: {e}", self.work.display()));
        }
        // Straight to stderr, past the test harness's capture.
        let _ = writeln!(
            std::io::stderr(),
            "{}: container booted in {:.2} s, torn down in {:.2} s",
            self.test,
            self.boot_time.as_secs_f64(),
            started.elapsed().as_secs_f64()
        );
        problems
    }
}

impl Drop for Systemd {
    fn drop(&mut self) {
        let problems = self.teardown();
        if !problems.is_empty() {
            let message = format!("{}: teardown: {}", self.test, problems.join("; "));
            if std::thread::panicking() {
                let _ = writeln!(std::io::stderr(), "{message}");
            } else {
                panic!("{message}");
            }
        }
    }
}

/// Removes a cgroup tree depth-first. Processes still in it (there should
/// be none once the PID namespace is gone) are killed first; a cgroup
/// whose last process just exited can stay busy for a moment.
pub fn remove_cgroup(dir: &Path) -> std::io::Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            remove_cgroup(&entry.path())?;
        }
    }
    let end = Instant::now() + Duration::from_secs(5);
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if Instant::now() < end => {
                if e.raw_os_error() == Some(libc::EBUSY) {
                    let _ = std::fs::write(dir.join("cgroup.kill"), "1");
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(e),
        }
    }
}
