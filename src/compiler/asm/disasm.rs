//! The listing: one instruction a line, in the notation of the kernel
//! verifier log and `bpftool prog dump xlated`, with labels instead of
//! relative offsets.
//!
//! Number rule: immediates print in decimal, except where they are
//! usually bit patterns or protocol constants: the operands of `&=`, `|=`,
//! `^=`, every jump comparison (as in the verifier log) and 64-bit loads
//! print in hex. A 32-bit immediate keeps its sign (`-0x8`), because 64-bit
//! operations sign-extend it; a 64-bit load prints its exact bit pattern.
//! Memory offsets are signed decimal (`(r10 -8)`), helpers are numbers.

use std::fmt;

use super::builder::{Label, Program};
use super::insn::{AluOp, Cond, Insn, Operand, Width};
use super::reg::Reg;

impl fmt::Display for Program {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Wide enough for the largest slot number, and at least three
        // columns so short listings line up like bpftool's.
        let width = self.slots().to_string().len().max(3);
        let mut labels = self.labels.iter().peekable();
        for (index, insn) in self.insns.iter().enumerate() {
            while let Some((_, name)) = labels.next_if(|(pos, _)| *pos == index) {
                writeln!(f, "{name}:")?;
            }
            write!(f, "{:>width$}: ", self.slot_of[index])?;
            self.write_insn(f, insn)?;
            writeln!(f)?;
        }
        // Labels bound after the last instruction (nothing may jump there).
        for (_, name) in labels {
            writeln!(f, "{name}:")?;
        }
        Ok(())
    }
}

impl Program {
    fn label_name(&self, label: Label) -> &str {
        usize::try_from(label.index)
            .ok()
            .and_then(|i| self.label_names.get(i))
            .map_or("?", String::as_str)
    }

    fn write_insn(&self, f: &mut fmt::Formatter<'_>, insn: &Insn) -> fmt::Result {
        match *insn {
            Insn::Alu64 { op, dst, src } => write_alu(f, 'r', op, dst, src),
            Insn::Alu32 { op, dst, src } => write_alu(f, 'w', op, dst, src),
            Insn::ToBe { dst, bits } => write!(f, "{dst} = be{bits} {dst}"),
            Insn::LoadImm64 { dst, imm } => write!(f, "{dst} = {:#x} ll", imm as u64),
            Insn::LoadMap { dst, map } => write!(f, "{dst} = map[{}] ll", map.0),
            Insn::LoadMapValue { dst, map, offset } => {
                write!(f, "{dst} = map_value[{}] + {offset} ll", map.0)
            }
            Insn::Load {
                width,
                dst,
                base,
                off,
            } => write!(f, "{dst} = *({} *)({base} {off:+})", type_name(width)),
            Insn::Store {
                width,
                base,
                off,
                src,
            } => {
                write!(f, "*({} *)({base} {off:+}) = ", type_name(width))?;
                match src {
                    Operand::Reg(src) => write!(f, "{src}"),
                    Operand::Imm(imm) => write!(f, "{imm}"),
                }
            }
            Insn::Jump {
                cond,
                dst,
                src,
                target,
            } => {
                write!(f, "if {dst} {} ", cond_symbol(cond))?;
                match src {
                    Operand::Reg(src) => write!(f, "{src}")?,
                    Operand::Imm(imm) => write_hex(f, imm)?,
                }
                write!(f, " goto {}", self.label_name(target))
            }
            Insn::Goto(target) => write!(f, "goto {}", self.label_name(target)),
            Insn::Call(helper) => write!(f, "call {helper}"),
            Insn::Exit => write!(f, "exit"),
        }
    }
}

fn write_alu(
    f: &mut fmt::Formatter<'_>,
    prefix: char,
    op: AluOp,
    dst: Reg,
    src: Operand,
) -> fmt::Result {
    let dst = dst.index();
    if op == AluOp::Neg {
        return write!(f, "{prefix}{dst} = -{prefix}{dst}");
    }
    write!(f, "{prefix}{dst} {} ", alu_symbol(op))?;
    match src {
        Operand::Reg(src) => write!(f, "{prefix}{}", src.index()),
        Operand::Imm(imm) if matches!(op, AluOp::And | AluOp::Or | AluOp::Xor) => write_hex(f, imm),
        Operand::Imm(imm) => write!(f, "{imm}"),
    }
}

