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
fn an_input_without_records_is_warned_about() {
    // What `aws cloudtrail lookup-events ... | lambda-code-watch scan` gets when `aws` failed.
    for stdin in [&b""[..], b"\n  \n", b"[]", b"{\"Events\": []}"] {
        let output = cli(&["scan"], stdin);
        assert_eq!(output.status.code(), Some(0), "{stdin:?}");
        let err = stderr(&output);
        assert!(
            err.contains("<stdin>: warning: no CloudTrail records in this input"),
            "{stdin:?}: {err}"
        );
    }
    // Records, even quiet ones, are no reason to warn.
    let output = cli(&["scan", "events/quiet/cicd-role.json"], b"");
    assert!(!stderr(&output).contains("warning"), "{}", stderr(&output));
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
fn a_line_cut_mid_write_never_hides_the_alert_on_the_next_line() {
    let input = format!(
        "{}\n{}\n{}\n",
        event("quiet/cicd-role.json"),
        r#"{"eventSource": "lambda.amazonaws.com", "eventName": "#,
        event("alert/iam-user.json"),
    );
    let output = cli(&["scan"], input.as_bytes());
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(err.lines().any(|l| l.starts_with("<stdin>:2: ")), "{err}");
    assert_eq!(summary_counts(&output), (2, 1, 1), "{err}");
    assert_eq!(stdout_lines(&output)[0]["actor"], "john.developer");
}

/// Starts the CLI with piped stdio; a guard kills it (and what it started) if the test fails.
struct Running {
    child: Option<std::process::Child>,
}

impl Running {
    fn start(args: &[&str]) -> Running {
        use std::os::unix::process::CommandExt;
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_lambda-code-watch"))
            .args(args)
            .current_dir(repo_dir())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap();
        Running { child: Some(child) }
    }

    fn child(&mut self) -> &mut std::process::Child {
        self.child.as_mut().unwrap()
    }

    /// Waits at most `seconds` for the CLI to exit; a scan that hangs fails the test.
    fn finish(mut self, seconds: u64) -> std::process::Output {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
        while self.child().try_wait().unwrap().is_none() {
            assert!(
                std::time::Instant::now() < deadline,
                "the scan still runs after {seconds} s"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        self.child.take().unwrap().wait_with_output().unwrap()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            common::kill_group(child);
        }
    }
}

fn mkfifo(path: &std::path::Path) {
    use std::os::unix::ffi::OsStrExt;
    let name = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path; mkfifo has no other preconditions.
    assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o600) }, 0, "mkfifo");
}

#[test]
fn special_files_in_a_directory_are_skipped_with_a_note() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.json"), event("alert/iam-user.json")).unwrap();
    mkfifo(&dir.path().join("b.fifo"));
    std::os::unix::fs::symlink("/dev/zero", dir.path().join("c.json")).unwrap();
    std::fs::write(dir.path().join("d.json"), event("alert/sso-user.json")).unwrap();
    for jobs in ["1", "2"] {
        let scan = Running::start(&["scan", "-j", jobs, dir.path().to_str().unwrap()]);
        let output = scan.finish(30);
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(0), "-j {jobs}: {err}");
        assert_eq!(summary_counts(&output), (2, 2, 0), "-j {jobs}: {err}");
        for skipped in ["b.fifo", "c.json"] {
            assert!(
                err.lines()
                    .any(|line| line.contains(skipped) && line.contains("not a regular file")),
                "-j {jobs}: {err}"
            );
        }
    }
}

#[test]
fn a_special_file_named_on_the_command_line_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("trail.fifo");
    mkfifo(&fifo);
    let scan = Running::start(&["scan", fifo.to_str().unwrap(), "/dev/null"]);
    let mut writer = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    writeln!(writer, "{}", event("alert/iam-user.json")).unwrap();
    drop(writer);
    let output = scan.finish(30);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(summary_counts(&output), (1, 1, 0));
}

