//! S3 mode.

use super::*;

/// An S3-mode deployment with destinations for alerts and alarms, plus `extra`.
pub(crate) fn s3_deployment<'t>(deployed: &'t Value, extra: &[(&str, &str)]) -> Deployment<'t> {
    let mut given: Vec<(&str, &str)> = vec![
        ("AlertEmail", "sec@example.com"),
        ("OpsEmail", "ops@example.com"),
    ];
    given.extend_from_slice(S3_MODE);
    given.extend_from_slice(extra);
    Deployment::new(deployed, &given)
}

/// Every statement of the function role's inline policies, resolved for `deployment`.
pub(crate) fn resolved_role_statements(deployment: &Deployment) -> Vec<Value> {
    let policies = deployment
        .resolve(&resource(deployment.template, "CodeWatchFunctionRole")["Properties"]["Policies"])
        .unwrap();
    as_list(&policies)
        .into_iter()
        .flat_map(|p| as_list(&p["PolicyDocument"]["Statement"]))
        .cloned()
        .collect()
}

pub(crate) fn actions(statement: &Value) -> Vec<String> {
    as_list(&statement["Action"])
        .iter()
        .filter_map(|a| a.as_str().map(str::to_owned))
        .collect()
}

#[test]
fn s3_mode_reads_only_the_trail_log_files_and_decrypts_only_through_s3() {
    let Some(deployed) = deployed_template() else {
        return;
    };
    for (prefix, objects) in [
        (
            "central",
            format!("arn:aws:s3:::{TRAIL_BUCKET}/central/AWSLogs/*"),
        ),
        ("", format!("arn:aws:s3:::{TRAIL_BUCKET}/AWSLogs/*")),
    ] {
        let deployment = s3_deployment(deployed, &[("TrailKeyPrefix", prefix)]);
        let statements = resolved_role_statements(&deployment);
        let reads: Vec<&Value> = statements
            .iter()
            .filter(|s| actions(s).iter().any(|a| a.starts_with("s3:")))
            .collect();
        assert_eq!(reads.len(), 1, "{}", shown(&reads));
        assert_eq!(actions(reads[0]), ["s3:GetObject"]);
        assert_eq!(reads[0]["Resource"], json!(objects), "exactly the prefix");
        let decrypts: Vec<&Value> = statements
            .iter()
            .filter(|s| as_list(&s["Resource"]).contains(&&json!(TRAIL_KEY)))
            .collect();
        assert_eq!(decrypts.len(), 1, "{}", shown(&decrypts));
        assert_eq!(actions(decrypts[0]), ["kms:Decrypt"]);
        assert_eq!(
            decrypts[0]["Condition"],
            json!({"StringLike": {"kms:ViaService": "s3.*.amazonaws.com"}})
        );
        let queue_arn = deployment.text(&json!({"Fn::GetAtt": ["TrailFileQueue", "Arn"]}));
        let receives: Vec<&Value> = statements
            .iter()
            .filter(|s| actions(s).iter().any(|a| a == "sqs:ReceiveMessage"))
            .collect();
        assert_eq!(receives.len(), 1, "{}", shown(&receives));
        assert_eq!(receives[0]["Resource"], json!(queue_arn));
        let variables = deployment
            .resolve(&resource(deployed, "CodeWatchFunction")["Properties"]["Environment"])
            .unwrap();
        assert_eq!(variables["Variables"]["TRAIL_BUCKET"], TRAIL_BUCKET);
        assert_eq!(variables["Variables"]["TRAIL_PREFIX"], prefix);
    }
    // Without a trail key: no decrypt; without S3 mode: nothing of it at all.
    let deployment = s3_deployment(deployed, &[("TrailKmsKeyArn", "")]);
    assert!(
        !resolved_role_statements(&deployment)
            .iter()
            .any(|s| s.to_string().contains("kms:ViaService\":\"s3.")),
        "no trail key, no decrypt"
    );
    let single = Deployment::new(
        deployed,
        &[
            ("AlertEmail", "sec@example.com"),
            ("OpsEmail", "ops@example.com"),
        ],
    );
    for statement in resolved_role_statements(&single) {
        assert!(
            !actions(&statement)
                .iter()
                .any(|a| a.starts_with("s3:") || a == "sqs:ReceiveMessage"),
            "{statement}"
        );
    }
    for id in [
        "TrailFileQueue",
        "TrailFileDeadLetterQueue",
        "TrailFileQueuePolicy",
        "TrailFileEventSourceMapping",
        "TrailFileEventsRule",
        "TrailFileQueueAgeAlarm",
        "TrailFileDeadLetterQueueAlarm",
        "TrailCanaryHeartbeatAlarm",
    ] {
        assert!(!single.exists(id), "{id} exists without S3 mode");
        assert!(deployment.exists(id), "{id} is missing in S3 mode");
    }
    let function = single
        .resolve(&resource(deployed, "CodeWatchFunction")["Properties"])
        .unwrap();
    assert_eq!(
        function["Environment"]["Variables"].get("TRAIL_BUCKET"),
        None
    );
    assert_eq!(
        (&function["MemorySize"], &function["Timeout"]),
        (&json!(128), &json!(10)),
        "the single-account function is sized as before"
    );
}

