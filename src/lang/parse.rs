//! Parser: filter source to the syntax tree ([`ast`](super::ast)).
//!
//! The grammar is C's, restricted to expressions (loosest first):
//!
//! ```text
//! expr    = binary [ "?" expr ":" expr ]       `?:` nests to the right
//! binary  = operand { infix operand }          `||` 1, `&&` 2, `|` 3 ... `*` 10
//! operand = { "!" | "~" | "-" | "+" } primary [ "in" set ]  (`not` is `!`)
//! primary = integer | name | address | "(" expr ")"
//! set     = "{" [ member { "," member } [ "," ] ] "}" | range
//! member  = int | range | address                 address: `10.0.0.0/8`, `fd00::1`
//! range   = int ".." int                           int: [ "-" ] integer
//! ```
//!
//! `in` binds tighter than every operator, prefix ones included: its left
//! side is a primary, so `!dst_port in 1..1023` is `!(dst_port in
//! 1..1023)` and `x + 1 in s` is `x + (1 in s)`.
//!
//! The parser does not recurse. It reads operands and operators in turn
//! and keeps its state on explicit stacks: per nesting level (the whole
//! filter, each open `(`, each open `?` awaiting its `:`) a `Frame`
//! with the operators waiting for their right operand (precedence
//! climbing without one call per level), the prefix operators seen, and
//! the arms of a `?:` chain. Hostile input therefore cannot overflow the
//! stack, whatever the build or thread; [`MAX_DEPTH`] bounds both the
//! open levels and the height of the tree built, so that later passes,
//! which do recurse, are safe too. Long flat chains (`tcp || udp || ...`)
//! are read in linear time into a single `Logic` node.

use super::ast::{BinaryOp, Expr, ExprKind, IntLit, LogicOp, Member, MemberKind, Set, UnaryOp};
use super::diag::{Diagnostic, position_of};
use super::lex::{Lexer, Token, TokenKind};
use super::span::Span;

/// The most levels a filter may nest: the height of its tree (a leaf is 1,
/// every other node 1 more than its deepest child), and the number of
/// parentheses and `?` middle operands open at once.
pub const MAX_DEPTH: usize = 512;

/// Parses a whole filter, stopping at the first error.
pub fn parse(source: &str) -> Result<Expr, Diagnostic> {
    let mut parser = Parser::new(source)?;
    if parser.current.is_none() {
        return Err(Diagnostic::new("empty filter", Span::new(0, 0))
            .with_help("write an expression such as `tcp && dst_port == 80`"));
    }
    let mut next = Next::Operand;
    loop {
        next = match next {
            Next::Operand => parser.operand()?,
            Next::Operator(operand) => parser.operator(operand)?,
            Next::Done(expr) => return Ok(expr),
        };
    }
}

/// A copy of `expr` with every span set to `Span::default()`, so that trees
/// can be compared by structure alone.
pub fn strip_spans(expr: &Expr) -> Expr {
    let none = Span::default();
    let kind = match &expr.kind {
        ExprKind::Int(value) => ExprKind::Int(*value),
        ExprKind::Name(name) => ExprKind::Name(name.clone()),
        ExprKind::Addr(addr) => ExprKind::Addr(*addr),
        ExprKind::In { operand, set, .. } => ExprKind::In {
            operand: Box::new(strip_spans(operand)),
            in_span: none,
            set: Set {
                members: set
                    .members
                    .iter()
                    .map(|m| Member {
                        kind: m.kind,
                        span: none,
                    })
                    .collect(),
                span: none,
            },
        },
        ExprKind::Unary { op, operand, .. } => ExprKind::Unary {
            op: *op,
            op_span: none,
            operand: Box::new(strip_spans(operand)),
        },
        ExprKind::Binary { op, lhs, rhs, .. } => ExprKind::Binary {
            op: *op,
            op_span: none,
            lhs: Box::new(strip_spans(lhs)),
            rhs: Box::new(strip_spans(rhs)),
        },
        ExprKind::Logic { op, terms } => ExprKind::Logic {
            op: *op,
            terms: terms.iter().map(strip_spans).collect(),
        },
        ExprKind::Cond {
            cond,
            then,
            otherwise,
        } => ExprKind::Cond {
            cond: Box::new(strip_spans(cond)),
            then: Box::new(strip_spans(then)),
            otherwise: Box::new(strip_spans(otherwise)),
        },
    };
    Expr { kind, span: none }
}

