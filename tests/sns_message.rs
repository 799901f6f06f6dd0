//! SNS's limits hold for hostile records: the Subject is printable ASCII on one line of at most 100
//! characters and never empty; the message with its attributes fits in 256 KiB, stays valid JSON and
//! says what it cut; an alert that fits is published byte for byte as `scan` prints it.

use lambda_code_watch::sink::sns_message::{
    self, FALLBACK_SUBJECT, MAX_MESSAGE_ATTRIBUTES, MAX_PUBLISH_BYTES,
    MAX_SUBJECT_ACCOUNT_NAME_CHARS, MAX_SUBJECT_CHARS, SnsMessage, TopicArn,
};
use lambda_code_watch::{AccountNames, Alert, Detector, Record};
use serde_json::{Value, json};

fn record() -> Value {
    json!({
        "eventVersion": "1.08",
        "userIdentity": {"type": "IAMUser", "principalId": "AIDAEXAMPLE", "accountId": "123456789012",
                         "arn": "arn:aws:iam::123456789012:user/john.developer", "userName": "john.developer",
                         "accessKeyId": "AKIAEXAMPLE"},
        "eventTime": "2019-01-01T00:00:00Z",
        "eventSource": "lambda.amazonaws.com",
        "eventName": "UpdateFunctionCode20150331v2",
        "awsRegion": "us-west-2",
        "sourceIPAddress": "203.0.113.50",
        "userAgent": "aws-cli/2.13.5 Python/3.11.4",
        "requestParameters": {"functionName": "production-api", "publish": true},
        "responseElements": {"functionName": "production-api"},
        "eventID": "11111111-2222-3333-4444-555555555555",
        "recipientAccountId": "123456789012"
    })
}

fn alert_for(record: Value) -> Alert {
    let record = Record::from_value(record).expect("test record is an object");
    Detector::default()
        .assess(&record)
        .alert()
        .expect("test record is an IAM user's code update")
        .clone()
}

fn with(mut base: Value, pointer: &str, value: Value) -> Value {
    *base
        .pointer_mut(pointer)
        .expect("pointer exists in the test record") = value;
    base
}

/// Every SNS constraint on a publish, checked on the finished message.
fn assert_publishable(message: &SnsMessage) {
    assert_subject_ok(&message.subject);
    assert!(
        message.publish_bytes() <= MAX_PUBLISH_BYTES,
        "{} bytes",
        message.publish_bytes()
    );
    assert!(message.attributes.len() <= MAX_MESSAGE_ATTRIBUTES);
    for attribute in &message.attributes {
        assert!(!attribute.value.trim().is_empty(), "{attribute:?}");
    }
    assert!(
        !message.message.contains(['\u{FFFE}', '\u{FFFF}']),
        "SNS rejects non-XML characters"
    );
    let outer: Value = serde_json::from_str(&message.message).expect("Message is JSON");
    let default = outer["default"].as_str().expect("default is a string");
    assert_eq!(default, message.document);
    let document: Value = serde_json::from_str(default).expect("the alert document is JSON");
    assert_eq!(document["severity"], "HIGH");
    assert!(
        outer["email"]
            .as_str()
            .is_some_and(|t| t.contains("Runbook"))
    );
}

fn assert_subject_ok(subject: &str) {
    assert!(!subject.is_empty());
    assert!(
        subject.len() <= MAX_SUBJECT_CHARS,
        "{} chars: {subject}",
        subject.len()
    );
    assert!(
        subject.bytes().all(|b| (0x20..0x7f).contains(&b)),
        "not printable ASCII: {subject:?}"
    );
    assert_eq!(subject.trim(), subject, "no leading or trailing spaces");
}

#[test]
fn an_alert_that_fits_is_published_exactly_as_scan_prints_it() {
    let alert = alert_for(record());
    let message = SnsMessage::for_alert(&alert).unwrap();
    assert_publishable(&message);
    assert_eq!(message.document, alert.to_json());
    assert_eq!(message.truncated_bytes, 0);
    let outer: Value = serde_json::from_str(&message.message).unwrap();
    assert_eq!(outer["email"].as_str().unwrap(), alert.to_text());
    assert_eq!(
        outer.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["default", "email"],
        "sqs, lambda, https and firehose subscribers take `default`"
    );
    assert_eq!(message.subject, alert.title);
}

