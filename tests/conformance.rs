//! Conformance with Panther's own rule, record by record.
//!
//! Every record of the shared corpus (`real/` and `fixtures/`), every sample event under `events/` and the
//! crafted records of `tests/conformance/edge-cases.ndjson` go through Panther's unmodified rule, run by
//! Panther's engine (`scripts/panther-conformance.py`, `panther_core`), and through the project. Both must
//! reach the same verdict (alert or not) and the same title (Panther's without its `[AWS.CloudTrail] `
//! prefix), except where README's "Differences from Panther" lists the case, and then exactly as listed:
//! each listed case has a predicate on the record and computes the value both sides must show (verdict,
//! actor, function or whole title), so a listed case cannot hide another difference. A listed case that
//! no record exercises fails too, so the table stays true.

mod common;

use common::{corpus_dir, corpus_files, event_files, repo_dir};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The project's answer for one event (bytes of a record or an envelope): the alert title, or `None`
/// when it stays quiet. The only place the test asks the project anything.
fn project_title(event: &[u8]) -> Result<Option<String>, String> {
    let outcome = lambda_code_watch::Detector::default()
        .assess_json(event)
        .map_err(|e| e.to_string())?;
    Ok(outcome.alert().map(|alert| alert.title.clone()))
}

const RULE_ID: &str = "AWS.Lambda.UpdateFunctionCode";
const PANTHER_TITLE_PREFIX: &str = "[AWS.CloudTrail] ";
const EVENT_SOURCE: &str = "lambda.amazonaws.com";
const EVENT_NAME_PREFIX: &str = "UpdateFunctionCode";
const SSO_ROLE_PREFIX: &str = "AWSReservedSSO_";
/// panther_core cuts longer titles to 985 characters and appends `... (truncated)`.
const PANTHER_MAX_TITLE: usize = 1000;
const PANTHER_TRUNCATED_SUFFIX: &str = "... (truncated)";

// ---------------------------------------------------------------------------------------------------
// The records

/// One record to compare.
struct Input {
    /// Where it comes from: `real/x.ndjson:12`, `events/alert/sso-user.json`, `edge-017 (what it probes)`.
    source: String,
    /// What the project is given: the line or file as it is (an envelope stays an envelope).
    event: Vec<u8>,
    /// The CloudTrail record (an envelope's `detail`), as Panther is given it: one line of JSON.
    record_line: String,
    record: Value,
}

fn ndjson_inputs(path: &Path, label: &str, inputs: &mut Vec<Input>) -> usize {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let before = inputs.len();
    // Only "\n" ends a line: a record may hold a raw U+2028 inside a string.
    for (index, line) in text.split('\n').enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() {
            continue;
        }
        let record: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("{label}:{}: not JSON: {e}", index + 1));
        let source = match record.get("_case").and_then(Value::as_str) {
            Some(case) => format!(
                "{} ({case})",
                record["eventID"]
                    .as_str()
                    .expect("every edge case has an eventID")
            ),
            None => format!("{label}:{}", index + 1),
        };
        inputs.push(Input {
            source,
            event: line.as_bytes().to_vec(),
            record_line: line.to_owned(),
            record,
        });
    }
    inputs.len() - before
}

/// An EventBridge envelope is an object with a `detail-type` key and an object `detail`: the record is
/// the `detail`, as the project reads it.
fn event_file_input(path: &Path) -> Input {
    let bytes = std::fs::read(path).unwrap();
    let value: Value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("{}: not JSON: {e}", path.display()));
    let record = match &value {
        Value::Object(o) if o.contains_key("detail-type") && o["detail"].is_object() => {
            o["detail"].clone()
        }
        _ => value,
    };
    Input {
        source: path
            .strip_prefix(repo_dir())
            .unwrap_or(path)
            .display()
            .to_string(),
        event: bytes,
        record_line: record.to_string(),
        record,
    }
}

struct Inputs {
    all: Vec<Input>,
    corpus: usize,
    events: usize,
    edge_cases: usize,
}

fn gather_inputs() -> Inputs {
    let mut all = Vec::new();
    let mut corpus = 0;
    if let Some(dir) = corpus_dir() {
        for folder in ["real", "fixtures"] {
            for file in corpus_files(&dir, folder) {
                let label = format!("{folder}/{}", file.file_name().unwrap().to_string_lossy());
                corpus += ndjson_inputs(&file, &label, &mut all);
            }
        }
        assert!(
            corpus > 0,
            "the corpus at {} holds no record",
            dir.display()
        );
    }
    let events_before = all.len();
    all.extend(event_files("").iter().map(|p| event_file_input(p)));
    let events = all.len() - events_before;
    let edge_file = repo_dir().join("tests/conformance/edge-cases.ndjson");
    let edge_cases = ndjson_inputs(&edge_file, "edge-cases.ndjson", &mut all);
    assert!(
        edge_cases >= 100,
        "edge-cases.ndjson holds {edge_cases} records"
    );
    Inputs {
        all,
        corpus,
        events,
        edge_cases,
    }
}

