//! The forwarders' guard.

use super::*;

#[test]
fn the_service_control_policy_protects_the_forwarder_by_its_names() {
    let Some(forwarder) = forwarder_template() else {
        return;
    };
    let text = std::fs::read_to_string(repo().join("deploy/forwarder-scp.json"))
        .expect("deploy/forwarder-scp.json");
    let scp: Value = serde_json::from_str(&text).expect("the SCP is JSON");
    // AWS Organizations counts characters without whitespace, up to 5,120.
    let size = text.chars().filter(|c| !c.is_whitespace()).count();
    assert!(
        size <= 5120,
        "the SCP has {size} characters; Organizations takes 5,120"
    );
    // README shows it as it is.
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    assert!(
        readme.contains(text.trim()),
        "README.md must show deploy/forwarder-scp.json verbatim"
    );

    let deployment = Deployment::new(
        forwarder,
        &[
            (
                "CentralEventBusArn",
                "arn:aws:events:us-east-1:999988887777:event-bus/b",
            ),
            (
                "AlarmTopicArn",
                "arn:aws:sns::999988887777:lcw-forwarder-ops",
            ),
        ],
    );
    let member = "111122223333";
    let in_member = |arn: String| arn.replace(&format!(":{ACCOUNT}:"), &format!(":{member}:"));
    let (rule_id, _, target) = the_forwarder_rule(forwarder);
    let role_id = target_of(&target["RoleArn"], Some("Arn")).unwrap();
    let role_name = deployment.text(&resource(forwarder, role_id)["Properties"]["RoleName"]);
    let (alarm_id, _) = resources_of_type(forwarder, "AWS::CloudWatch::Alarm")[0];
    let (queue_id, _) = resources_of_type(forwarder, "AWS::SQS::Queue")[0];
    let protected = [
        (
            "events:DisableRule",
            in_member(deployment.text(&json!({"Fn::GetAtt": [rule_id, "Arn"]}))),
        ),
        (
            "events:RemoveTargets",
            in_member(deployment.text(&json!({"Fn::GetAtt": [rule_id, "Arn"]}))),
        ),
        (
            "iam:PutRolePolicy",
            format!("arn:aws:iam::{member}:role/{role_name}"),
        ),
        (
            "iam:UpdateAssumeRolePolicy",
            format!("arn:aws:iam::{member}:role/{role_name}"),
        ),
        (
            "sqs:DeleteQueue",
            in_member(deployment.text(&json!({"Fn::GetAtt": [queue_id, "Arn"]}))),
        ),
        (
            "sqs:PurgeQueue",
            in_member(deployment.text(&json!({"Fn::GetAtt": [queue_id, "Arn"]}))),
        ),
        (
            "cloudwatch:DeleteAlarms",
            format!(
                "arn:aws:cloudwatch:{REGION}:{member}:alarm:{}",
                deployment.text(&json!({"Ref": alarm_id}))
            ),
        ),
        (
            "cloudformation:DeleteStack",
            format!(
                "arn:aws:cloudformation:eu-west-1:{member}:stack/\
                 StackSet-lambda-code-watch-forwarder-5e1f0a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b/\
                 0a1b2c3d-0000-4000-8000-000000000000"
            ),
        ),
    ];
    let denies = |action: &str, arn: &str, principal: &str| {
        as_list(&scp["Statement"]).iter().any(|s| {
            s["Effect"] == "Deny"
                && strings(&s["Action"]).contains(action)
                && strings(&s["Resource"]).iter().any(|r| glob_matches(r, arn))
                && !strings(&s["Condition"]["ArnNotLike"]["aws:PrincipalArn"])
                    .iter()
                    .any(|p| glob_matches(p, principal))
        })
    };
    let admin = format!("arn:aws:iam::{member}:role/Admin");
    let stacksets = format!("arn:aws:iam::{member}:role/stacksets-exec-0123456789abcdef");
    for (action, arn) in &protected {
        assert!(
            denies(action, arn, &admin),
            "the SCP must deny {action} on {arn} to {admin}"
        );
        assert!(
            !denies(action, arn, &stacksets),
            "the SCP must let StackSets ({stacksets}) {action} on {arn}"
        );
    }
    // Other resources of the account stay the account's.
    for (action, arn) in [
        (
            "events:DisableRule",
            format!("arn:aws:events:{REGION}:{member}:rule/nightly-batch"),
        ),
        (
            "iam:PutRolePolicy",
            format!("arn:aws:iam::{member}:role/payments-api"),
        ),
        (
            "sqs:DeleteQueue",
            format!("arn:aws:sqs:{REGION}:{member}:orders"),
        ),
    ] {
        assert!(
            !denies(action, &arn, &admin),
            "{action} on {arn} must stay allowed"
        );
    }
    // README's rollout names the stack set as the SCP expects.
    assert!(
        readme.contains("--stack-set-name lambda-code-watch-forwarder"),
        "README.md's create-stack-set must name the stack set lambda-code-watch-forwarder"
    );
}
