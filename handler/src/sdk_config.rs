//! The AWS SDK configuration the function's clients share, read from the Lambda environment
//! without `aws-config`.
//!
//! On Lambda the function's credentials are in `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and
//! `AWS_SESSION_TOKEN`, and its region in `AWS_REGION`: that is all of the SDK's default chain the
//! function uses. `aws-config` also brings profile files, SSO, IMDS, ECS and web-identity
//! providers, about 1.3 MB of the binary (measured, see README.md, Performance), none of which
//! can supply anything on Lambda that the environment does not. Every SDK client
//! (`aws_sdk_*::Client::new(&config)`) accepts this configuration.
//!
//! Also read, as `aws-config` reads them: `AWS_DEFAULT_REGION` when `AWS_REGION` is unset, and
//! `AWS_ENDPOINT_URL` (local runs against an emulator) unless `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS`
//! is `true`; `AWS_ENDPOINT_URL_SNS` for the SNS client ([`service_endpoint_url`]), so a test can
//! put a fault-injecting proxy in front of SNS alone. Not read: profiles, the other services'
//! `AWS_ENDPOINT_URL_<SERVICE>`, FIPS and dual-stack settings.
//!
//! The three explicit choices: an HTTPS client on rustls with the ring provider (no C toolchain
//! needed to cross-compile for Lambda), the standard retry mode with [`MAX_ATTEMPTS`] attempts
//! (exponential backoff with jitter; throttling, 5xx and connection errors are retried), and
//! timeouts so a stalled endpoint fails the invocation instead of hanging until Lambda kills it.

use aws_credential_types::Credentials;
use aws_credential_types::provider::{
    ProvideCredentials, SharedCredentialsProvider, error::CredentialsError, future,
};
use aws_sdk_sns::config::BehaviorVersion;
use aws_smithy_async::rt::sleep::default_async_sleep;
use aws_smithy_async::time::{SharedTimeSource, SystemTimeSource};
use aws_smithy_http_client::tls;
use aws_smithy_types::retry::RetryConfig;
use aws_smithy_types::timeout::TimeoutConfig;
use aws_types::SdkConfig;
use aws_types::region::Region;
use std::time::Duration;

/// Attempts per request, the first included (the SDK's standard mode backs off between them).
pub const MAX_ATTEMPTS: u32 = 3;
// A publish takes tens of milliseconds. These bounds keep all attempts, with their backoff, inside
// the function's 10 s timeout (template.yaml), so a stalled endpoint ends in a reported
// `AlertNotDelivered` error rather than in Lambda killing the invocation mid-retry.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(3);
/// The whole request, retries included.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(8);

/// The SDK configuration from the environment, once per process.
pub async fn load_sdk_config() -> SdkConfig {
    let http_client = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    let mut config = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .http_client(http_client)
        .credentials_provider(SharedCredentialsProvider::new(EnvironmentCredentials))
        .retry_config(RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                .operation_timeout(OPERATION_TIMEOUT)
                .build(),
        )
        .time_source(SharedTimeSource::new(SystemTimeSource::new()));
    config.set_sleep_impl(default_async_sleep());
    config.set_region(
        variable("AWS_REGION")
            .or_else(|| variable("AWS_DEFAULT_REGION"))
            .map(Region::new),
    );
    if endpoints_configurable() {
        config.set_endpoint_url(variable("AWS_ENDPOINT_URL"));
    }
    config.build()
}

/// `AWS_ENDPOINT_URL_<SERVICE>` (for example `AWS_ENDPOINT_URL_SNS`), which takes precedence over
/// `AWS_ENDPOINT_URL` for that service's client, as in `aws-config`.
pub fn service_endpoint_url(service: &str) -> Option<String> {
    endpoints_configurable()
        .then(|| variable(&format!("AWS_ENDPOINT_URL_{service}")))
        .flatten()
}

fn endpoints_configurable() -> bool {
    !variable("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS").is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

/// A non-empty environment variable.
fn variable(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .filter(|value| !value.trim().is_empty())
}

/// The credentials in the environment, read at each request as `aws-config`'s environment
/// provider reads them (Lambda sets them before the process starts).
#[derive(Debug)]
struct EnvironmentCredentials;

impl EnvironmentCredentials {
    fn read() -> Result<Credentials, CredentialsError> {
        let key = |names: &[&str]| names.iter().find_map(|name| variable(name));
        let (Some(access_key), Some(secret_key)) = (
            key(&["AWS_ACCESS_KEY_ID", "AWS_ACCESS_KEY"]),
            key(&[
                "AWS_SECRET_ACCESS_KEY",
                "SECRET_ACCESS_KEY",
                "AWS_SECRET_KEY",
            ]),
        ) else {
            return Err(CredentialsError::not_loaded(
                "no AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment (on Lambda, \
                 the function's role supplies them)",
            ));
        };
        Ok(Credentials::new(
            access_key,
            secret_key,
            variable("AWS_SESSION_TOKEN"),
            None,
            "Environment",
        ))
    }
}

impl ProvideCredentials for EnvironmentCredentials {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::ready(EnvironmentCredentials::read())
    }
}
