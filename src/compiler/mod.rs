//! From a checked filter to a `BPF_PROG_TYPE_CGROUP_SKB` program.
//!
//! `asm` is the instruction builder (symbolic labels, encoding,
//! disassembly); `codegen` turns a filter into instructions; `elf` wraps
//! them in an object file that aya and bpftool load.

pub mod asm;
pub mod codegen;
pub mod elf;

use crate::lang::ir::Filter;

/// Why compiling a filter failed.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    #[error("cannot generate code: {0}")]
    Codegen(#[from] codegen::CodegenError),
    #[error("cannot write the object file: {0}")]
    Elf(#[from] elf::ElfError),
}

/// Compiles a checked filter into a cgroup_skb program.
pub fn compile(filter: &Filter) -> Result<asm::Program, CompileError> {
    Ok(codegen::generate(filter)?)
}

/// The program's symbol name in object files (and so its name in the kernel).
pub const PROGRAM_NAME: &str = "portwall";

/// Wraps a program in an ELF object that bpftool and aya load.
pub fn object(program: &asm::Program) -> Result<Vec<u8>, CompileError> {
    Ok(elf::write_object(program, &elf::ObjectOptions::default())?)
}

/// The per-CPU counters map of a managed filter.
pub const COUNTERS_MAP: &str = "pw_counters";
/// The dispatcher's one-slot program array.
pub const JUMP_MAP: &str = "pw_jump";
/// The program array of a managed filter's trace hook, which
/// `portwall trace` fills (see `codegen::counting`).
pub const TRACE_JUMP_MAP: &str = "pw_tracejmp";

/// A filter as `portwall load` runs it: counting its verdicts in
/// [`COUNTERS_MAP`], keeping its description (`meta_name`, an array of
/// one `meta_size`-byte value) alive, and handing its verdicts to a
/// tracer through [`TRACE_JUMP_MAP`] when one runs. `direction` is the one
/// it will be attached in, if known.
pub fn managed_object(
    filter: &Filter,
    direction: Option<crate::lang::ir::Direction>,
    meta_name: &str,
    meta_size: u32,
) -> Result<(asm::Program, Vec<u8>), CompileError> {
    use elf::{MapDef, map_type};
    let counting = codegen::Counting {
        counters: asm::MapRef(0),
        direction,
        keep_alive: vec![asm::MapRef(1)],
        trace: Some(asm::MapRef(2)),
    };
    let program = codegen::generate_with(filter, Some(&counting))?;
    let maps = vec![
        MapDef {
            name: COUNTERS_MAP.into(),
            map_type: map_type::PERCPU_ARRAY,
            key_size: 4,
            value_size: 16,
            max_entries: codegen::COUNTER_SLOTS,
            flags: 0,
        },
        MapDef {
            name: meta_name.into(),
            map_type: map_type::ARRAY,
            key_size: 4,
            value_size: meta_size,
            max_entries: 1,
            flags: 0,
        },
        MapDef {
            name: TRACE_JUMP_MAP.into(),
            map_type: map_type::PROG_ARRAY,
            key_size: 4,
            value_size: 4,
            max_entries: codegen::TRACE_SLOTS,
            flags: 0,
        },
    ];
    let opts = elf::ObjectOptions {
        maps,
        ..elf::ObjectOptions::default()
    };
    let bytes = elf::write_object(&program, &opts)?;
    Ok((program, bytes))
}

/// The dispatcher program's object (see `codegen::dispatcher`).
pub fn dispatcher_object() -> Result<Vec<u8>, CompileError> {
    let program = codegen::dispatcher(asm::MapRef(0)).map_err(codegen::CodegenError::from)?;
    let opts = elf::ObjectOptions {
        maps: vec![elf::MapDef {
            name: JUMP_MAP.into(),
            map_type: elf::map_type::PROG_ARRAY,
            key_size: 4,
            value_size: 4,
            max_entries: 1,
            flags: 0,
        }],
        ..elf::ObjectOptions::default()
    };
    Ok(elf::write_object(&program, &opts)?)
}
