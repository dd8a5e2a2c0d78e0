//! The constant sets that `in` tests against: integers (values and
//! inclusive ranges) and IP prefixes. Both are kept normalized, so two
//! sets with the same members compare equal and the compiler can pick a
//! lookup structure from their size alone.

use std::net::{Ipv4Addr, Ipv6Addr};

/// A set of 64-bit integers as sorted, disjoint, non-adjacent inclusive
/// ranges.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct IntSet {
    ranges: Vec<(i64, i64)>,
}

impl IntSet {
    /// The union of inclusive ranges given in any order; a range whose
    /// start is above its end is empty.
    pub fn from_ranges(ranges: impl IntoIterator<Item = (i64, i64)>) -> IntSet {
        let mut all: Vec<(i64, i64)> = ranges.into_iter().filter(|(lo, hi)| lo <= hi).collect();
        all.sort_unstable();
        IntSet {
            ranges: merge_ranges(all.into_iter()),
        }
    }

    /// The sorted, disjoint, non-adjacent inclusive ranges.
    pub fn ranges(&self) -> &[(i64, i64)] {
        &self.ranges
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    pub fn contains(&self, value: i64) -> bool {
        let i = self.ranges.partition_point(|(lo, _)| *lo <= value);
        i > 0 && value <= self.ranges[i - 1].1
    }
}

/// An IPv4 or IPv6 prefix; a single address is a prefix of full length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Prefix {
    V4 { addr: u32, len: u8 },
    V6 { addr: u128, len: u8 },
}

impl Prefix {
    /// `addr/len` with the host bits cleared; `None` when `len` is too long
    /// for the family.
    pub fn new(addr: std::net::IpAddr, len: u8) -> Option<Prefix> {
        match addr {
            std::net::IpAddr::V4(a) if len <= 32 => Some(Prefix::V4 {
                addr: u32::from(a) & mask32(len),
                len,
            }),
            std::net::IpAddr::V6(a) if len <= 128 => Some(Prefix::V6 {
                addr: u128::from(a) & mask128(len),
                len,
            }),
            _ => None,
        }
    }
}

impl std::fmt::Display for Prefix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Prefix::V4 { addr, len: 32 } => write!(f, "{}", Ipv4Addr::from(addr)),
            Prefix::V4 { addr, len } => write!(f, "{}/{len}", Ipv4Addr::from(addr)),
            Prefix::V6 { addr, len: 128 } => write!(f, "{}", Ipv6Addr::from(addr)),
            Prefix::V6 { addr, len } => write!(f, "{}/{len}", Ipv6Addr::from(addr)),
        }
    }
}

/// The network mask of a `len`-bit IPv4 prefix.
pub fn mask32(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(len))
    }
}

/// The network mask of a `len`-bit IPv6 prefix.
pub fn mask128(len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(len))
    }
}

/// A set of IPv4 and IPv6 prefixes. Addresses are host-order integers of
/// the address bytes as they appear on the wire (`u32::from(Ipv4Addr)`).
/// Kept minimal: sorted, without duplicates or prefixes covered by a
/// shorter one in the set.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct PrefixSet {
    v4: Vec<(u32, u8)>,
    v6: Vec<(u128, u8)>,
}

impl PrefixSet {
    pub fn new(prefixes: impl IntoIterator<Item = Prefix>) -> PrefixSet {
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for p in prefixes {
            match p {
                Prefix::V4 { addr, len } => v4.push((addr & mask32(len), len)),
                Prefix::V6 { addr, len } => v6.push((addr & mask128(len), len)),
            }
        }
        PrefixSet {
            v4: minimal(v4, |a, len| a & mask32(len)),
            v6: minimal(v6, |a, len| a & mask128(len)),
        }
    }

    /// IPv4 prefixes `(network, length)`, sorted by network.
    pub fn v4(&self) -> &[(u32, u8)] {
        &self.v4
    }

    /// IPv6 prefixes `(network, length)`, sorted by network.
    pub fn v6(&self) -> &[(u128, u8)] {
        &self.v6
    }

    pub fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn contains_v4(&self, addr: u32) -> bool {
        covered(&self.v4, addr, |a, len| a & mask32(len))
    }

    pub fn contains_v6(&self, addr: u128) -> bool {
        covered(&self.v6, addr, |a, len| a & mask128(len))
    }

    /// The IPv4 members as sorted, disjoint, non-adjacent inclusive
    /// address ranges.
    pub fn v4_ranges(&self) -> Vec<(u32, u32)> {
        merge_ranges(self.v4.iter().map(|&(a, len)| (a, a | !mask32(len))))
    }

    /// The IPv6 members as sorted, disjoint, non-adjacent inclusive
    /// address ranges.
    pub fn v6_ranges(&self) -> Vec<(u128, u128)> {
        merge_ranges(self.v6.iter().map(|&(a, len)| (a, a | !mask128(len))))
    }
}

