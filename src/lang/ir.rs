//! The checked form of a filter, consumed by the evaluator and the compiler.
//!
//! Names are resolved to [`Var`]s, literals are `i64`, unary `+` is gone.
//! The tree has no spans: every error the language can report has been
//! reported by the time an `ir::Expr` exists.

pub use super::ast::{BinaryOp, LogicOp};
pub use super::sets::{IntSet, Prefix, PrefixSet};
use std::sync::Arc;

/// A packet variable the filter can read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Var {
    /// 1 for IPv4 packets (by EtherType).
    Ip,
    /// 1 for IPv6 packets (by EtherType).
    Ipv6,
    /// 1 when the transport is TCP (and the packet is not a non-first fragment).
    Tcp,
    /// 1 when the transport is UDP (and the packet is not a non-first fragment).
    Udp,
    /// 1 for ICMP over IPv4 or ICMPv6 over IPv6 (not a non-first fragment).
    Icmp,
    /// TCP/UDP source port, 0 for other packets.
    SrcPort,
    /// TCP/UDP destination port, 0 for other packets.
    DstPort,
    /// The IP protocol number of the transport (after IPv6 extension
    /// headers, also for non-first fragments), 0 for non-IP packets.
    Proto,
    /// The packet length from the IP header on (`skb->len`).
    Len,
    /// ICMP/ICMPv6 type, 0 for other packets (as `icmp` decides).
    IcmpType,
    /// ICMP/ICMPv6 code, 0 for other packets.
    IcmpCode,
}

impl Var {
    /// Every variable, in the order the documentation lists them.
    pub const ALL: [Var; 11] = [
        Var::Ip,
        Var::Ipv6,
        Var::Tcp,
        Var::Udp,
        Var::Icmp,
        Var::DstPort,
        Var::SrcPort,
        Var::Proto,
        Var::Len,
        Var::IcmpType,
        Var::IcmpCode,
    ];

    /// The name a filter uses for the variable.
    pub fn name(self) -> &'static str {
        match self {
            Var::Ip => "ip",
            Var::Ipv6 => "ipv6",
            Var::Tcp => "tcp",
            Var::Udp => "udp",
            Var::Icmp => "icmp",
            Var::SrcPort => "src_port",
            Var::DstPort => "dst_port",
            Var::Proto => "proto",
            Var::Len => "len",
            Var::IcmpType => "icmp_type",
            Var::IcmpCode => "icmp_code",
        }
    }

    pub fn from_name(name: &str) -> Option<Var> {
        Var::ALL.into_iter().find(|v| v.name() == name)
    }

    /// How much of the packet must be parsed to know this variable.
    pub fn need(self) -> Need {
        match self {
            Var::Ip | Var::Ipv6 | Var::Len => Need::NOTHING,
            Var::Tcp | Var::Udp | Var::Icmp | Var::Proto => Need::NETWORK,
            Var::SrcPort | Var::DstPort => Need::PORTS,
            Var::IcmpType | Var::IcmpCode => Need::ICMP,
        }
    }
}

/// A packet address the filter can test with `==`, `!=` and `in`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AddrVar {
    /// `src_ip`
    Src,
    /// `dst_ip`
    Dst,
}

impl AddrVar {
    pub fn name(self) -> &'static str {
        match self {
            AddrVar::Src => "src_ip",
            AddrVar::Dst => "dst_ip",
        }
    }
}

/// Which headers a filter needs parsed. A header that is needed but
/// malformed or cut short drops the packet; a header that is not needed is
/// never examined. Every field implies `network`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Need {
    /// The IP header and, for IPv6, the extension header chain.
    pub network: bool,
    /// The TCP or UDP header (20 or 8 bytes), when the packet has one.
    pub ports: bool,
    /// The first 4 bytes (type, code, checksum) of an ICMP/ICMPv6 header,
    /// when the packet has one.
    pub icmp: bool,
}

impl Need {
    /// Only `skb->protocol` and `skb->len`.
    pub const NOTHING: Need = Need {
        network: false,
        ports: false,
        icmp: false,
    };
    pub const NETWORK: Need = Need {
        network: true,
        ports: false,
        icmp: false,
    };
    pub const PORTS: Need = Need {
        network: true,
        ports: true,
        icmp: false,
    };
    pub const ICMP: Need = Need {
        network: true,
        ports: false,
        icmp: true,
    };

    /// Everything either needs.
    pub fn union(self, other: Need) -> Need {
        Need {
            network: self.network || other.network,
            ports: self.ports || other.ports,
            icmp: self.icmp || other.icmp,
        }
    }
}

/// Unary operators left after checking (`+x` is just `x`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UnaryOp {
    /// `!x`: 1 if x is 0, else 0.
    Not,
    /// `~x`
    BitNot,
    /// `-x`, wrapping.
    Neg,
}

/// A checked expression. Values are 64-bit signed integers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expr {
    Const(i64),
    Var(Var),
    Unary(UnaryOp, Box<Expr>),
    Binary(BinaryOp, Box<Expr>, Box<Expr>),
    /// 1 when all (`And`) or any (`Or`) of at least one term is non-zero,
    /// else 0. Terms are evaluated left to right with short circuit.
    Logic(LogicOp, Vec<Expr>),
    /// `cond ? then : otherwise`
    Cond(Box<Expr>, Box<Expr>, Box<Expr>),
    /// 1 when the value is in the set, else 0 (`x in {1, 5..9}`).
    InSet(Box<Expr>, Arc<IntSet>),
    /// 1 when the packet has this address (it is IP) and the address is in
    /// the set of the packet's family, else 0. `dst_ip == A` is a set of
    /// one full-length prefix; `!=` is `!` of that.
    AddrIn(AddrVar, Arc<PrefixSet>),
}

