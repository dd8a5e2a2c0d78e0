//! Generators of random filters and packets for differential tests.
//!
//! Deterministic for a seed, so a CI failure reproduces; the seed and
//! the number of cases come from the environment for longer runs
//! (`PORTWALL_DIFF_SEED`, `PORTWALL_DIFF_FILTERS`).
//!
//! Filters are well-typed: addresses appear only in `==`, `!=` and `in`
//! against address literals and prefixes. Packets draw their addresses
//! from the same small pools the filters' literals come from, so address
//! tests hit as often as they miss.

use portwall::lang::ir::Direction;
use portwall::packet::{ETH_P_OTHER, Packet};

/// SplitMix64: tiny, fast and good enough to drive test generators.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

pub fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Ports that packets use, so comparisons hit as often as they miss.
pub const PORTS: [u16; 8] = [0, 22, 53, 80, 443, 8080, 65535, 1024];

/// IPv4 addresses packets use; prefixes in filters are built around them.
pub const ADDRS4: [[u8; 4]; 6] = [
    [10, 0, 0, 1],
    [10, 0, 0, 2],
    [10, 200, 3, 4],
    [192, 168, 1, 1],
    [127, 0, 0, 1],
    [0, 0, 0, 0],
];

/// IPv6 addresses packets use; `::ffff:10.0.0.1` is the IPv4-mapped form
/// of the first IPv4 one, which must not match it.
pub const ADDRS6: [&str; 6] = [
    "::1",
    "2001:db8::1",
    "2001:db8::2",
    "fd00::5",
    "::ffff:10.0.0.1",
    "fe80::1",
];

/// ICMP types and codes packets carry.
pub const ICMP_TYPES: [u8; 7] = [0, 3, 8, 11, 128, 129, 135];
pub const ICMP_CODES: [u8; 3] = [0, 1, 3];

const BOOL_VARS: [&str; 5] = ["ip", "ipv6", "tcp", "udp", "icmp"];
const PORT_VARS: [&str; 2] = ["dst_port", "src_port"];
const DIRECTION_PORT_VARS: [&str; 2] = ["local_port", "remote_port"];
const ADDR_VARS: [&str; 2] = ["dst_ip", "src_ip"];
const DIRECTION_ADDR_VARS: [&str; 2] = ["local_ip", "remote_ip"];

/// Which language a generated filter uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Language {
    /// The first language: booleans, ports, every operator.
    V1,
    /// Everything: also proto, len, ICMP type and code, integer sets and
    /// ranges (some of thousands of members), address sets and `==`/`!=`
    /// on addresses, and with a direction, `local_*`/`remote_*`.
    V2,
}

/// What the filter generator makes.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// The most levels of operators above a leaf.
    pub depth: u32,
    pub language: Language,
    /// The direction the filter will be checked for; `local_*` and
    /// `remote_*` names appear only with one.
    pub direction: Option<Direction>,
}

impl Options {
    /// Every feature but the direction-aware names.
    pub fn v2(depth: u32) -> Options {
        Options {
            depth,
            language: Language::V2,
            direction: None,
        }
    }

    pub fn v1(depth: u32) -> Options {
        Options {
            depth,
            language: Language::V1,
            direction: None,
        }
    }

    fn v2_features(&self) -> bool {
        self.language == Language::V2
    }

    fn at_depth(&self, depth: u32) -> Options {
        Options { depth, ..*self }
    }
}

/// A random filter using every feature of the language but the
/// direction-aware names, nested up to `depth` levels; see
/// [`filter_with`].
pub fn filter(rng: &mut Rng, depth: u32) -> String {
    filter_with(rng, &Options::v2(depth))
}

