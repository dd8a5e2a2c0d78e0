//! `portwall trace`: stream the packets a loaded filter drops (or all it
//! judges) as they happen, optionally into a pcap file.

use super::Global;
use crate::filters::{FilterName, PinDir};
use crate::kernel::ringbuf::{RingReader, poll_readable};
use crate::trace::cgroups::CgroupNames;
use crate::trace::output::Shown;
use crate::trace::pcap::PcapOut;
use crate::trace::record::Event;
use crate::trace::{self, Clock, Health, Mode, Options, Tracer};
use anyhow::{Context, Result};
use clap::Args;
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Show the packets a loaded filter drops (or every packet it judges) as
/// they happen.
#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
    portwall trace web                          # what web drops, until Ctrl-C\n  \
    portwall trace web --all --count 20         # the next 20 packets, either verdict\n  \
    portwall trace web --pcap drops.pcap        # also save them; then:\n  \
    tcpdump -nn -r drops.pcap                   #   or open it in Wireshark\n  \
    portwall test 'udp || tcp' --pcap drops.pcap  # would a new filter pass them?\n\n\
    Each line: local time, the cgroup (its systemd unit when there is one),\n\
    direction, verdict, then addresses, protocol and ports, e.g.\n  \
    14:03:07.123456 nginx.service egress drop IPv4 10.0.0.5:41234 -> 93.184.216.34:443 tcp [SYN] len 60\n\n\
    'tracing NAME (drops); Ctrl-C to stop' on stderr says the trace is in place;\n\
    when it ends, stderr says how many packets were traced and how many were\n\
    lost because the ring buffer was full (a larger --buffer helps). The pcap\n\
    file holds each packet from its IP header on (link type RAW), at most\n\
    --snaplen bytes of it, with its real length.\n\n\
    While no trace runs, the hook costs a filter about a nanosecond per packet\n\
    (an empty tail call); a trace ends when portwall trace does, however it\n\
    ends. One trace per filter at a time. Filters loaded by a\n\
    portwall without tracing must be reloaded (load --replace) first.")]
pub struct TraceArgs {
    /// The loaded filter to trace.
    #[arg(value_name = "NAME")]
    pub name: FilterName,

    /// Trace every packet the filter judges, not only the dropped ones.
    #[arg(long)]
    pub all: bool,

    /// Stop after this many packets.
    #[arg(short, long, value_name = "N")]
    pub count: Option<u64>,

    /// Also write the packets to this pcap file (replaced if it exists).
    #[arg(short = 'w', long, value_name = "FILE")]
    pub pcap: Option<PathBuf>,

    /// Print one JSON object per packet instead of a line.
    #[arg(long)]
    pub json: bool,

    /// Bytes of each packet to keep, from its IP header on.
    #[arg(short, long, value_name = "BYTES", default_value_t = trace::DEFAULT_SNAP,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(trace::program::MAX_SNAP)))]
    pub snaplen: u32,

    /// Size of the ring buffer the kernel fills, e.g. 256K, 4M (rounded up
    /// to a power of two pages).
    #[arg(long, value_name = "SIZE", default_value = "1M", value_parser = parse_size)]
    pub buffer: u32,
}

/// How long the loop waits for packets before checking that the filter is
/// still loaded and the tracer still in place.
const CHECK_EVERY: Duration = Duration::from_secs(1);
/// Records handled between checks for a stop request.
const BATCH: usize = 1024;
/// Least time between two "packets lost" notes.
const LOST_NOTE_EVERY: Duration = Duration::from_secs(1);

