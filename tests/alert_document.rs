//! The alert document has every field a responder and a SIEM need, for each kind of person.

mod common;

use common::repo_dir;
use lambda_code_watch::{AccountNames, Alert, Detector};
use serde_json::Value;

/// The alert the detector makes of `bytes`, which must alert.
fn alert_of(bytes: &[u8]) -> Alert {
    Detector::default()
        .assess_json(bytes)
        .unwrap()
        .alert()
        .expect("an alert event")
        .clone()
}

fn alert(event: &str) -> Value {
    let bytes = std::fs::read(repo_dir().join("events").join(event)).unwrap();
    let json = alert_of(&bytes).to_json();
    assert!(!json.contains('\n'), "one line");
    serde_json::from_str(&json).unwrap()
}

fn assert_common_fields(a: &Value) {
    assert_eq!(a["rule_id"], "AWS.Lambda.UpdateFunctionCode");
    assert_eq!(a["rule_name"], "Lambda Code Updated by User");
    assert_eq!(a["severity"], "HIGH");
    assert_eq!(a["status"], "EXPERIMENTAL");
    assert_eq!(a["dedup_period_minutes"], 60);
    assert_eq!(
        a["dedup_key"],
        format!(
            "AWS.Lambda.UpdateFunctionCode:{}",
            a["title"].as_str().unwrap()
        )
    );
    assert!(
        a["runbook"]
            .as_str()
            .unwrap()
            .contains("Revert Lambda function code to previous version")
    );
    assert!(
        a["description"]
            .as_str()
            .unwrap()
            .starts_with("Detects when Lambda function code is updated")
    );
    assert_eq!(
        a["reference"],
        "https://stratus-red-team.cloud/attack-techniques/AWS/aws.persistence.lambda-overwrite-code/"
    );
    let tactics: Vec<(&str, &str)> = a["mitre_attack"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            assert_eq!(m["technique_id"], "T1078");
            assert_eq!(m["technique"], "Valid Accounts");
            (
                m["tactic_id"].as_str().unwrap(),
                m["tactic"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        tactics,
        [
            ("TA0001", "Initial Access"),
            ("TA0003", "Persistence"),
            ("TA0004", "Privilege Escalation"),
            ("TA0005", "Defense Evasion")
        ]
    );
    assert!(
        !a.to_string().contains("TA0007"),
        "TA0007 is Discovery, not a tactic of T1078"
    );
    for key in [
        "event_id",
        "event_time",
        "account_id",
        "region",
        "function_name",
        "actor",
        "title",
    ] {
        assert!(a[key].is_string(), "{key} missing: {a}");
    }
    let c = &a["context"];
    for key in [
        "eventName",
        "eventSource",
        "awsRegion",
        "recipientAccountId",
        "sourceIPAddress",
        "userAgent",
        "actor_user",
        "functionName",
        "userIdentityType",
        "userIdentityArn",
        "accessKeyId",
    ] {
        assert!(c[key].is_string(), "context.{key} missing: {c}");
    }
    assert!(c["userIdentity"].is_object());
    for key in [
        "mfaAuthenticated",
        "sessionCredentialFromConsole",
        "invokedBy",
        "requestParameters",
    ] {
        assert!(
            c.get(key).is_some(),
            "context.{key} missing (null when not recorded)"
        );
    }
    assert_eq!(c["actor_user"], a["actor"]);
    assert_eq!(c["functionName"], a["function_name"]);
    assert_eq!(
        a["title"],
        format!(
            "User [{}] updated Lambda function code for [{}]",
            a["actor"].as_str().unwrap(),
            a["function_name"].as_str().unwrap()
        )
    );
}

#[test]
fn iam_user_alert() {
    let a = alert("alert/iam-user.json");
    assert_common_fields(&a);
    assert_eq!(a["actor"], "john.developer");
    assert_eq!(a["actor_type"], "IAMUser");
    assert_eq!(a["actor_issuer"], Value::Null);
    assert_eq!(a["function_name"], "production-api");
    assert_eq!(a["context"]["accessKeyId"], "AKIAI123456789EXAMPLE");
    assert_eq!(a["account_id"], "123456789012");
    assert_eq!(a["region"], "us-west-2");
}

#[test]
fn sso_user_alert_names_the_person_and_keeps_the_permission_set() {
    let a = alert("alert/sso-user.json");
    assert_common_fields(&a);
    assert_eq!(a["actor"], "bob.ross");
    assert_eq!(a["actor_type"], "SSOUser");
    assert!(
        a["actor_issuer"]
            .as_str()
            .unwrap()
            .ends_with("AWSReservedSSO_DevAdmin_abc123")
    );
    assert_eq!(a["context"]["mfaAuthenticated"], false);
    assert_eq!(
        a["context"]["userIdentity"]["sessionContext"]["sessionIssuer"]["userName"],
        "AWSReservedSSO_DevAdmin_abc123"
    );
}

#[test]
fn federated_user_alert() {
    // The rule card's federated user has no issuer on record: only its caller-chosen name.
    let a = alert("alert/federated-user.json");
    assert_common_fields(&a);
    assert_eq!(a["actor"], "federated session \"federated-user\"");
    assert_eq!(a["actor_type"], "FederatedUser");
    assert_eq!(a["actor_session_name"], "federated-user");
}

#[test]
fn a_federated_session_is_named_by_the_iam_user_that_issued_it() {
    let a = alert("alert/federated-session-named-by-caller.json");
    assert_common_fields(&a);
    assert_eq!(
        a["title"],
        "User [mallory] updated Lambda function code for [payments-api]"
    );
    assert_eq!(a["actor"], "mallory");
    assert_eq!(a["actor_issuer"], "arn:aws:iam::123456789012:user/mallory");
    assert_eq!(a["actor_session_name"], "alice.smith@corp.example");
    assert_eq!(
        a["dedup_key"],
        "AWS.Lambda.UpdateFunctionCode:User [mallory] updated Lambda function code for [payments-api]"
    );
    let bytes =
        std::fs::read(repo_dir().join("events/alert/federated-session-named-by-caller.json"))
            .unwrap();
    let text = alert_of(&bytes).to_text();
    let who = text.lines().find(|l| l.starts_with("Who:")).unwrap();
    assert!(who.starts_with("Who:    mallory "), "{text}");
    assert!(
        text.contains("federated session name \"alice.smith@corp.example\" (chosen by the caller"),
        "{text}"
    );
    let subject = lambda_code_watch::sink::sns_message::SnsMessage::for_alert(&alert_of(&bytes))
        .unwrap()
        .subject;
    assert!(subject.starts_with("User [mallory]"), "{subject}");
    assert!(!subject.contains("alice"), "{subject}");
}

#[test]
fn full_arn_request_gives_the_short_name_and_the_deployment_facts() {
    let a = alert("alert/iam-user-full-arn-publish.json");
    assert_common_fields(&a);
    assert_eq!(a["function_name"], "invoice-exporter");
    assert_eq!(
        a["function_arn"],
        "arn:aws:lambda:eu-west-1:111122223333:function:invoice-exporter:7"
    );
    assert_eq!(a["version"], "7");
    assert!(a["code_sha256"].is_string());
    assert_eq!(a["context"]["requestParameters"]["publish"], true);
}

#[test]
fn the_text_rendering_has_who_what_where_when_and_the_runbook() {
    let bytes = std::fs::read(repo_dir().join("events/alert/sso-user.json")).unwrap();
    let text = alert_of(&bytes).to_text();
    for needle in [
        "[HIGH] User [bob.ross] updated Lambda function code for [production-api]",
        "Who:",
        "bob.ross",
        "What:",
        "UpdateFunctionCode20150331v2",
        "Where:",
        "123456789012",
        "us-west-2",
        "When:",
        "2019-01-01T00:00:00Z",
        "Runbook:",
        "revoke the SSO session",
        "T1078",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
}

#[test]
fn the_text_rendering_escapes_forged_lines() {
    let mut record: Value = serde_json::from_slice(
        &std::fs::read(repo_dir().join("events/alert/iam-user.json")).unwrap(),
    )
    .unwrap();
    record["userAgent"] = Value::from("curl\nWhere:  account 000000000000\u{1b}[2J");
    let text = alert_of(&serde_json::to_vec(&record).unwrap()).to_text();
    assert_eq!(text.matches("\nWhere:").count(), 1, "{text}");
    assert!(text.contains("curl\\nWhere:"), "{text}");
    assert!(!text.contains('\u{1b}'));
}

/// Invisible format and separator characters (Unicode Cf, Zl, Zp) in record text are escaped in
/// everything a person reads: U+202E makes `ecila` render as `alice`, zero-width characters
/// make two names look equal, U+2028/U+2029 break lines in some viewers.
#[test]
fn the_text_rendering_escapes_invisible_characters() {
    let hidden = [
        ('\u{202e}', "\\u{202e}"),
        ('\u{200b}', "\\u{200b}"),
        ('\u{200d}', "\\u{200d}"),
        ('\u{2066}', "\\u{2066}"),
        ('\u{feff}', "\\u{feff}"),
        ('\u{2028}', "\\u{2028}"),
        ('\u{2029}', "\\u{2029}"),
        ('\u{ad}', "\\u{ad}"),
    ];
    for (c, escaped) in hidden {
        let mut record: Value = serde_json::from_slice(
            &std::fs::read(repo_dir().join("events/alert/iam-user.json")).unwrap(),
        )
        .unwrap();
        record["userIdentity"]["userName"] = Value::from(format!("{c}ecila"));
        record["userAgent"] = Value::from(format!("curl{c}"));
        record["responseElements"]["functionName"] = Value::from(format!("prod{c}-api"));
        let alert = alert_of(&serde_json::to_vec(&record).unwrap());
        let text = alert.to_text();
        assert!(
            !text.contains(c),
            "U+{:04X} reaches the text: {text}",
            c as u32
        );
        for shown in [
            format!("{escaped}ecila"),
            format!("curl{escaped}"),
            format!("prod{escaped}-api"),
        ] {
            assert!(text.contains(&shown), "{shown} missing: {text}");
        }
        assert_eq!(
            lambda_code_watch::alert::printable(&format!("a{c}b")),
            format!("a{escaped}b")
        );
        // The JSON document keeps the exact value (machines compare it), as valid JSON.
        let document: Value = serde_json::from_str(&alert.to_json()).unwrap();
        assert_eq!(document["actor"], format!("{c}ecila"));
    }
    // Visible non-ASCII text is left alone.
    assert_eq!(
        lambda_code_watch::alert::printable("josé 😀 日本"),
        "josé 😀 日本"
    );
}
#[test]
fn an_alert_names_its_account_when_the_detector_knows_the_name() {
    let bytes = std::fs::read(repo_dir().join("events/alert/iam-user.json")).unwrap();
    let plain = alert_of(&bytes);
    assert_eq!(plain.account_id.as_deref(), Some("123456789012"));
    assert_eq!(plain.account_name, None);
    let document: Value = serde_json::from_str(&plain.to_json()).unwrap();
    assert!(
        document.get("account_name").is_some_and(Value::is_null),
        "account_name is in every document, null without a name: {document}"
    );

    let names =
        AccountNames::from_json(r#"{"123456789012": "payments-prod", "111122223333": "sandbox"}"#)
            .unwrap();
    let detector = Detector::default().with_account_names(names);
    let named = detector
        .assess_json(&bytes)
        .unwrap()
        .alert()
        .expect("still an alert")
        .clone();
    assert_eq!(named.account_name.as_deref(), Some("payments-prod"));
    let document: Value = serde_json::from_str(&named.to_json()).unwrap();
    assert_eq!(document["account_name"], "payments-prod");
    assert!(
        named
            .to_text()
            .contains("Where:  account 123456789012 (payments-prod), region us-west-2\n"),
        "{}",
        named.to_text()
    );
    // The name decides and changes nothing else: same title, dedup key, context.
    let mut unnamed = named.clone();
    unnamed.account_name = None;
    assert_eq!(unnamed, plain);

    // Each alert gets its own account's name, and an account the mapping does not know gets none.
    let other =
        std::fs::read(repo_dir().join("events/alert/iam-user-full-arn-publish.json")).unwrap();
    let other = detector.assess_json(&other).unwrap();
    assert_eq!(
        other.alert().unwrap().account_name.as_deref(),
        Some("sandbox")
    );
    let unknown = Detector::default()
        .with_account_names(AccountNames::from_json(r#"{"999999999999": "elsewhere"}"#).unwrap());
    assert_eq!(
        unknown
            .assess_json(&bytes)
            .unwrap()
            .alert()
            .unwrap()
            .account_name,
        None
    );

    // Names change no verdict.
    for folder in ["alert", "quiet", "eventbridge/alert", "eventbridge/quiet"] {
        for path in common::event_files(folder) {
            let bytes = std::fs::read(&path).unwrap();
            assert_eq!(
                detector.assess_json(&bytes).unwrap().verdict_name(),
                Detector::default()
                    .assess_json(&bytes)
                    .unwrap()
                    .verdict_name(),
                "{}",
                path.display()
            );
        }
    }
}

#[test]
fn the_readme_shows_the_email_exactly_as_it_is_sent() {
    // README's "What the person on call receives" must not drift from the real rendering.
    let readme = std::fs::read_to_string(repo_dir().join("README.md")).unwrap();
    let start = readme
        .find("<!-- example-email: ")
        .expect("README has the example email");
    let rest = &readme[start + "<!-- example-email: ".len()..];
    let (sample, rest) = rest.split_once(" -->").unwrap();
    let block = rest
        .split_once("```\n")
        .unwrap()
        .1
        .split_once("```\n<!-- end example-email -->")
        .unwrap()
        .0;
    let alert = alert_of(&std::fs::read(repo_dir().join(sample)).unwrap());
    let subject = lambda_code_watch::sink::sns_message::SnsMessage::for_alert(&alert)
        .unwrap()
        .subject;
    assert_eq!(block, format!("Subject: {subject}\n\n{}", alert.to_text()));
}
