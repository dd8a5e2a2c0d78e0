//! Where a filter expression comes from: the command line or `-f FILE`.

use crate::lang::diag::Diagnostic;
use crate::lang::ir::{Direction, Filter};
use crate::lang::{self};
use anyhow::{Context, Result};
use clap::Args;
use std::fmt;
use std::io::Read;
use std::path::PathBuf;

/// The example filter from the original project, used where a command
/// offers a built-in default.
pub const DEFAULT_FILTER: &str = "icmp || (udp && dst_port == 53) || (tcp && dst_port == 80)";

/// The longest filter file portwall reads. The programs that fit the
/// kernel come from filters of at most a few hundred KiB; the rest of the
/// allowance is for comments. (An expression given on the command line is
/// bounded by the kernel's 128 KiB limit on one argument.)
pub const MAX_FILTER_BYTES: usize = 4 << 20;

/// The filter expression, given inline or read from a file.
#[derive(Args, Debug, Clone)]
pub struct FilterArgs {
    /// The filter expression, e.g. 'tcp && dst_port == 80'. Quote it for the shell.
    #[arg(value_name = "EXPR", conflicts_with = "file")]
    pub expr: Option<String>,

    /// Read the expression from FILE instead ('-' for standard input).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,
}

/// `--direction`, for commands that check a filter without loading it.
#[derive(Args, Debug, Clone, Default)]
pub struct DirectionArg {
    /// The direction the filter is for: resolves `local_port`, `remote_port`,
    /// `local_ip` and `remote_ip` (local is the source on egress, the
    /// destination on ingress).
    #[arg(long, value_name = "ingress|egress")]
    pub direction: Option<Direction>,
}

/// A filter's text and where it came from, kept for error messages.
#[derive(Debug, Clone)]
pub struct FilterSource {
    pub text: String,
    /// "filter" for a command-line argument, else the file name.
    pub origin: String,
}

/// A filter that failed to parse or check, rendered with its source line.
#[derive(Debug)]
pub struct FilterError(pub String);

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.trim_end())
    }
}

impl std::error::Error for FilterError {}

impl FilterArgs {
    /// The source text, or `None` when neither EXPR nor `-f` was given.
    pub fn source(&self) -> Result<Option<FilterSource>> {
        if let Some(expr) = &self.expr {
            return Ok(Some(FilterSource {
                text: expr.clone(),
                origin: "filter".into(),
            }));
        }
        let Some(path) = &self.file else {
            return Ok(None);
        };
        let mut bytes = Vec::new();
        // At most one byte past the limit is read, so that `-f /dev/zero`
        // or an endless pipe is an error rather than exhausted memory.
        let limit = MAX_FILTER_BYTES as u64 + 1;
        let origin = if path.as_os_str() == "-" {
            std::io::stdin()
                .take(limit)
                .read_to_end(&mut bytes)
                .context("cannot read the filter from standard input")?;
            "<stdin>".to_string()
        } else {
            std::fs::File::open(path)
                .and_then(|f| f.take(limit).read_to_end(&mut bytes))
                .with_context(|| format!("cannot read the filter file {}", path.display()))?;
            path.display().to_string()
        };
        if bytes.len() > MAX_FILTER_BYTES {
            anyhow::bail!(
                "the filter in {origin} is longer than {} MiB, the most portwall reads; \
                 the largest filter that compiles is far smaller (see docs/limits.md)",
                MAX_FILTER_BYTES >> 20
            );
        }
        let text = match lang::lex::source_from_bytes(&bytes) {
            Ok(text) => text.to_string(),
            Err(diag) => {
                let lossy = String::from_utf8_lossy(&bytes);
                return Err(render(&diag, &lossy, &origin).into());
            }
        };
        Ok(Some(FilterSource { text, origin }))
    }

    /// The source, or an error saying that a filter is required.
    pub fn require(&self) -> Result<FilterSource> {
        self.source()?.ok_or_else(|| {
            anyhow::anyhow!("no filter given: pass EXPR (e.g. 'tcp && dst_port == 80') or -f FILE")
        })
    }
}

impl FilterSource {
    pub fn builtin_default() -> FilterSource {
        FilterSource {
            text: DEFAULT_FILTER.into(),
            origin: "filter".into(),
        }
    }

    /// Parses and checks the filter for `direction`, which the
    /// direction-aware names need; errors come back rendered.
    pub fn check_with(
        &self,
        direction: Option<Direction>,
    ) -> Result<(crate::lang::ast::Expr, Filter), FilterError> {
        let ast = lang::parse::parse(&self.text).map_err(|d| self.error(&d))?;
        let filter = lang::check::check_with(&ast, direction).map_err(|d| self.error(&d))?;
        Ok((ast, filter))
    }

    fn error(&self, diag: &Diagnostic) -> FilterError {
        render(diag, &self.text, &self.origin)
    }
}

fn render(diag: &Diagnostic, text: &str, origin: &str) -> FilterError {
    FilterError(diag.render(text, origin))
}
