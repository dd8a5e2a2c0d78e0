//! The filter language's syntax, end to end: precedence, literals, the
//! canonical printer, diagnostics as users see them (the checker's type
//! errors included), and hostile input.

use portwall::lang::ast::{
    AddrLit, BinaryOp, Expr, ExprKind, IntLit, LogicOp, Member, MemberKind, Set, UnaryOp,
};
use portwall::lang::check;
use portwall::lang::diag::Diagnostic;
use portwall::lang::lex::source_from_bytes;
use portwall::lang::parse::{MAX_DEPTH, parse, strip_spans};
use portwall::lang::print::print;
use portwall::lang::span::Span;
use std::time::{Duration, Instant};

fn parsed(source: &str) -> Expr {
    parse(source).unwrap_or_else(|e| panic!("{}", e.render(source, "filter")))
}

/// Every node in parentheses, `Logic` chains as one group: the test's
/// independent view of the tree's shape.
fn full(expr: &Expr) -> String {
    match &expr.kind {
        ExprKind::Int(value) => value.to_string(),
        ExprKind::Name(name) => name.clone(),
        ExprKind::Unary { op, operand, .. } => format!("({}{})", op.symbol(), full(operand)),
        ExprKind::Binary { op, lhs, rhs, .. } => {
            format!("({} {} {})", full(lhs), op.symbol(), full(rhs))
        }
        ExprKind::Logic { op, terms } => {
            let terms: Vec<String> = terms.iter().map(full).collect();
            format!("({})", terms.join(&format!(" {} ", op.symbol())))
        }
        ExprKind::Cond {
            cond,
            then,
            otherwise,
        } => format!("({} ? {} : {})", full(cond), full(then), full(otherwise)),
        ExprKind::Addr(addr) => address(addr),
        ExprKind::In { operand, set, .. } => {
            let members: Vec<String> = set.members.iter().map(|m| member(&m.kind)).collect();
            format!("({} in {{{}}})", full(operand), members.join(", "))
        }
    }
}

fn address(addr: &AddrLit) -> String {
    match addr.prefix {
        Some(len) => format!("{}/{len}", addr.addr),
        None => addr.addr.to_string(),
    }
}

fn int_lit(v: IntLit) -> String {
    format!("{}{}", if v.negative { "-" } else { "" }, v.magnitude)
}

fn member(kind: &MemberKind) -> String {
    match kind {
        MemberKind::Int(v) => int_lit(*v),
        MemberKind::Range(lo, hi) => format!("{}..{}", int_lit(*lo), int_lit(*hi)),
        MemberKind::Addr(a) => address(a),
    }
}

/// Inputs and their shape under C's rules, worked out by hand from the C
/// standard's grammar (not from `precedence()`).
const SHAPES: &[(&str, &str)] = &[
    // The filters of the original C program.
    (
        "icmp || (udp && dst_port == 53) || (tcp && dst_port == 80)",
        "(icmp || (udp && (dst_port == 53)) || (tcp && (dst_port == 80)))",
    ),
    ("!udp || dst_port == 53", "((!udp) || (dst_port == 53))"),
    // Logical operators: `&&` binds tighter; chains flatten.
    ("a || b && c", "(a || (b && c))"),
    ("a && b || c", "((a && b) || c)"),
    ("a && b && c", "(a && b && c)"),
    ("a || b || c && d", "(a || b || (c && d))"),
    ("a && b || c && d || e", "((a && b) || (c && d) || e)"),
    ("a && (b && c)", "(a && (b && c))"),
    ("(a && b) && c", "((a && b) && c)"),
    ("(a || b) && c", "((a || b) && c)"),
    ("a and b or not c", "((a && b) || (!c))"),
    ("a | b && c", "((a | b) && c)"),
    ("a >= 1 && a <= 10", "((a >= 1) && (a <= 10))"),
    // Unary operators bind tightest.
    ("!a == b", "((!a) == b)"),
    ("!a && b", "((!a) && b)"),
    ("-x * y", "((-x) * y)"),
    ("~a & b", "((~a) & b)"),
    ("- -x", "(-(-x))"),
    ("!!x", "(!(!x))"),
    ("-+~!x", "(-(+(~(!x))))"),
    ("not not x", "(!(!x))"),
    ("a - -b", "(a - (-b))"),
    ("a * -b + c", "((a * (-b)) + c)"),
    ("-(a + b)", "(-(a + b))"),
    // Arithmetic and shifts, all left-associative.
    ("1 - 2 - 3", "((1 - 2) - 3)"),
    ("1 - (2 - 3)", "(1 - (2 - 3))"),
    ("a / b * c", "((a / b) * c)"),
    ("a % b / c", "((a % b) / c)"),
    ("a + b * c", "(a + (b * c))"),
    ("a * b + c * d", "((a * b) + (c * d))"),
    ("a << 1 + 2", "(a << (1 + 2))"),
    ("a + b << c", "((a + b) << c)"),
    ("a >> b >> c", "((a >> b) >> c)"),
    // Comparisons and equality.
    ("a < b << c", "(a < (b << c))"),
    ("a < b == c < d", "((a < b) == (c < d))"),
    ("a == b == c", "((a == b) == c)"),
    ("a != b < c", "(a != (b < c))"),
    ("a <= b > c", "((a <= b) > c)"),
    // Bitwise operators bind looser than `==`: C's famous trap.
    ("a & b == c", "(a & (b == c))"),
    ("a & b ^ c", "((a & b) ^ c)"),
    ("a ^ b | c", "((a ^ b) | c)"),
    ("a | b ^ c & d", "(a | (b ^ (c & d)))"),
    ("a & b | c ^ d", "((a & b) | (c ^ d))"),
    ("a == b & c == d", "((a == b) & (c == d))"),
    // The conditional operator: loosest, right-associative, and its
    // middle operand is a whole expression.
    ("a ? b : c ? d : e", "(a ? b : (c ? d : e))"),
    ("a ? b ? c : d : e", "(a ? (b ? c : d) : e)"),
    ("(a ? b : c) ? d : e", "((a ? b : c) ? d : e)"),
    ("a || b ? c : d", "((a || b) ? c : d)"),
    ("a ? b : c || d", "(a ? b : (c || d))"),
    ("a > b ? c : d", "((a > b) ? c : d)"),
    ("x + (a ? b : c)", "(x + (a ? b : c))"),
    ("a ? b || c : d && e", "(a ? (b || c) : (d && e))"),
    // Layout, comments and literals.
    (
        "tcp # web\n  && (dst_port == 0x50 # 80\n  || dst_port == 0750)",
        "(tcp && ((dst_port == 80) || (dst_port == 488)))",
    ),
    ("((((x))))", "x"),
    // `in` binds tighter than every operator, prefix ones included; its
    // left side is a name, a literal or a parenthesized expression.
    ("not dst_port in 1..1023", "(!(dst_port in {1..1023}))"),
    ("!dst_port in 1..1023", "(!(dst_port in {1..1023}))"),
    ("-x in {1}", "(-(x in {1}))"),
    ("~x in 0..5", "(~(x in {0..5}))"),
    ("dst_port + 1 in {80}", "(dst_port + (1 in {80}))"),
    ("(dst_port + 1) in {80}", "((dst_port + 1) in {80})"),
    ("a & b in {1}", "(a & (b in {1}))"),
    ("x in {1} == y in {2}", "((x in {1}) == (y in {2}))"),
    (
        "x in {1} && y in {2} || z",
        "(((x in {1}) && (y in {2})) || z)",
    ),
    ("(x in {1}) in {0}", "((x in {1}) in {0})"),
    (
        "a ? x in {1} : y in 1..2",
        "(a ? (x in {1}) : (y in {1..2}))",
    ),
    // Sets: any spacing, a trailing comma, empty, negative members.
    (
        "dst_port in {53, 80, 443, 8000..8080}",
        "(dst_port in {53, 80, 443, 8000..8080})",
    ),
    ("x in {1 , 2 ,}", "(x in {1, 2})"),
    ("x in {}", "(x in {})"),
    ("x in { }", "(x in {})"),
    ("x in -5..-1", "(x in {-5..-1})"),
    ("x in {- 5, 0x10..020}", "(x in {-5, 16..16})"),
    // Addresses and prefixes.
    (
        "dst_ip in {10.0.0.0/8, 192.168.0.0/16, fd00::/8, ::1}",
        "(dst_ip in {10.0.0.0/8, 192.168.0.0/16, fd00::/8, ::1})",
    ),
    ("dst_ip == 10.0.0.1", "(dst_ip == 10.0.0.1)"),
    (
        "10.0.0.1 == src_ip && dst_ip != ::ffff:10.0.0.1",
        "((10.0.0.1 == src_ip) && (dst_ip != ::ffff:10.0.0.1))",
    ),
    ("dst_ip == 2001:DB8:0:0:0:0:0:1", "(dst_ip == 2001:db8::1)"),
    ("dst_ip == ::", "(dst_ip == ::)"),
    ("x == 10.0.0.0 / 8", "(x == (10.0.0.0 / 8))"),
    // The first language's `?:` written without spaces still lexes as
    // before, although `1:2:3` looks a little like an IPv6 address.
    ("c ? d ? 1:2:3", "(c ? (d ? 1 : 2) : 3)"),
    ("c?d?e:f:0", "(c ? (d ? e : f) : 0)"),
];