// ---------------------------------------------------------------------------------------------------
// Panther's side: the script, run with the Python that has panther_core

fn unavailable(why: &str) {
    common::unavailable(&format!("Panther conformance not checked: {why}"));
}

fn panther_python() -> Option<PathBuf> {
    for venv in [".venv", ".venv-panther"] {
        let python = repo_dir().join(venv).join("bin/python");
        let imports = Command::new(&python)
            .args(["-c", "import panther_core, yaml, dateutil, boto3"])
            .output();
        if imports.is_ok_and(|o| o.status.success()) {
            return Some(python);
        }
    }
    None
}

fn panther_oracle() -> PathBuf {
    repo_dir().join("../shared/oracle/panther")
}

/// What Panther made of one record.
#[derive(Debug, Clone, PartialEq)]
enum Panther {
    Alert(String),
    Quiet,
    /// `rule()` raised: a rule error, no verdict.
    RuleError(String),
}

fn run_panther(python: &Path, inputs: &[Input]) -> Vec<(Panther, Option<String>)> {
    let mut ndjson = tempfile::NamedTempFile::new().unwrap();
    for input in inputs {
        writeln!(ndjson, "{}", input.record_line).unwrap();
    }
    ndjson.flush().unwrap();
    let output = Command::new(python)
        .arg(repo_dir().join("scripts/panther-conformance.py"))
        .arg("--oracle")
        .arg(panther_oracle())
        .arg(ndjson.path())
        .output()
        .expect("the Python of the venv runs");
    assert!(
        output.status.success(),
        "panther-conformance.py failed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<Value> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(lines.len(), inputs.len(), "one output line per record");
    lines
        .iter()
        .enumerate()
        .map(|(index, line)| {
            assert_eq!(line["line"], index + 1, "output in input order");
            let outcome = match (&line["matched"], &line["title"], &line["rule_error"]) {
                (Value::Bool(true), Value::String(title), _) => Panther::Alert(
                    title
                        .strip_prefix(PANTHER_TITLE_PREFIX)
                        .unwrap_or(title)
                        .to_owned(),
                ),
                (Value::Bool(false), ..) => Panther::Quiet,
                (Value::Null, _, Value::String(error)) => Panther::RuleError(error.clone()),
                _ => panic!("unexpected output line: {line}"),
            };
            (outcome, line["title_error"].as_str().map(str::to_owned))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------------
// Reading a record as each side does

/// Which keys a lookup accepts: CloudTrail's exact spelling, or (as `PantherEvent` does) any letter case
/// when the exact key is absent.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Keys {
    Exact,
    AnyCase,
}

fn get<'a>(value: &'a Value, key: &str, keys: Keys) -> Option<&'a Value> {
    let object = value.as_object()?;
    if let Some(v) = object.get(key) {
        return Some(v);
    }
    if keys == Keys::Exact {
        return None;
    }
    let lower = key.to_lowercase();
    let mut matches = object.iter().filter(|(k, _)| k.to_lowercase() == lower);
    let first = matches.next();
    assert!(
        matches.next().is_none(),
        "two keys spell `{key}` in other letter case: PantherEvent takes the first in the JSON text, \
         which this reading cannot tell"
    );
    first.map(|(_, v)| v)
}

/// Panther's `deep_get`: the value at `path`, where null counts as absent.
fn deep<'a>(record: &'a Value, path: &[&str], keys: Keys) -> Option<&'a Value> {
    path.iter()
        .try_fold(record, |v, key| get(v, key, keys))
        .filter(|v| !v.is_null())
}

fn text<'a>(record: &'a Value, path: &[&str], keys: Keys) -> Option<&'a str> {
    deep(record, path, keys)?.as_str()
}

/// Our reading: exact keys, a string, not empty.
fn non_empty<'a>(record: &'a Value, path: &[&str]) -> Option<&'a str> {
    text(record, path, Keys::Exact).filter(|s| !s.is_empty())
}

const ISSUER_NAME: &[&str] = &[
    "userIdentity",
    "sessionContext",
    "sessionIssuer",
    "userName",
];
const ISSUER_ARN: &[&str] = &["userIdentity", "sessionContext", "sessionIssuer", "arn"];
const PRINCIPAL_ID: &[&str] = &["userIdentity", "principalId"];
const IDENTITY_TYPE: &[&str] = &["userIdentity", "type"];
const RESPONSE_FUNCTION: &[&str] = &["responseElements", "functionName"];

