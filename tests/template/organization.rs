//! Organization mode.

use super::*;

/// An organization-mode deployment of template.yaml, with destinations.
pub(crate) fn organization_deployment(deployed: &Value) -> Deployment<'_> {
    Deployment::new(
        deployed,
        &[
            ("AlertEmail", "sec@example.com"),
            ("OpsEmail", "ops@example.com"),
            ("OrganizationId", ORGANIZATION),
        ],
    )
}

/// The forwarder's one rule and its one target.
pub(crate) fn the_forwarder_rule(forwarder: &Value) -> (&str, &Value, &Value) {
    let rules = resources_of_type(forwarder, "AWS::Events::Rule");
    assert_eq!(
        rules.len(),
        1,
        "deploy/forwarder.yaml has one rule: {rules:?}"
    );
    let (id, rule) = rules[0];
    let targets = as_list(&rule["Properties"]["Targets"]);
    assert_eq!(targets.len(), 1, "{id} has one target, the central bus");
    (id, rule, targets[0])
}

#[test]
fn the_forwarder_forwards_exactly_what_the_detection_rule_matches() {
    let (Some(deployed), Some(forwarder)) = (deployed_template(), forwarder_template()) else {
        return;
    };
    let (function_id, _) = the_function(deployed);
    let (rule_id, rule, _) = the_rule(deployed, function_id);
    let (forward_id, forward_rule, _) = the_forwarder_rule(forwarder);
    // Two copies of one pattern, compared whole: a forwarder that forwarded less would blind the
    // detection for every member account, silently; one that forwarded more would pay for it.
    assert_eq!(
        forward_rule["Properties"]["EventPattern"], rule["Properties"]["EventPattern"],
        "deploy/forwarder.yaml's {forward_id} and template.yaml's {rule_id} must have the same \
         event pattern"
    );
    assert!(
        forward_rule["Properties"].get("EventBusName").is_none(),
        "{forward_id} must listen on the default bus, where CloudTrail puts the account's events"
    );
    assert_eq!(forward_rule["Properties"]["State"], "ENABLED");
}

#[test]
fn organization_mode_puts_the_detection_rule_on_a_bus_only_the_organization_may_send_to() {
    let Some(deployed) = deployed_template() else {
        return;
    };
    let (function_id, _) = the_function(deployed);
    let (rule_id, _, _) = the_rule(deployed, function_id);
    let buses = resources_of_type(deployed, "AWS::Events::EventBus");
    assert_eq!(buses.len(), 1, "one organization bus: {buses:?}");
    let (bus_id, bus) = buses[0];
    assert!(
        resources_of_type(deployed, "AWS::Events::EventBusPolicy").is_empty(),
        "the bus's whole policy is on the bus, where this test reads it"
    );

    // Single account: no bus, the rule on the default bus.
    let single = Deployment::new(deployed, &[("AlertEmail", "a@example.com")]);
    assert!(!single.exists(bus_id), "{bus_id} only in organization mode");
    assert_eq!(single.rule_bus(rule_id), None);

    let organization = organization_deployment(deployed);
    assert!(organization.exists(bus_id));
    let bus_name = organization.text(&json!({"Ref": bus_id}));
    assert_eq!(
        organization.rule_bus(rule_id).as_deref(),
        Some(bus_name.as_str())
    );
    let bus_arn = organization.text(&json!({"Fn::GetAtt": [bus_id, "Arn"]}));

    // The policy: PutEvents, on this bus, by principals of this organisation; nothing else.
    let policy = organization.resolve(&bus["Properties"]["Policy"]).unwrap();
    let statements = as_list(&policy["Statement"]);
    assert_eq!(statements.len(), 1, "one statement: {policy}");
    let statement = statements[0];
    assert_eq!(statement["Effect"], "Allow");
    assert_eq!(statement["Principal"], "*", "any principal ...");
    assert_eq!(
        statement["Condition"],
        json!({"StringEquals": {"aws:PrincipalOrgID": ORGANIZATION}}),
        "... of the organisation, and no other condition to loosen or mistype"
    );
    assert_eq!(
        strings(&statement["Action"]),
        BTreeSet::from(["events:PutEvents".to_owned()])
    );
    assert_eq!(
        strings(&statement["Resource"]),
        BTreeSet::from([bus_arn.clone()])
    );
    for absent in ["NotAction", "NotResource", "NotPrincipal"] {
        assert!(statement.get(absent).is_none(), "{absent}: {statement}");
    }
    // Another organisation's id gives another condition: the parameter, not a constant.
    let other = Deployment::new(deployed, &[("OrganizationId", "o-zzzzzzzzzz")]);
    let other_policy = other.resolve(&bus["Properties"]["Policy"]).unwrap();
    assert_eq!(
        other_policy["Statement"][0]["Condition"]["StringEquals"]["aws:PrincipalOrgID"],
        "o-zzzzzzzzzz"
    );

    // The forwarders are told this bus: an output gives its ARN, in organization mode only.
    let output = &deployed["Outputs"]["OrganizationEventBusArn"];
    assert_eq!(output["Condition"], "OrganizationMode");
    assert_eq!(organization.text(&output["Value"]), bus_arn);
}

