//! What an alert looks like on SNS, within what SNS accepts: the Subject, the structured message,
//! the message attributes, FIFO ids, and the topic ARN setting.
//!
//! SNS rejects a publish whose Subject is not printable ASCII on one line of at most 100 characters,
//! whose message (with its attributes) exceeds 256 KiB, whose attribute values are empty, or that
//! has more than 10 attributes. A CloudTrail record is partly attacker-controlled (user agent,
//! request parameters, even user names), so every one of these limits is enforced here, before
//! publishing, instead of letting a crafted record turn an alert into a failed invocation.
//!
//! Everything here is pure and compiles without the `lambda` feature. It does not talk to AWS (that
//! is `sns.rs`) and does not render alerts (that is `alert.rs`): oversized alerts are shrunk by
//! truncating fields of a copy and rendering that copy with the same `Alert` methods.

use crate::alert::{Alert, RULE_ID, RULE_NAME};
use crate::grouping::GroupSummary;
use serde_json::Value;
use std::fmt;

/// SNS's limit for the message plus its attributes (names, types and values), in bytes.
pub const MAX_PUBLISH_BYTES: usize = 262_144;
/// SNS's limit for the Subject, in characters (all ASCII here, so also bytes).
pub const MAX_SUBJECT_CHARS: usize = 100;
/// SNS's limit on the number of message attributes.
pub const MAX_MESSAGE_ATTRIBUTES: usize = 10;
/// Attribute values are for filter policies: a longer one is not a real account ID or region, and is
/// left out rather than truncated (a truncated value would match the wrong filters).
pub const MAX_ATTRIBUTE_VALUE_BYTES: usize = 256;
/// The Subject when the title leaves nothing printable.
pub const FALLBACK_SUBJECT: &str = RULE_NAME;
/// The only data type used for attributes.
pub const ATTRIBUTE_DATA_TYPE: &str = "String";

/// Below this length, truncating a string would mostly replace it with its marker; past this point
/// whole JSON values are replaced instead.
const MIN_STRING_CAP: usize = 256;
/// The search for the largest cap that fits stops this close to it: each step renders the whole
/// alert, and a few hundred bytes more of a megabyte-long user agent tell a responder nothing.
const CAP_PRECISION: usize = 256;

/// One publish request's content: everything but the topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnsMessage {
    /// Safe for SNS: printable ASCII, one line, 1 to 100 characters.
    pub subject: String,
    /// The `Message` parameter for `MessageStructure=json`: a JSON object with the alert document as
    /// `default` (what `sqs`, `lambda`, `https`, `firehose` and `email-json` subscribers receive) and
    /// the text rendering, with its runbook, as `email`.
    pub message: String,
    /// The alert document inside `message`: `Alert::to_json()` of the alert, or of its truncated copy.
    pub document: String,
    /// Bytes cut from oversized fields; 0 when the alert is sent whole.
    pub truncated_bytes: usize,
    /// String attributes for subscription filter policies; never empty values, at most 10.
    pub attributes: Vec<MessageAttribute>,
}

/// One `String` message attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageAttribute {
    pub name: &'static str,
    pub value: String,
}

/// The alert cannot be made to fit, even with every record-supplied field cut down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageTooLarge {
    pub smallest_bytes: usize,
    pub budget_bytes: usize,
}

impl fmt::Display for MessageTooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the alert message is {} bytes even after truncating every field taken from the record; SNS accepts {} bytes here",
            self.smallest_bytes, self.budget_bytes
        )
    }
}

impl std::error::Error for MessageTooLarge {}

impl SnsMessage {
    /// The publish content for `alert`, truncated only if it would not fit in SNS's size limit.
    pub fn for_alert(alert: &Alert) -> Result<SnsMessage, MessageTooLarge> {
        let subject = alert_subject(alert);
        let attributes = message_attributes(alert);
        let attribute_bytes: usize = attributes
            .iter()
            .map(|a| a.name.len() + ATTRIBUTE_DATA_TYPE.len() + a.value.len())
            .sum();
        // The Subject is not documented as part of the limit; counting it costs 100 bytes at most.
        let budget = MAX_PUBLISH_BYTES.saturating_sub(attribute_bytes + subject.len());
        let fitted = fit(alert, budget)?;
        Ok(SnsMessage {
            subject,
            message: fitted.message,
            document: fitted.document,
            truncated_bytes: fitted.truncated_bytes,
            attributes,
        })
    }

