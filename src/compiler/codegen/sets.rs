//! Set membership: `x in {…}` for integers and `src_ip`/`dst_ip` in a
//! list of prefixes, at a per-packet cost that stays nearly flat however
//! large the set grows.
//!
//! Each set gets the cheapest structure for its size (the crossovers were
//! measured with `cargo bench --bench sets`, see the README):
//! - a few prefixes: one shift and compare each;
//! - small sets: a balanced tree of comparisons over the sorted ranges,
//!   pure instructions;
//! - integers within a span of 2^20 (ports, protocols, lengths): a bitmap,
//!   one bounds check and one byte;
//! - anything larger: a range table (`tables::range`), whose per-packet
//!   cost is a few table reads and at most `log2` of its leaf size in
//!   branch-free steps.
//!
//! Bitmaps and range tables are read-only data maps of one element that
//! the program reads directly (`Insn::LoadMapValue`): no helper call, and
//! the contents travel in the object file, so every loader fills them
//! before the program can run. `SetStrategy::LpmTrie` compiles prefix sets
//! to the kernel's LPM trie instead (a helper call per lookup, filled after
//! loading), for comparison in the benchmark.
//!
//! Registers: lookups use r0-r5 only and leave r6-r9 alone; the key is
//! copied to r1 (r1:r2 for IPv6, high half first) before anything else.

use super::{CodegenError, Gen, helpers, regs};
use crate::compiler::asm::{AluOp, Cond, Insn, Label, MapRef, Operand, Reg, Width};
use crate::compiler::elf::{MapDef, map_flags, map_type};
use crate::compiler::tables::{bitmap, range};
use crate::lang::sets::{IntSet, PrefixSet};
use crate::packet::{ETH_P_IP, ETH_P_IPV6};
use std::sync::Arc;

/// Integer sets with up to this many ranges are compiled to comparisons;
/// from 16 ranges on a bitmap is cheaper (measured).
pub const INT_COMPARE_MAX: usize = 8;
/// Address families with up to this many prefixes are compiled to one
/// shift and comparison each.
pub const PREFIX_LINEAR_MAX: usize = 4;
/// Address families with up to this many ranges are compiled to a tree of
/// comparisons, larger ones to a range table. Measured: the two cost the
/// same within a nanosecond from 16 to 256 ranges; trees grow by 5 (IPv4)
/// to 13 (IPv6) instructions a range, tables by a few bytes.
pub const ADDR_COMPARE_MAX: usize = 64;
/// The largest sets `SetStrategy::Compare` compiles to comparisons: a
/// tree's jumps must reach across it (eBPF jumps span 32767
/// instructions). Larger ones get tables regardless.
const COMPARE_LIMIT: usize = 2048;

/// How set lookups are compiled.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SetOptions {
    pub strategy: SetStrategy,
    /// The object's map index of the first table (the maps before it are
    /// the program's own: counters, description).
    pub first_map: u16,
}

/// Which structure set lookups use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SetStrategy {
    /// By size, as the module documentation says.
    #[default]
    Auto,
    /// Comparisons only, whatever the size.
    Compare,
    /// Tables (bitmap or range table) whatever the size.
    Table,
    /// The kernel's LPM trie for prefix sets (integer sets as `Auto`). Its
    /// tables must be filled after loading (see [`TableContents::LpmTrie`]).
    LpmTrie,
}

/// A map a program's set lookups read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetTable {
    pub contents: TableContents,
}

/// What a set table holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TableContents {
    /// A read-only array of one element that the program indexes directly
    /// (a bitmap or a range table), written into the object file.
    Data(Arc<[u8]>),
    /// A `BPF_MAP_TYPE_LPM_TRIE` with keys `{u32 prefix length, address
    /// bytes}` and one-byte values, which the loader must fill with
    /// `entries` (keys) before the program runs.
    LpmTrie {
        /// Address bytes in a key: 4 or 16.
        address_bytes: u32,
        entries: Vec<Vec<u8>>,
    },
}

