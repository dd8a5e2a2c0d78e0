//! The checker: diagnostics as the user sees them (exact text; the type
//! errors are in `lang_syntax.rs` with the other diagnostics), name and
//! direction resolution, lowering of sets and addresses, needs, and the
//! cost of checking very large sets.

use portwall::lang::ir::{
    AddrVar, BinaryOp, Direction, Expr, Filter, IntSet, Need, Prefix, PrefixSet, UnaryOp, Var,
};
use portwall::lang::{check, parse};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn error(source: &str) -> String {
    let ast = parse::parse(source).expect("parses");
    let err = check::check(&ast).expect_err("is rejected");
    err.render(source, "filter")
}

#[test]
fn unknown_name_suggests_the_closest_variable() {
    assert_eq!(
        error("tcp && dst_prot == 80"),
        "error: unknown name `dst_prot`\n --> filter:1:8\n  |\n1 | tcp && dst_prot == 80\n  |        ^^^^^^^^\n  = help: did you mean `dst_port`?\n"
    );
    assert!(error("TCP").contains("did you mean `tcp`?"));
    assert!(
        error("ipv4").contains("did you mean `ip`?")
            || error("ipv4").contains("did you mean `ipv6`?")
    );
}

#[test]
fn unknown_name_far_from_any_lists_the_variables() {
    assert_eq!(
        error("x\n  && bandwidth > 5"),
        "error: unknown name `x`\n --> filter:1:1\n  |\n1 | x\n  | ^\n  = help: the variables are `ip`, `ipv6`, `tcp`, `udp`, `icmp`, `dst_port`, `src_port`, `proto`, `len`, `icmp_type`, `icmp_code`, `src_ip`, `dst_ip`, `local_port`, `remote_port`, `local_ip`, `remote_ip`\n"
    );
    let far = error("tcp && bandwidth > 5");
    assert!(far.contains("unknown name `bandwidth`"), "{far}");
    assert!(far.contains("1:8"), "{far}");
}

#[test]
fn common_mistakes_get_specific_help() {
    assert!(error("true").contains("write 1 for true"));
    assert!(error("tcp && false").contains("write 0 for false"));
    assert!(error("port == 80").contains("write `dst_port` or `src_port`"));
    assert!(error("addr == 1").contains("write `dst_ip` or `src_ip`"));
    assert!(error("protocol == 6").contains("write `proto`"));
    assert!(error("length > 5").contains("write `len`"));
    for (typo, meant) in [
        ("dst_ipp", "dst_ip"),
        ("icmptype", "icmp_type"),
        ("icmp_cod", "icmp_code"),
        ("local_prt", "local_port"),
        ("remote_ips", "remote_ip"),
        ("prot", "proto"),
    ] {
        let e = error(&format!("{typo} == 1"));
        assert!(e.contains(&format!("did you mean `{meant}`?")), "{e}");
    }
}

#[test]
fn constant_zero_divisors_are_rejected_where_they_are() {
    assert_eq!(
        error("dst_port / (3 - 3)"),
        "error: division by zero: this divisor is always 0\n --> filter:1:12\n  |\n1 | dst_port / (3 - 3)\n  |            ^^^^^^^\n"
    );
    assert!(error("src_port % 0").contains("remainder by zero"));
    assert!(error("src_port % (1 ? 0 : 5)").contains("remainder by zero"));
    // A divisor that depends on the packet is fine, even if it can be 0.
    assert!(check::check(&parse::parse("src_port / (dst_port - 80)").unwrap()).is_ok());
}

#[test]
fn needs_follow_the_variables_mentioned() {
    use portwall::lang::ir::Need;
    let need = |s: &str| check::check(&parse::parse(s).unwrap()).unwrap().need;
    assert_eq!(need("1"), Need::NOTHING);
    assert_eq!(need("ip || ipv6"), Need::NOTHING);
    assert_eq!(need("ip && tcp"), Need::NETWORK);
    assert_eq!(need("icmp"), Need::NETWORK);
    assert_eq!(need("udp && src_port == 5"), Need::PORTS);
    // Mentioned counts, even where simplification removes it.
    assert_eq!(need("0 && dst_port == 1"), Need::PORTS);
    assert_eq!(need("len > 100"), Need::NOTHING);
    assert_eq!(need("proto == 132"), Need::NETWORK);
    assert_eq!(need("icmp_type == 8"), Need::ICMP);
    assert_eq!(need("icmp && icmp_code in {0, 1}"), Need::ICMP);
    assert_eq!(need("dst_ip == ::1"), Need::NETWORK);
    assert_eq!(need("ip && src_ip in {}"), Need::NETWORK);
    assert_eq!(need("dst_port in 1..1023"), Need::PORTS);
    assert_eq!(
        need("icmp_type == 3 || dst_port == 53"),
        Need {
            network: true,
            ports: true,
            icmp: true
        }
    );
}

