//! What sets cost per packet as they grow, and what compiling and loading
//! them takes: `cargo bench --bench sets` (as root).
//!
//! One table: the floor (an empty program), the example filter on a mix of
//! packets, sets of 1 to 10,000 ports and of 1 to 100,000 IPv4 and IPv6
//! prefixes, for portwall's choice of structure (`auto`), for each
//! structure forced (`compare`: a tree of comparisons; `table`: a bitmap or
//! range table) and for the kernel's LPM trie (`lpm`). Every row runs the
//! whole filter (`tcp && dst_port in {...}`, `dst_ip in {...}`) in the
//! kernel's `BPF_PROG_TEST_RUN` on a few packets whose keys are members and
//! a few whose keys are not; ns/packet is the mean over those packets of
//! the median over rounds and loaded copies (code placement alone moves
//! identical programs by several percent), `×1` the ratio to the same
//! structure's 1-element set. Compile is parse + check + code + object;
//! load is what the kernel takes to create and fill the tables and verify
//! the program (for the LPM trie, also the inserts).
//!
//! Environment: `BENCH_REPEAT` (runs per measurement, default 200000),
//! `BENCH_ROUNDS` (default 5), `BENCH_COPIES` (default 3), `BENCH_QUICK=1`
//! (the main rows only, for a first look).

mod common;
use common::{EXAMPLE, env, median, thread_cpu_ns};
use portwall::compiler::codegen::SetStrategy;
use portwall::compiler::{self, CompileOptions, elf};
use portwall::filters::{self, FilterName, LoadRequest, PinDir};
use portwall::kernel::{self, LoadedFilter};
use portwall::lang::{check, parse, print};
use portwall::packet::samples;
use std::path::PathBuf;
use std::time::Instant;

/// splitmix64: the same sets every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A blocklist's IPv4 length mix: mostly hosts and /24s, some /16-/23, a
/// few shorter (uniformly random short prefixes would cover everything).
fn v4_prefix(rng: &mut Rng) -> (u32, u8) {
    let len = match rng.below(1000) {
        0 => 8 + rng.below(8) as u8,
        1..=50 => 16 + rng.below(8) as u8,
        51..=350 => 24,
        351..=500 => 25 + rng.below(7) as u8,
        _ => 32,
    };
    (rng.next() as u32 & (u32::MAX << (32 - len)), len)
}

/// IPv6 in 2000::/3: /16 to /64 networks, /65 to /127, and /128 hosts.
fn v6_prefix(rng: &mut Rng) -> (u128, u8) {
    let len = match rng.below(1000) {
        0 => 16 + rng.below(16) as u8,
        1..=200 => 32 + rng.below(17) as u8,
        201..=500 => 48 + rng.below(17) as u8,
        501..=650 => 65 + rng.below(63) as u8,
        _ => 128,
    };
    let a = (u128::from(rng.next()) << 64 | u128::from(rng.next())) >> 3 | 1 << 125;
    (a & (u128::MAX << (128 - u32::from(len))), len)
}

fn frame(ethertype: u16, ip: &[u8]) -> Vec<u8> {
    let mut f = vec![0u8; 12];
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(ip);
    f
}

/// TCP (SYN) over IPv4 or IPv6, with the given addresses and port.
fn tcp4(dst: u32, port: u16) -> Vec<u8> {
    let mut ip = vec![0x45, 0, 0, 40, 0, 1, 0, 0, 64, 6, 0, 0, 10, 0, 0, 1];
    ip.extend_from_slice(&dst.to_be_bytes());
    ip.extend_from_slice(&tcp_header(port));
    frame(0x0800, &ip)
}

fn tcp6(dst: u128, port: u16) -> Vec<u8> {
    let mut ip = vec![0x60, 0, 0, 0, 0, 20, 6, 64];
    ip.extend_from_slice(&(0x2001_0db8u128 << 96 | 1).to_be_bytes());
    ip.extend_from_slice(&dst.to_be_bytes());
    ip.extend_from_slice(&tcp_header(port));
    frame(0x86dd, &ip)
}

