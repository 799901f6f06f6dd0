//! The Lambda handler end to end: the real binary under `cargo lambda watch`, publishing to SNS on
//! moto_server, with an SQS queue subscribed to see exactly what subscribers get.
//!
//! - every sample event (bare and EventBridge-wrapped): an alert event puts exactly one message in
//!   the queue, whose body is what `lambda-code-watch scan` prints for that event, with a safe
//!   Subject and filterable attributes; a quiet event puts none;
//! - SNS failing (500, throttling, hang-ups, stalls, refused connections): the invocation fails, never
//!   succeeds silently; a transient failure still delivers the alert exactly once;
//! - a topic in another region than the function's: published there;
//! - `ACCOUNT_NAMES`: the alert names its account in the document (as `scan --account-names`
//!   prints it), the Subject and the attributes;
//! - `ALERT_STDOUT=1`: the alert is written to stdout; a bad topic setting stops the start;
//! - the canary's own code change: quiet (`canary`), one `CanaryHeartbeat` metric line, no alert.
//!
//! Needs moto_server, cargo-lambda and python3 with boto3 (scripts/test installs them into .venv):
//! under `CI=true` their absence fails the tests, elsewhere it skips them with a message. The first
//! run builds the handler with the AWS SDK into `target/tmp/lambda-e2e-target` (minutes).

mod common;
mod support_lambda;

use lambda_code_watch::sink::sns_message::{self, MAX_PUBLISH_BYTES};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use support_lambda::{
    Fault, FaultProxy, HANDLER_BIN, Moto, Subscription, Tools, Watch, event_files, free_port,
    repo_dir, run_with_timeout, scan_output,
};

/// The attributes a subscriber can filter on, as SNS delivered them.
fn attribute(envelope: &Value, name: &str) -> Option<String> {
    let attribute = envelope.get("MessageAttributes")?.get(name)?;
    assert_eq!(attribute["Type"], "String", "{name}");
    attribute["Value"].as_str().map(str::to_owned)
}

/// Invokes with `file` and checks the one message it must put in the queue against `scan`.
/// Returns the SNS envelope.
fn assert_alert_delivered(
    watch: &mut Watch,
    moto: &Moto,
    subscription: &Subscription,
    file: &Path,
) -> Value {
    let name = file.display();
    let scanned = scan_output(file);
    assert_eq!(scanned.len(), 1, "{name}: scan should print one alert");
    let expected: Value = serde_json::from_str(&scanned[0]).expect("scan prints JSON");

    let invocation = watch.invoke_file(file);
    assert!(
        invocation.succeeded(),
        "{name}: invocation failed: {invocation:?}"
    );
    assert_eq!(invocation.body["verdict"], "alert", "{name}");
    assert_eq!(invocation.body["alert_title"], expected["title"], "{name}");

    let envelopes = moto.drain(subscription);
    assert_eq!(
        envelopes.len(),
        1,
        "{name}: exactly one message: {envelopes:#?}"
    );
    let envelope = envelopes.into_iter().next().unwrap();
    assert_eq!(
        envelope["MessageId"], invocation.body["message_id"],
        "{name}"
    );

    let title = expected["title"].as_str().expect("title");
    let subject = envelope["Subject"].as_str().expect("a Subject");
    assert_eq!(subject, sns_message::subject(title), "{name}");
    assert!(
        !subject.is_empty()
            && subject.len() <= 100
            && subject.bytes().all(|b| (0x20..0x7f).contains(&b)),
        "{name}: Subject not SNS-safe: {subject:?}"
    );

    assert_eq!(attribute(&envelope, "severity").as_deref(), Some("HIGH"));
    assert_eq!(
        attribute(&envelope, "rule_id").as_deref(),
        Some("AWS.Lambda.UpdateFunctionCode")
    );
    assert_eq!(
        attribute(&envelope, "account_id").as_deref(),
        expected["account_id"].as_str(),
        "{name}"
    );
    assert_eq!(
        attribute(&envelope, "region").as_deref(),
        expected["region"].as_str(),
        "{name}"
    );
    assert_eq!(
        attribute(&envelope, "actor_type").as_deref(),
        expected["actor_type"].as_str(),
        "{name}"
    );
    envelope
}

