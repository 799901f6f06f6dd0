//! Tuning, exactly-once delivery and grouping, end to end: the real handler under
//! `cargo lambda watch`, with DynamoDB, SNS, SQS and SSM on moto_server, and the fault proxy in
//! front of SNS only (`AWS_ENDPOINT_URL_SNS`), so the store is never the thing failing.
//!
//! - the same event twice: one message; an event whose first publish failed and was retried: one;
//! - three events of one key inside the window: one message, then (after the window) one summary
//!   with the count and the event ids; a different key is not held back;
//! - `DEDUP_TABLE` unset: alerts, quiet events and the summary schedule still work;
//! - the policy through the handler gives the verdict `scan --policy` gives, event by event;
//! - an SSM policy refreshed to a bad document: the last good one stays, the refusal is logged and
//!   counted; a good change is taken;
//! - a burst of 1,000 alert events (some delivered twice) under random SNS faults: every event
//!   published exactly once, after retries for those whose invocation failed.
//!
//! Needs moto_server, cargo-lambda and python3 with boto3 (scripts/test installs them): under
//! `CI=true` their absence fails the tests, elsewhere it skips them.

mod common;
mod support_lambda;

use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use support_lambda::{Fault, FaultProxy, Moto, Subscription, Tools, Watch, aws_helper, repo_dir};

