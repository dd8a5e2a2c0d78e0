//! Filter configs: `/etc/portwall/NAME.conf`, what `portwall@NAME.service`
//! loads.
//!
//! The format is two settings, each starting at the beginning of a line:
//!
//! ```text
//! # Comments: lines whose first non-blank character is `#`.
//! direction = egress     # ingress, egress or either (default: either)
//! filter = (tcp && dst_port == 443)
//!     || (udp && dst_port == 53)    # the filter may go on over indented lines
//! ```
//!
//! - `filter = EXPR` (required): the expression, in portwall's language.
//!   It goes on until the next setting or the end of the file; indent the
//!   lines that continue it (an unindented `word = ...` starts a setting).
//!   Comments inside it are the language's own `#` comments.
//! - `direction = ingress|egress|either` (optional, default `either`):
//!   the direction the filter is compiled and loaded for; systemd's
//!   `IPIngressFilterPath=`/`IPEgressFilterPath=` decides where it runs.
//!
//! Errors name the file and line. An error in the expression is rendered
//! like every filter error, against the config file itself: the parser
//! reads a copy of the file in which everything but the expression is
//! blanked out, so its byte offsets are the file's.

use crate::lang::ast::Expr;
use crate::lang::ir::{Direction, Filter};
use crate::lang::{check, parse};
use std::path::Path;

/// A filter config as written: its direction and expression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FilterConfig {
    /// `None`: either direction.
    pub direction: Option<Direction>,
    /// The expression as written, continuation lines included.
    pub expression: String,
}

/// A config file, parsed and its filter checked.
#[derive(Clone, Debug)]
pub struct ConfigFile {
    /// The settings as written.
    pub config: FilterConfig,
    /// The expression's syntax tree (for its canonical form).
    pub ast: Expr,
    /// The checked filter, ready to compile.
    pub filter: Filter,
}

/// A config that cannot be read or is wrong. The messages name the file
/// (and line) and say what to do.
#[derive(Debug, thiserror::Error)]
#[allow(missing_docs)]
pub enum ConfigError {
    #[error("cannot read the filter config {path}: {source}; {hint}")]
    Read {
        path: std::path::PathBuf,
        source: std::io::Error,
        hint: &'static str,
    },
    #[error("{origin}:{line}: {message}")]
    Syntax {
        origin: String,
        line: usize,
        message: String,
    },
    /// An error in the expression, rendered with the config's line and a
    /// caret (the language's diagnostic format).
    #[error("{}", .0.trim_end())]
    Filter(String),
}

const KEYS: &str = "`direction` and `filter`";