/// Sample events made hostile: a person's name with a line break, accents and an emoji, and a
/// 1 MiB user agent. Written to a temporary directory (not `events/`).
fn hostile_events(dir: &Path) -> (PathBuf, PathBuf) {
    let base: Value = serde_json::from_slice(
        &std::fs::read(repo_dir().join("events/alert/iam-user.json")).expect("iam-user sample"),
    )
    .expect("sample is JSON");
    assert_eq!(
        base["userIdentity"]["type"], "IAMUser",
        "sample changed shape"
    );

    let mut odd_name = base.clone();
    odd_name["userIdentity"]["userName"] = json!("jos\u{e9}\r\nSubject: forged \u{1f600}");
    odd_name["eventID"] = json!("e2e-odd-name");
    let odd_name_file = dir.join("odd-name.json");
    std::fs::write(&odd_name_file, odd_name.to_string()).expect("write event");

    let mut huge = base;
    huge["userAgent"] = json!(format!("aws-cli/2 {}", "A".repeat(1 << 20)));
    huge["eventID"] = json!("e2e-huge-user-agent");
    let huge_file = dir.join("huge-user-agent.json");
    std::fs::write(&huge_file, huge.to_string()).expect("write event");
    (odd_name_file, huge_file)
}

#[test]
fn every_sample_event_reaches_sns_exactly_as_scan_prints_it() {
    let Some(tools) = Tools::find("lambda_e2e") else {
        return;
    };
    let moto = Moto::start(&tools, "samples");
    let subscription = moto.topic_with_queue("lcw-samples");
    let mut watch = Watch::start(
        &tools,
        "samples",
        &[
            ("AWS_ENDPOINT_URL", &moto.endpoint),
            ("ALERT_TOPIC_ARN", &subscription.topic_arn),
        ],
    );

    let mut alert_files = event_files("alert");
    alert_files.extend(event_files("eventbridge/alert"));
    for file in &alert_files {
        let envelope = assert_alert_delivered(&mut watch, &moto, &subscription, file);
        let scanned = scan_output(file);
        assert_eq!(
            envelope["Message"].as_str(),
            Some(scanned[0].as_str()),
            "{}: the SQS body must carry the scan document byte for byte",
            file.display()
        );
    }

    let mut quiet_files = event_files("quiet");
    quiet_files.extend(event_files("eventbridge/quiet"));
    for file in &quiet_files {
        let name = file.display();
        assert!(
            scan_output(file).is_empty(),
            "{name}: scan should stay quiet"
        );
        let invocation = watch.invoke_file(file);
        assert!(invocation.succeeded(), "{name}: {invocation:?}");
        assert_eq!(invocation.body["verdict"], "quiet", "{name}");
        assert!(invocation.body["reason"].is_string(), "{name}: says why");
        assert!(invocation.body.get("message_id").is_none(), "{name}");
        assert_eq!(moto.drain(&subscription), Vec::<Value>::new(), "{name}");
    }

    let dir = tempfile::tempdir().expect("temporary directory");
    let (odd_name, huge) = hostile_events(dir.path());

    let envelope = assert_alert_delivered(&mut watch, &moto, &subscription, &odd_name);
    assert_eq!(
        envelope["Message"].as_str(),
        Some(scan_output(&odd_name)[0].as_str())
    );
    let subject = envelope["Subject"].as_str().unwrap();
    assert!(
        subject.contains("jos\\u{e9} Subject: forged \\u{1f600}"),
        "escaped, on one line: {subject}"
    );

    let envelope = assert_alert_delivered(&mut watch, &moto, &subscription, &huge);
    let message = envelope["Message"].as_str().unwrap();
    assert!(message.len() < MAX_PUBLISH_BYTES, "{} bytes", message.len());
    let published: Value = serde_json::from_str(message).expect("truncated, still JSON");
    let user_agent = published["context"]["userAgent"].as_str().unwrap();
    assert!(user_agent.starts_with("aws-cli/2 AAAA"), "keeps the start");
    assert!(user_agent.contains("…[truncated "), "says it was cut");
    let scanned: Value = serde_json::from_str(&scan_output(&huge)[0]).unwrap();
    let mut expected = scanned.clone();
    expected["context"]["userAgent"] = json!(user_agent);
    assert_eq!(published, expected, "only the oversized field differs");

    // The documented command, `cargo lambda invoke --data-file`, against the same emulator.
    let mut command = Command::new(&tools.cargo_lambda);
    command
        .current_dir(repo_dir())
        .args([
            "lambda",
            "invoke",
            HANDLER_BIN,
            "--invoke-address",
            "127.0.0.1",
        ])
        .args([
            "--invoke-port",
            &watch.port.to_string(),
            "--output-format",
            "json",
        ])
        .args(["--data-file", "events/eventbridge/alert/sso-user.json"])
        .env("PATH", &tools.path)
        .env("NO_COLOR", "1");
    let output = run_with_timeout(
        "cargo lambda invoke",
        command,
        support_lambda::INVOKE_TIMEOUT,
    );
    assert!(
        output.status.success(),
        "cargo lambda invoke: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary: Value = serde_json::from_slice(&output.stdout).expect("invoke prints JSON");
    assert_eq!(summary["verdict"], "alert");
    assert_eq!(moto.drain(&subscription).len(), 1);

    // One structured log line per invocation, with the event id, the verdict and the message id.
    let log = watch.output();
    let lines: Vec<Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l.get("verdict").is_some())
        .collect();
    let expected_lines = alert_files.len() + quiet_files.len() + 3;
    assert_eq!(lines.len(), expected_lines, "log:\n{log}");
    let huge_line = lines
        .iter()
        .find(|l| l["event_id"] == "e2e-huge-user-agent")
        .expect("the huge event's log line");
    assert_eq!(huge_line["verdict"], "alert");
    assert!(huge_line["message_id"].is_string());
    assert!(huge_line["truncated_bytes"].as_u64().unwrap() > 700_000);
    assert!(
        lines
            .iter()
            .any(|l| l["verdict"] == "quiet" && l["reason"].is_string())
    );
}

