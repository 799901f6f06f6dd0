//! The event pattern, applied by moto's EventBridge: every Lambda code update, nothing else.

use super::*;

/// One event sent through the emulator, and what must happen to it.
pub(crate) struct Case {
    pub(crate) name: String,
    pub(crate) envelope: Value,
    pub(crate) must_deliver: bool,
    /// Why, in words, for failure messages.
    pub(crate) because: String,
}

/// What must happen to `envelope`, decided by the rule itself: the pattern is a prefilter for the
/// rule's first condition ("a Lambda code update"), so EventBridge must forward exactly the events
/// that pass it, including those the function will then keep quiet about (CI/CD roles, failed
/// calls): who the actor is, is the function's decision, not the pattern's.
pub(crate) fn case(name: String, envelope: Value) -> Case {
    let bytes = serde_json::to_vec(&envelope).expect("an envelope serialises");
    let outcome = Detector::default()
        .assess_json(&bytes)
        .unwrap_or_else(|e| panic!("{name}: the rule cannot read this envelope: {e}"));
    let (must_deliver, because) = match outcome {
        Verdict::Alert(alert) => (true, format!("the rule alerts on it ({})", alert.actor)),
        Verdict::Suppressed(_) => unreachable!("the default detector has no policy"),
        Verdict::Quiet(QuietReason::OtherApi) => (
            false,
            "not a Lambda code update (quiet: other-api)".to_owned(),
        ),
        Verdict::Quiet(reason) => (
            true,
            format!(
                "a code update the function must see to judge (quiet: {})",
                reason.as_str()
            ),
        ),
    };
    Case {
        name,
        envelope,
        must_deliver,
        because,
    }
}

pub(crate) fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: not JSON: {e}", path.display()))
}

pub(crate) fn relative(path: &Path) -> String {
    path.strip_prefix(repo())
        .unwrap_or(path)
        .display()
        .to_string()
}

/// The EventBridge envelope CloudTrail puts around `record` (what the default bus receives), or
/// `None` for records without a service to name as the source.
pub(crate) fn cloudtrail_envelope(record: &Value) -> Option<Value> {
    let event_source = record.get("eventSource")?.as_str()?;
    let service = event_source.strip_suffix(".amazonaws.com")?;
    let detail_type = match record.get("eventType").and_then(Value::as_str) {
        Some("AwsConsoleSignIn") => "AWS Console Sign In via CloudTrail",
        Some("AwsServiceEvent") => "AWS Service Event via CloudTrail",
        Some("AwsConsoleAction") => "AWS Console Action via CloudTrail",
        _ => "AWS API Call via CloudTrail",
    };
    let mut detail = record.clone();
    // Vendor test metadata, not part of any CloudTrail record.
    detail.as_object_mut()?.remove("_panther");
    Some(json!({
        "version": "0",
        "id": "00000000-0000-0000-0000-000000000000",
        "detail-type": detail_type,
        "source": format!("aws.{service}"),
        "account": record.get("recipientAccountId").cloned().unwrap_or(json!("123456789012")),
        "time": record.get("eventTime").cloned().unwrap_or(json!("2026-01-01T00:00:00Z")),
        "region": record.get("awsRegion").cloned().unwrap_or(json!("us-east-1")),
        "resources": [],
        "detail": detail,
    }))
}

