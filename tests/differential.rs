//! The compiled program and the reference evaluator agree on every packet.
//!
//! Random filters over the whole language meet random packets (truncated,
//! with IPv4 options, fragments, long IPv6 extension chains); each case runs
//! through the evaluator and through the kernel's test run of the compiled
//! program. Fixed seed in CI; `PORTWALL_DIFF_SEED` and
//! `PORTWALL_DIFF_FILTERS` make a longer or different run.

mod common;

use common::generate::{self as gen_, Rng};
use common::kernel;
use portwall::eval;
use portwall::lang::{check, parse};

#[test]
fn generated_filters_agree_with_the_evaluator() {
    if !kernel::available("generated_filters_agree_with_the_evaluator") {
        return;
    }
    let seed = gen_::env_u64("PORTWALL_DIFF_SEED", 0x5eed_2026);
    let filters = gen_::env_u64("PORTWALL_DIFF_FILTERS", 400);
    let packets_per_filter = 48;
    let mut rng = Rng::new(seed);
    let packets: Vec<_> = (0..400).map(|_| gen_::packet(&mut rng)).collect();

    let (mut cases, mut compiled, mut rejected) = (0u64, 0u64, 0u64);
    for i in 0..filters {
        let depth = 2 + (i % 6) as u32;
        let text = gen_::filter(&mut rng, depth);
        let ast = parse::parse(&text).unwrap_or_else(|e| panic!("generated `{text}`: {e}"));
        let filter = match check::check(&ast) {
            Ok(f) => f,
            // A divisor that folds to a constant 0 is a checker error.
            Err(e) if e.message.contains("by zero") => {
                rejected += 1;
                continue;
            }
            Err(e) => panic!("generated `{text}`: {e}"),
        };
        let loaded = kernel::load(&filter, &text);
        compiled += 1;
        for _ in 0..packets_per_filter {
            let packet = rng.pick(&packets);
            let expected = eval::evaluate(&filter, packet).verdict();
            let got = kernel::verdict(&loaded, packet);
            assert_eq!(
                got, expected,
                "seed {seed:#x}: filter `{text}` on packet {:02x?} (ethertype {:#06x}): \
                 kernel {got:?}, evaluator {expected:?}",
                packet.data, packet.ethertype
            );
            cases += 1;
        }
    }
    println!(
        "differential: {compiled} filters compiled and loaded, {rejected} rejected by the checker, \
         {cases} (filter, packet) cases agree"
    );
    assert!(compiled > filters / 2);
}