impl SetTable {
    /// The name of table `index` in the object: a data map's section is
    /// `.rodata.` and this name.
    pub fn name(index: usize) -> String {
        format!("set{index}")
    }

    /// Its declaration in the object file as table `index`.
    pub fn map_def(&self, index: usize) -> MapDef {
        match &self.contents {
            TableContents::Data(bytes) => MapDef::rodata(&SetTable::name(index), bytes.clone()),
            TableContents::LpmTrie {
                address_bytes,
                entries,
            } => MapDef {
                name: SetTable::name(index),
                map_type: map_type::LPM_TRIE,
                key_size: 4 + address_bytes,
                value_size: 1,
                max_entries: (entries.len() as u32).max(1),
                flags: map_flags::NO_PREALLOC,
                data: None,
            },
        }
    }
}

/// The tables a program's lookups use so far, and how to compile them.
#[derive(Debug)]
pub(crate) struct SetState {
    options: SetOptions,
    tables: Vec<SetTable>,
}

impl SetState {
    pub(crate) fn new(options: SetOptions) -> SetState {
        SetState {
            options,
            tables: Vec::new(),
        }
    }

    pub(crate) fn into_tables(self) -> Vec<SetTable> {
        self.tables
    }

    /// The map for a table, shared with an identical one already made (a
    /// filter that tests one set on both addresses).
    fn add(&mut self, contents: TableContents) -> MapRef {
        let index = match self.tables.iter().position(|t| t.contents == contents) {
            Some(i) => i,
            None => {
                self.tables.push(SetTable { contents });
                self.tables.len() - 1
            }
        };
        MapRef(self.options.first_map + index as u16)
    }
}

/// Jumps to `hit` when `value` holds a member of `set`; falls through
/// otherwise. May clobber R0–R5 and the set scratch area; preserves R6–R9
/// and everything else on the stack. `value` may be any register. Values
/// are signed 64-bit.
pub(super) fn int_set(
    g: &mut Gen,
    value: Reg,
    set: &IntSet,
    hit: Label,
) -> Result<(), CodegenError> {
    let ranges = set.ranges();
    if ranges.is_empty() {
        return Ok(());
    }
    let key = Reg::R1;
    if value != key {
        g.mov(key, value);
    }
    let miss = g.label("not_in_set");
    let strategy = g.sets.options.strategy;
    let compare = match strategy {
        SetStrategy::Compare => ranges.len() <= COMPARE_LIMIT,
        SetStrategy::Table => false,
        SetStrategy::Auto | SetStrategy::LpmTrie => ranges.len() <= INT_COMPARE_MAX,
    };
    if compare {
        let ranges: Vec<(u128, u128)> = ranges.iter().map(|&(a, b)| (flip(a), flip(b))).collect();
        tree(g, Key::Signed(key), &ranges, false, hit, miss);
    } else if let Some(bits) = bitmap::build(set) {
        bitmap_lookup(g, key, &bits, hit, miss);
    } else {
        let intervals: Vec<(u128, u128)> =
            ranges.iter().map(|&(a, b)| (flip(a), flip(b))).collect();
        let table = range::build(64, &intervals, range::DEFAULT_LEAF_ENTRIES)?;
        // Signed order is unsigned order once the sign bit is flipped.
        g.push(Insn::LoadImm64 {
            dst: Reg::R0,
            imm: i64::MIN,
        });
        g.alu(AluOp::Xor, key, Reg::R0);
        range_lookup(g, Key::One(key), &table, hit, miss);
    }
    g.bind(miss);
    Ok(())
}

