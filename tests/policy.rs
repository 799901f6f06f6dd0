//! The tuning policy through the one path (`Detector`) and through `scan --policy`: each `[people]`
//! setting alone, each suppression matcher alone and combined, expiry, the committed example
//! policy, bad policies refused with file, line and key, the shared corpus under a policy, and
//! `scan --group` as a backtest. The default (no policy) stays the original rule, which
//! `tests/conformance.rs` and `tests/corpus.rs` check.

mod common;

use jiff::civil::Date;
use lambda_code_watch::{Detector, Outcome, Policy, Record};
use serde_json::{Value, json};
use std::path::Path;

fn record(value: &Value) -> Record {
    Record::from_value(value.clone()).unwrap()
}

/// The IAM-user sample: the rule card's own alert.
fn base() -> Value {
    serde_json::from_slice(
        &std::fs::read(common::repo_dir().join("events/alert/iam-user.json")).unwrap(),
    )
    .unwrap()
}

fn role(name: &str) -> Value {
    json!({"type": "AssumedRole", "principalId": "AROAEXAMPLE:alice@corp.example",
           "arn": format!("arn:aws:sts::111122223333:assumed-role/{name}/alice@corp.example"),
           "accountId": "111122223333",
           "sessionContext": {"sessionIssuer": {"type": "Role", "principalId": "AROAEXAMPLE",
               "arn": format!("arn:aws:iam::111122223333:role/{name}"),
               "accountId": "111122223333", "userName": name}}})
}

fn with(change: impl FnOnce(&mut Value)) -> Value {
    let mut event = base();
    change(&mut event);
    event
}

fn detector(policy: &str) -> Detector {
    let today = Date::new(2026, 1, 1).unwrap();
    Detector::on(Policy::parse("policy.toml", policy).unwrap(), today)
}

/// `alert <actor_type> <title>`, `suppressed suppress[N]`, or the quiet reason.
fn verdict(detector: &Detector, event: &Value) -> String {
    match detector.assess(&record(event)) {
        Outcome::Alert(alert) => format!("alert {} {}", alert.actor_type, alert.title),
        Outcome::Suppressed(s) => format!("suppressed {}", s.entry),
        Outcome::Quiet(reason) => reason.as_str().to_owned(),
    }
}

// ------------------------------------------------------------------------------------ [people]

struct PersonCase {
    setting: &'static str,
    event: Value,
    title_actor: &'static str,
    actor_type: &'static str,
}

fn person_cases() -> Vec<PersonCase> {
    vec![
        PersonCase {
            setting: "role_names = [\"okta-*\"]",
            event: with(|e| e["userIdentity"] = role("okta-Admin")),
            title_actor: "role okta-Admin, session \"alice@corp.example\"",
            actor_type: "IdPRoleUser",
        },
        PersonCase {
            setting: "source_identity = true",
            event: with(|e| {
                e["userIdentity"] = role("deployer");
                e["userIdentity"]["sessionContext"]["sourceIdentity"] = json!("alice");
            }),
            title_actor: "role deployer, source identity \"alice\"",
            actor_type: "SourceIdentityUser",
        },
        PersonCase {
            setting: "root = true",
            event: with(|e| {
                e["userIdentity"] = json!({"type": "Root", "principalId": "111122223333",
                    "arn": "arn:aws:iam::111122223333:root", "accountId": "111122223333"});
            }),
            title_actor: "root of account 111122223333",
            actor_type: "Root",
        },
        PersonCase {
            setting: "identity_center_users = true",
            event: with(|e| {
                e["userIdentity"] = json!({"type": "IdentityCenterUser", "accountId": "111122223333",
                    "onBehalfOf": {"userId": "94482488-3041-7026-18f3-be45837cd0e4",
                        "identityStoreArn": "arn:aws:identitystore::111122223333:identitystore/d-1"}});
            }),
            title_actor: "Identity Center user 94482488-3041-7026-18f3-be45837cd0e4",
            actor_type: "IdentityCenterUser",
        },
        PersonCase {
            setting: "identity_center_users = true",
            event: with(|e| {
                e["userIdentity"] = role("q-app");
                e["userIdentity"]["onBehalfOf"] = json!({"userId": "u-7",
                    "identityStoreArn": "arn:aws:identitystore::1:identitystore/d-1"});
            }),
            title_actor: "Identity Center user u-7 via role q-app",
            actor_type: "IdentityCenterUser",
        },
    ]
}