/// The sample envelopes, the near misses made from one of them, and every corpus record wrapped
/// as CloudTrail would wrap it.
pub(crate) fn pattern_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for folder in ["eventbridge/alert", "eventbridge/quiet"] {
        for path in common::event_files(folder) {
            cases.push(case(relative(&path), read_json(&path)));
        }
    }

    let base_path = repo().join("events/eventbridge/alert/iam-user.json");
    let base = read_json(&base_path);
    let named = |event_name: &str| {
        let mut envelope = base.clone();
        envelope["detail"]["eventName"] = json!(event_name);
        envelope
    };
    for event_name in [
        // every spelling CloudTrail has used for the call
        "UpdateFunctionCode",
        "UpdateFunctionCode20150331",
        "UpdateFunctionCode20150331v2",
        // the same person's near misses
        "UpdateFunctionConfiguration20150331v2",
        "GetFunction",
        "GetFunction20150331v2",
        "GetFunctionCodeSigningConfig",
        "UpdateFunctionUrlConfig20181029",
        "CreateFunction20150331",
        "PublishVersion20150331",
        "updatefunctioncode20150331v2",
    ] {
        cases.push(case(
            format!("variant of {} as {event_name}", relative(&base_path)),
            named(event_name),
        ));
    }
    // Other services: CloudFront Functions' own code update, and the right name from the wrong
    // service.
    for (service, event_name) in [
        ("cloudfront", "UpdateFunction"),
        ("cloudfront", "UpdateFunctionCode20150331v2"),
    ] {
        let mut envelope = named(event_name);
        envelope["source"] = json!(format!("aws.{service}"));
        envelope["detail"]["eventSource"] = json!(format!("{service}.amazonaws.com"));
        cases.push(case(
            format!(
                "variant of {} as {service} {event_name}",
                relative(&base_path)
            ),
            envelope,
        ));
    }

    if let Some(corpus) = common::corpus_dir() {
        for folder in ["real", "fixtures"] {
            for file in common::corpus_files(&corpus, folder) {
                let text = std::fs::read_to_string(&file)
                    .unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
                for (index, line) in text.lines().enumerate() {
                    if line.trim().is_empty() {
                        continue;
                    }
                    let record: Value = serde_json::from_str(line).unwrap_or_else(|e| {
                        panic!("{}:{}: not JSON: {e}", file.display(), index + 1)
                    });
                    let Some(envelope) = cloudtrail_envelope(&record) else {
                        continue;
                    };
                    let name = format!(
                        "corpus {folder}/{}:{} {} {}",
                        file.file_name().unwrap_or_default().to_string_lossy(),
                        index + 1,
                        record["eventSource"].as_str().unwrap_or("?"),
                        record["eventName"].as_str().unwrap_or("?"),
                    );
                    cases.push(case(name, envelope));
                }
            }
        }
    }
    cases
}

/// What the emulator did with one event.
pub(crate) struct Outcome {
    pub(crate) accepted: bool,
    pub(crate) error: Option<String>,
    pub(crate) delivered: u64,
    pub(crate) reached_bus: u64,
    pub(crate) detail_intact: bool,
}

/// Runs one of the EventBridge emulator scripts, `scripts/SCRIPT`, with each `(flag, document)`
/// written to a file and passed as `flag FILE`, and `cases` as `--cases`. Checks that it ran
/// (`failure` and its report otherwise), attributed every event it saw to a case and answered once
/// per case, and returns those answers; `None` when Python or its packages are missing (after
/// `missing`).
pub(crate) fn run_eventbridge_check<'a>(
    script: &str,
    documents: &[(&str, &Value)],
    cases: impl Iterator<Item = (&'a str, &'a Value)>,
    failure: &str,
) -> Option<Vec<Value>> {
    let Some(python) = python() else {
        missing("python3 is not installed: cannot run the EventBridge emulator");
        return None;
    };
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut command = tool_command(&python);
    command.arg(repo().join("scripts").join(script));
    for (n, (flag, document)) in documents.iter().enumerate() {
        let file = dir.path().join(format!("{n}.json"));
        std::fs::write(&file, document.to_string()).expect("write a document for the script");
        command.arg(flag).arg(file);
    }
    let listed: Vec<Value> = cases
        .map(|(name, envelope)| json!({"name": name, "envelope": envelope}))
        .collect();
    let listed_count = listed.len();
    let cases_file = dir.path().join("cases.json");
    std::fs::write(&cases_file, Value::Array(listed).to_string()).expect("write the cases");
    command.arg("--cases").arg(&cases_file);
    let out = run(&format!("scripts/{script}"), &mut command, 10 * MINUTE);
    if out.status.code() == Some(MISSING_PACKAGE) {
        missing(&format!(
            "Python packages for the EventBridge emulator: {}",
            out.stderr.trim()
        ));
        return None;
    }
    assert!(out.status.success(), "{failure}: {}", out.report());
    let report: Value = serde_json::from_str(&out.stdout).expect("the script prints JSON");
    assert_eq!(
        report["unattributed"],
        0,
        "the emulator delivered events nobody sent: {}",
        out.report()
    );
    let results: Vec<Value> = as_list(&report["results"]).into_iter().cloned().collect();
    assert_eq!(
        results.len(),
        listed_count,
        "one result per case expected from {}",
        report["emulator"]
    );
    Some(results)
}

