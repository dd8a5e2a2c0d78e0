//! Encoding into `struct bpf_insn`: 8 bytes a slot, little-endian.
//!
//! Opcode values are those of the kernel's `include/uapi/linux/bpf_common.h`
//! and `include/uapi/linux/bpf.h`.

use super::builder::Program;
use super::insn::{AluOp, Cond, Insn, Operand, Width};
use super::reg::Reg;

// Instruction classes (low 3 bits of the opcode).
const BPF_LD: u8 = 0x00;
const BPF_LDX: u8 = 0x01;
const BPF_ST: u8 = 0x02;
const BPF_STX: u8 = 0x03;
const BPF_ALU: u8 = 0x04;
const BPF_JMP: u8 = 0x05;
const BPF_ALU64: u8 = 0x07;

// Size and mode fields of load/store opcodes.
const BPF_W: u8 = 0x00;
const BPF_H: u8 = 0x08;
const BPF_B: u8 = 0x10;
const BPF_DW: u8 = 0x18;
const BPF_IMM: u8 = 0x00;
const BPF_MEM: u8 = 0x60;

// Source flag: immediate (K) or register (X).
const BPF_K: u8 = 0x00;
const BPF_X: u8 = 0x08;

// ALU operations.
const BPF_ADD: u8 = 0x00;
const BPF_SUB: u8 = 0x10;
const BPF_MUL: u8 = 0x20;
const BPF_DIV: u8 = 0x30;
const BPF_OR: u8 = 0x40;
const BPF_AND: u8 = 0x50;
const BPF_LSH: u8 = 0x60;
const BPF_RSH: u8 = 0x70;
const BPF_NEG: u8 = 0x80;
const BPF_MOD: u8 = 0x90;
const BPF_XOR: u8 = 0xa0;
const BPF_MOV: u8 = 0xb0;
const BPF_ARSH: u8 = 0xc0;
const BPF_END: u8 = 0xd0;
const BPF_TO_BE: u8 = 0x08;

// Jump operations.
const BPF_JA: u8 = 0x00;
const BPF_JEQ: u8 = 0x10;
const BPF_JGT: u8 = 0x20;
const BPF_JGE: u8 = 0x30;
const BPF_JSET: u8 = 0x40;
const BPF_JNE: u8 = 0x50;
const BPF_JSGT: u8 = 0x60;
const BPF_JSGE: u8 = 0x70;
const BPF_CALL: u8 = 0x80;
const BPF_EXIT: u8 = 0x90;
const BPF_JLT: u8 = 0xa0;
const BPF_JLE: u8 = 0xb0;
const BPF_JSLT: u8 = 0xc0;
const BPF_JSLE: u8 = 0xd0;

/// Size of one encoded slot.
pub(super) const SLOT_BYTES: usize = 8;

impl Program {
    /// The slot of every map load, for the object's relocations, and
    /// whether it loads a pointer into the map's value
    /// ([`Insn::LoadMapValue`]) rather than the map itself.
    pub fn map_loads(&self) -> Vec<(usize, super::MapRef, bool)> {
        let mut slot = 0;
        let mut out = Vec::new();
        for insn in &self.insns {
            match *insn {
                Insn::LoadMap { map, .. } => out.push((slot, map, false)),
                Insn::LoadMapValue { map, .. } => out.push((slot, map, true)),
                _ => {}
            }
            slot += insn.slots();
        }
        out
    }

    /// The program as the kernel's `struct bpf_insn` array: 8 bytes a slot
    /// (opcode, `dst | src << 4`, 16-bit offset, 32-bit immediate),
    /// little-endian; a `LoadImm64` takes two slots.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.slots() * SLOT_BYTES);
        for (insn, &off) in self.insns.iter().zip(&self.offsets) {
            encode_insn(&mut out, insn, off);
        }
        out
    }
}

fn slot(out: &mut Vec<u8>, code: u8, dst: Reg, src: Reg, off: i16, imm: i32) {
    out.push(code);
    out.push(dst.index() | (src.index() << 4));
    out.extend_from_slice(&off.to_le_bytes());
    out.extend_from_slice(&imm.to_le_bytes());
}

