//! Input decoding: every shape, plain and gzipped, through awkward readers; recovery after bad
//! input; the fast decoder against the reference decoder on the whole corpus and on mutated
//! input.

mod common;

use common::{Collected, Rng, corpus_dir, fast};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::GzEncoder;
use lambda_code_watch::input::{
    Limits, MAX_RECORD_BYTES, decode, decode_reference, decode_with_limits,
};
use serde_json::{Value, json};

/// A reader that hands out at most `step` bytes per call, to put buffer boundaries everywhere.
struct Trickle<'a> {
    data: &'a [u8],
    step: usize,
}

impl Read for Trickle<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = self.step.min(out.len()).min(self.data.len());
        out[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

fn fast_trickled(input: &[u8], step: usize) -> Collected {
    let mut collected = Collected::default();
    decode(Trickle { data: input, step }, &mut collected).expect("decode failed");
    collected
}

fn reference(input: &[u8]) -> Collected {
    let mut collected = Collected::default();
    decode_reference(input, &mut collected).expect("decode_reference failed");
    collected
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

/// `data` as two concatenated gzip members (what `cat a.gz b.gz` gives).
fn gzip_two_members(data: &[u8]) -> Vec<u8> {
    let (first, second) = data.split_at(data.len() / 2);
    let mut out = gzip(first);
    out.extend(gzip(second));
    out
}

/// Decodes `input` plain, gzipped and multi-member gzipped, each through whole, 1-byte and
/// 7-byte reads, and with the reference decoder; all must find `expected` and no error.
fn assert_decodes_to(input: &[u8], expected: &[Value], label: &str) {
    let mut variants = vec![
        ("plain", input.to_vec()),
        ("gzip", gzip(input)),
        ("multi-member gzip", gzip_two_members(input)),
    ];
    for (variant, bytes) in &mut variants {
        let runs = [
            ("whole", fast(bytes)),
            ("1-byte reads", fast_trickled(bytes, 1)),
            ("7-byte reads", fast_trickled(bytes, 7)),
            ("reference", reference(bytes)),
        ];
        for (reader, collected) in runs {
            assert!(
                collected.errors.is_empty(),
                "{label}, {variant}, {reader}: errors {:?}",
                collected.errors
            );
            let found = collected.values();
            assert_eq!(found.len(), expected.len(), "{label}, {variant}, {reader}");
            assert!(
                found == expected,
                "{label}, {variant}, {reader}: records differ"
            );
        }
    }
}

/// Both decoders agree on the records (parsed) and on the number of errors.
fn assert_agree(input: &[u8], label: &str) -> Collected {
    let ours = fast(input);
    let theirs = reference(input);
    let trickled = fast_trickled(input, 7);
    assert_eq!(
        ours.values(),
        theirs.values(),
        "{label}: records differ from the reference\ninput: {}",
        String::from_utf8_lossy(input)
    );
    assert_eq!(
        ours.errors.len(),
        theirs.errors.len(),
        "{label}: errors {:?} vs reference {:?}\ninput: {}",
        ours.errors,
        theirs.errors,
        String::from_utf8_lossy(input)
    );
    assert_eq!(ours.records, trickled.records, "{label}: 7-byte reads");
    assert_eq!(ours.errors, trickled.errors, "{label}: 7-byte reads");
    ours
}

/// The corpus NDJSON files, sorted, with their bytes.
fn corpus_files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|ext| ext == "ndjson") {
                let bytes = std::fs::read(&path).unwrap();
                files.push((path, bytes));
            }
        }
    }
    files.sort();
    assert!(
        !files.is_empty(),
        "no .ndjson files under {}",
        dir.display()
    );
    files
}