#[test]
fn precedence_and_associativity() {
    for (source, shape) in SHAPES {
        assert_eq!(full(&parsed(source)), *shape, "{source}");
    }
}

#[test]
fn literals() {
    for (source, value) in [
        ("0x1F", 31),
        ("0X1f", 31),
        ("017", 15),
        ("0", 0),
        ("10u", 10),
        ("10UL", 10),
        ("10lLu", 10),
        ("0xffffffffffffffff", u64::MAX),
        ("18446744073709551615ull", u64::MAX),
    ] {
        assert_eq!(parsed(source).kind, ExprKind::Int(value), "{source}");
    }
    for (source, message, at) in [
        (
            "18446744073709551616",
            "number out of range: does not fit in 64 bits",
            Span::new(0, 20),
        ),
        ("0x1_0", "invalid suffix `_0` on number", Span::new(3, 5)),
        ("09", "invalid digit `9` in octal number", Span::new(1, 2)),
        ("10x", "invalid suffix `x` on number", Span::new(2, 3)),
    ] {
        let error = parse(source).expect_err(source);
        assert_eq!(
            (error.message.as_str(), error.span),
            (message, at),
            "{source}"
        );
    }
}

fn round_trips(expr: &Expr) {
    let text = print(expr);
    let again = parse(&text).unwrap_or_else(|e| {
        panic!(
            "{expr:?} printed as {text:?}, which does not parse:\n{}",
            e.render(&text, "printed")
        )
    });
    assert_eq!(
        strip_spans(&again),
        strip_spans(expr),
        "printed as {text:?}"
    );
    assert_eq!(print(&again), text, "printing is not stable");
}

#[test]
fn printer_round_trips_the_table() {
    for (source, _) in SHAPES {
        round_trips(&parsed(source));
    }
}

#[test]
fn printer_is_canonical() {
    assert_eq!(
        print(&parsed(
            "icmp or (udp and dst_port==0x35) # dns\n or not (tcp and dst_port == 80)"
        )),
        "icmp || (udp && dst_port == 53) || !(tcp && dst_port == 80)"
    );
    assert_eq!(
        print(&parsed("(a ? b : c) ? - -d : e")),
        "(a ? b : c) ? -(-d) : e"
    );
    assert_eq!(
        print(&parsed(
            "not dst_port in {1 .. 1023} and dst_ip in {FD00::/8,10.0.0.0/8,}"
        )),
        "!dst_port in 1..1023 && dst_ip in {fd00::/8, 10.0.0.0/8}"
    );
    assert_eq!(
        print(&parsed("!((dst_port - 1) in {0x50})")),
        "!(dst_port - 1) in {80}"
    );
    assert_eq!(print(&parsed("x in {1..5}")), "x in 1..5");
    assert_eq!(print(&parsed("x in {1..5, 7}")), "x in {1..5, 7}");
}

/// SplitMix64: a fixed seed gives the same cases on every run and machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
}

fn node(kind: ExprKind) -> Expr {
    Expr {
        kind,
        span: Span::default(),
    }
}

const UNARY: [UnaryOp; 4] = [UnaryOp::Not, UnaryOp::BitNot, UnaryOp::Neg, UnaryOp::Plus];
const BINARY: [BinaryOp; 16] = [
    BinaryOp::Mul,
    BinaryOp::Div,
    BinaryOp::Rem,
    BinaryOp::Add,
    BinaryOp::Sub,
    BinaryOp::Shl,
    BinaryOp::Shr,
    BinaryOp::Lt,
    BinaryOp::Le,
    BinaryOp::Gt,
    BinaryOp::Ge,
    BinaryOp::Eq,
    BinaryOp::Ne,
    BinaryOp::BitAnd,
    BinaryOp::BitXor,
    BinaryOp::BitOr,
];

