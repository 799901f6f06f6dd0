//! The forwarder.

use super::*;

#[test]
fn the_forwarder_may_put_events_on_the_central_bus_and_nothing_else() {
    let Some(forwarder) = forwarder_template() else {
        return;
    };
    let central =
        format!("arn:aws:events:us-east-1:999988887777:event-bus/lcw-{STACK_UUID}-organization");
    let deployment = Deployment::new(
        forwarder,
        &[
            ("CentralEventBusArn", central.as_str()),
            ("OpsEmail", "ops@example.com"),
        ],
    );
    let (rule_id, _, target) = the_forwarder_rule(forwarder);
    let target = deployment.resolve(target).unwrap();
    assert_eq!(target["Arn"], central, "the target is the central bus");
    let role_id = target_of(&the_forwarder_rule(forwarder).2["RoleArn"], Some("Arn"))
        .expect("the target uses a role of the stack");
    let role = resource(forwarder, role_id);
    assert!(as_list(&role["Properties"]["ManagedPolicyArns"]).is_empty());
    // Only EventBridge, for this account's forwarder rule, may assume it.
    let trust = deployment
        .resolve(&role["Properties"]["AssumeRolePolicyDocument"])
        .unwrap();
    let trust = as_list(&trust["Statement"]);
    assert_eq!(trust.len(), 1);
    assert_eq!(
        trust[0]["Principal"],
        json!({"Service": "events.amazonaws.com"})
    );
    assert_eq!(
        trust[0]["Condition"]["StringEquals"]["aws:SourceAccount"],
        ACCOUNT
    );
    assert_eq!(
        trust[0]["Condition"]["ArnEquals"]["aws:SourceArn"],
        deployment.text(&json!({"Fn::GetAtt": [rule_id, "Arn"]})),
        "only the forwarder rule"
    );
    // events:PutEvents on the central bus, and nothing else.
    let statements: Vec<Value> = role_statements(forwarder, role_id)
        .into_iter()
        .filter_map(|s| deployment.resolve(s))
        .collect();
    assert_eq!(statements.len(), 1, "{statements:?}");
    assert_eq!(statements[0]["Effect"], "Allow");
    assert_eq!(
        strings(&statements[0]["Action"]),
        BTreeSet::from(["events:PutEvents".to_owned()])
    );
    assert_eq!(
        strings(&statements[0]["Resource"]),
        BTreeSet::from([central.clone()])
    );
    assert!(statements[0].get("NotAction").is_none() && statements[0].get("NotResource").is_none());
}

