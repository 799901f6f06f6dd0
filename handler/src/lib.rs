//! The Lambda function (package `lambda-code-watch-handler`): settings from the environment, one event in, one verdict and
//! at most one delivered alert out, one structured log line per invocation.
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
//! This package does not decode CloudTrail records, decide, or render (the library does, through the
//! same envelope policy and the same `Detector` as `scan`), and does not shape SNS messages
//! (`lambda_code_watch::sink::sns_message`); it publishes them (`sns.rs`).

pub mod metrics;
pub mod sdk_config;
pub mod sns;

use crate::sns::{SnsSink, load_sdk_config};
use lambda_code_watch::record::{DecodeError, Envelope, Record};
use lambda_code_watch::sink::sns_message::TopicArn;
use lambda_code_watch::sink::stdout::StdoutSink;
use lambda_code_watch::sink::{AlertSink, DeliveryError};
use lambda_code_watch::{Detector, Outcome};
use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::ffi::OsString;
use std::fmt;
use std::sync::OnceLock;

/// The SNS topic to publish alerts to. Required, unless [`STDOUT_VARIABLE`] asks for stdout.
pub const TOPIC_VARIABLE: &str = "ALERT_TOPIC_ARN";
/// `1` writes alerts to stdout instead of publishing them: for local runs only. The template never
/// sets it, so a deployed function with a blanked topic refuses to start instead of "delivering"
/// alerts to its own log.
pub const STDOUT_VARIABLE: &str = "ALERT_STDOUT";
/// The IAM role the stack's canary uses to change its throwaway function's code. Its calls are
/// heartbeats, never alerts.
pub const CANARY_ROLE_VARIABLE: &str = "CANARY_ROLE_ARN";
/// The throwaway function the canary updates: a canary call on any other function is no heartbeat.
pub const CANARY_TARGET_VARIABLE: &str = "CANARY_TARGET_FUNCTION";
/// Set by Lambda (and by `cargo lambda watch`): the heartbeat metric's `FunctionName` dimension.
pub const FUNCTION_NAME_VARIABLE: &str = "AWS_LAMBDA_FUNCTION_NAME";
/// The `detail-type` EventBridge gives CloudTrail management events.
pub const CLOUDTRAIL_DETAIL_TYPE: &str = "AWS API Call via CloudTrail";

/// The function's settings, read and checked once at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Where alerts are published; `None` only when `ALERT_STDOUT=1` asked for stdout.
    pub alert_topic: Option<TopicArn>,
    /// Who the canary is (see [`Canary`]).
    pub canary: Canary,
}

/// The stack's canary: its role's ARN, and the name the heartbeat metric is recorded under.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Canary {
    /// `userIdentity.sessionContext.sessionIssuer.arn` of the canary's calls; `None`: no canary.
    pub role_arn: Option<String>,
    /// The function whose code the canary replaces; when set, the canary's role changing any other
    /// function's code is judged by the rule like anyone else (a role given more rights than the
    /// stack gave it must not buy silence).
    pub target_function: Option<String>,
    /// This function's name (`AWS_LAMBDA_FUNCTION_NAME`).
    pub function_name: String,
}

/// A setting that is present but unusable, naming the variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingsError {
    pub variable: &'static str,
    pub reason: String,
}

impl fmt::Display for SettingsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid {}: {}", self.variable, self.reason)
    }
}

impl std::error::Error for SettingsError {}

impl Settings {
    pub fn from_env() -> Result<Settings, SettingsError> {
        Settings::from_lookup(|name| std::env::var_os(name))
    }

