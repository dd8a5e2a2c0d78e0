//! Range tables: membership in a large set of integers or addresses at a
//! cost that hardly depends on the set's size, from one read-only array
//! that the program indexes directly (no helper calls, no loops).
//!
//! A set is a sorted list of disjoint inclusive intervals of `width`-bit
//! keys (32 for IPv4, 64 for integers, 128 for IPv6). The table has three
//! regions:
//!
//! - **Level 1**: `2^index_bits` u32 entries indexed by the key's bits just
//!   below the `common_bits` that every member shares (a key outside that
//!   common prefix is no member, which one comparison decides first).
//!   Sized to the set: about two entries per interval, at most 2^16.
//! - **Nodes**: where a level-1 bucket holds too many boundaries, a node of
//!   `2^stride` u32 entries indexed by the next bits, recursively.
//! - **Leaves**: a bucket's boundaries (the keys where membership flips,
//!   relative to the level-1 bucket's first key), sorted, each with the
//!   membership from there on.
//!
//! An entry of level 1 or of a node is a node (bit 0 clear; the node's byte
//! offset << 8) or a leaf (bit 0 set; the number of search steps `k` in
//! bits 1-3, the first step `f - 1` in bits 4-7, the byte offset of its
//! first boundary << 8).
//!
//! A leaf of `n` boundaries is searched as the `n + 1` entries that start
//! one entry before it: that entry (the previous leaf's last, or a head
//! entry stored only when its membership is not the leaf's first key's)
//! stands for "below every boundary", and is never compared. The search
//! is branch-free, because the verifier would otherwise follow every path
//! separately and real traffic does not predict: `b = f` if entry `f` is
//! at most the key, then `b += h` if entry `b + h` is, for `h = 2^(k-2),
//! ..., 1`, where `2^(k-1) < n + 1 <= 2^k` and `f = n + 1 - 2^(k-1)`; the
//! member bit of entry `b` is the answer. So leaves need no padding, and
//! a uniform bucket no storage at all: it points at one of two shared
//! entries at the start of the leaf region.
//!
//! The boundary compare is one subtraction whose sign bit is the answer,
//! exact because every stored value and search key stays below 2^62:
//!
//! | key bits below level 1 | entry | layout |
//! | --- | --- | --- |
//! | up to 31 | 4 bytes | `key << 1 \| member` |
//! | up to 62 | 8 bytes | `key << 1 \| member` |
//! | up to 112 | 16 bytes | `key >> 56`, then `(key & (2^56 - 1)) << 1 \| member` |
//!
//! A search key `y` is turned into `(y + 1) << 1` once (its low half, for
//! 16-byte entries): an entry is below that exactly when its boundary is at
//! most `y`. [`RangeTable::contains`] runs the same algorithm on the bytes,
//! which is what the unit tests hold to the set's own `contains`.

use std::collections::BTreeMap;

/// Most entries a leaf's search may span (its boundaries and the entry
/// before them) before its bucket is split by a node; bounds the search to
/// `log2` of it steps.
pub const DEFAULT_LEAF_ENTRIES: usize = 16;

/// The largest leaf the entry format can describe: `f - 1` has 4 bits.
pub const MAX_LEAF_ENTRIES: usize = 32;

/// Bits of a key a node level consumes at most.
const NODE_STRIDE: u32 = 8;

/// The most bits level 1 is indexed by: 2^16 entries, 256 KiB.
const MAX_INDEX_BITS: u32 = 16;
/// The fewest, for small sets.
const MIN_INDEX_BITS: u32 = 4;

/// Byte offsets in entries are stored above 8 flag bits of a u32.
const MAX_OFFSET: usize = (1 << 24) - 1;

/// How the boundaries of a leaf are stored (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryKind {
    /// 4 bytes: boundaries of up to 31 bits.
    U32,
    /// 8 bytes: boundaries of up to 62 bits.
    U64,
    /// 16 bytes: boundaries of up to 112 bits, as two u64.
    Pair,
}

impl EntryKind {
    fn for_bits(bits: u32) -> Option<EntryKind> {
        match bits {
            0..=31 => Some(EntryKind::U32),
            32..=62 => Some(EntryKind::U64),
            63..=112 => Some(EntryKind::Pair),
            _ => None,
        }
    }

