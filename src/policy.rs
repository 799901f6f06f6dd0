//! The tuning policy: a reviewed TOML document that widens who counts as a person (`[people]`) and
//! hides alerts a team has accepted (`[[suppress]]`), read the same way by `scan --policy` and by
//! the Lambda function.
//!
//! ```toml
//! [people]
//! role_names = ["okta-*"]          # AssumedRole sessions whose issuer role name matches
//! source_identity = true           # AssumedRole sessions that carry a sourceIdentity
//! root = true                      # the account root user
//! identity_center_users = true     # IdentityCenterUser identities and onBehalfOf sessions
//!
//! [[suppress]]
//! reason = "CloudFormation deploys are reviewed in the pipeline"
//! invoked_by = "cloudformation.amazonaws.com"
//! accounts = ["111122223333"]
//! expires = "2027-06-30"
//! ```
//!
//! Parsing is serde (`deny_unknown_fields`) over `toml`; matchers are `globset` globs and `ipnet`
//! networks. Every mistake is an error naming the file, the line and the key, found when the
//! policy is loaded, never later: a policy that loads is one that can be applied to any record.
//! An empty document is [`Policy::default`]: the original rule, exactly.
//!
//! This module owns parsing, validation and matching one alert against the entries. It does not
//! decide who is a person (that is `rule::person`, which reads [`People`]), nor apply the policy
//! (that is `Detector`), nor read files from AWS (the handler does).

use crate::alert::Alert;
use crate::record::Record;
use globset::{Glob, GlobSet, GlobSetBuilder};
use ipnet::IpNet;
use jiff::civil::Date;
use serde::Deserialize;
use std::fmt;
use std::net::IpAddr;
use std::ops::Range;
use toml::Spanned;

/// Who counts as a person beyond the original rule's IAM users, federated users and
/// `AWSReservedSSO_` sessions. The default adds no one.
#[derive(Debug, Clone, Default)]
pub struct People {
    /// AssumedRole sessions whose issuer role name (`sessionIssuer.userName`) matches one of these
    /// globs: roles people reach through a SAML or OIDC identity provider (`okta-*`, `AzureAD-*`).
    pub role_names: Option<GlobSet>,
    /// The `role_names` globs as written, for messages.
    pub role_name_patterns: Vec<String>,
    /// AssumedRole sessions that carry `sessionContext.sourceIdentity`.
    pub source_identity: bool,
    /// The account's root user.
    pub root: bool,
    /// `userIdentity.type` `IdentityCenterUser`, and any session acting `onBehalfOf` an IAM Identity
    /// Center user (trusted identity propagation).
    pub identity_center_users: bool,
}

impl People {
    /// Whether `name` (an issuer role name) is one of `role_names`.
    pub fn role_name_matches(&self, name: &str) -> bool {
        self.role_names
            .as_ref()
            .is_some_and(|set| set.is_match(name))
    }

    /// True when these settings add nobody to the original rule.
    pub fn is_original(&self) -> bool {
        self.role_names.is_none()
            && !self.source_identity
            && !self.root
            && !self.identity_center_users
    }
}

/// One `[[suppress]]` entry: alerts matching every given matcher are not delivered.
#[derive(Debug, Clone)]
pub struct Suppression {
    /// 1-based position in the file: the entry's name in logs, metrics and summaries
    /// (`suppress[1]`).
    pub number: usize,
    /// Why the team accepts these alerts (required).
    pub reason: String,
    /// Line of the entry's `[[suppress]]` header.
    pub line: usize,
    /// Last day (UTC) on which the entry suppresses; `None`: no end.
    pub expires: Option<Date>,
    invoked_by: Option<GlobSet>,
    accounts: Option<Vec<String>>,
    functions: Option<GlobSet>,
    principals: Option<GlobSet>,
    source_ips: Option<Vec<IpNet>>,
    user_agents: Option<GlobSet>,
}

impl Suppression {
    /// The entry's name: `suppress[N]`.
    pub fn name(&self) -> String {
        format!("suppress[{}]", self.number)
    }

    /// Whether the entry has expired on `today` (it suppresses through its `expires` day).
    pub fn expired_on(&self, today: Date) -> bool {
        self.expires.is_some_and(|last| today > last)
    }