/// Python's truthiness of a JSON value.
fn truthy(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::Object(o)) => !o.is_empty(),
    }
}

/// Python's `str()` of a value as the rule formats it into the title (containers are panther_core's
/// immutable wrappers).
fn python_str(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(python_repr).collect();
            let tuple = match items.len() {
                1 => format!("({},)", items[0]),
                _ => format!("({})", items.join(", ")),
            };
            format!("ImmutableList({tuple})")
        }
        Value::Object(_) => format!("ImmutableCaseInsensitiveDict({})", python_repr(value)),
        other => python_repr(other),
    }
}

fn python_repr(value: &Value) -> String {
    match value {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) if n.is_f64() => python_float(n.as_f64().unwrap()),
        Value::Number(n) => n.to_string(),
        Value::String(s) => {
            let quote = if s.contains('\'') && !s.contains('"') {
                '"'
            } else {
                '\''
            };
            let mut out = String::from(quote);
            for c in s.chars() {
                match c {
                    '\\' => out.push_str("\\\\"),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    '\t' => out.push_str("\\t"),
                    c if c == quote => {
                        out.push('\\');
                        out.push(c);
                    }
                    c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                        let _ = write!(out, "\\x{:02x}", c as u32);
                    }
                    c => out.push(c),
                }
            }
            out.push(quote);
            out
        }
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(python_repr).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Object(object) => {
            let items: Vec<String> = object
                .iter()
                .map(|(k, v)| {
                    format!(
                        "{}: {}",
                        python_repr(&Value::String(k.clone())),
                        python_repr(v)
                    )
                })
                .collect();
            format!("{{{}}}", items.join(", "))
        }
    }
}

/// Python's `repr(float)`: shortest round-trip digits, exponent form below 1e-4 and from 1e16.
fn python_float(f: f64) -> String {
    if !f.is_finite() {
        return if f.is_nan() {
            "nan"
        } else if f > 0.0 {
            "inf"
        } else {
            "-inf"
        }
        .into();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0.0" } else { "0.0" }.into();
    }
    let sci = format!("{:e}", f.abs()); // e.g. "1.5e0", "1e16"
    let (mantissa, exponent) = sci.split_once('e').unwrap();
    let exponent: i32 = exponent.parse().unwrap();
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let sign = if f < 0.0 { "-" } else { "" };
    if (-4..16).contains(&exponent) {
        let point = exponent + 1; // digits before the decimal point
        let body = if point <= 0 {
            format!("0.{}{digits}", "0".repeat((-point) as usize))
        } else if digits.len() <= point as usize {
            format!("{digits}{}.0", "0".repeat(point as usize - digits.len()))
        } else {
            format!(
                "{}.{}",
                &digits[..point as usize],
                &digits[point as usize..]
            )
        };
        format!("{sign}{body}")
    } else {
        let exp_sign = if exponent < 0 { '-' } else { '+' };
        format!("{sign}{mantissa}e{exp_sign}{:02}", exponent.abs())
    }
}

/// `arn:aws:iam::1:user/path/alice` -> `alice`; none without a `/` or when it ends in `/`.
fn arn_last_segment(arn: &str) -> Option<&str> {
    arn.rsplit_once('/')
        .map(|(_, last)| last)
        .filter(|s| !s.is_empty())
}

// ---------------------------------------------------------------------------------------------------
// What each side must show, for the listed cases

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PantherVerdict {
    Alert,
    Quiet,
    RuleError,
}

/// Panther's `rule()`, read with `keys`.
fn panther_verdict(r: &Value, keys: Keys) -> PantherVerdict {
    use PantherVerdict::*;
    if truthy(get(r, "errorCode", keys)) || truthy(get(r, "errorMessage", keys)) {
        return Quiet;
    }
    if get(r, "eventSource", keys).and_then(Value::as_str) != Some(EVENT_SOURCE) {
        return Quiet;
    }
    match get(r, "eventName", keys) {
        Some(Value::String(name)) if name.starts_with(EVENT_NAME_PREFIX) => {}
        Some(Value::String(_)) => return Quiet,
        _ => return RuleError, // None.startswith
    }
    match text(r, IDENTITY_TYPE, keys) {
        Some("IAMUser" | "FederatedUser") => Alert,
        Some("AssumedRole") => match deep(r, ISSUER_NAME, keys) {
            None => Quiet,
            Some(Value::String(role)) if role.starts_with(SSO_ROLE_PREFIX) => Alert,
            Some(Value::String(_)) => Quiet,
            Some(_) => RuleError, // 42.startswith
        },
        _ => Quiet,
    }
}

