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
