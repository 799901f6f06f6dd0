//! Throughput of the input side of `scan`, in bytes of (uncompressed) JSON per second: the streaming
//! decoder on NDJSON, on a single-line `{"Records":[...]}` file and on its gzip, against the reference
//! decoder and against gzip decompression alone (the ceiling for compressed input). `scan/ndjson`
//! adds what `scan` does per record (prefilter, and the rule for the few records that may match).
//!
//! The data is built in memory from `../shared/corpus/real` (`LCW_CORPUS_DIR` overrides), repeated
//! to 32 MiB; it measures the code, not the disk. The full-size, file-based measurement is
//! `scripts/bench`.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use flate2::Compression;
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use lambda_code_watch::Detector;
use lambda_code_watch::input::{self, RecordVisitor};
use std::hint::black_box;
use std::io::{Read, Write};
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::time::Duration;

const TARGET_BYTES: usize = 32 << 20;

fn corpus_dir() -> PathBuf {
    std::env::var_os("LCW_CORPUS_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus"),
        PathBuf::from,
    )
}

/// The corpus' real records, one per element, as published (compact JSON).
fn corpus_records() -> Vec<Vec<u8>> {
    let dir = corpus_dir().join("real");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list the corpus at {}: {e}", dir.display()))
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "ndjson"))
        .collect();
    paths.sort();
    let mut records = Vec::new();
    for path in paths {
        let text =
            std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        records.extend(
            text.split(|&b| b == b'\n')
                .map(<[u8]>::trim_ascii)
                .filter(|line| !line.is_empty())
                .map(<[u8]>::to_vec),
        );
    }
    assert!(!records.is_empty(), "no records in {}", dir.display());
    records
}

struct Inputs {
    ndjson: Vec<u8>,
    records: Vec<u8>,
    records_gz: Vec<u8>,
}

fn inputs() -> Inputs {
    let corpus = corpus_records();
    let mut ndjson = Vec::with_capacity(TARGET_BYTES + (1 << 16));
    let mut records = Vec::with_capacity(TARGET_BYTES + (1 << 16));
    records.extend_from_slice(b"{\"Records\":[");
    for record in corpus.iter().cycle() {
        if ndjson.len() >= TARGET_BYTES {
            break;
        }
        ndjson.extend_from_slice(record);
        ndjson.push(b'\n');
        if records.len() > b"{\"Records\":[".len() {
            records.push(b',');
        }
        records.extend_from_slice(record);
    }
    records.extend_from_slice(b"]}");
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    gz.write_all(&records).expect("in-memory gzip");
    let records_gz = gz.finish().expect("in-memory gzip");
    Inputs {
        ndjson,
        records,
        records_gz,
    }
}

/// Counts what the decoder finds; an error in this clean data is a bug worth stopping for.
#[derive(Default)]
struct Count {
    records: u64,
    bytes: u64,
    errors: u64,
}

impl RecordVisitor for Count {
    fn record(&mut self, json: &[u8], _line: u64) -> ControlFlow<()> {
        self.records += 1;
        self.bytes += json.len() as u64;
        ControlFlow::Continue(())
    }
    fn error(&mut self, _line: u64, _reason: &str) -> ControlFlow<()> {
        self.errors += 1;
        ControlFlow::Continue(())
    }
}

/// What `scan` does with each record: the detector's prefilter (with the decoder's `\u` escape
/// hint, as `scan` uses it), then the rule when the record may match.
#[derive(Default)]
struct Verdicts {
    detector: Detector,
    records: u64,
    alerts: u64,
    errors: u64,
}

impl RecordVisitor for Verdicts {
    fn record(&mut self, json: &[u8], line: u64) -> ControlFlow<()> {
        self.record_checked(json, line, true)
    }

    fn record_checked(&mut self, json: &[u8], _line: u64, unicode_escape: bool) -> ControlFlow<()> {
        self.records += 1;
        match self.detector.assess_decoded(json, unicode_escape) {
            Ok(outcome) => self.alerts += u64::from(outcome.alert().is_some()),
            Err(_) => self.errors += 1,
        }
        ControlFlow::Continue(())
    }
    fn error(&mut self, _line: u64, _reason: &str) -> ControlFlow<()> {
        self.errors += 1;
        ControlFlow::Continue(())
    }
}

fn count(data: &[u8], reference: bool) -> Count {
    let mut count = Count::default();
    let result = if reference {
        input::decode_reference(data, &mut count)
    } else {
        input::decode(data, &mut count)
    };
    result.expect("in-memory input cannot fail to read");
    count
}

fn decode(c: &mut Criterion) {
    let inputs = inputs();
    let expected = count(&inputs.ndjson, true).records;
    for (name, data) in [
        ("ndjson", &inputs.ndjson),
        ("records", &inputs.records),
        ("records_gz", &inputs.records_gz),
    ] {
        for reference in [false, true] {
            let found = count(data, reference);
            assert_eq!(
                (found.records, found.errors),
                (expected, 0),
                "{name} (reference: {reference}) must yield every record and no error"
            );
        }
    }

    let mut group = c.benchmark_group("decode");
    group.throughput(Throughput::Bytes(inputs.ndjson.len() as u64));
    group.sample_size(20);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(4));
    for (name, data) in [
        ("ndjson", &inputs.ndjson),
        ("records", &inputs.records),
        ("records_gz", &inputs.records_gz),
    ] {
        group.bench_with_input(BenchmarkId::new("fast", name), data, |b, data| {
            b.iter(|| count(black_box(data), false))
        });
    }
    group.bench_with_input(
        BenchmarkId::new("reference", "ndjson"),
        &inputs.ndjson,
        |b, data| b.iter(|| count(black_box(data), true)),
    );
    // The ceiling for compressed input: inflating alone, through the same 256 KiB reads.
    group.bench_with_input(
        BenchmarkId::new("gunzip_only", "records_gz"),
        &inputs.records_gz,
        |b, data| {
            let mut buffer = vec![0; 256 * 1024];
            b.iter(|| {
                let mut gz = MultiGzDecoder::new(black_box(&data[..]));
                let mut total = 0;
                loop {
                    match gz.read(&mut buffer) {
                        Ok(0) => break total,
                        Ok(n) => total += n,
                        Err(e) => panic!("in-memory gzip: {e}"),
                    }
                }
            })
        },
    );
    group.bench_with_input(
        BenchmarkId::new("scan", "ndjson"),
        &inputs.ndjson,
        |b, data| {
            b.iter(|| {
                let mut verdicts = Verdicts::default();
                input::decode(black_box(&data[..]), &mut verdicts)
                    .expect("in-memory input cannot fail to read");
                (verdicts.records, verdicts.alerts, verdicts.errors)
            })
        },
    );
    group.finish();
}

criterion_group!(benches, decode);
criterion_main!(benches);
