//! The template as JSON: decoded by `scripts/template-json.py` (short tags, and the SAM transform
//! offline), and the helpers that read resources, parameters and conditions from it.

use super::*;

/// Exit code of the Python helpers when a package they import is not installed.
pub(crate) const MISSING_PACKAGE: i32 = 3;

pub(crate) fn load_template(transform: bool) -> Option<Value> {
    load_template_file(&template_path(), transform)
}

pub(crate) fn load_template_file(path: &Path, transform: bool) -> Option<Value> {
    let Some(python) = python() else {
        missing("python3 is not installed: cannot read the templates");
        return None;
    };
    let mut command = tool_command(&python);
    command.arg(repo().join("scripts/template-json.py"));
    if transform {
        command.arg("--transform");
    }
    command.arg(path);
    let out = run("scripts/template-json.py", &mut command, 2 * MINUTE);
    if out.status.code() == Some(MISSING_PACKAGE) {
        missing(&format!(
            "Python packages for scripts/template-json.py: {}",
            out.stderr.trim()
        ));
        return None;
    }
    assert!(
        out.status.success(),
        "scripts/template-json.py{} could not read {}: {}",
        if transform { " --transform" } else { "" },
        path.display(),
        out.report()
    );
    Some(serde_json::from_str(&out.stdout).expect("template-json.py prints JSON"))
}

/// template.yaml as written (SAM resources).
pub(crate) fn source_template() -> Option<&'static Value> {
    static SOURCE: OnceLock<Option<Value>> = OnceLock::new();
    SOURCE.get_or_init(|| load_template(false)).as_ref()
}

/// deploy/forwarder.yaml (plain CloudFormation: what StackSets deploy).
pub(crate) fn forwarder_template() -> Option<&'static Value> {
    static FORWARDER: OnceLock<Option<Value>> = OnceLock::new();
    FORWARDER
        .get_or_init(|| load_template_file(&forwarder_path(), false))
        .as_ref()
}

/// template.yaml after the SAM transform: the CloudFormation that is deployed.
pub(crate) fn deployed_template() -> Option<&'static Value> {
    static DEPLOYED: OnceLock<Option<Value>> = OnceLock::new();
    DEPLOYED.get_or_init(|| load_template(true)).as_ref()
}

pub(crate) fn resources(template: &Value) -> &serde_json::Map<String, Value> {
    template["Resources"]
        .as_object()
        .expect("the template has a Resources mapping")
}

pub(crate) fn resources_of_type<'t>(template: &'t Value, kind: &str) -> Vec<(&'t str, &'t Value)> {
    resources(template)
        .iter()
        .filter(|(_, resource)| resource["Type"] == kind)
        .map(|(id, resource)| (id.as_str(), resource))
        .collect()
}

pub(crate) fn resource<'t>(template: &'t Value, id: &str) -> &'t Value {
    resources(template).get(id).unwrap_or_else(|| {
        panic!("the template references resource {id}, which it does not define")
    })
}

/// The logical id `value` points at with `{"Ref": id}` or `{"Fn::GetAtt": [id, attribute]}`.
pub(crate) fn target_of<'v>(value: &'v Value, attribute: Option<&str>) -> Option<&'v str> {
    if let Some(id) = value.get("Ref").and_then(Value::as_str) {
        return attribute.is_none().then_some(id);
    }
    let get_att = value.get("Fn::GetAtt")?.as_array()?;
    match (get_att.first()?.as_str(), get_att.get(1)?.as_str()) {
        (Some(id), Some(att)) if Some(att) == attribute => Some(id),
        _ => None,
    }
}

/// `values` as one JSON array, for failure messages.
pub(crate) fn shown(values: &[&Value]) -> Value {
    Value::Array(values.iter().map(|v| (*v).clone()).collect())
}

/// A one-element list is the same as the element (IAM accepts both forms).
pub(crate) fn as_list(value: &Value) -> Vec<&Value> {
    match value {
        Value::Array(items) => items.iter().collect(),
        Value::Null => Vec::new(),
        other => vec![other],
    }
}

/// Every alternative `value` can take: both branches of each `Fn::If`, `AWS::NoValue` dropped.
pub(crate) fn alternatives(value: &Value) -> Vec<&Value> {
    if let Some([_, yes, no]) = value
        .get("Fn::If")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
    {
        return alternatives(yes)
            .into_iter()
            .chain(alternatives(no))
            .collect();
    }
    if value.get("Ref") == Some(&json!("AWS::NoValue")) {
        return Vec::new();
    }
    vec![value]
}

