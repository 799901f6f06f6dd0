//! Per-event cost of the Lambda handler's work, publishing excluded: decode the event (EventBridge
//! envelope or bare record), apply the rule, and for an alert build the alert and the SNS message
//! (Subject, structured message, attributes, size checks) exactly as the handler does before
//! publishing. Also the parts on their own: the rule on a parsed record, and the literal prefilter
//! `scan` runs on every record.
//!
//! Events are the project's own samples under `events/`, read at start so adding one adds a benchmark.
//! Network and SDK costs are deliberately out: they are measured as part of the cold start by
//! `scripts/bench`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use lambda_code_watch::sink::sns_message::SnsMessage;
use lambda_code_watch::{Detector, Record, evaluate, rule};
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn events(dir: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("events")
        .join(dir);
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list sample events in {}: {e}", dir.display()))
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let name = path
                .file_stem()
                .map_or_else(String::new, |stem| stem.to_string_lossy().into_owned());
            let bytes = std::fs::read(&path)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
            (name, bytes)
        })
        .collect()
}

/// What the handler does with one alerting event before calling SNS.
fn handle_alert(event: &[u8]) -> SnsMessage {
    let outcome = Detector::default()
        .assess_json(event)
        .expect("sample alert events decode");
    let alert = outcome.alert().expect("sample alert events alert");
    SnsMessage::for_alert(alert).expect("sample alerts fit in one SNS message")
}

fn handler(c: &mut Criterion) {
    let mut group = c.benchmark_group("handler");
    for (dir, kind) in [
        ("eventbridge/alert", "alert"),
        ("alert", "alert-bare"),
        ("eventbridge/quiet", "quiet"),
    ] {
        for (name, event) in events(dir) {
            group.throughput(Throughput::Elements(1));
            if kind.starts_with("alert") {
                // Fail early and clearly if a sample stops alerting, instead of timing an error path.
                handle_alert(&event);
                group.bench_function(format!("{kind}/{name}"), |b| {
                    b.iter(|| handle_alert(black_box(&event)))
                });
            } else {
                let detector = Detector::default();
                let outcome = detector
                    .assess_json(&event)
                    .expect("sample quiet events decode");
                assert!(outcome.alert().is_none(), "{name} must stay quiet");
                group.bench_function(format!("{kind}/{name}"), |b| {
                    b.iter(|| detector.assess_json(black_box(&event)))
                });
            }
        }
    }
    group.finish();
}

fn rule_parts(c: &mut Criterion) {
    let mut group = c.benchmark_group("rule");
    let (_, alert_event) = events("eventbridge/alert")
        .into_iter()
        .next()
        .expect("at least one EventBridge alert sample");
    let record = Record::from_json(&alert_event).expect("sample alert events decode");
    group.bench_function("evaluate/alert", |b| {
        b.iter(|| evaluate(black_box(&record)))
    });

    // A typical quiet record as `scan` sees it: not a Lambda call at all, rejected by the prefilter.
    let (_, quiet) = events("eventbridge/quiet")
        .into_iter()
        .find(|(name, _)| name.contains("delete"))
        .or_else(|| events("eventbridge/quiet").into_iter().next())
        .expect("at least one EventBridge quiet sample");
    group.throughput(Throughput::Bytes(quiet.len() as u64));
    group.bench_function("may_match/quiet", |b| {
        b.iter(|| rule::may_match(black_box(&quiet)))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(50);
    targets = handler, rule_parts
}
criterion_main!(benches);
