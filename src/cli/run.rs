//! `portwall run`: a command with a firewall, on any machine.

use super::input::{DEFAULT_FILTER, FilterSource};
use crate::lang::ir::Direction;
use crate::lang::print;
use crate::runner::{self, RunFilter, RunSpec};
use anyhow::Result;
use clap::Args;
use std::ffi::OsString;
use std::path::PathBuf;

/// Run a command in a new cgroup with filters on its traffic.
#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
    portwall run -- curl -sI http://example.org     # the example filter on egress\n  \
    portwall run --egress 'tcp && dst_port == 443 || udp && dst_port == 53' -- ./client\n  \
    portwall run --ingress 'tcp && dst_port == 8080' -- python3 -m http.server 8080\n\n\
    With no filter, egress gets the example filter (ICMP, DNS over UDP, HTTP).\n\
    The command's exit status is returned; the cgroup and the filters are\n\
    removed when it ends, also on Ctrl-C or SIGTERM (which are passed on to it).\n\
    A dropped UDP send fails with EPERM; a dropped TCP connection attempt times\n\
    out; dropped incoming packets vanish.")]
pub struct RunArgs {
    /// Filter for packets the command receives.
    #[arg(long, value_name = "EXPR", conflicts_with = "ingress_file")]
    pub ingress: Option<String>,

    /// Read the ingress filter from FILE.
    #[arg(long, value_name = "FILE")]
    pub ingress_file: Option<PathBuf>,

    /// Filter for packets the command sends.
    #[arg(long, value_name = "EXPR", conflicts_with = "egress_file")]
    pub egress: Option<String>,

    /// Read the egress filter from FILE.
    #[arg(long, value_name = "FILE")]
    pub egress_file: Option<PathBuf>,

    /// Print no summary of the counters when the command ends.
    #[arg(short, long)]
    pub quiet: bool,

    /// The command and its arguments.
    #[arg(required = true, last = true, value_name = "CMD")]
    pub command: Vec<OsString>,
}

fn source(expr: &Option<String>, file: &Option<PathBuf>) -> Result<Option<FilterSource>> {
    super::input::FilterArgs {
        expr: expr.clone(),
        file: file.clone(),
    }
    .source()
}

pub fn run(args: &RunArgs) -> Result<i32> {
    let mut sources = Vec::new();
    if let Some(s) = source(&args.ingress, &args.ingress_file)? {
        sources.push((Direction::Ingress, s));
    }
    if let Some(s) = source(&args.egress, &args.egress_file)? {
        sources.push((Direction::Egress, s));
    }
    if sources.is_empty() {
        eprintln!("portwall: no filter given; egress uses the example filter: {DEFAULT_FILTER}");
        sources.push((Direction::Egress, FilterSource::builtin_default()));
    }
    let mut checked = Vec::new();
    for (direction, source) in &sources {
        let (ast, filter) = source.check_with(Some(*direction))?;
        checked.push((*direction, filter, source.text.as_str(), print::print(&ast)));
    }
    let spec = RunSpec {
        filters: checked
            .iter()
            .map(|(direction, filter, expression, canonical)| RunFilter {
                direction: *direction,
                filter,
                expression,
                canonical,
            })
            .collect(),
        command: &args.command,
    };
    let outcome = runner::run(&spec)?;
    if !args.quiet {
        for (direction, _) in &sources {
            let c = outcome.counters.get(*direction);
            eprintln!(
                "portwall: {direction}: {} packets forwarded, {} dropped",
                c.forwarded_packets, c.dropped_packets
            );
        }
    }
    Ok(outcome.exit_code)
}
