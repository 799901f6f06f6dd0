//! The one path from a decoded record to what the detection concludes: [`Detector::assess`].
//!
//! `scan`, the Lambda handler, the benchmarks and the tests all call it, so a feature added to the
//! composition (a tuning policy, grouping) is added once. It applies the rule (`rule.rs`) and, when
//! the rule fires, builds the alert document (`alert.rs`); [`Detector::assess_validated`] adds the
//! literal prefilter that lets `scan` skip parsing records that cannot match.
//!
//! It does not find records in files (`input/`), print, or deliver (`sink/`).

use crate::alert::Alert;
use crate::record::{DecodeError, Record};
use crate::rule::{self, QuietReason, Verdict};

/// What the detection made of one record.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// A person changed a function's code: the alert to deliver.
    Alert(Box<Alert>),
    /// Nothing to report, and why.
    Quiet(QuietReason),
}

impl Outcome {
    /// The alert, when there is one.
    pub fn alert(&self) -> Option<&Alert> {
        match self {
            Outcome::Alert(alert) => Some(alert),
            Outcome::Quiet(_) => None,
        }
    }

    /// `alert`, or the quiet reason's short name (`other-api`, ...).
    pub fn verdict_name(&self) -> &'static str {
        match self {
            Outcome::Alert(_) => "alert",
            Outcome::Quiet(reason) => reason.as_str(),
        }
    }
}

/// The detection with its settings. `Detector::default()` is the original rule, exactly.
#[derive(Debug, Clone, Default)]
pub struct Detector {}

impl Detector {
    /// The outcome for one record.
    pub fn assess(&self, record: &Record) -> Outcome {
        match rule::evaluate(record) {
            Verdict::Alert(person) => Outcome::Alert(Box::new(Alert::new(record, &person))),
            Verdict::Quiet(reason) => Outcome::Quiet(reason),
        }
    }

    /// The outcome for the JSON of one record or EventBridge envelope; an error when it is not a
    /// JSON object.
    pub fn assess_json(&self, json: &[u8]) -> Result<Outcome, DecodeError> {
        Ok(self.assess(&Record::from_json(json)?))
    }

    /// [`Detector::assess_json`] for a JSON object the decoder has already validated (`input`
    /// hands out nothing else): bytes that cannot hold a Lambda code update ([`rule::may_match`])
    /// are quiet without being parsed, which is what makes `scan` fast. The outcome is exactly the
    /// one [`Detector::assess_json`] gives.
    pub fn assess_validated(&self, json: &[u8]) -> Result<Outcome, DecodeError> {
        if !rule::may_match(json) {
            return Ok(Outcome::Quiet(QuietReason::OtherApi));
        }
        self.assess_json(json)
    }

    /// [`Detector::assess_validated`] for a record the fast decoder handed out with its hint
    /// (`input::RecordVisitor::record_checked`): when no string in `json` holds a `\u` escape,
    /// the prefilter only looks for the event name as written ([`rule::names_update_function_code`]).
    /// The outcome is exactly the one [`Detector::assess_json`] gives.
    pub fn assess_decoded(
        &self,
        json: &[u8],
        unicode_escape: bool,
    ) -> Result<Outcome, DecodeError> {
        if unicode_escape {
            return self.assess_validated(json);
        }
        if !rule::names_update_function_code(json) {
            return Ok(Outcome::Quiet(QuietReason::OtherApi));
        }
        self.assess_json(json)
    }
}
