//! The rule's exact semantics on the edges a real account produces (and some an attacker could).

use lambda_code_watch::rule::may_match;
use lambda_code_watch::{Detector, PersonKind, QuietReason, Record, Verdict, evaluate};
use serde_json::{Value, json};

/// An IAM user's successful UpdateFunctionCode call, to be bent by each test.
fn base() -> Value {
    json!({
        "eventVersion": "1.08",
        "userIdentity": {
            "type": "IAMUser",
            "principalId": "AIDAEXAMPLE",
            "arn": "arn:aws:iam::123456789012:user/alice",
            "accountId": "123456789012",
            "accessKeyId": "AKIAEXAMPLE",
            "userName": "alice"
        },
        "eventTime": "2024-01-01T00:00:00Z",
        "eventSource": "lambda.amazonaws.com",
        "eventName": "UpdateFunctionCode20150331v2",
        "awsRegion": "us-east-1",
        "requestParameters": {"functionName": "payments"},
        "responseElements": {"functionName": "payments"},
        "eventID": "e-1",
        "recipientAccountId": "123456789012"
    })
}

fn with(path: &[&str], value: Value) -> Value {
    let mut record = base();
    let mut target = &mut record;
    for key in &path[..path.len() - 1] {
        target = target
            .as_object_mut()
            .unwrap()
            .entry(*key)
            .or_insert_with(|| json!({}));
    }
    target
        .as_object_mut()
        .unwrap()
        .insert(path[path.len() - 1].into(), value);
    record
}

fn without(path: &[&str]) -> Value {
    let mut record = base();
    let mut target = &mut record;
    for key in &path[..path.len() - 1] {
        target = target.get_mut(*key).unwrap();
    }
    target.as_object_mut().unwrap().remove(path[path.len() - 1]);
    record
}

fn verdict(record: Value) -> Verdict {
    let bytes = serde_json::to_vec(&record).unwrap();
    let verdict = evaluate(&Record::from_value(record).unwrap());
    // The literal prefilter must never hide a record that is not "other API".
    if verdict != Verdict::Quiet(QuietReason::OtherApi) {
        assert!(
            may_match(&bytes),
            "prefilter rejected a record whose verdict is {verdict:?}"
        );
    }
    verdict
}

fn quiet(reason: QuietReason) -> Verdict {
    Verdict::Quiet(reason)
}

fn sso(issuer_user_name: Value) -> Value {
    json!({
        "type": "AssumedRole",
        "principalId": "AROAEXAMPLE:carol@example.com",
        "arn": "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Admin_0123/carol@example.com",
        "accountId": "123456789012",
        "sessionContext": {"sessionIssuer": {
            "type": "Role",
            "arn": "arn:aws:iam::123456789012:role/aws-reserved/sso.amazonaws.com/us-west-2/AWSReservedSSO_Admin_0123",
            "userName": issuer_user_name
        }}
    })
}

fn alert_actor(record: Value) -> (String, PersonKind) {
    match verdict(record) {
        Verdict::Alert(person) => (person.name, person.kind),
        other => panic!("expected an alert, got {other:?}"),
    }
}

#[test]
fn error_fields_absent_null_or_empty_count_as_success() {
    assert!(matches!(verdict(base()), Verdict::Alert(_)));
    assert!(matches!(
        verdict(with(&["errorCode"], Value::Null)),
        Verdict::Alert(_)
    ));
    assert!(matches!(
        verdict(with(&["errorMessage"], Value::Null)),
        Verdict::Alert(_)
    ));
    assert!(matches!(
        verdict(with(&["errorCode"], json!(""))),
        Verdict::Alert(_)
    ));
    assert!(matches!(
        verdict(with(&["errorMessage"], json!(""))),
        Verdict::Alert(_)
    ));
}

#[test]
fn a_failed_call_stays_quiet() {
    assert_eq!(
        verdict(with(&["errorCode"], json!("AccessDenied"))),
        quiet(QuietReason::FailedCall)
    );
    assert_eq!(
        verdict(with(&["errorMessage"], json!("Rate exceeded"))),
        quiet(QuietReason::FailedCall)
    );
}

#[test]
fn every_dated_and_undated_code_update_name_matches() {
    for name in [
        "UpdateFunctionCode",
        "UpdateFunctionCode20150331",
        "UpdateFunctionCode20150331v2",
    ] {
        assert!(
            matches!(
                verdict(with(&["eventName"], json!(name))),
                Verdict::Alert(_)
            ),
            "{name}"
        );
    }
}

#[test]
fn other_lambda_calls_and_other_services_are_other_api() {
    for name in [
        "UpdateFunctionConfiguration20150331v2",
        "UpdateFunctionConfiguration",
        "GetFunction",
        "updatefunctioncode20150331v2",
        "PublishVersion20150331",
        "",
        " UpdateFunctionCode",
    ] {
        assert_eq!(
            verdict(with(&["eventName"], json!(name))),
            quiet(QuietReason::OtherApi),
            "{name:?}"
        );
    }
    assert_eq!(
        verdict(with(&["eventSource"], json!("s3.amazonaws.com"))),
        quiet(QuietReason::OtherApi)
    );
    assert_eq!(
        verdict(without(&["eventSource"])),
        quiet(QuietReason::OtherApi)
    );
    assert_eq!(
        verdict(without(&["eventName"])),
        quiet(QuietReason::OtherApi)
    );
}

