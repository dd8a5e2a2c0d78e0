//! The compiled program and the reference evaluator agree, at scale, on
//! odd packets.
//!
//! Random filters (the generator's, nested at least 6 levels, and some
//! wrapped deeper still) meet random odd packets (IPv4 options and lying
//! header lengths, fragments first and not, IPv6 extension chains at and
//! past the limit, ICMP, truncations, swapped EtherTypes), and a fixed
//! corpus of those cut at every byte meets filters that need every header.
//! Each case runs through the evaluator and the kernel's test run. The
//! verifier must accept every filter: a rejection is a compiler bug and
//! fails the test.
//!
//! Fixed seed in CI (about 30 s in a debug build); `PORTWALL_DIFF_SEED`
//! picks another seed and `PORTWALL_DIFF_FILTERS` the number of random
//! filters for a longer run. Each test prints how many cases it ran.

mod common;

use common::generate::{self as gen_, Rng};
use common::kernel;
use common::packets;
use portwall::eval;
use portwall::lang::ir::{Expr, Filter};
use portwall::lang::{check, parse};
use portwall::packet::Packet;
use std::time::Instant;

const DEFAULT_SEED: u64 = 0x0dd_9ac7_2026;

fn seed() -> u64 {
    gen_::env_u64("PORTWALL_DIFF_SEED", DEFAULT_SEED)
}

/// The height of the expression tree (a leaf is 1).
fn depth(e: &Expr) -> usize {
    let children: Vec<&Expr> = match e {
        Expr::Const(_) | Expr::Var(_) | Expr::AddrIn(..) => Vec::new(),
        Expr::Unary(_, a) | Expr::InSet(a, _) => vec![a],
        Expr::Binary(_, a, b) => vec![a, b],
        Expr::Logic(_, terms) => terms.iter().collect(),
        Expr::Cond(c, t, f) => vec![c, t, f],
    };
    1 + children.into_iter().map(depth).max().unwrap_or(0)
}

/// `text` inside `levels` more constructs, each one that keeps both
/// verdicts possible (a boolean context, arithmetic with a packet value,
/// a conditional on a packet variable).
fn deepen(rng: &mut Rng, text: String, levels: u32) -> String {
    let mut text = text;
    for _ in 0..levels {
        let other = gen_::filter(rng, 1);
        text = match rng.below(8) {
            0 => format!("!({text})"),
            1 => format!("-({text})"),
            2 => format!("({text}) && ({other})"),
            3 => format!("({other}) || ({text})"),
            4 => format!("tcp ? ({text}) : ({other})"),
            5 => format!("(({text}) + dst_port) & 1"),
            6 => format!("({text}) != (src_port < 1024)"),
            _ => format!("~({text}) ^ ({other})"),
        };
    }
    text
}

fn checked(text: &str) -> Option<Filter> {
    let ast = parse::parse(text).unwrap_or_else(|e| panic!("generated `{text}`: {e}"));
    match check::check(&ast) {
        Ok(f) => Some(f),
        // A divisor that folds to a constant 0 is a checker error.
        Err(e) if e.message.contains("by zero") => None,
        Err(e) => panic!("generated `{text}`: {e}"),
    }
}

/// Runs `packet` through the evaluator and the loaded filter; they must
/// agree.
fn agree(
    seed: u64,
    text: &str,
    filter: &Filter,
    loaded: &portwall::kernel::LoadedFilter,
    p: &Packet,
) {
    let expected = eval::evaluate(filter, p).verdict();
    let got = kernel::verdict(loaded, p);
    assert_eq!(
        got, expected,
        "seed {seed:#x}: filter `{text}` on packet {:02x?} (ethertype {:#06x}): \
         kernel {got:?}, evaluator {expected:?}",
        p.data, p.ethertype
    );
}

#[test]
fn deep_filters_agree_with_the_evaluator_on_odd_packets() {
    if !kernel::available("deep_filters_agree_with_the_evaluator_on_odd_packets") {
        return;
    }
    let seed = seed();
    let filters = gen_::env_u64("PORTWALL_DIFF_FILTERS", 500);
    let packets_per_filter = 400;
    let mut rng = Rng::new(seed);
    let pool: Vec<Packet> = (0..4000).map(|_| packets::odd_packet(&mut rng)).collect();

    let started = Instant::now();
    let (mut cases, mut loaded_count, mut rejected, mut deepest) = (0u64, 0u64, 0u64, 0usize);
    let mut deep_enough = 0u64;
    for i in 0..filters {
        // The generator's depth bound, 6 to 9, and every fourth filter
        // wrapped 4 to 20 levels deeper.
        let mut text = gen_::filter(&mut rng, 6 + (i % 4) as u32);
        if i % 4 == 3 {
            let levels = 4 + rng.below(17) as u32;
            text = deepen(&mut rng, text, levels);
        }
        let Some(mut filter) = checked(&text) else {
            rejected += 1;
            continue;
        };
        // The generator stops early at random (its leaves are many), so
        // a shallow result is wrapped until it reaches the depth asked for.
        // (`&&`/`||` chains flatten, so a level of text may add none.)
        let mut attempts = 0;
        while depth(&filter.expr) < 6 && attempts < 64 {
            attempts += 1;
            let deeper = deepen(&mut rng, text.clone(), 1);
            if let Some(f) = checked(&deeper) {
                (text, filter) = (deeper, f);
            }
        }
        let d = depth(&filter.expr);
        deepest = deepest.max(d);
        if d >= 6 {
            deep_enough += 1;
        }
        let loaded = kernel::load(&filter, &text);
        loaded_count += 1;
        for _ in 0..packets_per_filter {
            agree(seed, &text, &filter, &loaded, rng.pick(&pool));
            cases += 1;
        }
    }
    println!(
        "differential_scale: {loaded_count} filters loaded (deepest {deepest} levels, \
         {deep_enough} of 6 or more), {rejected} refused by the checker, {cases} \
         (filter, packet) cases agree, in {:?}",
        started.elapsed()
    );
    assert!(loaded_count > filters * 9 / 10, "too few filters loaded");
    assert!(deep_enough > loaded_count * 9 / 10, "too few deep filters");
}

