//! Hostile input, generated: arbitrary bytes, arbitrary JSON values and mutations of real records
//! (dropped, nulled, retyped, duplicated, lengthened fields; lines truncated at any byte or split)
//! go through the decoder, the rule, both renderings and the SNS message shaping. Never a panic,
//! never invalid JSON out, a Subject SNS accepts, no invisible character for a person to misread,
//! a verdict that changes only when a field the rule reads changes, and a record after any single
//! broken line always found.
//!
//! Case counts are bounded for `cargo test` (`PROPTEST_CASES` raises them; `scripts/fuzz` runs
//! them long, and the coverage-guided targets under `fuzz/`). Records come from `events/` and,
//! when present, the corpus (see `common::corpus_dir`).

mod common;

use common::{Collected, fast};

use std::io::Write;
use std::ops::ControlFlow;
use std::sync::OnceLock;

use flate2::Compression;
use flate2::write::GzEncoder;
use lambda_code_watch::input::{RecordVisitor, decode, decode_reference};
use lambda_code_watch::sink::sns_message::{MAX_PUBLISH_BYTES, MAX_SUBJECT_CHARS, SnsMessage};
use lambda_code_watch::{Alert, Detector, Outcome, Record};
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{Map, Value};
use unicode_general_category::{GeneralCategory, get_general_category};

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(500);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// The fast decoder finds what the reference decoder finds: the same records, as many errors.
fn assert_decoders_agree(input: &[u8]) -> Collected {
    let ours = fast(input);
    let mut theirs = Collected::default();
    decode_reference(input, &mut theirs).unwrap();
    let (found, expected) = (ours.values(), theirs.values());
    if found != expected {
        let first = found.iter().zip(&expected).position(|(a, b)| a != b);
        panic!(
            "records differ from the reference: {} vs {}, first at {first:?}",
            found.len(),
            expected.len()
        );
    }
    assert_eq!(
        ours.errors.len(),
        theirs.errors.len(),
        "{:?} vs reference {:?}",
        ours.errors,
        theirs.errors
    );
    ours
}

/// The sample events and corpus records, compacted onto one line each.
fn real_records() -> &'static [Value] {
    static RECORDS: OnceLock<Vec<Value>> = OnceLock::new();
    RECORDS.get_or_init(|| {
        let mut records: Vec<Value> = common::event_files("")
            .iter()
            .map(|path| serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap())
            .collect();
        if let Some(corpus) = common::corpus_dir() {
            for folder in ["real", "fixtures"] {
                for path in common::corpus_files(&corpus, folder) {
                    let text = std::fs::read_to_string(path).unwrap();
                    records.extend(
                        text.lines()
                            .filter(|line| !line.trim().is_empty())
                            .map(|line| serde_json::from_str::<Value>(line).unwrap()),
                    );
                }
            }
        }
        records
    })
}

/// A record that alerts, to follow a broken line.
fn alerting_record() -> Value {
    serde_json::from_slice(
        &std::fs::read(common::repo_dir().join("events/alert/iam-user.json")).unwrap(),
    )
    .unwrap()
}

/// Whether `c` would not show as itself to a person (controls other than the line breaks of the
/// rendering, Unicode format and separator characters).
fn is_hidden(c: char) -> bool {
    (c.is_control() && c != '\n')
        || matches!(
            get_general_category(c),
            GeneralCategory::Format
                | GeneralCategory::LineSeparator
                | GeneralCategory::ParagraphSeparator
        )
}

/// Every promise about an alert's renderings and its SNS message.
fn check_alert(alert: &Alert) {
    let document: Value = serde_json::from_str(&alert.to_json()).expect("alert JSON is valid");
    assert_eq!(document["title"], alert.title.as_str());
    let text = alert.to_text();
    if let Some(c) = text.chars().find(|&c| is_hidden(c)) {
        panic!("U+{:04X} reaches the text rendering", c as u32);
    }
    let message = SnsMessage::for_alert(alert).expect("the alert fits SNS once truncated");
    let subject = &message.subject;
    assert!(
        !subject.is_empty() && subject.len() <= MAX_SUBJECT_CHARS,
        "{subject:?}"
    );
    assert!(
        subject.bytes().all(|b| (0x20..0x7f).contains(&b)),
        "{subject:?}"
    );
    assert_eq!(subject.trim(), subject.as_str());
    assert!(message.publish_bytes() <= MAX_PUBLISH_BYTES);
    assert!(!message.message.contains(['\u{FFFE}', '\u{FFFF}']));
    let outer: Value = serde_json::from_str(&message.message).expect("Message is valid JSON");
    let default = outer["default"].as_str().expect("default is a string");
    let _: Value = serde_json::from_str(default).expect("the published document is valid JSON");
    let email = outer["email"].as_str().expect("email is a string");
    assert!(!email.chars().any(is_hidden));
}

