//! Lexer: filter source text to tokens.
//!
//! The language is a C expression, and its users know C, so the lexer also
//! recognizes the C tokens the language leaves out (`=`, `+=`, `++`, `,`,
//! `//` comments, ...) and rejects each with a message naming what it is
//! rather than a generic "unexpected character". The words `and`, `or` and
//! `not` lex as the operators `&&`, `||` and `!`.
//!
//! Address literals are recognized before anything else: at a character
//! that can start one (`0-9a-fA-F:`), the lexer looks at the longest run
//! of hex digits, `:` and `.` (up to a `..`). A run with two or more `:`
//! is an IPv6 address, one with no `:` and at least two `.` that starts
//! with a digit an IPv4 address; anything else lexes as before, so
//! `1..1023` is `1`, `..`, `1023` and `dst_port` is a name. A run with
//! `:` that is not an IPv6 address and has no `::` is left to the old
//! rules too, because the first language allowed `c ? d ? 1:2:3`; one `:`
//! at the end of a run is left out of it, as the `:` of a `?:`. An
//! address directly followed by `/` and digits takes them as its prefix
//! length.
//!
//! Tokens are produced on demand by [`Lexer::next_token`], so the parser
//! reports errors in source order: a bad character after a syntax error is
//! never reached. [`tokenize`] collects them all.

use super::ast::AddrLit;
use super::diag::Diagnostic;
use super::span::Span;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// What a token is. Its spelling is `&source[span]` (see [`Token::text`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TokenKind {
    /// An integer literal and its value; suffixes such as `ul` are dropped.
    Int(u64),
    /// An IPv4 or IPv6 address, with its prefix length if one follows.
    Addr(AddrLit),
    /// A name such as `dst_port`, not yet resolved.
    Name,
    /// `!` or `not`
    Not,
    /// `~`
    Tilde,
    /// `*`
    Star,
    /// `/`
    Slash,
    /// `%`
    Percent,
    /// `+`, unary or binary
    Plus,
    /// `-`, unary or binary
    Minus,
    /// `<<`
    Shl,
    /// `>>`
    Shr,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `==`
    EqEq,
    /// `!=`
    Ne,
    /// `&`
    Amp,
    /// `^`
    Caret,
    /// `|`
    Pipe,
    /// `&&` or `and`
    AndAnd,
    /// `||` or `or`
    OrOr,
    /// `?`
    Question,
    /// `:`
    Colon,
    /// `(`
    LParen,
    /// `)`
    RParen,
    /// `in`
    In,
    /// `..`
    DotDot,
    /// `{`
    LBrace,
    /// `}`
    RBrace,
    /// `,`
    Comma,
}

/// One token and where it was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Token {
    /// What the token is.
    pub kind: TokenKind,
    /// The token's text in the source, never empty.
    pub span: Span,
}

impl Token {
    /// The token as written, e.g. `and` for a [`TokenKind::AndAnd`] spelled
    /// as a word. `source` must be the text the token was lexed from.
    pub fn text<'s>(&self, source: &'s str) -> &'s str {
        &source[self.span.start..self.span.end]
    }
}

/// Splits the whole filter into tokens, stopping at the first error.
/// Whitespace and `#` comments are skipped.
pub fn tokenize(source: &str) -> Result<Vec<Token>, Diagnostic> {
    let mut lexer = Lexer::new(source);
    let mut tokens = Vec::new();
    while let Some(token) = lexer.next_token()? {
        tokens.push(token);
    }
    Ok(tokens)
}

/// Checks that a filter read as bytes (a file, an argument on Unix) is
/// UTF-8, which the lexer needs to report characters and columns.
///
/// The error's span covers the first invalid sequence. To render it, use
/// `String::from_utf8_lossy(bytes)` as the source: everything before the
/// span is unchanged there, so the position and caret are right.
pub fn source_from_bytes(bytes: &[u8]) -> Result<&str, Diagnostic> {
    std::str::from_utf8(bytes).map_err(|err| {
        let start = err.valid_up_to();
        // `None` means the input ends in the middle of a sequence.
        let len = err.error_len().unwrap_or(bytes.len() - start);
        let shown: Vec<String> = bytes[start..start + len]
            .iter()
            .map(|b| format!("0x{b:02x}"))
            .collect();
        Diagnostic::new(
            "the filter is not valid UTF-8",
            Span::new(start, start + len),
        )
        .with_help(format!(
            "the first invalid sequence is at byte offset {start}: {}",
            shown.join(" ")
        ))
    })
}

