//! Tamper rules.

use super::*;

/// The tamper rules: EventBridge rules whose targets are the topics, with an input transformer.
pub(crate) fn tamper_rules(deployed: &Value) -> Vec<(&str, &Value)> {
    resources_of_type(deployed, "AWS::Events::Rule")
        .into_iter()
        .filter(|(_, rule)| {
            as_list(&rule["Properties"]["Targets"])
                .into_iter()
                .flat_map(alternatives)
                .any(|t| t.get("InputTransformer").is_some())
        })
        .collect()
}

/// Fields every CloudTrail record has, and the envelope's own: an input transformer may read
/// them whatever the pattern says.
pub(crate) const ALWAYS_PRESENT: &[&str] = &[
    "$.account",
    "$.region",
    "$.time",
    "$.id",
    "$.source",
    "$.detail.eventName",
    "$.detail.eventSource",
    "$.detail.eventTime",
    "$.detail.eventID",
];

/// Whether `pattern` only matches events where `path` (`$.detail.a.b`) exists.
pub(crate) fn pattern_requires(pattern: &Value, path: &str) -> bool {
    let Some(rest) = path.strip_prefix("$.") else {
        return false;
    };
    let mut node = pattern;
    for key in rest.split('.') {
        node = &node[key];
    }
    let filters = as_list(node);
    !filters.is_empty()
        && filters
            .iter()
            .all(|f| f.get("exists") != Some(&json!(false)) && !f.is_null())
}

#[test]
fn tamper_alerts_read_only_fields_their_pattern_guarantees() {
    let Some(deployed) = deployed_template() else {
        return;
    };
    let rules = tamper_rules(deployed);
    assert!(
        rules.len() >= 10,
        "expected the tamper rules, found {}",
        rules.len()
    );
    for (id, rule) in rules {
        let pattern = &rule["Properties"]["EventPattern"];
        for target in as_list(&rule["Properties"]["Targets"])
            .into_iter()
            .flat_map(alternatives)
        {
            let transformer = &target["InputTransformer"];
            let paths = transformer["InputPathsMap"]
                .as_object()
                .unwrap_or_else(|| panic!("{id}: every tamper target needs an InputPathsMap"));
            for (variable, path) in paths {
                let path = path.as_str().unwrap();
                assert!(
                    ALWAYS_PRESENT.contains(&path) || pattern_requires(pattern, path),
                    "{id}: <{variable}> reads {path}, which the pattern does not require: an \\
                     event without it would render a broken alert"
                );
            }
            let template = transformer["InputTemplate"].as_str().unwrap();
            let title_start = template.find("\"title\": \"").expect("a title") + 10;
            let title = &template[title_start..][..template[title_start..].find('"').unwrap()];
            assert!(
                title.starts_with("lambda-code-watch tampered with: <eventName> on "),
                "{id}: title {title:?}"
            );
            for placeholder in template
                .split('<')
                .skip(1)
                .map(|p| &p[..p.find('>').unwrap()])
            {
                assert!(
                    paths.contains_key(placeholder) || placeholder.starts_with("aws.events."),
                    "{id}: <{placeholder}> is not defined"
                );
            }
            assert!(template.contains("\"severity\": \"HIGH\""), "{id}");
            assert!(
                target["DeadLetterConfig"]["Arn"].is_object() && target["RetryPolicy"].is_object(),
                "{id}: an undeliverable tamper alert must be retried, then parked"
            );
        }
    }
}

/// A CloudTrail "AWS API Call" envelope for `event_name` on `service` by `identity`.
pub(crate) fn api_call(
    service: &str,
    event_name: &str,
    parameters: Value,
    identity: Value,
) -> Value {
    json!({
        "version": "0",
        "id": "00000000-0000-0000-0000-000000000000",
        "detail-type": "AWS API Call via CloudTrail",
        "source": format!("aws.{service}"),
        "account": ACCOUNT,
        "time": "2026-12-01T00:00:00Z",
        "region": REGION,
        "resources": [],
        "detail": {
            "eventVersion": "1.09",
            "userIdentity": identity,
            "eventTime": "2026-12-01T00:00:00Z",
            "eventSource": format!("{service}.amazonaws.com"),
            "eventName": event_name,
            "awsRegion": REGION,
            "sourceIPAddress": "198.51.100.7",
            "userAgent": "aws-cli/2.17.0",
            "requestParameters": parameters,
            "responseElements": null,
            "eventID": "11111111-2222-3333-4444-555555555555",
            "readOnly": false,
            "eventType": "AwsApiCall",
            "managementEvent": true,
            "recipientAccountId": ACCOUNT,
        }
    })
}

