//! The real CloudTrail corpus in `../shared/corpus`: it all decodes, and the rule finds exactly the
//! alerts its README documents. Also: the fast path (streaming decoder + literal prefilter) gives
//! exactly the output of the reference path over the whole corpus.

mod common;

use common::{cli, corpus_dir, corpus_files, stdout_lines, summary_counts};
use lambda_code_watch::{Detector, scan};
use std::io::Write;

#[test]
fn the_real_records_hold_one_alert_the_stratus_detonation() {
    let Some(corpus) = corpus_dir() else { return };
    let output = cli(&["scan", corpus.join("real").to_str().unwrap()], b"");
    assert_eq!(output.status.code(), Some(0), "{}", common::stderr(&output));
    let (records, alerts, errors) = summary_counts(&output);
    assert_eq!((alerts, errors), (1, 0));
    let expected_records: usize = corpus_files(&corpus, "real")
        .iter()
        .map(|f| {
            std::fs::read_to_string(f)
                .unwrap()
                .lines()
                .filter(|l| !l.trim().is_empty())
                .count()
        })
        .sum();
    assert_eq!(records as usize, expected_records);
    let alert = &stdout_lines(&output)[0];
    assert_eq!(alert["actor"], "christophe");
    assert_eq!(
        alert["function_name"],
        "stratus-red-team-olc-func-vayhjqkdav"
    );
    assert_eq!(alert["event_id"], "4672b74f-2466-4784-b3fb-5b4db904a995");
    assert_eq!(alert["version"], "1");
}

#[test]
fn the_fixtures_hold_panthers_three_positive_tests() {
    let Some(corpus) = corpus_dir() else { return };
    let output = cli(&["scan", corpus.join("fixtures").to_str().unwrap()], b"");
    assert_eq!(output.status.code(), Some(0), "{}", common::stderr(&output));
    let (_, alerts, errors) = summary_counts(&output);
    assert_eq!((alerts, errors), (3, 0));
}

#[test]
fn every_panther_test_of_this_rule_gets_its_expected_result() {
    let Some(corpus) = corpus_dir() else { return };
    let mut checked = 0;
    for file in corpus_files(&corpus, "fixtures") {
        for line in std::fs::read_to_string(&file).unwrap().lines() {
            let value: serde_json::Value = serde_json::from_str(line).unwrap();
            let panther = &value["_panther"];
            if panther["rule"] != "AWS.Lambda.UpdateFunctionCode" {
                continue;
            }
            let expected = panther["expected"]
                .as_bool()
                .expect("_panther.expected is a boolean");
            let outcome = Detector::default().assess_json(line.as_bytes()).unwrap();
            assert_eq!(
                outcome.alert().is_some(),
                expected,
                "{panther}: {}",
                outcome.verdict_name()
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 6, "the corpus carries the rule card's six tests");
}

#[test]
fn the_fast_path_prints_exactly_what_the_reference_path_prints() {
    let Some(corpus) = corpus_dir() else { return };
    let dir = corpus.to_str().unwrap();
    let fast = cli(
        &[
            "scan",
            "--jobs",
            "2",
            &format!("{dir}/real"),
            &format!("{dir}/fixtures"),
        ],
        b"",
    );
    // The reference path: the test oracle decoder (whole input in memory) and a parse of every
    // record, through the same scan driver.
    let paths = [corpus.join("real"), corpus.join("fixtures")];
    let options = scan::Options {
        reference_decoder: true,
        jobs: 1,
        ..scan::Options::default()
    };
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let mut collected = scan::Summary::default();
    let inputs = scan::collect_inputs(&paths, &mut collected, &mut err).unwrap();
    let summary = scan::scan(&inputs, &Detector::default(), &options, &mut out, &mut err).unwrap();
    writeln!(err, "{summary}").unwrap();
    assert_eq!(fast.status.code(), Some(0), "{}", common::stderr(&fast));
    assert_eq!(fast.stdout, out);
    assert_eq!(
        common::stderr(&fast),
        String::from_utf8(err).unwrap(),
        "same summary, same reasons"
    );
    assert!(!fast.stdout.is_empty());
}
