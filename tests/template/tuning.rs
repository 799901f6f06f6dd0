//! Exactly once, grouping, tuning.

use super::*;

#[test]
fn the_event_table_is_kept_encrypted_and_only_for_items() {
    let Some(deployed) = deployed_template() else {
        return;
    };
    let Some(source) = source_template() else {
        return;
    };
    let (function_id, function) = the_function(deployed);
    let variables = &function["Properties"]["Environment"]["Variables"];
    let table_id = target_of(&variables["DEDUP_TABLE"], None)
        .unwrap_or_else(|| panic!("{function_id} must get DEDUP_TABLE from the stack's table"));
    let table = resource(deployed, table_id);
    assert_eq!(table["Type"], "AWS::DynamoDB::Table");
    assert_eq!(
        table["DeletionPolicy"], "Retain",
        "{table_id} outlives the stack"
    );
    assert_eq!(
        table["UpdateReplacePolicy"], "Retain",
        "{table_id} outlives a replacement"
    );
    let properties = &table["Properties"];
    assert_eq!(properties["BillingMode"], "PAY_PER_REQUEST", "on-demand");
    assert_eq!(
        render(&properties["TableName"]).as_deref(),
        Some(format!("{STACK_NAME}-events").as_str()),
        "named from the stack, so tamper rules can name it"
    );
    assert_eq!(
        properties["KeySchema"],
        json!([{"AttributeName": "pk", "KeyType": "HASH"}])
    );
    assert_eq!(
        properties["AttributeDefinitions"],
        json!([{"AttributeName": "pk", "AttributeType": "S"}])
    );
    assert_eq!(
        properties["TimeToLiveSpecification"],
        json!({"AttributeName": "expires_at", "Enabled": true})
    );
    assert_eq!(
        properties["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"],
        true
    );
    let sse = &properties["SSESpecification"];
    assert_eq!(
        (&sse["SSEEnabled"], &sse["SSEType"]),
        (&json!(true), &json!("KMS"))
    );
    let key = target_of(&sse["KMSMasterKeyId"], None)
        .or_else(|| target_of(&sse["KMSMasterKeyId"], Some("Arn")))
        .expect("the table is encrypted with a key of this stack");
    assert_eq!(resource(deployed, key)["Type"], "AWS::KMS::Key");

    assert!(
        variables.get("DEDUP_WINDOW_MINUTES").is_some(),
        "{function_id} needs DEDUP_WINDOW_MINUTES"
    );
    let parameter = target_of(&variables["POLICY_PARAMETER"], None)
        .expect("POLICY_PARAMETER names the stack's parameter");
    assert_eq!(resource(deployed, parameter)["Type"], "AWS::SSM::Parameter");
    let initial = resource(deployed, parameter)["Properties"]["Value"]
        .as_str()
        .expect("a literal initial policy");
    let policy = lambda_code_watch::Policy::parse("PolicyParameter", initial)
        .expect("the stack's initial policy loads");
    assert!(policy.is_original(), "the default is the original rule");

    // Every DynamoDB action the role has is an item action on this table (the least-privilege
    // test checks the resource); nothing table-level (no DeleteTable, UpdateTable, DescribeTable).
    let role_id = target_of(&function["Properties"]["Role"], Some("Arn")).unwrap();
    let dynamodb: BTreeSet<String> = role_statements(deployed, role_id)
        .into_iter()
        .flat_map(|s| as_list(&s["Action"]))
        .filter_map(|a| a.as_str())
        .filter(|a| a.starts_with("dynamodb:"))
        .map(str::to_owned)
        .collect();
    let expected: BTreeSet<String> = [
        "dynamodb:DeleteItem",
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:Scan",
        "dynamodb:UpdateItem",
    ]
    .map(str::to_owned)
    .into();
    assert_eq!(dynamodb, expected);

    // The summary sweep: a schedule invoking the function with the scheduled-event payload the
    // handler recognises.
    let schedules = resources_of_type(deployed, "AWS::Scheduler::Schedule");
    let sweep = schedules
        .iter()
        .find(|(_, s)| {
            target_of(&s["Properties"]["Target"]["Arn"], Some("Arn")) == Some(function_id)
        })
        .unwrap_or_else(|| panic!("a schedule must invoke {function_id} for the summaries"));
    let input: Value = serde_json::from_str(
        sweep.1["Properties"]["Target"]["Input"]
            .as_str()
            .expect("the schedule passes an input"),
    )
    .expect("the input is JSON");
    assert_eq!(input["source"], "aws.events");
    assert_eq!(input["detail-type"], "Scheduled Event");
    let rate = sweep.1["Properties"]["ScheduleExpression"]
        .as_str()
        .unwrap_or("");
    assert!(rate.starts_with("rate("), "{rate}");

    // The alarm that matters for tuning: a surge of suppressed alerts.
    let alarms: Vec<&Value> = resources_of_type(deployed, "AWS::CloudWatch::Alarm")
        .into_iter()
        .map(|(_, a)| &a["Properties"])
        .collect();
    for metric in ["Suppressed", "PolicyRejected", "StoreErrors"] {
        assert!(
            alarms.iter().any(|a| a["Namespace"] == "LambdaCodeWatch"
                && a["MetricName"] == metric
                && as_list(&a["Dimensions"])
                    .iter()
                    .any(|d| d["Name"] == "FunctionName"
                        && target_of(&d["Value"], None) == Some(function_id))),
            "an alarm must watch LambdaCodeWatch/{metric} of {function_id}"
        );
    }
    // The names the handler writes its metrics under are the ones alarmed on.
    assert_eq!(
        lambda_code_watch_metric_names(),
        ["Suppressed", "PolicyRejected", "StoreErrors"]
    );
    assert!(
        source["Resources"]["EventTable"].is_object(),
        "template.yaml names the table EventTable"
    );
}

/// The metric names as the handler spells them (handler/src/metrics.rs), read from its source so
/// the alarms and the writer cannot drift apart.
pub(crate) fn lambda_code_watch_metric_names() -> Vec<String> {
    let source = std::fs::read_to_string(repo().join("handler/src/metrics.rs")).unwrap();
    ["SUPPRESSED", "POLICY_REJECTED", "STORE_ERRORS"]
        .iter()
        .map(|constant| {
            let line = source
                .lines()
                .find(|l| l.starts_with(&format!("pub const {constant}: &str = ")))
                .unwrap_or_else(|| panic!("metrics.rs defines {constant}"));
            line.split('"').nth(1).unwrap().to_owned()
        })
        .collect()
}