#[test]
fn attributes_carry_what_subscribers_filter_on() {
    let message = SnsMessage::for_alert(&alert_for(record())).unwrap();
    let attributes: Vec<(&str, &str)> = message
        .attributes
        .iter()
        .map(|a| (a.name, a.value.as_str()))
        .collect();
    assert_eq!(
        attributes,
        [
            ("severity", "HIGH"),
            ("rule_id", "AWS.Lambda.UpdateFunctionCode"),
            ("account_id", "123456789012"),
            ("region", "us-west-2"),
            ("actor_type", "IAMUser"),
            ("event_name", "UpdateFunctionCode20150331v2"),
        ]
    );
}

#[test]
fn absent_empty_or_oversized_attribute_values_are_left_out() {
    let mut raw = record();
    let object = raw.as_object_mut().unwrap();
    object.remove("awsRegion");
    object.insert("recipientAccountId".into(), json!(""));
    object["userIdentity"]
        .as_object_mut()
        .unwrap()
        .insert("accountId".into(), json!(""));
    object.insert(
        "eventName".into(),
        json!(format!("UpdateFunctionCode{}", "x".repeat(5000))),
    );
    let message = SnsMessage::for_alert(&alert_for(raw)).unwrap();
    let names: Vec<&str> = message.attributes.iter().map(|a| a.name).collect();
    assert_eq!(names, ["severity", "rule_id", "actor_type"]);
    assert_publishable(&message);
}

#[test]
fn subject_of_a_plain_title_is_the_title() {
    assert_eq!(
        sns_message::subject("User [bob] updated Lambda function code for [api]"),
        "User [bob] updated Lambda function code for [api]"
    );
}

#[test]
fn subject_puts_line_breaks_and_tabs_on_one_line() {
    let subject = sns_message::subject("User [bob\r\n\r\nInjected: header]\tupdated\u{2028}code\n");
    assert_eq!(subject, "User [bob Injected: header] updated code");
}

#[test]
fn subject_escapes_control_characters_and_non_ascii_instead_of_dropping_them() {
    assert_eq!(sns_message::subject("jos\u{e9}"), "jos\\u{e9}");
    assert_eq!(sns_message::subject("a\u{1b}[31mred"), "a\\u{1b}[31mred");
    assert_eq!(sns_message::subject("\u{0}"), "\\u{0}");
    assert_eq!(
        sns_message::subject("deploy \u{1f680}"),
        "deploy \\u{1f680}"
    );
    assert_eq!(sns_message::subject("\u{7f}"), "\\u{7f}");
    assert_ne!(sns_message::subject("josé"), sns_message::subject("jose"));
}

#[test]
fn subject_of_only_non_printable_characters_is_escaped_not_empty() {
    let subject = sns_message::subject("\u{1}\u{2}\u{7}\u{8}");
    assert_eq!(subject, "\\u{1}\\u{2}\\u{7}\\u{8}");
    assert_subject_ok(&subject);
}

#[test]
fn subject_with_nothing_visible_falls_back_to_the_rule_name() {
    for title in ["", "   ", "\n\r\t", "\u{2028}\u{3000}\u{a0}"] {
        assert_eq!(sns_message::subject(title), FALLBACK_SUBJECT, "{title:?}");
    }
    assert_subject_ok(FALLBACK_SUBJECT);
}

#[test]
fn subject_is_cut_to_100_characters_between_escapes() {
    let long = format!(
        "User [{}] updated Lambda function code for [f]",
        "a".repeat(500)
    );
    let subject = sns_message::subject(&long);
    assert_eq!(subject.len(), MAX_SUBJECT_CHARS);
    assert!(subject.ends_with("..."));
    assert!(subject.starts_with("User [aaaa"));

    let emoji = "\u{1f600}".repeat(200);
    let subject = sns_message::subject(&emoji);
    assert_subject_ok(&subject);
    assert!(
        subject.ends_with("}..."),
        "cut after a whole escape: {subject}"
    );

    let exactly = "b".repeat(MAX_SUBJECT_CHARS);
    assert_eq!(sns_message::subject(&exactly), exactly, "100 fits as is");
    let over = "b".repeat(MAX_SUBJECT_CHARS + 1);
    assert_eq!(sns_message::subject(&over).len(), MAX_SUBJECT_CHARS);
}

#[test]
fn hostile_subjects_are_always_acceptable() {
    let inputs = [
        "\u{0}".repeat(1000),
        "\n".repeat(10_000),
        "é".repeat(1000),
        "a\u{300}".repeat(300),
        "x ".repeat(300),
        "\u{feff}start".to_owned(),
        String::from_utf8_lossy(&[0xff, 0xfe, b'a']).into_owned(),
        "\u{FFFE}\u{FFFF}".to_owned(),
    ];
    for input in &inputs {
        assert_subject_ok(&sns_message::subject(input));
    }
}