/// Any tree the parser could produce, up to `depth` levels below the root.
fn random_tree(rng: &mut Rng, depth: usize) -> Expr {
    let sub = |rng: &mut Rng| Box::new(random_tree(rng, depth.saturating_sub(1)));
    let choice = if depth == 0 {
        rng.below(3)
    } else {
        rng.below(10)
    };
    let kind = match choice {
        0 => {
            let names = ["tcp", "udp", "dst_port", "x", "_y2", "ands", "notx"];
            ExprKind::Name(rng.pick(&names).to_string())
        }
        1 => {
            let any = rng.next();
            ExprKind::Int(rng.pick(&[0, 1, 53, 0o755, u64::MAX, any]))
        }
        2 => ExprKind::Addr(random_address(rng)),
        3 | 8 => ExprKind::In {
            operand: sub(rng),
            in_span: Span::default(),
            set: random_set(rng),
        },
        9 => ExprKind::Unary {
            op: rng.pick(&UNARY),
            op_span: Span::default(),
            operand: sub(rng),
        },
        4 | 5 => ExprKind::Binary {
            op: rng.pick(&BINARY),
            op_span: Span::default(),
            lhs: sub(rng),
            rhs: sub(rng),
        },
        6 => {
            let op = rng.pick(&[LogicOp::And, LogicOp::Or]);
            let count = 2 + rng.below(3);
            ExprKind::Logic {
                op,
                terms: (0..count).map(|_| *sub(rng)).collect(),
            }
        }
        _ => ExprKind::Cond {
            cond: sub(rng),
            then: sub(rng),
            otherwise: sub(rng),
        },
    };
    node(kind)
}

fn random_address(rng: &mut Rng) -> AddrLit {
    let texts = [
        "10.0.0.1",
        "0.0.0.0",
        "255.255.255.255",
        "::",
        "::1",
        "fd00::",
        "2001:db8::1",
        "::ffff:10.0.0.1",
        "fe80::1:2:3:4",
    ];
    let addr: std::net::IpAddr = rng.pick(&texts).parse().unwrap();
    let bits = if addr.is_ipv4() { 33 } else { 129 };
    let prefix = match rng.below(3) {
        0 => None,
        _ => Some(rng.below(bits) as u8),
    };
    AddrLit { addr, prefix }
}

fn random_int_lit(rng: &mut Rng) -> IntLit {
    let any = rng.next();
    IntLit {
        negative: rng.below(4) == 0,
        magnitude: rng.pick(&[0, 1, 80, 1023, u64::MAX, any]),
    }
}

/// Any set the parser could produce (types are the checker's business).
fn random_set(rng: &mut Rng) -> Set {
    let count = rng.pick(&[0, 1, 1, 2, 5]);
    let members = (0..count)
        .map(|_| {
            let kind = match rng.below(3) {
                0 => MemberKind::Int(random_int_lit(rng)),
                1 => MemberKind::Range(random_int_lit(rng), random_int_lit(rng)),
                _ => MemberKind::Addr(random_address(rng)),
            };
            Member {
                kind,
                span: Span::default(),
            }
        })
        .collect();
    Set {
        members,
        span: Span::default(),
    }
}

#[test]
fn printer_round_trips_random_trees() {
    let mut rng = Rng(0x706f_7274_7761_6c6c);
    for _ in 0..5000 {
        let depth = rng.below(7);
        round_trips(&random_tree(&mut rng, depth));
    }
}

#[test]
fn printer_round_trips_at_the_depth_limit() {
    // `x + (a ? x + (a ? ... : b) : b)`: every other level opens both a
    // parenthesis and a `?`, the most nesting a tree of this height can
    // print as; it must still parse.
    let mut expr = node(ExprKind::Name("x".to_string()));
    for level in 1..MAX_DEPTH {
        let kind = if level % 2 == 1 {
            ExprKind::Cond {
                cond: Box::new(node(ExprKind::Name("a".to_string()))),
                then: Box::new(expr),
                otherwise: Box::new(node(ExprKind::Name("b".to_string()))),
            }
        } else {
            ExprKind::Binary {
                op: BinaryOp::Add,
                op_span: Span::default(),
                lhs: Box::new(node(ExprKind::Name("x".to_string()))),
                rhs: Box::new(expr),
            }
        };
        expr = node(kind);
    }
    on_small_stack(move || round_trips(&expr));
}

/// The rendered diagnostic for `source`, which must fail to parse.
fn rendered(source: &str) -> String {
    match parse(source) {
        Ok(expr) => panic!("{source:?} parsed as {}", full(&expr)),
        Err(error) => error.render(source, "filter"),
    }
}

fn assert_renders(source: &str, lines: &[&str]) {
    assert_eq!(rendered(source), lines.join("\n") + "\n", "{source:?}");
}

#[test]
fn diagnostic_assignment() {
    assert_renders(
        "tcp && dst_port = 80",
        &[
            "error: `=` is assignment, which filters do not have",
            " --> filter:1:17",
            "  |",
            "1 | tcp && dst_port = 80",
            "  |                 ^",
            "  = help: use `==` to compare (in the original C program `dst_port = 53` \
             silently assigned and was always true)",
        ],
    );
    assert_renders(
        "tcp &&\n    dst_port = 53 # dns\n",
        &[
            "error: `=` is assignment, which filters do not have",
            " --> filter:2:14",
            "  |",
            "2 |     dst_port = 53 # dns",
            "  |              ^",
            "  = help: use `==` to compare (in the original C program `dst_port = 53` \
             silently assigned and was always true)",
        ],
    );
}

#[test]
fn diagnostic_compound_assignment_and_increment() {
    assert_renders(
        "dst_port <<= 1",
        &[
            "error: assignments are not part of the filter language",
            " --> filter:1:10",
            "  |",
            "1 | dst_port <<= 1",
            "  |          ^^^",
            "  = help: a filter computes a value from the packet and cannot change anything",
        ],
    );
    assert_renders(
        "len |= 1",
        &[
            "error: assignments are not part of the filter language",
            " --> filter:1:5",
            "  |",
            "1 | len |= 1",
            "  |     ^^",
            "  = help: a filter computes a value from the packet and cannot change anything",
        ],
    );
    assert_renders(
        "--ttl",
        &[
            "error: decrements are not part of the filter language",
            " --> filter:1:1",
            "  |",
            "1 | --ttl",
            "  | ^^",
            "  = help: for two signs in a row, separate them: `- -x` or `-(-x)`",
        ],
    );
    assert_renders(
        "x++ > 1",
        &[
            "error: increments are not part of the filter language",
            " --> filter:1:2",
            "  |",
            "1 | x++ > 1",
            "  |  ^^",
            "  = help: for two signs in a row, separate them: `+ +x` or `+(+x)`",
        ],
    );
}