fn tcp_header(port: u16) -> Vec<u8> {
    let mut t = vec![0x30, 0x39];
    t.extend_from_slice(&port.to_be_bytes());
    t.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0]);
    t
}

/// One row: a filter, how to compile it, and the packets to run it on.
struct Case {
    group: &'static str,
    size: usize,
    strategy: SetStrategy,
    text: String,
    packets: Vec<Vec<u8>>,
}

fn strategy_name(s: SetStrategy) -> &'static str {
    match s {
        SetStrategy::Auto => "auto",
        SetStrategy::Compare => "compare",
        SetStrategy::Table => "table",
        SetStrategy::LpmTrie => "lpm",
    }
}

/// A port set of `n` members, and packets: 4 to members, 4 not.
fn port_case(rng: &mut Rng, n: usize, strategy: SetStrategy) -> Case {
    let mut ports: Vec<u16> = Vec::new();
    while ports.len() < n {
        let p = rng.next() as u16;
        if !ports.contains(&p) || n > 60_000 {
            ports.push(p);
        }
    }
    let members: std::collections::HashSet<u16> = ports.iter().copied().collect();
    let list: Vec<String> = ports.iter().map(|p| p.to_string()).collect();
    let mut packets: Vec<Vec<u8>> = (0..4)
        .map(|i| tcp4(0x0a00_0002, ports[i * ports.len() / 4]))
        .collect();
    while packets.len() < 8 {
        let p = rng.next() as u16;
        if !members.contains(&p) {
            packets.push(tcp4(0x0a00_0002, p));
        }
    }
    Case {
        group: "ports",
        size: n,
        strategy,
        text: format!("tcp && dst_port in {{{}}}", list.join(", ")),
        packets,
    }
}

/// A prefix set of `n` members of one family, and packets to the first
/// address of 4 members and to 4 random addresses outside.
fn prefix_case(rng: &mut Rng, v6: bool, n: usize, strategy: SetStrategy) -> Case {
    let mut list = Vec::with_capacity(n);
    let mut packets = Vec::new();
    if v6 {
        let prefixes: Vec<(u128, u8)> = (0..n).map(|_| v6_prefix(rng)).collect();
        let set = portwall::lang::sets::PrefixSet::new(
            prefixes
                .iter()
                .map(|&(a, l)| portwall::lang::sets::Prefix::V6 { addr: a, len: l }),
        );
        for &(a, l) in &prefixes {
            list.push(format!("{}/{l}", std::net::Ipv6Addr::from(a)));
        }
        for i in 0..4 {
            packets.push(tcp6(prefixes[i * n / 4].0, 443));
        }
        while packets.len() < 8 {
            let a = (u128::from(rng.next()) << 64 | u128::from(rng.next())) >> 3 | 1 << 125;
            if !set.contains_v6(a) {
                packets.push(tcp6(a, 443));
            }
        }
    } else {
        let prefixes: Vec<(u32, u8)> = (0..n).map(|_| v4_prefix(rng)).collect();
        let set = portwall::lang::sets::PrefixSet::new(
            prefixes
                .iter()
                .map(|&(a, l)| portwall::lang::sets::Prefix::V4 { addr: a, len: l }),
        );
        for &(a, l) in &prefixes {
            list.push(format!("{}/{l}", std::net::Ipv4Addr::from(a)));
        }
        for i in 0..4 {
            packets.push(tcp4(prefixes[i * n / 4].0, 443));
        }
        while packets.len() < 8 {
            let a = rng.next() as u32;
            if !set.contains_v4(a) {
                packets.push(tcp4(a, 443));
            }
        }
    }
    Case {
        group: if v6 { "IPv6 prefixes" } else { "IPv4 prefixes" },
        size: n,
        strategy,
        text: format!("dst_ip in {{{}}}", list.join(", ")),
        packets,
    }
}

enum Prog {
    Loaded(LoadedFilter),
    Pinned(PathBuf),
}

