//! The `portwall` command line: clap definitions and dispatch.
//!
//! Each command lives in its own module with its arguments; this module
//! parses, runs, and maps the result to an exit status.

pub mod check;
pub mod compile;
pub mod input;
pub mod lifecycle;
pub mod systemd;
pub mod test;

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
    // systemd integration (src/cli/systemd.rs)
    Protect(systemd::ProtectArgs),
    Unprotect(systemd::UnprotectArgs),
    Apply(systemd::ApplyArgs),
}

/// Runs the command line and returns the process exit status: 0 on
/// success, 1 on an error (printed once, to stderr), 2 for usage errors
/// (clap's convention).
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(err) => {
            report(&err);
            ExitCode::from(1)
        }
    }
}

fn run(cli: &Cli) -> anyhow::Result<bool> {
    match &cli.command {
        Command::Check(args) => check::run(args).map(|()| true),
        Command::Compile(args) => compile::run(args).map(|()| true),
        Command::Test(args) => test::run(args),
        Command::Load(args) => lifecycle::load(&cli.global, args).map(|()| true),
        Command::Unload(args) => lifecycle::unload(&cli.global, args).map(|()| true),
        Command::List(args) => lifecycle::list(&cli.global, args).map(|()| true),
        Command::Show(args) => lifecycle::show(&cli.global, args).map(|()| true),
        Command::Stats(args) => lifecycle::stats(&cli.global, args).map(|()| true),
        // systemd integration
        Command::Protect(args) => systemd::protect(&cli.global, args).map(|()| true),
        Command::Unprotect(args) => systemd::unprotect(&cli.global, args).map(|()| true),
        Command::Apply(args) => systemd::apply(&cli.global, args).map(|()| true),
    }
}

fn report(err: &anyhow::Error) {
    if let Some(filter) = err.downcast_ref::<input::FilterError>() {
        eprintln!("{filter}");
        return;
    }
    eprintln!("portwall: error: {err:#}");
}
