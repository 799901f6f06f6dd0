//! The organisation trail as a safety net: CloudTrail log files read from S3, as they are written.
//!
//! EventBridge's CloudTrail delivery is best effort (late or missing events, no signal); the
//! trail's log files are not. With `TRAIL_BUCKET` set, the function also takes:
//! - an SQS batch (`{"Records": [{"eventSource": "aws:sqs", ...}]}`) whose messages are S3 event
//!   notifications (`ObjectCreated:*`), or EventBridge "Object Created" events that a rule put on
//!   the queue; each message is judged alone and a failed one is named in `batchItemFailures`;
//! - an EventBridge "Object Created" event invoking the function directly (one file; a failure
//!   fails the invocation).
//!
//! Each log file is read from S3 as a stream through the library's decoder (gzip found by its
//! bytes, bounded memory), and every record that can be a Lambda code update is handed to the
//! same per-record path as the EventBridge events ([`crate::handle_record`]: the one `Detector`,
//! the exactly-once claim by `eventID`, grouping). So both paths share one table: the first to
//! claim an event publishes it, the other finds it completed, and an event EventBridge dropped is
//! still caught here.
//!
//! A message fails (and SQS retries it, then keeps it in the dead-letter queue) when its file
//! cannot be read whole (missing, refused, cut, not gzip, over the inflated-size limit), holds a
//! part that is not a record, or holds an alert that was not delivered. Alerts of the same file
//! that were delivered are completed in the table, so the retry does not publish them again.
//! Digest files, Insights files and keys outside the trail's `AWSLogs/` are skipped.
//!
//! This module decides nothing about records (the detector does), delivers nothing itself, and
//! does not list buckets (that is `scan s3://`, in the library).

use crate::metrics::Counts;
use crate::store::Store;
use crate::{Clock, Pipeline, Summary};
use lambda_code_watch::input::{self, Limits, RecordVisitor};
use lambda_code_watch::sink::AlertSink;
use lambda_code_watch::{Detector, Outcome, QuietReason};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::io::Read;
use std::ops::ControlFlow;
use std::sync::Mutex;
use tracing::Instrument as _;

/// The trail's bucket. Set: S3 notifications are read (and only of this bucket); unset: they
/// fail, as a function that is not told which bucket it watches cannot tell a misrouted
/// notification from its own.
pub const TRAIL_BUCKET_VARIABLE: &str = "TRAIL_BUCKET";
/// The trail's S3 key prefix (as the trail's `S3KeyPrefix`), empty when it has none.
pub const TRAIL_PREFIX_VARIABLE: &str = "TRAIL_PREFIX";
/// The `detail-type` of S3's events on EventBridge for a new object.
pub const OBJECT_CREATED_DETAIL_TYPE: &str = "Object Created";

/// Which trail's files the function reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trail {
    pub bucket: String,
    /// The trail's key prefix, without slashes at either end; empty when it has none.
    pub prefix: String,
}

impl Trail {
    /// Checks the bucket name (S3's rules for new buckets, which CloudTrail requires) and the
    /// prefix; `Err` names the setting that is wrong and says how.
    pub fn new(bucket: &str, prefix: &str) -> Result<Trail, (&'static str, String)> {
        let valid_bucket = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
            && bucket.starts_with(|c: char| c.is_ascii_alphanumeric())
            && bucket.ends_with(|c: char| c.is_ascii_alphanumeric());
        if !valid_bucket {
            return Err((
                TRAIL_BUCKET_VARIABLE,
                format!(
                    "{bucket:?} is not an S3 bucket name (3 to 63 of a-z, 0-9, '-' and '.', \
                     beginning and ending with a letter or digit)"
                ),
            ));
        }
        let prefix = prefix.trim_matches('/');
        if prefix.split('/').any(|part| part == "AWSLogs") {
            return Err((
                TRAIL_PREFIX_VARIABLE,
                format!(
                    "{prefix:?} contains AWSLogs: give the trail's own key prefix (CloudTrail \
                     adds AWSLogs/ below it), or nothing when the trail has none"
                ),
            ));
        }
        Ok(Trail {
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
        })
    }

    /// `PREFIX/AWSLogs/` (or `AWSLogs/`): where CloudTrail writes this trail's files.
    pub fn logs_root(&self) -> String {
        match self.prefix.is_empty() {
            true => "AWSLogs/".to_owned(),
            false => format!("{}/AWSLogs/", self.prefix),
        }
    }

    /// Why `key` is not a log file of this trail to read, or `None` when it is one:
    /// `PREFIX/AWSLogs/[o-ORGID/]ACCOUNT/CloudTrail/REGION/YYYY/MM/DD/NAME.json.gz`.
    pub fn skip_reason(&self, key: &str) -> Option<&'static str> {
        let Some(rest) = key.strip_prefix(&self.logs_root()) else {
            return Some("outside the trail's AWSLogs/ prefix");
        };
        let parts: Vec<&str> = rest.split('/').collect();
        let service = match parts.first() {
            Some(org) if org.starts_with("o-") => parts.get(2),
            _ => parts.get(1),
        };
        match service.copied() {
            Some("CloudTrail") if key.ends_with(".json.gz") => None,
            Some("CloudTrail") => Some("not a .json.gz log file"),
            Some("CloudTrail-Digest") => Some("a digest file"),
            Some("CloudTrail-Insight") => Some("an Insights file"),
            _ => Some("not a CloudTrail log file"),
        }
    }
}