/// Jumps to `hit` when the packet is IPv4 (`regs::PROTOCOL` holds
/// `skb->protocol` as loaded) and the 4 bytes at `fp + addr` (wire order)
/// are in `set.v4()`, or IPv6 and the 16 bytes at `fp + addr` are in
/// `set.v6()`; falls through otherwise. `addr` must be 8-byte aligned (the
/// verifier wants aligned stack reads). Clobbers R0–R5 and the set scratch
/// area.
pub(super) fn addr_set(
    g: &mut Gen,
    addr: i16,
    set: &PrefixSet,
    hit: Label,
) -> Result<(), CodegenError> {
    let end = g.label("not_in_addr_set");
    let (has4, has6) = (!set.v4().is_empty(), !set.v6().is_empty());
    if has4 {
        let not4 = if has6 { g.label("not_ipv4") } else { end };
        g.jump(Cond::Ne, regs::PROTOCOL, i32::from(ETH_P_IP.to_be()), not4);
        v4_lookup(g, addr, set, hit, end)?;
        if has6 {
            g.bind(not4);
        }
    }
    if has6 {
        g.jump(Cond::Ne, regs::PROTOCOL, i32::from(ETH_P_IPV6.to_be()), end);
        v6_lookup(g, addr, set, hit, end)?;
    }
    g.bind(end);
    Ok(())
}

/// The structure for one address family's prefixes.
enum AddrPlan {
    Linear,
    Compare,
    Table,
    LpmTrie,
}

fn addr_plan(g: &Gen, prefixes: usize, ranges: usize) -> AddrPlan {
    match g.sets.options.strategy {
        SetStrategy::Compare if ranges <= COMPARE_LIMIT => AddrPlan::Compare,
        SetStrategy::Compare => AddrPlan::Table,
        SetStrategy::Table => AddrPlan::Table,
        SetStrategy::LpmTrie => AddrPlan::LpmTrie,
        SetStrategy::Auto if prefixes <= PREFIX_LINEAR_MAX => AddrPlan::Linear,
        SetStrategy::Auto if ranges <= ADDR_COMPARE_MAX => AddrPlan::Compare,
        SetStrategy::Auto => AddrPlan::Table,
    }
}

fn v4_lookup(
    g: &mut Gen,
    addr: i16,
    set: &PrefixSet,
    hit: Label,
    miss: Label,
) -> Result<(), CodegenError> {
    let ranges = set.v4_ranges();
    let plan = addr_plan(g, set.v4().len(), ranges.len());
    if let AddrPlan::LpmTrie = plan {
        let entries = set
            .v4()
            .iter()
            .map(|&(net, len)| lpm_key(len, &net.to_be_bytes()))
            .collect();
        return lpm_lookup(g, addr, 4, entries, hit, miss);
    }
    let key = Reg::R1;
    g.load(Width::U32, key, Reg::R10, addr);
    g.push(Insn::ToBe { dst: key, bits: 32 });
    let ranges: Vec<(u128, u128)> = ranges.iter().map(|&(a, b)| (a.into(), b.into())).collect();
    match plan {
        AddrPlan::Linear => {
            for &(net, len) in set.v4() {
                prefix_check(g, key, 32, u128::from(net), len, hit);
            }
            g.push(Insn::Goto(miss));
        }
        AddrPlan::Compare => tree(g, Key::Unsigned(key), &ranges, false, hit, miss),
        AddrPlan::Table | AddrPlan::LpmTrie => {
            let table = range::build(32, &ranges, range::DEFAULT_LEAF_ENTRIES)?;
            range_lookup(g, Key::One(key), &table, hit, miss);
        }
    }
    Ok(())
}

fn v6_lookup(
    g: &mut Gen,
    addr: i16,
    set: &PrefixSet,
    hit: Label,
    miss: Label,
) -> Result<(), CodegenError> {
    let ranges = set.v6_ranges();
    let plan = addr_plan(g, set.v6().len(), ranges.len());
    if let AddrPlan::LpmTrie = plan {
        let entries = set
            .v6()
            .iter()
            .map(|&(net, len)| lpm_key(len, &net.to_be_bytes()))
            .collect();
        return lpm_lookup(g, addr, 16, entries, hit, miss);
    }
    let (hi, lo) = (Reg::R1, Reg::R2);
    g.load(Width::U64, hi, Reg::R10, addr);
    g.push(Insn::ToBe { dst: hi, bits: 64 });
    g.load(Width::U64, lo, Reg::R10, addr + 8);
    g.push(Insn::ToBe { dst: lo, bits: 64 });
    match plan {
        AddrPlan::Linear => {
            for &(net, len) in set.v6() {
                let next = g.label("next_prefix");
                if len > 64 {
                    jump_const(g, Cond::Ne, hi, (net >> 64) as u64, next);
                    prefix_check(g, lo, 64, net & u128::from(u64::MAX), len - 64, hit);
                } else {
                    prefix_check(g, hi, 64, net >> 64, len, hit);
                }
                g.bind(next);
            }
            g.push(Insn::Goto(miss));
        }
        AddrPlan::Compare => tree(g, Key::Wide(hi, lo), &ranges, false, hit, miss),
        AddrPlan::Table | AddrPlan::LpmTrie => {
            let table = range::build(128, &ranges, range::DEFAULT_LEAF_ENTRIES)?;
            range_lookup(g, Key::Wide(hi, lo), &table, hit, miss);
        }
    }
    Ok(())
}