/// The outcome of `json` as `scan` gets it (prefilter, then parse), checked against a full
/// parse; alerts are checked through `check_alert`. Returns the verdict's name.
fn assess(json: &[u8]) -> Option<&'static str> {
    let detector = Detector::default();
    let full = detector.assess_json(json);
    let fast = detector.assess_validated(json);
    match (&full, &fast) {
        (Ok(full), Ok(fast)) => {
            assert_eq!(
                full.verdict_name(),
                fast.verdict_name(),
                "prefilter vs parse"
            );
            assert_eq!(
                full.alert().map(|a| &a.title),
                fast.alert().map(|a| &a.title)
            );
            if let Outcome::Alert(alert) = full {
                check_alert(alert);
            }
            Some(full.verdict_name())
        }
        (Err(_), Err(_)) => None,
        _ => panic!("prefilter and parse disagree on whether it is a record"),
    }
}

/// The paths (object keys) whose value decides the verdict, for a bare record and inside an
/// EventBridge envelope.
const RULE_PATHS: [&[&str]; 6] = [
    &["eventSource"],
    &["eventName"],
    &["errorCode"],
    &["errorMessage"],
    &["userIdentity", "type"],
    &[
        "userIdentity",
        "sessionContext",
        "sessionIssuer",
        "userName",
    ],
];

fn read_by_the_rule(record: &Value, path: &[String]) -> bool {
    let is_envelope =
        record.get("detail-type").is_some() && record.get("detail").is_some_and(Value::is_object);
    let mut read: Vec<Vec<&str>> = Vec::new();
    for rule_path in RULE_PATHS {
        if is_envelope {
            read.push(
                std::iter::once("detail")
                    .chain(rule_path.iter().copied())
                    .collect(),
            );
        } else {
            read.push(rule_path.to_vec());
        }
    }
    // The envelope policy reads these two on every record.
    read.push(vec!["detail-type"]);
    read.push(vec!["detail"]);
    read.iter().any(|rule_path| {
        let common = rule_path.len().min(path.len());
        rule_path[..common]
            .iter()
            .zip(&path[..common])
            .all(|(a, b)| *a == b.as_str())
    })
}

/// Every path to a member of an object, depth first.
fn member_paths(value: &Value) -> Vec<Vec<String>> {
    fn walk(value: &Value, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
        if let Value::Object(members) = value {
            for (key, member) in members {
                prefix.push(key.clone());
                out.push(prefix.clone());
                walk(member, prefix, out);
                prefix.pop();
            }
        }
    }
    let mut out = Vec::new();
    walk(value, &mut Vec::new(), &mut out);
    out
}

fn member_mut<'a>(value: &'a mut Value, path: &[String]) -> Option<&'a mut Map<String, Value>> {
    let mut object = value.as_object_mut()?;
    for key in &path[..path.len() - 1] {
        object = object.get_mut(key)?.as_object_mut()?;
    }
    Some(object)
}

/// Strings a person would rather not meet: controls, bidirectional overrides, zero-width and
/// separator characters, quotes, backslashes, non-ASCII, and the rule's own words.
fn hostile_string() -> impl Strategy<Value = String> {
    let pieces = prop::sample::select(vec![
        "\u{202e}",
        "\u{200b}",
        "\u{200d}",
        "\u{feff}",
        "\u{2028}",
        "\u{2029}",
        "\u{ad}",
        "\u{2066}",
        "\n",
        "\r",
        "\t",
        "\u{0}",
        "\u{1b}[2J",
        "\u{7f}",
        "\u{85}",
        "\"",
        "\\",
        "é",
        "😀",
        "\u{fffe}",
        "\u{ffff}",
        " ",
        "alice",
        "ecila",
        "UpdateFunctionCode",
        "lambda.amazonaws.com",
        "AWSReservedSSO_",
        "IAMUser",
        ":",
        "/",
        "\\u0041",
    ]);
    prop_oneof![
        prop::collection::vec(pieces, 0..12).prop_map(|pieces| pieces.concat()),
        any::<String>(),
        "\\PC{0,40}",
    ]
}