    /// Reads settings through `lookup` (the environment, or a map in tests).
    ///
    /// A destination is required: an unset or empty `ALERT_TOPIC_ARN` stops the start, unless
    /// `ALERT_STDOUT=1` asks for stdout (a local run). Whether the process runs on Lambda is not
    /// guessed from the environment: cargo-lambda's emulator sets the same variables Lambda does.
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<OsString>,
    ) -> Result<Settings, SettingsError> {
        let text = |variable: &'static str| -> Result<Option<String>, SettingsError> {
            match lookup(variable) {
                None => Ok(None),
                Some(raw) => raw.into_string().map(Some).map_err(|raw| SettingsError {
                    variable,
                    reason: format!("{raw:?} is not valid UTF-8"),
                }),
            }
        };
        let to_stdout = match text(STDOUT_VARIABLE)?.as_deref() {
            None | Some("" | "0") => false,
            Some("1") => true,
            Some(other) => {
                return Err(SettingsError {
                    variable: STDOUT_VARIABLE,
                    reason: format!(
                        "{other:?} is not 1 (write alerts to stdout, for local runs) or 0/unset"
                    ),
                });
            }
        };
        let topic = text(TOPIC_VARIABLE)?.filter(|value| !value.is_empty());
        let alert_topic = match (topic, to_stdout) {
            (Some(value), false) => Some(TopicArn::parse(&value).map_err(|e| SettingsError {
                variable: TOPIC_VARIABLE,
                reason: e.to_string(),
            })?),
            (None, true) => None,
            (Some(value), true) => {
                return Err(SettingsError {
                    variable: STDOUT_VARIABLE,
                    reason: format!(
                        "{STDOUT_VARIABLE}=1 and {TOPIC_VARIABLE}={value:?} are both set: unset \
                         one of them, so it is clear where alerts go"
                    ),
                });
            }
            (None, false) => {
                return Err(SettingsError {
                    variable: TOPIC_VARIABLE,
                    reason: format!(
                        "it is unset or empty, so alerts would be delivered to nobody. Set it to \
                         the SNS topic that receives alerts (the stack does), or, for a local run, \
                         set {STDOUT_VARIABLE}=1 to write alerts to stdout"
                    ),
                });
            }
        };
        let canary = Canary {
            role_arn: text(CANARY_ROLE_VARIABLE)?.filter(|arn| !arn.is_empty()),
            target_function: text(CANARY_TARGET_VARIABLE)?.filter(|name| !name.is_empty()),
            function_name: text(FUNCTION_NAME_VARIABLE)?.unwrap_or_default(),
        };
        Ok(Settings {
            alert_topic,
            canary,
        })
    }
}

/// The canary of this process, set once at start by [`run`] (a process serves one function).
static CANARY: OnceLock<Canary> = OnceLock::new();

/// Whether `record` is the canary's own code change: a successful `UpdateFunctionCode*` call made
/// with the canary's role, on the canary's target function when one is given. Compared on the
/// session issuer's ARN, which a person cannot take without assuming that role (and the role may
/// only update the canary's throwaway function).
pub fn is_canary_call(
    record: &Record,
    canary_role_arn: &str,
    target_function: Option<&str>,
) -> bool {
    !canary_role_arn.is_empty()
        && target_function.is_none_or(|target| record.function_name() == Some(target))
        && record.event_source() == Some("lambda.amazonaws.com")
        && record
            .event_name()
            .is_some_and(|name| name.starts_with("UpdateFunctionCode"))
        && !record.failed()
        && record.issuer_str("arn") == Some(canary_role_arn)
}

/// The canary check that runs before the rule: for the canary's call, records the heartbeat,
/// makes `summary` quiet with reason `canary` and returns true; otherwise leaves it untouched.
fn canary_heartbeat(record: &Record, envelope: &Envelope, summary: &mut Summary) -> bool {
    let Some(canary) = CANARY.get() else {
        return false;
    };
    let Some(role_arn) = canary.role_arn.as_deref() else {
        return false;
    };
    if !is_canary_call(record, role_arn, canary.target_function.as_deref()) {
        return false;
    }
    summary.verdict = "quiet".into();
    summary.reason = Some("canary".into());
    let written = metrics::write_canary_heartbeat(&canary.function_name);
    tracing::info!(
        verdict = "quiet",
        reason = "canary",
        why = "the stack's canary changed its own throwaway function: a heartbeat, not a person",
        heartbeat_written = written.is_ok(),
        event_id = summary.event_id.as_deref(),
        event_name = summary.event_name.as_deref(),
        envelope_id = envelope.id.as_deref(),
        "canary heartbeat"
    );
    if let Err(e) = written {
        tracing::error!(error = %e, "canary heartbeat not written to stdout");
    }
    true
}

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
}

