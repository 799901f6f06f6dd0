//! The function's settings: every environment variable it reads, read and checked once at start.
//! A setting that is present but unusable stops the start with an error naming the variable; a
//! function without a destination for its alerts does not start at all (stdout delivery is only
//! for local runs, and must be asked for by name).

use crate::policy_source::PolicySource;
use crate::trail::{self, Trail};
use lambda_code_watch::AccountNames;
use lambda_code_watch::detector::Canary;
use lambda_code_watch::sink::sns_message::TopicArn;
use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

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
/// Account names for alerts: a JSON object from 12-digit account IDs to names
/// (`{"111122223333": "payments-prod"}`). Unset or empty: alerts carry account IDs only.
pub const ACCOUNT_NAMES_VARIABLE: &str = "ACCOUNT_NAMES";
/// The DynamoDB table that makes delivery exactly-once and holds grouping windows. Unset: no
/// deduplication and no grouping.
pub const DEDUP_TABLE_VARIABLE: &str = "DEDUP_TABLE";
/// Grouping window in minutes (default [`DEFAULT_WINDOW_MINUTES`]); 0 turns grouping off.
pub const DEDUP_WINDOW_VARIABLE: &str = "DEDUP_WINDOW_MINUTES";
/// Panther's `DedupPeriodMinutes` for this rule.
pub const DEFAULT_WINDOW_MINUTES: u32 = 60;
/// The longest window accepted: a day.
pub const MAX_WINDOW_MINUTES: u32 = 1440;
/// The SSM parameter (name or ARN) holding the tuning policy.
pub const POLICY_PARAMETER_VARIABLE: &str = "POLICY_PARAMETER";
/// A file holding the tuning policy (local runs, or bundled).
pub const POLICY_FILE_VARIABLE: &str = "POLICY_FILE";
/// Seconds between reads of the policy (default [`DEFAULT_POLICY_REFRESH_SECONDS`]).
pub const POLICY_REFRESH_VARIABLE: &str = "POLICY_REFRESH_SECONDS";
pub const DEFAULT_POLICY_REFRESH_SECONDS: u64 = 300;
/// The function's settings, read and checked once at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Where alerts are published; `None` only when `ALERT_STDOUT=1` asked for stdout.
    pub alert_topic: Option<TopicArn>,
    /// Who the canary is: its calls are a heartbeat (see [`Canary`]); `None`: no canary.
    pub canary: Option<Canary>,
    /// This function's name (`AWS_LAMBDA_FUNCTION_NAME`): the metrics' `FunctionName` dimension.
    pub function_name: String,
    /// What alerts call each account (`ACCOUNT_NAMES`); empty when not given.
    pub account_names: AccountNames,
    /// The dedup table, if any.
    pub dedup_table: Option<String>,
    /// The grouping window in minutes (no grouping without a table).
    pub window_minutes: u32,
    /// Where the tuning policy is.
    pub policy: PolicySource,
    /// How often the policy is read again.
    pub policy_refresh: Duration,
    /// The organisation trail whose log files S3 notifications name (`TRAIL_BUCKET`,
    /// `TRAIL_PREFIX`); `None`: S3 notifications are refused.
    pub trail: Option<Trail>,
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
        let canary = text(CANARY_ROLE_VARIABLE)?
            .filter(|arn| !arn.is_empty())
            .map(|role_arn| -> Result<Canary, SettingsError> {
                Ok(Canary {
                    role_arn,
                    target_function: text(CANARY_TARGET_VARIABLE)?.filter(|name| !name.is_empty()),
                })
            })
            .transpose()?;
        let function_name = text(FUNCTION_NAME_VARIABLE)?.unwrap_or_default();
        // A mapping that does not parse stops the start: running on without names would hide the
        // mistake until someone missed a name in an alert.
        let account_names = match text(ACCOUNT_NAMES_VARIABLE)? {
            Some(json) if !json.trim().is_empty() => {
                AccountNames::from_json(&json).map_err(|e| SettingsError {
                    variable: ACCOUNT_NAMES_VARIABLE,
                    reason: e.to_string(),
                })?
            }
            _ => AccountNames::default(),
        };
        let dedup_table = text(DEDUP_TABLE_VARIABLE)?.filter(|t| !t.is_empty());
        if let Some(table) = &dedup_table {
            let valid = (3..=255).contains(&table.len())
                && table
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
            if !valid {
                return Err(SettingsError {
                    variable: DEDUP_TABLE_VARIABLE,
                    reason: format!(
                        "{table:?} is not a DynamoDB table name (3 to 255 of a-z, A-Z, 0-9, _ - .)"
                    ),
                });
            }
        }
        let window_minutes = match text(DEDUP_WINDOW_VARIABLE)?.filter(|v| !v.is_empty()) {
            None => DEFAULT_WINDOW_MINUTES,
            Some(value) => match value.parse::<u32>() {
                Ok(minutes) if minutes <= MAX_WINDOW_MINUTES => minutes,
                _ => {
                    return Err(SettingsError {
                        variable: DEDUP_WINDOW_VARIABLE,
                        reason: format!(
                            "{value:?} is not a number of minutes from 0 (no grouping) to \
                             {MAX_WINDOW_MINUTES}"
                        ),
                    });
                }
            },
        };
        let parameter = text(POLICY_PARAMETER_VARIABLE)?.filter(|v| !v.is_empty());
        let file = text(POLICY_FILE_VARIABLE)?.filter(|v| !v.is_empty());
        let policy = match (parameter, file) {
            (Some(parameter), None) => PolicySource::Parameter(parameter),
            (None, Some(file)) => PolicySource::File(PathBuf::from(file)),
            (None, None) => PolicySource::Original,
            (Some(_), Some(_)) => {
                return Err(SettingsError {
                    variable: POLICY_FILE_VARIABLE,
                    reason: format!(
                        "{POLICY_PARAMETER_VARIABLE} and {POLICY_FILE_VARIABLE} are both set: \
                         unset one, so it is clear which policy is in force"
                    ),
                });
            }
        };
        let policy_refresh = match text(POLICY_REFRESH_VARIABLE)?.filter(|v| !v.is_empty()) {
            None => Duration::from_secs(DEFAULT_POLICY_REFRESH_SECONDS),
            Some(value) => match value.parse::<u64>() {
                Ok(seconds) if (1..=86_400).contains(&seconds) => Duration::from_secs(seconds),
                _ => {
                    return Err(SettingsError {
                        variable: POLICY_REFRESH_VARIABLE,
                        reason: format!("{value:?} is not a number of seconds from 1 to 86400"),
                    });
                }
            },
        };
        let trail = match text(trail::TRAIL_BUCKET_VARIABLE)?.filter(|v| !v.is_empty()) {
            Some(bucket) => {
                let prefix = text(trail::TRAIL_PREFIX_VARIABLE)?.unwrap_or_default();
                Some(
                    Trail::new(&bucket, &prefix)
                        .map_err(|(variable, reason)| SettingsError { variable, reason })?,
                )
            }
            None => None,
        };
        Ok(Settings {
            alert_topic,
            canary,
            function_name,
            account_names,
            dedup_table,
            window_minutes,
            policy,
            policy_refresh,
            trail,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const CANARY_ROLE: &str = "arn:aws:iam::123456789012:role/lcw-CanaryRole-1A2B3C";

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
        assert_eq!(
            read.canary,
            Some(Canary {
                role_arn: CANARY_ROLE.into(),
                target_function: Some("lcw-canary-target".into()),
            })
        );
        assert_eq!(read.function_name, "code-watch-fn");
        let none = settings(&[(STDOUT_VARIABLE, "1"), (CANARY_ROLE_VARIABLE, "")]).unwrap();
        assert_eq!(none.canary, None);
    }

    #[test]
    fn account_names_are_read_once_and_a_bad_mapping_names_the_variable() {
        let topic = (TOPIC_VARIABLE, "arn:aws:sns:us-east-1:123456789012:alerts");
        for unset in [&[topic][..], &[topic, (ACCOUNT_NAMES_VARIABLE, "")][..]] {
            assert!(
                settings(unset).unwrap().account_names.is_empty(),
                "{unset:?}"
            );
        }
        let read = settings(&[
            topic,
            (
                ACCOUNT_NAMES_VARIABLE,
                r#"{"123456789012": "payments-prod"}"#,
            ),
        ])
        .unwrap();
        assert_eq!(
            read.account_names.get("123456789012"),
            Some("payments-prod")
        );
        for bad in [
            "payments-prod",
            r#"{"1234": "payments-prod"}"#,
            r#"{"123456789012": ""}"#,
        ] {
            let error = settings(&[topic, (ACCOUNT_NAMES_VARIABLE, bad)]).unwrap_err();
            assert_eq!(error.variable, ACCOUNT_NAMES_VARIABLE, "{bad}");
            assert!(
                error.to_string().contains(ACCOUNT_NAMES_VARIABLE),
                "{error}"
            );
        }
    }

    #[test]
    fn dedup_and_policy_settings_are_checked() {
        const TOPIC: (&str, &str) = (TOPIC_VARIABLE, "arn:aws:sns:us-east-1:123456789012:alerts");
        let read = settings(&[TOPIC]).unwrap();
        assert_eq!((read.dedup_table, read.window_minutes), (None, 60));
        assert_eq!(read.policy, PolicySource::Original);
        let read = settings(&[
            TOPIC,
            (DEDUP_TABLE_VARIABLE, "lcw-events"),
            (DEDUP_WINDOW_VARIABLE, "0"),
        ])
        .unwrap();
        assert_eq!(
            (read.dedup_table.as_deref(), read.window_minutes),
            (Some("lcw-events"), 0)
        );
        for (variable, bad) in [
            (DEDUP_WINDOW_VARIABLE, "sixty"),
            (DEDUP_WINDOW_VARIABLE, "-1"),
            (DEDUP_WINDOW_VARIABLE, "1441"),
            (DEDUP_TABLE_VARIABLE, "a b"),
            (POLICY_REFRESH_VARIABLE, "0"),
        ] {
            let error = settings(&[TOPIC, (variable, bad)]).unwrap_err();
            assert_eq!(error.variable, variable, "{bad}");
            assert!(error.to_string().contains(&format!("{bad:?}")), "{error}");
        }
        let both = settings(&[
            TOPIC,
            (POLICY_FILE_VARIABLE, "p.toml"),
            (POLICY_PARAMETER_VARIABLE, "/p"),
        ])
        .unwrap_err();
        assert!(both.to_string().contains("both set"), "{both}");
    }

    #[test]
    fn the_trail_is_read_from_its_bucket_and_prefix_and_checked() {
        const TOPIC: (&str, &str) = (TOPIC_VARIABLE, "arn:aws:sns:us-east-1:123456789012:alerts");
        assert_eq!(settings(&[TOPIC]).unwrap().trail, None);
        let read = settings(&[
            TOPIC,
            (trail::TRAIL_BUCKET_VARIABLE, "org-trail-logs"),
            (trail::TRAIL_PREFIX_VARIABLE, "/central/"),
        ])
        .unwrap()
        .trail
        .unwrap();
        assert_eq!(read.logs_root(), "central/AWSLogs/");
        for (bucket, prefix, variable) in [
            ("Org_Trail", "", trail::TRAIL_BUCKET_VARIABLE),
            (
                "org-trail-logs",
                "x/AWSLogs/o-1",
                trail::TRAIL_PREFIX_VARIABLE,
            ),
        ] {
            let error = settings(&[
                TOPIC,
                (trail::TRAIL_BUCKET_VARIABLE, bucket),
                (trail::TRAIL_PREFIX_VARIABLE, prefix),
            ])
            .unwrap_err();
            assert_eq!(error.variable, variable, "{bucket} {prefix}");
        }
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