/// One object a notification names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRef {
    pub bucket: String,
    pub key: String,
    /// The bucket's region, as the notification gives it.
    pub region: Option<String>,
}

/// What one notification asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notification {
    /// New objects (S3's notification may hold several).
    Created(Vec<ObjectRef>),
    /// S3's `s3:TestEvent`, sent when notifications are configured: nothing to read.
    Test,
}

/// Reads an S3 event notification (S3's own shape, keys URL-encoded) or an EventBridge "Object
/// Created" event (keys as they are); `Err` says what the message is instead.
pub fn parse_notification(body: &Value) -> Result<Notification, String> {
    if body.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
        return Ok(Notification::Test);
    }
    if is_object_created(body) {
        let detail = &body["detail"];
        let bucket = detail["bucket"]["name"].as_str();
        let key = detail["object"]["key"].as_str();
        let (Some(bucket), Some(key)) = (bucket, key) else {
            return Err(
                "an \"Object Created\" event without detail.bucket.name and detail.object.key"
                    .to_owned(),
            );
        };
        return Ok(Notification::Created(vec![ObjectRef {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            region: body["region"].as_str().map(str::to_owned),
        }]));
    }
    let Some(records) = body.get("Records").and_then(Value::as_array) else {
        return Err(format!(
            "not an S3 event notification nor an \"Object Created\" event (a JSON {} without \
             Records)",
            lambda_code_watch::record::json_type_name(body)
        ));
    };
    let mut objects = Vec::with_capacity(records.len());
    for (index, record) in records.iter().enumerate() {
        if record["eventSource"].as_str() != Some("aws:s3") {
            return Err(format!(
                "Records[{index}] is not an S3 event (eventSource {})",
                record["eventSource"]
            ));
        }
        let event = record["eventName"].as_str().unwrap_or("");
        if !event.starts_with("ObjectCreated:") {
            return Err(format!(
                "Records[{index}] is {event:?}, not ObjectCreated: the bucket notification \
                 sends more than new objects"
            ));
        }
        let bucket = record["s3"]["bucket"]["name"].as_str();
        let key = record["s3"]["object"]["key"].as_str();
        let (Some(bucket), Some(key)) = (bucket, key) else {
            return Err(format!(
                "Records[{index}] has no s3.bucket.name and s3.object.key"
            ));
        };
        objects.push(ObjectRef {
            bucket: bucket.to_owned(),
            key: decode_key(key).map_err(|e| format!("Records[{index}]: key {key:?}: {e}"))?,
            region: record["awsRegion"].as_str().map(str::to_owned),
        });
    }
    Ok(Notification::Created(objects))
}

/// S3 notifications carry keys form-encoded (`+` for a space, `%XX` for the rest).
fn decode_key(key: &str) -> Result<String, String> {
    let spaced = key.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .map(|k| k.into_owned())
        .map_err(|e| format!("not UTF-8 once decoded: {e}"))
}

/// An EventBridge event from S3 for a new object.
pub fn is_object_created(payload: &Value) -> bool {
    payload.get("source").and_then(Value::as_str) == Some("aws.s3")
        && payload.get("detail-type").and_then(Value::as_str) == Some(OBJECT_CREATED_DETAIL_TYPE)
}

/// An SQS batch from an event source mapping: every element of `Records` is an SQS message. (A
/// CloudTrail log file also has `Records`, but of CloudTrail records, whose `eventSource` is a
/// service's domain, never `aws:sqs`.)
pub fn is_sqs_batch(payload: &Value) -> bool {
    payload
        .get("Records")
        .and_then(Value::as_array)
        .is_some_and(|records| {
            !records.is_empty()
                && records
                    .iter()
                    .all(|r| r.get("eventSource").and_then(Value::as_str) == Some("aws:sqs"))
        })
}

/// Opens objects for reading.
pub trait ObjectSource {
    /// The bytes of `object`, as a blocking reader (the decoder runs on a blocking thread).
    /// `Err` says why it cannot be read (missing, refused, unreachable).
    fn open(
        &self,
        object: &ObjectRef,
    ) -> impl Future<Output = Result<Box<dyn Read + Send>, String>> + Send;
}

/// Objects in S3, one client per bucket region (a trail bucket is often in another region than
/// the function, and S3 answers for a bucket only in its own).
pub struct S3Objects {
    config: aws_types::SdkConfig,
    clients: Mutex<HashMap<String, aws_sdk_s3::Client>>,
}

impl S3Objects {
    pub fn new(config: aws_types::SdkConfig) -> S3Objects {
        S3Objects {
            config,
            clients: Mutex::default(),
        }
    }