    /// Bytes one entry takes.
    pub fn bytes(self) -> usize {
        match self {
            EntryKind::U32 => 4,
            EntryKind::U64 => 8,
            EntryKind::Pair => 16,
        }
    }
}

/// Bits of the low half of a pair entry's boundary.
pub const PAIR_LOW_BITS: u32 = 56;

/// What the code generator needs to know about a table's shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Key width in bits: 32, 64 or 128.
    pub width: u32,
    /// Leading key bits every member shares.
    pub common_bits: u32,
    /// Their value (the key shifted right by `width - common_bits`).
    pub common_value: u128,
    /// Bits level 1 is indexed by (those below the common bits).
    pub index_bits: u32,
    /// Bits each node level consumes, from the first below level 1; only
    /// levels some node of the table is at.
    pub node_strides: Vec<u32>,
    /// Key bits below level 1, which leaf boundaries hold.
    pub key_bits: u32,
    pub entry: EntryKind,
    /// The most search steps any leaf takes.
    pub max_steps: u32,
    /// How many leaves take each number of steps, most common first (ties:
    /// fewer steps first).
    pub steps_used: Vec<(u32, usize)>,
    /// Byte offset of the node region.
    pub nodes_offset: usize,
    /// Byte offset of the leaf region.
    pub leaves_offset: usize,
    /// The largest node byte offset (relative to the node region) an entry
    /// holds.
    pub last_node: usize,
    /// The largest leaf byte offset (relative to the leaf region) an entry
    /// holds.
    pub last_leaf: usize,
}

/// Bits 4-7 of a leaf entry hold `f - 1`.
pub const FIRST_STEP_SHIFT: u32 = 4;
/// Bits 1-3 hold the number of steps.
pub const STEPS_SHIFT: u32 = 1;
/// Their masks, once shifted down.
pub const FIRST_STEP_MASK: i32 = 15;
pub const STEPS_MASK: i32 = 7;

/// A built table: its shape and its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RangeTable {
    pub layout: Layout,
    pub bytes: Vec<u8>,
}

/// Why a table cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RangeTableError {
    #[error("the set needs a table larger than 16 MiB")]
    TooLarge,
    #[error("keys of {0} bits are not supported")]
    Width(u32),
}