/// Sends every case through moto's EventBridge with `pattern` on a rule; `None` when Python or its
/// packages are missing (after `missing`).
pub(crate) fn apply_pattern(pattern: &Value, cases: &[Case]) -> Option<Vec<Outcome>> {
    let results = run_eventbridge_check(
        "eventbridge-pattern-check.py",
        &[("--pattern", pattern)],
        cases.iter().map(|c| (c.name.as_str(), &c.envelope)),
        "the EventBridge emulator run failed",
    )?;
    let outcomes = results
        .iter()
        .zip(cases)
        .map(|(result, case)| {
            assert_eq!(
                result["name"], case.name,
                "results come back in the order sent"
            );
            Outcome {
                accepted: result["accepted"] == true,
                error: result["error"].as_str().map(str::to_owned),
                delivered: result["delivered"].as_u64().unwrap_or(0),
                reached_bus: result["reached_bus"].as_u64().unwrap_or(0),
                detail_intact: result["detail_intact"] == true,
            }
        })
        .collect();
    Some(outcomes)
}

/// Every case whose fate differs from what it must be, as readable lines.
pub(crate) fn misrouted(cases: &[Case], outcomes: &[Outcome]) -> Vec<String> {
    cases
        .iter()
        .zip(outcomes)
        .filter(|(case, outcome)| (outcome.delivered == 1) != case.must_deliver)
        .map(|(case, outcome)| {
            format!(
                "{}: {} but it must {}be delivered: {}",
                case.name,
                match outcome.delivered {
                    0 => "not delivered".to_owned(),
                    n => format!("delivered {n} time(s)"),
                },
                if case.must_deliver { "" } else { "not " },
                case.because
            )
        })
        .collect()
}

