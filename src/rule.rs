//! The detection: Panther's `AWS.Lambda.UpdateFunctionCode` ("Lambda Code Updated by User"), pure.
//!
//! A record alerts when all of these hold:
//! 1. `eventSource` is `lambda.amazonaws.com` and `eventName` starts with `UpdateFunctionCode`
//!    (`UpdateFunctionCode`, `UpdateFunctionCode20150331`, `UpdateFunctionCode20150331v2`);
//! 2. the call succeeded: neither `errorCode` nor `errorMessage` holds a value Panther counts as true
//!    (see [`Record::failed`]);
//! 3. the caller is a person: `userIdentity.type` is `IAMUser` or `FederatedUser`, or it is
//!    `AssumedRole` and the session was issued by an IAM Identity Center (SSO) permission-set role,
//!    i.e. `sessionContext.sessionIssuer.userName` starts with `AWSReservedSSO_`.
//!
//! Everything else stays quiet, and the verdict says which condition failed first, in the order above.
//! Checking the API first makes the literal prefilter ([`may_match`]) exact about the reason too.
//!
//! A tuning policy's `[people]` settings ([`People`]) may count more callers as people (roles
//! reached through an identity provider, sessions with a source identity, the root user, IAM
//! Identity Center users); [`person`] reads them, and with the default settings it is the original
//! rule exactly.
//!
//! This module does no I/O and knows nothing of AWS SDKs, input formats or alert rendering.

use crate::policy::People;
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
    /// The deployment's own canary changing its throwaway function: a heartbeat, not a person
    /// (only a detector told who the canary is says so; see `Detector::with_canary`).
    Canary,
}

impl QuietReason {
    /// The reasons of the original rule, in the order it checks them.
    pub const RULE: [QuietReason; 3] = [
        QuietReason::OtherApi,
        QuietReason::FailedCall,
        QuietReason::NotAPerson,
    ];
    /// Every reason: the rule's, then the canary.
    pub const ALL: [QuietReason; 4] = [
        QuietReason::OtherApi,
        QuietReason::FailedCall,
        QuietReason::NotAPerson,
        QuietReason::Canary,
    ];

    /// Short machine-readable name.
    pub fn as_str(self) -> &'static str {
        match self {
            QuietReason::OtherApi => "other-api",
            QuietReason::FailedCall => "failed-call",
            QuietReason::NotAPerson => "not-a-person",
            QuietReason::Canary => "canary",
        }
    }

    /// One sentence for people.
    pub fn describe(self) -> &'static str {
        match self {
            QuietReason::OtherApi => "not a Lambda UpdateFunctionCode call",
            QuietReason::FailedCall => "the call failed (errorCode/errorMessage), no code changed",
            QuietReason::NotAPerson => "the caller is not an IAM user, federated user or SSO user",
            QuietReason::Canary => {
                "the deployment's canary changed its own throwaway function: a heartbeat, not a person"
            }
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
    /// `[people] role_names`: a session of a role people reach through an identity provider.
    IdpRoleUser,
    /// `[people] source_identity`: a role session carrying a source identity.
    SourceIdentityUser,
    /// `[people] root`: the account's root user.
    Root,
    /// `[people] identity_center_users`: an IAM Identity Center user acting directly
    /// (`IdentityCenterUser`) or through trusted identity propagation (`onBehalfOf`).
    IdentityCenterUser,
}

impl PersonKind {
    /// As written in alerts.
    pub fn as_str(self) -> &'static str {
        match self {
            PersonKind::IamUser => "IAMUser",
            PersonKind::FederatedUser => "FederatedUser",
            PersonKind::SsoUser => "SSOUser",
            PersonKind::IdpRoleUser => "IdPRoleUser",
            PersonKind::SourceIdentityUser => "SourceIdentityUser",
            PersonKind::Root => "Root",
            PersonKind::IdentityCenterUser => "IdentityCenterUser",
        }
    }
}

/// The person who made the call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    /// Who, as the title names them: a name the caller could not choose. The IAM user name; for a
    /// federated user, the IAM user that issued the token; for an SSO user, the session name that
    /// IAM Identity Center sets to the user's login (never the permission-set role). A federated
    /// session whose issuer is not recorded is named only by its labelled, caller-chosen name:
    /// `federated session "alice"`.
    pub name: String,
    pub kind: PersonKind,
    /// What issued the session, when there is one: the SSO permission-set role, or the IAM user
    /// behind a federation token (ARN when known, else its name).
    pub issuer: Option<String>,
    /// A session name the caller chose and could have set to anyone's name (`GetFederationToken
    /// --name`, `AssumeRole --role-session-name`, a source identity set with
    /// `sts:SetSourceIdentity`): shown only labelled as such, never as the person alone.
    pub session_name: Option<String>,
}

