//! Resolving intrinsics: one deployment's parameters, conditions and physical ids, so policies and
//! patterns are checked as CloudFormation would submit them.

use super::*;

/// One deployment of the template, for resolving intrinsic functions to what CloudFormation would
/// put there: parameter values, conditions, and a made-up physical id for every resource.
pub(crate) struct Deployment<'t> {
    pub(crate) template: &'t Value,
    pub(crate) parameters: BTreeMap<String, String>,
}

pub(crate) const ACCOUNT: &str = "123456789012";
pub(crate) const REGION: &str = "us-east-1";
/// The organisation of organization-mode deployments.
pub(crate) const ORGANIZATION: &str = "o-a1b2c3d4e5";

impl<'t> Deployment<'t> {
    pub(crate) fn new(template: &'t Value, given: &[(&str, &str)]) -> Deployment<'t> {
        Deployment {
            template,
            parameters: parameter_values(template, given),
        }
    }

    pub(crate) fn condition(&self, name: &str) -> bool {
        let conditions = &self.template["Conditions"];
        evaluate_condition(&conditions[name], &self.parameters, conditions)
    }

    pub(crate) fn exists(&self, id: &str) -> bool {
        let resource = resource(self.template, id);
        resource["Condition"]
            .as_str()
            .is_none_or(|c| self.condition(c))
    }

    /// What `Ref` of a resource gives.
    pub(crate) fn reference(&self, id: &str) -> Value {
        let resource = resource(self.template, id);
        assert!(
            self.exists(id),
            "Ref to {id}, which this deployment does not create"
        );
        let properties = &resource["Properties"];
        let named = |key: &str| {
            properties
                .get(key)
                .and_then(|v| self.resolve(v))
                .and_then(|v| v.as_str().map(str::to_owned))
        };
        let text = match resource["Type"].as_str().unwrap_or("") {
            "AWS::SNS::Topic" => format!("arn:aws:sns:{REGION}:{ACCOUNT}:{STACK_NAME}-{id}-X1"),
            "AWS::KMS::Key" => format!("key-id-{id}"),
            "AWS::SQS::Queue" => format!(
                "https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{}",
                self.attribute(id, "QueueName").as_str().unwrap()
            ),
            "AWS::Lambda::Function" => {
                named("FunctionName").unwrap_or_else(|| format!("{STACK_NAME}-{id}"))
            }
            // On a custom bus CloudFormation gives "<bus>|<rule>", not the name.
            "AWS::Events::Rule" => match self.rule_bus(id) {
                Some(bus) => format!("{bus}|{}", self.rule_name(id)),
                None => self.rule_name(id),
            },
            "AWS::Events::EventBus" => {
                named("Name").expect("an event bus of this template is named")
            }
            "AWS::Logs::LogGroup" => {
                named("LogGroupName").unwrap_or_else(|| format!("{STACK_NAME}-{id}"))
            }
            "AWS::CloudWatch::Alarm" => {
                named("AlarmName").unwrap_or_else(|| format!("{STACK_NAME}-{id}-physical"))
            }
            _ => format!("{STACK_NAME}-{id}-physical"),
        };
        Value::String(text)
    }

    /// What `Fn::GetAtt [id, attribute]` gives.
    pub(crate) fn attribute(&self, id: &str, attribute: &str) -> Value {
        let resource = resource(self.template, id);
        let kind = resource["Type"].as_str().unwrap_or("");
        let text = match (kind, attribute) {
            ("AWS::SQS::Queue", "QueueName") => resource["Properties"]
                .get("QueueName")
                .and_then(|name| self.resolve(name))
                .and_then(|name| name.as_str().map(str::to_owned))
                .unwrap_or_else(|| format!("{STACK_NAME}-{id}-Q1")),
            ("AWS::SQS::Queue", "Arn") => format!(
                "arn:aws:sqs:{REGION}:{ACCOUNT}:{}",
                self.attribute(id, "QueueName").as_str().unwrap()
            ),
            ("AWS::KMS::Key", "Arn") => format!(
                "arn:aws:kms:{REGION}:{ACCOUNT}:key/{}",
                self.reference(id).as_str().unwrap()
            ),
            ("AWS::SNS::Topic", "TopicName") => format!("{STACK_NAME}-{id}-X1"),
            ("AWS::Lambda::Function", "Arn") => format!(
                "arn:aws:lambda:{REGION}:{ACCOUNT}:function:{}",
                self.reference(id).as_str().unwrap()
            ),
            ("AWS::Events::Rule", "Arn") => match self.rule_bus(id) {
                Some(bus) => format!(
                    "arn:aws:events:{REGION}:{ACCOUNT}:rule/{bus}/{}",
                    self.rule_name(id)
                ),
                None => format!(
                    "arn:aws:events:{REGION}:{ACCOUNT}:rule/{}",
                    self.rule_name(id)
                ),
            },
            ("AWS::Events::EventBus", "Arn") => format!(
                "arn:aws:events:{REGION}:{ACCOUNT}:event-bus/{}",
                self.reference(id).as_str().unwrap()
            ),
            ("AWS::Events::EventBus", "Name") => self.reference(id).as_str().unwrap().to_owned(),
            ("AWS::IAM::Role", "Arn") => {
                format!("arn:aws:iam::{ACCOUNT}:role/{STACK_NAME}-{id}-R1")
            }
            ("AWS::Logs::LogGroup", "Arn") => format!(
                "arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{}:*",
                self.reference(id).as_str().unwrap()
            ),
            _ => format!("{STACK_NAME}-{id}-{attribute}"),
        };
        Value::String(text)
    }

    /// The name of rule `id` (its `Name`, else a generated one).
    pub(crate) fn rule_name(&self, id: &str) -> String {
        resource(self.template, id)["Properties"]
            .get("Name")
            .and_then(|v| self.resolve(v))
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_else(|| format!("{STACK_NAME}-{id}"))
    }

    /// The custom bus rule `id` is on in this deployment; `None` for the default bus.
    pub(crate) fn rule_bus(&self, id: &str) -> Option<String> {
        let bus = resource(self.template, id)["Properties"].get("EventBusName")?;
        let bus = self.resolve(bus)?;
        let bus = bus.as_str().expect("EventBusName is a string");
        (bus != "default").then(|| bus.to_owned())
    }

    /// `value` with every intrinsic function resolved; `None` for `AWS::NoValue` (dropped from
    /// the list or object around it).
    pub(crate) fn resolve(&self, value: &Value) -> Option<Value> {
        match value {
            Value::Array(items) => Some(Value::Array(
                items.iter().filter_map(|i| self.resolve(i)).collect(),
            )),
            Value::Object(map) if map.len() == 1 && self.is_intrinsic(map) => {
                let (function, argument) = map.iter().next().unwrap();
                self.intrinsic(function, argument)
            }
            Value::Object(map) => Some(Value::Object(
                map.iter()
                    .filter_map(|(k, v)| Some((k.clone(), self.resolve(v)?)))
                    .collect(),
            )),
            other => Some(other.clone()),
        }
    }

    pub(crate) fn is_intrinsic(&self, map: &serde_json::Map<String, Value>) -> bool {
        map.keys()
            .all(|k| k == "Ref" || k == "Condition" || k.starts_with("Fn::"))
    }

    pub(crate) fn text(&self, value: &Value) -> String {
        match self.resolve(value) {
            Some(Value::String(text)) => text,
            other => panic!("{value} does not resolve to a string: {other:?}"),
        }
    }

    pub(crate) fn intrinsic(&self, function: &str, argument: &Value) -> Option<Value> {
        let arguments = || argument.as_array().expect("a list of arguments");
        Some(match function {
            "Ref" => {
                let name = argument.as_str().expect("Ref takes a name");
                if name == "AWS::NoValue" {
                    return None;
                }
                if let Some(value) = self.parameters.get(name) {
                    Value::String(value.clone())
                } else if let Some(value) = pseudo_parameter(name) {
                    Value::String(value)
                } else {
                    self.reference(name)
                }
            }
            "Fn::GetAtt" => {
                let parts: Vec<&str> = match argument {
                    Value::String(text) => text.splitn(2, '.').collect(),
                    _ => arguments().iter().filter_map(Value::as_str).collect(),
                };
                self.attribute(parts[0], parts[1])
            }
            "Fn::If" => {
                let [condition, yes, no] = arguments().as_slice() else {
                    panic!("Fn::If takes three arguments")
                };
                let chosen = if self.condition(condition.as_str().unwrap()) {
                    yes
                } else {
                    no
                };
                return self.resolve(chosen);
            }
            "Fn::Join" => {
                let [separator, parts] = arguments().as_slice() else {
                    panic!("Fn::Join takes two arguments")
                };
                let parts = self.resolve(parts)?;
                Value::String(
                    parts
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|p| p.as_str().unwrap().to_owned())
                        .collect::<Vec<_>>()
                        .join(separator.as_str().unwrap()),
                )
            }
            "Fn::Split" => {
                let [separator, text] = arguments().as_slice() else {
                    panic!("Fn::Split takes two arguments")
                };
                Value::Array(
                    self.text(text)
                        .split(separator.as_str().unwrap())
                        .map(|p| Value::String(p.to_owned()))
                        .collect(),
                )
            }
            "Fn::Select" => {
                let [index, list] = arguments().as_slice() else {
                    panic!("Fn::Select takes two arguments")
                };
                let index = index
                    .as_u64()
                    .or_else(|| index.as_str()?.parse().ok())
                    .unwrap();
                self.resolve(list)?.as_array().unwrap()[index as usize].clone()
            }
            "Fn::Sub" => {
                let (text, variables) = match argument {
                    Value::String(text) => (text.as_str(), None),
                    _ => (arguments()[0].as_str().unwrap(), arguments().get(1)),
                };
                let mut out = String::new();
                let mut rest = text;
                while let Some(start) = rest.find("${") {
                    out.push_str(&rest[..start]);
                    let end = rest[start..].find('}').unwrap() + start;
                    let name = &rest[start + 2..end];
                    let value = match variables.and_then(|v| v.get(name)) {
                        Some(v) => self.text(v),
                        None if name.contains('.') && !name.starts_with("AWS::") => {
                            let (id, attribute) = name.split_once('.').unwrap();
                            self.attribute(id, attribute).as_str().unwrap().to_owned()
                        }
                        None => self.text(&json!({"Ref": name})),
                    };
                    out.push_str(&value);
                    rest = &rest[end + 1..];
                }
                out.push_str(rest);
                Value::String(out)
            }
            other => panic!("unsupported intrinsic function {other}"),
        })
    }
}