pub fn trace(global: &Global, args: &TraceArgs) -> Result<()> {
    let pins = PinDir::open(global.bpffs.as_deref(), false)?;
    let options = Options {
        mode: if args.all { Mode::All } else { Mode::Drops },
        snap: args.snaplen,
        ring_bytes: args.buffer,
    };
    // Before the tracer is in place, so that a Ctrl-C from here on ends
    // the trace through the path that empties the hook and says how it
    // went.
    let stop = StopSignals::install()?;
    let mut pcap = match &args.pcap {
        Some(path) => {
            let file = std::fs::File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?;
            let mut out = PcapOut::new(file, args.snaplen)
                .with_context(|| format!("cannot write {}", path.display()))?;
            // The header goes out now: an empty trace is still a valid file.
            out.flush()
                .with_context(|| format!("cannot write {}", path.display()))?;
            Some((path, out))
        }
        None => None,
    };
    let mut tracer = Tracer::start(&pins, &args.name, options)?;
    eprintln!(
        "tracing {} ({}); Ctrl-C to stop",
        args.name,
        options.mode.as_str()
    );

    let mut names = CgroupNames::new(
        crate::kernel::cgroup::cgroup2_mount().ok(),
        crate::systemd::systemctl::booted(),
    );
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let mut shown: u64 = 0;
    let limit = args.count.unwrap_or(u64::MAX);
    let mut last_check = Instant::now();
    let mut lost_noted = 0;
    let mut last_note: Option<Instant> = None;
    let mut failure: Option<anyhow::Error> = None;

    let mut show = |event: Event,
                    clock: &Clock,
                    out: &mut dyn Write,
                    pcap: &mut Option<(&PathBuf, PcapOut<std::fs::File>)>|
     -> Result<()> {
        let time = clock.unix(event.monotonic_ns);
        let cgroup = names.name(event.cgroup_id);
        let shown = Shown {
            event: &event,
            time,
            cgroup: &cgroup,
        };
        if args.json {
            writeln!(out, "{}", shown.json())?;
        } else {
            writeln!(out, "{}", shown.line())?;
        }
        if let Some((path, pcap)) = pcap {
            pcap.write(time, event.len, &event.packet.data)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        Ok(())
    };

    while shown < limit && !stop.requested() {
        let ring = tracer.ring();
        let ready = poll_readable(&[ring.fd(), stop.fd()], Some(CHECK_EVERY))
            .context("cannot wait for packets")?;
        if ready.get(1) == Some(&true) {
            break;
        }
        let clock = Clock::now();
        let batch_error = show_records(ring, BATCH, limit, &mut shown, |event| {
            show(event, &clock, &mut out, &mut pcap)
        });
        let flushed = flush(&mut out, &mut pcap);
        if let Some(e) = batch_error.or(flushed.err()) {
            failure = Some(e);
            break;
        }
        let lost = tracer.lost()?;
        if lost > lost_noted && last_note.is_none_or(|t| t.elapsed() >= LOST_NOTE_EVERY) {
            eprintln!(
                "portwall: {lost} packets lost so far: the ring buffer was full (a larger --buffer helps)"
            );
            lost_noted = lost;
            last_note = Some(Instant::now());
        }
        if last_check.elapsed() >= CHECK_EVERY {
            last_check = Instant::now();
            match tracer.check()? {
                Health::Tracing => {}
                Health::Refilled => eprintln!(
                    "portwall: warning: the trace of {} was interrupted by a reload and is back in place; packets judged meanwhile were not traced",
                    args.name
                ),
                Health::Unloaded => {
                    eprintln!("portwall: {} was unloaded", args.name);
                    break;
                }
            }
        }
    }

    // Out of the hook first, then whatever it had already recorded.
    tracer.stop()?;
    if failure.is_none() && shown < limit {
        let clock = Clock::now();
        let batch_error = show_records(tracer.ring(), usize::MAX, limit, &mut shown, |event| {
            show(event, &clock, &mut out, &mut pcap)
        });
        failure = batch_error.or(flush(&mut out, &mut pcap).err());
    }
    let lost = tracer.lost()?;
    drop(tracer);
    eprintln!("traced {shown} packets of {}, {lost} lost", args.name);
    match failure {
        // The reader went away (`| head`): that ends a trace normally.
        Some(e) if is_broken_pipe(&e) => Ok(()),
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Decodes and shows up to `max` waiting records while `shown` is under
/// `limit`; the first error ends the showing and is returned.
fn show_records(
    ring: &mut RingReader,
    max: usize,
    limit: u64,
    shown: &mut u64,
    mut show: impl FnMut(Event) -> Result<()>,
) -> Option<anyhow::Error> {
    let mut error = None;
    ring.drain(max, |bytes| {
        if *shown >= limit || error.is_some() {
            return;
        }
        match Event::decode(bytes)
            .map_err(anyhow::Error::from)
            .and_then(&mut show)
        {
            Ok(()) => *shown += 1,
            Err(e) => error = Some(e),
        }
    });
    error
}

fn flush(out: &mut dyn Write, pcap: &mut Option<(&PathBuf, PcapOut<std::fs::File>)>) -> Result<()> {
    out.flush().context("cannot write to standard output")?;
    if let Some((path, pcap)) = pcap {
        pcap.flush()
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// SIGINT, SIGTERM and SIGHUP ask the trace to stop: a flag, and a byte in
/// a socket the main loop polls. A second one ends the process at once
/// (the kernel still empties the hook, since that follows the process's
/// descriptors).
struct StopSignals {
    flag: Arc<AtomicBool>,
    read: UnixStream,
}

impl StopSignals {
    fn install() -> Result<StopSignals> {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        let (read, write) = UnixStream::pair().context("cannot make a socket pair")?;
        read.set_nonblocking(true)
            .context("cannot make a socket non-blocking")?;
        let flag = Arc::new(AtomicBool::new(false));
        for signal in [SIGINT, SIGTERM, SIGHUP] {
            let context = || format!("cannot handle signal {signal}");
            // Registered first, so it sees the flag as the previous signal
            // left it.
            signal_hook::flag::register_conditional_shutdown(signal, 128 + signal, flag.clone())
                .with_context(context)?;
            signal_hook::flag::register(signal, flag.clone()).with_context(context)?;
            signal_hook::low_level::pipe::register(
                signal,
                write.try_clone().with_context(context)?,
            )
            .with_context(context)?;
        }
        Ok(StopSignals { flag, read })
    }

    fn requested(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.read.as_fd()
    }
}

/// `1048576`, `256K`, `4M`, `1G` (powers of 1024; `KiB`, `MB`... too).
fn parse_size(s: &str) -> Result<u32, String> {
    let t = s.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(digits);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("`{s}` is not a size such as 1048576, 256K or 4M"))?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        _ => return Err(format!("`{s}`: the unit must be K, M or G")),
    };
    let bytes = number
        .checked_shl(shift)
        .filter(|b| *b >> shift == number)
        .ok_or_else(|| format!("`{s}` is too large"))?;
    if bytes == 0 || bytes > u64::from(trace::MAX_RING_BYTES) {
        return Err(format!(
            "`{s}`: the ring buffer must be between 1 byte and {} MiB",
            trace::MAX_RING_BYTES >> 20
        ));
    }
    Ok(bytes as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("256K"), Ok(256 << 10));
        assert_eq!(parse_size("4M"), Ok(4 << 20));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("2mb"), Ok(2 << 20));
        assert!(parse_size("0").is_err());
        assert!(parse_size("2G").is_err());
        assert!(parse_size("4X").is_err());
        assert!(parse_size("M").is_err());
        assert!(parse_size("99999999999999999999K").is_err());
    }
}