#[test]
fn sns_failures_fail_the_invocation_and_transient_ones_deliver_once() {
    let Some(tools) = Tools::find("lambda_e2e") else {
        return;
    };
    let moto = Moto::start(&tools, "faults");
    let subscription = moto.topic_with_queue("lcw-faults");
    let proxy = FaultProxy::start(moto.port);
    let mut watch = Watch::start(
        &tools,
        "faults",
        &[
            ("AWS_ENDPOINT_URL", &proxy.endpoint()),
            ("ALERT_TOPIC_ARN", &subscription.topic_arn),
        ],
    );
    let alert = repo_dir().join("events/eventbridge/alert/iam-user.json");
    let quiet = repo_dir().join("events/eventbridge/quiet/cicd-role.json");

    // Works through the proxy when nothing fails.
    assert_alert_delivered(&mut watch, &moto, &subscription, &alert);
    assert_eq!(proxy.take_counts(), (1, 1));

    // Transient: the SDK's retries get the alert through, once.
    for faults in [
        vec![Fault::ServerError, Fault::Throttling],
        vec![Fault::HangUp],
        vec![Fault::Throttling],
    ] {
        proxy.fail_next(&faults);
        assert_alert_delivered(&mut watch, &moto, &subscription, &alert);
        assert_eq!(
            proxy.take_counts(),
            (faults.len() + 1, 1),
            "{faults:?}: retried until it got through"
        );
    }

    // Persistent: every attempt fails, so the invocation fails (Lambda retries it, then the DLQ).
    for (fault, says) in [
        (Fault::ServerError, "InternalError"),
        (Fault::Throttling, "Throttling"),
        (Fault::HangUp, "dispatch failure"),
    ] {
        proxy.fail_always(Some(fault));
        let invocation = watch.invoke_file(&alert);
        assert!(!invocation.succeeded(), "{fault:?}: {invocation:?}");
        assert_eq!(
            invocation.error_type(),
            Some("AlertNotDelivered"),
            "{fault:?}"
        );
        let message = invocation.error_message();
        assert!(
            message.contains(&subscription.topic_arn),
            "{fault:?}: {message}"
        );
        assert!(message.contains(says), "{fault:?}: {message}");
        assert_eq!(
            proxy.take_counts(),
            (3, 0),
            "{fault:?}: three attempts, none reached SNS"
        );
        assert_eq!(moto.drain(&subscription), Vec::<Value>::new(), "{fault:?}");

        // A quiet event does not need SNS, so it still succeeds.
        let invocation = watch.invoke_file(&quiet);
        assert!(invocation.succeeded(), "{fault:?}: {invocation:?}");
        assert_eq!(proxy.take_counts(), (0, 0));
    }

    // Stalled: attempts time out, and the invocation fails within the SDK's bound instead of
    // hanging until Lambda's timeout (how many attempts fit depends on the backoff's jitter).
    proxy.fail_always(Some(Fault::Stall));
    let invocation = watch.invoke_file(&alert);
    assert_eq!(
        invocation.error_type(),
        Some("AlertNotDelivered"),
        "{invocation:?}"
    );
    assert!(
        invocation
            .error_message()
            .to_lowercase()
            .contains("timeout"),
        "{}",
        invocation.error_message()
    );
    let (requests, forwarded) = proxy.take_counts();
    assert!(requests >= 2 && forwarded == 0, "{requests} {forwarded}");
    assert_eq!(moto.drain(&subscription), Vec::<Value>::new());

    // And it recovers once SNS does.
    proxy.fail_always(None);
    assert_alert_delivered(&mut watch, &moto, &subscription, &alert);
}