pub(crate) fn attacker() -> Value {
    json!({"type": "AssumedRole", "principalId": "AROAEXAMPLE:mallory",
           "arn": format!("arn:aws:sts::{ACCOUNT}:assumed-role/Admin/mallory"),
           "accountId": ACCOUNT,
           "sessionContext": {"sessionIssuer": {"type": "Role",
               "arn": format!("arn:aws:iam::{ACCOUNT}:role/Admin"), "userName": "Admin"}}})
}

/// One crafted call and whether some tamper rule must report it.
pub(crate) struct TamperCase {
    pub(crate) name: String,
    pub(crate) envelope: Value,
    pub(crate) must_alert: bool,
    /// For a reported call: the `<resource>` the alert must name.
    pub(crate) resource: Option<String>,
}

/// Every watched call on this stack's resources (reported) and the same calls on unrelated
/// resources, or unwatched calls on ours (not reported).
pub(crate) fn tamper_cases(deployment: &Deployment) -> Vec<TamperCase> {
    let mut cases = Vec::new();
    let mut add = |service: &str, event_name: &str, field: &str, value: &str, must_alert: bool| {
        let parameters = json!({ field: value });
        cases.push(TamperCase {
            name: format!("{service} {event_name} {field}={value}"),
            envelope: api_call(service, event_name, parameters, attacker()),
            must_alert,
            resource: must_alert.then(|| value.to_owned()),
        });
    };
    let function = deployment.text(&json!({"Ref": "CodeWatchFunction"}));
    let canary = deployment.text(&json!({"Ref": "CanaryFunction"}));
    let canary_target = deployment.text(&json!({"Ref": "CanaryTargetFunction"}));
    let function_arn = |name: &str| format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}");
    for event_name in [
        "UpdateFunctionCode20150331v2",
        "UpdateFunctionConfiguration20150331v2",
        "PutFunctionConcurrency20171031",
        "DeleteFunctionConcurrency20171031",
        "AddPermission20150331v2",
        "RemovePermission20150331v2",
        "CreateEventSourceMapping20150331",
        "UpdateEventSourceMapping20150331",
        "DeleteFunction20150331",
        "PutFunctionEventInvokeConfig",
    ] {
        for ours in [
            function.clone(),
            function_arn(&function),
            format!("{ACCOUNT}:function:{function}"),
            format!("{}:live", function_arn(&function)),
            canary.clone(),
            function_arn(&canary),
        ] {
            add("lambda", event_name, "functionName", &ours, true);
        }
        for theirs in [
            "payments-api".to_owned(),
            function_arn("payments-api"),
            format!("{function}-copy"),
            canary_target.clone(),
        ] {
            add("lambda", event_name, "functionName", &theirs, false);
        }
    }
    add(
        "lambda",
        "GetFunction20150331v2",
        "functionName",
        &function,
        false,
    );
    add("lambda", "Invoke", "functionName", &function, false);

    let detection_rule = deployment.text(&json!({"Ref": "CodeWatchFunctionCodeUpdates"}));
    let canary_rule = deployment.text(&json!({"Ref": "CanarySchedule"}));
    let tamper_rule = deployment.text(&json!({"Ref": "TamperRuleRule"}));
    let watch_rule = deployment.text(&json!({"Ref": "TamperRuleWatchRule"}));
    for (event_name, field) in [
        ("DisableRule", "name"),
        ("DeleteRule", "name"),
        ("PutRule", "name"),
        ("PutTargets", "rule"),
        ("RemoveTargets", "rule"),
    ] {
        for ours in [&detection_rule, &canary_rule, &tamper_rule, &watch_rule] {
            add("events", event_name, field, ours, true);
        }
        add("events", event_name, field, "nightly-batch", false);
    }
    add("events", "EnableRule", "name", &detection_rule, false);

    let alert_topic = deployment.text(&json!({"Ref": "AlertTopic"}));
    let ops_topic = deployment.text(&json!({"Ref": "OpsTopic"}));
    let other_topic = format!("arn:aws:sns:{REGION}:{ACCOUNT}:orders");
    for event_name in [
        "DeleteTopic",
        "SetTopicAttributes",
        "AddPermission",
        "RemovePermission",
        "Subscribe",
    ] {
        for ours in [&alert_topic, &ops_topic] {
            add("sns", event_name, "topicArn", ours, true);
        }
        add("sns", event_name, "topicArn", &other_topic, false);
    }
    for event_name in ["Unsubscribe", "SetSubscriptionAttributes"] {
        for ours in [&alert_topic, &ops_topic] {
            let subscription = format!("{ours}:0b9f7a52-0c44-4f62-9ad3-5f2f1d3e6a11");
            add("sns", event_name, "subscriptionArn", &subscription, true);
        }
        for theirs in [&other_topic, &format!("{alert_topic}-shadow")] {
            let subscription = format!("{theirs}:0b9f7a52-0c44-4f62-9ad3-5f2f1d3e6a11");
            add("sns", event_name, "subscriptionArn", &subscription, false);
        }
    }
    add("sns", "Publish", "topicArn", &alert_topic, false);

    let keys: Vec<String> = ["EncryptionKey", "OpsKey"]
        .iter()
        .flat_map(|id| {
            [
                deployment.text(&json!({"Ref": id})),
                deployment.text(&json!({"Fn::GetAtt": [id, "Arn"]})),
            ]
        })
        .collect();
    for event_name in [
        "DisableKey",
        "ScheduleKeyDeletion",
        "PutKeyPolicy",
        "DisableKeyRotation",
    ] {
        for ours in &keys {
            add("kms", event_name, "keyId", ours, true);
        }
        add(
            "kms",
            event_name,
            "keyId",
            "0f2e8a9b-1111-2222-3333-444455556666",
            false,
        );
    }
    add("kms", "Decrypt", "keyId", &keys[0], false);

    let queue_names: Vec<String> = ["RuleDeadLetterQueue", "FailedInvocationQueue"]
        .iter()
        .map(|id| deployment.text(&json!({"Fn::GetAtt": [id, "QueueName"]})))
        .collect();
    for event_name in ["DeleteQueue", "SetQueueAttributes", "PurgeQueue"] {
        for name in &queue_names {
            for url in [
                format!("https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{name}"),
                format!("https://queue.amazonaws.com/{ACCOUNT}/{name}"),
            ] {
                add("sqs", event_name, "queueUrl", &url, true);
            }
            let lookalike = format!("https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/x{name}");
            add("sqs", event_name, "queueUrl", &lookalike, false);
        }
        let other = format!("https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/orders");
        add("sqs", event_name, "queueUrl", &other, false);
    }

    let table = format!("{STACK_NAME}-alert-dedup");
    for event_name in ["DeleteTable", "UpdateTable", "UpdateTimeToLive"] {
        add("dynamodb", event_name, "tableName", &table, true);
        let table_arn = format!("arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{table}");
        add("dynamodb", event_name, "tableName", &table_arn, true);
        add("dynamodb", event_name, "tableName", "orders", false);
    }

    let stack_id = pseudo_parameter("AWS::StackId").unwrap();
    for event_name in [
        "DeleteStack",
        "UpdateStack",
        "ExecuteChangeSet",
        "UpdateTerminationProtection",
        "SetStackPolicy",
    ] {
        add("cloudformation", event_name, "stackName", STACK_NAME, true);
        add("cloudformation", event_name, "stackName", &stack_id, true);
        add("cloudformation", event_name, "stackName", "payments", false);
    }

    for event_name in ["StopLogging", "DeleteTrail", "UpdateTrail"] {
        add("cloudtrail", event_name, "name", "management-events", true);
    }
    for event_name in ["PutEventSelectors", "PutInsightSelectors"] {
        add(
            "cloudtrail",
            event_name,
            "trailName",
            "management-events",
            true,
        );
    }
    add(
        "cloudtrail",
        "StartLogging",
        "name",
        "management-events",
        false,
    );

    // The tuning policy parameter (a widened policy hides alerts), and the summary schedule.
    let policy_parameter = format!("/{STACK_NAME}/lambda-code-watch/policy");
    for event_name in ["PutParameter", "DeleteParameter", "LabelParameterVersion"] {
        add("ssm", event_name, "name", &policy_parameter, true);
        add("ssm", event_name, "name", "/payments/config", false);
    }
    add("ssm", "GetParameter", "name", &policy_parameter, false);
    let stack_id_part = stack_id.rsplit('/').next().unwrap();
    let sweep = format!("lcw-{stack_id_part}-summary-sweep");
    for event_name in ["UpdateSchedule", "DeleteSchedule"] {
        add("scheduler", event_name, "name", &sweep, true);
        add("scheduler", event_name, "name", "nightly-report", false);
    }
    for (names, must_alert) in [
        (json!(["/payments/config", policy_parameter]), true),
        (json!(["/payments/config"]), false),
    ] {
        cases.push(TamperCase {
            name: format!("ssm DeleteParameters {names}"),
            envelope: api_call(
                "ssm",
                "DeleteParameters",
                json!({"names": names}),
                attacker(),
            ),
            must_alert,
            resource: must_alert.then(|| "this stack's policy parameter".to_owned()),
        });
    }

    // Alarms are named in a list (alarmNames) or alone (alarmName).
    let heartbeat_alarm = deployment.text(&json!({"Ref": "CanaryHeartbeatAlarm"}));
    for (event_name, parameters, must_alert) in [
        (
            "DeleteAlarms",
            json!({"alarmNames": ["billing", heartbeat_alarm]}),
            true,
        ),
        (
            "DisableAlarmActions",
            json!({"alarmNames": [heartbeat_alarm]}),
            true,
        ),
        (
            "PutMetricAlarm",
            json!({"alarmName": heartbeat_alarm, "treatMissingData": "notBreaching"}),
            true,
        ),
        (
            "SetAlarmState",
            json!({"alarmName": heartbeat_alarm, "stateValue": "OK"}),
            true,
        ),
        (
            "DeleteAlarms",
            json!({"alarmNames": ["billing", "payments-latency"]}),
            false,
        ),
        ("PutMetricAlarm", json!({"alarmName": "billing"}), false),
        (
            "DescribeAlarms",
            json!({"alarmNames": [heartbeat_alarm]}),
            false,
        ),
    ] {
        let mut envelope = api_call("monitoring", event_name, parameters.clone(), attacker());
        envelope["source"] = json!("aws.cloudwatch");
        cases.push(TamperCase {
            name: format!("cloudwatch {event_name} {parameters}"),
            envelope,
            must_alert,
            resource: must_alert.then(|| "this stack's alarms".to_owned()),
        });
    }

    // An identity without an ARN (an AWS service acting by itself): reported unscoped.
    let service = json!({"type": "AWSService", "invokedBy": "cloudformation.amazonaws.com"});
    cases.push(TamperCase {
        name: "sns DeleteTopic by an AWS service".to_owned(),
        envelope: api_call(
            "sns",
            "DeleteTopic",
            json!({"topicArn": alert_topic}),
            service.clone(),
        ),
        must_alert: true,
        resource: None,
    });
    cases.push(TamperCase {
        name: "sns Publish by an AWS service".to_owned(),
        envelope: api_call("sns", "Publish", json!({"topicArn": alert_topic}), service),
        must_alert: false,
        resource: None,
    });
    cases
}