/// Applies the original rule to one record.
pub fn evaluate(record: &Record) -> Verdict {
    evaluate_with(record, &People::default())
}

/// Applies the rule to one record, with `people` deciding who counts as a person.
pub fn evaluate_with(record: &Record, people: &People) -> Verdict {
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
    match person(record, people) {
        Some(person) => Verdict::Alert(person),
        None => Verdict::Quiet(QuietReason::NotAPerson),
    }
}

/// The one place that decides whether the caller is a person, and who.
///
/// The original rule's people come first and are named as it names them, whatever `people` says;
/// the policy's kinds only add callers the original rule leaves quiet.
pub fn person(record: &Record, people: &People) -> Option<Person> {
    if let Some(person) = original_person(record) {
        return Some(person);
    }
    if people.is_original() {
        return None;
    }
    policy_person(record, people)
}

/// IAM users, federated users and `AWSReservedSSO_` sessions: the original rule.
fn original_person(record: &Record) -> Option<Person> {
    let principal_id = record.identity_str("principalId");
    let arn = record.identity_str("arn");
    let issuer_arn = record.issuer_str("arn").filter(|s| !s.is_empty());
    let issuer_name = record.issuer_str("userName").filter(|s| !s.is_empty());
    let person = match record.identity_type()? {
        "IAMUser" => Person {
            name: non_empty(record.identity_str("userName"))
                .or_else(|| arn.and_then(last_path_segment))
                .or(non_empty(principal_id))
                .unwrap_or(UNKNOWN_PERSON)
                .to_owned(),
            kind: PersonKind::IamUser,
            issuer: None,
            session_name: None,
        },
        "FederatedUser" => {
            // `principalId` is `ACCOUNT:<name given to GetFederationToken>`: anyone holding the
            // issuing user's keys picks it. The issuing IAM user is what AWS vouches for.
            let session_name = principal_id
                .and_then(after_first_colon)
                .or_else(|| arn.and_then(last_path_segment))
                .map(str::to_owned);
            let issuing_user = issuer_name.or_else(|| issuer_arn.and_then(last_path_segment));
            let name = match (issuing_user, &session_name) {
                (Some(user), _) => user.to_owned(),
                (None, Some(session)) => format!("federated session \"{session}\""),
                (None, None) => "federated session <unknown>".to_owned(),
            };
            Person {
                name,
                kind: PersonKind::FederatedUser,
                issuer: issuer_arn.or(issuer_name).map(str::to_owned),
                session_name,
            }
        }
        "AssumedRole" if is_sso_issuer(record) => Person {
            name: principal_id
                .and_then(sso_session_name)
                .or_else(|| arn.and_then(last_path_segment))
                .unwrap_or(UNKNOWN_PERSON)
                .to_owned(),
            kind: PersonKind::SsoUser,
            issuer: issuer_arn.or(issuer_name).map(str::to_owned),
            session_name: None,
        },
        _ => return None,
    };
    Some(person)
}

