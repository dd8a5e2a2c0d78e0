//! The tracer: the program `portwall trace` puts in a filter's trace hook.
//!
//! The filter tail-calls it after counting a verdict, with the verdict in
//! `skb->cb[0]` (see `codegen::counting`). It reserves a fixed-size
//! record in its ring buffer, fills it (see [`super::record`]), submits it,
//! and returns the verdict it was given, so tracing can never change what
//! happens to a packet. When the ring buffer is full it counts the event
//! as lost in a per-CPU counter instead.

use crate::compiler::asm::{AluOp, Asm, Cond, Insn, MapRef, Program, Reg, Width};
use crate::compiler::codegen::{helpers, skb};
use crate::compiler::elf::{self, MapDef, map_type};
use crate::compiler::{CompileError, codegen::CodegenError};

use super::record::{
    HEADER_LEN, OFF_CAPLEN, OFF_CGROUP, OFF_DIRECTION, OFF_LEN, OFF_PROTOCOL, OFF_TIME,
    OFF_VERDICT, OFF_VERSION, RECORD_VERSION, record_len,
};

/// The program's name in the object and the kernel.
pub const PROGRAM_NAME: &str = "pw_tracer";
/// The ring buffer map.
pub const RING_MAP: &str = "pw_trace_ring";
/// The per-CPU count of records that did not fit in the ring buffer.
pub const LOST_MAP: &str = "pw_trace_lost";

/// The longest snap length: the ring buffer's records are reserved whole.
pub const MAX_SNAP: u32 = 65_535;

/// `BPF_MAP_TYPE_RINGBUF` (include/uapi/linux/bpf.h).
const MAP_TYPE_RINGBUF: u32 = 27;

const RING: MapRef = MapRef(0);
const LOST: MapRef = MapRef(1);

/// The tracer for records of `snap` packet bytes at most.
pub fn tracer(snap: u32) -> Result<Program, CompileError> {
    let snap = snap.min(MAX_SNAP);
    let ctx = Reg::R6;
    let rec = Reg::R7;
    let caplen = Reg::R8;
    let mut a = Asm::new();
    let lost = a.label("lost");
    let out = a.label("out");
    let egress = a.label("egress");
    let clamped = a.label("clamped");
    let copied = a.label("copied");
    let failed = a.label("copy_failed");

    a.mov64_reg(ctx, Reg::R1);
    a.push(Insn::LoadMap {
        dst: Reg::R1,
        map: RING,
    });
    a.mov64_imm(Reg::R2, record_len(snap) as i32);
    a.mov64_imm(Reg::R3, 0);
    a.call(helpers::RINGBUF_RESERVE);
    a.jump(Cond::Eq, Reg::R0, 0, lost);
    a.mov64_reg(rec, Reg::R0);

    a.call(helpers::KTIME_GET_NS);
    a.store(Width::U64, rec, OFF_TIME, Reg::R0);
    a.mov64_reg(Reg::R1, ctx);
    a.call(helpers::SKB_CGROUP_ID);
    a.store(Width::U64, rec, OFF_CGROUP, Reg::R0);
    a.load(Width::U32, caplen, ctx, skb::LEN);
    a.store(Width::U32, rec, OFF_LEN, caplen);
    a.load(Width::U32, Reg::R1, ctx, skb::PROTOCOL);
    a.store(Width::U32, rec, OFF_PROTOCOL, Reg::R1);
    a.load(Width::U32, Reg::R1, ctx, skb::CB0);
    a.alu64(AluOp::And, Reg::R1, 1);
    a.store(Width::U8, rec, OFF_VERDICT, Reg::R1);
    // Received packets have an ingress interface; sent ones none yet (as
    // the counters tell the directions apart).
    a.load(Width::U32, Reg::R1, ctx, skb::INGRESS_IFINDEX);
    a.jump(Cond::Eq, Reg::R1, 0, egress);
    a.mov64_imm(Reg::R1, 1);
    a.bind(egress);
    a.store(Width::U8, rec, OFF_DIRECTION, Reg::R1);
    a.store(Width::U16, rec, OFF_VERSION, i32::from(RECORD_VERSION));

    // caplen = min(len, snap); the copy needs a length the verifier can
    // bound, and at least one byte.
    a.jump(Cond::Le, caplen, snap as i32, clamped);
    a.mov64_imm(caplen, snap as i32);
    a.bind(clamped);
    a.jump(Cond::Eq, caplen, 0, copied);
    a.mov64_reg(Reg::R1, ctx);
    a.mov64_imm(Reg::R2, 0);
    a.mov64_reg(Reg::R3, rec);
    a.alu64(AluOp::Add, Reg::R3, HEADER_LEN as i32);
    a.mov64_reg(Reg::R4, caplen);
    a.call(helpers::SKB_LOAD_BYTES);
    a.jump(Cond::Ne, Reg::R0, 0, failed);
    a.goto(copied);
    a.bind(failed);
    a.mov64_imm(caplen, 0);
    a.bind(copied);
    a.store(Width::U32, rec, OFF_CAPLEN, caplen);
    a.mov64_reg(Reg::R1, rec);
    a.mov64_imm(Reg::R2, 0);
    a.call(helpers::RINGBUF_SUBMIT);
    a.goto(out);

    a.bind(lost);
    a.store(Width::U32, Reg::R10, -4, 0);
    a.push(Insn::LoadMap {
        dst: Reg::R1,
        map: LOST,
    });
    a.mov64_reg(Reg::R2, Reg::R10);
    a.alu64(AluOp::Add, Reg::R2, -4);
    a.call(helpers::MAP_LOOKUP_ELEM);
    a.jump(Cond::Eq, Reg::R0, 0, out);
    // Per-CPU: no other CPU writes this value.
    a.load(Width::U64, Reg::R1, Reg::R0, 0);
    a.alu64(AluOp::Add, Reg::R1, 1);
    a.store(Width::U64, Reg::R0, 0, Reg::R1);

    a.bind(out);
    a.load(Width::U32, Reg::R0, ctx, skb::CB0);
    a.alu64(AluOp::And, Reg::R0, 1);
    a.exit();
    a.finish()
        .map_err(|e| CompileError::Codegen(CodegenError::Asm(e)))
}

/// The tracer's object, with a ring buffer of `ring_bytes` (the loader
/// rounds it up to a power-of-two number of pages).
pub fn object(snap: u32, ring_bytes: u32) -> Result<Vec<u8>, CompileError> {
    let program = tracer(snap)?;
    let opts = elf::ObjectOptions {
        program_name: PROGRAM_NAME.into(),
        maps: vec![
            MapDef {
                name: RING_MAP.into(),
                map_type: MAP_TYPE_RINGBUF,
                key_size: 0,
                value_size: 0,
                max_entries: ring_bytes,
                flags: 0,
                data: None,
            },
            MapDef {
                name: LOST_MAP.into(),
                map_type: map_type::PERCPU_ARRAY,
                key_size: 4,
                value_size: 8,
                max_entries: 1,
                flags: 0,
                data: None,
            },
        ],
        ..elf::ObjectOptions::default()
    };
    Ok(elf::write_object(&program, &opts)?)
}