#[test]
fn organization_mode_keeps_the_alarms_and_the_key_on_the_rule_where_it_now_is() {
    let Some(deployed) = deployed_template() else {
        return;
    };
    let (function_id, _) = the_function(deployed);
    let (rule_id, _, _) = the_rule(deployed, function_id);
    // EventBridge names a custom bus's rule metrics by bus and rule; an alarm on RuleName alone
    // (or on the rule's Ref, "<bus>|<rule>" there) watches a metric that never comes.
    for deployment in [
        Deployment::new(deployed, &[("AlertEmail", "a@example.com")]),
        organization_deployment(deployed),
    ] {
        let rule_name = deployment.rule_name(rule_id);
        let bus = deployment.rule_bus(rule_id);
        let mut expected = BTreeMap::from([("RuleName".to_owned(), rule_name.clone())]);
        if let Some(bus) = &bus {
            expected.insert("EventBusName".to_owned(), bus.clone());
        }
        let mut watched = 0;
        for (alarm_id, alarm) in resources_of_type(deployed, "AWS::CloudWatch::Alarm") {
            let properties = deployment.resolve(&alarm["Properties"]).unwrap();
            let mut metrics = vec![properties.clone()];
            metrics.extend(
                as_list(&properties["Metrics"])
                    .into_iter()
                    .map(|m| m["MetricStat"]["Metric"].clone()),
            );
            for metric in metrics.iter().filter(|m| m["Namespace"] == "AWS/Events") {
                let dimensions: BTreeMap<String, String> = as_list(&metric["Dimensions"])
                    .iter()
                    .map(|d| {
                        (
                            d["Name"].as_str().unwrap().to_owned(),
                            d["Value"].as_str().unwrap().to_owned(),
                        )
                    })
                    .collect();
                assert_eq!(
                    dimensions, expected,
                    "{alarm_id} watches {} of the rule on {bus:?}",
                    metric["MetricName"]
                );
                watched += 1;
            }
        }
        assert!(
            watched >= 3,
            "failed, retried and lost deliveries: {watched}"
        );
        let name_output = deployment.text(&deployed["Outputs"]["EventRuleName"]["Value"]);
        assert_eq!(
            name_output, rule_name,
            "EventRuleName is the name, never <bus>|<rule>"
        );
        let bus_output = deployment.text(&deployed["Outputs"]["EventRuleBusName"]["Value"]);
        assert_eq!(bus_output, bus.unwrap_or_else(|| "default".to_owned()));
    }
}

