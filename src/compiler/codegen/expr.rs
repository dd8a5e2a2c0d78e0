//! Expression evaluation: short-circuit jumps for conditions, a small
//! register stack for values.
//!
//! Conditions (`&&`, `||`, `!`, comparisons, `?:`, variables in a boolean
//! position) compile to jumps: `jump_if(e, truth, target)` jumps to
//! `target` when `(e != 0) == truth` and falls through otherwise. Nothing
//! is materialized unless an arithmetic operator needs the value.
//!
//! Values use a stack of slots: slot `d` is register `SLOT_REGS[d]` for the
//! first four, then an 8-byte stack cell. r4 and r5 are scratch registers
//! for operations on slots that live on the stack. Operands are evaluated
//! heaviest first (Sethi–Ullman order), so the depth used grows with the
//! logarithm of the expression's size, not with its nesting.

use super::{CodegenError, Gen, Home, STACK_SIZE, flag_test, sets};
use crate::compiler::asm::{AluOp, Cond, Insn, Label, Operand, Reg, Width};
use crate::lang::ir::{BinaryOp, Expr, LogicOp, UnaryOp, Var};

const SLOT_REGS: [Reg; 4] = [Reg::R0, Reg::R1, Reg::R2, Reg::R3];
const SCRATCH_A: Reg = Reg::R4;
const SCRATCH_B: Reg = Reg::R5;

/// Emits code that falls through when the filter forwards the packet and
/// jumps to `drop` when it drops it.
pub(super) fn emit(g: &mut Gen, expr: &Expr) -> Result<(), CodegenError> {
    let drop = g.drop;
    ExprGen { g }.jump_if(expr, false, drop, 0)
}

struct ExprGen<'a> {
    g: &'a mut Gen,
}