/// What the parser reads next.
enum Next {
    /// An operand, after prefix operators.
    Operand,
    /// An operator (or a closing `)`, `:`, end of input) after this operand.
    Operator(Operand),
    /// Nothing: the filter is complete.
    Done(Expr),
}

/// A parsed subtree and its height, kept so the depth limit costs nothing
/// to check.
struct Node {
    expr: Expr,
    height: usize,
}

/// A complete operand, possibly an operator's left-hand side.
struct Operand {
    node: Node,
    /// The node is a `Logic` chain still being written, which a following
    /// operator of the same kind extends instead of nesting. Parenthesized
    /// chains are closed, so `a && (b && c)` stays two nodes.
    open_chain: bool,
}

/// Where an inner nesting level began, and so what ends it. (The level
/// of the whole filter ends with the input.)
enum Opener {
    /// A `(`, ended by `)`.
    Paren(Span),
    /// The middle operand of `cond ? then : otherwise`, ended by `:`.
    Middle { cond: Node, question: Span },
}

/// One nesting level being read: an `expr` of the grammar.
#[derive(Default)]
struct Frame {
    /// The `cond ? then :` parts of a `?:` chain read so far; the operand
    /// after the last `:` completes it. Kept flat so that a long
    /// `a ? b : c ? d : ...` chain is not a tower of open levels.
    arms: Vec<(Node, Span, Node)>,
    /// Operands waiting for their right-hand side, each with the operator
    /// after it. Precedence strictly increases towards the top, so this
    /// holds at most one entry per precedence level.
    pending: Vec<(Operand, Infix, Span)>,
    /// Prefix operators read before the next primary.
    prefixes: Vec<(UnaryOp, Span)>,
}

impl Frame {
    /// Gives `rhs` to the operators waiting for it whose precedence is at
    /// least `at_least`. Operators are left-associative: an equal
    /// precedence waiting is complete and combined first.
    fn reduce(&mut self, mut rhs: Operand, at_least: u8) -> Result<Operand, Diagnostic> {
        while let Some((lhs, op, op_span)) = self
            .pending
            .pop_if(|(_, pending, _)| pending.precedence() >= at_least)
        {
            rhs = combine(lhs, op, op_span, rhs)?;
        }
        Ok(rhs)
    }

    /// The level's whole expression, `last` being its final operand.
    fn finish(mut self, last: Operand) -> Result<Node, Diagnostic> {
        let otherwise = self.reduce(last, 0)?.node;
        self.arms
            .into_iter()
            .rev()
            .try_fold(otherwise, |otherwise, (cond, question, then)| {
                let tallest = cond.height.max(then.height).max(otherwise.height);
                let height = checked_height(tallest + 1, question)?;
                let span = cond.expr.span.to(otherwise.expr.span);
                let kind = ExprKind::Cond {
                    cond: Box::new(cond.expr),
                    then: Box::new(then.expr),
                    otherwise: Box::new(otherwise.expr),
                };
                Ok(Node {
                    expr: Expr { kind, span },
                    height,
                })
            })
    }
}

/// An infix operator: `&&` and `||` make `Logic` chains, the rest
/// `Binary` nodes.
#[derive(Clone, Copy)]
enum Infix {
    Binary(BinaryOp),
    Logic(LogicOp),
}