    fn client(&self, region: Option<&str>) -> aws_sdk_s3::Client {
        let region = region
            .map(str::to_owned)
            .or_else(|| self.config.region().map(|r| r.as_ref().to_owned()))
            .unwrap_or_else(|| "us-east-1".to_owned());
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        clients
            .entry(region.clone())
            .or_insert_with(|| {
                let mut builder = aws_sdk_s3::config::Builder::from(&self.config)
                    .region(aws_types::region::Region::new(region));
                // S3-compatible endpoints (moto, MinIO) serve buckets by path, not by name.
                if self.config.endpoint_url().is_some() {
                    builder = builder.force_path_style(true);
                }
                aws_sdk_s3::Client::from_conf(builder.build())
            })
            .clone()
    }
}

impl ObjectSource for S3Objects {
    async fn open(&self, object: &ObjectRef) -> Result<Box<dyn Read + Send>, String> {
        use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
        let response = self
            .client(object.region.as_deref())
            .get_object()
            .bucket(&object.bucket)
            .key(&object.key)
            .send()
            .await
            .map_err(|e| match &e {
                SdkError::ServiceError(service) => format!(
                    "GetObject failed: {} (HTTP {}){}",
                    service.err().code().unwrap_or("error"),
                    service.raw().status().as_u16(),
                    service
                        .err()
                        .message()
                        .map(|m| format!(": {m}"))
                        .unwrap_or_default()
                ),
                _ => format!("GetObject failed: {}", DisplayErrorContext(&e)),
            })?;
        let body = Box::pin(response.body.into_async_read());
        Ok(Box::new(tokio_util::io::SyncIoBridge::new(body)))
    }
}

/// Lambda's partial batch response: the messages to retry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct BatchResponse {
    #[serde(rename = "batchItemFailures")]
    pub batch_item_failures: Vec<BatchItemFailure>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchItemFailure {
    #[serde(rename = "itemIdentifier")]
    pub item_identifier: String,
}

/// What reading one notification's files did (the answer to a direct "Object Created" event).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct FilesSummary {
    pub verdict: String,
    pub files_read: u64,
    pub files_skipped: u64,
    pub records: u64,
    /// Records the detector had to look at (Lambda code updates).
    pub candidates: u64,
    /// Alerts published now (the first path to claim them).
    pub published: u64,
    /// Alerts already delivered (by the EventBridge path, or an earlier try of this file).
    pub duplicates: u64,
    pub grouped: u64,
    pub suppressed: u64,
}

/// Why a file (and so its message) failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileError {
    pub error_type: &'static str,
    pub message: String,
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// The trail settings and where objects come from.
pub struct TrailFiles<'a, O> {
    pub trail: &'a Trail,
    pub objects: &'a O,
    /// Bounds on one file (the inflated size cap).
    pub limits: Limits,
}