#[test]
fn diagnostic_characters_outside_the_language() {
    assert_renders(
        "tcp, udp",
        &[
            "error: the comma operator is not part of the filter language",
            " --> filter:1:4",
            "  |",
            "1 | tcp, udp",
            "  |    ^",
            "  = help: combine conditions with `&&` or `||`; commas separate the members of \
             a set, as in `dst_port in {80, 443}`",
        ],
    );
    assert_renders(
        "{tcp}",
        &[
            "error: expected an expression, found `{`",
            " --> filter:1:1",
            "  |",
            "1 | {tcp}",
            "  | ^",
            "  = help: a set or range can only follow `in`, as in `dst_port in {80, 443}`",
        ],
    );
    assert_renders(
        "tcp; udp",
        &[
            "error: unexpected character `;`",
            " --> filter:1:4",
            "  |",
            "1 | tcp; udp",
            "  |    ^",
            "  = help: a filter is a single expression, with no `;`",
        ],
    );
    assert_renders(
        "dst_port[0]",
        &[
            "error: unexpected character `[`",
            " --> filter:1:9",
            "  |",
            "1 | dst_port[0]",
            "  |         ^",
            "  = help: group with `(` and `)`; sets are written `{...}`, as in \
             `dst_port in {80, 443}`",
        ],
    );
    // Columns count characters, so the caret is under the `≥`.
    assert_renders(
        "dst_port ≥ 1024",
        &[
            "error: unexpected character `≥`",
            " --> filter:1:10",
            "  |",
            "1 | dst_port ≥ 1024",
            "  |          ^",
            "  = help: use `>=` instead",
        ],
    );
    assert_renders(
        "port ≠ 22 ∧ len ≤ 9",
        &[
            "error: unexpected character `≠`",
            " --> filter:1:6",
            "  |",
            "1 | port ≠ 22 ∧ len ≤ 9",
            "  |      ^",
            "  = help: use `!=` instead",
        ],
    );
    assert_renders(
        "len ≤ 9",
        &[
            "error: unexpected character `≤`",
            " --> filter:1:5",
            "  |",
            "1 | len ≤ 9",
            "  |     ^",
            "  = help: use `<=` instead",
        ],
    );
    assert_renders(
        "tcp\u{a0}&& udp",
        &[
            "error: unexpected character U+00A0",
            " --> filter:1:4",
            "  |",
            "1 | tcp\u{a0}&& udp",
            "  |    ^",
            "  = help: only spaces, tabs and line breaks may separate tokens",
        ],
    );
    assert_renders(
        "x @ y",
        &[
            "error: unexpected character `@`",
            " --> filter:1:3",
            "  |",
            "1 | x @ y",
            "  |   ^",
        ],
    );
    assert_renders(
        "tcp // web",
        &[
            "error: `//` does not start a comment in a filter",
            " --> filter:1:5",
            "  |",
            "1 | tcp // web",
            "  |     ^^",
            "  = help: comments start with `#` and run to the end of the line",
        ],
    );
}

#[test]
fn diagnostic_numbers() {
    assert_renders(
        "dst_port == 18446744073709551616",
        &[
            "error: number out of range: does not fit in 64 bits",
            " --> filter:1:13",
            "  |",
            "1 | dst_port == 18446744073709551616",
            "  |             ^^^^^^^^^^^^^^^^^^^^",
            "  = help: the largest number is 18446744073709551615 (0xffffffffffffffff)",
        ],
    );
    assert_renders(
        "x & 0x1_0",
        &[
            "error: invalid suffix `_0` on number",
            " --> filter:1:8",
            "  |",
            "1 | x & 0x1_0",
            "  |        ^^",
            "  = help: `_` cannot separate digits in a number",
        ],
    );
    assert_renders(
        "dst_port == 80x",
        &[
            "error: invalid suffix `x` on number",
            " --> filter:1:15",
            "  |",
            "1 | dst_port == 80x",
            "  |               ^",
            "  = help: a number may end in `u`, `l`, `ul`, `ll` or `ull` (any case), \
             which are ignored",
        ],
    );
    assert_renders(
        "mode == 0789",
        &[
            "error: invalid digit `8` in octal number",
            " --> filter:1:11",
            "  |",
            "1 | mode == 0789",
            "  |           ^",
            "  = help: a leading `0` makes a number octal, as in C; for decimal, write `789`",
        ],
    );
    assert_renders(
        "0x",
        &[
            "error: hexadecimal number has no digits",
            " --> filter:1:1",
            "  |",
            "1 | 0x",
            "  | ^^",
            "  = help: write hexadecimal digits after `0x`, as in `0x1f`",
        ],
    );
}

#[test]
fn diagnostic_parentheses() {
    assert_renders(
        "(tcp && udp",
        &[
            "error: unclosed parenthesis",
            " --> filter:1:1",
            "  |",
            "1 | (tcp && udp",
            "  | ^",
            "  = help: the filter ends before this `(` is closed",
        ],
    );
    // The innermost `(` is closed; the one reported is the one left open.
    assert_renders(
        "tcp && ((udp) || icmp # note",
        &[
            "error: unclosed parenthesis",
            " --> filter:1:8",
            "  |",
            "1 | tcp && ((udp) || icmp # note",
            "  |        ^",
            "  = help: the filter ends before this `(` is closed",
        ],
    );
    assert_renders(
        "tcp && udp)",
        &[
            "error: unmatched `)`",
            " --> filter:1:11",
            "  |",
            "1 | tcp && udp)",
            "  |           ^",
            "  = help: remove it, or add the `(` it should close",
        ],
    );
    assert_renders(
        "(tcp udp)",
        &[
            "error: expected `)`, found `udp`",
            " --> filter:1:6",
            "  |",
            "1 | (tcp udp)",
            "  |      ^^^",
            "  = help: to close the `(` at 1:1; or is an operator missing?",
        ],
    );
}

#[test]
fn diagnostic_structure() {
    assert_renders(
        "tcp udp",
        &[
            "error: unexpected `udp` after the end of the expression",
            " --> filter:1:5",
            "  |",
            "1 | tcp udp",
            "  |     ^^^",
            "  = help: missing an operator such as `&&` or `||` before it?",
        ],
    );
    assert_renders(
        "  # nothing but a comment\n",
        &[
            "error: empty filter",
            " --> filter:1:1",
            "  |",
            "1 |   # nothing but a comment",
            "  | ^",
            "  = help: write an expression such as `tcp && dst_port == 80`",
        ],
    );
    assert_renders(
        "",
        &[
            "error: empty filter",
            " --> filter:1:1",
            "  |",
            "1 | ",
            "  | ^",
            "  = help: write an expression such as `tcp && dst_port == 80`",
        ],
    );
    assert_renders(
        "tcp && )",
        &[
            "error: expected an expression, found `)`",
            " --> filter:1:8",
            "  |",
            "1 | tcp && )",
            "  |        ^",
        ],
    );
    assert_renders(
        "tcp and  # web\n",
        &[
            "error: expected an expression, found end of input",
            " --> filter:1:8",
            "  |",
            "1 | tcp and  # web",
            "  |        ^",
        ],
    );
    assert_renders(
        "tcp ? 1",
        &[
            "error: expected `:`, found end of input",
            " --> filter:1:8",
            "  |",
            "1 | tcp ? 1",
            "  |        ^",
            "  = help: the `?` at 1:5 needs a `:` and a value for when the condition is false",
        ],
    );
    assert_renders(
        "(tcp ? 1) : 2",
        &[
            "error: expected `:`, found `)`",
            " --> filter:1:9",
            "  |",
            "1 | (tcp ? 1) : 2",
            "  |         ^",
            "  = help: the `?` at 1:6 needs a `:` and a value for when the condition is false",
        ],
    );
    assert_renders(
        "tcp : udp",
        &[
            "error: unexpected `:` after the end of the expression",
            " --> filter:1:5",
            "  |",
            "1 | tcp : udp",
            "  |     ^",
            "  = help: `:` belongs after `condition ? value`",
        ],
    );
}