fn write_hex(f: &mut fmt::Formatter<'_>, imm: i32) -> fmt::Result {
    if imm < 0 {
        write!(f, "-{:#x}", imm.unsigned_abs())
    } else {
        write!(f, "{imm:#x}")
    }
}

const fn alu_symbol(op: AluOp) -> &'static str {
    match op {
        AluOp::Add => "+=",
        AluOp::Sub => "-=",
        AluOp::Mul => "*=",
        AluOp::Div => "/=",
        AluOp::Or => "|=",
        AluOp::And => "&=",
        AluOp::Lsh => "<<=",
        AluOp::Rsh => ">>=",
        AluOp::Neg => "= -",
        AluOp::Mod => "%=",
        AluOp::Xor => "^=",
        AluOp::Mov => "=",
        AluOp::Arsh => "s>>=",
    }
}

const fn cond_symbol(cond: Cond) -> &'static str {
    match cond {
        Cond::Eq => "==",
        Cond::Gt => ">",
        Cond::Ge => ">=",
        Cond::Set => "&",
        Cond::Ne => "!=",
        Cond::Sgt => "s>",
        Cond::Sge => "s>=",
        Cond::Lt => "<",
        Cond::Le => "<=",
        Cond::Slt => "s<",
        Cond::Sle => "s<=",
    }
}

const fn type_name(width: Width) -> &'static str {
    match width {
        Width::U8 => "u8",
        Width::U16 => "u16",
        Width::U32 => "u32",
        Width::U64 => "u64",
    }
}

#[cfg(test)]
mod tests {
    use super::super::builder::Asm;
    use super::*;

    #[test]
    fn listing_of_a_small_filter() {
        let mut asm = Asm::new();
        let drop = asm.label("drop");
        let pass = asm.label("pass");
        let unused = asm.label("drop");
        asm.load(Width::U32, Reg::R6, Reg::R1, 16)
            .jump(Cond::Ne, Reg::R6, 0x8, drop)
            .load_imm64(Reg::R2, 0x1122_3344_5566_7788)
            .alu32(AluOp::And, Reg::R2, 0xff)
            .alu64(AluOp::Add, Reg::R2, 5)
            .alu64(AluOp::Arsh, Reg::R2, 3)
            .neg64(Reg::R2)
            .mov64_reg(Reg::R3, Reg::R2)
            .to_be(Reg::R3, 16)
            .store(Width::U8, Reg::R10, -8, Reg::R3)
            .store(Width::U32, Reg::R10, -4, -1)
            .jump(Cond::Sgt, Reg::R2, Reg::R3, pass)
            .jump(Cond::Set, Reg::R3, 0x4, pass)
            .jump(Cond::Eq, Reg::R3, -2, pass)
            .call(44)
            .goto(drop);
        asm.bind(pass);
        asm.mov64_imm(Reg::R0, 1).exit();
        asm.bind(drop);
        asm.bind(unused);
        asm.mov64_imm(Reg::R0, 0).exit();
        let program = asm.finish().expect("assembles");
        // Written by hand; the leading newline keeps the columns visible.
        let expected = "
  0: r6 = *(u32 *)(r1 +16)
  1: if r6 != 0x8 goto drop
  2: r2 = 0x1122334455667788 ll
  4: w2 &= 0xff
  5: r2 += 5
  6: r2 s>>= 3
  7: r2 = -r2
  8: r3 = r2
  9: r3 = be16 r3
 10: *(u8 *)(r10 -8) = r3
 11: *(u32 *)(r10 -4) = -1
 12: if r2 s> r3 goto pass
 13: if r3 & 0x4 goto pass
 14: if r3 == -0x2 goto pass
 15: call 44
 16: goto drop
pass:
 17: r0 = 1
 18: exit
drop:
drop_2:
 19: r0 = 0
 20: exit
";
        assert_eq!(program.to_string(), &expected[1..]);
    }

    #[test]
    fn wide_listings_widen_the_index_column() {
        let mut asm = Asm::new();
        for _ in 0..1000 {
            asm.mov64_imm(Reg::R0, 0);
        }
        asm.exit();
        let end = asm.label("end");
        asm.bind(end);
        let listing = asm.finish().expect("assembles").to_string();
        assert!(listing.starts_with("   0: r0 = 0\n"), "{listing}");
        assert!(listing.ends_with("1000: exit\nend:\n"), "{listing}");
    }
}
