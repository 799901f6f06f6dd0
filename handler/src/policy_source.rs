//! Where the deployed function gets its tuning policy, and how it keeps it current.
//!
//! The document is the same TOML `scan --policy` reads. It comes from an SSM parameter
//! (`POLICY_PARAMETER`: the stack creates one, holding an empty policy = the original rule), or
//! from a file (`POLICY_FILE`: a local run, or a document bundled with the function), or from
//! nowhere (the original rule). It is read at start and again every `POLICY_REFRESH_SECONDS`
//! (default 300), so a change reaches every running instance within minutes, with no code change
//! and no deployment.
//!
//! A bad policy never silently disables alerting:
//! - at start (no policy in force yet) a document that cannot be read or used stops the function
//!   (exit code 2, the message names the parameter or file, the line and the key): every event
//!   then fails, Lambda keeps it for retries and the failed-invocation queue, and the errors alarm
//!   fires;
//! - on a refresh, the last good policy stays in force; the refusal is logged as an error and
//!   counted (`PolicyRejected` metric, with an alarm), at every refresh until fixed.
//!
//! This module reads and checks; applying the policy is the `Detector`'s job.

use lambda_code_watch::alert::printable;
use lambda_code_watch::{Detector, Policy, PolicyError};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Where the policy document is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicySource {
    /// No policy: the original rule.
    Original,
    /// A file (local runs, or bundled with the function).
    File(PathBuf),
    /// An SSM parameter, by name or ARN.
    Parameter(String),
}

impl PolicySource {
    /// The name used in messages.
    pub fn describe(&self) -> String {
        match self {
            PolicySource::Original => "no policy (the original rule)".to_owned(),
            PolicySource::File(path) => path.display().to_string(),
            PolicySource::Parameter(name) => format!("ssm:{name}"),
        }
    }
}

/// Fetches the raw document from SSM (an adapter, so tests can run without AWS).
pub trait ParameterReader: Send + Sync {
    fn read(&self, name: &str) -> impl std::future::Future<Output = Result<String, String>> + Send;
}

/// The SDK's SSM client.
impl ParameterReader for aws_sdk_ssm::Client {
    async fn read(&self, name: &str) -> Result<String, String> {
        let output = self.get_parameter().name(name).send().await.map_err(|e| {
            format!(
                "cannot read the SSM parameter: {}",
                aws_sdk_ssm::error::DisplayErrorContext(&e)
            )
        })?;
        output
            .parameter
            .and_then(|p| p.value)
            .ok_or_else(|| "the SSM parameter has no value".to_owned())
    }
}

/// The policy in force and when to read it again.
pub struct LivePolicy<R> {
    source: PolicySource,
    reader: Option<R>,
    refresh: Duration,
    /// What every detector built from the policy starts from: the settings that are not the
    /// policy's (account names, the canary).
    base: Detector,
    state: Mutex<State>,
}

struct State {
    detector: Arc<Detector>,
    text: String,
    read_at: Instant,
}

/// A refresh that was refused: the last good policy stays in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    pub error: String,
}

impl<R: ParameterReader> LivePolicy<R> {
    /// Reads the policy for the first time; an error here must stop the function.
    pub async fn load(
        source: PolicySource,
        reader: Option<R>,
        refresh: Duration,
        base: Detector,
    ) -> Result<LivePolicy<R>, PolicyError> {
        let text = read(&source, reader.as_ref()).await?;
        let detector = detector(&source, &text, &base)?;
        Ok(LivePolicy {
            source,
            reader,
            refresh,
            base,
            state: Mutex::new(State {
                detector: Arc::new(detector),
                text,
                read_at: Instant::now(),
            }),
        })
    }

    pub fn source(&self) -> &PolicySource {
        &self.source
    }

    /// The detector to use now: the policy is read again when the refresh interval has passed.
    /// A refused refresh keeps the last good policy and says why.
    pub async fn current(&self) -> (Arc<Detector>, Option<Rejected>) {
        let (detector, due) = {
            let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            (
                state.detector.clone(),
                state.read_at.elapsed() >= self.refresh,
            )
        };
        if !due || self.source == PolicySource::Original {
            return (detector, None);
        }
        let fresh = match read(&self.source, self.reader.as_ref()).await {
            Ok(text) => detector_for(&self.source, text, &self.base),
            Err(e) => Err(e),
        };
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.read_at = Instant::now();
        match fresh {
            Ok((text, fresh)) => {
                if text != state.text {
                    tracing::info!(policy = %self.source.describe(), "policy changed: the new one is in force");
                    log_expired(&fresh);
                }
                // Rebuilt even when unchanged: an entry's expiry is judged against today.
                state.detector = Arc::new(fresh);
                state.text = text;
                (state.detector.clone(), None)
            }
            Err(e) => (
                state.detector.clone(),
                Some(Rejected {
                    error: e.to_string(),
                }),
            ),
        }
    }
}

