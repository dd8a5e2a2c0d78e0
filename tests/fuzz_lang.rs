//! Generated input for the language front end (lexer, parser, checker):
//! random bytes, random UTF-8, soups of the language's tokens (v2 ones
//! included), mutated filters, deep nesting and long inputs.
//!
//! Every input must give either a filter or a diagnostic whose span lies
//! inside the input and renders; never a panic, never a hang. Every filter
//! must survive a trip through the canonical printer unchanged (same IR),
//! and must compile or be refused with an error (no panic). Each case runs
//! under a watchdog: one that takes longer than its bound fails the test
//! and names the input.
//!
//! Fixed seed in CI. `PORTWALL_FUZZ_SEED` picks another seed and
//! `PORTWALL_FUZZ_CASES` multiplies the number of cases (e.g. 100 for a
//! long run); each test prints how many cases it ran.

mod common;

use common::generate::{self as gen_, Rng};
use portwall::lang::ast;
use portwall::lang::diag::{Diagnostic, position_of};
use portwall::lang::ir::Filter;
use portwall::lang::lex::source_from_bytes;
use portwall::lang::{check, parse, print};
use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

const DEFAULT_SEED: u64 = 0x6675_7a7a_6c61_6e67;

fn seed(test: u64) -> u64 {
    gen_::env_u64("PORTWALL_FUZZ_SEED", DEFAULT_SEED) ^ test
}

/// `base` cases, times `PORTWALL_FUZZ_CASES` (default 1).
fn cases(base: u64) -> u64 {
    base * gen_::env_u64("PORTWALL_FUZZ_CASES", 1).max(1)
}

/// The front end as the command line runs it (see `cli::input`).
fn front_end(text: &str) -> Result<(ast::Expr, Filter), Diagnostic> {
    let ast = parse::parse(text)?;
    let filter = check::check(&ast)?;
    Ok((ast, filter))
}

/// What one input came to.
#[derive(Default, Debug, Clone, Copy)]
struct Tally {
    filters: u64,
    errors: u64,
    /// Filters the compiler refused with an error (too large, say).
    not_compiled: u64,
    /// Filters using language v2 features the code generator does not
    /// have yet (its `todo!("language v2")`).
    not_yet: u64,
    slowest: Duration,
}

impl Tally {
    fn add(&mut self, other: Tally) {
        self.filters += other.filters;
        self.errors += other.errors;
        self.not_compiled += other.not_compiled;
        self.not_yet += other.not_yet;
        self.slowest = self.slowest.max(other.slowest);
    }
}

/// Shown in failure messages: the input, cut if it is long.
fn shown(text: &str) -> String {
    if text.len() <= 400 {
        format!("{text:?}")
    } else {
        let mut end = 400;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        format!("{:?}... ({} bytes)", &text[..end], text.len())
    }
}

/// What every diagnostic must satisfy: a span inside the input on
/// character boundaries, and a rendering that points at its position.
fn check_diagnostic(text: &str, d: &Diagnostic) {
    let (start, end) = (d.span.start, d.span.end);
    assert!(
        start <= end && end <= text.len(),
        "span {start}..{end} outside the input of {} bytes: {d:?} for {}",
        text.len(),
        shown(text)
    );
    assert!(
        text.is_char_boundary(start) && text.is_char_boundary(end),
        "span {start}..{end} splits a character: {d:?} for {}",
        shown(text)
    );
    assert!(!d.message.is_empty(), "empty message for {}", shown(text));
    let rendered = d.render(text, "filter");
    let pos = position_of(text, start);
    let location = format!("--> filter:{}:{}\n", pos.line, pos.column);
    assert!(
        rendered.starts_with(&format!("error: {}\n", d.message)) && rendered.contains(&location),
        "rendering does not name {location:?}: {rendered} for {}",
        shown(text)
    );
}

