//! The alert document: what a responder receives when the rule fires.
//!
//! One JSON object (one line) is both what `scan` prints and what the Lambda publishes to SNS for
//! machine subscribers; [`Alert::to_text`] renders the same alert for people (email, terminals).
//! The rule's metadata (severity, runbook, MITRE ATT&CK mapping, reference) is kept here as data,
//! beside the rendering, as in the original rule's card.
//!
//! This module decides nothing (see `rule.rs`) and knows nothing of SNS limits (see `sink/`).

use crate::record::Record;
use crate::rule::Person;
use serde::Serialize;
use serde_json::Value;
use std::fmt::Write as _;
use unicode_general_category::{GeneralCategory, get_general_category};

pub const RULE_ID: &str = "AWS.Lambda.UpdateFunctionCode";
pub const RULE_NAME: &str = "Lambda Code Updated by User";
pub const SEVERITY: &str = "HIGH";
pub const STATUS: &str = "EXPERIMENTAL";
pub const DESCRIPTION: &str = "Detects when Lambda function code is updated by an IAM user, federated user, or AWS SSO user. \
This may indicate compromised credentials, a developer bypassing CI/CD guardrails, or insider threat activity.";
pub const RUNBOOK: &str = "Verify the user identity and whether this is authorized.\n\
Review the code changes made to the Lambda function.\n\
If unauthorized:\n\
- Disable the user's access key or revoke the SSO session\n\
- Revert Lambda function code to previous version\n\
- Investigate credential compromise";
pub const REFERENCE: &str =
    "https://stratus-red-team.cloud/attack-techniques/AWS/aws.persistence.lambda-overwrite-code/";
/// Panther groups this rule's alerts by title for 60 minutes.
pub const DEDUP_PERIOD_MINUTES: u32 = 60;
/// Shown when the record names no function at all.
pub const UNKNOWN_FUNCTION: &str = "<unknown function>";

/// One MITRE ATT&CK tactic/technique pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct MitreMapping {
    pub tactic_id: &'static str,
    pub tactic: &'static str,
    pub technique_id: &'static str,
    pub technique: &'static str,
}

const fn valid_accounts(tactic_id: &'static str, tactic: &'static str) -> MitreMapping {
    MitreMapping {
        tactic_id,
        tactic,
        technique_id: "T1078",
        technique: "Valid Accounts",
    }
}

/// The card's table. (Its `Reports` line says `TA0007:T1078`, but TA0007 is Discovery and T1078 is not
/// a Discovery technique; the table is the consistent mapping.)
pub const MITRE_ATTACK: [MitreMapping; 4] = [
    valid_accounts("TA0001", "Initial Access"),
    valid_accounts("TA0003", "Persistence"),
    valid_accounts("TA0004", "Privilege Escalation"),
    valid_accounts("TA0005", "Defense Evasion"),
];

/// A High-severity "Lambda code updated by a person" alert.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    pub rule_id: &'static str,
    pub rule_name: &'static str,
    pub severity: &'static str,
    pub status: &'static str,
    pub title: String,
    /// The person (see [`Person::name`]).
    pub actor: String,
    /// `IAMUser`, `FederatedUser` or `SSOUser`.
    pub actor_type: &'static str,
    /// The SSO role or IAM user that issued the session, if any.
    pub actor_issuer: Option<String>,
    /// A session name the caller chose (federated users), if any: not evidence of who they are.
    pub actor_session_name: Option<String>,
    pub function_name: String,
    pub function_arn: Option<String>,
    pub code_sha256: Option<String>,
    pub version: Option<String>,
    pub event_id: Option<String>,
    pub event_name: Option<String>,
    pub event_time: Option<String>,
    pub account_id: Option<String>,
    /// The account's name, when the detector was given one for `account_id` (configuration, not
    /// the record): `null` otherwise.
    pub account_name: Option<String>,
    pub region: Option<String>,
    pub dedup_key: String,
    pub dedup_period_minutes: u32,
    pub description: &'static str,
    pub runbook: &'static str,
    pub reference: &'static str,
    pub mitre_attack: [MitreMapping; 4],
    pub context: Context,
    /// Policy entries that matched this alert but had expired, so they no longer hide it: the
    /// responder sees that an accepted exception has lapsed. Absent from the document when none
    /// (always, without a policy).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub expired_suppressions: Vec<ExpiredSuppression>,
}

