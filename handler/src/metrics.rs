//! The function's own metrics, as CloudWatch Embedded Metric Format (EMF) lines on stdout.
//!
//! On Lambda, every stdout line reaches the function's log group, and CloudWatch Logs turns a line
//! that is an EMF document into a metric: no SDK call, no extra permission, no latency added to the
//! invocation. Each metric is one JSON object on one line:
//!
//! ```json
//! {"_aws":{"Timestamp":1767225600000,"CloudWatchMetrics":[{"Namespace":"LambdaCodeWatch",
//!  "Dimensions":[["FunctionName"]],"Metrics":[{"Name":"CanaryHeartbeat","Unit":"Count"}]}]},
//!  "FunctionName":"lambda-code-watch-CodeWatchFunction-abc","CanaryHeartbeat":1}
//! ```
//!
//! (shown wrapped; it is written on one line). Besides the heartbeat, every invocation writes one
//! document with its counts ([`Counts`]: events seen, alerts published, suppressed, grouped,
//! duplicates dropped, publish failures, expired suppression matches, summaries published, policy
//! refreshes rejected), and one per suppressed or expired-entry match with the entry as a second
//! dimension (`Suppression`), so a dashboard shows which entry hides what.
//!
//! This module only formats and writes: what is counted is decided in `lib.rs`.

use serde_json::{Map, Value, json};
use std::io::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

/// The CloudWatch namespace of every metric this function emits.
pub const NAMESPACE: &str = "LambdaCodeWatch";
/// The dimension every metric carries: the function's name, as Lambda sets it.
pub const FUNCTION_NAME_DIMENSION: &str = "FunctionName";
/// One per canary `UpdateFunctionCode` call that reached the function; the stack alarms when none
/// arrives within the expected interval.
pub const CANARY_HEARTBEAT: &str = "CanaryHeartbeat";

/// The canary's code update read from a trail log file (S3 mode): that path's heartbeat, kept
/// apart from [`CANARY_HEARTBEAT`] so each path's silence is noticed on its own.
pub const TRAIL_CANARY_HEARTBEAT: &str = "TrailCanaryHeartbeat";

/// An event reached the function (each invocation with a CloudTrail event).
pub const EVENTS_SEEN: &str = "EventsSeen";
/// An alert was published (delivered at once: the first of its window, or grouping off).
pub const ALERTS_PUBLISHED: &str = "AlertsPublished";
/// The rule fired but a policy entry hid the alert (also per entry, dimension `Suppression`).
pub const SUPPRESSED: &str = "Suppressed";
/// An alert was counted into its key's open window instead of published.
pub const GROUPED: &str = "Grouped";
/// A repeated delivery of an event already handled, dropped.
pub const DUPLICATES_DROPPED: &str = "DuplicatesDropped";
/// A publish (alert or summary) failed after the SDK's retries; the invocation failed.
pub const PUBLISH_FAILURES: &str = "PublishFailures";
/// An expired policy entry matched an alert (which was delivered; also per entry).
pub const EXPIRED_SUPPRESSION_MATCHES: &str = "ExpiredSuppressionMatches";
/// A closed window's summary was published.
pub const SUMMARIES_PUBLISHED: &str = "SummariesPublished";
/// A refreshed policy document was refused (the last good one stays in force).
pub const POLICY_REJECTED: &str = "PolicyRejected";
/// The event store (DynamoDB) failed; the alert was published unrecorded.
pub const STORE_ERRORS: &str = "StoreErrors";
/// A trail log file read to the end (S3 mode).
pub const TRAIL_FILES_READ: &str = "TrailFilesRead";
/// A trail log file that failed its message (unreadable, damaged, or an alert not delivered).
pub const TRAIL_FILES_FAILED: &str = "TrailFilesFailed";
/// A notified object that is not a log file of the trail (digest, Insights, another prefix).
pub const TRAIL_FILES_SKIPPED: &str = "TrailFilesSkipped";
/// CloudTrail records read from trail log files.
pub const TRAIL_RECORDS_READ: &str = "TrailRecordsRead";
/// The second dimension of per-entry metrics: the entry's name (`suppress[1]`).
pub const SUPPRESSION_DIMENSION: &str = "Suppression";