/// An on-demand tokenizer over one filter source.
///
/// After an error the lexer is in an unspecified position; the language
/// stops at the first error, so callers should not continue.
#[derive(Clone, Debug)]
pub struct Lexer<'s> {
    source: &'s str,
    pos: usize,
}

impl<'s> Lexer<'s> {
    /// A lexer at the start of `source`.
    pub fn new(source: &'s str) -> Lexer<'s> {
        Lexer { source, pos: 0 }
    }

    /// The next token, `Ok(None)` at the end of input, or the error for
    /// text that is not a token of the language.
    pub fn next_token(&mut self) -> Result<Option<Token>, Diagnostic> {
        self.skip_trivia();
        let start = self.pos;
        let Some(&first) = self.source.as_bytes().get(start) else {
            return Ok(None);
        };
        let (kind, len) = match self.address(start)? {
            Some(address) => address,
            None => match first {
                b'0'..=b'9' => self.number(start)?,
                b'a'..=b'z' | b'A'..=b'Z' | b'_' => self.word(start),
                _ => self.punctuation(start)?,
            },
        };
        self.pos = start + len;
        Ok(Some(Token {
            kind,
            span: Span::new(start, start + len),
        }))
    }

    fn skip_trivia(&mut self) {
        let bytes = self.source.as_bytes();
        while let Some(&b) = bytes.get(self.pos) {
            match b {
                b' ' | b'\t' | b'\r' | b'\n' => self.pos += 1,
                b'#' => {
                    self.pos = bytes[self.pos..]
                        .iter()
                        .position(|&b| b == b'\n')
                        .map_or(bytes.len(), |i| self.pos + i);
                }
                _ => break,
            }
        }
    }

    fn word(&self, start: usize) -> (TokenKind, usize) {
        let len = self.source.as_bytes()[start..]
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric() || **b == b'_')
            .count();
        let kind = match &self.source[start..start + len] {
            "and" => TokenKind::AndAnd,
            "or" => TokenKind::OrOr,
            "not" => TokenKind::Not,
            "in" => TokenKind::In,
            _ => TokenKind::Name,
        };
        (kind, len)
    }