/// Panther's `actor_user` for a record it alerts on; `None` when it raises (the title becomes the rule id).
fn panther_actor(r: &Value, keys: Keys) -> Option<String> {
    let kind = text(r, IDENTITY_TYPE, keys).unwrap_or_default();
    let unknown = format!("Unknown{kind}");
    match kind {
        "IAMUser" => Some(deep(r, &["userIdentity", "userName"], keys).map_or(unknown, python_str)),
        "FederatedUser" | "AssumedRole" => {
            let issuer = match deep(r, ISSUER_NAME, keys) {
                None => unknown.clone(),
                Some(Value::String(name)) => name.clone(),
                Some(_) => return None,
            };
            if !issuer.starts_with(SSO_ROLE_PREFIX) {
                return Some(issuer);
            }
            let principal = match deep(r, PRINCIPAL_ID, keys) {
                None => unknown,
                Some(Value::String(id)) => id.clone(),
                Some(_) => return None,
            };
            principal.split(':').nth(1).map(str::to_owned)
        }
        // Panther alerts on no other identity: a title can only disagree.
        other => Some(format!("<no actor for a {other:?} identity>")),
    }
}

/// Panther's function name in the title.
fn panther_function(r: &Value, keys: Keys) -> String {
    deep(r, RESPONSE_FUNCTION, keys).map_or_else(|| "LAMBDA_NAME_NOT_FOUND".into(), python_str)
}

/// Panther's title (without its prefix) from its actor and function, cut as panther_core cuts it.
fn panther_title(actor: Option<&str>, function: &str) -> String {
    let Some(actor) = actor else {
        return RULE_ID.into();
    };
    let full = format!("{PANTHER_TITLE_PREFIX}{}", title(actor, function));
    let full = if full.chars().count() > PANTHER_MAX_TITLE {
        let keep = PANTHER_MAX_TITLE - PANTHER_TRUNCATED_SUFFIX.len();
        format!(
            "{}{PANTHER_TRUNCATED_SUFFIX}",
            full.chars().take(keep).collect::<String>()
        )
    } else {
        full
    };
    full.strip_prefix(PANTHER_TITLE_PREFIX).unwrap().to_owned()
}

fn title(actor: &str, function: &str) -> String {
    format!("User [{actor}] updated Lambda function code for [{function}]")
}

/// The project's verdict: alert or not.
fn our_verdict(r: &Value) -> bool {
    let exact = Keys::Exact;
    let is_code_update = text(r, &["eventSource"], exact) == Some(EVENT_SOURCE)
        && text(r, &["eventName"], exact).is_some_and(|n| n.starts_with(EVENT_NAME_PREFIX));
    let failed = truthy(get(r, "errorCode", exact)) || truthy(get(r, "errorMessage", exact));
    let person = match text(r, IDENTITY_TYPE, exact) {
        Some("IAMUser" | "FederatedUser") => true,
        Some("AssumedRole") => {
            text(r, ISSUER_NAME, exact).is_some_and(|n| n.starts_with(SSO_ROLE_PREFIX))
        }
        _ => false,
    };
    is_code_update && !failed && person
}

/// The project's actor in the title.
fn our_actor(r: &Value) -> String {
    let arn = || non_empty(r, &["userIdentity", "arn"]).and_then(arn_last_segment);
    let principal = non_empty(r, PRINCIPAL_ID);
    let name = match text(r, IDENTITY_TYPE, Keys::Exact) {
        Some("IAMUser") => non_empty(r, &["userIdentity", "userName"])
            .or_else(arn)
            .or(principal)
            .map(str::to_owned),
        Some("FederatedUser") => {
            let issuer = non_empty(r, ISSUER_NAME)
                .or_else(|| non_empty(r, ISSUER_ARN).and_then(arn_last_segment));
            return match issuer {
                Some(issuer) => issuer.to_owned(),
                None => match principal
                    .and_then(|p| p.split_once(':'))
                    .map(|(_, name)| name)
                    .filter(|n| !n.is_empty())
                    .or_else(arn)
                {
                    Some(session) => format!("federated session \"{session}\""),
                    None => "federated session <unknown>".to_owned(),
                },
            };
        }
        _ => principal
            .and_then(|p| p.split(':').nth(1))
            .filter(|n| !n.is_empty())
            .or_else(arn)
            .map(str::to_owned),
    };
    name.unwrap_or_else(|| "<unknown person>".into())
}

