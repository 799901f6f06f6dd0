//! Arbitrary bytes into both decoders: no panic, every record valid JSON, the same records and
//! as many errors as the reference decoder, and every record through the detector (prefilter and
//! full parse agree).
#![no_main]

use std::ops::ControlFlow;

use lambda_code_watch::Detector;
use lambda_code_watch::input::{RecordVisitor, decode, decode_reference};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

#[derive(Default)]
struct Collected {
    records: Vec<Vec<u8>>,
    errors: usize,
}

impl RecordVisitor for Collected {
    fn record(&mut self, json: &[u8], _line: u64) -> ControlFlow<()> {
        self.records.push(json.to_vec());
        ControlFlow::Continue(())
    }

    fn error(&mut self, _line: u64, _reason: &str) -> ControlFlow<()> {
        self.errors += 1;
        ControlFlow::Continue(())
    }
}

fn parsed(records: &[Vec<u8>]) -> Vec<Value> {
    records
        .iter()
        .map(|json| serde_json::from_slice(json).expect("a record is valid JSON"))
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let (mut ours, mut theirs) = (Collected::default(), Collected::default());
    let read = decode(data, &mut ours);
    let read_reference = decode_reference(data, &mut theirs);
    assert_eq!(read.is_ok(), read_reference.is_ok());
    if read.is_ok() {
        assert!(parsed(&ours.records) == parsed(&theirs.records), "records differ");
        assert_eq!(ours.errors, theirs.errors, "error counts differ");
    }
    let detector = Detector::default();
    for json in &ours.records {
        let full = detector.assess_json(json).map(|o| o.verdict_name());
        let fast = detector.assess_validated(json).map(|o| o.verdict_name());
        assert_eq!(full.ok(), fast.ok(), "prefilter and parse disagree");
    }
});