#[test]
fn each_people_setting_alone_makes_its_kind_a_person_and_no_other() {
    let original = Detector::default();
    let cases = person_cases();
    for case in &cases {
        assert_eq!(
            verdict(&original, &case.event),
            "not-a-person",
            "{}: the original rule stays quiet",
            case.setting
        );
        let tuned = detector(&format!("[people]\n{}\n", case.setting));
        assert_eq!(
            verdict(&tuned, &case.event),
            format!(
                "alert {} User [{}] updated Lambda function code for [production-api]",
                case.actor_type, case.title_actor
            ),
            "{}",
            case.setting
        );
        // No other setting makes this kind a person.
        for other in &cases {
            if other.setting != case.setting {
                assert_eq!(
                    verdict(
                        &detector(&format!("[people]\n{}\n", other.setting)),
                        &case.event
                    ),
                    "not-a-person",
                    "{} must not count {}",
                    other.setting,
                    case.title_actor
                );
            }
        }
    }
    // Not matching the glob: still a role.
    let tuned = detector("[people]\nrole_names = [\"okta-*\"]\n");
    assert_eq!(
        verdict(&tuned, &with(|e| e["userIdentity"] = role("Okta-Admin"))),
        "not-a-person",
        "globs are case-sensitive, as IAM role names are"
    );
    // The original people are named as the original rule names them, whatever [people] says.
    let all = detector(
        "[people]\nrole_names = [\"*\"]\nsource_identity = true\nroot = true\nidentity_center_users = true\n",
    );
    for path in common::event_files("alert")
        .into_iter()
        .chain(common::event_files("quiet"))
    {
        let event: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        if verdict(&original, &event).starts_with("alert ") {
            assert_eq!(
                verdict(&all, &event),
                verdict(&original, &event),
                "{}",
                path.display()
            );
        }
    }
    // A caller-chosen session name is labelled in the text rendering.
    let Outcome::Alert(alert) = detector("[people]\nrole_names = [\"okta-*\"]\n")
        .assess(&record(&with(|e| e["userIdentity"] = role("okta-Admin"))))
    else {
        panic!("alerts")
    };
    assert_eq!(
        alert.actor_session_name.as_deref(),
        Some("alice@corp.example")
    );
    assert!(
        alert.to_text().contains("not proof of identity"),
        "{}",
        alert.to_text()
    );
}

// ---------------------------------------------------------------------------------- [[suppress]]

/// (matcher line, an event it matches, a near miss it must not match).
fn matcher_cases() -> Vec<(&'static str, Value, Value)> {
    vec![
        (
            "invoked_by = \"cloudformation.amazonaws.com\"",
            with(|e| e["userIdentity"]["invokedBy"] = json!("cloudformation.amazonaws.com")),
            with(|e| e["userIdentity"]["invokedBy"] = json!("servicecatalog.amazonaws.com")),
        ),
        (
            "accounts = [\"444455556666\"]",
            with(|e| e["recipientAccountId"] = json!("444455556666")),
            with(|e| e["recipientAccountId"] = json!("444455556667")),
        ),
        (
            "functions = [\"sandbox-*\"]",
            with(|e| e["responseElements"]["functionName"] = json!("sandbox-api")),
            with(|e| e["responseElements"]["functionName"] = json!("prod-sandbox-api")),
        ),
        (
            "principals = [\"arn:aws:iam::*:user/breakglass-*\"]",
            with(|e| {
                e["userIdentity"]["arn"] = json!("arn:aws:iam::123456789012:user/breakglass-ops")
            }),
            with(|e| {
                e["userIdentity"]["arn"] = json!("arn:aws:iam::123456789012:user/ops-breakglass")
            }),
        ),
        (
            "source_ips = [\"10.0.0.0/8\", \"2001:db8::/32\"]",
            with(|e| e["sourceIPAddress"] = json!("10.200.3.4")),
            with(|e| e["sourceIPAddress"] = json!("11.0.0.1")),
        ),
        (
            "user_agents = [\"release-tool/*\"]",
            with(|e| e["userAgent"] = json!("release-tool/2.1 (linux)")),
            with(|e| e["userAgent"] = json!("aws-cli/2.13 release-tool/2.1")),
        ),
    ]
}