fn detector_for(
    source: &PolicySource,
    text: String,
    base: &Detector,
) -> Result<(String, Detector), PolicyError> {
    let detector = detector(source, &text, base)?;
    Ok((text, detector))
}

fn detector(source: &PolicySource, text: &str, base: &Detector) -> Result<Detector, PolicyError> {
    Ok(match source {
        PolicySource::Original => base.clone(),
        _ => base
            .clone()
            .with_policy(Policy::parse(&source.describe(), text)?),
    })
}

async fn read<R: ParameterReader>(
    source: &PolicySource,
    reader: Option<&R>,
) -> Result<String, PolicyError> {
    let failure = |message: String| PolicyError {
        source: source.describe(),
        line: None,
        key: None,
        message,
    };
    match source {
        PolicySource::Original => Ok(String::new()),
        PolicySource::File(path) => std::fs::read_to_string(path)
            .map_err(|e| failure(format!("cannot read the policy file: {e}"))),
        PolicySource::Parameter(name) => match reader {
            Some(reader) => reader.read(name).await.map_err(failure),
            None => Err(failure("no SSM client".to_owned())),
        },
    }
}

/// Logs every entry of the policy that has expired: each start and each change says so.
pub fn log_expired(detector: &Detector) {
    for entry in detector.expired_entries() {
        tracing::warn!(
            policy = %detector.policy().source,
            entry = %entry.name(),
            reason = %printable(&entry.reason),
            expired_after = %entry.expires.map(|d| d.to_string()).unwrap_or_default(),
            "policy entry expired: it no longer suppresses anything"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An SSM parameter whose value a test changes.
    struct Parameter(Mutex<Result<String, String>>);

    impl ParameterReader for Parameter {
        async fn read(&self, _: &str) -> Result<String, String> {
            self.0.lock().unwrap().clone()
        }
    }

    const GOOD: &str = "[[suppress]]\nreason = \"sandbox\"\nfunctions = [\"sandbox-*\"]\n";

    #[tokio::test]
    async fn a_bad_refresh_keeps_the_last_good_policy() {
        let parameter = Parameter(Mutex::new(Ok(GOOD.to_owned())));
        let live = LivePolicy::load(
            PolicySource::Parameter("/lcw/policy".into()),
            Some(parameter),
            Duration::ZERO,
            Detector::default(),
        )
        .await
        .unwrap();
        let (detector, rejected) = live.current().await;
        assert_eq!(rejected, None);
        assert_eq!(detector.policy().suppressions.len(), 1);

        *live.reader.as_ref().unwrap().0.lock().unwrap() =
            Ok("[[suppress]]\nreason = \"all\"\nfunction = [\"*\"]\n".to_owned());
        let (detector, rejected) = live.current().await;
        let rejected = rejected.expect("the bad document is refused");
        assert!(
            rejected.error.contains("ssm:/lcw/policy:3"),
            "{}",
            rejected.error
        );
        assert_eq!(
            detector.policy().suppressions[0].reason,
            "sandbox",
            "last good kept"
        );

        *live.reader.as_ref().unwrap().0.lock().unwrap() = Err("throttled".to_owned());
        let (detector, rejected) = live.current().await;
        assert!(rejected.unwrap().error.contains("throttled"));
        assert_eq!(detector.policy().suppressions.len(), 1);

        *live.reader.as_ref().unwrap().0.lock().unwrap() = Ok(String::new());
        let (detector, rejected) = live.current().await;
        assert_eq!(rejected, None);
        assert!(detector.policy().is_original(), "a good change is taken");
    }

    #[tokio::test]
    async fn a_bad_policy_at_start_is_an_error() {
        let parameter = Parameter(Mutex::new(Ok("[people]\nroot = 1\n".to_owned())));
        let error = LivePolicy::load(
            PolicySource::Parameter("/lcw/policy".into()),
            Some(parameter),
            Duration::ZERO,
            Detector::default(),
        )
        .await
        .err()
        .expect("refused");
        assert_eq!(error.line, Some(2), "{error}");
        let unreadable = Parameter(Mutex::new(Err("AccessDenied".to_owned())));
        let error = LivePolicy::load(
            PolicySource::Parameter("/lcw/policy".into()),
            Some(unreadable),
            Duration::ZERO,
            Detector::default(),
        )
        .await
        .err()
        .expect("refused");
        assert!(error.to_string().contains("AccessDenied"), "{error}");
    }
}
