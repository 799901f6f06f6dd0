//! Arbitrary bytes into both decoders: no panic, every record valid JSON, the same records and
//! as many errors as the reference decoder, and every record through the detector (prefilter and
//! full parse agree, with and without the decoder's `\u` escape hint, and the hint is exact).
#![no_main]

use std::ops::ControlFlow;

use lambda_code_watch::Detector;
use lambda_code_watch::input::{RecordVisitor, decode, decode_reference};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

#[derive(Default)]
struct Collected {
    records: Vec<Vec<u8>>,
    /// The decoder's `\u` escape hint for each record (`true` when it gives none).
    hints: Vec<bool>,
    errors: usize,
}

impl RecordVisitor for Collected {
    fn record(&mut self, json: &[u8], _line: u64) -> ControlFlow<()> {
        self.records.push(json.to_vec());
        self.hints.push(true);
        ControlFlow::Continue(())
    }

    fn record_checked(&mut self, json: &[u8], _line: u64, unicode_escape: bool) -> ControlFlow<()> {
        self.records.push(json.to_vec());
        self.hints.push(unicode_escape);
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
    for (json, &hint) in ours.records.iter().zip(&ours.hints) {
        let full = detector.assess_json(json).map(|o| o.verdict_name()).ok();
        let fast = detector.assess_validated(json).map(|o| o.verdict_name());
        assert_eq!(full, fast.ok(), "prefilter and parse disagree");
        let hinted = detector.assess_decoded(json, hint).map(|o| o.verdict_name());
        assert_eq!(full, hinted.ok(), "hinted prefilter and parse disagree");
        assert!(hint || !holds_unicode_escape(json), "a \\u escape the hint denies");
    }
});

/// Whether valid JSON holds a `\u` escape (every backslash in it starts an escape).
fn holds_unicode_escape(json: &[u8]) -> bool {
    let mut i = 0;
    while i < json.len() {
        if json[i] == b'\\' {
            if json.get(i + 1) == Some(&b'u') {
                return true;
            }
            i += 2;
        } else {
            i += 1;
        }
    }
    false
}