/// A random filter as source text. Every operator, the word forms, all
/// literal spellings and `?:` appear; parentheses are written out so the
/// text means what the generator built (and, now and then, left out where
/// `in` binds tighter than the operator before it).
pub fn filter_with(rng: &mut Rng, options: &Options) -> String {
    let depth = options.depth;
    if depth == 0 || rng.chance(15) {
        return leaf(rng, options);
    }
    let sub = options.at_depth(depth - 1);
    let choices = if options.v2_features() { 13 } else { 10 };
    match rng.below(choices) {
        0 => {
            let op = rng.pick(&["!", "~", "-", "+", "not "]);
            format!("{op}({})", filter_with(rng, &sub))
        }
        1..=3 => {
            let op = rng.pick(&["==", "!=", "<", "<=", ">", ">="]);
            // Mostly a variable against a value it often has, so both
            // outcomes occur.
            if rng.chance(60) {
                let (var, value) = int_var_and_value(rng, options);
                format!("({var} {op} {value})")
            } else {
                format!(
                    "({} {op} {})",
                    filter_with(rng, &sub),
                    filter_with(rng, &sub)
                )
            }
        }
        4 | 5 => {
            let op = rng.pick(&["&&", "||", "and", "or"]);
            let n = 2 + rng.below(3);
            let terms: Vec<String> = (0..n).map(|_| filter_with(rng, &sub)).collect();
            format!("({})", terms.join(&format!(" {op} ")))
        }
        6 => format!(
            "({} ? {} : {})",
            filter_with(rng, &sub),
            filter_with(rng, &sub),
            filter_with(rng, &sub)
        ),
        7 => {
            // Divisors that depend on the packet, and so are sometimes 0
            // at run time (a constant 0 divisor is a checker error).
            let op = rng.pick(&["/", "%"]);
            let var = rng.pick(&PORT_VARS);
            let port = rng.pick(&PORTS);
            format!("({} {op} ({var} - {port}))", filter_with(rng, &sub))
        }
        8 | 9 => {
            let op = rng.pick(&["*", "/", "%", "+", "-", "<<", ">>", "&", "^", "|"]);
            format!(
                "({} {op} {})",
                filter_with(rng, &sub),
                filter_with(rng, &sub)
            )
        }
        10 => int_set_test(rng, options, &sub),
        11 => address_test(rng, options),
        _ => {
            // `in` under prefix operators, unparenthesized: `!x in s` is
            // `!(x in s)`.
            let op = rng.pick(&["!", "not ", "-", "~"]);
            let (var, _) = int_var_and_value(rng, options);
            format!("({op}{var} in {})", int_set(rng, var))
        }
    }
}

/// An integer variable the options allow, and a value it often has.
fn int_var_and_value(rng: &mut Rng, options: &Options) -> (&'static str, u64) {
    if !options.v2_features() {
        return (*rng.pick(&PORT_VARS), u64::from(*rng.pick(&PORTS)));
    }
    let var = int_var(rng, options);
    (var, typical(rng, var))
}

fn int_var(rng: &mut Rng, options: &Options) -> &'static str {
    let mut vars: Vec<&'static str> = vec![
        "dst_port",
        "src_port",
        "proto",
        "len",
        "icmp_type",
        "icmp_code",
    ];
    if options.direction.is_some() {
        vars.extend(DIRECTION_PORT_VARS);
    }
    rng.pick::<&str>(&vars)
}

/// A value `var` often has in the generated packets.
fn typical(rng: &mut Rng, var: &str) -> u64 {
    match var {
        "proto" => *rng.pick(&[0, 1, 6, 17, 58, 132, 44]),
        "len" => *rng.pick(&[20, 28, 40, 48, 60, 64, 68, 100]),
        "icmp_type" => u64::from(*rng.pick(&ICMP_TYPES)),
        "icmp_code" => u64::from(*rng.pick(&ICMP_CODES)),
        _ => u64::from(*rng.pick(&PORTS)),
    }
}

/// `(X in {...})` or `(X in lo..hi)` for an integer X: a variable, or a
/// parenthesized expression.
fn int_set_test(rng: &mut Rng, options: &Options, sub: &Options) -> String {
    if rng.chance(25) {
        let operand = filter_with(rng, sub);
        let set = int_set(rng, "dst_port");
        return format!("(({operand}) in {set})");
    }
    let var = int_var(rng, options);
    format!("({var} in {})", int_set(rng, var))
}

/// The right side of `in` for integers: a bare range, or a set of values
/// and ranges around what `var` typically is; sometimes empty, sometimes
/// with negative members, now and then thousands of members.
fn int_set(rng: &mut Rng, var: &str) -> String {
    let range = |rng: &mut Rng| {
        let lo = typical(rng, var) as i64 - rng.below(3) as i64;
        let hi = lo + rng.below(2000) as i64;
        format!("{lo}..{hi}")
    };
    match rng.below(20) {
        0 => return range(rng),
        1 => return "{}".to_string(),
        2 => {
            // Big: every third port up to a bound, or many small ranges.
            let count = 200 + rng.below(3000);
            let members: Vec<String> = (0..count)
                .map(|i| {
                    if i % 7 == 0 {
                        format!("{}..{}", i * 20, i * 20 + 5)
                    } else {
                        (i * 3).to_string()
                    }
                })
                .collect();
            return format!("{{{}}}", members.join(", "));
        }
        _ => {}
    }
    let count = 1 + rng.below(6);
    let mut members: Vec<String> = (0..count)
        .map(|_| match rng.below(6) {
            0 => range(rng),
            1 => format!("-{}", rng.below(5)),
            2 => literal(rng),
            _ => typical(rng, var).to_string(),
        })
        .collect();
    if rng.chance(20) {
        members.push(String::new()); // a trailing comma
    }
    format!("{{{}}}", members.join(", "))
}