    /// Whether every matcher the entry gives matches this alert (and its record).
    pub fn matches(&self, record: &Record, alert: &Alert) -> bool {
        let glob = |set: &Option<GlobSet>, value: Option<&str>| match set {
            None => true,
            Some(set) => value.is_some_and(|v| set.is_match(v)),
        };
        glob(&self.invoked_by, record.identity_str("invokedBy"))
            && self.accounts.as_ref().is_none_or(|accounts| {
                alert
                    .account_id
                    .as_deref()
                    .is_some_and(|id| accounts.iter().any(|a| a == id))
            })
            && glob(&self.functions, Some(&alert.function_name))
            && self.principals.as_ref().is_none_or(|set| {
                // The identity's own ARN, or the ARN of what issued the session (the role of an
                // SSO or SAML session, the IAM user behind a federation token).
                [record.identity_str("arn"), record.issuer_str("arn")]
                    .into_iter()
                    .flatten()
                    .any(|arn| set.is_match(arn))
            })
            && self.source_ips.as_ref().is_none_or(|networks| {
                record
                    .source_ip()
                    .and_then(|ip| ip.parse::<IpAddr>().ok())
                    .is_some_and(|ip| networks.iter().any(|net| net.contains(&ip)))
            })
            && glob(&self.user_agents, record.user_agent())
    }
}

/// A loaded, checked policy. `Policy::default()` is the original rule.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// Where the document came from (a file name, an SSM parameter), for messages.
    pub source: String,
    pub people: People,
    pub suppressions: Vec<Suppression>,
}

