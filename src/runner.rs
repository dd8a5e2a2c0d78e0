//! `portwall run`: a command in a cgroup of its own, with filters attached,
//! torn down when it ends.
//!
//! Where systemd is the init system, the command runs in a transient scope
//! (as `systemd-run --scope` would), so systemd accounts for it and owns
//! its cgroup; the filters are pinned under temporary names and handed to
//! systemd as `IPEgressFilterPath=`/`IPIngressFilterPath=` of the scope,
//! which systemd attaches before the command starts.
//!
//! Elsewhere portwall makes the cgroup itself, and attaches the filters
//! with bpf_link (aya's default) rather than the legacy attach `portwall
//! attach` uses: a link dies with the process that holds it, so even a
//! SIGKILLed portwall leaves no filter behind. The command is moved into
//! the cgroup before it execs, so every socket it creates is filtered from
//! the start.

use crate::compiler;
use crate::filters::Counters;
use crate::kernel::cgroup::{self, TempCgroup};
use crate::kernel::{self, LoadedFilter};
use crate::lang::ir::{Direction, Filter};
use anyhow::{Context, Result};
use aya::maps::{MapData, PerCpuArray};
use aya::programs::CgroupAttachMode;
use std::ffi::{CString, OsString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::Command;

/// What to run.
pub struct RunSpec<'a> {
    pub filters: Vec<RunFilter<'a>>,
    pub command: &'a [OsString],
}

/// One filter of a run, with its text (kept with the filter in the kernel,
/// for `portwall list` while the command runs).
pub struct RunFilter<'a> {
    pub direction: Direction,
    pub filter: &'a Filter,
    pub expression: &'a str,
    pub canonical: &'a str,
}

/// How it went.
pub struct RunOutcome {
    /// The exit status to return: the command's, or 128 + the signal that
    /// killed it, as shells report it.
    pub exit_code: i32,
    pub counters: Counters,
}

/// Runs the command with the filters attached; blocks until it exits.
/// SIGINT, SIGTERM and SIGHUP sent to portwall are passed on to it.
pub fn run(spec: &RunSpec<'_>) -> Result<RunOutcome> {
    if crate::systemd::systemctl::booted() {
        run_in_scope(spec)
    } else {
        run_in_own_cgroup(spec)
    }
}

/// Removes the temporary filters of a scope run, however it ends.
struct TemporaryFilters {
    pins: crate::filters::PinDir,
    names: Vec<(Direction, crate::filters::FilterName)>,
}

impl Drop for TemporaryFilters {
    fn drop(&mut self) {
        for (_, name) in &self.names {
            let _ = crate::filters::unload(&self.pins, name);
        }
    }
}

fn run_in_scope(spec: &RunSpec<'_>) -> Result<RunOutcome> {
    use crate::filters::{self, FilterName, LoadRequest, PinDir};
    let pins = PinDir::open(None, true)?;
    let unit = format!("portwall-run-{}", std::process::id());
    let mut temporary = TemporaryFilters {
        pins: pins.clone(),
        names: Vec::new(),
    };
    let mut command = Command::new("systemd-run");
    command.args(["--scope", "--quiet", "--collect", "--unit", &unit]);
    for run_filter in &spec.filters {
        let direction = &run_filter.direction;
        let name: FilterName = format!("{unit}-{direction}")
            .parse()
            .map_err(anyhow::Error::msg)?;
        let report = filters::load(
            &pins,
            &LoadRequest {
                name: &name,
                expression: run_filter.expression,
                canonical: run_filter.canonical.to_string(),
                filter: run_filter.filter,
                direction: Some(*direction),
                replace: false,
            },
        )?;
        temporary.names.push((*direction, name));
        let property = match direction {
            Direction::Ingress => "IPIngressFilterPath",
            Direction::Egress => "IPEgressFilterPath",
        };
        command
            .arg("-p")
            .arg(format!("{property}={}", report.path.display()));
    }
    command.arg("--").args(spec.command);
    let status = spawn_and_wait(command, "systemd-run")?;
    // Whatever the command left running in its scope goes with it.
    let _ = Command::new("systemctl")
        .args(["stop", "--quiet", &format!("{unit}.scope")])
        .stderr(std::process::Stdio::null())
        .status();
    let mut counters = Counters::default();
    for (direction, name) in &temporary.names {
        if let Ok(info) = filters::info(&pins, name) {
            match direction {
                Direction::Ingress => counters.ingress = info.counters.ingress,
                Direction::Egress => counters.egress = info.counters.egress,
            }
        }
    }
    drop(temporary);
    Ok(RunOutcome {
        exit_code: exit_code(status),
        counters,
    })
}

