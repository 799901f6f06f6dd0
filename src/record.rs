//! A lenient, read-only view of one CloudTrail record.
//!
//! Real CloudTrail records vary a lot: `sessionIssuer: {}`, `requestParameters: null`, booleans written as
//! strings, fields missing across event versions. A strict schema (such as `aws_lambda_events`'
//! `AWSAPICall`) rejects many of them, and a detection must never drop a record because an unrelated
//! field has an unexpected shape. So the record is kept as parsed JSON and read through accessors that
//! return `None` for anything absent or of the wrong JSON type. Only what the rule and the alert read has
//! a named accessor here.
//!
//! This module does not decide anything (that is `rule.rs`) and does not find records in files (that is
//! `input.rs`).

use serde_json::Value;
use std::fmt;

/// One CloudTrail record. An EventBridge envelope is unwrapped to the record in its `detail`.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    value: Value,
}

/// The EventBridge envelope a record arrived in: its identity, for logs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Envelope {
    pub id: Option<String>,
    pub detail_type: Option<String>,
}

/// Why some bytes are not a CloudTrail record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    message: String,
}

impl DecodeError {
    pub fn new(message: impl Into<String>) -> DecodeError {
        DecodeError {
            message: message.into(),
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DecodeError {}

/// The JSON type of a value, in words, for error messages.
pub fn json_type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl Record {
    /// Parses a CloudTrail record, or an EventBridge envelope around one.
    pub fn from_json(bytes: &[u8]) -> Result<Record, DecodeError> {
        let value: Value = serde_json::from_slice(bytes)
            .map_err(|e| DecodeError::new(format!("not valid JSON: {e}")))?;
        Record::from_value(value)
    }

    /// Takes a parsed CloudTrail record, or an EventBridge envelope around one.
    pub fn from_value(value: Value) -> Result<Record, DecodeError> {
        Record::unwrap(value).map(|(record, _)| record)
    }

    /// The one envelope policy, for `scan` and the Lambda function alike: an object with a
    /// `detail-type` key and an object `detail` is an EventBridge envelope, and the record is its
    /// `detail`; any other object is a record itself. So `{"detail-type": ..., "detail": 42}` is a
    /// (quiet) record, not an error: the literal prefilter, which never parses it, must reach the
    /// same verdict. Anything that is not an object is an error.
    pub fn unwrap(value: Value) -> Result<(Record, Option<Envelope>), DecodeError> {
        let Value::Object(mut object) = value else {
            return Err(DecodeError::new(format!(
                "expected a CloudTrail record (a JSON object), found {}",
                json_type_name(&value)
            )));
        };
        if object.contains_key("detail-type")
            && object.get("detail").is_some_and(Value::is_object)
            && let Some(Value::Object(detail)) = object.remove("detail")
        {
            let text = |key| object.get(key).and_then(Value::as_str).map(str::to_owned);
            let envelope = Envelope {
                id: text("id"),
                detail_type: text("detail-type"),
            };
            return Ok((
                Record {
                    value: Value::Object(detail),
                },
                Some(envelope),
            ));
        }
        Ok((
            Record {
                value: Value::Object(object),
            },
            None,
        ))
    }

    /// The value at `path` (object keys), if every step exists.
    pub fn at(&self, path: &[&str]) -> Option<&Value> {
        path.iter().try_fold(&self.value, |v, key| v.get(key))
    }

    /// The string at `path`; `None` when absent or not a string.
    pub fn str_at(&self, path: &[&str]) -> Option<&str> {
        self.at(path)?.as_str()
    }

    /// A flag CloudTrail writes either as a JSON boolean or as the string "true"/"false".
    pub fn flag_at(&self, path: &[&str]) -> Option<bool> {
        match self.at(path)? {
            Value::Bool(b) => Some(*b),
            Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
            Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
            _ => None,
        }
    }

    pub fn event_id(&self) -> Option<&str> {
        self.str_at(&["eventID"])
    }
    pub fn event_name(&self) -> Option<&str> {
        self.str_at(&["eventName"])
    }
    pub fn event_source(&self) -> Option<&str> {
        self.str_at(&["eventSource"])
    }
    pub fn event_time(&self) -> Option<&str> {
        self.str_at(&["eventTime"])
    }
    pub fn region(&self) -> Option<&str> {
        self.str_at(&["awsRegion"])
    }
    /// The account the call was made in: `recipientAccountId`, else the caller's account.
    pub fn account_id(&self) -> Option<&str> {
        self.str_at(&["recipientAccountId"])
            .or_else(|| self.identity_str("accountId"))
    }
    pub fn source_ip(&self) -> Option<&str> {
        self.str_at(&["sourceIPAddress"])
    }
    pub fn user_agent(&self) -> Option<&str> {
        self.str_at(&["userAgent"])
    }

    /// The call failed: `errorCode` or `errorMessage` holds a value that Python, and so Panther's
    /// `aws_cloudtrail_success`, counts as true: a non-empty string, a number other than zero, `true`,
    /// a non-empty array or object. Absent, `null`, `""`, `0`, `false`, `[]` and `{}` are no failure.
    pub fn failed(&self) -> bool {
        let truthy = |key| match self.at(&[key]) {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(Value::Number(n)) => n.as_f64().is_some_and(|n| n != 0.0),
            Some(Value::String(s)) => !s.is_empty(),
            Some(Value::Array(a)) => !a.is_empty(),
            Some(Value::Object(o)) => !o.is_empty(),
        };
        truthy("errorCode") || truthy("errorMessage")
    }

    /// `userIdentity.<key>` as a string.
    pub fn identity_str(&self, key: &str) -> Option<&str> {
        self.str_at(&["userIdentity", key])
    }
    /// `userIdentity.type`: IAMUser, AssumedRole, FederatedUser, Root, AWSService, ...
    pub fn identity_type(&self) -> Option<&str> {
        self.identity_str("type")
    }
    /// `userIdentity.sessionContext.sessionIssuer.<key>` as a string.
    pub fn issuer_str(&self, key: &str) -> Option<&str> {
        self.str_at(&["userIdentity", "sessionContext", "sessionIssuer", key])
    }

    /// The function's short name: `responseElements.functionName`, else the name at the end of
    /// `requestParameters.functionName` (which may be a full or partial ARN, possibly with a
    /// `:qualifier`).
    pub fn function_name(&self) -> Option<&str> {
        if let Some(name) = self.str_at(&["responseElements", "functionName"])
            && !name.is_empty()
        {
            return Some(name);
        }
        let requested = self.str_at(&["requestParameters", "functionName"])?;
        let name = match requested.strip_prefix("arn:") {
            // arn:aws:lambda:region:account:function:NAME[:qualifier]
            Some(_) => requested.split(':').nth(6)?,
            // ACCOUNT:function:NAME (partial ARN) or NAME
            None => match requested.split(':').collect::<Vec<_>>()[..] {
                [_, "function", name, ..] => name,
                _ => requested,
            },
        };
        (!name.is_empty()).then_some(name)
    }
}