impl Infix {
    fn of(kind: TokenKind) -> Option<Infix> {
        use TokenKind as T;
        let binary = match kind {
            T::AndAnd => return Some(Infix::Logic(LogicOp::And)),
            T::OrOr => return Some(Infix::Logic(LogicOp::Or)),
            T::Star => BinaryOp::Mul,
            T::Slash => BinaryOp::Div,
            T::Percent => BinaryOp::Rem,
            T::Plus => BinaryOp::Add,
            T::Minus => BinaryOp::Sub,
            T::Shl => BinaryOp::Shl,
            T::Shr => BinaryOp::Shr,
            T::Lt => BinaryOp::Lt,
            T::Le => BinaryOp::Le,
            T::Gt => BinaryOp::Gt,
            T::Ge => BinaryOp::Ge,
            T::EqEq => BinaryOp::Eq,
            T::Ne => BinaryOp::Ne,
            T::Amp => BinaryOp::BitAnd,
            T::Caret => BinaryOp::BitXor,
            T::Pipe => BinaryOp::BitOr,
            _ => return None,
        };
        Some(Infix::Binary(binary))
    }

    fn precedence(self) -> u8 {
        match self {
            Infix::Binary(op) => op.precedence(),
            Infix::Logic(op) => op.precedence(),
        }
    }
}

fn prefix_op(kind: TokenKind) -> Option<UnaryOp> {
    match kind {
        TokenKind::Not => Some(UnaryOp::Not),
        TokenKind::Tilde => Some(UnaryOp::BitNot),
        TokenKind::Minus => Some(UnaryOp::Neg),
        TokenKind::Plus => Some(UnaryOp::Plus),
        _ => None,
    }
}

fn too_deep(at: Span) -> Diagnostic {
    Diagnostic::new(
        format!("expression nests too deeply (more than {MAX_DEPTH} levels)"),
        at,
    )
}

/// `height` if a node that tall is allowed; `at` is the node's operator.
fn checked_height(height: usize, at: Span) -> Result<usize, Diagnostic> {
    if height > MAX_DEPTH {
        Err(too_deep(at))
    } else {
        Ok(height)
    }
}

/// `lhs op rhs` as a node, extending `lhs` instead when it is an open chain
/// of the same logical operator.
fn combine(
    mut lhs: Operand,
    op: Infix,
    op_span: Span,
    rhs: Operand,
) -> Result<Operand, Diagnostic> {
    let span = lhs.node.expr.span.to(rhs.node.expr.span);
    if let Infix::Logic(op) = op
        && lhs.open_chain
        && let ExprKind::Logic {
            op: chain_op,
            terms,
        } = &mut lhs.node.expr.kind
        && *chain_op == op
    {
        // The chain's height already counts its own level.
        lhs.node.height = checked_height(lhs.node.height.max(rhs.node.height + 1), op_span)?;
        terms.push(rhs.node.expr);
        lhs.node.expr.span = span;
        return Ok(lhs);
    }
    let height = checked_height(lhs.node.height.max(rhs.node.height) + 1, op_span)?;
    let (kind, open_chain) = match op {
        Infix::Logic(op) => {
            let terms = vec![lhs.node.expr, rhs.node.expr];
            (ExprKind::Logic { op, terms }, true)
        }
        Infix::Binary(op) => (
            ExprKind::Binary {
                op,
                op_span,
                lhs: Box::new(lhs.node.expr),
                rhs: Box::new(rhs.node.expr),
            },
            false,
        ),
    };
    Ok(Operand {
        node: Node {
            expr: Expr { kind, span },
            height,
        },
        open_chain,
    })
}

struct Parser<'s> {
    source: &'s str,
    lexer: Lexer<'s>,
    /// The one token of lookahead; `None` at the end of input.
    current: Option<Token>,
    /// Where the last consumed token ends: "found end of input" errors
    /// point there, next to the text that needs continuing, rather than
    /// after trailing comments.
    last_end: usize,
    /// The level of the whole filter.
    start: Frame,
    /// The levels opened inside it, innermost last.
    open: Vec<(Opener, Frame)>,
}

