//! Semantic checks: from the syntax tree to the checked `ir`.
//!
//! This is the only place where a syntactically valid filter can be
//! rejected: unknown names, types (integers against addresses), empty
//! ranges, direction-dependent names without a direction, and division or
//! remainder by an expression that is constant zero. Names are resolved
//! here and nowhere else.
//!
//! Types: every expression is an integer, except address variables
//! (`src_ip`, `dst_ip`, `local_ip`, `remote_ip`) and address literals,
//! which may appear only as `A == literal`, `literal == A`, `!=` the same
//! ways, and `A in {addresses and prefixes}`.

use super::ast::{self, AddrLit, BinaryOp, ExprKind, MemberKind};
use super::diag::Diagnostic;
use super::ir::{self, AddrVar, Direction, Expr, Filter, IntSet, Need, Prefix, PrefixSet, Var};
use super::span::Span;
use std::sync::Arc;

/// Checks a parsed filter and lowers it to the `ir`. A filter that uses
/// `local_*`/`remote_*` names is rejected: they need a direction.
pub fn check(expr: &ast::Expr) -> Result<Filter, Diagnostic> {
    check_with(expr, None)
}

/// Checks a filter meant for `direction`, which resolves the
/// direction-aware names: `local_*` is the source on egress and the
/// destination on ingress, `remote_*` the other way. The filter records
/// the direction only when it used such a name.
pub fn check_with(expr: &ast::Expr, direction: Option<Direction>) -> Result<Filter, Diagnostic> {
    let mut checker = Checker {
        direction,
        used_direction: false,
    };
    let expr = checker.int(expr, Want::Condition)?;
    let need = need_of(&expr);
    Ok(Filter {
        expr,
        need,
        direction: direction.filter(|_| checker.used_direction),
    })
}

/// The headers an expression reads: its variables' needs, and the IP
/// header (with the IPv6 extension chain, like every network need) when it
/// tests an address.
pub fn need_of(expr: &Expr) -> Need {
    let mut need = Need::NOTHING;
    expr.visit(&mut |e| match e {
        Expr::Var(v) => need = need.union(v.need()),
        Expr::AddrIn(..) => need = need.union(Need::NETWORK),
        _ => {}
    });
    need
}

/// Every name a filter can use, in the order the help lists them.
pub const NAMES: [&str; 17] = [
    "ip",
    "ipv6",
    "tcp",
    "udp",
    "icmp",
    "dst_port",
    "src_port",
    "proto",
    "len",
    "icmp_type",
    "icmp_code",
    "src_ip",
    "dst_ip",
    "local_port",
    "remote_port",
    "local_ip",
    "remote_ip",
];

/// What a name means.
#[derive(Clone, Copy, Debug)]
enum Name {
    Int(Var),
    Addr(AddrVar),
}

/// The side of a comparison or `in` that may be an address.
#[derive(Clone, Copy, Debug)]
enum AddrSide<'a> {
    /// An address variable, with its name as written.
    Var(AddrVar, &'a str),
    Lit(AddrLit),
}