fn checked(source: &str) -> Filter {
    check::check(&parse::parse(source).unwrap()).unwrap_or_else(|e| panic!("{e}"))
}

fn checked_for(source: &str, direction: Direction) -> Filter {
    check::check_with(&parse::parse(source).unwrap(), Some(direction))
        .unwrap_or_else(|e| panic!("{e}"))
}

fn var(v: Var) -> Box<Expr> {
    Box::new(Expr::Var(v))
}

fn int_set(ranges: &[(i64, i64)]) -> Arc<IntSet> {
    Arc::new(IntSet::from_ranges(ranges.iter().copied()))
}

#[test]
fn integer_sets_lower_to_normalized_sets() {
    assert_eq!(
        checked("dst_port in {443, 53, 80..90, 85, 91}").expr,
        Expr::InSet(
            var(Var::DstPort),
            int_set(&[(53, 53), (80, 91), (443, 443)])
        )
    );
    assert_eq!(
        checked("len in -5..-1").expr,
        Expr::InSet(var(Var::Len), int_set(&[(-5, -1)]))
    );
    // A literal above i64::MAX wraps, as outside sets: this is {-1}.
    assert_eq!(
        checked("proto in {0xffffffffffffffff}").expr,
        Expr::InSet(var(Var::Proto), int_set(&[(-1, -1)]))
    );
    assert_eq!(
        checked("icmp_type in {}").expr,
        Expr::InSet(var(Var::IcmpType), int_set(&[]))
    );
    // `in` binds tighter than `!` and `+`.
    assert_eq!(
        checked("!icmp_code in {0} + 1").expr,
        Expr::Binary(
            BinaryOp::Add,
            Box::new(Expr::Unary(
                UnaryOp::Not,
                Box::new(Expr::InSet(var(Var::IcmpCode), int_set(&[(0, 0)])))
            )),
            Box::new(Expr::Const(1))
        )
    );
    let wrapped = error("len in 0..0xffffffffffffffff");
    assert!(
        wrapped.contains("empty range: 0 is above 18446744073709551615"),
        "{wrapped}"
    );
    assert!(
        wrapped.contains("numbers above 9223372036854775807 are negative"),
        "{wrapped}"
    );
}

fn v4(a: [u8; 4], len: u8) -> Prefix {
    Prefix::new(std::net::IpAddr::from(a), len).unwrap()
}

fn v6(text: &str, len: u8) -> Prefix {
    Prefix::new(text.parse().unwrap(), len).unwrap()
}

#[test]
fn address_tests_lower_to_prefix_sets() {
    let one = |p: Prefix| Arc::new(PrefixSet::new([p]));
    assert_eq!(
        checked("dst_ip == 10.0.0.1").expr,
        Expr::AddrIn(AddrVar::Dst, one(v4([10, 0, 0, 1], 32)))
    );
    assert_eq!(
        checked("10.0.0.1 == src_ip").expr,
        Expr::AddrIn(AddrVar::Src, one(v4([10, 0, 0, 1], 32)))
    );
    assert_eq!(
        checked("src_ip != fd00::1").expr,
        Expr::Unary(
            UnaryOp::Not,
            Box::new(Expr::AddrIn(AddrVar::Src, one(v6("fd00::1", 128))))
        )
    );
    assert_eq!(
        checked("::1 != dst_ip").expr,
        Expr::Unary(
            UnaryOp::Not,
            Box::new(Expr::AddrIn(AddrVar::Dst, one(v6("::1", 128))))
        )
    );
    // A full-length prefix is one address.
    assert_eq!(
        checked("dst_ip == 10.0.0.1/32").expr,
        checked("dst_ip == 10.0.0.1").expr
    );
    // Host bits are ignored; covered prefixes merge.
    let set = checked("dst_ip in {10.1.2.3/8, 10.9.0.0/16, fd00::/8, ::ffff:10.0.0.1, ::1}");
    let Expr::AddrIn(AddrVar::Dst, set) = set.expr else {
        panic!("{:?}", set.expr)
    };
    assert_eq!(set.v4(), &[(0x0a00_0000, 8)]);
    assert_eq!(
        set.v6(),
        &[(1, 128), (0xffff_0a00_0001, 128), (0xfd << 120, 8)]
    );
    assert_eq!(
        checked("(dst_ip) in {}").expr,
        Expr::AddrIn(AddrVar::Dst, Arc::new(PrefixSet::default()))
    );
}