/// A policy that cannot be used: where and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError {
    /// The file (or parameter) name.
    pub source: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// The key at fault, as a path (`suppress[2].source_ips`), when known.
    pub key: Option<String>,
    pub message: String,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.source)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        f.write_str(": ")?;
        if let Some(key) = &self.key {
            write!(f, "{key}: ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for PolicyError {}

// ----------------------------------------------------------------------------- the document

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    #[serde(default)]
    people: Option<PeopleDocument>,
    #[serde(default)]
    suppress: Vec<Spanned<SuppressDocument>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PeopleDocument {
    #[serde(default)]
    role_names: Vec<Spanned<String>>,
    #[serde(default)]
    source_identity: bool,
    #[serde(default)]
    root: bool,
    #[serde(default)]
    identity_center_users: bool,
}

/// A list of patterns, each with its place in the file.
type Patterns = Spanned<Vec<Spanned<String>>>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SuppressDocument {
    reason: Option<Spanned<String>>,
    /// A TOML date (`2027-06-30`) or a string (`"2027-06-30"`).
    expires: Option<Spanned<toml::Value>>,
    /// One service principal (`cloudformation.amazonaws.com`), or a glob of them.
    invoked_by: Option<Spanned<String>>,
    accounts: Option<Patterns>,
    functions: Option<Patterns>,
    principals: Option<Patterns>,
    source_ips: Option<Patterns>,
    user_agents: Option<Patterns>,
}

/// The matcher keys of `[[suppress]]`, for the "at least one" message.
pub const MATCHER_KEYS: [&str; 6] = [
    "invoked_by",
    "accounts",
    "functions",
    "principals",
    "source_ips",
    "user_agents",
];

impl Policy {
    /// Reads a policy document; `source` names it in errors (a path, an SSM parameter name).
    pub fn parse(source: &str, text: &str) -> Result<Policy, PolicyError> {
        let at = |span: Option<Range<usize>>, key: Option<String>, message: String| PolicyError {
            source: source.to_owned(),
            line: span.map(|s| line_of(text, s.start)),
            key,
            message,
        };
        let document: Document = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| line_of(text, s.start));
            PolicyError {
                source: source.to_owned(),
                line,
                key: line.and_then(|l| section_at(text, l)),
                message: e.message().trim().to_owned(),
            }
        })?;

        let mut people = People::default();
        if let Some(doc) = document.people {
            people.source_identity = doc.source_identity;
            people.root = doc.root;
            people.identity_center_users = doc.identity_center_users;
            if !doc.role_names.is_empty() {
                people.role_names = Some(globs(&doc.role_names, |span, message| {
                    at(Some(span), Some("people.role_names".into()), message)
                })?);
                people.role_name_patterns =
                    doc.role_names.iter().map(|g| g.get_ref().clone()).collect();
            }
        }

        let mut suppressions = Vec::new();
        for (index, entry) in document.suppress.into_iter().enumerate() {
            let number = index + 1;
            let entry_span = entry.span();
            let entry = entry.into_inner();
            let key = |name: &str| Some(format!("suppress[{number}].{name}"));
            let fail = |span: Range<usize>, name: &str, message: String| {
                at(Some(span), key(name), message)
            };
            let reason = match entry.reason {
                Some(reason) if !reason.get_ref().trim().is_empty() => {
                    reason.into_inner().trim().to_owned()
                }
                Some(reason) => {
                    return Err(fail(
                        reason.span(),
                        "reason",
                        "is empty: say why these alerts may be hidden".into(),
                    ));
                }
                None => {
                    return Err(at(
                        Some(entry_span),
                        Some(format!("suppress[{number}]")),
                        "has no reason: every entry must say why its alerts may be hidden \
                         (reason = \"...\")"
                            .into(),
                    ));
                }
            };
            let line = line_of(text, entry_span.start);
            let matcher_given = entry.invoked_by.is_some()
                || [
                    &entry.accounts,
                    &entry.functions,
                    &entry.principals,
                    &entry.source_ips,
                    &entry.user_agents,
                ]
                .iter()
                .any(|m| m.is_some());
            if !matcher_given {
                return Err(at(
                    Some(entry_span),
                    Some(format!("suppress[{number}]")),
                    format!(
                        "has no matcher, so it would hide every alert: give at least one of {}",
                        MATCHER_KEYS.join(", ")
                    ),
                ));
            }
            let glob_key = |value: Option<Patterns>, name: &str| {
                value
                    .map(|v| {
                        let span = v.span();
                        let items = v.into_inner();
                        if items.is_empty() {
                            return Err(fail(span, name, "is an empty list: it would match nothing; remove it or give a value".into()));
                        }
                        globs(&items, |span, message| fail(span, name, message))
                    })
                    .transpose()
            };
            let invoked_by = entry
                .invoked_by
                .map(|one| globs(&[one], |span, message| fail(span, "invoked_by", message)))
                .transpose()?;
            let functions = glob_key(entry.functions, "functions")?;
            let principals = glob_key(entry.principals, "principals")?;
            let user_agents = glob_key(entry.user_agents, "user_agents")?;
            let accounts = entry
                .accounts
                .map(|v| {
                    let span = v.span();
                    let items = v.into_inner();
                    if items.is_empty() {
                        return Err(fail(
                            span,
                            "accounts",
                            "is an empty list: it would match nothing; remove it or give a value"
                                .into(),
                        ));
                    }
                    items
                        .into_iter()
                        .map(|account| {
                            let valid = account.get_ref().len() == 12
                                && account.get_ref().bytes().all(|b| b.is_ascii_digit());
                            if valid {
                                Ok(account.into_inner())
                            } else {
                                Err(fail(
                                    account.span(),
                                    "accounts",
                                    format!(
                                        "{:?} is not an AWS account id (12 digits)",
                                        account.get_ref()
                                    ),
                                ))
                            }
                        })
                        .collect::<Result<Vec<_>, _>>()
                })
                .transpose()?;
            let source_ips = entry
                .source_ips
                .map(|v| {
                    let span = v.span();
                    let items = v.into_inner();
                    if items.is_empty() {
                        return Err(fail(span, "source_ips", "is an empty list: it would match nothing; remove it or give a value".into()));
                    }
                    items
                        .into_iter()
                        .map(|cidr| network(cidr.get_ref()).ok_or_else(|| {
                            fail(
                                cidr.span(),
                                "source_ips",
                                format!(
                                    "{:?} is not an IP network (CIDR such as 10.0.0.0/8 or 2001:db8::/32) nor an IP address",
                                    cidr.get_ref()
                                ),
                            )
                        }))
                        .collect::<Result<Vec<_>, _>>()
                })
                .transpose()?;
            let expires = entry
                .expires
                .map(|value| {
                    let span = value.span();
                    date(value.into_inner()).map_err(|message| fail(span, "expires", message))
                })
                .transpose()?;
            suppressions.push(Suppression {
                number,
                reason,
                line,
                expires,
                invoked_by,
                accounts,
                functions,
                principals,
                source_ips,
                user_agents,
            });
        }
        Ok(Policy {
            source: source.to_owned(),
            people,
            suppressions,
        })
    }

    /// Reads and checks the policy file at `path`.
    pub fn load(path: &std::path::Path) -> Result<Policy, PolicyError> {
        let source = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| PolicyError {
            source: source.clone(),
            line: None,
            key: None,
            message: format!("cannot read the policy: {e}"),
        })?;
        Policy::parse(&source, &text)
    }

    /// True when the policy changes nothing: the original rule.
    pub fn is_original(&self) -> bool {
        self.people.is_original() && self.suppressions.is_empty()
    }

    /// The entries that have expired on `today`.
    pub fn expired_on(&self, today: Date) -> impl Iterator<Item = &Suppression> {
        self.suppressions
            .iter()
            .filter(move |s| s.expired_on(today))
    }
}

