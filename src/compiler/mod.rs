//! From a checked filter to a `BPF_PROG_TYPE_CGROUP_SKB` program.
//!
//! `asm` is the instruction builder (symbolic labels, encoding,
//! disassembly); `codegen` turns a filter into instructions; `elf` wraps
//! them in an object file that aya and bpftool load.

pub mod asm;
pub mod elf;
