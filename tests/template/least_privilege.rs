//! Least privilege.

use super::*;

/// Every statement of every policy attached to `role_id`, each `Fn::If` branch included.
pub(crate) fn role_statements<'t>(deployed: &'t Value, role_id: &str) -> Vec<&'t Value> {
    let role = resource(deployed, role_id);
    let mut documents: Vec<&Value> = Vec::new();
    for policy in as_list(&role["Properties"]["Policies"]) {
        documents.extend(
            alternatives(policy)
                .into_iter()
                .map(|p| &p["PolicyDocument"]),
        );
    }
    // Policies can also be attached from the outside, by SAM or by hand.
    for kind in [
        "AWS::IAM::Policy",
        "AWS::IAM::ManagedPolicy",
        "AWS::IAM::RolePolicy",
    ] {
        for (_, policy) in resources_of_type(deployed, kind) {
            let properties = &policy["Properties"];
            let roles: Vec<&Value> = as_list(&properties["Roles"])
                .into_iter()
                .chain(properties.get("RoleName"))
                .collect();
            if roles.iter().any(|r| target_of(r, None) == Some(role_id)) {
                documents.push(&properties["PolicyDocument"]);
            }
        }
    }
    documents
        .into_iter()
        .flat_map(|document| as_list(&document["Statement"]))
        .flat_map(alternatives)
        .collect()
}

/// Whether a statement limits itself to requests an AWS service makes on the caller's behalf
/// (`kms:ViaService`), so the key cannot be used directly.
pub(crate) fn only_via_a_service(statement: &Value) -> bool {
    ["StringEquals", "StringLike"].iter().any(|operator| {
        let services = as_list(&statement["Condition"][*operator]["kms:ViaService"]);
        !services.is_empty()
            && services.iter().all(|service| {
                let text = render(service).unwrap_or_default();
                text.starts_with("sns.")
                    || text.starts_with("sqs.")
                    || text.starts_with("dynamodb.")
            })
    })
}