fn sample(name: &str) -> Value {
    let path = repo_dir().join("events/eventbridge/alert").join(name);
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

/// The IAM user sample with another event id (and, when given, another user: another key).
fn alert_event(event_id: &str, user: Option<&str>) -> Vec<u8> {
    let mut event = sample("iam-user.json");
    event["detail"]["eventID"] = json!(event_id);
    if let Some(user) = user {
        event["detail"]["userIdentity"]["userName"] = json!(user);
    }
    event.to_string().into_bytes()
}

fn scheduled_event() -> Vec<u8> {
    json!({"version": "0", "id": "sweep", "detail-type": "Scheduled Event", "source": "aws.events",
           "account": "123456789012", "time": "2026-01-01T00:00:00Z", "region": "us-east-1",
           "resources": [], "detail": {}})
    .to_string()
    .into_bytes()
}

/// The alert documents and summaries in the queue, by what they are.
fn messages(moto: &Moto, subscription: &Subscription) -> Vec<Value> {
    moto.drain(subscription)
        .into_iter()
        .map(|envelope| {
            serde_json::from_str(envelope["Message"].as_str().expect("a Message")).unwrap()
        })
        .collect()
}

struct Stack {
    tools: Tools,
    moto: Moto,
    subscription: Subscription,
    proxy: FaultProxy,
    table: String,
}

fn stack(name: &str) -> Option<Stack> {
    let tools = Tools::find("lambda_tuning")?;
    let moto = Moto::start(&tools, name);
    let subscription = moto.topic_with_queue(&format!("lcw-{name}"));
    let table = format!("lcw-{name}-events");
    aws_helper(&tools, &moto, &["table", "--name", &table]);
    let proxy = FaultProxy::start(moto.port);
    Some(Stack {
        tools,
        moto,
        subscription,
        proxy,
        table,
    })
}

impl Stack {
    fn watch(&self, name: &str, extra: &[(&str, &str)]) -> Watch {
        let proxy = self.proxy.endpoint();
        let mut env = vec![
            ("AWS_ENDPOINT_URL", self.moto.endpoint.as_str()),
            ("AWS_ENDPOINT_URL_SNS", proxy.as_str()),
            ("ALERT_TOPIC_ARN", self.subscription.topic_arn.as_str()),
            ("DEDUP_TABLE", self.table.as_str()),
        ];
        env.extend_from_slice(extra);
        Watch::start(&self.tools, name, &env)
    }
}

#[test]
fn one_event_alerts_once_even_when_repeated_or_retried() {
    let Some(stack) = stack("exactly-once") else {
        return;
    };
    let mut watch = stack.watch("exactly-once", &[]);

    let first = watch.invoke(&alert_event("once-1", None));
    assert!(first.succeeded(), "{first:?}");
    assert_eq!(first.body["delivery"], "published");
    let again = watch.invoke(&alert_event("once-1", None));
    assert!(again.succeeded(), "{again:?}");
    assert_eq!(again.body["delivery"], "duplicate");
    assert_eq!(again.body["message_id"], first.body["message_id"]);
    let got = messages(&stack.moto, &stack.subscription);
    assert_eq!(got.len(), 1, "{got:#?}");
    assert_eq!(got[0]["event_id"], "once-1");

    // The first publish fails (every SDK attempt), the invocation fails, and Lambda's retry
    // publishes it: exactly one message. (Another user: another key, so no open window.)
    stack.proxy.fail_always(Some(Fault::ServerError));
    let failed = watch.invoke(&alert_event("once-2", Some("eve")));
    assert_eq!(failed.error_type(), Some("AlertNotDelivered"), "{failed:?}");
    assert_eq!(
        messages(&stack.moto, &stack.subscription),
        Vec::<Value>::new()
    );
    stack.proxy.fail_always(None);
    let retried = watch.invoke(&alert_event("once-2", Some("eve")));
    assert_eq!(retried.body["delivery"], "published", "{retried:?}");
    let again = watch.invoke(&alert_event("once-2", Some("eve")));
    assert_eq!(again.body["delivery"], "duplicate", "{again:?}");
    let got = messages(&stack.moto, &stack.subscription);
    assert_eq!(got.len(), 1, "{got:#?}");
    assert_eq!(got[0]["event_id"], "once-2");

    // Transient faults that outlast the SDK's three attempts: the same.
    stack
        .proxy
        .fail_next(&[Fault::ServerError, Fault::Throttling, Fault::HangUp]);
    let failed = watch.invoke(&alert_event("once-3", Some("mallory")));
    assert_eq!(failed.error_type(), Some("AlertNotDelivered"), "{failed:?}");
    let retried = watch.invoke(&alert_event("once-3", Some("mallory")));
    assert_eq!(retried.body["delivery"], "published", "{retried:?}");
    watch.invoke(&alert_event("once-3", Some("mallory")));
    let got = messages(&stack.moto, &stack.subscription);
    assert_eq!(got.len(), 1, "{got:#?}");
    assert_eq!(got[0]["event_id"], "once-3");

    // An event of an open window's key is counted, not published, and only once.
    let grouped = watch.invoke(&alert_event("once-4", None));
    assert_eq!(grouped.body["delivery"], "grouped", "{grouped:?}");
    assert_eq!(grouped.body["group_count"], 2, "{grouped:?}");
    let again = watch.invoke(&alert_event("once-4", None));
    assert_eq!(again.body["delivery"], "duplicate", "{again:?}");
    assert_eq!(
        messages(&stack.moto, &stack.subscription),
        Vec::<Value>::new()
    );

    // What the table holds: completed event records with a TTL.
    let items = aws_helper(
        &stack.tools,
        &stack.moto,
        &["items", "--name", &stack.table],
    );
    let events: Vec<&Value> = items
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| {
            i["pk"]["S"]
                .as_str()
                .is_some_and(|pk| pk.starts_with("event#"))
        })
        .collect();
    assert_eq!(events.len(), 4, "{items:#}");
    for item in events {
        assert_eq!(item["status"]["S"], "completed", "{item}");
        assert!(item["expires_at"]["N"].is_string(), "{item}");
    }
}