    /// The publish content for a grouping window's summary (small: at most
    /// [`crate::grouping::MAX_EVENT_IDS`] event ids, so it always fits).
    pub fn for_summary(summary: &GroupSummary) -> SnsMessage {
        let document = summary.to_json();
        let message =
            serde_json::json!({"default": &document, "email": summary.to_text()}).to_string();
        let attributes = [
            ("severity", summary.severity),
            ("rule_id", summary.rule_id),
            ("kind", summary.kind),
        ]
        .into_iter()
        .map(|(name, value)| MessageAttribute {
            name,
            value: value.to_owned(),
        })
        .collect();
        SnsMessage {
            subject: subject(&summary.title),
            message,
            document,
            truncated_bytes: 0,
            attributes,
        }
    }

    /// Total bytes SNS counts for this publish: message plus attributes (and the Subject, to be safe).
    pub fn publish_bytes(&self) -> usize {
        self.message.len()
            + self.subject.len()
            + self
                .attributes
                .iter()
                .map(|a| a.name.len() + ATTRIBUTE_DATA_TYPE.len() + a.value.len())
                .sum::<usize>()
    }
}

/// `title` made acceptable as an SNS Subject: printable ASCII only, on one line, at most 100
/// characters, never empty.
///
/// Runs of whitespace (line breaks, tabs, Unicode spaces) become one space; any other character
/// outside printable ASCII is escaped as `\u{e9}` rather than dropped, so `josé` and `jose` stay
/// distinguishable. A title too long is cut between characters (never inside an escape) and ends
/// with `...`. A title with nothing printable yields [`FALLBACK_SUBJECT`].
pub fn subject(title: &str) -> String {
    let out = one_ascii_line(title, MAX_SUBJECT_CHARS);
    if out.is_empty() {
        return FALLBACK_SUBJECT.to_owned();
    }
    out
}

/// The Subject of `alert`: its title ([`subject`]), after the account's name in brackets when the
/// alert has one (`[payments-prod] User [...] updated ...`), so a mail list sorted by subject shows
/// which account at a glance. The name gets at most [`MAX_SUBJECT_ACCOUNT_NAME_CHARS`] characters
/// (cut with `...`), so the title always keeps most of the 100; the same rules make both safe.
pub fn alert_subject(alert: &Alert) -> String {
    let name = alert
        .account_name
        .as_deref()
        .map(|name| one_ascii_line(name, MAX_SUBJECT_ACCOUNT_NAME_CHARS))
        .unwrap_or_default();
    if name.is_empty() {
        return subject(&alert.title);
    }
    let prefix = format!("[{name}] ");
    let title = one_ascii_line(&alert.title, MAX_SUBJECT_CHARS - prefix.len());
    let title = if title.is_empty() {
        FALLBACK_SUBJECT
    } else {
        title.as_str()
    };
    format!("{prefix}{title}")
}

/// At most this many characters of the account name go into the Subject (AWS allows 50 for an
/// account name; a mapping may hold longer ones).
pub const MAX_SUBJECT_ACCOUNT_NAME_CHARS: usize = 32;