/// The name inside `requestParameters.functionName`: a full or partial ARN, or the name itself.
fn requested_function(r: &Value) -> Option<&str> {
    let requested = non_empty(r, &["requestParameters", "functionName"])?;
    let parts: Vec<&str> = requested.split(':').collect();
    let name = match parts[..] {
        ["arn", _, "lambda", _, _, "function", name, ..] => name,
        [_, "function", name, ..] => name,
        _ => requested,
    };
    (!name.is_empty()).then_some(name)
}

/// The project's function name in the title.
fn our_function(r: &Value) -> String {
    non_empty(r, RESPONSE_FUNCTION)
        .or_else(|| requested_function(r))
        .unwrap_or("<unknown function>")
        .to_owned()
}

/// What a listed case explains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    /// Alert or not (or Panther's rule error).
    Verdict,
    /// The person in the title (or Panther's title when its `title()` raises).
    Actor,
    /// The function in the title.
    Function,
    /// The whole title.
    Title,
}

/// A difference the README lists: where it applies, and (through the readings above) what each side
/// must then show.
struct Case {
    id: &'static str,
    part: Part,
    applies: fn(&Value) -> bool,
}

fn identity_is(r: &Value, kind: &str) -> bool {
    text(r, IDENTITY_TYPE, Keys::AnyCase) == Some(kind)
}

fn is_sso(r: &Value) -> bool {
    identity_is(r, "AssumedRole")
        && text(r, ISSUER_NAME, Keys::AnyCase).is_some_and(|n| n.starts_with(SSO_ROLE_PREFIX))
}

fn absent(r: &Value, path: &[&str]) -> bool {
    deep(r, path, Keys::AnyCase).is_none()
}

fn empty_string(r: &Value, path: &[&str]) -> bool {
    text(r, path, Keys::AnyCase) == Some("")
}

fn not_a_string(r: &Value, path: &[&str]) -> bool {
    deep(r, path, Keys::AnyCase).is_some_and(|v| !v.is_string())
}

/// In order: the first case that applies to a part explains it.
const CASES: &[Case] = &[
    Case {
        id: "other-letter-case",
        part: Part::Verdict,
        applies: |r| panther_verdict(r, Keys::AnyCase) != panther_verdict(r, Keys::Exact),
    },
    Case {
        id: "other-letter-case",
        part: Part::Actor,
        applies: |r| panther_actor(r, Keys::AnyCase) != panther_actor(r, Keys::Exact),
    },
    Case {
        id: "other-letter-case",
        part: Part::Function,
        applies: |r| panther_function(r, Keys::AnyCase) != panther_function(r, Keys::Exact),
    },
    Case {
        id: "event-name-not-a-string",
        part: Part::Verdict,
        applies: |r| {
            panther_verdict(r, Keys::AnyCase) == PantherVerdict::RuleError
                && !get(r, "eventName", Keys::AnyCase).is_some_and(Value::is_string)
        },
    },
    Case {
        id: "sso-issuer-name-not-a-string",
        part: Part::Verdict,
        applies: |r| {
            panther_verdict(r, Keys::AnyCase) == PantherVerdict::RuleError
                && identity_is(r, "AssumedRole")
                && not_a_string(r, ISSUER_NAME)
        },
    },
    Case {
        id: "long-title-truncated",
        part: Part::Title,
        applies: |r| {
            let actor = panther_actor(r, Keys::AnyCase);
            let full = title(
                actor.as_deref().unwrap_or(""),
                &panther_function(r, Keys::AnyCase),
            );
            actor.is_some()
                && PANTHER_TITLE_PREFIX.chars().count() + full.chars().count() > PANTHER_MAX_TITLE
        },
    },
    Case {
        id: "iam-user-name-missing",
        part: Part::Actor,
        applies: |r| identity_is(r, "IAMUser") && absent(r, &["userIdentity", "userName"]),
    },
    Case {
        id: "iam-user-name-empty",
        part: Part::Actor,
        applies: |r| identity_is(r, "IAMUser") && empty_string(r, &["userIdentity", "userName"]),
    },
    Case {
        id: "iam-user-name-not-a-string",
        part: Part::Actor,
        applies: |r| identity_is(r, "IAMUser") && not_a_string(r, &["userIdentity", "userName"]),
    },
    Case {
        id: "federated-without-issuer",
        part: Part::Actor,
        applies: |r| {
            identity_is(r, "FederatedUser") && absent(r, ISSUER_NAME) && !is_string(r, ISSUER_ARN)
        },
    },
    Case {
        id: "federated-issuer-arn-only",
        part: Part::Actor,
        applies: |r| {
            identity_is(r, "FederatedUser") && absent(r, ISSUER_NAME) && is_string(r, ISSUER_ARN)
        },
    },
    Case {
        id: "federated-issuer-name-empty",
        part: Part::Actor,
        applies: |r| identity_is(r, "FederatedUser") && empty_string(r, ISSUER_NAME),
    },
    Case {
        id: "federated-issuer-name-not-a-string",
        part: Part::Actor,
        applies: |r| identity_is(r, "FederatedUser") && not_a_string(r, ISSUER_NAME),
    },
    Case {
        id: "federated-issuer-sso-prefix",
        part: Part::Actor,
        applies: |r| {
            identity_is(r, "FederatedUser")
                && text(r, ISSUER_NAME, Keys::AnyCase)
                    .is_some_and(|n| n.starts_with(SSO_ROLE_PREFIX))
        },
    },
    Case {
        id: "sso-session-name-empty",
        part: Part::Actor,
        applies: |r| {
            is_sso(r)
                && text(r, PRINCIPAL_ID, Keys::AnyCase).and_then(|p| p.split(':').nth(1))
                    == Some("")
        },
    },
    Case {
        id: "sso-principal-without-colon",
        part: Part::Actor,
        applies: |r| {
            is_sso(r)
                && (absent(r, PRINCIPAL_ID)
                    || text(r, PRINCIPAL_ID, Keys::AnyCase).is_some_and(|p| !p.contains(':')))
        },
    },
    Case {
        id: "sso-principal-not-a-string",
        part: Part::Actor,
        applies: |r| is_sso(r) && not_a_string(r, PRINCIPAL_ID),
    },
    Case {
        id: "function-from-request",
        part: Part::Function,
        applies: |r| absent(r, RESPONSE_FUNCTION) && requested_function(r).is_some(),
    },
    Case {
        id: "function-not-recorded",
        part: Part::Function,
        applies: |r| absent(r, RESPONSE_FUNCTION) && requested_function(r).is_none(),
    },
    Case {
        id: "function-name-empty",
        part: Part::Function,
        applies: |r| empty_string(r, RESPONSE_FUNCTION),
    },
    Case {
        id: "function-name-not-a-string",
        part: Part::Function,
        applies: |r| not_a_string(r, RESPONSE_FUNCTION),
    },
];

