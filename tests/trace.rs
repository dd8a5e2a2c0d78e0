//! Drop tracing: the trace hook of managed filters, the tracer and its
//! ring buffer, and `portwall trace` on real loopback traffic with its
//! pcap checked by the real `tcpdump -r`.

mod common;

use common::bpffs::PrivateBpffs;
use common::kernel;
use common::packets;
use portwall::filters::{self, FilterName, LoadRequest, PinDir};
use portwall::lang::ir::Direction;
use portwall::lang::{check, parse, print};
use portwall::packet::Packet;
use portwall::trace::record::Event;
use portwall::trace::{Mode, Options, TraceError, Tracer};
use std::path::Path;

#[test]
fn traffic_helper() {
    common::traffic::helper_main();
}

/// Loads (or replaces) `expr` as filter `name` in the pin directory.
fn load(pins: &PinDir, name: &str, expr: &str, replace: bool) {
    let ast = parse::parse(expr).unwrap();
    let filter = check::check(&ast).unwrap();
    filters::load(
        pins,
        &LoadRequest {
            name: &name.parse().unwrap(),
            expression: expr,
            canonical: print::print(&ast),
            filter: &filter,
            direction: None,
            replace,
        },
    )
    .unwrap_or_else(|e| panic!("load {name} `{expr}`: {e}"));
}

/// The pinned dispatcher's verdict on a packet, through the kernel's test
/// run (the same dispatcher, filter, counters and trace hook as traffic).
fn verdict(bpffs: &Path, name: &str, p: &Packet) -> u32 {
    let pin = bpffs.join("portwall").join(name);
    portwall::kernel::test_run_pinned(&pin, &p.to_test_frame(), 1)
        .expect("test run")
        .retval
}

/// Every record waiting in the tracer's ring buffer.
fn events(tracer: &mut Tracer) -> Vec<Event> {
    let mut out = Vec::new();
    tracer.ring().expect("tracing").drain(usize::MAX, |r| {
        out.push(Event::decode(r).expect("a valid record"))
    });
    out
}

fn udp(port: u16) -> Packet {
    packets::ipv4_udp(packets::SRC4, packets::DST4, 1000, port)
}

#[test]
fn the_tracer_records_verdicts_without_changing_them() {
    if !kernel::available("the_tracer_records_verdicts_without_changing_them") {
        return;
    }
    let fs = PrivateBpffs::mount("trace-unit");
    let pins = PinDir::open(Some(fs.path()), true).unwrap();
    load(&pins, "web", "udp && dst_port == 53", false);
    let name: FilterName = "web".parse().unwrap();

    // No tracer: verdicts as the filter says.
    assert_eq!(verdict(fs.path(), "web", &udp(53)), 1);
    assert_eq!(verdict(fs.path(), "web", &udp(54)), 0);

    let mut tracer = Tracer::start(&pins, &name, Options::default()).unwrap();
    assert_eq!(verdict(fs.path(), "web", &udp(53)), 1);
    assert_eq!(verdict(fs.path(), "web", &udp(54)), 0);
    let seen = events(&mut tracer);
    assert_eq!(seen.len(), 1, "drops only: {seen:?}");
    let e = &seen[0];
    assert!(!e.forwarded);
    assert_eq!(e.packet, udp(54));
    assert_eq!(e.len as usize, udp(54).data.len());
    assert!(e.complete());
    // A test run has no ingress interface: the egress side.
    assert_eq!(e.direction, Direction::Egress);
    assert_eq!(tracer.lost().unwrap(), 0);

    // A second trace of the same filter is refused while this one runs.
    let err = Tracer::start(&pins, &name, Options::default())
        .err()
        .unwrap();
    assert!(matches!(err, TraceError::Busy { .. }), "{err}");

    // Stopped: nothing more is recorded, and verdicts are unchanged.
    tracer.stop().unwrap();
    assert_eq!(verdict(fs.path(), "web", &udp(54)), 0);
    assert!(events(&mut tracer).is_empty());
    drop(tracer);

    // Everything: forwards too, in order.
    let all = Options {
        mode: Mode::All,
        ..Options::default()
    };
    let mut tracer = Tracer::start(&pins, &name, all).unwrap();
    for port in [53, 54, 53] {
        verdict(fs.path(), "web", &udp(port));
    }
    let seen: Vec<(bool, Packet)> = events(&mut tracer)
        .into_iter()
        .map(|e| (e.forwarded, e.packet))
        .collect();
    assert_eq!(
        seen,
        vec![(true, udp(53)), (false, udp(54)), (true, udp(53))]
    );
}