#[test]
fn the_api_is_checked_before_success_so_the_prefilter_is_exact() {
    let failed_other_api = with(&["eventName"], json!("GetFunction"));
    let mut failed_other_api = failed_other_api.as_object().unwrap().clone();
    failed_other_api.insert("errorCode".into(), json!("AccessDenied"));
    assert_eq!(
        verdict(Value::Object(failed_other_api)),
        quiet(QuietReason::OtherApi)
    );
}

#[test]
fn sso_needs_the_reserved_prefix_with_its_underscore() {
    let (name, kind) = alert_actor(with(
        &["userIdentity"],
        sso(json!("AWSReservedSSO_Admin_0123")),
    ));
    assert_eq!(
        (name.as_str(), kind),
        ("carol@example.com", PersonKind::SsoUser)
    );
    for issuer in [
        json!("AWSReservedSSOAdmin"),
        json!("awsreservedsso_admin"),
        json!("MyAWSReservedSSO_x"),
        json!(42),
        Value::Null,
    ] {
        assert_eq!(
            verdict(with(&["userIdentity"], sso(issuer.clone()))),
            quiet(QuietReason::NotAPerson),
            "{issuer}"
        );
    }
}

#[test]
fn an_empty_session_issuer_is_simply_not_sso() {
    let identity = json!({"type": "AssumedRole", "principalId": "AROA:deploy", "sessionContext": {"sessionIssuer": {}}});
    assert_eq!(
        verdict(with(&["userIdentity"], identity)),
        quiet(QuietReason::NotAPerson)
    );
    let identity = json!({"type": "AssumedRole", "principalId": "AROA:deploy"});
    assert_eq!(
        verdict(with(&["userIdentity"], identity)),
        quiet(QuietReason::NotAPerson)
    );
}

#[test]
fn missing_or_non_person_identities_stay_quiet() {
    assert_eq!(
        verdict(without(&["userIdentity"])),
        quiet(QuietReason::NotAPerson)
    );
    assert_eq!(
        verdict(with(&["userIdentity"], Value::Null)),
        quiet(QuietReason::NotAPerson)
    );
    for kind in [
        "Root",
        "AWSService",
        "AWSAccount",
        "SAMLUser",
        "WebIdentityUser",
        "Unknown",
        "iamuser",
    ] {
        assert_eq!(
            verdict(with(&["userIdentity", "type"], json!(kind))),
            quiet(QuietReason::NotAPerson),
            "{kind}"
        );
    }
    assert_eq!(
        verdict(without(&["userIdentity", "type"])),
        quiet(QuietReason::NotAPerson)
    );
}

#[test]
fn wrong_json_types_count_as_absent_and_never_panic() {
    assert_eq!(
        verdict(with(&["userIdentity"], json!("IAMUser"))),
        quiet(QuietReason::NotAPerson)
    );
    assert_eq!(
        verdict(with(&["userIdentity"], json!(["IAMUser"]))),
        quiet(QuietReason::NotAPerson)
    );
    assert_eq!(
        verdict(with(&["userIdentity", "type"], json!(1))),
        quiet(QuietReason::NotAPerson)
    );
    assert_eq!(
        verdict(with(&["eventName"], json!(["UpdateFunctionCode"]))),
        quiet(QuietReason::OtherApi)
    );
    assert_eq!(
        verdict(with(
            &["eventSource"],
            json!({"name": "lambda.amazonaws.com"})
        )),
        quiet(QuietReason::OtherApi)
    );
    // Error fields are read as Panther reads them: any value Python counts as true is a failure,
    // whatever its JSON type; zero, false and empty containers are not.
    for failure in [
        json!(403),
        json!(0.5),
        json!(true),
        json!([1]),
        json!({"code": "x"}),
    ] {
        for field in ["errorCode", "errorMessage"] {
            assert_eq!(
                verdict(with(&[field], failure.clone())),
                quiet(QuietReason::FailedCall),
                "{field}: {failure}"
            );
        }
    }
    for no_failure in [
        json!(0),
        json!(0.0),
        json!(-0.0),
        json!(false),
        json!([]),
        json!({}),
    ] {
        for field in ["errorCode", "errorMessage"] {
            assert!(
                matches!(
                    verdict(with(&[field], no_failure.clone())),
                    Verdict::Alert(_)
                ),
                "{field}: {no_failure}"
            );
        }
    }
    // A user name of the wrong type falls back to the ARN.
    assert_eq!(
        alert_actor(with(&["userIdentity", "userName"], json!(7))).0,
        "alice"
    );
    // Alerts still render with odd shapes around them.
    for odd in [
        with(&["responseElements"], Value::Null),
        with(&["requestParameters"], json!("x")),
        with(&["userAgent"], json!(12)),
        with(&["userIdentity", "sessionContext"], json!([])),
    ] {
        let outcome = Detector::default()
            .assess_json(&serde_json::to_vec(&odd).unwrap())
            .unwrap();
        assert!(outcome.alert().unwrap().to_json().starts_with('{'));
    }
    assert!(Record::from_value(json!([1, 2])).is_err());
    assert!(Record::from_value(json!("text")).is_err());
    assert!(
        Detector::default()
            .assess_json(b"{\"eventName\": ")
            .is_err()
    );
}

