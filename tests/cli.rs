//! The `scan` command's promises: every input shape, exact line numbers for bad input, nothing lost,
//! exit codes, formats, deterministic output.

mod common;

use common::{cli, repo_dir, stderr, stdout_lines, summary_counts};
use flate2::{Compression, write::GzEncoder};
use std::io::Write;

fn event(name: &str) -> String {
    let value: serde_json::Value =
        serde_json::from_slice(&std::fs::read(repo_dir().join("events").join(name)).unwrap())
            .unwrap();
    value.to_string()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn ndjson_with_a_bad_line() -> String {
    [
        event("alert/iam-user.json"),
        event("quiet/cicd-role.json"),
        event("quiet/delete-function.json"),
        r#"{"eventSource": "lambda.amazonaws.com", "eventName": "UpdateFunc"#.to_owned(),
        event("alert/sso-user.json"),
        event("quiet/cicd-role-v2.json"),
        event("alert/federated-user.json"),
    ]
    .join("\n")
        + "\n"
}

#[test]
fn a_bad_line_in_ndjson_is_reported_with_its_number_and_the_rest_is_scanned() {
    let output = cli(&["scan"], ndjson_with_a_bad_line().as_bytes());
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(summary_counts(&output), (6, 3, 1));
    let err = stderr(&output);
    assert!(err.lines().any(|l| l.starts_with("<stdin>:4: ")), "{err}");
    let actors: Vec<_> = stdout_lines(&output)
        .iter()
        .map(|a| a["actor"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(actors, ["john.developer", "bob.ross", "federated-user"]);
}

#[test]
fn gzip_input_is_detected_by_content_not_name() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trail.json");
    std::fs::write(&path, gzip(ndjson_with_a_bad_line().as_bytes())).unwrap();
    let output = cli(&["scan", path.to_str().unwrap()], b"");
    assert_eq!(summary_counts(&output), (6, 3, 1));
    assert!(
        stderr(&output).contains("trail.json:4: "),
        "{}",
        stderr(&output)
    );
}

#[test]
fn cloudtrail_log_files_arrays_and_lookup_events_output() {
    let records = [
        event("alert/iam-user.json"),
        event("quiet/cicd-role.json"),
        event("alert/sso-user.json"),
    ]
    .join(",");
    let log_file = format!(r#"{{"Records":[{records}]}}"#);
    let array = format!("[{records}]");
    let lookup = serde_json::json!({"Events": [
        {"EventId": "1", "EventName": "UpdateFunctionCode20150331v2", "CloudTrailEvent": event("alert/federated-user.json")},
        {"EventId": "2", "EventName": "DeleteFunction", "CloudTrailEvent": event("quiet/delete-function.json")}
    ], "NextToken": "abc"}).to_string();
    let envelopes = format!(
        "[{},{}]",
        event("eventbridge/alert/iam-user.json"),
        event("eventbridge/quiet/cicd-role.json")
    );
    for (input, expected) in [
        (log_file.clone(), (3, 2, 0)),
        (array, (3, 2, 0)),
        (lookup.clone(), (2, 1, 0)),
        (envelopes, (2, 1, 0)),
        (format!("{log_file}\n{lookup}\n"), (5, 3, 0)),
    ] {
        let output = cli(&["scan", "-"], input.as_bytes());
        assert_eq!(
            summary_counts(&output),
            expected,
            "{input}\n{}",
            stderr(&output)
        );
        assert_eq!(output.status.code(), Some(0));
        let gz = cli(&["scan"], &gzip(input.as_bytes()));
        assert_eq!(gz.stdout, output.stdout);
    }
}

#[test]
fn pretty_printed_records_one_after_another() {
    let pretty = [event("alert/iam-user.json"), event("alert/sso-user.json")]
        .map(|e| {
            serde_json::to_string_pretty(&serde_json::from_str::<serde_json::Value>(&e).unwrap())
                .unwrap()
        })
        .join("\n");
    let output = cli(&["scan"], pretty.as_bytes());
    assert_eq!(summary_counts(&output), (2, 2, 0), "{}", stderr(&output));
}

#[test]
fn directories_are_scanned_recursively_in_name_order_whatever_the_jobs() {
    let one = cli(&["scan", "-j", "1", "events"], b"");
    let two = cli(&["scan", "--jobs=2", "events"], b"");
    assert_eq!(one.status.code(), Some(0), "{}", stderr(&one));
    assert_eq!(one.stdout, two.stdout);
    let files = common::event_files("");
    let alerts = files
        .iter()
        .filter(|f| f.parent().unwrap().ends_with("alert"))
        .count() as u64;
    assert_eq!(summary_counts(&one), (files.len() as u64, alerts, 0));
}

#[test]
fn text_format_prints_the_human_rendering() {
    let output = cli(
        &["scan", "--format", "text", "events/alert/iam-user.json"],
        b"",
    );
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(
        text.starts_with(
            "[HIGH] User [john.developer] updated Lambda function code for [production-api]\n"
        ),
        "{text}"
    );
    assert!(text.contains("Runbook:"));
}

#[test]
fn explain_says_why_each_record_is_quiet() {
    let output = cli(
        &[
            "scan",
            "--explain",
            "events/quiet",
            "events/alert/iam-user.json",
        ],
        b"",
    );
    let err = stderr(&output);
    assert!(
        err.contains("events/quiet/cicd-role.json:1: quiet (not-a-person)"),
        "{err}"
    );
    assert!(
        err.contains("events/quiet/delete-function.json:1: quiet (other-api)"),
        "{err}"
    );
    assert!(
        err.contains("events/quiet/failed-call-access-denied.json:1: quiet (failed-call)"),
        "{err}"
    );
    assert!(
        err.contains("events/alert/iam-user.json:1: alert: User [john.developer]"),
        "{err}"
    );
}

#[test]
fn usage_errors_exit_2_and_help_exits_0() {
    for args in [
        &["scan", "--format", "xml"][..],
        &["scan", "--bogus"],
        &["frobnicate"],
        &[],
        &["scan", "-j", "0"],
    ] {
        let output = cli(args, b"");
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(stderr(&output).contains("lambda-code-watch: "), "{args:?}");
    }
    for args in [&["--help"][..], &["scan", "--help"]] {
        let output = cli(args, b"");
        assert_eq!(output.status.code(), Some(0));
        let help = String::from_utf8(output.stdout).unwrap();
        for needle in [
            "--format",
            "--explain",
            "Exit status",
            "stdin",
            "gzip",
            "lookup-events",
        ] {
            assert!(help.contains(needle), "help lacks {needle}");
        }
    }
}

#[test]
fn an_unreadable_path_is_reported_and_the_others_still_scanned() {
    let output = cli(
        &["scan", "no/such/file.json", "events/alert/iam-user.json"],
        b"",
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("no/such/file.json: "),
        "{}",
        stderr(&output)
    );
    assert_eq!(summary_counts(&output), (1, 1, 1));
}

#[test]
fn input_that_is_not_a_record_is_an_error_not_a_crash() {
    for input in [
        "42\n",
        "\"text\"\n",
        "[1, {\"eventName\": 1}]\n",
        "\u{0}\u{1}garbage\n",
        "{\"Records\": 5}\n",
    ] {
        let output = cli(&["scan"], input.as_bytes());
        assert_eq!(
            output.status.code(),
            Some(1),
            "{input:?}: {}",
            stderr(&output)
        );
        assert!(
            stderr(&output).contains("<stdin>:1: "),
            "{input:?}: {}",
            stderr(&output)
        );
    }
    let empty = cli(&["scan"], b"");
    assert_eq!(
        (empty.status.code(), summary_counts(&empty)),
        (Some(0), (0, 0, 0))
    );
}