#[test]
fn unreachable_sns_fails_the_invocation() {
    let Some(tools) = Tools::find("lambda_e2e") else {
        return;
    };
    let closed = format!("http://127.0.0.1:{}", free_port());
    let mut watch = Watch::start(
        &tools,
        "unreachable",
        &[
            ("AWS_ENDPOINT_URL", &closed),
            (
                "ALERT_TOPIC_ARN",
                "arn:aws:sns:us-east-1:123456789012:nobody-listens",
            ),
        ],
    );
    let invocation = watch.invoke_file(&repo_dir().join("events/alert/sso-user.json"));
    assert!(!invocation.succeeded(), "{invocation:?}");
    assert_eq!(invocation.error_type(), Some("AlertNotDelivered"));
    assert!(
        invocation.error_message().contains("nobody-listens"),
        "{}",
        invocation.error_message()
    );

    let invocation = watch.invoke_file(&repo_dir().join("events/quiet/delete-function.json"));
    assert!(invocation.succeeded(), "{invocation:?}");

    let invocation = watch.invoke(b"[\"not\", \"an event\"]");
    assert_eq!(invocation.error_type(), Some("UndecodableEvent"));
    assert!(
        invocation.error_message().contains("JSON object"),
        "{}",
        invocation.error_message()
    );
}

