//! Kept, not dropped.

use super::*;

/// The KMS key an SQS queue or SNS topic of the template is encrypted with.
pub(crate) fn encryption_key<'t>(deployed: &'t Value, id: &str) -> &'t str {
    let key = &resource(deployed, id)["Properties"]["KmsMasterKeyId"];
    let key_id = target_of(key, None)
        .or_else(|| target_of(key, Some("Arn")))
        .unwrap_or_else(|| panic!("{id} must be encrypted with the stack's key, got {key}"));
    assert_eq!(
        resource(deployed, key_id)["Type"],
        "AWS::KMS::Key",
        "{id} is encrypted with {key_id}, not a KMS key of this template"
    );
    key_id
}

/// Key policy statements that let `service` use the key, with their conditions.
pub(crate) fn key_grants_to<'t>(
    deployed: &'t Value,
    key_id: &str,
    service: &str,
) -> Vec<&'t Value> {
    let key = resource(deployed, key_id);
    assert_eq!(
        key["Properties"]["EnableKeyRotation"], true,
        "{key_id} must rotate"
    );
    as_list(&key["Properties"]["KeyPolicy"]["Statement"])
        .into_iter()
        .filter(|s| s["Effect"] == "Allow")
        .filter(|s| {
            as_list(&s["Principal"]["Service"])
                .iter()
                .any(|p| render(p).as_deref() == Some(service))
        })
        .collect()
}

#[test]
fn undeliverable_and_failed_events_are_kept_not_dropped() {
    let Some(deployed) = deployed_template() else {
        return;
    };
    let (function_id, _) = the_function(deployed);
    let (rule_id, rule, target) = the_rule(deployed, function_id);

    // EventBridge -> function: retried, then parked in an encrypted queue EventBridge may write.
    assert!(
        target["RetryPolicy"]["MaximumRetryAttempts"].as_u64() > Some(0),
        "{rule_id}'s target needs a retry policy: {target}"
    );
    let dead_letters = target_of(&target["DeadLetterConfig"]["Arn"], Some("Arn"))
        .unwrap_or_else(|| panic!("{rule_id}'s target needs a dead-letter queue: {target}"));
    assert_eq!(resource(deployed, dead_letters)["Type"], "AWS::SQS::Queue");
    let key = encryption_key(deployed, dead_letters);

    let queue_policies: Vec<&Value> = resources_of_type(deployed, "AWS::SQS::QueuePolicy")
        .into_iter()
        .map(|(_, p)| &p["Properties"])
        .filter(|p| {
            as_list(&p["Queues"])
                .iter()
                .any(|q| target_of(q, None) == Some(dead_letters))
        })
        .collect();
    let rule_may_send = queue_policies
        .iter()
        .flat_map(|p| as_list(&p["PolicyDocument"]["Statement"]))
        .any(|s| {
            s["Effect"] == "Allow"
                && s["Principal"]["Service"] == "events.amazonaws.com"
                && as_list(&s["Action"]).contains(&&json!("sqs:SendMessage"))
                && target_of(&s["Condition"]["ArnEquals"]["aws:SourceArn"], Some("Arn"))
                    == Some(rule_id)
        });
    assert!(
        rule_may_send,
        "{dead_letters}'s queue policy must let events.amazonaws.com send, for {rule_id} only"
    );

    // The key must let EventBridge encrypt for that queue, and only for this rule. The rule's
    // name is fixed (the key cannot reference the rule without a cycle), so compare the ARN the
    // key policy spells out with the ARN the rule gets, on the default bus and on the
    // organization bus (where the bus is part of the ARN).
    assert!(
        render(&rule["Properties"]["Name"]).is_some(),
        "{rule_id} needs a name computable at deploy time"
    );
    let events_grants = key_grants_to(deployed, key, "events.amazonaws.com");
    for given in [&[][..], &[("OrganizationId", ORGANIZATION)][..]] {
        let deployment = Deployment::new(deployed, given);
        let rule_arn = deployment.text(&json!({"Fn::GetAtt": [rule_id, "Arn"]}));
        assert!(
            events_grants.iter().any(|s| {
                let actions = as_list(&s["Action"]);
                actions.contains(&&json!("kms:GenerateDataKey"))
                    && actions.contains(&&json!("kms:Decrypt"))
                    && deployment
                        .resolve(&s["Condition"]["ArnEquals"]["aws:SourceArn"])
                        .is_some_and(|arn| arn == rule_arn.as_str())
            }),
            "{key}'s policy must let events.amazonaws.com use it (GenerateDataKey, Decrypt) for \
             {rule_arn} ({given:?}); it grants: {}",
            shown(&events_grants)
        );
    }

    // Function: retried by Lambda, then the invocation record goes to an encrypted queue.
    let config = resources_of_type(deployed, "AWS::Lambda::EventInvokeConfig")
        .into_iter()
        .map(|(_, c)| &c["Properties"])
        .find(|c| target_of(&c["FunctionName"], None) == Some(function_id))
        .unwrap_or_else(|| panic!("{function_id} needs an EventInvokeConfig"));
    assert!(
        config.get("MaximumRetryAttempts").is_some(),
        "{function_id}: state the async retries"
    );
    let failures = target_of(
        &config["DestinationConfig"]["OnFailure"]["Destination"],
        Some("Arn"),
    )
    .unwrap_or_else(|| panic!("{function_id} needs an on-failure destination: {config}"));
    assert_eq!(resource(deployed, failures)["Type"], "AWS::SQS::Queue");
    encryption_key(deployed, failures);

    // The function's log group: encrypted with a key CloudWatch Logs may use for that group.
    let (_, function) = the_function(deployed);
    let log_group_id = target_of(&function["Properties"]["LoggingConfig"]["LogGroup"], None)
        .expect("the function logs to a log group of this template");
    let log_group = &resource(deployed, log_group_id)["Properties"];
    assert!(
        log_group.get("RetentionInDays").is_some(),
        "{log_group_id} needs a retention"
    );
    let log_key = target_of(&log_group["KmsKeyId"], Some("Arn"))
        .unwrap_or_else(|| panic!("{log_group_id} must be encrypted with the stack's key"));
    let log_group_name = render(&log_group["LogGroupName"])
        .unwrap_or_else(|| panic!("{log_group_id} needs a name computable at deploy time"));
    let log_group_arn = format!("arn:aws:logs:us-east-1:123456789012:log-group:{log_group_name}");
    let logs_grants = key_grants_to(deployed, log_key, "logs.us-east-1.amazonaws.com");
    assert!(
        logs_grants.iter().any(|s| {
            as_list(&s["Condition"]["ArnEquals"]["kms:EncryptionContext:aws:logs:arn"])
                .iter()
                .any(|arn| render(arn).as_deref() == Some(log_group_arn.as_str()))
        }),
        "{log_key}'s policy must let CloudWatch Logs use it for {log_group_arn}: {}",
        shown(&logs_grants)
    );
}