fn is_string(r: &Value, path: &[&str]) -> bool {
    text(r, path, Keys::AnyCase).is_some()
}

/// The ids in README's "Differences from Panther" table.
fn readme_case_ids() -> Vec<String> {
    let readme = std::fs::read_to_string(repo_dir().join("README.md")).unwrap();
    let section = readme
        .split("\n## Differences from Panther\n")
        .nth(1)
        .expect("README.md has a section \"## Differences from Panther\"");
    let section = section.split("\n## ").next().unwrap();
    section
        .lines()
        .filter_map(|line| {
            let first_cell = line.strip_prefix('|')?.split('|').next()?.trim();
            let id = first_cell.strip_prefix('`')?.strip_suffix('`')?;
            Some(id.to_owned())
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------------
// Comparing

/// What the two sides must show for one record, and the cases that explain the differences.
#[derive(Debug, Default)]
struct Expectation {
    /// `(Panther, ours)` when a listed case explains the verdicts; otherwise they must agree.
    verdict: Option<(PantherVerdict, bool)>,
    /// What the titles must be when both alert and a listed case explains part of them; otherwise they
    /// must be equal.
    titles: Option<TitleExpectation>,
    /// Cases used, with whether the two sides really differ there.
    used: Vec<(&'static str, bool)>,
}

#[derive(Debug)]
enum TitleExpectation {
    /// Both whole titles are known.
    Whole(String, String),
    /// Each title starts with its own known text; what follows must be the same on both sides.
    Heads(String, String),
    /// Each title ends with its own known text; what comes before must be the same on both sides.
    Tails(String, String),
}

/// `both_alert`: whether both sides alerted, so that their titles are compared.
fn expectation(r: &Value, listed: &BTreeSet<String>, both_alert: bool) -> Expectation {
    let first = |part: Part| {
        CASES
            .iter()
            .find(|c| c.part == part && listed.contains(c.id) && (c.applies)(r))
    };
    let mut exp = Expectation::default();
    if let Some(case) = first(Part::Verdict) {
        let pair = (panther_verdict(r, Keys::AnyCase), our_verdict(r));
        let differs =
            (pair.0 == PantherVerdict::Alert) != pair.1 || pair.0 == PantherVerdict::RuleError;
        exp.used.push((case.id, differs));
        exp.verdict = Some(pair);
    }
    if !both_alert {
        return exp;
    }
    let (panther_actor, panther_function) = (
        panther_actor(r, Keys::AnyCase),
        panther_function(r, Keys::AnyCase),
    );
    let (our_actor, our_function) = (our_actor(r), our_function(r));
    let panther_whole = panther_title(panther_actor.as_deref(), &panther_function);
    let our_whole = title(&our_actor, &our_function);
    let head = |actor: &str| format!("User [{actor}] updated Lambda function code for [");
    let tail = |function: &str| format!("] updated Lambda function code for [{function}]");

    if let Some(case) = first(Part::Title) {
        exp.used.push((case.id, panther_whole != our_whole));
        exp.titles = Some(TitleExpectation::Whole(panther_whole, our_whole));
        return exp;
    }
    let actor_case = first(Part::Actor);
    let function_case = first(Part::Function);
    if let Some(case) = actor_case {
        exp.used.push((
            case.id,
            panther_actor.as_deref() != Some(our_actor.as_str()),
        ));
    }
    if let Some(case) = function_case {
        exp.used.push((case.id, panther_function != our_function));
    }
    exp.titles = match (actor_case, function_case) {
        (None, None) => None,
        (Some(_), _) if panther_actor.is_none() => {
            Some(TitleExpectation::Whole(panther_whole, our_whole))
        }
        (Some(_), Some(_)) => Some(TitleExpectation::Whole(panther_whole, our_whole)),
        (Some(_), None) => Some(TitleExpectation::Heads(
            head(panther_actor.as_deref().unwrap()),
            head(&our_actor),
        )),
        (None, Some(_)) => Some(TitleExpectation::Tails(
            tail(&panther_function),
            tail(&our_function),
        )),
    };
    exp
}

/// `None` when the two outcomes are as expected, else what is wrong.
fn check(panther: &Panther, ours: &Option<String>, exp: &Expectation) -> Option<String> {
    let panther_verdict = match panther {
        Panther::Alert(_) => PantherVerdict::Alert,
        Panther::Quiet => PantherVerdict::Quiet,
        Panther::RuleError(_) => PantherVerdict::RuleError,
    };
    match exp.verdict {
        Some((p, o)) if (p, o) != (panther_verdict, ours.is_some()) => {
            return Some(format!(
                "the listed case expects Panther {p:?} and ours {}",
                if o { "alert" } else { "quiet" }
            ));
        }
        Some(_) => {}
        None if panther_verdict == PantherVerdict::RuleError => {
            return Some("Panther's rule raised, and no listed case explains it".into());
        }
        None if (panther_verdict == PantherVerdict::Alert) != ours.is_some() => {
            return Some("the verdicts differ, and no listed case explains it".into());
        }
        None => {}
    }
    let (Panther::Alert(panther_title), Some(our_title)) = (panther, ours) else {
        return None;
    };
    match &exp.titles {
        None if panther_title != our_title => {
            Some("the titles differ, and no listed case explains it".into())
        }
        None => None,
        Some(TitleExpectation::Whole(p, o)) => (panther_title != p || our_title != o).then(|| {
            format!(
                "the listed case expects the titles\n      Panther {}\n      ours    {}",
                quoted(p),
                quoted(o)
            )
        }),
        Some(TitleExpectation::Heads(p, o)) => {
            match (
                panther_title.strip_prefix(p.as_str()),
                our_title.strip_prefix(o.as_str()),
            ) {
                (Some(a), Some(b)) if a == b => None,
                _ => Some(format!(
                    "the listed case expects the titles to start with\n      Panther {}\n      ours    {}\n    and to end alike",
                    quoted(p),
                    quoted(o)
                )),
            }
        }
        Some(TitleExpectation::Tails(p, o)) => {
            match (
                panther_title.strip_suffix(p.as_str()),
                our_title.strip_suffix(o.as_str()),
            ) {
                (Some(a), Some(b)) if a == b => None,
                _ => Some(format!(
                    "the listed case expects the titles to end with\n      Panther {}\n      ours    {}\n    and to start alike",
                    quoted(p),
                    quoted(o)
                )),
            }
        }
    }
}

fn describe_panther(panther: &Panther, title_error: &Option<String>) -> String {
    match panther {
        Panther::Alert(t) => match title_error {
            Some(e) => format!("alert {} (title() raised {e})", quoted(t)),
            None => format!("alert {}", quoted(t)),
        },
        Panther::Quiet => "quiet".into(),
        Panther::RuleError(e) => format!("rule error ({e})"),
    }
}

fn describe_ours(ours: &Result<Option<String>, String>) -> String {
    match ours {
        Ok(Some(t)) => format!("alert {}", quoted(t)),
        Ok(None) => "quiet".into(),
        Err(e) => format!("not decoded ({e})"),
    }
}

/// A title, quoted and escaped; a long crafted one shows its start and end, so it cannot bury the report.
fn quoted(text: &str) -> String {
    let count = text.chars().count();
    if count <= 300 {
        return format!("{text:?}");
    }
    let start: String = text.chars().take(150).collect();
    let end: String = text.chars().skip(count - 100).collect();
    format!("{start:?} ...({} characters)... {end:?}", count - 250)
}

#[test]
fn every_record_gets_panthers_verdict_and_title_or_a_listed_difference() {
    let oracle = panther_oracle();
    if !oracle
        .join("rules/aws_cloudtrail_rules/aws_overwrite_lambda_code.py")
        .is_file()
    {
        return unavailable(&format!(
            "Panther's rule is missing at {}",
            oracle.display()
        ));
    }
    let Some(python) = panther_python() else {
        return unavailable("no Python with panther_core in .venv or .venv-panther");
    };

    let listed_ids = readme_case_ids();
    let listed: BTreeSet<String> = listed_ids.iter().cloned().collect();
    let known: BTreeSet<&str> = CASES.iter().map(|c| c.id).collect();
    let mut problems = Vec::new();
    for id in &listed_ids {
        if !known.contains(id.as_str()) {
            problems.push(format!(
                "README lists `{id}`, a case this test does not know"
            ));
        }
    }
    if listed.len() != listed_ids.len() {
        problems.push("README lists a case id twice".into());
    }

    let inputs = gather_inputs();
    let panther = run_panther(&python, &inputs.all);

    // Listed cases seen as listed, and those whose records showed something else.
    let mut exercised: BTreeMap<&str, usize> = BTreeMap::new();
    let mut shown_otherwise: BTreeSet<&str> = BTreeSet::new();
    let mut differences = 0;
    for (input, (panther, title_error)) in inputs.all.iter().zip(&panther) {
        let ours = project_title(&input.event);
        let both_alert = matches!((panther, &ours), (Panther::Alert(_), Ok(Some(_))));
        let exp = expectation(&input.record, &listed, both_alert);
        let problem = match &ours {
            Err(e) => Some(format!("the project does not decode it: {e}")),
            Ok(ours) => check(panther, ours, &exp),
        };
        for (id, _) in exp.used.iter().filter(|(_, differs)| *differs) {
            if problem.is_none() {
                *exercised.entry(id).or_default() += 1;
            } else {
                shown_otherwise.insert(id);
            }
        }
        if problem.is_none() && exp.used.iter().any(|(_, differs)| *differs) {
            differences += 1;
        }
        if let Some(problem) = problem {
            let cases: Vec<&str> = exp.used.iter().map(|(id, _)| *id).collect();
            problems.push(format!(
                "{}\n    Panther: {}\n    ours:    {}\n    cases:   {}\n    problem: {problem}",
                input.source,
                describe_panther(panther, title_error),
                describe_ours(&ours),
                if cases.is_empty() {
                    "none".into()
                } else {
                    cases.join(", ")
                },
            ));
        }
    }
    for id in &listed {
        if !known.contains(id.as_str()) || exercised.contains_key(id.as_str()) {
            continue;
        }
        problems.push(if shown_otherwise.contains(id.as_str()) {
            format!("README lists `{id}`, but its records do not show it as listed (above)")
        } else {
            format!("README lists `{id}`, but no record shows that difference (a stale row)")
        });
    }

    let _ = writeln!(
        std::io::stderr(),
        "conformance: {} records compared with Panther's rule ({} corpus, {} events, {} edge cases); \
         {differences} differ as listed: {}",
        inputs.all.len(),
        inputs.corpus,
        inputs.events,
        inputs.edge_cases,
        exercised
            .iter()
            .map(|(id, n)| format!("{id} {n}"))
            .collect::<Vec<_>>()
            .join(", "),
    );
    assert!(
        problems.is_empty(),
        "{} problem(s) comparing with Panther's rule:\n\n{}\n",
        problems.len(),
        problems.join("\n\n")
    );
}

#[test]
fn python_floats_are_written_as_python_writes_them() {
    for (value, python) in [
        (1.5, "1.5"),
        (100.0, "100.0"),
        (0.0001, "0.0001"),
        (0.00001, "1e-05"),
        (1e16, "1e+16"),
        (1.5e16, "1.5e+16"),
        (123456789012345.6, "123456789012345.6"),
        (-2.5, "-2.5"),
        (-0.0, "-0.0"),
    ] {
        assert_eq!(python_float(value), python, "{value}");
    }
    let object: Map<String, Value> = serde_json::from_str(r#"{"a":[1,"it's",null,true]}"#).unwrap();
    assert_eq!(
        python_str(&Value::Object(object)),
        r#"ImmutableCaseInsensitiveDict({'a': [1, "it's", None, True]})"#
    );
}