/// An alert is written out as soon as it is found, even while the scan goes on waiting for
/// input: with one job and with several (the alert in a file before a stdin that stays open).
#[test]
fn each_alert_is_written_out_as_soon_as_it_is_final() {
    use std::io::BufRead;
    for (args, feed) in [
        (vec!["scan", "-j", "1"], true),
        (
            vec!["scan", "-j", "2", "events/alert/iam-user.json", "-"],
            false,
        ),
    ] {
        let mut scan = Running::start(&args);
        let mut stdin = scan.child().stdin.take().unwrap();
        if feed {
            writeln!(stdin, "{}", event("alert/iam-user.json")).unwrap();
            stdin.flush().unwrap();
        }
        let stdout = scan.child().stdout.take().unwrap();
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = std::io::BufReader::new(stdout).read_line(&mut line);
            let _ = sender.send(line);
        });
        let line = receiver
            .recv_timeout(std::time::Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("{args:?}: no alert written while the input stays open"));
        let alert: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(alert["actor"], "john.developer", "{args:?}");
        drop(stdin);
        assert_eq!(scan.finish(30).status.code(), Some(0), "{args:?}");
    }
}

/// Runs the CLI with `args`, output discarded, and returns its exit code and its own peak
/// resident memory in MiB (`wait4`'s `ru_maxrss`, for that child alone).
// The child is reaped by `wait4`, which std's `wait` cannot do: it drops `ru_maxrss`.
#[allow(clippy::zombie_processes)]
fn exit_code_and_peak_rss_mib(args: &[&str]) -> (i32, i64) {
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_lambda-code-watch"))
        .args(args)
        .current_dir(repo_dir())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut status = 0;
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: waits for our own child by pid; wait4 writes a complete `rusage`.
    let usage = unsafe {
        assert_eq!(
            libc::wait4(child.id() as i32, &mut status, 0, usage.as_mut_ptr()),
            child.id() as i32
        );
        usage.assume_init()
    };
    assert!(libc::WIFEXITED(status), "the scan did not exit normally");
    (libc::WEXITSTATUS(status), usage.ru_maxrss / 1024)
}

#[test]
fn a_parallel_scan_of_many_alerts_stays_in_bounded_memory() {
    // 25,000 alerts (about 60 MB of output) from a small gzip file, twice: with two jobs the
    // second copy is scanned while the first is written, and neither output may be held whole.
    let line = event("alert/iam-user.json").into_bytes();
    let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
    for _ in 0..25_000 {
        encoder.write_all(&line).unwrap();
        encoder.write_all(b"\n").unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alerts.json.gz");
    std::fs::write(&path, encoder.finish().unwrap()).unwrap();
    let path = path.to_str().unwrap();
    let (code, peak_mib) = exit_code_and_peak_rss_mib(&["scan", "-j", "2", path, path]);
    assert_eq!(code, 0);
    assert!(peak_mib < 64, "scan -j 2 peaked at {peak_mib} MiB");
}

#[test]
fn gzip_input_that_inflates_past_the_limit_is_an_error_after_its_records() {
    let mut data = event("alert/iam-user.json").into_bytes();
    data.push(b'\n');
    data.extend(std::iter::repeat_n(b' ', 1 << 20));
    data.extend_from_slice(event("alert/sso-user.json").as_bytes());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bomb.json.gz");
    std::fs::write(&path, gzip(&data)).unwrap();
    let path = path.to_str().unwrap();
    let output = cli(&["scan", "--max-inflated-size", "64K", path], b"");
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{err}");
    assert_eq!(summary_counts(&output), (1, 1, 1), "{err}");
    assert!(
        err.contains("bomb.json.gz: stopped after 65536 bytes"),
        "{err}"
    );
    assert!(
        err.contains("more than 64 KiB (--max-inflated-size)"),
        "{err}"
    );
    assert_eq!(stdout_lines(&output)[0]["actor"], "john.developer");
    // Under the default limit the same file is read whole.
    assert_eq!(summary_counts(&cli(&["scan", path], b"")), (2, 2, 0));
    for bad in ["0", "lots", "-1"] {
        let output = cli(&["scan", "--max-inflated-size", bad, path], b"");
        assert_eq!(output.status.code(), Some(2), "{bad}: {}", stderr(&output));
    }
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
