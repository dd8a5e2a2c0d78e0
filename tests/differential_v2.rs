//! The compiled program and the reference evaluator agree on the
//! language's second-version constructs: random IR expressions (built
//! here, without the parser) that read `proto`, `len`, `icmp_type`,
//! `icmp_code`, test integer sets and address prefixes, and mix them with
//! the rest of the language, meet packets chosen to exercise them
//! (truncated ICMP headers, fragments, IPv6 extension chains, IPv4
//! options, IPv4-mapped IPv6 addresses) and the random packets of
//! `common::generate`. Fixed seed; `PORTWALL_DIFF_SEED` and
//! `PORTWALL_DIFF_FILTERS` make a longer or different run.

mod common;

use common::generate::{self as gen_, Rng};
use common::kernel;
use common::packets::{self, Ext};
use portwall::eval;
use portwall::lang::check;
use portwall::lang::ir::{
    AddrVar, BinaryOp, Expr, Filter, IntSet, LogicOp, Prefix, PrefixSet, UnaryOp, Var,
};
use portwall::packet::{ETH_P_IP, ETH_P_IPV6, Packet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

const A4: [u8; 4] = [10, 0, 0, 1];
const B4: [u8; 4] = [192, 168, 1, 200];
const A6: [u8; 16] = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
const B6: [u8; 16] = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xab, 0xcd, 0, 2];
/// `::ffff:10.0.0.1`: IPv6, whatever IPv4 address it embeds.
const MAPPED: [u8; 16] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 1];

/// Packets written for the new variables, next to the random ones.
fn chosen_packets() -> Vec<Packet> {
    let tcp80 = packets::tcp_header(40000, 80);
    let udp53 = packets::udp_header(40000, 53, &[]);
    let echo6 = [128u8, 0, 0, 0, 0, 0, 0, 0];
    let frag = |offset_units| Ext::Fragment {
        offset_units,
        more: true,
    };
    vec![
        packets::ipv4_tcp(A4, B4, 40000, 80),
        packets::ipv4_udp(B4, A4, 53, 40000),
        packets::ipv4_icmp(A4, B4, 8, 0),
        packets::ipv4_icmp(B4, A4, 3, 3),
        packets::truncate(packets::ipv4_icmp(A4, B4, 8, 0), 23),
        packets::truncate(packets::ipv4_icmp(A4, B4, 8, 0), 24),
        packets::truncate(packets::ipv4_icmp(A4, B4, 11, 1), 20),
        packets::with_ipv4_fragment(packets::ipv4_icmp(A4, B4, 8, 0), 0, true),
        packets::with_ipv4_fragment(packets::ipv4_icmp(A4, B4, 8, 0), 7, false),
        packets::with_ipv4_fragment(packets::ipv4_udp(A4, B4, 1, 53), 3, true),
        packets::ipv4_with_options(8, 1, &[13, 0, 0, 0, 0, 0, 0, 0]),
        packets::truncate(packets::ipv4_with_options(8, 1, &[13, 0, 0, 0]), 34),
        packets::ipv4_with_options(15, 6, &tcp80),
        packets::ipv4_proto(A4, B4, 58, &echo6),
        packets::ipv4_proto(B4, B4, 132, &[0u8; 16]),
        packets::ipv6_tcp(A6, B6, 40000, 443),
        packets::ipv6_udp(B6, A6, 53, 1),
        packets::ipv6_icmp(A6, B6, 128, 0),
        packets::ipv6_icmp(B6, A6, 1, 4),
        packets::truncate(packets::ipv6_icmp(A6, B6, 135, 0), 43),
        packets::truncate(packets::ipv6_icmp(A6, B6, 135, 0), 44),
        packets::ipv6_proto(A6, B6, 1, &[8, 0, 0, 0]),
        packets::ipv6_tcp(MAPPED, A6, 1, 80),
        packets::ipv6_udp(A6, MAPPED, 1, 53),
        packets::ipv6_with_ext(
            A6,
            B6,
            &[
                Ext::HopByHop { len_units: 1 },
                Ext::DestOpts { len_units: 0 },
            ],
            58,
            &[135, 7, 0, 0, 0, 0, 0, 0],
        ),
        packets::truncate(
            packets::ipv6_with_ext(A6, B6, &[Ext::HopByHop { len_units: 0 }], 58, &echo6),
            51,
        ),
        packets::ipv6_with_ext(A6, B6, &[frag(0)], 58, &echo6),
        packets::ipv6_with_ext(A6, B6, &[frag(9)], 58, &echo6),
        packets::ipv6_with_ext(B6, A6, &[Ext::Ah { len_units: 1 }, frag(2)], 17, &udp53),
        packets::ipv6_with_ext(
            A6,
            B6,
            &[
                Ext::Routing { len_units: 0 },
                Ext::DestOpts { len_units: 2 },
            ],
            6,
            &tcp80,
        ),
        packets::non_ip(&[0x45; 40]),
        packets::non_ip(&[1, 2, 3]),
    ]
}

