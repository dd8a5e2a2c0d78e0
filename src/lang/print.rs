//! The canonical form of a filter: one spelling for every tree, so filters
//! can be shown back to users, compared as text, and stored.
//!
//! [`print()`] writes text that parses back to the same tree (spans aside):
//!
//! - Operators are the symbols: `&&`, `||` and `!`, never `and`, `or`,
//!   `not`. Literals are decimal. Comments are gone.
//! - Binary operators and `?` `:` have one space on each side; unary
//!   operators are attached to their operand (`!tcp`, `-x`, `~mask`).
//! - Parentheses appear only where the tree needs them:
//!   - an operand that binds more loosely than its operator
//!     (`(a || b) && c`, `(a + b) * c`, `-(a + b)`);
//!   - the right operand of a binary operator at the same precedence, since
//!     all are left-associative (`a - (b - c)`; also `a + (b + c)`, which
//!     is a different tree from `a + b + c`);
//!   - a term of a `&&`/`||` chain that is itself a chain: of the same
//!     operator, so `a && (b && c)` stays two nodes instead of flattening;
//!     of the other, for readability (`a || (b && c)`, as C compilers
//!     advise);
//!   - a `?:` anywhere but the whole filter or a branch of another `?:`
//!     (`(a ? b : c) + 1`, `(a ? b : c) ? d : e`); branches never need them,
//!     as `?:` nests to the right (`a ? b : c ? d : e`);
//!   - a `-` or `+` whose operand is the same sign, which would otherwise
//!     read as the `--` or `++` the language rejects: `-(-x)`;
//!   - the left side of `in` unless it is a name or a literal, since `in`
//!     binds tighter than every operator: `(dst_port + 1) in {80}`, while
//!     `!dst_port in 1..1023` is `!(dst_port in 1..1023)`.
//! - Sets are `{a, b, lo..hi}` with `, ` between members and no trailing
//!   comma; a set of exactly one range is written bare, `lo..hi`, the
//!   same tree as `{lo..hi}`. Addresses are written in the standard form
//!   (`fd00::1`, `::ffff:10.0.0.1`), with the prefix length as written.
//!
//! The printer expects trees the parser can produce: names that are names,
//! `Logic` nodes with at least two terms, and at most
//! [`MAX_DEPTH`](super::parse::MAX_DEPTH) levels, as it recurses once per
//! level.

use super::ast::{Expr, ExprKind, MemberKind, Set, UnaryOp};
use std::fmt::Write;

/// The canonical text of `expr`; `parse(&print(e))` gives back `e`'s tree.
pub fn print(expr: &Expr) -> String {
    let mut out = String::new();
    write_expr(&mut out, expr);
    out
}

/// The precedence of `?:`, below `||`.
const COND: u8 = 0;
/// The precedence of prefix operators, above `*`.
const PREFIX: u8 = 11;

/// How tightly a node binds, on the scale of `BinaryOp::precedence`.
fn precedence(expr: &Expr) -> u8 {
    match &expr.kind {
        ExprKind::Cond { .. } => COND,
        ExprKind::Logic { op, .. } => op.precedence(),
        ExprKind::Binary { op, .. } => op.precedence(),
        ExprKind::Unary { .. } => PREFIX,
        // `in` binds tighter than prefix operators, like a primary.
        ExprKind::Int(_) | ExprKind::Name(_) | ExprKind::Addr(_) | ExprKind::In { .. } => {
            PREFIX + 1
        }
    }
}

fn write_expr(out: &mut String, expr: &Expr) {
    match &expr.kind {
        ExprKind::Int(value) => {
            // Writing to a String cannot fail.
            let _ = write!(out, "{value}");
        }
        ExprKind::Name(name) => out.push_str(name),
        ExprKind::Addr(addr) => {
            let _ = write!(out, "{addr}");
        }
        ExprKind::In { operand, set, .. } => {
            let primary = matches!(
                operand.kind,
                ExprKind::Int(_) | ExprKind::Name(_) | ExprKind::Addr(_)
            );
            write_operand(out, operand, !primary);
            out.push_str(" in ");
            write_set(out, set);
        }
        ExprKind::Unary { op, operand, .. } => {
            out.push_str(op.symbol());
            let doubled_sign = matches!(op, UnaryOp::Neg | UnaryOp::Plus)
                && matches!(&operand.kind, ExprKind::Unary { op: inner, .. } if inner == op);
            write_operand(out, operand, doubled_sign || precedence(operand) < PREFIX);
        }
        ExprKind::Binary { op, lhs, rhs, .. } => {
            let level = op.precedence();
            write_operand(out, lhs, precedence(lhs) < level);
            out.push(' ');
            out.push_str(op.symbol());
            out.push(' ');
            write_operand(out, rhs, precedence(rhs) <= level);
        }
        ExprKind::Logic { op, terms } => {
            for (i, term) in terms.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                    out.push_str(op.symbol());
                    out.push(' ');
                }
                // Any nested chain is parenthesized: a chain of the same
                // operator must be (or it would flatten), and `&&` inside
                // `||` reads better so, as C compilers also suggest.
                let chain = matches!(&term.kind, ExprKind::Logic { .. });
                write_operand(out, term, chain || precedence(term) < op.precedence());
            }
        }
        ExprKind::Cond {
            cond,
            then,
            otherwise,
        } => {
            write_operand(out, cond, precedence(cond) == COND);
            out.push_str(" ? ");
            write_expr(out, then);
            out.push_str(" : ");
            write_expr(out, otherwise);
        }
    }
}