#[test]
fn single_account_mode_deploys_what_it_did() {
    let Some(deployed) = deployed_template() else {
        return;
    };
    // Everything organization mode adds is conditional on it, and nothing else is: a
    // single-account deployment creates exactly the resources it always did.
    let organization_only: BTreeSet<&str> = resources(deployed)
        .iter()
        .filter(|(_, r)| r["Condition"] == "OrganizationMode")
        .map(|(id, _)| id.as_str())
        .collect();
    assert_eq!(
        organization_only,
        BTreeSet::from(["OrganizationEventBus", "TamperBusRule"]),
        "resources only an organization gets"
    );
    let single = Deployment::new(deployed, &[("AlertEmail", "a@example.com")]);
    let (function_id, function) = the_function(deployed);
    let (rule_id, rule, _) = the_rule(deployed, function_id);
    assert_eq!(single.rule_bus(rule_id), None, "the default bus");
    let resolved = single.resolve(&rule["Properties"]).unwrap();
    assert!(resolved.get("EventBusName").is_none(), "{resolved}");
    // No names given: the function gets no ACCOUNT_NAMES (and names no account).
    let variables = single
        .resolve(&function["Properties"]["Environment"]["Variables"])
        .unwrap();
    assert!(variables.get("ACCOUNT_NAMES").is_none(), "{variables}");
    let named = Deployment::new(
        deployed,
        &[("AccountNames", r#"{"111122223333": "payments-prod"}"#)],
    );
    let variables = named
        .resolve(&function["Properties"]["Environment"]["Variables"])
        .unwrap();
    assert_eq!(
        variables["ACCOUNT_NAMES"],
        r#"{"111122223333": "payments-prod"}"#
    );
    // And the rule's ARN, which the key and queue policies name, is the default bus's.
    assert_eq!(
        single.text(&json!({"Fn::GetAtt": [rule_id, "Arn"]})),
        format!("arn:aws:events:{REGION}:{ACCOUNT}:rule/lambda-code-watch-{STACK_UUID}")
    );
}

#[test]
fn in_organization_mode_the_bus_and_its_rule_are_watched_too() {
    let Some(deployed) = deployed_template() else {
        return;
    };
    if python().is_none() {
        missing("python3 is not installed: cannot run the EventBridge emulator");
        return;
    }
    let deployment = organization_deployment(deployed);
    let bus = deployment.text(&json!({"Ref": "OrganizationEventBus"}));
    let (function_id, _) = the_function(deployed);
    let (rule_id, _, _) = the_rule(deployed, function_id);
    let rule = deployment.rule_name(rule_id);
    let call = |event_name: &str, parameters: Value, must_alert: bool| TamperCase {
        name: format!("events {event_name} {parameters}"),
        envelope: api_call("events", event_name, parameters, attacker()),
        must_alert,
        resource: None,
    };
    let cases = vec![
        call("DeleteEventBus", json!({"name": bus}), true),
        call(
            "UpdateEventBus",
            json!({"name": bus, "description": "x"}),
            true,
        ),
        call(
            "PutPermission",
            json!({"eventBusName": bus, "policy": "{}"}),
            true,
        ),
        call(
            "RemovePermission",
            json!({"eventBusName": bus, "removeAllPermissions": true}),
            true,
        ),
        call(
            "DisableRule",
            json!({"name": rule, "eventBusName": bus}),
            true,
        ),
        call(
            "RemoveTargets",
            json!({"rule": rule, "eventBusName": bus, "ids": ["CodeWatchFunction"]}),
            true,
        ),
        call("DeleteEventBus", json!({"name": "orders"}), false),
        call(
            "PutPermission",
            json!({"eventBusName": "orders", "policy": "{}"}),
            false,
        ),
        call("PutPermission", json!({"policy": "{}"}), false),
        call("DescribeEventBus", json!({"name": bus}), false),
    ];
    let mut reported_by: Vec<Vec<&str>> = vec![Vec::new(); cases.len()];
    for (rule_id, rule) in tamper_rules(deployed) {
        assert!(deployment.exists(rule_id), "every tamper rule exists here");
        let properties = deployment.resolve(&rule["Properties"]).unwrap();
        let targets = as_list(&properties["Targets"]);
        let Some(outcomes) = apply_tamper_rule(
            rule_id,
            &properties["EventPattern"],
            &targets[0]["InputTransformer"],
            &cases,
        ) else {
            return;
        };
        for (index, outcome) in outcomes.into_iter().enumerate() {
            if let Some(alert) = outcome {
                reported_by[index].push(rule_id);
                assert!(
                    alert["title"]
                        .as_str()
                        .is_some_and(|t| t.starts_with("lambda-code-watch tampered with: ")
                            && !t.contains('<')),
                    "{rule_id}: {}: {alert}",
                    cases[index].name
                );
            }
        }
    }
    let wrong: Vec<String> = cases
        .iter()
        .zip(&reported_by)
        .filter(|(case, rules)| rules.is_empty() == case.must_alert)
        .map(|(case, rules)| format!("{}: reported by {rules:?}", case.name))
        .collect();
    assert!(wrong.is_empty(), "misrouted:\n  {}", wrong.join("\n  "));
    assert!(
        reported_by[0].contains(&"TamperBusRule"),
        "deleting the bus: {:?}",
        reported_by[0]
    );
}
