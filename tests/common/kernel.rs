//! Running compiled filters in the kernel's `BPF_PROG_TEST_RUN`, for tests
//! that hold the compiled program to the reference evaluator.

use portwall::compiler::{self, CompileOptions};
use portwall::eval::Verdict;
use portwall::kernel::{self, LoadedFilter};
use portwall::lang::ir::Filter;
use portwall::packet::{ETH_P_IP, ETH_P_IPV6, Packet};

/// Whether kernel tests can run here; prints the reason and returns false
/// when not (or panics when CI requires privileged tests).
pub fn available(test: &str) -> bool {
    kernel::require_privileges_or_skip(test)
}

/// Compiles and loads `filter`; any failure (the verifier's among them) is
/// a test failure that names the filter.
pub fn load(filter: &Filter, text: &str) -> LoadedFilter {
    load_with(filter, text, &CompileOptions::default())
}

/// As [`load`], compiled with `options`.
pub fn load_with(filter: &Filter, text: &str, options: &CompileOptions) -> LoadedFilter {
    let compiled = compiler::compile_with(filter, options)
        .unwrap_or_else(|e| panic!("compile `{text}` ({options:?}): {e}"));
    let elf = compiler::object(&compiled).unwrap_or_else(|e| panic!("object `{text}`: {e}"));
    kernel::load(&elf, compiler::PROGRAM_NAME)
        .unwrap_or_else(|e| panic!("the kernel refused `{text}` ({options:?}): {e:#}\n{compiled}"))
}

/// The two ways a program reads headers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadPath {
    /// Direct packet access, as the program runs on a linear packet.
    Fast,
    /// `bpf_skb_load_bytes`, as it runs on a packet whose headers are not
    /// all in the linear part of the socket buffer.
    Slow,
}

/// `filter` loaded twice, to be run on each read path.
///
/// How the tests cover packets whose headers are outside the linear part
/// of the socket buffer (they must be judged, not dropped): the program
/// reads them in its slow path, which parses again from the start with
/// `bpf_skb_load_bytes`. `BPF_PROG_TEST_RUN` cannot make such packets (it
/// always builds a linear skb), so in a plain test run the slow path would
/// never run. Hence every verdict test runs each filter twice: as compiled
/// (the fast path, and for really truncated packets the decision at
/// `short` that the linear part was the whole packet), and compiled with
/// `force_slow_path`, which starts in the slow path and reads every header
/// through the helper. The helper returns the same bytes whether they are
/// linear or not, so the slow path's verdicts here are the ones it gives a
/// non-linear packet; both must equal the evaluator's. What no test run
/// reaches is the jump at `short` into the slow path, taken only when
/// `skb->len` goes past `data_end`; it can only choose between the two
/// parses shown here to agree.
pub fn load_both(filter: &Filter, text: &str) -> [(ReadPath, LoadedFilter); 2] {
    let slow = CompileOptions {
        force_slow_path: true,
        ..CompileOptions::default()
    };
    [
        (ReadPath::Fast, load(filter, text)),
        (ReadPath::Slow, load_with(filter, text, &slow)),
    ]
}

/// Whether the kernel's test run accepts this packet at all: it refuses
/// IPv4 frames with under 20 IP bytes and IPv6 with under 40.
pub fn testable(p: &Packet) -> bool {
    match p.ethertype {
        ETH_P_IP => p.data.len() >= 20,
        ETH_P_IPV6 => p.data.len() >= 40,
        _ => true,
    }
}

/// The kernel's verdict on one packet.
pub fn verdict(loaded: &LoadedFilter, p: &Packet) -> Verdict {
    let out = kernel::test_run(loaded, &p.to_test_frame(), 1)
        .unwrap_or_else(|e| panic!("test run of {:02x?}: {e:#}", p.data));
    match out.retval {
        1 => Verdict::Forward,
        0 => Verdict::Drop,
        other => panic!("the program returned {other}"),
    }
}
