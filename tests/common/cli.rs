//! Running the `portwall` binary from tests.

use std::process::{Command, Output};

/// Runs `portwall ARGS`, ignoring any `PORTWALL_BPFFS` of the caller.
pub fn portwall(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_portwall"))
        .args(args)
        .env_remove("PORTWALL_BPFFS")
        .output()
        .expect("runs portwall")
}

/// The standard output of a run that must succeed.
pub fn ok(o: Output) -> String {
    assert!(
        o.status.success(),
        "portwall failed: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

/// The standard error of a run that must fail with status 1.
pub fn fails(o: Output) -> String {
    assert_eq!(
        o.status.code(),
        Some(1),
        "expected exit 1: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    String::from_utf8(o.stderr).unwrap()
}