#[test]
fn the_topics_refuse_plain_http() {
    let Some(deployed) = deployed_template() else {
        return;
    };
    let topics = resources_of_type(deployed, "AWS::SNS::Topic");
    assert_eq!(
        topics.len(),
        2,
        "the alert topic and the operations topic (each created unless one is given)"
    );
    for (topic_id, _) in topics {
        topic_refuses_plain_http(deployed, topic_id);
    }
}

pub(crate) fn topic_refuses_plain_http(deployed: &Value, topic_id: &str) {
    encryption_key(deployed, topic_id);
    let denies_plain_http = topic_policy_statements(deployed, topic_id)
        .into_iter()
        .any(|s| {
            s["Effect"] == "Deny"
                && s["Principal"] == "*"
                && s["Condition"]["Bool"]["aws:SecureTransport"] == "false"
        });
    assert!(
        denies_plain_http,
        "{topic_id}'s topic policy must deny requests without TLS"
    );
}

#[test]
fn alarms_watch_the_function_and_both_queues() {
    let Some(deployed) = deployed_template() else {
        return;
    };
    let (function_id, _) = the_function(deployed);
    let (_, _, target) = the_rule(deployed, function_id);
    let dead_letters = target_of(&target["DeadLetterConfig"]["Arn"], Some("Arn"))
        .expect("the rule target has a dead-letter queue");
    let failures = resources_of_type(deployed, "AWS::Lambda::EventInvokeConfig")
        .into_iter()
        .find_map(|(_, c)| {
            target_of(
                &c["Properties"]["DestinationConfig"]["OnFailure"]["Destination"],
                Some("Arn"),
            )
        })
        .expect("the function has an on-failure destination");

    let alarms: Vec<&Value> = resources_of_type(deployed, "AWS::CloudWatch::Alarm")
        .into_iter()
        .map(|(_, a)| &a["Properties"])
        .collect();
    let watches =
        |namespace: &str, metric: &str, dimension: &str, subject: &str, attr: Option<&str>| {
            alarms.iter().any(|a| {
                a["Namespace"] == namespace
                    && a["MetricName"] == metric
                    && as_list(&a["Dimensions"]).iter().any(|d| {
                        d["Name"] == dimension && target_of(&d["Value"], attr) == Some(subject)
                    })
            })
        };
    assert!(
        watches("AWS/Lambda", "Errors", "FunctionName", function_id, None),
        "an alarm must watch {function_id}'s Errors"
    );
    for queue in [dead_letters, failures] {
        assert!(
            watches(
                "AWS/SQS",
                "ApproximateNumberOfMessagesVisible",
                "QueueName",
                queue,
                Some("QueueName")
            ),
            "an alarm must watch the depth of {queue}"
        );
    }

    let outputs = deployed["Outputs"].as_object().cloned().unwrap_or_default();
    let outputs_value =
        |wanted: &dyn Fn(&Value) -> bool| outputs.values().any(|o| wanted(&o["Value"]));
    assert!(
        outputs_value(&|v| target_of(v, None) == Some(function_id)),
        "an output must give the function name"
    );
    for queue in [dead_letters, failures] {
        assert!(
            outputs_value(&|v| target_of(v, None) == Some(queue)),
            "an output must give the URL of {queue}"
        );
    }
    assert!(
        outputs_value(&|v| alternatives(v)
            .iter()
            .any(|c| target_of(c, None).is_some_and(|id| resources(deployed)
                .get(id)
                .is_some_and(|r| r["Type"] == "AWS::SNS::Topic")))),
        "an output must give the alert topic ARN"
    );
}