#[test]
fn a_one_megabyte_user_agent_is_truncated_visibly() {
    let huge = format!("Mozilla/5.0 {}", "A".repeat(1 << 20));
    let alert = alert_for(with(record(), "/userAgent", json!(huge)));
    let message = SnsMessage::for_alert(&alert).unwrap();
    assert_publishable(&message);
    assert!(
        message.truncated_bytes > 700_000,
        "{}",
        message.truncated_bytes
    );
    let document: Value = serde_json::from_str(&message.document).unwrap();
    let user_agent = document["context"]["userAgent"].as_str().unwrap();
    assert!(user_agent.starts_with("Mozilla/5.0 AAAA"));
    assert!(user_agent.contains("…[truncated "), "marker visible");
    // What was not oversized is untouched.
    assert_eq!(document["actor"], "john.developer");
    assert_eq!(
        document["context"]["requestParameters"]["functionName"],
        "production-api"
    );
    // It keeps as much as fits: close to the limit, not a token prefix.
    assert!(
        message.publish_bytes() > MAX_PUBLISH_BYTES - 4096,
        "{}",
        message.publish_bytes()
    );
}

#[test]
fn three_hundred_kilobytes_of_request_parameters_fit() {
    let zip = "UEsDBBQ".repeat(300 * 1024 / 7);
    let alert = alert_for(with(
        record(),
        "/requestParameters",
        json!({"functionName": "production-api", "zipFile": zip}),
    ));
    let message = SnsMessage::for_alert(&alert).unwrap();
    assert_publishable(&message);
    let document: Value = serde_json::from_str(&message.document).unwrap();
    let kept = document["context"]["requestParameters"]["zipFile"]
        .as_str()
        .unwrap();
    assert!(kept.starts_with("UEsDBBQ") && kept.contains("…[truncated "));
}

#[test]
fn request_parameters_made_of_many_small_values_are_replaced_whole() {
    let many: Vec<String> = (0..60_000).map(|i| format!("v{i}")).collect();
    let alert = alert_for(with(
        record(),
        "/requestParameters",
        json!({"layers": many}),
    ));
    let message = SnsMessage::for_alert(&alert).unwrap();
    assert_publishable(&message);
    let document: Value = serde_json::from_str(&message.document).unwrap();
    let replaced = document["context"]["requestParameters"].as_str().unwrap();
    assert!(replaced.starts_with("…[truncated ") && replaced.ends_with(" bytes of JSON]"));
}

#[test]
fn a_huge_object_key_does_not_break_the_limit() {
    let mut parameters = serde_json::Map::new();
    parameters.insert("k".repeat(400_000), json!(1));
    let alert = alert_for(with(
        record(),
        "/requestParameters",
        Value::Object(parameters),
    ));
    assert_publishable(&SnsMessage::for_alert(&alert).unwrap());
}

#[test]
fn escaping_heavy_content_is_measured_after_escaping() {
    // Each control character becomes six bytes in JSON, and is escaped again in the outer JSON.
    let alert = alert_for(with(record(), "/userAgent", json!("\u{1}".repeat(200_000))));
    let message = SnsMessage::for_alert(&alert).unwrap();
    assert_publishable(&message);
    assert!(message.truncated_bytes > 0);
}

#[test]
fn every_record_field_oversized_at_once_still_fits() {
    let big = "Z".repeat(300_000);
    let mut raw = record();
    for pointer in [
        "/userIdentity/userName",
        "/userIdentity/arn",
        "/userIdentity/accessKeyId",
        "/userAgent",
        "/sourceIPAddress",
        "/eventTime",
        "/eventID",
        "/requestParameters/functionName",
        "/responseElements/functionName",
    ] {
        raw = with(raw, pointer, json!(big));
    }
    raw = with(raw, "/eventName", json!(format!("UpdateFunctionCode{big}")));
    let alert = alert_for(raw);
    let message = SnsMessage::for_alert(&alert).unwrap();
    assert_publishable(&message);
}

#[test]
fn non_xml_characters_are_escaped_in_the_message_and_restored_by_json() {
    let alert = alert_for(with(
        record(),
        "/userAgent",
        json!("agent\u{FFFE}\u{FFFF}end"),
    ));
    let message = SnsMessage::for_alert(&alert).unwrap();
    assert_publishable(&message);
    assert!(message.message.contains("\\ufffe\\uffff"));
    assert_eq!(
        message.document,
        alert.to_json(),
        "subscribers get the same document"
    );
}