#[test]
fn each_matcher_alone_suppresses_what_it_matches_and_nothing_else() {
    for (matcher, hit, miss) in matcher_cases() {
        let tuned = detector(&format!("[[suppress]]\nreason = \"r\"\n{matcher}\n"));
        assert_eq!(verdict(&tuned, &hit), "suppressed suppress[1]", "{matcher}");
        assert!(
            verdict(&tuned, &miss).starts_with("alert "),
            "{matcher}: near miss"
        );
        assert!(
            verdict(&tuned, &base()).starts_with("alert "),
            "{matcher}: the sample"
        );
        let Outcome::Suppressed(suppressed) = tuned.assess(&record(&hit)) else {
            unreachable!()
        };
        assert_eq!(suppressed.reason, "r");
        assert_eq!(
            suppressed.alert,
            *Detector::default().assess(&record(&hit)).alert().unwrap()
        );
    }
    // An IPv6 caller against an IPv6 network; a service name where an IP would be never matches.
    let tuned = detector("[[suppress]]\nreason = \"r\"\nsource_ips = [\"2001:db8::/32\"]\n");
    assert_eq!(
        verdict(
            &tuned,
            &with(|e| e["sourceIPAddress"] = json!("2001:db8::1"))
        ),
        "suppressed suppress[1]"
    );
    assert!(
        verdict(
            &tuned,
            &with(|e| e["sourceIPAddress"] = json!("lambda.amazonaws.com"))
        )
        .starts_with("alert ")
    );
    // The issuer's ARN counts as the principal for role sessions.
    let tuned = detector(
        "[people]\nrole_names = [\"okta-*\"]\n[[suppress]]\nreason = \"r\"\nprincipals = [\"arn:aws:iam::*:role/okta-Admin\"]\n",
    );
    assert_eq!(
        verdict(&tuned, &with(|e| e["userIdentity"] = role("okta-Admin"))),
        "suppressed suppress[1]"
    );
}

#[test]
fn combined_matchers_must_all_match() {
    let cases = matcher_cases();
    let all: String = cases.iter().map(|(m, _, _)| format!("{m}\n")).collect();
    let tuned = detector(&format!(
        "[[suppress]]\nreason = \"everything at once\"\n{all}"
    ));
    let everything = with(|e| {
        e["userIdentity"]["invokedBy"] = json!("cloudformation.amazonaws.com");
        e["recipientAccountId"] = json!("444455556666");
        e["responseElements"]["functionName"] = json!("sandbox-api");
        e["userIdentity"]["arn"] = json!("arn:aws:iam::123456789012:user/breakglass-ops");
        e["sourceIPAddress"] = json!("10.200.3.4");
        e["userAgent"] = json!("release-tool/2.1");
    });
    assert_eq!(verdict(&tuned, &everything), "suppressed suppress[1]");
    for (matcher, _, _) in &cases {
        // Each hit alone matches one matcher only: not enough.
        let one = &cases.iter().find(|(m, _, _)| m == matcher).unwrap().1;
        assert!(
            verdict(&tuned, one).starts_with("alert "),
            "{matcher} alone"
        );
    }
    // Break one field of the full match: an alert.
    let broken = {
        let mut e = everything.clone();
        e["sourceIPAddress"] = json!("11.0.0.1");
        e
    };
    assert!(verdict(&tuned, &broken).starts_with("alert "));
    // The first matching entry is the one named.
    let two = detector(
        "[[suppress]]\nreason = \"a\"\nfunctions = [\"x-*\"]\n[[suppress]]\nreason = \"b\"\nfunctions = [\"sandbox-*\"]\n[[suppress]]\nreason = \"c\"\naccounts = [\"444455556666\"]\n",
    );
    assert_eq!(verdict(&two, &everything), "suppressed suppress[2]");
}