fn corpus_lines(dir: &Path) -> Vec<Vec<u8>> {
    corpus_files(dir)
        .iter()
        .flat_map(|(_, bytes)| {
            bytes
                .split(|&byte| byte == b'\n')
                .filter(|line| !line.trim_ascii().is_empty())
                .map(<[u8]>::to_vec)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Records for the differential and mutation tests: every sample event under `events/` (each
/// compacted onto one line), and the corpus when it is there (see `common::corpus_dir` for the
/// skip policy), so these tests always run.
fn sample_lines() -> Vec<Vec<u8>> {
    let mut lines: Vec<Vec<u8>> = common::event_files("")
        .iter()
        .map(|path| {
            let value: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
            serde_json::to_vec(&value).unwrap()
        })
        .collect();
    if let Some(dir) = corpus_dir() {
        lines.extend(corpus_lines(&dir));
    }
    lines
}

fn sample_values() -> Vec<Value> {
    sample_lines()
        .iter()
        .map(|line| serde_json::from_slice(line).unwrap())
        .collect()
}

fn ndjson(values: &[Value]) -> Vec<u8> {
    let mut out = Vec::new();
    for value in values {
        serde_json::to_writer(&mut out, value).unwrap();
        out.push(b'\n');
    }
    out
}

fn envelope(record: &Value, index: usize) -> Value {
    json!({
        "version": "0",
        "id": format!("6f3c1a4e-0000-4000-8000-{index:012}"),
        "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.lambda",
        "account": "123456789012",
        "time": "2024-01-01T00:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": record,
    })
}

fn lookup_events_page(records: &[Value], with_token: bool) -> Value {
    let events: Vec<Value> = records
        .iter()
        .enumerate()
        .map(|(index, record)| {
            json!({
                "EventId": format!("event-{index}"),
                "EventName": record.get("eventName").cloned().unwrap_or(Value::Null),
                "ReadOnly": "false",
                "EventTime": 1_700_000_000 + index,
                "Resources": [{"ResourceType": "AWS::Lambda::Function", "ResourceName": "f"}],
                "CloudTrailEvent": serde_json::to_string(record).unwrap(),
            })
        })
        .collect();
    if with_token {
        json!({"Events": events, "NextToken": "eyJ0b2tlbiI6IDF9"})
    } else {
        json!({"Events": events})
    }
}

#[test]
fn every_corpus_file_decodes_without_errors_like_the_reference() {
    let Some(dir) = corpus_dir() else { return };
    for (path, bytes) in corpus_files(&dir) {
        let label = path.display().to_string();
        let lines = bytes
            .split(|&byte| byte == b'\n')
            .filter(|line| !line.trim_ascii().is_empty())
            .count();
        let ours = fast(&bytes);
        assert!(ours.errors.is_empty(), "{label}: {:?}", ours.errors);
        assert_eq!(ours.records.len(), lines, "{label}");
        // NDJSON: the records are the lines themselves, byte for byte, at their line numbers.
        for (index, (json, line)) in ours.records.iter().enumerate() {
            assert_eq!(*line, index as u64 + 1, "{label}");
            let expected = bytes.split(|&byte| byte == b'\n').nth(index).unwrap();
            assert_eq!(json.as_slice(), expected.trim_ascii_end(), "{label}");
        }
        assert_decodes_to(&bytes, &reference(&bytes).values(), &label);
        assert_eq!(ours.values(), reference(&bytes).values(), "{label}");
    }
}

/// The corpus records in every shape: (what, input bytes, the records it holds).
fn packagings(records: &[Value]) -> Vec<(&'static str, Vec<u8>, Vec<Value>)> {
    let envelopes: Vec<Value> = records
        .iter()
        .enumerate()
        .map(|(index, record)| envelope(record, index))
        .collect();
    let mut shapes = Vec::new();

    let records_file = serde_json::to_vec(&json!({ "Records": records })).unwrap();
    shapes.push(("Records file on one line", records_file, records.to_vec()));

    let other_keys_around = serde_json::to_vec(&json!({
        "Digest": {"files": [1, 2, {"Records": "not these"}]},
        "Records": records,
        "Trailer": null,
    }))
    .unwrap();
    shapes.push((
        "Records among other keys",
        other_keys_around,
        records.to_vec(),
    ));

    let pretty_records_file = serde_json::to_vec_pretty(&json!({ "Records": records })).unwrap();
    shapes.push((
        "pretty-printed Records file",
        pretty_records_file,
        records.to_vec(),
    ));

    let mut log_files = Vec::new();
    for chunk in records.chunks(100) {
        serde_json::to_writer(&mut log_files, &json!({ "Records": chunk })).unwrap();
        log_files.push(b'\n');
    }
    shapes.push(("Records files, one per line", log_files, records.to_vec()));

    let array = serde_json::to_vec(&records).unwrap();
    shapes.push(("JSON array", array, records.to_vec()));
    let pretty_array = serde_json::to_vec_pretty(&records).unwrap();
    shapes.push(("pretty-printed JSON array", pretty_array, records.to_vec()));

    shapes.push((
        "EventBridge envelopes, NDJSON",
        ndjson(&envelopes),
        envelopes.clone(),
    ));
    let pretty_envelopes: Vec<u8> = envelopes
        .iter()
        .flat_map(|envelope| {
            let mut text = serde_json::to_vec_pretty(envelope).unwrap();
            text.extend_from_slice(b"\n");
            text
        })
        .collect();
    shapes.push((
        "pretty-printed envelopes",
        pretty_envelopes,
        envelopes.clone(),
    ));

    let mut lookup_events = Vec::new();
    for (page, chunk) in records.chunks(50).enumerate() {
        let page = lookup_events_page(chunk, page % 2 == 0);
        serde_json::to_writer_pretty(&mut lookup_events, &page).unwrap();
        lookup_events.push(b'\n');
    }
    shapes.push(("lookup-events pages", lookup_events, records.to_vec()));

    // All shapes in one array, in order.
    let (a, rest) = records.split_at(records.len() / 4);
    let (b, rest) = rest.split_at(rest.len() / 3);
    let (c, d) = rest.split_at(rest.len() / 2);
    let mut mixed: Vec<Value> = a.to_vec();
    mixed.push(json!({ "Records": b }));
    mixed.push(lookup_events_page(c, true));
    mixed.extend(envelopes[records.len() - d.len()..].iter().cloned());
    let mut expected: Vec<Value> = records[..records.len() - d.len()].to_vec();
    expected.extend(envelopes[records.len() - d.len()..].iter().cloned());
    let mixed = serde_json::to_vec(&mixed).unwrap();
    shapes.push(("one array of every shape", mixed, expected));
    shapes
}

#[test]
fn the_whole_corpus_in_every_shape() {
    let records = sample_values();
    for (label, input, expected) in packagings(&records) {
        for (variant, collected) in [
            ("plain", fast(&input)),
            ("gzip", fast(&gzip(&input))),
            ("reference", reference(&input)),
        ] {
            assert!(
                collected.errors.is_empty(),
                "{label}, {variant}: {:?}",
                collected.errors
            );
            assert!(
                collected.values() == expected,
                "{label}, {variant}: records differ"
            );
        }
    }
}

#[test]
fn every_shape_through_every_reader() {
    // Every 8th record: all sources, few enough for 1-byte reads in a debug build.
    let records: Vec<Value> = sample_values().into_iter().step_by(8).collect();
    for (label, input, expected) in packagings(&records) {
        assert_decodes_to(&input, &expected, label);
    }
}

#[test]
fn lookup_events_records_are_the_unescaped_strings() {
    let record = r#"{"eventName":"UpdateFunctionCode20150331v2","note":"tab\tquote\" é 😀"}"#;
    let page = json!({"Events": [{"EventId": "1", "CloudTrailEvent": record}], "NextToken": "t"});
    let input = serde_json::to_vec(&page).unwrap();
    let ours = fast(&input);
    assert!(ours.errors.is_empty(), "{:?}", ours.errors);
    assert_eq!(ours.records, vec![(record.as_bytes().to_vec(), 1)]);
    assert_eq!(reference(&input).records[0].0, record.as_bytes());
}

#[test]
fn escaped_event_name_is_passed_through_unchanged() {
    let line = br#"{"eventSource":"lambda.amazonaws.com","eventName":"\u0055pdateFunctionCode20150331v2"}"#;
    let ours = fast(line);
    assert_eq!(ours.records, vec![(line.to_vec(), 1)]);
    let records = format!("{{\"Records\":[{}]}}", std::str::from_utf8(line).unwrap());
    assert_eq!(fast(records.as_bytes()).records[0].0, line.to_vec());
    assert_eq!(
        ours.values()[0]["eventName"],
        json!("UpdateFunctionCode20150331v2")
    );
}

#[test]
fn empty_and_blank_inputs_hold_no_records() {
    for input in [
        &b""[..],
        b"   ",
        b"\n\n\r\n\t \n",
        b"\xef\xbb\xbf",
        b"[]",
        b" [ ] \n",
        b"{\"Records\":[]}",
        b"{\"Records\": [ ], \"Other\": 1}",
        b"{\"Events\":[],\"NextToken\":null}",
        b"[{\"Records\":[]},[]\n]",
    ] {
        for bytes in [input.to_vec(), gzip(input)] {
            let ours = fast(&bytes);
            assert!(ours.records.is_empty(), "{input:?}");
            let theirs = reference(&bytes);
            assert_eq!(ours.errors.len(), theirs.errors.len(), "{input:?}");
        }
        let nested_array = input == b"[{\"Records\":[]},[]\n]";
        assert_eq!(fast(input).errors.is_empty(), !nested_array, "{input:?}");
    }
    let nested = fast(b"[{\"Records\":[]},[]\n]");
    assert_eq!(nested.errors.len(), 1, "{:?}", nested.errors);
    assert!(nested.errors[0].1.contains("array inside an array"));
}

#[test]
fn a_bad_line_costs_only_that_line() {
    let good = br#"{"eventVersion":"1.08","eventName":"UpdateFunctionCode20150331v2","requestParameters":{"functionName":"f","publish":true},"count":12,"ok":true,"items":[1,{"a":null}]}"#;
    for cut in 1..good.len() {
        let prefix = &good[..cut];
        let mut input = Vec::new();
        for _ in 0..3 {
            input.extend_from_slice(good);
            input.push(b'\n');
        }
        input.extend_from_slice(prefix);
        input.push(b'\n');
        for _ in 0..3 {
            input.extend_from_slice(good);
            input.push(b'\n');
        }
        let label = format!("cut after {:?}", String::from_utf8_lossy(prefix));
        let ours = assert_agree(&input, &label);
        // Even a prefix that ends where a value is due (after ':', '[' or ',') costs only itself:
        // the next line is not swallowed as that value.
        assert_eq!(ours.errors.len(), 1, "{label}: {:?}", ours.errors);
        assert_eq!(ours.records.len(), 6, "{label}: {:?}", ours.errors);
        assert_eq!(ours.errors[0].0, 4, "{label}: {:?}", ours.errors);
        assert_eq!(ours.lines(), vec![1, 2, 3, 5, 6, 7], "{label}");
    }
}

/// A record cut anywhere, in every place a record can be, never hides the record on the next
/// line, and the error names the line where the cut record starts.
#[test]
fn a_cut_record_never_hides_the_record_on_the_next_line() {
    let good = json!({
        "eventSource": "lambda.amazonaws.com",
        "eventName": "UpdateFunctionCode20150331v2",
        "requestParameters": {"functionName": "f", "publish": true},
        "n": [1, {"a": null}, [2.5e3, "x\"y"]],
        "s": "tab\tquote\" é",
    });
    let compact = serde_json::to_string(&good).unwrap();
    let pretty = serde_json::to_string_pretty(&good).unwrap();
    let embedded = serde_json::to_string(&compact).unwrap();
    let entry = format!("{{\"EventId\":\"1\",\"CloudTrailEvent\":{embedded}}}");
    // (where, what comes before the cut text on its line, the text that is cut)
    let places: Vec<(&str, String, &str)> = vec![
        ("an NDJSON line", "{\"a\":1}\n".into(), &compact),
        ("a pretty-printed document", "{\"a\":1}\n".into(), &pretty),
        ("a top-level array", "[".into(), &compact),
        ("an array after an element", "[{\"a\":1},".into(), &compact),
        ("\"Records\"", "{\"Records\":[".into(), &compact),
        (
            "\"Records\" after an element",
            "{\"Records\":[{\"a\":1},".into(),
            &compact,
        ),
        (
            "a member beside \"Records\"",
            "{\"Records\":[{\"a\":1}],\"Digest\":".into(),
            &compact,
        ),
        (
            "a key beside \"Records\"",
            "{\"Records\":[],".into(),
            "\"Digest\":[1,2]",
        ),
        (
            "\"Records\" in an array",
            "[{\"Records\":[".into(),
            &compact,
        ),
        ("a lookup-events entry", "{\"Events\":[".into(), &entry),
        (
            "a CloudTrailEvent string",
            "{\"Events\":[{\"CloudTrailEvent\":".into(),
            &embedded,
        ),
    ];
    let next = json!({"eventSource": "lambda.amazonaws.com", "eventName": "UpdateFunctionCode", "next": true});
    for (place, before, text) in &places {
        let broken_line = before.matches('\n').count() as u64 + 1;
        // Cut at 0: the line is only the opening of the container (`{"Events":[`, ...).
        let first_cut = usize::from(before.ends_with('\n'));
        for cut in first_cut..text.len() {
            if !text.is_char_boundary(cut) {
                continue;
            }
            let input = format!("{before}{}\n{next}\n{{\"z\":1}}\n", &text[..cut]);
            let label = format!("{place} cut after {:?}", &text[..cut]);
            let ours = assert_agree(input.as_bytes(), &label);
            let values = ours.values();
            let found = values.iter().position(|value| *value == next);
            let Some(found) = found else {
                panic!(
                    "{label}: the record after the cut is lost: {:?}",
                    ours.errors
                );
            };
            let cut_lines = text[..cut].matches('\n').count() as u64;
            assert_eq!(
                ours.records[found].1,
                broken_line + cut_lines + 1,
                "{label}"
            );
            assert_eq!(values.last(), Some(&json!({"z": 1})), "{label}");
            assert!(!ours.errors.is_empty(), "{label}");
            // A bare container opening can hold the next record as an element: then the
            // container stops short after it, and says so there.
            let error_line = ours.errors[0].0;
            assert!(
                error_line == broken_line || (cut == 0 && error_line == broken_line + 1),
                "{label}: {:?}",
                ours.errors
            );
        }
    }
}

#[test]
fn syntax_errors_say_what_and_where() {
    let input = b"{\"a\":1}\n{\"eventName\":\"x\" x}\n{\"b\":2}\n";
    let ours = fast(input);
    assert_eq!(ours.lines(), vec![1, 3]);
    assert_eq!(
        ours.errors,
        vec![(
            2,
            "expected ',' or '}' after an object member, found 'x' at column 18".to_string()
        )]
    );
    let truncated = fast(b"{\"a\":1}\n{\"eventName\":\"Upd\n{\"b\":2}\n");
    assert_eq!(truncated.lines(), vec![1, 3]);
    assert_eq!(truncated.errors.len(), 1);
    assert_eq!(truncated.errors[0].0, 2);
    assert!(
        truncated.errors[0].1.contains("line break inside a string"),
        "{:?}",
        truncated.errors
    );
    let end = fast(b"{\"a\":1}\n{\"b\":[1,2\n\n");
    assert_eq!(end.lines(), vec![1]);
    assert_eq!(end.errors.len(), 1);
    assert_eq!(end.errors[0].0, 2, "{:?}", end.errors);
    assert!(end.errors[0].1.contains("end of input"), "{:?}", end.errors);
}

#[test]
fn wrong_shapes_cost_only_themselves() {
    let input = br#"[1, {"a":1}, "s", [2], null, true, {"Records": [{"b":2}, 3, {"c":3}, "x"], "Events": 5}]
{"Records": {"d": 4}}
{"Events": [{"EventId": "no-record"}, {"CloudTrailEvent": 7}, {"CloudTrailEvent": "[1]"}, {"CloudTrailEvent": "{\"e\":5"}, {"CloudTrailEvent": " {\"f\":6} "}, 8]}
42
"#;
    let ours = assert_agree(input, "wrong shapes");
    assert_eq!(
        ours.values(),
        vec![
            json!({"a": 1}),
            json!({"b": 2}),
            json!({"c": 3}),
            json!({"f": 6})
        ]
    );
    let reasons: Vec<&str> = ours
        .errors
        .iter()
        .map(|(_, reason)| reason.split(" at byte").next().unwrap())
        .collect();
    assert_eq!(
        reasons,
        vec![
            "a JSON number is not a CloudTrail record",
            "a JSON string is not a CloudTrail record",
            "a JSON array inside an array is not a CloudTrail record",
            "JSON null is not a CloudTrail record",
            "a JSON boolean is not a CloudTrail record",
            "a JSON number in \"Records\" is not a CloudTrail record",
            "a JSON string in \"Records\" is not a CloudTrail record",
            "\"Events\" must be an array of lookup-events entries, found a JSON number",
            "\"Records\" must be an array of CloudTrail records, found a JSON object",
            "lookup-events entry has no \"CloudTrailEvent\" member",
            "\"CloudTrailEvent\" is a JSON number, not a string",
            "\"CloudTrailEvent\" does not hold a JSON object: it holds a JSON array",
            "\"CloudTrailEvent\" does not hold a JSON object: unexpected end of input, expected ',' or '}' after an object member",
            "a JSON number in \"Events\" is not a lookup-events entry",
            "a JSON number is not a CloudTrail record",
        ]
    );
    let lines: Vec<u64> = ours.errors.iter().map(|(line, _)| *line).collect();
    assert_eq!(lines, vec![1, 1, 1, 1, 1, 1, 1, 1, 2, 3, 3, 3, 3, 3, 4]);
}

#[test]
fn crlf_blank_lines_bom_and_pretty_documents_keep_line_numbers() {
    let input = b"\xef\xbb\xbf{\"a\":1}\r\n\r\n   \r\n\t{\"b\":2}\r\n{\r\n  \"c\": [\r\n    3\r\n  ]\r\n}\r\n[\r\n  {\"d\":4},\r\n  {\"e\":5}\r\n]\r\n";
    for bytes in [input.to_vec(), gzip(input)] {
        let ours = assert_agree(&bytes, "CRLF");
        assert!(ours.errors.is_empty(), "{:?}", ours.errors);
        assert_eq!(
            ours.values(),
            vec![
                json!({"a":1}),
                json!({"b":2}),
                json!({"c":[3]}),
                json!({"d":4}),
                json!({"e":5})
            ]
        );
        assert_eq!(ours.lines(), vec![1, 4, 5, 11, 12]);
    }
    let bom_then_error = fast(b"\xef\xbb\xbf{\"a\":x}\n{\"b\":1}");
    assert_eq!(bom_then_error.lines(), vec![2]);
    assert_eq!(bom_then_error.errors[0].0, 1);
    assert!(
        bom_then_error.errors[0].1.ends_with("at column 6"),
        "{:?}",
        bom_then_error.errors
    );
}

#[test]
fn a_multi_line_document_broken_in_the_middle_gives_one_error() {
    let records: Vec<Value> = (0..50).map(|index| json!({"eventID": index})).collect();
    let mut text = serde_json::to_string_pretty(&json!({ "Records": records })).unwrap();
    let broken_at = text.find("\"eventID\": 20").unwrap();
    text.replace_range(broken_at..broken_at + 1, "x");
    let ours = assert_agree(text.as_bytes(), "broken pretty Records file");
    assert_eq!(
        ours.records.len(),
        20,
        "elements before the damage are kept"
    );
    assert_eq!(ours.errors.len(), 1, "{:?}", ours.errors);
    // Reported on the line where the broken record starts, saying where the damage is.
    let record_start = text[..broken_at].rfind('{').unwrap();
    let line = text[..record_start].matches('\n').count() as u64 + 1;
    assert_eq!(ours.errors[0].0, line);
    let damaged_line = text[..broken_at].matches('\n').count() + 1;
    assert!(
        ours.errors[0]
            .1
            .contains(&format!("at line {damaged_line} column 7")),
        "{:?}",
        ours.errors
    );

    let single_line = format!(
        "{{\"Records\":[{}]}}",
        (0..1000)
            .map(|index| if index == 500 {
                "{\"eventID\":}".to_string()
            } else {
                format!("{{\"eventID\":{index}}}")
            })
            .collect::<Vec<_>>()
            .join(",")
    );
    let ours = assert_agree(single_line.as_bytes(), "broken single-line Records file");
    assert_eq!(ours.records.len(), 500);
    assert_eq!(ours.errors.len(), 1);
}

#[test]
fn nesting_is_bounded_like_serde_json() {
    // 127 levels in all is the deepest serde_json parses; the container levels count too.
    for (prefix, suffix, around) in [
        ("", "", 0),
        ("{\"Records\":[", "]}", 2),
        ("[{\"Records\":[", "]}]", 3),
    ] {
        for depth in [126 - around, 127 - around, 128 - around] {
            let inner = format!("{}1{}", "[".repeat(depth - 1), "]".repeat(depth - 1));
            let input = format!("{prefix}{{\"a\":{inner}}}{suffix}\n{{\"after\":1}}\n");
            let ours = assert_agree(input.as_bytes(), &format!("depth {depth} in {prefix:?}"));
            let fits = depth + around <= 127;
            assert_eq!(
                ours.records.len(),
                if fits { 2 } else { 1 },
                "{depth} {prefix}"
            );
            assert_eq!(ours.errors.len(), usize::from(!fits));
        }
    }
    let deep = format!("{}\n{{\"after\":1}}\n", "[{\"a\":".repeat(200_000));
    let ours = fast(deep.as_bytes());
    assert_eq!(ours.values(), vec![json!({"after": 1})]);
    assert_eq!(ours.errors.len(), 1);
    assert!(
        ours.errors[0].1.contains("nested deeper"),
        "{:?}",
        ours.errors
    );
}

#[test]
fn records_straddling_buffer_boundaries_and_growing_the_buffer() {
    // Records of many sizes, so that some straddle every read boundary.
    let mut values = Vec::new();
    let mut size = 1usize;
    while values.len() < 2500 {
        values.push(json!({"eventID": values.len(), "pad": "p".repeat(size % 3000)}));
        size = (size * 7 + 13) % 100_003;
    }
    let input = ndjson(&values);
    let gzipped = gzip(&input);
    let ours = fast(&gzipped);
    assert!(ours.errors.is_empty(), "{:?}", ours.errors);
    assert!(ours.values() == values);

    // Records larger than the initial buffer, one of them as large as a record may be.
    values.insert(700, json!({"eventID": "big", "pad": "b".repeat(3 << 20)}));
    let at_the_cap = format!(
        "{{\"eventID\":\"huge\",\"pad\":\"{}\"}}",
        "h".repeat(MAX_RECORD_BYTES - 27)
    );
    assert_eq!(at_the_cap.len(), MAX_RECORD_BYTES);
    let mut input = ndjson(&values);
    input.extend_from_slice(at_the_cap.as_bytes());
    input.extend_from_slice(b"\n{\"last\":1}\n");
    let ours = fast(&input);
    assert!(ours.errors.is_empty(), "{:?}", ours.errors);
    assert_eq!(ours.records.len(), values.len() + 2);
    assert!(ours.values()[..values.len()] == values[..]);
    assert_eq!(ours.records[values.len()].0.len(), MAX_RECORD_BYTES);
    let expected_lines: Vec<u64> = (1..=values.len() as u64 + 2).collect();
    assert_eq!(ours.lines(), expected_lines);
    let records_file = serde_json::to_vec(&json!({ "Records": values })).unwrap();
    let ours = fast(&records_file);
    assert!(ours.errors.is_empty() && ours.values() == values);
}

#[test]
fn recovery_goes_back_to_a_swallowed_line_across_buffer_refills() {
    // A member cut after its key swallows the next line (a 3 MiB record) as its value, and the
    // break shows only at the line after that, megabytes later.
    let pad = "p".repeat(3 << 20);
    let big = json!({"eventName": "UpdateFunctionCode", "pad": pad});
    let input = format!("{{\"Records\":[{{\"a\":1}}],\"Digest\":\n{big}\n{{\"next\":1}}\n");
    let ours = assert_agree(input.as_bytes(), "swallowed 3 MiB line");
    assert_eq!(
        ours.values(),
        vec![json!({"a": 1}), big, json!({"next": 1})],
        "{:?}",
        ours.errors
    );
    assert_eq!(ours.lines(), vec![1, 2, 3]);
    assert_eq!(ours.errors.len(), 1);
    assert_eq!(ours.errors[0].0, 1, "{:?}", ours.errors);
    let trickled = fast_trickled(input.as_bytes(), 4093);
    assert_eq!(trickled.records, ours.records);
    assert_eq!(trickled.errors, ours.errors);
}

#[test]
fn an_oversized_value_that_swallowed_lines_gives_them_back() {
    let huge = format!(
        "{{\"pad\":\"{}\"}}",
        "h".repeat(MAX_RECORD_BYTES + (2 << 20))
    );
    let input = format!("{{\"cut\":\n{huge}\n{{\"next\":1}}\n");
    let ours = fast(input.as_bytes());
    // Compared by line and size only: the values are megabytes long.
    assert_eq!(ours.lines(), vec![3], "{:?}", ours.errors);
    assert_eq!(ours.records[0].0, b"{\"next\":1}");
    let lines: Vec<u64> = ours.errors.iter().map(|(line, _)| *line).collect();
    assert_eq!(lines, vec![1, 2], "{:?}", ours.errors);
}

#[test]
fn a_record_over_the_cap_is_reported_and_skipped() {
    let huge = format!(
        "{{\"eventName\":\"UpdateFunctionCode20150331v2\",\"pad\":\"{}\",\"nested\":{{\"s\":\"}}]\\\"\"}}}}",
        "x".repeat(MAX_RECORD_BYTES)
    );
    let input = format!("{{\"a\":1}}\n{huge}\n{{\"b\":2}}\n");
    let ours = fast(input.as_bytes());
    assert_eq!(ours.values(), vec![json!({"a": 1}), json!({"b": 2})]);
    assert_eq!(ours.lines(), vec![1, 3]);
    assert_eq!(ours.errors.len(), 1);
    assert_eq!(ours.errors[0].0, 2);
    assert!(
        ours.errors[0].1.contains("larger than 16 MiB"),
        "{:?}",
        ours.errors
    );

    let in_records = format!("{{\"Records\":[{{\"a\":1}},{huge},{{\"b\":2}}]}}\n{{\"c\":3}}");
    let ours = fast(in_records.as_bytes());
    assert_eq!(
        ours.values(),
        vec![json!({"a": 1}), json!({"b": 2}), json!({"c": 3})]
    );
    assert_eq!(ours.errors.len(), 1, "{:?}", ours.errors);
}

#[test]
fn truncated_or_corrupt_gzip_is_an_io_error_after_the_records_before_it() {
    let records: Vec<Value> = (0..20_000)
        .map(|index| json!({"eventID": index, "eventName": "GetObject", "n": index * 7919 % 10007}))
        .collect();
    let compressed = gzip(&ndjson(&records));
    let truncated = &compressed[..compressed.len() / 2];
    let mut collected = Collected::default();
    let error = decode(truncated, &mut collected).expect_err("truncated gzip must fail");
    let message = error.to_string();
    assert!(message.contains("gzip"), "{message}");
    assert!(message.contains("line"), "{message}");
    assert!(
        collected.records.len() > 1000,
        "records before the damage are delivered"
    );
    assert!(collected.values() == records[..collected.records.len()]);
    assert!(decode_reference(truncated, &mut Collected::default()).is_err());

    let mut corrupt = compressed.clone();
    corrupt[compressed.len() / 3] ^= 0x5a;
    corrupt[compressed.len() / 3 + 1] ^= 0xa5;
    assert!(decode(&corrupt[..], &mut Collected::default()).is_err());

    let mut trailing_junk = compressed;
    trailing_junk.extend_from_slice(b"not gzip");
    assert!(decode(&trailing_junk[..], &mut Collected::default()).is_err());
}

#[test]
fn a_gzip_bomb_is_cut_at_the_inflated_size_limit() {
    // Two records, then 20,000 gzip members of 1 MiB of spaces each: about 20 MB that inflate
    // to 20 GiB.
    let mut bomb = gzip(b"{\"a\":1}\n{\"b\":2}\n");
    let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
    encoder.write_all(&vec![b' '; 1 << 20]).unwrap();
    let member = encoder.finish().unwrap();
    for _ in 0..20_000 {
        bomb.extend_from_slice(&member);
    }
    struct Counting<'a> {
        data: &'a [u8],
        read: usize,
    }
    impl Read for Counting<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let n = (&self.data[self.read..]).read(out)?;
            self.read += n;
            Ok(n)
        }
    }
    let mut reader = Counting {
        data: &bomb,
        read: 0,
    };
    let mut collected = Collected::default();
    let limits = Limits {
        max_inflated_bytes: 3 << 20,
    };
    let error = decode_with_limits(&mut reader, &mut collected, &limits).unwrap_err();
    assert_eq!(error.kind(), io::ErrorKind::FileTooLarge, "{error}");
    let message = error.to_string();
    assert!(message.contains("3 MiB"), "{message}");
    assert!(message.contains("--max-inflated-size"), "{message}");
    assert_eq!(collected.values(), vec![json!({"a": 1}), json!({"b": 2})]);
    assert!(collected.errors.is_empty(), "{:?}", collected.errors);
    assert!(
        reader.read < bomb.len() / 2,
        "read {} of {} compressed bytes: inflation went on past the limit",
        reader.read,
        bomb.len()
    );
    // Exactly at the limit is fine, and the default is far above CloudTrail's file sizes.
    let input = gzip(b"{\"a\":1}\n");
    let exact = Limits {
        max_inflated_bytes: 8,
    };
    decode_with_limits(&input[..], &mut Collected::default(), &exact).unwrap();
    assert_eq!(Limits::default().max_inflated_bytes, 1 << 30);
}

#[test]
fn read_errors_are_returned_with_where_they_happened() {
    struct Failing<'a>(&'a [u8]);
    impl Read for Failing<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            if self.0.is_empty() {
                return Err(io::Error::other("disk on fire"));
            }
            let n = out.len().min(self.0.len()).min(10);
            out[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }
    let mut collected = Collected::default();
    let error = decode(Failing(b"{\"a\":1}\n{\"b\":2}\n{\"c\""), &mut collected).unwrap_err();
    assert!(error.to_string().contains("disk on fire"), "{error}");
    assert!(error.to_string().contains("line 3"), "{error}");
    assert_eq!(collected.values(), vec![json!({"a": 1}), json!({"b": 2})]);
}

