//! What a filter costs per packet in the kernel, and what portwall's
//! dispatch and counters add: `cargo bench --bench overhead` (as root).
//!
//! Every program runs on the same packets in interleaved rounds through
//! the kernel's `BPF_PROG_TEST_RUN`, so machine noise hits all of them
//! alike; numbers are medians, shown as ns per packet and as the
//! difference to an empty program (`return 1`) measured in the same run,
//! which is the floor the test loop itself costs. Each program is loaded
//! in several copies, since code placement alone moves identical programs
//! by several percent. Environment: `BENCH_REPEAT` (runs per measurement,
//! default 500000), `BENCH_ROUNDS` (default 5), `BENCH_COPIES` (default 3).

use portwall::compiler::asm::{Asm, Reg};
use portwall::compiler::{self, elf};
use portwall::filters::{self, FilterName, LoadRequest, PinDir};
use portwall::kernel::{self, LoadedFilter};
use portwall::lang::{check, parse, print};
use portwall::packet::samples;
use std::path::PathBuf;
use std::time::Instant;

const EXAMPLE: &str = "icmp || (udp && dst_port == 53) || (tcp && dst_port == 80)";

fn env(name: &str, default: u32) -> u32 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

enum Prog {
    Loaded(LoadedFilter),
    Pinned(PathBuf),
}

impl Prog {
    /// This thread's CPU time per run. The kernel's own figure is a
    /// truncated integer, too coarse for differences of a nanosecond or
    /// two, and wall-clock time counts whatever else the shared machine
    /// runs meanwhile; the test-run loop runs in this thread's system call,
    /// so its CPU time is the loop's. The syscall's fixed cost is negligible
    /// over `repeat` runs.
    fn ns_per_run(&self, frame: &[u8], repeat: u32) -> f64 {
        let start = thread_cpu_ns();
        match self {
            Prog::Loaded(l) => kernel::test_run(l, frame, repeat),
            Prog::Pinned(p) => kernel::test_run_pinned(p, frame, repeat),
        }
        .expect("test run");
        (thread_cpu_ns() - start) as f64 / f64::from(repeat)
    }
}

fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we pass.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    if let Err(reason) = kernel::privileged() {
        println!("overhead bench skipped: {reason}");
        return;
    }
    let repeat = env("BENCH_REPEAT", 500_000);
    let rounds = env("BENCH_ROUNDS", 5);
    let copies = env("BENCH_COPIES", 3);
    let ast = parse::parse(EXAMPLE).unwrap();
    let filter = check::check(&ast).unwrap();

    // Build and load every variant, timing what `portwall load` does.
    let empty_elf = {
        let mut asm = Asm::new();
        asm.mov64_imm(Reg::R0, 1).exit();
        elf::write_object(&asm.finish().unwrap(), &elf::ObjectOptions::default()).unwrap()
    };
    let bare = compiler::object(&compiler::compile(&filter).unwrap()).unwrap();
    let (_, counted) = compiler::managed_object(&filter, None, "pw_meta", 8).unwrap();
    let pins = PinDir::open(None, true).expect("bpffs");
    let mut names = Vec::new();
    let mut load_ms = Vec::new();
    let mut variants: Vec<(&str, Vec<Prog>)> = vec![
        ("empty program (floor)", vec![]),
        ("filter as `portwall compile` emits it", vec![]),
        ("filter + counters", vec![]),
        ("dispatcher + filter + counters (`portwall load`)", vec![]),
    ];
    for copy in 0..copies {
        variants[0]
            .1
            .push(Prog::Loaded(kernel::load(&empty_elf, "portwall").unwrap()));
        variants[1]
            .1
            .push(Prog::Loaded(kernel::load(&bare, "portwall").unwrap()));
        variants[2]
            .1
            .push(Prog::Loaded(kernel::load(&counted, "portwall").unwrap()));
        let name: FilterName = format!("bench-{}-{copy}", std::process::id())
            .parse()
            .unwrap();
        let started = Instant::now();
        let report = filters::load(
            &pins,
            &LoadRequest {
                name: &name,
                expression: EXAMPLE,
                canonical: print::print(&ast),
                filter: &filter,
                direction: None,
                replace: false,
            },
        )
        .expect("portwall load");
        load_ms.push(started.elapsed().as_secs_f64() * 1000.0);
        variants[3].1.push(Prog::Pinned(report.path));
        names.push(name);
    }

    let packets = samples::samples();
    println!(
        "# kernel {}, {} runs per measurement, {rounds} rounds, {copies} copies; ns per packet (median), and minus the floor",
        std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim(),
        repeat
    );
    // results[variant][packet] = samples
    let mut results = vec![vec![Vec::new(); packets.len()]; variants.len()];
    for _ in 0..rounds {
        for (p, sample) in packets.iter().enumerate() {
            let frame = sample.packet.to_test_frame();
            for (v, (_, progs)) in variants.iter().enumerate() {
                for prog in progs {
                    results[v][p].push(prog.ns_per_run(&frame, repeat));
                }
            }
        }
    }
    print!("{:<48}", "packet");
    for (name, _) in &variants {
        print!(" | {:>22}", short(name));
    }
    println!();
    let mut sums = vec![0.0; variants.len()];
    for (p, sample) in packets.iter().enumerate() {
        print!("{:<48}", sample.name);
        let floor = median(results[0][p].clone());
        for v in 0..variants.len() {
            let m = median(results[v][p].clone());
            sums[v] += m - floor;
            if v == 0 {
                print!(" | {:>22}", format!("{m:.2}"));
            } else {
                print!(" | {:>22}", format!("{m:.2} (+{:.2})", m - floor));
            }
        }
        println!();
    }
    print!("{:<48}", "mean over packets, minus the floor");
    for s in &sums {
        print!(" | {:>22}", format!("{:.2}", s / packets.len() as f64));
    }
    println!();
    println!(
        "# portwall load of the example filter (compile, verify, pin): median {:.1} ms over {copies}",
        median(load_ms)
    );
    for name in &names {
        let _ = filters::unload(&pins, name);
    }
}

fn short(name: &str) -> &str {
    match name {
        n if n.starts_with("empty") => "floor",
        n if n.starts_with("filter as") => "filter",
        n if n.starts_with("filter +") => "+counters",
        _ => "+dispatch+counters",
    }
}