/// Values the variables take on these packets, so that comparisons and
/// sets hit as well as miss.
const INTERESTING: [i64; 18] = [
    0, 1, 3, 6, 8, 17, 20, 28, 40, 53, 58, 60, 80, 128, 135, 443, 40000, 65535,
];

struct ExprGen<'a> {
    rng: &'a mut Rng,
    /// Addresses of the packets, for prefixes that match some of them.
    v4: Vec<u32>,
    v6: Vec<u128>,
}

impl ExprGen<'_> {
    fn expr(&mut self, depth: u32) -> Expr {
        if depth == 0 || self.rng.chance(15) {
            return self.leaf();
        }
        let d = depth - 1;
        match self.rng.below(12) {
            0 => {
                let op = *self
                    .rng
                    .pick(&[UnaryOp::Not, UnaryOp::BitNot, UnaryOp::Neg]);
                Expr::Unary(op, Box::new(self.expr(d)))
            }
            1..=3 => {
                let op = *self.rng.pick(&[
                    BinaryOp::Eq,
                    BinaryOp::Ne,
                    BinaryOp::Lt,
                    BinaryOp::Le,
                    BinaryOp::Gt,
                    BinaryOp::Ge,
                ]);
                let b = if self.rng.chance(60) {
                    Expr::Const(*self.rng.pick(&INTERESTING))
                } else {
                    self.expr(d)
                };
                Expr::Binary(op, Box::new(self.expr(d)), Box::new(b))
            }
            4 => {
                let op = *self.rng.pick(&[LogicOp::And, LogicOp::Or]);
                let n = 2 + self.rng.below(3);
                Expr::Logic(op, (0..n).map(|_| self.expr(d)).collect())
            }
            5 => Expr::Cond(
                Box::new(self.expr(d)),
                Box::new(self.expr(d)),
                Box::new(self.expr(d)),
            ),
            6..=7 => {
                let set = self.int_set();
                Expr::InSet(Box::new(self.expr(d)), set)
            }
            8 => self.addr_in(),
            _ => {
                let op = *self.rng.pick(&[
                    BinaryOp::Mul,
                    BinaryOp::Div,
                    BinaryOp::Rem,
                    BinaryOp::Add,
                    BinaryOp::Sub,
                    BinaryOp::Shl,
                    BinaryOp::Shr,
                    BinaryOp::BitAnd,
                    BinaryOp::BitXor,
                    BinaryOp::BitOr,
                ]);
                Expr::Binary(op, Box::new(self.expr(d)), Box::new(self.expr(d)))
            }
        }
    }

    fn leaf(&mut self) -> Expr {
        match self.rng.below(10) {
            0..=4 => Expr::Var(*self.rng.pick(&[
                Var::Proto,
                Var::Len,
                Var::IcmpType,
                Var::IcmpCode,
                Var::Proto,
                Var::Len,
                Var::IcmpType,
                Var::IcmpCode,
                Var::DstPort,
                Var::SrcPort,
            ])),
            5 => Expr::Var(*self.rng.pick(&Var::ALL)),
            6 => {
                let set = self.int_set();
                let var = *self.rng.pick(&Var::ALL);
                Expr::InSet(Box::new(Expr::Var(var)), set)
            }
            7 => self.addr_in(),
            _ => Expr::Const(match self.rng.below(4) {
                0 => self.rng.next() as i64,
                _ => *self.rng.pick(&INTERESTING),
            }),
        }
    }

    fn int_set(&mut self) -> Arc<IntSet> {
        let n = self.rng.below(6);
        let ranges: Vec<(i64, i64)> = (0..n)
            .map(|_| {
                let lo = match self.rng.below(6) {
                    0 => self.rng.next() as i64,
                    1 => -(self.rng.below(1000) as i64),
                    _ => *self.rng.pick(&INTERESTING),
                };
                let hi = match self.rng.below(5) {
                    0 => lo,
                    1 => lo.saturating_add(self.rng.below(100) as i64),
                    2 => i64::MAX,
                    // Ends exactly on a value the variables take.
                    3 => *self.rng.pick(&INTERESTING),
                    _ => lo.saturating_add(1 << (self.rng.below(40) as i64)),
                };
                (lo.min(hi), lo.max(hi))
            })
            .collect();
        Arc::new(IntSet::from_ranges(ranges))
    }

    fn addr_in(&mut self) -> Expr {
        let var = *self.rng.pick(&[AddrVar::Src, AddrVar::Dst]);
        let n = 1 + self.rng.below(4);
        let prefixes: Vec<Prefix> = (0..n)
            .map(|_| {
                if self.rng.chance(50) {
                    let a = match self.rng.chance(80) {
                        true => *self.rng.pick(&self.v4),
                        false => self.rng.next() as u32,
                    };
                    let len = *self.rng.pick(&[32, 32, 31, 24, 16, 8, 1, 0]);
                    Prefix::new(IpAddr::V4(Ipv4Addr::from(a)), len).expect("IPv4 length")
                } else {
                    let a = match self.rng.chance(80) {
                        true => *self.rng.pick(&self.v6),
                        false => (u128::from(self.rng.next()) << 64) | u128::from(self.rng.next()),
                    };
                    let len = *self
                        .rng
                        .pick(&[128, 128, 127, 112, 96, 65, 64, 63, 48, 32, 1, 0]);
                    Prefix::new(IpAddr::V6(Ipv6Addr::from(a)), len).expect("IPv6 length")
                }
            })
            .collect();
        Expr::AddrIn(var, Arc::new(PrefixSet::new(prefixes)))
    }
}