#[test]
fn the_forwarder_keeps_what_it_cannot_deliver_and_says_so() {
    let Some(forwarder) = forwarder_template() else {
        return;
    };
    let central =
        format!("arn:aws:events:eu-west-1:999988887777:event-bus/lcw-{STACK_UUID}-organization");
    let (rule_id, _, target) = the_forwarder_rule(forwarder);
    assert!(
        target["RetryPolicy"]["MaximumRetryAttempts"].as_u64() > Some(0)
            && target["RetryPolicy"]["MaximumEventAgeInSeconds"].as_u64() >= Some(3600),
        "{rule_id} retries: {target}"
    );
    let queue_id = target_of(&target["DeadLetterConfig"]["Arn"], Some("Arn"))
        .expect("a dead-letter queue of the stack");
    let queue = &resource(forwarder, queue_id)["Properties"];
    assert!(
        queue["SqsManagedSseEnabled"] == true || queue["KmsMasterKeyId"].is_object(),
        "{queue_id} is encrypted: {queue}"
    );
    assert_eq!(queue["MessageRetentionPeriod"], 1_209_600, "kept 14 days");

    for (given, topic) in [
        (
            vec![(
                "AlarmTopicArn",
                "arn:aws:sns::111122223333:lcw-forwarder-ops",
            )],
            // The topic of that name in the stack's own region.
            "arn:aws:sns:us-east-1:111122223333:lcw-forwarder-ops".to_owned(),
        ),
        (
            vec![("OpsEmail", "ops@example.com")],
            format!("arn:aws:sns:{REGION}:{ACCOUNT}:{STACK_NAME}-OpsTopic-X1"),
        ),
    ] {
        let mut given = given;
        given.push(("CentralEventBusArn", central.as_str()));
        let deployment = Deployment::new(forwarder, &given);
        // Only EventBridge, for this rule, may park events in the queue.
        let rule_arn = deployment.text(&json!({"Fn::GetAtt": [rule_id, "Arn"]}));
        let parks = resources_of_type(forwarder, "AWS::SQS::QueuePolicy")
            .into_iter()
            .filter_map(|(_, p)| deployment.resolve(&p["Properties"]))
            .flat_map(|p| {
                as_list(&p["PolicyDocument"]["Statement"])
                    .into_iter()
                    .cloned()
                    .collect::<Vec<_>>()
            })
            .any(|s| {
                s["Effect"] == "Allow"
                    && s["Principal"]["Service"] == "events.amazonaws.com"
                    && s["Condition"]["ArnEquals"]["aws:SourceArn"] == rule_arn.as_str()
            });
        assert!(parks, "{queue_id} accepts the dead letters of {rule_arn}");

        // One alarm watches both: EventBridge giving up, and events waiting in the queue.
        let alarms = resources_of_type(forwarder, "AWS::CloudWatch::Alarm");
        assert_eq!(alarms.len(), 1);
        let (alarm_id, alarm) = alarms[0];
        let alarm = deployment.resolve(&alarm["Properties"]).unwrap();
        let metrics: Vec<(String, String, String)> = as_list(&alarm["Metrics"])
            .iter()
            .filter_map(|m| {
                let metric = &m["MetricStat"]["Metric"];
                let dimension = as_list(&metric["Dimensions"]);
                if dimension.len() != 1 {
                    return None;
                }
                Some((
                    metric["MetricName"].as_str()?.to_owned(),
                    dimension[0]["Name"].as_str()?.to_owned(),
                    dimension[0]["Value"].as_str()?.to_owned(),
                ))
            })
            .collect();
        let queue_name = deployment.text(&json!({"Fn::GetAtt": [queue_id, "QueueName"]}));
        assert_eq!(
            metrics.iter().cloned().collect::<BTreeSet<_>>(),
            BTreeSet::from([
                (
                    "FailedInvocations".to_owned(),
                    "RuleName".to_owned(),
                    deployment.rule_name(rule_id)
                ),
                (
                    "ApproximateNumberOfMessagesVisible".to_owned(),
                    "QueueName".to_owned(),
                    queue_name
                ),
            ]),
            "{alarm_id} watches"
        );
        assert_eq!(alarm["TreatMissingData"], "notBreaching");
        assert_eq!(
            alarm["AlarmActions"],
            json!([topic]),
            "{alarm_id} notifies {given:?}"
        );
    }
}

#[test]
fn a_forwarder_whose_failures_reach_nobody_is_refused() {
    let Some(forwarder) = forwarder_template() else {
        return;
    };
    let central = "arn:aws:events:us-east-1:999988887777:event-bus/lcw-organization";
    for (given, expected) in [
        (vec![], vec!["AlarmsNeedADestination"]),
        (vec![("OpsEmail", "ops@example.com")], vec![]),
        (
            vec![(
                "AlarmTopicArn",
                "arn:aws:sns::111122223333:lcw-forwarder-ops",
            )],
            vec![],
        ),
        (
            vec![
                (
                    "AlarmTopicArn",
                    "arn:aws:sns::111122223333:lcw-forwarder-ops",
                ),
                ("OpsEmail", "ops@example.com"),
            ],
            vec!["OpsEmailNeedsOwnOpsTopic"],
        ),
    ] {
        let mut given = given;
        given.push(("CentralEventBusArn", central));
        assert_eq!(broken_rules(forwarder, &given), expected, "{given:?}");
    }
    // The topic it creates refuses plain HTTP and is encrypted with a key CloudWatch may use.
    topic_refuses_plain_http(forwarder, "OpsTopic");
    assert!(
        !key_grants_to(forwarder, "OpsKey", "cloudwatch.amazonaws.com").is_empty(),
        "OpsKey must let CloudWatch encrypt alarm notifications"
    );
}

/// What the forwarding path in the emulator did with one event.
pub(crate) struct Forwarded {
    pub(crate) accepted: bool,
    pub(crate) reached_member_bus: u64,
    pub(crate) reached_central_bus: u64,
    pub(crate) delivered: u64,
    pub(crate) detail_intact: bool,
    pub(crate) delivered_envelope: Value,
}

