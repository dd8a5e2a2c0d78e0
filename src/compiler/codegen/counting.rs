//! Verdict tails that count packets and bytes before returning.
//!
//! Counters live in a per-CPU array of [`COUNTER_SLOTS`] entries, each two
//! u64 (packets, bytes), indexed by [`counter_key`]. Per-CPU values need no
//! atomic instructions; readers add up the CPUs. An update can be lost
//! only if the program is preempted between its load and store by another
//! run of it on the same CPU, which the counters tolerate (they are
//! statistics, not the verdict).
//!
//! A managed filter also hands each verdict to `portwall trace` when one
//! runs: after counting, it tail-calls slot 0 (drops) or slot 1 (forwards)
//! of a two-slot program array, with the verdict in `skb->cb[0]`. The
//! tracer fills the slots while it runs; an empty slot makes the tail call
//! fall through to the normal return, so with no tracer the hook is one
//! store and a tail call the JIT turns into a patched direct jump that is
//! a no-op while the slot is empty. The tracer returns the verdict it was
//! given, so the hook can never change one.

use super::{Gen, helpers, regs, skb};
use crate::compiler::asm::{AluOp, Cond, Insn, MapRef, Reg, Width};
use crate::lang::ir::Direction;

/// Stack cells kept by the tails: the context, and the map key.
const CTX_CELL: i16 = -8;
const KEY_CELL: i16 = -16;

/// Slots of the trace hook's program array, by verdict.
pub const TRACE_SLOT_DROP: u32 = 0;
pub const TRACE_SLOT_FORWARD: u32 = 1;
/// Entries in the trace hook's program array.
pub const TRACE_SLOTS: u32 = 2;

/// Entries in the counters map: (ingress, egress) × (dropped, forwarded).
pub const COUNTER_SLOTS: u32 = 4;

/// Where a verdict in a direction is counted.
pub fn counter_key(direction: Direction, forwarded: bool) -> u32 {
    let base = match direction {
        Direction::Egress => 0,
        Direction::Ingress => 2,
    };
    base + forwarded as u32
}

/// How a program counts its verdicts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Counting {
    /// The per-CPU array of counters.
    pub counters: MapRef,
    /// The direction the program is attached in, if known when compiling;
    /// otherwise each packet's direction is read from the context.
    pub direction: Option<Direction>,
    /// Maps the program refers to only so that they live as long as it
    /// does (its description, for `portwall list`).
    pub keep_alive: Vec<MapRef>,
    /// The program array of the trace hook (see the module comment), if
    /// the program has one.
    pub trace: Option<MapRef>,
}

/// Saves the context pointer: the tails need it after the expression has
/// used every register.
pub(super) fn save_context(g: &mut Gen) {
    // First in the frame, so the cells are at the fixed offsets.
    let ctx = g.alloc_stack(8);
    let key = g.alloc_stack(8);
    debug_assert_eq!((ctx, key), (CTX_CELL, KEY_CELL));
    g.ctx_cell = Some(ctx);
    g.push(Insn::Store {
        width: Width::U64,
        base: Reg::R10,
        off: CTX_CELL,
        src: Reg::R1.into(),
    });
}

/// The forward and drop tails, each counting, then returning its verdict.
pub(super) fn tails(g: &mut Gen, counting: &Counting) {
    let count = g.label("count");
    let verdict = regs::PROTOCOL;
    g.mov(verdict, 1);
    let drop_used = g.is_referenced(g.drop);
    if drop_used {
        g.push(Insn::Goto(count));
        let drop = g.drop;
        g.bind(drop);
        g.mov(verdict, 0);
    }
    g.bind(count);
    for map in &counting.keep_alive {
        g.push(Insn::LoadMap {
            dst: Reg::R1,
            map: *map,
        });
    }
    let len = regs::KIND;
    g.load(Width::U64, Reg::R1, Reg::R10, CTX_CELL);
    g.load(Width::U32, len, Reg::R1, skb::LEN);
    g.mov(Reg::R2, verdict);
    match counting.direction {
        Some(direction) => {
            let base = counter_key(direction, false) as i32;
            if base != 0 {
                g.alu(AluOp::Add, Reg::R2, base);
            }
        }
        None => {
            // Received packets have an ingress interface; packets the
            // cgroup's sockets send have none yet.
            let egress = g.label("egress");
            g.load(Width::U32, Reg::R3, Reg::R1, skb::INGRESS_IFINDEX);
            g.jump(Cond::Eq, Reg::R3, 0, egress);
            let ingress = counter_key(Direction::Ingress, false) as i32;
            g.alu(AluOp::Add, Reg::R2, ingress);
            g.bind(egress);
        }
    }
    g.push(Insn::Store {
        width: Width::U32,
        base: Reg::R10,
        off: KEY_CELL,
        src: Reg::R2.into(),
    });
    g.push(Insn::LoadMap {
        dst: Reg::R1,
        map: counting.counters,
    });
    g.mov(Reg::R2, Reg::R10);
    g.alu(AluOp::Add, Reg::R2, i32::from(KEY_CELL));
    g.push(Insn::Call(helpers::MAP_LOOKUP_ELEM));
    let out = g.label("counted");
    g.jump(Cond::Eq, Reg::R0, 0, out);
    for (offset, amount) in [(0, None), (8, Some(len))] {
        g.load(Width::U64, Reg::R1, Reg::R0, offset);
        match amount {
            None => g.alu(AluOp::Add, Reg::R1, 1),
            Some(r) => g.alu(AluOp::Add, Reg::R1, r),
        }
        g.push(Insn::Store {
            width: Width::U64,
            base: Reg::R0,
            off: offset,
            src: Reg::R1.into(),
        });
    }
    g.bind(out);
    if let Some(hook) = counting.trace {
        trace_hook(g, hook, verdict);
    }
    g.mov(Reg::R0, verdict);
    g.push(Insn::Exit);
}

/// Tail-calls the tracer's slot for `verdict`, which falls through when
/// the slot is empty. Each call site has a constant slot number, which
/// lets the verifier make it a direct jump.
fn trace_hook(g: &mut Gen, hook: MapRef, verdict: Reg) {
    g.load(Width::U64, Reg::R1, Reg::R10, CTX_CELL);
    g.push(Insn::Store {
        width: Width::U32,
        base: Reg::R1,
        off: skb::CB0,
        src: verdict.into(),
    });
    let forward = g.label("trace_forward");
    let traced = g.label("traced");
    g.jump(Cond::Ne, verdict, 0, forward);
    tail_call(g, hook, TRACE_SLOT_DROP);
    g.push(Insn::Goto(traced));
    g.bind(forward);
    tail_call(g, hook, TRACE_SLOT_FORWARD);
    g.bind(traced);
}

/// `bpf_tail_call(ctx, map, slot)`, with the context already in r1.
fn tail_call(g: &mut Gen, map: MapRef, slot: u32) {
    g.push(Insn::LoadMap { dst: Reg::R2, map });
    g.mov(Reg::R3, slot as i32);
    g.push(Insn::Call(helpers::TAIL_CALL));
}
