//! The concrete syntax tree: what the user wrote, with a span on every node.
//!
//! It keeps spellings apart only where diagnostics need them; `and`/`&&`
//! become the same operator here. Semantic checks (names, constant
//! division by zero, types) happen in `check`, which lowers this tree to
//! `ir`.

use super::span::Span;
use std::net::IpAddr;

/// One node of a parsed filter expression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expr {
    pub kind: ExprKind,
    /// Covers the whole node, parentheses included when the node was
    /// written inside them.
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExprKind {
    /// An integer literal as written; values up to `u64::MAX` are accepted
    /// and reinterpreted as two's-complement `i64` when checked.
    Int(u64),
    /// A variable name, not yet resolved.
    Name(String),
    /// An IPv4 or IPv6 address literal, possibly with a prefix length.
    Addr(AddrLit),
    Unary {
        op: UnaryOp,
        op_span: Span,
        operand: Box<Expr>,
    },
    /// Every binary operator except `&&` and `||`.
    Binary {
        op: BinaryOp,
        op_span: Span,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
    /// A chain `a && b && c` (or `||`) flattened into one node with at least
    /// two terms, so that a filter with thousands of alternatives does not
    /// make a tree thousands of levels deep.
    Logic { op: LogicOp, terms: Vec<Expr> },
    /// `cond ? then : otherwise`
    Cond {
        cond: Box<Expr>,
        then: Box<Expr>,
        otherwise: Box<Expr>,
    },
    /// `operand in {members}` or `operand in lo..hi`. `in` binds tighter
    /// than every operator, so the operand is a name, a literal or a
    /// parenthesized expression.
    In {
        operand: Box<Expr>,
        in_span: Span,
        set: Set,
    },
}

/// An address as written, with its prefix length if one was written
/// (`10.0.0.0/8`). The lexer has checked that the length fits the family;
/// host bits may be set (`10.0.0.1/8`), and are ignored when checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AddrLit {
    pub addr: IpAddr,
    pub prefix: Option<u8>,
}

impl std::fmt::Display for AddrLit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.prefix {
            Some(len) => write!(f, "{}/{len}", self.addr),
            None => write!(f, "{}", self.addr),
        }
    }
}

/// The right side of `in`: `{a, b..c, ...}`, or a bare range `a..c`,
/// which is the same set as `{a..c}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Set {
    pub members: Vec<Member>,
    /// The braces, or the bare range.
    pub span: Span,
}

/// One member of a set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub kind: MemberKind,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemberKind {
    Int(IntLit),
    /// `lo..hi`, both included.
    Range(IntLit, IntLit),
    Addr(AddrLit),
}

/// An integer literal in a set, which may have a leading `-`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IntLit {
    pub negative: bool,
    /// The value as written, without the sign.
    pub magnitude: u64,
}

impl IntLit {
    /// The value in the language's 64-bit two's complement: like `-x` on
    /// the literal `x` outside a set.
    pub fn value(self) -> i64 {
        let v = self.magnitude as i64;
        if self.negative { v.wrapping_neg() } else { v }
    }
}

impl std::fmt::Display for IntLit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.negative {
            write!(f, "-{}", self.magnitude)
        } else {
            write!(f, "{}", self.magnitude)
        }
    }
}

impl std::fmt::Display for MemberKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MemberKind::Int(v) => write!(f, "{v}"),
            MemberKind::Range(lo, hi) => write!(f, "{lo}..{hi}"),
            MemberKind::Addr(a) => write!(f, "{a}"),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UnaryOp {
    /// `!` or `not`
    Not,
    /// `~`
    BitNot,
    /// `-`
    Neg,
    /// `+`
    Plus,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LogicOp {
    /// `&&` or `and`
    And,
    /// `||` or `or`
    Or,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinaryOp {
    Mul,
    Div,
    Rem,
    Add,
    Sub,
    Shl,
    Shr,
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
    BitAnd,
    BitXor,
    BitOr,
}

impl UnaryOp {
    pub fn symbol(self) -> &'static str {
        match self {
            UnaryOp::Not => "!",
            UnaryOp::BitNot => "~",
            UnaryOp::Neg => "-",
            UnaryOp::Plus => "+",
        }
    }
}

impl LogicOp {
    pub fn symbol(self) -> &'static str {
        match self {
            LogicOp::And => "&&",
            LogicOp::Or => "||",
        }
    }
}

impl BinaryOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
            BinaryOp::Rem => "%",
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Shl => "<<",
            BinaryOp::Shr => ">>",
            BinaryOp::Lt => "<",
            BinaryOp::Le => "<=",
            BinaryOp::Gt => ">",
            BinaryOp::Ge => ">=",
            BinaryOp::Eq => "==",
            BinaryOp::Ne => "!=",
            BinaryOp::BitAnd => "&",
            BinaryOp::BitXor => "^",
            BinaryOp::BitOr => "|",
        }
    }

    /// C's binding strength: higher binds tighter. `&&` is 2 and `||` 1
    /// (see `LogicOp`), `?:` is 0.
    pub fn precedence(self) -> u8 {
        match self {
            BinaryOp::Mul | BinaryOp::Div | BinaryOp::Rem => 10,
            BinaryOp::Add | BinaryOp::Sub => 9,
            BinaryOp::Shl | BinaryOp::Shr => 8,
            BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge => 7,
            BinaryOp::Eq | BinaryOp::Ne => 6,
            BinaryOp::BitAnd => 5,
            BinaryOp::BitXor => 4,
            BinaryOp::BitOr => 3,
        }
    }
}

impl LogicOp {
    pub fn precedence(self) -> u8 {
        match self {
            LogicOp::And => 2,
            LogicOp::Or => 1,
        }
    }
}
