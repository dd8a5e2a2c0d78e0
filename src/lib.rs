//! portwall: a packet firewall for systemd services and cgroups, from one
//! readable expression.
//!
//! The crate is layered so that each part can be read and tested alone:
//! - [`lang`]: the filter language (lexing, parsing, checking, printing);
//!   pure, no system calls.
//! - [`packet`]: packets as a cgroup_skb program sees them, the header
//!   parser that defines the packet semantics, and capture-file input.
//! - [`eval`]: the reference evaluator, written from the specification.
//! - [`compiler`]: filter to eBPF instructions, and the ELF object writer.
//! - [`kernel`]: the thin layer over aya that loads and test-runs programs.
//! - [`trace`]: `portwall trace`, the packets a filter judges as they
//!   happen, from a ring buffer.
//! - [`systemd`]: the loader unit, filter configs, drop-ins and
//!   `protect`/`unprotect` for systemd services.
//! - [`cli`]: the `portwall` command line.

pub mod cli;
pub mod compiler;
pub mod eval;
pub mod filters;
pub mod kernel;
pub mod lang;
pub mod packet;
pub mod runner;
pub mod systemd;
pub mod trace;