#[test]
fn a_member_code_update_travels_to_the_central_bus_and_reaches_the_function() {
    let (Some(deployed), Some(forwarder)) = (deployed_template(), forwarder_template()) else {
        return;
    };
    // The central side as an organization deploys it; the member's forwarder pointed at it.
    let central = organization_deployment(deployed);
    let (function_id, _) = the_function(deployed);
    let (rule_id, rule, _) = the_rule(deployed, function_id);
    let bus_arn = central.text(&json!({"Fn::GetAtt": ["OrganizationEventBus", "Arn"]}));
    let bus = central
        .resolve(&resource(deployed, "OrganizationEventBus")["Properties"])
        .unwrap();
    let member = Deployment::new(
        forwarder,
        &[
            ("CentralEventBusArn", bus_arn.as_str()),
            (
                "AlarmTopicArn",
                "arn:aws:sns::111122223333:lcw-forwarder-ops",
            ),
        ],
    );
    let (forward_id, forward_rule, _) = the_forwarder_rule(forwarder);
    let forward_rule = member.resolve(&forward_rule["Properties"]).unwrap();
    let setup = json!({
        "central": {
            "account": ACCOUNT,
            "region": REGION,
            "bus": {"Name": bus["Name"], "Policy": bus["Policy"]},
            "rule": {
                "Name": central.rule_name(rule_id),
                "EventPattern": rule["Properties"]["EventPattern"],
            },
        },
        "member": {
            "account": "111122223333",
            "region": "eu-west-1",
            "rule": {
                "Name": forward_rule["Name"],
                "EventPattern": forward_rule["EventPattern"],
                "Targets": forward_rule["Targets"],
            },
        },
    });

    let cases = pattern_cases();
    let Some(results) = run_eventbridge_check(
        "eventbridge-forward-check.py",
        &[("--setup", &setup)],
        cases.iter().map(|c| (c.name.as_str(), &c.envelope)),
        "the forwarding run failed",
    ) else {
        return;
    };
    let forwarded: Vec<Forwarded> = results
        .iter()
        .zip(&cases)
        .map(|(r, case)| {
            assert_eq!(r["name"], case.name.as_str());
            Forwarded {
                accepted: r["accepted"] == true,
                reached_member_bus: r["reached_member_bus"].as_u64().unwrap_or(0),
                reached_central_bus: r["reached_central_bus"].as_u64().unwrap_or(0),
                delivered: r["delivered"].as_u64().unwrap_or(0),
                detail_intact: r["detail_intact"] == true,
                delivered_envelope: r["delivered_envelope"].clone(),
            }
        })
        .collect();

    let mut wrong = Vec::new();
    for (case, f) in cases.iter().zip(&forwarded) {
        assert!(
            f.accepted && f.reached_member_bus == 1,
            "{}: the member bus did not take the event; the test proves nothing about it",
            case.name
        );
        // What the forwarder sends over is what the central rule delivers: one pattern.
        let expected = u64::from(case.must_deliver);
        if f.reached_central_bus != expected || f.delivered != expected {
            wrong.push(format!(
                "{}: reached the central bus {} time(s), the function {} time(s), must {}: {}",
                case.name, f.reached_central_bus, f.delivered, expected, case.because
            ));
        }
        if f.delivered == 1 {
            assert!(
                f.detail_intact,
                "{}: the detail changed on the way",
                case.name
            );
            assert_eq!(f.delivered_envelope["source"], case.envelope["source"]);
            assert_eq!(
                f.delivered_envelope["detail-type"],
                case.envelope["detail-type"]
            );
        }
    }
    assert!(
        wrong.is_empty(),
        "{forward_id} -> {rule_id} routes {} of {} events wrongly:\n  {}",
        wrong.len(),
        cases.len(),
        wrong.join("\n  ")
    );
    assert!(
        forwarded.iter().filter(|f| f.delivered == 1).count() >= 5,
        "the alert samples at least made the trip"
    );

    // moto re-creates a forwarded event in the central account (its own id, account and
    // region); EventBridge keeps the member's. The function reads the account from the record
    // (recipientAccountId), not the envelope, but the rule's pattern sees the envelope: apply it
    // by hand to envelopes as EventBridge delivers them, with the member's account and region.
    let as_delivered: Vec<Case> = cases
        .iter()
        .map(|c| {
            let mut envelope = c.envelope.clone();
            envelope["account"] = json!("111122223333");
            envelope["region"] = json!("eu-west-1");
            case(format!("{} (as delivered)", c.name), envelope)
        })
        .collect();
    let Some(outcomes) = apply_pattern(&rule["Properties"]["EventPattern"], &as_delivered) else {
        return;
    };
    let wrong = misrouted(&as_delivered, &outcomes);
    assert!(wrong.is_empty(), "{}", wrong.join("\n  "));
}
