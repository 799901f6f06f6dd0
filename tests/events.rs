//! Every sample event in `events/` gets the verdict its folder promises, through the library and
//! through the CLI, bare and wrapped in an EventBridge envelope.

mod common;

use common::{cli, event_files, repo_dir, stdout_lines, summary_counts};
use lambda_code_watch::Detector;

fn expects_alert(path: &std::path::Path) -> bool {
    let folder = path.parent().unwrap().file_name().unwrap();
    match folder.to_str().unwrap() {
        "alert" => true,
        "quiet" => false,
        other => panic!(
            "{}: events live under alert/ or quiet/, not {other}/",
            path.display()
        ),
    }
}

#[test]
fn every_event_gets_its_verdict_through_the_library() {
    for path in event_files("") {
        let bytes = std::fs::read(&path).unwrap();
        let outcome = Detector::default()
            .assess_json(&bytes)
            .unwrap_or_else(|e| panic!("{}: does not decode: {e}", path.display()));
        let alerted = outcome.alert().is_some();
        assert_eq!(
            alerted,
            expects_alert(&path),
            "{}: {:?}",
            path.display(),
            outcome.verdict_name()
        );
    }
}

#[test]
fn every_event_gets_its_verdict_through_the_cli() {
    for path in event_files("") {
        let output = cli(&["scan", path.to_str().unwrap()], b"");
        assert_eq!(
            output.status.code(),
            Some(0),
            "{}: {}",
            path.display(),
            common::stderr(&output)
        );
        let alerts = stdout_lines(&output);
        let expected = usize::from(expects_alert(&path));
        assert_eq!(alerts.len(), expected, "{}", path.display());
        assert_eq!(
            summary_counts(&output),
            (1, expected as u64, 0),
            "{}",
            path.display()
        );
    }
}

#[test]
fn an_envelope_gives_the_same_alert_as_the_bare_record() {
    for bare in event_files("alert")
        .into_iter()
        .filter(|p| !p.starts_with(repo_dir().join("events/eventbridge")))
    {
        let relative = bare.strip_prefix(repo_dir().join("events")).unwrap();
        let wrapped = repo_dir().join("events/eventbridge").join(relative);
        let alert_of = |p: &std::path::Path| {
            Detector::default()
                .assess_json(&std::fs::read(p).unwrap())
                .unwrap()
                .alert()
                .unwrap()
                .to_json()
        };
        assert_eq!(
            alert_of(&bare),
            alert_of(&wrapped),
            "{}",
            relative.display()
        );
    }
}

#[test]
fn the_seed_alerts_are_the_three_people_of_the_rule_card() {
    let output = cli(
        &[
            "scan",
            "events/alert/iam-user.json",
            "events/alert/sso-user.json",
            "events/alert/federated-user.json",
        ],
        b"",
    );
    let titles: Vec<String> = stdout_lines(&output)
        .iter()
        .map(|a| a["title"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        titles,
        [
            "User [john.developer] updated Lambda function code for [production-api]",
            "User [bob.ross] updated Lambda function code for [production-api]",
            "User [federated session \"federated-user\"] updated Lambda function code for [production-api]",
        ]
    );
}

#[test]
fn every_sample_has_its_own_event_id() {
    // With exactly-once delivery, two samples sharing an eventID would publish only the first:
    // the rule card's six tests all said "1", so they carry `card-test-N-...` here instead.
    let mut seen = std::collections::BTreeMap::new();
    for path in event_files("") {
        let value: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let record = value.get("detail").unwrap_or(&value);
        let id = record["eventID"]
            .as_str()
            .unwrap_or_else(|| panic!("{}: no eventID", path.display()))
            .to_owned();
        // The EventBridge-wrapped copy of a sample is the same event.
        let sample = path.file_name().unwrap().to_owned();
        if let Some(other) = seen.insert(id.clone(), sample.clone()) {
            assert_eq!(other, sample, "{id} is used by two samples");
        }
    }
    assert!(seen.len() >= 10, "{seen:?}");
}