/// `off` is the resolved jump offset; other instructions ignore it.
fn encode_insn(out: &mut Vec<u8>, insn: &Insn, off: i16) {
    match *insn {
        Insn::Alu64 { op, dst, src } => alu(out, BPF_ALU64, op, dst, src),
        Insn::Alu32 { op, dst, src } => alu(out, BPF_ALU, op, dst, src),
        Insn::ToBe { dst, bits } => slot(
            out,
            BPF_ALU | BPF_END | BPF_TO_BE,
            dst,
            Reg::R0,
            0,
            i32::from(bits),
        ),
        Insn::LoadImm64 { dst, imm } => {
            // The low half goes in the first slot's immediate, the high
            // half in the second slot, whose other fields must be zero.
            let low = imm as i32;
            let high = (imm >> 32) as i32;
            slot(out, BPF_LD | BPF_IMM | BPF_DW, dst, Reg::R0, 0, low);
            slot(out, 0, Reg::R0, Reg::R0, 0, high);
        }
        Insn::LoadMap { dst, .. } => {
            // BPF_PSEUDO_MAP_FD and the descriptor are the loader's to set
            // from the relocation (aya does both).
            slot(out, BPF_LD | BPF_IMM | BPF_DW, dst, Reg::R0, 0, 0);
            slot(out, 0, Reg::R0, Reg::R0, 0, 0);
        }
        Insn::LoadMapValue { dst, offset, .. } => {
            // Loaders (aya, libbpf) add the symbol's offset in the section
            // to the first immediate, move it to the second one and set
            // BPF_PSEUDO_MAP_VALUE and the descriptor.
            slot(out, BPF_LD | BPF_IMM | BPF_DW, dst, Reg::R0, 0, offset);
            slot(out, 0, Reg::R0, Reg::R0, 0, 0);
        }
        Insn::Load {
            width,
            dst,
            base,
            off,
        } => slot(out, BPF_LDX | BPF_MEM | size(width), dst, base, off, 0),
        Insn::Store {
            width,
            base,
            off,
            src,
        } => match src {
            Operand::Reg(src) => slot(out, BPF_STX | BPF_MEM | size(width), base, src, off, 0),
            Operand::Imm(imm) => slot(out, BPF_ST | BPF_MEM | size(width), base, Reg::R0, off, imm),
        },
        Insn::Jump { cond, dst, src, .. } => {
            let code = BPF_JMP | jmp_op(cond);
            match src {
                Operand::Reg(src) => slot(out, code | BPF_X, dst, src, off, 0),
                Operand::Imm(imm) => slot(out, code | BPF_K, dst, Reg::R0, off, imm),
            }
        }
        Insn::Goto(_) => slot(out, BPF_JMP | BPF_JA, Reg::R0, Reg::R0, off, 0),
        Insn::Call(helper) => slot(out, BPF_JMP | BPF_CALL, Reg::R0, Reg::R0, 0, helper),
        Insn::Exit => slot(out, BPF_JMP | BPF_EXIT, Reg::R0, Reg::R0, 0, 0),
    }
}

fn alu(out: &mut Vec<u8>, class: u8, op: AluOp, dst: Reg, src: Operand) {
    let code = class | alu_op(op);
    match (op, src) {
        // The kernel requires neg's source and immediate fields to be zero.
        (AluOp::Neg, _) => slot(out, code | BPF_K, dst, Reg::R0, 0, 0),
        (_, Operand::Reg(src)) => slot(out, code | BPF_X, dst, src, 0, 0),
        (_, Operand::Imm(imm)) => slot(out, code | BPF_K, dst, Reg::R0, 0, imm),
    }
}

const fn size(width: Width) -> u8 {
    match width {
        Width::U8 => BPF_B,
        Width::U16 => BPF_H,
        Width::U32 => BPF_W,
        Width::U64 => BPF_DW,
    }
}

const fn alu_op(op: AluOp) -> u8 {
    match op {
        AluOp::Add => BPF_ADD,
        AluOp::Sub => BPF_SUB,
        AluOp::Mul => BPF_MUL,
        AluOp::Div => BPF_DIV,
        AluOp::Or => BPF_OR,
        AluOp::And => BPF_AND,
        AluOp::Lsh => BPF_LSH,
        AluOp::Rsh => BPF_RSH,
        AluOp::Neg => BPF_NEG,
        AluOp::Mod => BPF_MOD,
        AluOp::Xor => BPF_XOR,
        AluOp::Mov => BPF_MOV,
        AluOp::Arsh => BPF_ARSH,
    }
}