/// Builds the table for `intervals`: sorted, disjoint, non-adjacent,
/// inclusive, all below `2^width`. `leaf_entries` (2 to
/// [`MAX_LEAF_ENTRIES`]) bounds leaf sizes.
pub fn build(
    width: u32,
    intervals: &[(u128, u128)],
    leaf_entries: usize,
) -> Result<RangeTable, RangeTableError> {
    if !matches!(width, 32 | 64 | 128) {
        return Err(RangeTableError::Width(width));
    }
    debug_assert!((2..=MAX_LEAF_ENTRIES).contains(&leaf_entries));
    debug_assert!(intervals.windows(2).all(|w| w[0].1 < w[1].0));
    let (first, last) = match (intervals.first(), intervals.last()) {
        (Some(f), Some(l)) => (f.0, l.1),
        // An empty set: one uniform bucket that says no.
        _ => (0, 0),
    };
    let common_bits = if intervals.is_empty() {
        width
    } else {
        common_prefix(first, last, width)
    };
    // About two entries per interval; enough that 16-byte entries hold
    // what is below.
    let wanted = usize::BITS - (2 * intervals.len()).max(1).leading_zeros();
    let index_bits = wanted
        .clamp(MIN_INDEX_BITS, MAX_INDEX_BITS)
        .max((width - common_bits).saturating_sub(112))
        .min(width - common_bits);
    let key_bits = width - common_bits - index_bits;
    let entry = EntryKind::for_bits(key_bits).ok_or(RangeTableError::Width(width))?;
    let common_value = if common_bits == 0 {
        0
    } else {
        first >> (width - common_bits)
    };
    let e = entry.bytes();
    let mut b = Builder {
        entry,
        key_bits,
        leaf_entries,
        nodes: Vec::new(),
        leaves: Vec::new(),
        steps_used: BTreeMap::new(),
        depth: 0,
        last_node: 0,
        last_leaf: 2 * e,
        last_member: true,
    };
    // The shared entries that uniform buckets point at: "no", then "yes".
    b.push_entry(0, false);
    b.push_entry(0, true);

    let base = if common_bits == 0 {
        0
    } else {
        common_value << (width - common_bits)
    };
    let mut level1 = Vec::with_capacity(1 << index_bits);
    let mut next = 0;
    for j in 0..(1u128 << index_bits) {
        let start = base | (j << key_bits);
        let end = start + ((1u128 << key_bits) - 1);
        while next < intervals.len() && intervals[next].1 < start {
            next += 1;
        }
        let mut stop = next;
        while stop < intervals.len() && intervals[stop].0 <= end {
            stop += 1;
        }
        level1.push(b.region(&intervals[next..stop], start, start, key_bits, 0)?);
        // The last interval may continue into the next bucket.
        next = stop.saturating_sub(1).max(next);
    }

    let node_strides = (0..b.depth)
        .map(|d| NODE_STRIDE.min(key_bits - d * NODE_STRIDE))
        .collect();
    let nodes_offset = level1.len() * 4;
    // A node read is bounded by the verifier with the largest offset plus
    // a full node, whatever the level: room for that after the last node.
    let nodes_len = if b.nodes.is_empty() {
        0
    } else {
        (b.nodes.len() * 4).max(b.last_node + (4 << NODE_STRIDE))
    };
    let leaves_offset = nodes_offset + nodes_len;
    let max_steps = b.steps_used.keys().copied().max().unwrap_or(0);
    // Likewise every leaf read: the largest offset, the largest first step
    // the entry format allows, the halvings after it, one entry read.
    let leaves_len = b
        .leaves
        .len()
        .max(b.last_leaf + e * (FIRST_STEP_MASK as usize + 1) + (e << max_steps));
    // (`region` and `leaf` refused every offset past MAX_OFFSET already.)
    let mut bytes = Vec::with_capacity(leaves_offset + leaves_len);
    for e in &level1 {
        bytes.extend_from_slice(&e.to_le_bytes());
    }
    for e in &b.nodes {
        bytes.extend_from_slice(&e.to_le_bytes());
    }
    bytes.resize(leaves_offset, 0);
    bytes.extend_from_slice(&b.leaves);
    bytes.resize(leaves_offset + leaves_len, 0);

    let mut steps_used: Vec<(u32, usize)> = b.steps_used.into_iter().collect();
    steps_used.sort_by_key(|&(steps, n)| (std::cmp::Reverse(n), steps));
    Ok(RangeTable {
        layout: Layout {
            width,
            common_bits,
            common_value,
            index_bits,
            node_strides,
            key_bits,
            entry,
            max_steps,
            steps_used,
            nodes_offset,
            leaves_offset,
            last_node: b.last_node,
            last_leaf: b.last_leaf,
        },
        bytes,
    })
}

/// Leading bits `a` and `b` share, of `width`.
fn common_prefix(a: u128, b: u128, width: u32) -> u32 {
    let diff = (a ^ b) << (128 - width);
    diff.leading_zeros().min(width)
}

struct Builder {
    entry: EntryKind,
    key_bits: u32,
    leaf_entries: usize,
    /// Node entries, u32 each.
    nodes: Vec<u32>,
    leaves: Vec<u8>,
    steps_used: BTreeMap<u32, usize>,
    /// Node levels used.
    depth: u32,
    last_node: usize,
    last_leaf: usize,
    /// The member bit of the last entry written to the leaf region.
    last_member: bool,
}