impl ConfigFile {
    /// Reads and checks the config at `path`.
    pub fn read(path: &Path) -> Result<ConfigFile, ConfigError> {
        let bytes = std::fs::read(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            hint: if source.kind() == std::io::ErrorKind::NotFound {
                "write it (the format is in `portwall apply --help`) or let `portwall protect` write it"
            } else {
                "check its permissions"
            },
            source,
        })?;
        ConfigFile::parse_bytes(&bytes, &path.display().to_string())
    }

    /// Parses and checks a config read as bytes; `origin` names it in
    /// errors.
    pub fn parse_bytes(bytes: &[u8], origin: &str) -> Result<ConfigFile, ConfigError> {
        match std::str::from_utf8(bytes) {
            Ok(text) => ConfigFile::parse(text, origin),
            Err(e) => {
                let line = bytes[..e.valid_up_to()]
                    .iter()
                    .filter(|b| **b == b'\n')
                    .count()
                    + 1;
                Err(ConfigError::Syntax {
                    origin: origin.to_string(),
                    line,
                    message: "the file is not valid UTF-8; save it as UTF-8 (the format is ASCII)"
                        .into(),
                })
            }
        }
    }

    /// Parses and checks a config; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<ConfigFile, ConfigError> {
        let syntax = |line: usize, message: String| ConfigError::Syntax {
            origin: origin.to_string(),
            line,
            message,
        };
        let mut direction: Option<(usize, Option<Direction>)> = None;
        // The filter: the line it starts on, and its byte ranges in `text`.
        let mut filter: Option<(usize, Vec<std::ops::Range<usize>>)> = None;
        let mut in_filter = false;
        let mut offset = 0;
        for (index, line) in text.split_inclusive('\n').enumerate() {
            let number = index + 1;
            let start = offset;
            offset += line.len();
            let content = line.trim_end_matches(['\n', '\r']);
            if let Some((key, value_at)) = setting(content) {
                in_filter = false;
                let value = &content[value_at..];
                match key {
                    "direction" => {
                        if let Some((first, _)) = direction {
                            return Err(syntax(
                                number,
                                format!(
                                    "`direction` is set twice (first on line {first}); keep one"
                                ),
                            ));
                        }
                        let word = value.split('#').next().unwrap_or("").trim();
                        direction = Some((
                            number,
                            parse_direction(word).map_err(|m| syntax(number, m))?,
                        ));
                    }
                    "filter" => {
                        if let Some((first, _)) = filter {
                            return Err(syntax(
                                number,
                                format!(
                                    "`filter` is set twice (first on line {first}); join them with `||` or `&&` in one"
                                ),
                            ));
                        }
                        let value_start = start + value_at;
                        let first_line = value_start..start + content.len();
                        filter = Some((number, Vec::from([first_line])));
                        in_filter = true;
                    }
                    other => {
                        return Err(syntax(
                            number,
                            format!(
                                "unknown setting `{other}` (the settings are {KEYS}); \
                                 if this line continues the filter, indent it (and compare with `==`)"
                            ),
                        ));
                    }
                }
                continue;
            }
            if in_filter {
                if let Some((_, ranges)) = &mut filter {
                    ranges.push(start..start + content.len());
                }
                continue;
            }
            let trimmed = content.trim_start();
            if !(trimmed.is_empty() || trimmed.starts_with('#')) {
                return Err(syntax(
                    number,
                    format!(
                        "expected a setting such as `filter = tcp && dst_port == 443` (the settings are {KEYS}, \
                         each at the start of a line; `#` starts a comment)"
                    ),
                ));
            }
        }
        let Some((filter_line, ranges)) = filter else {
            return Err(syntax(
                text.lines().count().max(1),
                "no `filter = ...` line; add one, e.g. `filter = tcp && dst_port == 443`".into(),
            ));
        };
        let ranges = trim_trailing_comments(text, ranges);

        // The parser sees the file with everything but the filter blanked
        // (newlines kept), so diagnostics point into the file as it is.
        let end = ranges.last().map_or(0, |r| r.end);
        let mut masked: Vec<u8> = text.as_bytes()[..end]
            .iter()
            .map(|b| if *b == b'\n' { b'\n' } else { b' ' })
            .collect();
        for r in &ranges {
            masked[r.clone()].copy_from_slice(&text.as_bytes()[r.clone()]);
        }
        let masked = String::from_utf8(masked).expect("whole lines and ASCII spaces stay UTF-8");
        // Only comments is empty too, which the language would report at
        // the start of the file rather than on the `filter` line.
        if matches!(crate::lang::lex::tokenize(&masked), Ok(tokens) if tokens.is_empty()) {
            return Err(syntax(
                filter_line,
                "the filter is empty; write an expression after `filter =`, e.g. `tcp && dst_port == 443`".into(),
            ));
        }
        let render =
            |d: &crate::lang::diag::Diagnostic| ConfigError::Filter(d.render(text, origin));
        let ast = parse::parse(&masked).map_err(|d| render(&d))?;
        let direction = direction.and_then(|(_, d)| d);
        // `either` leaves the direction-aware names unresolved, which the
        // checker reports with the line and a caret.
        let checked = check::check_with(&ast, direction).map_err(|d| render(&d))?;
        let expression = ranges
            .iter()
            .map(|r| &text[r.clone()])
            .collect::<Vec<_>>()
            .join("\n")
            .trim()
            .to_string();
        Ok(ConfigFile {
            config: FilterConfig {
                direction,
                expression,
            },
            ast,
            filter: checked,
        })
    }
}

