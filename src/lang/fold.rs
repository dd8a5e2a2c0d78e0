//! Simplification of checked expressions before code generation.
//!
//! Folds constant subexpressions with the language's own integer semantics
//! (`ir::apply_binary`), drops constant terms from `&&`/`||` chains and
//! picks the branch of a `?:` whose condition is constant. The result has
//! the same value as the input on every packet; the differential tests
//! check that, since the reference evaluator runs the unsimplified form.

use super::ir::{self, BinaryOp, Expr, LogicOp};

/// Returns an expression equal in value to `expr` on every packet.
pub fn fold(expr: &Expr) -> Expr {
    match expr {
        Expr::Const(_) | Expr::Var(_) => expr.clone(),
        Expr::Unary(op, a) => match fold(a) {
            Expr::Const(c) => Expr::Const(ir::apply_unary(*op, c)),
            a => Expr::Unary(*op, Box::new(a)),
        },
        Expr::Binary(op, a, b) => fold_binary(*op, fold(a), fold(b)),
        Expr::Logic(op, terms) => fold_logic(*op, terms),
        Expr::Cond(c, t, e) => match fold(c) {
            Expr::Const(c) if c != 0 => fold(t),
            Expr::Const(_) => fold(e),
            c => Expr::Cond(Box::new(c), Box::new(fold(t)), Box::new(fold(e))),
        },
        Expr::InSet(_, set) if set.is_empty() => Expr::Const(0),
        Expr::InSet(a, set) => match fold(a) {
            Expr::Const(c) => Expr::Const(set.contains(c) as i64),
            a => Expr::InSet(Box::new(a), set.clone()),
        },
        Expr::AddrIn(_, set) if set.is_empty() => Expr::Const(0),
        Expr::AddrIn(..) => expr.clone(),
    }
}

fn fold_binary(op: BinaryOp, a: Expr, b: Expr) -> Expr {
    match (&a, &b) {
        (Expr::Const(x), Expr::Const(y)) => Expr::Const(ir::apply_binary(op, *x, *y)),
        // Division by a divisor that became 0 only through simplification
        // (such as `x / (tcp && 0)`) keeps its runtime meaning, and the
        // verifier rejects a division by the immediate 0.
        (_, Expr::Const(0)) if op == BinaryOp::Div => Expr::Const(0),
        (_, Expr::Const(0)) if op == BinaryOp::Rem => a,
        _ => Expr::Binary(op, Box::new(a), Box::new(b)),
    }
}

fn fold_logic(op: LogicOp, terms: &[Expr]) -> Expr {
    // A term equal to the operator's identity (non-zero for `&&`, zero for
    // `||`) cannot change the result; one equal to its absorbing value
    // decides it, and since terms have no side effects, so do later ones.
    let mut kept = Vec::with_capacity(terms.len());
    for term in terms {
        match fold(term) {
            Expr::Const(c) => {
                let truthy = c != 0;
                match (op, truthy) {
                    (LogicOp::And, true) | (LogicOp::Or, false) => {}
                    (LogicOp::And, false) => return Expr::Const(0),
                    (LogicOp::Or, true) => return Expr::Const(1),
                }
            }
            term => kept.push(term),
        }
    }
    if kept.is_empty() {
        Expr::Const((op == LogicOp::And) as i64)
    } else {
        Expr::Logic(op, kept)
    }
}
