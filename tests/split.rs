//! A large plain file scanned in parts by several workers (`scan/split.rs`) prints exactly what
//! one worker reading it whole prints: alerts, error lines with their line numbers, expired
//! suppression notes, grouping, the summary. Parts are made tiny here so that small inputs are
//! cut in many places, including places where the cut must be refused (a '{' beginning a line
//! inside a document) and places an error runs over.

mod common;

use common::{Collected, Rng};
use lambda_code_watch::Detector;
use lambda_code_watch::grouping::Window;
use lambda_code_watch::input::{Limits, PartEnd, decode_part};
use lambda_code_watch::policy::Policy;
use lambda_code_watch::scan::{self, Input, Options, Summary};
use serde_json::{Value, json};
use std::io::Read;
use std::ops::ControlFlow;
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

/// Records to build inputs from: every sample event (the rule card's alerting ones among them)
/// and, when it is there, the corpus.
fn sample_values() -> Vec<Value> {
    let mut values: Vec<Value> = common::event_files("")
        .iter()
        .map(|path| serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap())
        .collect();
    if let Some(corpus) = common::corpus_dir() {
        for file in common::corpus_files(&corpus, "real") {
            let text = std::fs::read_to_string(&file).unwrap();
            values.extend(
                text.lines()
                    .filter(|line| !line.trim().is_empty())
                    .map(|line| serde_json::from_str::<Value>(line).unwrap()),
            );
        }
    }
    values
}

fn one_line(value: &Value) -> String {
    serde_json::to_string(value).unwrap()
}