/// `KEY = VALUE` at the start of a line: the key and where the value
/// starts. `==` after a word is a comparison, not a setting.
fn setting(line: &str) -> Option<(&str, usize)> {
    let key_len = line
        .bytes()
        .take_while(|b| b.is_ascii_lowercase() || *b == b'_')
        .count();
    if key_len == 0 {
        return None;
    }
    let rest = &line[key_len..];
    let after_blanks = rest.trim_start_matches([' ', '\t']);
    let eq = line.len() - after_blanks.len();
    if !after_blanks.starts_with('=') || after_blanks.starts_with("==") {
        return None;
    }
    let value = &line[eq + 1..];
    let value_at = eq + 1 + (value.len() - value.trim_start().len());
    Some((&line[..key_len], value_at))
}

fn parse_direction(word: &str) -> Result<Option<Direction>, String> {
    match word {
        "ingress" => Ok(Some(Direction::Ingress)),
        "egress" => Ok(Some(Direction::Egress)),
        "either" => Ok(None),
        "" => Err("`direction =` needs a value: ingress, egress or either".into()),
        other => Err(format!(
            "unknown direction `{other}`; write ingress, egress or either"
        )),
    }
}

/// Blank and comment-only lines after the filter belong to the file, not
/// to the expression.
fn trim_trailing_comments(
    text: &str,
    mut ranges: Vec<std::ops::Range<usize>>,
) -> Vec<std::ops::Range<usize>> {
    while ranges.len() > 1 {
        let last = ranges.last().expect("more than one");
        let line = text[last.clone()].trim_start();
        if line.is_empty() || line.starts_with('#') {
            ranges.pop();
        } else {
            break;
        }
    }
    ranges
}