impl Builder {
    /// The entry for the region `[start, start + 2^bits)` of the level-1
    /// bucket starting at `bucket`, given the intervals that overlap it.
    fn region(
        &mut self,
        intervals: &[(u128, u128)],
        bucket: u128,
        start: u128,
        bits: u32,
        depth: u32,
    ) -> Result<u32, RangeTableError> {
        let end = start + ((1u128 << bits) - 1);
        let member_at_start = intervals.first().is_some_and(|&(lo, _)| lo <= start);
        // Boundaries: where membership flips inside the region.
        let mut flips = Vec::new();
        for &(lo, hi) in intervals {
            if lo > start {
                flips.push(lo);
            }
            if hi < end {
                flips.push(hi + 1);
            }
        }
        if flips.is_empty() {
            self.count_steps(0);
            // The shared "no" or "yes" entry is the one before the offset.
            let shared = if member_at_start { 2 } else { 1 };
            return Ok(leaf_entry(shared * self.entry.bytes(), 0, 1));
        }
        if flips.len() < self.leaf_entries || bits == 0 {
            return self.leaf(bucket, member_at_start, &flips);
        }
        // Too many for one leaf: a node over the next bits.
        let stride = NODE_STRIDE.min(bits);
        self.depth = self.depth.max(depth + 1);
        let node = self.nodes.len();
        self.nodes.resize(node + (1 << stride), 0);
        let child_bits = bits - stride;
        let mut next = 0;
        for i in 0..(1u128 << stride) {
            let child_start = start | (i << child_bits);
            let child_end = child_start + ((1u128 << child_bits) - 1);
            while next < intervals.len() && intervals[next].1 < child_start {
                next += 1;
            }
            let mut stop = next;
            while stop < intervals.len() && intervals[stop].0 <= child_end {
                stop += 1;
            }
            let e = self.region(
                &intervals[next..stop],
                bucket,
                child_start,
                child_bits,
                depth + 1,
            )?;
            self.nodes[node + i as usize] = e;
            next = stop.saturating_sub(1).max(next);
        }
        let offset = node * 4;
        if offset > MAX_OFFSET {
            return Err(RangeTableError::TooLarge);
        }
        self.last_node = self.last_node.max(offset);
        Ok((offset as u32) << 8)
    }

    fn leaf(&mut self, bucket: u128, first: bool, flips: &[u128]) -> Result<u32, RangeTableError> {
        // The entry before the boundaries stands for "below all of them":
        // a head entry only when the last one written says otherwise.
        if self.last_member != first {
            self.push_entry(0, first);
        }
        let offset = self.leaves.len();
        if offset > MAX_OFFSET {
            return Err(RangeTableError::TooLarge);
        }
        let mut member = first;
        for &flip in flips {
            member = !member;
            self.push_entry(flip - bucket, member);
        }
        let searched = flips.len() + 1;
        let steps = searched.next_power_of_two().trailing_zeros();
        let first_step = searched - (1 << (steps - 1));
        self.count_steps(steps);
        self.last_leaf = self.last_leaf.max(offset);
        Ok(leaf_entry(offset, steps, first_step))
    }

    fn count_steps(&mut self, steps: u32) {
        *self.steps_used.entry(steps).or_default() += 1;
    }

    fn push_entry(&mut self, key: u128, member: bool) {
        debug_assert!(self.key_bits == 128 || key < (1u128 << self.key_bits));
        self.last_member = member;
        let member = u64::from(member);
        match self.entry {
            EntryKind::U32 => {
                let e = ((key as u32) << 1) | member as u32;
                self.leaves.extend_from_slice(&e.to_le_bytes());
            }
            EntryKind::U64 => {
                let e = ((key as u64) << 1) | member;
                self.leaves.extend_from_slice(&e.to_le_bytes());
            }
            EntryKind::Pair => {
                let high = (key >> PAIR_LOW_BITS) as u64;
                let low = (((key as u64) & low_mask()) << 1) | member;
                self.leaves.extend_from_slice(&high.to_le_bytes());
                self.leaves.extend_from_slice(&low.to_le_bytes());
            }
        }
    }
}

fn low_mask() -> u64 {
    (1u64 << PAIR_LOW_BITS) - 1
}

fn leaf_entry(offset: usize, steps: u32, first_step: usize) -> u32 {
    debug_assert!(steps <= STEPS_MASK as u32 && (1..=16).contains(&first_step));
    ((offset as u32) << 8)
        | (((first_step - 1) as u32) << FIRST_STEP_SHIFT)
        | (steps << STEPS_SHIFT)
        | 1
}