#[test]
fn event_pattern_forwards_every_code_update_and_nothing_else() {
    let Some(deployed) = deployed_template() else {
        return;
    };
    let (function_id, _) = the_function(deployed);
    let (rule_id, rule, _) = the_rule(deployed, function_id);
    let pattern = &rule["Properties"]["EventPattern"];
    assert!(
        pattern.is_object(),
        "{rule_id}'s EventPattern must be a literal JSON object, got {pattern}"
    );
    // (Organization mode moves it to the bus the forwarders feed: see that section.)
    assert_eq!(
        Deployment::new(deployed, &[]).rule_bus(rule_id),
        None,
        "CloudTrail events arrive on the default bus; {rule_id} listens elsewhere by default"
    );

    let cases = pattern_cases();
    let Some(outcomes) = apply_pattern(pattern, &cases) else {
        return;
    };

    for (case, outcome) in cases.iter().zip(&outcomes) {
        assert!(
            outcome.accepted && outcome.reached_bus == 1,
            "{}: the emulator did not take the event ({:?}); the test proves nothing about it",
            case.name,
            outcome.error
        );
        assert!(
            outcome.delivered == 0 || outcome.detail_intact,
            "{}: the delivered event's detail differs from the one sent",
            case.name
        );
    }
    let wrong = misrouted(&cases, &outcomes);
    assert!(
        wrong.is_empty(),
        "the event pattern of {rule_id} in template.yaml routes {} of {} events wrongly:\n  {}\n\
         pattern: {pattern}",
        wrong.len(),
        cases.len(),
        wrong.join("\n  ")
    );

    // The split, stated with the sample folders rather than the rule: every alert sample reaches
    // the function, and so do the quiet code updates (CI/CD roles, failed calls), which only the
    // function can tell apart; the quiet other APIs do not.
    let delivered = |prefix: &str| -> BTreeMap<&str, bool> {
        cases
            .iter()
            .zip(&outcomes)
            .filter(|(case, _)| case.name.starts_with(prefix))
            .map(|(case, outcome)| (case.name.as_str(), outcome.delivered == 1))
            .collect()
    };
    let alerts = delivered("events/eventbridge/alert/");
    assert!(
        !alerts.is_empty() && alerts.values().all(|&d| d),
        "{alerts:?}"
    );
    let quiet = delivered("events/eventbridge/quiet/");
    for (name, was_delivered) in &quiet {
        let envelope = &cases
            .iter()
            .find(|c| c.name == *name)
            .expect("known case")
            .envelope;
        let code_update = envelope["detail"]["eventName"]
            .as_str()
            .is_some_and(|n| n.starts_with("UpdateFunctionCode"));
        assert_eq!(
            *was_delivered, code_update,
            "{name}: a quiet sample is delivered exactly when it is an UpdateFunctionCode call"
        );
    }
    assert!(
        quiet.values().any(|&d| d) && quiet.values().any(|&d| !d),
        "the quiet samples should show both sides of the split: {quiet:?}"
    );

    // The corpus is what makes this more than a restatement: real records, real near misses.
    let corpus: Vec<(&Case, &Outcome)> = cases
        .iter()
        .zip(&outcomes)
        .filter(|(case, _)| case.name.starts_with("corpus "))
        .collect();
    if !corpus.is_empty() {
        let count =
            |f: &dyn Fn(&Case, &Outcome) -> bool| corpus.iter().filter(|(c, o)| f(c, o)).count();
        let lambda = |c: &Case| c.envelope["source"] == "aws.lambda";
        assert!(
            count(&|c, o| lambda(c) && c.must_deliver && o.delivered == 1) >= 1,
            "the corpus' real UpdateFunctionCode records must reach the function"
        );
        assert!(
            count(&|c, o| lambda(c) && !c.must_deliver && o.delivered == 0) >= 1,
            "the corpus' other Lambda calls (UpdateFunctionConfiguration, ...) must not"
        );
        assert!(
            count(&|c, o| !lambda(c) && o.delivered == 0) >= 100,
            "the corpus' other services' records must not"
        );
    }
}

#[test]
fn the_pattern_check_catches_the_classic_mistake() {
    // An exact event name deploys fine and never fires, because CloudTrail writes the call as
    // UpdateFunctionCode20150331v2. The harness above must notice; if it did not, its green would
    // mean nothing.
    let Some(deployed) = deployed_template() else {
        return;
    };
    let (function_id, _) = the_function(deployed);
    let (_, rule, _) = the_rule(deployed, function_id);
    let mut pattern = rule["Properties"]["EventPattern"].clone();
    pattern["detail"]["eventName"] = json!(["UpdateFunctionCode"]);
    let cases: Vec<Case> = common::event_files("eventbridge/alert")
        .iter()
        .map(|path| case(relative(path), read_json(path)))
        .collect();
    let Some(outcomes) = apply_pattern(&pattern, &cases) else {
        return;
    };
    // Every sample whose name carries the version suffix must now be missed.
    let wrong = misrouted(&cases, &outcomes);
    let suffixed: Vec<&str> = cases
        .iter()
        .filter(|c| c.envelope["detail"]["eventName"] != "UpdateFunctionCode")
        .map(|c| c.name.as_str())
        .collect();
    assert!(
        !suffixed.is_empty(),
        "the alert samples should include CloudTrail's real, suffixed event names"
    );
    for name in suffixed {
        assert!(
            wrong
                .iter()
                .any(|line| line.starts_with(&format!("{name}:"))),
            "with an exact eventName the check must report {name} as missed, proving it can \
             fail; it reported: {wrong:?}"
        );
    }
}