#[test]
fn three_alerts_of_one_key_make_one_message_then_a_summary_of_three() {
    let Some(stack) = stack("grouping") else {
        return;
    };
    let mut watch = stack.watch("grouping", &[("DEDUP_WINDOW_MINUTES", "1")]);
    let opened = Instant::now();
    let mut deliveries = Vec::new();
    for id in ["g-1", "g-2", "g-3"] {
        let invocation = watch.invoke(&alert_event(id, None));
        assert!(invocation.succeeded(), "{invocation:?}");
        deliveries.push(invocation.body["delivery"].as_str().unwrap().to_owned());
    }
    assert_eq!(deliveries, ["published", "grouped", "grouped"]);
    // Another key is not held back by the open window.
    let other = watch.invoke(&alert_event("o-1", Some("mallory")));
    assert_eq!(other.body["delivery"], "published", "{other:?}");
    let got = messages(&stack.moto, &stack.subscription);
    let ids: BTreeSet<&str> = got.iter().filter_map(|m| m["event_id"].as_str()).collect();
    assert_eq!(ids, BTreeSet::from(["g-1", "o-1"]), "{got:#?}");

    // Before the window closes the sweep publishes nothing; after, one summary of three.
    let early = watch.invoke(&scheduled_event());
    assert_eq!(early.body["summaries_published"], 0, "{early:?}");
    let closes = opened + Duration::from_secs(62);
    std::thread::sleep(closes.saturating_duration_since(Instant::now()));
    let swept = watch.invoke(&scheduled_event());
    assert!(swept.succeeded(), "{swept:?}");
    assert_eq!(swept.body["summaries_published"], 1, "{swept:?}");
    let got = messages(&stack.moto, &stack.subscription);
    assert_eq!(got.len(), 1, "{got:#?}");
    let summary = &got[0];
    assert_eq!(summary["kind"], "group_summary");
    assert_eq!(summary["count"], 3);
    assert_eq!(summary["event_ids"], json!(["g-1", "g-2", "g-3"]));
    assert!(
        summary["title"]
            .as_str()
            .unwrap()
            .starts_with("3 alerts: User [john.developer]"),
        "{summary}"
    );
    // Once.
    let again = watch.invoke(&scheduled_event());
    assert_eq!(again.body["summaries_published"], 0);
    assert_eq!(
        messages(&stack.moto, &stack.subscription),
        Vec::<Value>::new()
    );
    // The key's next alert opens a new window and is published.
    let next = watch.invoke(&alert_event("g-4", None));
    assert_eq!(next.body["delivery"], "published", "{next:?}");
}

#[test]
fn without_a_table_everything_still_works() {
    let Some(tools) = Tools::find("lambda_tuning") else {
        return;
    };
    let moto = Moto::start(&tools, "no-table");
    let subscription = moto.topic_with_queue("lcw-no-table");
    let mut watch = Watch::start(
        &tools,
        "no-table",
        &[
            ("AWS_ENDPOINT_URL", &moto.endpoint),
            ("ALERT_TOPIC_ARN", &subscription.topic_arn),
        ],
    );
    for _ in 0..2 {
        let invocation = watch.invoke(&alert_event("nt-1", None));
        assert!(invocation.succeeded(), "{invocation:?}");
        assert_eq!(invocation.body["delivery"], "published");
    }
    // What going without the table costs: a repeated delivery alerts again, nothing is grouped.
    assert_eq!(messages(&moto, &subscription).len(), 2);
    let quiet = watch.invoke_file(&repo_dir().join("events/eventbridge/quiet/cicd-role.json"));
    assert_eq!(quiet.body["verdict"], "quiet", "{quiet:?}");
    let swept = watch.invoke(&scheduled_event());
    assert!(swept.succeeded(), "{swept:?}");
    assert_eq!(swept.body["summaries_published"], 0);
    assert!(
        watch.output().contains("DEDUP_TABLE is unset"),
        "says what it costs at start"
    );
}

// ------------------------------------------------------------------ the policy, handler = scan

/// A policy with every `[people]` setting and one entry per matcher, plus a combined one.
const POLICY: &str = r#"
[people]
role_names = ["okta-*", "Tester"]
source_identity = true
root = true
identity_center_users = true

[[suppress]]
reason = "CloudFormation deploys"
invoked_by = "cloudformation.amazonaws.com"

[[suppress]]
reason = "sandbox account"
accounts = ["444455556666"]

[[suppress]]
reason = "sandbox functions"
functions = ["sandbox-*"]

[[suppress]]
reason = "break-glass users"
principals = ["arn:aws:iam::*:user/breakglass-*"]

[[suppress]]
reason = "office network"
source_ips = ["10.0.0.0/8"]

[[suppress]]
reason = "the release tool"
user_agents = ["release-tool/*"]

