//! The set lookups in the kernel, held to the sets' own `contains` (the
//! language's definition): each test builds a program that reads a value
//! or an address from the packet, runs one lookup and returns whether it
//! hit, loads it, and test-runs it on thousands of generated keys around
//! every boundary of the set. Fixed seeds, so failures reproduce.

use super::super::{Gen, regs, skb};
use super::*;
use crate::compiler::asm::{Cond, Insn, Reg, Width};
use crate::compiler::{self, Compiled};
use crate::kernel::{self, LoadedFilter};
use crate::lang::sets::{IntSet, Prefix, PrefixSet};
use crate::packet::{ETH_P_IP, ETH_P_IPV6};

use crate::compiler::tables::range::tests::Rng;

const STRATEGIES: [SetStrategy; 4] = [
    SetStrategy::Auto,
    SetStrategy::Compare,
    SetStrategy::Table,
    SetStrategy::LpmTrie,
];

/// The register the integer is in: one the lookups must preserve.
const VALUE: Reg = Reg::R8;
/// Packet bytes: the integer at 0..8, the address at 8..24.
const VALUE_AT: i16 = 0;
const ADDR_AT: i16 = 8;

/// What a harness program returns.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Report {
    /// 1 when the lookup jumps to its label, else 0.
    Verdict,
    /// 1 when r6-r9 are unchanged after the lookup (either way), else 0.
    Preserved,
}

/// A program around the lookup `body` emits. It first loads
/// `skb->protocol` into its register and checks that the packet has 24
/// bytes, as the filter's header code would.
fn harness(
    strategy: SetStrategy,
    report: Report,
    body: impl FnOnce(&mut Gen, i16, Label) -> Result<(), CodegenError>,
) -> Compiled {
    let mut g = Gen::new();
    g.sets = SetState::new(SetOptions {
        strategy,
        first_map: 0,
    });
    // The frame as the code generator lays it out for a filter with sets.
    g.set_scratch = g.alloc_stack(32);
    let addr_cell = g.alloc_stack(16);
    let saved = g.alloc_stack(8);
    let (ctx, data, end) = (Reg::R1, Reg::R2, Reg::R3);
    g.load(Width::U32, regs::PROTOCOL, ctx, skb::PROTOCOL);
    g.load(Width::U32, data, ctx, skb::DATA);
    g.load(Width::U32, end, ctx, skb::DATA_END);
    g.mov(Reg::R0, data);
    g.alu(AluOp::Add, Reg::R0, 24);
    let drop = g.drop;
    g.jump(Cond::Gt, Reg::R0, end, drop);
    // The integer into its register, the address onto the stack.
    g.load(Width::U64, VALUE, data, VALUE_AT);
    for i in 0..2 {
        g.load(Width::U64, Reg::R0, data, ADDR_AT + 8 * i);
        g.push(Insn::Store {
            width: Width::U64,
            base: Reg::R10,
            off: addr_cell + 8 * i,
            src: Reg::R0.into(),
        });
    }
    // Values the lookups must keep.
    g.mov(Reg::R7, 0x5eed);
    g.mov(Reg::R9, VALUE);
    let kept = g.label("kept");
    g.mov(Reg::R0, regs::PROTOCOL);
    g.push(Insn::Store {
        width: Width::U64,
        base: Reg::R10,
        off: saved,
        src: Reg::R0.into(),
    });
    let hit = g.label("hit");
    body(&mut g, addr_cell, hit).expect("generates");
    let (miss_value, hit_value) = match report {
        Report::Verdict => (0, 1),
        Report::Preserved => (1, 1),
    };
    g.mov(Reg::R0, miss_value);
    g.push(Insn::Goto(kept));
    g.bind(hit);
    g.mov(Reg::R0, hit_value);
    g.bind(kept);
    if report == Report::Preserved {
        let broken = g.label("clobbered");
        g.jump(Cond::Ne, Reg::R7, 0x5eed, broken);
        g.jump(Cond::Ne, Reg::R9, VALUE, broken);
        g.load(Width::U64, Reg::R1, Reg::R10, saved);
        g.jump(Cond::Ne, Reg::R1, regs::PROTOCOL, broken);
        g.push(Insn::Exit);
        g.bind(broken);
        g.mov(Reg::R0, 0);
    }
    g.push(Insn::Exit);
    g.bind(drop);
    g.mov(Reg::R0, 0);
    g.push(Insn::Exit);
    g.asm.remove_dead_code();
    let program = std::mem::take(&mut g.asm).finish().expect("assembles");
    Compiled {
        program,
        tables: g.sets.into_tables(),
    }
}

