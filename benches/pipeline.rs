//! Parse and decision time: one ServiceRequest, and a 1,000-entry batch Bundle.
//!
//! `cargo bench --bench pipeline`

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use referral_gateway::engine;
use referral_gateway::parse::{self, Format, Limits};
use referral_gateway::rules::RuleSet;
use serde_json::{json, Value};
use std::hint::black_box;
use std::path::Path;

fn example(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn batch(sr: &[u8], n: usize) -> Vec<u8> {
    let sr: Value = serde_json::from_slice(sr).expect("example JSON");
    let entries: Vec<Value> = (0..n)
        .map(|i| {
            json!({
                "fullUrl": format!("urn:uuid:00000000-0000-4000-8000-{i:012}"),
                "resource": sr,
                "request": {"method": "POST", "url": "ServiceRequest"}
            })
        })
        .collect();
    serde_json::to_vec(&json!({"resourceType": "Bundle", "type": "batch", "entry": entries}))
        .expect("serialises")
}

fn benches(c: &mut Criterion) {
    let rules =
        RuleSet::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("rules")).expect("rules load");
    let limits = Limits {
        max_bundle_entries: 1000,
        ..Limits::default()
    };
    let sr = example("xr/xr08-low-back-pain-loinc.json");
    let xml =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join(
            "../shared/fhir-examples/uk-core/xml/UKCore-ServiceRequest-CTChestScan-Example.xml",
        ));
    let bundle = batch(&sr, 1000);

    let mut g = c.benchmark_group("service_request");
    g.throughput(Throughput::Bytes(sr.len() as u64));
    g.bench_function("parse", |b| {
        b.iter(|| parse::parse(black_box(&sr), Format::Json, &limits))
    });
    g.bench_function("check", |b| {
        b.iter(|| engine::check(&rules, black_box(&sr), Format::Json, &limits))
    });
    if let Ok(xml) = &xml {
        g.bench_function("check_xml", |b| {
            b.iter(|| engine::check(&rules, black_box(xml), Format::Xml, &limits))
        });
    }
    g.finish();

    let mut g = c.benchmark_group("bundle_1000");
    g.sample_size(10);
    g.throughput(Throughput::Elements(1000));
    g.bench_function("parse", |b| {
        b.iter(|| parse::parse(black_box(&bundle), Format::Json, &limits))
    });
    g.bench_function("check", |b| {
        b.iter(|| engine::check(&rules, black_box(&bundle), Format::Json, &limits))
    });
    g.finish();
}

criterion_group!(pipeline, benches);
criterion_main!(pipeline);