/// Arbitrary JSON, with the rule's keys and values among the random ones.
fn json_value() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        prop::sample::select(vec![
            "eventSource",
            "eventName",
            "errorCode",
            "errorMessage",
            "userIdentity",
            "type",
            "sessionContext",
            "sessionIssuer",
            "userName",
            "principalId",
            "arn",
            "detail",
            "detail-type",
            "Records",
            "Events",
            "CloudTrailEvent",
            "responseElements",
            "requestParameters",
            "functionName",
            "userAgent",
            "eventID",
        ])
        .prop_map(str::to_owned),
        hostile_string(),
    ];
    let text = prop_oneof![
        prop::sample::select(vec![
            "lambda.amazonaws.com",
            "UpdateFunctionCode20150331v2",
            "UpdateFunctionCode",
            "IAMUser",
            "FederatedUser",
            "AssumedRole",
            "AWSReservedSSO_Admin_1",
            "",
            "0",
        ])
        .prop_map(str::to_owned),
        hostile_string(),
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        // Finite, and read back as the same number (serde_json's float parsing is not always
        // correctly rounded, and the reference decoder hands out re-serialised records).
        any::<f64>()
            .prop_filter("a JSON number that reads back the same", |n| {
                n.is_finite()
                    && serde_json::from_str::<f64>(&serde_json::to_string(n).unwrap()).ok()
                        == Some(*n)
            })
            .prop_map(Value::from),
        text.prop_map(Value::from),
    ];
    leaf.prop_recursive(5, 64, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key.clone(), inner), 0..8)
                .prop_map(|members| Value::Object(members.into_iter().collect())),
        ]
    })
}

/// A change to one member of a record.
#[derive(Debug, Clone)]
enum Mutation {
    Drop,
    Null,
    Retype(Value),
    Lengthen(usize),
    /// The key again at the end of its object, with this value: the last one wins.
    DuplicateLast(Value),
    /// The key again at the start of its object: the original, later, wins.
    DuplicateFirst(Value),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let retyped = prop_oneof![
        any::<bool>().prop_map(Value::from),
        any::<i32>().prop_map(Value::from),
        hostile_string().prop_map(Value::from),
        Just(Value::Array(vec![])),
        Just(Value::Object(Map::new())),
        Just(serde_json::json!({"nested": [1, {"x": null}]})),
    ];
    prop_oneof![
        Just(Mutation::Drop),
        Just(Mutation::Null),
        retyped.clone().prop_map(Mutation::Retype),
        (1usize..200_000).prop_map(Mutation::Lengthen),
        retyped.clone().prop_map(Mutation::DuplicateLast),
        retyped.prop_map(Mutation::DuplicateFirst),
    ]
}

/// The record's text with `mutation` applied at `path`, and its meaning (what a JSON parser,
/// keeping the last of duplicate keys, reads).
fn mutate(record: &Value, path: &[String], mutation: &Mutation) -> (String, Value) {
    let mut meaning = record.clone();
    let object = member_mut(&mut meaning, path).expect("the path exists");
    let key = path.last().unwrap();
    match mutation {
        Mutation::Drop => {
            object.remove(key);
        }
        Mutation::Null => {
            object.insert(key.clone(), Value::Null);
        }
        Mutation::Retype(value) | Mutation::DuplicateLast(value) => {
            object.insert(key.clone(), value.clone());
        }
        Mutation::Lengthen(size) => {
            let long = match &object[key] {
                Value::String(s) => format!("{s}{}", "x".repeat(*size)),
                _ => "y".repeat(*size),
            };
            object.insert(key.clone(), Value::from(long));
        }
        Mutation::DuplicateFirst(_) => {}
    }
    let text = match mutation {
        Mutation::DuplicateLast(value) | Mutation::DuplicateFirst(value) => {
            // Serialise the parent object by hand with the key twice.
            let mut text_record = record.clone();
            let marker = "\u{1}duplicate\u{1}";
            let parent = member_mut(&mut text_record, path).unwrap();
            let original = parent[key].clone();
            parent.insert(key.clone(), Value::from(marker));
            let text = serde_json::to_string(&text_record).unwrap();
            let key_json = serde_json::to_string(key).unwrap();
            let (first, second) = match mutation {
                Mutation::DuplicateLast(_) => (&original, value),
                _ => (value, &original),
            };
            let both = format!(
                "{},{key_json}:{}",
                serde_json::to_string(first).unwrap(),
                serde_json::to_string(second).unwrap()
            );
            let placeholder = serde_json::to_string(marker).unwrap();
            text.replacen(&placeholder, &both, 1)
        }
        _ => serde_json::to_string(&meaning).unwrap(),
    };
    (text, meaning)
}

