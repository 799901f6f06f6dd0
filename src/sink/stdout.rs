//! The sink for local runs: each alert document as one line on stdout, exactly as `scan` prints it.
//!
//! Used by the Lambda handler only when `ALERT_STDOUT=1` asks for it (under `cargo lambda watch`,
//! the line shows in the terminal). It does no shaping for SNS limits: the
//! line is `Alert::to_json()` whole.

use super::{AlertSink, DeliveryError, Receipt};
use crate::alert::Alert;
use crate::grouping::GroupSummary;
use std::io::Write as _;

/// Writes alerts to standard output.
#[derive(Debug, Clone, Copy, Default)]
pub struct StdoutSink;

impl StdoutSink {
    /// Writes one alert line; a closed or full stdout is a delivery failure, not a silent loss.
    pub fn write(&self, alert: &Alert) -> Result<Receipt, DeliveryError> {
        self.write_line(alert.to_json())
    }

    fn write_line(&self, mut line: String) -> Result<Receipt, DeliveryError> {
        line.push('\n');
        let mut out = std::io::stdout().lock();
        out.write_all(line.as_bytes())
            .and_then(|()| out.flush())
            .map_err(|e| DeliveryError::new("stdout", e.to_string()))?;
        Ok(Receipt::default())
    }
}

impl AlertSink for StdoutSink {
    async fn deliver(&self, alert: &Alert) -> Result<Receipt, DeliveryError> {
        self.write(alert)
    }

    async fn deliver_summary(&self, summary: &GroupSummary) -> Result<Receipt, DeliveryError> {
        self.write_line(summary.to_json())
    }
}