fn load(compiled: &Compiled, what: &str) -> LoadedFilter {
    let elf = compiler::object(compiled).expect("object");
    let loaded = kernel::load(&elf, compiler::PROGRAM_NAME).unwrap_or_else(|e| {
        panic!(
            "{what}: the kernel refused it: {e:#}\n{}\n{compiled}",
            e.verifier_log().unwrap_or_default()
        )
    });
    loaded.fill_tables(&compiled.tables).expect("fills tables");
    loaded
}

fn frame(ethertype: u16, value: i64, addr: [u8; 16]) -> Vec<u8> {
    let mut f = vec![0u8; kernel::ETH_HLEN + 40];
    f[12..14].copy_from_slice(&ethertype.to_be_bytes());
    let ip = kernel::ETH_HLEN;
    f[ip..ip + 8].copy_from_slice(&value.to_le_bytes());
    f[ip + 8..ip + 24].copy_from_slice(&addr);
    f
}

fn run(loaded: &LoadedFilter, frame: &[u8]) -> u32 {
    kernel::test_run(loaded, frame, 1).expect("test run").retval
}

/// Each range's ends and their neighbours, interesting constants, and
/// random values.
fn int_probes(set: &IntSet, rng: &mut Rng) -> Vec<i64> {
    let mut out = vec![
        0,
        1,
        -1,
        i64::MIN,
        i64::MIN + 1,
        i64::MAX,
        i64::MAX - 1,
        65_535,
        65_536,
        u32::MAX as i64,
        1 << 32,
        (1 << 32) + 53,
    ];
    let ranges = set.ranges();
    let step = (ranges.len() / 300).max(1);
    for &(lo, hi) in ranges.iter().step_by(step) {
        out.extend([lo, hi, lo.wrapping_sub(1), hi.wrapping_add(1)]);
    }
    for _ in 0..300 {
        out.push(rng.next() as i64);
        out.push(rng.below(70_000) as i64);
    }
    out
}

fn check_int_set(set: &IntSet, what: &str, rng: &mut Rng) {
    for strategy in STRATEGIES {
        let lookup = |g: &mut Gen, _, hit| int_set(g, VALUE, set, hit);
        let compiled = harness(strategy, Report::Verdict, lookup);
        let loaded = load(&compiled, what);
        let kept = load(&harness(strategy, Report::Preserved, lookup), what);
        for v in int_probes(set, rng) {
            let frame = frame(ETH_P_IP, v, [0; 16]);
            let got = run(&loaded, &frame);
            assert_eq!(
                got,
                u32::from(set.contains(v)),
                "{what} ({strategy:?}): {v}\n{compiled}"
            );
            assert_eq!(run(&kept, &frame), 1, "{what} ({strategy:?}): {v} clobbers");
        }
    }
}