/// Jumps to `hit` when the top `len` of the `width` bits of `key` equal
/// those of `net`: one shift and one comparison.
fn prefix_check(g: &mut Gen, key: Reg, width: u32, net: u128, len: u8, hit: Label) {
    if len == 0 {
        g.push(Insn::Goto(hit));
        return;
    }
    let shift = width - u32::from(len);
    let t = Reg::R0;
    g.mov(t, key);
    if shift > 0 {
        g.alu(AluOp::Rsh, t, shift as i32);
    }
    jump_const(g, Cond::Eq, t, (net >> shift) as u64, hit);
}

/// `if reg <cond> value goto target`, through r3 when the value does not
/// fit an immediate.
fn jump_const(g: &mut Gen, cond: Cond, reg: Reg, value: u64, target: Label) {
    let rhs = const_operand(g, value);
    g.jump(cond, reg, rhs, target);
}

/// A 64-bit constant as an operand: an immediate when it fits one (which
/// instructions sign-extend to 64 bits), else loaded into r3.
fn const_operand(g: &mut Gen, value: u64) -> Operand {
    match i32::try_from(value as i64) {
        Ok(imm) => Operand::Imm(imm),
        Err(_) => {
            g.push(Insn::LoadImm64 {
                dst: Reg::R3,
                imm: value as i64,
            });
            Operand::Reg(Reg::R3)
        }
    }
}

/// A signed value, as the unsigned number with the same order.
fn flip(v: i64) -> u128 {
    u128::from((v as u64) ^ (1 << 63))
}

/// Where a lookup's key is.
#[derive(Clone, Copy)]
enum Key {
    /// A signed 64-bit integer; tree keys are [`flip`]ped.
    Signed(Reg),
    /// An unsigned integer of up to 64 bits.
    Unsigned(Reg),
    /// A 128-bit address: high half, low half.
    Wide(Reg, Reg),
    /// Range tables: an unsigned key of up to 64 bits.
    One(Reg),
}

impl Key {
    fn max(self) -> u128 {
        match self {
            Key::Wide(..) => u128::MAX,
            _ => u128::from(u64::MAX),
        }
    }

    /// `if key < k goto target` (`le`: `<=`).
    fn jump_below(self, g: &mut Gen, k: u128, le: bool, target: Label) {
        match self {
            Key::Signed(r) => {
                let cond = if le { Cond::Sle } else { Cond::Slt };
                jump_const(g, cond, r, (k as u64) ^ (1 << 63), target);
            }
            Key::Unsigned(r) | Key::One(r) => {
                let cond = if le { Cond::Le } else { Cond::Lt };
                jump_const(g, cond, r, k as u64, target);
            }
            Key::Wide(hi, lo) => {
                let skip = g.label("skip");
                let khi = const_operand(g, (k >> 64) as u64);
                g.jump(Cond::Lt, hi, khi, target);
                g.jump(Cond::Gt, hi, khi, skip);
                let klo = const_operand(g, k as u64);
                g.jump(if le { Cond::Le } else { Cond::Lt }, lo, klo, target);
                g.bind(skip);
            }
        }
    }
}