/// Filters that need every header the language parses, so the whole
/// corpus exercises the header parser's every branch.
const PROBES: &[&str] = &[
    "tcp && dst_port == 80 || udp && src_port == 53 || icmp",
    "!tcp || dst_port != 80",
    "(tcp || udp) && (dst_port + src_port) % 7 == 3",
    "icmp ? ip : ipv6",
    "ip && !udp",
    "1",
    "src_port",
];

#[test]
fn probes_agree_on_every_truncation_of_odd_packets() {
    if !kernel::available("probes_agree_on_every_truncation_of_odd_packets") {
        return;
    }
    let corpus = packets::odd_corpus();
    let started = Instant::now();
    let mut cases = 0u64;
    for text in PROBES {
        let filter = checked(text).expect("probe checks");
        let loaded = kernel::load(&filter, text);
        for p in &corpus {
            assert!(kernel::testable(p));
            agree(0, text, &filter, &loaded, p);
            cases += 1;
        }
    }
    println!(
        "differential_scale: {} probe filters on {} corpus packets: {cases} cases agree, in {:?}",
        PROBES.len(),
        corpus.len(),
        started.elapsed()
    );
}

#[test]
fn generators_make_the_odd_cases() {
    // The generators must produce what the tests above claim to cover;
    // counted on the packets themselves, not assumed.
    let mut rng = Rng::new(seed());
    let pool: Vec<Packet> = (0..4000).map(|_| packets::odd_packet(&mut rng)).collect();
    let v4: Vec<&Packet> = pool
        .iter()
        .filter(|p| p.ethertype == portwall::packet::ETH_P_IP && p.data[0] >> 4 == 4)
        .collect();
    let v6: Vec<&Packet> = pool
        .iter()
        .filter(|p| p.ethertype == portwall::packet::ETH_P_IPV6 && p.data[0] >> 4 == 6)
        .collect();
    let ihl = |p: &Packet| usize::from(p.data[0] & 0x0f) * 4;
    let options = v4
        .iter()
        .filter(|p| ihl(p) > 20 && ihl(p) <= p.data.len())
        .count();
    let ihl_short = v4.iter().filter(|p| ihl(p) < 20).count();
    let ihl_past_end = v4.iter().filter(|p| ihl(p) > p.data.len()).count();
    let frag_v4_first = v4
        .iter()
        .filter(|p| {
            p.data[6] & 0x20 != 0 && u16::from_be_bytes([p.data[6], p.data[7]]) & 0x1fff == 0
        })
        .count();
    let frag_v4_later = v4
        .iter()
        .filter(|p| u16::from_be_bytes([p.data[6], p.data[7]]) & 0x1fff != 0)
        .count();
    // Walk the extension chains as far as the bytes go.
    let mut chain_lengths = Vec::new();
    let (mut ah, mut frag6_first, mut frag6_later) = (0, 0, 0);
    for p in &v6 {
        let (mut next, mut at, mut n) = (p.data[6], 40usize, 0usize);
        while matches!(next, 0 | 43 | 60 | 51 | 44) && at + 2 <= p.data.len() {
            let size = match next {
                44 => {
                    if at + 4 <= p.data.len() {
                        let off = u16::from_be_bytes([p.data[at + 2], p.data[at + 3]]) >> 3;
                        if off == 0 {
                            frag6_first += 1;
                        } else {
                            frag6_later += 1;
                        }
                    }
                    8
                }
                51 => {
                    ah += 1;
                    (usize::from(p.data[at + 1]) + 2) * 4
                }
                _ => (usize::from(p.data[at + 1]) + 1) * 8,
            };
            next = p.data[at];
            at += size;
            n += 1;
        }
        chain_lengths.push(n);
    }
    let at_limit = chain_lengths.iter().filter(|n| **n == 8).count();
    let past_limit = chain_lengths.iter().filter(|n| **n > 8).count();
    let cut = pool
        .iter()
        .filter(|p| match p.ethertype {
            portwall::packet::ETH_P_IP if p.data.len() >= 4 => {
                usize::from(u16::from_be_bytes([p.data[2], p.data[3]])) > p.data.len()
            }
            portwall::packet::ETH_P_IPV6 if p.data.len() >= 6 => {
                usize::from(u16::from_be_bytes([p.data[4], p.data[5]])) + 40 > p.data.len()
            }
            _ => false,
        })
        .count();
    let counts = [
        ("IPv4 with options", options),
        ("IPv4 IHL under 5", ihl_short),
        ("IPv4 IHL past the end", ihl_past_end),
        ("IPv4 first fragments", frag_v4_first),
        ("IPv4 later fragments", frag_v4_later),
        ("IPv6 with AH", ah),
        ("IPv6 first fragments", frag6_first),
        ("IPv6 later fragments", frag6_later),
        ("IPv6 chains of exactly 8", at_limit),
        ("IPv6 chains past 8", past_limit),
        ("truncated", cut),
    ];
    println!("odd packets in a pool of {}: {counts:?}", pool.len());
    for (what, n) in counts {
        assert!(n >= 20, "only {n} of {what}");
    }
}