const fn jmp_op(cond: Cond) -> u8 {
    match cond {
        Cond::Eq => BPF_JEQ,
        Cond::Gt => BPF_JGT,
        Cond::Ge => BPF_JGE,
        Cond::Set => BPF_JSET,
        Cond::Ne => BPF_JNE,
        Cond::Sgt => BPF_JSGT,
        Cond::Sge => BPF_JSGE,
        Cond::Lt => BPF_JLT,
        Cond::Le => BPF_JLE,
        Cond::Slt => BPF_JSLT,
        Cond::Sle => BPF_JSLE,
    }
}

#[cfg(test)]
mod tests {
    use super::super::builder::{Asm, Label};
    use super::*;

    /// Encodes what `build` emits, followed by an `exit` (so that jumps
    /// have somewhere to land), and returns the bytes before the `exit`.
    fn bytes_of(build: impl FnOnce(&mut Asm, Label)) -> Vec<u8> {
        let mut asm = Asm::new();
        let next = asm.label("next");
        build(&mut asm, next);
        asm.bind(next);
        asm.exit();
        let mut bytes = asm.finish().expect("assembles").encode();
        let exit = bytes.split_off(bytes.len() - SLOT_BYTES);
        assert_eq!(exit, [0x95, 0, 0, 0, 0, 0, 0, 0]);
        bytes
    }