/// Inputs in every layout where cuts fall differently: (what, bytes).
fn layouts(values: &[Value]) -> Vec<(&'static str, Vec<u8>)> {
    let lines: Vec<String> = values.iter().map(one_line).collect();
    let mut layouts = Vec::new();

    let mut ndjson = String::new();
    for (i, line) in lines.iter().enumerate() {
        ndjson.push_str(line);
        // Blank lines, CRLF and trailing blanks move line numbers and offsets about.
        ndjson.push_str(["\n", "\r\n", "\n\n", "  \n"][i % 4]);
    }
    layouts.push(("NDJSON", ndjson.clone().into_bytes()));
    layouts.push((
        "NDJSON after a byte order mark",
        [b"\xef\xbb\xbf".as_slice(), ndjson.as_bytes()].concat(),
    ));

    // Lines cut mid-write, noise, stray brackets, wrong shapes: errors at every kind of place,
    // including ones whose recovery runs over the start of the next line (and of a part).
    let mut rng = Rng(0x5eed_2026_1202_0001);
    let mut damaged = String::new();
    for line in &lines {
        match rng.below(9) {
            0 => damaged.push_str(&line[..rng.below(line.len())]),
            1 => damaged.push_str(r#"{"eventSource": "lambda.amazonaws.com", "eventName": "#),
            2 => damaged.push('{'),
            3 => damaged.push_str("[1, 2"),
            4 => damaged.push_str("42"),
            5 => damaged.push_str(&format!("[{line}")),
            _ => damaged.push_str(line),
        }
        damaged.push('\n');
    }
    layouts.push(("damaged NDJSON", damaged.into_bytes()));

    // Documents spread over lines, each beginning with a '{' at column 0.
    let mut pretty = Vec::new();
    for value in values {
        serde_json::to_writer_pretty(&mut pretty, value).unwrap();
        pretty.push(b'\n');
    }
    layouts.push(("pretty-printed documents", pretty));

    // A '{' beginning a line inside a document: no part may begin there.
    layouts.push((
        "an array with a record on each line",
        format!("[\n{}\n]\n", lines.join(",\n")).into_bytes(),
    ));
    let half = lines.len() / 2;
    layouts.push((
        "Records files with a record on each line",
        format!(
            "{{\"Records\": [\n{}\n]}}\n{{\"Records\": [\n{}\n]}}\n",
            lines[..half].join(",\n"),
            lines[half..].join(",\n")
        )
        .into_bytes(),
    ));
    let entries: Vec<String> = lines
        .iter()
        .map(|line| one_line(&json!({ "EventId": "x", "CloudTrailEvent": line })))
        .collect();
    layouts.push((
        "lookup-events entries on their own lines",
        format!("{{\"Events\": [\n{}\n]}}\n", entries.join(",\n")).into_bytes(),
    ));
    layouts
}

struct Scanned {
    out: Vec<u8>,
    err: Vec<u8>,
    summary: Summary,
}

/// Scans `path` with `options`, failing the test if the scan does not end within a minute (a
/// part waiting for a part that never ends would hang it).
fn scan_file(path: &Path, detector: &Detector, options: &Options) -> Scanned {
    let (tx, rx) = mpsc::channel();
    let (path, detector, options) = (path.to_path_buf(), detector.clone(), options.clone());
    std::thread::spawn(move || {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let summary = scan::scan(
            &[Input::File(path)],
            &detector,
            &options,
            &mut out,
            &mut err,
        )
        .unwrap();
        let _ = tx.send(Scanned { out, err, summary });
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("the scan ended (a hang means a part waited for a part that never ended)")
}

/// Scans `bytes` whole with one worker, then cut into parts of several sizes with several
/// workers, and asserts every output is the same. Returns the whole scan's summary.
fn assert_parts_agree(bytes: &[u8], label: &str, detector: &Detector, group: bool) -> Summary {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("input.ndjson");
    std::fs::write(&path, bytes).unwrap();
    let base = Options {
        group: group.then(|| Window::minutes(60)),
        ..Options::default()
    };
    let whole = scan_file(
        &path,
        detector,
        &Options {
            jobs: 1,
            ..base.clone()
        },
    );
    for (jobs, part_bytes) in [(2, 1), (3, 40), (2, 700), (4, 5000), (2, 60_000)] {
        let parts = scan::part_starts(&path, part_bytes).len();
        assert!(
            parts > 1 || part_bytes as usize * 2 > bytes.len(),
            "{label}: not cut into parts of {part_bytes} bytes"
        );
        let split = scan_file(
            &path,
            detector,
            &Options {
                jobs,
                part_bytes,
                ..base.clone()
            },
        );
        let what = format!("{label}, {parts} parts of ~{part_bytes} bytes, {jobs} workers");
        assert_eq!(
            String::from_utf8_lossy(&split.out),
            String::from_utf8_lossy(&whole.out),
            "{what}: stdout"
        );
        assert_eq!(
            String::from_utf8_lossy(&split.err),
            String::from_utf8_lossy(&whole.err),
            "{what}: stderr"
        );
        assert_eq!(split.summary, whole.summary, "{what}: summary");
    }
    whole.summary
}

#[test]
fn every_layout_scans_the_same_in_parts_as_whole() {
    let values = sample_values();
    let detector = Detector::default();
    for (label, bytes) in layouts(&values) {
        let summary = assert_parts_agree(&bytes, label, &detector, false);
        assert!(summary.alerts > 0, "{label}: the inputs hold alerts");
        assert_eq!(summary.inputs, 1, "{label}: one file counts once");
        if label.starts_with("damaged") {
            assert!(summary.errors > 10, "{label}: {summary:?}");
        } else {
            assert_eq!(summary.errors, 0, "{label}: {summary:?}");
        }
    }
}

#[test]
fn line_numbered_notes_and_grouping_come_out_the_same_in_parts() {
    let values = sample_values();
    // Every alert is seen by an expired entry (a note on stderr with the alert's line), and some
    // are suppressed by a live one.
    let policy = Policy::parse(
        "split.toml",
        r#"
[[suppress]]
reason = "expired long ago"
functions = ["*"]
expires = "2020-01-01"

[[suppress]]
reason = "a live entry"
functions = ["[a-m]*"]
"#,
    )
    .unwrap();
    let detector = Detector::new(policy);
    for (label, bytes) in layouts(&values) {
        for group in [false, true] {
            let summary = assert_parts_agree(&bytes, label, &detector, group);
            assert!(summary.alerts > 0, "{label}");
            assert!(summary.suppressed_total() > 0, "{label}");
            assert!(!summary.expired_matches.is_empty(), "{label}");
            assert_eq!(summary.grouping.is_some(), group, "{label}");
        }
    }
}

#[test]
fn mutated_inputs_scan_the_same_in_parts_as_whole() {
    let lines: Vec<String> = sample_values().iter().map(one_line).collect();
    let mut rng = Rng(0x0dd_ba11_2026_1202);
    let noise = [
        "{",
        "}",
        "[",
        "]",
        ",",
        "\"",
        "\\",
        ":",
        "\n",
        "\n{",
        "\n[",
        "\n{\"a\":",
        "\u{feff}",
    ];
    for round in 0..40 {
        let mut text = String::new();
        for _ in 0..30 {
            let line = &lines[rng.below(lines.len())];
            if rng.below(4) == 0 {
                let mut cut = rng.below(line.len());
                while !line.is_char_boundary(cut) {
                    cut -= 1;
                }
                text.push_str(&line[..cut]);
                text.push_str(noise[rng.below(noise.len())]);
                text.push_str(&line[cut..]);
            } else {
                text.push_str(line);
            }
            text.push('\n');
        }
        assert_parts_agree(
            text.as_bytes(),
            &format!("round {round}"),
            &Detector::default(),
            false,
        );
    }
}

#[test]
fn gzip_and_small_files_are_not_cut() {
    let dir = tempfile::tempdir().unwrap();
    let lines: String = sample_values()
        .iter()
        .map(|value| one_line(value) + "\n")
        .collect();
    let plain = dir.path().join("plain.ndjson");
    std::fs::write(&plain, &lines).unwrap();
    assert!(scan::part_starts(&plain, 100).len() > 10);
    // Under two parts' size: whole.
    assert_eq!(scan::part_starts(&plain, lines.len() as u64), vec![0]);
    // Never: part size 0.
    assert_eq!(scan::part_starts(&plain, 0), vec![0]);
    let gz = dir.path().join("plain.ndjson.gz");
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut encoder, lines.repeat(20).as_bytes()).unwrap();
    std::fs::write(&gz, encoder.finish().unwrap()).unwrap();
    assert_eq!(scan::part_starts(&gz, 100), vec![0]);
    // Parts begin at a '{' that begins a line.
    let bytes = lines.as_bytes();
    for start in scan::part_starts(&plain, 100).into_iter().skip(1) {
        let start = start as usize;
        assert_eq!(&bytes[start - 1..=start], b"\n{", "part at {start}");
    }
}

/// What the decoder asked and said of a part, for the tests of [`PartEnd`] below.
struct TestPart {
    start: u64,
    ends: Vec<u64>,
    next: usize,
    first_line: Option<u64>,
    asked_first_line: bool,
    reached: Vec<(u64, u64, bool)>,
}

impl TestPart {
    fn new(start: u64, ends: &[u64], first_line: Option<u64>) -> TestPart {
        TestPart {
            start,
            ends: ends.to_vec(),
            next: 0,
            first_line,
            asked_first_line: false,
            reached: Vec::new(),
        }
    }
}

impl PartEnd for TestPart {
    fn start(&self) -> u64 {
        self.start
    }

    fn next_end(&self) -> u64 {
        self.ends.get(self.next).copied().unwrap_or(u64::MAX)
    }

    fn reached(&mut self, offset: u64, line: u64, fresh: bool) -> ControlFlow<()> {
        self.reached.push((offset, line, fresh));
        while offset > self.next_end() {
            self.next += 1;
        }
        if offset == self.next_end() && fresh {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    }

    fn first_line(&mut self) -> Option<u64> {
        self.asked_first_line = true;
        self.first_line
    }
}

/// Hands out `data` 5 bytes at a time, then fails.
struct FailingAfter<'a>(&'a [u8]);

impl Read for FailingAfter<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.0.is_empty() {
            return Err(std::io::Error::other("disk on fire"));
        }
        let n = out.len().min(self.0.len()).min(5);
        out[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

#[test]
fn a_part_stops_only_where_a_fresh_decoder_would_start() {
    // Offsets are the input's: this part begins 1000 bytes in.
    let text = b"{\"a\":1}\n[\n{\"b\":2}\n]\n{\"c\":3}\n{\"d\":4}\n";
    let at = |needle: &[u8]| 1000 + memchr::memmem::find(text, needle).unwrap() as u64;
    // The '{' of "b" begins a line inside an array (whose '[' is unsettled there, so it is not
    // even offered): passed at the ']'. The one of "c" begins a document: the part ends there.
    let mut part = TestPart::new(1000, &[at(b"{\"b\""), at(b"{\"c\"")], None);
    let mut collected = Collected::default();
    decode_part(&text[..], &mut collected, &Limits::default(), &mut part).unwrap();
    assert_eq!(collected.values(), vec![json!({"a": 1}), json!({"b": 2})]);
    assert!(collected.errors.is_empty(), "{:?}", collected.errors);
    assert_eq!(
        part.reached,
        vec![(at(b"]"), 4, false), (at(b"{\"c\""), 5, true),]
    );
    assert!(!part.asked_first_line, "no error, no need to know the line");
}

#[test]
fn a_part_numbers_lines_as_the_input_once_an_error_names_one() {
    // Line 2 is cut after ':' and takes line 3 as its value; the error names line 4 as where the
    // damage showed, and decoding resumes at line 3. The part begins on line 41 of the input.
    let text = b"{\"a\":1}\n{\"b\":\n{\"c\":3}\nx\n{\"d\":4}\n";
    let mut part = TestPart::new(500, &[], Some(41));
    let mut collected = Collected::default();
    decode_part(&text[..], &mut collected, &Limits::default(), &mut part).unwrap();
    assert!(part.asked_first_line);
    let lines: Vec<u64> = collected.records.iter().map(|(_, line)| *line).collect();
    // Before the error, the part's own numbering; after it, the input's.
    assert_eq!(lines, vec![1, 43, 45]);
    assert_eq!(collected.errors.len(), 2, "{:?}", collected.errors);
    let (line, reason) = &collected.errors[0];
    assert_eq!(*line, 42);
    assert!(reason.contains("at line 44 column 1"), "{reason}");
    assert_eq!(collected.errors[1].0, 44);

    // A part that turns out not to count stops at its first error, reporting nothing.
    let mut part = TestPart::new(500, &[], None);
    let mut collected = Collected::default();
    decode_part(&text[..], &mut collected, &Limits::default(), &mut part).unwrap();
    assert!(part.asked_first_line);
    assert!(collected.errors.is_empty(), "{:?}", collected.errors);
    assert_eq!(collected.values(), vec![json!({"a": 1})]);
}

#[test]
fn a_read_error_in_a_part_says_where_in_the_input() {
    let text = b"{\"a\":1}\n{\"b\":2}\n{\"c\"";
    let mut part = TestPart::new(7000, &[], Some(100));
    let mut collected = Collected::default();
    let error = decode_part(
        FailingAfter(text),
        &mut collected,
        &Limits::default(),
        &mut part,
    )
    .unwrap_err()
    .to_string();
    assert!(error.contains("disk on fire"), "{error}");
    let expected = format!("after {} bytes of input (line 102)", 7000 + text.len());
    assert!(error.contains(&expected), "{error}");
    assert_eq!(collected.values(), vec![json!({"a": 1}), json!({"b": 2})]);

    // Not counting, it has nothing to say.
    let mut part = TestPart::new(7000, &[], None);
    let result = decode_part(
        FailingAfter(text),
        &mut Collected::default(),
        &Limits::default(),
        &mut part,
    );
    assert!(result.is_ok(), "{result:?}");
}

#[test]
fn the_cli_cuts_a_large_file_by_default_and_prints_the_same() {
    // Just over two default parts, with an alert and a damaged line in every part.
    let lines: Vec<String> = sample_values().iter().map(one_line).collect();
    let mut text = String::new();
    let mut round = 0;
    while text.len() < 2 * scan::DEFAULT_PART_BYTES as usize + (1 << 20) {
        for line in &lines {
            text.push_str(line);
            text.push('\n');
        }
        text.push_str(&format!("{{\"cut in round {round}\": \n"));
        round += 1;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("large.ndjson");
    std::fs::write(&path, &text).unwrap();
    assert!(scan::part_starts(&path, scan::DEFAULT_PART_BYTES).len() >= 2);
    let path = path.to_str().unwrap();
    let one = common::cli(&["scan", "-j", "1", path], b"");
    let two = common::cli(&["scan", "-j", "2", path], b"");
    assert_eq!(one.status.code(), Some(1), "damaged lines: exit 1");
    assert_eq!(two.status.code(), one.status.code());
    assert_eq!(
        String::from_utf8_lossy(&two.stdout),
        String::from_utf8_lossy(&one.stdout)
    );
    assert_eq!(common::stderr(&two), common::stderr(&one));
    let (records, alerts, errors) = common::summary_counts(&one);
    assert!(records > 40_000 && alerts > 100, "{records} {alerts}");
    assert_eq!(errors, round, "one error per damaged line");
}
