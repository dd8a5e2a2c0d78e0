//! Set membership tests for `in`, `==` and `!=` on sets and addresses.
//!
//! A simple linear implementation: one or two comparisons per integer
//! range, a masked comparison per prefix. It is the reference the lookup
//! structures for large sets replace, with the same interface.

use super::{CodegenError, Gen, regs};
use crate::compiler::asm::{AluOp, Cond, Insn, Label, Reg, Width};
use crate::lang::ir::{IntSet, PrefixSet};
use crate::lang::sets::{mask32, mask128};
use crate::packet::{ETH_P_IP, ETH_P_IPV6};

/// Jumps to `hit` when `value` holds a member of `set`; falls through
/// otherwise. May clobber R0–R5 and the set scratch area; preserves R6–R9
/// and everything else on the stack. `value` may be any register (if it
/// is one of R0–R5, copy it first).
pub(super) fn int_set(
    g: &mut Gen,
    value: Reg,
    set: &IntSet,
    hit: Label,
) -> Result<(), CodegenError> {
    // Only one scratch register is needed, for bounds that do not fit an
    // immediate; any but `value` will do.
    let scratch = if value == Reg::R5 { Reg::R4 } else { Reg::R5 };
    let miss = g.label("not_in_set");
    for &(lo, hi) in set.ranges() {
        // Ranges are sorted: below this one is below every later one.
        if lo == hi {
            compare(g, Cond::Eq, value, lo, scratch, hit);
        } else {
            compare(g, Cond::Slt, value, lo, scratch, miss);
            compare(g, Cond::Sle, value, hi, scratch, hit);
        }
    }
    g.bind(miss);
    Ok(())
}

/// Jumps to `hit` when the packet is IPv4 (regs::PROTOCOL) and the 4 bytes
/// at fp+addr are in set.v4(), or IPv6 and the 16 bytes at fp+addr are in
/// set.v6(); falls through otherwise. Same clobber rules.
pub(super) fn addr_set(
    g: &mut Gen,
    addr: i16,
    set: &PrefixSet,
    hit: Label,
) -> Result<(), CodegenError> {
    let miss = g.label("not_in_prefixes");
    let v4 = g.label("v4_prefixes");
    let v6 = g.label("v6_prefixes");
    let family = regs::PROTOCOL;
    g.jump(Cond::Eq, family, i32::from(ETH_P_IP.to_be()), v4);
    g.jump(Cond::Eq, family, i32::from(ETH_P_IPV6.to_be()), v6);
    g.goto(miss);

    // IPv4: the address as a number (big-endian bytes), sign-extended from
    // 32 bits so that masks and networks fit the sign-extended 32-bit
    // immediates: both sides of each comparison are then extended alike.
    g.bind(v4);
    let a = Reg::R0;
    let t = Reg::R1;
    g.load(Width::U32, a, Reg::R10, addr);
    g.push(Insn::ToBe { dst: a, bits: 32 });
    g.alu(AluOp::Lsh, a, 32);
    g.alu(AluOp::Arsh, a, 32);
    for &(net, len) in set.v4() {
        g.mov(t, a);
        g.alu(AluOp::And, t, mask32(len) as i32);
        g.jump(Cond::Eq, t, net as i32, hit);
    }
    g.goto(miss);

    // IPv6: two 64-bit halves, compared with 64-bit constants.
    g.bind(v6);
    let (hi, lo, k) = (Reg::R0, Reg::R1, Reg::R3);
    g.load(Width::U64, hi, Reg::R10, addr);
    g.push(Insn::ToBe { dst: hi, bits: 64 });
    g.load(Width::U64, lo, Reg::R10, addr + 8);
    g.push(Insn::ToBe { dst: lo, bits: 64 });
    for &(net, len) in set.v6() {
        let mask = mask128(len);
        let next = g.label("next_prefix");
        for (half, mask, net) in [
            (hi, (mask >> 64) as u64, (net >> 64) as u64),
            (lo, mask as u64, net as u64),
        ] {
            if mask == 0 {
                continue;
            }
            let t = Reg::R2;
            g.mov(t, half);
            if mask != u64::MAX {
                g.mov_imm64(k, mask as i64);
                g.alu(AluOp::And, t, k);
            }
            g.mov_imm64(k, net as i64);
            g.jump(Cond::Ne, t, k, next);
        }
        g.goto(hit);
        g.bind(next);
    }
    g.bind(miss);
    Ok(())
}

/// `if value <cond> imm goto target`, through `scratch` when `imm` does
/// not fit a sign-extended 32-bit immediate.
fn compare(g: &mut Gen, cond: Cond, value: Reg, imm: i64, scratch: Reg, target: Label) {
    match i32::try_from(imm) {
        Ok(small) => g.jump(cond, value, small, target),
        Err(_) => {
            g.mov_imm64(scratch, imm);
            g.jump(cond, value, scratch, target);
        }
    }
}
