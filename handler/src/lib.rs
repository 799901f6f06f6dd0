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
//! verdict or a delivered alert succeeds.
//!
//! This package does not decode CloudTrail records, decide, or render (the library does, through the
//! same envelope policy and the same `Detector` as `scan`), and does not shape SNS messages
//! (`lambda_code_watch::sink::sns_message`); it publishes them (`sns.rs`).

pub mod sns;

use crate::sns::{SnsSink, load_sdk_config};
use lambda_code_watch::record::{DecodeError, Record};
use lambda_code_watch::sink::sns_message::TopicArn;
use lambda_code_watch::sink::stdout::StdoutSink;
use lambda_code_watch::sink::{AlertSink, DeliveryError};
use lambda_code_watch::{Detector, Outcome};
use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::ffi::OsString;
use std::fmt;

/// The SNS topic to publish alerts to; unset means "write alerts to stdout".
pub const TOPIC_VARIABLE: &str = "ALERT_TOPIC_ARN";
/// The `detail-type` EventBridge gives CloudTrail management events.
pub const CLOUDTRAIL_DETAIL_TYPE: &str = "AWS API Call via CloudTrail";

/// The function's settings, read and checked once at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Where alerts are published; `None` writes them to stdout (local runs).
    pub alert_topic: Option<TopicArn>,
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
    /// An empty `ALERT_TOPIC_ARN` counts as unset: `sam local invoke --env-vars` can override a
    /// variable but not remove it, and `ALERT_TOPIC_ARN= cargo lambda watch` is the shell's way to
    /// the same. Anything else must be a topic ARN (the template never sets it empty).
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<OsString>,
    ) -> Result<Settings, SettingsError> {
        let alert_topic = match lookup(TOPIC_VARIABLE) {
            None => None,
            Some(raw) if raw.is_empty() => None,
            Some(raw) => {
                let value = raw.into_string().map_err(|raw| SettingsError {
                    variable: TOPIC_VARIABLE,
                    reason: format!("{raw:?} is not valid UTF-8"),
                })?;
                let topic = TopicArn::parse(&value).map_err(|e| SettingsError {
                    variable: TOPIC_VARIABLE,
                    reason: e.to_string(),
                })?;
                Some(topic)
            }
        };
        Ok(Settings { alert_topic })
    }
}

/// What one invocation did: the function's response, so `invoke` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// `alert` or `quiet`.
    pub verdict: String,
    /// Why the event stayed quiet (`other-api`, `failed-call`, `not-a-person`).
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

/// JSON log lines on stderr (stdout carries alert documents when no topic is set, as with `scan`).
///
/// The level comes from `AWS_LAMBDA_LOG_LEVEL` (Lambda's logging controls), else `info`; `RUST_LOG`,
/// when set, replaces the whole filter. By default the runtime's own copy of a failed invocation's
/// error is left out: the handler already logged that invocation's line, with more context (a panic
/// still shows, through the panic hook).
pub fn init_logging() {
    use tracing_subscriber::EnvFilter;
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
        .with_env_filter(EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .try_init();
}

/// Serves invocations until the runtime stops: builds the sink once (SDK configuration and SNS
/// client included), then hands a reference to every invocation.
pub async fn run(settings: Settings) -> Result<(), lambda_runtime::Error> {
    match settings.alert_topic {
        Some(topic) => {
            let config = load_sdk_config().await;
            tracing::info!(
                topic = topic.as_str(),
                region = config.region().map(|r| r.as_ref()),
                "publishing alerts to SNS"
            );
            let sink = SnsSink::new(aws_sdk_sns::Client::new(&config), topic);
            serve(&sink).await
        }
        None => {
            tracing::warn!(
                "{TOPIC_VARIABLE} is not set: alerts are written to stdout, not published"
            );
            serve(&StdoutSink).await
        }
    }
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
    fn topic_is_optional() {
        assert_eq!(settings(&[]).unwrap().alert_topic, None);
        assert_eq!(settings(&[(TOPIC_VARIABLE, "")]).unwrap().alert_topic, None);
        let topic = settings(&[(TOPIC_VARIABLE, "arn:aws:sns:us-east-1:123456789012:alerts")])
            .unwrap()
            .alert_topic
            .unwrap();
        assert_eq!(topic.as_str(), "arn:aws:sns:us-east-1:123456789012:alerts");
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