/// Sends `cases` through moto's EventBridge with one tamper rule's pattern and its topic
/// target's transformer; returns, per case, the transformed alert if the rule delivered it.
pub(crate) fn apply_tamper_rule(
    rule_id: &str,
    pattern: &Value,
    transformer: &Value,
    cases: &[TamperCase],
) -> Option<Vec<Option<Value>>> {
    let results = run_eventbridge_check(
        "eventbridge-pattern-check.py",
        &[("--pattern", pattern), ("--transformer", transformer)],
        cases.iter().map(|c| (c.name.as_str(), &c.envelope)),
        &format!("{rule_id}: the EventBridge emulator refused the pattern or failed"),
    )?;
    Some(
        results
            .iter()
            .zip(cases)
            .map(|(result, case)| {
                assert!(
                    result["accepted"] == true && result["reached_bus"] == 1,
                    "{}: the emulator did not take the event: {}",
                    case.name,
                    result["error"]
                );
                assert!(result["delivered"].as_u64() <= Some(1), "{}", case.name);
                (result["delivered"] == 1).then(|| result["delivered_body"].clone())
            })
            .collect(),
    )
}

#[test]
fn tamper_rules_report_every_watched_call_on_this_stack_and_nothing_else() {
    let Some(source) = source_template() else {
        return;
    };
    let Some(deployed) = deployed_template() else {
        return;
    };
    if python().is_none() {
        missing("python3 is not installed: cannot run the EventBridge emulator");
        return;
    }
    // The stack creates both topics (and so both keys).
    let given = [
        ("AlertEmail", "sec@example.com"),
        ("OpsEmail", "ops@example.com"),
    ];
    let deployment = Deployment::new(deployed, &given);
    let cases = tamper_cases(&deployment);
    let mut reported_by: Vec<Vec<&str>> = vec![Vec::new(); cases.len()];
    for (rule_id, rule) in tamper_rules(deployed) {
        if !deployment.exists(rule_id) {
            continue;
        }
        let properties = deployment
            .resolve(&rule["Properties"])
            .expect("rule properties");
        let targets = as_list(&properties["Targets"]);
        let topics: BTreeSet<String> = targets
            .iter()
            .map(|t| t["Arn"].as_str().unwrap().to_owned())
            .collect();
        let expected_topics: BTreeSet<String> = ["AlertTopic", "OpsTopic"]
            .iter()
            .map(|id| deployment.text(&json!({"Ref": id})))
            .collect();
        assert_eq!(topics, expected_topics, "{rule_id} must alert both topics");
        let Some(outcomes) = apply_tamper_rule(
            rule_id,
            &properties["EventPattern"],
            &targets[0]["InputTransformer"],
            &cases,
        ) else {
            return;
        };
        for ((index, case), outcome) in cases.iter().enumerate().zip(outcomes) {
            let Some(alert) = outcome else { continue };
            reported_by[index].push(rule_id);
            if !case.must_alert {
                continue; // reported below, with every other misrouted call
            }
            let detail = &case.envelope["detail"];
            let actor = detail["userIdentity"]["arn"].as_str();
            let expected_title = match (&case.resource, actor) {
                (Some(resource), Some(actor)) => format!(
                    "lambda-code-watch tampered with: {} on {resource} by {actor}",
                    detail["eventName"].as_str().unwrap()
                ),
                _ => format!(
                    "lambda-code-watch tampered with: {} on {} by an identity without an ARN",
                    detail["eventName"].as_str().unwrap(),
                    detail["eventSource"].as_str().unwrap()
                ),
            };
            assert_eq!(alert["title"], expected_title, "{rule_id}: {}", case.name);
            assert_eq!(alert["severity"], "HIGH", "{rule_id}: {}", case.name);
            assert_eq!(
                alert["event"]["detail"], *detail,
                "{rule_id}: the whole event"
            );
            let rendered = alert.to_string();
            assert!(
                !rendered.contains("<eventName>")
                    && !rendered.contains("<resource>")
                    && !rendered.contains("<actor>"),
                "{rule_id}: {}: a placeholder was left: {rendered}",
                case.name
            );
        }
    }
    let wrong: Vec<String> = cases
        .iter()
        .zip(&reported_by)
        .filter(|(case, rules)| rules.is_empty() == case.must_alert)
        .map(|(case, rules)| {
            format!(
                "{}: {} but must {}be",
                case.name,
                if rules.is_empty() {
                    "not reported".to_owned()
                } else {
                    format!("reported by {rules:?}")
                },
                if case.must_alert { "" } else { "not " }
            )
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "the tamper rules of template.yaml route {} of {} calls wrongly:\n  {}",
        wrong.len(),
        cases.len(),
        wrong.join("\n  ")
    );
    // Disabling the rule that watches the rules is itself seen by another rule.
    let watch = deployment.text(&json!({"Ref": "TamperRuleRule"}));
    let index = cases
        .iter()
        .position(|c| c.name == format!("events DisableRule name={watch}"))
        .expect("the case exists");
    assert!(
        reported_by[index].len() >= 2,
        "disabling {watch} must be reported by a rule other than itself: {:?}",
        reported_by[index]
    );
    let _ = source;
}