    /// An address literal starting at `start`, if there is one (see the
    /// module documentation for the rule).
    fn address(&self, start: usize) -> Result<Option<(TokenKind, usize)>, Diagnostic> {
        let bytes = self.source.as_bytes();
        if !(bytes[start].is_ascii_hexdigit() || bytes[start] == b':') {
            return Ok(None);
        }
        let run = bytes[start..]
            .iter()
            .take_while(|b| b.is_ascii_hexdigit() || **b == b':' || **b == b'.')
            .count();
        let text = &self.source[start..start + run];
        // `a..b` with addresses is not an address; stopping at `..` lets
        // the parser say that address ranges are written as prefixes.
        let text = text.find("..").map_or(text, |i| &text[..i]);
        // A single `:` at the end is the `:` of a `?:` (`c ? ::1: x`).
        let text = match text.strip_suffix(':') {
            Some(shorter) if !shorter.ends_with(':') => shorter,
            _ => text,
        };
        let colons = text.bytes().filter(|b| *b == b':').count();
        let dots = text.bytes().filter(|b| *b == b'.').count();
        let addr = if colons >= 2 {
            match text.parse::<Ipv6Addr>() {
                Ok(addr) => IpAddr::V6(addr),
                Err(_) if text.contains("::") => {
                    return Err(Diagnostic::new(
                        format!("invalid IPv6 address `{text}`"),
                        span(start, text.len()),
                    )
                    .with_help(
                        "an IPv6 address is eight groups of 1 to 4 hex digits separated by \
                         `:`, where one `::` stands for a run of zero groups",
                    ));
                }
                Err(_) => return Ok(None),
            }
        } else if colons == 0 && dots >= 2 && bytes[start].is_ascii_digit() {
            match text.parse::<Ipv4Addr>() {
                Ok(addr) => IpAddr::V4(addr),
                Err(_) => {
                    return Err(Diagnostic::new(
                        format!("invalid IPv4 address `{text}`"),
                        span(start, text.len()),
                    )
                    .with_help(
                        "an IPv4 address is four numbers from 0 to 255 separated by `.`, \
                         without leading zeros",
                    ));
                }
            }
        } else {
            return Ok(None);
        };
        let mut len = text.len();
        let mut prefix = None;
        let slash = start + len;
        if bytes.get(slash) == Some(&b'/') && bytes.get(slash + 1).is_some_and(u8::is_ascii_digit) {
            let digits = bytes[slash + 1..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count();
            let written = &self.source[slash + 1..slash + 1 + digits];
            let (family, bits) = match addr {
                IpAddr::V4(_) => ("IPv4", 32),
                IpAddr::V6(_) => ("IPv6", 128),
            };
            let length = written
                .parse::<u8>()
                .ok()
                .filter(|l| *l <= bits)
                .ok_or_else(|| {
                    Diagnostic::new(
                        format!("prefix length /{written} is too long for an {family} address"),
                        span(slash, 1 + digits),
                    )
                    .with_help(format!("{family} prefix lengths are /0 to /{bits}"))
                })?;
            prefix = Some(length);
            len += 1 + digits;
        }
        Ok(Some((TokenKind::Addr(AddrLit { addr, prefix }), len)))
    }

    fn number(&self, start: usize) -> Result<(TokenKind, usize), Diagnostic> {
        // Like C's preprocessing numbers, the literal runs over every letter,
        // digit and `_` that follows, so `10x` is one bad literal rather than
        // `10` followed by the name `x`.
        let len = self.source.as_bytes()[start..]
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric() || **b == b'_')
            .count();
        let value = int_value(&self.source[start..start + len], start)?;
        Ok((TokenKind::Int(value), len))
    }

    fn punctuation(&self, start: usize) -> Result<(TokenKind, usize), Diagnostic> {
        use TokenKind::*;
        let rest = &self.source.as_bytes()[start..];
        let second = rest.get(1).copied().unwrap_or(0);
        let third = rest.get(2).copied().unwrap_or(0);
        let token = match (rest[0], second) {
            (b'(', _) => (LParen, 1),
            (b'{', _) => (LBrace, 1),
            (b'}', _) => (RBrace, 1),
            (b',', _) => (Comma, 1),
            (b'.', b'.') => (DotDot, 2),
            (b')', _) => (RParen, 1),
            (b'?', _) => (Question, 1),
            (b':', _) => (Colon, 1),
            (b'~', _) => (Tilde, 1),
            (b'=', b'=') => (EqEq, 2),
            (b'=', _) => {
                return Err(Diagnostic::new(
                    "`=` is assignment, which filters do not have",
                    span(start, 1),
                )
                .with_help(
                    "use `==` to compare (in the original C program `dst_port = 53` \
                             silently assigned and was always true)",
                ));
            }
            (b'!', b'=') => (Ne, 2),
            (b'!', _) => (Not, 1),
            (b'<', b'<') if third == b'=' => return Err(assignment(start, 3)),
            (b'<', b'<') => (Shl, 2),
            (b'<', b'=') => (Le, 2),
            (b'<', _) => (Lt, 1),
            (b'>', b'>') if third == b'=' => return Err(assignment(start, 3)),
            (b'>', b'>') => (Shr, 2),
            (b'>', b'=') => (Ge, 2),
            (b'>', _) => (Gt, 1),
            (b'&', b'&') => (AndAnd, 2),
            (b'|', b'|') => (OrOr, 2),
            (b'+' | b'-', b'+' | b'-') if second == rest[0] => {
                return Err(increment(start, rest[0] == b'+'));
            }
            (b'/', b'/' | b'*') => {
                return Err(Diagnostic::new(
                    format!(
                        "`/{}` does not start a comment in a filter",
                        char::from(second)
                    ),
                    span(start, 2),
                )
                .with_help("comments start with `#` and run to the end of the line"));
            }
            (b'+' | b'-' | b'*' | b'/' | b'%' | b'&' | b'^' | b'|', b'=') => {
                return Err(assignment(start, 2));
            }
            (b'+', _) => (Plus, 1),
            (b'-', _) => (Minus, 1),
            (b'*', _) => (Star, 1),
            (b'/', _) => (Slash, 1),
            (b'%', _) => (Percent, 1),
            (b'&', _) => (Amp, 1),
            (b'^', _) => (Caret, 1),
            (b'|', _) => (Pipe, 1),
            _ => return Err(self.unexpected_character(start)),
        };
        Ok(token)
    }