/// An S3 "Object Created" event on EventBridge for `key` in `bucket`.
pub(crate) fn object_created(bucket: &str, key: &str) -> Value {
    json!({"version": "0", "id": "e0", "detail-type": "Object Created", "source": "aws.s3",
           "account": TRAIL_OWNER, "time": "2026-01-02T00:05:00Z", "region": "us-east-1",
           "resources": [format!("arn:aws:s3:::{bucket}")],
           "detail": {"version": "0", "bucket": {"name": bucket},
                      "object": {"key": key, "size": 1024, "etag": "e", "sequencer": "1"},
                      "request-id": "r", "requester": "cloudtrail.amazonaws.com",
                      "reason": "PutObject"}})
}

#[test]
fn s3_mode_queue_admits_only_the_trail_bucket_and_its_rule_which_forwards_only_log_files() {
    let Some(deployed) = deployed_template() else {
        return;
    };
    let deployment = s3_deployment(deployed, &[]);
    let queue_arn = deployment.text(&json!({"Fn::GetAtt": ["TrailFileQueue", "Arn"]}));
    let rule_arn = deployment.text(&json!({"Fn::GetAtt": ["TrailFileEventsRule", "Arn"]}));
    let policy = deployment
        .resolve(&resource(deployed, "TrailFileQueuePolicy")["Properties"])
        .unwrap();
    let statements = as_list(&policy["PolicyDocument"]["Statement"]);
    let allows: Vec<&&Value> = statements
        .iter()
        .filter(|s| s["Effect"] == "Allow")
        .collect();
    assert_eq!(
        allows
            .iter()
            .map(|s| (
                s["Principal"].clone(),
                s["Action"].clone(),
                s["Resource"].clone(),
                s["Condition"].clone()
            ))
            .collect::<Vec<_>>(),
        [
            (
                json!({"Service": "s3.amazonaws.com"}),
                json!("sqs:SendMessage"),
                json!(queue_arn),
                json!({"ArnEquals": {"aws:SourceArn": format!("arn:aws:s3:::{TRAIL_BUCKET}")},
                       "StringEquals": {"aws:SourceAccount": TRAIL_OWNER}})
            ),
            (
                json!({"Service": "events.amazonaws.com"}),
                json!("sqs:SendMessage"),
                json!(queue_arn),
                json!({"ArnEquals": {"aws:SourceArn": rule_arn}})
            ),
        ],
        "the queue admits the trail bucket (in its owner's account) and the rule, nothing else"
    );
    assert!(
        statements
            .iter()
            .any(|s| s["Effect"] == "Deny"
                && s["Condition"]["Bool"]["aws:SecureTransport"] == "false"),
        "the queue refuses plain HTTP"
    );

    // The EventBridge route: on the organization bus, only the trail's log files.
    let rule = deployment
        .resolve(&resource(deployed, "TrailFileEventsRule")["Properties"])
        .unwrap();
    assert_eq!(
        rule["EventBusName"],
        deployment.text(&json!({"Ref": "OrganizationEventBus"}))
    );
    assert_eq!(
        rule["Targets"][0]["Arn"],
        json!(queue_arn),
        "the rule feeds the queue"
    );
    let day = "2026/01/02";
    let cases: Vec<Case> = [
        (
            format!("central/AWSLogs/{ORGANIZATION}/111122223333/CloudTrail/us-east-1/{day}/a.json.gz"),
            TRAIL_BUCKET,
            true,
        ),
        (
            format!("central/AWSLogs/111122223333/CloudTrail/eu-west-1/{day}/b.json.gz"),
            TRAIL_BUCKET,
            true,
        ),
        (
            format!("central/AWSLogs/{ORGANIZATION}/111122223333/CloudTrail-Digest/us-east-1/{day}/d.json.gz"),
            TRAIL_BUCKET,
            false,
        ),
        (
            format!("central/AWSLogs/111122223333/CloudTrail-Insight/us-east-1/{day}/i.json.gz"),
            TRAIL_BUCKET,
            false,
        ),
        (
            format!("other/AWSLogs/111122223333/CloudTrail/us-east-1/{day}/c.json.gz"),
            TRAIL_BUCKET,
            false,
        ),
        (
            format!("central/AWSLogs/111122223333/CloudTrail/us-east-1/{day}/a.json.gz"),
            "someone-elses-bucket",
            false,
        ),
    ]
    .into_iter()
    .map(|(key, bucket, must_deliver)| Case {
        name: format!("{bucket}/{key}"),
        envelope: object_created(bucket, &key),
        must_deliver,
        because: match must_deliver {
            true => "a log file of the trail".to_owned(),
            false => "not a log file of the trail".to_owned(),
        },
    })
    .collect();
    let Some(outcomes) = apply_pattern(&rule["EventPattern"], &cases) else {
        return;
    };
    assert_eq!(misrouted(&cases, &outcomes), Vec::<String>::new());
}

