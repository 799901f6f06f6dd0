//! Publishes alerts to an SNS topic with the AWS SDK, with the shared configuration of
//! `sdk_config.rs` (retries, timeouts, HTTPS client).
//!
//! This module only sends: the Subject, size and attribute rules live in `sns_message.rs`.

pub use crate::sdk_config::{MAX_ATTEMPTS, OPERATION_TIMEOUT, load_sdk_config};
use aws_sdk_sns::Client;
use aws_sdk_sns::error::DisplayErrorContext;
use aws_sdk_sns::types::MessageAttributeValue;
use lambda_code_watch::alert::Alert;
use lambda_code_watch::grouping::GroupSummary;
use lambda_code_watch::sink::sns_message::{self, ATTRIBUTE_DATA_TYPE, SnsMessage, TopicArn};
use lambda_code_watch::sink::{AlertSink, DeliveryError, Receipt};

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
