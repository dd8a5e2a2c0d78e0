//! The language's second-version constructs, from IR built here (no
//! parser involved): `proto`, `len`, `icmp_type`, `icmp_code`, integer
//! sets and address prefixes, with verdicts worked out by hand from the
//! specification (`lang::ir`, README). Each case runs through the
//! reference evaluator and the kernel, and through the compiler's register
//! and stack placement, set lookups inside arithmetic (which save live
//! temporaries) and values that do not fit an immediate.

mod common;

use common::kernel;
use common::packets::{self, Ext};
use portwall::eval::{self, Verdict};
use portwall::lang::check;
use portwall::lang::ir::{
    AddrVar, BinaryOp, Expr, Filter, IntSet, LogicOp, Prefix, PrefixSet, UnaryOp, Var,
};
use portwall::packet::Packet;
use std::net::IpAddr;
use std::sync::Arc;

use Verdict::{Drop as D, Forward as F};

const A4: [u8; 4] = [10, 0, 0, 1];
const B4: [u8; 4] = [192, 168, 1, 200];
const A6: [u8; 16] = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
const B6: [u8; 16] = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xab, 0xcd, 0, 2];
/// `::ffff:10.0.0.1`, an IPv4-mapped IPv6 address: not IPv4.
const MAPPED: [u8; 16] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 1];

fn var(v: Var) -> Expr {
    Expr::Var(v)
}
fn c(n: i64) -> Expr {
    Expr::Const(n)
}
fn bin(op: BinaryOp, a: Expr, b: Expr) -> Expr {
    Expr::Binary(op, Box::new(a), Box::new(b))
}
fn eq(a: Expr, b: Expr) -> Expr {
    bin(BinaryOp::Eq, a, b)
}
fn and(terms: Vec<Expr>) -> Expr {
    Expr::Logic(LogicOp::And, terms)
}
fn not(a: Expr) -> Expr {
    Expr::Unary(UnaryOp::Not, Box::new(a))
}
fn in_set(a: Expr, ranges: &[(i64, i64)]) -> Expr {
    Expr::InSet(
        Box::new(a),
        Arc::new(IntSet::from_ranges(ranges.iter().copied())),
    )
}
fn addr_in(addr: AddrVar, prefixes: &[&str]) -> Expr {
    let set = PrefixSet::new(prefixes.iter().map(|p| {
        let (a, len) = p.split_once('/').expect("prefix/len");
        let a: IpAddr = a.parse().expect("address");
        Prefix::new(a, len.parse().expect("length")).expect("prefix")
    }));
    Expr::AddrIn(addr, Arc::new(set))
}

/// The filter the checker would make.
fn filter(expr: Expr) -> Filter {
    Filter {
        need: check::need_of(&expr),
        expr,
        direction: None,
    }
}

struct Case {
    name: &'static str,
    filter: Filter,
    packet: Packet,
    expect: Verdict,
}

fn case(name: &'static str, expr: Expr, packet: Packet, expect: Verdict) -> Case {
    Case {
        name,
        filter: filter(expr),
        packet,
        expect,
    }
}

fn tcp4(dport: u16) -> Packet {
    packets::ipv4_tcp(A4, B4, 40000, dport)
}
fn udp4(dport: u16) -> Packet {
    packets::ipv4_udp(A4, B4, 40000, dport)
}
fn tcp6(dport: u16) -> Packet {
    packets::ipv6_tcp(A6, B6, 40000, dport)
}
fn frag6(offset_units: u16, proto: u8, transport: &[u8]) -> Packet {
    packets::ipv6_with_ext(
        A6,
        B6,
        &[Ext::Fragment {
            offset_units,
            more: false,
        }],
        proto,
        transport,
    )
}

/// Bounds beyond 32-bit immediates, negative ones, and a gap of one.
const WIDE: &[(i64, i64)] = &[(i64::MIN, -21), (-19, -19), (1 << 40, i64::MAX)];