fn write_set(out: &mut String, set: &Set) {
    if let [member] = set.members.as_slice()
        && let MemberKind::Range(..) = member.kind
    {
        let _ = write!(out, "{}", member.kind);
        return;
    }
    out.push('{');
    for (i, member) in set.members.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let _ = write!(out, "{}", member.kind);
    }
    out.push('}');
}

fn write_operand(out: &mut String, expr: &Expr, parenthesize: bool) {
    if parenthesize {
        out.push('(');
        write_expr(out, expr);
        out.push(')');
    } else {
        write_expr(out, expr);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lang::parse::parse;

    fn canonical(source: &str) -> String {
        print(&parse(source).unwrap_or_else(|e| panic!("{}", e.render(source, "test"))))
    }

    #[test]
    fn canonical_spelling() {
        for (source, expected) in [
            (
                "not tcp and udp or  icmp # comment",
                "(!tcp && udp) || icmp",
            ),
            ("0x1F+017", "31 + 15"),
            ("10ul", "10"),
            ("((a))", "a"),
            ("- - x", "-(-x)"),
            ("-(-x)", "-(-x)"),
            ("+ +x", "+(+x)"),
            ("- +x", "-+x"),
            ("-~!x", "-~!x"),
            ("a - -x", "a - -x"),
            ("-(a + b)", "-(a + b)"),
            ("a - (b - c)", "a - (b - c)"),
            ("(a - b) - c", "a - b - c"),
            ("a + (b + c)", "a + (b + c)"),
            ("(a + b) * c", "(a + b) * c"),
            ("a * b + c", "a * b + c"),
            ("a && (b && c)", "a && (b && c)"),
            ("(a && b) && c", "(a && b) && c"),
            ("(a && b) || c", "(a && b) || c"),
            ("a && b || c", "(a && b) || c"),
            ("a && (b || c)", "a && (b || c)"),
            ("(a | b) && c", "a | b && c"),
            ("a ? b : (c ? d : e)", "a ? b : c ? d : e"),
            ("(a ? b : c) ? d : e", "(a ? b : c) ? d : e"),
            ("a ? (b ? c : d) : e", "a ? b ? c : d : e"),
            ("a ? b || c : d && e", "a ? b || c : d && e"),
            ("(a ? b : c) + 1", "(a ? b : c) + 1"),
            ("x || (a ? b : c)", "x || (a ? b : c)"),
            ("!(a ? b : c)", "!(a ? b : c)"),
            ("not dst_port in 1 .. 1023", "!dst_port in 1..1023"),
            ("!(dst_port in {1..1023})", "!dst_port in 1..1023"),
            (
                "x in { 53 ,80, 0x1bb , 8000..8080, }",
                "x in {53, 80, 443, 8000..8080}",
            ),
            ("x in {}", "x in {}"),
            ("x in {-5..-1, -7}", "x in {-5..-1, -7}"),
            ("(x + 1) in {1}", "(x + 1) in {1}"),
            ("x + 1 in {1}", "x + 1 in {1}"),
            ("(x in {1}) in {0}", "(x in {1}) in {0}"),
            ("-(5 in {5})", "-5 in {5}"),
            ("(-5) in {5}", "(-5) in {5}"),
            (
                "dst_ip in {10.0.0.0/8, FD00::/8, 0:0::1, ::FFFF:10.0.0.1, 10.1.2.3/8}",
                "dst_ip in {10.0.0.0/8, fd00::/8, ::1, ::ffff:10.0.0.1, 10.1.2.3/8}",
            ),
            ("10.0.0.1 == dst_ip", "10.0.0.1 == dst_ip"),
            ("(a ? b : c) in {1}", "(a ? b : c) in {1}"),
        ] {
            assert_eq!(canonical(source), expected, "{source}");
            assert_eq!(canonical(expected), expected, "{expected} is not stable");
        }
    }
}