#[test]
fn a_topic_in_another_region_gets_the_alert() {
    let Some(tools) = Tools::find("lambda_e2e") else {
        return;
    };
    let moto = Moto::start(&tools, "cross-region");
    // moto keeps regions apart like SNS: a client signed for us-east-1 (the function's region)
    // would be told the eu-west-1 topic does not exist.
    let subscription = moto.topic_with_queue_in("lcw-cross-region", "eu-west-1");
    assert!(
        subscription.topic_arn.starts_with("arn:aws:sns:eu-west-1:"),
        "{}",
        subscription.topic_arn
    );
    let mut watch = Watch::start(
        &tools,
        "cross-region",
        &[
            ("AWS_ENDPOINT_URL", &moto.endpoint),
            ("AWS_REGION", "us-east-1"),
            ("ALERT_TOPIC_ARN", &subscription.topic_arn),
        ],
    );
    let file = repo_dir().join("events/eventbridge/alert/iam-user.json");
    let envelope = assert_alert_delivered(&mut watch, &moto, &subscription, &file);
    assert_eq!(
        envelope["TopicArn"].as_str(),
        Some(subscription.topic_arn.as_str())
    );
}

#[test]
fn account_names_reach_subscribers_as_scan_names_them() {
    let Some(tools) = Tools::find("lambda_e2e") else {
        return;
    };
    let names = r#"{"123456789012": "payments-prod", "111122223333": "sandbox"}"#;
    let moto = Moto::start(&tools, "account-names");
    let subscription = moto.topic_with_queue("lcw-account-names");
    let mut watch = Watch::start(
        &tools,
        "account-names",
        &[
            ("AWS_ENDPOINT_URL", &moto.endpoint),
            ("ALERT_TOPIC_ARN", &subscription.topic_arn),
            ("ACCOUNT_NAMES", names),
        ],
    );
    let dir = tempfile::tempdir().expect("a temporary directory");
    let names_file = dir.path().join("accounts.json");
    std::fs::write(&names_file, names).unwrap();
    let file = repo_dir().join("events/eventbridge/alert/iam-user.json");
    let output = Command::new(env!("CARGO_BIN_EXE_lambda-code-watch"))
        .arg("scan")
        .arg("--account-names")
        .arg(&names_file)
        .arg(&file)
        .output()
        .expect("run lambda-code-watch scan");
    assert!(output.status.success(), "{output:?}");
    let scanned = String::from_utf8(output.stdout).unwrap();
    let scanned = scanned.trim_end();

    let invocation = watch.invoke_file(&file);
    assert!(invocation.succeeded(), "{invocation:?}");
    let envelopes = moto.drain(&subscription);
    assert_eq!(envelopes.len(), 1, "{envelopes:#?}");
    let envelope = &envelopes[0];
    assert_eq!(
        envelope["Message"].as_str(),
        Some(scanned),
        "the function and scan --account-names publish the same document"
    );
    let document: Value = serde_json::from_str(scanned).unwrap();
    assert_eq!(document["account_name"], "payments-prod");
    assert_eq!(
        envelope["Subject"].as_str(),
        Some(
            "[payments-prod] User [john.developer] updated Lambda function code for [production-api]"
        )
    );
    assert_eq!(
        attribute(envelope, "account_name").as_deref(),
        Some("payments-prod")
    );
}

#[test]
fn with_alert_stdout_alerts_are_written_to_stdout() {
    let Some(tools) = Tools::find("lambda_e2e") else {
        return;
    };
    let mut watch = Watch::start(&tools, "stdout", &[("ALERT_STDOUT", "1")]);
    let file = repo_dir().join("events/eventbridge/alert/federated-user.json");
    let invocation = watch.invoke_file(&file);
    assert!(invocation.succeeded(), "{invocation:?}");
    assert_eq!(invocation.body["verdict"], "alert");
    assert!(invocation.body.get("message_id").is_none());
    let expected = &scan_output(&file)[0];
    let output = watch.output();
    assert!(
        output.lines().any(|line| line == expected),
        "the scan document should be a line of the function's output ({}):\n{output}",
        watch.log_path().display()
    );
}

