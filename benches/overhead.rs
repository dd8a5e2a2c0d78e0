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
//!
//! The trace hook's cost is measured three ways: a managed filter built
//! without the hook (as before tracing existed), with the hook and no
//! trace running (what every filter pays), and with `portwall trace`
//! (drops only, and `--all`) running. A traced measurement is run in
//! chunks that fit its ring buffer, which is emptied between chunks
//! outside the timing, so every packet really is recorded; the lost count
//! is printed to show none were lost.

mod common;
use aya::maps::{Map, MapData, ProgramArray};
use common::{EXAMPLE, env, median, thread_cpu_ns};
use portwall::compiler::asm::{Asm, MapRef, Reg};
use portwall::compiler::{self, codegen, elf};
use portwall::filters::{self, FilterName, LoadRequest, PinDir};
use portwall::kernel::{self, LoadedFilter};
use portwall::lang::{check, parse, print};
use portwall::packet::samples;
use portwall::trace::{self, Tracer};
use std::path::PathBuf;
use std::time::Instant;

/// Runs per chunk of a traced measurement; its ring buffer holds them all.
const TRACE_CHUNK: u32 = 40_000;

enum Prog {
    Loaded(LoadedFilter),
    Pinned(PathBuf),
    /// A pinned filter whose jump table holds `program` instead of the
    /// one `portwall load` put there.
    PinnedWith {
        path: PathBuf,
        _program: LoadedFilter,
    },
    /// A pinned filter with a trace running.
    Traced(PathBuf, Box<Tracer>),
}

impl Prog {
    /// This thread's CPU time per run. The kernel's own figure is a
    /// truncated integer, too coarse for differences of a nanosecond or
    /// two, and wall-clock time counts whatever else the shared machine
    /// runs meanwhile; the test-run loop runs in this thread's system call,
    /// so its CPU time is the loop's. The syscall's fixed cost is negligible
    /// over `repeat` runs.
    fn ns_per_run(&mut self, frame: &[u8], repeat: u32) -> f64 {
        if let Prog::Traced(p, tracer) = self {
            let mut ns = 0;
            let mut left = repeat;
            while left > 0 {
                let n = left.min(TRACE_CHUNK);
                let start = thread_cpu_ns();
                kernel::test_run_pinned(p, frame, n).expect("test run");
                ns += thread_cpu_ns() - start;
                tracer.ring().drain(usize::MAX, |_| {});
                left -= n;
            }
            return ns as f64 / f64::from(repeat);
        }
        let start = thread_cpu_ns();
        match self {
            Prog::Loaded(l) => kernel::test_run(l, frame, repeat),
            Prog::Pinned(p) | Prog::PinnedWith { path: p, .. } => {
                kernel::test_run_pinned(p, frame, repeat)
            }
            Prog::Traced(..) => unreachable!("measured above"),
        }
        .expect("test run");
        (thread_cpu_ns() - start) as f64 / f64::from(repeat)
    }
}

