//! Bitmaps: membership in a set of integers that all lie in a short span
//! (ports, protocol numbers, lengths) with one bounds check and one byte
//! load, whatever the number of members.

use crate::lang::sets::IntSet;

/// The longest span a bitmap covers: 2^20 bits, 128 KiB.
pub const MAX_BITS: u64 = 1 << 20;

/// Bit `v - min` of `bytes` (least significant bit first) says whether
/// `v` is a member; values outside `min..min + bits` are not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bitmap {
    pub min: i64,
    /// How many values from `min` on the bitmap covers.
    pub bits: u64,
    pub bytes: Vec<u8>,
}

/// The span from the set's smallest to its largest member, if the set is
/// not empty.
pub fn span(set: &IntSet) -> Option<u64> {
    let (first, last) = (set.ranges().first()?, set.ranges().last()?);
    Some((last.1 as i128 - first.0 as i128 + 1).min(u64::MAX as i128) as u64)
}

/// The bitmap of a non-empty set whose span is at most [`MAX_BITS`].
pub fn build(set: &IntSet) -> Option<Bitmap> {
    let bits = span(set).filter(|&b| b <= MAX_BITS)?;
    let min = set.ranges().first()?.0;
    let mut bytes = vec![0u8; bits.div_ceil(8) as usize];
    for &(lo, hi) in set.ranges() {
        for i in (lo - min) as u64..=(hi - min) as u64 {
            bytes[(i / 8) as usize] |= 1 << (i % 8);
        }
    }
    Some(Bitmap { min, bits, bytes })
}

impl Bitmap {
    /// Whether `v` is a member, computed as the program does: an unsigned
    /// bounds check of `v - min`, then the bit.
    pub fn contains(&self, v: i64) -> bool {
        let i = v.wrapping_sub(self.min) as u64;
        i < self.bits && (self.bytes[(i >> 3) as usize] >> (i & 7)) & 1 == 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitmaps_agree_with_the_set() {
        for ranges in [
            vec![(0, 0)],
            vec![(0, 65_535)],
            vec![(1, 3), (80, 80), (443, 443), (1024, 65_535)],
            vec![(-5, -1), (7, 9)],
            vec![(i64::MAX - 3, i64::MAX)],
            vec![(i64::MIN, i64::MIN + 9)],
        ] {
            let set = IntSet::from_ranges(ranges.clone());
            let b = build(&set).expect("small span");
            let (lo, hi) = (ranges[0].0, ranges.last().unwrap().1);
            for v in (lo.saturating_sub(10)..=lo.saturating_add(10))
                .chain(hi.saturating_sub(10)..=hi.saturating_add(10))
                .chain([0, -1, i64::MIN, i64::MAX, 65_536, 1 << 40])
            {
                assert_eq!(b.contains(v), set.contains(v), "{v} in {ranges:?}");
            }
        }
        assert!(build(&IntSet::from_ranges([(0, 0), (1 << 21, 1 << 21)])).is_none());
        assert!(build(&IntSet::from_ranges([(i64::MIN, i64::MAX)])).is_none());
        assert!(build(&IntSet::default()).is_none());
    }
}