[[suppress]]
reason = "combined: okta admins on staging from the VPN"
functions = ["staging-*"]
principals = ["arn:aws:iam::*:role/okta-Admin"]
source_ips = ["192.168.0.0/16"]

[[suppress]]
reason = "lapsed exception"
functions = ["legacy-*"]
expires = "2020-01-01"
"#;

/// Crafted records: each `[people]` kind, each matcher hit alone, near misses, the combination.
pub fn crafted_events() -> Vec<(String, Value)> {
    let base = sample("iam-user.json");
    let mut events = Vec::new();
    let mut add = |name: &str, change: &dyn Fn(&mut Value)| {
        let mut event = base.clone();
        event["detail"]["eventID"] = json!(format!("crafted-{name}"));
        change(&mut event["detail"]);
        events.push((name.to_owned(), event));
    };
    let role = |name: &str| {
        json!({"type": "AssumedRole", "principalId": format!("AROAEXAMPLE:alice@corp.example"),
               "arn": format!("arn:aws:sts::111122223333:assumed-role/{name}/alice@corp.example"),
               "accountId": "111122223333",
               "sessionContext": {"sessionIssuer": {"type": "Role", "principalId": "AROAEXAMPLE",
                   "arn": format!("arn:aws:iam::111122223333:role/{name}"),
                   "accountId": "111122223333", "userName": name}}})
    };
    add("plain-iam-user", &|_| {});
    add("okta-role", &|d| d["userIdentity"] = role("okta-Admin"));
    add("other-role", &|d| d["userIdentity"] = role("deployer"));
    add("source-identity", &|d| {
        d["userIdentity"] = role("deployer");
        d["userIdentity"]["sessionContext"]["sourceIdentity"] = json!("alice");
    });
    add("root", &|d| {
        d["userIdentity"] = json!({"type": "Root", "principalId": "111122223333",
            "arn": "arn:aws:iam::111122223333:root", "accountId": "111122223333"});
    });
    add("identity-center-user", &|d| {
        d["userIdentity"] = json!({"type": "IdentityCenterUser", "accountId": "111122223333",
            "onBehalfOf": {"userId": "94482488-3041-7026-18f3-be45837cd0e4",
                "identityStoreArn": "arn:aws:identitystore::111122223333:identitystore/d-1234567890"},
            "credentialId": "EXAMPLEVHULjJdTUdPJfofVa1sufHDoj7aYcOYcxFVllWR_Whr1fEXAMPLE"});
    });
    add("on-behalf-of", &|d| {
        d["userIdentity"] = role("q-business-app");
        d["userIdentity"]["onBehalfOf"] = json!({"userId": "u-7", "identityStoreArn": "arn:aws:identitystore::1:identitystore/d-1"});
    });
    add("cloudformation", &|d| {
        d["userIdentity"]["invokedBy"] = json!("cloudformation.amazonaws.com")
    });
    add("other-service", &|d| {
        d["userIdentity"]["invokedBy"] = json!("servicecatalog.amazonaws.com")
    });
    add("sandbox-account", &|d| {
        d["recipientAccountId"] = json!("444455556666")
    });
    add("sandbox-function", &|d| {
        d["responseElements"]["functionName"] = json!("sandbox-api")
    });
    add("breakglass", &|d| {
        d["userIdentity"]["arn"] = json!("arn:aws:iam::123456789012:user/breakglass-ops");
        d["userIdentity"]["userName"] = json!("breakglass-ops");
    });
    add("office-ip", &|d| d["sourceIPAddress"] = json!("10.1.2.3"));
    add("public-ip", &|d| d["sourceIPAddress"] = json!("11.1.2.3"));
    add("release-tool", &|d| {
        d["userAgent"] = json!("release-tool/2.1")
    });
    add("combined-all", &|d| {
        d["userIdentity"] = role("okta-Admin");
        d["responseElements"]["functionName"] = json!("staging-api");
        d["sourceIPAddress"] = json!("192.168.1.1");
    });
    add("combined-wrong-ip", &|d| {
        d["userIdentity"] = role("okta-Admin");
        d["responseElements"]["functionName"] = json!("staging-api");
        d["sourceIPAddress"] = json!("172.16.0.1");
    });
    add("expired-entry", &|d| {
        d["responseElements"]["functionName"] = json!("legacy-api")
    });
    events
}