/// What the context of an expression expects of it, for the error when an
/// address is there instead.
#[derive(Clone, Copy, Debug)]
enum Want {
    /// The filter, a term of `&&`/`||`, a `?` condition.
    Condition,
    /// The left side of `in`, and what a `?:` in such a place gives.
    Integer,
    /// An operand of this operator.
    Operator(&'static str),
}

struct Checker {
    direction: Option<Direction>,
    /// A `local_*`/`remote_*` name was resolved.
    used_direction: bool,
}

impl Checker {
    /// Lowers an expression whose value must be an integer.
    fn int(&mut self, expr: &ast::Expr, want: Want) -> Result<Expr, Diagnostic> {
        Ok(match &expr.kind {
            ExprKind::Int(value) => Expr::Const(*value as i64),
            ExprKind::Name(name) => match self.resolve(name, expr.span)? {
                Name::Int(var) => Expr::Var(var),
                Name::Addr(_) => return Err(address_misused(expr, want)),
            },
            ExprKind::Addr(_) => return Err(address_misused(expr, want)),
            ExprKind::Unary { op, operand, .. } => {
                let operand = self.int(operand, Want::Operator(op.symbol()))?;
                match op {
                    ast::UnaryOp::Plus => operand,
                    ast::UnaryOp::Not => Expr::Unary(ir::UnaryOp::Not, Box::new(operand)),
                    ast::UnaryOp::BitNot => Expr::Unary(ir::UnaryOp::BitNot, Box::new(operand)),
                    ast::UnaryOp::Neg => Expr::Unary(ir::UnaryOp::Neg, Box::new(operand)),
                }
            }
            ExprKind::Binary { op, lhs, rhs, .. } => self.binary(*op, lhs, rhs)?,
            ExprKind::Logic { op, terms } => Expr::Logic(
                *op,
                terms
                    .iter()
                    .map(|t| self.int(t, Want::Condition))
                    .collect::<Result<_, _>>()?,
            ),
            ExprKind::Cond {
                cond,
                then,
                otherwise,
            } => Expr::Cond(
                Box::new(self.int(cond, Want::Condition)?),
                Box::new(self.int(then, want)?),
                Box::new(self.int(otherwise, want)?),
            ),
            ExprKind::In { operand, set, .. } => self.member_of(operand, set)?,
        })
    }

    fn binary(
        &mut self,
        op: BinaryOp,
        lhs: &ast::Expr,
        rhs: &ast::Expr,
    ) -> Result<Expr, Diagnostic> {
        if matches!(op, BinaryOp::Eq | BinaryOp::Ne) {
            let sides = (self.addr_side(lhs)?, self.addr_side(rhs)?);
            if sides.0.is_some() || sides.1.is_some() {
                return self.address_comparison(op, lhs, rhs, sides);
            }
        }
        if op == BinaryOp::Div
            && let (ExprKind::Addr(addr), ExprKind::Int(length)) = (&lhs.kind, &rhs.kind)
            && addr.prefix.is_none()
        {
            return Err(
                Diagnostic::new("cannot use `/` on an address", lhs.span).with_help(format!(
                    "a prefix length follows the address without spaces: `{}/{length}`",
                    addr.addr
                )),
            );
        }
        let a = self.int(lhs, Want::Operator(op.symbol()))?;
        let b = self.int(rhs, Want::Operator(op.symbol()))?;
        if matches!(op, BinaryOp::Div | BinaryOp::Rem) && const_value(&b) == Some(0) {
            let what = if op == BinaryOp::Div {
                "division"
            } else {
                "remainder"
            };
            return Err(Diagnostic::new(
                format!("{what} by zero: this divisor is always 0"),
                rhs.span,
            ));
        }
        Ok(Expr::Binary(op, Box::new(a), Box::new(b)))
    }