/// A `[[suppress]]` entry that would have hidden an alert, had it not expired.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExpiredSuppression {
    /// `suppress[N]`.
    pub entry: String,
    /// N: the entry's 1-based position in the policy (`entry` says it in the document).
    #[serde(skip)]
    pub number: usize,
    pub reason: String,
    /// The last day it suppressed (`YYYY-MM-DD`).
    pub expired_after: String,
}

/// The card's output fields, and what a responder needs first.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Context {
    pub event_name: Option<String>,
    pub event_source: Option<String>,
    pub aws_region: Option<String>,
    pub recipient_account_id: Option<String>,
    #[serde(rename = "sourceIPAddress")]
    pub source_ip_address: Option<String>,
    pub user_agent: Option<String>,
    /// The whole `userIdentity` object, as recorded.
    pub user_identity: Value,
    #[serde(rename = "actor_user")]
    pub actor_user: String,
    pub function_name: String,
    pub user_identity_type: Option<String>,
    pub user_identity_arn: Option<String>,
    pub access_key_id: Option<String>,
    pub mfa_authenticated: Option<bool>,
    pub session_credential_from_console: Option<bool>,
    pub invoked_by: Option<String>,
    /// What was deployed (zip, S3 object or image URI), as recorded.
    pub request_parameters: Value,
}

fn owned(s: Option<&str>) -> Option<String> {
    s.map(str::to_owned)
}

impl Alert {
    /// The alert for `record`, whose caller the rule identified as `person`, in the account named
    /// `account_name` (if the detector knows its name).
    pub fn new(record: &Record, person: &Person, account_name: Option<&str>) -> Alert {
        let function_name = record
            .function_name()
            .unwrap_or(UNKNOWN_FUNCTION)
            .to_owned();
        let title = format!(
            "User [{}] updated Lambda function code for [{}]",
            person.name, function_name
        );
        let response = |key: &str| owned(record.str_at(&["responseElements", key]));
        let context = Context {
            event_name: owned(record.event_name()),
            event_source: owned(record.event_source()),
            aws_region: owned(record.region()),
            recipient_account_id: owned(record.str_at(&["recipientAccountId"])),
            source_ip_address: owned(record.source_ip()),
            user_agent: owned(record.user_agent()),
            user_identity: record.at(&["userIdentity"]).cloned().unwrap_or(Value::Null),
            actor_user: person.name.clone(),
            function_name: function_name.clone(),
            user_identity_type: owned(record.identity_type()),
            user_identity_arn: owned(record.identity_str("arn")),
            access_key_id: owned(record.identity_str("accessKeyId")),
            mfa_authenticated: record.flag_at(&[
                "userIdentity",
                "sessionContext",
                "attributes",
                "mfaAuthenticated",
            ]),
            session_credential_from_console: record
                .flag_at(&["userIdentity", "sessionCredentialFromConsole"]),
            invoked_by: owned(record.identity_str("invokedBy")),
            request_parameters: record
                .at(&["requestParameters"])
                .cloned()
                .unwrap_or(Value::Null),
        };
        Alert {
            rule_id: RULE_ID,
            rule_name: RULE_NAME,
            severity: SEVERITY,
            status: STATUS,
            dedup_key: format!("{RULE_ID}:{title}"),
            title,
            actor: person.name.clone(),
            actor_type: person.kind.as_str(),
            actor_issuer: person.issuer.clone(),
            actor_session_name: person.session_name.clone(),
            function_name,
            function_arn: response("functionArn"),
            code_sha256: response("codeSha256"),
            version: response("version"),
            event_id: owned(record.event_id()),
            event_name: owned(record.event_name()),
            event_time: owned(record.event_time()),
            account_id: owned(record.account_id()),
            account_name: owned(account_name),
            region: owned(record.region()),
            dedup_period_minutes: DEDUP_PERIOD_MINUTES,
            description: DESCRIPTION,
            runbook: RUNBOOK,
            reference: REFERENCE,
            mitre_attack: MITRE_ATTACK,
            context,
            expired_suppressions: Vec::new(),
        }
    }

