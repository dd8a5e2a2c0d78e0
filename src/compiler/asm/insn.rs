//! The instruction set portwall emits: the subset of eBPF that Linux 5.10
//! accepts (no cpu-v4 instructions, no `BPF_JMP32`).

use super::builder::Label;
use super::reg::Reg;

/// Access width of a memory load or store.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Width {
    /// One byte (`BPF_B`).
    U8,
    /// Two bytes (`BPF_H`).
    U16,
    /// Four bytes (`BPF_W`).
    U32,
    /// Eight bytes (`BPF_DW`).
    U64,
}

impl Width {
    /// Number of bytes accessed.
    pub const fn bytes(self) -> usize {
        match self {
            Width::U8 => 1,
            Width::U16 => 2,
            Width::U32 => 4,
            Width::U64 => 8,
        }
    }
}

/// An arithmetic or logic operation (`BPF_ALU` / `BPF_ALU64`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum AluOp {
    /// `dst += src`
    Add,
    /// `dst -= src`
    Sub,
    /// `dst *= src`
    Mul,
    /// Unsigned `dst /= src`; the kernel defines division by zero as 0.
    Div,
    /// `dst |= src`
    Or,
    /// `dst &= src`
    And,
    /// `dst <<= src`
    Lsh,
    /// Logical `dst >>= src`.
    Rsh,
    /// `dst = -dst`; the source operand must be `Operand::Imm(0)`.
    Neg,
    /// Unsigned `dst %= src`; modulo zero leaves `dst` unchanged.
    Mod,
    /// `dst ^= src`
    Xor,
    /// `dst = src`
    Mov,
    /// Arithmetic (sign-filling) `dst >>= src`.
    Arsh,
}

/// A jump condition comparing `dst` with `src` as 64-bit values.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Cond {
    /// `dst == src`
    Eq,
    /// Unsigned `dst > src`.
    Gt,
    /// Unsigned `dst >= src`.
    Ge,
    /// `dst & src != 0`
    Set,
    /// `dst != src`
    Ne,
    /// Signed `dst > src`.
    Sgt,
    /// Signed `dst >= src`.
    Sge,
    /// Unsigned `dst < src`.
    Lt,
    /// Unsigned `dst <= src`.
    Le,
    /// Signed `dst < src`.
    Slt,
    /// Signed `dst <= src`.
    Sle,
}

impl Cond {
    /// The condition that holds exactly when `self` does not.
    ///
    /// `Set` has no single-instruction negation, so it returns `None`.
    pub const fn negate(self) -> Option<Cond> {
        Some(match self {
            Cond::Eq => Cond::Ne,
            Cond::Ne => Cond::Eq,
            Cond::Gt => Cond::Le,
            Cond::Le => Cond::Gt,
            Cond::Ge => Cond::Lt,
            Cond::Lt => Cond::Ge,
            Cond::Sgt => Cond::Sle,
            Cond::Sle => Cond::Sgt,
            Cond::Sge => Cond::Slt,
            Cond::Slt => Cond::Sge,
            Cond::Set => return None,
        })
    }
}

/// The source operand of an ALU, store or jump instruction.
///
/// Immediates are sign-extended to 64 bits by 64-bit operations.
/// A map of the program's object, by its index in the object's map table.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct MapRef(pub u16);

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Operand {
    /// A register (`BPF_X`).
    Reg(Reg),
    /// A 32-bit immediate (`BPF_K`).
    Imm(i32),
}

impl From<Reg> for Operand {
    fn from(reg: Reg) -> Self {
        Operand::Reg(reg)
    }
}

impl From<i32> for Operand {
    fn from(imm: i32) -> Self {
        Operand::Imm(imm)
    }
}