/// `text` as printable ASCII on one line of at most `max` characters (see [`subject`]); empty when
/// nothing printable is left.
fn one_ascii_line(text: &str, max: usize) -> String {
    const ELLIPSIS: &str = "...";
    let mut out = String::with_capacity(max + 16);
    // Where `out` could be cut without splitting an escape, and still end in a non-space.
    let mut last_cut = 0;
    let mut pending_space = false;
    let mut overflowed = false;
    for c in text.chars() {
        if c.is_whitespace() {
            pending_space = !out.is_empty();
            continue;
        }
        let mut utf8 = [0u8; 4];
        let escaped;
        let piece: &str = if matches!(c, '!'..='~') {
            c.encode_utf8(&mut utf8)
        } else {
            escaped = c.escape_unicode().to_string();
            &escaped
        };
        let space = usize::from(pending_space);
        if out.len() + space + piece.len() > max {
            overflowed = true;
            break;
        }
        if pending_space {
            out.push(' ');
            pending_space = false;
        }
        out.push_str(piece);
        if out.len() + ELLIPSIS.len() <= max {
            last_cut = out.len();
        }
    }
    if overflowed {
        out.truncate(last_cut);
        out.push_str(ELLIPSIS);
    }
    out
}

/// The attributes subscribers can filter on, without empty, oversized or non-text values (SNS
/// rejects the first and the last; the second would be misleading).
pub fn message_attributes(alert: &Alert) -> Vec<MessageAttribute> {
    let candidates: [(&'static str, Option<&str>); 7] = [
        ("severity", Some(alert.severity)),
        ("rule_id", Some(alert.rule_id)),
        ("account_id", alert.account_id.as_deref()),
        ("account_name", alert.account_name.as_deref()),
        ("region", alert.region.as_deref()),
        ("actor_type", Some(alert.actor_type)),
        ("event_name", alert.event_name.as_deref()),
    ];
    candidates
        .into_iter()
        .filter_map(|(name, value)| {
            let value = value?;
            let usable = !value.trim().is_empty()
                && value.len() <= MAX_ATTRIBUTE_VALUE_BYTES
                && !value.chars().any(|c| c.is_control() || !is_xml_char(c));
            usable.then(|| MessageAttribute {
                name,
                value: value.to_owned(),
            })
        })
        .take(MAX_MESSAGE_ATTRIBUTES)
        .collect()
}

/// `MessageGroupId` for a FIFO topic: one group, so alerts keep their order.
pub fn fifo_group_id() -> &'static str {
    RULE_ID
}

/// `MessageDeduplicationId` for a FIFO topic: the CloudTrail event ID, so a retried invocation within
/// SNS's five-minute window does not alert twice. `None` when the event has no usable ID (the topic
/// then needs content-based deduplication).
pub fn fifo_deduplication_id(alert: &Alert) -> Option<&str> {
    alert
        .event_id
        .as_deref()
        .filter(|id| !id.is_empty() && id.len() <= 128 && id.chars().all(|c| c.is_ascii_graphic()))
}

/// `MessageDeduplicationId` for a summary on a FIFO topic: the same window always gets the same id
/// (its key and start), so a summary published twice within five minutes reaches subscribers once.
pub fn fifo_summary_deduplication_id(summary: &GroupSummary) -> String {
    use std::hash::{Hash, Hasher};
    // SipHash with fixed keys: stable across processes of one build, which is all a five-minute
    // deduplication window needs.
    let mut hasher = std::hash::DefaultHasher::new();
    summary.dedup_key.hash(&mut hasher);
    summary.window_start.hash(&mut hasher);
    format!("summary-{:016x}", hasher.finish())
}

/// An SNS topic ARN: `arn:<partition>:sns:<region>:<12-digit account>:<topic name>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicArn(String);

/// Why a string is not an SNS topic ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicArnError {
    value: String,
    reason: String,
}

impl fmt::Display for TopicArnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} is not an SNS topic ARN (arn:<partition>:sns:<region>:<12-digit account ID>:<topic name>): {}",
            self.value, self.reason
        )
    }
}

impl std::error::Error for TopicArnError {}