impl<'s> Parser<'s> {
    fn new(source: &'s str) -> Result<Parser<'s>, Diagnostic> {
        let mut lexer = Lexer::new(source);
        let current = lexer.next_token()?;
        Ok(Parser {
            source,
            lexer,
            current,
            last_end: 0,
            start: Frame::default(),
            open: Vec::new(),
        })
    }

    fn bump(&mut self) -> Result<(), Diagnostic> {
        if let Some(token) = self.current {
            self.last_end = token.span.end;
        }
        self.current = self.lexer.next_token()?;
        Ok(())
    }

    /// The innermost open level.
    fn frame(&mut self) -> &mut Frame {
        match self.open.last_mut() {
            Some((_, frame)) => frame,
            None => &mut self.start,
        }
    }

    /// Opens a nesting level at the current token, which `opener` began.
    fn open(&mut self, opener: Opener, at: Span) -> Result<Next, Diagnostic> {
        if self.open.len() == MAX_DEPTH {
            return Err(too_deep(at));
        }
        self.open.push((opener, Frame::default()));
        self.bump()?;
        Ok(Next::Operand)
    }

    /// Reads prefix operators, then a name, a literal, or the `(` of a
    /// group, whose contents are read as a new level.
    fn operand(&mut self) -> Result<Next, Diagnostic> {
        while let Some(token) = self.current
            && let Some(op) = prefix_op(token.kind)
        {
            let prefixes = &mut self.frame().prefixes;
            // With this operator the tree has at least `len + 2` levels;
            // stopping here keeps a million `!` from being read first.
            if prefixes.len() + 1 >= MAX_DEPTH {
                return Err(too_deep(token.span));
            }
            prefixes.push((op, token.span));
            self.bump()?;
        }
        let Some(token) = self.current else {
            return Err(self.expected("an expression"));
        };
        let kind = match token.kind {
            TokenKind::Int(value) => ExprKind::Int(value),
            TokenKind::Name => ExprKind::Name(token.text(self.source).to_string()),
            TokenKind::Addr(addr) => ExprKind::Addr(addr),
            TokenKind::LParen => return self.open(Opener::Paren(token.span), token.span),
            TokenKind::LBrace | TokenKind::DotDot => {
                return Err(self.expected("an expression").with_help(
                    "a set or range can only follow `in`, as in `dst_port in {80, 443}`",
                ));
            }
            _ => return Err(self.expected("an expression")),
        };
        self.bump()?;
        let leaf = Node {
            expr: Expr {
                kind,
                span: token.span,
            },
            height: 1,
        };
        self.after_primary(leaf)
    }

    /// Reads `in set` after a primary, if it follows, then applies the
    /// prefix operators: `in` binds tighter than they do.
    fn after_primary(&mut self, node: Node) -> Result<Next, Diagnostic> {
        let node = match self.current {
            Some(token) if token.kind == TokenKind::In => {
                self.bump()?;
                let set = self.set()?;
                let height = checked_height(node.height + 1, token.span)?;
                let span = node.expr.span.to(set.span);
                let kind = ExprKind::In {
                    operand: Box::new(node.expr),
                    in_span: token.span,
                    set,
                };
                Node {
                    expr: Expr { kind, span },
                    height,
                }
            }
            _ => node,
        };
        self.apply_prefixes(node)
    }

    /// The right side of `in`: a set in braces or a bare range.
    fn set(&mut self) -> Result<Set, Diagnostic> {
        const WHAT: &str = "a set such as `{80, 443}` or a range such as `1..1023`";
        let open = match self.current {
            Some(token) if token.kind == TokenKind::LBrace => token.span,
            _ => {
                let member = self.member(WHAT)?;
                if let MemberKind::Range(..) = member.kind {
                    return Ok(Set {
                        span: member.span,
                        members: vec![member],
                    });
                }
                return Err(Diagnostic::new(
                    format!("expected {WHAT}, found `{}`", member.kind),
                    member.span,
                )
                .with_help(format!(
                    "a set is written in braces, even with one member: `{{{}}}`",
                    member.kind
                )));
            }
        };
        self.bump()?;
        let unclosed = || {
            Diagnostic::new("unclosed `{`", open)
                .with_help("the filter ends before this `{` is closed")
        };
        let mut members = Vec::new();
        loop {
            match self.current {
                None => return Err(unclosed()),
                Some(token) if token.kind == TokenKind::RBrace => {
                    self.bump()?;
                    return Ok(Set {
                        members,
                        span: open.to(token.span),
                    });
                }
                Some(_) => {}
            }
            members.push(self.member("a number, range or address")?);
            match self.current.map(|t| t.kind) {
                Some(TokenKind::Comma) => self.bump()?,
                Some(TokenKind::RBrace) => {}
                None => return Err(unclosed()),
                Some(_) => {
                    return Err(self.expected("`,` or `}`").with_help(format!(
                        "members of the set at {} are separated by `,`",
                        self.position(open)
                    )));
                }
            }
        }
    }

    /// One member of a set; `what` names what was expected, for the error.
    fn member(&mut self, what: &str) -> Result<Member, Diagnostic> {
        if let Some(token) = self.current
            && let TokenKind::Addr(addr) = token.kind
        {
            self.bump()?;
            if let Some(next) = self.current
                && next.kind == TokenKind::DotDot
            {
                return Err(
                    Diagnostic::new("address ranges are not supported", next.span)
                        .with_help("write the addresses as prefixes, such as `10.0.0.0/24`"),
                );
            }
            return Ok(Member {
                kind: MemberKind::Addr(addr),
                span: token.span,
            });
        }
        let (lo, lo_span) = self.int_lit(what)?;
        let Some(dots) = self.current.filter(|t| t.kind == TokenKind::DotDot) else {
            return Ok(Member {
                kind: MemberKind::Int(lo),
                span: lo_span,
            });
        };
        self.bump()?;
        let (hi, hi_span) = self.int_lit("a number to end the range").map_err(|e| {
            if e.help.is_none() {
                e.with_help(format!(
                    "a range is two numbers around `..`, as in `1..1023` (the `..` at {})",
                    self.position(dots.span)
                ))
            } else {
                e
            }
        })?;
        Ok(Member {
            kind: MemberKind::Range(lo, hi),
            span: lo_span.to(hi_span),
        })
    }

    /// An integer literal with an optional leading `-`.
    fn int_lit(&mut self, what: &str) -> Result<(IntLit, Span), Diagnostic> {
        let mut negative = None;
        if let Some(token) = self.current
            && token.kind == TokenKind::Minus
        {
            negative = Some(token.span);
            self.bump()?;
        }
        match self.current.map(|token| (token, token.kind)) {
            Some((token, TokenKind::Int(magnitude))) => {
                self.bump()?;
                let lit = IntLit {
                    negative: negative.is_some(),
                    magnitude,
                };
                Ok((lit, negative.unwrap_or(token.span).to(token.span)))
            }
            Some((_, TokenKind::Name)) => Err(self
                .expected(what)
                .with_help("set members are literals: numbers, ranges, addresses and prefixes")),
            _ => Err(self.expected(what)),
        }
    }

    /// Wraps a primary in the prefix operators read before it.
    fn apply_prefixes(&mut self, mut node: Node) -> Result<Next, Diagnostic> {
        let prefixes = std::mem::take(&mut self.frame().prefixes);
        for (op, op_span) in prefixes.into_iter().rev() {
            let height = checked_height(node.height + 1, op_span)?;
            let span = op_span.to(node.expr.span);
            let kind = ExprKind::Unary {
                op,
                op_span,
                operand: Box::new(node.expr),
            };
            node = Node {
                expr: Expr { kind, span },
                height,
            };
        }
        Ok(Next::Operator(Operand {
            node,
            open_chain: false,
        }))
    }

    /// Reads what follows `operand`: an infix operator, `?`, or the end of
    /// the current level.
    fn operator(&mut self, operand: Operand) -> Result<Next, Diagnostic> {
        let Some(token) = self.current else {
            return self.end_of_input(operand);
        };
        if let Some(op) = Infix::of(token.kind) {
            let frame = self.frame();
            let lhs = frame.reduce(operand, op.precedence())?;
            frame.pending.push((lhs, op, token.span));
            self.bump()?;
            return Ok(Next::Operand);
        }
        if token.kind == TokenKind::Question {
            let frame = self.frame();
            // Each arm of a chain adds a level above the ones to its right,
            // so a long chain is too deep before it is complete.
            if frame.arms.len() + 1 >= MAX_DEPTH {
                return Err(too_deep(token.span));
            }
            let cond = frame.reduce(operand, 0)?.node;
            let middle = Opener::Middle {
                cond,
                question: token.span,
            };
            return self.open(middle, token.span);
        }
        let closes = matches!(
            (self.open.last(), token.kind),
            (Some((Opener::Paren(_), _)), TokenKind::RParen)
                | (Some((Opener::Middle { .. }, _)), TokenKind::Colon)
        );
        if closes && let Some((opener, frame)) = self.open.pop() {
            let mut node = frame.finish(operand)?;
            self.bump()?;
            return match opener {
                Opener::Paren(open) => {
                    node.expr.span = open.to(token.span);
                    self.after_primary(node)
                }
                Opener::Middle { cond, question } => {
                    self.frame().arms.push((cond, question, node));
                    Ok(Next::Operand)
                }
            };
        }
        Err(self.misplaced(token))
    }

    /// Completes the filter, or reports the level left open.
    fn end_of_input(&mut self, last: Operand) -> Result<Next, Diagnostic> {
        match self.open.last() {
            None => {
                let start = std::mem::take(&mut self.start);
                Ok(Next::Done(start.finish(last)?.expr))
            }
            Some((Opener::Paren(open), _)) => Err(Diagnostic::new("unclosed parenthesis", *open)
                .with_help("the filter ends before this `(` is closed")),
            Some((Opener::Middle { question, .. }, _)) => Err(self.missing_colon(*question)),
        }
    }

    /// The error for `token` after a complete operand where it neither
    /// continues the expression nor closes the current level.
    fn misplaced(&self, token: Token) -> Diagnostic {
        let unexpected =
            || Diagnostic::new(format!("unexpected {}", self.describe(token)), token.span);
        match token.kind {
            TokenKind::Comma => {
                return Diagnostic::new(
                    "the comma operator is not part of the filter language",
                    token.span,
                )
                .with_help(
                    "combine conditions with `&&` or `||`; commas separate the members of a \
                     set, as in `dst_port in {80, 443}`",
                );
            }
            TokenKind::In => {
                return unexpected().with_help(
                    "`in` binds tighter than every operator and its left side is a name, a \
                     literal or a parenthesized expression: write `(a in b) in c`",
                );
            }
            TokenKind::DotDot => {
                return unexpected()
                    .with_help("a range can only follow `in`, as in `dst_port in 1..1023`");
            }
            TokenKind::LBrace => {
                return unexpected()
                    .with_help("a set can only follow `in`, as in `dst_port in {80, 443}`");
            }
            TokenKind::Colon if self.glued_colon(token) => {
                return unexpected().with_help(
                    "if this is an IPv6 address, it is not a valid one: eight groups of hex \
                     digits separated by `:`, or fewer with one `::`",
                );
            }
            _ => {}
        }
        match self.open.last() {
            None if token.kind == TokenKind::RParen => Diagnostic::new("unmatched `)`", token.span)
                .with_help("remove it, or add the `(` it should close"),
            None => {
                let error = Diagnostic::new(
                    format!(
                        "unexpected {} after the end of the expression",
                        self.describe(token)
                    ),
                    token.span,
                );
                if token.kind == TokenKind::Colon {
                    error.with_help("`:` belongs after `condition ? value`")
                } else {
                    error.with_help("missing an operator such as `&&` or `||` before it?")
                }
            }
            Some((Opener::Paren(open), _)) => self.expected("`)`").with_help(format!(
                "to close the `(` at {}; or is an operator missing?",
                self.position(*open)
            )),
            Some((Opener::Middle { question, .. }, _)) => self.missing_colon(*question),
        }
    }

    /// Whether a `:` touches hex digits on both sides, as in a mistyped
    /// IPv6 address (`2001:db8:1`).
    fn glued_colon(&self, token: Token) -> bool {
        let bytes = self.source.as_bytes();
        let before = token.span.start.checked_sub(1).map(|i| bytes[i]);
        let after = bytes.get(token.span.end).copied();
        before.is_some_and(|b| b.is_ascii_hexdigit())
            && after.is_some_and(|b| b.is_ascii_hexdigit())
    }

    fn missing_colon(&self, question: Span) -> Diagnostic {
        self.expected("`:`").with_help(format!(
            "the `?` at {} needs a `:` and a value for when the condition is false",
            self.position(question)
        ))
    }

    /// How a message names a token: its text in backticks, shortened so a
    /// pasted megabyte-long name does not become a megabyte-long message.
    fn describe(&self, token: Token) -> String {
        const LONGEST: usize = 40;
        let text = token.text(self.source);
        match text.char_indices().nth(LONGEST) {
            Some((cut, _)) => format!("`{}...`", &text[..cut]),
            None => format!("`{text}`"),
        }
    }

    /// "expected X, found Y" for the current token.
    fn expected(&self, what: &str) -> Diagnostic {
        match self.current {
            Some(token) => Diagnostic::new(
                format!("expected {what}, found {}", self.describe(token)),
                token.span,
            ),
            None => Diagnostic::new(
                format!("expected {what}, found end of input"),
                Span::new(self.last_end, self.last_end),
            ),
        }
    }

    /// Where `at` starts, as `line:column`, for help that refers to other
    /// text than the error's.
    fn position(&self, at: Span) -> String {
        let position = position_of(self.source, at.start);
        format!("{}:{}", position.line, position.column)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(source: &str) -> Expr {
        let expr = parse(source).unwrap_or_else(|e| panic!("{}", e.render(source, "test")));
        strip_spans(&expr)
    }

    fn leaf(name: &str) -> Expr {
        Expr {
            kind: ExprKind::Name(name.to_string()),
            span: Span::default(),
        }
    }

    fn logic(op: LogicOp, terms: Vec<Expr>) -> Expr {
        Expr {
            kind: ExprKind::Logic { op, terms },
            span: Span::default(),
        }
    }

    fn message(source: &str) -> (String, Span) {
        let err = parse(source).expect_err(source);
        (err.message, err.span)
    }

    #[test]
    fn logic_chains_flatten_but_not_through_parentheses() {
        let (a, b, c) = (leaf("a"), leaf("b"), leaf("c"));
        assert_eq!(
            tree("a && b and c"),
            logic(LogicOp::And, vec![a.clone(), b.clone(), c.clone()])
        );
        assert_eq!(
            tree("a && b || c"),
            logic(
                LogicOp::Or,
                vec![logic(LogicOp::And, vec![a.clone(), b.clone()]), c.clone()]
            )
        );
        assert_eq!(
            tree("a && (b && c)"),
            logic(
                LogicOp::And,
                vec![a.clone(), logic(LogicOp::And, vec![b.clone(), c.clone()])]
            )
        );
        assert_eq!(
            tree("(a && b) && c"),
            logic(LogicOp::And, vec![logic(LogicOp::And, vec![a, b]), c])
        );
    }

    #[test]
    fn spans_cover_the_text_and_parentheses() {
        let source = "!(a + b) * c";
        let expr = parse(source).unwrap();
        assert_eq!(expr.span, Span::new(0, 12));
        let ExprKind::Binary {
            lhs, op_span, rhs, ..
        } = &expr.kind
        else {
            panic!("{expr:?}")
        };
        assert_eq!(*op_span, Span::new(9, 10));
        assert_eq!(rhs.span, Span::new(11, 12));
        assert_eq!(lhs.span, Span::new(0, 8));
        let ExprKind::Unary { operand, .. } = &lhs.kind else {
            panic!("{lhs:?}")
        };
        assert_eq!(operand.span, Span::new(1, 8));

        let logic = parse("(a) || b || ((c))").unwrap();
        assert_eq!(logic.span, Span::new(0, 17));
        let ExprKind::Logic { terms, .. } = &logic.kind else {
            panic!("{logic:?}")
        };
        let spans: Vec<Span> = terms.iter().map(|t| t.span).collect();
        assert_eq!(spans, [Span::new(0, 3), Span::new(7, 8), Span::new(12, 17)]);
    }

    #[test]
    fn errors() {
        for (source, text, at) in [
            ("", "empty filter", (0, 0)),
            (" # nothing", "empty filter", (0, 0)),
            (
                "tcp udp",
                "unexpected `udp` after the end of the expression",
                (4, 7),
            ),
            ("a)", "unmatched `)`", (1, 2)),
            ("(a", "unclosed parenthesis", (0, 1)),
            ("(a b)", "expected `)`, found `b`", (3, 4)),
            ("a && )", "expected an expression, found `)`", (5, 6)),
            (
                "a && # more\n",
                "expected an expression, found end of input",
                (4, 4),
            ),
            ("a ? b", "expected `:`, found end of input", (5, 5)),
            ("a ? b c", "expected `:`, found `c`", (6, 7)),
            (
                "a : b",
                "unexpected `:` after the end of the expression",
                (2, 3),
            ),
            (
                "tcp = 1 )",
                "`=` is assignment, which filters do not have",
                (4, 5),
            ),
            (") = 1", "expected an expression, found `)`", (0, 1)),
        ] {
            assert_eq!(
                message(source),
                (text.to_string(), Span::new(at.0, at.1)),
                "{source:?}"
            );
        }
    }

    #[test]
    fn depth_limit_is_exact() {
        let deep = "expression nests too deeply (more than 512 levels)".to_string();
        // 511 operators and a leaf are 512 levels.
        let ok = format!("{}x", "!".repeat(MAX_DEPTH - 1));
        assert!(parse(&ok).is_ok());
        let over = format!("{}x", "!".repeat(MAX_DEPTH));
        assert_eq!(message(&over), (deep.clone(), Span::new(511, 512)));

        let ok = format!("1{}", "-1".repeat(MAX_DEPTH - 1));
        assert!(parse(&ok).is_ok());
        let over = format!("1{}", "-1".repeat(MAX_DEPTH));
        assert_eq!(message(&over), (deep.clone(), Span::new(1023, 1024)));

        let ok = format!("{}x{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
        assert!(parse(&ok).is_ok());
        let over = format!(
            "{}x{}",
            "(".repeat(MAX_DEPTH + 1),
            ")".repeat(MAX_DEPTH + 1)
        );
        assert_eq!(message(&over), (deep.clone(), Span::new(512, 513)));

        let ok = format!("{}x", "x ? x : ".repeat(MAX_DEPTH - 1));
        assert!(parse(&ok).is_ok());
        let over = format!("{}x", "x ? x : ".repeat(MAX_DEPTH));
        assert_eq!(message(&over), (deep, Span::new(8 * 511 + 2, 8 * 511 + 3)));
    }

    #[test]
    fn strip_spans_clears_every_span() {
        let expr = parse("a ? -b : (c && d) + 1").unwrap();
        let stripped = strip_spans(&expr);
        assert_eq!(stripped.span, Span::default());
        assert_eq!(strip_spans(&stripped), stripped);
        assert_ne!(expr, stripped);
    }
}