#[test]
fn an_expired_entry_no_longer_suppresses_and_is_named_on_the_alert() {
    let policy = "[[suppress]]\nreason = \"lapsed\"\nfunctions = [\"production-*\"]\nexpires = \"2025-12-31\"\n";
    let on = |y, m, d| {
        Detector::on(
            Policy::parse("p", policy).unwrap(),
            Date::new(y, m, d).unwrap(),
        )
    };
    assert_eq!(
        verdict(&on(2025, 12, 31), &base()),
        "suppressed suppress[1]"
    );
    let after = on(2026, 1, 1);
    let Outcome::Alert(alert) = after.assess(&record(&base())) else {
        panic!("an expired entry hides nothing")
    };
    assert_eq!(alert.expired_suppressions.len(), 1);
    assert_eq!(alert.expired_suppressions[0].entry, "suppress[1]");
    assert_eq!(alert.expired_suppressions[0].expired_after, "2025-12-31");
    let document: Value = serde_json::from_str(&alert.to_json()).unwrap();
    assert_eq!(document["expired_suppressions"][0]["reason"], "lapsed");
    assert!(
        alert
            .to_text()
            .contains("suppress[1] (\"lapsed\") would have hidden this alert")
    );
    assert_eq!(after.expired_entries().len(), 1);
    // Without a policy the document has no such field.
    let plain: Value = serde_json::from_str(
        &Detector::default()
            .assess(&record(&base()))
            .alert()
            .unwrap()
            .to_json(),
    )
    .unwrap();
    assert!(plain.get("expired_suppressions").is_none());
}

// --------------------------------------------------------------------------------- through scan

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().into_owned()
}

#[test]
fn the_example_policy_loads_and_scan_reports_per_entry() {
    let example = common::repo_dir().join("examples/policy.toml");
    let policy = Policy::load(&example).expect("examples/policy.toml is a valid policy");
    assert_eq!(policy.suppressions.len(), 3);
    assert!(
        policy.people.root && policy.people.source_identity && policy.people.identity_center_users
    );
    assert!(
        policy.people.role_name_matches("okta-Admin")
            && policy.people.role_name_matches("AzureAD-Dev")
    );

    let dir = tempfile::tempdir().unwrap();
    let events = [
        with(|e| {
            e["eventID"] = json!("cfn");
            e["recipientAccountId"] = json!("111122223333");
            e["userIdentity"]["invokedBy"] = json!("cloudformation.amazonaws.com");
        }),
        with(|e| {
            e["eventID"] = json!("sandbox-account");
            e["recipientAccountId"] = json!("444455556666");
        }),
        with(|e| e["eventID"] = json!("kept")),
    ];
    let input: String = events.iter().map(|e| format!("{e}\n")).collect();
    let file = write(dir.path(), "events.ndjson", &input);
    let out = common::cli(
        &[
            "scan",
            "--policy",
            &example.to_string_lossy(),
            "--explain",
            &file,
        ],
        b"",
    );
    let err = common::stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let alerts = common::stdout_lines(&out);
    assert_eq!(alerts.len(), 1, "{err}");
    assert_eq!(alerts[0]["event_id"], "kept");
    assert!(err.contains("events.ndjson:1: suppressed by suppress[1] (\"CloudFormation deploys by developers are reviewed in the pipeline\")"), "{err}");
    assert!(
        err.contains("events.ndjson:2: suppressed by suppress[3]"),
        "{err}"
    );
    assert!(err.contains("suppress[1]: 1 alert(s) suppressed"), "{err}");
    assert!(err.contains("suppress[2]: 0 alert(s) suppressed"), "{err}");
    assert!(err.contains("suppress[3]: 1 alert(s) suppressed"), "{err}");
    assert!(err.contains("1 alert(s), 2 suppressed, 0 quiet"), "{err}");
    assert_eq!(common::summary_counts(&out), (3, 1, 0));
}

