//! Where alerts go: one trait, [`AlertSink`], and its adapters.
//!
//! - [`sns`] (feature `lambda`): publishes to an SNS topic with the AWS SDK.
//! - [`sns_message`]: what SNS accepts (Subject, message size, attributes, topic ARN), as pure
//!   functions, so the rules are tested in every build, without the SDK.
//! - [`stdout`]: prints the alert document on stdout, for local runs without a topic.
//!
//! A sink receives alerts that the rule already decided on; it never decides, filters or re-renders
//! (rendering is `alert.rs`, also for the Subject, which is only made safe here).

use crate::alert::Alert;
use crate::grouping::GroupSummary;
use std::fmt;
use std::future::Future;

pub mod sns_message;
pub mod stdout;

/// Delivers one alert somewhere. Generic callers (the Lambda handler) take `&impl AlertSink`, so tests
/// pass a fake and production passes the SNS adapter.
pub trait AlertSink {
    /// Delivers `alert`. An `Err` means the alert did not reach its destination and the caller must
    /// not report success.
    fn deliver(&self, alert: &Alert)
    -> impl Future<Output = Result<Receipt, DeliveryError>> + Send;

    /// Delivers the summary of a closed grouping window, with the same guarantee.
    fn deliver_summary(
        &self,
        summary: &GroupSummary,
    ) -> impl Future<Output = Result<Receipt, DeliveryError>> + Send;
}

/// Proof of delivery.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Receipt {
    /// The destination's id for the message (SNS `MessageId`), when it gives one.
    pub message_id: Option<String>,
    /// Bytes cut from oversized fields to fit the destination's size limit (0 when sent whole).
    pub truncated_bytes: usize,
}

/// Why an alert was not delivered, naming the destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryError {
    destination: String,
    reason: String,
}

impl DeliveryError {
    pub fn new(destination: impl Into<String>, reason: impl Into<String>) -> DeliveryError {
        DeliveryError {
            destination: destination.into(),
            reason: reason.into(),
        }
    }

    /// Where the alert was going (topic ARN, `stdout`).
    pub fn destination(&self) -> &str {
        &self.destination
    }
}

impl fmt::Display for DeliveryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "alert not delivered to {}: {}",
            self.destination, self.reason
        )
    }
}

impl std::error::Error for DeliveryError {}
