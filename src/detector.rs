//! The one path from a decoded record to what the detection concludes: [`Detector::assess`].
//!
//! `scan`, the Lambda handler, the benchmarks and the tests all call it, so a feature added to the
//! composition (the tuning policy, grouping) is added once. It applies the rule (`rule.rs`) with
//! the policy's `[people]`, builds the alert document when the rule fires (`alert.rs`), and then
//! applies the policy's `[[suppress]]` entries: a matching entry turns the alert into
//! [`Outcome::Suppressed`], which still carries the alert and the entry's reason, so every hidden
//! alert stays visible to whoever reads logs or `scan --explain`. An entry past its `expires` day
//! no longer hides anything; it is named on the alert instead ([`Alert::expired_suppressions`]).
//! [`Detector::assess_validated`] adds the literal prefilter that lets `scan` skip parsing records
//! that cannot match.
//!
//! Its settings change an outcome for every caller alike: the policy, and the account names an
//! alert carries ([`Detector::with_account_names`]).
//!
//! It does not find records in files (`input/`), print, group or deliver (`grouping.rs`, `sink/`).

use crate::accounts::AccountNames;
use crate::alert::{Alert, ExpiredSuppression};
use crate::policy::{Policy, Suppression};
use crate::record::{DecodeError, Record};
use crate::rule::{self, QuietReason, Verdict};
use jiff::civil::Date;
use std::sync::Arc;

/// What the detection made of one record.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// A person changed a function's code: the alert to deliver.
    Alert(Box<Alert>),
    /// The rule fired but a policy entry hides the alert: not delivered, still reported.
    Suppressed(Box<Suppressed>),
    /// Nothing to report, and why.
    Quiet(QuietReason),
}

/// An alert a `[[suppress]]` entry hides, and which entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Suppressed {
    /// The alert that would have been delivered.
    pub alert: Alert,
    /// `suppress[N]`: the entry's name in logs, metrics and summaries.
    pub entry: String,
    /// The entry's 1-based position in the policy.
    pub number: usize,
    /// Why the team accepts these alerts, as the entry says.
    pub reason: String,
}

impl Outcome {
    /// The alert to deliver, when there is one (a suppressed alert is not delivered).
    pub fn alert(&self) -> Option<&Alert> {
        match self {
            Outcome::Alert(alert) => Some(alert),
            Outcome::Suppressed(_) | Outcome::Quiet(_) => None,
        }
    }

    /// `alert`, `suppressed`, or the quiet reason's short name (`other-api`, ...).
    pub fn verdict_name(&self) -> &'static str {
        match self {
            Outcome::Alert(_) => "alert",
            Outcome::Suppressed(_) => "suppressed",
            Outcome::Quiet(reason) => reason.as_str(),
        }
    }
}

/// The detection with its settings. `Detector::default()` (no policy) is the original rule, exactly.
#[derive(Debug, Clone, Default)]
pub struct Detector {
    policy: Arc<Policy>,
    /// The day `expires` is judged against (UTC), fixed when the detector is built.
    today: Option<Date>,
    account_names: AccountNames,
    canary: Option<Canary>,
}

/// The deployment's canary: a role that changes the code of one throwaway function on a schedule,
/// so that its call arriving proves the whole path from CloudTrail to the detector works. Its call
/// is quiet ([`QuietReason::Canary`]) whatever the policy says about people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Canary {
    /// `userIdentity.sessionContext.sessionIssuer.arn` of the canary's calls.
    pub role_arn: String,
    /// The function whose code the canary replaces; when set, the canary's role changing any other
    /// function's code is judged by the rule like anyone else (a role given more rights than the
    /// stack gave it must not buy silence).
    pub target_function: Option<String>,
}

