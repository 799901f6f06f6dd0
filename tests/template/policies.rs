//! Topic and key policies.

use super::*;

/// The statements of the topic policies attached to `topic_id`, as the template writes them.
pub(crate) fn topic_policy_statements<'t>(template: &'t Value, topic_id: &str) -> Vec<&'t Value> {
    resources_of_type(template, "AWS::SNS::TopicPolicy")
        .into_iter()
        .map(|(_, p)| &p["Properties"])
        .filter(|p| {
            as_list(&p["Topics"])
                .iter()
                .any(|t| target_of(t, None) == Some(topic_id))
        })
        .flat_map(|p| as_list(&p["PolicyDocument"]["Statement"]))
        .collect()
}

/// The statements of the topic policy attached to `topic_id`, resolved for `deployment`.
pub(crate) fn topic_statements(deployment: &Deployment, topic_id: &str) -> Vec<Value> {
    topic_policy_statements(deployment.template, topic_id)
        .into_iter()
        .filter_map(|s| deployment.resolve(s))
        .collect()
}

pub(crate) fn strings(value: &Value) -> BTreeSet<String> {
    as_list(value)
        .iter()
        .map(|v| {
            v.as_str()
                .unwrap_or_else(|| panic!("not a string: {v}"))
                .to_owned()
        })
        .collect()
}

/// `text` matches the IAM/EventBridge-style pattern `glob` (`*` = any run of characters).
pub(crate) fn glob_matches(glob: &str, text: &str) -> bool {
    let parts: Vec<&str> = glob.split('*').collect();
    let mut rest = text;
    for (index, part) in parts.iter().enumerate() {
        if index == 0 {
            let Some(after) = rest.strip_prefix(part) else {
                return false;
            };
            rest = after;
        } else if index == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            let Some(at) = rest.find(part) else {
                return false;
            };
            rest = &rest[at + part.len()..];
        }
    }
    rest.is_empty()
}

pub(crate) const TOPIC_MANAGEMENT: &[&str] = &[
    "sns:Subscribe",
    "sns:Unsubscribe",
    "sns:DeleteTopic",
    "sns:SetTopicAttributes",
    "sns:SetSubscriptionAttributes",
    "sns:AddPermission",
    "sns:RemovePermission",
];