#[test]
fn fifo_ids_are_valid_or_absent() {
    let alert = alert_for(record());
    assert_eq!(
        sns_message::fifo_deduplication_id(&alert),
        Some("11111111-2222-3333-4444-555555555555")
    );
    assert!(sns_message::fifo_group_id().len() <= 128);
    let odd = alert_for(with(record(), "/eventID", json!("has space")));
    assert_eq!(sns_message::fifo_deduplication_id(&odd), None);
}

#[test]
fn topic_arns_are_checked() {
    for good in [
        "arn:aws:sns:us-east-1:123456789012:alerts",
        "arn:aws-us-gov:sns:us-gov-west-1:123456789012:Lambda_Code-Alerts",
        "arn:aws-cn:sns:cn-north-1:123456789012:a",
        "arn:aws:sns:eu-west-3:123456789012:alerts.fifo",
    ] {
        let topic = TopicArn::parse(good).unwrap_or_else(|e| panic!("{good}: {e}"));
        assert_eq!(topic.as_str(), good);
        assert_eq!(topic.is_fifo(), good.ends_with(".fifo"));
        assert_eq!(topic.region(), good.split(':').nth(3).unwrap());
    }
    assert_eq!(
        TopicArn::parse("arn:aws:sns:eu-west-3:123456789012:alerts.fifo")
            .unwrap()
            .region(),
        "eu-west-3"
    );
    for (bad, why) in [
        ("", "6 ':'-separated parts"),
        ("alerts", "6 ':'-separated parts"),
        (
            "arn:aws:sns:us-east-1:123456789012:alerts:extra",
            "6 ':'-separated",
        ),
        ("arn:aws:sqs:us-east-1:123456789012:alerts", "not \"sns\""),
        ("arn:amazon:sns:us-east-1:123456789012:alerts", "partition"),
        ("arn:aws:sns::123456789012:alerts", "region"),
        ("arn:aws:sns:us-east-1:12345678901:alerts", "12-digit"),
        ("arn:aws:sns:us-east-1:12345678901x:alerts", "12-digit"),
        ("arn:aws:sns:us-east-1:123456789012:", "topic name"),
        ("arn:aws:sns:us-east-1:123456789012:bad name", "topic name"),
        ("arn:aws:sns:us-east-1:123456789012:.fifo", "topic name"),
        ("ARN:aws:sns:us-east-1:123456789012:alerts", "arn:"),
    ] {
        let error = TopicArn::parse(bad).expect_err(bad).to_string();
        assert!(error.contains(why), "{bad}: {error}");
        assert!(
            error.contains(&format!("{bad:?}")),
            "names the value: {error}"
        );
    }
    let long = format!("arn:aws:sns:us-east-1:123456789012:{}", "t".repeat(257));
    assert!(TopicArn::parse(&long).is_err());
}

#[test]
fn invisible_characters_are_escaped_in_the_subject_and_the_email() {
    assert_eq!(
        sns_message::subject("User [\u{202e}ecila] updated"),
        "User [\\u{202e}ecila] updated"
    );
    assert_eq!(
        sns_message::subject("a\u{200b}b\u{feff}c\u{ad}d"),
        "a\\u{200b}b\\u{feff}c\\u{ad}d"
    );
    assert_eq!(sns_message::subject("a\u{2028}b\u{2029}c"), "a b c");
    let message = SnsMessage::for_alert(&alert_for(with(
        record(),
        "/userIdentity/userName",
        json!("\u{202e}ecila\u{2028}x"),
    )))
    .expect("fits");
    assert_publishable(&message);
    assert!(
        message.subject.contains("\\u{202e}ecila x"),
        "{}",
        message.subject
    );
    let outer: Value = serde_json::from_str(&message.message).unwrap();
    let email = outer["email"].as_str().unwrap();
    assert!(!email.contains(['\u{202e}', '\u{2028}']), "{email}");
    assert!(email.contains("\\u{202e}ecila\\u{2028}x"), "{email}");
}
/// The alert for `record` from a detector that calls account 123456789012 `name`.
fn alert_named(record: Value, name: &str) -> Alert {
    let names =
        AccountNames::from_json(&json!({"123456789012": name}).to_string()).expect("a usable name");
    let record = Record::from_value(record).expect("test record is an object");
    Detector::default()
        .with_account_names(names)
        .assess(&record)
        .alert()
        .expect("test record is an IAM user's code update")
        .clone()
}

