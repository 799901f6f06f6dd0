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
    assert_eq!(
        actors,
        [
            "john.developer",
            "bob.ross",
            "federated session \"federated-user\""
        ]
    );
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
    // For a caller that is not a person, the role behind it, so a responder can confirm it
    // really is a pipeline.
    assert!(
        err.contains("caller=arn:aws:iam::123456789012:role/tester"),
        "{err}"
    );
}

#[test]
fn record_text_cannot_forge_a_line_in_explain_or_error_output() {
    // A crafted eventName tries to print a line that looks like a verdict, and to clear the
    // terminal; so does a file name, on an error line.
    let forged = "X\n<stdin>:9: alert: User [ceo] updated Lambda function code for [payroll]\u{1b}[2J\u{202e}";
    let record = serde_json::json!({"eventSource": "lambda.amazonaws.com", "eventName": forged,
                                    "eventID": "e1", "userIdentity": {"type": forged}});
    let output = cli(&["scan", "--explain"], format!("{record}\n").as_bytes());
    let err = stderr(&output);
    assert!(
        err.lines().all(|l| !l.starts_with("<stdin>:9:")),
        "a forged line got through:\n{err}"
    );
    assert!(!err.contains('\u{1b}'), "{err}");
    assert!(err.contains(r"eventName=X\n<stdin>:9: alert"), "{err}");
    assert_eq!(summary_counts(&output), (1, 0, 0));

    let dir = tempfile::tempdir().unwrap();
    let name = "trail.json\n<stdin>:9: alert: forged";
    std::fs::write(dir.path().join(name), b"{not json\n").unwrap();
    let output = cli(&["scan", dir.path().to_str().unwrap()], b"");
    let err = stderr(&output);
    assert!(
        err.lines().all(|l| !l.starts_with("<stdin>:9:")),
        "a forged line got through:\n{err}"
    );
    assert!(
        err.contains(r"trail.json\n<stdin>:9: alert: forged:1: "),
        "{err}"
    );
}

/// Peak resident memory of the children this process waited for, in KiB (Linux: `ru_maxrss`).
fn children_peak_rss_kib() -> i64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a complete `rusage` into the pointer it is given.
    let usage = unsafe {
        assert_eq!(
            libc::getrusage(libc::RUSAGE_CHILDREN, usage.as_mut_ptr()),
            0
        );
        usage.assume_init()
    };
    usage.ru_maxrss
}