    fn hex(bytes: &[u8]) -> String {
        bytes
            .chunks(SLOT_BYTES)
            .map(|slot| {
                slot.iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect::<Vec<_>>()
            .join(" | ")
    }

    type Build = fn(&mut Asm, Label);

    /// Each expected encoding was worked out by hand from the uapi
    /// headers: class | size/op | mode/source, then `dst | src << 4`, then
    /// the offset and the immediate, little-endian.
    #[test]
    fn encodings_match_the_kernel_headers() {
        let table: &[(&str, Build, &str)] = &[
            // ALU64 | MOV | K = 0x07 | 0xb0 = 0xb7
            (
                "r0 = 1",
                |a, _| {
                    a.mov64_imm(Reg::R0, 1);
                },
                "b7 00 00 00 01 00 00 00",
            ),
            // ALU64 | MOV | X = 0xbf; dst r1, src r2 -> 0x21
            (
                "r1 = r2",
                |a, _| {
                    a.mov64_reg(Reg::R1, Reg::R2);
                },
                "bf 21 00 00 00 00 00 00",
            ),
            // ALU | MOV | K = 0xb4; -1 is ff ff ff ff
            (
                "w3 = -1",
                |a, _| {
                    a.mov32_imm(Reg::R3, -1);
                },
                "b4 03 00 00 ff ff ff ff",
            ),
            // ALU64 | ADD | K = 0x07
            (
                "r1 += 5",
                |a, _| {
                    a.alu64(AluOp::Add, Reg::R1, 5);
                },
                "07 01 00 00 05 00 00 00",
            ),
            // ALU64 | SUB | X = 0x1f
            (
                "r9 -= r8",
                |a, _| {
                    a.alu64(AluOp::Sub, Reg::R9, Reg::R8);
                },
                "1f 89 00 00 00 00 00 00",
            ),
            // ALU64 | MUL | K = 0x27
            (
                "r2 *= 3",
                |a, _| {
                    a.alu64(AluOp::Mul, Reg::R2, 3);
                },
                "27 02 00 00 03 00 00 00",
            ),
            // ALU64 | DIV | K = 0x37
            (
                "r2 /= 10",
                |a, _| {
                    a.alu64(AluOp::Div, Reg::R2, 10);
                },
                "37 02 00 00 0a 00 00 00",
            ),
            // ALU64 | OR | X = 0x4f
            (
                "r4 |= r5",
                |a, _| {
                    a.alu64(AluOp::Or, Reg::R4, Reg::R5);
                },
                "4f 54 00 00 00 00 00 00",
            ),
            // ALU | AND | K = 0x54
            (
                "w1 &= 0xff",
                |a, _| {
                    a.alu32(AluOp::And, Reg::R1, 0xff);
                },
                "54 01 00 00 ff 00 00 00",
            ),
            // ALU64 | LSH | K = 0x67
            (
                "r1 <<= 8",
                |a, _| {
                    a.alu64(AluOp::Lsh, Reg::R1, 8);
                },
                "67 01 00 00 08 00 00 00",
            ),
            // ALU64 | RSH | K = 0x77
            (
                "r1 >>= 4",
                |a, _| {
                    a.alu64(AluOp::Rsh, Reg::R1, 4);
                },
                "77 01 00 00 04 00 00 00",
            ),
            // ALU64 | NEG | K = 0x87, no source, imm 0
            (
                "r1 = -r1",
                |a, _| {
                    a.neg64(Reg::R1);
                },
                "87 01 00 00 00 00 00 00",
            ),
            // ALU | MOD | X = 0x9c
            (
                "w6 %= w7",
                |a, _| {
                    a.alu32(AluOp::Mod, Reg::R6, Reg::R7);
                },
                "9c 76 00 00 00 00 00 00",
            ),
            // ALU64 | XOR | K = 0xa7
            (
                "r0 ^= 1",
                |a, _| {
                    a.alu64(AluOp::Xor, Reg::R0, 1);
                },
                "a7 00 00 00 01 00 00 00",
            ),
            // ALU64 | ARSH | K = 0xc7
            (
                "r1 s>>= 3",
                |a, _| {
                    a.alu64(AluOp::Arsh, Reg::R1, 3);
                },
                "c7 01 00 00 03 00 00 00",
            ),
            // ALU | END | TO_BE = 0x04 | 0xd0 | 0x08 = 0xdc, imm = 16
            (
                "r1 = be16 r1",
                |a, _| {
                    a.to_be(Reg::R1, 16);
                },
                "dc 01 00 00 10 00 00 00",
            ),
            (
                "r2 = be64 r2",
                |a, _| {
                    a.to_be(Reg::R2, 64);
                },
                "dc 02 00 00 40 00 00 00",
            ),
            // LD | IMM | DW = 0x18; low half, then a zero slot with the high half
            (
                "r1 = 0x1122334455667788 ll",
                |a, _| {
                    a.load_imm64(Reg::R1, 0x1122_3344_5566_7788);
                },
                "18 01 00 00 88 77 66 55 | 00 00 00 00 44 33 22 11",
            ),
            (
                "r1 = -1 ll",
                |a, _| {
                    a.load_imm64(Reg::R1, -1);
                },
                "18 01 00 00 ff ff ff ff | 00 00 00 00 ff ff ff ff",
            ),
            // LDX | MEM | W = 0x61; dst r6, src (base) r1; off 16
            (
                "r6 = *(u32 *)(r1 +16)",
                |a, _| {
                    a.load(Width::U32, Reg::R6, Reg::R1, 16);
                },
                "61 16 10 00 00 00 00 00",
            ),
            // LDX | MEM | B = 0x71, H = 0x69, DW = 0x79
            (
                "r2 = *(u8 *)(r3 +0)",
                |a, _| {
                    a.load(Width::U8, Reg::R2, Reg::R3, 0);
                },
                "71 32 00 00 00 00 00 00",
            ),
            (
                "r2 = *(u16 *)(r3 +2)",
                |a, _| {
                    a.load(Width::U16, Reg::R2, Reg::R3, 2);
                },
                "69 32 02 00 00 00 00 00",
            ),
            (
                "r2 = *(u64 *)(r10 -8)",
                |a, _| {
                    a.load(Width::U64, Reg::R2, Reg::R10, -8);
                },
                "79 a2 f8 ff 00 00 00 00",
            ),
            // STX | MEM | B = 0x73; dst (base) r10, src r1; off -8
            (
                "*(u8 *)(r10 -8) = r1",
                |a, _| {
                    a.store(Width::U8, Reg::R10, -8, Reg::R1);
                },
                "73 1a f8 ff 00 00 00 00",
            ),
            // STX | MEM | DW = 0x7b
            (
                "*(u64 *)(r10 -16) = r3",
                |a, _| {
                    a.store(Width::U64, Reg::R10, -16, Reg::R3);
                },
                "7b 3a f0 ff 00 00 00 00",
            ),
            // ST | MEM | W = 0x62, H = 0x6a
            (
                "*(u32 *)(r10 -4) = 7",
                |a, _| {
                    a.store(Width::U32, Reg::R10, -4, 7);
                },
                "62 0a fc ff 07 00 00 00",
            ),
            (
                "*(u16 *)(r10 -2) = -2",
                |a, _| {
                    a.store(Width::U16, Reg::R10, -2, -2);
                },
                "6a 0a fe ff fe ff ff ff",
            ),
            // JMP | JNE | K = 0x55; off 1 (skips the filler)
            (
                "if r6 != 0x8 goto +1",
                |a, l| {
                    a.jump(Cond::Ne, Reg::R6, 8, l).mov64_imm(Reg::R0, 0);
                },
                "55 06 01 00 08 00 00 00 | b7 00 00 00 00 00 00 00",
            ),
            // JMP | JEQ | K = 0x15, off 0
            (
                "if r1 == 0x0 goto +0",
                |a, l| {
                    a.jump(Cond::Eq, Reg::R1, 0, l);
                },
                "15 01 00 00 00 00 00 00",
            ),
            // JMP | JGT | X = 0x2d
            (
                "if r2 > r3 goto +0",
                |a, l| {
                    a.jump(Cond::Gt, Reg::R2, Reg::R3, l);
                },
                "2d 32 00 00 00 00 00 00",
            ),
            // JMP | JGE | K = 0x35
            (
                "if r2 >= 0x5 goto +0",
                |a, l| {
                    a.jump(Cond::Ge, Reg::R2, 5, l);
                },
                "35 02 00 00 05 00 00 00",
            ),
            // JMP | JSET | K = 0x45
            (
                "if r1 & 0x4 goto +0",
                |a, l| {
                    a.jump(Cond::Set, Reg::R1, 4, l);
                },
                "45 01 00 00 04 00 00 00",
            ),
            // JMP | JSGT | X = 0x6d
            (
                "if r1 s> r2 goto +0",
                |a, l| {
                    a.jump(Cond::Sgt, Reg::R1, Reg::R2, l);
                },
                "6d 21 00 00 00 00 00 00",
            ),
            // JMP | JSGE | K = 0x75
            (
                "if r1 s>= -1 goto +0",
                |a, l| {
                    a.jump(Cond::Sge, Reg::R1, -1, l);
                },
                "75 01 00 00 ff ff ff ff",
            ),
            // JMP | JLT | X = 0xad
            (
                "if r2 < r3 goto +0",
                |a, l| {
                    a.jump(Cond::Lt, Reg::R2, Reg::R3, l);
                },
                "ad 32 00 00 00 00 00 00",
            ),
            // JMP | JLE | K = 0xb5
            (
                "if r2 <= 0x5 goto +0",
                |a, l| {
                    a.jump(Cond::Le, Reg::R2, 5, l);
                },
                "b5 02 00 00 05 00 00 00",
            ),
            // JMP | JSLT | K = 0xc5
            (
                "if r2 s< 0x0 goto +0",
                |a, l| {
                    a.jump(Cond::Slt, Reg::R2, 0, l);
                },
                "c5 02 00 00 00 00 00 00",
            ),
            // JMP | JSLE | X = 0xdd
            (
                "if r2 s<= r4 goto +0",
                |a, l| {
                    a.jump(Cond::Sle, Reg::R2, Reg::R4, l);
                },
                "dd 42 00 00 00 00 00 00",
            ),
            // JMP | JA = 0x05, off 1
            (
                "goto +1",
                |a, l| {
                    a.goto(l).mov64_imm(Reg::R0, 0);
                },
                "05 00 01 00 00 00 00 00 | b7 00 00 00 00 00 00 00",
            ),
            // JMP | CALL = 0x85, imm = helper number
            (
                "call 44",
                |a, _| {
                    a.call(44);
                },
                "85 00 00 00 2c 00 00 00",
            ),
        ];
        for (what, build, expected) in table {
            assert_eq!(hex(&bytes_of(*build)), *expected, "{what}");
        }
    }

    #[test]
    fn exit_and_slot_count() {
        let mut asm = Asm::new();
        asm.load_imm64(Reg::R0, 1).exit();
        let program = asm.finish().expect("assembles");
        assert_eq!(program.slots(), 3);
        assert_eq!(program.insns().len(), 2);
        assert_eq!(program.encode().len(), 3 * SLOT_BYTES);
    }
}
