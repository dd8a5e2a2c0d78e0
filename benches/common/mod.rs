//! What both benches measure with: knobs from the environment, this
//! thread's CPU time, medians.

/// The example filter of the README and the original program.
pub const EXAMPLE: &str = "icmp || (udp && dst_port == 53) || (tcp && dst_port == 80)";

/// A numeric knob from the environment, or its default.
pub fn env(name: &str, default: u32) -> u32 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// This thread's CPU time. A test run's loop runs in this thread's system
/// call, so its CPU time is the loop's; wall-clock time would count
/// whatever else the shared machine runs meanwhile.
pub fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we pass.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}