/// Handles every message of an SQS batch alone: a failed one is named in the answer, the others
/// are done. `Err` only when a message cannot even be named (no `messageId`): then the whole batch
/// fails and is retried.
pub(crate) async fn handle_batch<S: AlertSink, T: Store, O: ObjectSource>(
    pipeline: &Pipeline<'_, S, T>,
    files: &TrailFiles<'_, O>,
    payload: &Value,
    clock: Clock,
    counts: &mut Counts,
    entries: &mut Vec<(&'static str, String)>,
) -> Result<BatchResponse, String> {
    let messages = payload["Records"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let mut response = BatchResponse::default();
    for (index, message) in messages.iter().enumerate() {
        let Some(id) = message["messageId"].as_str().filter(|id| !id.is_empty()) else {
            return Err(format!(
                "SQS message {index} has no messageId, so it cannot be retried alone"
            ));
        };
        let span = tracing::info_span!("sqs_message", message_id = id);
        let result = async {
            let body = message["body"]
                .as_str()
                .ok_or_else(|| FileError {
                    error_type: "UndecodableNotification",
                    message: "the SQS message has no body".to_owned(),
                })
                .and_then(|body| {
                    serde_json::from_str::<Value>(body).map_err(|e| FileError {
                        error_type: "UndecodableNotification",
                        message: format!("the SQS message body is not JSON: {e}"),
                    })
                })?;
            handle_notification(pipeline, files, &body, clock, counts, entries).await
        }
        .instrument(span)
        .await;
        if let Err(e) = result {
            tracing::error!(
                verdict = "error",
                error_type = e.error_type,
                message_id = id,
                error = %e,
                "SQS message failed: SQS makes it visible again, then keeps it in the dead-letter queue"
            );
            response.batch_item_failures.push(BatchItemFailure {
                item_identifier: id.to_owned(),
            });
        }
    }
    Ok(response)
}

/// Reads every log file a notification names. The first file that fails does not stop the
/// others; the notification fails if any did.
pub(crate) async fn handle_notification<S: AlertSink, T: Store, O: ObjectSource>(
    pipeline: &Pipeline<'_, S, T>,
    files: &TrailFiles<'_, O>,
    body: &Value,
    clock: Clock,
    counts: &mut Counts,
    entries: &mut Vec<(&'static str, String)>,
) -> Result<FilesSummary, FileError> {
    let objects = match parse_notification(body) {
        Ok(Notification::Created(objects)) => objects,
        Ok(Notification::Test) => {
            tracing::info!(verdict = "skipped", "S3 test event: nothing to read");
            return Ok(FilesSummary {
                verdict: "trail-files".into(),
                ..FilesSummary::default()
            });
        }
        Err(message) => {
            return Err(FileError {
                error_type: "UndecodableNotification",
                message,
            });
        }
    };
    let mut summary = FilesSummary {
        verdict: "trail-files".into(),
        ..FilesSummary::default()
    };
    let mut first_error = None;
    for object in &objects {
        if object.bucket != files.trail.bucket {
            counts.trail_files_failed += 1;
            first_error.get_or_insert(FileError {
                error_type: "OtherBucket",
                message: format!(
                    "s3://{}/{}: a notification for bucket {:?}, but this function reads the \
                     trail bucket {:?} ({TRAIL_BUCKET_VARIABLE}): check where the bucket \
                     notification points",
                    object.bucket, object.key, object.bucket, files.trail.bucket
                ),
            });
            continue;
        }
        if let Some(reason) = files.trail.skip_reason(&object.key) {
            counts.trail_files_skipped += 1;
            summary.files_skipped += 1;
            tracing::info!(
                verdict = "skipped",
                bucket = object.bucket.as_str(),
                key = object.key.as_str(),
                reason,
                "not a log file of the trail"
            );
            continue;
        }
        let span = tracing::info_span!(
            "trail_file",
            bucket = object.bucket.as_str(),
            key = object.key.as_str()
        );
        let result = read_file(
            pipeline,
            files,
            object,
            clock,
            counts,
            entries,
            &mut summary,
        )
        .instrument(span)
        .await;
        match result {
            Ok(()) => counts.trail_files_read += 1,
            Err(e) => {
                counts.trail_files_failed += 1;
                tracing::error!(
                    verdict = "error",
                    error_type = e.error_type,
                    bucket = object.bucket.as_str(),
                    key = object.key.as_str(),
                    error = %e,
                    "trail file not read to the end"
                );
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(summary),
    }
}

/// What the decoding thread hands to the delivering side.
enum Found {
    /// A record the detector must see through the whole path (a Lambda code update).
    Candidate(Value),
    /// A part of the file that is not a record.
    Damaged { line: u64, reason: String },
}

/// Runs on the blocking thread: counts records, keeps those the detector does not rule out as
/// another API (the literal prefilter first, so most are never parsed), and sends them on.
struct Sorter {
    detector: Detector,
    sender: tokio::sync::mpsc::Sender<Found>,
    records: u64,
}

impl Sorter {
    fn send(&mut self, found: Found) -> ControlFlow<()> {
        match self.sender.blocking_send(found) {
            Ok(()) => ControlFlow::Continue(()),
            // The delivering side stopped (the invocation is failing): stop reading.
            Err(_) => ControlFlow::Break(()),
        }
    }
}

impl RecordVisitor for Sorter {
    fn record(&mut self, json: &[u8], line: u64) -> ControlFlow<()> {
        self.records += 1;
        match self.detector.assess_validated(json) {
            Ok(Outcome::Quiet(QuietReason::OtherApi)) => ControlFlow::Continue(()),
            Ok(_) => match serde_json::from_slice(json) {
                Ok(value) => self.send(Found::Candidate(value)),
                Err(e) => self.send(Found::Damaged {
                    line,
                    reason: e.to_string(),
                }),
            },
            Err(e) => self.send(Found::Damaged {
                line,
                reason: e.to_string(),
            }),
        }
    }

    fn error(&mut self, line: u64, reason: &str) -> ControlFlow<()> {
        self.send(Found::Damaged {
            line,
            reason: reason.to_owned(),
        })
    }
}

/// Reads one log file: decoding on a blocking thread, each candidate record through
/// [`crate::handle_record`] as it is found. Every candidate is handled even after one failed, so
/// one undeliverable alert does not hold back the others of its file.
async fn read_file<S: AlertSink, T: Store, O: ObjectSource>(
    pipeline: &Pipeline<'_, S, T>,
    files: &TrailFiles<'_, O>,
    object: &ObjectRef,
    clock: Clock,
    counts: &mut Counts,
    entries: &mut Vec<(&'static str, String)>,
    summary: &mut FilesSummary,
) -> Result<(), FileError> {
    let reader = files
        .objects
        .open(object)
        .await
        .map_err(|message| FileError {
            error_type: "TrailFileUnreadable",
            message: format!("s3://{}/{}: {message}", object.bucket, object.key),
        })?;
    let (sender, mut receiver) = tokio::sync::mpsc::channel(64);
    let mut sorter = Sorter {
        detector: pipeline.detector.clone(),
        sender,
        records: 0,
    };
    let limits = files.limits;
    let decoding = tokio::task::spawn_blocking(move || {
        let result = input::decode_with_limits(reader, &mut sorter, &limits);
        (result, sorter.records)
    });
    // The first of each kind and how many: a file of a million damaged lines must not hold a
    // million messages.
    let mut damaged = FirstAndCount::default();
    let mut not_delivered = FirstAndCount::default();
    let mut candidates = 0;
    while let Some(found) = receiver.recv().await {
        match found {
            Found::Damaged { line, reason } => damaged.add(|| (line, reason)),
            Found::Candidate(record) => {
                candidates += 1;
                counts.events_seen += 1;
                match crate::handle_record(
                    pipeline,
                    record,
                    crate::Arrival::TrailFile,
                    clock,
                    counts,
                    entries,
                )
                .await
                {
                    Ok(event) => tally(summary, &event),
                    Err(e) => not_delivered.add(|| e.to_string()),
                }
            }
        }
    }
    let (result, records) = decoding.await.map_err(|e| FileError {
        error_type: "TrailFileUnreadable",
        message: format!(
            "s3://{}/{}: the decoding thread failed: {e}",
            object.bucket, object.key
        ),
    })?;
    summary.records += records;
    summary.candidates += candidates;
    counts.trail_records_read += records;
    summary.files_read += 1;
    tracing::info!(
        verdict = "trail-file",
        records,
        candidates,
        damaged = damaged.count,
        not_delivered = not_delivered.count,
        "trail file read"
    );
    let place = format!("s3://{}/{}", object.bucket, object.key);
    if let Err(e) = result {
        return Err(FileError {
            error_type: "TrailFileUnreadable",
            message: format!("{place}: read stopped after {records} records: {e}"),
        });
    }
    if let Some(first) = &not_delivered.first {
        return Err(FileError {
            error_type: "AlertNotDelivered",
            message: format!(
                "{place}: {} of its alerts not handled (retried with the message; those \
                 delivered are not published again): {first}",
                not_delivered.count
            ),
        });
    }
    if let Some((line, reason)) = &damaged.first {
        return Err(FileError {
            error_type: "TrailFileDamaged",
            message: format!(
                "{place}: {} parts are not CloudTrail records, the first at line {line}: {reason}",
                damaged.count
            ),
        });
    }
    Ok(())
}

/// The first of a kind of problem and how many there were.
struct FirstAndCount<T> {
    first: Option<T>,
    count: u64,
}

impl<T> Default for FirstAndCount<T> {
    fn default() -> Self {
        FirstAndCount {
            first: None,
            count: 0,
        }
    }
}

impl<T> FirstAndCount<T> {
    fn add(&mut self, make: impl FnOnce() -> T) {
        self.count += 1;
        if self.first.is_none() {
            self.first = Some(make());
        }
    }
}

fn tally(summary: &mut FilesSummary, event: &Summary) {
    match (event.verdict.as_str(), event.delivery.as_deref()) {
        ("alert", Some("published" | "published-unrecorded")) => summary.published += 1,
        ("alert", Some("duplicate")) => summary.duplicates += 1,
        ("alert", Some("grouped")) => summary.grouped += 1,
        ("suppressed", _) => summary.suppressed += 1,
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;
    use lambda_code_watch::Alert;
    use lambda_code_watch::grouping::{GroupSummary, Window};
    use lambda_code_watch::sink::{DeliveryError, Receipt};
    use serde_json::json;
    use std::collections::HashSet;
    use std::io::{Cursor, Write as _};

    const BUCKET: &str = "org-trail-logs";
    const LOG_KEY: &str = "trail/AWSLogs/o-a1b2c3d4e5/111122223333/CloudTrail/us-east-1/2026/01/02/111122223333_CloudTrail_us-east-1_20260102T0000Z_abc.json.gz";

    /// Remembers what it delivered; refuses the events named in `refuse`.
    #[derive(Default)]
    struct Sink {
        delivered: Mutex<Vec<Alert>>,
        refuse: Mutex<HashSet<String>>,
    }

    impl AlertSink for Sink {
        async fn deliver(&self, alert: &Alert) -> Result<Receipt, DeliveryError> {
            let id = alert.event_id.clone().unwrap_or_default();
            if self.refuse.lock().unwrap().contains(&id) {
                return Err(DeliveryError::new("fake-topic", "refused"));
            }
            self.delivered.lock().unwrap().push(alert.clone());
            Ok(Receipt {
                message_id: Some(format!("m-{id}")),
                truncated_bytes: 0,
            })
        }
        async fn deliver_summary(&self, _: &GroupSummary) -> Result<Receipt, DeliveryError> {
            Ok(Receipt::default())
        }
    }

    impl Sink {
        fn ids(&self) -> Vec<String> {
            let delivered = self.delivered.lock().unwrap();
            delivered
                .iter()
                .map(|a| a.event_id.clone().unwrap_or_default())
                .collect()
        }
    }

    /// Objects in memory, by key.
    #[derive(Default)]
    struct Objects(HashMap<String, Vec<u8>>);

    impl ObjectSource for Objects {
        async fn open(&self, object: &ObjectRef) -> Result<Box<dyn Read + Send>, String> {
            match self.0.get(&object.key) {
                Some(bytes) => Ok(Box::new(Cursor::new(bytes.clone()))),
                None => Err("GetObject failed: NoSuchKey (HTTP 404)".to_owned()),
            }
        }
    }

    fn person(event_id: &str, user: &str) -> Value {
        json!({
            "eventVersion": "1.08",
            "userIdentity": {"type": "IAMUser", "principalId": "AIDAEXAMPLE", "accountId": "111122223333",
                             "arn": format!("arn:aws:iam::111122223333:user/{user}"), "userName": user},
            "eventTime": "2026-01-02T00:00:00Z", "eventSource": "lambda.amazonaws.com",
            "eventName": "UpdateFunctionCode20150331v2", "awsRegion": "us-east-1",
            "requestParameters": {"functionName": "production-api"},
            "responseElements": {"functionName": "production-api"},
            "eventID": event_id, "recipientAccountId": "111122223333"
        })
    }

    fn other_api(n: usize) -> Value {
        json!({"eventVersion": "1.08", "eventSource": "s3.amazonaws.com", "eventName": "GetObject",
               "eventID": format!("other-{n}"), "userIdentity": {"type": "IAMUser", "userName": "x"}})
    }

    fn log_file(records: &[Value]) -> Vec<u8> {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(json!({"Records": records}).to_string().as_bytes())
            .unwrap();
        gz.finish().unwrap()
    }

    fn s3_notification(key: &str) -> Value {
        let encoded = key.replace(' ', "+");
        json!({"Records": [{"eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
            "eventName": "ObjectCreated:Put",
            "s3": {"bucket": {"name": BUCKET, "arn": format!("arn:aws:s3:::{BUCKET}")},
                   "object": {"key": encoded, "size": 1234}}}]})
    }

    fn sqs_batch(messages: &[(&str, Value)]) -> Value {
        json!({"Records": messages.iter().map(|(id, body)| json!({
            "messageId": id, "receiptHandle": "r", "body": body.to_string(),
            "eventSource": "aws:sqs", "awsRegion": "us-east-1",
            "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:lcw-trail-files"
        })).collect::<Vec<_>>()})
    }

    fn trail() -> Trail {
        Trail::new(BUCKET, "trail/").unwrap()
    }

    struct World {
        detector: Detector,
        sink: Sink,
        store: MemoryStore,
        objects: Objects,
        trail: Trail,
    }

    impl World {
        fn new(files: &[(&str, Vec<u8>)]) -> World {
            World {
                detector: Detector::default(),
                sink: Sink::default(),
                store: MemoryStore::default(),
                objects: Objects(
                    files
                        .iter()
                        .map(|(k, v)| ((*k).to_owned(), v.clone()))
                        .collect(),
                ),
                trail: trail(),
            }
        }

        async fn invoke(
            &self,
            payload: Value,
            now: i64,
        ) -> Result<crate::Response, crate::InvocationError> {
            let pipeline = Pipeline {
                detector: &self.detector,
                sink: &self.sink,
                store: &self.store,
                window: Window::minutes(0),
                function_name: "code-watch-fn",
            };
            let files = TrailFiles {
                trail: &self.trail,
                objects: &self.objects,
                limits: Limits::default(),
            };
            let clock = Clock {
                now,
                lease_until: now + 60,
            };
            crate::handle_invocation(&pipeline, Some(&files), payload, clock).await
        }
    }

    fn failures(response: &crate::Response) -> Vec<String> {
        match response {
            crate::Response::Batch(batch) => batch
                .batch_item_failures
                .iter()
                .map(|f| f.item_identifier.clone())
                .collect(),
            other => panic!("not a batch response: {other:?}"),
        }
    }

    #[test]
    fn notifications_are_read_in_both_shapes_and_keys_decoded() {
        let key = "trail/AWSLogs/111122223333/CloudTrail/us-east-1/2026/01/02/a b+c.json.gz";
        let mut s3 = s3_notification("x");
        s3["Records"][0]["s3"]["object"]["key"] =
            json!("trail/AWSLogs/111122223333/CloudTrail/us-east-1/2026/01/02/a+b%2Bc.json.gz");
        let expected = ObjectRef {
            bucket: BUCKET.to_owned(),
            key: key.to_owned(),
            region: Some("us-east-1".to_owned()),
        };
        assert_eq!(
            parse_notification(&s3),
            Ok(Notification::Created(vec![expected.clone()]))
        );
        let eventbridge = json!({"version": "0", "id": "1", "detail-type": "Object Created",
            "source": "aws.s3", "account": "999988887777", "region": "us-east-1",
            "detail": {"bucket": {"name": BUCKET}, "object": {"key": key, "size": 10}}});
        assert!(is_object_created(&eventbridge));
        assert_eq!(
            parse_notification(&eventbridge),
            Ok(Notification::Created(vec![expected]))
        );
        let test = json!({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": BUCKET});
        assert_eq!(parse_notification(&test), Ok(Notification::Test));
        let mut removed = s3_notification("k");
        removed["Records"][0]["eventName"] = json!("ObjectRemoved:Delete");
        assert!(
            parse_notification(&removed)
                .unwrap_err()
                .contains("ObjectRemoved")
        );
        assert!(parse_notification(&json!({"hello": 1})).is_err());
        assert!(parse_notification(&json!({"Records": [person("e", "u")]})).is_err());
    }

    #[test]
    fn an_sqs_batch_is_told_from_a_cloudtrail_log_file() {
        assert!(is_sqs_batch(&sqs_batch(&[("m1", json!({}))])));
        assert!(!is_sqs_batch(&json!({"Records": [person("e1", "alice")]})));
        assert!(!is_sqs_batch(&json!({"Records": []})));
        assert!(!is_sqs_batch(&person("e1", "alice")));
    }

    #[test]
    fn only_log_files_of_the_trail_are_read() {
        let trail = trail();
        assert_eq!(trail.skip_reason(LOG_KEY), None);
        let single = "trail/AWSLogs/111122223333/CloudTrail/eu-west-1/2026/01/02/f.json.gz";
        assert_eq!(trail.skip_reason(single), None);
        for (key, reason) in [
            (
                "trail/AWSLogs/o-a1b2c3d4e5/111122223333/CloudTrail-Digest/us-east-1/2026/01/02/d.json.gz",
                "a digest file",
            ),
            (
                "trail/AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2026/01/02/d.json.gz",
                "a digest file",
            ),
            (
                "trail/AWSLogs/111122223333/CloudTrail-Insight/us-east-1/2026/01/02/i.json.gz",
                "an Insights file",
            ),
            (
                "other/AWSLogs/111122223333/CloudTrail/us-east-1/f.json.gz",
                "outside the trail's AWSLogs/ prefix",
            ),
            (
                "AWSLogs/111122223333/CloudTrail/us-east-1/f.json.gz",
                "outside the trail's AWSLogs/ prefix",
            ),
            (
                "trail/AWSLogs/111122223333/CloudTrail/us-east-1/",
                "not a .json.gz log file",
            ),
            (
                "trail/AWSLogs/111122223333/elasticloadbalancing/us-east-1/x.log.gz",
                "not a CloudTrail log file",
            ),
        ] {
            assert_eq!(trail.skip_reason(key), Some(reason), "{key}");
        }
        let bare = Trail::new(BUCKET, "").unwrap();
        assert_eq!(bare.logs_root(), "AWSLogs/");
        assert!(Trail::new("Org_Trail", "").is_err());
        assert!(Trail::new(BUCKET, "trail/AWSLogs").is_err());
    }

    #[tokio::test]
    async fn a_file_alerts_once_and_an_event_already_delivered_by_eventbridge_not_again() {
        let world = World::new(&[(
            LOG_KEY,
            log_file(&[other_api(1), person("e-1", "alice"), other_api(2)]),
        )]);
        // The EventBridge path got there first: the file finds it completed.
        let envelope = json!({"version": "0", "id": "env-1", "detail-type": "AWS API Call via CloudTrail",
            "source": "aws.lambda", "detail": person("e-1", "alice")});
        let first = world.invoke(envelope, 1000).await.unwrap();
        assert!(
            matches!(first, crate::Response::Event(ref s) if s.delivery.as_deref() == Some("published"))
        );
        let response = world
            .invoke(sqs_batch(&[("m1", s3_notification(LOG_KEY))]), 1300)
            .await
            .unwrap();
        assert_eq!(failures(&response), Vec::<String>::new());
        assert_eq!(world.sink.ids(), ["e-1"]);
        // Dropped by EventBridge: caught from the file alone.
        let other = "trail/AWSLogs/111122223333/CloudTrail/us-east-1/2026/01/02/b.json.gz";
        let world = World::new(&[(other, log_file(&[person("e-2", "bob")]))]);
        let response = world
            .invoke(
                json!({"version": "0", "id": "1", "detail-type": "Object Created", "source": "aws.s3",
                       "region": "us-east-1",
                       "detail": {"bucket": {"name": BUCKET}, "object": {"key": other}}}),
                1000,
            )
            .await
            .unwrap();
        match response {
            crate::Response::Files(files) => {
                assert_eq!(
                    (
                        files.files_read,
                        files.records,
                        files.candidates,
                        files.published
                    ),
                    (1, 1, 1, 1)
                )
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(world.sink.ids(), ["e-2"]);
    }

    #[tokio::test]
    async fn a_missing_or_damaged_file_fails_only_its_own_message() {
        let good = "trail/AWSLogs/111122223333/CloudTrail/us-east-1/2026/01/02/good.json.gz";
        let cut = "trail/AWSLogs/111122223333/CloudTrail/us-east-1/2026/01/02/cut.json.gz";
        let broken = "trail/AWSLogs/111122223333/CloudTrail/us-east-1/2026/01/02/broken.json.gz";
        let missing = "trail/AWSLogs/111122223333/CloudTrail/us-east-1/2026/01/02/missing.json.gz";
        let digest = "trail/AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2026/01/02/d.json.gz";
        let whole = log_file(&[person("e-1", "alice")]);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"{\"Records\": [{\"eventID\": \"x\", oops}]}")
            .unwrap();
        let world = World::new(&[
            (good, whole.clone()),
            (cut, whole[..whole.len() / 2].to_vec()),
            (broken, gz.finish().unwrap()),
        ]);
        let response = world
            .invoke(
                sqs_batch(&[
                    ("m-missing", s3_notification(missing)),
                    ("m-good", s3_notification(good)),
                    ("m-cut", s3_notification(cut)),
                    ("m-broken", s3_notification(broken)),
                    ("m-digest", s3_notification(digest)),
                    (
                        "m-test",
                        json!({"Service": "Amazon S3", "Event": "s3:TestEvent"}),
                    ),
                    ("m-garbage", json!("hello")),
                ]),
                1000,
            )
            .await
            .unwrap();
        assert_eq!(
            failures(&response),
            ["m-missing", "m-cut", "m-broken", "m-garbage"]
        );
        assert_eq!(world.sink.ids(), ["e-1"]);
    }

    #[tokio::test]
    async fn a_file_of_many_damaged_parts_reports_the_first_and_how_many_and_still_alerts() {
        let key = "trail/AWSLogs/111122223333/CloudTrail/us-east-1/2026/01/02/damaged.json.gz";
        let mut text = String::new();
        for n in 0..500 {
            text.push_str(&format!("{{\"eventID\": \"bad-{n}\", oops}}\n"));
        }
        text.push_str(&person("e-1", "alice").to_string());
        text.push('\n');
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(text.as_bytes()).unwrap();
        let world = World::new(&[(key, gz.finish().unwrap())]);
        let pipeline = Pipeline {
            detector: &world.detector,
            sink: &world.sink,
            store: &world.store,
            window: Window::minutes(0),
            function_name: "code-watch-fn",
        };
        let files = TrailFiles {
            trail: &world.trail,
            objects: &world.objects,
            limits: Limits::default(),
        };
        let clock = Clock {
            now: 1000,
            lease_until: 1060,
        };
        let error = handle_notification(
            &pipeline,
            &files,
            &s3_notification(key),
            clock,
            &mut Counts::default(),
            &mut Vec::new(),
        )
        .await
        .unwrap_err();
        assert_eq!(error.error_type, "TrailFileDamaged");
        assert!(
            error
                .message
                .contains("500 parts are not CloudTrail records, the first at line 1:"),
            "{error}"
        );
        assert_eq!(world.sink.ids(), ["e-1"]);
    }

    #[tokio::test]
    async fn a_file_whose_first_publish_fails_publishes_each_alert_once_across_the_retry() {
        let world = World::new(&[(
            LOG_KEY,
            log_file(&[person("e-1", "alice"), other_api(1), person("e-2", "bob")]),
        )]);
        world.sink.refuse.lock().unwrap().insert("e-1".to_owned());
        let batch = sqs_batch(&[("m1", s3_notification(LOG_KEY))]);
        let response = world.invoke(batch.clone(), 1000).await.unwrap();
        assert_eq!(failures(&response), ["m1"]);
        assert_eq!(
            world.sink.ids(),
            ["e-2"],
            "the other alert is not held back"
        );
        world.sink.refuse.lock().unwrap().clear();
        let retry = world.invoke(batch.clone(), 1100).await.unwrap();
        assert_eq!(failures(&retry), Vec::<String>::new());
        let again = world.invoke(batch, 1200).await.unwrap();
        assert_eq!(failures(&again), Vec::<String>::new());
        assert_eq!(world.sink.ids(), ["e-2", "e-1"]);
    }

    #[tokio::test]
    async fn notifications_of_another_bucket_or_without_a_trail_fail_loudly() {
        let world = World::new(&[]);
        let mut elsewhere = s3_notification(LOG_KEY);
        elsewhere["Records"][0]["s3"]["bucket"]["name"] = json!("someone-elses-bucket");
        let response = world
            .invoke(sqs_batch(&[("m1", elsewhere)]), 1000)
            .await
            .unwrap();
        assert_eq!(failures(&response), ["m1"]);

        let (detector, sink, store) =
            (Detector::default(), Sink::default(), MemoryStore::default());
        let pipeline = Pipeline {
            detector: &detector,
            sink: &sink,
            store: &store,
            window: Window::minutes(0),
            function_name: "",
        };
        let error = crate::handle_invocation::<_, _, Objects>(
            &pipeline,
            None,
            sqs_batch(&[("m1", s3_notification(LOG_KEY))]),
            Clock {
                now: 1,
                lease_until: 2,
            },
        )
        .await
        .unwrap_err();
        assert_eq!(error.error_type(), "TrailNotConfigured");
        assert!(error.to_string().contains(TRAIL_BUCKET_VARIABLE), "{error}");
        let unnamed = json!({"Records": [{"eventSource": "aws:sqs", "body": "{}"}]});
        let error = world.invoke(unnamed, 1).await.unwrap_err();
        assert_eq!(error.error_type(), "UndecodableBatch");
    }

    #[tokio::test]
    async fn a_gzip_bomb_is_cut_at_the_limit_and_fails_its_message() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(b"{\"Records\": [").unwrap();
        gz.write_all(&vec![b' '; 4 << 20]).unwrap();
        gz.write_all(b"]}").unwrap();
        let world = World::new(&[(LOG_KEY, gz.finish().unwrap())]);
        let pipeline = Pipeline {
            detector: &world.detector,
            sink: &world.sink,
            store: &world.store,
            window: Window::minutes(0),
            function_name: "",
        };
        let files = TrailFiles {
            trail: &world.trail,
            objects: &world.objects,
            limits: Limits {
                max_inflated_bytes: 1 << 20,
            },
        };
        let error = crate::handle_invocation(
            &pipeline,
            Some(&files),
            json!({"detail-type": "Object Created", "source": "aws.s3",
                   "detail": {"bucket": {"name": BUCKET}, "object": {"key": LOG_KEY}}}),
            Clock {
                now: 1,
                lease_until: 2,
            },
        )
        .await
        .unwrap_err();
        assert_eq!(error.error_type(), "TrailFileUnreadable", "{error}");
    }
}