/// The kinds `[people]` adds. Each is named by what AWS recorded and the caller could not choose
/// (a role name, an account, an Identity Center user id); a name the caller (or an identity
/// provider) chose comes only quoted and labelled, as `session "..."` or `source identity "..."`.
fn policy_person(record: &Record, people: &People) -> Option<Person> {
    let identity_type = record.identity_type();
    let issuer_arn = record.issuer_str("arn").filter(|s| !s.is_empty());
    let issuer_name = record.issuer_str("userName").filter(|s| !s.is_empty());
    let role = || {
        issuer_name
            .or_else(|| issuer_arn.and_then(last_path_segment))
            .unwrap_or("<unknown role>")
    };
    let session = || {
        record
            .identity_str("arn")
            .and_then(last_path_segment)
            .or_else(|| {
                record
                    .identity_str("principalId")
                    .and_then(after_first_colon)
            })
            .map(str::to_owned)
    };
    if people.identity_center_users {
        // Trusted identity propagation: the Identity Center user id is AWS's, not the caller's.
        let on_behalf_of = record
            .str_at(&["userIdentity", "onBehalfOf", "userId"])
            .filter(|s| !s.is_empty());
        let direct = identity_type == Some("IdentityCenterUser");
        if let Some(user_id) = on_behalf_of.or_else(|| {
            direct
                .then(|| record.identity_str("userId"))
                .flatten()
                .filter(|s| !s.is_empty())
        }) {
            let name = match (direct, issuer_name) {
                (false, Some(_)) => format!("Identity Center user {user_id} via role {}", role()),
                _ => format!("Identity Center user {user_id}"),
            };
            return Some(Person {
                name,
                kind: PersonKind::IdentityCenterUser,
                issuer: issuer_arn
                    .or(issuer_name)
                    .or_else(|| record.str_at(&["userIdentity", "onBehalfOf", "identityStoreArn"]))
                    .map(str::to_owned),
                session_name: None,
            });
        }
        if direct {
            return Some(Person {
                name: "Identity Center user <unknown>".to_owned(),
                kind: PersonKind::IdentityCenterUser,
                issuer: None,
                session_name: None,
            });
        }
    }
    match identity_type? {
        "Root" if people.root => {
            let account = record
                .identity_str("accountId")
                .or_else(|| record.str_at(&["recipientAccountId"]))
                .unwrap_or("<unknown account>");
            Some(Person {
                name: format!("root of account {account}"),
                kind: PersonKind::Root,
                issuer: None,
                session_name: None,
            })
        }
        "AssumedRole" => {
            let source_identity = record
                .str_at(&["userIdentity", "sessionContext", "sourceIdentity"])
                .filter(|s| !s.is_empty());
            if let (true, Some(source)) = (people.source_identity, source_identity) {
                // Set by the identity provider at sign-in, or by whoever first assumed a role
                // with sts:SetSourceIdentity; it survives role chaining, so it is what names the
                // person, but labelled.
                return Some(Person {
                    name: format!("role {}, source identity \"{source}\"", role()),
                    kind: PersonKind::SourceIdentityUser,
                    issuer: issuer_arn.or(issuer_name).map(str::to_owned),
                    session_name: Some(source.to_owned()),
                });
            }
            if issuer_name.is_some_and(|name| people.role_name_matches(name)) {
                // The session name is set by the identity provider for SAML and OIDC sign-ins
                // but by the caller for a plain AssumeRole, and the record does not say which:
                // the role names the person; the session name only comes labelled.
                let session_name = session();
                let name = match &session_name {
                    Some(session) => format!("role {}, session \"{session}\"", role()),
                    None => format!("role {}", role()),
                };
                return Some(Person {
                    name,
                    kind: PersonKind::IdpRoleUser,
                    issuer: issuer_arn.or(issuer_name).map(str::to_owned),
                    session_name,
                });
            }
            None
        }
        _ => None,
    }
}

/// Shown when a record names its person nowhere.
pub const UNKNOWN_PERSON: &str = "<unknown person>";

/// An IAM Identity Center session: issued by a role named `AWSReservedSSO_...`. Only the issuer's
/// `userName` is consulted, as in the original rule (anonymised or region-qualified ARNs vary; the role
/// name does not). An empty `sessionIssuer` is simply not SSO.
pub fn is_sso_issuer(record: &Record) -> bool {
    record
        .issuer_str("userName")
        .is_some_and(|name| name.starts_with(SSO_ROLE_PREFIX))
}

fn non_empty(s: Option<&str>) -> Option<&str> {
    s.filter(|s| !s.is_empty())
}

/// `123456789012:alice` -> `alice` (everything after the first ':').
fn after_first_colon(principal_id: &str) -> Option<&str> {
    principal_id
        .split_once(':')
        .map(|(_, rest)| rest)
        .filter(|s| !s.is_empty())
}

/// `AROA...:bob.ross` -> `bob.ross`: the second ':'-separated field, as the original rule takes it
/// (`principalId.split(":")[1]`).
fn sso_session_name(principal_id: &str) -> Option<&str> {
    principal_id.split(':').nth(1).filter(|s| !s.is_empty())
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
    names_update_function_code(json) || UNICODE_ESCAPE_FINDER.find(json).is_some()
}

/// [`may_match`] for JSON that holds no `\u` escape (as the fast decoder proves of the records it
/// reads, see `input::RecordVisitor::record_checked`): then the name can only appear as written,
/// and one literal search is the whole prefilter.
pub fn names_update_function_code(json: &[u8]) -> bool {
    EVENT_NAME_FINDER.find(json).is_some()
}
