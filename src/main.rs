use std::process::ExitCode;

/// Filters can nest hundreds of levels deep (the parser's limit); the
/// checker, evaluator and code generator recurse over them, so the work
/// runs on a thread with a generous stack rather than the main thread's.
const STACK_SIZE: usize = 256 << 20;

fn main() -> ExitCode {
    std::thread::Builder::new()
        .stack_size(STACK_SIZE)
        .spawn(portwall::cli::main)
        .expect("cannot start the main thread")
        .join()
        .unwrap_or(ExitCode::FAILURE)
}