#[test]
fn diagnostic_sets_and_ranges() {
    assert_renders(
        "x in 80",
        &[
            "error: expected a set such as `{80, 443}` or a range such as `1..1023`, found `80`",
            " --> filter:1:6",
            "  |",
            "1 | x in 80",
            "  |      ^^",
            "  = help: a set is written in braces, even with one member: `{80}`",
        ],
    );
    assert_renders(
        "dst_ip in 10.0.0.0/8",
        &[
            "error: expected a set such as `{80, 443}` or a range such as `1..1023`, \
             found `10.0.0.0/8`",
            " --> filter:1:11",
            "  |",
            "1 | dst_ip in 10.0.0.0/8",
            "  |           ^^^^^^^^^^",
            "  = help: a set is written in braces, even with one member: `{10.0.0.0/8}`",
        ],
    );
    assert_renders(
        "dst_port in {80, 443",
        &[
            "error: unclosed `{`",
            " --> filter:1:13",
            "  |",
            "1 | dst_port in {80, 443",
            "  |             ^",
            "  = help: the filter ends before this `{` is closed",
        ],
    );
    assert_renders(
        "dst_port in {80 443}",
        &[
            "error: expected `,` or `}`, found `443`",
            " --> filter:1:17",
            "  |",
            "1 | dst_port in {80 443}",
            "  |                 ^^^",
            "  = help: members of the set at 1:13 are separated by `,`",
        ],
    );
    assert_renders(
        "dst_port in {80, tcp}",
        &[
            "error: expected a number, range or address, found `tcp`",
            " --> filter:1:18",
            "  |",
            "1 | dst_port in {80, tcp}",
            "  |                  ^^^",
            "  = help: set members are literals: numbers, ranges, addresses and prefixes",
        ],
    );
    assert_renders(
        "x in {1..}",
        &[
            "error: expected a number to end the range, found `}`",
            " --> filter:1:10",
            "  |",
            "1 | x in {1..}",
            "  |          ^",
            "  = help: a range is two numbers around `..`, as in `1..1023` (the `..` at 1:8)",
        ],
    );
    assert_renders(
        "dst_port == 1..5",
        &[
            "error: unexpected `..`",
            " --> filter:1:14",
            "  |",
            "1 | dst_port == 1..5",
            "  |              ^^",
            "  = help: a range can only follow `in`, as in `dst_port in 1..1023`",
        ],
    );
    assert_renders(
        "x in {1} in {2}",
        &[
            "error: unexpected `in`",
            " --> filter:1:10",
            "  |",
            "1 | x in {1} in {2}",
            "  |          ^^",
            "  = help: `in` binds tighter than every operator and its left side is a name, a \
             literal or a parenthesized expression: write `(a in b) in c`",
        ],
    );
    assert_renders(
        "x in {1.5}",
        &[
            "error: unexpected character `.`",
            " --> filter:1:8",
            "  |",
            "1 | x in {1.5}",
            "  |        ^",
            "  = help: numbers are integers, and names have no fields",
        ],
    );
}

#[test]
fn diagnostic_addresses() {
    assert_renders(
        "dst_ip == 10.0.0.256",
        &[
            "error: invalid IPv4 address `10.0.0.256`",
            " --> filter:1:11",
            "  |",
            "1 | dst_ip == 10.0.0.256",
            "  |           ^^^^^^^^^^",
            "  = help: an IPv4 address is four numbers from 0 to 255 separated by `.`, \
             without leading zeros",
        ],
    );
    assert_renders(
        "dst_ip == fd00::1::2",
        &[
            "error: invalid IPv6 address `fd00::1::2`",
            " --> filter:1:11",
            "  |",
            "1 | dst_ip == fd00::1::2",
            "  |           ^^^^^^^^^^",
            "  = help: an IPv6 address is eight groups of 1 to 4 hex digits separated by `:`, \
             where one `::` stands for a run of zero groups",
        ],
    );
    // Without `::`, a run with colons may be the first language's `?:`.
    assert_renders(
        "dst_ip == 2001:db8:1",
        &[
            "error: unexpected `:`",
            " --> filter:1:15",
            "  |",
            "1 | dst_ip == 2001:db8:1",
            "  |               ^",
            "  = help: if this is an IPv6 address, it is not a valid one: eight groups of hex \
             digits separated by `:`, or fewer with one `::`",
        ],
    );
    assert_renders(
        "dst_ip in {10.0.0.0/33}",
        &[
            "error: prefix length /33 is too long for an IPv4 address",
            " --> filter:1:20",
            "  |",
            "1 | dst_ip in {10.0.0.0/33}",
            "  |                    ^^^",
            "  = help: IPv4 prefix lengths are /0 to /32",
        ],
    );
    assert_renders(
        "dst_ip in {fd00::/129}",
        &[
            "error: prefix length /129 is too long for an IPv6 address",
            " --> filter:1:18",
            "  |",
            "1 | dst_ip in {fd00::/129}",
            "  |                  ^^^^",
            "  = help: IPv6 prefix lengths are /0 to /128",
        ],
    );
    assert_renders(
        "dst_ip in {10.0.0.1..10.0.0.9}",
        &[
            "error: address ranges are not supported",
            " --> filter:1:20",
            "  |",
            "1 | dst_ip in {10.0.0.1..10.0.0.9}",
            "  |                    ^^",
            "  = help: write the addresses as prefixes, such as `10.0.0.0/24`",
        ],
    );
}

/// The checker's rendered diagnostic for `source`, which must parse.
fn type_error(source: &str) -> String {
    let expr = parsed(source);
    match check::check(&expr) {
        Ok(filter) => panic!("{source:?} checked as {:?}", filter.expr),
        Err(error) => error.render(source, "filter"),
    }
}

fn assert_type_error(source: &str, lines: &[&str]) {
    assert_eq!(type_error(source), lines.join("\n") + "\n", "{source:?}");
}

const ONLY_COMPARED: &str = "  = help: addresses can only be tested with `==`, `!=` and `in`, \
                             as in `dst_ip in {10.0.0.0/8}`";
const ADDRESS_VARIABLES: &str =
    "  = help: addresses are compared with `src_ip`, `dst_ip`, `local_ip` or `remote_ip`";
const WRITE_AN_ADDRESS: &str = "  = help: write an address such as `10.0.0.1` or `2001:db8::1`";