proptest! {
    #![proptest_config(config())]

    /// Arbitrary bytes, plain and gzipped: no panic, every record valid JSON, the same as the
    /// reference decoder finds.
    #[test]
    fn arbitrary_bytes_decode_like_the_reference(
        bytes in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..600),
            prop::collection::vec(
                prop::sample::select(vec![
                    &b"{"[..], b"}", b"[", b"]", b",", b":", b"\"", b"\\", b" ", b"\n",
                    b"\"a\"", b"1", b"-2.5e3", b"true", b"null", b"\"Records\"", b"\"Events\"",
                    b"\"CloudTrailEvent\"", b"\"eventName\":", b"\"UpdateFunctionCode\"", b"\xc3\xa9",
                    b"\xff", b"\\u00", b"\\ud83d",
                ]),
                0..200,
            )
            .prop_map(|pieces| pieces.concat()),
        ],
    ) {
        // Bytes that begin like gzip are gzip input, which may rightly fail to read; noise behind
        // a gzip header is tests/input.rs's (mutated_input_never_panics_and_matches_the_reference).
        prop_assume!(!bytes.starts_with(&[0x1f, 0x8b]));
        let ours = assert_decoders_agree(&bytes);
        for (json, _) in &ours.records {
            let _ = assess(json);
        }
        let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
        encoder.write_all(&bytes).unwrap();
        let gzipped = encoder.finish().unwrap();
        let mut collected = Collected::default();
        decode(&gzipped[..], &mut collected).unwrap();
        prop_assert_eq!(collected.records, ours.records);
        prop_assert_eq!(collected.errors, ours.errors);
    }

    /// Arbitrary JSON documents, one per line or pretty-printed: every object that is not a
    /// container is found, exactly; the rule and every rendering hold on each.
    #[test]
    fn arbitrary_json_documents_are_found_and_judged(
        documents in prop::collection::vec(json_value(), 1..6),
        pretty in any::<bool>(),
    ) {
        let mut input = Vec::new();
        for document in &documents {
            if pretty {
                serde_json::to_writer_pretty(&mut input, document).unwrap();
            } else {
                serde_json::to_writer(&mut input, document).unwrap();
            }
            input.push(b'\n');
        }
        let ours = assert_decoders_agree(&input);
        let all_records = documents
            .iter()
            .all(|d| d.is_object() && d.get("Records").is_none() && d.get("Events").is_none());
        if all_records {
            prop_assert!(ours.values() == documents, "not exactly the documents");
            prop_assert!(ours.errors.is_empty());
        }
        for (json, _) in &ours.records {
            prop_assert!(assess(json).is_some(), "a decoded object is a record");
        }
        for document in &documents {
            if let Ok(record) = Record::from_value(document.clone())
                && let Outcome::Alert(alert) = Detector::default().assess(&record)
            {
                check_alert(&alert);
            }
        }
    }

    /// Hostile text in every field an alert shows: renderings and SNS message hold.
    #[test]
    fn hostile_text_in_an_alert_is_rendered_safely(
        name in hostile_string(),
        agent in hostile_string(),
        function in hostile_string(),
        principal in hostile_string(),
        issuer in hostile_string(),
        kind in prop::sample::select(vec!["IAMUser", "FederatedUser", "AssumedRole"]),
    ) {
        let mut record = alerting_record();
        record["userIdentity"]["type"] = Value::from(kind);
        record["userIdentity"]["userName"] = Value::from(name);
        record["userIdentity"]["principalId"] = Value::from(principal);
        record["userIdentity"]["sessionContext"] = serde_json::json!({
            "sessionIssuer": {"userName": format!("AWSReservedSSO_{issuer}"), "arn": issuer},
        });
        record["userAgent"] = Value::from(agent);
        record["responseElements"]["functionName"] = Value::from(function);
        let json = serde_json::to_vec(&record).unwrap();
        prop_assert_eq!(assess(&json), Some("alert"));
    }

    /// One member of a real record dropped, nulled, retyped, lengthened or duplicated: the
    /// verdict changes only if the rule reads that member; the mutated record decodes like the
    /// reference, and the alerting record on the next line is still found.
    #[test]
    fn mutated_real_records_keep_their_verdict_unless_the_rule_reads_the_field(
        which in any::<Index>(),
        member in any::<Index>(),
        mutation in mutation(),
    ) {
        let record = which.get(real_records());
        let paths = member_paths(record);
        prop_assume!(!paths.is_empty());
        let path = member.get(&paths);
        let (text, meaning) = mutate(record, path, &mutation);
        let before = assess(serde_json::to_string(record).unwrap().as_bytes());
        let after = assess(text.as_bytes());
        prop_assert_eq!(after, assess(serde_json::to_string(&meaning).unwrap().as_bytes()));
        if !read_by_the_rule(record, path) {
            prop_assert_eq!(before, after, "{:?} at {:?}", mutation, path);
        }
        let next = alerting_record();
        let input = format!("{text}\n{next}\n");
        let ours = assert_decoders_agree(input.as_bytes());
        let found = ours.values();
        prop_assert_eq!(found.last(), Some(&next));
    }

    /// A real record's line truncated at any byte, or split in two at any byte: the alerting
    /// record on the next line is always found, and both decoders agree.
    #[test]
    fn a_record_after_a_truncated_or_split_line_is_always_found(
        which in any::<Index>(),
        at in any::<Index>(),
        split in any::<bool>(),
        container in 0usize..4,
        where_ in 0usize..3,
    ) {
        let record = which.get(real_records()).clone();
        let line = match container {
            0 => serde_json::to_string(&record).unwrap(),
            1 => serde_json::to_string(&serde_json::json!({"Records": [record.clone(), record]})).unwrap(),
            2 => serde_json::to_string(&serde_json::json!({"Events": [{
                "EventId": "1",
                "CloudTrailEvent": serde_json::to_string(&record).unwrap(),
            }]})).unwrap(),
            _ => serde_json::to_string(&vec![record.clone(), record]).unwrap(),
        };
        // A third of the cuts anywhere, a third right after a structural byte, a third in the
        // first bytes (where the containers open).
        let structural: Vec<usize> = (1..=line.len())
            .filter(|&i| b"{[:,\"".contains(&line.as_bytes()[i - 1]))
            .collect();
        let mut cut = match where_ {
            0 => at.index(line.len() + 1),
            1 => *at.get(&structural),
            _ => at.index(line.len().min(40) + 1),
        };
        while !line.is_char_boundary(cut) {
            cut -= 1;
        }
        let broken = if split {
            format!("{}\n{}", &line[..cut], &line[cut..])
        } else {
            line[..cut].to_owned()
        };
        let next = alerting_record();
        let input = format!("{broken}\n{next}\n");
        let ours = assert_decoders_agree(input.as_bytes());
        let found = ours.values();
        prop_assert!(found.contains(&next), "lost after {:?}", &broken[..broken.len().min(200)]);
        for (json, _) in &ours.records {
            let _ = assess(json);
        }
    }
}

