//! `portwall run`: a command in a cgroup of its own, with filters attached,
//! torn down when it ends.
//!
//! The filters are attached with bpf_link (aya's default), not the legacy
//! attach `portwall attach` uses: a link dies with the process that holds
//! it, so even a SIGKILLed portwall leaves no filter behind. The command is
//! moved into the cgroup before it execs, so every socket it creates is
//! filtered from the start.

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
    pub filters: Vec<(Direction, &'a Filter)>,
    pub command: &'a [OsString],
}

/// How it went.
pub struct RunOutcome {
    /// The exit status to return: the command's, or 128 + the signal that
    /// killed it, as shells report it.
    pub exit_code: i32,
    pub counters: Counters,
    pub cgroup: std::path::PathBuf,
}

/// Runs the command with the filters attached; blocks until it exits.
/// SIGINT, SIGTERM and SIGHUP sent to portwall are passed on to it.
pub fn run(spec: &RunSpec<'_>) -> Result<RunOutcome> {
    let mut loaded: Vec<(Direction, LoadedFilter)> = Vec::new();
    for (direction, filter) in &spec.filters {
        let (_, elf) = compiler::managed_object(filter, Some(*direction), "pw_meta", 8)?;
        let filter = kernel::load(&elf, compiler::PROGRAM_NAME)?;
        loaded.push((*direction, filter));
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
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ])
    .context("cannot install signal handlers")?;
    let mut child = command
        .spawn()
        .with_context(|| format!("cannot run {}", program.to_string_lossy()))?;
    let pid = child.id() as libc::pid_t;
    let handle = signals.handle();
    let forwarder = std::thread::spawn(move || {
        for signal in signals.forever() {
            // SAFETY: kill(2) on the child we spawned; if it has exited
            // and been reaped meanwhile, the handle is closed before that.
            unsafe { libc::kill(pid, signal) };
        }
    });
    let status = child.wait().context("cannot wait for the command")?;
    handle.close();
    let _ = forwarder.join();

    let counters = read_counters(&loaded);
    let cgroup = group.path().to_path_buf();
    // Anything the command left running in the cgroup goes with it.
    group
        .remove()
        .context("cannot remove the command's cgroup")?;
    drop(loaded);
    let exit_code = match (status.code(), status.signal()) {
        (Some(code), _) => code,
        (None, Some(signal)) => 128 + signal,
        (None, None) => 1,
    };
    Ok(RunOutcome {
        exit_code,
        counters,
        cgroup,
    })
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