    /// `==` or `!=` where at least one side is an address.
    fn address_comparison(
        &mut self,
        op: BinaryOp,
        lhs: &ast::Expr,
        rhs: &ast::Expr,
        sides: (Option<AddrSide>, Option<AddrSide>),
    ) -> Result<Expr, Diagnostic> {
        let symbol = op.symbol();
        let (var, lit, lit_span) = match sides {
            (Some(AddrSide::Var(var, _)), Some(AddrSide::Lit(lit))) => (var, lit, rhs.span),
            (Some(AddrSide::Lit(lit)), Some(AddrSide::Var(var, _))) => (var, lit, lhs.span),
            (Some(AddrSide::Var(..)), Some(AddrSide::Var(..))) => {
                return Err(Diagnostic::new(
                    "cannot compare two addresses of the packet",
                    rhs.span,
                )
                .with_help(format!(
                    "compare each with an address literal, as in `dst_ip {symbol} 10.0.0.1`"
                )));
            }
            (Some(AddrSide::Lit(_)), Some(AddrSide::Lit(_))) => {
                return Err(
                    Diagnostic::new("cannot compare two address literals", lhs.span)
                        .with_help(ADDRESS_VARIABLES),
                );
            }
            (Some(AddrSide::Var(_, name)), None) => {
                self.int(rhs, Want::Operator(symbol))?;
                return Err(Diagnostic::new(
                    format!("cannot compare the address `{name}` with an integer"),
                    rhs.span,
                )
                .with_help("write an address such as `10.0.0.1` or `2001:db8::1`"));
            }
            (None, Some(AddrSide::Var(_, name))) => {
                self.int(lhs, Want::Operator(symbol))?;
                return Err(Diagnostic::new(
                    format!("cannot compare an integer with the address `{name}`"),
                    lhs.span,
                )
                .with_help("write an address such as `10.0.0.1` or `2001:db8::1`"));
            }
            (Some(AddrSide::Lit(_)), None) => {
                self.int(rhs, Want::Operator(symbol))?;
                return Err(
                    Diagnostic::new("cannot compare an address with an integer", lhs.span)
                        .with_help(ADDRESS_VARIABLES),
                );
            }
            (None, Some(AddrSide::Lit(_))) => {
                self.int(lhs, Want::Operator(symbol))?;
                return Err(
                    Diagnostic::new("cannot compare an integer with an address", rhs.span)
                        .with_help(ADDRESS_VARIABLES),
                );
            }
            (None, None) => unreachable!("the caller saw an address"),
        };
        let full = full_length(lit);
        if lit.prefix.is_some_and(|len| len < full) {
            return Err(Diagnostic::new(
                format!("`{symbol}` compares with one address, not a prefix"),
                lit_span,
            )
            .with_help(format!(
                "use `in` to match a prefix: `{} in {{{lit}}}`",
                var_text(lhs, rhs)
            )));
        }
        let prefix = Prefix::new(lit.addr, full).expect("the full length fits the family");
        let test = Expr::AddrIn(var, Arc::new(PrefixSet::new([prefix])));
        Ok(match op {
            BinaryOp::Ne => Expr::Unary(ir::UnaryOp::Not, Box::new(test)),
            _ => test,
        })
    }

    /// `operand in set`: an address set for an address variable, an
    /// integer set for anything else.
    fn member_of(&mut self, operand: &ast::Expr, set: &ast::Set) -> Result<Expr, Diagnostic> {
        match self.addr_side(operand)? {
            Some(AddrSide::Var(var, name)) => {
                let mut prefixes = Vec::with_capacity(set.members.len());
                for member in &set.members {
                    let MemberKind::Addr(lit) = member.kind else {
                        return Err(Diagnostic::new(
                            format!(
                                "`{name}` is an address, so its set cannot hold {}",
                                describe(member.kind)
                            ),
                            member.span,
                        )
                        .with_help(
                            "write addresses or prefixes, such as `10.0.0.1` or `fd00::/8`",
                        ));
                    };
                    let len = lit.prefix.unwrap_or_else(|| full_length(lit));
                    prefixes
                        .push(Prefix::new(lit.addr, len).expect("the lexer checked the length"));
                }
                Ok(Expr::AddrIn(var, Arc::new(PrefixSet::new(prefixes))))
            }
            Some(AddrSide::Lit(_)) => Err(Diagnostic::new(
                "cannot test an address literal with `in`",
                operand.span,
            )
            .with_help(
                "test an address variable, as in `dst_ip in {10.0.0.0/8}`; `in` binds tighter \
                 than `==`, so `dst_ip == 10.0.0.1 in {...}` tests the literal",
            )),
            None => {
                let value = self.int(operand, Want::Integer)?;
                let mut ranges = Vec::with_capacity(set.members.len());
                for member in &set.members {
                    ranges.push(match member.kind {
                        MemberKind::Int(v) => (v.value(), v.value()),
                        MemberKind::Range(lo, hi) if lo.value() > hi.value() => {
                            return Err(Diagnostic::new(
                                format!("empty range: {lo} is above {hi}"),
                                member.span,
                            )
                            .with_help(
                                if lo.magnitude > i64::MAX as u64 || hi.magnitude > i64::MAX as u64
                                {
                                    "bounds are signed 64-bit values: numbers above \
                                 9223372036854775807 are negative"
                                        .to_string()
                                } else {
                                    format!(
                                        "write the smaller bound first: `{hi}..{lo}` (both bounds \
                                     are included)"
                                    )
                                },
                            ));
                        }
                        MemberKind::Range(lo, hi) => (lo.value(), hi.value()),
                        MemberKind::Addr(_) => {
                            return Err(Diagnostic::new(
                                "an integer's set cannot hold an address",
                                member.span,
                            )
                            .with_help(ADDRESS_VARIABLES));
                        }
                    });
                }
                Ok(Expr::InSet(
                    Box::new(value),
                    Arc::new(IntSet::from_ranges(ranges)),
                ))
            }
        }
    }

