//! Running compiled filters in the kernel's `BPF_PROG_TEST_RUN`, for tests
//! that hold the compiled program to the reference evaluator.

use portwall::compiler;
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
    let program = compiler::compile(filter).unwrap_or_else(|e| panic!("compile `{text}`: {e}"));
    let elf = compiler::object(&program).unwrap_or_else(|e| panic!("object `{text}`: {e}"));
    kernel::load(&elf, compiler::PROGRAM_NAME)
        .unwrap_or_else(|e| panic!("the kernel refused `{text}`: {e:#}\n{program}"))
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