impl Prog {
    /// This thread's CPU time per run: the test-run loop runs in this
    /// thread's system call, and wall-clock time would count whatever else
    /// the shared machine runs meanwhile.
    fn ns_per_run(&self, frame: &[u8], repeat: u32) -> f64 {
        let start = thread_cpu_ns();
        match self {
            Prog::Loaded(l) => kernel::test_run(l, frame, repeat),
            Prog::Pinned(p) => kernel::test_run_pinned(p, frame, repeat),
        }
        .expect("test run");
        (thread_cpu_ns() - start) as f64 / f64::from(repeat)
    }

    fn retval(&self, frame: &[u8]) -> u32 {
        match self {
            Prog::Loaded(l) => kernel::test_run(l, frame, 1),
            Prog::Pinned(p) => kernel::test_run_pinned(p, frame, 1),
        }
        .expect("test run")
        .retval
    }
}

/// A row ready to measure.
struct Row {
    label: String,
    group: &'static str,
    strategy: &'static str,
    size: usize,
    progs: Vec<Prog>,
    packets: Vec<Vec<u8>>,
    compile_ms: f64,
    load_ms: f64,
    /// Instructions, and bytes of tables.
    insns: usize,
    table_bytes: usize,
}

fn build(case: Case, copies: u32) -> Row {
    let started = Instant::now();
    let filter = check::check(&parse::parse(&case.text).expect("parses")).expect("checks");
    let options = CompileOptions {
        sets: case.strategy,
        ..CompileOptions::default()
    };
    let compiled = compiler::compile_with(&filter, &options).expect("compiles");
    let elf = compiler::object(&compiled).expect("object");
    let compile_ms = started.elapsed().as_secs_f64() * 1e3;
    let mut load_ms = Vec::new();
    let mut progs = Vec::new();
    for _ in 0..copies {
        let started = Instant::now();
        let loaded = kernel::load(&elf, compiler::PROGRAM_NAME).expect("loads");
        loaded.fill_tables(&compiled.tables).expect("fills");
        load_ms.push(started.elapsed().as_secs_f64() * 1e3);
        progs.push(Prog::Loaded(loaded));
    }
    let table_bytes = compiled
        .tables
        .iter()
        .map(|t| match &t.contents {
            compiler::codegen::TableContents::Data(b) => b.len(),
            compiler::codegen::TableContents::LpmTrie { entries, .. } => {
                entries.iter().map(Vec::len).sum()
            }
        })
        .sum();
    // The packets must say what the set says, or the row measures a bug.
    for p in &case.packets {
        let packet = portwall::packet::Packet {
            ethertype: u16::from_be_bytes([p[12], p[13]]),
            data: p[14..].to_vec(),
        };
        let want = portwall::eval::evaluate(&filter, &packet).verdict()
            == portwall::eval::Verdict::Forward;
        assert_eq!(
            progs[0].retval(p),
            u32::from(want),
            "{} {}",
            case.group,
            case.size
        );
    }
    Row {
        label: format!("{} {}", fmt_count(case.size), case.group),
        group: case.group,
        strategy: strategy_name(case.strategy),
        size: case.size,
        progs,
        packets: case.packets,
        compile_ms,
        load_ms: median(load_ms),
        insns: compiled.program.slots(),
        table_bytes,
    }
}