    /// The address `expr` is, if it is one; other expressions are left
    /// for `int` (which reports their errors).
    fn addr_side<'a>(&mut self, expr: &'a ast::Expr) -> Result<Option<AddrSide<'a>>, Diagnostic> {
        Ok(match &expr.kind {
            ExprKind::Addr(lit) => Some(AddrSide::Lit(*lit)),
            ExprKind::Name(name) => match self.resolve(name, expr.span)? {
                Name::Addr(var) => Some(AddrSide::Var(var, name)),
                Name::Int(_) => None,
            },
            _ => None,
        })
    }

    fn resolve(&mut self, name: &str, at: Span) -> Result<Name, Diagnostic> {
        if let Some(var) = Var::from_name(name) {
            return Ok(Name::Int(var));
        }
        match name {
            "src_ip" => return Ok(Name::Addr(AddrVar::Src)),
            "dst_ip" => return Ok(Name::Addr(AddrVar::Dst)),
            _ => {}
        }
        if let Some((local, src, dst)) = match name {
            "local_port" => Some((true, Name::Int(Var::SrcPort), Name::Int(Var::DstPort))),
            "remote_port" => Some((false, Name::Int(Var::SrcPort), Name::Int(Var::DstPort))),
            "local_ip" => Some((true, Name::Addr(AddrVar::Src), Name::Addr(AddrVar::Dst))),
            "remote_ip" => Some((false, Name::Addr(AddrVar::Src), Name::Addr(AddrVar::Dst))),
            _ => None,
        } {
            let (on_egress, on_ingress) = if local { (src, dst) } else { (dst, src) };
            let Some(direction) = self.direction else {
                let text = |n: Name| match n {
                    Name::Int(v) => v.name(),
                    Name::Addr(v) => v.name(),
                };
                return Err(Diagnostic::new(
                    format!("`{name}` needs to know the direction of the packets"),
                    at,
                )
                .with_help(format!(
                    "`{name}` is `{}` on egress and `{}` on ingress: give `--direction ingress` \
                     or `--direction egress` (in a filter config, `direction = ingress` or \
                     `egress`)",
                    text(on_egress),
                    text(on_ingress)
                )));
            };
            self.used_direction = true;
            return Ok(match direction {
                Direction::Egress => on_egress,
                Direction::Ingress => on_ingress,
            });
        }
        let error = Diagnostic::new(format!("unknown name `{name}`"), at);
        let help = match name {
            "true" | "TRUE" => "write 1 for true".to_string(),
            "false" | "FALSE" => "write 0 for false".to_string(),
            "port" => "a packet has two ports: write `dst_port` or `src_port` (or, with a \
                       direction, `local_port` or `remote_port`)"
                .to_string(),
            "addr" | "address" | "ip_addr" | "ip_address" | "host" => {
                "a packet has two addresses: write `dst_ip` or `src_ip` (or, with a \
                 direction, `local_ip` or `remote_ip`)"
                    .to_string()
            }
            "protocol" | "ip_proto" | "next_header" => {
                "write `proto`, the IP protocol number (6 is TCP, 17 UDP, 132 SCTP)".to_string()
            }
            "length" | "size" | "pkt_len" => {
                "write `len`, the packet length in bytes from the IP header on".to_string()
            }
            _ => match closest(name) {
                Some(known) => format!("did you mean `{known}`?"),
                None => format!("the variables are {}", variable_list()),
            },
        };
        Err(error.with_help(help))
    }
}