impl ExprGen<'_> {
    fn jump_if(
        &mut self,
        e: &Expr,
        truth: bool,
        target: Label,
        d: usize,
    ) -> Result<(), CodegenError> {
        match e {
            Expr::Const(c) => {
                if (*c != 0) == truth {
                    self.g.push(Insn::Goto(target));
                }
            }
            Expr::Var(v) => match flag_test(*v) {
                Some((reg, one)) => {
                    let cond = if truth { Cond::Eq } else { Cond::Ne };
                    self.g.jump(cond, reg, one, target);
                }
                None => {
                    let reg = self.var(*v, SCRATCH_A);
                    let cond = if truth { Cond::Ne } else { Cond::Eq };
                    self.g.jump(cond, reg, 0, target);
                }
            },
            Expr::Unary(UnaryOp::Not, a) => self.jump_if(a, !truth, target, d)?,
            Expr::Binary(op, a, b) if comparison(*op).is_some() => {
                self.compare(*op, a, b, truth, target, d)?
            }
            Expr::Logic(op, terms) => {
                // `&&` jumps on the first false term, `||` on the first
                // true one; the other outcome needs every term.
                let decisive = *op == LogicOp::Or;
                let (last, init) = terms.split_last().expect("logic has terms");
                if decisive == truth {
                    for t in terms {
                        self.jump_if(t, truth, target, d)?;
                    }
                } else {
                    let skip = self.g.label("skip");
                    for t in init {
                        self.jump_if(t, decisive, skip, d)?;
                    }
                    self.jump_if(last, truth, target, d)?;
                    self.g.bind(skip);
                }
            }
            Expr::Cond(c, t, f) => {
                let otherwise = self.g.label("else");
                let end = self.g.label("end_if");
                self.jump_if(c, false, otherwise, d)?;
                self.jump_if(t, truth, target, d)?;
                self.g.push(Insn::Goto(end));
                self.g.bind(otherwise);
                self.jump_if(f, truth, target, d)?;
                self.g.bind(end);
            }
            Expr::InSet(a, set) => {
                let value = self.read_only(a, d, SCRATCH_A)?;
                self.set_test(d, truth, target, |g, hit| sets::int_set(g, value, set, hit))?;
            }
            Expr::AddrIn(addr, set) => {
                let cell = self.g.addr_cell(*addr).expect("addresses are planned");
                self.set_test(d, truth, target, |g, hit| sets::addr_set(g, cell, set, hit))?;
            }
            _ => {
                self.value(e, d)?;
                let r = self.read(d, SCRATCH_A);
                self.g
                    .jump(if truth { Cond::Ne } else { Cond::Eq }, r, 0, target);
            }
        }
        Ok(())
    }

    /// `a op b` as a jump, with a constant operand as the immediate.
    fn compare(
        &mut self,
        op: BinaryOp,
        a: &Expr,
        b: &Expr,
        truth: bool,
        target: Label,
        d: usize,
    ) -> Result<(), CodegenError> {
        let mut cond = comparison(op).expect("a comparison");
        if !truth {
            cond = negate(cond);
        }
        // Keep the immediate on the right: `5 < x` is `x > 5`.
        let (a, b, cond) = if immediate(a).is_some() && immediate(b).is_none() {
            (b, a, swap(cond))
        } else {
            (a, b, cond)
        };
        let (ra, rb) = self.operands(a, b, d)?;
        self.g.jump(cond, ra, rb, target);
        Ok(())
    }

    /// Evaluates `a` and `b` for an instruction that reads both and writes
    /// neither: a register for `a`, a register or immediate for `b`.
    fn operands(&mut self, a: &Expr, b: &Expr, d: usize) -> Result<(Reg, Operand), CodegenError> {
        if let Some(imm) = immediate(b) {
            let ra = self.read_only(a, d, SCRATCH_A)?;
            return Ok((ra, Operand::Imm(imm)));
        }
        match (self.var_reg(a), self.var_reg(b)) {
            (Some(ra), Some(rb)) => Ok((ra, Operand::Reg(rb))),
            (Some(ra), None) => {
                self.value(b, d)?;
                Ok((ra, Operand::Reg(self.read(d, SCRATCH_B))))
            }
            (None, Some(rb)) => {
                self.value(a, d)?;
                Ok((self.read(d, SCRATCH_A), Operand::Reg(rb)))
            }
            (None, None) => {
                let (sa, sb) = self.both(a, b, d)?;
                let ra = self.read(sa, SCRATCH_A);
                let rb = self.read(sb, SCRATCH_B);
                Ok((ra, Operand::Reg(rb)))
            }
        }
    }

    /// A register holding `e`'s value, not to be written: a variable's
    /// register as is, a variable's stack cell loaded into `scratch`,
    /// anything else evaluated into slot `d`.
    fn read_only(&mut self, e: &Expr, d: usize, scratch: Reg) -> Result<Reg, CodegenError> {
        if let Expr::Var(v) = e
            && flag_test(*v).is_none()
        {
            return Ok(self.var(*v, scratch));
        }
        self.value(e, d)?;
        Ok(self.read(d, scratch))
    }

    /// The register holding an integer variable: its home register, or
    /// `scratch` loaded from its stack cell.
    fn var(&mut self, v: Var, scratch: Reg) -> Reg {
        match self.home(v) {
            Home::Reg(r) => r,
            Home::Stack(off) => {
                self.g.load(Width::U64, scratch, Reg::R10, off);
                scratch
            }
        }
    }

    fn home(&self, v: Var) -> Home {
        self.g
            .home(v)
            .expect("the variables the expression reads are planned")
    }

    /// The home register of `e` if it is an integer variable that has one.
    fn var_reg(&self, e: &Expr) -> Option<Reg> {
        match e {
            Expr::Var(v) if flag_test(*v).is_none() => match self.home(*v) {
                Home::Reg(r) => Some(r),
                Home::Stack(_) => None,
            },
            _ => None,
        }
    }

    /// Jumps to `target` when `lookup` (which jumps to the label it is
    /// given on a hit) says `truth`. Set lookups may clobber r0-r5, so the
    /// slots below `d` that live in registers are saved around them.
    fn set_test(
        &mut self,
        d: usize,
        truth: bool,
        target: Label,
        lookup: impl FnOnce(&mut Gen, Label) -> Result<(), CodegenError>,
    ) -> Result<(), CodegenError> {
        let live = d.min(SLOT_REGS.len());
        let end = self.g.label("end_set");
        if live == 0 {
            if truth {
                lookup(self.g, target)?;
            } else {
                lookup(self.g, end)?;
                self.g.goto(target);
            }
            self.g.bind(end);
            return Ok(());
        }
        let hit = self.g.label("in_set");
        self.spill(live, true);
        lookup(self.g, hit)?;
        self.spill(live, false);
        self.g.goto(if truth { end } else { target });
        self.g.bind(hit);
        self.spill(live, false);
        if truth {
            self.g.goto(target);
        }
        self.g.bind(end);
        Ok(())
    }

    /// Saves (`save`) or restores the first `live` slot registers.
    fn spill(&mut self, live: usize, save: bool) {
        for (i, r) in SLOT_REGS[..live].iter().enumerate() {
            let off = self.g.spill + 8 * i as i16;
            if save {
                self.g.store(Width::U64, Reg::R10, off, *r);
            } else {
                self.g.load(Width::U64, *r, Reg::R10, off);
            }
        }
    }

    /// Evaluates `a` and `b` into slots `d` and `d + 1`, heavier first;
    /// returns the slots holding `a` and `b`.
    fn both(&mut self, a: &Expr, b: &Expr, d: usize) -> Result<(usize, usize), CodegenError> {
        if weight(b) > weight(a) {
            self.value(b, d)?;
            self.value(a, d + 1)?;
            Ok((d + 1, d))
        } else {
            self.value(a, d)?;
            self.value(b, d + 1)?;
            Ok((d, d + 1))
        }
    }

    /// Evaluates `e` into slot `d`, using only slots `d` and above.
    fn value(&mut self, e: &Expr, d: usize) -> Result<(), CodegenError> {
        let max_slots = SLOT_REGS.len() + ((STACK_SIZE - self.g.reserved_stack) / 8) as usize;
        if d >= max_slots {
            return Err(CodegenError::TooComplex(max_slots));
        }
        match e {
            Expr::Const(c) => {
                let r = self.target(d);
                self.g.mov_imm64(r, *c);
                self.write(d, r);
            }
            Expr::Var(v) if flag_test(*v).is_none() => {
                let r = self.target(d);
                match self.home(*v) {
                    Home::Reg(home) => self.g.mov(r, home),
                    Home::Stack(off) => self.g.load(Width::U64, r, Reg::R10, off),
                }
                self.write(d, r);
            }
            Expr::Unary(op @ (UnaryOp::Neg | UnaryOp::BitNot), a) => {
                self.value(a, d)?;
                let r = self.read(d, SCRATCH_A);
                match op {
                    UnaryOp::Neg => self.g.alu(AluOp::Neg, r, 0),
                    _ => self.g.alu(AluOp::Xor, r, -1),
                }
                self.write(d, r);
            }
            Expr::Binary(op, a, b) if comparison(*op).is_none() => self.arithmetic(*op, a, b, d)?,
            Expr::Cond(c, t, f) => {
                let otherwise = self.g.label("else");
                let end = self.g.label("end_if");
                self.jump_if(c, false, otherwise, d)?;
                self.value(t, d)?;
                self.g.push(Insn::Goto(end));
                self.g.bind(otherwise);
                self.value(f, d)?;
                self.g.bind(end);
            }
            // Everything else is a truth value: 0 or 1.
            _ => {
                let zero = self.g.label("false");
                let end = self.g.label("end_bool");
                self.jump_if(e, false, zero, d)?;
                let r = self.target(d);
                self.g.mov(r, 1);
                self.write(d, r);
                self.g.push(Insn::Goto(end));
                self.g.bind(zero);
                self.g.mov(r, 0);
                self.write(d, r);
                self.g.bind(end);
            }
        }
        Ok(())
    }

    fn arithmetic(
        &mut self,
        op: BinaryOp,
        a: &Expr,
        b: &Expr,
        d: usize,
    ) -> Result<(), CodegenError> {
        let is_division = matches!(op, BinaryOp::Div | BinaryOp::Rem);
        // A divisor whose magnitude does not fit an immediate goes through
        // a register (0 never gets here: folding removed it).
        let imm = immediate(b).filter(|c| !is_division || (*c != 0 && *c != i32::MIN));
        let (Some(c), Some(alu)) = (imm, alu_op(op)) else {
            return self.arithmetic_regs(op, a, b, d);
        };
        self.value(a, d)?;
        let r = self.read(d, SCRATCH_A);
        match op {
            BinaryOp::Shl | BinaryOp::Shr => {
                let count = c & 63;
                if count != 0 {
                    self.g.alu(alu, r, count);
                }
            }
            BinaryOp::Div | BinaryOp::Rem => self.divide_by_constant(op, r, c),
            _ => self.g.alu(alu, r, c),
        }
        self.write(d, r);
        Ok(())
    }

    fn arithmetic_regs(
        &mut self,
        op: BinaryOp,
        a: &Expr,
        b: &Expr,
        d: usize,
    ) -> Result<(), CodegenError> {
        let (sa, sb) = self.both(a, b, d)?;
        let ra = self.read(sa, SCRATCH_A);
        // The divisor and the shift count are modified in place; slot
        // registers are ours to clobber, variables' home registers are not
        // (and are never in a slot: `value` copies them).
        let rb = self.read(sb, SCRATCH_B);
        match op {
            BinaryOp::Div | BinaryOp::Rem => self.divide(op, ra, rb),
            BinaryOp::Shl | BinaryOp::Shr => {
                self.g.alu(AluOp::And, rb, 63);
                self.g.alu(alu_op(op).expect("shift"), ra, rb);
            }
            _ => self.g.alu(alu_op(op).expect("arithmetic"), ra, rb),
        }
        if sa == d {
            self.write(d, ra);
        } else {
            // `a` was the lighter operand, evaluated into d + 1.
            let r = self.target(d);
            if r != ra {
                self.g.mov(r, ra);
            }
            self.write(d, r);
        }
        Ok(())
    }

    /// Signed division and remainder with C's truncation toward zero, from
    /// BPF's unsigned instructions (the signed ones are cpu-v4, newer than
    /// Linux 5.10): divide the magnitudes, then fix the sign. `x / 0` is 0
    /// and `x % 0` is x, as BPF defines them. Clobbers `b`.
    fn divide(&mut self, op: BinaryOp, a: Reg, b: Reg) {
        let end = self.g.label("div_end");
        let a_negative = self.g.label("div_a_neg");
        if op == BinaryOp::Div {
            let zero = self.g.label("div_zero");
            let b_negative = self.g.label("div_b_neg");
            let both_negative = self.g.label("div_both_neg");
            self.g.jump(Cond::Eq, b, 0, zero);
            self.g.jump(Cond::Slt, a, 0, a_negative);
            self.g.jump(Cond::Slt, b, 0, b_negative);
            self.g.alu(AluOp::Div, a, b);
            self.g.push(Insn::Goto(end));
            self.g.bind(b_negative);
            self.g.alu(AluOp::Neg, b, 0);
            self.g.alu(AluOp::Div, a, b);
            self.g.alu(AluOp::Neg, a, 0);
            self.g.push(Insn::Goto(end));
            self.g.bind(a_negative);
            self.g.alu(AluOp::Neg, a, 0);
            self.g.jump(Cond::Slt, b, 0, both_negative);
            self.g.alu(AluOp::Div, a, b);
            self.g.alu(AluOp::Neg, a, 0);
            self.g.push(Insn::Goto(end));
            self.g.bind(both_negative);
            self.g.alu(AluOp::Neg, b, 0);
            self.g.alu(AluOp::Div, a, b);
            self.g.push(Insn::Goto(end));
            self.g.bind(zero);
            self.g.mov(a, 0);
        } else {
            // The remainder takes the dividend's sign; the divisor's sign
            // does not matter.
            let b_positive = self.g.label("rem_b_pos");
            self.g.jump(Cond::Eq, b, 0, end);
            self.g.jump(Cond::Sge, b, 0, b_positive);
            self.g.alu(AluOp::Neg, b, 0);
            self.g.bind(b_positive);
            self.g.jump(Cond::Slt, a, 0, a_negative);
            self.g.alu(AluOp::Mod, a, b);
            self.g.push(Insn::Goto(end));
            self.g.bind(a_negative);
            self.g.alu(AluOp::Neg, a, 0);
            self.g.alu(AluOp::Mod, a, b);
            self.g.alu(AluOp::Neg, a, 0);
        }
        self.g.bind(end);
    }

    /// As `divide`, for a non-zero divisor known at compile time.
    fn divide_by_constant(&mut self, op: BinaryOp, a: Reg, c: i32) {
        let alu = if op == BinaryOp::Div {
            AluOp::Div
        } else {
            AluOp::Mod
        };
        let magnitude = c.unsigned_abs() as i32;
        // Division flips the sign for a negative divisor; remainder keeps
        // the dividend's sign.
        let flip = op == BinaryOp::Div && c < 0;
        let end = self.g.label("div_end");
        let negative = self.g.label("div_neg");
        self.g.jump(Cond::Slt, a, 0, negative);
        self.g.alu(alu, a, magnitude);
        if flip {
            self.g.alu(AluOp::Neg, a, 0);
        }
        self.g.push(Insn::Goto(end));
        self.g.bind(negative);
        self.g.alu(AluOp::Neg, a, 0);
        self.g.alu(alu, a, magnitude);
        if !flip {
            self.g.alu(AluOp::Neg, a, 0);
        }
        self.g.bind(end);
    }

    /// The register to compute slot `d` in.
    fn target(&self, d: usize) -> Reg {
        SLOT_REGS.get(d).copied().unwrap_or(SCRATCH_A)
    }

    /// A register holding slot `d`: its own, or `scratch` loaded from the stack.
    fn read(&mut self, d: usize, scratch: Reg) -> Reg {
        match SLOT_REGS.get(d) {
            Some(r) => *r,
            None => {
                self.g.push(Insn::Load {
                    width: Width::U64,
                    dst: scratch,
                    base: Reg::R10,
                    off: stack_offset(d, self.g.reserved_stack),
                });
                scratch
            }
        }
    }

    /// Stores `r` into slot `d` if the slot lives on the stack.
    fn write(&mut self, d: usize, r: Reg) {
        if d >= SLOT_REGS.len() {
            self.g.push(Insn::Store {
                width: Width::U64,
                base: Reg::R10,
                off: stack_offset(d, self.g.reserved_stack),
                src: Operand::Reg(r),
            });
        }
    }
}