#[test]
fn the_canary_stays_quiet_in_scan_as_in_the_function() {
    // A policy that makes every role a person would turn the deployment's canary into an alert;
    // told the canary's role, scan keeps it quiet, as the deployed function does.
    let dir = tempfile::tempdir().unwrap();
    let policy = write(
        dir.path(),
        "policy.toml",
        "[people]\nrole_names = [\"*\"]\n",
    );
    let canary_role = "arn:aws:iam::123456789012:role/lcw-CanaryRole-1A2B3C";
    let event = with(|e| {
        e["userIdentity"] = role("lcw-CanaryRole-1A2B3C");
        e["userIdentity"]["sessionContext"]["sessionIssuer"]["arn"] = json!(canary_role);
    });
    let events = write(dir.path(), "events.json", &event.to_string());
    let widened = common::cli(&["scan", "--policy", &policy, &events], b"");
    assert_eq!(
        common::summary_counts(&widened).1,
        1,
        "{}",
        common::stderr(&widened)
    );
    let told = common::cli(
        &[
            "scan",
            "--policy",
            &policy,
            "--canary-role",
            canary_role,
            &events,
        ],
        b"",
    );
    assert_eq!(
        common::summary_counts(&told).1,
        0,
        "{}",
        common::stderr(&told)
    );
    assert!(
        common::stderr(&told).contains(", 1 canary"),
        "{}",
        common::stderr(&told)
    );
}

#[test]
fn scan_reports_every_alert_an_expired_entry_would_have_hidden() {
    let dir = tempfile::tempdir().unwrap();
    let policy = write(
        dir.path(),
        "lapsed.toml",
        "\n[[suppress]]\nreason = \"old exception\"\nfunctions = [\"production-*\"]\nexpires = 2020-01-01\n",
    );
    let file = write(dir.path(), "e.ndjson", &format!("{}\n{}\n", base(), base()));
    let out = common::cli(&["scan", "--policy", &policy, &file], b"");
    let err = common::stderr(&out);
    assert_eq!(common::stdout_lines(&out).len(), 2, "{err}");
    assert!(err.contains("lapsed.toml:2: suppress[1] (\"old exception\") expired after 2020-01-01: it no longer suppresses anything"), "{err}");
    assert_eq!(
        err.matches("e.ndjson:1: suppress[1] (\"old exception\") expired after 2020-01-01")
            .count(),
        1,
        "{err}"
    );
    assert_eq!(
        err.matches("expired after 2020-01-01: it would have hidden this alert")
            .count(),
        2,
        "{err}"
    );
    assert!(
        err.contains("expired: 2 alert(s) it would have hidden were delivered"),
        "{err}"
    );
}