#[test]
fn s3_mode_batches_report_item_failures_and_failed_files_are_kept_and_watched() {
    let Some(deployed) = deployed_template() else {
        return;
    };
    let deployment = s3_deployment(deployed, &[]);
    let mapping = deployment
        .resolve(&resource(deployed, "TrailFileEventSourceMapping")["Properties"])
        .unwrap();
    let queue_arn = deployment.text(&json!({"Fn::GetAtt": ["TrailFileQueue", "Arn"]}));
    let dead_letters_arn =
        deployment.text(&json!({"Fn::GetAtt": ["TrailFileDeadLetterQueue", "Arn"]}));
    assert_eq!(
        mapping["FunctionResponseTypes"],
        json!(["ReportBatchItemFailures"])
    );
    assert_eq!(mapping["EventSourceArn"], json!(queue_arn));
    assert_eq!(
        mapping["FunctionName"],
        deployment
            .resolve(&json!({"Ref": "CodeWatchFunction"}))
            .unwrap()
    );
    let reserved: u64 = deployment.parameters["ReservedConcurrency"]
        .parse()
        .unwrap();
    let batches = mapping["ScalingConfig"]["MaximumConcurrency"]
        .as_u64()
        .expect("the mapping caps its concurrency");
    assert!(
        batches < reserved,
        "trail files ({batches} at once) leave the real-time path some of the {reserved} reserved"
    );

    let function = deployment
        .resolve(&resource(deployed, "CodeWatchFunction")["Properties"])
        .unwrap();
    let timeout = function["Timeout"].as_u64().unwrap();
    let queue = deployment
        .resolve(&resource(deployed, "TrailFileQueue")["Properties"])
        .unwrap();
    assert!(
        queue["VisibilityTimeout"].as_u64().unwrap() >= 6 * timeout,
        "the visibility timeout ({}) is at least six times the function's timeout ({timeout})",
        queue["VisibilityTimeout"]
    );
    assert_eq!(
        queue["RedrivePolicy"]["deadLetterTargetArn"],
        json!(dead_letters_arn)
    );
    assert!(queue["RedrivePolicy"]["maxReceiveCount"].as_u64() > Some(1));
    for id in ["TrailFileQueue", "TrailFileDeadLetterQueue"] {
        let queue = resource(deployed, id);
        assert_eq!(queue["DeletionPolicy"], "Retain", "{id}");
        assert_eq!(queue["UpdateReplacePolicy"], "Retain", "{id}");
        assert_eq!(
            queue["Properties"]["MessageRetentionPeriod"], 1209600,
            "{id}"
        );
    }

    // Alarms on both queues; the tamper rule watches both (and neither exists without S3 mode).
    for (alarm, queue_id) in [
        ("TrailFileQueueAgeAlarm", "TrailFileQueue"),
        ("TrailFileDeadLetterQueueAlarm", "TrailFileDeadLetterQueue"),
    ] {
        let alarm = deployment
            .resolve(&resource(deployed, alarm)["Properties"])
            .unwrap();
        assert_eq!(
            alarm["Dimensions"],
            json!([{"Name": "QueueName",
                    "Value": deployment.text(&json!({"Fn::GetAtt": [queue_id, "QueueName"]}))}])
        );
    }
    let watched = |deployment: &Deployment| -> Vec<Value> {
        let rule = deployment
            .resolve(&resource(deployed, "TamperQueueRule")["Properties"])
            .unwrap();
        as_list(&rule["EventPattern"]["detail"]["requestParameters"]["queueUrl"])
            .into_iter()
            .cloned()
            .collect()
    };
    let in_s3_mode = watched(&deployment);
    for queue_id in ["TrailFileQueue", "TrailFileDeadLetterQueue"] {
        let name = deployment.text(&json!({"Fn::GetAtt": [queue_id, "QueueName"]}));
        assert!(
            in_s3_mode.contains(&json!({"suffix": format!("/{ACCOUNT}/{name}")})),
            "the tamper rule watches {queue_id}: {in_s3_mode:?}"
        );
    }
    let single = Deployment::new(
        deployed,
        &[
            ("AlertEmail", "sec@example.com"),
            ("OpsEmail", "ops@example.com"),
        ],
    );
    assert_eq!(watched(&single).len(), 2, "{:?}", watched(&single));
}

#[test]
fn s3_mode_settings_need_a_bucket_and_its_owner() {
    let Some(source) = source_template() else {
        return;
    };
    let destinations = [
        ("AlertEmail", "sec@example.com"),
        ("OpsEmail", "ops@example.com"),
    ];
    let with = |extra: &[(&str, &str)]| {
        let mut given = destinations.to_vec();
        given.extend_from_slice(extra);
        broken_rules(source, &given)
    };
    assert_eq!(with(S3_MODE), Vec::<String>::new());
    assert_eq!(
        with(&[("TrailBucketName", TRAIL_BUCKET)]),
        ["TrailNeedsItsOwner"]
    );
    for parameter in ["TrailKeyPrefix", "TrailBucketAccountId", "TrailKmsKeyArn"] {
        let value = S3_MODE.iter().find(|(p, _)| *p == parameter).unwrap().1;
        assert_eq!(
            with(&[(parameter, value)]),
            ["TrailSettingsNeedABucket"],
            "{parameter} without TrailBucketName"
        );
    }
}