impl RangeTable {
    /// Whether `key` is a member, computed from the bytes exactly as the
    /// generated program does (see `codegen::sets`).
    pub fn contains(&self, key: u128) -> bool {
        let l = &self.layout;
        let w = l.width;
        if l.common_bits > 0 && key >> (w - l.common_bits) != l.common_value {
            return false;
        }
        let index = (key >> l.key_bits) & ((1u128 << l.index_bits) - 1);
        let mut e = self.u32_at(index as usize * 4);
        let mut shift = l.key_bits;
        for &stride in &l.node_strides {
            if e & 1 == 1 {
                break;
            }
            let node = (e >> 8) as usize;
            assert!(
                node <= l.last_node,
                "node offset beyond the verifier's bound"
            );
            shift -= stride;
            let i = (key >> shift) & ((1u128 << stride) - 1);
            e = self.u32_at(l.nodes_offset + node + i as usize * 4);
        }
        assert!(e & 1 == 1, "a node below the last level");
        let steps = (e >> STEPS_SHIFT) & STEPS_MASK as u32;
        let first_step = ((e >> FIRST_STEP_SHIFT) & FIRST_STEP_MASK as u32) as usize + 1;
        let leaf = (e >> 8) as usize;
        assert!(
            leaf <= l.last_leaf,
            "leaf offset beyond the verifier's bound"
        );
        assert!(steps <= l.max_steps, "more steps than the code has");
        let rem = if l.key_bits == 0 {
            0
        } else {
            key & (u128::MAX >> (128 - l.key_bits))
        };
        let size = l.entry.bytes();
        let mut p = l.leaves_offset + leaf - size;
        if steps > 0 {
            if self.below(p + first_step * size, rem) {
                p += first_step * size;
            }
            for k in (0..steps - 1).rev() {
                let h = size << k;
                if self.below(p + h, rem) {
                    p += h;
                }
            }
        }
        self.member(p)
    }

    /// Whether the entry at byte `at` holds a boundary at most `rem`, by
    /// the program's sign-bit arithmetic.
    fn below(&self, at: usize, rem: u128) -> bool {
        match self.layout.entry {
            EntryKind::U32 => {
                let y = ((rem as i64) + 1) << 1;
                (i64::from(self.u32_at(at)) - y) < 0
            }
            EntryKind::U64 => {
                let y = ((rem as i64) + 1) << 1;
                (self.u64_at(at) as i64 - y) < 0
            }
            EntryKind::Pair => {
                let ya = (rem >> PAIR_LOW_BITS) as i64;
                let yb = (((rem as u64 & low_mask()) as i64) + 1) << 1;
                let da = self.u64_at(at) as i64 - ya;
                let sign = (da >> 63) | (((-da) as u64) >> 63) as i64;
                let db = self.u64_at(at + 8) as i64 - yb;
                (sign << 58) + db < 0
            }
        }
    }

    fn member(&self, at: usize) -> bool {
        match self.layout.entry {
            EntryKind::U32 => self.u32_at(at) & 1 == 1,
            EntryKind::U64 => self.u64_at(at) & 1 == 1,
            EntryKind::Pair => self.u64_at(at + 8) & 1 == 1,
        }
    }

    fn u32_at(&self, at: usize) -> u32 {
        let b: [u8; 4] = self.bytes[at..at + 4].try_into().expect("4 bytes");
        u32::from_le_bytes(b)
    }

