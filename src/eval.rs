//! The reference evaluator: a filter's verdict on a packet, computed
//! directly from the specification (`packet::headers` for the packet side,
//! `lang::ir` for the integer semantics). The compiled program must agree
//! with it on every packet; the differential tests hold them to that.

use crate::lang::ir::{self, Expr, Filter, LogicOp, Var};
use crate::packet::Packet;
use crate::packet::headers::{self, Family, Headers, Malformed, proto};

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
        Var::Proto | Var::Len | Var::IcmpType | Var::IcmpCode => todo!("language v2"),
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
        Expr::InSet(..) | Expr::AddrIn(..) => todo!("language v2"),
    }
}
