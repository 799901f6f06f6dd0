//! The Lambda function (package `lambda-code-watch-handler`): settings from the environment
//! (`settings.rs`), one event in, one verdict and at most one delivered alert out, one structured
//! log line per invocation.
//!
//! The function is subscribed to EventBridge's "AWS API Call via CloudTrail" events and also accepts a
//! bare CloudTrail record, so the files under `events/` can be invoked locally as they are. The
//! handler is generic over [`AlertSink`], as in the AWS runtime's `basic-sdk` example: production
//! passes the SNS sink (or stdout when no topic is set), tests pass a fake.
//!
//! Failure semantics: an event that cannot be decoded, or an alert that was not delivered, fails the
//! invocation (so Lambda's async retries and the on-failure destination keep the event); a quiet
//! verdict or a delivered alert succeeds. A function without a destination for its alerts does not
//! start at all: stdout delivery is only for local runs, and must be asked for by name.
//!
//! The stack's canary changes the code of a throwaway function every 30 minutes; when that call
//! arrives here it is quiet (reason `canary`) and recorded as a `CanaryHeartbeat` metric, so an
//! alarm notices when the path CloudTrail -> EventBridge -> this function goes silent.
//!
//! Tuning: the `Detector` is built from the tuning policy (`policy_source.rs`: an SSM parameter or a
//! file, refreshed every few minutes, the last good one kept); a suppressed alert is not delivered
//! but logged (`verdict: suppressed`, the entry and its reason) and counted per entry.
//!
//! Exactly once and grouped (with `DEDUP_TABLE`): each alert's `eventID` is claimed in the store
//! before delivery and marked completed after it (`store.rs`), so a repeated delivery is dropped
//! and a failed publish is released for Lambda's retry; alerts sharing a dedup key inside the
//! window (`DEDUP_WINDOW_MINUTES`, default 60, 0 = off) are counted, not published, by the
//! library's grouping logic (`lambda_code_watch::grouping`), and a scheduled invocation (an
//! EventBridge `Scheduled Event`) publishes one summary per closed window. A store that cannot be
//! reached never holds an alert back: the alert is published unrecorded (possibly twice), and the
//! error is logged and counted.
//!
//! Every invocation writes its counts as CloudWatch metrics (`metrics.rs`, EMF on stdout).
//!
//! This package does not decode CloudTrail records, decide, group, or render (the library does,
//! through the same envelope policy, the same `Detector` and the same grouping as `scan`), and does
//! not shape SNS messages (`lambda_code_watch::sink::sns_message`); it publishes them (`sns.rs`).

pub mod metrics;
pub mod policy_source;
pub mod sdk_config;
pub mod settings;
pub mod sns;
pub mod store;
pub mod trail;

use crate::metrics::Counts;
use crate::policy_source::{LivePolicy, ParameterReader, PolicySource, log_expired};
pub use crate::settings::{
    ACCOUNT_NAMES_VARIABLE, CANARY_ROLE_VARIABLE, CANARY_TARGET_VARIABLE, DEDUP_TABLE_VARIABLE,
    DEDUP_WINDOW_VARIABLE, DEFAULT_POLICY_REFRESH_SECONDS, DEFAULT_WINDOW_MINUTES,
    FUNCTION_NAME_VARIABLE, MAX_WINDOW_MINUTES, POLICY_FILE_VARIABLE, POLICY_PARAMETER_VARIABLE,
    POLICY_REFRESH_VARIABLE, STDOUT_VARIABLE, Settings, SettingsError, TOPIC_VARIABLE,
};
use crate::sns::{SnsSink, load_sdk_config};
use crate::store::{Claim, DynamoStore, NoStore, Saved, Store, StoreError};
use crate::trail::{BatchResponse, FilesSummary, ObjectSource, S3Objects, TrailFiles};
use lambda_code_watch::alert::Alert;
use lambda_code_watch::grouping::{self, Admission, GroupSummary, Window};
use lambda_code_watch::record::{DecodeError, Record};
use lambda_code_watch::sink::sns_message::TopicArn;
use lambda_code_watch::sink::stdout::StdoutSink;
use lambda_code_watch::sink::{AlertSink, DeliveryError};
use lambda_code_watch::{Detector, Outcome, QuietReason};
use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The `detail-type` EventBridge gives CloudTrail management events.
pub const CLOUDTRAIL_DETAIL_TYPE: &str = "AWS API Call via CloudTrail";
/// The `detail-type` of EventBridge schedules: the summary sweep.
pub const SCHEDULED_DETAIL_TYPE: &str = "Scheduled Event";

/// What one invocation did: the function's response, so `invoke` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// `alert` or `quiet`.
    pub verdict: String,
    /// Why the event stayed quiet (`other-api`, `failed-call`, `not-a-person`, `canary`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub reason: Option<String>,
    pub event_id: Option<String>,
    pub event_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub alert_title: Option<String>,
    /// The SNS message ID of the published alert.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub message_id: Option<String>,
    /// Bytes cut from oversized fields to fit SNS's limit.
    #[serde(skip_serializing_if = "is_zero", default)]
    pub truncated_bytes: usize,
    /// The policy entry that hid the alert (`suppress[N]`), with the verdict `suppressed`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub suppressed_by: Option<String>,
    /// What became of an alert: `published`, `grouped` (counted in its window), `duplicate` (a
    /// repeated delivery, dropped), `published-unrecorded` (the store failed; published anyway).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub delivery: Option<String>,
    /// With `grouped`: alerts in the window so far.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub group_count: Option<u64>,
    /// For the scheduled sweep: summaries published.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub summaries_published: Option<u64>,
}

impl Summary {
    fn new(verdict: &str) -> Summary {
        Summary {
            verdict: verdict.to_owned(),
            reason: None,
            event_id: None,
            event_name: None,
            alert_title: None,
            message_id: None,
            truncated_bytes: 0,
            suppressed_by: None,
            delivery: None,
            group_count: None,
            summaries_published: None,
        }
    }
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Why an invocation failed. Lambda reports [`InvocationError::error_type`] as `errorType`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InvocationError {
    /// The payload is not a CloudTrail record nor an EventBridge envelope around one.
    Undecodable(DecodeError),
    /// The rule fired but the alert did not reach its destination.
    NotDelivered(DeliveryError),
    /// Another invocation is delivering this event right now; Lambda's retry will find it done,
    /// or (if that invocation died) its claim expired.
    InProgress { event_id: String, lease_until: i64 },
    /// The summary sweep could not read the store (alerts are never held back by the store).
    Store(StoreError),
    /// An S3 notification arrived, but no trail is configured (`TRAIL_BUCKET` unset).
    TrailOff,
    /// A trail file named by a direct "Object Created" event was not read to the end, or one
    /// of its alerts was not delivered.
    TrailFile(trail::FileError),
    /// An SQS batch that cannot be answered message by message.
    Batch(String),
}

impl InvocationError {
    pub fn error_type(&self) -> &'static str {
        match self {
            InvocationError::Undecodable(_) => "UndecodableEvent",
            InvocationError::NotDelivered(_) => "AlertNotDelivered",
            InvocationError::InProgress { .. } => "EventInProgress",
            InvocationError::Store(_) => "StoreUnavailable",
            InvocationError::TrailOff => "TrailNotConfigured",
            InvocationError::TrailFile(e) => e.error_type,
            InvocationError::Batch(_) => "UndecodableBatch",
        }
    }
}

