//! `portwall compile`: a filter to an eBPF object file or a listing.

use super::input::{DirectionArg, FilterArgs};
use crate::compiler;
use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use std::path::PathBuf;

/// What `compile` writes.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Emit {
    /// An ELF object holding one cgroup_skb program (section `cgroup/skb`).
    Obj,
    /// A readable listing of the instructions.
    Asm,
}

/// Compile a filter to a cgroup_skb eBPF program.
#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
    portwall compile 'tcp && dst_port == 443' -o web.o\n  \
    bpftool prog load web.o /sys/fs/bpf/web type cgroup/skb\n  \
    portwall compile --emit asm '!udp || dst_port == 53'\n\n\
    The object needs no clang, kernel headers or libbpf; it carries a GPL\n\
    license section and loads with bpftool or any libbpf-based loader.")]
pub struct CompileArgs {
    #[command(flatten)]
    pub filter: FilterArgs,

    #[command(flatten)]
    pub direction: DirectionArg,

    /// Where to write the result (required for objects; listings default to stdout).
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// What to write.
    #[arg(long, value_enum, default_value_t = Emit::Obj)]
    pub emit: Emit,
}

pub fn run(args: &CompileArgs) -> Result<()> {
    let source = args.filter.require()?;
    let (_, filter) = source.check_with(args.direction.direction)?;
    let program = compiler::compile(&filter)?;
    match args.emit {
        Emit::Asm => {
            let listing = program.to_string();
            match &args.output {
                Some(path) => std::fs::write(path, listing)
                    .with_context(|| format!("cannot write {}", path.display()))?,
                None => print!("{listing}"),
            }
        }
        Emit::Obj => {
            let Some(path) = &args.output else {
                bail!("an object file needs -o FILE (or use --emit asm to print a listing)");
            };
            let bytes = compiler::object(&program)?;
            std::fs::write(path, bytes)
                .with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!(
                "wrote {}: {} instructions, section cgroup/skb",
                path.display(),
                program.slots()
            );
        }
    }
    Ok(())
}