/// A filter ready to evaluate or compile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filter {
    /// The expression exactly as written (resolved, not simplified). The
    /// reference evaluator runs this form, so that the differential tests
    /// also check the simplifier.
    pub expr: Expr,
    /// Which headers must be parsed: decided by the variables the filter
    /// mentions, whether or not simplification removes them.
    pub need: Need,
    /// The direction `local_*`/`remote_*` names were resolved for; `None`
    /// when the filter uses none of them (and so means the same both ways).
    pub direction: Option<Direction>,
}

impl Expr {
    /// Every variable the expression reads.
    pub fn vars(&self) -> Vec<Var> {
        let mut out = Vec::new();
        self.visit(&mut |e| {
            if let Expr::Var(v) = e
                && !out.contains(v)
            {
                out.push(*v)
            }
        });
        out.sort();
        out
    }

    /// Every address the expression reads.
    pub fn addr_vars(&self) -> Vec<AddrVar> {
        let mut out = Vec::new();
        self.visit(&mut |e| {
            if let Expr::AddrIn(v, _) = e
                && !out.contains(v)
            {
                out.push(*v)
            }
        });
        out.sort();
        out
    }

    /// Calls `f` on this expression and every subexpression, parents first.
    pub fn visit(&self, f: &mut impl FnMut(&Expr)) {
        f(self);
        match self {
            Expr::Const(_) | Expr::Var(_) | Expr::AddrIn(..) => {}
            Expr::Unary(_, e) | Expr::InSet(e, _) => e.visit(f),
            Expr::Binary(_, a, b) => {
                a.visit(f);
                b.visit(f);
            }
            Expr::Logic(_, terms) => terms.iter().for_each(|t| t.visit(f)),
            Expr::Cond(c, t, e) => {
                c.visit(f);
                t.visit(f);
                e.visit(f);
            }
        }
    }
}

/// The integer semantics shared by constant folding and the reference
/// evaluator: 64-bit two's complement, wrapping; division truncates toward
/// zero; `x / 0` is 0 and `x % 0` is x (as BPF defines them); shift counts
/// are taken modulo 64 and `>>` is arithmetic; comparisons are signed.
pub fn apply_binary(op: BinaryOp, a: i64, b: i64) -> i64 {
    match op {
        BinaryOp::Mul => a.wrapping_mul(b),
        BinaryOp::Div => {
            if b == 0 {
                0
            } else {
                a.wrapping_div(b)
            }
        }
        BinaryOp::Rem => {
            if b == 0 {
                a
            } else {
                a.wrapping_rem(b)
            }
        }
        BinaryOp::Add => a.wrapping_add(b),
        BinaryOp::Sub => a.wrapping_sub(b),
        BinaryOp::Shl => a.wrapping_shl((b & 63) as u32),
        BinaryOp::Shr => a.wrapping_shr((b & 63) as u32),
        BinaryOp::Lt => (a < b) as i64,
        BinaryOp::Le => (a <= b) as i64,
        BinaryOp::Gt => (a > b) as i64,
        BinaryOp::Ge => (a >= b) as i64,
        BinaryOp::Eq => (a == b) as i64,
        BinaryOp::Ne => (a != b) as i64,
        BinaryOp::BitAnd => a & b,
        BinaryOp::BitXor => a ^ b,
        BinaryOp::BitOr => a | b,
    }
}

/// See [`apply_binary`].
pub fn apply_unary(op: UnaryOp, a: i64) -> i64 {
    match op {
        UnaryOp::Not => (a == 0) as i64,
        UnaryOp::BitNot => !a,
        UnaryOp::Neg => a.wrapping_neg(),
    }
}

/// Which packets of a cgroup's sockets a program sees.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Packets delivered to the cgroup's sockets (`BPF_CGROUP_INET_INGRESS`).
    Ingress,
    /// Packets the cgroup's sockets send (`BPF_CGROUP_INET_EGRESS`).
    Egress,
}

impl Direction {
    /// Both directions, ingress first.
    pub const ALL: [Direction; 2] = [Direction::Ingress, Direction::Egress];

    /// `BPF_CGROUP_INET_INGRESS` in `enum bpf_attach_type`.
    pub const BPF_CGROUP_INET_INGRESS: u32 = 0;
    /// `BPF_CGROUP_INET_EGRESS` in `enum bpf_attach_type`.
    pub const BPF_CGROUP_INET_EGRESS: u32 = 1;

    /// `"ingress"` or `"egress"`, as on the command line and in bpftool.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Ingress => "ingress",
            Direction::Egress => "egress",
        }
    }

    /// The kernel's attach type for this direction.
    pub fn attach_type(self) -> u32 {
        match self {
            Direction::Ingress => Self::BPF_CGROUP_INET_INGRESS,
            Direction::Egress => Self::BPF_CGROUP_INET_EGRESS,
        }
    }
}

impl std::fmt::Display for Direction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A direction name that is neither `ingress` nor `egress`.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
#[error("unknown direction `{0}`: use `ingress` or `egress`")]
pub struct ParseDirectionError(pub String);

impl std::str::FromStr for Direction {
    type Err = ParseDirectionError;

    /// Parses `ingress` or `egress`, in any case.
    fn from_str(s: &str) -> Result<Direction, ParseDirectionError> {
        if s.eq_ignore_ascii_case("ingress") {
            Ok(Direction::Ingress)
        } else if s.eq_ignore_ascii_case("egress") {
            Ok(Direction::Egress)
        } else {
            Err(ParseDirectionError(s.to_string()))
        }
    }
}