/// A balanced tree of comparisons over sorted, disjoint ranges (in the
/// key's unsigned order): jumps to `hit` for a member, to `miss`
/// otherwise. `above_first`: the key is known to be at least the first
/// range's start.
fn tree(
    g: &mut Gen,
    key: Key,
    ranges: &[(u128, u128)],
    above_first: bool,
    hit: Label,
    miss: Label,
) {
    if ranges.len() <= 2 {
        for (i, &(lo, hi)) in ranges.iter().enumerate() {
            if !(i == 0 && above_first) && lo > 0 {
                key.jump_below(g, lo, false, miss);
            }
            if hi >= key.max() {
                g.push(Insn::Goto(hit));
                return;
            }
            key.jump_below(g, hi, true, hit);
        }
        g.push(Insn::Goto(miss));
        return;
    }
    let mid = ranges.len() / 2;
    let left = g.label("set_left");
    key.jump_below(g, ranges[mid].0, false, left);
    tree(g, key, &ranges[mid..], true, hit, miss);
    g.bind(left);
    tree(g, key, &ranges[..mid], above_first, hit, miss);
}

/// A bitmap lookup of the integer in `key` (clobbered).
fn bitmap_lookup(g: &mut Gen, key: Reg, bits: &bitmap::Bitmap, hit: Label, miss: Label) {
    let map = g.sets.add(TableContents::Data(bits.bytes.clone().into()));
    if bits.min != 0 {
        match i32::try_from(bits.min) {
            Ok(imm) => g.alu(AluOp::Sub, key, imm),
            Err(_) => {
                g.push(Insn::LoadImm64 {
                    dst: Reg::R2,
                    imm: bits.min,
                });
                g.alu(AluOp::Sub, key, Reg::R2);
            }
        }
    }
    // Unsigned: values below the minimum wrapped around to huge ones.
    g.jump(Cond::Gt, key, (bits.bits - 1) as i32, miss);
    g.mov(Reg::R2, key);
    g.alu(AluOp::Rsh, Reg::R2, 3);
    g.push(Insn::LoadMapValue {
        dst: Reg::R3,
        map,
        offset: 0,
    });
    g.alu(AluOp::Add, Reg::R3, Reg::R2);
    g.load(Width::U8, Reg::R0, Reg::R3, 0);
    g.alu(AluOp::And, key, 7);
    g.alu(AluOp::Rsh, Reg::R0, key);
    g.jump(Cond::Set, Reg::R0, 1, hit);
    g.push(Insn::Goto(miss));
}

/// `(key bits [shift, shift + n))` into `dst`, for `n <= 16`; may use r0.
fn bits(g: &mut Gen, key: Key, width: u32, shift: u32, n: u32, dst: Reg) {
    if n == 0 {
        g.mov(dst, 0);
        return;
    }
    let mask = (1i32 << n) - 1;
    match key {
        Key::Wide(hi, _) if shift >= 64 => {
            g.mov(dst, hi);
            if shift > 64 {
                g.alu(AluOp::Rsh, dst, (shift - 64) as i32);
            }
        }
        Key::Wide(hi, lo) if shift + n > 64 => {
            g.mov(dst, lo);
            g.alu(AluOp::Rsh, dst, shift as i32);
            g.mov(Reg::R0, hi);
            g.alu(AluOp::Lsh, Reg::R0, (64 - shift) as i32);
            g.alu(AluOp::Or, dst, Reg::R0);
        }
        Key::Wide(_, lo) => {
            g.mov(dst, lo);
            if shift > 0 {
                g.alu(AluOp::Rsh, dst, shift as i32);
            }
        }
        Key::One(r) | Key::Signed(r) | Key::Unsigned(r) => {
            g.mov(dst, r);
            if shift > 0 {
                g.alu(AluOp::Rsh, dst, shift as i32);
            }
        }
    }
    let top = match key {
        Key::Wide(..) => 128,
        _ => width,
    };
    if shift + n < top {
        g.alu(AluOp::And, dst, mask);
    }
}

