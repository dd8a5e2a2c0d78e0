//! The dispatcher: the small fixed program pinned under a filter's name.
//!
//! systemd, bpftool and `portwall attach` attach this program; it
//! tail-calls whatever filter slot 0 of its program array holds. Replacing
//! a filter is one update of that slot, which every cgroup running the
//! dispatcher sees at once: a packet is judged wholly by the old filter or
//! wholly by the new one. An empty slot (which only happens if the array
//! is unpinned while the dispatcher is still attached) drops the packet:
//! a firewall fails closed.

use super::helpers;
use crate::compiler::asm::{Asm, AsmError, Insn, MapRef, Program, Reg};

/// The dispatcher program for the program array `jump_table`.
pub fn dispatcher(jump_table: MapRef) -> Result<Program, AsmError> {
    let mut asm = Asm::new();
    // r1 still holds the context, as the tail call wants it.
    asm.push(Insn::LoadMap {
        dst: Reg::R2,
        map: jump_table,
    });
    asm.mov64_imm(Reg::R3, 0);
    asm.push(Insn::Call(helpers::TAIL_CALL));
    asm.mov64_imm(Reg::R0, 0);
    asm.exit();
    asm.finish()
}
