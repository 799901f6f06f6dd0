//! lambda-code-watch: alert when a person (not a pipeline) changes the code of an AWS Lambda function.
//!
//! A port of Panther's `AWS.Lambda.UpdateFunctionCode` ("Lambda Code Updated by User"). Data flows one
//! way: bytes -> records -> outcomes -> alerts -> sink.
//!
//! - [`record`]: a lenient view of one CloudTrail record (every field optional, wrong types absent),
//!   and the one policy for unwrapping EventBridge envelopes.
//! - [`input`]: every input shape (record, EventBridge envelope, `{"Records":[...]}`, lookup-events,
//!   arrays, NDJSON, gzip) -> records, streaming, in bounded memory, stoppable by the consumer.
//! - [`rule`]: the detection, pure: record -> person, or quiet and why. The one place that decides
//!   "is this a person?".
//! - [`accounts`]: account IDs mapped to the names a team uses (`{"111122223333": "payments-prod"}`),
//!   parsed and checked once, so alerts from an organisation say which account by name.
//! - [`policy`]: the tuning policy (TOML): who else counts as a person (`[people]`) and which
//!   alerts are accepted (`[[suppress]]`), parsed and checked once, with errors naming file, line
//!   and key.
//! - [`detector`]: the one path from a record to its outcome (alert, suppressed alert, or quiet
//!   reason) under a policy, which `scan`, the Lambda function, the benchmarks and the tests all
//!   call.
//! - [`grouping`]: Panther's alert grouping (by dedup key, for a window), pure: the first alert of
//!   a window is delivered, later ones are counted and summarised; `scan --group` and the Lambda
//!   (with its DynamoDB store) share it.
//! - [`alert`]: the alert document (JSON for machines, text for people) with the rule's metadata, and
//!   [`alert::printable`], the escaping of record text for people.
//! - [`scan`]: runs the detector over files and directories, in parallel, for the `scan` command.
//! - [`window`]: the `--since/--until` time window of a hunt (dates or RFC 3339 times, `jiff`).
//! - `s3` (cargo feature `s3`): CloudTrail log objects straight from an S3 bucket as scan inputs,
//!   listing only the key prefixes an account, region and time filter can match.
//! - [`sink`]: where alerts go: the trait, SNS message shaping (pure), stdout.
//! - [`sql`]: the rule as a SQL query for Athena, CloudTrail Lake and Security Lake, pure.
//!
//! The CLI (`src/bin/lambda-code-watch.rs`) is a thin main over this library; the Lambda function is
//! its own package (`handler/`), so `scan` builds without the AWS SDK while both apply exactly the
//! same detector and publish the same document.

pub mod accounts;
pub mod alert;
pub mod detector;
pub mod grouping;
pub mod input;
pub mod policy;
pub mod record;
pub mod rule;
#[cfg(feature = "s3")]
pub mod s3;
pub mod scan;
pub mod sink;
pub mod sql;
pub mod window;

pub use accounts::AccountNames;
pub use alert::Alert;
pub use detector::{Detector, Outcome, Suppressed};
pub use policy::{People, Policy, PolicyError};
pub use record::{DecodeError, Record};
pub use rule::{Person, PersonKind, QuietReason, Verdict, evaluate};