/// The detection function the template deploys: the only `AWS::Lambda::Function` that publishes
/// alerts (`ALERT_TOPIC_ARN`); the others are the canary's.
pub(crate) fn the_function(deployed: &Value) -> (&str, &Value) {
    let functions: Vec<(&str, &Value)> = resources_of_type(deployed, "AWS::Lambda::Function")
        .into_iter()
        .filter(|(_, f)| {
            f["Properties"]["Environment"]["Variables"]
                .get("ALERT_TOPIC_ARN")
                .is_some()
        })
        .collect();
    assert_eq!(
        functions.len(),
        1,
        "expected exactly one Lambda function with ALERT_TOPIC_ARN in the deployed template, \
         found {:?}",
        functions.iter().map(|(id, _)| id).collect::<Vec<_>>()
    );
    functions[0]
}

/// The EventBridge rule whose target is the function, and that target.
pub(crate) fn the_rule<'t>(
    deployed: &'t Value,
    function_id: &str,
) -> (&'t str, &'t Value, &'t Value) {
    let mut found = Vec::new();
    for (id, rule) in resources_of_type(deployed, "AWS::Events::Rule") {
        for target in as_list(&rule["Properties"]["Targets"]) {
            if target_of(&target["Arn"], Some("Arn")) == Some(function_id) {
                found.push((id, rule, target));
            }
        }
    }
    assert_eq!(
        found.len(),
        1,
        "expected exactly one EventBridge rule targeting {function_id}, found {}",
        found.len()
    );
    found[0]
}

/// Placeholder values for pseudo parameters, to compare names built from them.
pub(crate) const STACK_NAME: &str = "code-watch-test";
pub(crate) const STACK_UUID: &str = "6f1d2c3b-4a59-4e68-9d7c-0b1a2f3e4d5c";

pub(crate) fn pseudo_parameter(name: &str) -> Option<String> {
    Some(match name {
        "AWS::Partition" => "aws".to_owned(),
        "AWS::Region" => "us-east-1".to_owned(),
        "AWS::AccountId" => "123456789012".to_owned(),
        "AWS::StackName" => STACK_NAME.to_owned(),
        "AWS::StackId" => {
            format!("arn:aws:cloudformation:us-east-1:123456789012:stack/{STACK_NAME}/{STACK_UUID}")
        }
        "AWS::URLSuffix" => "amazonaws.com".to_owned(),
        _ => return None,
    })
}

/// Evaluates a string-valued intrinsic built only from literals and pseudo parameters (Fn::Sub,
/// Fn::Join, Fn::Select over Fn::Split, Ref). `None` when it depends on anything else.
pub(crate) fn render(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Object(map) if map.len() == 1 => {
            let (function, argument) = map.iter().next()?;
            match function.as_str() {
                "Ref" => pseudo_parameter(argument.as_str()?),
                "Fn::Join" => {
                    let [separator, parts] = argument.as_array()?.as_slice() else {
                        return None;
                    };
                    let parts: Option<Vec<String>> = parts.as_array()?.iter().map(render).collect();
                    Some(parts?.join(separator.as_str()?))
                }
                "Fn::Select" => {
                    let [index, list] = argument.as_array()?.as_slice() else {
                        return None;
                    };
                    let index = index.as_u64().or_else(|| index.as_str()?.parse().ok())?;
                    render_list(list)?
                        .into_iter()
                        .nth(usize::try_from(index).ok()?)
                }
                "Fn::Sub" => {
                    let (text, variables) = match argument {
                        Value::String(text) => (text.as_str(), None),
                        Value::Array(pair) => (pair.first()?.as_str()?, pair.get(1)),
                        _ => return None,
                    };
                    substitute(text, variables)
                }
                _ => None,
            }
        }
        _ => None,
    }
}

pub(crate) fn render_list(value: &Value) -> Option<Vec<String>> {
    let [separator, text] = value.get("Fn::Split")?.as_array()?.as_slice() else {
        return None;
    };
    let text = render(text)?;
    Some(text.split(separator.as_str()?).map(str::to_owned).collect())
}

pub(crate) fn substitute(text: &str, variables: Option<&Value>) -> Option<String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}')? + start;
        let name = &rest[start + 2..end];
        let value = match variables.and_then(|v| v.get(name)) {
            Some(value) => render(value)?,
            None => pseudo_parameter(name)?,
        };
        out.push_str(&value);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    Some(out)
}