fn addr_var(rng: &mut Rng, options: &Options) -> &'static str {
    if options.direction.is_some() && rng.chance(40) {
        rng.pick::<&str>(&DIRECTION_ADDR_VARS)
    } else {
        rng.pick::<&str>(&ADDR_VARS)
    }
}

/// An address or prefix around the packets' pools, in either family.
fn addr_literal(rng: &mut Rng, allow_prefix: bool) -> String {
    let prefix = allow_prefix && rng.chance(50);
    if rng.chance(50) {
        let a = std::net::Ipv4Addr::from(*rng.pick(&ADDRS4));
        if prefix {
            format!("{a}/{}", rng.pick(&[0, 1, 8, 16, 24, 30, 31, 32]))
        } else {
            a.to_string()
        }
    } else {
        let a = *rng.pick(&ADDRS6);
        if prefix {
            format!("{a}/{}", rng.pick(&[0, 8, 16, 32, 64, 96, 120, 127, 128]))
        } else {
            a.to_string()
        }
    }
}

/// `A == lit`, `lit == A`, `A != lit` or `A in {addresses and prefixes}`.
fn address_test(rng: &mut Rng, options: &Options) -> String {
    let var = addr_var(rng, options);
    match rng.below(5) {
        0 => format!("({var} == {})", addr_literal(rng, false)),
        1 => format!("({} == {var})", addr_literal(rng, false)),
        2 => format!("({var} != {})", addr_literal(rng, false)),
        _ => {
            let count = if rng.chance(8) {
                500 + rng.below(2000)
            } else {
                rng.below(6)
            };
            let members: Vec<String> = (0..count)
                .map(|i| {
                    if count > 100 && i % 3 != 0 {
                        // Filler that no packet has: 10.{i}.x.x, 2001:db8:{i}::.
                        let [_, _, b, c] = (i as u32 + 7).to_be_bytes();
                        if i % 2 == 0 {
                            format!("11.{b}.{c}.0/24")
                        } else {
                            format!("2001:db8:{b:x}{c:02x}::/48")
                        }
                    } else {
                        addr_literal(rng, true)
                    }
                })
                .collect();
            format!("({var} in {{{}}})", members.join(", "))
        }
    }
}

fn leaf(rng: &mut Rng, options: &Options) -> String {
    match rng.below(6) {
        0 | 1 => rng.pick(&BOOL_VARS).to_string(),
        2 | 3 if options.v2_features() => int_var(rng, options).to_string(),
        2 | 3 => rng.pick(&PORT_VARS).to_string(),
        _ => literal(rng),
    }
}

fn literal(rng: &mut Rng) -> String {
    let value: u64 = match rng.below(8) {
        0 => 0,
        1 => 1,
        2 => u64::from(*rng.pick(&PORTS)),
        3 => *rng.pick(&[63, 64, 65, 127, 2, 3, 7]),
        4 => *rng.pick(&[
            i64::MAX as u64,
            i64::MIN as u64,
            u64::MAX,
            1 << 32,
            (1 << 31) - 1,
            1 << 31,
        ]),
        5 => rng.below(100_000),
        _ => rng.next(),
    };
    match rng.below(6) {
        0 => format!("{value:#x}"),
        1 => format!("{value:#X}").replacen("0x", "0X", 1),
        2 if value != 0 => format!("0{value:o}"),
        3 => format!("{value}u"),
        4 => format!("{value}UL"),
        _ => format!("{value}"),
    }
}

/// A random packet as a cgroup_skb program sees it: IPv4 (with options,
/// odd header lengths, fragments), IPv6 (extension header chains, some
/// longer than the limit, fragments), or not IP; often truncated. Always
/// long enough for the kernel's test run (20 bytes for IPv4, 40 for IPv6).
pub fn packet(rng: &mut Rng) -> Packet {
    match rng.below(20) {
        0..=10 => ipv4(rng),
        11..=18 => ipv6(rng),
        _ => Packet {
            ethertype: ETH_P_OTHER,
            data: (0..rng.below(60)).map(|_| rng.next() as u8).collect(),
        },
    }
}

