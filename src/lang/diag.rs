//! Diagnostics for filter source: one error type, one renderer.
//!
//! Every error in the language (lexing, parsing, checking) is a
//! `Diagnostic` carrying the span of the offending text; `render` shows
//! the line with a caret underline, so all errors look alike.

use super::span::Span;
use std::fmt;

/// An error in a filter expression, located in its source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// One sentence, lower case, no trailing period: "unknown name `dst_prot`".
    pub message: String,
    /// The offending text. An empty span points between two characters
    /// (e.g. at the end of input).
    pub span: Span,
    /// A suggestion printed after the source excerpt ("did you mean ...").
    pub help: Option<String>,
}

/// A 1-based line and column (in characters) of a byte offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

impl Diagnostic {
    pub fn new(message: impl Into<String>, span: Span) -> Diagnostic {
        Diagnostic {
            message: message.into(),
            span,
            help: None,
        }
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(help.into());
        self
    }

    /// Where the span starts in `source`.
    pub fn position(&self, source: &str) -> Position {
        position_of(source, self.span.start)
    }

    /// Renders the error the way the CLI prints it:
    ///
    /// ```text
    /// error: unknown name `dst_prot`
    ///  --> filter:1:8
    ///   |
    /// 1 | tcp && dst_prot == 80
    ///   |        ^^^^^^^^
    ///   = help: did you mean `dst_port`?
    /// ```
    ///
    /// `origin` names the source: "filter" for a command-line argument, or
    /// a file name.
    pub fn render(&self, source: &str, origin: &str) -> String {
        let start = clamp_to_char_boundary(source, self.span.start);
        let end = clamp_to_char_boundary(source, self.span.end.max(start));
        let pos = position_of(source, start);
        let line_start = source[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = source[start..]
            .find('\n')
            .map_or(source.len(), |i| start + i);
        let line = &source[line_start..line_end];
        // Only the part of the span on the first line is underlined.
        let underline_end = end.min(line_end);
        let lead: String = source[line_start..start]
            .chars()
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        let width = source[start..underline_end].chars().count().max(1);
        let number = pos.line.to_string();
        let gutter = " ".repeat(number.len());
        let mut out = format!(
            "error: {}\n{gutter}--> {origin}:{}:{}\n{gutter} |\n{number} | {}\n{gutter} | {lead}{}\n",
            self.message,
            pos.line,
            pos.column,
            display_line(line),
            "^".repeat(width),
        );
        if let Some(help) = &self.help {
            out.push_str(&format!("{gutter} = help: {help}\n"));
        }
        out
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.message, self.span.start)
    }
}

impl std::error::Error for Diagnostic {}

/// Very long lines (a 1 MiB one-line filter) are shown in full: the caret
/// must line up, and cutting would hide context. Control characters other
/// than tab would garble the terminal, so they become U+FFFD.
fn display_line(line: &str) -> String {
    line.chars()
        .map(|c| {
            if c.is_control() && c != '\t' {
                '\u{fffd}'
            } else {
                c
            }
        })
        .collect()
}

fn clamp_to_char_boundary(source: &str, mut offset: usize) -> usize {
    offset = offset.min(source.len());
    while !source.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

/// The 1-based line and character column of byte `offset` in `source`.
pub fn position_of(source: &str, offset: usize) -> Position {
    let offset = clamp_to_char_boundary(source, offset);
    let before = &source[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    Position { line, column }
}