    fn unexpected_character(&self, start: usize) -> Diagnostic {
        // `next_token` saw a byte here, so there is a character.
        let c = self.source[start..].chars().next().unwrap_or('\u{fffd}');
        // Invisible characters in backticks would read as "unexpected ``".
        let shown = if c.is_control() || c.is_whitespace() {
            format!("U+{:04X}", u32::from(c))
        } else {
            format!("`{c}`")
        };
        let error = Diagnostic::new(
            format!("unexpected character {shown}"),
            span(start, c.len_utf8()),
        );
        let help = match c {
            _ if c.is_whitespace() => {
                "only spaces, tabs and line breaks may separate tokens".to_string()
            }
            '[' | ']' => {
                "group with `(` and `)`; sets are written `{...}`, as in `dst_port in {80, 443}`"
                    .to_string()
            }
            ';' => "a filter is a single expression, with no `;`".to_string(),
            '.' => "numbers are integers, and names have no fields".to_string(),
            '"' | '\'' => {
                "a filter has no strings or characters, only numbers and names".to_string()
            }
            _ => match ascii_spelling(c) {
                Some(ascii) => format!("use `{ascii}` instead"),
                None => return error,
            },
        };
        error.with_help(help)
    }
}

fn span(start: usize, len: usize) -> Span {
    Span::new(start, start + len)
}

/// The ASCII operator for a mathematical symbol that a filter copied from
/// prose or a word processor may contain.
fn ascii_spelling(c: char) -> Option<&'static str> {
    Some(match c {
        '≥' | '⩾' => ">=",
        '≤' | '⩽' => "<=",
        '≠' => "!=",
        '¬' => "!",
        '∧' => "&&",
        '∨' => "||",
        '−' | '–' | '—' => "-",
        '×' | '∗' => "*",
        '÷' => "/",
        '≪' => "<<",
        '≫' => ">>",
        _ => return None,
    })
}

fn assignment(start: usize, len: usize) -> Diagnostic {
    Diagnostic::new(
        "assignments are not part of the filter language",
        span(start, len),
    )
    .with_help("a filter computes a value from the packet and cannot change anything")
}

fn increment(start: usize, plus: bool) -> Diagnostic {
    let (what, sign) = if plus {
        ("increments", '+')
    } else {
        ("decrements", '-')
    };
    Diagnostic::new(
        format!("{what} are not part of the filter language"),
        span(start, 2),
    )
    .with_help(format!(
        "for two signs in a row, separate them: `{sign} {sign}x` or `{sign}({sign}x)`"
    ))
}

/// Suffixes C allows on integer literals; case does not matter here.
const SUFFIXES: [&str; 7] = ["u", "l", "ul", "lu", "ll", "ull", "llu"];

