//! Generators of random filters and packets for differential tests.
//!
//! Deterministic for a seed, so a CI failure reproduces; the seed and
//! the number of cases come from the environment for longer runs
//! (`PORTWALL_DIFF_SEED`, `PORTWALL_DIFF_FILTERS`).

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

const BOOL_VARS: [&str; 5] = ["ip", "ipv6", "tcp", "udp", "icmp"];
const PORT_VARS: [&str; 2] = ["dst_port", "src_port"];

/// A random filter in the v1 language, as source text. Every operator,
/// the word forms, all literal spellings and `?:` appear; parentheses are
/// written out so the text means what the generator built.
pub fn filter(rng: &mut Rng, depth: u32) -> String {
    if depth == 0 || rng.chance(15) {
        return leaf(rng);
    }
    let d = depth - 1;
    match rng.below(10) {
        0 => {
            let op = rng.pick(&["!", "~", "-", "+", "not "]);
            format!("{op}({})", filter(rng, d))
        }
        1..=3 => {
            let op = rng.pick(&["==", "!=", "<", "<=", ">", ">="]);
            // Mostly a port against a port-like value, so both outcomes occur.
            if rng.chance(60) {
                let var = rng.pick(&PORT_VARS);
                let port = rng.pick(&PORTS);
                format!("({var} {op} {port})")
            } else {
                format!("({} {op} {})", filter(rng, d), filter(rng, d))
            }
        }
        4 | 5 => {
            let op = rng.pick(&["&&", "||", "and", "or"]);
            let n = 2 + rng.below(3);
            let terms: Vec<String> = (0..n).map(|_| filter(rng, d)).collect();
            format!("({})", terms.join(&format!(" {op} ")))
        }
        6 => format!(
            "({} ? {} : {})",
            filter(rng, d),
            filter(rng, d),
            filter(rng, d)
        ),
        7 => {
            // Divisors that depend on the packet, and so are sometimes 0
            // at run time (a constant 0 divisor is a checker error).
            let op = rng.pick(&["/", "%"]);
            let var = rng.pick(&PORT_VARS);
            let port = rng.pick(&PORTS);
            format!("({} {op} ({var} - {port}))", filter(rng, d))
        }
        _ => {
            let op = rng.pick(&["*", "/", "%", "+", "-", "<<", ">>", "&", "^", "|"]);
            format!("({} {op} {})", filter(rng, d), filter(rng, d))
        }
    }
}

fn leaf(rng: &mut Rng) -> String {
    match rng.below(6) {
        0 | 1 => rng.pick(&BOOL_VARS).to_string(),
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
