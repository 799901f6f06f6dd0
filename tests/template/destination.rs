//! A destination is required.

use super::*;

/// Parameter values for one deployment: the template's defaults, overridden by `given`.
pub(crate) fn parameter_values(
    template: &Value,
    given: &[(&str, &str)],
) -> BTreeMap<String, String> {
    let mut values: BTreeMap<String, String> = template["Parameters"]
        .as_object()
        .expect("the template has Parameters")
        .iter()
        .map(|(name, p)| {
            let default = match &p["Default"] {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            };
            (name.clone(), default)
        })
        .collect();
    for (name, value) in given {
        assert!(
            values.contains_key(*name),
            "the template has no parameter {name}"
        );
        values.insert((*name).to_owned(), (*value).to_owned());
    }
    values
}

/// Evaluates a condition-like expression (Fn::Equals, Fn::Not, Fn::And, Fn::Or, Condition, Ref of
/// a parameter or pseudo parameter, literals) as CloudFormation would for these parameter values.
pub(crate) fn evaluate_condition(
    expression: &Value,
    parameters: &BTreeMap<String, String>,
    conditions: &Value,
) -> bool {
    let object = expression
        .as_object()
        .filter(|o| o.len() == 1)
        .unwrap_or_else(|| panic!("not a condition: {expression}"));
    let (function, argument) = object.iter().next().unwrap();
    let arguments = || argument.as_array().expect("a list of arguments");
    match function.as_str() {
        "Fn::Equals" => {
            let sides: Vec<String> = arguments()
                .iter()
                .map(|side| condition_value(side, parameters))
                .collect();
            sides[0] == sides[1]
        }
        "Fn::Not" => !evaluate_condition(&arguments()[0], parameters, conditions),
        "Fn::And" => arguments()
            .iter()
            .all(|a| evaluate_condition(a, parameters, conditions)),
        "Fn::Or" => arguments()
            .iter()
            .any(|a| evaluate_condition(a, parameters, conditions)),
        "Condition" => {
            let name = argument.as_str().expect("a condition name");
            evaluate_condition(&conditions[name], parameters, conditions)
        }
        other => panic!("unsupported function {other} in a condition"),
    }
}

/// A string-valued operand of a condition: literal, Ref, or Fn::Select/Split/Join over them.
pub(crate) fn condition_value(value: &Value, parameters: &BTreeMap<String, String>) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Number(n) => n.to_string(),
        Value::Object(map) if map.len() == 1 => {
            let (function, argument) = map.iter().next().unwrap();
            match function.as_str() {
                "Ref" => {
                    let name = argument.as_str().expect("a name");
                    parameters
                        .get(name)
                        .cloned()
                        .or_else(|| pseudo_parameter(name))
                        .unwrap_or_else(|| panic!("Ref {name} in a condition"))
                }
                "Fn::Join" => {
                    let [separator, parts] = argument.as_array().unwrap().as_slice() else {
                        panic!("Fn::Join takes two arguments")
                    };
                    parts
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|p| condition_value(p, parameters))
                        .collect::<Vec<_>>()
                        .join(separator.as_str().unwrap())
                }
                "Fn::Select" => {
                    let [index, list] = argument.as_array().unwrap().as_slice() else {
                        panic!("Fn::Select takes two arguments")
                    };
                    let [separator, text] = list["Fn::Split"].as_array().unwrap().as_slice() else {
                        panic!("Fn::Select over Fn::Split expected")
                    };
                    let text = condition_value(text, parameters);
                    let index = index
                        .as_u64()
                        .or_else(|| index.as_str()?.parse().ok())
                        .unwrap() as usize;
                    text.split(separator.as_str().unwrap())
                        .nth(index)
                        .unwrap_or_else(|| panic!("Fn::Select {index} out of range in {text:?}"))
                        .to_owned()
                }
                other => panic!("unsupported function {other} in a condition operand"),
            }
        }
        other => panic!("unsupported condition operand {other}"),
    }
}