impl FilterConfig {
    /// The config file text: `header` (each line becomes a `#` comment),
    /// then the settings. Lines of a multi-line expression after the
    /// first are indented, which keeps them part of the filter.
    pub fn render(&self, header: &str) -> String {
        let mut out = String::new();
        for line in header.lines() {
            if line.is_empty() {
                out.push_str("#\n");
            } else {
                out.push_str(&format!("# {line}\n"));
            }
        }
        let direction = self.direction.map_or("either", |d| d.as_str());
        out.push_str(&format!("direction = {direction}\n"));
        let mut lines = self.expression.trim().lines();
        out.push_str(&format!("filter = {}\n", lines.next().unwrap_or("")));
        for line in lines {
            out.push_str(&format!("    {}\n", line.trim_start()));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lang::print;

    fn ok(text: &str) -> ConfigFile {
        ConfigFile::parse(text, "web.conf").unwrap_or_else(|e| panic!("{e}"))
    }

    fn err(text: &str) -> String {
        ConfigFile::parse(text, "web.conf").unwrap_err().to_string()
    }

    #[test]
    fn the_documented_example() {
        let c = ok(
            "# Comments: lines whose first non-blank character is `#`.\n\
                    direction = egress     # ingress, egress or either (default: either)\n\
                    filter = (tcp && dst_port == 443)\n    || (udp && dst_port == 53)    # indented\n",
        );
        assert_eq!(c.config.direction, Some(Direction::Egress));
        assert_eq!(
            c.config.expression,
            "(tcp && dst_port == 443)\n    || (udp && dst_port == 53)    # indented"
        );
        assert_eq!(
            print::print(&c.ast),
            "(tcp && dst_port == 443) || (udp && dst_port == 53)"
        );
    }

    #[test]
    fn direction_defaults_to_either_and_filter_may_start_on_the_next_line() {
        let c = ok("filter =\n  icmp\n\n# trailing comment\n");
        assert_eq!(c.config.direction, None);
        assert_eq!(c.config.expression, "icmp");
        assert_eq!(ok("direction=either\nfilter=udp").config.direction, None);
        assert_eq!(
            ok("filter = tcp\ndirection = ingress\n").config.direction,
            Some(Direction::Ingress)
        );
    }

    #[test]
    fn setting_errors_name_the_line() {
        assert_eq!(
            err("direction = egress\n"),
            "web.conf:1: no `filter = ...` line; add one, e.g. `filter = tcp && dst_port == 443`"
        );
        assert_eq!(
            err("# x\ndirection = out\nfilter = tcp\n"),
            "web.conf:2: unknown direction `out`; write ingress, egress or either"
        );
        assert!(
            err("filter = tcp\nfilter = udp\n")
                .starts_with("web.conf:2: `filter` is set twice (first on line 1)")
        );
        assert!(
            err("direction = egress\ndirection = ingress\nfilter = tcp")
                .starts_with("web.conf:2: `direction` is set twice")
        );
        assert!(err("tcp && dst_port == 80\n").starts_with("web.conf:1: expected a setting"));
        let e = err("filter = tcp\ndst_port = 80\n");
        assert!(
            e.starts_with("web.conf:2: unknown setting `dst_port`"),
            "{e}"
        );
        assert!(e.contains("indent it"), "{e}");
        assert_eq!(
            err("\n\nfilter =   # nothing\n"),
            "web.conf:3: the filter is empty; write an expression after `filter =`, e.g. `tcp && dst_port == 443`"
        );
        let bad = ConfigFile::parse_bytes(b"# ok\nfilter = tcp \xff\n", "web.conf")
            .unwrap_err()
            .to_string();
        assert!(
            bad.starts_with("web.conf:2: the file is not valid UTF-8"),
            "{bad}"
        );
    }

    #[test]
    fn direction_aware_names_take_the_configured_direction() {
        use crate::lang::ir::{Expr, Var};
        let c = ok("direction = ingress\nfilter = tcp && local_port == 443\n");
        assert_eq!(c.filter.direction, Some(Direction::Ingress));
        let Expr::Logic(_, terms) = &c.filter.expr else {
            panic!("{:?}", c.filter.expr)
        };
        assert_eq!(terms[1].vars(), vec![Var::DstPort]);
        // `either` leaves them meaningless: an error on the name.
        let e = err("direction = either\nfilter = tcp &&\n    remote_ip == ::1\n");
        assert!(
            e.contains("error: `remote_ip` needs to know the direction of the packets"),
            "{e}"
        );
        assert!(e.contains("--> web.conf:3:5\n"), "{e}");
        assert!(e.contains("`direction = ingress` or `egress`"), "{e}");
        // Without them, `either` is fine and the filter names no direction.
        assert_eq!(ok("filter = dst_ip in {10.0.0.0/8}").filter.direction, None);
    }

    #[test]
    fn filter_errors_point_into_the_file() {
        let e = err("# web\ndirection = egress\nfilter = tcp &&\n    dst_prot == 80\n");
        assert!(e.contains("--> web.conf:4:5\n"), "{e}");
        assert!(
            e.contains("4 |     dst_prot == 80\n  |     ^^^^^^^^\n"),
            "{e}"
        );
        let e = err("filter = tcp && dst_port = 80 # x\n");
        assert!(e.contains("--> web.conf:1:26\n"), "{e}");
        assert!(e.contains("1 | filter = tcp && dst_port = 80 # x\n"), "{e}");
        // An unfinished expression is reported where it ends, not on the
        // comments after it.
        let e = err("filter = tcp &&\n# later\n\n");
        assert!(e.contains("--> web.conf:1:16\n"), "{e}");
    }

    #[test]
    fn render_round_trips() {
        for (direction, expression) in [
            (Some(Direction::Egress), "tcp && dst_port == 443"),
            (None, "icmp ||\n  udp # dns\n&& dst_port == 53"),
            (Some(Direction::Ingress), "dst_port = = 1 || direction == 2"),
        ] {
            let config = FilterConfig {
                direction,
                expression: expression.to_string(),
            };
            let text = config.render("portwall filter `x`\n\nedit me");
            assert!(
                text.starts_with("# portwall filter `x`\n#\n# edit me\n"),
                "{text}"
            );
            match ConfigFile::parse(&text, "x.conf") {
                Ok(parsed) => {
                    assert_eq!(parsed.config.direction, direction);
                    let again = crate::lang::parse::parse(expression).unwrap();
                    assert_eq!(print::print(&parsed.ast), print::print(&again));
                }
                // A bad expression stays bad, and is reported in the file.
                Err(ConfigError::Filter(e)) => assert!(e.contains("x.conf:"), "{e}"),
                Err(e) => panic!("{e}\n{text}"),
            }
        }
    }
}