fn table() -> Vec<Case> {
    use AddrVar::{Dst, Src};
    use Var::*;
    let udp53 = packets::udp_header(40000, 53, &[]);
    let echo = [8u8, 0, 0, 0, 0, 0, 0, 0];
    vec![
        // proto: the real final protocol, 0 for non-IP.
        case("proto tcp", eq(var(Proto), c(6)), tcp4(80), F),
        case("proto udp is not 6", eq(var(Proto), c(6)), udp4(53), D),
        case("proto v6 tcp", eq(var(Proto), c(6)), tcp6(80), F),
        case(
            "proto of ICMPv6 is 58, not normalized",
            eq(var(Proto), c(58)),
            packets::ipv6_icmp(A6, B6, 128, 0),
            F,
        ),
        case(
            "proto 1 in IPv6 stays 1",
            eq(var(Proto), c(1)),
            packets::ipv6_proto(A6, B6, 1, &echo),
            F,
        ),
        case(
            "proto behind extension headers",
            eq(var(Proto), c(17)),
            packets::ipv6_with_ext(
                A6,
                B6,
                &[
                    Ext::HopByHop { len_units: 1 },
                    Ext::DestOpts { len_units: 0 },
                ],
                17,
                &udp53,
            ),
            F,
        ),
        case(
            "proto of an IPv4 non-first fragment",
            and(vec![eq(var(Proto), c(17)), not(var(Udp))]),
            packets::with_ipv4_fragment(udp4(53), 20, false),
            F,
        ),
        case(
            "proto of an IPv6 non-first fragment is its next header",
            and(vec![eq(var(Proto), c(17)), not(var(Udp))]),
            frag6(3, 17, &udp53),
            F,
        ),
        case(
            "proto of an IPv6 first fragment",
            and(vec![eq(var(Proto), c(17)), var(Udp)]),
            frag6(0, 17, &udp53),
            F,
        ),
        case(
            "proto of non-IP is 0",
            eq(var(Proto), c(0)),
            packets::non_ip(&[6u8; 40]),
            F,
        ),
        case(
            "proto SCTP",
            eq(var(Proto), c(132)),
            packets::ipv4_proto(A4, B4, 132, &[0u8; 12]),
            F,
        ),
        // len: skb->len from the IP header on.
        case("len of IPv4 TCP SYN", eq(var(Len), c(40)), tcp4(80), F),
        case("len is not 41", eq(var(Len), c(41)), tcp4(80), D),
        case("len of IPv6 TCP SYN", eq(var(Len), c(60)), tcp6(80), F),
        case(
            "len of non-IP",
            eq(var(Len), c(33)),
            packets::non_ip(&[0u8; 33]),
            F,
        ),
        case(
            "len of a short capture is what is there",
            eq(var(Len), c(30)),
            packets::truncate(tcp4(80), 30),
            F,
        ),
        // icmp_type, icmp_code.
        case(
            "echo request",
            and(vec![eq(var(IcmpType), c(8)), eq(var(IcmpCode), c(0))]),
            packets::ipv4_icmp(A4, B4, 8, 0),
            F,
        ),
        case(
            "port unreachable code",
            and(vec![eq(var(IcmpType), c(3)), eq(var(IcmpCode), c(3))]),
            packets::ipv4_icmp(A4, B4, 3, 3),
            F,
        ),
        case(
            "ICMPv6 echo request",
            eq(var(IcmpType), c(128)),
            packets::ipv6_icmp(A6, B6, 128, 0),
            F,
        ),
        case(
            "ICMPv6 behind extension headers",
            and(vec![eq(var(IcmpType), c(135)), eq(var(IcmpCode), c(7))]),
            packets::ipv6_with_ext(
                A6,
                B6,
                &[Ext::HopByHop { len_units: 0 }],
                58,
                &[135, 7, 0, 0, 0, 0, 0, 0],
            ),
            F,
        ),
        case(
            "ICMP type of TCP is 0",
            eq(var(IcmpType), c(0)),
            tcp4(80),
            F,
        ),
        case(
            "protocol 1 in IPv6 is not ICMP: type 0",
            eq(var(IcmpType), c(0)),
            packets::ipv6_proto(A6, B6, 1, &echo),
            F,
        ),
        case(
            "protocol 58 in IPv4 is not ICMP: type 0",
            eq(var(IcmpType), c(0)),
            packets::ipv4_proto(A4, B4, 58, &[128, 0, 0, 0]),
            F,
        ),
        case(
            "ICMP in a non-first fragment: type 0",
            eq(var(IcmpType), c(0)),
            packets::with_ipv4_fragment(packets::ipv4_icmp(A4, B4, 8, 0), 1, false),
            F,
        ),
        case(
            "truncated ICMP header drops when its bytes are needed",
            eq(var(IcmpType), c(8)),
            packets::truncate(packets::ipv4_icmp(A4, B4, 8, 0), 23),
            D,
        ),
        case(
            "4 ICMP bytes are enough",
            eq(var(IcmpCode), c(0)),
            packets::truncate(packets::ipv4_icmp(A4, B4, 8, 0), 24),
            F,
        ),
        case(
            "truncated ICMPv6 header drops",
            eq(var(IcmpType), c(128)),
            packets::truncate(packets::ipv6_icmp(A6, B6, 128, 0), 42),
            D,
        ),
        case(
            "a truncated ICMP header does not matter to proto",
            eq(var(Proto), c(1)),
            packets::truncate(packets::ipv4_icmp(A4, B4, 8, 0), 22),
            F,
        ),
        // Integer sets.
        case(
            "port in a set",
            in_set(var(DstPort), &[(53, 53), (80, 90), (443, 443)]),
            tcp4(85),
            F,
        ),
        case(
            "port at a range's end",
            in_set(var(DstPort), &[(53, 53), (80, 90), (443, 443)]),
            tcp4(90),
            F,
        ),
        case(
            "port between ranges",
            in_set(var(DstPort), &[(53, 53), (80, 90), (443, 443)]),
            tcp4(91),
            D,
        ),
        case(
            "port below every range",
            in_set(var(DstPort), &[(53, 53), (80, 90), (443, 443)]),
            tcp4(22),
            D,
        ),
        case(
            "not in",
            not(in_set(var(DstPort), &[(53, 53), (80, 90)])),
            tcp4(22),
            F,
        ),
        case(
            "negative and huge bounds",
            and(vec![
                in_set(bin(BinaryOp::Sub, var(DstPort), c(101)), WIDE),
                in_set(bin(BinaryOp::Sub, var(DstPort), c(99)), WIDE),
                in_set(bin(BinaryOp::Shl, var(DstPort), c(40)), WIDE),
                in_set(
                    bin(BinaryOp::Shl, var(DstPort), c(40)),
                    &[(80 << 40, 80 << 40)],
                ),
            ]),
            tcp4(80),
            F,
        ),
        case(
            "-20 is between the ranges",
            in_set(bin(BinaryOp::Sub, var(DstPort), c(100)), WIDE),
            tcp4(80),
            D,
        ),
        case(
            "a set as a value, inside arithmetic with live temporaries",
            eq(
                bin(
                    BinaryOp::Add,
                    bin(BinaryOp::Mul, var(SrcPort), c(2)),
                    bin(
                        BinaryOp::Add,
                        in_set(var(DstPort), &[(80, 80)]),
                        bin(BinaryOp::Mul, in_set(var(Proto), &[(6, 6)]), c(10)),
                    ),
                ),
                c(80011),
            ),
            tcp4(80),
            F,
        ),
        case(
            "len in a set (a stack-homed variable)",
            and(vec![
                eq(var(DstPort), c(80)),
                eq(var(SrcPort), c(40000)),
                in_set(var(Len), &[(40, 40)]),
                in_set(var(Proto), &[(6, 6)]),
            ]),
            tcp4(80),
            F,
        ),
        case(
            "four integer variables, two on the stack",
            and(vec![
                eq(var(DstPort), c(80)),
                eq(var(SrcPort), c(40000)),
                eq(var(Len), c(40)),
                eq(bin(BinaryOp::Add, var(Proto), var(Len)), c(46)),
            ]),
            tcp4(80),
            F,
        ),
        // Addresses.
        case(
            "IPv4 destination in a /24",
            addr_in(Dst, &["192.168.1.0/24"]),
            tcp4(80),
            F,
        ),
        case(
            "IPv4 destination, exact",
            addr_in(Dst, &["192.168.1.200/32"]),
            tcp4(80),
            F,
        ),
        case(
            "IPv4 destination, one off",
            addr_in(Dst, &["192.168.1.201/32"]),
            tcp4(80),
            D,
        ),
        case(
            "IPv4 source in 10/8 and not the destination",
            and(vec![
                addr_in(Src, &["10.0.0.0/8"]),
                not(addr_in(Dst, &["10.0.0.0/8"])),
            ]),
            tcp4(80),
            F,
        ),
        case(
            "0.0.0.0/0 holds every IPv4 address",
            addr_in(Src, &["0.0.0.0/0"]),
            tcp4(80),
            F,
        ),
        case(
            "an IPv4 prefix never matches IPv6",
            addr_in(Src, &["0.0.0.0/0"]),
            tcp6(80),
            D,
        ),
        case(
            "IPv4-mapped IPv6 is not IPv4",
            addr_in(Src, &["10.0.0.0/8"]),
            packets::ipv6_tcp(MAPPED, B6, 1, 2),
            D,
        ),
        case(
            "IPv4-mapped IPv6 as an IPv6 prefix",
            addr_in(Src, &["::ffff:0.0.0.0/96"]),
            packets::ipv6_tcp(MAPPED, B6, 1, 2),
            F,
        ),
        case(
            "IPv6 source in 2001:db8::/32",
            addr_in(Src, &["2001:db8::/32"]),
            tcp6(80),
            F,
        ),
        case(
            "IPv6 destination in a /112 (mask in the low half)",
            addr_in(Dst, &["fd00::abcd:0/112"]),
            tcp6(80),
            F,
        ),
        case(
            "IPv6 destination outside a /127",
            addr_in(Dst, &["fd00::abcd:0/127"]),
            tcp6(80),
            D,
        ),
        case(
            "IPv6 destination, exact, among others",
            addr_in(
                Dst,
                &[
                    "fd00::abcd:3/128",
                    "10.0.0.0/8",
                    "fd00::abcd:2/128",
                    "::/128",
                ],
            ),
            tcp6(80),
            F,
        ),
        case(
            "no address in non-IP",
            not(addr_in(Src, &["0.0.0.0/0", "::/0"])),
            packets::non_ip(&[0u8; 40]),
            F,
        ),
        case(
            "an address set as a value next to live temporaries",
            eq(
                bin(
                    BinaryOp::Add,
                    var(DstPort),
                    bin(
                        BinaryOp::Mul,
                        addr_in(Dst, &["192.168.0.0/16"]),
                        bin(BinaryOp::Add, addr_in(Src, &["10.0.0.1/32"]), c(1)),
                    ),
                ),
                c(82),
            ),
            tcp4(80),
            F,
        ),
    ]
}

