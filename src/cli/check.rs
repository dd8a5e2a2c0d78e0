//! `portwall check`: validate a filter and print its canonical form.

use super::input::{DirectionArg, FilterArgs};
use crate::lang::print;
use anyhow::Result;
use clap::Args;

/// Check a filter and print it in canonical form.
#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
    portwall check 'icmp || (udp && dst_port == 53) || (tcp && dst_port == 80)'\n  \
    portwall check -f /etc/portwall/web.filter\n  \
    portwall check --direction ingress 'tcp && local_port in {80, 443}'\n\n\
    Exits 0 and prints the canonical form (it parses back to the same filter);\n\
    on an error, exits 1 and shows where the expression is wrong.")]
pub struct CheckArgs {
    #[command(flatten)]
    pub filter: FilterArgs,

    #[command(flatten)]
    pub direction: DirectionArg,

    /// Print a JSON object with the canonical form and what the filter reads.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &CheckArgs) -> Result<()> {
    let source = args.filter.require()?;
    let (ast, filter) = source.check_with(args.direction.direction)?;
    let canonical = print::print(&ast);
    if args.json {
        let vars: Vec<&str> = filter.expr.vars().iter().map(|v| v.name()).collect();
        let addresses: Vec<&str> = filter.expr.addr_vars().iter().map(|v| v.name()).collect();
        let need = filter.need;
        let parses: Vec<&str> = [
            (need.network, "network"),
            (need.ports, "ports"),
            (need.icmp, "icmp"),
        ]
        .into_iter()
        .filter_map(|(needed, name)| needed.then_some(name))
        .collect();
        let out = serde_json::json!({
            "canonical": canonical,
            "variables": vars,
            "addresses": addresses,
            "parses": parses,
            "direction": filter.direction,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!("{canonical}");
    }
    Ok(())
}