    /// The alert as one line of JSON: what `scan` prints and what SNS subscribers receive.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self)
            .expect("an Alert always serializes: it holds only strings, numbers and JSON values")
    }

    /// The alert for people: title, who/what/where/when, runbook. Text taken from the record is shown
    /// with control characters escaped, so a crafted user agent cannot forge lines.
    pub fn to_text(&self) -> String {
        let c = &self.context;
        let or_dash =
            |s: &Option<String>| s.as_deref().map(printable).unwrap_or_else(|| "-".into());
        let yes_no = |b: Option<bool>| match b {
            Some(true) => "yes",
            Some(false) => "no",
            None => "unknown",
        };
        let mut t = String::new();
        let _ = writeln!(t, "[{}] {}", self.severity, printable(&self.title));
        let _ = writeln!(t);
        let _ = writeln!(t, "Rule:   {} ({})", self.rule_name, self.rule_id);
        let _ = writeln!(
            t,
            "Who:    {} ({}{})",
            printable(&self.actor),
            self.actor_type,
            self.actor_issuer
                .as_deref()
                .map(|i| format!(", via {}", printable(i)))
                .unwrap_or_default()
        );
        if let Some(session) = &self.actor_session_name {
            let label = match self.actor_type {
                "IdPRoleUser" => {
                    "role session name \"{}\" (set by the identity provider at sign-in, or chosen by the caller of a plain AssumeRole: not proof of identity)"
                }
                "SourceIdentityUser" => {
                    "source identity \"{}\" (set by the identity provider, or by the first caller allowed sts:SetSourceIdentity: not proof of identity)"
                }
                _ => "federated session name \"{}\" (chosen by the caller, not proof of identity)",
            };
            let _ = writeln!(t, "        {}", label.replace("{}", &printable(session)));
        }
        let _ = writeln!(t, "        identity ARN: {}", or_dash(&c.user_identity_arn));
        let _ = writeln!(
            t,
            "        access key: {}, MFA: {}, console session: {}",
            or_dash(&c.access_key_id),
            yes_no(c.mfa_authenticated),
            yes_no(c.session_credential_from_console)
        );
        let _ = writeln!(
            t,
            "        from {} using {}",
            or_dash(&c.source_ip_address),
            or_dash(&c.user_agent)
        );
        let _ = writeln!(
            t,
            "What:   {} on function {}",
            or_dash(&self.event_name),
            printable(&self.function_name)
        );
        if let Some(arn) = &self.function_arn {
            let _ = writeln!(t, "        function ARN: {}", printable(arn));
        }
        if self.code_sha256.is_some() || self.version.is_some() {
            let _ = writeln!(
                t,
                "        code SHA-256: {}, version: {}",
                or_dash(&self.code_sha256),
                or_dash(&self.version)
            );
        }
        let _ = writeln!(
            t,
            "Where:  account {}{}, region {}",
            or_dash(&self.account_id),
            self.account_name
                .as_deref()
                .map(|name| format!(" ({})", printable(name)))
                .unwrap_or_default(),
            or_dash(&self.region)
        );
        let _ = writeln!(
            t,
            "When:   {} (event ID {})",
            or_dash(&self.event_time),
            or_dash(&self.event_id)
        );
        let _ = writeln!(t);
        let _ = writeln!(t, "Runbook:");
        for line in self.runbook.lines() {
            let _ = writeln!(t, "  {line}");
        }
        let _ = writeln!(t);
        let tactics: Vec<String> = self
            .mitre_attack
            .iter()
            .map(|m| format!("{} {}", m.tactic_id, m.tactic))
            .collect();
        let _ = writeln!(
            t,
            "MITRE ATT&CK: {} {} ({})",
            self.mitre_attack[0].technique_id,
            self.mitre_attack[0].technique,
            tactics.join(", ")
        );
        let _ = writeln!(t, "Reference: {}", self.reference);
        for expired in &self.expired_suppressions {
            let _ = writeln!(
                t,
                "Policy: {} (\"{}\") would have hidden this alert but expired after {}",
                expired.entry,
                printable(&expired.reason),
                expired.expired_after
            );
        }
        t
    }
}

/// `s` with control characters (including line breaks) and invisible Unicode format and separator
/// characters escaped as `\n`, `\u{1b}`, `\u{202e}`, ...: what a person reads of a record cannot
/// forge lines or escape sequences, nor look like other text (U+202E right-to-left override makes
/// `ecila` render as `alice`; zero-width characters make two different names look the same).
pub fn printable(s: &str) -> String {
    if !s.chars().any(is_hidden) {
        return s.to_owned();
    }
    s.chars()
        .map(|c| {
            if is_hidden(c) {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// A character that does not show as itself: a control character (Unicode Cc) or a format (Cf,
/// e.g. bidirectional overrides, zero-width joiners, U+FEFF, soft hyphen), line separator (Zl,
/// U+2028) or paragraph separator (Zp, U+2029) character.
fn is_hidden(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_control();
    }
    c.is_control()
        || matches!(
            get_general_category(c),
            GeneralCategory::Format
                | GeneralCategory::LineSeparator
                | GeneralCategory::ParagraphSeparator
        )
}