/// Runs one input through the front end and holds the result to the
/// rules above.
fn judge(text: &str) -> Tally {
    let mut tally = Tally::default();
    match front_end(text) {
        Err(d) => {
            check_diagnostic(text, &d);
            tally.errors += 1;
        }
        Ok((ast, filter)) => {
            assert!(
                ast.span.end <= text.len(),
                "tree span {:?} outside {}",
                ast.span,
                shown(text)
            );
            let printed = print::print(&ast);
            let (again, refiltered) = front_end(&printed).unwrap_or_else(|d| {
                panic!(
                    "the canonical form {} of {} does not parse: {d}",
                    shown(&printed),
                    shown(text)
                )
            });
            assert_eq!(
                refiltered,
                filter,
                "printing {} as {} changed its meaning",
                shown(text),
                shown(&printed)
            );
            assert_eq!(
                print::print(&again),
                printed,
                "the canonical form of {} is not a fixed point",
                shown(text)
            );
            match compile(&filter) {
                Compiled::Yes => {}
                Compiled::Refused => tally.not_compiled += 1,
                Compiled::NotYet => tally.not_yet += 1,
            }
            tally.filters += 1;
        }
    }
    tally
}

enum Compiled {
    Yes,
    Refused,
    NotYet,
}

const NOT_YET: &str = "not yet implemented: language v2";