fn fmt_count(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn main() {
    if let Err(reason) = kernel::privileged() {
        println!("sets bench skipped: {reason}");
        return;
    }
    let repeat = env("BENCH_REPEAT", 200_000);
    let rounds = env("BENCH_ROUNDS", 5);
    let copies = env("BENCH_COPIES", 3);
    let quick = env("BENCH_QUICK", 0) == 1;
    let mut rng = Rng(2026);

    let mut cases: Vec<Case> = Vec::new();
    let port_sizes: &[usize] = &[1, 10, 100, 1000, 10_000];
    let prefix_sizes: &[usize] = &[1, 10, 100, 1000, 10_000, 100_000];
    for &n in port_sizes {
        cases.push(port_case(&mut rng, n, SetStrategy::Auto));
    }
    for v6 in [false, true] {
        for strategy in [SetStrategy::Auto, SetStrategy::LpmTrie] {
            for &n in prefix_sizes {
                cases.push(prefix_case(&mut rng, v6, n, strategy));
            }
        }
    }
    if !quick {
        // For scale: the original's way to write a port set, one term each.
        let mut terms = port_case(&mut rng, 1000, SetStrategy::Auto);
        let ports: Vec<String> = terms
            .text
            .trim_start_matches("tcp && dst_port in {")
            .trim_end_matches('}')
            .split(", ")
            .map(|p| format!("(tcp && dst_port == {p})"))
            .collect();
        terms.text = ports.join(" || ");
        terms.group = "`(tcp && dst_port == P)` terms";
        cases.push(terms);
        // Where comparisons stop paying: the crossovers.
        for &n in &[1, 4, 8, 16, 32, 64, 256] {
            for strategy in [SetStrategy::Compare, SetStrategy::Table] {
                cases.push(port_case(&mut rng, n, strategy));
            }
        }
        for v6 in [false, true] {
            for &n in &[1, 4, 16, 32, 64, 128, 256, 1000] {
                for strategy in [SetStrategy::Compare, SetStrategy::Table] {
                    cases.push(prefix_case(&mut rng, v6, n, strategy));
                }
            }
        }
    }

    // The floor and the example filter, bare and as `portwall load` pins it.
    let empty_elf = {
        let mut asm = portwall::compiler::asm::Asm::new();
        asm.mov64_imm(portwall::compiler::asm::Reg::R0, 1).exit();
        elf::write_object(&asm.finish().unwrap(), &elf::ObjectOptions::default()).unwrap()
    };
    let sample_frames: Vec<Vec<u8>> = samples::samples()
        .iter()
        .map(|s| s.packet.to_test_frame())
        .filter(|f| f.len() >= 34)
        .collect();
    let ast = parse::parse(EXAMPLE).unwrap();
    let example = check::check(&ast).unwrap();
    let started = Instant::now();
    let bare = compiler::object(&compiler::compile(&example).unwrap()).unwrap();
    let example_compile = started.elapsed().as_secs_f64() * 1e3;
    let bpffs = std::env::temp_dir().join(format!("portwall-bench-sets-{}", std::process::id()));
    filters::pins::mount_bpffs(&bpffs).expect("a private bpffs");
    let pins = PinDir::open(Some(&bpffs), true).expect("pin directory");
    let mut rows: Vec<Row> = Vec::new();
    let mut floor = Vec::new();
    let mut bare_progs = Vec::new();
    let mut pinned = Vec::new();
    let mut bare_load = Vec::new();
    let mut pinned_load = Vec::new();
    for copy in 0..copies {
        floor.push(Prog::Loaded(kernel::load(&empty_elf, "portwall").unwrap()));
        let started = Instant::now();
        bare_progs.push(Prog::Loaded(kernel::load(&bare, "portwall").unwrap()));
        bare_load.push(started.elapsed().as_secs_f64() * 1e3);
        let name: FilterName = format!("bench{copy}").parse().unwrap();
        let started = Instant::now();
        let report = filters::load(
            &pins,
            &LoadRequest {
                name: &name,
                expression: EXAMPLE,
                canonical: print::print(&ast),
                filter: &example,
                direction: None,
                replace: false,
            },
        )
        .expect("portwall load");
        pinned_load.push(started.elapsed().as_secs_f64() * 1e3);
        pinned.push(Prog::Pinned(report.path));
    }
    let fixed = |label: &str, progs, packets: &Vec<Vec<u8>>, compile_ms, load_ms| Row {
        label: label.to_string(),
        group: "",
        strategy: "",
        size: 0,
        progs,
        packets: packets.clone(),
        compile_ms,
        load_ms,
        insns: 0,
        table_bytes: 0,
    };
    rows.push(fixed(
        "empty program (floor)",
        floor,
        &sample_frames,
        0.0,
        0.0,
    ));
    rows.push(fixed(
        "example filter, as compiled",
        bare_progs,
        &sample_frames,
        example_compile,
        median(bare_load),
    ));
    rows.push(fixed(
        "example filter, as loaded (dispatch, counters)",
        pinned,
        &sample_frames,
        example_compile,
        median(pinned_load),
    ));
    eprintln!(
        "building {} set filters ({copies} copies each) ...",
        cases.len()
    );
    for case in cases {
        rows.push(build(case, copies));
    }

    eprintln!("measuring ...");
    // The floor depends on the frame (its size, its family), so each row
    // gets the floor of its own frames: measured on one frame of each
    // (EtherType, length) its packets have.
    let class = |f: &Vec<u8>| (u16::from_be_bytes([f[12], f[13]]), f.len());
    let mut classes: Vec<((u16, usize), Vec<u8>)> = Vec::new();
    for row in &rows {
        for f in &row.packets {
            if !classes.iter().any(|(c, _)| *c == class(f)) {
                classes.push((class(f), f.clone()));
            }
        }
    }
    // results[row][packet]: samples over rounds and copies, interleaved so
    // that machine noise hits every row alike.
    let mut results: Vec<Vec<Vec<f64>>> = rows
        .iter()
        .map(|r| vec![Vec::new(); r.packets.len()])
        .collect();
    let mut floors: Vec<Vec<f64>> = vec![Vec::new(); classes.len()];
    for _ in 0..rounds {
        for (r, row) in rows.iter().enumerate() {
            for prog in &row.progs {
                for (p, frame) in row.packets.iter().enumerate() {
                    results[r][p].push(prog.ns_per_run(frame, repeat));
                }
            }
        }
        for (c, (_, frame)) in classes.iter().enumerate() {
            for prog in &rows[0].progs {
                floors[c].push(prog.ns_per_run(frame, repeat));
            }
        }
    }
    let floors: Vec<f64> = floors.into_iter().map(median).collect();
    let ns: Vec<f64> = results
        .into_iter()
        .map(|per_packet| {
            let n = per_packet.len() as f64;
            per_packet.into_iter().map(median).sum::<f64>() / n
        })
        .collect();
    let row_floor: Vec<f64> = rows
        .iter()
        .map(|row| {
            let sum: f64 = row
                .packets
                .iter()
                .map(|f| {
                    let c = classes.iter().position(|(k, _)| *k == class(f)).unwrap();
                    floors[c]
                })
                .sum();
            sum / row.packets.len() as f64
        })
        .collect();

    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    println!(
        "# kernel {}, {} CPUs ({cpu}); {repeat} runs per measurement, {rounds} rounds, {copies} copies",
        std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    );
    println!(
        "| filter | structure | ns/packet | − floor | ×1 | compile ms | load ms | insns | table bytes |"
    );
    // (− floor: minus the empty program on the same frames.)
    println!("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (r, row) in rows.iter().enumerate() {
        // The one-term form compares with one port.
        let group = if row.group.ends_with("terms") {
            "ports"
        } else {
            row.group
        };
        let one = rows
            .iter()
            .position(|o| o.group == group && o.strategy == row.strategy && o.size == 1)
            .filter(|_| !row.group.is_empty());
        let ratio = one.map_or(String::new(), |o| format!("{:.2}", ns[r] / ns[o]));
        println!(
            "| {} | {} | {:.1} | {:.1} | {} | {:.1} | {:.1} | {} | {} |",
            row.label,
            row.strategy,
            ns[r],
            if r == 0 { 0.0 } else { ns[r] - row_floor[r] },
            ratio,
            row.compile_ms,
            row.load_ms,
            if row.insns > 0 {
                row.insns.to_string()
            } else {
                String::new()
            },
            if row.table_bytes > 0 {
                fmt_count(row.table_bytes)
            } else {
                String::new()
            },
        );
    }
    for copy in 0..copies {
        let name: FilterName = format!("bench{copy}").parse().unwrap();
        let _ = filters::unload(&pins, &name);
    }
    drop(rows);
    let target = std::ffi::CString::new(bpffs.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: umount2(2) of the bpffs this bench mounted.
    unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
    let _ = std::fs::remove_dir(&bpffs);
}