/// `scan --policy --explain` on each file: `alert <title>`, `suppressed suppress[N]`, or the
/// quiet reason.
fn scan_verdicts(policy: &Path, dir: &Path) -> BTreeMap<String, String> {
    let output = Command::new(env!("CARGO_BIN_EXE_lambda-code-watch"))
        .args(["scan", "--explain", "-j", "1", "--policy"])
        .arg(policy)
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut verdicts = BTreeMap::new();
    for line in String::from_utf8(output.stderr).unwrap().lines() {
        let Some((place, rest)) = line.split_once(".json:1: ") else {
            continue;
        };
        let name = Path::new(place)
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let verdict = if let Some(title) = rest.strip_prefix("alert: ") {
            format!("alert {title}")
        } else if let Some(rest) = rest.strip_prefix("suppressed by ") {
            format!("suppressed {}", rest.split_once(' ').unwrap().0)
        } else if let Some(rest) = rest.strip_prefix("quiet (") {
            rest.split_once(')').unwrap().0.to_owned()
        } else {
            continue; // expired-entry notes
        };
        verdicts.insert(name, verdict);
    }
    verdicts
}

#[test]
fn the_handler_applies_the_policy_exactly_as_scan_does() {
    let Some(tools) = Tools::find("lambda_tuning") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, POLICY).unwrap();
    let events = dir.path().join("events");
    std::fs::create_dir(&events).unwrap();
    for (name, event) in crafted_events() {
        std::fs::write(events.join(format!("{name}.json")), event.to_string()).unwrap();
    }
    // And every code update of the shared corpus, as recorded.
    let mut corpus_events = Vec::new();
    if let Some(corpus) = common::corpus_dir() {
        for folder in ["real", "fixtures"] {
            for file in common::corpus_files(&corpus, folder) {
                let text = std::fs::read_to_string(&file).unwrap();
                for (n, line) in text.lines().enumerate() {
                    if line.contains("UpdateFunctionCode") {
                        let name = format!("corpus-{folder}-{}", n + 1);
                        let mut record: Value = serde_json::from_str(line).unwrap();
                        if let Some(object) = record.as_object_mut() {
                            object.remove("_panther");
                        }
                        corpus_events.push((name, record));
                    }
                }
            }
        }
        assert!(corpus_events.len() >= 6, "{}", corpus_events.len());
    }
    for (name, event) in &corpus_events {
        std::fs::write(events.join(format!("{name}.json")), event.to_string()).unwrap();
    }
    let expected = scan_verdicts(&policy, &events);
    assert_eq!(
        expected.len(),
        crafted_events().len() + corpus_events.len(),
        "{expected:#?}"
    );

    let policy_path = policy.to_string_lossy().into_owned();
    let mut watch = Watch::start(
        &tools,
        "policy",
        &[("ALERT_STDOUT", "1"), ("POLICY_FILE", &policy_path)],
    );
    let mut got = BTreeMap::new();
    for (name, event) in crafted_events().into_iter().chain(corpus_events) {
        let invocation = watch.invoke(event.to_string().as_bytes());
        assert!(invocation.succeeded(), "{name}: {invocation:?}");
        let body = &invocation.body;
        let verdict = match body["verdict"].as_str().unwrap() {
            "alert" => format!("alert {}", body["alert_title"].as_str().unwrap()),
            "suppressed" => format!("suppressed {}", body["suppressed_by"].as_str().unwrap()),
            _ => body["reason"].as_str().unwrap().to_owned(),
        };
        got.insert(name, verdict);
    }
    assert_eq!(
        got, expected,
        "the handler and scan must agree on every event"
    );
    // And what they agree on is what the policy says.
    let expect = |name: &str, verdict: &str| {
        assert_eq!(got[name], verdict, "{name}");
    };
    expect(
        "okta-role",
        "alert User [role okta-Admin, session \"alice@corp.example\"] updated Lambda function code for [production-api]",
    );
    expect("other-role", "not-a-person");
    expect(
        "source-identity",
        "alert User [role deployer, source identity \"alice\"] updated Lambda function code for [production-api]",
    );
    expect(
        "root",
        "alert User [root of account 111122223333] updated Lambda function code for [production-api]",
    );
    expect(
        "identity-center-user",
        "alert User [Identity Center user 94482488-3041-7026-18f3-be45837cd0e4] updated Lambda function code for [production-api]",
    );
    expect(
        "on-behalf-of",
        "alert User [Identity Center user u-7 via role q-business-app] updated Lambda function code for [production-api]",
    );
    for (name, entry) in [
        ("cloudformation", 1),
        ("sandbox-account", 2),
        ("sandbox-function", 3),
        ("breakglass", 4),
        ("office-ip", 5),
        ("release-tool", 6),
        ("combined-all", 7),
    ] {
        expect(name, &format!("suppressed suppress[{entry}]"));
    }
    for name in [
        "other-service",
        "public-ip",
        "combined-wrong-ip",
        "expired-entry",
        "plain-iam-user",
    ] {
        assert!(got[name].starts_with("alert "), "{name}: {}", got[name]);
    }
    // The expired entry is reported, as a warning and a metric, every time it matches.
    let log = watch.output();
    assert!(
        log.contains("an expired policy entry matched this alert"),
        "{log}"
    );
    assert!(
        log.contains("\"Suppression\":\"suppress[8]\""),
        "per-entry metric: {log}"
    );
    assert!(
        log.contains("\"verdict\":\"suppressed\""),
        "suppressed log lines: {log}"
    );
}