/// One invocation's counts; zero counts are written too, so sums and alarms see every invocation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub events_seen: u64,
    pub alerts_published: u64,
    pub suppressed: u64,
    pub grouped: u64,
    pub duplicates_dropped: u64,
    pub publish_failures: u64,
    pub expired_suppression_matches: u64,
    pub summaries_published: u64,
    pub policy_rejected: u64,
    pub store_errors: u64,
    pub trail_files_read: u64,
    pub trail_files_failed: u64,
    pub trail_files_skipped: u64,
    pub trail_records_read: u64,
}

impl Counts {
    fn named(&self) -> [(&'static str, u64); 14] {
        [
            (EVENTS_SEEN, self.events_seen),
            (ALERTS_PUBLISHED, self.alerts_published),
            (SUPPRESSED, self.suppressed),
            (GROUPED, self.grouped),
            (DUPLICATES_DROPPED, self.duplicates_dropped),
            (PUBLISH_FAILURES, self.publish_failures),
            (
                EXPIRED_SUPPRESSION_MATCHES,
                self.expired_suppression_matches,
            ),
            (SUMMARIES_PUBLISHED, self.summaries_published),
            (POLICY_REJECTED, self.policy_rejected),
            (STORE_ERRORS, self.store_errors),
            (TRAIL_FILES_READ, self.trail_files_read),
            (TRAIL_FILES_FAILED, self.trail_files_failed),
            (TRAIL_FILES_SKIPPED, self.trail_files_skipped),
            (TRAIL_RECORDS_READ, self.trail_records_read),
        ]
    }
}

/// The counts of one invocation as one EMF document, dimension `FunctionName`.
pub fn counts_document(function_name: &str, counts: &Counts, timestamp_ms: u64) -> String {
    let named = counts.named();
    let mut document = Map::new();
    document.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [[FUNCTION_NAME_DIMENSION]],
                "Metrics": named.iter().map(|(name, _)| json!({"Name": name, "Unit": "Count"})).collect::<Vec<_>>(),
            }],
        }),
    );
    document.insert(FUNCTION_NAME_DIMENSION.into(), Value::from(function_name));
    for (name, value) in named {
        document.insert(name.into(), Value::from(value));
    }
    Value::Object(document).to_string()
}

/// One match of policy entry `entry` (`metric` is [`SUPPRESSED`] or
/// [`EXPIRED_SUPPRESSION_MATCHES`]), under dimensions `FunctionName` and `Suppression`.
pub fn entry_document(function_name: &str, metric: &str, entry: &str, timestamp_ms: u64) -> String {
    emf_document(
        metric,
        "Count",
        1.0,
        &[
            (FUNCTION_NAME_DIMENSION, function_name),
            (SUPPRESSION_DIMENSION, entry),
        ],
        timestamp_ms,
    )
}

/// Writes metric documents to stdout, one per line; a write error is returned for the caller to log.
pub fn write_documents(lines: &[String]) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    for line in lines {
        out.write_all(line.as_bytes())?;
        out.write_all(b"\n")?;
    }
    out.flush()
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or_default()
}

/// One metric value with its dimensions, as one EMF JSON document (no trailing newline).
///
/// `dimensions` become both the dimension set and top-level members, and the value sits at the
/// top level under the metric's name, as EMF requires.
pub fn emf_document(
    metric: &str,
    unit: &str,
    value: f64,
    dimensions: &[(&str, &str)],
    timestamp_ms: u64,
) -> String {
    let mut document = Map::new();
    document.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [dimensions.iter().map(|(name, _)| *name).collect::<Vec<_>>()],
                "Metrics": [{"Name": metric, "Unit": unit}],
            }],
        }),
    );
    for (name, dimension_value) in dimensions {
        document.insert((*name).into(), Value::from(*dimension_value));
    }
    // Whole counts are written as integers (1, not 1.0), as in AWS's own examples.
    let value = if value.fract() == 0.0 && value.abs() < 1e15 {
        Value::from(value as i64)
    } else {
        Value::from(value)
    };
    document.insert(metric.into(), value);
    Value::Object(document).to_string()
}