/// Sorts prefixes and drops those a shorter member already covers. In
/// sorted order (network, then length) a covering prefix comes before
/// everything it covers, and everything it covers follows it directly.
fn minimal<T: Copy + Ord>(mut prefixes: Vec<(T, u8)>, net: impl Fn(T, u8) -> T) -> Vec<(T, u8)> {
    prefixes.sort_unstable();
    prefixes.dedup();
    let mut out: Vec<(T, u8)> = Vec::with_capacity(prefixes.len());
    for (addr, len) in prefixes {
        match out.last() {
            Some(&(a, l)) if l <= len && net(addr, l) == a => {}
            _ => out.push((addr, len)),
        }
    }
    out
}

/// Whether a minimal, sorted prefix list holds `addr`: only the last
/// network at or below `addr` can cover it, because members are disjoint.
fn covered<T: Copy + Ord>(prefixes: &[(T, u8)], addr: T, net: impl Fn(T, u8) -> T) -> bool {
    let i = prefixes.partition_point(|&(a, _)| a <= addr);
    i > 0 && {
        let (a, len) = prefixes[i - 1];
        net(addr, len) == a
    }
}

fn merge_ranges<T: Copy + Ord + num_like::Succ>(
    ranges: impl Iterator<Item = (T, T)>,
) -> Vec<(T, T)> {
    let mut out: Vec<(T, T)> = Vec::new();
    for (lo, hi) in ranges {
        match out.last_mut() {
            Some(last) if last.1.succ() == Some(lo) || lo <= last.1 => {
                if hi > last.1 {
                    last.1 = hi
                }
            }
            _ => out.push((lo, hi)),
        }
    }
    out
}

mod num_like {
    /// The next integer, if there is one.
    pub trait Succ: Sized {
        fn succ(self) -> Option<Self>;
    }
    impl Succ for i64 {
        fn succ(self) -> Option<i64> {
            self.checked_add(1)
        }
    }
    impl Succ for u32 {
        fn succ(self) -> Option<u32> {
            self.checked_add(1)
        }
    }
    impl Succ for u128 {
        fn succ(self) -> Option<u128> {
            self.checked_add(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Prefix {
        let (a, len) = s.split_once('/').unwrap();
        let addr: std::net::IpAddr = a.parse().unwrap();
        Prefix::new(addr, len.parse().unwrap()).unwrap()
    }

    #[test]
    fn int_sets_merge_overlapping_and_adjacent_ranges() {
        let s = IntSet::from_ranges([
            (10, 20),
            (1, 3),
            (4, 4),
            (15, 30),
            (40, 39),
            (i64::MAX, i64::MAX),
        ]);
        assert_eq!(s.ranges(), &[(1, 4), (10, 30), (i64::MAX, i64::MAX)]);
        for v in [1, 4, 10, 30, i64::MAX] {
            assert!(s.contains(v), "{v}");
        }
        for v in [0, 5, 9, 31, i64::MIN, i64::MAX - 1] {
            assert!(!s.contains(v), "{v}");
        }
    }

    #[test]
    fn prefix_sets_drop_covered_members() {
        let s = PrefixSet::new([
            p("10.1.0.0/16"),
            p("10.0.0.0/8"),
            p("10.0.0.0/8"),
            p("192.168.1.7/24"),
            p("::1/128"),
            p("fd00::/8"),
            p("fd12::/16"),
        ]);
        assert_eq!(s.v4(), &[(0x0a00_0000, 8), (0xc0a8_0100, 24)]);
        assert_eq!(s.v6(), &[(1, 128), (0xfd << 120, 8)]);
        assert!(s.contains_v4(0x0aff_ffff));
        assert!(s.contains_v4(0xc0a8_01ff));
        assert!(!s.contains_v4(0x0b00_0000));
        assert!(!s.contains_v4(0xc0a8_0200));
        assert!(s.contains_v6(1));
        assert!(!s.contains_v6(2));
        assert!(s.contains_v6((0xfd << 120) | 5));
        assert_eq!(
            s.v4_ranges(),
            vec![(0x0a00_0000, 0x0aff_ffff), (0xc0a8_0100, 0xc0a8_01ff)]
        );
    }

    #[test]
    fn adjacent_prefixes_merge_into_one_range() {
        let s = PrefixSet::new([p("10.0.0.0/25"), p("10.0.0.128/25"), p("0.0.0.0/0")]);
        assert_eq!(s.v4(), &[(0, 0)]);
        assert_eq!(s.v4_ranges(), vec![(0, u32::MAX)]);
        let s = PrefixSet::new([p("10.0.0.0/25"), p("10.0.0.128/25")]);
        assert_eq!(s.v4_ranges(), vec![(0x0a00_0000, 0x0a00_00ff)]);
    }
}