const ADDRESS_VARIABLES: &str =
    "addresses are compared with `src_ip`, `dst_ip`, `local_ip` or `remote_ip`";

/// The error for an address where an integer is expected.
fn address_misused(expr: &ast::Expr, want: Want) -> Diagnostic {
    let help = "addresses can only be tested with `==`, `!=` and `in`, as in \
                `dst_ip in {10.0.0.0/8}`";
    let what = match &expr.kind {
        ExprKind::Name(name) => format!("`{name}`"),
        ExprKind::Addr(lit) => format!("the address `{lit}`"),
        _ => "this".to_string(),
    };
    let message = match want {
        Want::Operator(op) => format!("cannot use `{op}` on an address"),
        Want::Condition => match &expr.kind {
            ExprKind::Name(_) => format!("{what} is an address, not a condition"),
            _ => format!("{what} is not a condition"),
        },
        Want::Integer => match &expr.kind {
            ExprKind::Name(_) => format!("{what} is an address, not an integer"),
            _ => format!("{what} is not an integer"),
        },
    };
    Diagnostic::new(message, expr.span).with_help(help)
}

/// How an error names a set member of the wrong type.
fn describe(member: MemberKind) -> String {
    match member {
        MemberKind::Int(v) => format!("the integer {v}"),
        MemberKind::Range(lo, hi) => format!("the range {lo}..{hi}"),
        MemberKind::Addr(a) => format!("the address {a}"),
    }
}

/// The variable side of an address comparison, as written, for help text.
fn var_text<'a>(lhs: &'a ast::Expr, rhs: &'a ast::Expr) -> &'a str {
    match (&lhs.kind, &rhs.kind) {
        (ExprKind::Name(name), _) | (_, ExprKind::Name(name)) => name,
        _ => "dst_ip",
    }
}

fn full_length(lit: AddrLit) -> u8 {
    if lit.addr.is_ipv4() { 32 } else { 128 }
}

/// The name whose spelling is closest to a misspelled one, if any is close
/// enough to be a plausible typo.
fn closest(name: &str) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    NAMES
        .into_iter()
        .map(|known| (strsim::damerau_levenshtein(&lower, known), known))
        .filter(|(d, known)| *d <= 1.max(known.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, known)| known)
}

fn variable_list() -> String {
    NAMES
        .iter()
        .map(|name| format!("`{name}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The value of an expression that reads no variable, computed with the
/// language's integer semantics; `None` when it depends on the packet.
pub fn const_value(expr: &Expr) -> Option<i64> {
    Some(match expr {
        Expr::Const(c) => *c,
        Expr::Var(_) | Expr::AddrIn(..) => return None,
        Expr::InSet(a, set) => set.contains(const_value(a)?) as i64,
        Expr::Unary(op, a) => ir::apply_unary(*op, const_value(a)?),
        Expr::Binary(op, a, b) => ir::apply_binary(*op, const_value(a)?, const_value(b)?),
        Expr::Logic(op, terms) => {
            let values = terms.iter().map(const_value).collect::<Option<Vec<_>>>()?;
            match op {
                ir::LogicOp::And => values.iter().all(|v| *v != 0) as i64,
                ir::LogicOp::Or => values.iter().any(|v| *v != 0) as i64,
            }
        }
        Expr::Cond(c, t, e) => {
            if const_value(c)? != 0 {
                const_value(t)?
            } else {
                const_value(e)?
            }
        }
    })
}
