//! eBPF instructions with symbolic labels: build, resolve, encode, disassemble.

mod builder;
mod disasm;
mod encode;
mod insn;
mod reg;

pub use builder::{Asm, AsmError, Label, Program};
pub use insn::{AluOp, Cond, Insn, MapRef, Operand, Width};
pub use reg::Reg;