/// The deploy-time rules a deployment with `given` parameters breaks, by name.
pub(crate) fn broken_rules(template: &Value, given: &[(&str, &str)]) -> Vec<String> {
    let parameters = parameter_values(template, given);
    let conditions = &template["Conditions"];
    let mut broken = Vec::new();
    for (name, rule) in template["Rules"]
        .as_object()
        .expect("the template has Rules")
    {
        let applies = rule
            .get("RuleCondition")
            .is_none_or(|c| evaluate_condition(c, &parameters, conditions));
        if !applies {
            continue;
        }
        for assertion in as_list(&rule["Assertions"]) {
            if !evaluate_condition(&assertion["Assert"], &parameters, conditions) {
                broken.push(name.clone());
            }
        }
    }
    broken
}

#[test]
fn a_deployment_without_a_destination_is_refused() {
    let Some(source) = source_template() else {
        return;
    };
    // The defaults deliver alerts and alarms to nobody: both rules refuse them.
    let broken = broken_rules(source, &[]);
    assert!(
        broken.contains(&"AlertsNeedADestination".to_owned())
            && broken.contains(&"AlarmsNeedADestination".to_owned()),
        "a deployment with the defaults must be refused for want of a destination: {broken:?}"
    );
    // Each assertion names the parameters that fix it.
    for (rule, parameters) in [
        (
            "AlertsNeedADestination",
            &["AlertEmail", "AlertSqsQueueArn", "ExistingAlertTopicArn"][..],
        ),
        ("AlarmsNeedADestination", &["OpsEmail", "AlarmTopicArn"][..]),
    ] {
        let assertions = as_list(&source["Rules"][rule]["Assertions"]);
        assert_eq!(assertions.len(), 1, "{rule}");
        let description = assertions[0]["AssertDescription"].as_str().unwrap_or("");
        let asserted = assertions[0]["Assert"].to_string();
        for parameter in parameters {
            assert!(
                description.contains(parameter),
                "{rule} must name {parameter}"
            );
            assert!(asserted.contains(parameter), "{rule} must test {parameter}");
        }
    }

    let topic = "arn:aws:sns:eu-west-1:111122223333:security-alerts";
    let queue = "arn:aws:sqs:us-east-1:111122223333:siem-intake";
    let ops = "arn:aws:sns:us-east-1:123456789012:ops";
    for (given, expected) in [
        (
            &[("AlertEmail", "sec@example.com")][..],
            vec!["AlarmsNeedADestination"],
        ),
        (
            &[("OpsEmail", "ops@example.com")][..],
            vec!["AlertsNeedADestination"],
        ),
        (
            &[
                ("AlertEmail", "sec@example.com"),
                ("OpsEmail", "ops@example.com"),
            ][..],
            vec![],
        ),
        (
            &[("AlertSqsQueueArn", queue), ("AlarmTopicArn", ops)][..],
            vec![],
        ),
        (
            &[
                ("ExistingAlertTopicArn", topic),
                ("OpsEmail", "ops@example.com"),
            ][..],
            vec![],
        ),
        (
            &[
                ("ExistingAlertTopicArn", topic),
                ("AlertEmail", "sec@example.com"),
                ("OpsEmail", "ops@example.com"),
            ][..],
            vec!["EmailNeedsOwnTopic"],
        ),
        (
            &[
                ("ExistingAlertTopicArn", topic),
                ("AlertSqsQueueArn", queue),
                ("AlarmTopicArn", ops),
            ][..],
            vec!["QueueNeedsOwnTopic"],
        ),
        (
            &[
                ("AlertEmail", "sec@example.com"),
                ("AlarmTopicArn", ops),
                ("OpsEmail", "ops@example.com"),
            ][..],
            vec!["OpsEmailNeedsOwnOpsTopic"],
        ),
    ] {
        assert_eq!(broken_rules(source, given), expected, "{given:?}");
    }
}