/// Today's date in UTC: what `expires` is compared with.
pub fn today_utc() -> Date {
    jiff::tz::Offset::UTC
        .to_datetime(jiff::Timestamp::now())
        .date()
}

fn globs(
    patterns: &[Spanned<String>],
    error: impl Fn(Range<usize>, String) -> PolicyError,
) -> Result<GlobSet, PolicyError> {
    let mut builder = GlobSetBuilder::new();
    for pattern in patterns {
        if pattern.get_ref().is_empty() {
            return Err(error(
                pattern.span(),
                "an empty pattern matches nothing".into(),
            ));
        }
        let glob = Glob::new(pattern.get_ref()).map_err(|e| {
            error(
                pattern.span(),
                format!("invalid glob {:?}: {e}", pattern.get_ref()),
            )
        })?;
        builder.add(glob);
    }
    builder
        .build()
        .map_err(|e| error(patterns[0].span(), format!("invalid globs: {e}")))
}

/// A CIDR, or a single address as its /32 or /128.
fn network(text: &str) -> Option<IpNet> {
    text.parse::<IpNet>()
        .ok()
        .or_else(|| text.parse::<IpAddr>().ok().map(IpNet::from))
}

fn date(value: toml::Value) -> Result<Date, String> {
    let datetime = match value {
        toml::Value::Datetime(datetime) => datetime,
        toml::Value::String(text) => text.parse::<toml::value::Datetime>().map_err(|_| {
            format!("{text:?} is not a date: write it as YYYY-MM-DD (e.g. \"2027-06-30\")")
        })?,
        other => {
            return Err(format!(
                "{other} is not a date: write it as YYYY-MM-DD (e.g. \"2027-06-30\")"
            ));
        }
    };
    let (Some(day), None) = (datetime.date, datetime.time) else {
        return Err(format!(
            "{datetime} is not a plain date: write it as YYYY-MM-DD (the entry suppresses through that day, UTC)"
        ));
    };
    let year = i16::try_from(day.year).map_err(|e| format!("{datetime}: {e}"))?;
    Date::new(year, day.month as i8, day.day as i8)
        .map_err(|e| format!("{datetime} is not a calendar date: {e}"))
}