impl InvocationError {
    pub fn error_type(&self) -> &'static str {
        match self {
            InvocationError::Undecodable(_) => "UndecodableEvent",
            InvocationError::NotDelivered(_) => "AlertNotDelivered",
        }
    }
}

impl fmt::Display for InvocationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InvocationError::Undecodable(e) => write!(f, "event not decoded: {e}"),
            InvocationError::NotDelivered(e) => e.fmt(f),
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

/// Handles one event: decode, assess, deliver the alert if there is one, log one line.
///
/// The payload is unwrapped by the library's one envelope policy ([`Record::unwrap`]) and assessed
/// by the one path ([`Detector::assess`]) that `scan` also uses.
pub async fn handle_event<S: AlertSink>(
    detector: &Detector,
    sink: &S,
    payload: Value,
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
    let mut summary = Summary {
        verdict: String::new(),
        reason: None,
        event_id: record.event_id().map(str::to_owned),
        event_name: record.event_name().map(str::to_owned),
        alert_title: None,
        message_id: None,
        truncated_bytes: 0,
    };
    if canary_heartbeat(&record, &envelope, &mut summary) {
        return Ok(summary);
    }
    let alert = match detector.assess(&record) {
        Outcome::Alert(alert) => alert,
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
    summary.verdict = "alert".into();
    summary.alert_title = Some(alert.title.clone());
    match sink.deliver(&alert).await {
        Ok(receipt) => {
            summary.message_id = receipt.message_id;
            summary.truncated_bytes = receipt.truncated_bytes;
            tracing::info!(
                verdict = "alert",
                actor = alert.actor.as_str(),
                actor_type = alert.actor_type,
                function_name = alert.function_name.as_str(),
                event_id = summary.event_id.as_deref(),
                event_name = summary.event_name.as_deref(),
                envelope_id = envelope.id.as_deref(),
                detail_type = envelope.detail_type.as_deref(),
                message_id = summary.message_id.as_deref(),
                truncated_bytes = summary.truncated_bytes,
                "alert delivered"
            );
            Ok(summary)
        }
        Err(e) => {
            tracing::error!(
                verdict = "alert",
                error_type = "AlertNotDelivered",
                actor = alert.actor.as_str(),
                function_name = alert.function_name.as_str(),
                event_id = summary.event_id.as_deref(),
                envelope_id = envelope.id.as_deref(),
                destination = e.destination(),
                error = %e,
                "alert not delivered"
            );
            Err(InvocationError::NotDelivered(e))
        }
    }
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

/// Serves invocations until the runtime stops: builds the sink once (SDK configuration and SNS
/// client included), then hands a reference to every invocation.
pub async fn run(settings: Settings) -> Result<(), lambda_runtime::Error> {
    let _ = CANARY.set(settings.canary);
    match settings.alert_topic {
        Some(topic) => {
            let config = load_sdk_config().await;
            tracing::info!(
                topic = topic.as_str(),
                topic_region = topic.region(),
                region = config.region().map(|r| r.as_ref()),
                "publishing alerts to SNS"
            );
            let sink = SnsSink::new(sns_client_for(&config, &topic), topic);
            serve(&sink).await
        }
        None => {
            tracing::warn!(
                "{STDOUT_VARIABLE}=1: alerts are written to stdout, not published (local runs only)"
            );
            serve(&StdoutSink).await
        }
    }
}

/// An SNS client for the topic's own region: SNS answers for a topic only there, so a client built
/// for the function's region would fail every publish to a topic elsewhere.
fn sns_client_for(config: &aws_types::SdkConfig, topic: &TopicArn) -> aws_sdk_sns::Client {
    let sns_config = aws_sdk_sns::config::Builder::from(config)
        .region(aws_types::region::Region::new(topic.region().to_owned()))
        .build();
    aws_sdk_sns::Client::from_conf(sns_config)
}

async fn serve<S: AlertSink>(sink: &S) -> Result<(), lambda_runtime::Error> {
    let detector = Detector::default();
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
        handle_event(&detector, sink, event.payload)
    }))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_code_watch::Alert;
    use lambda_code_watch::sink::Receipt;
    use serde_json::json;
    use std::collections::HashMap;
    use std::sync::Mutex;

    /// Remembers what it was asked to deliver; fails when told to.
    #[derive(Default)]
    struct FakeSink {
        delivered: Mutex<Vec<Alert>>,
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
        };
        assert_eq!(
            serde_json::to_string(&summary).unwrap(),
            r#"{"verdict":"quiet","reason":"other-api","event_id":"e1","event_name":"DeleteFunction"}"#
        );
    }

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, SettingsError> {
        let vars: HashMap<String, OsString> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), OsString::from(v)))
            .collect();
        Settings::from_lookup(|name| vars.get(name).cloned())
    }

    #[test]
    fn a_destination_is_required() {
        for vars in [
            &[][..],
            &[(TOPIC_VARIABLE, "")][..],
            &[(STDOUT_VARIABLE, "0")][..],
        ] {
            let error = settings(vars).unwrap_err();
            assert_eq!(error.variable, TOPIC_VARIABLE, "{vars:?}");
            let text = error.to_string();
            assert!(text.contains("delivered to nobody"), "{text}");
            assert!(text.contains("ALERT_STDOUT=1"), "names the way out: {text}");
        }
        let topic = settings(&[(TOPIC_VARIABLE, "arn:aws:sns:us-east-1:123456789012:alerts")])
            .unwrap()
            .alert_topic
            .unwrap();
        assert_eq!(topic.as_str(), "arn:aws:sns:us-east-1:123456789012:alerts");
    }

    #[test]
    fn stdout_must_be_asked_for_by_name_and_alone() {
        assert_eq!(
            settings(&[(STDOUT_VARIABLE, "1")]).unwrap().alert_topic,
            None
        );
        assert_eq!(
            settings(&[(STDOUT_VARIABLE, "1"), (TOPIC_VARIABLE, "")])
                .unwrap()
                .alert_topic,
            None
        );
        for odd in ["yes", "true", " 1"] {
            let error = settings(&[(STDOUT_VARIABLE, odd)]).unwrap_err();
            assert_eq!(error.variable, STDOUT_VARIABLE, "{odd}");
        }
        let both = settings(&[
            (STDOUT_VARIABLE, "1"),
            (TOPIC_VARIABLE, "arn:aws:sns:us-east-1:123456789012:alerts"),
        ])
        .unwrap_err();
        assert!(both.to_string().contains("both set"), "{both}");
    }

    #[test]
    fn canary_settings_are_read_once() {
        let read = settings(&[
            (TOPIC_VARIABLE, "arn:aws:sns:us-east-1:123456789012:alerts"),
            (CANARY_ROLE_VARIABLE, CANARY_ROLE),
            (CANARY_TARGET_VARIABLE, "lcw-canary-target"),
            (FUNCTION_NAME_VARIABLE, "code-watch-fn"),
        ])
        .unwrap();
        assert_eq!(read.canary.role_arn.as_deref(), Some(CANARY_ROLE));
        assert_eq!(
            read.canary.target_function.as_deref(),
            Some("lcw-canary-target")
        );
        assert_eq!(read.canary.function_name, "code-watch-fn");
        let none = settings(&[(STDOUT_VARIABLE, "1"), (CANARY_ROLE_VARIABLE, "")]).unwrap();
        assert_eq!(none.canary.role_arn, None);
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

    #[test]
    fn the_canary_is_its_role_a_successful_code_update_and_nothing_else() {
        let record = |value: Value| Record::from_value(value).unwrap();
        let target = Some("lcw-canary-target");
        assert!(is_canary_call(
            &record(canary_update()),
            CANARY_ROLE,
            target
        ));
        assert!(is_canary_call(&record(canary_update()), CANARY_ROLE, None));
        assert!(!is_canary_call(&record(canary_update()), "", target));
        assert!(!is_canary_call(
            &record(canary_update()),
            "arn:aws:iam::123456789012:role/other",
            target
        ));
        assert!(!is_canary_call(
            &record(iam_user_update()),
            CANARY_ROLE,
            target
        ));
        let mut failed = canary_update();
        failed["errorCode"] = json!("AccessDenied");
        assert!(!is_canary_call(&record(failed), CANARY_ROLE, target));
        let mut other_api = canary_update();
        other_api["eventName"] = json!("UpdateFunctionConfiguration20150331v2");
        assert!(!is_canary_call(&record(other_api), CANARY_ROLE, target));
        // The canary's role changing another function is not the canary.
        let mut elsewhere = canary_update();
        elsewhere["requestParameters"]["functionName"] =
            json!("arn:aws:lambda:us-west-2:123456789012:function:production-api");
        elsewhere["responseElements"]["functionName"] = json!("production-api");
        assert!(!is_canary_call(&record(elsewhere), CANARY_ROLE, target));
        // A person whose session name looks like the role is still a person.
        let mut person = iam_user_update();
        person["userIdentity"]["arn"] = json!(CANARY_ROLE);
        assert!(!is_canary_call(&record(person), CANARY_ROLE, target));
    }

    #[tokio::test]
    async fn the_canary_is_quiet_even_when_the_rule_would_alert() {
        // One process-wide canary, as `run` sets it; every test here uses the same one.
        let _ = CANARY.set(Canary {
            role_arn: Some(CANARY_ROLE.into()),
            target_function: Some("lcw-canary-target".into()),
            function_name: "code-watch-fn".into(),
        });
        let sink = FakeSink {
            fail: true,
            ..FakeSink::default()
        };
        let summary = handle_event(&Detector::default(), &sink, in_envelope(canary_update()))
            .await
            .unwrap();
        assert_eq!(summary.verdict, "quiet");
        assert_eq!(summary.reason.as_deref(), Some("canary"));
        assert_eq!(summary.event_id.as_deref(), Some("canary-1"));
        // Even a policy that counted every role as a person could not turn it into an alert: the
        // canary check runs before the rule.
        let mut sso_looking = canary_update();
        sso_looking["userIdentity"]["sessionContext"]["sessionIssuer"]["userName"] =
            json!("AWSReservedSSO_Admin_0123");
        let summary = handle_event(&Detector::default(), &sink, sso_looking)
            .await
            .unwrap();
        assert_eq!(summary.reason.as_deref(), Some("canary"));
        // The same call by anyone else is judged by the rule as usual.
        let summary = handle_event(
            &Detector::default(),
            &FakeSink::default(),
            iam_user_update(),
        )
        .await
        .unwrap();
        assert_eq!(summary.verdict, "alert");
    }

    #[test]
    fn a_bad_topic_names_the_variable_and_the_value() {
        for bad in [
            " ",
            "alerts",
            "arn:aws:sqs:us-east-1:123456789012:alerts",
            "arn:aws:sns:us-east-1:1234:alerts",
        ] {
            let error = settings(&[(TOPIC_VARIABLE, bad)]).unwrap_err();
            assert_eq!(error.variable, TOPIC_VARIABLE);
            let text = error.to_string();
            assert!(text.contains(TOPIC_VARIABLE), "{text}");
            assert!(text.contains(&format!("{bad:?}")), "{text}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_topic_that_is_not_utf8_is_an_error() {
        use std::os::unix::ffi::OsStringExt;
        let error =
            Settings::from_lookup(|_| Some(OsString::from_vec(vec![0xff, 0xfe]))).unwrap_err();
        assert!(error.to_string().contains("UTF-8"), "{error}");
    }
}