#[test]
fn integer_sets_match_their_definition() {
    if !kernel::require_privileges_or_skip("integer_sets_match_their_definition") {
        return;
    }
    let mut rng = Rng::new(1);
    let ports = |rng: &mut Rng, n: usize| {
        IntSet::from_ranges((0..n).map(|_| {
            let p = rng.below(65_536) as i64;
            (p, p)
        }))
    };
    let cases: Vec<(&str, IntSet)> = vec![
        ("one port", IntSet::from_ranges([(53, 53)])),
        ("a range", IntSet::from_ranges([(1024, 65_535)])),
        ("two", IntSet::from_ranges([(1, 1), (5, 9)])),
        (
            "negatives and extremes",
            IntSet::from_ranges([(i64::MIN, -100), (-3, 3), (i64::MAX, i64::MAX)]),
        ),
        ("everything", IntSet::from_ranges([(i64::MIN, i64::MAX)])),
        (
            "above 32 bits",
            IntSet::from_ranges([(1 << 32, (1 << 32) + 100), (1 << 40, 1 << 41)]),
        ),
        ("ten ports", ports(&mut rng, 10)),
        ("a thousand ports", ports(&mut rng, 1000)),
        ("ten thousand ports", ports(&mut rng, 10_000)),
        ("every port", IntSet::from_ranges([(0, 65_535)])),
        (
            "sparse 64-bit ranges",
            IntSet::from_ranges((0..2000).map(|_| {
                let a = rng.next() as i64;
                (a, a.saturating_add(rng.below(1 << 20) as i64))
            })),
        ),
        (
            "dense negative span",
            IntSet::from_ranges((0..500).map(|_| {
                let a = -(rng.below(100_000) as i64);
                (a, a + 3)
            })),
        ),
    ];
    for (what, set) in &cases {
        check_int_set(set, what, &mut rng);
    }
}

/// Prefix ends and their neighbours, random addresses near and far.
fn v4_probes(set: &PrefixSet, rng: &mut Rng) -> Vec<u32> {
    let mut out = vec![0, 1, u32::MAX, u32::MAX - 1, 0x7fff_ffff, 0x8000_0000];
    let ranges = set.v4_ranges();
    let step = (ranges.len() / 300).max(1);
    for &(lo, hi) in ranges.iter().step_by(step) {
        out.extend([lo, hi, lo.wrapping_sub(1), hi.wrapping_add(1)]);
        out.push(lo.wrapping_add(rng.below(u64::from(hi - lo) + 1) as u32));
    }
    for _ in 0..300 {
        out.push(rng.next() as u32);
    }
    out
}

fn v6_probes(set: &PrefixSet, rng: &mut Rng) -> Vec<u128> {
    let mut out = vec![0, 1, u128::MAX, u128::MAX - 1, 1 << 64, (1 << 64) - 1];
    let ranges = set.v6_ranges();
    let step = (ranges.len() / 300).max(1);
    for &(lo, hi) in ranges.iter().step_by(step) {
        out.extend([lo, hi, lo.wrapping_sub(1), hi.wrapping_add(1)]);
        let r = u128::from(rng.next()) << 64 | u128::from(rng.next());
        out.push(lo.wrapping_add(r % (hi - lo).saturating_add(1).max(1)));
    }
    for _ in 0..300 {
        let r = u128::from(rng.next()) << 64 | u128::from(rng.next());
        out.push(r);
        out.push(r >> 3 | 0x2 << 124);
    }
    out
}

fn check_addr_set(set: &PrefixSet, what: &str, rng: &mut Rng) {
    for strategy in STRATEGIES {
        let lookup = |g: &mut Gen, cell, hit| addr_set(g, cell, set, hit);
        let compiled = harness(strategy, Report::Verdict, lookup);
        let loaded = load(&compiled, what);
        let kept = load(&harness(strategy, Report::Preserved, lookup), what);
        let fail = |key: String, got: u32, want: bool| {
            panic!("{what} ({strategy:?}): {key}: got {got}, want {want}\n{compiled}")
        };
        for a in v4_probes(set, rng) {
            let mut bytes = [0u8; 16];
            bytes[..4].copy_from_slice(&a.to_be_bytes());
            let got = run(&loaded, &frame(ETH_P_IP, 0, bytes));
            assert_eq!(
                run(&kept, &frame(ETH_P_IP, 0, bytes)),
                1,
                "{what} ({strategy:?}): clobbers"
            );
            if got != u32::from(set.contains_v4(a)) {
                fail(
                    std::net::Ipv4Addr::from(a).to_string(),
                    got,
                    set.contains_v4(a),
                );
            }
            // Not IP: never a member, whatever the bytes say.
            let got = run(&loaded, &frame(0x0806, 0, bytes));
            if got != 0 {
                fail(
                    format!("{} in ARP", std::net::Ipv4Addr::from(a)),
                    got,
                    false,
                );
            }
        }
        for a in v6_probes(set, rng) {
            let got = run(&loaded, &frame(ETH_P_IPV6, 0, a.to_be_bytes()));
            assert_eq!(
                run(&kept, &frame(ETH_P_IPV6, 0, a.to_be_bytes())),
                1,
                "{what} ({strategy:?}): clobbers"
            );
            if got != u32::from(set.contains_v6(a)) {
                fail(
                    std::net::Ipv6Addr::from(a).to_string(),
                    got,
                    set.contains_v6(a),
                );
            }
        }
    }
}