#[test]
fn topic_and_key_policies_grant_what_is_described_and_nothing_more() {
    let Some(deployed) = deployed_template() else {
        return;
    };
    let deploy_role = format!("arn:aws:iam::{ACCOUNT}:role/cfn-deployer");
    let given = [
        ("AlertEmail", "sec@example.com"),
        ("OpsEmail", "ops@example.com"),
        ("DeployRoleArn", deploy_role.as_str()),
    ];
    let deployment = Deployment::new(deployed, &given);
    let (function_id, function) = the_function(deployed);
    let role_id = target_of(&function["Properties"]["Role"], Some("Arn")).unwrap();
    let role_arn = deployment.text(&json!({"Fn::GetAtt": [role_id, "Arn"]}));
    let root = format!("arn:aws:iam::{ACCOUNT}:root");
    let tamper_rule_arns: Vec<String> = tamper_rules(deployed)
        .iter()
        .filter(|(id, _)| deployment.exists(id))
        .map(|(id, _)| deployment.text(&json!({"Fn::GetAtt": [id, "Arn"]})))
        .collect();

    for (topic_id, publishers) in [
        ("AlertTopic", &["events.amazonaws.com"][..]),
        (
            "OpsTopic",
            &["events.amazonaws.com", "cloudwatch.amazonaws.com"][..],
        ),
    ] {
        let topic = deployment.text(&json!({"Ref": topic_id}));
        let statements = topic_statements(&deployment, topic_id);
        // Allows: exactly the service principals named, only sns:Publish, only on this topic.
        let allows: Vec<&Value> = statements
            .iter()
            .filter(|s| s["Effect"] == "Allow")
            .collect();
        let allowed_services: BTreeSet<String> = allows
            .iter()
            .flat_map(|s| strings(&s["Principal"]["Service"]))
            .collect();
        assert_eq!(
            allowed_services,
            publishers.iter().map(|p| (*p).to_owned()).collect(),
            "{topic_id}: who may publish"
        );
        for allow in &allows {
            assert_eq!(
                strings(&allow["Action"]),
                BTreeSet::from(["sns:Publish".to_owned()])
            );
            assert_eq!(strings(&allow["Resource"]), BTreeSet::from([topic.clone()]));
            assert!(
                allow["Principal"].get("AWS").is_none(),
                "{topic_id}: {allow}"
            );
            if strings(&allow["Principal"]["Service"]).contains("events.amazonaws.com") {
                let glob = allow["Condition"]["ArnLike"]["aws:SourceArn"]
                    .as_str()
                    .unwrap();
                for arn in &tamper_rule_arns {
                    assert!(
                        glob_matches(glob, arn),
                        "{topic_id}: {glob} must admit {arn}"
                    );
                }
                for arn in [
                    deployment
                        .text(&json!({"Fn::GetAtt": ["CodeWatchFunctionCodeUpdates", "Arn"]})),
                    deployment.text(&json!({"Fn::GetAtt": ["CanarySchedule", "Arn"]})),
                    format!("arn:aws:events:{REGION}:{ACCOUNT}:rule/anything-else"),
                ] {
                    assert!(
                        !glob_matches(glob, &arn),
                        "{topic_id}: {glob} must not admit {arn}"
                    );
                }
            } else {
                assert_eq!(
                    allow["Condition"]["StringEquals"]["aws:SourceAccount"], ACCOUNT,
                    "{topic_id}: alarms of this account only"
                );
            }
        }
        // Management: denied to all but the deploy role and the root user.
        let management = statements
            .iter()
            .find(|s| {
                s["Effect"] == "Deny"
                    && s["Principal"] == "*"
                    && TOPIC_MANAGEMENT
                        .iter()
                        .all(|a| strings(&s["Action"]).contains(*a))
            })
            .unwrap_or_else(|| panic!("{topic_id}: no statement denies managing the topic"));
        assert_eq!(
            strings(&management["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]),
            BTreeSet::from([root.clone(), deploy_role.clone()]),
            "{topic_id}: only the deploy role and root may manage it"
        );
        topic_refuses_plain_http(deployed, topic_id);
    }
    // Without a deploy role, only root.
    let no_role = Deployment::new(deployed, &given[..2]);
    for statement in topic_statements(&no_role, "AlertTopic") {
        if strings(&statement["Action"]).contains("sns:Unsubscribe") {
            assert_eq!(
                strings(&statement["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]),
                BTreeSet::from([root.clone()])
            );
        }
    }

    // The alert topic: nobody but the function's role and EventBridge publishes.
    let statements = topic_statements(&deployment, "AlertTopic");
    let publish_deny = statements
        .iter()
        .find(|s| {
            s["Effect"] == "Deny"
                && strings(&s["Action"]) == BTreeSet::from(["sns:Publish".to_owned()])
        })
        .expect("AlertTopic: a statement denies publishing to everyone else");
    assert_eq!(publish_deny["Principal"], "*");
    let tamper_rules_glob =
        format!("arn:aws:events:{REGION}:{ACCOUNT}:rule/lcw-{STACK_UUID}-tamper-*");
    assert_eq!(
        publish_deny["Condition"],
        json!({"ArnNotEquals": {"aws:PrincipalArn": role_arn},
               "ArnNotLike": {"aws:SourceArn": tamper_rules_glob}}),
        "AlertTopic: publishing is denied unless the caller is {role_id} or a tamper rule"
    );

    // The role may publish only from inside the function (identity policies only can say so).
    let function_arn = deployment.text(&json!({"Fn::GetAtt": [function_id, "Arn"]}));
    let publish = role_statements(deployed, role_id)
        .into_iter()
        .find(|s| as_list(&s["Action"]).contains(&&json!("sns:Publish")))
        .and_then(|s| deployment.resolve(s))
        .expect("the role publishes");
    assert_eq!(
        publish["Condition"]["ArnEquals"]["lambda:SourceFunctionArn"], function_arn,
        "{role_id} may publish only when the caller is {function_id}"
    );

    // Keys: who may use them, for what.
    let key_grants = |key_id: &str| -> BTreeMap<String, BTreeSet<String>> {
        let key = deployment
            .resolve(&resource(deployed, key_id)["Properties"])
            .unwrap();
        let mut grants: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for statement in as_list(&key["KeyPolicy"]["Statement"]) {
            assert_eq!(statement["Effect"], "Allow", "{key_id}: {statement}");
            let principal = statement["Principal"]["Service"]
                .as_str()
                .or(statement["Principal"]["AWS"].as_str())
                .unwrap_or_else(|| panic!("{key_id}: one principal per statement: {statement}"))
                .to_owned();
            grants
                .entry(principal)
                .or_default()
                .extend(strings(&statement["Action"]));
        }
        grants
    };
    let expected = |entries: &[(&str, &[&str])]| -> BTreeMap<String, BTreeSet<String>> {
        entries
            .iter()
            .map(|(p, a)| ((*p).to_owned(), a.iter().map(|s| (*s).to_owned()).collect()))
            .collect()
    };
    assert_eq!(
        key_grants("OpsKey"),
        expected(&[
            (root.as_str(), &["kms:*"]),
            (
                "cloudwatch.amazonaws.com",
                &["kms:GenerateDataKey*", "kms:Decrypt"]
            ),
            (
                "events.amazonaws.com",
                &["kms:GenerateDataKey*", "kms:Decrypt"]
            ),
        ]),
        "OpsKey admits CloudWatch alarms and the tamper rules, nothing else"
    );
    assert_eq!(
        key_grants("EncryptionKey"),
        expected(&[
            (root.as_str(), &["kms:*"]),
            (
                "events.amazonaws.com",
                &["kms:GenerateDataKey", "kms:GenerateDataKey*", "kms:Decrypt"]
            ),
            (
                "logs.us-east-1.amazonaws.com",
                &[
                    "kms:Encrypt*",
                    "kms:Decrypt*",
                    "kms:ReEncrypt*",
                    "kms:GenerateDataKey*",
                    "kms:Describe*"
                ]
            ),
        ]),
        "EncryptionKey"
    );
    // CloudWatch Logs may use the stack key only for the stack's own log groups.
    let key = deployment
        .resolve(&resource(deployed, "EncryptionKey")["Properties"])
        .unwrap();
    let logs = as_list(&key["KeyPolicy"]["Statement"])
        .into_iter()
        .find(|s| s["Principal"]["Service"] == "logs.us-east-1.amazonaws.com")
        .unwrap()
        .clone();
    let log_groups: BTreeSet<String> = resources_of_type(deployed, "AWS::Logs::LogGroup")
        .iter()
        .map(|(id, _)| {
            format!(
                "arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{}",
                deployment.text(&json!({"Ref": id}))
            )
        })
        .collect();
    assert_eq!(
        strings(&logs["Condition"]["ArnEquals"]["kms:EncryptionContext:aws:logs:arn"]),
        log_groups
    );
}