#[test]
fn a_bad_policy_stops_scan_with_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    for (text, says) in [
        (
            "[people]\nrole_names = [\"okta-[\"]\n",
            ":2: people.role_names: invalid glob",
        ),
        (
            "[[suppress]]\nreason = \"r\"\nsource_ips = [\"10.0.0.0/40\"]\n",
            ":3: suppress[1].source_ips: \"10.0.0.0/40\" is not an IP network",
        ),
        (
            "[[suppress]]\nfunctions = [\"a\"]\n",
            ":1: suppress[1]: has no reason",
        ),
        (
            "[[suppress]]\nreason = \"r\"\n",
            ":1: suppress[1]: has no matcher",
        ),
        (
            "[[suppress]]\nreason = \"r\"\nfunctions = [\"a\"]\nexpires = \"next year\"\n",
            ":4: suppress[1].expires: \"next year\" is not a date",
        ),
        (
            "[[suppress]]\nreason = \"r\"\nfunctionz = [\"a\"]\n",
            ":3: suppress[1]: unknown field `functionz`",
        ),
    ] {
        let policy = write(dir.path(), "bad.toml", text);
        let out = common::cli(&["scan", "--policy", &policy, "events/"], b"");
        let err = common::stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{text}: {err}");
        assert!(
            err.contains(&format!("invalid policy: {policy}{says}")),
            "{text}: {err}"
        );
        assert!(out.stdout.is_empty(), "nothing scanned under a bad policy");
    }
    let out = common::cli(&["scan", "--policy", "no/such/policy.toml", "events/"], b"");
    assert_eq!(out.status.code(), Some(2));
    assert!(common::stderr(&out).contains("no/such/policy.toml: cannot read the policy"));
}