#[test]
fn diagnostic_types_arithmetic_on_addresses() {
    assert_type_error(
        "dst_ip + 1",
        &[
            "error: cannot use `+` on an address",
            " --> filter:1:1",
            "  |",
            "1 | dst_ip + 1",
            "  | ^^^^^^",
            ONLY_COMPARED,
        ],
    );
    assert_type_error(
        "tcp && src_ip < 10.0.0.1",
        &[
            "error: cannot use `<` on an address",
            " --> filter:1:8",
            "  |",
            "1 | tcp && src_ip < 10.0.0.1",
            "  |        ^^^^^^",
            ONLY_COMPARED,
        ],
    );
    assert_type_error(
        "!dst_ip",
        &[
            "error: cannot use `!` on an address",
            " --> filter:1:2",
            "  |",
            "1 | !dst_ip",
            "  |  ^^^^^^",
            ONLY_COMPARED,
        ],
    );
    assert_type_error(
        "dst_ip == 10.0.0.0 / 8",
        &[
            "error: cannot use `/` on an address",
            " --> filter:1:11",
            "  |",
            "1 | dst_ip == 10.0.0.0 / 8",
            "  |           ^^^^^^^^",
            "  = help: a prefix length follows the address without spaces: `10.0.0.0/8`",
        ],
    );
}

#[test]
fn diagnostic_types_comparisons() {
    assert_type_error(
        "dst_ip == 80",
        &[
            "error: cannot compare the address `dst_ip` with an integer",
            " --> filter:1:11",
            "  |",
            "1 | dst_ip == 80",
            "  |           ^^",
            WRITE_AN_ADDRESS,
        ],
    );
    assert_type_error(
        "dst_port + 1 != remote_ip",
        &[
            "error: `remote_ip` needs to know the direction of the packets",
            " --> filter:1:17",
            "  |",
            "1 | dst_port + 1 != remote_ip",
            "  |                 ^^^^^^^^^",
            "  = help: `remote_ip` is `dst_ip` on egress and `src_ip` on ingress: give \
             `--direction ingress` or `--direction egress` (in a filter config, \
             `direction = ingress` or `egress`)",
        ],
    );
    assert_type_error(
        "80 == dst_ip",
        &[
            "error: cannot compare an integer with the address `dst_ip`",
            " --> filter:1:1",
            "  |",
            "1 | 80 == dst_ip",
            "  | ^^",
            WRITE_AN_ADDRESS,
        ],
    );
    assert_type_error(
        "dst_port == 10.0.0.1",
        &[
            "error: cannot compare an integer with an address",
            " --> filter:1:13",
            "  |",
            "1 | dst_port == 10.0.0.1",
            "  |             ^^^^^^^^",
            ADDRESS_VARIABLES,
        ],
    );
    assert_type_error(
        "dst_ip == src_ip",
        &[
            "error: cannot compare two addresses of the packet",
            " --> filter:1:11",
            "  |",
            "1 | dst_ip == src_ip",
            "  |           ^^^^^^",
            "  = help: compare each with an address literal, as in `dst_ip == 10.0.0.1`",
        ],
    );
    assert_type_error(
        "10.0.0.1 != 10.0.0.2",
        &[
            "error: cannot compare two address literals",
            " --> filter:1:1",
            "  |",
            "1 | 10.0.0.1 != 10.0.0.2",
            "  | ^^^^^^^^",
            ADDRESS_VARIABLES,
        ],
    );
    assert_type_error(
        "dst_ip == 10.0.0.0/8",
        &[
            "error: `==` compares with one address, not a prefix",
            " --> filter:1:11",
            "  |",
            "1 | dst_ip == 10.0.0.0/8",
            "  |           ^^^^^^^^^^",
            "  = help: use `in` to match a prefix: `dst_ip in {10.0.0.0/8}`",
        ],
    );
    assert_type_error(
        "fd00::/8 != src_ip",
        &[
            "error: `!=` compares with one address, not a prefix",
            " --> filter:1:1",
            "  |",
            "1 | fd00::/8 != src_ip",
            "  | ^^^^^^^^",
            "  = help: use `in` to match a prefix: `src_ip in {fd00::/8}`",
        ],
    );
}

#[test]
fn diagnostic_types_addresses_as_values() {
    assert_type_error(
        "tcp && dst_ip",
        &[
            "error: `dst_ip` is an address, not a condition",
            " --> filter:1:8",
            "  |",
            "1 | tcp && dst_ip",
            "  |        ^^^^^^",
            ONLY_COMPARED,
        ],
    );
    assert_type_error(
        "10.0.0.1 || tcp",
        &[
            "error: the address `10.0.0.1` is not a condition",
            " --> filter:1:1",
            "  |",
            "1 | 10.0.0.1 || tcp",
            "  | ^^^^^^^^",
            ONLY_COMPARED,
        ],
    );
    assert_type_error(
        "(tcp ? src_ip : 0) in {1}",
        &[
            "error: `src_ip` is an address, not an integer",
            " --> filter:1:8",
            "  |",
            "1 | (tcp ? src_ip : 0) in {1}",
            "  |        ^^^^^^",
            ONLY_COMPARED,
        ],
    );
}

#[test]
fn diagnostic_types_sets() {
    assert_type_error(
        "dst_port in {53, 10.0.0.1}",
        &[
            "error: an integer's set cannot hold an address",
            " --> filter:1:18",
            "  |",
            "1 | dst_port in {53, 10.0.0.1}",
            "  |                  ^^^^^^^^",
            ADDRESS_VARIABLES,
        ],
    );
    assert_type_error(
        "dst_ip in {10.0.0.0/8, 80}",
        &[
            "error: `dst_ip` is an address, so its set cannot hold the integer 80",
            " --> filter:1:24",
            "  |",
            "1 | dst_ip in {10.0.0.0/8, 80}",
            "  |                        ^^",
            "  = help: write addresses or prefixes, such as `10.0.0.1` or `fd00::/8`",
        ],
    );
    assert_type_error(
        "src_ip in 1..2",
        &[
            "error: `src_ip` is an address, so its set cannot hold the range 1..2",
            " --> filter:1:11",
            "  |",
            "1 | src_ip in 1..2",
            "  |           ^^^^",
            "  = help: write addresses or prefixes, such as `10.0.0.1` or `fd00::/8`",
        ],
    );
    assert_type_error(
        "10.0.0.1 in {10.0.0.0/8}",
        &[
            "error: cannot test an address literal with `in`",
            " --> filter:1:1",
            "  |",
            "1 | 10.0.0.1 in {10.0.0.0/8}",
            "  | ^^^^^^^^",
            "  = help: test an address variable, as in `dst_ip in {10.0.0.0/8}`; `in` binds \
             tighter than `==`, so `dst_ip == 10.0.0.1 in {...}` tests the literal",
        ],
    );
    assert_type_error(
        "dst_port in {1, 1023..1}",
        &[
            "error: empty range: 1023 is above 1",
            " --> filter:1:17",
            "  |",
            "1 | dst_port in {1, 1023..1}",
            "  |                 ^^^^^^^",
            "  = help: write the smaller bound first: `1..1023` (both bounds are included)",
        ],
    );
    assert_type_error(
        "len in -1..-5",
        &[
            "error: empty range: -1 is above -5",
            " --> filter:1:8",
            "  |",
            "1 | len in -1..-5",
            "  |        ^^^^^^",
            "  = help: write the smaller bound first: `-5..-1` (both bounds are included)",
        ],
    );
}