fn stack_offset(d: usize, reserved: i16) -> i16 {
    -reserved - 8 * (d - SLOT_REGS.len() + 1) as i16
}

/// A constant that fits an instruction's 32-bit immediate (sign-extended
/// to 64 bits by every instruction we use it in).
fn immediate(e: &Expr) -> Option<i32> {
    match e {
        Expr::Const(c) => i32::try_from(*c).ok(),
        _ => None,
    }
}

/// The weight of a set lookup: more than any slot register count.
const CALL_WEIGHT: usize = SLOT_REGS.len() + 1;

/// Registers an expression needs beyond its result, for evaluation order.
fn weight(e: &Expr) -> usize {
    match e {
        Expr::Const(_) | Expr::Var(_) => 1,
        Expr::Unary(_, a) => weight(a),
        Expr::Binary(_, a, b) => {
            let (wa, wb) = (weight(a), weight(b));
            if wa == wb { wa + 1 } else { wa.max(wb) }
        }
        Expr::Logic(_, terms) => terms.iter().map(weight).max().unwrap_or(1),
        Expr::Cond(c, t, f) => weight(c).max(weight(t)).max(weight(f)),
        // A lookup may clobber every slot register: evaluated first, it
        // leaves fewer live registers to save around it.
        Expr::InSet(a, _) => weight(a).max(CALL_WEIGHT),
        Expr::AddrIn(..) => CALL_WEIGHT,
    }
}

