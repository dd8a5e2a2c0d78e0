//! `portwall test`: a filter's verdict on packets, from the reference
//! evaluator or from the kernel running the compiled program.

use super::input::{DirectionArg, FilterArgs, FilterSource};
use crate::eval::{self, Outcome, Verdict};
use crate::packet::{Packet, capture, hex, samples, summary};
use crate::{compiler, kernel};
use anyhow::{Context, Result, bail};
use clap::Args;
use serde::Serialize;
use std::path::PathBuf;

/// Show what a filter does with packets.
#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
    portwall test 'udp && dst_port == 53' --hex 4500001d000100004011000000000000000000009c4000350009000000\n  \
    portwall test -f web.filter --pcap capture.pcap --kernel\n  \
    portwall test --samples        # the example filter on built-in packets\n\n\
    Each line: the packet's 1-based index, forward or drop, and a summary of\n\
    the packet. --hex takes a raw IP packet (from the IP header on); --pcap\n\
    reads pcap or pcapng with Ethernet, raw IP or Linux cooked link types.\n\
    Without --kernel the reference evaluator decides (no privileges needed);\n\
    with --kernel the compiled program runs in the kernel's BPF_PROG_TEST_RUN\n\
    (root or CAP_BPF), and any disagreement with the evaluator is reported.")]
pub struct TestArgs {
    /// The filter (default with --samples: the example filter).
    #[command(flatten)]
    pub filter: FilterArgs,

    #[command(flatten)]
    pub direction: DirectionArg,

    /// A raw IP packet in hex (repeatable).
    #[arg(long = "hex", value_name = "HEX")]
    pub hex: Vec<String>,

    /// Read packets from a pcap or pcapng file.
    #[arg(long, value_name = "FILE")]
    pub pcap: Option<PathBuf>,

    /// Use portwall's built-in sample packets.
    #[arg(long)]
    pub samples: bool,

    /// Run the compiled program in the kernel instead of the evaluator.
    #[arg(long)]
    pub kernel: bool,

    /// Print one JSON document instead of lines.
    #[arg(long)]
    pub json: bool,
}

/// One packet's result, as printed.
#[derive(Serialize)]
struct Row {
    index: usize,
    /// "forward", "drop", or "error" when the kernel could not test it.
    verdict: &'static str,
    /// Why the evaluator dropped it, when a needed header is malformed.
    #[serde(skip_serializing_if = "Option::is_none")]
    malformed: Option<String>,
    /// The kernel's error for this packet.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    /// With --kernel: the evaluator's verdict when it differs.
    #[serde(skip_serializing_if = "Option::is_none")]
    evaluator_differs: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'static str>,
    summary: String,
}

pub fn run(args: &TestArgs) -> Result<bool> {
    let source = match args.filter.source()? {
        Some(source) => source,
        None if args.samples => {
            let source = FilterSource::builtin_default();
            eprintln!(
                "portwall: no filter given, using the example filter: {}",
                source.text
            );
            source
        }
        None => bail!("no filter given: pass EXPR (e.g. 'tcp && dst_port == 80') or -f FILE"),
    };
    let (_, filter) = source.check_with(args.direction.direction)?;
    let packets = packets(args)?;

    let loaded = if args.kernel {
        let program = compiler::compile(&filter)?;
        let elf = compiler::object(&program)?;
        Some(kernel::load(&elf, compiler::PROGRAM_NAME)?)
    } else {
        None
    };

    let mut rows = Vec::with_capacity(packets.len());
    let mut all_ok = true;
    for (i, (name, packet)) in packets.iter().enumerate() {
        let outcome = eval::evaluate(&filter, packet);
        let malformed = match outcome {
            Outcome::Malformed(m) => Some(m.to_string()),
            Outcome::Value(_) => None,
        };
        let mut row = Row {
            index: i + 1,
            verdict: outcome.verdict().as_str(),
            malformed,
            error: None,
            evaluator_differs: None,
            name: *name,
            summary: summary::summarize(packet),
        };
        if let Some(loaded) = &loaded {
            match kernel::test_run(loaded, &packet.to_test_frame(), 1) {
                Ok(out) => {
                    let verdict = if out.retval == 1 {
                        Verdict::Forward
                    } else {
                        Verdict::Drop
                    };
                    if verdict != outcome.verdict() {
                        row.evaluator_differs = Some(outcome.verdict().as_str());
                        all_ok = false;
                    }
                    row.verdict = verdict.as_str();
                }
                Err(e) => {
                    row.verdict = "error";
                    row.error = Some(e.to_string());
                    all_ok = false;
                }
            }
        }
        rows.push(row);
    }

    if args.json {
        let doc = serde_json::json!({
            "filter": source.text,
            "engine": if args.kernel { "kernel" } else { "evaluator" },
            "packets": rows,
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        for row in &rows {
            print_row(row);
        }
    }
    Ok(all_ok)
}

fn print_row(row: &Row) {
    let mut line = format!("{} {:<7} {}", row.index, row.verdict, row.summary);
    if let Some(name) = row.name {
        line.push_str(&format!(" ({name})"));
    }
    if let Some(m) = &row.malformed {
        line.push_str(&format!(" [malformed: {m}]"));
    }
    if let Some(e) = &row.error {
        line.push_str(&format!(" [kernel: {e}]"));
    }
    if let Some(v) = row.evaluator_differs {
        line.push_str(&format!(" [MISMATCH: the evaluator says {v}]"));
    }
    println!("{line}");
}

type Named = (Option<&'static str>, Packet);

fn packets(args: &TestArgs) -> Result<Vec<Named>> {
    let mut out: Vec<Named> = Vec::new();
    for (i, h) in args.hex.iter().enumerate() {
        let p = hex::parse_hex(h).with_context(|| format!("--hex number {}", i + 1))?;
        out.push((None, p));
    }
    if let Some(path) = &args.pcap {
        let packets = capture::read_capture(path)
            .with_context(|| format!("cannot read packets from {}", path.display()))?;
        out.extend(packets.into_iter().map(|p| (None, p)));
    }
    if args.samples {
        out.extend(
            samples::samples()
                .into_iter()
                .map(|s| (Some(s.name), s.packet)),
        );
    }
    if out.is_empty() {
        bail!("no packets: give --hex HEX, --pcap FILE or --samples");
    }
    Ok(out)
}
