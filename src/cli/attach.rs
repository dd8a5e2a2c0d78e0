//! `portwall attach` and `detach`: a loaded filter on a cgroup.

use super::Global;
use crate::filters::{self, FilterName, PinDir};
use crate::kernel::{attach, cgroup};
use crate::lang::ir::Direction;
use anyhow::Result;
use clap::Args;
use std::os::fd::AsFd;
use std::path::PathBuf;

/// Attach a loaded filter to a cgroup (it stays after portwall exits).
#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
    portwall attach web --cgroup system.slice/nginx.service --egress\n  \
    portwall attach web --pid 1234 --ingress\n  \
    portwall attach web --unit nginx --egress\n\n\
    PATH is absolute or relative to the cgroup2 mount. The attachment coexists\n\
    with other programs on the cgroup, systemd's own among them (a packet\n\
    passes only if every program forwards it), and stays until 'portwall\n\
    detach' with the same arguments, or until the cgroup is removed.")]
pub struct AttachArgs {
    /// The loaded filter.
    #[arg(value_name = "NAME")]
    pub name: FilterName,

    #[command(flatten)]
    pub target: Target,
}

/// Where and in which direction.
#[derive(Args, Debug)]
#[group(required = true, multiple = false, id = "where")]
pub struct Target {
    /// The cgroup: absolute, or relative to the cgroup2 mount.
    #[arg(long, value_name = "PATH", group = "where")]
    pub cgroup: Option<PathBuf>,

    /// The cgroup of this process.
    #[arg(long, value_name = "PID", group = "where")]
    pub pid: Option<u32>,

    /// The cgroup of this running systemd unit (`nginx` means `nginx.service`).
    #[arg(long, value_name = "UNIT", group = "where")]
    pub unit: Option<String>,

    #[command(flatten)]
    pub direction: DirectionFlag,
}

/// `--ingress` or `--egress`.
#[derive(Args, Debug)]
#[group(required = true, multiple = false)]
pub struct DirectionFlag {
    /// Filter packets the cgroup receives.
    #[arg(long)]
    pub ingress: bool,
    /// Filter packets the cgroup sends.
    #[arg(long)]
    pub egress: bool,
}

impl DirectionFlag {
    pub fn get(&self) -> Direction {
        if self.ingress {
            Direction::Ingress
        } else {
            Direction::Egress
        }
    }
}

impl Target {
    fn cgroup(&self) -> Result<PathBuf> {
        resolve_target(self.cgroup.as_deref(), self.pid, self.unit.as_deref())?
            .ok_or_else(|| anyhow::anyhow!("give --cgroup PATH, --pid PID or --unit UNIT"))
    }
}

/// The cgroup named by whichever of `--cgroup`, `--pid` and `--unit` was
/// given, if any.
pub fn resolve_target(
    path: Option<&std::path::Path>,
    pid: Option<u32>,
    unit: Option<&str>,
) -> Result<Option<PathBuf>> {
    Ok(match (path, pid, unit) {
        (Some(path), _, _) => Some(cgroup::resolve(path)?),
        (_, Some(pid), _) => Some(cgroup::of_pid(pid)?),
        (_, _, Some(unit)) => Some(crate::systemd::unit_cgroup(unit)?),
        _ => None,
    })
}

fn prepare(
    global: &Global,
    name: &FilterName,
    direction: Direction,
) -> Result<std::os::fd::OwnedFd> {
    let pins = PinDir::open(global.bpffs.as_deref(), false)?;
    let info = filters::info(&pins, name)?;
    if let Some(loaded) = info.meta.as_ref().and_then(|m| m.direction)
        && loaded != direction
    {
        return Err(filters::FilterError::WrongDirection {
            name: name.clone(),
            loaded,
            requested: direction,
        }
        .into());
    }
    Ok(filters::dispatcher_fd(&pins, name)?)
}

pub fn attach(global: &Global, args: &AttachArgs) -> Result<()> {
    let direction = args.target.direction.get();
    let fd = prepare(global, &args.name, direction)?;
    let cgroup = args.target.cgroup()?;
    attach::attach(fd.as_fd(), &cgroup, direction)?;
    println!(
        "attached {} to {} ({direction})",
        args.name,
        cgroup.display()
    );
    Ok(())
}

pub fn detach(global: &Global, args: &AttachArgs) -> Result<()> {
    let direction = args.target.direction.get();
    let pins = PinDir::open(global.bpffs.as_deref(), false)?;
    let fd = filters::dispatcher_fd(&pins, &args.name)?;
    let cgroup = args.target.cgroup()?;
    attach::detach(fd.as_fd(), &cgroup, direction)?;
    println!(
        "detached {} from {} ({direction})",
        args.name,
        cgroup.display()
    );
    Ok(())
}
