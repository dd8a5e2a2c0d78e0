//! The filter language: source text to a checked expression.
//!
//! `lex` and `parse` build the syntax tree (`ast`) with spans; `check`
//! resolves names, folds constants and lowers it to `ir`, the form the
//! evaluator and the compiler consume. `print` renders the canonical form.
//! Every error is a `diag::Diagnostic` with the position of the offending
//! text.

pub mod ast;
pub mod check;
pub mod diag;
pub mod fold;
pub mod ir;
pub mod lex;
pub mod parse;
pub mod print;
pub mod sets;
pub mod span;