fn mutate(rng: &mut Rng, line: &[u8]) -> Vec<u8> {
    let mut out = line.to_vec();
    for _ in 0..=rng.below(3) {
        let at = rng.below(out.len() + 1);
        match rng.below(6) {
            0 => out.truncate(at),
            1 => {
                if let Some(byte) = out.get_mut(at) {
                    *byte ^= 1 << rng.below(8);
                }
            }
            2 => {
                let noise: Vec<u8> = (0..rng.below(5) + 1).map(|_| rng.next() as u8).collect();
                out.splice(at..at, noise);
            }
            3 => {
                let end = (at + rng.below(40)).min(out.len());
                out.drain(at..end);
            }
            4 => {
                let special = [
                    b'"', b'\\', b'{', b'}', b'[', b']', b',', b':', b'\n', 0xc3, 0x00,
                ];
                out.insert(at, special[rng.below(special.len())]);
            }
            _ => {
                let piece = b"\\ud83d";
                out.splice(at..at, piece.iter().copied());
            }
        }
    }
    out
}

#[test]
fn mutated_input_never_panics_and_matches_the_reference() {
    let lines = sample_lines();
    let mut rng = Rng(0x5eed_1234_abcd_9876);
    for round in 0..1500 {
        let mut input = Vec::new();
        for _ in 0..4 {
            let line = &lines[rng.below(lines.len())];
            if rng.below(3) == 0 {
                input.extend(mutate(&mut rng, line));
            } else {
                input.extend_from_slice(line);
            }
            input.push(b'\n');
        }
        let label = format!("round {round}");
        let ours = assert_agree(&input, &label);
        let trickled = fast_trickled(&input, 1);
        assert_eq!(ours.records, trickled.records, "{label}: 1-byte reads");
        assert_eq!(ours.errors, trickled.errors, "{label}: 1-byte reads");
        let gzipped = fast(&gzip(&input));
        assert_eq!(ours.records, gzipped.records, "{label}: gzip");
        assert_eq!(ours.errors, gzipped.errors, "{label}: gzip");
    }
    // Mutated containers and whole documents.
    for round in 0..300 {
        let chunk: Vec<Value> = (0..5)
            .map(|_| serde_json::from_slice(&lines[rng.below(lines.len())]).unwrap())
            .collect();
        let document = match round % 3 {
            0 => serde_json::to_vec(&json!({ "Records": chunk })).unwrap(),
            1 => serde_json::to_vec_pretty(&chunk).unwrap(),
            _ => serde_json::to_vec(&lookup_events_page(&chunk, true)).unwrap(),
        };
        let mutated = mutate(&mut rng, &document);
        let label = format!("container round {round}");
        let ours = assert_agree(&mutated, &label);
        let trickled = fast_trickled(&mutated, 1);
        assert_eq!(ours.records, trickled.records, "{label}: 1-byte reads");
        assert_eq!(ours.errors, trickled.errors, "{label}: 1-byte reads");
    }
    // Pure noise, plain and behind a gzip header.
    for round in 0..300 {
        let mut noise: Vec<u8> = (0..rng.below(300)).map(|_| rng.next() as u8).collect();
        if round % 2 == 0 {
            noise.splice(0..0, [0x1f, 0x8b]);
        }
        // Whatever the noise holds, how it arrives changes nothing, and the reference decoder
        // (which reads it whole) agrees on whether it could be read at all.
        let (mut whole, mut trickled) = (Collected::default(), Collected::default());
        let read_whole = decode(&noise[..], &mut whole).map_err(|e| e.to_string());
        let read_trickled = decode(
            Trickle {
                data: &noise,
                step: 3,
            },
            &mut trickled,
        )
        .map_err(|e| e.to_string());
        assert_eq!(
            read_whole.is_ok(),
            read_trickled.is_ok(),
            "noise round {round}"
        );
        assert_eq!(whole.records, trickled.records, "noise round {round}");
        assert_eq!(whole.errors, trickled.errors, "noise round {round}");
        let read_reference = decode_reference(&noise[..], &mut Collected::default());
        assert_eq!(
            read_whole.is_ok(),
            read_reference.is_ok(),
            "noise round {round}"
        );
    }
}
