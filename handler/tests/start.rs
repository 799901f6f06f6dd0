//! The function's start: settings are checked before the runtime is contacted, and a bad one stops
//! the process with a message naming the variable (so a misconfigured deployment fails loudly).

use std::process::Command;

#[test]
fn a_topic_that_is_not_an_sns_arn_stops_the_start() {
    let output = Command::new(env!("CARGO_BIN_EXE_lambda-code-watch-handler"))
        .env(
            "ALERT_TOPIC_ARN",
            "arn:aws:sqs:us-east-1:123456789012:alerts",
        )
        .env_remove("AWS_LAMBDA_RUNTIME_API")
        .output()
        .expect("run the handler binary");
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("ALERT_TOPIC_ARN"), "{stderr}");
    assert!(
        stderr.contains("arn:aws:sqs:us-east-1:123456789012:alerts"),
        "{stderr}"
    );
    assert!(stderr.contains("not an SNS topic ARN"), "{stderr}");
}

/// The handler binary with a clean environment: only `vars`, no runtime API to talk to.
fn start_with(vars: &[(&str, &str)]) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_lambda-code-watch-handler"));
    command
        .env_remove("ALERT_TOPIC_ARN")
        .env_remove("ALERT_STDOUT")
        .env_remove("ACCOUNT_NAMES")
        .env_remove("POLICY_FILE")
        .env_remove("POLICY_PARAMETER")
        .env_remove("DEDUP_TABLE")
        .env_remove("DEDUP_WINDOW_MINUTES")
        .env_remove("TRAIL_BUCKET")
        .env_remove("TRAIL_PREFIX")
        .env_remove("AWS_LAMBDA_RUNTIME_API");
    for (name, value) in vars {
        command.env(name, value);
    }
    command.output().expect("run the handler binary")
}

#[test]
fn without_a_topic_the_function_refuses_to_start() {
    // Unset, or blanked by someone who wants the detection quiet: either way no alert could reach
    // anyone, so the function must not report success for them.
    for vars in [&[][..], &[("ALERT_TOPIC_ARN", "")][..]] {
        let output = start_with(vars);
        assert_eq!(output.status.code(), Some(2), "{vars:?}: {output:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("ALERT_TOPIC_ARN"), "{stderr}");
        assert!(stderr.contains("delivered to nobody"), "{stderr}");
        assert!(stderr.contains("ALERT_STDOUT=1"), "says the fix: {stderr}");
    }
}

#[test]
fn stdout_delivery_must_be_asked_for_exactly() {
    let output = start_with(&[("ALERT_STDOUT", "yes")]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("ALERT_STDOUT"), "{stderr}");

    // Asked for properly, the settings pass and the process goes on to the runtime (which is
    // absent here, so it fails differently: not with the settings' exit code 2).
    let output = start_with(&[("ALERT_STDOUT", "1")]);
    assert_ne!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("invalid ALERT"), "{stderr}");
}

#[test]
fn account_names_that_do_not_parse_stop_the_start() {
    let topic = (
        "ALERT_TOPIC_ARN",
        "arn:aws:sns:us-east-1:123456789012:alerts",
    );
    for (bad, says) in [
        (
            r#"{"payments-prod": "111122223333"}"#,
            "not a 12-digit AWS account ID",
        ),
        (r#"{"111122223333": "payments-prod""#, "EOF"),
        (r#"["111122223333", "payments-prod"]"#, "a JSON object"),
    ] {
        let output = start_with(&[topic, ("ACCOUNT_NAMES", bad)]);
        assert_eq!(output.status.code(), Some(2), "{bad}: {output:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("invalid ACCOUNT_NAMES"), "{stderr}");
        assert!(stderr.contains(says), "{bad}: {stderr}");
    }
    // A good mapping passes the settings; the start then fails only for want of a runtime.
    let output = start_with(&[
        ("ALERT_STDOUT", "1"),
        ("ACCOUNT_NAMES", r#"{"111122223333": "payments-prod"}"#),
    ]);
    assert_ne!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("invalid ACCOUNT_NAMES"), "{stderr}");
}

#[test]
fn a_bad_policy_stops_the_start_naming_file_line_and_key() {
    let dir = std::env::temp_dir().join(format!("lcw-start-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let policy = dir.join("policy.toml");
    std::fs::write(
        &policy,
        "[[suppress]]\nreason = \"sandbox\"\nfunctions = [\"sandbox-[\"]\n",
    )
    .unwrap();
    let path = policy.to_string_lossy().into_owned();
    let output = start_with(&[("ALERT_STDOUT", "1"), ("POLICY_FILE", &path)]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "invalid policy: {path}:3: suppress[1].functions: invalid glob"
        )),
        "{stderr}"
    );

    // Missing: the same.
    let output = start_with(&[
        ("ALERT_STDOUT", "1"),
        ("POLICY_FILE", "/no/such/policy.toml"),
    ]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("/no/such/policy.toml"));

    // Good: the process goes on to the runtime (absent here), not exit code 2.
    std::fs::write(&policy, "[people]\nroot = true\n").unwrap();
    let output = start_with(&[("ALERT_STDOUT", "1"), ("POLICY_FILE", &path)]);
    assert_ne!(output.status.code(), Some(2), "{output:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_dedup_settings_stop_the_start_naming_the_variable() {
    for (variable, value) in [
        ("DEDUP_WINDOW_MINUTES", "an hour"),
        ("DEDUP_TABLE", "no spaces allowed"),
    ] {
        let output = start_with(&[("ALERT_STDOUT", "1"), (variable, value)]);
        assert_eq!(output.status.code(), Some(2), "{variable}: {output:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(variable) && stderr.contains(value),
            "{stderr}"
        );
    }
}

#[test]
fn bad_trail_settings_stop_the_start_naming_the_variable() {
    for (vars, variable, value) in [
        (
            &[("TRAIL_BUCKET", "Org_Trail_Logs")][..],
            "TRAIL_BUCKET",
            "Org_Trail_Logs",
        ),
        (
            &[
                ("TRAIL_BUCKET", "org-trail-logs"),
                ("TRAIL_PREFIX", "central/AWSLogs/o-a1b2c3d4e5"),
            ][..],
            "TRAIL_PREFIX",
            "central/AWSLogs/o-a1b2c3d4e5",
        ),
    ] {
        let mut all = vec![("ALERT_STDOUT", "1")];
        all.extend_from_slice(vars);
        let output = start_with(&all);
        assert_eq!(output.status.code(), Some(2), "{variable}: {output:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(variable) && stderr.contains(value),
            "{stderr}"
        );
    }
}