impl TopicArn {
    pub fn parse(value: &str) -> Result<TopicArn, TopicArnError> {
        let fail = |reason: &str| TopicArnError {
            value: value.to_owned(),
            reason: reason.to_owned(),
        };
        let parts: Vec<&str> = value.split(':').collect();
        let [arn, partition, service, region, account, name] = parts[..] else {
            return Err(fail(&format!(
                "expected 6 ':'-separated parts, found {}",
                parts.len()
            )));
        };
        if arn != "arn" {
            return Err(fail("it does not start with `arn:`"));
        }
        let partition_ok = partition == "aws"
            || partition.strip_prefix("aws-").is_some_and(|rest| {
                !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_lowercase() || b == b'-')
            });
        if !partition_ok {
            return Err(fail(&format!(
                "unknown partition {partition:?} (aws, aws-cn, aws-us-gov, ...)"
            )));
        }
        if service != "sns" {
            return Err(fail(&format!("service is {service:?}, not \"sns\"")));
        }
        let region_ok = region.len() >= 4
            && region.starts_with(|c: char| c.is_ascii_lowercase())
            && region.ends_with(|c: char| c.is_ascii_digit())
            && region
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !region_ok {
            return Err(fail(&format!(
                "region {region:?} is not a region name such as us-east-1"
            )));
        }
        if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
            return Err(fail(&format!(
                "account {account:?} is not a 12-digit account ID"
            )));
        }
        let base = name.strip_suffix(".fifo").unwrap_or(name);
        let name_ok = !base.is_empty()
            && name.len() <= 256
            && base
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !name_ok {
            return Err(fail(&format!(
                "topic name {name:?} must be 1 to 256 letters, digits, '-' or '_' (optionally ending in .fifo)"
            )));
        }
        Ok(TopicArn(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// FIFO topics require a message group ID on every publish.
    pub fn is_fifo(&self) -> bool {
        self.0.ends_with(".fifo")
    }

    /// The region the topic lives in: SNS answers for a topic only in its own region, so the
    /// publishing client must be built for this one, whatever region the caller runs in.
    pub fn region(&self) -> &str {
        self.0.split(':').nth(3).unwrap_or_default()
    }
}

impl fmt::Display for TopicArn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

struct Fitted {
    message: String,
    document: String,
    truncated_bytes: usize,
}

fn render(alert: &Alert) -> Fitted {
    let document = alert.to_json();
    let message = structured_message(&document, &alert.to_text());
    Fitted {
        message,
        document,
        truncated_bytes: 0,
    }
}

/// The alert, whole if it fits in `budget` bytes; otherwise a copy cut down step by step: long
/// strings first (keeping as much of each as fits), then `requestParameters`, then `userIdentity`
/// as a whole (for records whose bulk is in many small values or huge keys).
fn fit(alert: &Alert, budget: usize) -> Result<Fitted, MessageTooLarge> {
    let whole = render(alert);
    if whole.message.len() <= budget {
        return Ok(whole);
    }
    let mut smallest = whole.message.len();
    for values_dropped in 0..=2 {
        let mut base = alert.clone();
        let mut dropped_bytes = 0;
        if values_dropped >= 1 {
            dropped_bytes += replace_value(&mut base.context.request_parameters);
        }
        if values_dropped >= 2 {
            dropped_bytes += replace_value(&mut base.context.user_identity);
        }
        let longest = longest_string(&mut base);
        let attempt = |cap: usize| {
            let mut copy = base.clone();
            let cut = cap_strings(&mut copy, cap);
            let mut fitted = render(&copy);
            fitted.truncated_bytes = cut + dropped_bytes;
            fitted
        };
        let floor = attempt(MIN_STRING_CAP);
        smallest = smallest.min(floor.message.len());
        if floor.message.len() > budget {
            continue;
        }
        // Largest cap that fits: `lo` always fits, `hi` never does (or is past every string).
        let (mut lo, mut lo_fitted) = (MIN_STRING_CAP, floor);
        let mut hi = longest + 1;
        while hi > lo + CAP_PRECISION {
            let mid = lo + (hi - lo) / 2;
            let fitted = attempt(mid);
            if fitted.message.len() <= budget {
                (lo, lo_fitted) = (mid, fitted);
            } else {
                hi = mid;
            }
        }
        return Ok(lo_fitted);
    }
    Err(MessageTooLarge {
        smallest_bytes: smallest,
        budget_bytes: budget,
    })
}

/// `{"default": document, "email": text}` as JSON, escaped so SNS (which reads requests as XML
/// text) accepts every character.
fn structured_message(document: &str, text: &str) -> String {
    let mut out = String::with_capacity(document.len() + text.len() + 64);
    out.push_str("{\"default\":");
    push_json_string(&mut out, document);
    out.push_str(",\"email\":");
    push_json_string(&mut out, text);
    out.push('}');
    out
}

/// Appends `s` as a JSON string. Besides what JSON requires, escapes U+FFFE and U+FFFF: valid in Rust
/// strings and JSON, but not XML characters, which SNS rejects; as `\uFFFE` escapes they reach
/// subscribers intact.
fn push_json_string(out: &mut String, s: &str) {
    use std::fmt::Write as _;
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || !is_xml_char(c) => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// XML 1.0 `Char` (besides the C0 controls, which JSON escapes anyway).
fn is_xml_char(c: char) -> bool {
    !matches!(c, '\u{FFFE}' | '\u{FFFF}')
}

/// Calls `f` on every record-supplied string of `alert`: its free-text fields, its context's, and
/// every string inside the context's JSON values. The constants (rule metadata, runbook) are ours
/// and never visited.
fn visit_record_strings(alert: &mut Alert, f: &mut dyn FnMut(&mut String)) {
    fn in_value(value: &mut Value, f: &mut dyn FnMut(&mut String)) {
        match value {
            Value::String(s) => f(s),
            Value::Array(items) => items.iter_mut().for_each(|v| in_value(v, f)),
            Value::Object(map) => map.values_mut().for_each(|v| in_value(v, f)),
            _ => {}
        }
    }
    f(&mut alert.title);
    f(&mut alert.actor);
    f(&mut alert.function_name);
    f(&mut alert.dedup_key);
    let c = &mut alert.context;
    f(&mut c.actor_user);
    f(&mut c.function_name);
    [
        &mut alert.actor_issuer,
        &mut alert.function_arn,
        &mut alert.code_sha256,
        &mut alert.version,
        &mut alert.event_id,
        &mut alert.event_name,
        &mut alert.event_time,
        &mut alert.account_id,
        &mut alert.region,
        &mut c.event_name,
        &mut c.event_source,
        &mut c.aws_region,
        &mut c.recipient_account_id,
        &mut c.source_ip_address,
        &mut c.user_agent,
        &mut c.user_identity_type,
        &mut c.user_identity_arn,
        &mut c.access_key_id,
        &mut c.invoked_by,
    ]
    .into_iter()
    .flatten()
    .for_each(&mut *f);
    in_value(&mut c.user_identity, f);
    in_value(&mut c.request_parameters, f);
}

/// Truncates every record-supplied string of `alert` longer than `cap` bytes. Returns the bytes cut.
fn cap_strings(alert: &mut Alert, cap: usize) -> usize {
    let mut cut = 0;
    visit_record_strings(alert, &mut |s| cut += truncate_string(s, cap));
    cut
}

fn longest_string(alert: &mut Alert) -> usize {
    let mut longest = 0;
    visit_record_strings(alert, &mut |s| longest = longest.max(s.len()));
    longest
}

/// Keeps the first `cap` bytes of `s` (on a character boundary) and appends
/// `…[truncated N bytes]`, if that makes it shorter. Returns the bytes cut.
fn truncate_string(s: &mut String, cap: usize) -> usize {
    if s.len() <= cap {
        return 0;
    }
    let keep = s.floor_char_boundary(cap);
    let cut = s.len() - keep;
    let marker = format!("…[truncated {cut} bytes]");
    if keep + marker.len() >= s.len() {
        return 0;
    }
    s.truncate(keep);
    s.push_str(&marker);
    cut
}

/// Replaces a JSON value by a marker string naming its size. Returns the bytes dropped.
fn replace_value(value: &mut Value) -> usize {
    if value.is_null() {
        return 0;
    }
    let bytes = serde_json::to_string(value).map_or(0, |s| s.len());
    *value = Value::String(format!("…[truncated {bytes} bytes of JSON]"));
    bytes
}
