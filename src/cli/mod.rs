//! The `portwall` command line: clap definitions and dispatch.
//!
//! Each command lives in its own module with its arguments; this module
//! parses, runs, and maps the result to an exit status.

pub mod attach;
pub mod check;
pub mod compile;
pub mod input;
pub mod lifecycle;
pub mod run;
pub mod systemd;
pub mod test;
pub mod trace;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// portwall: a packet firewall for systemd services and cgroups, from one
/// readable expression.
#[derive(Parser, Debug)]
#[command(name = "portwall", version, about, long_about = None, after_help = "\
Filter language (C-like):
  variables   ip ipv6 tcp udp icmp (0 or 1), dst_port src_port
  operators   ! ~ - +  * / %  + -  << >>  < <= > >=  == !=  & ^ |  && ||  ?:
  words       and or not      comments  # to the end of the line
  example     icmp || (udp && dst_port == 53) || (tcp && dst_port == 80)

Run 'portwall COMMAND --help' for a command's options and examples.")]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,

    #[command(subcommand)]
    pub command: Command,
}

/// Options every command accepts.
#[derive(clap::Args, Debug, Clone)]
pub struct Global {
    /// Where bpffs is mounted; filters are pinned in its `portwall` directory.
    #[arg(long, global = true, value_name = "DIR", env = "PORTWALL_BPFFS")]
    pub bpffs: Option<std::path::PathBuf>,

    /// Show more detail on errors (such as the verifier's log).
    #[arg(short, long, global = true)]
    pub verbose: bool,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    Check(check::CheckArgs),
    Compile(compile::CompileArgs),
    Test(test::TestArgs),
    Load(lifecycle::LoadArgs),
    Unload(lifecycle::UnloadArgs),
    List(lifecycle::ListArgs),
    Show(lifecycle::ShowArgs),
    Stats(lifecycle::StatsArgs),
    /// Attach a loaded filter to a cgroup (it stays after portwall exits)
    Attach(attach::AttachArgs),
    /// Detach a filter from a cgroup (the same arguments as attach)
    Detach(attach::AttachArgs),
    Run(run::RunArgs),
    Protect(systemd::ProtectArgs),
    Unprotect(systemd::UnprotectArgs),
    Apply(systemd::ApplyArgs),
    Trace(trace::TraceArgs),
}

/// Runs the command line and returns the process exit status: 0 on
/// success, 1 on an error (printed once, to stderr), 2 for usage errors
/// (clap's convention); `run` returns its command's status.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            report(&err, cli.global.verbose);
            ExitCode::from(1)
        }
    }
}

/// Runs the command; `Ok` carries the exit status.
fn run(cli: &Cli) -> anyhow::Result<u8> {
    let ok = |()| 0;
    Ok(match &cli.command {
        Command::Check(args) => check::run(args).map(ok)?,
        Command::Compile(args) => compile::run(args).map(ok)?,
        Command::Test(args) => u8::from(!test::run(args)?),
        Command::Load(args) => lifecycle::load(&cli.global, args).map(ok)?,
        Command::Unload(args) => lifecycle::unload(&cli.global, args).map(ok)?,
        Command::List(args) => lifecycle::list(&cli.global, args).map(ok)?,
        Command::Show(args) => lifecycle::show(&cli.global, args).map(ok)?,
        Command::Stats(args) => lifecycle::stats(&cli.global, args).map(ok)?,
        Command::Attach(args) => attach::attach(&cli.global, args).map(ok)?,
        Command::Detach(args) => attach::detach(&cli.global, args).map(ok)?,
        // Exit statuses are one byte; 128 + signal fits.
        Command::Run(args) => run::run(args)?.clamp(0, 255) as u8,
        Command::Protect(args) => systemd::protect(&cli.global, args).map(ok)?,
        Command::Unprotect(args) => systemd::unprotect(&cli.global, args).map(ok)?,
        Command::Apply(args) => systemd::apply(&cli.global, args).map(ok)?,
        Command::Trace(args) => trace::trace(&cli.global, args).map(ok)?,
    })
}

/// The error and its causes, joined with ": ", leaving out a cause whose
/// text its parent already quotes (many errors here name their io::Error
/// in their message and also expose it as the source).
fn chain(err: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in err.chain() {
        let part = cause.to_string();
        if text.contains(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}

/// Whether compiling failed because the program got too long for an
/// eBPF jump: a limit of the filter's size, not a bug.
fn too_far(err: &anyhow::Error) -> bool {
    use crate::compiler::{asm::AsmError, codegen::CodegenError};
    // Compile errors name their codegen error as their source, and filter
    // errors pass theirs through, so the chain always reaches it.
    err.chain().any(|cause| {
        matches!(
            cause.downcast_ref::<CodegenError>(),
            Some(CodegenError::Asm(AsmError::JumpOutOfRange { .. }))
        )
    })
}

fn report(err: &anyhow::Error, verbose: bool) {
    if let Some(filter) = err.downcast_ref::<input::FilterError>() {
        eprintln!("{filter}");
        return;
    }
    eprintln!("portwall: error: {}", chain(err));
    if too_far(err) {
        eprintln!(
            "portwall: the filter is too large: its program would need a jump longer than eBPF \
             allows; make it smaller (see docs/limits.md)"
        );
    }
    if verbose {
        let log = err.chain().find_map(|cause| {
            cause
                .downcast_ref::<crate::kernel::KernelError>()
                .and_then(|k| k.verifier_log())
                .or_else(
                    || match cause.downcast_ref::<crate::filters::FilterError>() {
                        Some(crate::filters::FilterError::Kernel(k)) => k.verifier_log(),
                        _ => None,
                    },
                )
        });
        if let Some(log) = log {
            eprintln!("verifier log:\n{log}");
        }
    }
}
