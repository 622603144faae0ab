//! The pipeline's cost against the floor of reading the bytes (`serde_json::from_slice` into a
//! `serde_json::Value`), for single ServiceRequests (accepted, rejected, redirected) and for
//! batch Bundles of 100, 1,000 and 10,000 entries (ServiceRequests with their Patients, joined
//! by `urn:uuid` references). For each input:
//!
//! - `json_value`: `serde_json::from_slice::<Value>` (the floor);
//! - `parse`: bytes to the gateway's checked input (stage 1);
//! - `decide`: parse + profile + context + terminology + rules (`engine::check`);
//! - `answer`: decide + the FHIR answer serialized to JSON bytes.
//!
//! `cargo bench --bench pipeline`, then `scripts/bench-ratios.py` for the ratios to the floor.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use referral_gateway::engine;
use referral_gateway::outcome::response::answer;
use referral_gateway::parse::{self, Format, Limits};
use referral_gateway::rules::RuleSet;
use serde_json::Value;
use std::hint::black_box;
use std::path::Path;

mod common;

/// The allocator of the binary, so that the figures are the server's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use common::batch_with_patients;

fn example(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn stages(c: &mut Criterion, group: &str, bytes: &[u8], rules: &RuleSet, limits: &Limits) {
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    if bytes.len() > 100_000 {
        g.sample_size(10);
    }
    let id = |stage: &str| BenchmarkId::new(stage, bytes.len());
    g.bench_function(id("json_value"), |b| {
        b.iter(|| serde_json::from_slice::<Value>(black_box(bytes)))
    });
    g.bench_function(id("parse"), |b| {
        b.iter(|| parse::parse(black_box(bytes), Format::Json, limits))
    });
    g.bench_function(id("decide"), |b| {
        b.iter(|| engine::check(rules, black_box(bytes), Format::Json, limits))
    });
    g.bench_function(id("answer"), |b| {
        b.iter(|| {
            let checked =
                engine::check(rules, black_box(bytes), Format::Json, limits).expect("usable input");
            serde_json::to_vec(&answer(&checked, &rules.site).body).expect("serialises")
        })
    });
    g.finish();
}

fn benches(c: &mut Criterion) {
    let rules =
        RuleSet::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("rules")).expect("rules load");
    let limits = Limits {
        max_bundle_entries: 10_000,
        ..Limits::default()
    };
    let accepted = example("general/gen01-cxr-with-clinical-question.json");
    let rejected = example("xr/xr08-low-back-pain-loinc.json");
    let redirected = example("us/us13-calf-swelling-query-dvt.json");
    stages(c, "sr_accepted", &accepted, &rules, &limits);
    stages(c, "sr_rejected", &rejected, &rules, &limits);
    stages(c, "sr_redirected", &redirected, &rules, &limits);
    for n in [100, 1_000, 10_000] {
        let bundle = batch_with_patients(&rejected, n);
        stages(c, &format!("bundle_{n}"), &bundle, &rules, &limits);
    }
    let xml = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join(
        "tests/data/fhir-examples/uk-core/xml/UKCore-ServiceRequest-CTChestScan-Example.xml",
    ));
    if let Ok(xml) = &xml {
        let mut g = c.benchmark_group("sr_xml");
        g.bench_function("decide", |b| {
            b.iter(|| engine::check(&rules, black_box(xml), Format::Xml, &limits))
        });
        g.finish();
    }
}

criterion_group!(pipeline, benches);
criterion_main!(pipeline);
