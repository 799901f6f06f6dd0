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
//! (shown wrapped; it is written on one line). This module only formats and writes: what counts as a
//! heartbeat is decided in `lib.rs`.

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
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or_default();
    let mut line = canary_heartbeat_document(function_name, now_ms);
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
    fn names_with_quotes_stay_valid_json() {
        let line = canary_heartbeat_document("a\"b\nc", 1);
        let document: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(document["FunctionName"], "a\"b\nc");
        assert!(!line.contains('\n'));
    }
}