#[test]
fn the_corpus_under_a_policy() {
    let Some(corpus) = common::corpus_dir() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let real = corpus.join("real").to_string_lossy().into_owned();
    let fixtures = corpus.join("fixtures").to_string_lossy().into_owned();
    let scan = |policy: Option<&str>| {
        let mut args = vec!["scan", "--explain"];
        if let Some(policy) = policy {
            args.extend(["--policy", policy]);
        }
        args.extend([real.as_str(), fixtures.as_str()]);
        common::cli(&args, b"")
    };
    let original = scan(None);
    assert_eq!(common::summary_counts(&original), (958, 4, 0));

    // Panther's own CI/CD-role fixtures use a role named "Tester": counted as people, they alert
    // with the role named; a suppression for production-* hides Panther's three positives.
    let policy = write(
        dir.path(),
        "corpus.toml",
        "[people]\nrole_names = [\"Tester\"]\nroot = true\n\n[[suppress]]\nreason = \"production deploys\"\nfunctions = [\"production-*\"]\n",
    );
    let tuned = scan(Some(&policy));
    let err = common::stderr(&tuned);
    assert_eq!(common::summary_counts(&tuned), (958, 3, 0), "{err}");
    assert!(err.contains("3 alert(s), 3 suppressed"), "{err}");
    assert!(
        err.contains("suppress[1]: 3 alert(s) suppressed (\"production deploys\")"),
        "{err}"
    );
    let titles: Vec<String> = common::stdout_lines(&tuned)
        .iter()
        .map(|a| a["title"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        titles
            .iter()
            .filter(|t| t.starts_with("User [role Tester, session "))
            .count(),
        2,
        "{titles:?}"
    );
    assert!(
        titles.iter().any(|t| t.contains("[christophe]")),
        "the real alert stays"
    );

    // A policy that changes nothing gives the original output byte for byte.
    let empty = write(dir.path(), "empty.toml", "# nothing\n");
    let same = scan(Some(&empty));
    assert_eq!(same.stdout, original.stdout);
}

#[test]
fn scan_group_backtests_what_the_team_would_have_received() {
    let dir = tempfile::tempdir().unwrap();
    let at = |id: &str, time: &str, user: &str| {
        with(|e| {
            e["eventID"] = json!(id);
            e["eventTime"] = json!(time);
            e["userIdentity"]["userName"] = json!(user);
        })
        .to_string()
    };
    let input = [
        at("a3", "2024-03-01T10:50:00Z", "alice"),
        at("a1", "2024-03-01T10:00:00Z", "alice"),
        at("b1", "2024-03-01T10:05:00Z", "bob"),
        at("a2", "2024-03-01T10:20:00Z", "alice"),
        at("a2", "2024-03-01T10:20:00Z", "alice"),
        at("a4", "2024-03-01T11:30:00Z", "alice"),
    ]
    .join("\n");
    let file = write(dir.path(), "h.ndjson", &input);
    let out = common::cli(&["scan", "--group", &file], b"");
    let err = common::stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let lines = common::stdout_lines(&out);
    let shown: Vec<String> = lines
        .iter()
        .map(|l| match l["kind"].as_str() {
            Some("group_summary") => format!("summary {} {}", l["count"], l["event_ids"]),
            _ => l["event_id"].as_str().unwrap().to_owned(),
        })
        .collect();
    assert_eq!(
        shown,
        ["a1", "b1", "summary 3 [\"a1\",\"a2\",\"a3\"]", "a4"],
        "{err}"
    );
    assert!(err.contains("grouped by title in 60-minute windows: 6 alert(s) (1 repeating an event id already seen, dropped) -> 4 notification(s): 3 delivered at once, 1 summary of 2 grouped alert(s)"), "{err}");
    assert_eq!(common::summary_counts(&out), (6, 6, 0));
    // Window 0: everything delivered (the repeat still dropped).
    let out = common::cli(&["scan", "--group", "--window-minutes", "0", &file], b"");
    assert_eq!(common::stdout_lines(&out).len(), 5);
    // --window-minutes needs --group.
    let out = common::cli(&["scan", "--window-minutes", "5", &file], b"");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn each_setting_and_matcher_alone_and_combined_on_the_corpus() {
    let Some(corpus) = common::corpus_dir() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let real = corpus.join("real").to_string_lossy().into_owned();
    let fixtures = corpus.join("fixtures").to_string_lossy().into_owned();
    // (policy, alerts, suppressed), over real/ and fixtures/: 958 records, 4 alerts originally
    // (john.developer, bob.ross and a federated session in Panther's fixtures, account
    // 123456789012, from 203.0.113.50 with aws-cli; christophe in the Stratus detonation).
    let cases = [
        ("[people]\nrole_names = [\"Tester\"]\n", 6, 0),
        ("[people]\nsource_identity = true\n", 4, 0),
        ("[people]\nroot = true\n", 4, 0),
        ("[people]\nidentity_center_users = true\n", 4, 0),
        ("[[suppress]]\nreason = \"r\"\ninvoked_by = \"*\"\n", 4, 0),
        (
            "[[suppress]]\nreason = \"r\"\naccounts = [\"123456789012\"]\n",
            1,
            3,
        ),
        (
            "[[suppress]]\nreason = \"r\"\nfunctions = [\"production-*\"]\n",
            1,
            3,
        ),
        (
            "[[suppress]]\nreason = \"r\"\nprincipals = [\"arn:aws:iam::*:user/christophe\"]\n",
            3,
            1,
        ),
        (
            "[[suppress]]\nreason = \"r\"\nsource_ips = [\"203.0.113.0/24\"]\n",
            1,
            3,
        ),
        (
            "[[suppress]]\nreason = \"r\"\nuser_agents = [\"stratus-red-team_*\"]\n",
            3,
            1,
        ),
        (
            "[[suppress]]\nreason = \"r\"\naccounts = [\"123456789012\"]\nsource_ips = [\"203.0.113.0/24\"]\nuser_agents = [\"aws-cli/*\"]\n",
            1,
            3,
        ),
        (
            "[[suppress]]\nreason = \"r\"\naccounts = [\"123456789012\"]\nfunctions = [\"nothing-*\"]\n",
            4,
            0,
        ),
        (
            "[people]\nrole_names = [\"Tester\"]\n[[suppress]]\nreason = \"r\"\nprincipals = [\"arn:aws:iam::*:role/tester\"]\n",
            4,
            2,
        ),
    ];
    for (policy, alerts, suppressed) in cases {
        let file = write(dir.path(), "p.toml", policy);
        let out = common::cli(&["scan", "--policy", &file, &real, &fixtures], b"");
        let err = common::stderr(&out);
        assert_eq!(
            common::summary_counts(&out),
            (958, alerts, 0),
            "{policy}\n{err}"
        );
        assert!(
            err.contains(&format!("{alerts} alert(s), {suppressed} suppressed")),
            "{policy}\n{err}"
        );
    }
}