impl Canary {
    /// Whether `record` is the canary's own code change: a successful `UpdateFunctionCode*` call
    /// made with the canary's role (on its target function, when one is given). Compared on the
    /// session issuer's ARN, which a person cannot take without assuming that role.
    pub fn made(&self, record: &Record) -> bool {
        !self.role_arn.is_empty()
            && record.issuer_str("arn") == Some(self.role_arn.as_str())
            && record.event_source() == Some(rule::EVENT_SOURCE)
            && record
                .event_name()
                .is_some_and(|name| name.starts_with(rule::EVENT_NAME_PREFIX))
            && !record.failed()
            && self
                .target_function
                .as_deref()
                .is_none_or(|target| record.function_name() == Some(target))
    }
}

impl Detector {
    /// The detection tuned by `policy`, with expiry judged against today (UTC).
    pub fn new(policy: Policy) -> Detector {
        Detector::on(policy, crate::policy::today_utc())
    }

    /// The detection tuned by `policy`, with expiry judged against `today`.
    pub fn on(policy: Policy, today: Date) -> Detector {
        Detector {
            policy: Arc::new(policy),
            today: Some(today),
            account_names: AccountNames::default(),
            canary: None,
        }
    }

    /// The canary's calls are quiet, with reason [`QuietReason::Canary`]. A detector without a
    /// canary (`scan`, by default) judges them by the rule: a role, so `not-a-person`.
    pub fn with_canary(mut self, canary: Option<Canary>) -> Detector {
        self.canary = canary;
        self
    }

    /// The policy `policy` in place of this detector's, expiry judged against today (UTC); the
    /// account names and the canary stay.
    pub fn with_policy(self, policy: Policy) -> Detector {
        Detector {
            policy: Arc::new(policy),
            today: Some(crate::policy::today_utc()),
            ..self
        }
    }

    /// Alerts name the account they come from with `names` (`account_name`), when it names it.
    /// Names decide nothing: the same records alert, with the same titles.
    pub fn with_account_names(mut self, names: AccountNames) -> Detector {
        self.account_names = names;
        self
    }

    /// The policy in force (the default policy when none was given).
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The entries that no longer suppress because their day has passed.
    pub fn expired_entries(&self) -> Vec<&Suppression> {
        match self.today {
            Some(today) => self.policy.expired_on(today).collect(),
            None => Vec::new(),
        }
    }

    /// The outcome for one record.
    pub fn assess(&self, record: &Record) -> Outcome {
        if self
            .canary
            .as_ref()
            .is_some_and(|canary| canary.made(record))
        {
            return Outcome::Quiet(QuietReason::Canary);
        }
        let person = match rule::evaluate_with(record, &self.policy.people) {
            Verdict::Alert(person) => person,
            Verdict::Quiet(reason) => return Outcome::Quiet(reason),
        };
        let account_name = record
            .account_id()
            .and_then(|id| self.account_names.get(id));
        let mut alert = Alert::new(record, &person, account_name);
        for entry in &self.policy.suppressions {
            if !entry.matches(record, &alert) {
                continue;
            }
            let expired = self.today.is_some_and(|today| entry.expired_on(today));
            if !expired {
                return Outcome::Suppressed(Box::new(Suppressed {
                    alert,
                    entry: entry.name(),
                    number: entry.number,
                    reason: entry.reason.clone(),
                }));
            }
            alert.expired_suppressions.push(ExpiredSuppression {
                entry: entry.name(),
                number: entry.number,
                reason: entry.reason.clone(),
                expired_after: entry.expires.map(|d| d.to_string()).unwrap_or_default(),
            });
        }
        Outcome::Alert(Box::new(alert))
    }

    /// The outcome for the JSON of one record or EventBridge envelope; an error when it is not a
    /// JSON object.
    pub fn assess_json(&self, json: &[u8]) -> Result<Outcome, DecodeError> {
        Ok(self.assess(&Record::from_json(json)?))
    }

    /// [`Detector::assess_json`] for a JSON object the decoder has already validated (`input`
    /// hands out nothing else): bytes that cannot hold a Lambda code update ([`rule::may_match`])
    /// are quiet without being parsed, which is what makes `scan` fast. The outcome is exactly the
    /// one [`Detector::assess_json`] gives (the policy changes only records that reach the rule).
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
