//! Alarms and evidence.

use super::*;

/// `TreatMissingData` of each alarm as README.md states it: rows of the table under "When the
/// detection itself fails or is attacked" that start with an alarm's logical id in backticks.
pub(crate) fn readme_missing_data() -> BTreeMap<String, String> {
    let readme = std::fs::read_to_string(repo().join("README.md")).expect("README.md");
    let mut stated = BTreeMap::new();
    for line in readme.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() < 4 {
            continue;
        }
        let Some(alarm) = cells[1].strip_prefix('`').and_then(|c| c.strip_suffix('`')) else {
            continue;
        };
        if !alarm.ends_with("Alarm") {
            continue;
        }
        if let Some(treatment) = cells.iter().find_map(|c| {
            let rest = c.strip_prefix("missing data: `")?;
            Some(rest[..rest.find('`')?].to_owned())
        }) {
            stated.insert(alarm.to_owned(), treatment);
        }
    }
    stated
}

#[test]
fn every_alarm_treats_missing_data_as_the_readme_says() {
    let Some(deployed) = deployed_template() else {
        return;
    };
    let stated = readme_missing_data();
    let alarms = resources_of_type(deployed, "AWS::CloudWatch::Alarm");
    assert!(alarms.len() >= 12, "{} alarms", alarms.len());
    let deployment = Deployment::new(
        deployed,
        &[
            ("AlertEmail", "sec@example.com"),
            ("OpsEmail", "ops@example.com"),
        ],
    );
    let ops_topic = deployment.text(&json!({"Ref": "OpsTopic"}));
    for (id, alarm) in &alarms {
        let treatment = alarm["Properties"]["TreatMissingData"]
            .as_str()
            .unwrap_or("missing");
        assert_eq!(
            stated.get(*id).map(String::as_str),
            Some(treatment),
            "README.md must state {id}'s missing-data treatment as `{treatment}` in a row \
             `| `{id}` | ... | missing data: `{treatment}` |`"
        );
        let actions = deployment
            .resolve(&alarm["Properties"]["AlarmActions"])
            .unwrap();
        assert_eq!(
            actions,
            json!([ops_topic]),
            "{id} must notify the operations topic"
        );
    }
    for alarm in stated.keys() {
        assert!(
            alarms.iter().any(|(id, _)| id == alarm),
            "README.md describes {alarm}, which the template does not define"
        );
    }
    // Silence is a failure only for the heartbeats (the real-time path's, and S3 mode's);
    // elsewhere no data means nothing happened.
    for (id, alarm) in &alarms {
        let breaching = alarm["Properties"]["TreatMissingData"] == "breaching";
        assert_eq!(
            breaching,
            *id == "CanaryHeartbeatAlarm" || *id == "TrailCanaryHeartbeatAlarm",
            "{id}"
        );
    }
}

