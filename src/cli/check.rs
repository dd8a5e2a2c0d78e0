//! `portwall check`: validate a filter and print its canonical form.

use super::input::FilterArgs;
use crate::lang::print;
use anyhow::Result;
use clap::Args;

/// Check a filter and print it in canonical form.
#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
    portwall check 'icmp || (udp && dst_port == 53) || (tcp && dst_port == 80)'\n  \
    portwall check -f /etc/portwall/web.filter\n\n\
    Exits 0 and prints the canonical form (it parses back to the same filter);\n\
    on an error, exits 1 and shows where the expression is wrong.")]
pub struct CheckArgs {
    #[command(flatten)]
    pub filter: FilterArgs,

    /// Print a JSON object with the canonical form and what the filter reads.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &CheckArgs) -> Result<()> {
    let source = args.filter.require()?;
    let (ast, filter) = source.check()?;
    let canonical = print::print(&ast);
    if args.json {
        let vars: Vec<&str> = filter.expr.vars().iter().map(|v| v.name()).collect();
        let out = serde_json::json!({
            "canonical": canonical,
            "variables": vars,
            "parses": format!("{:?}", filter.need).to_lowercase(),
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!("{canonical}");
    }
    Ok(())
}