#[test]
fn direction_aware_names_resolve_per_direction() {
    use Direction::{Egress, Ingress};
    for (source, direction, expect) in [
        ("local_port == 80", Egress, Var::SrcPort),
        ("local_port == 80", Ingress, Var::DstPort),
        ("remote_port == 80", Egress, Var::DstPort),
        ("remote_port == 80", Ingress, Var::SrcPort),
    ] {
        let f = checked_for(source, direction);
        assert_eq!(
            f.expr,
            Expr::Binary(BinaryOp::Eq, var(expect), Box::new(Expr::Const(80))),
            "{source} {direction}"
        );
        assert_eq!(f.direction, Some(direction));
        assert_eq!(f.need, Need::PORTS);
    }
    let lo = Arc::new(PrefixSet::new([v6("::1", 128)]));
    for (source, direction, expect) in [
        ("local_ip == ::1", Egress, AddrVar::Src),
        ("local_ip == ::1", Ingress, AddrVar::Dst),
        ("remote_ip == ::1", Egress, AddrVar::Dst),
        ("remote_ip == ::1", Ingress, AddrVar::Src),
    ] {
        let f = checked_for(source, direction);
        assert_eq!(
            f.expr,
            Expr::AddrIn(expect, lo.clone()),
            "{source} {direction}"
        );
        assert_eq!(f.direction, Some(direction));
    }
    // A filter without such names means the same both ways and says so.
    assert_eq!(checked_for("tcp && dst_port == 1", Egress).direction, None);
    assert_eq!(checked("tcp").direction, None);
    // Mixed with the plain names: both resolve.
    assert_eq!(
        checked_for("remote_port in {53} && dst_port == 53", Egress).expr,
        Expr::Logic(
            portwall::lang::ir::LogicOp::And,
            vec![
                Expr::InSet(var(Var::DstPort), int_set(&[(53, 53)])),
                Expr::Binary(BinaryOp::Eq, var(Var::DstPort), Box::new(Expr::Const(53))),
            ]
        )
    );
}

#[test]
fn direction_aware_names_need_a_direction() {
    assert_eq!(
        error("tcp && local_port in {80, 443}"),
        "error: `local_port` needs to know the direction of the packets\n --> filter:1:8\n  |\n1 | tcp && local_port in {80, 443}\n  |        ^^^^^^^^^^\n  = help: `local_port` is `src_port` on egress and `dst_port` on ingress: give `--direction ingress` or `--direction egress` (in a filter config, `direction = ingress` or `egress`)\n"
    );
    assert!(
        error("local_ip == ::1")
            .contains("`local_ip` is `src_ip` on egress and `dst_ip` on ingress")
    );
    assert!(
        error("remote_port == 1")
            .contains("`remote_port` is `dst_port` on egress and `src_port` on ingress")
    );
}

/// A generous limit for unoptimized builds on a shared machine; quadratic
/// work on these sizes takes minutes.
const FAST: Duration = Duration::from_secs(5);

#[test]
fn a_hundred_thousand_prefixes_from_a_file_check_quickly() {
    // 50,000 IPv4 /32s and /24s and 50,000 IPv6 /64s, one per line as a
    // generated file would have them.
    let mut text = String::from("# generated\ndst_ip in {\n");
    for i in 0u32..50_000 {
        let [_, a, b, c] = i.to_be_bytes();
        if i % 2 == 0 {
            text.push_str(&format!("  10.{a}.{b}.{c},\n"));
        } else {
            text.push_str(&format!("  172.{}.{b}.0/24,\n", 16 + a % 16));
        }
        text.push_str(&format!("  2001:db8:{i:x}::/64,\n"));
    }
    text.push_str("} && tcp\n");
    let path =
        std::env::temp_dir().join(format!("portwall-prefixes-{}.filter", std::process::id()));
    std::fs::write(&path, &text).unwrap();
    let started = Instant::now();
    let read = std::fs::read(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    let source = portwall::lang::lex::source_from_bytes(&read).unwrap();
    let filter = checked(source);
    let took = started.elapsed();
    println!("100,000 prefixes: read, parsed and checked in {took:?}");
    assert!(took < FAST, "took {took:?}");
    let Expr::Logic(_, terms) = &filter.expr else {
        panic!("not a chain")
    };
    let Expr::AddrIn(AddrVar::Dst, set) = &terms[0] else {
        panic!("{:?}", terms[0])
    };
    assert_eq!(set.v6().len(), 50_000);
    // i < 65,536, so `a` is 0: the /32s are 25,000 distinct addresses
    // 10.0.b.c, and the /24s (odd i) are 172.16.b.0 for b = i >> 8 from 0
    // to 49,999 >> 8 = 195, each written many times.
    assert_eq!(set.v4().len(), 25_000 + 196);
}

#[test]
fn every_port_in_a_set_checks_quickly() {
    let members: Vec<String> = (0..65_536).map(|p| p.to_string()).collect();
    let text = format!("dst_port in {{{}}}", members.join(", "));
    let started = Instant::now();
    let filter = checked(&text);
    let took = started.elapsed();
    println!("65,536 ports: parsed and checked in {took:?}");
    assert!(took < FAST, "took {took:?}");
    assert_eq!(
        filter.expr,
        Expr::InSet(var(Var::DstPort), int_set(&[(0, 65_535)]))
    );
    let printed = portwall::lang::print::print(&parse::parse(&text).unwrap());
    assert_eq!(printed.len(), text.len());
}