#[test]
fn the_subject_and_attributes_name_the_account() {
    let message = SnsMessage::for_alert(&alert_named(record(), "payments-prod")).unwrap();
    assert_publishable(&message);
    assert_eq!(
        message.subject,
        "[payments-prod] User [john.developer] updated Lambda function code for [production-api]"
    );
    let attribute = |name: &str| {
        message
            .attributes
            .iter()
            .find(|a| a.name == name)
            .map(|a| a.value.as_str())
    };
    assert_eq!(attribute("account_name"), Some("payments-prod"));
    assert_eq!(attribute("account_id"), Some("123456789012"));
    let document: Value = serde_json::from_str(&message.document).unwrap();
    assert_eq!(document["account_name"], "payments-prod");
    // Without a name: the title alone, and no attribute.
    let plain = SnsMessage::for_alert(&alert_for(record())).unwrap();
    assert_eq!(
        plain.subject,
        "User [john.developer] updated Lambda function code for [production-api]"
    );
    assert!(plain.attributes.iter().all(|a| a.name != "account_name"));
}

#[test]
fn very_long_or_odd_account_names_keep_the_subject_within_its_limits() {
    let long_function = "f".repeat(300);
    let long_title = with(
        record(),
        "/responseElements/functionName",
        json!(long_function),
    );
    for name in [
        "a".repeat(MAX_SUBJECT_ACCOUNT_NAME_CHARS),
        "a".repeat(MAX_SUBJECT_ACCOUNT_NAME_CHARS + 1),
        "a".repeat(10_000),
        "payments\u{a0}prod  (eu)".to_owned(),
        "jos\u{e9} \u{1f680}".repeat(20),
        "\u{1f680}".repeat(50),
        "\u{3000}x".to_owned(),
    ] {
        for base in [record(), long_title.clone()] {
            let alert = alert_named(base, &name);
            let message = SnsMessage::for_alert(&alert).unwrap();
            assert_publishable(&message);
            let subject = &message.subject;
            let (prefix, title) = subject
                .split_once("] ")
                .unwrap_or_else(|| panic!("{name:?}: no name in {subject:?}"));
            let shown = prefix.strip_prefix('[').expect("starts with [");
            assert!(
                shown.len() <= MAX_SUBJECT_ACCOUNT_NAME_CHARS && !shown.is_empty(),
                "{name:?}: the name takes {} characters: {subject:?}",
                shown.len()
            );
            assert!(
                title.starts_with("User [john.developer] updated Lambda function code for"),
                "{name:?}: the title keeps its beginning: {subject:?}"
            );
            // The whole name is in the document, whatever the Subject kept.
            let document: Value = serde_json::from_str(&message.document).unwrap();
            assert_eq!(document["account_name"], name.as_str());
        }
    }
    // Cut names end in "...", as cut titles do; a name that fits is kept whole.
    let exact = "a".repeat(MAX_SUBJECT_ACCOUNT_NAME_CHARS);
    let subject = SnsMessage::for_alert(&alert_named(record(), &exact))
        .unwrap()
        .subject;
    assert!(
        subject.starts_with(&format!("[{exact}] User [")),
        "{subject}"
    );
    let over = "a".repeat(MAX_SUBJECT_ACCOUNT_NAME_CHARS + 1);
    let subject = SnsMessage::for_alert(&alert_named(record(), &over))
        .unwrap()
        .subject;
    let cut = format!(
        "[{}...] User [",
        "a".repeat(MAX_SUBJECT_ACCOUNT_NAME_CHARS - 3)
    );
    assert!(subject.starts_with(&cut), "{subject}");
    // Non-ASCII is escaped as in titles, never dropped.
    let subject = SnsMessage::for_alert(&alert_named(record(), "jos\u{e9}"))
        .unwrap()
        .subject;
    assert!(subject.starts_with("[jos\\u{e9}] User ["), "{subject}");
    // A long title with a name is still cut to 100, with "...".
    let subject = SnsMessage::for_alert(&alert_named(long_title, "payments-prod"))
        .unwrap()
        .subject;
    assert_eq!(subject.len(), MAX_SUBJECT_CHARS, "{subject}");
    assert!(subject.starts_with("[payments-prod] User [") && subject.ends_with("..."));
    // A name too long for an attribute is left out of the attributes, not cut.
    let message = SnsMessage::for_alert(&alert_named(record(), &"a".repeat(300))).unwrap();
    assert!(message.attributes.iter().all(|a| a.name != "account_name"));
}
