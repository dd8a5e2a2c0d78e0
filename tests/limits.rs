//! The limits docs/limits.md states, held against the real binary: at
//! each limit a filter compiles and loads; past it, a clear error (exit
//! status 1, no panic, never "a bug in portwall", no verifier dump).
//!
//! - nesting: 512 levels (the parser's `MAX_DEPTH`), in every shape;
//! - a chain of comparisons joined by `||` or `&&`: 8000 terms (the
//!   kernel verifier follows at most 8192 pending branches on one path);
//! - a filter file: 4 MiB;
//! - sets (once the language has them): measured and printed here.

mod common;

use common::bpffs::PrivateBpffs;
use portwall::lang::parse::MAX_DEPTH;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// The documented guarantee for `&&`/`||` chains of comparisons.
const CHAIN_TERMS: usize = 8000;

/// `portwall [--bpffs B] ARGS -f -` with `filter` on standard input.
fn run_with_filter(bpffs: Option<&Path>, args: &[&str], filter: &str) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_portwall"));
    if let Some(b) = bpffs {
        c.arg("--bpffs").arg(b);
    }
    let mut child = c
        .args(args)
        .args(["-f", "-"])
        .env_remove("PORTWALL_BPFFS")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("runs portwall");
    let mut stdin = child.stdin.take().unwrap();
    // Written from a thread: portwall may stop reading (a too-long
    // filter) while the pipe is full.
    let text = filter.to_string();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(text.as_bytes());
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

/// Loads (or replaces) filter `lim` in `b`; the error text when it fails.
fn load(b: &Path, filter: &str) -> Result<String, String> {
    let o = run_with_filter(Some(b), &["load", "lim", "--replace"], filter);
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    if o.status.success() {
        return Ok(String::from_utf8_lossy(&o.stdout).into_owned());
    }
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        !stderr.contains("bug in portwall"),
        "a limit, not a bug: {stderr}"
    );
    assert!(!stderr.contains("verifier log"), "{stderr}");
    // A language error quotes its source line, however long; any other
    // error is a sentence or two.
    if !stderr.starts_with("error: ") {
        assert!(stderr.starts_with("portwall: error: "), "{stderr}");
        assert!(stderr.len() < 2000, "too long an error: {stderr}");
    }
    Err(stderr)
}

fn loads(b: &Path, what: &str, filter: &str) {
    if let Err(e) = load(b, filter) {
        panic!("{what} ({} bytes) does not load: {e}", filter.len());
    }
}

/// The largest `n` in `lo..hi` for which `filter(n)` loads, given that
/// `lo` does and `hi` does not; and the error at `n + 1`.
fn largest(
    b: &Path,
    mut lo: usize,
    mut hi: usize,
    filter: impl Fn(usize) -> String,
) -> (usize, String) {
    loads(b, "the lower bound", &filter(lo));
    let mut error = load(b, &filter(hi)).expect_err("the upper bound is refused");
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        match load(b, &filter(mid)) {
            Ok(_) => lo = mid,
            Err(e) => (hi, error) = (mid, e),
        }
    }
    (lo, error)
}

// ------------------------------------------------------------- nesting

/// Filters exactly `MAX_DEPTH` levels deep (the height of the tree, a
/// leaf being 1), one per way of nesting.
fn deepest() -> Vec<(&'static str, String)> {
    let n = MAX_DEPTH;
    vec![
        ("prefix operators", format!("{}tcp", "!".repeat(n - 1))),
        (
            "parentheses",
            format!("{}dst_port{}", "(".repeat(n), ")".repeat(n)),
        ),
        (
            "negations in parentheses",
            format!("{}dst_port{}", "-(".repeat(n - 1), ")".repeat(n - 1)),
        ),
        (
            "a left-associative chain",
            format!("dst_port{}", " - 1".repeat(n - 1)),
        ),
        (
            "conditionals nested to the right",
            format!("{}udp", "tcp ? dst_port : ".repeat(n - 1)),
        ),
        (
            "conditionals nested in the middle",
            format!(
                "{}udp{}",
                "tcp ? ".repeat(n - 1),
                " : src_port".repeat(n - 1)
            ),
        ),
        (
            "alternating && and || in parentheses",
            // Each level is a chain holding a comparison (2 high) and the
            // next level; the innermost chain is 3 high.
            format!(
                "{}tcp{}",
                (0..n - 2)
                    .map(|i| format!("(dst_port == {i} {} ", ["||", "&&"][i % 2]))
                    .collect::<String>(),
                ")".repeat(n - 2)
            ),
        ),
    ]
}

