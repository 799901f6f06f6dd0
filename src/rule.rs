//! The detection: Panther's `AWS.Lambda.UpdateFunctionCode` ("Lambda Code Updated by User"), pure.
//!
//! A record alerts when all of these hold:
//! 1. `eventSource` is `lambda.amazonaws.com` and `eventName` starts with `UpdateFunctionCode`
//!    (`UpdateFunctionCode`, `UpdateFunctionCode20150331`, `UpdateFunctionCode20150331v2`);
//! 2. the call succeeded: no non-empty `errorCode` or `errorMessage`;
//! 3. the caller is a person: `userIdentity.type` is `IAMUser` or `FederatedUser`, or it is
//!    `AssumedRole` and the session was issued by an IAM Identity Center (SSO) permission-set role,
//!    i.e. `sessionContext.sessionIssuer.userName` starts with `AWSReservedSSO_`.
//!
//! Everything else stays quiet, and the verdict says which condition failed first, in the order above.
//! Checking the API first makes the literal prefilter ([`may_match`]) exact about the reason too.
//!
//! This module does no I/O and knows nothing of AWS SDKs, input formats or alert rendering.

use crate::record::Record;
use memchr::memmem;
use std::sync::LazyLock;

pub const EVENT_SOURCE: &str = "lambda.amazonaws.com";
pub const EVENT_NAME_PREFIX: &str = "UpdateFunctionCode";
/// Roles that IAM Identity Center creates for permission sets are named `AWSReservedSSO_<set>_<hash>`.
pub const SSO_ROLE_PREFIX: &str = "AWSReservedSSO_";

/// What the rule concluded about one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A person changed a function's code.
    Alert(Person),
    /// Nothing to report, and why.
    Quiet(QuietReason),
}

/// Why a record stays quiet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum QuietReason {
    /// Not a Lambda `UpdateFunctionCode*` call.
    OtherApi,
    /// The call failed (`errorCode` or `errorMessage`), so no code changed.
    FailedCall,
    /// The caller is not a person: a role (CI/CD, services), an AWS service, the root user, or unknown.
    NotAPerson,
}

impl QuietReason {
    pub const ALL: [QuietReason; 3] = [
        QuietReason::OtherApi,
        QuietReason::FailedCall,
        QuietReason::NotAPerson,
    ];

    /// Short machine-readable name.
    pub fn as_str(self) -> &'static str {
        match self {
            QuietReason::OtherApi => "other-api",
            QuietReason::FailedCall => "failed-call",
            QuietReason::NotAPerson => "not-a-person",
        }
    }

    /// One sentence for people.
    pub fn describe(self) -> &'static str {
        match self {
            QuietReason::OtherApi => "not a Lambda UpdateFunctionCode call",
            QuietReason::FailedCall => "the call failed (errorCode/errorMessage), no code changed",
            QuietReason::NotAPerson => "the caller is not an IAM user, federated user or SSO user",
        }
    }
}

/// The kind of person behind a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PersonKind {
    IamUser,
    FederatedUser,
    /// An IAM Identity Center user, through an `AWSReservedSSO_` permission-set role.
    SsoUser,
}

impl PersonKind {
    /// As written in alerts.
    pub fn as_str(self) -> &'static str {
        match self {
            PersonKind::IamUser => "IAMUser",
            PersonKind::FederatedUser => "FederatedUser",
            PersonKind::SsoUser => "SSOUser",
        }
    }

    /// In words.
    pub fn describe(self) -> &'static str {
        match self {
            PersonKind::IamUser => "IAM user",
            PersonKind::FederatedUser => "federated user",
            PersonKind::SsoUser => "IAM Identity Center (SSO) user",
        }
    }
}

/// The person who made the call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    /// Who, as a responder would search for them: the IAM user name, the federated user's name, or the
    /// SSO session name (usually the person's login), never the permission-set role.
    pub name: String,
    pub kind: PersonKind,
    /// What issued the session, when there is one: the SSO permission-set role, or the IAM user behind a
    /// federation token (ARN when known, else its name).
    pub issuer: Option<String>,
}