/// The inline code of the stack's canary, as template.yaml deploys it; `None` (after saying so,
/// or failing under `CI=true`) when the Python packages that read the template are missing.
fn canary_code(tools: &Tools) -> Option<String> {
    let mut command = Command::new(&tools.python);
    command
        .arg(repo_dir().join("scripts/template-json.py"))
        .arg(repo_dir().join("template.yaml"));
    let output = run_with_timeout(
        "template-json.py",
        command,
        std::time::Duration::from_secs(120),
    );
    // template-json.py's exit code for a missing package (cfn-lint).
    if output.status.code() == Some(3) {
        let message = format!(
            "lambda_e2e: cannot read template.yaml: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{message} (CI=true: this test must run)");
        }
        eprintln!("\n*** SKIPPED {message}; run scripts/test, or put .venv/bin on PATH ***\n");
        return None;
    }
    assert!(
        output.status.success(),
        "template-json.py: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let template: Value = serde_json::from_slice(&output.stdout).expect("the template as JSON");
    let code = template["Resources"]["CanaryFunction"]["Properties"]["Code"]["ZipFile"]
        .as_str()
        .expect("CanaryFunction has inline code");
    Some(code.to_owned())
}

/// The CloudTrail record of the canary's call, as the detection function receives it.
fn canary_record(report: &Value, session_issuer: &str) -> Value {
    let role_name = session_issuer.rsplit('/').next().unwrap();
    json!({
        "version": "0",
        "id": "c4a1e0f2-0000-4000-8000-00000000c0de",
        "detail-type": "AWS API Call via CloudTrail",
        "source": "aws.lambda",
        "account": "123456789012",
        "time": "2026-12-01T00:30:02Z",
        "region": "us-east-1",
        "resources": [],
        "detail": {
            "eventVersion": "1.09",
            "userIdentity": {
                "type": "AssumedRole",
                "principalId": format!("AROACANARYEXAMPLE:{}", "lcw-canary"),
                "arn": format!("arn:aws:sts::123456789012:assumed-role/{role_name}/lcw-canary"),
                "accountId": "123456789012",
                "accessKeyId": "ASIACANARYEXAMPLE",
                "sessionContext": {
                    "sessionIssuer": {"type": "Role", "principalId": "AROACANARYEXAMPLE",
                        "arn": session_issuer, "accountId": "123456789012", "userName": role_name},
                    "attributes": {"creationDate": "2026-12-01T00:30:00Z", "mfaAuthenticated": "false"}
                }
            },
            "eventTime": "2026-12-01T00:30:01Z",
            "eventSource": "lambda.amazonaws.com",
            "eventName": "UpdateFunctionCode20150331v2",
            "awsRegion": "us-east-1",
            "sourceIPAddress": "203.0.113.30",
            "userAgent": "Boto3/1.40.0 md/Botocore#1.40.0 ua/2.1 os/linux lang/python#3.13 exec-env/AWS_Lambda_python3.13",
            "requestParameters": {"functionName": report["function_name"], "publish": false},
            "responseElements": {
                "functionName": report["function_name"],
                "functionArn": report["function_arn"],
                "codeSha256": report["code_sha256_after"],
                "version": "$LATEST"
            },
            "eventID": "c4a1e0f2-1111-4222-8333-44445555c0de",
            "readOnly": false,
            "eventType": "AwsApiCall",
            "managementEvent": true,
            "recipientAccountId": "123456789012"
        }
    })
}

/// The CloudWatch EMF documents among the function's output lines that carry a canary heartbeat
/// (each invocation also writes one document of its counts, which this leaves out).
fn heartbeat_lines(output: &str) -> Vec<Value> {
    output
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line.get("_aws").is_some() && line.get("CanaryHeartbeat").is_some())
        .collect()
}