impl fmt::Display for InvocationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InvocationError::Undecodable(e) => write!(f, "event not decoded: {e}"),
            InvocationError::NotDelivered(e) => e.fmt(f),
            InvocationError::InProgress {
                event_id,
                lease_until,
            } => write!(
                f,
                "event {event_id} is being delivered by another invocation (its claim runs \
                 until {}); retry later",
                grouping::rfc3339(*lease_until)
            ),
            InvocationError::Store(e) => e.fmt(f),
            InvocationError::TrailOff => write!(
                f,
                "an S3 notification, but {} is unset: this function reads no trail's files \
                 (set it to the trail bucket, as the stack does with TrailBucketName)",
                trail::TRAIL_BUCKET_VARIABLE
            ),
            InvocationError::TrailFile(e) => e.fmt(f),
            InvocationError::Batch(e) => write!(f, "SQS batch not handled: {e}"),
        }
    }
}

impl std::error::Error for InvocationError {}

impl From<InvocationError> for Diagnostic {
    fn from(error: InvocationError) -> Diagnostic {
        Diagnostic {
            error_type: error.error_type().to_owned(),
            error_message: error.to_string(),
        }
    }
}

/// What one invocation works with: the detector (policy applied), where alerts go, what it
/// remembers, and the grouping window.
pub struct Pipeline<'a, S, T> {
    pub detector: &'a Detector,
    pub sink: &'a S,
    pub store: &'a T,
    /// Off when the store remembers nothing.
    pub window: Window,
    /// The metrics' `FunctionName` dimension.
    pub function_name: &'a str,
}

/// The invocation's clock: now, and until when a claim on an event holds (the invocation's
/// deadline: past it, the invocation is dead and its claim may be taken over).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clock {
    pub now: i64,
    pub lease_until: i64,
}

impl Clock {
    /// Now, with a claim lasting `lease`.
    pub fn now_with_lease(lease: Duration) -> Clock {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        Clock {
            now,
            lease_until: now + lease.as_secs() as i64,
        }
    }

    /// Now, with a claim lasting until the invocation's `deadline` (and a second more).
    pub fn until_deadline(deadline: SystemTime) -> Clock {
        let mut clock = Clock::now_with_lease(Duration::ZERO);
        let deadline = deadline
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        clock.lease_until = deadline.max(clock.now) + 1;
        clock
    }
}

/// The claim of a direct call ([`handle_event`]): the function's own timeout.
const DEFAULT_LEASE: Duration = Duration::from_secs(15);

/// Handles one event with no store and no grouping (the original function; tests and benches).
pub async fn handle_event<S: AlertSink>(
    detector: &Detector,
    sink: &S,
    payload: Value,
) -> Result<Summary, InvocationError> {
    let pipeline = Pipeline {
        detector,
        sink,
        store: &NoStore,
        window: Window::minutes(0),
        function_name: "",
    };
    handle(&pipeline, payload, Clock::now_with_lease(DEFAULT_LEASE)).await
}

/// Handles one event: decode, assess, deliver the alert exactly once (or count it in its window),
/// log one line, write the invocation's metrics. A scheduled event runs the summary sweep instead.
///
/// The payload is unwrapped by the library's one envelope policy ([`Record::unwrap`]) and assessed
/// by the one path ([`Detector::assess`]) that `scan` also uses.
pub async fn handle<S: AlertSink, T: Store>(
    pipeline: &Pipeline<'_, S, T>,
    payload: Value,
    clock: Clock,
) -> Result<Summary, InvocationError> {
    let mut counts = Counts::default();
    let mut entries: Vec<(&'static str, String)> = Vec::new();
    let result = if is_scheduled(&payload) {
        sweep(pipeline, clock, &mut counts).await
    } else {
        counts.events_seen = 1;
        handle_record(
            pipeline,
            payload,
            Arrival::EventBridge,
            clock,
            &mut counts,
            &mut entries,
        )
        .await
    };
    write_metrics(pipeline.function_name, &counts, &entries);
    result
}

/// The function's answer, by the kind of event it was given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Response {
    /// A CloudTrail event (EventBridge envelope or bare record), or the summary sweep.
    Event(Summary),
    /// An SQS batch of S3 notifications: Lambda's partial batch response, exactly.
    Batch(BatchResponse),
    /// An EventBridge "Object Created" event: what reading its file did.
    Files(FilesSummary),
}