/// Records as the fast decoder hands them to `record_checked`: with its word on `\u` escapes.
#[derive(Default)]
struct Checked {
    records: Vec<(Vec<u8>, bool)>,
}

impl RecordVisitor for Checked {
    fn record(&mut self, json: &[u8], _line: u64) -> ControlFlow<()> {
        // Only lookup-events entries come this way: their hint is unknown.
        self.records.push((json.to_vec(), true));
        ControlFlow::Continue(())
    }

    fn record_checked(&mut self, json: &[u8], _line: u64, unicode_escape: bool) -> ControlFlow<()> {
        self.records.push((json.to_vec(), unicode_escape));
        ControlFlow::Continue(())
    }

    fn error(&mut self, _line: u64, _reason: &str) -> ControlFlow<()> {
        ControlFlow::Continue(())
    }
}

/// Whether valid JSON holds a `\u` escape: a backslash outside strings is invalid, so every
/// backslash starts an escape of two bytes or more.
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

/// The decoder's hint is exact, and the prefilter it allows decides as a full parse does.
fn assert_hints_hold(input: &[u8]) {
    let mut checked = Checked::default();
    decode(input, &mut checked).expect("plain input never fails to read");
    let detector = Detector::default();
    for (json, unicode_escape) in &checked.records {
        if !unicode_escape {
            assert!(
                !holds_unicode_escape(json),
                "hint says no \\u escape in {}",
                String::from_utf8_lossy(json)
            );
        }
        let full = detector.assess_json(json).map(|o| o.verdict_name());
        let hinted = detector
            .assess_decoded(json, *unicode_escape)
            .map(|o| o.verdict_name());
        assert_eq!(full.ok(), hinted.ok(), "hinted prefilter vs parse");
    }
}