#[test]
fn the_canary_changes_code_and_the_function_records_a_heartbeat() {
    let Some(tools) = Tools::find("lambda_e2e") else {
        return;
    };
    let Some(canary) = canary_code(&tools) else {
        return;
    };
    let moto = Moto::start(&tools, "canary");

    // 1. The canary's own code, run against moto's Lambda, really replaces the target's code.
    let dir = tempfile::tempdir().expect("temporary directory");
    let code = dir.path().join("index.py");
    std::fs::write(&code, canary).expect("write the canary code");
    let mut command = Command::new(&tools.python);
    command
        .arg(repo_dir().join("scripts/canary-check.py"))
        .arg("--code")
        .arg(&code)
        .args(["--endpoint", &moto.endpoint]);
    let output = run_with_timeout("canary-check.py", command, support_lambda::INVOKE_TIMEOUT);
    assert!(
        output.status.success(),
        "the canary failed against moto: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&output.stdout).expect("canary-check prints JSON");
    assert_eq!(
        report["calls"],
        json!(["lambda:UpdateFunctionCode"]),
        "the canary makes exactly one call: {report}"
    );
    assert_ne!(
        report["code_sha256_before"], report["code_sha256_after"],
        "{report}"
    );
    assert_eq!(
        report["code_sha256_after"], report["expected_code_sha256"],
        "{report}"
    );

    // 2. The record of that call, made with the canary's role, is a heartbeat, not an alert.
    let canary_role = report["role_arn"].as_str().expect("role_arn");
    let subscription = moto.topic_with_queue("lcw-canary");
    let mut watch = Watch::start(
        &tools,
        "canary",
        &[
            ("AWS_ENDPOINT_URL", &moto.endpoint),
            ("ALERT_TOPIC_ARN", &subscription.topic_arn),
            ("CANARY_ROLE_ARN", canary_role),
            (
                "CANARY_TARGET_FUNCTION",
                report["function_name"].as_str().expect("function_name"),
            ),
        ],
    );
    let event = canary_record(&report, canary_role);
    let invocation = watch.invoke(event.to_string().as_bytes());
    assert!(invocation.succeeded(), "{invocation:?}");
    assert_eq!(invocation.body["verdict"], "quiet", "{invocation:?}");
    assert_eq!(invocation.body["reason"], "canary", "{invocation:?}");
    assert_eq!(moto.drain(&subscription), Vec::<Value>::new(), "no alert");

    let output = watch.output();
    let heartbeats = heartbeat_lines(&output);
    assert_eq!(heartbeats.len(), 1, "exactly one heartbeat:\n{output}");
    let heartbeat = &heartbeats[0];
    let metrics = &heartbeat["_aws"]["CloudWatchMetrics"][0];
    assert_eq!(metrics["Namespace"], "LambdaCodeWatch");
    assert_eq!(metrics["Dimensions"], json!([["FunctionName"]]));
    assert_eq!(
        metrics["Metrics"],
        json!([{"Name": "CanaryHeartbeat", "Unit": "Count"}])
    );
    assert_eq!(heartbeat["CanaryHeartbeat"], 1);
    assert!(heartbeat["_aws"]["Timestamp"].is_u64());
    // cargo-lambda names the function after the binary, as Lambda sets AWS_LAMBDA_FUNCTION_NAME.
    assert_eq!(heartbeat["FunctionName"], HANDLER_BIN, "{heartbeat}");

    // 3. The same call by another role is judged by the rule, and records no heartbeat.
    let impostor = canary_record(
        &report,
        "arn:aws:iam::123456789012:role/lcw-canary-role-copy",
    );
    let invocation = watch.invoke(impostor.to_string().as_bytes());
    assert!(invocation.succeeded(), "{invocation:?}");
    assert_eq!(invocation.body["reason"], "not-a-person", "{invocation:?}");
    // And the canary's role changing another function's code is no heartbeat either.
    let mut elsewhere = canary_record(&report, canary_role);
    elsewhere["detail"]["requestParameters"]["functionName"] = json!("production-api");
    elsewhere["detail"]["responseElements"]["functionName"] = json!("production-api");
    let invocation = watch.invoke(elsewhere.to_string().as_bytes());
    assert_eq!(invocation.body["reason"], "not-a-person", "{invocation:?}");
    assert_eq!(
        heartbeat_lines(&watch.output()).len(),
        1,
        "still one heartbeat"
    );
}