/// One instruction, with jump targets still symbolic.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Insn {
    /// 64-bit ALU operation (`BPF_ALU64`).
    Alu64 {
        /// The operation.
        op: AluOp,
        /// Destination (and first operand).
        dst: Reg,
        /// Second operand; `Imm(0)` for `Neg`.
        src: Operand,
    },
    /// 32-bit ALU operation (`BPF_ALU`); the result is zero-extended into
    /// the 64-bit register.
    Alu32 {
        /// The operation.
        op: AluOp,
        /// Destination (and first operand).
        dst: Reg,
        /// Second operand; `Imm(0)` for `Neg`.
        src: Operand,
    },
    /// Convert the low `bits` (16, 32 or 64) of `dst` from host order to big
    /// endian (`BPF_ALU | BPF_END | BPF_TO_BE`), zero-extending the result.
    ToBe {
        /// Register converted in place.
        dst: Reg,
        /// 16, 32 or 64.
        bits: u8,
    },
    /// Load a 64-bit immediate (`BPF_LD | BPF_IMM | BPF_DW`); takes two slots.
    LoadImm64 {
        /// Destination.
        dst: Reg,
        /// The value.
        imm: i64,
    },
    /// Load a map's address (`BPF_LD | BPF_IMM | BPF_DW` with
    /// `BPF_PSEUDO_MAP_FD`); two slots. The loader puts the map's file
    /// descriptor in the immediate, following the object's relocation for
    /// this instruction, so `map` only names the map in the object's table.
    LoadMap {
        /// Destination.
        dst: Reg,
        /// Which of the object's maps.
        map: MapRef,
    },
    /// Load the address of byte `offset` of a read-only data map's single
    /// value (`BPF_LD | BPF_IMM | BPF_DW` with `BPF_PSEUDO_MAP_VALUE`); two
    /// slots. As with [`Insn::LoadMap`], the loader fills in the map from
    /// the object's relocation; the offset travels in the first immediate.
    /// Only maps written as data sections (with contents) can be the target.
    LoadMapValue {
        /// Destination: a pointer into the map's value.
        dst: Reg,
        /// Which of the object's maps.
        map: MapRef,
        /// Byte offset into the value.
        offset: i32,
    },
    /// `dst = *(width *)(base + off)` (`BPF_LDX | BPF_MEM`), zero-extended.
    Load {
        /// Access width.
        width: Width,
        /// Destination.
        dst: Reg,
        /// Register holding the address.
        base: Reg,
        /// Byte offset from `base`.
        off: i16,
    },
    /// `*(width *)(base + off) = src` (`BPF_STX | BPF_MEM` for a register,
    /// `BPF_ST | BPF_MEM` for an immediate).
    Store {
        /// Access width.
        width: Width,
        /// Register holding the address.
        base: Reg,
        /// Byte offset from `base`.
        off: i16,
        /// Value stored (its low `width` bytes).
        src: Operand,
    },
    /// `if dst <cond> src goto target` (`BPF_JMP`, 64-bit compare).
    Jump {
        /// The comparison.
        cond: Cond,
        /// Left-hand side.
        dst: Reg,
        /// Right-hand side.
        src: Operand,
        /// Where to go when the condition holds.
        target: Label,
    },
    /// Unconditional jump (`BPF_JA`).
    Goto(Label),
    /// Call a helper function by number (`BPF_CALL`).
    Call(i32),
    /// Return `r0` (`BPF_EXIT`).
    Exit,
}

impl Insn {
    /// Number of 8-byte slots the instruction takes once encoded.
    pub const fn slots(&self) -> usize {
        match self {
            Insn::LoadImm64 { .. } | Insn::LoadMap { .. } | Insn::LoadMapValue { .. } => 2,
            _ => 1,
        }
    }

    /// The label this instruction may jump to, if it is a jump.
    pub const fn target(&self) -> Option<Label> {
        match *self {
            Insn::Jump { target, .. } | Insn::Goto(target) => Some(target),
            _ => None,
        }
    }

    /// Why the kernel would refuse this instruction, checked before
    /// encoding so mistakes are reported with an instruction index rather
    /// than as a verifier log.
    pub(super) fn invalid_reason(&self) -> Option<String> {
        let written = match *self {
            Insn::Alu64 { dst, .. }
            | Insn::Alu32 { dst, .. }
            | Insn::ToBe { dst, .. }
            | Insn::LoadImm64 { dst, .. }
            | Insn::LoadMap { dst, .. }
            | Insn::LoadMapValue { dst, .. }
            | Insn::Load { dst, .. } => Some(dst),
            _ => None,
        };
        if written == Some(Reg::R10) {
            return Some("r10 is the read-only frame pointer".to_string());
        }
        match *self {
            Insn::Alu64 { op, src, .. } => alu_reason(op, src, 64),
            Insn::Alu32 { op, src, .. } => alu_reason(op, src, 32),
            Insn::ToBe { bits, .. } if !matches!(bits, 16 | 32 | 64) => Some(format!(
                "byte swap width must be 16, 32 or 64 bits, not {bits}"
            )),
            _ => None,
        }
    }
}

fn alu_reason(op: AluOp, src: Operand, bits: i32) -> Option<String> {
    match (op, src) {
        (AluOp::Neg, Operand::Imm(0)) => None,
        (AluOp::Neg, _) => Some("neg takes no source operand; pass Operand::Imm(0)".to_string()),
        (AluOp::Div | AluOp::Mod, Operand::Imm(0)) => {
            Some("division by the constant zero".to_string())
        }
        (AluOp::Lsh | AluOp::Rsh | AluOp::Arsh, Operand::Imm(n)) if !(0..bits).contains(&n) => {
            Some(format!("shift by {n} is outside 0..{bits}"))
        }
        _ => None,
    }
}
