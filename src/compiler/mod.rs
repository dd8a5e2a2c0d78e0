//! From a checked filter to a `BPF_PROG_TYPE_CGROUP_SKB` program.
//!
//! `asm` is the instruction builder (symbolic labels, encoding,
//! disassembly); `codegen` turns a filter into instructions; `elf` wraps
//! them in an object file that aya and bpftool load.

pub mod asm;
pub mod codegen;
pub mod elf;
pub mod tables;

use crate::lang::ir::Filter;

/// Why compiling a filter failed.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    #[error("cannot generate code: {0}")]
    Codegen(#[from] codegen::CodegenError),
    #[error("cannot write the object file: {0}")]
    Elf(#[from] elf::ElfError),
}

/// A compiled filter: its program and the tables its set lookups read.
/// It dereferences to the program.
pub use codegen::Generated as Compiled;

/// Choices that change how a filter compiles, not what it means.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CompileOptions {
    /// How set lookups are compiled.
    pub sets: codegen::SetStrategy,
    /// Start in the slow path (see `codegen::CodegenOptions`); for tests.
    pub force_slow_path: bool,
}

impl CompileOptions {
    fn codegen(&self, first_map: u16) -> codegen::CodegenOptions {
        codegen::CodegenOptions {
            sets: codegen::SetOptions {
                strategy: self.sets,
                first_map,
            },
            force_slow_path: self.force_slow_path,
        }
    }
}

/// Compiles a checked filter into a cgroup_skb program.
pub fn compile(filter: &Filter) -> Result<Compiled, CompileError> {
    compile_with(filter, &CompileOptions::default())
}

/// As [`compile`], with options.
pub fn compile_with(filter: &Filter, options: &CompileOptions) -> Result<Compiled, CompileError> {
    Ok(codegen::generate_with_options(
        filter,
        None,
        &options.codegen(0),
    )?)
}

/// The program's symbol name in object files (and so its name in the kernel).
pub const PROGRAM_NAME: &str = "portwall";

/// Wraps a compiled filter in an ELF object that bpftool and aya load.
/// Tables are data sections, filled by any loader; an LPM trie table (only
/// with `SetStrategy::LpmTrie`) must be filled after loading
/// (`kernel::fill_tables`).
pub fn object(compiled: &Compiled) -> Result<Vec<u8>, CompileError> {
    let opts = elf::ObjectOptions {
        maps: table_maps(&compiled.tables),
        ..elf::ObjectOptions::default()
    };
    Ok(elf::write_object(&compiled.program, &opts)?)
}

fn table_maps(tables: &[codegen::SetTable]) -> Vec<elf::MapDef> {
    tables
        .iter()
        .enumerate()
        .map(|(i, t)| t.map_def(i))
        .collect()
}

/// Which set table a loaded map is (by the name the loader gives it), if
/// it is one: `.rodata.setN` for data tables, `setN` for LPM tries.
pub fn set_table_index(map_name: &str) -> Option<usize> {
    let name = map_name
        .strip_prefix(elf::RODATA_PREFIX)
        .unwrap_or(map_name);
    let digits = name.strip_prefix("set")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
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
    managed_object_with(
        filter,
        direction,
        meta_name,
        meta_size,
        &CompileOptions::default(),
    )
}

/// As [`managed_object`], with options.
pub fn managed_object_with(
    filter: &Filter,
    direction: Option<crate::lang::ir::Direction>,
    meta_name: &str,
    meta_size: u32,
    options: &CompileOptions,
) -> Result<(asm::Program, Vec<u8>), CompileError> {
    use elf::{MapDef, map_type};
    let counting = codegen::Counting {
        counters: asm::MapRef(0),
        direction,
        keep_alive: vec![asm::MapRef(1)],
        trace: Some(asm::MapRef(2)),
    };
    const OWN_MAPS: u16 = 3;
    let generated =
        codegen::generate_with_options(filter, Some(&counting), &options.codegen(OWN_MAPS))?;
    let mut maps = vec![
        MapDef {
            name: COUNTERS_MAP.into(),
            map_type: map_type::PERCPU_ARRAY,
            key_size: 4,
            value_size: 16,
            max_entries: codegen::COUNTER_SLOTS,
            flags: 0,
            data: None,
        },
        MapDef {
            name: meta_name.into(),
            map_type: map_type::ARRAY,
            key_size: 4,
            value_size: meta_size,
            max_entries: 1,
            flags: 0,
            data: None,
        },
        MapDef {
            name: TRACE_JUMP_MAP.into(),
            map_type: map_type::PROG_ARRAY,
            key_size: 4,
            value_size: 4,
            max_entries: codegen::TRACE_SLOTS,
            flags: 0,
            data: None,
        },
    ];
    maps.extend(table_maps(&generated.tables));
    debug_assert_eq!(maps.len(), usize::from(OWN_MAPS) + generated.tables.len());
    let opts = elf::ObjectOptions {
        maps,
        ..elf::ObjectOptions::default()
    };
    let bytes = elf::write_object(&generated.program, &opts)?;
    Ok((generated.program, bytes))
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
            data: None,
        }],
        ..elf::ObjectOptions::default()
    };
    Ok(elf::write_object(&program, &opts)?)
}