#[test]
fn diagnostic_nesting() {
    let source = format!("{}x", "(".repeat(600));
    assert_renders(
        &source,
        &[
            "error: expression nests too deeply (more than 512 levels)",
            " --> filter:1:513",
            "  |",
            &format!("1 | {source}"),
            &format!("  | {}^", " ".repeat(512)),
        ],
    );
}

#[test]
fn diagnostic_invalid_utf8() {
    let bytes = b"tcp && \xff\xfe";
    let error = source_from_bytes(bytes).unwrap_err();
    let lossy = String::from_utf8_lossy(bytes);
    assert_eq!(
        error.render(&lossy, "filter"),
        [
            "error: the filter is not valid UTF-8",
            " --> filter:1:8",
            "  |",
            "1 | tcp && \u{fffd}\u{fffd}",
            "  |        ^",
            "  = help: the first invalid sequence is at byte offset 7: 0xff",
            "",
        ]
        .join("\n")
    );
}

/// Checks what every diagnostic must satisfy: a span inside the input, on
/// character boundaries, and a renderer that copes with it.
fn check_error(source: &str, error: &Diagnostic) {
    let Span { start, end } = error.span;
    assert!(start <= end && end <= source.len(), "{source:?}: {error:?}");
    assert!(
        source.is_char_boundary(start) && source.is_char_boundary(end),
        "{source:?}: {error:?}"
    );
    let rendered = error.render(source, "filter");
    assert!(rendered.starts_with("error: "), "{rendered}");
}

/// Checks that every node's span is exactly its text: the span lies inside
/// its parent's, and the text under it parses to the same subtree.
fn check_spans(source: &str, expr: &Expr, parent: Span) {
    let Span { start, end } = expr.span;
    assert!(parent.start <= start && end <= parent.end, "{source:?}");
    let text = &source[start..end];
    assert_eq!(strip_spans(&parsed(text)), strip_spans(expr), "{text:?}");
    let here = expr.span;
    match &expr.kind {
        ExprKind::Int(_) | ExprKind::Name(_) | ExprKind::Addr(_) => {}
        ExprKind::In {
            operand,
            in_span,
            set,
        } => {
            assert_eq!(&source[in_span.start..in_span.end], "in");
            check_spans(source, operand, here);
            assert!(operand.span.end <= in_span.start && in_span.end <= set.span.start);
            // Parentheses around the whole test are in its span only.
            assert!(set.span.end <= here.end, "{source:?}");
            let mut after = set.span.start;
            for m in &set.members {
                assert!(after <= m.span.start && m.span.end <= set.span.end);
                after = m.span.end;
                // A member's text is the member, whatever the spacing.
                let text: String = source[m.span.start..m.span.end]
                    .lines()
                    .map(|line| line.split('#').next().unwrap_or(""))
                    .flat_map(str::split_whitespace)
                    .collect();
                let written = parsed(&format!("x in {{{text}}}"));
                let ExprKind::In { set: again, .. } = &written.kind else {
                    panic!("{text:?}")
                };
                assert_eq!(again.members[0].kind, m.kind, "{text:?}");
            }
        }
        ExprKind::Unary {
            op,
            op_span,
            operand,
        } => {
            let written = &source[op_span.start..op_span.end];
            assert!(written == op.symbol() || written == "not", "{written:?}");
            check_spans(source, operand, here);
        }
        ExprKind::Binary {
            op,
            op_span,
            lhs,
            rhs,
        } => {
            assert_eq!(&source[op_span.start..op_span.end], op.symbol());
            check_spans(source, lhs, here);
            check_spans(source, rhs, here);
        }
        ExprKind::Logic { terms, .. } => {
            assert!(terms.len() >= 2);
            for term in terms {
                check_spans(source, term, here);
            }
        }
        ExprKind::Cond {
            cond,
            then,
            otherwise,
        } => {
            for part in [cond, then, otherwise] {
                check_spans(source, part, here);
            }
        }
    }
}

#[test]
fn spans_are_exact() {
    for (source, _) in SHAPES {
        let expr = parsed(source);
        check_spans(source, &expr, Span::new(0, source.len()));
    }
}

const PIECES: &[&str] = &[
    "tcp",
    "udp",
    "dst_port",
    "x",
    "0",
    "53",
    "0x1f",
    "017",
    "10ul",
    "(",
    ")",
    "(",
    ")",
    "!",
    "~",
    "-",
    "+",
    "*",
    "/",
    "%",
    "<<",
    ">>",
    "<",
    "<=",
    ">",
    ">=",
    "==",
    "!=",
    "&",
    "^",
    "|",
    "&&",
    "||",
    "and",
    "or",
    "not",
    "?",
    ":",
    "?",
    ":",
    "=",
    ",",
    "#c\n",
    "≥",
    "09",
    "1x",
    "0x",
    "18446744073709551616",
    ";",
    "é",
    "\u{0}",
    "in",
    "{",
    "}",
    "..",
    ",",
    "1..5",
    "10.0.0.1",
    "10.0.0.0/8",
    "fd00::/8",
    "::1",
    "::",
    "1.2.3",
    "10.0.0.0/33",
    "1:2",
    "fd00::1::2",
];

/// Pieces that can start an operand, and pieces that can follow one.
const OPERANDS: &[&str] = &[
    "tcp", "x", "53", "0x1f", "(", "!", "-", "not", "~", "10.0.0.1", "::1", "fd00::/8",
];
const OPERATORS: &[&str] = &[
    ")",
    "*",
    "-",
    "+",
    "<<",
    "<",
    ">=",
    "==",
    "!=",
    "&",
    "^",
    "|",
    "&&",
    "||",
    "or",
    "?",
    ":",
    "in {53, -1..9, 10.0.0.0/8,}",
    "in 1..5",
    "in {}",
];
/// Pieces after which an operator comes.
const COMPLETE: &[&str] = &[
    "tcp",
    "x",
    "53",
    "0x1f",
    ")",
    "10.0.0.1",
    "::1",
    "fd00::/8",
    "in {53, -1..9, 10.0.0.0/8,}",
    "in 1..5",
    "in {}",
];