/// The managed filter's object as it was before the trace hook: counters
/// and description only.
fn without_hook(filter: &portwall::lang::ir::Filter) -> Vec<u8> {
    let counting = codegen::Counting {
        counters: MapRef(0),
        direction: None,
        keep_alive: vec![MapRef(1)],
        trace: None,
    };
    let program = codegen::generate_with(filter, Some(&counting), &Default::default())
        .unwrap()
        .program;
    let map = |name: &str, map_type, value_size, max_entries| elf::MapDef {
        name: name.into(),
        map_type,
        key_size: 4,
        value_size,
        max_entries,
        flags: 0,
        data: None,
    };
    let opts = elf::ObjectOptions {
        maps: vec![
            map(
                compiler::COUNTERS_MAP,
                elf::map_type::PERCPU_ARRAY,
                16,
                codegen::COUNTER_SLOTS,
            ),
            map("pw_meta", elf::map_type::ARRAY, 8, 1),
        ],
        ..elf::ObjectOptions::default()
    };
    elf::write_object(&program, &opts).unwrap()
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
    let no_hook = without_hook(&filter);
    let pins = PinDir::open(None, true).expect("bpffs");
    let mut names = Vec::new();
    let mut load_ms = Vec::new();
    let mut variants: Vec<(&str, Vec<Prog>)> = vec![
        ("empty program (floor)", vec![]),
        ("filter as `portwall compile` emits it", vec![]),
        ("filter + counters, no trace hook", vec![]),
        ("filter + counters + trace hook", vec![]),
        ("`portwall load` before the trace hook", vec![]),
        ("`portwall load` (dispatcher, counters, hook)", vec![]),
        ("`portwall load` + `portwall trace` running", vec![]),
        ("`portwall load` + `portwall trace --all` running", vec![]),
    ];
    let mut pin = |variant: &str, copy: u32| -> (FilterName, PathBuf) {
        let name: FilterName = format!("bench-{}-{variant}-{copy}", std::process::id())
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
        names.push(name.clone());
        (name, report.path)
    };
    let trace_options = |mode| trace::Options {
        mode,
        snap: trace::DEFAULT_SNAP,
        ring_bytes: (TRACE_CHUNK * trace::record::record_len(trace::DEFAULT_SNAP) + 8)
            .next_power_of_two(),
    };
    for copy in 0..copies {
        let load = |elf: &[u8]| kernel::load(elf, "portwall").unwrap();
        variants[0].1.push(Prog::Loaded(load(&empty_elf)));
        variants[1].1.push(Prog::Loaded(load(&bare)));
        variants[2].1.push(Prog::Loaded(load(&no_hook)));
        variants[3].1.push(Prog::Loaded(load(&counted)));
        let (name, path) = pin("nohook", copy);
        let old = load(&no_hook);
        let jump = pins.pins(&name).jump;
        let map = Map::from_map_data(MapData::from_pin(&jump).unwrap()).unwrap();
        ProgramArray::try_from(map)
            .unwrap()
            .set(0, old.program().unwrap().fd().unwrap(), 0)
            .unwrap();
        variants[4].1.push(Prog::PinnedWith {
            path,
            _program: old,
        });
        let (_, path) = pin("load", copy);
        variants[5].1.push(Prog::Pinned(path));
        for (v, mode) in [(6, trace::Mode::Drops), (7, trace::Mode::All)] {
            let (name, path) = pin(mode.as_str(), copy);
            let tracer = Tracer::start(&pins, &name, trace_options(mode)).expect("trace");
            variants[v].1.push(Prog::Traced(path, Box::new(tracer)));
        }
    }

    let packets = samples::samples();
    println!(
        "# kernel {}, {} runs per measurement, {rounds} rounds, {copies} copies; ns per packet (median) of the floor, and of each variant minus the floor",
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
            for (v, (_, progs)) in variants.iter_mut().enumerate() {
                for prog in progs {
                    results[v][p].push(prog.ns_per_run(&frame, repeat));
                }
            }
        }
    }
    let verdicts: Vec<&str> = packets
        .iter()
        .map(|s| {
            match kernel::test_run(
                match &variants[1].1[0] {
                    Prog::Loaded(l) => l,
                    _ => unreachable!("the plain filter is loaded"),
                },
                &s.packet.to_test_frame(),
                1,
            )
            .expect("test run")
            .retval
            {
                0 => "drop",
                _ => "fwd",
            }
        })
        .collect();
    for (v, (name, _)) in variants.iter().enumerate() {
        println!("# {}: {name}", column(v));
    }
    print!("{:<48} {:>7}", "packet", "verdict");
    for v in 0..variants.len() {
        print!(" {:>8}", column(v));
    }
    println!();
    let mut sums = vec![0.0; variants.len()];
    for (p, sample) in packets.iter().enumerate() {
        print!("{:<48} {:>7}", sample.name, verdicts[p]);
        let floor = median(results[0][p].clone());
        for v in 0..variants.len() {
            let m = median(results[v][p].clone());
            sums[v] += m - floor;
            if v == 0 {
                print!(" {:>8}", format!("{m:.2}"));
            } else {
                print!(" {:>8}", format!("{:+.2}", m - floor));
            }
        }
        println!();
    }
    print!("{:<56}", "mean over packets, minus the floor");
    for s in &sums {
        print!(" {:>8}", format!("{:.2}", s / packets.len() as f64));
    }
    println!();
    for (v, (name, progs)) in variants.iter().enumerate() {
        let lost: u64 = progs
            .iter()
            .map(|p| match p {
                Prog::Traced(_, t) => t.lost().expect("lost counter"),
                _ => 0,
            })
            .sum();
        if lost > 0 || v >= 6 {
            println!("# {}: {lost} packets lost by the trace ({name})", column(v));
        }
    }
    println!(
        "# portwall load of the example filter (compile, verify, pin): median {:.1} ms over {copies}",
        median(load_ms)
    );
    drop(variants);
    for name in &names {
        let _ = filters::unload(&pins, name);
    }
}

/// Column labels, explained above the table.
fn column(v: usize) -> String {
    ["floor", "A", "B", "C", "D", "E", "F", "G"]
        .get(v)
        .map_or_else(|| v.to_string(), |s| s.to_string())
}