#[test]
fn a_refreshed_policy_that_is_refused_keeps_the_last_good_one() {
    let Some(stack) = stack("policy-refresh") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let put = |text: &str| {
        let file = dir.path().join("p.toml");
        std::fs::write(&file, text).unwrap();
        aws_helper(
            &stack.tools,
            &stack.moto,
            &[
                "put-parameter",
                "--name",
                "/lcw/policy",
                "--file",
                &file.to_string_lossy(),
            ],
        );
    };
    put("[[suppress]]\nreason = \"john deploys production\"\nfunctions = [\"production-*\"]\n");
    let mut watch = stack.watch(
        "policy-refresh",
        &[
            ("POLICY_PARAMETER", "/lcw/policy"),
            ("POLICY_REFRESH_SECONDS", "1"),
            ("DEDUP_WINDOW_MINUTES", "0"),
        ],
    );
    let first = watch.invoke(&alert_event("r-1", None));
    assert_eq!(first.body["verdict"], "suppressed", "{first:?}");

    put("[[suppress]]\nreason = \"everything\"\nfunction = [\"*\"]\n");
    std::thread::sleep(Duration::from_millis(1100));
    let kept = watch.invoke(&alert_event("r-2", None));
    assert_eq!(
        kept.body["verdict"], "suppressed",
        "the last good policy stays: {kept:?}"
    );
    let log = watch.output();
    assert!(log.contains("policy refresh refused"), "{log}");
    assert!(
        log.contains("ssm:/lcw/policy:3"),
        "names the parameter and line: {log}"
    );
    assert!(log.contains("\"PolicyRejected\":1"), "counted: {log}");

    put("# the original rule\n");
    std::thread::sleep(Duration::from_millis(1100));
    let changed = watch.invoke(&alert_event("r-3", None));
    assert_eq!(
        changed.body["verdict"], "alert",
        "a good change is taken: {changed:?}"
    );
    assert_eq!(messages(&stack.moto, &stack.subscription).len(), 1);
}

// ------------------------------------------------------------------------ faults at volume