#[test]
fn evaluator_follows_the_table() {
    let failures: Vec<String> = table()
        .iter()
        .filter_map(|c| {
            let got = eval::evaluate(&c.filter, &c.packet).verdict();
            (got != c.expect)
                .then(|| format!("{}: expected {:?}, evaluator {got:?}", c.name, c.expect))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn new_constructs_in_the_kernel() {
    let cases = table();
    // Compile everything first, so unprivileged runs still check the
    // code generator.
    for c in &cases {
        portwall::compiler::compile(&c.filter)
            .unwrap_or_else(|e| panic!("{}: compile: {e}", c.name));
    }
    if !kernel::available("new_constructs_in_the_kernel") {
        return;
    }
    let mut failures = Vec::new();
    for c in &cases {
        assert!(kernel::testable(&c.packet), "{}: packet too short", c.name);
        // Both read paths: see `kernel::load_both`.
        for (path, loaded) in kernel::load_both(&c.filter, c.name) {
            let got = kernel::verdict(&loaded, &c.packet);
            if got != c.expect {
                failures.push(format!(
                    "{}: expected {:?}, kernel {got:?} ({path:?} path)",
                    c.name, c.expect
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    println!("codegen v2: {} cases agree in the kernel", cases.len());
}

/// With counting, the context is saved at the start and the slow path
/// shares that cell: verdicts and counters are right on both read paths.
#[test]
fn counting_on_both_read_paths() {
    use portwall::compiler::{self, CompileOptions};
    use portwall::lang::ir::Direction;
    use portwall::lang::parse;

    let text = "udp && dst_port == 53 && src_ip in {10.0.0.0/8}";
    let filter = check::check(&parse::parse(text).unwrap()).unwrap();
    let objects: Vec<(bool, Vec<u8>)> = [false, true]
        .into_iter()
        .map(|force_slow_path| {
            let options = CompileOptions {
                force_slow_path,
                ..CompileOptions::default()
            };
            let (_, object) = compiler::managed_object_with(
                &filter,
                Some(Direction::Ingress),
                "pw_test_meta",
                8,
                &options,
            )
            .expect("compiles");
            (force_slow_path, object)
        })
        .collect();
    if !kernel::available("counting_on_both_read_paths") {
        return;
    }
    for (slow, object) in objects {
        let loaded = portwall::kernel::load(&object, compiler::PROGRAM_NAME)
            .unwrap_or_else(|e| panic!("slow path {slow}: {e:#}"));
        // 28 bytes, forwarded; 40 bytes, dropped; 28 bytes, dropped.
        assert_eq!(kernel::verdict(&loaded, &udp4(53)), F, "slow path {slow}");
        assert_eq!(kernel::verdict(&loaded, &tcp4(53)), D, "slow path {slow}");
        let elsewhere = packets::ipv4_udp(B4, A4, 40000, 53);
        assert_eq!(kernel::verdict(&loaded, &elsewhere), D, "slow path {slow}");
        let map = loaded
            .ebpf()
            .map(compiler::COUNTERS_MAP)
            .expect("counters map");
        let counters = aya::maps::PerCpuArray::<_, [u64; 2]>::try_from(map).expect("per-CPU array");
        let sum = portwall::filters::sum_counters(&counters).expect("counters read");
        let i = sum.ingress;
        assert_eq!(
            (
                i.forwarded_packets,
                i.forwarded_bytes,
                i.dropped_packets,
                i.dropped_bytes
            ),
            (1, 28, 2, 68),
            "slow path {slow}"
        );
    }
}