fn protocol(rng: &mut Rng) -> u8 {
    let random = rng.next() as u8;
    *rng.pick(&[6, 6, 17, 17, 1, 58, 132, 0, 44, random])
}

fn transport(rng: &mut Rng, proto: u8) -> Vec<u8> {
    if matches!(proto, 1 | 58) && rng.chance(80) {
        // An ICMP header, type and code from the pools; the rest random.
        let mut t = vec![*rng.pick(&ICMP_TYPES), *rng.pick(&ICMP_CODES)];
        let len = 8 + rng.below(24);
        t.extend((2..len).map(|_| rng.next() as u8));
        return t;
    }
    let sport = *rng.pick(&PORTS);
    let dport = *rng.pick(&PORTS);
    let mut t = Vec::new();
    t.extend_from_slice(&sport.to_be_bytes());
    t.extend_from_slice(&dport.to_be_bytes());
    let len = match proto {
        6 => 20,
        17 => 8,
        _ => 8,
    };
    while t.len() < len {
        t.push(rng.next() as u8);
    }
    let payload = rng.below(24);
    t.extend((0..payload).map(|_| rng.next() as u8));
    t
}

fn ipv4(rng: &mut Rng) -> Packet {
    let proto = protocol(rng);
    let ihl: u8 = if rng.chance(80) {
        5
    } else {
        rng.below(16) as u8
    };
    let header_len = usize::from(ihl.max(5)) * 4;
    let mut p = vec![0u8; header_len];
    p[0] = 0x40 | ihl;
    if rng.chance(15) {
        // Fragment offset (and sometimes MF).
        let offset: u16 = if rng.chance(50) {
            0
        } else {
            1 + rng.below(0x1fff) as u16
        };
        let flags: u16 = if rng.chance(50) { 0x2000 } else { 0 };
        p[6..8].copy_from_slice(&(flags | offset).to_be_bytes());
    }
    p[8] = 64;
    p[9] = proto;
    for b in &mut p[12..] {
        *b = rng.next() as u8;
    }
    if rng.chance(85) {
        let (src, dst): ([u8; 4], [u8; 4]) = (*rng.pick(&ADDRS4), *rng.pick(&ADDRS4));
        p[12..16].copy_from_slice(&src);
        p[16..20].copy_from_slice(&dst);
    }
    p.extend(transport(rng, proto));
    let total = p.len() as u16;
    p[2..4].copy_from_slice(&total.to_be_bytes());
    truncate(rng, &mut p, 20);
    Packet::from_ip(p)
}

fn ipv6(rng: &mut Rng) -> Packet {
    let proto = protocol(rng);
    let mut p = vec![0u8; 40];
    p[0] = 0x60;
    for b in &mut p[8..40] {
        *b = rng.next() as u8;
    }
    if rng.chance(85) {
        let address = |rng: &mut Rng| {
            rng.pick(&ADDRS6)
                .parse::<std::net::Ipv6Addr>()
                .expect("the pool holds addresses")
                .octets()
        };
        p[8..24].copy_from_slice(&address(rng));
        p[24..40].copy_from_slice(&address(rng));
    }
    let count = match rng.below(10) {
        0..=3 => 0,
        4..=7 => 1 + rng.below(3),
        _ => 4 + rng.below(7),
    };
    let kinds = [0u8, 43, 60, 51, 44];
    let mut next_field = 6;
    for _ in 0..count {
        let kind = *rng.pick(&kinds);
        p[next_field] = kind;
        next_field = p.len();
        let len_field = rng.below(4) as u8;
        let size = match kind {
            44 => 8,
            51 => (usize::from(len_field) + 2) * 4,
            _ => (usize::from(len_field) + 1) * 8,
        };
        let mut h = vec![0u8; size];
        h[1] = len_field;
        if kind == 44 {
            let offset: u16 = if rng.chance(70) {
                0
            } else {
                1 + rng.below(0x1fff) as u16
            };
            h[2..4].copy_from_slice(&((offset << 3) | rng.below(2) as u16).to_be_bytes());
        }
        p.extend(h);
    }
    p[next_field] = proto;
    p.extend(transport(rng, proto));
    let payload = (p.len() - 40) as u16;
    p[4..6].copy_from_slice(&payload.to_be_bytes());
    truncate(rng, &mut p, 40);
    Packet::from_ip(p)
}

fn truncate(rng: &mut Rng, p: &mut Vec<u8>, min: usize) {
    if rng.chance(20) && p.len() > min {
        let keep = min + rng.below((p.len() - min) as u64) as usize;
        p.truncate(keep);
    }
}