/// Handles any event the function is given, told apart by shape: an SQS batch of trail-file
/// notifications, an EventBridge "Object Created" event, the summary schedule, or a CloudTrail
/// event (envelope or bare record, through [`handle`]). Trail files need `trail` (the
/// `TRAIL_BUCKET` setting); without it their events fail, loudly.
pub async fn handle_invocation<S: AlertSink, T: Store, O: ObjectSource>(
    pipeline: &Pipeline<'_, S, T>,
    trail: Option<&TrailFiles<'_, O>>,
    payload: Value,
    clock: Clock,
) -> Result<Response, InvocationError> {
    let batch = trail::is_sqs_batch(&payload);
    if !batch && !trail::is_object_created(&payload) {
        return handle(pipeline, payload, clock).await.map(Response::Event);
    }
    let Some(files) = trail else {
        tracing::error!(
            verdict = "error",
            error_type = "TrailNotConfigured",
            "an S3 notification, but no trail is configured"
        );
        return Err(InvocationError::TrailOff);
    };
    let mut counts = Counts::default();
    let mut entries: Vec<(&'static str, String)> = Vec::new();
    let result = match batch {
        true => trail::handle_batch(pipeline, files, &payload, clock, &mut counts, &mut entries)
            .await
            .map(Response::Batch)
            .map_err(InvocationError::Batch),
        false => {
            trail::handle_notification(pipeline, files, &payload, clock, &mut counts, &mut entries)
                .await
                .map(Response::Files)
                .map_err(InvocationError::TrailFile)
        }
    };
    write_metrics(pipeline.function_name, &counts, &entries);
    result
}

/// An EventBridge schedule's event (`source` `aws.events`, which nobody else may send).
fn is_scheduled(payload: &Value) -> bool {
    payload.get("source").and_then(Value::as_str) == Some("aws.events")
        && payload.get("detail-type").and_then(Value::as_str) == Some(SCHEDULED_DETAIL_TYPE)
}

/// Writes the invocation's metrics; a failure to write is logged (metrics are not alerts).
pub fn write_metrics(function_name: &str, counts: &Counts, entries: &[(&'static str, String)]) {
    let now = metrics::now_ms();
    let mut lines = vec![metrics::counts_document(function_name, counts, now)];
    lines.extend(
        entries
            .iter()
            .map(|(metric, entry)| metrics::entry_document(function_name, metric, entry, now)),
    );
    if let Err(e) = metrics::write_documents(&lines) {
        tracing::error!(error = %e, "metrics not written to stdout");
    }
}

/// How a CloudTrail record reached the function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Arrival {
    /// In real time: an EventBridge event (or a record invoked directly).
    EventBridge,
    /// Read from a log file of the trail, minutes later.
    TrailFile,
}

/// One CloudTrail record (or envelope) through the one path: assess, deliver exactly once (or
/// count in its window), log one line. The trail-file path calls it for each record too.
pub(crate) async fn handle_record<S: AlertSink, T: Store>(
    pipeline: &Pipeline<'_, S, T>,
    payload: Value,
    arrival: Arrival,
    clock: Clock,
    counts: &mut Counts,
    entries: &mut Vec<(&'static str, String)>,
) -> Result<Summary, InvocationError> {
    let (record, envelope) = match Record::unwrap(payload) {
        Ok(decoded) => decoded,
        Err(e) => {
            tracing::error!(
                verdict = "error",
                error_type = "UndecodableEvent",
                error = %e,
                "event not decoded"
            );
            return Err(InvocationError::Undecodable(e));
        }
    };
    let envelope = envelope.unwrap_or_default();
    let mut summary = Summary::new("");
    summary.event_id = record.event_id().map(str::to_owned);
    summary.event_name = record.event_name().map(str::to_owned);
    let alert = match pipeline.detector.assess(&record) {
        Outcome::Alert(alert) => alert,
        Outcome::Suppressed(suppressed) => {
            counts.suppressed = 1;
            entries.push((metrics::SUPPRESSED, suppressed.entry.clone()));
            summary.verdict = "suppressed".into();
            summary.reason = Some(suppressed.reason.clone());
            summary.suppressed_by = Some(suppressed.entry.clone());
            summary.alert_title = Some(suppressed.alert.title.clone());
            tracing::info!(
                verdict = "suppressed",
                suppressed_by = suppressed.entry.as_str(),
                reason = suppressed.reason.as_str(),
                title = suppressed.alert.title.as_str(),
                actor = suppressed.alert.actor.as_str(),
                actor_type = suppressed.alert.actor_type,
                function_name = suppressed.alert.function_name.as_str(),
                event_id = summary.event_id.as_deref(),
                event_name = summary.event_name.as_deref(),
                envelope_id = envelope.id.as_deref(),
                "alert suppressed by the policy"
            );
            return Ok(summary);
        }
        Outcome::Quiet(QuietReason::Canary) => {
            summary.verdict = "quiet".into();
            summary.reason = Some(QuietReason::Canary.as_str().into());
            // The heartbeat the stack's alarm waits for: its absence means the path is broken.
            // Each path has its own: the same call read minutes later from the trail's file must
            // not keep the real-time path's alarm quiet while that path is dead (nor the other
            // way round).
            let written = match arrival {
                Arrival::EventBridge => metrics::write_canary_heartbeat(pipeline.function_name),
                Arrival::TrailFile => metrics::write_heartbeat(
                    metrics::TRAIL_CANARY_HEARTBEAT,
                    pipeline.function_name,
                ),
            };
            tracing::info!(
                verdict = "quiet",
                reason = QuietReason::Canary.as_str(),
                why = QuietReason::Canary.describe(),
                heartbeat_written = written.is_ok(),
                arrival = ?arrival,
                event_id = summary.event_id.as_deref(),
                event_name = summary.event_name.as_deref(),
                envelope_id = envelope.id.as_deref(),
                "canary heartbeat"
            );
            if let Err(e) = written {
                tracing::error!(error = %e, "canary heartbeat not written to stdout");
            }
            return Ok(summary);
        }
        Outcome::Quiet(reason) => {
            summary.verdict = "quiet".into();
            summary.reason = Some(reason.as_str().into());
            tracing::info!(
                verdict = "quiet",
                reason = reason.as_str(),
                why = reason.describe(),
                event_id = summary.event_id.as_deref(),
                event_name = summary.event_name.as_deref(),
                envelope_id = envelope.id.as_deref(),
                detail_type = envelope.detail_type.as_deref(),
                "quiet"
            );
            return Ok(summary);
        }
    };
    for expired in &alert.expired_suppressions {
        counts.expired_suppression_matches += 1;
        entries.push((metrics::EXPIRED_SUPPRESSION_MATCHES, expired.entry.clone()));
        tracing::warn!(
            entry = expired.entry.as_str(),
            reason = expired.reason.as_str(),
            expired_after = expired.expired_after.as_str(),
            event_id = summary.event_id.as_deref(),
            "an expired policy entry matched this alert: it no longer suppresses, the alert is delivered"
        );
    }
    summary.verdict = "alert".into();
    summary.alert_title = Some(alert.title.clone());
    let delivered = deliver_once(pipeline, &alert, clock, counts, &mut summary).await;
    match &delivered {
        Ok(()) => tracing::info!(
            verdict = "alert",
            delivery = summary.delivery.as_deref(),
            actor = alert.actor.as_str(),
            actor_type = alert.actor_type,
            function_name = alert.function_name.as_str(),
            event_id = summary.event_id.as_deref(),
            event_name = summary.event_name.as_deref(),
            envelope_id = envelope.id.as_deref(),
            detail_type = envelope.detail_type.as_deref(),
            message_id = summary.message_id.as_deref(),
            truncated_bytes = summary.truncated_bytes,
            group_count = summary.group_count,
            "alert handled"
        ),
        Err(InvocationError::NotDelivered(e)) => tracing::error!(
            verdict = "alert",
            error_type = "AlertNotDelivered",
            actor = alert.actor.as_str(),
            function_name = alert.function_name.as_str(),
            event_id = summary.event_id.as_deref(),
            envelope_id = envelope.id.as_deref(),
            destination = e.destination(),
            error = %e,
            "alert not delivered"
        ),
        Err(e) => tracing::warn!(
            verdict = "alert",
            error_type = e.error_type(),
            event_id = summary.event_id.as_deref(),
            envelope_id = envelope.id.as_deref(),
            error = %e,
            "alert not handled in this invocation"
        ),
    }
    delivered.map(|()| summary)
}

/// Delivers `alert` at most once per event id (with a store), else as before: claim, deliver or
/// count, then complete; a failed delivery releases the claim for Lambda's retry.
async fn deliver_once<S: AlertSink, T: Store>(
    pipeline: &Pipeline<'_, S, T>,
    alert: &Alert,
    clock: Clock,
    counts: &mut Counts,
    summary: &mut Summary,
) -> Result<(), InvocationError> {
    let event_id = alert.event_id.as_deref().filter(|id| !id.is_empty());
    let claimed = match (event_id, pipeline.store.remembers()) {
        (Some(id), true) => match pipeline.store.claim(id, clock.now, clock.lease_until).await {
            Ok(Claim::Claimed) => Some(id),
            Ok(Claim::Completed { message_id }) => {
                counts.duplicates_dropped = 1;
                summary.delivery = Some("duplicate".into());
                summary.message_id = message_id;
                return Ok(());
            }
            Ok(Claim::InProgress { lease_until }) => {
                return Err(InvocationError::InProgress {
                    event_id: id.to_owned(),
                    lease_until,
                });
            }
            Err(e) => {
                store_failed(&e, counts);
                return publish(pipeline, alert, counts, summary, "published-unrecorded").await;
            }
        },
        _ => None,
    };
    let result = deliver_or_group(pipeline, alert, clock, counts, summary).await;
    if let Some(id) = claimed {
        let recorded = match &result {
            Ok(()) => {
                pipeline
                    .store
                    .complete(id, summary.message_id.as_deref(), clock.now)
                    .await
            }
            Err(_) => pipeline.store.release(id).await,
        };
        // Delivered but not recorded: a repeat may deliver again (at least once, never lost).
        if let Err(e) = recorded {
            store_failed(&e, counts);
        }
    }
    result
}

fn store_failed(error: &StoreError, counts: &mut Counts) {
    counts.store_errors += 1;
    tracing::error!(error = %error, "event store failed: alerts are still published, but a repeat may be published again");
}

/// The alert's place in its key's window (the library decides), stored with optimistic
/// concurrency: read, decide, write if unchanged, else read and decide again.
async fn deliver_or_group<S: AlertSink, T: Store>(
    pipeline: &Pipeline<'_, S, T>,
    alert: &Alert,
    clock: Clock,
    counts: &mut Counts,
    summary: &mut Summary,
) -> Result<(), InvocationError> {
    if pipeline.window.is_off() || !pipeline.store.remembers() {
        return publish(pipeline, alert, counts, summary, "published").await;
    }
    const ATTEMPTS: usize = 8;
    for _ in 0..ATTEMPTS {
        let current = match pipeline.store.load_group(&alert.dedup_key).await {
            Ok(current) => current,
            Err(e) => {
                store_failed(&e, counts);
                return publish(pipeline, alert, counts, summary, "published-unrecorded").await;
            }
        };
        let (group, version) = match &current {
            Some((group, version)) => (Some(group), Some(*version)),
            None => (None, None),
        };
        let (next, deliver) = match grouping::admit(group, alert, clock.now, pipeline.window) {
            Admission::Repeat { first: true } => {
                // The window's first alert, delivered before its invocation could record it (or
                // not delivered at all): deliver it (again).
                return publish(pipeline, alert, counts, summary, "published").await;
            }
            Admission::Repeat { first: false } => {
                counts.grouped = 1;
                summary.delivery = Some("grouped".into());
                summary.group_count = group.map(|g| g.count);
                return Ok(());
            }
            Admission::Deliver { group, closed } => {
                if let Some(closed) = closed {
                    publish_summary(pipeline, &closed, counts).await?;
                }
                (group, true)
            }
            Admission::Grouped { group } => (group, false),
        };
        match pipeline.store.save_group(&next, version).await {
            Ok(Saved::Conflict) => continue,
            Ok(Saved::Saved) if deliver => {
                return publish(pipeline, alert, counts, summary, "published").await;
            }
            Ok(Saved::Saved) => {
                counts.grouped = 1;
                summary.delivery = Some("grouped".into());
                summary.group_count = Some(next.count);
                return Ok(());
            }
            Err(e) => {
                store_failed(&e, counts);
                return publish(pipeline, alert, counts, summary, "published-unrecorded").await;
            }
        }
    }
    store_failed(
        &StoreError(format!(
            "the window of {:?} changed {ATTEMPTS} times while being updated",
            alert.dedup_key
        )),
        counts,
    );
    publish(pipeline, alert, counts, summary, "published-unrecorded").await
}

async fn publish<S: AlertSink, T: Store>(
    pipeline: &Pipeline<'_, S, T>,
    alert: &Alert,
    counts: &mut Counts,
    summary: &mut Summary,
    delivery: &str,
) -> Result<(), InvocationError> {
    match pipeline.sink.deliver(alert).await {
        Ok(receipt) => {
            counts.alerts_published += 1;
            summary.delivery = Some(delivery.to_owned());
            summary.message_id = receipt.message_id;
            summary.truncated_bytes = receipt.truncated_bytes;
            Ok(())
        }
        Err(e) => {
            counts.publish_failures += 1;
            Err(InvocationError::NotDelivered(e))
        }
    }
}

async fn publish_summary<S: AlertSink, T: Store>(
    pipeline: &Pipeline<'_, S, T>,
    group: &GroupSummary,
    counts: &mut Counts,
) -> Result<(), InvocationError> {
    match pipeline.sink.deliver_summary(group).await {
        Ok(receipt) => {
            counts.summaries_published += 1;
            tracing::info!(
                verdict = "summary",
                dedup_key = group.dedup_key.as_str(),
                count = group.count,
                window_start = group.window_start.as_str(),
                window_end = group.window_end.as_str(),
                message_id = receipt.message_id.as_deref(),
                "window summary published"
            );
            Ok(())
        }
        Err(e) => {
            counts.publish_failures += 1;
            tracing::error!(
                verdict = "summary",
                error_type = "AlertNotDelivered",
                dedup_key = group.dedup_key.as_str(),
                error = %e,
                "window summary not delivered"
            );
            Err(InvocationError::NotDelivered(e))
        }
    }
}

/// The scheduled sweep: one summary for each closed window that held more than one alert.
async fn sweep<S: AlertSink, T: Store>(
    pipeline: &Pipeline<'_, S, T>,
    clock: Clock,
    counts: &mut Counts,
) -> Result<Summary, InvocationError> {
    let due = pipeline
        .store
        .due_groups(clock.now)
        .await
        .map_err(InvocationError::Store)?;
    let mut summary = Summary::new("summaries");
    for (group, version) in due {
        publish_summary(pipeline, &GroupSummary::of(&group), counts).await?;
        let mut done = group;
        done.summarized = true;
        match pipeline.store.save_group(&done, Some(version)).await {
            Ok(Saved::Saved) => {}
            // An alert of that key opened a new window meanwhile and carried this summary.
            Ok(Saved::Conflict) => {}
            Err(e) => return Err(InvocationError::Store(e)),
        }
    }
    summary.summaries_published = Some(counts.summaries_published);
    tracing::info!(
        verdict = "summaries",
        summaries_published = counts.summaries_published,
        "summary sweep"
    );
    Ok(summary)
}

/// JSON log lines on stderr (stdout carries metrics, and alert documents with `ALERT_STDOUT=1`).
///
/// The level comes from `AWS_LAMBDA_LOG_LEVEL` (Lambda's logging controls), else `info`; `RUST_LOG`,
/// when set, replaces the whole filter. By default the runtime's own copy of a failed invocation's
/// error is left out: the handler already logged that invocation's line, with more context (a panic
/// still shows, through the panic hook).
pub fn init_logging() {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    const RUNTIME_ERROR_ECHO: &str = "lambda_runtime::layers::panic=off";
    let filter = match std::env::var("RUST_LOG") {
        Ok(directives) if std::env::var_os("AWS_LAMBDA_LOG_LEVEL").is_none() => directives,
        _ => {
            let level = match std::env::var("AWS_LAMBDA_LOG_LEVEL")
                .unwrap_or_default()
                .to_ascii_lowercase()
                .as_str()
            {
                level @ ("trace" | "debug" | "info" | "warn" | "error") => level.to_owned(),
                // Lambda's FATAL has no tracing equivalent; an unknown level keeps the default.
                "fatal" => "error".to_owned(),
                _ => "info".to_owned(),
            };
            format!("{level},{RUNTIME_ERROR_ECHO}")
        }
    };
    let _ = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
        .with_target(false)
        .with_writer(std::io::stderr)
        .finish()
        .with(log_filter(&filter))
        .try_init();
}

/// The filter for `directives` (`RUST_LOG` syntax: `level` and `target=level`, comma-separated).
/// `tracing_subscriber`'s `Targets` rather than its `EnvFilter`, whose regular expressions cost
/// the binary about 0.5 MB; like `EnvFilter`, a directive it cannot read is skipped, not fatal.
fn log_filter(directives: &str) -> tracing_subscriber::filter::Targets {
    use tracing_subscriber::filter::Targets;
    let mut filter = Targets::new();
    for directive in directives.split(',').map(str::trim) {
        // `Targets` reads "=level" as a filter on every target; `EnvFilter` rejects it.
        if directive.is_empty() || directive.starts_with('=') {
            continue;
        }
        let Ok(parsed) = directive.parse::<Targets>() else {
            continue;
        };
        if let Some(level) = parsed.default_level() {
            filter = filter.with_default(level);
        }
        filter.extend(parsed);
    }
    filter
}

/// Serves invocations until the runtime stops: reads the policy and builds the SDK clients once
/// (SNS, DynamoDB, SSM, as the settings need them), then hands references to every invocation.
/// A policy that cannot be read or used at start stops the process (exit code 2).
pub async fn run(settings: Settings) -> Result<(), lambda_runtime::Error> {
    if !settings.account_names.is_empty() {
        tracing::info!(
            accounts = settings.account_names.len(),
            "alerts name accounts from {ACCOUNT_NAMES_VARIABLE}"
        );
    }
    let needs_aws = settings.alert_topic.is_some()
        || settings.dedup_table.is_some()
        || settings.trail.is_some()
        || matches!(settings.policy, PolicySource::Parameter(_));
    let config = match needs_aws {
        true => Some(load_sdk_config().await),
        false => None,
    };
    let ssm = match (&settings.policy, &config) {
        (PolicySource::Parameter(_), Some(config)) => Some(aws_sdk_ssm::Client::new(config)),
        _ => None,
    };
    let policy = match LivePolicy::load(
        settings.policy.clone(),
        ssm,
        settings.policy_refresh,
        Detector::default()
            .with_account_names(settings.account_names.clone())
            .with_canary(settings.canary.clone()),
    )
    .await
    {
        Ok(policy) => policy,
        Err(e) => {
            // Without a policy in force nothing can be judged as the team decided: refuse to
            // start, loudly (every event fails and is kept), rather than run the wrong rule.
            tracing::error!(variable = "policy", error = %e, "invalid policy");
            eprintln!("lambda-code-watch-handler: invalid policy: {e}");
            std::process::exit(2);
        }
    };
    {
        let (detector, _) = policy.current().await;
        tracing::info!(
            policy = %policy.source().describe(),
            suppressions = detector.policy().suppressions.len(),
            people_widened = !detector.policy().people.is_original(),
            "policy in force"
        );
        log_expired(&detector);
    }
    let store = match (&settings.dedup_table, &config) {
        (Some(table), Some(config)) => {
            tracing::info!(
                table = table.as_str(),
                window_minutes = settings.window_minutes,
                "exactly-once delivery and grouping with DynamoDB"
            );
            AnyStore::Dynamo(DynamoStore::new(
                aws_sdk_dynamodb::Client::new(config),
                table.clone(),
            ))
        }
        _ => {
            tracing::warn!(
                "{DEDUP_TABLE_VARIABLE} is unset: no deduplication (a repeated delivery alerts again) and no grouping"
            );
            AnyStore::None(NoStore)
        }
    };
    let window = match store {
        AnyStore::Dynamo(_) => Window::minutes(settings.window_minutes),
        AnyStore::None(_) => Window::minutes(0),
    };
    let sink = match (settings.alert_topic, &config) {
        (Some(topic), Some(config)) => {
            tracing::info!(
                topic = topic.as_str(),
                topic_region = topic.region(),
                region = config.region().map(|r| r.as_ref()),
                "publishing alerts to SNS"
            );
            Destination::Sns(SnsSink::new(sns_client_for(config, &topic), topic))
        }
        _ => {
            tracing::warn!(
                "{STDOUT_VARIABLE}=1: alerts are written to stdout, not published (local runs only)"
            );
            Destination::Stdout(StdoutSink)
        }
    };
    let objects = match (&settings.trail, &config) {
        (Some(trail), Some(config)) => {
            tracing::info!(
                bucket = trail.bucket.as_str(),
                logs = trail.logs_root().as_str(),
                "reading the trail's log files when S3 notifications arrive"
            );
            Some(S3Objects::new(config.clone()))
        }
        _ => None,
    };
    let trail = match (&settings.trail, &objects) {
        (Some(trail), Some(objects)) => Some(TrailFiles {
            trail,
            objects,
            limits: lambda_code_watch::input::Limits::default(),
        }),
        _ => None,
    };
    serve(
        &sink,
        &store,
        window,
        &policy,
        trail.as_ref(),
        &settings.function_name,
    )
    .await
}

/// Where alerts go in this process.
enum Destination {
    Sns(SnsSink),
    Stdout(StdoutSink),
}

impl AlertSink for Destination {
    async fn deliver(
        &self,
        alert: &Alert,
    ) -> Result<lambda_code_watch::sink::Receipt, DeliveryError> {
        match self {
            Destination::Sns(sink) => sink.deliver(alert).await,
            Destination::Stdout(sink) => sink.deliver(alert).await,
        }
    }

    async fn deliver_summary(
        &self,
        summary: &GroupSummary,
    ) -> Result<lambda_code_watch::sink::Receipt, DeliveryError> {
        match self {
            Destination::Sns(sink) => sink.deliver_summary(summary).await,
            Destination::Stdout(sink) => sink.deliver_summary(summary).await,
        }
    }
}

/// What this process remembers.
enum AnyStore {
    Dynamo(DynamoStore),
    None(NoStore),
}

impl Store for AnyStore {
    fn remembers(&self) -> bool {
        matches!(self, AnyStore::Dynamo(_))
    }
    async fn claim(&self, event_id: &str, now: i64, lease_until: i64) -> Result<Claim, StoreError> {
        match self {
            AnyStore::Dynamo(s) => s.claim(event_id, now, lease_until).await,
            AnyStore::None(s) => s.claim(event_id, now, lease_until).await,
        }
    }
    async fn complete(
        &self,
        event_id: &str,
        message_id: Option<&str>,
        now: i64,
    ) -> Result<(), StoreError> {
        match self {
            AnyStore::Dynamo(s) => s.complete(event_id, message_id, now).await,
            AnyStore::None(s) => s.complete(event_id, message_id, now).await,
        }
    }
    async fn release(&self, event_id: &str) -> Result<(), StoreError> {
        match self {
            AnyStore::Dynamo(s) => s.release(event_id).await,
            AnyStore::None(s) => s.release(event_id).await,
        }
    }
    async fn load_group(&self, key: &str) -> Result<Option<store::Versioned>, StoreError> {
        match self {
            AnyStore::Dynamo(s) => s.load_group(key).await,
            AnyStore::None(s) => s.load_group(key).await,
        }
    }
    async fn save_group(
        &self,
        group: &grouping::Group,
        expected: Option<u64>,
    ) -> Result<Saved, StoreError> {
        match self {
            AnyStore::Dynamo(s) => s.save_group(group, expected).await,
            AnyStore::None(s) => s.save_group(group, expected).await,
        }
    }
    async fn due_groups(&self, now: i64) -> Result<Vec<store::Versioned>, StoreError> {
        match self {
            AnyStore::Dynamo(s) => s.due_groups(now).await,
            AnyStore::None(s) => s.due_groups(now).await,
        }
    }
}

/// An SNS client for the topic's own region: SNS answers for a topic only there, so a client built
/// for the function's region would fail every publish to a topic elsewhere.
fn sns_client_for(config: &aws_types::SdkConfig, topic: &TopicArn) -> aws_sdk_sns::Client {
    let mut sns_config = aws_sdk_sns::config::Builder::from(config)
        .region(aws_types::region::Region::new(topic.region().to_owned()));
    if let Some(endpoint) = sdk_config::service_endpoint_url("SNS") {
        sns_config = sns_config.endpoint_url(endpoint);
    }
    aws_sdk_sns::Client::from_conf(sns_config.build())
}

async fn serve<S: AlertSink + Sync, T: Store + Sync, R: ParameterReader, O: ObjectSource + Sync>(
    sink: &S,
    store: &T,
    window: Window,
    policy: &LivePolicy<R>,
    trail: Option<&TrailFiles<'_, O>>,
    function_name: &str,
) -> Result<(), lambda_runtime::Error> {
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async move {
        let (detector, rejected) = policy.current().await;
        if let Some(rejected) = rejected {
            tracing::error!(
                policy = %policy.source().describe(),
                error = %rejected.error,
                "policy refresh refused: the last good policy stays in force"
            );
            let counts = Counts {
                policy_rejected: 1,
                ..Counts::default()
            };
            write_metrics(function_name, &counts, &[]);
        }
        let pipeline = Pipeline {
            detector: &detector,
            sink,
            store,
            window,
            function_name,
        };
        handle_invocation(
            &pipeline,
            trail,
            event.payload,
            Clock::until_deadline(event.context.deadline()),
        )
        .await
    }))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_code_watch::AccountNames;
    use lambda_code_watch::Alert;
    use lambda_code_watch::detector::Canary;
    use lambda_code_watch::sink::Receipt;
    use serde_json::json;
    use std::sync::Mutex;

    /// Remembers what it was asked to deliver; fails when told to.
    #[derive(Default)]
    struct FakeSink {
        delivered: Mutex<Vec<Alert>>,
        summaries: Mutex<Vec<GroupSummary>>,
        fail: bool,
    }

    impl AlertSink for FakeSink {
        async fn deliver(&self, alert: &Alert) -> Result<Receipt, DeliveryError> {
            if self.fail {
                return Err(DeliveryError::new("fake-topic", "refused"));
            }
            self.delivered.lock().unwrap().push(alert.clone());
            Ok(Receipt {
                message_id: Some("message-1".into()),
                truncated_bytes: 0,
            })
        }

        async fn deliver_summary(&self, summary: &GroupSummary) -> Result<Receipt, DeliveryError> {
            if self.fail {
                return Err(DeliveryError::new("fake-topic", "refused"));
            }
            self.summaries.lock().unwrap().push(summary.clone());
            Ok(Receipt {
                message_id: Some("summary-1".into()),
                truncated_bytes: 0,
            })
        }
    }

    /// The log filter reads what Lambda's logging controls and `RUST_LOG` hand it, skips what it
    /// cannot read, and silences the runtime's copy of a failed invocation's error.
    #[test]
    fn log_filter_reads_levels_and_targets_and_skips_the_rest() {
        use tracing::Level;
        let filter = log_filter("info,lambda_runtime::layers::panic=off");
        assert!(filter.would_enable("lambda_code_watch_handler", &Level::INFO));
        assert!(!filter.would_enable("lambda_code_watch_handler", &Level::DEBUG));
        assert!(!filter.would_enable("lambda_runtime::layers::panic", &Level::ERROR));
        assert!(filter.would_enable("lambda_runtime::layers::api_client", &Level::WARN));
        let lenient = log_filter("debug, [span{field=1}]=trace ,hyper=warn,=,nonsense=loud");
        assert!(
            lenient.would_enable("anything", &Level::DEBUG),
            "{lenient:?}"
        );
        assert!(!lenient.would_enable("anything", &Level::TRACE));
        assert!(!lenient.would_enable("hyper::proto", &Level::INFO));
        assert!(!log_filter("").would_enable("anything", &Level::ERROR));
    }

    fn iam_user_update() -> Value {
        json!({
            "eventVersion": "1.08",
            "userIdentity": {"type": "IAMUser", "principalId": "AIDAEXAMPLE", "accountId": "123456789012",
                             "arn": "arn:aws:iam::123456789012:user/john.developer", "userName": "john.developer"},
            "eventTime": "2019-01-01T00:00:00Z",
            "eventSource": "lambda.amazonaws.com",
            "eventName": "UpdateFunctionCode20150331v2",
            "awsRegion": "us-west-2",
            "userAgent": "aws-cli/2.13.5",
            "requestParameters": {"functionName": "production-api"},
            "responseElements": {"functionName": "production-api"},
            "eventID": "11111111-2222-3333-4444-555555555555",
            "recipientAccountId": "123456789012"
        })
    }

    fn in_envelope(detail: Value) -> Value {
        json!({
            "version": "0", "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
            "detail-type": CLOUDTRAIL_DETAIL_TYPE, "source": "aws.lambda",
            "account": "123456789012", "time": "2019-01-01T00:00:00Z", "region": "us-west-2",
            "resources": [], "detail": detail
        })
    }

    #[tokio::test]
    async fn alert_is_delivered_once_and_summarised() {
        let sink = FakeSink::default();
        let summary = handle_event(&Detector::default(), &sink, iam_user_update())
            .await
            .unwrap();
        assert_eq!(summary.verdict, "alert");
        assert_eq!(summary.message_id.as_deref(), Some("message-1"));
        assert_eq!(
            summary.event_id.as_deref(),
            Some("11111111-2222-3333-4444-555555555555")
        );
        let delivered = sink.delivered.lock().unwrap();
        assert_eq!(delivered.len(), 1);
        assert_eq!(delivered[0].actor, "john.developer");
        assert_eq!(
            summary.alert_title.as_deref(),
            Some(delivered[0].title.as_str())
        );
    }

    #[tokio::test]
    async fn envelope_and_bare_record_give_the_same_alert() {
        let bare = FakeSink::default();
        let wrapped = FakeSink::default();
        handle_event(&Detector::default(), &bare, iam_user_update())
            .await
            .unwrap();
        handle_event(
            &Detector::default(),
            &wrapped,
            in_envelope(iam_user_update()),
        )
        .await
        .unwrap();
        assert_eq!(
            bare.delivered.lock().unwrap()[0].to_json(),
            wrapped.delivered.lock().unwrap()[0].to_json()
        );
    }

    #[tokio::test]
    async fn an_envelope_with_an_unusual_time_is_still_read() {
        let mut event = in_envelope(iam_user_update());
        event["time"] = json!("yesterday");
        let sink = FakeSink::default();
        let summary = handle_event(&Detector::default(), &sink, event)
            .await
            .unwrap();
        assert_eq!(summary.verdict, "alert");
        assert_eq!(sink.delivered.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn quiet_event_is_ok_and_delivers_nothing() {
        let mut record = iam_user_update();
        record["userIdentity"] = json!({"type": "AssumedRole", "principalId": "AROA:ci",
            "sessionContext": {"sessionIssuer": {"type": "Role", "userName": "deployer"}}});
        let sink = FakeSink {
            fail: true,
            ..FakeSink::default()
        };
        let summary = handle_event(&Detector::default(), &sink, in_envelope(record))
            .await
            .unwrap();
        assert_eq!(summary.verdict, "quiet");
        assert_eq!(summary.reason.as_deref(), Some("not-a-person"));
        assert!(summary.message_id.is_none());
    }

    #[tokio::test]
    async fn other_api_is_quiet() {
        let mut record = iam_user_update();
        record["eventName"] = json!("DeleteFunction20150331");
        let summary = handle_event(&Detector::default(), &FakeSink::default(), record)
            .await
            .unwrap();
        assert_eq!(summary.reason.as_deref(), Some("other-api"));
    }

    #[tokio::test]
    async fn failed_delivery_fails_the_invocation() {
        let sink = FakeSink {
            fail: true,
            ..FakeSink::default()
        };
        let error = handle_event(&Detector::default(), &sink, iam_user_update())
            .await
            .unwrap_err();
        assert_eq!(error.error_type(), "AlertNotDelivered");
        assert!(error.to_string().contains("fake-topic"), "{error}");
        let diagnostic = Diagnostic::from(error);
        assert_eq!(diagnostic.error_type, "AlertNotDelivered");
    }

    #[tokio::test]
    async fn undecodable_events_fail_and_say_why() {
        for payload in [json!("a string"), json!([1, 2]), json!(null)] {
            let error = handle_event(&Detector::default(), &FakeSink::default(), payload.clone())
                .await
                .unwrap_err();
            assert_eq!(error.error_type(), "UndecodableEvent", "{payload}");
            assert!(error.to_string().contains("JSON object"), "{error}");
        }
        // The one envelope policy: a `detail` that is not an object makes no envelope, so this is a
        // record (with no Lambda API in it), exactly as `scan` reads it.
        let envelope =
            json!({"detail-type": CLOUDTRAIL_DETAIL_TYPE, "source": "aws.lambda", "detail": 42});
        let summary = handle_event(&Detector::default(), &FakeSink::default(), envelope)
            .await
            .unwrap();
        assert_eq!(summary.reason.as_deref(), Some("other-api"));
    }

    #[test]
    fn summary_json_is_small_and_omits_what_did_not_happen() {
        let summary = Summary {
            verdict: "quiet".into(),
            reason: Some("other-api".into()),
            event_id: Some("e1".into()),
            event_name: Some("DeleteFunction".into()),
            alert_title: None,
            message_id: None,
            truncated_bytes: 0,
            ..Summary::new("quiet")
        };
        assert_eq!(
            serde_json::to_string(&summary).unwrap(),
            r#"{"verdict":"quiet","reason":"other-api","event_id":"e1","event_name":"DeleteFunction"}"#
        );
    }

    #[tokio::test]
    async fn the_delivered_alert_names_the_account() {
        let names = AccountNames::from_json(r#"{"123456789012": "payments-prod"}"#).unwrap();
        let detector = Detector::default().with_account_names(names);
        let sink = FakeSink::default();
        let summary = handle_event(&detector, &sink, in_envelope(iam_user_update()))
            .await
            .unwrap();
        assert_eq!(summary.verdict, "alert");
        let delivered = sink.delivered.lock().unwrap();
        assert_eq!(delivered[0].account_id.as_deref(), Some("123456789012"));
        assert_eq!(delivered[0].account_name.as_deref(), Some("payments-prod"));
    }

    const CANARY_ROLE: &str = "arn:aws:iam::123456789012:role/lcw-CanaryRole-1A2B3C";

    fn canary_update() -> Value {
        let mut record = iam_user_update();
        record["eventID"] = json!("canary-1");
        record["requestParameters"] = json!({"functionName": "lcw-canary-target"});
        record["responseElements"] = json!({"functionName": "lcw-canary-target"});
        record["userIdentity"] = json!({
            "type": "AssumedRole",
            "principalId": "AROAEXAMPLE:lcw-canary",
            "arn": "arn:aws:sts::123456789012:assumed-role/lcw-CanaryRole-1A2B3C/lcw-canary",
            "accountId": "123456789012",
            "sessionContext": {"sessionIssuer": {"type": "Role", "principalId": "AROAEXAMPLE",
                "arn": CANARY_ROLE, "accountId": "123456789012", "userName": "lcw-CanaryRole-1A2B3C"}}
        });
        record
    }

    /// The stack's canary, as the settings give it.
    fn canary(target: Option<&str>) -> Option<Canary> {
        Some(Canary {
            role_arn: CANARY_ROLE.into(),
            target_function: target.map(str::to_owned),
        })
    }

    #[test]
    fn the_canary_is_its_role_a_successful_code_update_and_nothing_else() {
        let quiet_canary = |value: Value, canary: Option<Canary>| {
            let record = Record::from_value(value).unwrap();
            Detector::default().with_canary(canary).assess(&record)
                == Outcome::Quiet(QuietReason::Canary)
        };
        let target = Some("lcw-canary-target");
        assert!(quiet_canary(canary_update(), canary(target)));
        assert!(quiet_canary(canary_update(), canary(None)));
        assert!(!quiet_canary(canary_update(), None));
        assert!(!quiet_canary(
            canary_update(),
            Some(Canary {
                role_arn: "arn:aws:iam::123456789012:role/other".into(),
                target_function: None
            })
        ));
        assert!(!quiet_canary(iam_user_update(), canary(target)));
        let mut failed = canary_update();
        failed["errorCode"] = json!("AccessDenied");
        assert!(!quiet_canary(failed, canary(target)));
        let mut other_api = canary_update();
        other_api["eventName"] = json!("UpdateFunctionConfiguration20150331v2");
        assert!(!quiet_canary(other_api, canary(target)));
        // The canary's role changing another function is not the canary.
        let mut elsewhere = canary_update();
        elsewhere["requestParameters"]["functionName"] =
            json!("arn:aws:lambda:us-west-2:123456789012:function:production-api");
        elsewhere["responseElements"]["functionName"] = json!("production-api");
        assert!(!quiet_canary(elsewhere, canary(target)));
        // A person whose session name looks like the role is still a person.
        let mut person = iam_user_update();
        person["userIdentity"]["arn"] = json!(CANARY_ROLE);
        assert!(!quiet_canary(person, canary(target)));
    }

    #[tokio::test]
    async fn the_canary_is_quiet_even_when_the_rule_would_alert() {
        let detector = Detector::default().with_canary(canary(Some("lcw-canary-target")));
        let sink = FakeSink {
            fail: true,
            ..FakeSink::default()
        };
        let summary = handle_event(&detector, &sink, in_envelope(canary_update()))
            .await
            .unwrap();
        assert_eq!(summary.verdict, "quiet");
        assert_eq!(summary.reason.as_deref(), Some("canary"));
        assert_eq!(summary.event_id.as_deref(), Some("canary-1"));
        // Even a session issuer that looks like SSO could not turn it into an alert: the canary
        // check runs before the rule.
        let mut sso_looking = canary_update();
        sso_looking["userIdentity"]["sessionContext"]["sessionIssuer"]["userName"] =
            json!("AWSReservedSSO_Admin_0123");
        let summary = handle_event(&detector, &sink, sso_looking).await.unwrap();
        assert_eq!(summary.reason.as_deref(), Some("canary"));
        // The same call by anyone else is judged by the rule as usual.
        let summary = handle_event(&detector, &FakeSink::default(), iam_user_update())
            .await
            .unwrap();
        assert_eq!(summary.verdict, "alert");
    }

    // ------------------------------------------------------------ policy, exactly once, grouping

    use crate::store::MemoryStore;
    use lambda_code_watch::Policy;

    fn pipeline<'a>(
        detector: &'a Detector,
        sink: &'a FakeSink,
        store: &'a MemoryStore,
        minutes: u32,
    ) -> Pipeline<'a, FakeSink, MemoryStore> {
        Pipeline {
            detector,
            sink,
            store,
            window: Window::minutes(minutes),
            function_name: "code-watch-fn",
        }
    }

    /// The default rule, a sink that records what it is given, and an empty exactly-once table.
    fn fresh() -> (Detector, FakeSink, MemoryStore) {
        (
            Detector::default(),
            FakeSink::default(),
            MemoryStore::default(),
        )
    }

    fn at(now: i64) -> Clock {
        Clock {
            now,
            lease_until: now + 15,
        }
    }

    fn with_id(id: &str) -> Value {
        let mut record = iam_user_update();
        record["eventID"] = json!(id);
        in_envelope(record)
    }

    #[tokio::test]
    async fn the_same_event_twice_alerts_once() {
        let (detector, sink, store) = fresh();
        let p = pipeline(&detector, &sink, &store, 60);
        let first = handle(&p, with_id("e1"), at(1000)).await.unwrap();
        assert_eq!(first.delivery.as_deref(), Some("published"));
        let again = handle(&p, with_id("e1"), at(1001)).await.unwrap();
        assert_eq!(again.delivery.as_deref(), Some("duplicate"));
        assert_eq!(
            again.message_id.as_deref(),
            Some("message-1"),
            "names the first delivery"
        );
        assert_eq!(sink.delivered.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_failed_publish_is_released_and_the_retry_delivers_once() {
        let (detector, store) = (Detector::default(), MemoryStore::default());
        let failing = FakeSink {
            fail: true,
            ..FakeSink::default()
        };
        let error = handle(
            &pipeline(&detector, &failing, &store, 60),
            with_id("e1"),
            at(1000),
        )
        .await
        .unwrap_err();
        assert_eq!(error.error_type(), "AlertNotDelivered");
        let sink = FakeSink::default();
        let p = pipeline(&detector, &sink, &store, 60);
        let retry = handle(&p, with_id("e1"), at(1060)).await.unwrap();
        assert_eq!(retry.delivery.as_deref(), Some("published"), "{retry:?}");
        let again = handle(&p, with_id("e1"), at(1120)).await.unwrap();
        assert_eq!(again.delivery.as_deref(), Some("duplicate"));
        assert_eq!(sink.delivered.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn an_event_claimed_by_a_live_invocation_is_retried_later_and_a_dead_ones_claim_expires()
    {
        let (detector, sink, store) = fresh();
        assert_eq!(store.claim("e1", 1000, 1015).await.unwrap(), Claim::Claimed);
        let p = pipeline(&detector, &sink, &store, 60);
        let error = handle(&p, with_id("e1"), at(1005)).await.unwrap_err();
        assert_eq!(error.error_type(), "EventInProgress");
        assert!(sink.delivered.lock().unwrap().is_empty());
        // The claimant died (its lease ran out) without delivering: the retry delivers.
        let retry = handle(&p, with_id("e1"), at(1100)).await.unwrap();
        assert_eq!(retry.delivery.as_deref(), Some("published"));
        assert_eq!(sink.delivered.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn alerts_of_one_key_are_grouped_then_summarised_and_other_keys_are_not_held() {
        let (detector, sink, store) = fresh();
        let p = pipeline(&detector, &sink, &store, 60);
        let one = handle(&p, with_id("e1"), at(1000)).await.unwrap();
        let two = handle(&p, with_id("e2"), at(1600)).await.unwrap();
        let three = handle(&p, with_id("e3"), at(3000)).await.unwrap();
        assert_eq!(one.delivery.as_deref(), Some("published"));
        assert_eq!(
            (two.delivery.as_deref(), two.group_count),
            (Some("grouped"), Some(2))
        );
        assert_eq!(
            (three.delivery.as_deref(), three.group_count),
            (Some("grouped"), Some(3))
        );
        // A repeat of a grouped event is not counted twice.
        let repeat = handle(&p, with_id("e2"), at(3100)).await.unwrap();
        assert_eq!(repeat.delivery.as_deref(), Some("duplicate"));
        // Another person: another key, delivered at once.
        let mut other = iam_user_update();
        other["eventID"] = json!("o1");
        other["userIdentity"]["userName"] = json!("mallory");
        let other = handle(&p, in_envelope(other), at(3200)).await.unwrap();
        assert_eq!(other.delivery.as_deref(), Some("published"));
        assert_eq!(sink.delivered.lock().unwrap().len(), 2);

        let schedule = json!({"version": "0", "id": "s1", "detail-type": "Scheduled Event",
            "source": "aws.events", "account": "123456789012", "time": "2019-01-01T00:00:00Z",
            "region": "us-west-2", "resources": [], "detail": {}});
        let early = handle(&p, schedule.clone(), at(4599)).await.unwrap();
        assert_eq!(
            early.summaries_published,
            Some(0),
            "the window is still open"
        );
        let swept = handle(&p, schedule.clone(), at(4600)).await.unwrap();
        assert_eq!(swept.verdict, "summaries");
        assert_eq!(swept.summaries_published, Some(1));
        let summaries = sink.summaries.lock().unwrap().clone();
        assert_eq!(summaries.len(), 1);
        assert_eq!(summaries[0].count, 3);
        assert_eq!(summaries[0].event_ids, vec!["e1", "e2", "e3"]);
        let again = handle(&p, schedule, at(4900)).await.unwrap();
        assert_eq!(again.summaries_published, Some(0), "one summary per window");
    }

    #[tokio::test]
    async fn the_next_alert_after_a_window_carries_its_summary_if_the_sweep_has_not() {
        let (detector, sink, store) = fresh();
        let p = pipeline(&detector, &sink, &store, 60);
        handle(&p, with_id("e1"), at(1000)).await.unwrap();
        handle(&p, with_id("e2"), at(1100)).await.unwrap();
        let next = handle(&p, with_id("e3"), at(4700)).await.unwrap();
        assert_eq!(next.delivery.as_deref(), Some("published"));
        assert_eq!(sink.summaries.lock().unwrap()[0].count, 2);
        assert_eq!(sink.delivered.lock().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn window_zero_publishes_every_event_once() {
        let (detector, sink, store) = fresh();
        let p = pipeline(&detector, &sink, &store, 0);
        for id in ["e1", "e2", "e3", "e1"] {
            handle(&p, with_id(id), at(1000)).await.unwrap();
        }
        assert_eq!(sink.delivered.lock().unwrap().len(), 3);
    }

    #[tokio::test]
    async fn a_suppressed_alert_is_reported_not_delivered() {
        let policy = Policy::parse(
            "policy.toml",
            "[[suppress]]\nreason = \"production deploys by john\"\nfunctions = [\"production-*\"]\n",
        )
        .unwrap();
        let (detector, sink, store) = (
            Detector::new(policy),
            FakeSink::default(),
            MemoryStore::default(),
        );
        let summary = handle(
            &pipeline(&detector, &sink, &store, 60),
            with_id("e1"),
            at(1000),
        )
        .await
        .unwrap();
        assert_eq!(summary.verdict, "suppressed");
        assert_eq!(summary.suppressed_by.as_deref(), Some("suppress[1]"));
        assert_eq!(
            summary.reason.as_deref(),
            Some("production deploys by john")
        );
        assert!(sink.delivered.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn the_canary_stays_quiet_whatever_people_says() {
        let policy = Policy::parse(
            "policy.toml",
            "[people]\nrole_names = [\"*\"]\nsource_identity = true\nroot = true\nidentity_center_users = true\n",
        )
        .unwrap();
        let detector = Detector::new(policy);
        let with_canary = detector.clone().with_canary(super::tests::canary(None));
        let mut canary = canary_update();
        canary["userIdentity"]["sessionContext"]["sourceIdentity"] = json!("someone");
        canary["userIdentity"]["onBehalfOf"] = json!({"userId": "u-1", "identityStoreArn": "arn:aws:identitystore::1:identitystore/d-1"});
        // The policy would make it a person...
        let record = Record::from_value(canary.clone()).unwrap();
        assert!(detector.assess(&record).alert().is_some());
        // ...but the canary check runs first.
        let (sink, store) = (FakeSink::default(), MemoryStore::default());
        let summary = handle(
            &pipeline(&with_canary, &sink, &store, 60),
            in_envelope(canary),
            at(1000),
        )
        .await
        .unwrap();
        assert_eq!(summary.reason.as_deref(), Some("canary"));
        assert!(sink.delivered.lock().unwrap().is_empty());
    }
}