/// Compiles a checked filter: it must give a program or an error, never
/// panic. While the code generator lacks parts of language v2 it stops at
/// `todo!("language v2")`; that one panic is counted and reported, not
/// failed, and goes away by itself once the code generator is complete.
fn compile(filter: &Filter) -> Compiled {
    static QUIET: std::sync::Once = std::sync::Once::new();
    QUIET.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if panic_text(info.payload()) != Some(NOT_YET) {
                default(info);
            }
        }));
    });
    match std::panic::catch_unwind(|| portwall::compiler::compile(filter)) {
        Ok(Ok(_)) => Compiled::Yes,
        Ok(Err(e)) => {
            assert!(!e.to_string().is_empty());
            Compiled::Refused
        }
        Err(panic) if panic_text(&*panic) == Some(NOT_YET) => Compiled::NotYet,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

fn panic_text(payload: &(dyn std::any::Any + Send)) -> Option<&str> {
    payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
}

/// An input of the front end: bytes (which may not be UTF-8) or text.
enum Input {
    Bytes(Vec<u8>),
    Text(String),
}

fn judge_input(input: &Input) -> Tally {
    match input {
        Input::Text(text) => judge(text),
        Input::Bytes(bytes) => match source_from_bytes(bytes) {
            Ok(text) => judge(text),
            Err(d) => {
                // The command line renders this against the lossy text.
                assert!(
                    d.span.start < d.span.end && d.span.end <= bytes.len(),
                    "UTF-8 error span {:?} for {} bytes",
                    d.span,
                    bytes.len()
                );
                assert!(std::str::from_utf8(&bytes[..d.span.start]).is_ok());
                let lossy = String::from_utf8_lossy(bytes);
                let rendered = d.render(&lossy, "filter");
                assert!(rendered.starts_with("error: "), "{rendered}");
                Tally {
                    errors: 1,
                    ..Tally::default()
                }
            }
        },
    }
}

impl Input {
    fn describe(&self) -> String {
        match self {
            Input::Text(t) => shown(t),
            Input::Bytes(b) => shown(&String::from_utf8_lossy(b)),
        }
    }
}

/// Runs every input on a worker thread with the 8 MiB stack a main thread
/// gets by default (so that passing proves the work fits in it; the
/// portwall binary gives the front end 256 MiB). Unoptimized builds use
/// about 1.2 KB a frame and the checker up to three frames for each of the
/// 512 levels the parser allows, more than a spawned thread's 2 MiB.
/// A watchdog fails the test on a case that takes longer than `per_case`,
/// or a run longer than `total`, with the input at fault.
fn run(test: &str, inputs: Vec<Input>, per_case: Duration, total: Duration) -> Tally {
    let inputs = Arc::new(inputs);
    let (send, receive) = mpsc::channel::<Duration>();
    let worker = {
        let inputs = Arc::clone(&inputs);
        std::thread::Builder::new()
            .name(format!("fuzz-{test}"))
            .stack_size(8 * 1024 * 1024)
            .spawn(move || {
                let mut tally = Tally::default();
                for input in inputs.iter() {
                    let started = Instant::now();
                    let mut one = judge_input(input);
                    one.slowest = started.elapsed();
                    tally.add(one);
                    if send.send(one.slowest).is_err() {
                        break;
                    }
                }
                tally
            })
            .expect("spawns the worker")
    };
    let started = Instant::now();
    for (i, input) in inputs.iter().enumerate() {
        match receive.recv_timeout(per_case) {
            Ok(took) => assert!(
                took <= per_case,
                "{test}: case {i} took {took:?} (bound {per_case:?}): {}",
                input.describe()
            ),
            Err(RecvTimeoutError::Timeout) => panic!(
                "{test}: case {i} still running after {per_case:?}: {}",
                input.describe()
            ),
            // The worker panicked on this case: its message has the input.
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    let tally = match worker.join() {
        Ok(t) => t,
        Err(panic) => std::panic::resume_unwind(panic),
    };
    let elapsed = started.elapsed();
    assert!(
        elapsed <= total,
        "{test}: took {elapsed:?} (bound {total:?})"
    );
    println!(
        "{test}: {} cases: {} filters ({} refused by the compiler, {} using v2 features \
         the compiler lacks), {} errors; slowest case {:?}, all in {elapsed:?}",
        inputs.len(),
        tally.filters,
        tally.not_compiled,
        tally.not_yet,
        tally.errors,
        tally.slowest
    );
    tally
}

/// Generous for unoptimized builds on a busy machine: the front end is
/// linear, and these inputs take microseconds.
const SMALL_CASE: Duration = Duration::from_secs(5);
/// For the megabyte inputs.
const LONG_CASE: Duration = Duration::from_secs(60);
const WHOLE_TEST: Duration = Duration::from_secs(300);

// ------------------------------------------------------------ generators

/// Characters a filter may contain by mistake or malice: ASCII, controls,
/// look-alike operators, multi-byte letters, invisible and bidirectional
/// marks, a combining accent, an emoji, full-width digits.
const CHARS: &[char] = &[
    '(', ')', '!', '~', '-', '+', '*', '/', '%', '<', '>', '=', '&', '|', '^', '?', ':', ',', '.',
    '{', '}', '[', ']', ';', '#', ' ', '\t', '\n', '\r', '0', '1', '7', '8', '9', 'x', 'X', 'a',
    'f', 'u', 'l', 'L', '_', 'i', 'n', 'p', 't', 'c', 'd', 's', 'o', 'r', '\u{0}', '\u{7}',
    '\u{1b}', '\u{7f}', '\u{a0}', 'é', '≥', '≠', '−', '¬', '∧', '×', '\u{200b}', '\u{202e}',
    '\u{2028}', '\u{feff}', '\u{301}', '🦀', '１', 'ı', 'ſ', '\u{fffd}', '"', '\'', '\\', '$', '@',
    '`',
];

fn random_utf8(rng: &mut Rng, max_len: u64) -> String {
    let len = rng.below(max_len + 1);
    (0..len)
        .map(|_| {
            if rng.chance(10) {
                // Anywhere in Unicode (surrogates excepted).
                char::from_u32(rng.below(0x11_0000) as u32).unwrap_or('\u{fffd}')
            } else {
                *rng.pick(CHARS)
            }
        })
        .collect()
}

fn random_bytes(rng: &mut Rng, max_len: u64) -> Vec<u8> {
    let interesting = b"()!~-+*/%<>=&|^?:,.{}#\n\t 09xaA_uLz\xe2\x89\xa5\xff\xc0\x80\xed\xa0";
    (0..rng.below(max_len + 1))
        .map(|_| {
            if rng.chance(30) {
                rng.next() as u8
            } else {
                *rng.pick(interesting)
            }
        })
        .collect()
}

/// The language's tokens, v1 and v2, with near misses of each.
const PIECES: &[&str] = &[
    // names, v1 and v2, and misspellings
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
    "dst_prot",
    "port",
    "true",
    "x",
    "in",
    "notin",
    "and",
    "or",
    "not",
    // numbers
    "0",
    "1",
    "53",
    "65535",
    "65536",
    "0x1f",
    "0X",
    "017",
    "09",
    "10ul",
    "1x",
    "18446744073709551615",
    "18446744073709551616",
    "-1",
    // addresses and prefixes, good and bad
    "10.0.0.1",
    "192.168.1.0/24",
    "0.0.0.0/0",
    "255.255.255.255",
    "1.2.3.256",
    "1.2.3",
    "1.2.3.4.5",
    "1.2.3.4/33",
    "10.0.0.1/8",
    "::",
    "::1",
    "::1/128",
    "2001:db8::/32",
    "2001:db8::1",
    "fe80::1",
    "::ffff:10.0.0.1",
    "2001:db8:::1",
    "1::2::3",
    "2001:db8::/129",
    "fe80::1%eth0",
    "/",
    "/24",
    // sets and ranges
    "{",
    "}",
    "{}",
    ",",
    "..",
    "...",
    "1..2",
    "5..1",
    "0..65535",
    "1..",
    "..9",
    "{1, 2, 3}",
    "{80, 443, 8000..8080}",
    "{10.0.0.0/8, ::1}",
    // operators
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
    "?",
    ":",
    "?",
    ":",
    // outside the language
    "=",
    "+=",
    "++",
    "//",
    "/*",
    ";",
    "[",
    "]",
    ".",
    "#c\n",
    "≥",
    "é",
    "\u{0}",
];

/// Pieces that start an operand, and pieces that follow one.
const OPERANDS: &[&str] = &[
    "tcp",
    "dst_port",
    "proto",
    "len",
    "icmp_type",
    "local_port",
    "53",
    "0x1f",
    "(",
    "!",
    "-",
    "not",
    "~",
    "dst_ip == 10.0.0.1",
    "src_ip in {10.0.0.0/8, 2001:db8::/32}",
    "dst_port in {22, 80..90}",
    "dst_ip != ::1",
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
    "in {1}",
    "in {1..5, 7}",
];
/// Operand pieces after which an operator comes.
const COMPLETE: &[&str] = &[
    "tcp",
    "dst_port",
    "proto",
    "len",
    "icmp_type",
    "local_port",
    "53",
    "0x1f",
    ")",
    "dst_ip == 10.0.0.1",
    "src_ip in {10.0.0.0/8, 2001:db8::/32}",
    "dst_port in {22, 80..90}",
    "dst_ip != ::1",
    "in {1}",
    "in {1..5, 7}",
];

fn token_soup(rng: &mut Rng, max_pieces: u64) -> String {
    // Half the soups alternate operands and operators, so that many parse
    // and their errors are subtle ones.
    let structured = rng.chance(50);
    let mut source = String::new();
    let mut want_operand = true;
    for _ in 0..rng.below(max_pieces + 1) {
        let piece = match (structured && !rng.chance(10), want_operand) {
            (false, _) => rng.pick(PIECES),
            (true, true) => rng.pick(OPERANDS),
            (true, false) => rng.pick(OPERATORS),
        };
        want_operand = !COMPLETE.contains(piece);
        source.push_str(piece);
        let space = *rng.pick(&["", " ", " ", "\n", "\t"]);
        source.push_str(space);
    }
    if structured {
        if want_operand {
            source.push_str("udp");
        }
        let open = source.matches('(').count();
        let closed = source.matches(')').count();
        source.push_str(&")".repeat(open.saturating_sub(closed)));
    }
    source
}

/// A generated filter with a few random edits: the errors it then has sit
/// deep inside otherwise good text.
fn mutated_filter(rng: &mut Rng) -> String {
    let depth = 1 + rng.below(6) as u32;
    let mut text = gen_::filter(rng, depth).into_bytes();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(text.len() as u64 + 1) as usize;
        match rng.below(6) {
            0 if at < text.len() => {
                let end = (at + 1 + rng.below(4) as usize).min(text.len());
                text.drain(at..end);
            }
            1 => {
                let piece = rng.pick(PIECES).as_bytes().to_vec();
                text.splice(at..at, piece);
            }
            2 if at < text.len() => {
                let end = (at + 1 + rng.below(12) as usize).min(text.len());
                let copy = text[at..end].to_vec();
                text.splice(at..at, copy);
            }
            3 if at < text.len() => text[at] = rng.next() as u8,
            4 => text.truncate(at),
            _ => {
                let piece = rng.pick(CHARS).to_string().into_bytes();
                text.splice(at..at, piece);
            }
        }
    }
    // Edits may cut a character in two; the front end then sees bytes.
    String::from_utf8_lossy(&text).into_owned()
}

/// A leaf wrapped in a random stack of nesting constructs, about `levels`
/// deep: around the parser's limit of 512, from either side.
fn nested(rng: &mut Rng, levels: usize) -> String {
    let mut open = String::new();
    let mut close = Vec::new();
    for _ in 0..levels {
        let (before, after) = *rng.pick(&[
            ("(", ")"),
            ("!", ""),
            ("-(", ")"),
            ("not ", ""),
            ("~", ""),
            ("tcp ? ", " : udp"),
            ("udp && (", ")"),
            ("(dst_port + ", ")"),
            ("(", " in {1, 2..9})"),
            ("(1 << ", ")"),
        ]);
        open.push_str(before);
        close.push(after);
    }
    let leaf = *rng.pick(&["tcp", "dst_port", "proto", "7", "len"]);
    close.reverse();
    format!("{open}{leaf}{}", close.concat())
}

// ------------------------------------------------------------ the tests

#[test]
fn random_bytes_give_a_filter_or_a_located_error() {
    let mut rng = Rng::new(seed(1));
    let inputs = (0..cases(30_000))
        .map(|_| Input::Bytes(random_bytes(&mut rng, 48)))
        .collect();
    run("random_bytes", inputs, SMALL_CASE, WHOLE_TEST);
}

#[test]
fn random_utf8_gives_a_filter_or_a_located_error() {
    let mut rng = Rng::new(seed(2));
    let inputs = (0..cases(30_000))
        .map(|_| Input::Text(random_utf8(&mut rng, 40)))
        .collect();
    run("random_utf8", inputs, SMALL_CASE, WHOLE_TEST);
}

#[test]
fn token_soups_give_a_filter_or_a_located_error() {
    let mut rng = Rng::new(seed(3));
    let inputs = (0..cases(50_000))
        .map(|_| Input::Text(token_soup(&mut rng, 16)))
        .collect();
    let tally = run("token_soups", inputs, SMALL_CASE, WHOLE_TEST);
    // Enough soups are filters for the round-trip checks to mean something.
    assert!(
        tally.filters > cases(50_000) / 20,
        "only {} filters",
        tally.filters
    );
}

#[test]
fn mutated_filters_give_a_filter_or_a_located_error() {
    let mut rng = Rng::new(seed(4));
    let inputs = (0..cases(20_000))
        .map(|_| Input::Text(mutated_filter(&mut rng)))
        .collect();
    let tally = run("mutated_filters", inputs, SMALL_CASE, WHOLE_TEST);
    assert!(tally.filters > 0 && tally.errors > 0, "{tally:?}");
}

#[test]
fn generated_filters_round_trip() {
    let mut rng = Rng::new(seed(5));
    let inputs: Vec<Input> = (0..cases(3_000))
        .map(|i| Input::Text(gen_::filter(&mut rng, 1 + (i % 8) as u32)))
        .collect();
    let n = inputs.len() as u64;
    let tally = run("generated_filters", inputs, SMALL_CASE, WHOLE_TEST);
    // Only a divisor that folds to 0 may be refused.
    assert!(tally.filters > n * 9 / 10, "{tally:?}");
}

#[test]
fn nesting_around_the_limit_gives_a_filter_or_a_located_error() {
    let mut rng = Rng::new(seed(6));
    let max = parse::MAX_DEPTH;
    let inputs: Vec<Input> = (0..cases(300))
        .map(|_| {
            let levels = match rng.below(3) {
                0 => rng.below(64) as usize,
                1 => max / 2 + rng.below(max as u64 / 2) as usize,
                // Parentheses add no level to the tree, so past the
                // limit by up to a third of it.
                _ => max - 16 + rng.below(max as u64 / 3) as usize,
            };
            Input::Text(nested(&mut rng, levels))
        })
        .collect();
    let tally = run("nesting", inputs, SMALL_CASE, WHOLE_TEST);
    assert!(tally.filters > 0 && tally.errors > 0, "{tally:?}");
}

#[test]
fn shallow_nesting_is_always_a_filter() {
    // Below a quarter of the limit every wrapper stays inside it, so each
    // of these must parse (v2 wrappers once the language has them).
    let sets = parse::parse("1 in {1}").is_ok();
    let mut rng = Rng::new(seed(7));
    for _ in 0..cases(300) {
        let levels = rng.below(parse::MAX_DEPTH as u64 / 8) as usize;
        let text = nested(&mut rng, levels);
        if !sets && text.contains(" in {") {
            continue;
        }
        if let Err(d) = front_end(&text) {
            panic!("{}: {d}", shown(&text));
        }
    }
}

#[test]
fn long_inputs_give_a_filter_or_a_located_error() {
    let mut rng = Rng::new(seed(8));
    let mb = 1 << 20;
    let mut inputs = vec![
        Input::Text(" ".repeat(mb)),
        Input::Text(format!("#{}\ntcp", "x".repeat(mb))),
        Input::Text("1".repeat(mb)),
        Input::Text(format!("0x{}", "f".repeat(mb))),
        Input::Text("a".repeat(mb)),
        Input::Text(format!("tcp{}", " && tcp".repeat(mb / 7))),
        Input::Text(format!("tcp{}", " in".repeat(mb / 3))),
        Input::Text("(".repeat(mb)),
        Input::Text(")".repeat(mb)),
        Input::Text("{".repeat(mb)),
        Input::Text(",".repeat(mb)),
        Input::Text(".".repeat(mb)),
        Input::Text(format!(
            "dst_port in {{{}0}}",
            (1..60_000).map(|i| format!("{i}, ")).collect::<String>()
        )),
        Input::Text(format!(
            "dst_port in {{{}1}}",
            (0..60_000)
                .map(|i| format!("{}..{}, ", i * 2, i * 2 + 1))
                .collect::<String>()
        )),
        Input::Text(format!(
            "dst_ip in {{{}::1}}",
            (0..40_000)
                .map(|i| format!("10.{}.{}.0/24, ", i / 256 % 256, i % 256))
                .collect::<String>()
        )),
        Input::Text(format!("{}tcp", "- ".repeat(mb / 2))),
        Input::Text(format!("1{}", " ? 1 : 1".repeat(mb / 8))),
        Input::Text(format!("dst_port{}", " == 1".repeat(mb / 5))),
    ];
    for _ in 0..cases(12) {
        let size = (mb / 8) as u64 + rng.below(mb as u64);
        let mut text = String::new();
        let kind = rng.below(3);
        while (text.len() as u64) < size {
            match kind {
                0 => text.push_str(&token_soup(&mut rng, 64)),
                1 => text.push_str(&random_utf8(&mut rng, 64)),
                _ => {
                    text.push_str(&gen_::filter(&mut rng, 4));
                    text.push_str(" || ");
                }
            }
        }
        if kind == 2 {
            text.push_str("tcp");
        }
        inputs.push(Input::Text(text));
    }
    run("long_inputs", inputs, LONG_CASE, WHOLE_TEST);
}
