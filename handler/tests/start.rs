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