/// The value of the integer literal `text` written at byte `start`.
fn int_value(text: &str, start: usize) -> Result<u64, Diagnostic> {
    let bytes = text.as_bytes();
    let (radix, digits_start) = match bytes {
        [b'0', b'x' | b'X', ..] => (16, 2),
        // The leading `0` of an octal literal is itself an octal digit, so
        // `0` alone needs no special case.
        [b'0', ..] => (8, 0),
        _ => (10, 0),
    };
    let digits_len = bytes[digits_start..]
        .iter()
        .take_while(|b| {
            if radix == 16 {
                b.is_ascii_hexdigit()
            } else {
                // Take 8 and 9 in octal too, to report them as bad digits
                // rather than as a bad suffix.
                b.is_ascii_digit()
            }
        })
        .count();
    let digits_end = digits_start + digits_len;
    let digits = &text[digits_start..digits_end];
    if digits.is_empty() {
        return Err(Diagnostic::new(
            "hexadecimal number has no digits",
            span(start, digits_start),
        )
        .with_help("write hexadecimal digits after `0x`, as in `0x1f`"));
    }
    if radix == 8
        && let Some(i) = digits.bytes().position(|b| b > b'7')
    {
        let decimal = digits.trim_start_matches('0');
        return Err(Diagnostic::new(
            format!("invalid digit `{}` in octal number", &digits[i..i + 1]),
            span(start + i, 1),
        )
        .with_help(format!(
            "a leading `0` makes a number octal, as in C; for decimal, write `{decimal}`"
        )));
    }
    let suffix = &text[digits_end..];
    if !suffix.is_empty() && !SUFFIXES.contains(&suffix.to_ascii_lowercase().as_str()) {
        let help = if suffix.starts_with('_') {
            "`_` cannot separate digits in a number".to_string()
        } else if digits == "0" && suffix.starts_with(['b', 'B']) {
            "binary numbers are not supported; write it in hexadecimal (`0x...`)".to_string()
        } else {
            "a number may end in `u`, `l`, `ul`, `ll` or `ull` (any case), which are ignored"
                .to_string()
        };
        return Err(Diagnostic::new(
            format!("invalid suffix `{suffix}` on number"),
            span(start + digits_end, suffix.len()),
        )
        .with_help(help));
    }
    digits
        .bytes()
        .try_fold(0u64, |value, digit| {
            let digit = char::from(digit).to_digit(radix)?;
            value
                .checked_mul(u64::from(radix))?
                .checked_add(u64::from(digit))
        })
        .ok_or_else(|| {
            Diagnostic::new(
                "number out of range: does not fit in 64 bits",
                span(start, text.len()),
            )
            .with_help(format!(
                "the largest number is {} (0x{:x})",
                u64::MAX,
                u64::MAX
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use TokenKind::*;

    fn kinds(source: &str) -> Vec<TokenKind> {
        tokenize(source)
            .unwrap_or_else(|e| panic!("{}", e.render(source, "test")))
            .into_iter()
            .map(|t| t.kind)
            .collect()
    }

    fn error(source: &str) -> (String, Span) {
        let err = tokenize(source).expect_err(source);
        (err.message, err.span)
    }

    #[test]
    fn operators_use_longest_match() {
        assert_eq!(
            kinds("<<< <= >>> >= == != ! ~ && & || | ^ ? : ( ) * / % + -"),
            [
                Shl, Lt, Le, Shr, Gt, Ge, EqEq, Ne, Not, Tilde, AndAnd, Amp, OrOr, Pipe, Caret,
                Question, Colon, LParen, RParen, Star, Slash, Percent, Plus, Minus
            ]
        );
    }

    #[test]
    fn words_and_names() {
        assert_eq!(
            kinds("and or not And nottcp _x9 tcp"),
            [AndAnd, OrOr, Not, Name, Name, Name, Name]
        );
        let source = "  dst_port\t";
        let tokens = tokenize(source).unwrap();
        assert_eq!(tokens[0].span, Span::new(2, 10));
        assert_eq!(tokens[0].text(source), "dst_port");
    }

    #[test]
    fn comments_and_whitespace_are_skipped() {
        assert_eq!(kinds("# all\r\n tcp # x = 1\n\t# end"), [Name]);
        assert_eq!(kinds(""), []);
        assert_eq!(kinds("#"), []);
    }

    #[test]
    fn literals() {
        for (text, value) in [
            ("0", 0),
            ("00", 0),
            ("7", 7),
            ("0755", 0o755),
            ("0x1F", 31),
            ("0X1f", 31),
            ("10u", 10),
            ("10UL", 10),
            ("10lu", 10),
            ("10LL", 10),
            ("0x10ull", 16),
            ("0llU", 0),
            ("0xfull", 15),
            ("18446744073709551615", u64::MAX),
            ("0xffffffffffffffff", u64::MAX),
            ("01777777777777777777777", u64::MAX),
        ] {
            assert_eq!(kinds(text), [Int(value)], "{text}");
        }
    }

    #[test]
    fn bad_literals() {
        let too_big = "number out of range: does not fit in 64 bits";
        for (text, message, at) in [
            ("18446744073709551616", too_big, Span::new(0, 20)),
            ("0x10000000000000000", too_big, Span::new(0, 19)),
            ("02000000000000000000000", too_big, Span::new(0, 23)),
            ("08", "invalid digit `8` in octal number", Span::new(1, 2)),
            ("0179", "invalid digit `9` in octal number", Span::new(3, 4)),
            ("0x1_0", "invalid suffix `_0` on number", Span::new(3, 5)),
            ("10x", "invalid suffix `x` on number", Span::new(2, 3)),
            ("1e5", "invalid suffix `e5` on number", Span::new(1, 3)),
            ("10uu", "invalid suffix `uu` on number", Span::new(2, 4)),
            ("0b101", "invalid suffix `b101` on number", Span::new(1, 5)),
            ("0x", "hexadecimal number has no digits", Span::new(0, 2)),
            ("0xg", "hexadecimal number has no digits", Span::new(0, 2)),
        ] {
            assert_eq!(error(text), (message.to_string(), at), "{text}");
        }
    }

    #[test]
    fn c_operators_outside_the_language() {
        let assign = "assignments are not part of the filter language";
        for (text, message, at) in [
            (
                "a = 1",
                "`=` is assignment, which filters do not have",
                (2, 3),
            ),
            ("a += 1", assign, (2, 4)),
            ("a <<= 1", assign, (2, 5)),
            ("a >>= 1", assign, (2, 5)),
            ("a|=1", assign, (1, 3)),
            (
                "a++",
                "increments are not part of the filter language",
                (1, 3),
            ),
            (
                "--a",
                "decrements are not part of the filter language",
                (0, 2),
            ),
            (
                "a // c",
                "`//` does not start a comment in a filter",
                (2, 4),
            ),
            ("a ≥ 1", "unexpected character `≥`", (2, 5)),
            ("a\u{a0}", "unexpected character U+00A0", (1, 3)),
            ("a\u{0}", "unexpected character U+0000", (1, 2)),
            ("[", "unexpected character `[`", (0, 1)),
        ] {
            assert_eq!(
                error(text),
                (message.to_string(), Span::new(at.0, at.1)),
                "{text}"
            );
        }
    }

    fn addr(text: &str, prefix: Option<u8>) -> TokenKind {
        Addr(AddrLit {
            addr: text.parse().unwrap(),
            prefix,
        })
    }

    #[test]
    fn addresses_and_prefixes() {
        assert_eq!(
            kinds("10.0.0.1 192.168.0.0/16 ::1 fd00::/8 ::ffff:10.0.0.1 2001:db8::1/128 ::"),
            [
                addr("10.0.0.1", None),
                addr("192.168.0.0", Some(16)),
                addr("::1", None),
                addr("fd00::", Some(8)),
                addr("::ffff:10.0.0.1", None),
                addr("2001:db8::1", Some(128)),
                addr("::", None),
            ]
        );
        // A prefix needs the `/` right after the address; otherwise it divides.
        assert_eq!(
            kinds("10.0.0.0 / 8"),
            [addr("10.0.0.0", None), Slash, Int(8)]
        );
        assert_eq!(kinds("10.0.0.0/x"), [addr("10.0.0.0", None), Slash, Name]);
        let source = "dst_ip == fe80::1/64";
        let tokens = tokenize(source).unwrap();
        assert_eq!(tokens[2].span, Span::new(10, 20));
    }

    #[test]
    fn ranges_sets_and_in() {
        assert_eq!(
            kinds("dst_port in {53, 8000..8080,} -5..-1 0x10..0x20"),
            [
                Name,
                In,
                LBrace,
                Int(53),
                Comma,
                Int(8000),
                DotDot,
                Int(8080),
                Comma,
                RBrace,
                Minus,
                Int(5),
                DotDot,
                Minus,
                Int(1),
                Int(16),
                DotDot,
                Int(32)
            ]
        );
        assert_eq!(kinds("inx in_ IN"), [Name, Name, Name]);
        // Address ranges stop at `..`, for the parser to reject.
        assert_eq!(
            kinds("10.0.0.1..10.0.0.9"),
            [addr("10.0.0.1", None), DotDot, addr("10.0.0.9", None)]
        );
    }

    #[test]
    fn names_with_hex_letters_and_first_language_colons() {
        assert_eq!(kinds("dead_beef fd"), [Name, Name]);
        // `c ? d ? 1:2:3` was valid before addresses existed and still is.
        assert_eq!(
            kinds("c ? d ? 1:2:3"),
            [
                Name,
                Question,
                Name,
                Question,
                Int(1),
                Colon,
                Int(2),
                Colon,
                Int(3)
            ]
        );
        assert_eq!(kinds("a?b:c"), [Name, Question, Name, Colon, Name]);
        assert_eq!(
            kinds("c ? fd00::1: 0"),
            [Name, Question, addr("fd00::1", None), Colon, Int(0)]
        );
        assert_eq!(
            kinds("c ? d ? 1:2: 3"),
            [
                Name,
                Question,
                Name,
                Question,
                Int(1),
                Colon,
                Int(2),
                Colon,
                Int(3)
            ]
        );
    }

    #[test]
    fn bad_addresses() {
        for (text, message, at) in [
            ("10.0.0.256", "invalid IPv4 address `10.0.0.256`", (0, 10)),
            ("10.0.0", "invalid IPv4 address `10.0.0`", (0, 6)),
            ("010.0.0.1", "invalid IPv4 address `010.0.0.1`", (0, 9)),
            (
                "x == 1.2.3.4.5",
                "invalid IPv4 address `1.2.3.4.5`",
                (5, 14),
            ),
            ("fd00::1::2", "invalid IPv6 address `fd00::1::2`", (0, 10)),
            ("::12345", "invalid IPv6 address `::12345`", (0, 7)),
            (
                "10.0.0.0/33",
                "prefix length /33 is too long for an IPv4 address",
                (8, 11),
            ),
            (
                "::/129",
                "prefix length /129 is too long for an IPv6 address",
                (2, 6),
            ),
            (
                "::/99999999999",
                "prefix length /99999999999 is too long for an IPv6 address",
                (2, 14),
            ),
        ] {
            assert_eq!(
                error(text),
                (message.to_string(), Span::new(at.0, at.1)),
                "{text}"
            );
        }
        // One dot is a number followed by a stray `.`.
        assert_eq!(error("1.5").0, "unexpected character `.`");
    }

    #[test]
    fn separated_signs_are_fine() {
        assert_eq!(kinds("- -x + +1"), [Minus, Minus, Name, Plus, Plus, Int(1)]);
        assert_eq!(kinds("-+-x"), [Minus, Plus, Minus, Name]);
    }

    #[test]
    fn lexing_is_lazy() {
        let mut lexer = Lexer::new("tcp = 1");
        assert_eq!(lexer.next_token().unwrap().map(|t| t.kind), Some(Name));
        assert!(lexer.next_token().is_err());
    }

    #[test]
    fn invalid_utf8_is_located() {
        assert_eq!(source_from_bytes(b"tcp"), Ok("tcp"));
        let err = source_from_bytes(b"tcp \xff\xfe").unwrap_err();
        assert_eq!(err.message, "the filter is not valid UTF-8");
        assert_eq!(err.span, Span::new(4, 5));
        assert_eq!(
            err.help.as_deref(),
            Some("the first invalid sequence is at byte offset 4: 0xff")
        );
        // A sequence cut off by the end of input.
        let err = source_from_bytes(b"a \xe2\x89").unwrap_err();
        assert_eq!(err.span, Span::new(2, 4));
    }
}
