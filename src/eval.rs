//! The reference evaluator: a filter's verdict on a packet, computed
//! directly from the specification (`packet::headers` for the packet side,
//! `lang::ir` for the integer semantics). The compiled program must agree
//! with it on every packet; the differential tests hold them to that.

use crate::lang::ir::{self, AddrVar, Expr, Filter, LogicOp, PrefixSet, Var};
use crate::packet::Packet;
use crate::packet::headers::{self, Addresses, Family, Headers, Malformed, proto};

/// What a filter decided about one packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Forward,
    Drop,
}

/// A verdict with its reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The expression was evaluated to this value.
    Value(i64),
    /// A header the filter needs is malformed or cut short.
    Malformed(Malformed),
}

impl Outcome {
    pub fn verdict(self) -> Verdict {
        match self {
            Outcome::Value(v) if v != 0 => Verdict::Forward,
            _ => Verdict::Drop,
        }
    }
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Forward => "forward",
            Verdict::Drop => "drop",
        }
    }
}

/// Evaluates `filter` on `packet`.
pub fn evaluate(filter: &Filter, packet: &Packet) -> Outcome {
    match headers::parse(packet, filter.need) {
        Ok(h) => Outcome::Value(eval(&filter.expr, &h)),
        Err(m) => Outcome::Malformed(m),
    }
}

/// The value of one variable for a parsed packet. Fields of absent headers
/// read as 0.
pub fn var_value(var: Var, h: &Headers) -> i64 {
    let transport = h.transport();
    let value = match var {
        Var::Ip => h.family == Some(Family::Ipv4),
        Var::Ipv6 => h.family == Some(Family::Ipv6),
        Var::Tcp => transport == Some(proto::TCP),
        Var::Udp => transport == Some(proto::UDP),
        Var::Icmp => match (h.family, transport) {
            (Some(Family::Ipv4), Some(p)) => p == proto::ICMP,
            (Some(Family::Ipv6), Some(p)) => p == proto::ICMPV6,
            _ => false,
        },
        Var::SrcPort => return h.ports.map_or(0, |(src, _)| i64::from(src)),
        Var::DstPort => return h.ports.map_or(0, |(_, dst)| i64::from(dst)),
        Var::Proto => return h.protocol.map_or(0, i64::from),
        // A packet cannot be longer than memory, let alone i64::MAX.
        Var::Len => return h.len as i64,
        Var::IcmpType => return h.icmp.map_or(0, |(t, _)| i64::from(t)),
        Var::IcmpCode => return h.icmp.map_or(0, |(_, c)| i64::from(c)),
    };
    value as i64
}

fn eval(expr: &Expr, h: &Headers) -> i64 {
    match expr {
        Expr::Const(c) => *c,
        Expr::Var(v) => var_value(*v, h),
        Expr::Unary(op, a) => ir::apply_unary(*op, eval(a, h)),
        Expr::Binary(op, a, b) => ir::apply_binary(*op, eval(a, h), eval(b, h)),
        Expr::Logic(LogicOp::And, terms) => terms.iter().all(|t| eval(t, h) != 0) as i64,
        Expr::Logic(LogicOp::Or, terms) => terms.iter().any(|t| eval(t, h) != 0) as i64,
        Expr::Cond(c, t, e) => {
            if eval(c, h) != 0 {
                eval(t, h)
            } else {
                eval(e, h)
            }
        }
        Expr::InSet(a, set) => set.contains(eval(a, h)) as i64,
        Expr::AddrIn(var, set) => addr_in(*var, set, h) as i64,
    }
}