#[test]
fn the_deepest_filters_load_and_deeper_ones_are_refused() {
    if !common::kernel::available("the_deepest_filters_load_and_deeper_ones_are_refused") {
        return;
    }
    let fs = PrivateBpffs::mount("limits-depth");
    let b = fs.path();
    for (shape, text) in deepest() {
        if let Err(e) = portwall::lang::parse::parse(&text) {
            panic!("{shape} at the limit: {e}");
        }
        loads(b, shape, &text);
        // One more level is refused by the parser.
        let err = load(b, &format!("-({text})")).expect_err("one level deeper");
        assert!(
            err.contains("expression nests too deeply (more than 512 levels)"),
            "{shape}: {err}"
        );
    }
}

// ------------------------------------------------------------- chains

fn ors(n: usize) -> String {
    (0..n)
        .map(|i| format!("dst_port == {i}"))
        .collect::<Vec<_>>()
        .join(" || ")
}

#[test]
fn the_longest_chains_load_and_longer_ones_are_clearly_refused() {
    if !common::kernel::available("the_longest_chains_load_and_longer_ones_are_clearly_refused") {
        return;
    }
    let fs = PrivateBpffs::mount("limits-chain");
    let b = fs.path();
    let n = CHAIN_TERMS;
    loads(b, "an || chain", &ors(n));
    let ands = (0..n)
        .map(|i| format!("src_port != {i}"))
        .collect::<Vec<_>>()
        .join(" && ");
    loads(b, "an && chain", &ands);
    let pairs = (0..n)
        .map(|i| format!("(tcp && dst_port == {i})"))
        .collect::<Vec<_>>()
        .join(" || ");
    loads(b, "an || chain of && pairs", &pairs);

    // Past the verifier's limit: said so, with what to do.
    let err = load(b, &ors(8300)).expect_err("8300 terms");
    assert!(
        err.contains("too large for the kernel's verifier") && err.contains("docs/limits.md"),
        "{err}"
    );
    // Past what an eBPF jump reaches: said so too.
    let err = load(b, &ors(40_000)).expect_err("40000 terms");
    assert!(
        err.contains("the filter is too large") && err.contains("docs/limits.md"),
        "{err}"
    );
    // The exact limit on this kernel, for the record.
    let (max, err) = largest(b, n, 8300, ors);
    println!(
        "limits: the longest || chain of comparisons that loads has {max} terms ({} bytes); \
         one more: {}",
        ors(max).len(),
        err.trim()
    );
}

// ------------------------------------------------------------- input size

#[test]
fn filter_files_over_4_mib_are_refused() {
    let max = portwall::cli::input::MAX_FILTER_BYTES;
    assert_eq!(max, 4 << 20, "docs/limits.md says 4 MiB");
    let comment = |len: usize| format!("#{}\ntcp", "x".repeat(len - 5));
    let at_limit = comment(max);
    assert_eq!(at_limit.len(), max);
    let o = run_with_filter(None, &["check"], &at_limit);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = run_with_filter(None, &["check"], &comment(max + 1));
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("longer than 4 MiB"), "{err}");
    // An endless input is cut off, not read until memory runs out.
    let o = Command::new(env!("CARGO_BIN_EXE_portwall"))
        .args(["check", "-f", "/dev/zero"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("longer than 4 MiB"));
}

// ------------------------------------------------------------- sets

#[test]
fn the_largest_sets_are_measured() {
    if portwall::lang::parse::parse("1 in {1}").is_err() {
        println!("limits: sets are not in this build of the language; nothing to measure");
        return;
    }
    if !common::kernel::available("the_largest_sets_are_measured") {
        return;
    }
    let fs = PrivateBpffs::mount("limits-sets");
    let b = fs.path();
    // A range is one element however wide.
    loads(b, "every port as a range", "dst_port in {0..65535}");
    // Scattered ports: every other one, so no two merge into a range.
    let ports = |n: usize| {
        let items: Vec<String> = (0..n).map(|i| (2 * i).to_string()).collect();
        format!("dst_port in {{{}}}", items.join(", "))
    };
    let prefixes = |n: usize| {
        let items: Vec<String> = (0..n)
            .map(|i| format!("10.{}.{}.{}", i >> 16 & 0xff, i >> 8 & 0xff, i & 0xff))
            .collect();
        format!("dst_ip in {{{}}}", items.join(", "))
    };
    for (what, make, top) in [
        ("ports", &ports as &dyn Fn(usize) -> String, 32_768usize),
        ("IPv4 addresses", &prefixes, 1 << 20),
    ] {
        match load(b, &make(top)) {
            Ok(_) => println!("limits: a set of {top} {what} loads"),
            Err(_) => {
                let (max, err) = largest(b, 1, top, make);
                println!(
                    "limits: the largest set of scattered {what} that loads has {max} elements; \
                     one more: {}",
                    err.trim()
                );
            }
        }
    }
}
