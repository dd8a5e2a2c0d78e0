//! Semantic checks: from the syntax tree to the checked `ir`.
//!
//! This is the only place where a syntactically valid filter can be
//! rejected: unknown names, and division or remainder by an expression that
//! is constant zero. Names are resolved here and nowhere else.

use super::ast::{self, BinaryOp, ExprKind};
use super::diag::Diagnostic;
use super::ir::{self, Expr, Filter, Need, Var};

/// Checks a parsed filter and lowers it to the `ir`.
pub fn check(expr: &ast::Expr) -> Result<Filter, Diagnostic> {
    let expr = lower(expr)?;
    let need = need_of(&expr);
    Ok(Filter {
        expr,
        need,
        direction: None,
    })
}

/// The headers an expression reads: its variables' needs, and the IP
/// header (with the IPv6 extension chain, like every network need) when it
/// tests an address.
pub fn need_of(expr: &Expr) -> Need {
    let addresses = if expr.addr_vars().is_empty() {
        Need::NOTHING
    } else {
        Need::NETWORK
    };
    expr.vars()
        .into_iter()
        .map(Var::need)
        .fold(addresses, Need::union)
}

fn lower(expr: &ast::Expr) -> Result<Expr, Diagnostic> {
    Ok(match &expr.kind {
        ExprKind::Int(value) => Expr::Const(*value as i64),
        ExprKind::Name(name) => Expr::Var(resolve(name, expr)?),
        ExprKind::Unary { op, operand, .. } => {
            let operand = lower(operand)?;
            match op {
                ast::UnaryOp::Plus => operand,
                ast::UnaryOp::Not => Expr::Unary(ir::UnaryOp::Not, Box::new(operand)),
                ast::UnaryOp::BitNot => Expr::Unary(ir::UnaryOp::BitNot, Box::new(operand)),
                ast::UnaryOp::Neg => Expr::Unary(ir::UnaryOp::Neg, Box::new(operand)),
            }
        }
        ExprKind::Binary { op, lhs, rhs, .. } => {
            let a = lower(lhs)?;
            let b = lower(rhs)?;
            if matches!(op, BinaryOp::Div | BinaryOp::Rem) && const_value(&b) == Some(0) {
                let what = if *op == BinaryOp::Div {
                    "division"
                } else {
                    "remainder"
                };
                return Err(Diagnostic::new(
                    format!("{what} by zero: this divisor is always 0"),
                    rhs.span,
                ));
            }
            Expr::Binary(*op, Box::new(a), Box::new(b))
        }
        ExprKind::Logic { op, terms } => {
            Expr::Logic(*op, terms.iter().map(lower).collect::<Result<_, _>>()?)
        }
        ExprKind::Cond {
            cond,
            then,
            otherwise,
        } => Expr::Cond(
            Box::new(lower(cond)?),
            Box::new(lower(then)?),
            Box::new(lower(otherwise)?),
        ),
    })
}

fn resolve(name: &str, at: &ast::Expr) -> Result<Var, Diagnostic> {
    if let Some(var) = Var::from_name(name) {
        return Ok(var);
    }
    let error = Diagnostic::new(format!("unknown name `{name}`"), at.span);
    let help = match name {
        "true" | "TRUE" => "write 1 for true".to_string(),
        "false" | "FALSE" => "write 0 for false".to_string(),
        "port" => "a packet has two ports: write `dst_port` or `src_port`".to_string(),
        _ => match closest(name) {
            Some(var) => format!("did you mean `{}`?", var.name()),
            None => format!("the variables are {}", variable_list()),
        },
    };
    Err(error.with_help(help))
}

/// The variable whose name is closest to a misspelled one, if any is close
/// enough to be a plausible typo.
fn closest(name: &str) -> Option<Var> {
    let lower = name.to_ascii_lowercase();
    Var::ALL
        .into_iter()
        .map(|v| (strsim::damerau_levenshtein(&lower, v.name()), v))
        .filter(|(d, v)| *d <= 1.max(v.name().len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, v)| v)
}

fn variable_list() -> String {
    Var::ALL
        .iter()
        .map(|v| format!("`{}`", v.name()))
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
