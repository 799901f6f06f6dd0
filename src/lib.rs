//! lambda-code-watch: alert when a person (not a pipeline) changes the code of an AWS Lambda function.
//!
//! A port of Panther's `AWS.Lambda.UpdateFunctionCode` ("Lambda Code Updated by User"). Data flows one
//! way: bytes -> records -> verdicts -> alerts -> sink.
//!
//! - [`record`]: a lenient view of one CloudTrail record (every field optional, wrong types absent).
//! - [`input`]: every input shape (record, EventBridge envelope, `{"Records":[...]}`, lookup-events,
//!   arrays, NDJSON, gzip) -> records, streaming and without parsing what cannot match.
//! - [`rule`]: the detection, pure: record -> alert, or quiet and why. The one place that decides
//!   "is this a person?".
//! - [`alert`]: the alert document (JSON for machines, text for people) with the rule's metadata.
//! - [`scan`]: runs the rule over files and directories, in parallel, for the `scan` command.
//! - [`sink`]: where alerts go: SNS (message shaping and publishing) or stdout.
//! - [`sql`]: the rule as a SQL query for Athena, CloudTrail Lake and Security Lake, pure.
//! - `handler` (feature `lambda`): the Lambda glue, EventBridge event in, SNS alert out.
//!
//! The CLI (`src/bin/lambda-code-watch.rs`) and the Lambda (`src/bin/lambda-code-watch-handler.rs`) are
//! thin mains over this library, so both apply exactly the same rule and publish the same document.

pub mod alert;
pub mod input;
pub mod record;
pub mod rule;
pub mod scan;
pub mod sink;
pub mod sql;

#[cfg(feature = "lambda")]
pub mod handler;

pub use alert::Alert;
pub use record::{DecodeError, Record};
pub use rule::{Person, PersonKind, QuietReason, Verdict, evaluate};

/// What the rule made of one event.
#[derive(Debug, Clone, PartialEq)]
pub struct Inspection {
    pub verdict: Verdict,
    /// Present exactly when the verdict is [`Verdict::Alert`].
    pub alert: Option<Alert>,
    pub event_id: Option<String>,
    pub event_name: Option<String>,
}

/// Applies the rule to one event: a bare CloudTrail record or an EventBridge envelope around one.
pub fn inspect_event(bytes: &[u8]) -> Result<Inspection, DecodeError> {
    Ok(inspect_record(&Record::from_json(bytes)?))
}

/// Applies the rule to one record and builds the alert when it fires.
pub fn inspect_record(record: &Record) -> Inspection {
    let verdict = evaluate(record);
    let alert = match &verdict {
        Verdict::Alert(person) => Some(Alert::new(record, person)),
        Verdict::Quiet(_) => None,
    };
    Inspection {
        verdict,
        alert,
        event_id: record.event_id().map(str::to_owned),
        event_name: record.event_name().map(str::to_owned),
    }
}
