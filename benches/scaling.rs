//! Time per entry for batch Bundles from 10 to 100,000 entries (limits raised for the run): it
//! must stay flat (no quadratic reference resolution). A bench binary, not a timed test:
//! `cargo bench --bench scaling`. Prints one line per size: entries, bytes, best of the runs,
//! and time per entry.

use referral_gateway::engine;
use referral_gateway::parse::{Format, Limits};
use referral_gateway::rules::RuleSet;
use std::path::Path;
use std::time::{Duration, Instant};

mod common;

/// The allocator of the binary, so that the figures are the server's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    // `cargo bench` passes `--bench`; a filter argument is not used here.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let rules = RuleSet::load(&root.join("rules")).expect("rules load");
    let limits = Limits {
        max_bundle_entries: 200_000,
        ..Limits::default()
    };
    let sr =
        std::fs::read(root.join("examples/xr/xr08-low-back-pain-loinc.json")).expect("example");
    println!(
        "{:>8} {:>12} {:>12} {:>14}",
        "entries", "bytes", "best", "per entry"
    );
    for n in [10, 100, 1_000, 10_000, 100_000] {
        let bundle = common::batch_with_patients(&sr, n);
        let runs = if n >= 100_000 {
            3
        } else if n >= 10_000 {
            5
        } else {
            50
        };
        let mut best = Duration::MAX;
        for _ in 0..runs {
            let t = Instant::now();
            let checked = engine::check(&rules, &bundle, Format::Json, &limits).expect("usable");
            std::hint::black_box(&checked);
            best = best.min(t.elapsed());
        }
        println!(
            "{n:>8} {:>12} {:>10.2}ms {:>12.2}µs",
            bundle.len(),
            best.as_secs_f64() * 1e3,
            best.as_secs_f64() * 1e6 / n as f64
        );
    }
}