/// 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// The table a line belongs to (`people`, `suppress[2]`), read from the headers above it: names
/// the key's place in serde's own errors (unknown keys, wrong types).
fn section_at(text: &str, line: usize) -> Option<String> {
    let mut section = None;
    let mut suppress_count = 0;
    for (number, raw) in text.lines().enumerate() {
        if number + 1 > line {
            break;
        }
        let trimmed = raw.trim();
        if trimmed.starts_with("[[") {
            let name = trimmed.trim_start_matches("[[").split("]]").next()?.trim();
            if name == "suppress" {
                suppress_count += 1;
                section = Some(format!("suppress[{suppress_count}]"));
            } else {
                section = Some(name.to_owned());
            }
        } else if trimmed.starts_with('[') {
            section = Some(
                trimmed
                    .trim_start_matches('[')
                    .split(']')
                    .next()?
                    .trim()
                    .to_owned(),
            );
        }
    }
    section
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(text: &str) -> PolicyError {
        Policy::parse("policy.toml", text).unwrap_err()
    }

    #[test]
    fn an_empty_document_is_the_original_rule() {
        let policy = Policy::parse("p", "").unwrap();
        assert!(policy.is_original());
        let policy = Policy::parse("p", "# nothing\n[people]\n").unwrap();
        assert!(policy.is_original());
    }

    #[test]
    fn unknown_keys_name_the_file_line_and_table() {
        let e = error("[people]\nroot = true\nroles = [\"x\"]\n");
        assert_eq!(e.line, Some(3), "{e}");
        assert_eq!(e.key.as_deref(), Some("people"), "{e}");
        assert!(e.to_string().starts_with("policy.toml:3: people: "), "{e}");
        assert!(e.message.contains("roles"), "{e}");

        let e = error(
            "[[suppress]]\nreason = \"r\"\nfunctions = [\"a\"]\n\n[[suppress]]\nreason = \"r\"\nfunction = [\"b\"]\n",
        );
        assert_eq!(e.line, Some(7), "{e}");
        assert_eq!(e.key.as_deref(), Some("suppress[2]"), "{e}");
        assert!(e.message.contains("function"), "{e}");

        let e = error("[tuning]\nx = 1\n");
        assert_eq!(e.line, Some(1), "{e}");
        assert!(e.message.contains("tuning"), "{e}");
    }

    #[test]
    fn bad_values_name_their_key_and_line() {
        let cases = [
            (
                "[people]\nrole_names = [\"okta-[\"]\n",
                2,
                "people.role_names",
                "invalid glob",
            ),
            (
                "[[suppress]]\nreason = \"r\"\nfunctions = [\"a\", \"b{\"]\n",
                3,
                "suppress[1].functions",
                "invalid glob",
            ),
            (
                "[[suppress]]\nreason = \"r\"\nsource_ips = [\"10.0.0.0/33\"]\n",
                3,
                "suppress[1].source_ips",
                "not an IP network",
            ),
            (
                "[[suppress]]\nreason = \"r\"\naccounts = [\"1234\"]\n",
                3,
                "suppress[1].accounts",
                "12 digits",
            ),
            (
                "[[suppress]]\nreason = \"r\"\nfunctions = [\"a\"]\nexpires = \"30/06/2027\"\n",
                4,
                "suppress[1].expires",
                "YYYY-MM-DD",
            ),
            (
                "[[suppress]]\nreason = \"r\"\nfunctions = [\"a\"]\nexpires = \"2027-02-30\"\n",
                4,
                "suppress[1].expires",
                "2027-02-30",
            ),
            (
                "[[suppress]]\nreason = \"r\"\nfunctions = [\"a\"]\nexpires = 2027-06-30T10:00:00Z\n",
                4,
                "suppress[1].expires",
                "plain date",
            ),
            (
                "[[suppress]]\nreason = \"r\"\nfunctions = []\n",
                3,
                "suppress[1].functions",
                "empty list",
            ),
            (
                "[[suppress]]\nreason = \"  \"\nfunctions = [\"a\"]\n",
                2,
                "suppress[1].reason",
                "empty",
            ),
            (
                "\n[[suppress]]\nfunctions = [\"a\"]\n",
                2,
                "suppress[1]",
                "no reason",
            ),
            (
                "[[suppress]]\nreason = \"everything\"\n",
                1,
                "suppress[1]",
                "no matcher",
            ),
        ];
        for (text, line, key, says) in cases {
            let e = error(text);
            assert_eq!(e.line, Some(line), "{text}: {e}");
            assert_eq!(e.key.as_deref(), Some(key), "{text}: {e}");
            assert!(e.message.contains(says), "{text}: {e}");
            assert!(
                e.to_string()
                    .starts_with(&format!("policy.toml:{line}: {key}: ")),
                "{e}"
            );
        }
    }

    #[test]
    fn wrong_types_are_errors_with_a_line() {
        let e = error("[people]\nroot = \"yes\"\n");
        assert_eq!(e.line, Some(2), "{e}");
        let e = error("[[suppress]]\nreason = \"r\"\naccounts = 111122223333\n");
        assert_eq!(e.line, Some(3), "{e}");
    }

    #[test]
    fn expiry_is_inclusive_of_its_day() {
        let policy = Policy::parse(
            "p",
            "[[suppress]]\nreason = \"r\"\nfunctions = [\"a\"]\nexpires = 2027-06-30\n",
        )
        .unwrap();
        let entry = &policy.suppressions[0];
        let day = |d| Date::new(2027, 6, d).unwrap();
        assert!(!entry.expired_on(day(30)));
        assert!(entry.expired_on(Date::new(2027, 7, 1).unwrap()));
        assert!(!entry.expired_on(day(1)));
        assert_eq!(entry.line, 1);
        assert_eq!(entry.name(), "suppress[1]");
    }
}