/// Applies the rule to one record.
pub fn evaluate(record: &Record) -> Verdict {
    let is_code_update = record.event_source() == Some(EVENT_SOURCE)
        && record
            .event_name()
            .is_some_and(|name| name.starts_with(EVENT_NAME_PREFIX));
    if !is_code_update {
        return Verdict::Quiet(QuietReason::OtherApi);
    }
    if record.failed() {
        return Verdict::Quiet(QuietReason::FailedCall);
    }
    match person(record) {
        Some(person) => Verdict::Alert(person),
        None => Verdict::Quiet(QuietReason::NotAPerson),
    }
}

/// The one place that decides whether the caller is a person, and who.
pub fn person(record: &Record) -> Option<Person> {
    let principal_id = record.identity_str("principalId");
    let arn = record.identity_str("arn");
    let issuer = || {
        record
            .issuer_str("arn")
            .or_else(|| record.issuer_str("userName"))
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let (kind, name) = match record.identity_type()? {
        "IAMUser" => (
            PersonKind::IamUser,
            record
                .identity_str("userName")
                .or_else(|| arn.and_then(last_path_segment))
                .or(principal_id),
        ),
        "FederatedUser" => (
            PersonKind::FederatedUser,
            principal_id
                .and_then(after_colon)
                .or_else(|| arn.and_then(last_path_segment)),
        ),
        "AssumedRole" if is_sso_issuer(record) => (
            PersonKind::SsoUser,
            principal_id
                .and_then(after_colon)
                .or_else(|| arn.and_then(last_path_segment)),
        ),
        _ => return None,
    };
    let name = name
        .filter(|n| !n.is_empty())
        .unwrap_or("<unknown person>")
        .to_owned();
    let issuer = match kind {
        PersonKind::IamUser => None,
        PersonKind::FederatedUser | PersonKind::SsoUser => issuer(),
    };
    Some(Person { name, kind, issuer })
}

/// An IAM Identity Center session: issued by a role named `AWSReservedSSO_...`. Only the issuer's
/// `userName` is consulted, as in the original rule (anonymised or region-qualified ARNs vary; the role
/// name does not). An empty `sessionIssuer` is simply not SSO.
pub fn is_sso_issuer(record: &Record) -> bool {
    record
        .issuer_str("userName")
        .is_some_and(|name| name.starts_with(SSO_ROLE_PREFIX))
}

/// `AROA...:bob.ross` -> `bob.ross`; `123456789012:alice` -> `alice`.
fn after_colon(principal_id: &str) -> Option<&str> {
    principal_id
        .split_once(':')
        .map(|(_, session)| session)
        .filter(|s| !s.is_empty())
}

/// `arn:aws:sts::123:assumed-role/Role/bob` -> `bob`.
fn last_path_segment(arn: &str) -> Option<&str> {
    arn.rsplit_once('/')
        .map(|(_, last)| last)
        .filter(|s| !s.is_empty())
}

static EVENT_NAME_FINDER: LazyLock<memmem::Finder<'static>> =
    LazyLock::new(|| memmem::Finder::new(EVENT_NAME_PREFIX.as_bytes()));
static UNICODE_ESCAPE_FINDER: LazyLock<memmem::Finder<'static>> =
    LazyLock::new(|| memmem::Finder::new(b"\\u"));

/// Fast path: can the record (or envelope) whose raw JSON is `json` possibly alert?
///
/// `false` is a proof that [`evaluate`] says [`QuietReason::OtherApi`]: an `eventName` starting with
/// `UpdateFunctionCode` must appear in the bytes either literally or with at least one `\uXXXX` escape
/// (JSON's other escapes only produce `"`, `\`, `/` and control characters, none of which are in the
/// name). `true` means "parse it and ask [`evaluate`]". This lets `scan` skip parsing the vast majority
/// of records.
pub fn may_match(json: &[u8]) -> bool {
    EVENT_NAME_FINDER.find(json).is_some() || UNICODE_ESCAPE_FINDER.find(json).is_some()
}