/// The source and destination addresses in packets long enough to have
/// them, as the prefix sets store them.
fn addresses(packets: &[Packet]) -> (Vec<u32>, Vec<u128>) {
    let (mut v4, mut v6) = (Vec::new(), Vec::new());
    for p in packets {
        let d = &p.data;
        match p.ethertype {
            ETH_P_IP if d.len() >= 20 => {
                for at in [12, 16] {
                    v4.push(u32::from_be_bytes(d[at..at + 4].try_into().unwrap()));
                }
            }
            ETH_P_IPV6 if d.len() >= 40 => {
                for at in [8, 24] {
                    v6.push(u128::from_be_bytes(d[at..at + 16].try_into().unwrap()));
                }
            }
            _ => {}
        }
    }
    (v4, v6)
}

#[test]
fn new_constructs_agree_with_the_evaluator() {
    let seed = gen_::env_u64("PORTWALL_DIFF_SEED", 0x5eed_0002);
    let filters = gen_::env_u64("PORTWALL_DIFF_FILTERS", 300);
    let packets_per_filter = 40;
    let mut rng = Rng::new(seed);
    let mut packets = chosen_packets();
    assert!(packets.iter().all(kernel::testable));
    let chosen = packets.len();
    packets.extend((0..200).map(|_| gen_::packet(&mut rng)));
    let (v4, v6) = addresses(&packets);

    // Build every filter first, so unprivileged runs still compile them.
    let mut built = Vec::new();
    for i in 0..filters {
        let depth = 2 + (i % 5) as u32;
        let expr = ExprGen {
            rng: &mut rng,
            v4: v4.clone(),
            v6: v6.clone(),
        }
        .expr(depth);
        let filter = Filter {
            need: check::need_of(&expr),
            expr,
            direction: None,
        };
        let program = portwall::compiler::compile(&filter)
            .unwrap_or_else(|e| panic!("seed {seed:#x}: compile {:?}: {e}", filter.expr));
        built.push((filter, program));
    }
    if !kernel::available("new_constructs_agree_with_the_evaluator") {
        return;
    }
    let mut cases = 0u64;
    for (filter, program) in &built {
        let text = format!("{:?}", filter.expr);
        // Both read paths: see `kernel::load_both`.
        let loaded = kernel::load_both(filter, &text);
        // The chosen packets every time, random ones after them.
        let picks = (0..chosen)
            .chain((0..packets_per_filter).map(|_| rng.below(packets.len() as u64) as usize));
        for p in picks {
            let packet = &packets[p];
            let expected = eval::evaluate(filter, packet).verdict();
            for (path, loaded) in &loaded {
                let got = kernel::verdict(loaded, packet);
                assert_eq!(
                    got, expected,
                    "seed {seed:#x}: filter {text} on packet {:02x?} (ethertype {:#06x}): \
                     kernel {got:?} ({path:?} path), evaluator {expected:?}\n{program}",
                    packet.data, packet.ethertype
                );
            }
            cases += 1;
        }
    }
    println!(
        "differential v2: {} filters, {cases} (filter, packet) cases agree",
        built.len()
    );
}