/// Keeps the low `n` bits of `r`.
fn keep_low(g: &mut Gen, r: Reg, n: u32) {
    if n == 0 {
        g.mov(r, 0);
    } else if n < 64 {
        g.alu(AluOp::Lsh, r, (64 - n) as i32);
        g.alu(AluOp::Rsh, r, (64 - n) as i32);
    }
}

/// A range table lookup (see `tables::range` for the layout) of the key in
/// r1 (`Key::One`, clobbered) or r1:r2 (`Key::Wide`).
fn range_lookup(g: &mut Gen, key: Key, table: &range::RangeTable, hit: Label, miss: Label) {
    let l = &table.layout;
    let map = g.sets.add(TableContents::Data(table.bytes.clone().into()));
    let width = l.width;
    let (e, p, t) = (Reg::R3, Reg::R4, Reg::R5);

    // Outside the common prefix of all members: no member.
    if l.common_bits > 0 {
        match key {
            Key::Wide(hi, lo) => {
                let c = l.common_bits;
                let top = l.common_value << (128 - c);
                let (top_hi, top_lo) = ((top >> 64) as u64, top as u64);
                if c >= 64 {
                    jump_const(g, Cond::Ne, hi, top_hi, miss);
                    if c > 64 {
                        g.mov(Reg::R0, lo);
                        g.alu(AluOp::Rsh, Reg::R0, (128 - c) as i32);
                        jump_const(g, Cond::Ne, Reg::R0, top_lo >> (128 - c), miss);
                    }
                } else {
                    g.mov(Reg::R0, hi);
                    g.alu(AluOp::Rsh, Reg::R0, (64 - c) as i32);
                    jump_const(g, Cond::Ne, Reg::R0, top_hi >> (64 - c), miss);
                }
            }
            Key::One(r) | Key::Signed(r) | Key::Unsigned(r) => {
                g.mov(Reg::R0, r);
                if width - l.common_bits > 0 {
                    g.alu(AluOp::Rsh, Reg::R0, (width - l.common_bits) as i32);
                }
                jump_const(g, Cond::Ne, Reg::R0, l.common_value as u64, miss);
            }
        }
    }

    // Level 1.
    bits(g, key, width, l.key_bits, l.index_bits, e);
    g.alu(AluOp::Lsh, e, 2);
    g.push(Insn::LoadMapValue {
        dst: p,
        map,
        offset: 0,
    });
    g.alu(AluOp::Add, p, e);
    g.load(Width::U32, e, p, 0);

    // Nodes.
    let leaf = g.label("leaf");
    let mut shift = l.key_bits;
    for &stride in &l.node_strides {
        g.jump(Cond::Set, e, 1, leaf);
        g.alu(AluOp::Rsh, e, 8);
        // Never taken: tells the verifier how far the offset goes.
        g.jump(Cond::Gt, e, l.last_node as i32, miss);
        g.push(Insn::LoadMapValue {
            dst: p,
            map,
            offset: l.nodes_offset as i32,
        });
        g.alu(AluOp::Add, p, e);
        shift -= stride;
        bits(g, key, width, shift, stride, t);
        g.alu(AluOp::Lsh, t, 2);
        g.alu(AluOp::Add, p, t);
        g.load(Width::U32, e, p, 0);
    }

    // The leaf: p at the entry before its boundaries, t = its number of
    // steps; e keeps the entry for the first step.
    let size = l.entry.bytes() as i32;
    g.bind(leaf);
    g.mov(t, e);
    g.alu(AluOp::Rsh, t, range::STEPS_SHIFT as i32);
    g.alu(AluOp::And, t, range::STEPS_MASK);
    g.mov(Reg::R0, e);
    g.alu(AluOp::Rsh, Reg::R0, 8);
    g.jump(Cond::Gt, Reg::R0, l.last_leaf as i32, miss);
    g.push(Insn::LoadMapValue {
        dst: p,
        map,
        offset: l.leaves_offset as i32 - size,
    });
    g.alu(AluOp::Add, p, Reg::R0);

    // The search key: (rem + 1) << 1 (its low half for pair entries).
    let pair = l.entry == range::EntryKind::Pair;
    let y = Reg::R1;
    match key {
        Key::Wide(hi, lo) if pair => {
            // High half: key bits [56, key_bits).
            g.mov(Reg::R0, lo);
            g.alu(AluOp::Rsh, Reg::R0, range::PAIR_LOW_BITS as i32);
            g.alu(AluOp::Lsh, hi, (64 - range::PAIR_LOW_BITS) as i32);
            g.alu(AluOp::Or, hi, Reg::R0);
            keep_low(g, hi, l.key_bits.saturating_sub(range::PAIR_LOW_BITS));
            keep_low(g, lo, range::PAIR_LOW_BITS);
            g.alu(AluOp::Add, lo, 1);
            g.alu(AluOp::Lsh, lo, 1);
        }
        Key::Wide(_, lo) => {
            // Every key bit below level 1 is in the low half.
            g.mov(y, lo);
            keep_low(g, y, l.key_bits);
            g.alu(AluOp::Add, y, 1);
            g.alu(AluOp::Lsh, y, 1);
        }
        Key::One(r) | Key::Signed(r) | Key::Unsigned(r) => {
            if r != y {
                g.mov(y, r);
            }
            keep_low(g, y, l.key_bits);
            g.alu(AluOp::Add, y, 1);
            g.alu(AluOp::Lsh, y, 1);
        }
    }

    // Enter the search at the leaf's number of steps, most common first:
    // `first[k]` takes the leaf's own first step, then the halvings from
    // `halving[k - 1]` on; `halving[0]` reads the answer.
    let first: Vec<Label> = (0..=l.max_steps).map(|_| g.label("first_step")).collect();
    let halving: Vec<Label> = (0..=l.max_steps).map(|_| g.label("halving")).collect();
    let (last, others) = l
        .steps_used
        .split_last()
        .map(|(last, others)| (last.0, others))
        .unwrap_or((0, &[]));
    let entry_point = |k: u32| {
        if k == 0 {
            halving[0]
        } else {
            first[k as usize]
        }
    };
    for &(steps, _) in others {
        g.jump(Cond::Eq, t, steps as i32, entry_point(steps));
    }
    g.push(Insn::Goto(entry_point(last)));

    for steps in 1..=l.max_steps {
        g.bind(first[steps as usize]);
        // t = f * size, from the leaf's entry.
        g.mov(t, e);
        g.alu(AluOp::Rsh, t, range::FIRST_STEP_SHIFT as i32);
        g.alu(AluOp::And, t, range::FIRST_STEP_MASK);
        g.alu(AluOp::Add, t, 1);
        g.alu(AluOp::Lsh, t, size.trailing_zeros() as i32);
        if pair {
            // Out of registers: f * size waits in the scratch area.
            let saved = g.set_scratch;
            g.push(Insn::Store {
                width: Width::U64,
                base: Reg::R10,
                off: saved,
                src: t.into(),
            });
            g.mov(e, p);
            g.alu(AluOp::Add, e, t);
            g.load(Width::U64, Reg::R0, e, 8);
            g.load(Width::U64, e, e, 0);
            pair_below(g, e, Reg::R0, t);
            g.load(Width::U64, t, Reg::R10, saved);
            g.alu(AluOp::Mul, e, t);
            g.alu(AluOp::Add, p, e);
        } else {
            g.mov(Reg::R0, p);
            g.alu(AluOp::Add, Reg::R0, t);
            let width = if size == 4 { Width::U32 } else { Width::U64 };
            g.load(width, Reg::R0, Reg::R0, 0);
            g.alu(AluOp::Sub, Reg::R0, y);
            g.alu(AluOp::Rsh, Reg::R0, 63);
            g.alu(AluOp::Mul, Reg::R0, t);
            g.alu(AluOp::Add, p, Reg::R0);
        }
        g.push(Insn::Goto(halving[steps as usize - 1]));
    }
    for window in (1..l.max_steps).rev() {
        g.bind(halving[window as usize]);
        let half = size << (window - 1);
        let log = half.trailing_zeros() as i32;
        if pair {
            g.load(Width::U64, Reg::R0, p, (half + 8) as i16);
            g.load(Width::U64, e, p, half as i16);
            pair_below(g, e, Reg::R0, t);
            g.alu(AluOp::Lsh, e, log);
            g.alu(AluOp::Add, p, e);
        } else {
            let width = if size == 4 { Width::U32 } else { Width::U64 };
            g.load(width, Reg::R0, p, half as i16);
            g.alu(AluOp::Sub, Reg::R0, y);
            g.alu(AluOp::Rsh, Reg::R0, 63);
            g.alu(AluOp::Lsh, Reg::R0, log);
            g.alu(AluOp::Add, p, Reg::R0);
        }
    }
    g.bind(halving[0]);
    match l.entry {
        range::EntryKind::U32 => g.load(Width::U32, Reg::R0, p, 0),
        range::EntryKind::U64 => g.load(Width::U64, Reg::R0, p, 0),
        range::EntryKind::Pair => g.load(Width::U64, Reg::R0, p, 8),
    }
    g.jump(Cond::Set, Reg::R0, 1, hit);
    g.push(Insn::Goto(miss));
}

