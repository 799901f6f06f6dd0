//! The one path from a decoded record to what the detection concludes: [`Detector::assess`].
//!
//! `scan`, the Lambda handler, the benchmarks and the tests all call it, so a feature added to the
//! composition (a tuning policy, grouping) is added once. It applies the rule (`rule.rs`) and, when
//! the rule fires, builds the alert document (`alert.rs`); [`Detector::assess_validated`] adds the
//! literal prefilter that lets `scan` skip parsing records that cannot match.
//!
//! Its settings are what changes an outcome for every caller alike: the account names an alert
//! carries ([`Detector::with_account_names`]).
//!
//! It does not find records in files (`input/`), print, or deliver (`sink/`).

use crate::accounts::AccountNames;
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
pub struct Detector {
    account_names: AccountNames,
}

impl Detector {
    /// Alerts name the account they come from with `names` (`account_name`), when it names it.
    /// Names decide nothing: the same records alert, with the same titles.
    pub fn with_account_names(mut self, names: AccountNames) -> Detector {
        self.account_names = names;
        self
    }

    /// The outcome for one record.
    pub fn assess(&self, record: &Record) -> Outcome {
        match rule::evaluate(record) {
            Verdict::Alert(person) => {
                let account_name = record
                    .account_id()
                    .and_then(|id| self.account_names.get(id));
                Outcome::Alert(Box::new(Alert::new(record, &person, account_name)))
            }
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
}