fn v4_prefixes(rng: &mut Rng, n: usize) -> Vec<Prefix> {
    (0..n)
        .map(|_| {
            let len = match rng.below(10) {
                0 => 8 + rng.below(16) as u8,
                1..=3 => 24,
                4 => 25 + rng.below(7) as u8,
                _ => 32,
            };
            Prefix::new(std::net::Ipv4Addr::from(rng.next() as u32).into(), len).expect("valid")
        })
        .collect()
}

fn v6_prefixes(rng: &mut Rng, n: usize) -> Vec<Prefix> {
    (0..n)
        .map(|_| {
            let len = match rng.below(10) {
                0 => 16 + rng.below(32) as u8,
                1..=4 => 48 + rng.below(17) as u8,
                5 => 65 + rng.below(63) as u8,
                _ => 128,
            };
            let a = (u128::from(rng.next()) << 64 | u128::from(rng.next())) >> 3 | 0x2 << 124;
            Prefix::new(std::net::Ipv6Addr::from(a).into(), len).expect("valid")
        })
        .collect()
}

fn prefix(s: &str) -> Prefix {
    let (a, len) = s.split_once('/').unwrap_or((s, ""));
    let addr: std::net::IpAddr = a.parse().expect("address");
    let len = len.parse().unwrap_or(if addr.is_ipv4() { 32 } else { 128 });
    Prefix::new(addr, len).expect("prefix")
}

#[test]
fn address_sets_match_their_definition() {
    if !kernel::require_privileges_or_skip("address_sets_match_their_definition") {
        return;
    }
    let mut rng = Rng::new(2);
    let mut cases: Vec<(String, PrefixSet)> = [
        vec!["10.0.0.1"],
        vec!["0.0.0.0/0"],
        vec!["::/0"],
        vec!["10.0.0.0/8", "192.168.1.0/24", "::1", "fe80::/10"],
        vec![
            "255.255.255.255",
            "0.0.0.0",
            "::",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        ],
        vec!["2001:db8::/64", "2001:db8:0:0:8000::/65", "2001:db8:1::1"],
        vec!["128.0.0.0/1", "::ffff:0:0/96"],
    ]
    .into_iter()
    .map(|list| (list.join(" "), PrefixSet::new(list.into_iter().map(prefix))))
    .collect();
    for n in [3, 10, 50, 1000, 20_000] {
        cases.push((
            format!("{n} IPv4"),
            PrefixSet::new(v4_prefixes(&mut rng, n)),
        ));
        cases.push((
            format!("{n} IPv6"),
            PrefixSet::new(v6_prefixes(&mut rng, n)),
        ));
    }
    let mut both = v4_prefixes(&mut rng, 300);
    both.extend(v6_prefixes(&mut rng, 300));
    cases.push(("300 of each".into(), PrefixSet::new(both)));
    // Clustered: every other address of a /22, which needs nodes.
    cases.push((
        "every other address of a /22".into(),
        PrefixSet::new((0..512u32).map(|i| {
            Prefix::new(std::net::Ipv4Addr::from(0x0a01_0000 + 2 * i).into(), 32).expect("valid")
        })),
    ));
    for (what, set) in &cases {
        check_addr_set(set, what, &mut rng);
    }
}