#[test]
fn function_role_allows_its_job_and_nothing_else() {
    let Some(deployed) = deployed_template() else {
        return;
    };
    let (function_id, function) = the_function(deployed);
    let properties = &function["Properties"];
    let role_id = target_of(&properties["Role"], Some("Arn")).unwrap_or_else(|| {
        panic!(
            "{function_id}'s Role must be a role defined in the template, got {}",
            properties["Role"]
        )
    });
    let role = resource(deployed, role_id);
    assert_eq!(role["Type"], "AWS::IAM::Role");
    assert!(
        as_list(&role["Properties"]["ManagedPolicyArns"]).is_empty(),
        "{role_id} attaches managed policies ({}); AWS managed ones such as \
         AWSLambdaBasicExecutionRole allow far more than this function needs",
        role["Properties"]["ManagedPolicyArns"]
    );
    let trust = as_list(&role["Properties"]["AssumeRolePolicyDocument"]["Statement"]);
    assert!(
        !trust.is_empty()
            && trust.iter().all(|s| {
                s["Principal"] == json!({"Service": "lambda.amazonaws.com"})
                    || s["Principal"] == json!({"Service": ["lambda.amazonaws.com"]})
            }),
        "only Lambda may assume {role_id}: {}",
        shown(&trust)
    );

    // What each permission may touch, taken from the rest of the template, so that the role and
    // the resources it serves cannot drift apart.
    let topic = &properties["Environment"]["Variables"]["ALERT_TOPIC_ARN"];
    assert!(!topic.is_null(), "{function_id} has no ALERT_TOPIC_ARN");
    let log_group = target_of(&properties["LoggingConfig"]["LogGroup"], None)
        .unwrap_or_else(|| panic!("{function_id} must log to a log group of this template"));
    let invoke_configs: Vec<&Value> = resources_of_type(deployed, "AWS::Lambda::EventInvokeConfig")
        .into_iter()
        .map(|(_, config)| config)
        .filter(|config| {
            target_of(&config["Properties"]["FunctionName"], None) == Some(function_id)
        })
        .collect();
    assert_eq!(
        invoke_configs.len(),
        1,
        "{function_id} needs one EventInvokeConfig"
    );
    let on_failure =
        &invoke_configs[0]["Properties"]["DestinationConfig"]["OnFailure"]["Destination"];
    let failure_queue = target_of(on_failure, Some("Arn"))
        .unwrap_or_else(|| panic!("the on-failure destination must be a queue of this template"));
    let event_table = target_of(&properties["Environment"]["Variables"]["DEDUP_TABLE"], None)
        .unwrap_or_else(|| panic!("{function_id}'s DEDUP_TABLE must name the stack's table"));
    let policy_parameter = target_of(
        &properties["Environment"]["Variables"]["POLICY_PARAMETER"],
        None,
    )
    .unwrap_or_else(|| panic!("{function_id}'s POLICY_PARAMETER must name the stack's parameter"));
    let parameter_arn = |value: &Value| {
        // arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter${PolicyParameter}
        value
            .get("Fn::Sub")
            .and_then(Value::as_str)
            .is_some_and(|text| {
                text == format!(
                    "arn:${{AWS::Partition}}:ssm:${{AWS::Region}}:${{AWS::AccountId}}:parameter${{{policy_parameter}}}"
                )
            })
    };
    // S3 mode: the queue its event source mapping reads, and the trail's log files.
    let trail_queue = resources_of_type(deployed, "AWS::Lambda::EventSourceMapping")
        .into_iter()
        .find(|(_, m)| target_of(&m["Properties"]["FunctionName"], None) == Some(function_id))
        .and_then(|(_, m)| target_of(&m["Properties"]["EventSourceArn"], Some("Arn")));
    let trail_log_files =
        |value: &Value| {
            value.get("Fn::Sub").and_then(Value::as_str).is_some_and(|text| {
            text == "arn:${AWS::Partition}:s3:::${TrailBucketName}/${TrailKeyPrefix}/AWSLogs/*"
                || text == "arn:${AWS::Partition}:s3:::${TrailBucketName}/AWSLogs/*"
        })
        };
    let keys: BTreeSet<&str> = resources_of_type(deployed, "AWS::KMS::Key")
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    let parameters = deployed["Parameters"]
        .as_object()
        .cloned()
        .unwrap_or_default();

    let mut granted: BTreeSet<String> = BTreeSet::new();
    for statement in role_statements(deployed, role_id) {
        let sid = statement["Sid"].as_str().unwrap_or("(no Sid)");
        assert!(
            statement.get("NotAction").is_none() && statement.get("NotResource").is_none(),
            "{role_id} {sid}: NotAction/NotResource grant everything else"
        );
        if statement["Effect"] != "Allow" {
            continue;
        }
        let resources_granted: Vec<&Value> = as_list(&statement["Resource"])
            .into_iter()
            .flat_map(alternatives)
            .collect();
        assert!(
            !resources_granted.is_empty(),
            "{role_id} {sid}: no Resource"
        );
        for action in as_list(&statement["Action"]) {
            let action = action
                .as_str()
                .unwrap_or_else(|| panic!("{role_id} {sid}: action {action} is not a string"));
            assert!(
                !action.contains('*') && !action.contains('?'),
                "{role_id} {sid}: wildcard action {action}"
            );
            for granted_on in &resources_granted {
                assert!(
                    !granted_on.as_str().is_some_and(|r| r.contains('*')),
                    "{role_id} {sid}: {action} on wildcard resource {granted_on}"
                );
                let allowed = match action {
                    "sns:Publish" => {
                        *granted_on == topic || alternatives(topic).contains(granted_on)
                    }
                    "logs:CreateLogStream" | "logs:PutLogEvents" => {
                        target_of(granted_on, Some("Arn")) == Some(log_group)
                    }
                    "sqs:SendMessage" => target_of(granted_on, Some("Arn")) == Some(failure_queue),
                    "dynamodb:GetItem"
                    | "dynamodb:PutItem"
                    | "dynamodb:UpdateItem"
                    | "dynamodb:DeleteItem"
                    | "dynamodb:Scan" => target_of(granted_on, Some("Arn")) == Some(event_table),
                    "ssm:GetParameter" => parameter_arn(granted_on),
                    "s3:GetObject" => trail_log_files(granted_on),
                    "sqs:ReceiveMessage"
                    | "sqs:DeleteMessage"
                    | "sqs:ChangeMessageVisibility"
                    | "sqs:GetQueueAttributes" => {
                        trail_queue.is_some() && target_of(granted_on, Some("Arn")) == trail_queue
                    }
                    "kms:Decrypt" if target_of(granted_on, None) == Some("TrailKmsKeyArn") => {
                        statement["Condition"]["StringLike"]["kms:ViaService"]
                            == "s3.*.amazonaws.com"
                    }
                    "kms:GenerateDataKey" | "kms:Decrypt" => {
                        (target_of(granted_on, Some("Arn")).is_some_and(|k| keys.contains(k))
                            || target_of(granted_on, None)
                                .is_some_and(|p| parameters.contains_key(p)))
                            && only_via_a_service(statement)
                    }
                    _ => false,
                };
                assert!(
                    allowed,
                    "{role_id} {sid}: {action} on {granted_on} is more than the function needs \
                     (publish to its topic {topic}, use its key through SNS and SQS, write its \
                     log group {log_group}, park failures in {failure_queue})"
                );
            }
            granted.insert(action.to_owned());
        }
    }
    assert!(
        granted.contains("sns:Publish"),
        "{role_id} cannot publish alerts: {granted:?}"
    );
    for needed in [
        "logs:PutLogEvents",
        "sqs:SendMessage",
        "kms:GenerateDataKey",
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "dynamodb:Scan",
        "ssm:GetParameter",
    ] {
        assert!(
            granted.contains(needed),
            "{role_id} lacks {needed}: {granted:?}"
        );
    }

    // The topic it publishes to is the stack's own topic or the one given as a parameter.
    for choice in alternatives(topic) {
        let is_own_topic = target_of(choice, None).is_some_and(|id| {
            resources(deployed)
                .get(id)
                .is_some_and(|r| r["Type"] == "AWS::SNS::Topic")
                || parameters.contains_key(id)
        });
        assert!(
            is_own_topic,
            "ALERT_TOPIC_ARN may be {choice}, which is not the stack's topic"
        );
    }
}
