//! Promises of `template.yaml`, the SAM deployment: the linters and the security scanner accept it,
//! `sam build` turns it into an arm64 `bootstrap`, its EventBridge pattern forwards every Lambda code
//! update and nothing else when a real EventBridge emulator applies it, the function's role can do
//! nothing beyond its job, and an event that cannot be delivered or processed is kept, not dropped.
//! And the pipeline is never silent: a deployment without a destination is refused, the tamper
//! rules report every watched call on this stack's resources (and none on others) with a readable
//! alert, the topic and key policies grant what README.md describes and nothing more, the canary
//! heartbeat is wired to its alarm, every alarm treats missing data as README.md says, and the
//! evidence is retained.
//! Across an organization: the same checks hold with `OrganizationId` set, single-account mode
//! deploys what it did, the organization bus admits the organisation and nothing else, and
//! `deploy/forwarder.yaml` (linted and scanned too) forwards exactly the detection rule's events to
//! that bus, where a real EventBridge emulator delivers them to the function's stand-in, with a
//! least-privilege role, a kept-not-dropped queue, an alarm that reaches someone, and a service
//! control policy that guards it by its names.
//!
//! The template is always read from the repository, never restated here. `scripts/template-json.py`
//! decodes it (CloudFormation short tags included) and, with `--transform`, runs the SAM translator
//! offline, so the checks look at the CloudFormation that `sam deploy` would really submit.
//!
//! External tools (sam, cfn-lint, checkov, cargo-lambda, zig, Python with moto) are looked up on PATH,
//! then in `.venv/bin`. When one is missing the test fails under `CI=true` and otherwise skips, saying
//! what is missing. Every child process runs in its own process group, under a time limit, and is
//! killed (with its children) if the test panics.
//!
//! Not here: the rule's verdicts on sample events and the corpus (tests/events.rs, tests/corpus.rs),
//! and the handler's SNS behaviour.

#[path = "../common/mod.rs"]
mod common;

use common::unavailable as missing;
use lambda_code_watch::{Detector, Outcome as Verdict, QuietReason};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

mod alarms;
mod destination;
mod event_pattern;
mod forwarder;
mod forwarder_guard;
mod intrinsics;
mod kept_not_dropped;
mod least_privilege;
mod linters;
mod organization;
mod policies;
mod s3_mode;
mod sam_build;
mod tamper;
mod template_json;
mod tools;
mod tuning;

use destination::*;
use event_pattern::*;
use intrinsics::*;
use kept_not_dropped::*;
use least_privilege::*;
use organization::*;
use policies::*;
use tamper::*;
use template_json::*;
use tools::*;