#[test]
fn the_canary_heartbeat_is_wired_end_to_end() {
    let Some(deployed) = deployed_template() else {
        return;
    };
    let deployment = Deployment::new(
        deployed,
        &[
            ("AlertEmail", "sec@example.com"),
            ("OpsEmail", "ops@example.com"),
        ],
    );
    let (function_id, function) = the_function(deployed);
    // The detection function knows the canary by its role.
    let canary_role = &function["Properties"]["Environment"]["Variables"]["CANARY_ROLE_ARN"];
    assert_eq!(target_of(canary_role, Some("Arn")), Some("CanaryRole"));
    let canary_target =
        &function["Properties"]["Environment"]["Variables"]["CANARY_TARGET_FUNCTION"];
    assert_eq!(target_of(canary_target, None), Some("CanaryTargetFunction"));
    let canary = &resource(deployed, "CanaryFunction")["Properties"];
    assert_eq!(target_of(&canary["Role"], Some("Arn")), Some("CanaryRole"));
    assert!(
        canary["Code"]["ZipFile"]
            .as_str()
            .is_some_and(|c| c.contains("update_function_code")),
        "the canary's inline code calls UpdateFunctionCode"
    );
    // The canary role may update the canary target's code and write its log, nothing else.
    let target_arn = deployment.text(&json!({"Fn::GetAtt": ["CanaryTargetFunction", "Arn"]}));
    for statement in role_statements(deployed, "CanaryRole") {
        let statement = deployment.resolve(statement).unwrap();
        for action in strings(&statement["Action"]) {
            let resources = strings(&statement["Resource"]);
            match action.as_str() {
                "lambda:UpdateFunctionCode" => {
                    assert_eq!(resources, BTreeSet::from([target_arn.clone()]))
                }
                "logs:CreateLogStream" | "logs:PutLogEvents" => assert_eq!(
                    resources,
                    BTreeSet::from([
                        deployment.text(&json!({"Fn::GetAtt": ["CanaryLogGroup", "Arn"]}))
                    ])
                ),
                other => panic!("CanaryRole may not {other}"),
            }
        }
    }
    // Every 30 minutes.
    let schedule = resources_of_type(deployed, "AWS::Events::Rule")
        .into_iter()
        .find(|(_, r)| {
            as_list(&r["Properties"]["Targets"])
                .iter()
                .any(|t| target_of(&t["Arn"], Some("Arn")) == Some("CanaryFunction"))
        })
        .expect("a schedule runs the canary");
    assert_eq!(
        schedule.1["Properties"]["ScheduleExpression"],
        "rate(30 minutes)"
    );
    // The alarm watches the metric the function writes (handler/src/metrics.rs), for this
    // function, and fires on silence.
    let alarm = &resource(deployed, "CanaryHeartbeatAlarm")["Properties"];
    assert_eq!(alarm["Namespace"], "LambdaCodeWatch");
    assert_eq!(alarm["MetricName"], "CanaryHeartbeat");
    assert_eq!(alarm["TreatMissingData"], "breaching");
    assert_eq!(alarm["ComparisonOperator"], "LessThanThreshold");
    let dimensions = as_list(&alarm["Dimensions"]);
    assert_eq!(dimensions.len(), 1);
    assert_eq!(dimensions[0]["Name"], "FunctionName");
    assert_eq!(target_of(&dimensions[0]["Value"], None), Some(function_id));
    assert!(
        alarm["Period"].as_u64().unwrap() >= 2 * 30 * 60,
        "room for one late heartbeat"
    );
}

#[test]
fn evidence_survives_the_stack() {
    let Some(deployed) = deployed_template() else {
        return;
    };
    let mut kept = 0;
    for kind in [
        "AWS::Logs::LogGroup",
        "AWS::SQS::Queue",
        "AWS::KMS::Key",
        "AWS::DynamoDB::Table",
    ] {
        for (id, resource) in resources_of_type(deployed, kind) {
            assert_eq!(resource["DeletionPolicy"], "Retain", "{id} ({kind})");
            assert_eq!(resource["UpdateReplacePolicy"], "Retain", "{id} ({kind})");
            kept += 1;
        }
    }
    assert!(kept >= 6, "two log groups, two queues, two keys: {kept}");
    let (_, function) = the_function(deployed);
    assert!(
        function["Properties"]["ReservedConcurrentExecutions"].is_object(),
        "the function reserves concurrency (a parameter)"
    );
}

#[test]
fn tamper_alerts_reach_an_existing_topic_only_in_the_stack_region() {
    let Some(deployed) = deployed_template() else {
        return;
    };
    // EventBridge targets must be in the rule's region; the operations topic always is.
    for (topic, reaches_it) in [
        ("arn:aws:sns:us-east-1:111122223333:security-alerts", true),
        ("arn:aws:sns:eu-west-1:111122223333:security-alerts", false),
    ] {
        let ops = "arn:aws:sns:us-east-1:123456789012:ops";
        let deployment = Deployment::new(
            deployed,
            &[("ExistingAlertTopicArn", topic), ("AlarmTopicArn", ops)],
        );
        for (rule_id, rule) in tamper_rules(deployed) {
            if !deployment.exists(rule_id) {
                continue;
            }
            let targets = deployment.resolve(&rule["Properties"]["Targets"]).unwrap();
            let arns: BTreeSet<String> = as_list(&targets)
                .iter()
                .map(|t| t["Arn"].as_str().unwrap().to_owned())
                .collect();
            let mut expected = BTreeSet::from([ops.to_owned()]);
            if reaches_it {
                expected.insert(topic.to_owned());
            }
            assert_eq!(
                arns, expected,
                "{rule_id} with ExistingAlertTopicArn {topic}"
            );
        }
    }
}