#[test]
fn a_json_escaped_event_name_still_alerts_and_passes_the_prefilter() {
    let raw = br#"{"eventSource":"lambda.amazonaws.com","eventName":"\u0055pdateFunctionCode20150331v2",
                  "userIdentity":{"type":"IAMUser","userName":"eve"},"responseElements":{"functionName":"f"}}"#;
    assert!(may_match(raw));
    assert!(
        Detector::default()
            .assess_json(raw)
            .unwrap()
            .alert()
            .is_some()
    );
    let quiet_raw = br#"{"eventSource":"lambda.amazonaws.com","eventName":"GetFunction","userIdentity":{"type":"IAMUser"}}"#;
    assert!(!may_match(quiet_raw));
}

#[test]
fn actors_are_people_not_roles() {
    assert_eq!(alert_actor(base()), ("alice".into(), PersonKind::IamUser));
    assert_eq!(
        alert_actor(without(&["userIdentity", "userName"])).0,
        "alice",
        "IAM user from the ARN"
    );
    let federated = json!({"type": "FederatedUser", "principalId": "123456789012:dave",
                           "arn": "arn:aws:sts::123456789012:federated-user/dave",
                           "sessionContext": {"sessionIssuer": {"type": "IAMUser", "userName": "broker",
                                              "arn": "arn:aws:iam::123456789012:user/broker"}}});
    // The name after ':' is whatever the caller passed to GetFederationToken: the person is the
    // IAM user that issued the token, and the chosen name is kept only as the session name.
    let person = match verdict(with(&["userIdentity"], federated.clone())) {
        Verdict::Alert(person) => person,
        other => panic!("expected an alert, got {other:?}"),
    };
    assert_eq!(
        (person.name.as_str(), person.kind),
        ("broker", PersonKind::FederatedUser)
    );
    assert_eq!(person.session_name.as_deref(), Some("dave"));
    assert_eq!(
        person.issuer.as_deref(),
        Some("arn:aws:iam::123456789012:user/broker")
    );
    let mut issuer_arn_only = federated.clone();
    issuer_arn_only["sessionContext"]["sessionIssuer"]
        .as_object_mut()
        .unwrap()
        .remove("userName");
    assert_eq!(
        alert_actor(with(&["userIdentity"], issuer_arn_only)).0,
        "broker",
        "issuing user from its ARN"
    );
    // No issuer recorded: only the caller-chosen name is left, and it is shown labelled.
    let federated_arn_only =
        json!({"type": "FederatedUser", "arn": "arn:aws:sts::123456789012:federated-user/erin"});
    assert_eq!(
        alert_actor(with(&["userIdentity"], federated_arn_only)).0,
        "federated session \"erin\""
    );
    let mut sso_no_colon = sso(json!("AWSReservedSSO_Admin_0123"));
    sso_no_colon["principalId"] = json!("AROAEXAMPLE");
    assert_eq!(
        alert_actor(with(&["userIdentity"], sso_no_colon)).0,
        "carol@example.com",
        "session name from the ARN"
    );
}

#[test]
fn the_function_name_comes_from_the_response_then_the_request() {
    let name = |record: Value| {
        Detector::default()
            .assess_json(&serde_json::to_vec(&record).unwrap())
            .unwrap()
            .alert()
            .unwrap()
            .function_name
            .clone()
    };
    assert_eq!(name(base()), "payments");
    let mut r = with(&["responseElements"], Value::Null);
    r["requestParameters"]["functionName"] =
        json!("arn:aws:lambda:us-east-1:123456789012:function:billing");
    assert_eq!(name(r.clone()), "billing");
    r["requestParameters"]["functionName"] =
        json!("arn:aws:lambda:us-east-1:123456789012:function:billing:prod");
    assert_eq!(name(r.clone()), "billing");
    r["requestParameters"]["functionName"] = json!("123456789012:function:ledger");
    assert_eq!(name(r.clone()), "ledger");
    r["requestParameters"] = Value::Null;
    assert_eq!(name(r), "<unknown function>");
}

#[test]
fn an_envelope_is_unwrapped_and_one_without_a_record_is_quiet() {
    let envelope = json!({"detail-type": "AWS API Call via CloudTrail", "source": "aws.lambda", "detail": base()});
    assert!(matches!(verdict(envelope), Verdict::Alert(_)));
    // No record inside: read as a record itself, which is no Lambda call (the prefilter agrees).
    let broken =
        json!({"detail-type": "AWS API Call via CloudTrail", "detail": "UpdateFunctionCode"});
    assert_eq!(verdict(broken), quiet(QuietReason::OtherApi));
}