#[test]
fn random_token_soups_never_panic() {
    let mut rng = Rng(0x736f_7570);
    let mut parsed_ok = 0;
    for _ in 0..20_000 {
        // Half the soups are mostly well-formed, alternating operands and
        // operators, so that many parse and the errors are subtle ones.
        let structured = rng.below(2) == 0;
        let mut source = String::new();
        let mut want_operand = true;
        for _ in 0..rng.below(14) {
            let piece = match (structured && rng.below(10) != 0, want_operand) {
                (false, _) => rng.pick(PIECES),
                (true, true) => rng.pick(OPERANDS),
                (true, false) => rng.pick(OPERATORS),
            };
            // After a leaf or `)` comes an operator; after anything else
            // (prefix operators and `(` included), an operand.
            want_operand = !COMPLETE.contains(&piece);
            source.push_str(piece);
            source.push_str(rng.pick(&["", " ", " ", "\n", "\t"]));
        }
        if structured {
            // Finish the soup, often enough that it becomes a filter.
            if want_operand {
                source.push('x');
            }
            let open = source.matches('(').count();
            let closed = source.matches(')').count();
            source.push_str(&")".repeat(open.saturating_sub(closed)));
        }
        match parse(&source) {
            Ok(expr) => {
                parsed_ok += 1;
                check_spans(&source, &expr, Span::new(0, source.len()));
                round_trips(&expr);
            }
            Err(error) => check_error(&source, &error),
        }
    }
    // Enough soups are filters for the `Ok` checks to mean something.
    assert!(parsed_ok > 4000, "only {parsed_ok} parsed");
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng(0x0062_7974_6573);
    let interesting = b"()!~-+*/%<>=&|^?:, #\n\t09xaA_uLz\xe2\x89\xa5\xff{}..::in/";
    for _ in 0..20_000 {
        let len = rng.below(40);
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                if rng.below(4) == 0 {
                    rng.next() as u8
                } else {
                    rng.pick(interesting)
                }
            })
            .collect();
        match source_from_bytes(&bytes) {
            Ok(source) => match parse(source) {
                Ok(expr) => round_trips(&expr),
                Err(error) => check_error(source, &error),
            },
            Err(error) => {
                assert!(error.span.start < error.span.end && error.span.end <= bytes.len());
                assert!(std::str::from_utf8(&bytes[..error.span.start]).is_ok());
                let lossy = String::from_utf8_lossy(&bytes);
                if let Err(error) = parse(&lossy) {
                    check_error(&lossy, &error);
                }
            }
        }
    }
}

/// Runs `f` on a thread with the 2 MiB stack tests get by default, so
/// that passing proves the work fits in it.
fn on_small_stack(f: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .stack_size(2 * 1024 * 1024)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap();
}

/// Parses `source` on a small stack and within a time limit generous
/// enough for unoptimized builds but far from what quadratic work takes.
fn parse_hostile(source: String) -> Result<Expr, Diagnostic> {
    let (send, receive) = std::sync::mpsc::channel();
    on_small_stack(move || {
        let started = Instant::now();
        let result = parse(&source);
        let took = started.elapsed();
        assert!(took < Duration::from_secs(10), "took {took:?}");
        send.send(result).unwrap();
    });
    receive.recv().unwrap()
}

fn assert_too_deep(source: String, at: usize) {
    let error = parse_hostile(source).expect_err("too deep");
    assert_eq!(
        error.message,
        "expression nests too deeply (more than 512 levels)"
    );
    assert_eq!(error.span.start, at);
}

#[test]
fn million_open_parentheses() {
    assert_too_deep("(".repeat(1_000_000) + "x", 512);
    let balanced = format!("{}x{}", "(".repeat(1_000_000), ")".repeat(1_000_000));
    assert_too_deep(balanced, 512);
    assert_too_deep("-(".repeat(1_000_000) + "x", 2 * 512 + 1);
}

#[test]
fn million_prefix_operators() {
    assert_too_deep("!".repeat(1_000_000) + "x", 511);
    assert_too_deep("- ".repeat(1_000_000) + "x", 2 * 511);
    assert_too_deep("not ".repeat(1_000_000) + "x", 4 * 511);
}

#[test]
fn long_left_associative_chains() {
    // Built in a loop, not by recursion: the tree grows one level per
    // operator, and the 512th operator makes it 513 levels high.
    assert_too_deep(format!("1{}", "+1".repeat(500_000)), 2 * 512 - 1);
    assert_too_deep(format!("1{}", "-1".repeat(500_000)), 2 * 512 - 1);
    assert_too_deep(format!("x{}", " << 1".repeat(500_000)), 5 * 511 + 2);
}

#[test]
fn long_conditional_chains() {
    // Nesting in the middle operand opens a level per `?`.
    assert_too_deep("a ? ".repeat(1_000_000) + "b", 4 * 512 + 2);
    // Nesting to the right does not, but still adds a level per `?`.
    assert_too_deep("a ? b : ".repeat(1_000_000) + "c", 8 * 511 + 2);
}

#[test]
fn deepest_allowed_trees_parse() {
    let deepest = [
        format!("{}x", "!".repeat(MAX_DEPTH - 1)),
        format!("1{}", "-1".repeat(MAX_DEPTH - 1)),
        format!("{}x{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH)),
        format!(
            "{}x{}",
            "-(".repeat(MAX_DEPTH - 1),
            ")".repeat(MAX_DEPTH - 1)
        ),
        format!("{}c", "a ? b : ".repeat(MAX_DEPTH - 1)),
        format!(
            "{}b{}",
            "a ? ".repeat(MAX_DEPTH - 1),
            " : c".repeat(MAX_DEPTH - 1)
        ),
    ];
    for source in deepest {
        let expr = parse_hostile(source.clone()).unwrap();
        on_small_stack(move || round_trips(&expr));
        // One more level is refused.
        let deeper = format!("-({source})");
        assert!(parse_hostile(deeper).is_err());
    }
}

#[test]
fn megabyte_flat_chains_parse() {
    let alternatives = "tcp || ".repeat((1 << 20) / 7) + "udp";
    let count = (1 << 20) / 7 + 1;
    let expr = parse_hostile(alternatives).unwrap();
    let ExprKind::Logic { op, terms } = &expr.kind else {
        panic!("not a chain")
    };
    assert_eq!((*op, terms.len()), (LogicOp::Or, count));

    let mixed = "(tcp && dst_port == 80) || udp && !x || ".repeat((1 << 20) / 40) + "icmp";
    let expr = parse_hostile(mixed.clone()).unwrap();
    let ExprKind::Logic { op, terms } = &expr.kind else {
        panic!("not a chain")
    };
    assert_eq!((*op, terms.len()), (LogicOp::Or, 2 * ((1 << 20) / 40) + 1));
    let text = print(&expr);
    assert_eq!(strip_spans(&parsed(&text)), strip_spans(&expr));
}