/// The heartbeat line for `function_name`, stamped `timestamp_ms`.
pub fn canary_heartbeat_document(function_name: &str, timestamp_ms: u64) -> String {
    emf_document(
        CANARY_HEARTBEAT,
        "Count",
        1.0,
        &[(FUNCTION_NAME_DIMENSION, function_name)],
        timestamp_ms,
    )
}

/// Writes one canary heartbeat to stdout, now. A write error is returned, not hidden: the caller
/// logs it (a missing heartbeat then makes the alarm fire, which is the point).
pub fn write_canary_heartbeat(function_name: &str) -> std::io::Result<()> {
    write_heartbeat(CANARY_HEARTBEAT, function_name)
}

/// Writes one heartbeat `metric` (Count 1, dimension `FunctionName`) to stdout, now.
pub fn write_heartbeat(metric: &str, function_name: &str) -> std::io::Result<()> {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or_default();
    let mut line = emf_document(
        metric,
        "Count",
        1.0,
        &[(FUNCTION_NAME_DIMENSION, function_name)],
        now_ms,
    );
    line.push('\n');
    let mut out = std::io::stdout().lock();
    out.write_all(line.as_bytes())?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_heartbeat_is_exactly_the_emf_structure() {
        let line = canary_heartbeat_document("lcw-CodeWatchFunction-x1", 1_767_225_600_000);
        assert!(!line.contains('\n'), "one line: {line}");
        let document: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(
            document,
            json!({
                "_aws": {
                    "Timestamp": 1_767_225_600_000u64,
                    "CloudWatchMetrics": [{
                        "Namespace": "LambdaCodeWatch",
                        "Dimensions": [["FunctionName"]],
                        "Metrics": [{"Name": "CanaryHeartbeat", "Unit": "Count"}]
                    }]
                },
                "FunctionName": "lcw-CodeWatchFunction-x1",
                "CanaryHeartbeat": 1
            })
        );
        // EMF needs an integer millisecond timestamp and a number as the value.
        assert!(document["_aws"]["Timestamp"].is_u64());
        assert!(document["CanaryHeartbeat"].is_i64());
    }

    #[test]
    fn every_dimension_is_a_top_level_member_and_values_keep_their_fraction() {
        let line = emf_document(
            "AlertLatency",
            "Milliseconds",
            12.5,
            &[("FunctionName", "f"), ("Region", "eu-west-1")],
            7,
        );
        let document: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(
            document["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["FunctionName", "Region"]])
        );
        assert_eq!(document["FunctionName"], "f");
        assert_eq!(document["Region"], "eu-west-1");
        assert_eq!(document["AlertLatency"], 12.5);
    }

    #[test]
    fn counts_are_one_document_with_every_metric() {
        let counts = Counts {
            events_seen: 1,
            suppressed: 1,
            ..Counts::default()
        };
        let document: Value = serde_json::from_str(&counts_document("f", &counts, 5)).unwrap();
        let directive = &document["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "LambdaCodeWatch");
        assert_eq!(directive["Dimensions"], json!([["FunctionName"]]));
        let names: Vec<&str> = directive["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["Name"].as_str().unwrap())
            .collect();
        for (name, _) in counts.named() {
            assert!(names.contains(&name), "{name}");
            assert!(document[name].is_u64(), "{name} has a value");
        }
        assert_eq!(document[SUPPRESSED], 1);
        assert_eq!(document[GROUPED], 0);
        let entry: Value =
            serde_json::from_str(&entry_document("f", SUPPRESSED, "suppress[2]", 5)).unwrap();
        assert_eq!(
            entry["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["FunctionName", "Suppression"]])
        );
        assert_eq!(entry["Suppression"], "suppress[2]");
        assert_eq!(entry[SUPPRESSED], 1);
    }

    #[test]
    fn names_with_quotes_stay_valid_json() {
        let line = canary_heartbeat_document("a\"b\nc", 1);
        let document: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(document["FunctionName"], "a\"b\nc");
        assert!(!line.contains('\n'));
    }
}