/// Whether the packet's address is in the set of its own family: an IPv4
/// prefix never matches an IPv6 packet, whatever its address embeds.
pub fn addr_in(var: AddrVar, set: &PrefixSet, h: &Headers) -> bool {
    match (h.addresses, var) {
        (Some(Addresses::V4 { src, .. }), AddrVar::Src) => set.contains_v4(src),
        (Some(Addresses::V4 { dst, .. }), AddrVar::Dst) => set.contains_v4(dst),
        (Some(Addresses::V6 { src, .. }), AddrVar::Src) => set.contains_v6(src),
        (Some(Addresses::V6 { dst, .. }), AddrVar::Dst) => set.contains_v6(dst),
        (None, _) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lang::ir::{IntSet, Need, Prefix};
    use crate::packet::{ETH_P_OTHER, Packet};
    use std::net::IpAddr;
    use std::sync::Arc;

    /// IPv4 from 10.0.0.1 to 10.0.0.2 with `payload` after a 20-byte header.
    fn v4(protocol: u8, fragment_offset: u16, payload: &[u8]) -> Packet {
        let mut p = vec![
            0x45, 0, 0, 0, 0, 0, 0, 0, 64, protocol, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        p[6..8].copy_from_slice(&fragment_offset.to_be_bytes());
        p.extend_from_slice(payload);
        Packet::from_ip(p)
    }

    /// IPv6 from `src` to ::2 with a ready-made extension header chain.
    fn v6(src: [u8; 16], next: u8, rest: &[u8]) -> Packet {
        let mut p = vec![0x60, 0, 0, 0, 0, 0, next, 64];
        p.extend_from_slice(&src);
        p.extend_from_slice(&[0u8; 15]);
        p.push(2);
        p.extend_from_slice(rest);
        Packet::from_ip(p)
    }

    const SRC6: [u8; 16] = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    /// `::ffff:10.0.0.1`, the IPv4-mapped form of the IPv4 source.
    const MAPPED: [u8; 16] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 1];

    fn value(expr: Expr, need: Need, packet: &Packet) -> Outcome {
        let filter = Filter {
            expr,
            need,
            direction: None,
        };
        evaluate(&filter, packet)
    }

    fn var(v: Var, packet: &Packet) -> Outcome {
        value(Expr::Var(v), v.need(), packet)
    }

    fn prefixes(list: &[(&str, u8)]) -> Arc<PrefixSet> {
        Arc::new(PrefixSet::new(list.iter().map(|(a, len)| {
            Prefix::new(a.parse::<IpAddr>().unwrap(), *len).unwrap()
        })))
    }

    #[test]
    fn proto_is_the_final_protocol_number() {
        assert_eq!(var(Var::Proto, &v4(132, 0, &[0; 12])), Outcome::Value(132));
        // Hop-by-hop (8 bytes) then ICMPv6.
        let hop = [58, 0, 1, 4, 0, 0, 0, 0, 128, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(var(Var::Proto, &v6(SRC6, 0, &hop)), Outcome::Value(58));
        // A non-first fragment still names its protocol.
        let frag = [17, 0, 0, 8 << 3, 0, 0, 0, 1];
        assert_eq!(var(Var::Proto, &v6(SRC6, 44, &frag)), Outcome::Value(17));
        assert_eq!(var(Var::Proto, &v4(6, 10, &[])), Outcome::Value(6));
        let other = Packet {
            ethertype: ETH_P_OTHER,
            data: vec![0x45; 40],
        };
        assert_eq!(var(Var::Proto, &other), Outcome::Value(0));
    }

    #[test]
    fn len_is_the_length_from_the_ip_header_on() {
        assert_eq!(var(Var::Len, &v4(17, 0, &[0; 8])), Outcome::Value(28));
        // Needs no header: a cut IPv4 header still has a length.
        let short = Packet::from_ip(vec![0x45, 0, 0]);
        assert_eq!(var(Var::Len, &short), Outcome::Value(3));
    }

    #[test]
    fn icmp_type_and_code_read_the_icmp_header_only() {
        let echo = v4(1, 0, &[8, 3, 0, 0, 0, 0, 0, 0]);
        assert_eq!(var(Var::IcmpType, &echo), Outcome::Value(8));
        assert_eq!(var(Var::IcmpCode, &echo), Outcome::Value(3));
        let v6_echo = v6(SRC6, 58, &[128, 1, 0, 0]);
        assert_eq!(var(Var::IcmpType, &v6_echo), Outcome::Value(128));
        assert_eq!(var(Var::IcmpCode, &v6_echo), Outcome::Value(1));
        // Protocol 58 in IPv4 is not ICMP, nor 1 in IPv6.
        assert_eq!(
            var(Var::IcmpType, &v4(58, 0, &[8, 3, 0, 0])),
            Outcome::Value(0)
        );
        assert_eq!(
            var(Var::IcmpType, &v6(SRC6, 1, &[8, 3, 0, 0])),
            Outcome::Value(0)
        );
        // TCP: 0, and no ICMP header is required.
        assert_eq!(var(Var::IcmpType, &v4(6, 0, &[])), Outcome::Value(0));
        // Three bytes of ICMP header are malformed when the filter needs it...
        let cut = v4(1, 0, &[8, 3, 0]);
        assert_eq!(
            var(Var::IcmpType, &cut),
            Outcome::Malformed(Malformed::IcmpTruncated)
        );
        // ...but not when it only asks whether the packet is ICMP.
        assert_eq!(var(Var::Icmp, &cut), Outcome::Value(1));
        // A non-first fragment has no ICMP header to read.
        assert_eq!(var(Var::IcmpType, &v4(1, 10, &[])), Outcome::Value(0));
    }

    #[test]
    fn addresses_match_only_their_own_family() {
        let set = prefixes(&[("10.0.0.0", 8), ("2001:db8::", 32)]);
        let src_in = || Expr::AddrIn(AddrVar::Src, set.clone());
        assert_eq!(
            value(src_in(), Need::NETWORK, &v4(6, 0, &[])),
            Outcome::Value(1)
        );
        assert_eq!(
            value(src_in(), Need::NETWORK, &v6(SRC6, 59, &[])),
            Outcome::Value(1)
        );
        // ::ffff:10.0.0.1 is an IPv6 address, outside 10.0.0.0/8.
        assert_eq!(
            value(src_in(), Need::NETWORK, &v6(MAPPED, 59, &[])),
            Outcome::Value(0)
        );
        let dst = prefixes(&[("10.0.0.2", 32), ("::2", 128)]);
        let dst_in = Expr::AddrIn(AddrVar::Dst, dst.clone());
        assert_eq!(
            value(dst_in.clone(), Need::NETWORK, &v4(6, 0, &[])),
            Outcome::Value(1)
        );
        assert_eq!(
            value(dst_in, Need::NETWORK, &v6(SRC6, 59, &[])),
            Outcome::Value(1)
        );
        let src_in_dst = Expr::AddrIn(AddrVar::Src, dst);
        assert_eq!(
            value(src_in_dst, Need::NETWORK, &v4(6, 0, &[])),
            Outcome::Value(0)
        );
        let other = Packet {
            ethertype: ETH_P_OTHER,
            data: vec![0; 40],
        };
        assert_eq!(value(src_in(), Need::NETWORK, &other), Outcome::Value(0));
    }

    #[test]
    fn int_sets_test_the_operand_value() {
        let set = Arc::new(IntSet::from_ranges([(53, 53), (8000, 8080)]));
        let udp = |port: u16| {
            let mut h = vec![0, 1];
            h.extend_from_slice(&port.to_be_bytes());
            h.extend_from_slice(&[0, 8, 0, 0]);
            v4(17, 0, &h)
        };
        let expr = || Expr::InSet(Box::new(Expr::Var(Var::DstPort)), set.clone());
        for (port, expect) in [(53, 1), (54, 0), (7999, 0), (8000, 1), (8080, 1), (8081, 0)] {
            assert_eq!(
                value(expr(), Need::PORTS, &udp(port)),
                Outcome::Value(expect),
                "{port}"
            );
        }
        let shifted = Expr::InSet(
            Box::new(Expr::Binary(
                ir::BinaryOp::Sub,
                Box::new(Expr::Var(Var::DstPort)),
                Box::new(Expr::Const(54)),
            )),
            Arc::new(IntSet::from_ranges([(-1, -1)])),
        );
        assert_eq!(value(shifted, Need::PORTS, &udp(53)), Outcome::Value(1));
    }
}