    fn u64_at(&self, at: usize) -> u64 {
        let b: [u8; 8] = self.bytes[at..at + 8].try_into().expect("8 bytes");
        u64::from_le_bytes(b)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::lang::sets::{IntSet, Prefix, PrefixSet};

    /// splitmix64: a fixed-seed generator, so failures reproduce.
    pub(crate) struct Rng(u64);
    impl Rng {
        pub(crate) fn new(seed: u64) -> Rng {
            Rng(seed)
        }
        pub(crate) fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }
        pub(crate) fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    /// Every interval end, one below and one above it, and random keys.
    fn probes(intervals: &[(u128, u128)], width: u32, rng: &mut Rng, random: usize) -> Vec<u128> {
        let max = if width == 128 {
            u128::MAX
        } else {
            (1u128 << width) - 1
        };
        let mut out = vec![0, 1, max, max - 1, max / 2, max / 2 + 1];
        for &(lo, hi) in intervals {
            for k in [lo, hi] {
                out.push(k);
                out.push(k.wrapping_sub(1) & max);
                out.push(k.wrapping_add(1) & max);
            }
        }
        for _ in 0..random {
            let r = (u128::from(rng.next()) << 64 | u128::from(rng.next())) & max;
            out.push(r);
        }
        out
    }

    fn check(width: u32, intervals: &[(u128, u128)], leaf: usize, rng: &mut Rng) -> RangeTable {
        let table = build(width, intervals, leaf).expect("builds");
        let inside = |k: u128| {
            let i = intervals.partition_point(|&(lo, _)| lo <= k);
            i > 0 && k <= intervals[i - 1].1
        };
        for k in probes(intervals, width, rng, 2000) {
            assert_eq!(
                table.contains(k),
                inside(k),
                "key {k:#x} in {} intervals (leaf {leaf}), layout {:?}",
                intervals.len(),
                table.layout
            );
        }
        table
    }

    /// A blocklist-like length mix: mostly hosts and /24s, a few /16s, a
    /// handful of shorter ones (uniformly random short prefixes would
    /// cover everything).
    pub(crate) fn v4_len(rng: &mut Rng) -> u8 {
        match rng.below(1000) {
            0 => 8 + rng.below(8) as u8,
            1..=50 => 16 + rng.below(8) as u8,
            51..=350 => 24,
            351..=500 => 25 + rng.below(7) as u8,
            _ => 32,
        }
    }

    /// As [`v4_len`], for IPv6: /32 to /64 networks and /128 hosts, some
    /// lengths between.
    pub(crate) fn v6_len(rng: &mut Rng) -> u8 {
        match rng.below(1000) {
            0 => 16 + rng.below(16) as u8,
            1..=200 => 32 + rng.below(17) as u8,
            201..=500 => 48 + rng.below(17) as u8,
            501..=650 => 65 + rng.below(63) as u8,
            _ => 128,
        }
    }

    fn v4_set(rng: &mut Rng, n: usize) -> PrefixSet {
        PrefixSet::new((0..n).map(|_| {
            let len = v4_len(rng);
            let addr = std::net::Ipv4Addr::from(rng.next() as u32);
            Prefix::new(addr.into(), len).expect("valid")
        }))
    }

    fn v6_set(rng: &mut Rng, n: usize, under: Option<(u128, u8)>) -> PrefixSet {
        PrefixSet::new((0..n).map(|_| {
            let len = v6_len(rng);
            let mut a = u128::from(rng.next()) << 64 | u128::from(rng.next());
            if let Some((net, l)) = under {
                let keep = u128::MAX >> l;
                a = net | (a & keep);
            }
            Prefix::new(
                std::net::Ipv6Addr::from(a).into(),
                len.max(under.map_or(0, |u| u.1)),
            )
            .expect("valid")
        }))
    }

    fn as_u128<T: Into<u128> + Copy>(r: &[(T, T)]) -> Vec<(u128, u128)> {
        r.iter().map(|&(a, b)| (a.into(), b.into())).collect()
    }

    #[test]
    fn ipv4_prefix_sets_of_every_size() {
        let mut rng = Rng::new(4);
        for n in [1, 2, 3, 10, 100, 1000, 20_000] {
            let set = v4_set(&mut rng, n);
            // Two-entry leaves split every bucket with more than one
            // boundary: nodes everywhere, but too many for large sets.
            let leaves: &[usize] = if n <= 1000 { &[2, 4, 16] } else { &[4, 16] };
            for &leaf in leaves {
                check(32, &as_u128(&set.v4_ranges()), leaf, &mut rng);
            }
        }
    }

    #[test]
    fn ipv6_prefix_sets_of_every_size() {
        let mut rng = Rng::new(6);
        for n in [1, 2, 10, 100, 1000, 20_000] {
            let set = v6_set(&mut rng, n, None);
            let t = check(128, &as_u128(&set.v6_ranges()), 16, &mut rng);
            if n >= 100 {
                assert_eq!(t.layout.entry, EntryKind::Pair);
            }
            // Clustered in 2000::/3 and in one /48: the common prefix
            // moves level 1 down to where the members differ.
            let set = v6_set(&mut rng, n, Some((0x2u128 << 124, 3)));
            check(128, &as_u128(&set.v6_ranges()), 16, &mut rng);
            let set = v6_set(&mut rng, n, Some((0x2001_0db8_0001u128 << 80, 48)));
            let t = check(128, &as_u128(&set.v6_ranges()), 4, &mut rng);
            assert!(t.layout.common_bits >= 48, "{:?}", t.layout);
        }
    }

    #[test]
    fn dense_clusters_split_into_nodes() {
        let mut rng = Rng::new(7);
        // Every other address of a /20: 2048 boundaries in one bucket.
        let intervals: Vec<(u128, u128)> = (0..2048u128)
            .map(|i| {
                let a = 0x0a00_0000 + 2 * i;
                (a, a)
            })
            .chain([(0xc000_0000, 0xc000_0000)])
            .collect();
        let t = check(32, &intervals, 16, &mut rng);
        assert!(!t.layout.node_strides.is_empty(), "{:?}", t.layout);
        assert!(t.layout.max_steps <= 4);
        // 64-bit keys, many single values clustered and spread.
        let mut v: Vec<u128> = (0..5000).map(|_| u128::from(rng.next())).collect();
        v.extend((0..5000u128).map(|i| (1u128 << 63) + 3 * i));
        v.sort();
        v.dedup();
        let intervals: Vec<(u128, u128)> = v.iter().map(|&k| (k, k)).collect();
        check(64, &intervals, 16, &mut rng);
    }

    #[test]
    fn edges_of_the_key_space() {
        let mut rng = Rng::new(8);
        let max32 = u128::from(u32::MAX);
        for intervals in [
            vec![(0, max32)],
            vec![(0, 0)],
            vec![(max32, max32)],
            vec![(0, 5), (max32 - 5, max32)],
            vec![(0, 0x7fff_ffff)],
            vec![(0x8000_0000, max32)],
        ] {
            check(32, &intervals, 16, &mut rng);
        }
        check(128, &[(0, u128::MAX)], 16, &mut rng);
        check(128, &[(0, 0), (u128::MAX, u128::MAX)], 2, &mut rng);
        check(64, &[(0, u128::from(u64::MAX))], 16, &mut rng);
        check(64, &[], 16, &mut rng);
    }

    #[test]
    fn signed_integer_sets_through_the_sign_flip() {
        let mut rng = Rng::new(9);
        let set = IntSet::from_ranges((0..3000).map(|_| {
            let a = rng.next() as i64;
            let len = rng.below(1000) as i64;
            (a, a.saturating_add(len))
        }));
        let flip = |v: i64| u128::from((v as u64) ^ (1 << 63));
        let intervals: Vec<(u128, u128)> = set
            .ranges()
            .iter()
            .map(|&(a, b)| (flip(a), flip(b)))
            .collect();
        let t = build(64, &intervals, 16).expect("builds");
        for _ in 0..20_000 {
            let v = rng.next() as i64;
            assert_eq!(t.contains(flip(v)), set.contains(v), "{v}");
        }
        for &(a, b) in set.ranges() {
            for v in [a, b, a.wrapping_sub(1), b.wrapping_add(1)] {
                assert_eq!(t.contains(flip(v)), set.contains(v), "{v}");
            }
        }
    }

    #[test]
    fn a_hundred_thousand_prefixes_fit_and_build_fast() {
        let mut rng = Rng::new(100);
        let v4 = v4_set(&mut rng, 100_000);
        let started = std::time::Instant::now();
        let t4 = build(32, &as_u128(&v4.v4_ranges()), DEFAULT_LEAF_ENTRIES).expect("builds");
        let v6 = v6_set(&mut rng, 100_000, Some((0x2u128 << 124, 3)));
        let t6 = build(128, &as_u128(&v6.v6_ranges()), DEFAULT_LEAF_ENTRIES).expect("builds");
        let took = started.elapsed();
        eprintln!(
            "v4 {} bytes {:?}; v6 {} bytes {:?}; built in {took:?}",
            t4.bytes.len(),
            t4.layout.steps_used,
            t6.bytes.len(),
            t6.layout.steps_used
        );
        // Kernels before 6.0 take array values of at most 4 MiB.
        assert!(t6.bytes.len() < 4 << 20, "{} bytes", t6.bytes.len());
        for _ in 0..50_000 {
            let a = rng.next() as u32;
            assert_eq!(t4.contains(a.into()), v4.contains_v4(a));
            let a = (u128::from(rng.next()) << 64 | u128::from(rng.next())) >> 3 | 0x2u128 << 124;
            assert_eq!(t6.contains(a), v6.contains_v6(a));
        }
        for &(net, _) in v6.v6() {
            assert_eq!(t6.contains(net), v6.contains_v6(net));
        }
    }
}