proptest! {
    #![proptest_config(config())]

    /// The `\u` hint of the fast decoder on arbitrary bytes, escapes of every kind included, and
    /// on real records whose strings are re-escaped in every way JSON allows.
    #[test]
    fn the_unicode_escape_hint_is_a_proof(
        bytes in prop::collection::vec(
            prop::sample::select(vec![
                &b"{"[..], b"}", b"[", b"]", b",", b":", b"\"", b"\\", b"\\\\", b"\\u", b"u",
                b"\"a\"", b"1", b"\"eventName\":", b"\"UpdateFunctionCode\"",
                b"\"\\u0055pdateFunctionCode\"", b"\"\\\\u0055\"", b"\\\"", b"\\n", b"\n",
                b"\"eventSource\":\"lambda.amazonaws.com\"",
            ]),
            0..120,
        )
        .prop_map(|pieces| pieces.concat()),
        which in any::<Index>(),
        escape_every in 0usize..8,
    ) {
        assert_hints_hold(&bytes);
        // A real record with some of its ASCII letters written as `\u00XX` (the eventName too,
        // now and then), alone and in a `Records` container.
        let record = serde_json::to_string(which.get(real_records())).unwrap();
        let mut escaped = String::new();
        let mut in_string = false;
        let mut previous_backslash = false;
        for (n, c) in record.chars().enumerate() {
            if c == '"' && !previous_backslash {
                in_string = !in_string;
            }
            if in_string && c.is_ascii_alphabetic() && escape_every > 0 && n % escape_every == 0 {
                escaped.push_str(&format!("\\u{:04x}", c as u32));
            } else {
                escaped.push(c);
            }
            previous_backslash = c == '\\' && !previous_backslash;
        }
        let input = format!("{escaped}\n{{\"Records\":[{escaped},{record}]}}\n");
        assert_hints_hold(input.as_bytes());
    }
}

/// An `eventName` spelled with a `\u` escape still alerts through the hinted prefilter (and a
/// `\\u` that is no escape is not taken for one).
#[test]
fn an_escaped_event_name_alerts_through_the_hinted_prefilter() {
    let record = serde_json::to_string(&alerting_record()).unwrap();
    let escaped = record.replacen("\"UpdateFunctionCode", "\"\\u0055pdateFunctionCode", 1);
    assert_ne!(
        escaped, record,
        "the alerting record names UpdateFunctionCode"
    );
    let not_an_escape = record.replacen("\"us-west-2\"", "\"\\\\u0055\"", 1);
    assert_ne!(not_an_escape, record);
    let input = format!("{escaped}\n{not_an_escape}\n");
    let mut checked = Checked::default();
    decode(input.as_bytes(), &mut checked).unwrap();
    assert_eq!(checked.records.len(), 2);
    assert!(checked.records[0].1, "a \\u escape is reported");
    assert!(
        !checked.records[1].1,
        "\\\\u is an escaped backslash and a letter"
    );
    let detector = Detector::default();
    let (json, hint) = &checked.records[0];
    assert!(
        detector
            .assess_decoded(json, *hint)
            .unwrap()
            .alert()
            .is_some()
    );
}