fn comparison(op: BinaryOp) -> Option<Cond> {
    Some(match op {
        BinaryOp::Eq => Cond::Eq,
        BinaryOp::Ne => Cond::Ne,
        BinaryOp::Lt => Cond::Slt,
        BinaryOp::Le => Cond::Sle,
        BinaryOp::Gt => Cond::Sgt,
        BinaryOp::Ge => Cond::Sge,
        _ => return None,
    })
}

fn alu_op(op: BinaryOp) -> Option<AluOp> {
    Some(match op {
        BinaryOp::Mul => AluOp::Mul,
        BinaryOp::Div => AluOp::Div,
        BinaryOp::Rem => AluOp::Mod,
        BinaryOp::Add => AluOp::Add,
        BinaryOp::Sub => AluOp::Sub,
        BinaryOp::Shl => AluOp::Lsh,
        BinaryOp::Shr => AluOp::Arsh,
        BinaryOp::BitAnd => AluOp::And,
        BinaryOp::BitXor => AluOp::Xor,
        BinaryOp::BitOr => AluOp::Or,
        _ => return None,
    })
}

/// The condition that holds exactly when `cond` does not.
fn negate(cond: Cond) -> Cond {
    match cond {
        Cond::Eq => Cond::Ne,
        Cond::Ne => Cond::Eq,
        Cond::Slt => Cond::Sge,
        Cond::Sge => Cond::Slt,
        Cond::Sle => Cond::Sgt,
        Cond::Sgt => Cond::Sle,
        other => unreachable!("only signed comparisons are negated, not {other:?}"),
    }
}

/// The condition on swapped operands: `a < b` is `b > a`.
fn swap(cond: Cond) -> Cond {
    match cond {
        Cond::Slt => Cond::Sgt,
        Cond::Sgt => Cond::Slt,
        Cond::Sle => Cond::Sge,
        Cond::Sge => Cond::Sle,
        other => other,
    }
}