#[test]
fn explain_streams_in_bounded_memory() {
    // 80 MB of records in a small gzip file: explaining them must not read them into memory.
    let line = event("quiet/cicd-role.json").into_bytes();
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    let mut written = 0;
    while written < 80 << 20 {
        encoder.write_all(&line).unwrap();
        encoder.write_all(b"\n").unwrap();
        written += line.len() + 1;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.json.gz");
    std::fs::write(&path, encoder.finish().unwrap()).unwrap();
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_lambda-code-watch"))
        .args(["scan", "--explain", path.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    // Only this test's children run in this process (each test binary is its own process, and
    // this file's other tests use far less), so the peak is this scan's or lower.
    let peak_mib = children_peak_rss_kib() / 1024;
    assert!(peak_mib < 64, "scan --explain peaked at {peak_mib} MiB");
}

#[test]
fn a_closed_output_stops_the_scan() {
    // `scan | head -1`: once the reader is gone, scan stops reading its input instead of
    // decoding everything.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_lambda-code-watch"))
        .args(["scan", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let alert = event("alert/iam-user.json") + "\n";
    let reader = std::thread::spawn(move || {
        let mut first = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut first).unwrap();
        first // the read end closes here
    });
    let mut sent = 0;
    let limit = 100_000;
    while sent < limit {
        if stdin.write_all(alert.as_bytes()).is_err() {
            break;
        }
        sent += 1;
    }
    drop(stdin);
    let first = reader.join().unwrap();
    assert!(first.contains("john.developer"), "{first}");
    child.wait().unwrap();
    assert!(
        sent < limit,
        "scan read all {limit} records after its output was closed"
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
        &["sql"],
        &["sql", "--dialect", "mysql"],
        &["sql", "--dialect", "athena", "--table", "x; DROP TABLE y"],
    ] {
        let output = cli(args, b"");
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(stderr(&output).contains("lambda-code-watch: "), "{args:?}");
    }
    let output = cli(&["--help"], b"");
    assert_eq!(output.status.code(), Some(0));
    let help = String::from_utf8(output.stdout).unwrap();
    for needle in ["scan", "sql", "UpdateFunctionCode"] {
        assert!(help.contains(needle), "help lacks {needle}");
    }
    for args in [&["scan", "--help"][..], &["help", "scan"]] {
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
            "Examples:",
        ] {
            assert!(help.contains(needle), "{args:?} help lacks {needle}");
        }
    }
}

#[test]
fn sql_prints_the_rule_for_each_dialect() {
    for (dialect, needle) in [
        (
            "athena",
            "useridentity.sessioncontext.sessionissuer.username",
        ),
        (
            "cloudtrail-lake",
            "userIdentity.sessionContext.sessionIssuer.userName",
        ),
        ("security-lake", "api.operation"),
    ] {
        let output = cli(&["sql", "--dialect", dialect], b"");
        assert_eq!(
            output.status.code(),
            Some(0),
            "{dialect}: {}",
            stderr(&output)
        );
        let query = String::from_utf8(output.stdout).unwrap();
        assert!(query.contains(needle), "{dialect}: {query}");
        assert!(query.contains("UpdateFunctionCode"), "{dialect}: {query}");
    }
    let output = cli(
        &[
            "sql",
            "--dialect",
            "athena",
            "--table",
            "security.trail_logs",
        ],
        b"",
    );
    assert!(
        String::from_utf8(output.stdout)
            .unwrap()
            .contains("security.trail_logs")
    );
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

#[test]
fn account_names_from_a_file_name_the_account_in_every_alert() {
    let dir = tempfile::tempdir().unwrap();
    let names = dir.path().join("accounts.json");
    std::fs::write(
        &names,
        r#"{"123456789012": "payments-prod", "111122223333": "sandbox"}"#,
    )
    .unwrap();
    let names = names.to_str().unwrap();
    let output = cli(&["scan", "--account-names", names, "events/alert"], b"");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let alerts = stdout_lines(&output);
    assert_eq!(alerts.len(), 5);
    for alert in &alerts {
        let expected = match alert["account_id"].as_str() {
            Some("123456789012") => "payments-prod",
            Some("111122223333") => "sandbox",
            other => panic!("unexpected account {other:?}"),
        };
        assert_eq!(alert["account_name"], expected, "{alert}");
    }
    let text = cli(
        &[
            "scan",
            "--format",
            "text",
            "--account-names",
            names,
            "events/alert/iam-user.json",
        ],
        b"",
    );
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(
        text.contains("Where:  account 123456789012 (payments-prod), region us-west-2"),
        "{text}"
    );
    // Without the flag the same alerts carry no name.
    let plain = stdout_lines(&cli(&["scan", "events/alert"], b""));
    assert!(plain.iter().all(|a| a["account_name"].is_null()));
}

#[test]
fn unusable_account_names_are_a_usage_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("accounts.json");
    std::fs::write(&bad, r#"{"payments-prod": "123456789012"}"#).unwrap();
    let missing = dir.path().join("missing.json");
    for (path, says) in [
        (&bad, "\"payments-prod\" is not a 12-digit AWS account ID"),
        (&missing, "No such file"),
    ] {
        let path = path.to_str().unwrap();
        let output = cli(
            &[
                "scan",
                "--account-names",
                path,
                "events/alert/iam-user.json",
            ],
            b"",
        );
        assert_eq!(output.status.code(), Some(2), "{path}");
        let err = stderr(&output);
        assert!(err.contains(&format!("--account-names {path}")), "{err}");
        assert!(err.contains(says), "{err}");
        assert!(
            output.stdout.is_empty(),
            "nothing scanned with a bad mapping"
        );
    }
}
