//! Publishes alerts to an SNS topic with the AWS SDK (feature `lambda`).
//!
//! The SDK configuration is the standard one (region, credentials and `AWS_ENDPOINT_URL` from the
//! environment) with three explicit choices: an HTTPS client on rustls with the ring provider (no
//! C toolchain needed to cross-compile for Lambda), the standard retry mode with 3 attempts
//! (exponential backoff with jitter; throttling, 5xx and connection errors are retried), and
//! timeouts so a stalled endpoint fails the invocation instead of hanging until Lambda kills it.
//!
//! This module only sends: the Subject, size and attribute rules live in `sns_message.rs`.

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_sns::Client;
use aws_sdk_sns::error::DisplayErrorContext;
use aws_sdk_sns::types::MessageAttributeValue;
use aws_smithy_http_client::tls;
use lambda_code_watch::alert::Alert;
use lambda_code_watch::grouping::GroupSummary;
use lambda_code_watch::sink::sns_message::{self, ATTRIBUTE_DATA_TYPE, SnsMessage, TopicArn};
use lambda_code_watch::sink::{AlertSink, DeliveryError, Receipt};
use std::time::Duration;

/// Attempts per publish, the first included (the SDK's standard mode backs off between them).
pub const MAX_ATTEMPTS: u32 = 3;
// A publish takes tens of milliseconds. These bounds keep all attempts, with their backoff, inside
// the function's 10 s timeout (template.yaml), so a stalled endpoint ends in a reported
// `AlertNotDelivered` error rather than in Lambda killing the invocation mid-retry.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(3);
/// The whole publish, retries included.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(8);

/// Loads the SDK configuration from the environment, once per process.
pub async fn load_sdk_config() -> aws_config::SdkConfig {
    let http_client = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(http_client)
        .retry_config(RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                .operation_timeout(OPERATION_TIMEOUT)
                .build(),
        )
        .load()
        .await
}

/// Publishes each alert to one SNS topic.
#[derive(Debug, Clone)]
pub struct SnsSink {
    client: Client,
    topic: TopicArn,
}

impl SnsSink {
    pub fn new(client: Client, topic: TopicArn) -> SnsSink {
        SnsSink { client, topic }
    }

    fn failure(&self, reason: impl Into<String>) -> DeliveryError {
        DeliveryError::new(self.topic.as_str(), reason)
    }
}

impl SnsSink {
    async fn publish(
        &self,
        message: &SnsMessage,
        fifo_deduplication_id: Option<String>,
    ) -> Result<Receipt, DeliveryError> {
        let mut request = self
            .client
            .publish()
            .topic_arn(self.topic.as_str())
            .subject(&message.subject)
            .message(&message.message)
            .message_structure("json");
        for attribute in &message.attributes {
            let value = MessageAttributeValue::builder()
                .data_type(ATTRIBUTE_DATA_TYPE)
                .string_value(&attribute.value)
                .build()
                .map_err(|e| {
                    self.failure(format!(
                        "message attribute {}: {}",
                        attribute.name,
                        DisplayErrorContext(&e)
                    ))
                })?;
            request = request.message_attributes(attribute.name, value);
        }
        if self.topic.is_fifo() {
            request = request.message_group_id(sns_message::fifo_group_id());
            if let Some(id) = fifo_deduplication_id {
                request = request.message_deduplication_id(id);
            }
        }
        let output = request.send().await.map_err(|e| {
            self.failure(format!(
                "SNS Publish failed (after up to {MAX_ATTEMPTS} attempts): {}",
                DisplayErrorContext(&e)
            ))
        })?;
        Ok(Receipt {
            message_id: output.message_id,
            truncated_bytes: message.truncated_bytes,
        })
    }
}

impl AlertSink for SnsSink {
    async fn deliver(&self, alert: &Alert) -> Result<Receipt, DeliveryError> {
        let message = SnsMessage::for_alert(alert).map_err(|e| self.failure(e.to_string()))?;
        let id = sns_message::fifo_deduplication_id(alert).map(str::to_owned);
        self.publish(&message, id).await
    }

    async fn deliver_summary(&self, summary: &GroupSummary) -> Result<Receipt, DeliveryError> {
        let message = SnsMessage::for_summary(summary);
        let id = sns_message::fifo_summary_deduplication_id(summary);
        self.publish(&message, Some(id)).await
    }
}