/// Sends `events` alert events (each a new key, so grouping publishes each) with about one in
/// ten delivered twice, through SNS failing `percent` % of requests at random; invocations that
/// fail are retried (as Lambda does) until they succeed. Returns the report.
pub fn fault_burst(events: usize, percent: u64, seed: u64) -> Option<BurstReport> {
    let stack = stack("burst")?;
    let mut watch = stack.watch("burst", &[("DEDUP_WINDOW_MINUTES", "0")]);
    stack.proxy.fail_randomly(
        seed,
        percent,
        &[
            Fault::ServerError,
            Fault::Throttling,
            Fault::HangUp,
            Fault::Stall,
            Fault::Malformed,
        ],
    );
    let mut deliveries: Vec<String> = (0..events).map(|i| format!("burst-{i:05}")).collect();
    // Repeated deliveries of the same id, some right after the first, some later.
    let repeats: Vec<String> = (0..events)
        .step_by(10)
        .map(|i| format!("burst-{i:05}"))
        .collect();
    for (n, id) in repeats.into_iter().enumerate() {
        let at = (n * 37 + 11) % deliveries.len();
        deliveries.insert(at.max(1), id);
    }
    let mut report = BurstReport {
        sent: deliveries.len(),
        ..BurstReport::default()
    };
    // The queue is drained as the burst goes (moto's receive slows down with the queue's length).
    let mut per_event: BTreeMap<String, usize> = BTreeMap::new();
    let drain = |per_event: &mut BTreeMap<String, usize>| {
        let drained = aws_helper(
            &stack.tools,
            &stack.moto,
            &["drain", "--name", &stack.subscription.queue_url],
        );
        for message in drained.as_array().expect("a list") {
            *per_event
                .entry(message["event_id"].as_str().unwrap().to_owned())
                .or_default() += 1;
        }
    };
    let mut pending: Vec<String> = Vec::new();
    for (n, id) in deliveries.iter().enumerate() {
        let invocation = watch.invoke(&alert_event(id, Some(id)));
        if !invocation.succeeded() {
            report.failed += 1;
            pending.push(id.clone());
        }
        if n % 250 == 249 {
            drain(&mut per_event);
        }
    }
    // Lambda's retries: until every failed invocation has succeeded.
    for round in 0.. {
        if pending.is_empty() {
            break;
        }
        assert!(round < 20, "still failing after 20 rounds: {pending:?}");
        let mut still = Vec::new();
        for id in pending {
            report.retried += 1;
            let invocation = watch.invoke(&alert_event(&id, Some(&id)));
            if !invocation.succeeded() {
                report.failed += 1;
                still.push(id);
            }
        }
        pending = still;
    }
    report.faults = stack.proxy.random_faults_injected();
    (report.sns_requests, report.sns_forwarded) = stack.proxy.take_counts();
    stack.proxy.fail_randomly(seed, 0, &[]);
    drain(&mut per_event);
    report.published = per_event.values().sum();
    report.lost = (0..events)
        .filter(|i| !per_event.contains_key(&format!("burst-{i:05}")))
        .count();
    report.duplicated = per_event.values().filter(|&&n| n > 1).count();
    Some(report)
}

#[derive(Debug, Default)]
pub struct BurstReport {
    /// Invocations with a new event (repeated deliveries included).
    pub sent: usize,
    /// Messages that reached the queue.
    pub published: usize,
    /// Invocations repeated after a failure.
    pub retried: usize,
    /// Invocations that failed (each was retried).
    pub failed: usize,
    /// Events never published.
    pub lost: usize,
    /// Events published more than once.
    pub duplicated: usize,
    /// Faults injected, by kind.
    pub faults: Vec<(Fault, usize)>,
    /// SNS requests the proxy received, and forwarded to moto (the others were faulted).
    pub sns_requests: usize,
    pub sns_forwarded: usize,
}

#[test]
fn a_thousand_alert_events_under_random_sns_faults_publish_exactly_once() {
    let events: usize = std::env::var("LCW_BURST_EVENTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1000);
    let percent: u64 = std::env::var("LCW_BURST_FAULT_PERCENT")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(5);
    let Some(report) = fault_burst(events, percent, 0x5eed_1234) else {
        return;
    };
    eprintln!("fault burst: {report:?}");
    assert!(
        report.failed > 0,
        "the faults must have failed some invocations: {report:?}"
    );
    assert_eq!(report.lost, 0, "{report:?}");
    assert_eq!(report.duplicated, 0, "{report:?}");
    assert_eq!(report.published, events, "{report:?}");
}