fn run_in_own_cgroup(spec: &RunSpec<'_>) -> Result<RunOutcome> {
    let mut loaded: Vec<(Direction, LoadedFilter)> = Vec::new();
    for f in &spec.filters {
        let (_, elf) = compiler::managed_object(f.filter, Some(f.direction), "pw_meta", 8)?;
        loaded.push((f.direction, kernel::load(&elf, compiler::PROGRAM_NAME)?));
    }

    let parent = cgroup::cgroup2_mount()?;
    let group = TempCgroup::create(&parent, "portwall-run")?;
    let cgroup_file = std::fs::File::open(group.path())
        .with_context(|| format!("cannot open {}", group.path().display()))?;
    for (direction, filter) in &mut loaded {
        let attach_type = match direction {
            Direction::Ingress => aya::programs::CgroupSkbAttachType::Ingress,
            Direction::Egress => aya::programs::CgroupSkbAttachType::Egress,
        };
        filter
            .program_mut()?
            .attach(&cgroup_file, attach_type, CgroupAttachMode::Single)
            .with_context(|| {
                format!(
                    "cannot attach the {direction} filter to {}",
                    group.path().display()
                )
            })?;
    }

    let procs = CString::new(group.path().join("cgroup.procs").as_os_str().as_bytes())
        .context("cgroup path contains a NUL byte")?;
    let (program, args) = spec.command.split_first().context("no command to run")?;
    let mut command = Command::new(program);
    command.args(args);
    // SAFETY: the closure runs in the child between fork and exec and only
    // calls async-signal-safe functions (open, write, close).
    unsafe {
        command.pre_exec(move || join_cgroup(&procs));
    }
    let status = spawn_and_wait(command, &program.to_string_lossy())?;

    let counters = read_counters(&loaded);
    // Anything the command left running in the cgroup goes with it.
    group
        .remove()
        .context("cannot remove the command's cgroup")?;
    drop(loaded);
    Ok(RunOutcome {
        exit_code: exit_code(status),
        counters,
    })
}

/// Starts the command and waits for it, passing SIGINT, SIGTERM and
/// SIGHUP on to it meanwhile.
fn spawn_and_wait(mut command: Command, what: &str) -> Result<std::process::ExitStatus> {
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ])
    .context("cannot install signal handlers")?;
    let mut child = command
        .spawn()
        .with_context(|| format!("cannot run {what}"))?;
    let pid = child.id() as libc::pid_t;
    let handle = signals.handle();
    let forwarder = std::thread::spawn(move || {
        for signal in signals.forever() {
            // SAFETY: kill(2) on the child we spawned; the handle is closed
            // as soon as it has been reaped, before its pid can be reused.
            unsafe { libc::kill(pid, signal) };
        }
    });
    let status = child.wait().context("cannot wait for the command")?;
    handle.close();
    let _ = forwarder.join();
    Ok(status)
}

/// The status to exit with: the command's, or 128 + the signal that
/// killed it, as shells report it.
fn exit_code(status: std::process::ExitStatus) -> i32 {
    match (status.code(), status.signal()) {
        (Some(code), _) => code,
        (None, Some(signal)) => 128 + signal,
        (None, None) => 1,
    }
}

fn join_cgroup(procs: &CString) -> std::io::Result<()> {
    // SAFETY: async-signal-safe calls on a path prepared before fork.
    unsafe {
        let fd = libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let written = libc::write(fd, b"0".as_ptr().cast(), 1);
        let error = std::io::Error::last_os_error();
        libc::close(fd);
        if written != 1 {
            return Err(error);
        }
    }
    Ok(())
}

/// Each filter counts only its own direction; the sum is what ran.
fn read_counters(loaded: &[(Direction, LoadedFilter)]) -> Counters {
    let mut out = Counters::default();
    for (direction, filter) in loaded {
        let Some(map) = filter.ebpf().map(compiler::COUNTERS_MAP) else {
            continue;
        };
        let Ok(map) = PerCpuArray::<&MapData, [u64; 2]>::try_from(map) else {
            continue;
        };
        let Ok(counters) = crate::filters::sum_counters(&map) else {
            continue;
        };
        match direction {
            Direction::Ingress => out.ingress = counters.ingress,
            Direction::Egress => out.egress = counters.egress,
        }
    }
    out
}