/// For a pair entry whose halves are in `high` and `low`: `high = 1` when
/// its boundary is at most the key in r1 (high half) and r2 (low half,
/// `(y + 1) << 1`), else 0. Uses `t`.
fn pair_below(g: &mut Gen, high: Reg, low: Reg, t: Reg) {
    let (ya, yb) = (Reg::R1, Reg::R2);
    // sign(high - ya) << 58 + (low - yb) < 0, the halves' differences
    // being below 2^56 and 2^57.
    g.alu(AluOp::Sub, high, ya);
    g.mov(t, high);
    g.alu(AluOp::Neg, t, 0);
    g.alu(AluOp::Rsh, t, 63);
    g.alu(AluOp::Arsh, high, 63);
    g.alu(AluOp::Or, high, t);
    g.alu(AluOp::Lsh, high, 58);
    g.alu(AluOp::Sub, low, yb);
    g.alu(AluOp::Add, high, low);
    g.alu(AluOp::Rsh, high, 63);
}

/// The key of one prefix in an LPM trie: length, then the address bytes.
fn lpm_key(len: u8, address: &[u8]) -> Vec<u8> {
    let mut key = u32::from(len).to_ne_bytes().to_vec();
    key.extend_from_slice(address);
    key
}

/// A lookup in the kernel's LPM trie: the key (full length, address) is
/// built in the scratch area.
fn lpm_lookup(
    g: &mut Gen,
    addr: i16,
    address_bytes: u32,
    entries: Vec<Vec<u8>>,
    hit: Label,
    miss: Label,
) -> Result<(), CodegenError> {
    let map = g.sets.add(TableContents::LpmTrie {
        address_bytes,
        entries,
    });
    let scratch = g.set_scratch;
    g.push(Insn::Store {
        width: Width::U32,
        base: Reg::R10,
        off: scratch,
        src: (address_bytes as i32 * 8).into(),
    });
    // Word by word: stack accesses must be aligned, and the address sits
    // 4 bytes into the key.
    for i in 0..(address_bytes as i16 / 4) {
        g.load(Width::U32, Reg::R0, Reg::R10, addr + 4 * i);
        g.push(Insn::Store {
            width: Width::U32,
            base: Reg::R10,
            off: scratch + 4 + 4 * i,
            src: Reg::R0.into(),
        });
    }
    g.push(Insn::LoadMap { dst: Reg::R1, map });
    g.mov(Reg::R2, Reg::R10);
    g.alu(AluOp::Add, Reg::R2, i32::from(scratch));
    g.push(Insn::Call(helpers::MAP_LOOKUP_ELEM));
    g.jump(Cond::Ne, Reg::R0, 0, hit);
    g.push(Insn::Goto(miss));
    Ok(())
}

#[cfg(test)]
#[path = "sets_tests.rs"]
mod tests;
