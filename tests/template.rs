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

mod common;

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

// ------------------------------------------------------------------------------------ the tools

fn repo() -> PathBuf {
    common::repo_dir()
}

fn template_path() -> PathBuf {
    repo().join("template.yaml")
}

/// The forwarder every member account and region runs in organization mode.
fn forwarder_path() -> PathBuf {
    repo().join("deploy/forwarder.yaml")
}

/// template.yaml with organization mode (and account names) as its defaults, so the linters and
/// the scanner also judge the template as an organization deploys it: a copy in a temporary
/// directory, made once.
fn organization_variant_path() -> &'static Path {
    static VARIANT: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_, path) = VARIANT.get_or_init(|| {
        variant_with_defaults(
            "template-organization.yaml",
            &[
                ("OrganizationId", ORGANIZATION.to_owned()),
                (
                    "AccountNames",
                    r#"'{"111122223333": "payments-prod", "444455556666": "sandbox eu"}'"#
                        .to_owned(),
                ),
            ],
        )
    });
    path
}

/// A copy of template.yaml, in a temporary directory, whose empty-by-default String parameters
/// named here default to the given values instead.
fn variant_with_defaults(
    file_name: &str,
    defaults: &[(&str, String)],
) -> (tempfile::TempDir, PathBuf) {
    let mut variant = std::fs::read_to_string(template_path()).expect("read template.yaml");
    for (parameter, value) in defaults {
        let declared = format!("  {parameter}:\n    Type: String\n    Default: \"\"\n");
        assert!(
            variant.contains(&declared),
            "template.yaml declares {parameter} as an empty-by-default String"
        );
        variant = variant.replace(
            &declared,
            &format!("  {parameter}:\n    Type: String\n    Default: {value}\n"),
        );
    }
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join(file_name);
    std::fs::write(&path, variant).expect("write the template variant");
    (dir, path)
}

/// The parameters of an S3-mode deployment (organization mode too, as S3 mode is meant for an
/// organisation trail).
const S3_MODE: &[(&str, &str)] = &[
    ("OrganizationId", ORGANIZATION),
    ("TrailBucketName", TRAIL_BUCKET),
    ("TrailKeyPrefix", "central"),
    ("TrailBucketAccountId", TRAIL_OWNER),
    ("TrailKmsKeyArn", TRAIL_KEY),
];
const TRAIL_BUCKET: &str = "org-trail-logs";
const TRAIL_OWNER: &str = "999988887777";
const TRAIL_KEY: &str =
    "arn:aws:kms:us-east-1:999988887777:key/1234abcd-12ab-34cd-56ef-1234567890ab";

/// template.yaml with S3 mode (and organization mode) as its defaults, for the linters and the
/// scanner: a copy in a temporary directory, made once.
fn s3_variant_path() -> &'static Path {
    static VARIANT: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_, path) = VARIANT.get_or_init(|| {
        let defaults: Vec<(&str, String)> = S3_MODE
            .iter()
            .map(|(parameter, value)| (*parameter, (*value).to_owned()))
            .collect();
        variant_with_defaults("template-s3-mode.yaml", &defaults)
    });
    path
}

use common::unavailable as missing;

fn is_executable(path: &Path) -> bool {
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn venv_bin() -> PathBuf {
    repo().join(".venv/bin")
}

/// `name` on PATH, else in the repository's `.venv/bin`.
fn find_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([venv_bin()])
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

/// The Python that has the tools' packages: the repository's venv, else `python3` on PATH.
fn python() -> Option<PathBuf> {
    let venv = venv_bin().join("python");
    if is_executable(&venv) {
        Some(venv)
    } else {
        find_tool("python3")
    }
}

/// PATH for a child: the tool's own directory and `.venv/bin` first, so that `sam` finds
/// `cargo-lambda` and cargo-lambda finds the pip-installed zig.
fn child_path(tool: &Path) -> OsString {
    let mut dirs: Vec<PathBuf> = tool.parent().map(Path::to_path_buf).into_iter().collect();
    dirs.push(venv_bin());
    dirs.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    std::env::join_paths(dirs).expect("PATH entries contain no separator")
}

/// A command for an external tool, run from the repository root, offline-friendly.
fn tool_command(tool: &Path) -> Command {
    let mut command = Command::new(tool);
    command
        .current_dir(repo())
        .env("PATH", child_path(tool))
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("SAM_CLI_TELEMETRY", "0");
    command
}

struct Finished {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Finished {
    /// Status and both streams (their last 6 KB), for failure messages.
    fn report(&self) -> String {
        fn tail(text: &str) -> &str {
            let mut start = text.len().saturating_sub(6000);
            while !text.is_char_boundary(start) {
                start += 1;
            }
            &text[start..]
        }
        format!(
            "{}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status,
            tail(&self.stdout),
            tail(&self.stderr)
        )
    }
}

/// A child process (leader of its own process group) that is killed with all its descendants when
/// dropped unfinished: a panicking test leaves no cargo, zig or moto behind.
struct Running {
    child: Child,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            common::kill_group(&mut self.child);
        }
    }
}

fn drain(mut stream: impl Read + Send + 'static) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = stream.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// Runs `command` to completion, or kills it after `limit` (a safety net against a hung tool, not
/// a performance assertion).
fn run(what: &str, command: &mut Command, limit: Duration) -> Finished {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let child = command
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: cannot start {:?}: {e}", command.get_program()));
    let mut running = Running { child };
    let stdout = drain(running.child.stdout.take().expect("stdout is piped"));
    let stderr = drain(running.child.stderr.take().expect("stderr is piped"));
    let deadline = Instant::now() + limit;
    let status = loop {
        match running.child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                drop(running);
                panic!("{what}: still running after {limit:?}; killed it and its children");
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(100)),
            Err(e) => panic!("{what}: cannot wait for the process: {e}"),
        }
    };
    Finished {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    }
}

const MINUTE: Duration = Duration::from_secs(60);

// --------------------------------------------------------------------------- the template as JSON

/// Exit code of the Python helpers when a package they import is not installed.
const MISSING_PACKAGE: i32 = 3;

fn load_template(transform: bool) -> Option<Value> {
    load_template_file(&template_path(), transform)
}

fn load_template_file(path: &Path, transform: bool) -> Option<Value> {
    let Some(python) = python() else {
        missing("python3 is not installed: cannot read the templates");
        return None;
    };
    let mut command = tool_command(&python);
    command.arg(repo().join("scripts/template-json.py"));
    if transform {
        command.arg("--transform");
    }
    command.arg(path);
    let out = run("scripts/template-json.py", &mut command, 2 * MINUTE);
    if out.status.code() == Some(MISSING_PACKAGE) {
        missing(&format!(
            "Python packages for scripts/template-json.py: {}",
            out.stderr.trim()
        ));
        return None;
    }
    assert!(
        out.status.success(),
        "scripts/template-json.py{} could not read {}: {}",
        if transform { " --transform" } else { "" },
        path.display(),
        out.report()
    );
    Some(serde_json::from_str(&out.stdout).expect("template-json.py prints JSON"))
}

/// template.yaml as written (SAM resources).
fn source_template() -> Option<&'static Value> {
    static SOURCE: OnceLock<Option<Value>> = OnceLock::new();
    SOURCE.get_or_init(|| load_template(false)).as_ref()
}

/// deploy/forwarder.yaml (plain CloudFormation: what StackSets deploy).
fn forwarder_template() -> Option<&'static Value> {
    static FORWARDER: OnceLock<Option<Value>> = OnceLock::new();
    FORWARDER
        .get_or_init(|| load_template_file(&forwarder_path(), false))
        .as_ref()
}

/// template.yaml after the SAM transform: the CloudFormation that is deployed.
fn deployed_template() -> Option<&'static Value> {
    static DEPLOYED: OnceLock<Option<Value>> = OnceLock::new();
    DEPLOYED.get_or_init(|| load_template(true)).as_ref()
}

fn resources(template: &Value) -> &serde_json::Map<String, Value> {
    template["Resources"]
        .as_object()
        .expect("the template has a Resources mapping")
}

fn resources_of_type<'t>(template: &'t Value, kind: &str) -> Vec<(&'t str, &'t Value)> {
    resources(template)
        .iter()
        .filter(|(_, resource)| resource["Type"] == kind)
        .map(|(id, resource)| (id.as_str(), resource))
        .collect()
}

fn resource<'t>(template: &'t Value, id: &str) -> &'t Value {
    resources(template).get(id).unwrap_or_else(|| {
        panic!("the template references resource {id}, which it does not define")
    })
}

/// The logical id `value` points at with `{"Ref": id}` or `{"Fn::GetAtt": [id, attribute]}`.
fn target_of<'v>(value: &'v Value, attribute: Option<&str>) -> Option<&'v str> {
    if let Some(id) = value.get("Ref").and_then(Value::as_str) {
        return attribute.is_none().then_some(id);
    }
    let get_att = value.get("Fn::GetAtt")?.as_array()?;
    match (get_att.first()?.as_str(), get_att.get(1)?.as_str()) {
        (Some(id), Some(att)) if Some(att) == attribute => Some(id),
        _ => None,
    }
}

/// `values` as one JSON array, for failure messages.
fn shown(values: &[&Value]) -> Value {
    Value::Array(values.iter().map(|v| (*v).clone()).collect())
}

/// A one-element list is the same as the element (IAM accepts both forms).
fn as_list(value: &Value) -> Vec<&Value> {
    match value {
        Value::Array(items) => items.iter().collect(),
        Value::Null => Vec::new(),
        other => vec![other],
    }
}

/// Every alternative `value` can take: both branches of each `Fn::If`, `AWS::NoValue` dropped.
fn alternatives(value: &Value) -> Vec<&Value> {
    if let Some([_, yes, no]) = value
        .get("Fn::If")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
    {
        return alternatives(yes)
            .into_iter()
            .chain(alternatives(no))
            .collect();
    }
    if value.get("Ref") == Some(&json!("AWS::NoValue")) {
        return Vec::new();
    }
    vec![value]
}

/// The detection function the template deploys: the only `AWS::Lambda::Function` that publishes
/// alerts (`ALERT_TOPIC_ARN`); the others are the canary's.
fn the_function(deployed: &Value) -> (&str, &Value) {
    let functions: Vec<(&str, &Value)> = resources_of_type(deployed, "AWS::Lambda::Function")
        .into_iter()
        .filter(|(_, f)| {
            f["Properties"]["Environment"]["Variables"]
                .get("ALERT_TOPIC_ARN")
                .is_some()
        })
        .collect();
    assert_eq!(
        functions.len(),
        1,
        "expected exactly one Lambda function with ALERT_TOPIC_ARN in the deployed template, \
         found {:?}",
        functions.iter().map(|(id, _)| id).collect::<Vec<_>>()
    );
    functions[0]
}

/// The EventBridge rule whose target is the function, and that target.
fn the_rule<'t>(deployed: &'t Value, function_id: &str) -> (&'t str, &'t Value, &'t Value) {
    let mut found = Vec::new();
    for (id, rule) in resources_of_type(deployed, "AWS::Events::Rule") {
        for target in as_list(&rule["Properties"]["Targets"]) {
            if target_of(&target["Arn"], Some("Arn")) == Some(function_id) {
                found.push((id, rule, target));
            }
        }
    }
    assert_eq!(
        found.len(),
        1,
        "expected exactly one EventBridge rule targeting {function_id}, found {}",
        found.len()
    );
    found[0]
}

/// Placeholder values for pseudo parameters, to compare names built from them.
const STACK_NAME: &str = "code-watch-test";
const STACK_UUID: &str = "6f1d2c3b-4a59-4e68-9d7c-0b1a2f3e4d5c";

fn pseudo_parameter(name: &str) -> Option<String> {
    Some(match name {
        "AWS::Partition" => "aws".to_owned(),
        "AWS::Region" => "us-east-1".to_owned(),
        "AWS::AccountId" => "123456789012".to_owned(),
        "AWS::StackName" => STACK_NAME.to_owned(),
        "AWS::StackId" => {
            format!("arn:aws:cloudformation:us-east-1:123456789012:stack/{STACK_NAME}/{STACK_UUID}")
        }
        "AWS::URLSuffix" => "amazonaws.com".to_owned(),
        _ => return None,
    })
}

/// Evaluates a string-valued intrinsic built only from literals and pseudo parameters (Fn::Sub,
/// Fn::Join, Fn::Select over Fn::Split, Ref). `None` when it depends on anything else.
fn render(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Object(map) if map.len() == 1 => {
            let (function, argument) = map.iter().next()?;
            match function.as_str() {
                "Ref" => pseudo_parameter(argument.as_str()?),
                "Fn::Join" => {
                    let [separator, parts] = argument.as_array()?.as_slice() else {
                        return None;
                    };
                    let parts: Option<Vec<String>> = parts.as_array()?.iter().map(render).collect();
                    Some(parts?.join(separator.as_str()?))
                }
                "Fn::Select" => {
                    let [index, list] = argument.as_array()?.as_slice() else {
                        return None;
                    };
                    let index = index.as_u64().or_else(|| index.as_str()?.parse().ok())?;
                    render_list(list)?
                        .into_iter()
                        .nth(usize::try_from(index).ok()?)
                }
                "Fn::Sub" => {
                    let (text, variables) = match argument {
                        Value::String(text) => (text.as_str(), None),
                        Value::Array(pair) => (pair.first()?.as_str()?, pair.get(1)),
                        _ => return None,
                    };
                    substitute(text, variables)
                }
                _ => None,
            }
        }
        _ => None,
    }
}

fn render_list(value: &Value) -> Option<Vec<String>> {
    let [separator, text] = value.get("Fn::Split")?.as_array()?.as_slice() else {
        return None;
    };
    let text = render(text)?;
    Some(text.split(separator.as_str()?).map(str::to_owned).collect())
}

fn substitute(text: &str, variables: Option<&Value>) -> Option<String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}')? + start;
        let name = &rest[start + 2..end];
        let value = match variables.and_then(|v| v.get(name)) {
            Some(value) => render(value)?,
            None => pseudo_parameter(name)?,
        };
        out.push_str(&value);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    Some(out)
}

// ------------------------------------------------------------------------- linters and scanners

#[test]
fn sam_validate_accepts_the_template() {
    let Some(sam) = find_tool("sam") else {
        missing("`sam` (AWS SAM CLI) is not installed: cannot validate template.yaml");
        return;
    };
    // Both modes, because they check different things: plain `validate` runs the SAM translator
    // (which rejects, say, a rule DeadLetterConfig with both Type and Arn, which lint accepts), and
    // `--lint` runs cfn-lint's rules.
    // The template as a single account and as an organization deploys it, and the forwarder
    // (plain CloudFormation, which sam validates too).
    for template in [
        template_path(),
        organization_variant_path().to_owned(),
        s3_variant_path().to_owned(),
        forwarder_path(),
    ] {
        for args in [&["validate"][..], &["validate", "--lint"][..]] {
            let out = run(
                "sam validate",
                tool_command(&sam)
                    .args(args)
                    .arg("--template")
                    .arg(&template),
                5 * MINUTE,
            );
            assert!(
                out.status.success(),
                "`sam {}` rejects {}: {}",
                args.join(" "),
                template.display(),
                out.report()
            );
        }
    }
}

#[test]
fn cfn_lint_accepts_the_template_and_what_it_deploys() {
    let Some(cfn_lint) = find_tool("cfn-lint") else {
        missing("`cfn-lint` is not installed: cannot lint template.yaml");
        return;
    };
    let lint = |path: &Path, what: &str| {
        let out = run(
            "cfn-lint",
            tool_command(&cfn_lint).arg("--").arg(path),
            5 * MINUTE,
        );
        assert!(
            out.status.success(),
            "cfn-lint finds problems in {what}: {}",
            out.report()
        );
    };
    lint(&template_path(), "template.yaml");
    // With organization mode and account names as defaults: cfn-lint also checks that the
    // defaults satisfy their AllowedPattern (the AccountNames pattern, say).
    lint(
        organization_variant_path(),
        "template.yaml in organization mode",
    );
    lint(s3_variant_path(), "template.yaml in S3 mode");
    lint(&forwarder_path(), "deploy/forwarder.yaml");
    let Some(deployed) = deployed_template() else {
        return;
    };
    let dir = tempfile::tempdir().expect("a temporary directory");
    let transformed = dir.path().join("transformed.json");
    std::fs::write(&transformed, deployed.to_string()).expect("write the transformed template");
    lint(
        &transformed,
        "the transformed template (the CloudFormation SAM deploys)",
    );
}

/// Runs checkov on `path` and returns its report for the CloudFormation framework.
fn checkov_report(checkov: &Path, path: &Path) -> Value {
    let out = run(
        "checkov",
        tool_command(checkov)
            .args([
                "--framework",
                "cloudformation",
                "--skip-download",
                "--output",
                "json",
                "--file",
            ])
            .arg(path),
        10 * MINUTE,
    );
    // checkov exits 1 when a check fails; the report says which, so read it either way.
    let report: Value = serde_json::from_str(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "checkov printed no JSON report for {} ({e}): {}",
            path.display(),
            out.report()
        )
    });
    let report = match report {
        Value::Array(mut reports) if reports.len() == 1 => reports.remove(0),
        other => other,
    };
    assert_eq!(
        report["check_type"],
        "cloudformation",
        "unexpected checkov report for {}: {report}",
        path.display()
    );
    report
}

#[test]
fn checkov_passes_and_every_skip_is_justified_where_it_applies() {
    let Some(checkov) = find_tool("checkov") else {
        missing("`checkov` is not installed: cannot scan template.yaml");
        return;
    };
    let Some(source) = source_template() else {
        return;
    };
    let Some(deployed) = deployed_template() else {
        return;
    };
    let Some(forwarder) = forwarder_template() else {
        return;
    };
    let dir = tempfile::tempdir().expect("a temporary directory");
    let transformed = dir.path().join("transformed.json");
    std::fs::write(&transformed, deployed.to_string()).expect("write the transformed template");

    // (path, template, what, written by hand: where a stale skip can be)
    for (path, template, what, source_file) in [
        (template_path(), source, "template.yaml", true),
        (transformed, deployed, "the transformed template", false),
        (
            organization_variant_path().to_owned(),
            source,
            "template.yaml in organization mode",
            false,
        ),
        (
            s3_variant_path().to_owned(),
            source,
            "template.yaml in S3 mode",
            false,
        ),
        (forwarder_path(), forwarder, "deploy/forwarder.yaml", true),
    ] {
        let report = checkov_report(&checkov, &path);
        let summary = &report["summary"];
        assert_eq!(
            summary["parsing_errors"], 0,
            "checkov could not parse {what}: {summary}"
        );
        assert!(
            summary["resource_count"].as_u64() > Some(0) && summary["passed"].as_u64() > Some(0),
            "checkov checked nothing in {what} (a template it cannot read passes vacuously): \
             {summary}"
        );
        let failed: Vec<String> = as_list(&report["results"]["failed_checks"])
            .iter()
            .map(|c| {
                format!(
                    "{} {} ({})",
                    c["check_id"].as_str().unwrap_or("?"),
                    c["resource"].as_str().unwrap_or("?"),
                    c["check_name"].as_str().unwrap_or("?")
                )
            })
            .collect();
        assert!(
            failed.is_empty(),
            "checkov fails {what}:\n  {}",
            failed.join("\n  ")
        );

        let skipped = as_list(&report["results"]["skipped_checks"]);
        for check in &skipped {
            let reason = check["check_result"]["suppress_comment"]
                .as_str()
                .unwrap_or("");
            assert!(
                reason.trim().len() >= 20,
                "checkov skip {} on {} in {what} has no real reason next to it: {reason:?}",
                check["check_id"].as_str().unwrap_or("?"),
                check["resource"].as_str().unwrap_or("?")
            );
        }

        // A declared skip that checkov does not use is stale: the check was renamed or no longer
        // applies, and the comment now justifies nothing. (In the transformed template SAM copies
        // the function's metadata onto helper resources, where no Lambda check runs.)
        if source_file {
            let used: BTreeSet<(String, String)> = skipped
                .iter()
                .map(|c| {
                    let resource = c["resource"].as_str().unwrap_or("");
                    let id = resource.rsplit('.').next().unwrap_or(resource);
                    (
                        c["check_id"].as_str().unwrap_or("").to_owned(),
                        id.to_owned(),
                    )
                })
                .collect();
            for (id, resource) in resources(template) {
                for skip in as_list(&resource["Metadata"]["checkov"]["skip"]) {
                    let check = skip["id"].as_str().unwrap_or("").to_owned();
                    assert!(
                        used.contains(&(check.clone(), id.clone())),
                        "{id} skips checkov check {check}, but checkov does not report it as \
                         skipped there: remove the stale skip"
                    );
                }
            }
        }
    }
}

// ------------------------------------------------------------------------------------- sam build

/// ELF `e_machine` for 64-bit ARM.
const EM_AARCH64: u16 = 183;

/// The machine an ELF executable is built for, or why the bytes are not a 64-bit little-endian ELF.
fn elf_machine(bytes: &[u8]) -> Result<u16, String> {
    match bytes {
        [0x7f, b'E', b'L', b'F', class, data, ..] if bytes.len() >= 20 => {
            if *class != 2 {
                return Err(format!("ELF class {class}, not 64-bit"));
            }
            if *data != 1 {
                return Err(format!("ELF data encoding {data}, not little-endian"));
            }
            Ok(u16::from_le_bytes([bytes[18], bytes[19]]))
        }
        _ => Err("not an ELF file".to_owned()),
    }
}

#[test]
fn sam_build_produces_an_arm64_bootstrap() {
    let Some(sam) = find_tool("sam") else {
        missing("`sam` (AWS SAM CLI) is not installed: cannot run sam build");
        return;
    };
    if find_tool("cargo-lambda").is_none() {
        missing(
            "`cargo-lambda` is not installed: sam build (BuildMethod rust-cargolambda) needs it",
        );
        return;
    }
    if find_tool("zig").is_none() && find_tool("python-zig").is_none() {
        missing("zig (pip package `ziglang`) is not installed: cargo-lambda needs it for arm64");
        return;
    }
    let build_dir = tempfile::tempdir().expect("a temporary directory");
    // Not the target directory `cargo test` uses: cargo holds its build lock while the tests run,
    // and a nested build waiting for it would never finish. Kept between runs, so only the first
    // build is slow (release, fat LTO, cross-compiled).
    let cargo_target = std::env::var_os("LCW_SAM_CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_TARGET_TMPDIR")).join("sam-build-target"));
    let out = run(
        "sam build",
        tool_command(&sam)
            .args(["build", "--template"])
            .arg(template_path())
            .arg("--build-dir")
            .arg(build_dir.path())
            .env("CARGO_TARGET_DIR", &cargo_target),
        60 * MINUTE,
    );
    assert!(out.status.success(), "sam build failed: {}", out.report());

    // One directory per function in the build dir; the Lambda runtime runs `bootstrap`.
    let bootstraps: Vec<PathBuf> = std::fs::read_dir(build_dir.path())
        .expect("sam build created the build directory")
        .filter_map(|entry| Some(entry.ok()?.path().join("bootstrap")))
        .filter(|path| path.is_file())
        .collect();
    assert_eq!(
        bootstraps.len(),
        1,
        "expected one bootstrap in {}, found {bootstraps:?}; sam build said: {}",
        build_dir.path().display(),
        out.report()
    );
    let bootstrap = &bootstraps[0];
    assert!(
        is_executable(bootstrap),
        "{} is not executable",
        bootstrap.display()
    );
    let bytes = std::fs::read(bootstrap).expect("read bootstrap");
    assert_eq!(
        elf_machine(&bytes),
        Ok(EM_AARCH64),
        "{} must be an arm64 (aarch64, e_machine 183) executable for `Architectures: [arm64]`",
        bootstrap.display()
    );
}

#[test]
fn elf_machine_reads_the_header() {
    let mut header = vec![0x7f, b'E', b'L', b'F', 2, 1, 1, 0];
    header.resize(18, 0);
    header.extend_from_slice(&EM_AARCH64.to_le_bytes());
    assert_eq!(elf_machine(&header), Ok(EM_AARCH64));
    header[18..20].copy_from_slice(&62u16.to_le_bytes()); // x86-64
    assert_eq!(elf_machine(&header), Ok(62));
    header[4] = 1;
    assert!(elf_machine(&header).is_err(), "32-bit must be refused");
    assert!(elf_machine(b"#!/bin/sh\n").is_err());
    assert!(elf_machine(&[]).is_err());
}

// ---------------------------------------------------------------------------- the event pattern

/// One event sent through the emulator, and what must happen to it.
struct Case {
    name: String,
    envelope: Value,
    must_deliver: bool,
    /// Why, in words, for failure messages.
    because: String,
}

/// What must happen to `envelope`, decided by the rule itself: the pattern is a prefilter for the
/// rule's first condition ("a Lambda code update"), so EventBridge must forward exactly the events
/// that pass it, including those the function will then keep quiet about (CI/CD roles, failed
/// calls): who the actor is, is the function's decision, not the pattern's.
fn case(name: String, envelope: Value) -> Case {
    let bytes = serde_json::to_vec(&envelope).expect("an envelope serialises");
    let outcome = Detector::default()
        .assess_json(&bytes)
        .unwrap_or_else(|e| panic!("{name}: the rule cannot read this envelope: {e}"));
    let (must_deliver, because) = match outcome {
        Verdict::Alert(alert) => (true, format!("the rule alerts on it ({})", alert.actor)),
        Verdict::Suppressed(_) => unreachable!("the default detector has no policy"),
        Verdict::Quiet(QuietReason::OtherApi) => (
            false,
            "not a Lambda code update (quiet: other-api)".to_owned(),
        ),
        Verdict::Quiet(reason) => (
            true,
            format!(
                "a code update the function must see to judge (quiet: {})",
                reason.as_str()
            ),
        ),
    };
    Case {
        name,
        envelope,
        must_deliver,
        because,
    }
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: not JSON: {e}", path.display()))
}

fn relative(path: &Path) -> String {
    path.strip_prefix(repo())
        .unwrap_or(path)
        .display()
        .to_string()
}

/// The EventBridge envelope CloudTrail puts around `record` (what the default bus receives), or
/// `None` for records without a service to name as the source.
fn cloudtrail_envelope(record: &Value) -> Option<Value> {
    let event_source = record.get("eventSource")?.as_str()?;
    let service = event_source.strip_suffix(".amazonaws.com")?;
    let detail_type = match record.get("eventType").and_then(Value::as_str) {
        Some("AwsConsoleSignIn") => "AWS Console Sign In via CloudTrail",
        Some("AwsServiceEvent") => "AWS Service Event via CloudTrail",
        Some("AwsConsoleAction") => "AWS Console Action via CloudTrail",
        _ => "AWS API Call via CloudTrail",
    };
    let mut detail = record.clone();
    // Vendor test metadata, not part of any CloudTrail record.
    detail.as_object_mut()?.remove("_panther");
    Some(json!({
        "version": "0",
        "id": "00000000-0000-0000-0000-000000000000",
        "detail-type": detail_type,
        "source": format!("aws.{service}"),
        "account": record.get("recipientAccountId").cloned().unwrap_or(json!("123456789012")),
        "time": record.get("eventTime").cloned().unwrap_or(json!("2026-01-01T00:00:00Z")),
        "region": record.get("awsRegion").cloned().unwrap_or(json!("us-east-1")),
        "resources": [],
        "detail": detail,
    }))
}

/// The sample envelopes, the near misses made from one of them, and every corpus record wrapped
/// as CloudTrail would wrap it.
fn pattern_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for folder in ["eventbridge/alert", "eventbridge/quiet"] {
        for path in common::event_files(folder) {
            cases.push(case(relative(&path), read_json(&path)));
        }
    }

    let base_path = repo().join("events/eventbridge/alert/iam-user.json");
    let base = read_json(&base_path);
    let named = |event_name: &str| {
        let mut envelope = base.clone();
        envelope["detail"]["eventName"] = json!(event_name);
        envelope
    };
    for event_name in [
        // every spelling CloudTrail has used for the call
        "UpdateFunctionCode",
        "UpdateFunctionCode20150331",
        "UpdateFunctionCode20150331v2",
        // the same person's near misses
        "UpdateFunctionConfiguration20150331v2",
        "GetFunction",
        "GetFunction20150331v2",
        "GetFunctionCodeSigningConfig",
        "UpdateFunctionUrlConfig20181029",
        "CreateFunction20150331",
        "PublishVersion20150331",
        "updatefunctioncode20150331v2",
    ] {
        cases.push(case(
            format!("variant of {} as {event_name}", relative(&base_path)),
            named(event_name),
        ));
    }
    // Other services: CloudFront Functions' own code update, and the right name from the wrong
    // service.
    for (service, event_name) in [
        ("cloudfront", "UpdateFunction"),
        ("cloudfront", "UpdateFunctionCode20150331v2"),
    ] {
        let mut envelope = named(event_name);
        envelope["source"] = json!(format!("aws.{service}"));
        envelope["detail"]["eventSource"] = json!(format!("{service}.amazonaws.com"));
        cases.push(case(
            format!(
                "variant of {} as {service} {event_name}",
                relative(&base_path)
            ),
            envelope,
        ));
    }

    if let Some(corpus) = common::corpus_dir() {
        for folder in ["real", "fixtures"] {
            for file in common::corpus_files(&corpus, folder) {
                let text = std::fs::read_to_string(&file)
                    .unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
                for (index, line) in text.lines().enumerate() {
                    if line.trim().is_empty() {
                        continue;
                    }
                    let record: Value = serde_json::from_str(line).unwrap_or_else(|e| {
                        panic!("{}:{}: not JSON: {e}", file.display(), index + 1)
                    });
                    let Some(envelope) = cloudtrail_envelope(&record) else {
                        continue;
                    };
                    let name = format!(
                        "corpus {folder}/{}:{} {} {}",
                        file.file_name().unwrap_or_default().to_string_lossy(),
                        index + 1,
                        record["eventSource"].as_str().unwrap_or("?"),
                        record["eventName"].as_str().unwrap_or("?"),
                    );
                    cases.push(case(name, envelope));
                }
            }
        }
    }
    cases
}

/// What the emulator did with one event.
struct Outcome {
    accepted: bool,
    error: Option<String>,
    delivered: u64,
    reached_bus: u64,
    detail_intact: bool,
}

/// Runs one of the EventBridge emulator scripts, `scripts/SCRIPT`, with each `(flag, document)`
/// written to a file and passed as `flag FILE`, and `cases` as `--cases`. Checks that it ran
/// (`failure` and its report otherwise), attributed every event it saw to a case and answered once
/// per case, and returns those answers; `None` when its Python packages are missing (after
/// `missing`).
fn run_eventbridge_check(
    python: &Path,
    script: &str,
    documents: &[(&str, &Value)],
    cases: &[(&str, &Value)],
    failure: &str,
) -> Option<Vec<Value>> {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut command = tool_command(python);
    command.arg(repo().join("scripts").join(script));
    for (n, (flag, document)) in documents.iter().enumerate() {
        let file = dir.path().join(format!("{n}.json"));
        std::fs::write(&file, document.to_string()).expect("write a document for the script");
        command.arg(flag).arg(file);
    }
    let listed: Vec<Value> = cases
        .iter()
        .map(|(name, envelope)| json!({"name": name, "envelope": envelope}))
        .collect();
    let cases_file = dir.path().join("cases.json");
    std::fs::write(&cases_file, Value::Array(listed).to_string()).expect("write the cases");
    command.arg("--cases").arg(&cases_file);
    let out = run(&format!("scripts/{script}"), &mut command, 10 * MINUTE);
    if out.status.code() == Some(MISSING_PACKAGE) {
        missing(&format!(
            "Python packages for the EventBridge emulator: {}",
            out.stderr.trim()
        ));
        return None;
    }
    assert!(out.status.success(), "{failure}: {}", out.report());
    let report: Value = serde_json::from_str(&out.stdout).expect("the script prints JSON");
    assert_eq!(
        report["unattributed"],
        0,
        "the emulator delivered events nobody sent: {}",
        out.report()
    );
    let results: Vec<Value> = as_list(&report["results"]).into_iter().cloned().collect();
    assert_eq!(
        results.len(),
        cases.len(),
        "one result per case expected from {}",
        report["emulator"]
    );
    Some(results)
}

/// Sends every case through moto's EventBridge with `pattern` on a rule; `None` when Python or its
/// packages are missing (after `missing`).
fn apply_pattern(pattern: &Value, cases: &[Case]) -> Option<Vec<Outcome>> {
    let Some(python) = python() else {
        missing("python3 is not installed: cannot run the EventBridge emulator");
        return None;
    };
    let named: Vec<(&str, &Value)> = cases
        .iter()
        .map(|c| (c.name.as_str(), &c.envelope))
        .collect();
    let results = run_eventbridge_check(
        &python,
        "eventbridge-pattern-check.py",
        &[("--pattern", pattern)],
        &named,
        "the EventBridge emulator run failed",
    )?;
    let outcomes = results
        .iter()
        .zip(cases)
        .map(|(result, case)| {
            assert_eq!(
                result["name"], case.name,
                "results come back in the order sent"
            );
            Outcome {
                accepted: result["accepted"] == true,
                error: result["error"].as_str().map(str::to_owned),
                delivered: result["delivered"].as_u64().unwrap_or(0),
                reached_bus: result["reached_bus"].as_u64().unwrap_or(0),
                detail_intact: result["detail_intact"] == true,
            }
        })
        .collect();
    Some(outcomes)
}

/// Every case whose fate differs from what it must be, as readable lines.
fn misrouted(cases: &[Case], outcomes: &[Outcome]) -> Vec<String> {
    cases
        .iter()
        .zip(outcomes)
        .filter(|(case, outcome)| (outcome.delivered == 1) != case.must_deliver)
        .map(|(case, outcome)| {
            format!(
                "{}: {} but it must {}be delivered: {}",
                case.name,
                match outcome.delivered {
                    0 => "not delivered".to_owned(),
                    n => format!("delivered {n} time(s)"),
                },
                if case.must_deliver { "" } else { "not " },
                case.because
            )
        })
        .collect()
}

#[test]
fn event_pattern_forwards_every_code_update_and_nothing_else() {
    let Some(deployed) = deployed_template() else {
        return;
    };
    let (function_id, _) = the_function(deployed);
    let (rule_id, rule, _) = the_rule(deployed, function_id);
    let pattern = &rule["Properties"]["EventPattern"];
    assert!(
        pattern.is_object(),
        "{rule_id}'s EventPattern must be a literal JSON object, got {pattern}"
    );
    // (Organization mode moves it to the bus the forwarders feed: see that section.)
    assert_eq!(
        Deployment::new(deployed, &[]).rule_bus(rule_id),
        None,
        "CloudTrail events arrive on the default bus; {rule_id} listens elsewhere by default"
    );

    let cases = pattern_cases();
    let Some(outcomes) = apply_pattern(pattern, &cases) else {
        return;
    };

    for (case, outcome) in cases.iter().zip(&outcomes) {
        assert!(
            outcome.accepted && outcome.reached_bus == 1,
            "{}: the emulator did not take the event ({:?}); the test proves nothing about it",
            case.name,
            outcome.error
        );
        assert!(
            outcome.delivered == 0 || outcome.detail_intact,
            "{}: the delivered event's detail differs from the one sent",
            case.name
        );
    }
    let wrong = misrouted(&cases, &outcomes);
    assert!(
        wrong.is_empty(),
        "the event pattern of {rule_id} in template.yaml routes {} of {} events wrongly:\n  {}\n\
         pattern: {pattern}",
        wrong.len(),
        cases.len(),
        wrong.join("\n  ")
    );

    // The split, stated with the sample folders rather than the rule: every alert sample reaches
    // the function, and so do the quiet code updates (CI/CD roles, failed calls), which only the
    // function can tell apart; the quiet other APIs do not.
    let delivered = |prefix: &str| -> BTreeMap<&str, bool> {
        cases
            .iter()
            .zip(&outcomes)
            .filter(|(case, _)| case.name.starts_with(prefix))
            .map(|(case, outcome)| (case.name.as_str(), outcome.delivered == 1))
            .collect()
    };
    let alerts = delivered("events/eventbridge/alert/");
    assert!(
        !alerts.is_empty() && alerts.values().all(|&d| d),
        "{alerts:?}"
    );
    let quiet = delivered("events/eventbridge/quiet/");
    for (name, was_delivered) in &quiet {
        let envelope = &cases
            .iter()
            .find(|c| c.name == *name)
            .expect("known case")
            .envelope;
        let code_update = envelope["detail"]["eventName"]
            .as_str()
            .is_some_and(|n| n.starts_with("UpdateFunctionCode"));
        assert_eq!(
            *was_delivered, code_update,
            "{name}: a quiet sample is delivered exactly when it is an UpdateFunctionCode call"
        );
    }
    assert!(
        quiet.values().any(|&d| d) && quiet.values().any(|&d| !d),
        "the quiet samples should show both sides of the split: {quiet:?}"
    );

    // The corpus is what makes this more than a restatement: real records, real near misses.
    let corpus: Vec<(&Case, &Outcome)> = cases
        .iter()
        .zip(&outcomes)
        .filter(|(case, _)| case.name.starts_with("corpus "))
        .collect();
    if !corpus.is_empty() {
        let count =
            |f: &dyn Fn(&Case, &Outcome) -> bool| corpus.iter().filter(|(c, o)| f(c, o)).count();
        let lambda = |c: &Case| c.envelope["source"] == "aws.lambda";
        assert!(
            count(&|c, o| lambda(c) && c.must_deliver && o.delivered == 1) >= 1,
            "the corpus' real UpdateFunctionCode records must reach the function"
        );
        assert!(
            count(&|c, o| lambda(c) && !c.must_deliver && o.delivered == 0) >= 1,
            "the corpus' other Lambda calls (UpdateFunctionConfiguration, ...) must not"
        );
        assert!(
            count(&|c, o| !lambda(c) && o.delivered == 0) >= 100,
            "the corpus' other services' records must not"
        );
    }
}

#[test]
fn the_pattern_check_catches_the_classic_mistake() {
    // An exact event name deploys fine and never fires, because CloudTrail writes the call as
    // UpdateFunctionCode20150331v2. The harness above must notice; if it did not, its green would
    // mean nothing.
    let Some(deployed) = deployed_template() else {
        return;
    };
    let (function_id, _) = the_function(deployed);
    let (_, rule, _) = the_rule(deployed, function_id);
    let mut pattern = rule["Properties"]["EventPattern"].clone();
    pattern["detail"]["eventName"] = json!(["UpdateFunctionCode"]);
    let cases: Vec<Case> = common::event_files("eventbridge/alert")
        .iter()
        .map(|path| case(relative(path), read_json(path)))
        .collect();
    let Some(outcomes) = apply_pattern(&pattern, &cases) else {
        return;
    };
    // Every sample whose name carries the version suffix must now be missed.
    let wrong = misrouted(&cases, &outcomes);
    let suffixed: Vec<&str> = cases
        .iter()
        .filter(|c| c.envelope["detail"]["eventName"] != "UpdateFunctionCode")
        .map(|c| c.name.as_str())
        .collect();
    assert!(
        !suffixed.is_empty(),
        "the alert samples should include CloudTrail's real, suffixed event names"
    );
    for name in suffixed {
        assert!(
            wrong
                .iter()
                .any(|line| line.starts_with(&format!("{name}:"))),
            "with an exact eventName the check must report {name} as missed, proving it can \
             fail; it reported: {wrong:?}"
        );
    }
}

// ------------------------------------------------------------------------------ least privilege

/// Every statement of every policy attached to `role_id`, each `Fn::If` branch included.
fn role_statements<'t>(deployed: &'t Value, role_id: &str) -> Vec<&'t Value> {
    let role = resource(deployed, role_id);
    let mut documents: Vec<&Value> = Vec::new();
    for policy in as_list(&role["Properties"]["Policies"]) {
        documents.extend(
            alternatives(policy)
                .into_iter()
                .map(|p| &p["PolicyDocument"]),
        );
    }
    // Policies can also be attached from the outside, by SAM or by hand.
    for kind in [
        "AWS::IAM::Policy",
        "AWS::IAM::ManagedPolicy",
        "AWS::IAM::RolePolicy",
    ] {
        for (_, policy) in resources_of_type(deployed, kind) {
            let properties = &policy["Properties"];
            let roles: Vec<&Value> = as_list(&properties["Roles"])
                .into_iter()
                .chain(properties.get("RoleName"))
                .collect();
            if roles.iter().any(|r| target_of(r, None) == Some(role_id)) {
                documents.push(&properties["PolicyDocument"]);
            }
        }
    }
    documents
        .into_iter()
        .flat_map(|document| as_list(&document["Statement"]))
        .flat_map(alternatives)
        .collect()
}

/// Whether a statement limits itself to requests an AWS service makes on the caller's behalf
/// (`kms:ViaService`), so the key cannot be used directly.
fn only_via_a_service(statement: &Value) -> bool {
    ["StringEquals", "StringLike"].iter().any(|operator| {
        let services = as_list(&statement["Condition"][*operator]["kms:ViaService"]);
        !services.is_empty()
            && services.iter().all(|service| {
                let text = render(service).unwrap_or_default();
                text.starts_with("sns.")
                    || text.starts_with("sqs.")
                    || text.starts_with("dynamodb.")
            })
    })
}

#[test]
fn function_role_allows_its_job_and_nothing_else() {
    let Some(deployed) = deployed_template() else {
        return;
    };
    let (function_id, function) = the_function(deployed);
    let properties = &function["Properties"];
    let role_id = target_of(&properties["Role"], Some("Arn")).unwrap_or_else(|| {
        panic!(
            "{function_id}'s Role must be a role defined in the template, got {}",
            properties["Role"]
        )
    });
    let role = resource(deployed, role_id);
    assert_eq!(role["Type"], "AWS::IAM::Role");
    assert!(
        as_list(&role["Properties"]["ManagedPolicyArns"]).is_empty(),
        "{role_id} attaches managed policies ({}); AWS managed ones such as \
         AWSLambdaBasicExecutionRole allow far more than this function needs",
        role["Properties"]["ManagedPolicyArns"]
    );
    let trust = as_list(&role["Properties"]["AssumeRolePolicyDocument"]["Statement"]);
    assert!(
        !trust.is_empty()
            && trust.iter().all(|s| {
                s["Principal"] == json!({"Service": "lambda.amazonaws.com"})
                    || s["Principal"] == json!({"Service": ["lambda.amazonaws.com"]})
            }),
        "only Lambda may assume {role_id}: {}",
        shown(&trust)
    );

    // What each permission may touch, taken from the rest of the template, so that the role and
    // the resources it serves cannot drift apart.
    let topic = &properties["Environment"]["Variables"]["ALERT_TOPIC_ARN"];
    assert!(!topic.is_null(), "{function_id} has no ALERT_TOPIC_ARN");
    let log_group = target_of(&properties["LoggingConfig"]["LogGroup"], None)
        .unwrap_or_else(|| panic!("{function_id} must log to a log group of this template"));
    let invoke_configs: Vec<&Value> = resources_of_type(deployed, "AWS::Lambda::EventInvokeConfig")
        .into_iter()
        .map(|(_, config)| config)
        .filter(|config| {
            target_of(&config["Properties"]["FunctionName"], None) == Some(function_id)
        })
        .collect();
    assert_eq!(
        invoke_configs.len(),
        1,
        "{function_id} needs one EventInvokeConfig"
    );
    let on_failure =
        &invoke_configs[0]["Properties"]["DestinationConfig"]["OnFailure"]["Destination"];
    let failure_queue = target_of(on_failure, Some("Arn"))
        .unwrap_or_else(|| panic!("the on-failure destination must be a queue of this template"));
    let event_table = target_of(&properties["Environment"]["Variables"]["DEDUP_TABLE"], None)
        .unwrap_or_else(|| panic!("{function_id}'s DEDUP_TABLE must name the stack's table"));
    let policy_parameter = target_of(
        &properties["Environment"]["Variables"]["POLICY_PARAMETER"],
        None,
    )
    .unwrap_or_else(|| panic!("{function_id}'s POLICY_PARAMETER must name the stack's parameter"));
    let parameter_arn = |value: &Value| {
        // arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter${PolicyParameter}
        value
            .get("Fn::Sub")
            .and_then(Value::as_str)
            .is_some_and(|text| {
                text == format!(
                    "arn:${{AWS::Partition}}:ssm:${{AWS::Region}}:${{AWS::AccountId}}:parameter${{{policy_parameter}}}"
                )
            })
    };
    // S3 mode: the queue its event source mapping reads, and the trail's log files.
    let trail_queue = resources_of_type(deployed, "AWS::Lambda::EventSourceMapping")
        .into_iter()
        .find(|(_, m)| target_of(&m["Properties"]["FunctionName"], None) == Some(function_id))
        .and_then(|(_, m)| target_of(&m["Properties"]["EventSourceArn"], Some("Arn")));
    let trail_log_files =
        |value: &Value| {
            value.get("Fn::Sub").and_then(Value::as_str).is_some_and(|text| {
            text == "arn:${AWS::Partition}:s3:::${TrailBucketName}/${TrailKeyPrefix}/AWSLogs/*"
                || text == "arn:${AWS::Partition}:s3:::${TrailBucketName}/AWSLogs/*"
        })
        };
    let keys: BTreeSet<&str> = resources_of_type(deployed, "AWS::KMS::Key")
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    let parameters = deployed["Parameters"]
        .as_object()
        .cloned()
        .unwrap_or_default();

    let mut granted: BTreeSet<String> = BTreeSet::new();
    for statement in role_statements(deployed, role_id) {
        let sid = statement["Sid"].as_str().unwrap_or("(no Sid)");
        assert!(
            statement.get("NotAction").is_none() && statement.get("NotResource").is_none(),
            "{role_id} {sid}: NotAction/NotResource grant everything else"
        );
        if statement["Effect"] != "Allow" {
            continue;
        }
        let resources_granted: Vec<&Value> = as_list(&statement["Resource"])
            .into_iter()
            .flat_map(alternatives)
            .collect();
        assert!(
            !resources_granted.is_empty(),
            "{role_id} {sid}: no Resource"
        );
        for action in as_list(&statement["Action"]) {
            let action = action
                .as_str()
                .unwrap_or_else(|| panic!("{role_id} {sid}: action {action} is not a string"));
            assert!(
                !action.contains('*') && !action.contains('?'),
                "{role_id} {sid}: wildcard action {action}"
            );
            for granted_on in &resources_granted {
                assert!(
                    !granted_on.as_str().is_some_and(|r| r.contains('*')),
                    "{role_id} {sid}: {action} on wildcard resource {granted_on}"
                );
                let allowed = match action {
                    "sns:Publish" => {
                        *granted_on == topic || alternatives(topic).contains(granted_on)
                    }
                    "logs:CreateLogStream" | "logs:PutLogEvents" => {
                        target_of(granted_on, Some("Arn")) == Some(log_group)
                    }
                    "sqs:SendMessage" => target_of(granted_on, Some("Arn")) == Some(failure_queue),
                    "dynamodb:GetItem"
                    | "dynamodb:PutItem"
                    | "dynamodb:UpdateItem"
                    | "dynamodb:DeleteItem"
                    | "dynamodb:Scan" => target_of(granted_on, Some("Arn")) == Some(event_table),
                    "ssm:GetParameter" => parameter_arn(granted_on),
                    "s3:GetObject" => trail_log_files(granted_on),
                    "sqs:ReceiveMessage"
                    | "sqs:DeleteMessage"
                    | "sqs:ChangeMessageVisibility"
                    | "sqs:GetQueueAttributes" => {
                        trail_queue.is_some() && target_of(granted_on, Some("Arn")) == trail_queue
                    }
                    "kms:Decrypt" if target_of(granted_on, None) == Some("TrailKmsKeyArn") => {
                        statement["Condition"]["StringLike"]["kms:ViaService"]
                            == "s3.*.amazonaws.com"
                    }
                    "kms:GenerateDataKey" | "kms:Decrypt" => {
                        (target_of(granted_on, Some("Arn")).is_some_and(|k| keys.contains(k))
                            || target_of(granted_on, None)
                                .is_some_and(|p| parameters.contains_key(p)))
                            && only_via_a_service(statement)
                    }
                    _ => false,
                };
                assert!(
                    allowed,
                    "{role_id} {sid}: {action} on {granted_on} is more than the function needs \
                     (publish to its topic {topic}, use its key through SNS and SQS, write its \
                     log group {log_group}, park failures in {failure_queue})"
                );
            }
            granted.insert(action.to_owned());
        }
    }
    assert!(
        granted.contains("sns:Publish"),
        "{role_id} cannot publish alerts: {granted:?}"
    );
    for needed in [
        "logs:PutLogEvents",
        "sqs:SendMessage",
        "kms:GenerateDataKey",
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "dynamodb:Scan",
        "ssm:GetParameter",
    ] {
        assert!(
            granted.contains(needed),
            "{role_id} lacks {needed}: {granted:?}"
        );
    }

    // The topic it publishes to is the stack's own topic or the one given as a parameter.
    for choice in alternatives(topic) {
        let is_own_topic = target_of(choice, None).is_some_and(|id| {
            resources(deployed)
                .get(id)
                .is_some_and(|r| r["Type"] == "AWS::SNS::Topic")
                || parameters.contains_key(id)
        });
        assert!(
            is_own_topic,
            "ALERT_TOPIC_ARN may be {choice}, which is not the stack's topic"
        );
    }
}

// ------------------------------------------------------------------------- kept, not dropped

/// The KMS key an SQS queue or SNS topic of the template is encrypted with.
fn encryption_key<'t>(deployed: &'t Value, id: &str) -> &'t str {
    let key = &resource(deployed, id)["Properties"]["KmsMasterKeyId"];
    let key_id = target_of(key, None)
        .or_else(|| target_of(key, Some("Arn")))
        .unwrap_or_else(|| panic!("{id} must be encrypted with the stack's key, got {key}"));
    assert_eq!(
        resource(deployed, key_id)["Type"],
        "AWS::KMS::Key",
        "{id} is encrypted with {key_id}, not a KMS key of this template"
    );
    key_id
}

/// Key policy statements that let `service` use the key, with their conditions.
fn key_grants_to<'t>(deployed: &'t Value, key_id: &str, service: &str) -> Vec<&'t Value> {
    let key = resource(deployed, key_id);
    assert_eq!(
        key["Properties"]["EnableKeyRotation"], true,
        "{key_id} must rotate"
    );
    as_list(&key["Properties"]["KeyPolicy"]["Statement"])
        .into_iter()
        .filter(|s| s["Effect"] == "Allow")
        .filter(|s| {
            as_list(&s["Principal"]["Service"])
                .iter()
                .any(|p| render(p).as_deref() == Some(service))
        })
        .collect()
}

#[test]
fn undeliverable_and_failed_events_are_kept_not_dropped() {
    let Some(deployed) = deployed_template() else {
        return;
    };
    let (function_id, _) = the_function(deployed);
    let (rule_id, rule, target) = the_rule(deployed, function_id);

    // EventBridge -> function: retried, then parked in an encrypted queue EventBridge may write.
    assert!(
        target["RetryPolicy"]["MaximumRetryAttempts"].as_u64() > Some(0),
        "{rule_id}'s target needs a retry policy: {target}"
    );
    let dead_letters = target_of(&target["DeadLetterConfig"]["Arn"], Some("Arn"))
        .unwrap_or_else(|| panic!("{rule_id}'s target needs a dead-letter queue: {target}"));
    assert_eq!(resource(deployed, dead_letters)["Type"], "AWS::SQS::Queue");
    let key = encryption_key(deployed, dead_letters);

    let queue_policies: Vec<&Value> = resources_of_type(deployed, "AWS::SQS::QueuePolicy")
        .into_iter()
        .map(|(_, p)| &p["Properties"])
        .filter(|p| {
            as_list(&p["Queues"])
                .iter()
                .any(|q| target_of(q, None) == Some(dead_letters))
        })
        .collect();
    let rule_may_send = queue_policies
        .iter()
        .flat_map(|p| as_list(&p["PolicyDocument"]["Statement"]))
        .any(|s| {
            s["Effect"] == "Allow"
                && s["Principal"]["Service"] == "events.amazonaws.com"
                && as_list(&s["Action"]).contains(&&json!("sqs:SendMessage"))
                && target_of(&s["Condition"]["ArnEquals"]["aws:SourceArn"], Some("Arn"))
                    == Some(rule_id)
        });
    assert!(
        rule_may_send,
        "{dead_letters}'s queue policy must let events.amazonaws.com send, for {rule_id} only"
    );

    // The key must let EventBridge encrypt for that queue, and only for this rule. The rule's
    // name is fixed (the key cannot reference the rule without a cycle), so compare the ARN the
    // key policy spells out with the ARN the rule gets, on the default bus and on the
    // organization bus (where the bus is part of the ARN).
    assert!(
        render(&rule["Properties"]["Name"]).is_some(),
        "{rule_id} needs a name computable at deploy time"
    );
    let events_grants = key_grants_to(deployed, key, "events.amazonaws.com");
    for given in [&[][..], &[("OrganizationId", ORGANIZATION)][..]] {
        let deployment = Deployment::new(deployed, given);
        let rule_arn = deployment.text(&json!({"Fn::GetAtt": [rule_id, "Arn"]}));
        assert!(
            events_grants.iter().any(|s| {
                let actions = as_list(&s["Action"]);
                actions.contains(&&json!("kms:GenerateDataKey"))
                    && actions.contains(&&json!("kms:Decrypt"))
                    && deployment
                        .resolve(&s["Condition"]["ArnEquals"]["aws:SourceArn"])
                        .is_some_and(|arn| arn == rule_arn.as_str())
            }),
            "{key}'s policy must let events.amazonaws.com use it (GenerateDataKey, Decrypt) for \
             {rule_arn} ({given:?}); it grants: {}",
            shown(&events_grants)
        );
    }

    // Function: retried by Lambda, then the invocation record goes to an encrypted queue.
    let config = resources_of_type(deployed, "AWS::Lambda::EventInvokeConfig")
        .into_iter()
        .map(|(_, c)| &c["Properties"])
        .find(|c| target_of(&c["FunctionName"], None) == Some(function_id))
        .unwrap_or_else(|| panic!("{function_id} needs an EventInvokeConfig"));
    assert!(
        config.get("MaximumRetryAttempts").is_some(),
        "{function_id}: state the async retries"
    );
    let failures = target_of(
        &config["DestinationConfig"]["OnFailure"]["Destination"],
        Some("Arn"),
    )
    .unwrap_or_else(|| panic!("{function_id} needs an on-failure destination: {config}"));
    assert_eq!(resource(deployed, failures)["Type"], "AWS::SQS::Queue");
    encryption_key(deployed, failures);

    // The function's log group: encrypted with a key CloudWatch Logs may use for that group.
    let (_, function) = the_function(deployed);
    let log_group_id = target_of(&function["Properties"]["LoggingConfig"]["LogGroup"], None)
        .expect("the function logs to a log group of this template");
    let log_group = &resource(deployed, log_group_id)["Properties"];
    assert!(
        log_group.get("RetentionInDays").is_some(),
        "{log_group_id} needs a retention"
    );
    let log_key = target_of(&log_group["KmsKeyId"], Some("Arn"))
        .unwrap_or_else(|| panic!("{log_group_id} must be encrypted with the stack's key"));
    let log_group_name = render(&log_group["LogGroupName"])
        .unwrap_or_else(|| panic!("{log_group_id} needs a name computable at deploy time"));
    let log_group_arn = format!("arn:aws:logs:us-east-1:123456789012:log-group:{log_group_name}");
    let logs_grants = key_grants_to(deployed, log_key, "logs.us-east-1.amazonaws.com");
    assert!(
        logs_grants.iter().any(|s| {
            as_list(&s["Condition"]["ArnEquals"]["kms:EncryptionContext:aws:logs:arn"])
                .iter()
                .any(|arn| render(arn).as_deref() == Some(log_group_arn.as_str()))
        }),
        "{log_key}'s policy must let CloudWatch Logs use it for {log_group_arn}: {}",
        shown(&logs_grants)
    );
}

#[test]
fn the_topics_refuse_plain_http() {
    let Some(deployed) = deployed_template() else {
        return;
    };
    let topics = resources_of_type(deployed, "AWS::SNS::Topic");
    assert_eq!(
        topics.len(),
        2,
        "the alert topic and the operations topic (each created unless one is given)"
    );
    for (topic_id, _) in topics {
        topic_refuses_plain_http(deployed, topic_id);
    }
}

fn topic_refuses_plain_http(deployed: &Value, topic_id: &str) {
    encryption_key(deployed, topic_id);
    let denies_plain_http = resources_of_type(deployed, "AWS::SNS::TopicPolicy")
        .into_iter()
        .map(|(_, p)| &p["Properties"])
        .filter(|p| {
            as_list(&p["Topics"])
                .iter()
                .any(|t| target_of(t, None) == Some(topic_id))
        })
        .flat_map(|p| as_list(&p["PolicyDocument"]["Statement"]))
        .any(|s| {
            s["Effect"] == "Deny"
                && s["Principal"] == "*"
                && s["Condition"]["Bool"]["aws:SecureTransport"] == "false"
        });
    assert!(
        denies_plain_http,
        "{topic_id}'s topic policy must deny requests without TLS"
    );
}

#[test]
fn alarms_watch_the_function_and_both_queues() {
    let Some(deployed) = deployed_template() else {
        return;
    };
    let (function_id, _) = the_function(deployed);
    let (_, _, target) = the_rule(deployed, function_id);
    let dead_letters = target_of(&target["DeadLetterConfig"]["Arn"], Some("Arn"))
        .expect("the rule target has a dead-letter queue");
    let failures = resources_of_type(deployed, "AWS::Lambda::EventInvokeConfig")
        .into_iter()
        .find_map(|(_, c)| {
            target_of(
                &c["Properties"]["DestinationConfig"]["OnFailure"]["Destination"],
                Some("Arn"),
            )
        })
        .expect("the function has an on-failure destination");

    let alarms: Vec<&Value> = resources_of_type(deployed, "AWS::CloudWatch::Alarm")
        .into_iter()
        .map(|(_, a)| &a["Properties"])
        .collect();
    let watches =
        |namespace: &str, metric: &str, dimension: &str, subject: &str, attr: Option<&str>| {
            alarms.iter().any(|a| {
                a["Namespace"] == namespace
                    && a["MetricName"] == metric
                    && as_list(&a["Dimensions"]).iter().any(|d| {
                        d["Name"] == dimension && target_of(&d["Value"], attr) == Some(subject)
                    })
            })
        };
    assert!(
        watches("AWS/Lambda", "Errors", "FunctionName", function_id, None),
        "an alarm must watch {function_id}'s Errors"
    );
    for queue in [dead_letters, failures] {
        assert!(
            watches(
                "AWS/SQS",
                "ApproximateNumberOfMessagesVisible",
                "QueueName",
                queue,
                Some("QueueName")
            ),
            "an alarm must watch the depth of {queue}"
        );
    }

    let outputs = deployed["Outputs"].as_object().cloned().unwrap_or_default();
    let outputs_value =
        |wanted: &dyn Fn(&Value) -> bool| outputs.values().any(|o| wanted(&o["Value"]));
    assert!(
        outputs_value(&|v| target_of(v, None) == Some(function_id)),
        "an output must give the function name"
    );
    for queue in [dead_letters, failures] {
        assert!(
            outputs_value(&|v| target_of(v, None) == Some(queue)),
            "an output must give the URL of {queue}"
        );
    }
    assert!(
        outputs_value(&|v| alternatives(v)
            .iter()
            .any(|c| target_of(c, None).is_some_and(|id| resources(deployed)
                .get(id)
                .is_some_and(|r| r["Type"] == "AWS::SNS::Topic")))),
        "an output must give the alert topic ARN"
    );
}

// ------------------------------------------------------------------ a destination is required

/// Parameter values for one deployment: the template's defaults, overridden by `given`.
fn parameter_values(template: &Value, given: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut values: BTreeMap<String, String> = template["Parameters"]
        .as_object()
        .expect("the template has Parameters")
        .iter()
        .map(|(name, p)| {
            let default = match &p["Default"] {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            };
            (name.clone(), default)
        })
        .collect();
    for (name, value) in given {
        assert!(
            values.contains_key(*name),
            "the template has no parameter {name}"
        );
        values.insert((*name).to_owned(), (*value).to_owned());
    }
    values
}

/// Evaluates a condition-like expression (Fn::Equals, Fn::Not, Fn::And, Fn::Or, Condition, Ref of
/// a parameter or pseudo parameter, literals) as CloudFormation would for these parameter values.
fn evaluate_condition(
    expression: &Value,
    parameters: &BTreeMap<String, String>,
    conditions: &Value,
) -> bool {
    let object = expression
        .as_object()
        .filter(|o| o.len() == 1)
        .unwrap_or_else(|| panic!("not a condition: {expression}"));
    let (function, argument) = object.iter().next().unwrap();
    let arguments = || argument.as_array().expect("a list of arguments");
    match function.as_str() {
        "Fn::Equals" => {
            let sides: Vec<String> = arguments()
                .iter()
                .map(|side| condition_value(side, parameters))
                .collect();
            sides[0] == sides[1]
        }
        "Fn::Not" => !evaluate_condition(&arguments()[0], parameters, conditions),
        "Fn::And" => arguments()
            .iter()
            .all(|a| evaluate_condition(a, parameters, conditions)),
        "Fn::Or" => arguments()
            .iter()
            .any(|a| evaluate_condition(a, parameters, conditions)),
        "Condition" => {
            let name = argument.as_str().expect("a condition name");
            evaluate_condition(&conditions[name], parameters, conditions)
        }
        other => panic!("unsupported function {other} in a condition"),
    }
}

/// A string-valued operand of a condition: literal, Ref, or Fn::Select/Split/Join over them.
fn condition_value(value: &Value, parameters: &BTreeMap<String, String>) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Number(n) => n.to_string(),
        Value::Object(map) if map.len() == 1 => {
            let (function, argument) = map.iter().next().unwrap();
            match function.as_str() {
                "Ref" => {
                    let name = argument.as_str().expect("a name");
                    parameters
                        .get(name)
                        .cloned()
                        .or_else(|| pseudo_parameter(name))
                        .unwrap_or_else(|| panic!("Ref {name} in a condition"))
                }
                "Fn::Join" => {
                    let [separator, parts] = argument.as_array().unwrap().as_slice() else {
                        panic!("Fn::Join takes two arguments")
                    };
                    parts
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|p| condition_value(p, parameters))
                        .collect::<Vec<_>>()
                        .join(separator.as_str().unwrap())
                }
                "Fn::Select" => {
                    let [index, list] = argument.as_array().unwrap().as_slice() else {
                        panic!("Fn::Select takes two arguments")
                    };
                    let [separator, text] = list["Fn::Split"].as_array().unwrap().as_slice() else {
                        panic!("Fn::Select over Fn::Split expected")
                    };
                    let text = condition_value(text, parameters);
                    let index = index
                        .as_u64()
                        .or_else(|| index.as_str()?.parse().ok())
                        .unwrap() as usize;
                    text.split(separator.as_str().unwrap())
                        .nth(index)
                        .unwrap_or_else(|| panic!("Fn::Select {index} out of range in {text:?}"))
                        .to_owned()
                }
                other => panic!("unsupported function {other} in a condition operand"),
            }
        }
        other => panic!("unsupported condition operand {other}"),
    }
}

/// The deploy-time rules a deployment with `given` parameters breaks, by name.
fn broken_rules(template: &Value, given: &[(&str, &str)]) -> Vec<String> {
    let parameters = parameter_values(template, given);
    let conditions = &template["Conditions"];
    let mut broken = Vec::new();
    for (name, rule) in template["Rules"]
        .as_object()
        .expect("the template has Rules")
    {
        let applies = rule
            .get("RuleCondition")
            .is_none_or(|c| evaluate_condition(c, &parameters, conditions));
        if !applies {
            continue;
        }
        for assertion in as_list(&rule["Assertions"]) {
            if !evaluate_condition(&assertion["Assert"], &parameters, conditions) {
                broken.push(name.clone());
            }
        }
    }
    broken
}

#[test]
fn a_deployment_without_a_destination_is_refused() {
    let Some(source) = source_template() else {
        return;
    };
    // The defaults deliver alerts and alarms to nobody: both rules refuse them.
    let broken = broken_rules(source, &[]);
    assert!(
        broken.contains(&"AlertsNeedADestination".to_owned())
            && broken.contains(&"AlarmsNeedADestination".to_owned()),
        "a deployment with the defaults must be refused for want of a destination: {broken:?}"
    );
    // Each assertion names the parameters that fix it.
    for (rule, parameters) in [
        (
            "AlertsNeedADestination",
            &["AlertEmail", "AlertSqsQueueArn", "ExistingAlertTopicArn"][..],
        ),
        ("AlarmsNeedADestination", &["OpsEmail", "AlarmTopicArn"][..]),
    ] {
        let assertions = as_list(&source["Rules"][rule]["Assertions"]);
        assert_eq!(assertions.len(), 1, "{rule}");
        let description = assertions[0]["AssertDescription"].as_str().unwrap_or("");
        let asserted = assertions[0]["Assert"].to_string();
        for parameter in parameters {
            assert!(
                description.contains(parameter),
                "{rule} must name {parameter}"
            );
            assert!(asserted.contains(parameter), "{rule} must test {parameter}");
        }
    }

    let topic = "arn:aws:sns:eu-west-1:111122223333:security-alerts";
    let queue = "arn:aws:sqs:us-east-1:111122223333:siem-intake";
    let ops = "arn:aws:sns:us-east-1:123456789012:ops";
    for (given, expected) in [
        (
            &[("AlertEmail", "sec@example.com")][..],
            vec!["AlarmsNeedADestination"],
        ),
        (
            &[("OpsEmail", "ops@example.com")][..],
            vec!["AlertsNeedADestination"],
        ),
        (
            &[
                ("AlertEmail", "sec@example.com"),
                ("OpsEmail", "ops@example.com"),
            ][..],
            vec![],
        ),
        (
            &[("AlertSqsQueueArn", queue), ("AlarmTopicArn", ops)][..],
            vec![],
        ),
        (
            &[
                ("ExistingAlertTopicArn", topic),
                ("OpsEmail", "ops@example.com"),
            ][..],
            vec![],
        ),
        (
            &[
                ("ExistingAlertTopicArn", topic),
                ("AlertEmail", "sec@example.com"),
                ("OpsEmail", "ops@example.com"),
            ][..],
            vec!["EmailNeedsOwnTopic"],
        ),
        (
            &[
                ("ExistingAlertTopicArn", topic),
                ("AlertSqsQueueArn", queue),
                ("AlarmTopicArn", ops),
            ][..],
            vec!["QueueNeedsOwnTopic"],
        ),
        (
            &[
                ("AlertEmail", "sec@example.com"),
                ("AlarmTopicArn", ops),
                ("OpsEmail", "ops@example.com"),
            ][..],
            vec!["OpsEmailNeedsOwnOpsTopic"],
        ),
    ] {
        assert_eq!(broken_rules(source, given), expected, "{given:?}");
    }
}

// --------------------------------------------------------------------- resolving intrinsics

/// One deployment of the template, for resolving intrinsic functions to what CloudFormation would
/// put there: parameter values, conditions, and a made-up physical id for every resource.
struct Deployment<'t> {
    template: &'t Value,
    parameters: BTreeMap<String, String>,
}

const ACCOUNT: &str = "123456789012";
const REGION: &str = "us-east-1";
/// The organisation of organization-mode deployments.
const ORGANIZATION: &str = "o-a1b2c3d4e5";

impl<'t> Deployment<'t> {
    fn new(template: &'t Value, given: &[(&str, &str)]) -> Deployment<'t> {
        Deployment {
            template,
            parameters: parameter_values(template, given),
        }
    }

    fn condition(&self, name: &str) -> bool {
        let conditions = &self.template["Conditions"];
        evaluate_condition(&conditions[name], &self.parameters, conditions)
    }

    fn exists(&self, id: &str) -> bool {
        let resource = resource(self.template, id);
        resource["Condition"]
            .as_str()
            .is_none_or(|c| self.condition(c))
    }

    /// What `Ref` of a resource gives.
    fn reference(&self, id: &str) -> Value {
        let resource = resource(self.template, id);
        assert!(
            self.exists(id),
            "Ref to {id}, which this deployment does not create"
        );
        let properties = &resource["Properties"];
        let named = |key: &str| {
            properties
                .get(key)
                .and_then(|v| self.resolve(v))
                .and_then(|v| v.as_str().map(str::to_owned))
        };
        let text = match resource["Type"].as_str().unwrap_or("") {
            "AWS::SNS::Topic" => format!("arn:aws:sns:{REGION}:{ACCOUNT}:{STACK_NAME}-{id}-X1"),
            "AWS::KMS::Key" => format!("key-id-{id}"),
            "AWS::SQS::Queue" => format!(
                "https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{}",
                self.attribute(id, "QueueName").as_str().unwrap()
            ),
            "AWS::Lambda::Function" => {
                named("FunctionName").unwrap_or_else(|| format!("{STACK_NAME}-{id}"))
            }
            // On a custom bus CloudFormation gives "<bus>|<rule>", not the name.
            "AWS::Events::Rule" => match self.rule_bus(id) {
                Some(bus) => format!("{bus}|{}", self.rule_name(id)),
                None => self.rule_name(id),
            },
            "AWS::Events::EventBus" => {
                named("Name").expect("an event bus of this template is named")
            }
            "AWS::Logs::LogGroup" => {
                named("LogGroupName").unwrap_or_else(|| format!("{STACK_NAME}-{id}"))
            }
            "AWS::CloudWatch::Alarm" => {
                named("AlarmName").unwrap_or_else(|| format!("{STACK_NAME}-{id}-physical"))
            }
            _ => format!("{STACK_NAME}-{id}-physical"),
        };
        Value::String(text)
    }

    /// What `Fn::GetAtt [id, attribute]` gives.
    fn attribute(&self, id: &str, attribute: &str) -> Value {
        let resource = resource(self.template, id);
        let kind = resource["Type"].as_str().unwrap_or("");
        let text = match (kind, attribute) {
            ("AWS::SQS::Queue", "QueueName") => resource["Properties"]
                .get("QueueName")
                .and_then(|name| self.resolve(name))
                .and_then(|name| name.as_str().map(str::to_owned))
                .unwrap_or_else(|| format!("{STACK_NAME}-{id}-Q1")),
            ("AWS::SQS::Queue", "Arn") => format!(
                "arn:aws:sqs:{REGION}:{ACCOUNT}:{}",
                self.attribute(id, "QueueName").as_str().unwrap()
            ),
            ("AWS::KMS::Key", "Arn") => format!(
                "arn:aws:kms:{REGION}:{ACCOUNT}:key/{}",
                self.reference(id).as_str().unwrap()
            ),
            ("AWS::SNS::Topic", "TopicName") => format!("{STACK_NAME}-{id}-X1"),
            ("AWS::Lambda::Function", "Arn") => format!(
                "arn:aws:lambda:{REGION}:{ACCOUNT}:function:{}",
                self.reference(id).as_str().unwrap()
            ),
            ("AWS::Events::Rule", "Arn") => match self.rule_bus(id) {
                Some(bus) => format!(
                    "arn:aws:events:{REGION}:{ACCOUNT}:rule/{bus}/{}",
                    self.rule_name(id)
                ),
                None => format!(
                    "arn:aws:events:{REGION}:{ACCOUNT}:rule/{}",
                    self.rule_name(id)
                ),
            },
            ("AWS::Events::EventBus", "Arn") => format!(
                "arn:aws:events:{REGION}:{ACCOUNT}:event-bus/{}",
                self.reference(id).as_str().unwrap()
            ),
            ("AWS::Events::EventBus", "Name") => self.reference(id).as_str().unwrap().to_owned(),
            ("AWS::IAM::Role", "Arn") => {
                format!("arn:aws:iam::{ACCOUNT}:role/{STACK_NAME}-{id}-R1")
            }
            ("AWS::Logs::LogGroup", "Arn") => format!(
                "arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{}:*",
                self.reference(id).as_str().unwrap()
            ),
            _ => format!("{STACK_NAME}-{id}-{attribute}"),
        };
        Value::String(text)
    }

    /// The name of rule `id` (its `Name`, else a generated one).
    fn rule_name(&self, id: &str) -> String {
        resource(self.template, id)["Properties"]
            .get("Name")
            .and_then(|v| self.resolve(v))
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_else(|| format!("{STACK_NAME}-{id}"))
    }

    /// The custom bus rule `id` is on in this deployment; `None` for the default bus.
    fn rule_bus(&self, id: &str) -> Option<String> {
        let bus = resource(self.template, id)["Properties"].get("EventBusName")?;
        let bus = self.resolve(bus)?;
        let bus = bus.as_str().expect("EventBusName is a string");
        (bus != "default").then(|| bus.to_owned())
    }

    /// `value` with every intrinsic function resolved; `None` for `AWS::NoValue` (dropped from
    /// the list or object around it).
    fn resolve(&self, value: &Value) -> Option<Value> {
        match value {
            Value::Array(items) => Some(Value::Array(
                items.iter().filter_map(|i| self.resolve(i)).collect(),
            )),
            Value::Object(map) if map.len() == 1 && self.is_intrinsic(map) => {
                let (function, argument) = map.iter().next().unwrap();
                self.intrinsic(function, argument)
            }
            Value::Object(map) => Some(Value::Object(
                map.iter()
                    .filter_map(|(k, v)| Some((k.clone(), self.resolve(v)?)))
                    .collect(),
            )),
            other => Some(other.clone()),
        }
    }

    fn is_intrinsic(&self, map: &serde_json::Map<String, Value>) -> bool {
        map.keys()
            .all(|k| k == "Ref" || k == "Condition" || k.starts_with("Fn::"))
    }

    fn text(&self, value: &Value) -> String {
        match self.resolve(value) {
            Some(Value::String(text)) => text,
            other => panic!("{value} does not resolve to a string: {other:?}"),
        }
    }

    fn intrinsic(&self, function: &str, argument: &Value) -> Option<Value> {
        let arguments = || argument.as_array().expect("a list of arguments");
        Some(match function {
            "Ref" => {
                let name = argument.as_str().expect("Ref takes a name");
                if name == "AWS::NoValue" {
                    return None;
                }
                if let Some(value) = self.parameters.get(name) {
                    Value::String(value.clone())
                } else if let Some(value) = pseudo_parameter(name) {
                    Value::String(value)
                } else {
                    self.reference(name)
                }
            }
            "Fn::GetAtt" => {
                let parts: Vec<&str> = match argument {
                    Value::String(text) => text.splitn(2, '.').collect(),
                    _ => arguments().iter().filter_map(Value::as_str).collect(),
                };
                self.attribute(parts[0], parts[1])
            }
            "Fn::If" => {
                let [condition, yes, no] = arguments().as_slice() else {
                    panic!("Fn::If takes three arguments")
                };
                let chosen = if self.condition(condition.as_str().unwrap()) {
                    yes
                } else {
                    no
                };
                return self.resolve(chosen);
            }
            "Fn::Join" => {
                let [separator, parts] = arguments().as_slice() else {
                    panic!("Fn::Join takes two arguments")
                };
                let parts = self.resolve(parts)?;
                Value::String(
                    parts
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|p| p.as_str().unwrap().to_owned())
                        .collect::<Vec<_>>()
                        .join(separator.as_str().unwrap()),
                )
            }
            "Fn::Split" => {
                let [separator, text] = arguments().as_slice() else {
                    panic!("Fn::Split takes two arguments")
                };
                Value::Array(
                    self.text(text)
                        .split(separator.as_str().unwrap())
                        .map(|p| Value::String(p.to_owned()))
                        .collect(),
                )
            }
            "Fn::Select" => {
                let [index, list] = arguments().as_slice() else {
                    panic!("Fn::Select takes two arguments")
                };
                let index = index
                    .as_u64()
                    .or_else(|| index.as_str()?.parse().ok())
                    .unwrap();
                self.resolve(list)?.as_array().unwrap()[index as usize].clone()
            }
            "Fn::Sub" => {
                let (text, variables) = match argument {
                    Value::String(text) => (text.as_str(), None),
                    _ => (arguments()[0].as_str().unwrap(), arguments().get(1)),
                };
                let mut out = String::new();
                let mut rest = text;
                while let Some(start) = rest.find("${") {
                    out.push_str(&rest[..start]);
                    let end = rest[start..].find('}').unwrap() + start;
                    let name = &rest[start + 2..end];
                    let value = match variables.and_then(|v| v.get(name)) {
                        Some(v) => self.text(v),
                        None if name.contains('.') && !name.starts_with("AWS::") => {
                            let (id, attribute) = name.split_once('.').unwrap();
                            self.attribute(id, attribute).as_str().unwrap().to_owned()
                        }
                        None => self.text(&json!({"Ref": name})),
                    };
                    out.push_str(&value);
                    rest = &rest[end + 1..];
                }
                out.push_str(rest);
                Value::String(out)
            }
            other => panic!("unsupported intrinsic function {other}"),
        })
    }
}

// ------------------------------------------------------------------------------- tamper rules

/// The tamper rules: EventBridge rules whose targets are the topics, with an input transformer.
fn tamper_rules(deployed: &Value) -> Vec<(&str, &Value)> {
    resources_of_type(deployed, "AWS::Events::Rule")
        .into_iter()
        .filter(|(_, rule)| {
            as_list(&rule["Properties"]["Targets"])
                .into_iter()
                .flat_map(alternatives)
                .any(|t| t.get("InputTransformer").is_some())
        })
        .collect()
}

/// Fields every CloudTrail record has, and the envelope's own: an input transformer may read
/// them whatever the pattern says.
const ALWAYS_PRESENT: &[&str] = &[
    "$.account",
    "$.region",
    "$.time",
    "$.id",
    "$.source",
    "$.detail.eventName",
    "$.detail.eventSource",
    "$.detail.eventTime",
    "$.detail.eventID",
];

/// Whether `pattern` only matches events where `path` (`$.detail.a.b`) exists.
fn pattern_requires(pattern: &Value, path: &str) -> bool {
    let Some(rest) = path.strip_prefix("$.") else {
        return false;
    };
    let mut node = pattern;
    for key in rest.split('.') {
        node = &node[key];
    }
    let filters = as_list(node);
    !filters.is_empty()
        && filters
            .iter()
            .all(|f| f.get("exists") != Some(&json!(false)) && !f.is_null())
}

#[test]
fn tamper_alerts_read_only_fields_their_pattern_guarantees() {
    let Some(deployed) = deployed_template() else {
        return;
    };
    let rules = tamper_rules(deployed);
    assert!(
        rules.len() >= 10,
        "expected the tamper rules, found {}",
        rules.len()
    );
    for (id, rule) in rules {
        let pattern = &rule["Properties"]["EventPattern"];
        for target in as_list(&rule["Properties"]["Targets"])
            .into_iter()
            .flat_map(alternatives)
        {
            let transformer = &target["InputTransformer"];
            let paths = transformer["InputPathsMap"]
                .as_object()
                .unwrap_or_else(|| panic!("{id}: every tamper target needs an InputPathsMap"));
            for (variable, path) in paths {
                let path = path.as_str().unwrap();
                assert!(
                    ALWAYS_PRESENT.contains(&path) || pattern_requires(pattern, path),
                    "{id}: <{variable}> reads {path}, which the pattern does not require: an \\
                     event without it would render a broken alert"
                );
            }
            let template = transformer["InputTemplate"].as_str().unwrap();
            let title_start = template.find("\"title\": \"").expect("a title") + 10;
            let title = &template[title_start..][..template[title_start..].find('"').unwrap()];
            assert!(
                title.starts_with("lambda-code-watch tampered with: <eventName> on "),
                "{id}: title {title:?}"
            );
            for placeholder in template
                .split('<')
                .skip(1)
                .map(|p| &p[..p.find('>').unwrap()])
            {
                assert!(
                    paths.contains_key(placeholder) || placeholder.starts_with("aws.events."),
                    "{id}: <{placeholder}> is not defined"
                );
            }
            assert!(template.contains("\"severity\": \"HIGH\""), "{id}");
            assert!(
                target["DeadLetterConfig"]["Arn"].is_object() && target["RetryPolicy"].is_object(),
                "{id}: an undeliverable tamper alert must be retried, then parked"
            );
        }
    }
}

/// A CloudTrail "AWS API Call" envelope for `event_name` on `service` by `identity`.
fn api_call(service: &str, event_name: &str, parameters: Value, identity: Value) -> Value {
    json!({
        "version": "0",
        "id": "00000000-0000-0000-0000-000000000000",
        "detail-type": "AWS API Call via CloudTrail",
        "source": format!("aws.{service}"),
        "account": ACCOUNT,
        "time": "2026-12-01T00:00:00Z",
        "region": REGION,
        "resources": [],
        "detail": {
            "eventVersion": "1.09",
            "userIdentity": identity,
            "eventTime": "2026-12-01T00:00:00Z",
            "eventSource": format!("{service}.amazonaws.com"),
            "eventName": event_name,
            "awsRegion": REGION,
            "sourceIPAddress": "198.51.100.7",
            "userAgent": "aws-cli/2.17.0",
            "requestParameters": parameters,
            "responseElements": null,
            "eventID": "11111111-2222-3333-4444-555555555555",
            "readOnly": false,
            "eventType": "AwsApiCall",
            "managementEvent": true,
            "recipientAccountId": ACCOUNT,
        }
    })
}

fn attacker() -> Value {
    json!({"type": "AssumedRole", "principalId": "AROAEXAMPLE:mallory",
           "arn": format!("arn:aws:sts::{ACCOUNT}:assumed-role/Admin/mallory"),
           "accountId": ACCOUNT,
           "sessionContext": {"sessionIssuer": {"type": "Role",
               "arn": format!("arn:aws:iam::{ACCOUNT}:role/Admin"), "userName": "Admin"}}})
}

/// One crafted call and whether some tamper rule must report it.
struct TamperCase {
    name: String,
    envelope: Value,
    must_alert: bool,
    /// For a reported call: the `<resource>` the alert must name.
    resource: Option<String>,
}

/// Every watched call on this stack's resources (reported) and the same calls on unrelated
/// resources, or unwatched calls on ours (not reported).
fn tamper_cases(deployment: &Deployment) -> Vec<TamperCase> {
    let mut cases = Vec::new();
    let mut add = |service: &str, event_name: &str, field: &str, value: &str, must_alert: bool| {
        let parameters = json!({ field: value });
        cases.push(TamperCase {
            name: format!("{service} {event_name} {field}={value}"),
            envelope: api_call(service, event_name, parameters, attacker()),
            must_alert,
            resource: must_alert.then(|| value.to_owned()),
        });
    };
    let function = deployment.text(&json!({"Ref": "CodeWatchFunction"}));
    let canary = deployment.text(&json!({"Ref": "CanaryFunction"}));
    let canary_target = deployment.text(&json!({"Ref": "CanaryTargetFunction"}));
    let function_arn = |name: &str| format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}");
    for event_name in [
        "UpdateFunctionCode20150331v2",
        "UpdateFunctionConfiguration20150331v2",
        "PutFunctionConcurrency20171031",
        "DeleteFunctionConcurrency20171031",
        "AddPermission20150331v2",
        "RemovePermission20150331v2",
        "CreateEventSourceMapping20150331",
        "UpdateEventSourceMapping20150331",
        "DeleteFunction20150331",
        "PutFunctionEventInvokeConfig",
    ] {
        for ours in [
            function.clone(),
            function_arn(&function),
            format!("{ACCOUNT}:function:{function}"),
            format!("{}:live", function_arn(&function)),
            canary.clone(),
            function_arn(&canary),
        ] {
            add("lambda", event_name, "functionName", &ours, true);
        }
        for theirs in [
            "payments-api".to_owned(),
            function_arn("payments-api"),
            format!("{function}-copy"),
            canary_target.clone(),
        ] {
            add("lambda", event_name, "functionName", &theirs, false);
        }
    }
    add(
        "lambda",
        "GetFunction20150331v2",
        "functionName",
        &function,
        false,
    );
    add("lambda", "Invoke", "functionName", &function, false);

    let detection_rule = deployment.text(&json!({"Ref": "CodeWatchFunctionCodeUpdates"}));
    let canary_rule = deployment.text(&json!({"Ref": "CanarySchedule"}));
    let tamper_rule = deployment.text(&json!({"Ref": "TamperRuleRule"}));
    let watch_rule = deployment.text(&json!({"Ref": "TamperRuleWatchRule"}));
    for (event_name, field) in [
        ("DisableRule", "name"),
        ("DeleteRule", "name"),
        ("PutRule", "name"),
        ("PutTargets", "rule"),
        ("RemoveTargets", "rule"),
    ] {
        for ours in [&detection_rule, &canary_rule, &tamper_rule, &watch_rule] {
            add("events", event_name, field, ours, true);
        }
        add("events", event_name, field, "nightly-batch", false);
    }
    add("events", "EnableRule", "name", &detection_rule, false);

    let alert_topic = deployment.text(&json!({"Ref": "AlertTopic"}));
    let ops_topic = deployment.text(&json!({"Ref": "OpsTopic"}));
    let other_topic = format!("arn:aws:sns:{REGION}:{ACCOUNT}:orders");
    for event_name in [
        "DeleteTopic",
        "SetTopicAttributes",
        "AddPermission",
        "RemovePermission",
        "Subscribe",
    ] {
        for ours in [&alert_topic, &ops_topic] {
            add("sns", event_name, "topicArn", ours, true);
        }
        add("sns", event_name, "topicArn", &other_topic, false);
    }
    for event_name in ["Unsubscribe", "SetSubscriptionAttributes"] {
        for ours in [&alert_topic, &ops_topic] {
            let subscription = format!("{ours}:0b9f7a52-0c44-4f62-9ad3-5f2f1d3e6a11");
            add("sns", event_name, "subscriptionArn", &subscription, true);
        }
        for theirs in [&other_topic, &format!("{alert_topic}-shadow")] {
            let subscription = format!("{theirs}:0b9f7a52-0c44-4f62-9ad3-5f2f1d3e6a11");
            add("sns", event_name, "subscriptionArn", &subscription, false);
        }
    }
    add("sns", "Publish", "topicArn", &alert_topic, false);

    let keys: Vec<String> = ["EncryptionKey", "OpsKey"]
        .iter()
        .flat_map(|id| {
            [
                deployment.text(&json!({"Ref": id})),
                deployment.text(&json!({"Fn::GetAtt": [id, "Arn"]})),
            ]
        })
        .collect();
    for event_name in [
        "DisableKey",
        "ScheduleKeyDeletion",
        "PutKeyPolicy",
        "DisableKeyRotation",
    ] {
        for ours in &keys {
            add("kms", event_name, "keyId", ours, true);
        }
        add(
            "kms",
            event_name,
            "keyId",
            "0f2e8a9b-1111-2222-3333-444455556666",
            false,
        );
    }
    add("kms", "Decrypt", "keyId", &keys[0], false);

    let queue_names: Vec<String> = ["RuleDeadLetterQueue", "FailedInvocationQueue"]
        .iter()
        .map(|id| deployment.text(&json!({"Fn::GetAtt": [id, "QueueName"]})))
        .collect();
    for event_name in ["DeleteQueue", "SetQueueAttributes", "PurgeQueue"] {
        for name in &queue_names {
            for url in [
                format!("https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{name}"),
                format!("https://queue.amazonaws.com/{ACCOUNT}/{name}"),
            ] {
                add("sqs", event_name, "queueUrl", &url, true);
            }
            let lookalike = format!("https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/x{name}");
            add("sqs", event_name, "queueUrl", &lookalike, false);
        }
        let other = format!("https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/orders");
        add("sqs", event_name, "queueUrl", &other, false);
    }

    let table = format!("{STACK_NAME}-alert-dedup");
    for event_name in ["DeleteTable", "UpdateTable", "UpdateTimeToLive"] {
        add("dynamodb", event_name, "tableName", &table, true);
        let table_arn = format!("arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{table}");
        add("dynamodb", event_name, "tableName", &table_arn, true);
        add("dynamodb", event_name, "tableName", "orders", false);
    }

    let stack_id = pseudo_parameter("AWS::StackId").unwrap();
    for event_name in [
        "DeleteStack",
        "UpdateStack",
        "ExecuteChangeSet",
        "UpdateTerminationProtection",
        "SetStackPolicy",
    ] {
        add("cloudformation", event_name, "stackName", STACK_NAME, true);
        add("cloudformation", event_name, "stackName", &stack_id, true);
        add("cloudformation", event_name, "stackName", "payments", false);
    }

    for event_name in ["StopLogging", "DeleteTrail", "UpdateTrail"] {
        add("cloudtrail", event_name, "name", "management-events", true);
    }
    for event_name in ["PutEventSelectors", "PutInsightSelectors"] {
        add(
            "cloudtrail",
            event_name,
            "trailName",
            "management-events",
            true,
        );
    }
    add(
        "cloudtrail",
        "StartLogging",
        "name",
        "management-events",
        false,
    );

    // The tuning policy parameter (a widened policy hides alerts), and the summary schedule.
    let policy_parameter = format!("/{STACK_NAME}/lambda-code-watch/policy");
    for event_name in ["PutParameter", "DeleteParameter", "LabelParameterVersion"] {
        add("ssm", event_name, "name", &policy_parameter, true);
        add("ssm", event_name, "name", "/payments/config", false);
    }
    add("ssm", "GetParameter", "name", &policy_parameter, false);
    let stack_id_part = stack_id.rsplit('/').next().unwrap();
    let sweep = format!("lcw-{stack_id_part}-summary-sweep");
    for event_name in ["UpdateSchedule", "DeleteSchedule"] {
        add("scheduler", event_name, "name", &sweep, true);
        add("scheduler", event_name, "name", "nightly-report", false);
    }
    for (names, must_alert) in [
        (json!(["/payments/config", policy_parameter]), true),
        (json!(["/payments/config"]), false),
    ] {
        cases.push(TamperCase {
            name: format!("ssm DeleteParameters {names}"),
            envelope: api_call(
                "ssm",
                "DeleteParameters",
                json!({"names": names}),
                attacker(),
            ),
            must_alert,
            resource: must_alert.then(|| "this stack's policy parameter".to_owned()),
        });
    }

    // Alarms are named in a list (alarmNames) or alone (alarmName).
    let heartbeat_alarm = deployment.text(&json!({"Ref": "CanaryHeartbeatAlarm"}));
    for (event_name, parameters, must_alert) in [
        (
            "DeleteAlarms",
            json!({"alarmNames": ["billing", heartbeat_alarm]}),
            true,
        ),
        (
            "DisableAlarmActions",
            json!({"alarmNames": [heartbeat_alarm]}),
            true,
        ),
        (
            "PutMetricAlarm",
            json!({"alarmName": heartbeat_alarm, "treatMissingData": "notBreaching"}),
            true,
        ),
        (
            "SetAlarmState",
            json!({"alarmName": heartbeat_alarm, "stateValue": "OK"}),
            true,
        ),
        (
            "DeleteAlarms",
            json!({"alarmNames": ["billing", "payments-latency"]}),
            false,
        ),
        ("PutMetricAlarm", json!({"alarmName": "billing"}), false),
        (
            "DescribeAlarms",
            json!({"alarmNames": [heartbeat_alarm]}),
            false,
        ),
    ] {
        let mut envelope = api_call("monitoring", event_name, parameters.clone(), attacker());
        envelope["source"] = json!("aws.cloudwatch");
        cases.push(TamperCase {
            name: format!("cloudwatch {event_name} {parameters}"),
            envelope,
            must_alert,
            resource: must_alert.then(|| "this stack's alarms".to_owned()),
        });
    }

    // An identity without an ARN (an AWS service acting by itself): reported unscoped.
    let service = json!({"type": "AWSService", "invokedBy": "cloudformation.amazonaws.com"});
    cases.push(TamperCase {
        name: "sns DeleteTopic by an AWS service".to_owned(),
        envelope: api_call(
            "sns",
            "DeleteTopic",
            json!({"topicArn": alert_topic}),
            service.clone(),
        ),
        must_alert: true,
        resource: None,
    });
    cases.push(TamperCase {
        name: "sns Publish by an AWS service".to_owned(),
        envelope: api_call("sns", "Publish", json!({"topicArn": alert_topic}), service),
        must_alert: false,
        resource: None,
    });
    cases
}

/// Sends `cases` through moto's EventBridge with one tamper rule's pattern and its topic
/// target's transformer; returns, per case, the transformed alert if the rule delivered it.
fn apply_tamper_rule(
    rule_id: &str,
    pattern: &Value,
    transformer: &Value,
    cases: &[TamperCase],
) -> Option<Vec<Option<Value>>> {
    let Some(python) = python() else {
        missing("python3 is not installed: cannot run the EventBridge emulator");
        return None;
    };
    let named: Vec<(&str, &Value)> = cases
        .iter()
        .map(|c| (c.name.as_str(), &c.envelope))
        .collect();
    let results = run_eventbridge_check(
        &python,
        "eventbridge-pattern-check.py",
        &[("--pattern", pattern), ("--transformer", transformer)],
        &named,
        &format!("{rule_id}: the EventBridge emulator refused the pattern or failed"),
    )?;
    Some(
        results
            .iter()
            .zip(cases)
            .map(|(result, case)| {
                assert!(
                    result["accepted"] == true && result["reached_bus"] == 1,
                    "{}: the emulator did not take the event: {}",
                    case.name,
                    result["error"]
                );
                assert!(result["delivered"].as_u64() <= Some(1), "{}", case.name);
                (result["delivered"] == 1).then(|| result["delivered_body"].clone())
            })
            .collect(),
    )
}

#[test]
fn tamper_rules_report_every_watched_call_on_this_stack_and_nothing_else() {
    let Some(source) = source_template() else {
        return;
    };
    let Some(deployed) = deployed_template() else {
        return;
    };
    if python().is_none() {
        missing("python3 is not installed: cannot run the EventBridge emulator");
        return;
    }
    // The stack creates both topics (and so both keys).
    let given = [
        ("AlertEmail", "sec@example.com"),
        ("OpsEmail", "ops@example.com"),
    ];
    let deployment = Deployment::new(deployed, &given);
    let cases = tamper_cases(&deployment);
    let mut reported_by: Vec<Vec<&str>> = vec![Vec::new(); cases.len()];
    for (rule_id, rule) in tamper_rules(deployed) {
        if !deployment.exists(rule_id) {
            continue;
        }
        let properties = deployment
            .resolve(&rule["Properties"])
            .expect("rule properties");
        let targets = as_list(&properties["Targets"]);
        let topics: BTreeSet<String> = targets
            .iter()
            .map(|t| t["Arn"].as_str().unwrap().to_owned())
            .collect();
        let expected_topics: BTreeSet<String> = ["AlertTopic", "OpsTopic"]
            .iter()
            .map(|id| deployment.text(&json!({"Ref": id})))
            .collect();
        assert_eq!(topics, expected_topics, "{rule_id} must alert both topics");
        let Some(outcomes) = apply_tamper_rule(
            rule_id,
            &properties["EventPattern"],
            &targets[0]["InputTransformer"],
            &cases,
        ) else {
            return;
        };
        for ((index, case), outcome) in cases.iter().enumerate().zip(outcomes) {
            let Some(alert) = outcome else { continue };
            reported_by[index].push(rule_id);
            if !case.must_alert {
                continue; // reported below, with every other misrouted call
            }
            let detail = &case.envelope["detail"];
            let actor = detail["userIdentity"]["arn"].as_str();
            let expected_title = match (&case.resource, actor) {
                (Some(resource), Some(actor)) => format!(
                    "lambda-code-watch tampered with: {} on {resource} by {actor}",
                    detail["eventName"].as_str().unwrap()
                ),
                _ => format!(
                    "lambda-code-watch tampered with: {} on {} by an identity without an ARN",
                    detail["eventName"].as_str().unwrap(),
                    detail["eventSource"].as_str().unwrap()
                ),
            };
            assert_eq!(alert["title"], expected_title, "{rule_id}: {}", case.name);
            assert_eq!(alert["severity"], "HIGH", "{rule_id}: {}", case.name);
            assert_eq!(
                alert["event"]["detail"], *detail,
                "{rule_id}: the whole event"
            );
            let rendered = alert.to_string();
            assert!(
                !rendered.contains("<eventName>")
                    && !rendered.contains("<resource>")
                    && !rendered.contains("<actor>"),
                "{rule_id}: {}: a placeholder was left: {rendered}",
                case.name
            );
        }
    }
    let wrong: Vec<String> = cases
        .iter()
        .zip(&reported_by)
        .filter(|(case, rules)| rules.is_empty() == case.must_alert)
        .map(|(case, rules)| {
            format!(
                "{}: {} but must {}be",
                case.name,
                if rules.is_empty() {
                    "not reported".to_owned()
                } else {
                    format!("reported by {rules:?}")
                },
                if case.must_alert { "" } else { "not " }
            )
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "the tamper rules of template.yaml route {} of {} calls wrongly:\n  {}",
        wrong.len(),
        cases.len(),
        wrong.join("\n  ")
    );
    // Disabling the rule that watches the rules is itself seen by another rule.
    let watch = deployment.text(&json!({"Ref": "TamperRuleRule"}));
    let index = cases
        .iter()
        .position(|c| c.name == format!("events DisableRule name={watch}"))
        .expect("the case exists");
    assert!(
        reported_by[index].len() >= 2,
        "disabling {watch} must be reported by a rule other than itself: {:?}",
        reported_by[index]
    );
    let _ = source;
}

// -------------------------------------------------------------------- topic and key policies

/// The statements of the topic policy attached to `topic_id`, resolved for `deployment`.
fn topic_statements(deployment: &Deployment, topic_id: &str) -> Vec<Value> {
    resources_of_type(deployment.template, "AWS::SNS::TopicPolicy")
        .into_iter()
        .map(|(_, p)| &p["Properties"])
        .filter(|p| {
            as_list(&p["Topics"])
                .iter()
                .any(|t| target_of(t, None) == Some(topic_id))
        })
        .flat_map(|p| as_list(&p["PolicyDocument"]["Statement"]))
        .filter_map(|s| deployment.resolve(s))
        .collect()
}

fn strings(value: &Value) -> BTreeSet<String> {
    as_list(value)
        .iter()
        .map(|v| {
            v.as_str()
                .unwrap_or_else(|| panic!("not a string: {v}"))
                .to_owned()
        })
        .collect()
}

/// `text` matches the IAM/EventBridge-style pattern `glob` (`*` = any run of characters).
fn glob_matches(glob: &str, text: &str) -> bool {
    let parts: Vec<&str> = glob.split('*').collect();
    let mut rest = text;
    for (index, part) in parts.iter().enumerate() {
        if index == 0 {
            let Some(after) = rest.strip_prefix(part) else {
                return false;
            };
            rest = after;
        } else if index == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            let Some(at) = rest.find(part) else {
                return false;
            };
            rest = &rest[at + part.len()..];
        }
    }
    rest.is_empty()
}

const TOPIC_MANAGEMENT: &[&str] = &[
    "sns:Subscribe",
    "sns:Unsubscribe",
    "sns:DeleteTopic",
    "sns:SetTopicAttributes",
    "sns:SetSubscriptionAttributes",
    "sns:AddPermission",
    "sns:RemovePermission",
];

#[test]
fn topic_and_key_policies_grant_what_is_described_and_nothing_more() {
    let Some(deployed) = deployed_template() else {
        return;
    };
    let deploy_role = format!("arn:aws:iam::{ACCOUNT}:role/cfn-deployer");
    let given = [
        ("AlertEmail", "sec@example.com"),
        ("OpsEmail", "ops@example.com"),
        ("DeployRoleArn", deploy_role.as_str()),
    ];
    let deployment = Deployment::new(deployed, &given);
    let (function_id, function) = the_function(deployed);
    let role_id = target_of(&function["Properties"]["Role"], Some("Arn")).unwrap();
    let role_arn = deployment.text(&json!({"Fn::GetAtt": [role_id, "Arn"]}));
    let root = format!("arn:aws:iam::{ACCOUNT}:root");
    let tamper_rule_arns: Vec<String> = tamper_rules(deployed)
        .iter()
        .filter(|(id, _)| deployment.exists(id))
        .map(|(id, _)| deployment.text(&json!({"Fn::GetAtt": [id, "Arn"]})))
        .collect();

    for (topic_id, publishers) in [
        ("AlertTopic", &["events.amazonaws.com"][..]),
        (
            "OpsTopic",
            &["events.amazonaws.com", "cloudwatch.amazonaws.com"][..],
        ),
    ] {
        let topic = deployment.text(&json!({"Ref": topic_id}));
        let statements = topic_statements(&deployment, topic_id);
        // Allows: exactly the service principals named, only sns:Publish, only on this topic.
        let allows: Vec<&Value> = statements
            .iter()
            .filter(|s| s["Effect"] == "Allow")
            .collect();
        let allowed_services: BTreeSet<String> = allows
            .iter()
            .flat_map(|s| strings(&s["Principal"]["Service"]))
            .collect();
        assert_eq!(
            allowed_services,
            publishers.iter().map(|p| (*p).to_owned()).collect(),
            "{topic_id}: who may publish"
        );
        for allow in &allows {
            assert_eq!(
                strings(&allow["Action"]),
                BTreeSet::from(["sns:Publish".to_owned()])
            );
            assert_eq!(strings(&allow["Resource"]), BTreeSet::from([topic.clone()]));
            assert!(
                allow["Principal"].get("AWS").is_none(),
                "{topic_id}: {allow}"
            );
            if strings(&allow["Principal"]["Service"]).contains("events.amazonaws.com") {
                let glob = allow["Condition"]["ArnLike"]["aws:SourceArn"]
                    .as_str()
                    .unwrap();
                for arn in &tamper_rule_arns {
                    assert!(
                        glob_matches(glob, arn),
                        "{topic_id}: {glob} must admit {arn}"
                    );
                }
                for arn in [
                    deployment
                        .text(&json!({"Fn::GetAtt": ["CodeWatchFunctionCodeUpdates", "Arn"]})),
                    deployment.text(&json!({"Fn::GetAtt": ["CanarySchedule", "Arn"]})),
                    format!("arn:aws:events:{REGION}:{ACCOUNT}:rule/anything-else"),
                ] {
                    assert!(
                        !glob_matches(glob, &arn),
                        "{topic_id}: {glob} must not admit {arn}"
                    );
                }
            } else {
                assert_eq!(
                    allow["Condition"]["StringEquals"]["aws:SourceAccount"], ACCOUNT,
                    "{topic_id}: alarms of this account only"
                );
            }
        }
        // Management: denied to all but the deploy role and the root user.
        let management = statements
            .iter()
            .find(|s| {
                s["Effect"] == "Deny"
                    && s["Principal"] == "*"
                    && TOPIC_MANAGEMENT
                        .iter()
                        .all(|a| strings(&s["Action"]).contains(*a))
            })
            .unwrap_or_else(|| panic!("{topic_id}: no statement denies managing the topic"));
        assert_eq!(
            strings(&management["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]),
            BTreeSet::from([root.clone(), deploy_role.clone()]),
            "{topic_id}: only the deploy role and root may manage it"
        );
        topic_refuses_plain_http(deployed, topic_id);
    }
    // Without a deploy role, only root.
    let no_role = Deployment::new(deployed, &given[..2]);
    for statement in topic_statements(&no_role, "AlertTopic") {
        if strings(&statement["Action"]).contains("sns:Unsubscribe") {
            assert_eq!(
                strings(&statement["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]),
                BTreeSet::from([root.clone()])
            );
        }
    }

    // The alert topic: nobody but the function's role and EventBridge publishes.
    let statements = topic_statements(&deployment, "AlertTopic");
    let publish_deny = statements
        .iter()
        .find(|s| {
            s["Effect"] == "Deny"
                && strings(&s["Action"]) == BTreeSet::from(["sns:Publish".to_owned()])
        })
        .expect("AlertTopic: a statement denies publishing to everyone else");
    assert_eq!(publish_deny["Principal"], "*");
    let tamper_rules_glob =
        format!("arn:aws:events:{REGION}:{ACCOUNT}:rule/lcw-{STACK_UUID}-tamper-*");
    assert_eq!(
        publish_deny["Condition"],
        json!({"ArnNotEquals": {"aws:PrincipalArn": role_arn},
               "ArnNotLike": {"aws:SourceArn": tamper_rules_glob}}),
        "AlertTopic: publishing is denied unless the caller is {role_id} or a tamper rule"
    );

    // The role may publish only from inside the function (identity policies only can say so).
    let function_arn = deployment.text(&json!({"Fn::GetAtt": [function_id, "Arn"]}));
    let publish = role_statements(deployed, role_id)
        .into_iter()
        .find(|s| as_list(&s["Action"]).contains(&&json!("sns:Publish")))
        .and_then(|s| deployment.resolve(s))
        .expect("the role publishes");
    assert_eq!(
        publish["Condition"]["ArnEquals"]["lambda:SourceFunctionArn"], function_arn,
        "{role_id} may publish only when the caller is {function_id}"
    );

    // Keys: who may use them, for what.
    let key_grants = |key_id: &str| -> BTreeMap<String, BTreeSet<String>> {
        let key = deployment
            .resolve(&resource(deployed, key_id)["Properties"])
            .unwrap();
        let mut grants: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for statement in as_list(&key["KeyPolicy"]["Statement"]) {
            assert_eq!(statement["Effect"], "Allow", "{key_id}: {statement}");
            let principal = statement["Principal"]["Service"]
                .as_str()
                .or(statement["Principal"]["AWS"].as_str())
                .unwrap_or_else(|| panic!("{key_id}: one principal per statement: {statement}"))
                .to_owned();
            grants
                .entry(principal)
                .or_default()
                .extend(strings(&statement["Action"]));
        }
        grants
    };
    let expected = |entries: &[(&str, &[&str])]| -> BTreeMap<String, BTreeSet<String>> {
        entries
            .iter()
            .map(|(p, a)| ((*p).to_owned(), a.iter().map(|s| (*s).to_owned()).collect()))
            .collect()
    };
    assert_eq!(
        key_grants("OpsKey"),
        expected(&[
            (root.as_str(), &["kms:*"]),
            (
                "cloudwatch.amazonaws.com",
                &["kms:GenerateDataKey*", "kms:Decrypt"]
            ),
            (
                "events.amazonaws.com",
                &["kms:GenerateDataKey*", "kms:Decrypt"]
            ),
        ]),
        "OpsKey admits CloudWatch alarms and the tamper rules, nothing else"
    );
    assert_eq!(
        key_grants("EncryptionKey"),
        expected(&[
            (root.as_str(), &["kms:*"]),
            (
                "events.amazonaws.com",
                &["kms:GenerateDataKey", "kms:GenerateDataKey*", "kms:Decrypt"]
            ),
            (
                "logs.us-east-1.amazonaws.com",
                &[
                    "kms:Encrypt*",
                    "kms:Decrypt*",
                    "kms:ReEncrypt*",
                    "kms:GenerateDataKey*",
                    "kms:Describe*"
                ]
            ),
        ]),
        "EncryptionKey"
    );
    // CloudWatch Logs may use the stack key only for the stack's own log groups.
    let key = deployment
        .resolve(&resource(deployed, "EncryptionKey")["Properties"])
        .unwrap();
    let logs = as_list(&key["KeyPolicy"]["Statement"])
        .into_iter()
        .find(|s| s["Principal"]["Service"] == "logs.us-east-1.amazonaws.com")
        .unwrap()
        .clone();
    let log_groups: BTreeSet<String> = resources_of_type(deployed, "AWS::Logs::LogGroup")
        .iter()
        .map(|(id, _)| {
            format!(
                "arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{}",
                deployment.text(&json!({"Ref": id}))
            )
        })
        .collect();
    assert_eq!(
        strings(&logs["Condition"]["ArnEquals"]["kms:EncryptionContext:aws:logs:arn"]),
        log_groups
    );
}

// ----------------------------------------------------------------------- alarms and evidence

/// `TreatMissingData` of each alarm as README.md states it: rows of the table under "When the
/// detection itself fails or is attacked" that start with an alarm's logical id in backticks.
fn readme_missing_data() -> BTreeMap<String, String> {
    let readme = std::fs::read_to_string(repo().join("README.md")).expect("README.md");
    let mut stated = BTreeMap::new();
    for line in readme.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() < 4 {
            continue;
        }
        let Some(alarm) = cells[1].strip_prefix('`').and_then(|c| c.strip_suffix('`')) else {
            continue;
        };
        if !alarm.ends_with("Alarm") {
            continue;
        }
        if let Some(treatment) = cells.iter().find_map(|c| {
            let rest = c.strip_prefix("missing data: `")?;
            Some(rest[..rest.find('`')?].to_owned())
        }) {
            stated.insert(alarm.to_owned(), treatment);
        }
    }
    stated
}

#[test]
fn every_alarm_treats_missing_data_as_the_readme_says() {
    let Some(deployed) = deployed_template() else {
        return;
    };
    let stated = readme_missing_data();
    let alarms = resources_of_type(deployed, "AWS::CloudWatch::Alarm");
    assert!(alarms.len() >= 12, "{} alarms", alarms.len());
    let deployment = Deployment::new(
        deployed,
        &[
            ("AlertEmail", "sec@example.com"),
            ("OpsEmail", "ops@example.com"),
        ],
    );
    let ops_topic = deployment.text(&json!({"Ref": "OpsTopic"}));
    for (id, alarm) in &alarms {
        let treatment = alarm["Properties"]["TreatMissingData"]
            .as_str()
            .unwrap_or("missing");
        assert_eq!(
            stated.get(*id).map(String::as_str),
            Some(treatment),
            "README.md must state {id}'s missing-data treatment as `{treatment}` in a row \
             `| `{id}` | ... | missing data: `{treatment}` |`"
        );
        let actions = deployment
            .resolve(&alarm["Properties"]["AlarmActions"])
            .unwrap();
        assert_eq!(
            actions,
            json!([ops_topic]),
            "{id} must notify the operations topic"
        );
    }
    for alarm in stated.keys() {
        assert!(
            alarms.iter().any(|(id, _)| id == alarm),
            "README.md describes {alarm}, which the template does not define"
        );
    }
    // Silence is a failure only for the heartbeats (the real-time path's, and S3 mode's);
    // elsewhere no data means nothing happened.
    for (id, alarm) in &alarms {
        let breaching = alarm["Properties"]["TreatMissingData"] == "breaching";
        assert_eq!(
            breaching,
            *id == "CanaryHeartbeatAlarm" || *id == "TrailCanaryHeartbeatAlarm",
            "{id}"
        );
    }
}

#[test]
fn the_canary_heartbeat_is_wired_end_to_end() {
    let Some(deployed) = deployed_template() else {
        return;
    };
    let deployment = Deployment::new(
        deployed,
        &[
            ("AlertEmail", "sec@example.com"),
            ("OpsEmail", "ops@example.com"),
        ],
    );
    let (function_id, function) = the_function(deployed);
    // The detection function knows the canary by its role.
    let canary_role = &function["Properties"]["Environment"]["Variables"]["CANARY_ROLE_ARN"];
    assert_eq!(target_of(canary_role, Some("Arn")), Some("CanaryRole"));
    let canary_target =
        &function["Properties"]["Environment"]["Variables"]["CANARY_TARGET_FUNCTION"];
    assert_eq!(target_of(canary_target, None), Some("CanaryTargetFunction"));
    let canary = &resource(deployed, "CanaryFunction")["Properties"];
    assert_eq!(target_of(&canary["Role"], Some("Arn")), Some("CanaryRole"));
    assert!(
        canary["Code"]["ZipFile"]
            .as_str()
            .is_some_and(|c| c.contains("update_function_code")),
        "the canary's inline code calls UpdateFunctionCode"
    );
    // The canary role may update the canary target's code and write its log, nothing else.
    let target_arn = deployment.text(&json!({"Fn::GetAtt": ["CanaryTargetFunction", "Arn"]}));
    for statement in role_statements(deployed, "CanaryRole") {
        let statement = deployment.resolve(statement).unwrap();
        for action in strings(&statement["Action"]) {
            let resources = strings(&statement["Resource"]);
            match action.as_str() {
                "lambda:UpdateFunctionCode" => {
                    assert_eq!(resources, BTreeSet::from([target_arn.clone()]))
                }
                "logs:CreateLogStream" | "logs:PutLogEvents" => assert_eq!(
                    resources,
                    BTreeSet::from([
                        deployment.text(&json!({"Fn::GetAtt": ["CanaryLogGroup", "Arn"]}))
                    ])
                ),
                other => panic!("CanaryRole may not {other}"),
            }
        }
    }
    // Every 30 minutes.
    let schedule = resources_of_type(deployed, "AWS::Events::Rule")
        .into_iter()
        .find(|(_, r)| {
            as_list(&r["Properties"]["Targets"])
                .iter()
                .any(|t| target_of(&t["Arn"], Some("Arn")) == Some("CanaryFunction"))
        })
        .expect("a schedule runs the canary");
    assert_eq!(
        schedule.1["Properties"]["ScheduleExpression"],
        "rate(30 minutes)"
    );
    // The alarm watches the metric the function writes (handler/src/metrics.rs), for this
    // function, and fires on silence.
    let alarm = &resource(deployed, "CanaryHeartbeatAlarm")["Properties"];
    assert_eq!(alarm["Namespace"], "LambdaCodeWatch");
    assert_eq!(alarm["MetricName"], "CanaryHeartbeat");
    assert_eq!(alarm["TreatMissingData"], "breaching");
    assert_eq!(alarm["ComparisonOperator"], "LessThanThreshold");
    let dimensions = as_list(&alarm["Dimensions"]);
    assert_eq!(dimensions.len(), 1);
    assert_eq!(dimensions[0]["Name"], "FunctionName");
    assert_eq!(target_of(&dimensions[0]["Value"], None), Some(function_id));
    assert!(
        alarm["Period"].as_u64().unwrap() >= 2 * 30 * 60,
        "room for one late heartbeat"
    );
}

#[test]
fn evidence_survives_the_stack() {
    let Some(deployed) = deployed_template() else {
        return;
    };
    let mut kept = 0;
    for kind in [
        "AWS::Logs::LogGroup",
        "AWS::SQS::Queue",
        "AWS::KMS::Key",
        "AWS::DynamoDB::Table",
    ] {
        for (id, resource) in resources_of_type(deployed, kind) {
            assert_eq!(resource["DeletionPolicy"], "Retain", "{id} ({kind})");
            assert_eq!(resource["UpdateReplacePolicy"], "Retain", "{id} ({kind})");
            kept += 1;
        }
    }
    assert!(kept >= 6, "two log groups, two queues, two keys: {kept}");
    let (_, function) = the_function(deployed);
    assert!(
        function["Properties"]["ReservedConcurrentExecutions"].is_object(),
        "the function reserves concurrency (a parameter)"
    );
}

#[test]
fn tamper_alerts_reach_an_existing_topic_only_in_the_stack_region() {
    let Some(deployed) = deployed_template() else {
        return;
    };
    // EventBridge targets must be in the rule's region; the operations topic always is.
    for (topic, reaches_it) in [
        ("arn:aws:sns:us-east-1:111122223333:security-alerts", true),
        ("arn:aws:sns:eu-west-1:111122223333:security-alerts", false),
    ] {
        let ops = "arn:aws:sns:us-east-1:123456789012:ops";
        let deployment = Deployment::new(
            deployed,
            &[("ExistingAlertTopicArn", topic), ("AlarmTopicArn", ops)],
        );
        for (rule_id, rule) in tamper_rules(deployed) {
            if !deployment.exists(rule_id) {
                continue;
            }
            let targets = deployment.resolve(&rule["Properties"]["Targets"]).unwrap();
            let arns: BTreeSet<String> = as_list(&targets)
                .iter()
                .map(|t| t["Arn"].as_str().unwrap().to_owned())
                .collect();
            let mut expected = BTreeSet::from([ops.to_owned()]);
            if reaches_it {
                expected.insert(topic.to_owned());
            }
            assert_eq!(
                arns, expected,
                "{rule_id} with ExistingAlertTopicArn {topic}"
            );
        }
    }
}

// ------------------------------------------------------------------------- organization mode

/// An organization-mode deployment of template.yaml, with destinations.
fn organization_deployment(deployed: &Value) -> Deployment<'_> {
    Deployment::new(
        deployed,
        &[
            ("AlertEmail", "sec@example.com"),
            ("OpsEmail", "ops@example.com"),
            ("OrganizationId", ORGANIZATION),
        ],
    )
}

/// The forwarder's one rule and its one target.
fn the_forwarder_rule(forwarder: &Value) -> (&str, &Value, &Value) {
    let rules = resources_of_type(forwarder, "AWS::Events::Rule");
    assert_eq!(
        rules.len(),
        1,
        "deploy/forwarder.yaml has one rule: {rules:?}"
    );
    let (id, rule) = rules[0];
    let targets = as_list(&rule["Properties"]["Targets"]);
    assert_eq!(targets.len(), 1, "{id} has one target, the central bus");
    (id, rule, targets[0])
}

#[test]
fn the_forwarder_forwards_exactly_what_the_detection_rule_matches() {
    let (Some(deployed), Some(forwarder)) = (deployed_template(), forwarder_template()) else {
        return;
    };
    let (function_id, _) = the_function(deployed);
    let (rule_id, rule, _) = the_rule(deployed, function_id);
    let (forward_id, forward_rule, _) = the_forwarder_rule(forwarder);
    // Two copies of one pattern, compared whole: a forwarder that forwarded less would blind the
    // detection for every member account, silently; one that forwarded more would pay for it.
    assert_eq!(
        forward_rule["Properties"]["EventPattern"], rule["Properties"]["EventPattern"],
        "deploy/forwarder.yaml's {forward_id} and template.yaml's {rule_id} must have the same \
         event pattern"
    );
    assert!(
        forward_rule["Properties"].get("EventBusName").is_none(),
        "{forward_id} must listen on the default bus, where CloudTrail puts the account's events"
    );
    assert_eq!(forward_rule["Properties"]["State"], "ENABLED");
}

#[test]
fn organization_mode_puts_the_detection_rule_on_a_bus_only_the_organization_may_send_to() {
    let Some(deployed) = deployed_template() else {
        return;
    };
    let (function_id, _) = the_function(deployed);
    let (rule_id, _, _) = the_rule(deployed, function_id);
    let buses = resources_of_type(deployed, "AWS::Events::EventBus");
    assert_eq!(buses.len(), 1, "one organization bus: {buses:?}");
    let (bus_id, bus) = buses[0];
    assert!(
        resources_of_type(deployed, "AWS::Events::EventBusPolicy").is_empty(),
        "the bus's whole policy is on the bus, where this test reads it"
    );

    // Single account: no bus, the rule on the default bus.
    let single = Deployment::new(deployed, &[("AlertEmail", "a@example.com")]);
    assert!(!single.exists(bus_id), "{bus_id} only in organization mode");
    assert_eq!(single.rule_bus(rule_id), None);

    let organization = organization_deployment(deployed);
    assert!(organization.exists(bus_id));
    let bus_name = organization.text(&json!({"Ref": bus_id}));
    assert_eq!(
        organization.rule_bus(rule_id).as_deref(),
        Some(bus_name.as_str())
    );
    let bus_arn = organization.text(&json!({"Fn::GetAtt": [bus_id, "Arn"]}));

    // The policy: PutEvents, on this bus, by principals of this organisation; nothing else.
    let policy = organization.resolve(&bus["Properties"]["Policy"]).unwrap();
    let statements = as_list(&policy["Statement"]);
    assert_eq!(statements.len(), 1, "one statement: {policy}");
    let statement = statements[0];
    assert_eq!(statement["Effect"], "Allow");
    assert_eq!(statement["Principal"], "*", "any principal ...");
    assert_eq!(
        statement["Condition"],
        json!({"StringEquals": {"aws:PrincipalOrgID": ORGANIZATION}}),
        "... of the organisation, and no other condition to loosen or mistype"
    );
    assert_eq!(
        strings(&statement["Action"]),
        BTreeSet::from(["events:PutEvents".to_owned()])
    );
    assert_eq!(
        strings(&statement["Resource"]),
        BTreeSet::from([bus_arn.clone()])
    );
    for absent in ["NotAction", "NotResource", "NotPrincipal"] {
        assert!(statement.get(absent).is_none(), "{absent}: {statement}");
    }
    // Another organisation's id gives another condition: the parameter, not a constant.
    let other = Deployment::new(deployed, &[("OrganizationId", "o-zzzzzzzzzz")]);
    let other_policy = other.resolve(&bus["Properties"]["Policy"]).unwrap();
    assert_eq!(
        other_policy["Statement"][0]["Condition"]["StringEquals"]["aws:PrincipalOrgID"],
        "o-zzzzzzzzzz"
    );

    // The forwarders are told this bus: an output gives its ARN, in organization mode only.
    let output = &deployed["Outputs"]["OrganizationEventBusArn"];
    assert_eq!(output["Condition"], "OrganizationMode");
    assert_eq!(organization.text(&output["Value"]), bus_arn);
}

#[test]
fn organization_mode_keeps_the_alarms_and_the_key_on_the_rule_where_it_now_is() {
    let Some(deployed) = deployed_template() else {
        return;
    };
    let (function_id, _) = the_function(deployed);
    let (rule_id, _, _) = the_rule(deployed, function_id);
    // EventBridge names a custom bus's rule metrics by bus and rule; an alarm on RuleName alone
    // (or on the rule's Ref, "<bus>|<rule>" there) watches a metric that never comes.
    for deployment in [
        Deployment::new(deployed, &[("AlertEmail", "a@example.com")]),
        organization_deployment(deployed),
    ] {
        let rule_name = deployment.rule_name(rule_id);
        let bus = deployment.rule_bus(rule_id);
        let mut expected = BTreeMap::from([("RuleName".to_owned(), rule_name.clone())]);
        if let Some(bus) = &bus {
            expected.insert("EventBusName".to_owned(), bus.clone());
        }
        let mut watched = 0;
        for (alarm_id, alarm) in resources_of_type(deployed, "AWS::CloudWatch::Alarm") {
            let properties = deployment.resolve(&alarm["Properties"]).unwrap();
            let mut metrics = vec![properties.clone()];
            metrics.extend(
                as_list(&properties["Metrics"])
                    .into_iter()
                    .map(|m| m["MetricStat"]["Metric"].clone()),
            );
            for metric in metrics.iter().filter(|m| m["Namespace"] == "AWS/Events") {
                let dimensions: BTreeMap<String, String> = as_list(&metric["Dimensions"])
                    .iter()
                    .map(|d| {
                        (
                            d["Name"].as_str().unwrap().to_owned(),
                            d["Value"].as_str().unwrap().to_owned(),
                        )
                    })
                    .collect();
                assert_eq!(
                    dimensions, expected,
                    "{alarm_id} watches {} of the rule on {bus:?}",
                    metric["MetricName"]
                );
                watched += 1;
            }
        }
        assert!(
            watched >= 3,
            "failed, retried and lost deliveries: {watched}"
        );
        let name_output = deployment.text(&deployed["Outputs"]["EventRuleName"]["Value"]);
        assert_eq!(
            name_output, rule_name,
            "EventRuleName is the name, never <bus>|<rule>"
        );
        let bus_output = deployment.text(&deployed["Outputs"]["EventRuleBusName"]["Value"]);
        assert_eq!(bus_output, bus.unwrap_or_else(|| "default".to_owned()));
    }
}

#[test]
fn single_account_mode_deploys_what_it_did() {
    let Some(deployed) = deployed_template() else {
        return;
    };
    // Everything organization mode adds is conditional on it, and nothing else is: a
    // single-account deployment creates exactly the resources it always did.
    let organization_only: BTreeSet<&str> = resources(deployed)
        .iter()
        .filter(|(_, r)| r["Condition"] == "OrganizationMode")
        .map(|(id, _)| id.as_str())
        .collect();
    assert_eq!(
        organization_only,
        BTreeSet::from(["OrganizationEventBus", "TamperBusRule"]),
        "resources only an organization gets"
    );
    let single = Deployment::new(deployed, &[("AlertEmail", "a@example.com")]);
    let (function_id, function) = the_function(deployed);
    let (rule_id, rule, _) = the_rule(deployed, function_id);
    assert_eq!(single.rule_bus(rule_id), None, "the default bus");
    let resolved = single.resolve(&rule["Properties"]).unwrap();
    assert!(resolved.get("EventBusName").is_none(), "{resolved}");
    // No names given: the function gets no ACCOUNT_NAMES (and names no account).
    let variables = single
        .resolve(&function["Properties"]["Environment"]["Variables"])
        .unwrap();
    assert!(variables.get("ACCOUNT_NAMES").is_none(), "{variables}");
    let named = Deployment::new(
        deployed,
        &[("AccountNames", r#"{"111122223333": "payments-prod"}"#)],
    );
    let variables = named
        .resolve(&function["Properties"]["Environment"]["Variables"])
        .unwrap();
    assert_eq!(
        variables["ACCOUNT_NAMES"],
        r#"{"111122223333": "payments-prod"}"#
    );
    // And the rule's ARN, which the key and queue policies name, is the default bus's.
    assert_eq!(
        single.text(&json!({"Fn::GetAtt": [rule_id, "Arn"]})),
        format!("arn:aws:events:{REGION}:{ACCOUNT}:rule/lambda-code-watch-{STACK_UUID}")
    );
}

#[test]
fn in_organization_mode_the_bus_and_its_rule_are_watched_too() {
    let Some(deployed) = deployed_template() else {
        return;
    };
    if python().is_none() {
        missing("python3 is not installed: cannot run the EventBridge emulator");
        return;
    }
    let deployment = organization_deployment(deployed);
    let bus = deployment.text(&json!({"Ref": "OrganizationEventBus"}));
    let (function_id, _) = the_function(deployed);
    let (rule_id, _, _) = the_rule(deployed, function_id);
    let rule = deployment.rule_name(rule_id);
    let call = |event_name: &str, parameters: Value, must_alert: bool| TamperCase {
        name: format!("events {event_name} {parameters}"),
        envelope: api_call("events", event_name, parameters, attacker()),
        must_alert,
        resource: None,
    };
    let cases = vec![
        call("DeleteEventBus", json!({"name": bus}), true),
        call(
            "UpdateEventBus",
            json!({"name": bus, "description": "x"}),
            true,
        ),
        call(
            "PutPermission",
            json!({"eventBusName": bus, "policy": "{}"}),
            true,
        ),
        call(
            "RemovePermission",
            json!({"eventBusName": bus, "removeAllPermissions": true}),
            true,
        ),
        call(
            "DisableRule",
            json!({"name": rule, "eventBusName": bus}),
            true,
        ),
        call(
            "RemoveTargets",
            json!({"rule": rule, "eventBusName": bus, "ids": ["CodeWatchFunction"]}),
            true,
        ),
        call("DeleteEventBus", json!({"name": "orders"}), false),
        call(
            "PutPermission",
            json!({"eventBusName": "orders", "policy": "{}"}),
            false,
        ),
        call("PutPermission", json!({"policy": "{}"}), false),
        call("DescribeEventBus", json!({"name": bus}), false),
    ];
    let mut reported_by: Vec<Vec<&str>> = vec![Vec::new(); cases.len()];
    for (rule_id, rule) in tamper_rules(deployed) {
        assert!(deployment.exists(rule_id), "every tamper rule exists here");
        let properties = deployment.resolve(&rule["Properties"]).unwrap();
        let targets = as_list(&properties["Targets"]);
        let Some(outcomes) = apply_tamper_rule(
            rule_id,
            &properties["EventPattern"],
            &targets[0]["InputTransformer"],
            &cases,
        ) else {
            return;
        };
        for (index, outcome) in outcomes.into_iter().enumerate() {
            if let Some(alert) = outcome {
                reported_by[index].push(rule_id);
                assert!(
                    alert["title"]
                        .as_str()
                        .is_some_and(|t| t.starts_with("lambda-code-watch tampered with: ")
                            && !t.contains('<')),
                    "{rule_id}: {}: {alert}",
                    cases[index].name
                );
            }
        }
    }
    let wrong: Vec<String> = cases
        .iter()
        .zip(&reported_by)
        .filter(|(case, rules)| rules.is_empty() == case.must_alert)
        .map(|(case, rules)| format!("{}: reported by {rules:?}", case.name))
        .collect();
    assert!(wrong.is_empty(), "misrouted:\n  {}", wrong.join("\n  "));
    assert!(
        reported_by[0].contains(&"TamperBusRule"),
        "deleting the bus: {:?}",
        reported_by[0]
    );
}

// ---------------------------------------------------------------------------- the forwarder

#[test]
fn the_forwarder_may_put_events_on_the_central_bus_and_nothing_else() {
    let Some(forwarder) = forwarder_template() else {
        return;
    };
    let central =
        format!("arn:aws:events:us-east-1:999988887777:event-bus/lcw-{STACK_UUID}-organization");
    let deployment = Deployment::new(
        forwarder,
        &[
            ("CentralEventBusArn", central.as_str()),
            ("OpsEmail", "ops@example.com"),
        ],
    );
    let (rule_id, _, target) = the_forwarder_rule(forwarder);
    let target = deployment.resolve(target).unwrap();
    assert_eq!(target["Arn"], central, "the target is the central bus");
    let role_id = target_of(&the_forwarder_rule(forwarder).2["RoleArn"], Some("Arn"))
        .expect("the target uses a role of the stack");
    let role = resource(forwarder, role_id);
    assert!(as_list(&role["Properties"]["ManagedPolicyArns"]).is_empty());
    // Only EventBridge, for this account's forwarder rule, may assume it.
    let trust = deployment
        .resolve(&role["Properties"]["AssumeRolePolicyDocument"])
        .unwrap();
    let trust = as_list(&trust["Statement"]);
    assert_eq!(trust.len(), 1);
    assert_eq!(
        trust[0]["Principal"],
        json!({"Service": "events.amazonaws.com"})
    );
    assert_eq!(
        trust[0]["Condition"]["StringEquals"]["aws:SourceAccount"],
        ACCOUNT
    );
    assert_eq!(
        trust[0]["Condition"]["ArnEquals"]["aws:SourceArn"],
        deployment.text(&json!({"Fn::GetAtt": [rule_id, "Arn"]})),
        "only the forwarder rule"
    );
    // events:PutEvents on the central bus, and nothing else.
    let statements: Vec<Value> = role_statements(forwarder, role_id)
        .into_iter()
        .filter_map(|s| deployment.resolve(s))
        .collect();
    assert_eq!(statements.len(), 1, "{statements:?}");
    assert_eq!(statements[0]["Effect"], "Allow");
    assert_eq!(
        strings(&statements[0]["Action"]),
        BTreeSet::from(["events:PutEvents".to_owned()])
    );
    assert_eq!(
        strings(&statements[0]["Resource"]),
        BTreeSet::from([central.clone()])
    );
    assert!(statements[0].get("NotAction").is_none() && statements[0].get("NotResource").is_none());
}

#[test]
fn the_forwarder_keeps_what_it_cannot_deliver_and_says_so() {
    let Some(forwarder) = forwarder_template() else {
        return;
    };
    let central =
        format!("arn:aws:events:eu-west-1:999988887777:event-bus/lcw-{STACK_UUID}-organization");
    let (rule_id, _, target) = the_forwarder_rule(forwarder);
    assert!(
        target["RetryPolicy"]["MaximumRetryAttempts"].as_u64() > Some(0)
            && target["RetryPolicy"]["MaximumEventAgeInSeconds"].as_u64() >= Some(3600),
        "{rule_id} retries: {target}"
    );
    let queue_id = target_of(&target["DeadLetterConfig"]["Arn"], Some("Arn"))
        .expect("a dead-letter queue of the stack");
    let queue = &resource(forwarder, queue_id)["Properties"];
    assert!(
        queue["SqsManagedSseEnabled"] == true || queue["KmsMasterKeyId"].is_object(),
        "{queue_id} is encrypted: {queue}"
    );
    assert_eq!(queue["MessageRetentionPeriod"], 1_209_600, "kept 14 days");

    for (given, topic) in [
        (
            vec![(
                "AlarmTopicArn",
                "arn:aws:sns::111122223333:lcw-forwarder-ops",
            )],
            // The topic of that name in the stack's own region.
            "arn:aws:sns:us-east-1:111122223333:lcw-forwarder-ops".to_owned(),
        ),
        (
            vec![("OpsEmail", "ops@example.com")],
            format!("arn:aws:sns:{REGION}:{ACCOUNT}:{STACK_NAME}-OpsTopic-X1"),
        ),
    ] {
        let mut given = given;
        given.push(("CentralEventBusArn", central.as_str()));
        let deployment = Deployment::new(forwarder, &given);
        // Only EventBridge, for this rule, may park events in the queue.
        let rule_arn = deployment.text(&json!({"Fn::GetAtt": [rule_id, "Arn"]}));
        let parks = resources_of_type(forwarder, "AWS::SQS::QueuePolicy")
            .into_iter()
            .filter_map(|(_, p)| deployment.resolve(&p["Properties"]))
            .flat_map(|p| {
                as_list(&p["PolicyDocument"]["Statement"])
                    .into_iter()
                    .cloned()
                    .collect::<Vec<_>>()
            })
            .any(|s| {
                s["Effect"] == "Allow"
                    && s["Principal"]["Service"] == "events.amazonaws.com"
                    && s["Condition"]["ArnEquals"]["aws:SourceArn"] == rule_arn.as_str()
            });
        assert!(parks, "{queue_id} accepts the dead letters of {rule_arn}");

        // One alarm watches both: EventBridge giving up, and events waiting in the queue.
        let alarms = resources_of_type(forwarder, "AWS::CloudWatch::Alarm");
        assert_eq!(alarms.len(), 1);
        let (alarm_id, alarm) = alarms[0];
        let alarm = deployment.resolve(&alarm["Properties"]).unwrap();
        let metrics: Vec<(String, String, String)> = as_list(&alarm["Metrics"])
            .iter()
            .filter_map(|m| {
                let metric = &m["MetricStat"]["Metric"];
                let dimension = as_list(&metric["Dimensions"]);
                if dimension.len() != 1 {
                    return None;
                }
                Some((
                    metric["MetricName"].as_str()?.to_owned(),
                    dimension[0]["Name"].as_str()?.to_owned(),
                    dimension[0]["Value"].as_str()?.to_owned(),
                ))
            })
            .collect();
        let queue_name = deployment.text(&json!({"Fn::GetAtt": [queue_id, "QueueName"]}));
        assert_eq!(
            metrics.iter().cloned().collect::<BTreeSet<_>>(),
            BTreeSet::from([
                (
                    "FailedInvocations".to_owned(),
                    "RuleName".to_owned(),
                    deployment.rule_name(rule_id)
                ),
                (
                    "ApproximateNumberOfMessagesVisible".to_owned(),
                    "QueueName".to_owned(),
                    queue_name
                ),
            ]),
            "{alarm_id} watches"
        );
        assert_eq!(alarm["TreatMissingData"], "notBreaching");
        assert_eq!(
            alarm["AlarmActions"],
            json!([topic]),
            "{alarm_id} notifies {given:?}"
        );
    }
}

#[test]
fn a_forwarder_whose_failures_reach_nobody_is_refused() {
    let Some(forwarder) = forwarder_template() else {
        return;
    };
    let central = "arn:aws:events:us-east-1:999988887777:event-bus/lcw-organization";
    for (given, expected) in [
        (vec![], vec!["AlarmsNeedADestination"]),
        (vec![("OpsEmail", "ops@example.com")], vec![]),
        (
            vec![(
                "AlarmTopicArn",
                "arn:aws:sns::111122223333:lcw-forwarder-ops",
            )],
            vec![],
        ),
        (
            vec![
                (
                    "AlarmTopicArn",
                    "arn:aws:sns::111122223333:lcw-forwarder-ops",
                ),
                ("OpsEmail", "ops@example.com"),
            ],
            vec!["OpsEmailNeedsOwnOpsTopic"],
        ),
    ] {
        let mut given = given;
        given.push(("CentralEventBusArn", central));
        assert_eq!(broken_rules(forwarder, &given), expected, "{given:?}");
    }
    // The topic it creates refuses plain HTTP and is encrypted with a key CloudWatch may use.
    topic_refuses_plain_http(forwarder, "OpsTopic");
    assert!(
        !key_grants_to(forwarder, "OpsKey", "cloudwatch.amazonaws.com").is_empty(),
        "OpsKey must let CloudWatch encrypt alarm notifications"
    );
}

/// What the forwarding path in the emulator did with one event.
struct Forwarded {
    accepted: bool,
    reached_member_bus: u64,
    reached_central_bus: u64,
    delivered: u64,
    detail_intact: bool,
    delivered_envelope: Value,
}

#[test]
fn a_member_code_update_travels_to_the_central_bus_and_reaches_the_function() {
    let (Some(deployed), Some(forwarder)) = (deployed_template(), forwarder_template()) else {
        return;
    };
    let Some(python) = python() else {
        missing("python3 is not installed: cannot run the EventBridge emulator");
        return;
    };
    // The central side as an organization deploys it; the member's forwarder pointed at it.
    let central = organization_deployment(deployed);
    let (function_id, _) = the_function(deployed);
    let (rule_id, rule, _) = the_rule(deployed, function_id);
    let bus_arn = central.text(&json!({"Fn::GetAtt": ["OrganizationEventBus", "Arn"]}));
    let bus = central
        .resolve(&resource(deployed, "OrganizationEventBus")["Properties"])
        .unwrap();
    let member = Deployment::new(
        forwarder,
        &[
            ("CentralEventBusArn", bus_arn.as_str()),
            (
                "AlarmTopicArn",
                "arn:aws:sns::111122223333:lcw-forwarder-ops",
            ),
        ],
    );
    let (forward_id, forward_rule, _) = the_forwarder_rule(forwarder);
    let forward_rule = member.resolve(&forward_rule["Properties"]).unwrap();
    let setup = json!({
        "central": {
            "account": ACCOUNT,
            "region": REGION,
            "bus": {"Name": bus["Name"], "Policy": bus["Policy"]},
            "rule": {
                "Name": central.rule_name(rule_id),
                "EventPattern": rule["Properties"]["EventPattern"],
            },
        },
        "member": {
            "account": "111122223333",
            "region": "eu-west-1",
            "rule": {
                "Name": forward_rule["Name"],
                "EventPattern": forward_rule["EventPattern"],
                "Targets": forward_rule["Targets"],
            },
        },
    });

    let cases = pattern_cases();
    let named: Vec<(&str, &Value)> = cases
        .iter()
        .map(|c| (c.name.as_str(), &c.envelope))
        .collect();
    let Some(results) = run_eventbridge_check(
        &python,
        "eventbridge-forward-check.py",
        &[("--setup", &setup)],
        &named,
        "the forwarding run failed",
    ) else {
        return;
    };
    let forwarded: Vec<Forwarded> = results
        .iter()
        .zip(&cases)
        .map(|(r, case)| {
            assert_eq!(r["name"], case.name.as_str());
            Forwarded {
                accepted: r["accepted"] == true,
                reached_member_bus: r["reached_member_bus"].as_u64().unwrap_or(0),
                reached_central_bus: r["reached_central_bus"].as_u64().unwrap_or(0),
                delivered: r["delivered"].as_u64().unwrap_or(0),
                detail_intact: r["detail_intact"] == true,
                delivered_envelope: r["delivered_envelope"].clone(),
            }
        })
        .collect();

    let mut wrong = Vec::new();
    for (case, f) in cases.iter().zip(&forwarded) {
        assert!(
            f.accepted && f.reached_member_bus == 1,
            "{}: the member bus did not take the event; the test proves nothing about it",
            case.name
        );
        // What the forwarder sends over is what the central rule delivers: one pattern.
        let expected = u64::from(case.must_deliver);
        if f.reached_central_bus != expected || f.delivered != expected {
            wrong.push(format!(
                "{}: reached the central bus {} time(s), the function {} time(s), must {}: {}",
                case.name, f.reached_central_bus, f.delivered, expected, case.because
            ));
        }
        if f.delivered == 1 {
            assert!(
                f.detail_intact,
                "{}: the detail changed on the way",
                case.name
            );
            assert_eq!(f.delivered_envelope["source"], case.envelope["source"]);
            assert_eq!(
                f.delivered_envelope["detail-type"],
                case.envelope["detail-type"]
            );
        }
    }
    assert!(
        wrong.is_empty(),
        "{forward_id} -> {rule_id} routes {} of {} events wrongly:\n  {}",
        wrong.len(),
        cases.len(),
        wrong.join("\n  ")
    );
    assert!(
        forwarded.iter().filter(|f| f.delivered == 1).count() >= 5,
        "the alert samples at least made the trip"
    );

    // moto re-creates a forwarded event in the central account (its own id, account and
    // region); EventBridge keeps the member's. The function reads the account from the record
    // (recipientAccountId), not the envelope, but the rule's pattern sees the envelope: apply it
    // by hand to envelopes as EventBridge delivers them, with the member's account and region.
    let as_delivered: Vec<Case> = cases
        .iter()
        .map(|c| {
            let mut envelope = c.envelope.clone();
            envelope["account"] = json!("111122223333");
            envelope["region"] = json!("eu-west-1");
            case(format!("{} (as delivered)", c.name), envelope)
        })
        .collect();
    let Some(outcomes) = apply_pattern(&rule["Properties"]["EventPattern"], &as_delivered) else {
        return;
    };
    let wrong = misrouted(&as_delivered, &outcomes);
    assert!(wrong.is_empty(), "{}", wrong.join("\n  "));
}

// ------------------------------------------------------------------- the forwarders' guard

#[test]
fn the_service_control_policy_protects_the_forwarder_by_its_names() {
    let Some(forwarder) = forwarder_template() else {
        return;
    };
    let text = std::fs::read_to_string(repo().join("deploy/forwarder-scp.json"))
        .expect("deploy/forwarder-scp.json");
    let scp: Value = serde_json::from_str(&text).expect("the SCP is JSON");
    // AWS Organizations counts characters without whitespace, up to 5,120.
    let size = text.chars().filter(|c| !c.is_whitespace()).count();
    assert!(
        size <= 5120,
        "the SCP has {size} characters; Organizations takes 5,120"
    );
    // README shows it as it is.
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    assert!(
        readme.contains(text.trim()),
        "README.md must show deploy/forwarder-scp.json verbatim"
    );

    let deployment = Deployment::new(
        forwarder,
        &[
            (
                "CentralEventBusArn",
                "arn:aws:events:us-east-1:999988887777:event-bus/b",
            ),
            (
                "AlarmTopicArn",
                "arn:aws:sns::999988887777:lcw-forwarder-ops",
            ),
        ],
    );
    let member = "111122223333";
    let in_member = |arn: String| arn.replace(&format!(":{ACCOUNT}:"), &format!(":{member}:"));
    let (rule_id, _, target) = the_forwarder_rule(forwarder);
    let role_id = target_of(&target["RoleArn"], Some("Arn")).unwrap();
    let role_name = deployment.text(&resource(forwarder, role_id)["Properties"]["RoleName"]);
    let (alarm_id, _) = resources_of_type(forwarder, "AWS::CloudWatch::Alarm")[0];
    let (queue_id, _) = resources_of_type(forwarder, "AWS::SQS::Queue")[0];
    let protected = [
        (
            "events:DisableRule",
            in_member(deployment.text(&json!({"Fn::GetAtt": [rule_id, "Arn"]}))),
        ),
        (
            "events:RemoveTargets",
            in_member(deployment.text(&json!({"Fn::GetAtt": [rule_id, "Arn"]}))),
        ),
        (
            "iam:PutRolePolicy",
            format!("arn:aws:iam::{member}:role/{role_name}"),
        ),
        (
            "iam:UpdateAssumeRolePolicy",
            format!("arn:aws:iam::{member}:role/{role_name}"),
        ),
        (
            "sqs:DeleteQueue",
            in_member(deployment.text(&json!({"Fn::GetAtt": [queue_id, "Arn"]}))),
        ),
        (
            "sqs:PurgeQueue",
            in_member(deployment.text(&json!({"Fn::GetAtt": [queue_id, "Arn"]}))),
        ),
        (
            "cloudwatch:DeleteAlarms",
            format!(
                "arn:aws:cloudwatch:{REGION}:{member}:alarm:{}",
                deployment.text(&json!({"Ref": alarm_id}))
            ),
        ),
        (
            "cloudformation:DeleteStack",
            format!(
                "arn:aws:cloudformation:eu-west-1:{member}:stack/\
                 StackSet-lambda-code-watch-forwarder-5e1f0a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b/\
                 0a1b2c3d-0000-4000-8000-000000000000"
            ),
        ),
    ];
    let denies = |action: &str, arn: &str, principal: &str| {
        as_list(&scp["Statement"]).iter().any(|s| {
            s["Effect"] == "Deny"
                && strings(&s["Action"]).contains(action)
                && strings(&s["Resource"]).iter().any(|r| glob_matches(r, arn))
                && !strings(&s["Condition"]["ArnNotLike"]["aws:PrincipalArn"])
                    .iter()
                    .any(|p| glob_matches(p, principal))
        })
    };
    let admin = format!("arn:aws:iam::{member}:role/Admin");
    let stacksets = format!("arn:aws:iam::{member}:role/stacksets-exec-0123456789abcdef");
    for (action, arn) in &protected {
        assert!(
            denies(action, arn, &admin),
            "the SCP must deny {action} on {arn} to {admin}"
        );
        assert!(
            !denies(action, arn, &stacksets),
            "the SCP must let StackSets ({stacksets}) {action} on {arn}"
        );
    }
    // Other resources of the account stay the account's.
    for (action, arn) in [
        (
            "events:DisableRule",
            format!("arn:aws:events:{REGION}:{member}:rule/nightly-batch"),
        ),
        (
            "iam:PutRolePolicy",
            format!("arn:aws:iam::{member}:role/payments-api"),
        ),
        (
            "sqs:DeleteQueue",
            format!("arn:aws:sqs:{REGION}:{member}:orders"),
        ),
    ] {
        assert!(
            !denies(action, &arn, &admin),
            "{action} on {arn} must stay allowed"
        );
    }
    // README's rollout names the stack set as the SCP expects.
    assert!(
        readme.contains("--stack-set-name lambda-code-watch-forwarder"),
        "README.md's create-stack-set must name the stack set lambda-code-watch-forwarder"
    );
}

// ------------------------------------------------------------- exactly once, grouping, tuning

#[test]
fn the_event_table_is_kept_encrypted_and_only_for_items() {
    let Some(deployed) = deployed_template() else {
        return;
    };
    let Some(source) = source_template() else {
        return;
    };
    let (function_id, function) = the_function(deployed);
    let variables = &function["Properties"]["Environment"]["Variables"];
    let table_id = target_of(&variables["DEDUP_TABLE"], None)
        .unwrap_or_else(|| panic!("{function_id} must get DEDUP_TABLE from the stack's table"));
    let table = resource(deployed, table_id);
    assert_eq!(table["Type"], "AWS::DynamoDB::Table");
    assert_eq!(
        table["DeletionPolicy"], "Retain",
        "{table_id} outlives the stack"
    );
    assert_eq!(
        table["UpdateReplacePolicy"], "Retain",
        "{table_id} outlives a replacement"
    );
    let properties = &table["Properties"];
    assert_eq!(properties["BillingMode"], "PAY_PER_REQUEST", "on-demand");
    assert_eq!(
        render(&properties["TableName"]).as_deref(),
        Some(format!("{STACK_NAME}-events").as_str()),
        "named from the stack, so tamper rules can name it"
    );
    assert_eq!(
        properties["KeySchema"],
        json!([{"AttributeName": "pk", "KeyType": "HASH"}])
    );
    assert_eq!(
        properties["AttributeDefinitions"],
        json!([{"AttributeName": "pk", "AttributeType": "S"}])
    );
    assert_eq!(
        properties["TimeToLiveSpecification"],
        json!({"AttributeName": "expires_at", "Enabled": true})
    );
    assert_eq!(
        properties["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"],
        true
    );
    let sse = &properties["SSESpecification"];
    assert_eq!(
        (&sse["SSEEnabled"], &sse["SSEType"]),
        (&json!(true), &json!("KMS"))
    );
    let key = target_of(&sse["KMSMasterKeyId"], None)
        .or_else(|| target_of(&sse["KMSMasterKeyId"], Some("Arn")))
        .expect("the table is encrypted with a key of this stack");
    assert_eq!(resource(deployed, key)["Type"], "AWS::KMS::Key");

    assert!(
        variables.get("DEDUP_WINDOW_MINUTES").is_some(),
        "{function_id} needs DEDUP_WINDOW_MINUTES"
    );
    let parameter = target_of(&variables["POLICY_PARAMETER"], None)
        .expect("POLICY_PARAMETER names the stack's parameter");
    assert_eq!(resource(deployed, parameter)["Type"], "AWS::SSM::Parameter");
    let initial = resource(deployed, parameter)["Properties"]["Value"]
        .as_str()
        .expect("a literal initial policy");
    let policy = lambda_code_watch::Policy::parse("PolicyParameter", initial)
        .expect("the stack's initial policy loads");
    assert!(policy.is_original(), "the default is the original rule");

    // Every DynamoDB action the role has is an item action on this table (the least-privilege
    // test checks the resource); nothing table-level (no DeleteTable, UpdateTable, DescribeTable).
    let role_id = target_of(&function["Properties"]["Role"], Some("Arn")).unwrap();
    let dynamodb: BTreeSet<String> = role_statements(deployed, role_id)
        .into_iter()
        .flat_map(|s| as_list(&s["Action"]))
        .filter_map(|a| a.as_str())
        .filter(|a| a.starts_with("dynamodb:"))
        .map(str::to_owned)
        .collect();
    let expected: BTreeSet<String> = [
        "dynamodb:DeleteItem",
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:Scan",
        "dynamodb:UpdateItem",
    ]
    .map(str::to_owned)
    .into();
    assert_eq!(dynamodb, expected);

    // The summary sweep: a schedule invoking the function with the scheduled-event payload the
    // handler recognises.
    let schedules = resources_of_type(deployed, "AWS::Scheduler::Schedule");
    let sweep = schedules
        .iter()
        .find(|(_, s)| {
            target_of(&s["Properties"]["Target"]["Arn"], Some("Arn")) == Some(function_id)
        })
        .unwrap_or_else(|| panic!("a schedule must invoke {function_id} for the summaries"));
    let input: Value = serde_json::from_str(
        sweep.1["Properties"]["Target"]["Input"]
            .as_str()
            .expect("the schedule passes an input"),
    )
    .expect("the input is JSON");
    assert_eq!(input["source"], "aws.events");
    assert_eq!(input["detail-type"], "Scheduled Event");
    let rate = sweep.1["Properties"]["ScheduleExpression"]
        .as_str()
        .unwrap_or("");
    assert!(rate.starts_with("rate("), "{rate}");

    // The alarm that matters for tuning: a surge of suppressed alerts.
    let alarms: Vec<&Value> = resources_of_type(deployed, "AWS::CloudWatch::Alarm")
        .into_iter()
        .map(|(_, a)| &a["Properties"])
        .collect();
    for metric in ["Suppressed", "PolicyRejected", "StoreErrors"] {
        assert!(
            alarms.iter().any(|a| a["Namespace"] == "LambdaCodeWatch"
                && a["MetricName"] == metric
                && as_list(&a["Dimensions"])
                    .iter()
                    .any(|d| d["Name"] == "FunctionName"
                        && target_of(&d["Value"], None) == Some(function_id))),
            "an alarm must watch LambdaCodeWatch/{metric} of {function_id}"
        );
    }
    // The names the handler writes its metrics under are the ones alarmed on.
    assert_eq!(
        lambda_code_watch_metric_names(),
        ["Suppressed", "PolicyRejected", "StoreErrors"]
    );
    assert!(
        source["Resources"]["EventTable"].is_object(),
        "template.yaml names the table EventTable"
    );
}

/// The metric names as the handler spells them (handler/src/metrics.rs), read from its source so
/// the alarms and the writer cannot drift apart.
fn lambda_code_watch_metric_names() -> Vec<String> {
    let source = std::fs::read_to_string(repo().join("handler/src/metrics.rs")).unwrap();
    ["SUPPRESSED", "POLICY_REJECTED", "STORE_ERRORS"]
        .iter()
        .map(|constant| {
            let line = source
                .lines()
                .find(|l| l.starts_with(&format!("pub const {constant}: &str = ")))
                .unwrap_or_else(|| panic!("metrics.rs defines {constant}"));
            line.split('"').nth(1).unwrap().to_owned()
        })
        .collect()
}

// ------------------------------------------------------------------------------------ S3 mode

/// An S3-mode deployment with destinations for alerts and alarms, plus `extra`.
fn s3_deployment<'t>(deployed: &'t Value, extra: &[(&str, &str)]) -> Deployment<'t> {
    let mut given: Vec<(&str, &str)> = vec![
        ("AlertEmail", "sec@example.com"),
        ("OpsEmail", "ops@example.com"),
    ];
    given.extend_from_slice(S3_MODE);
    given.extend_from_slice(extra);
    Deployment::new(deployed, &given)
}

/// Every statement of the function role's inline policies, resolved for `deployment`.
fn resolved_role_statements(deployment: &Deployment) -> Vec<Value> {
    let policies = deployment
        .resolve(&resource(deployment.template, "CodeWatchFunctionRole")["Properties"]["Policies"])
        .unwrap();
    as_list(&policies)
        .into_iter()
        .flat_map(|p| as_list(&p["PolicyDocument"]["Statement"]))
        .cloned()
        .collect()
}

fn actions(statement: &Value) -> Vec<String> {
    as_list(&statement["Action"])
        .iter()
        .filter_map(|a| a.as_str().map(str::to_owned))
        .collect()
}

#[test]
fn s3_mode_reads_only_the_trail_log_files_and_decrypts_only_through_s3() {
    let Some(deployed) = deployed_template() else {
        return;
    };
    for (prefix, objects) in [
        (
            "central",
            format!("arn:aws:s3:::{TRAIL_BUCKET}/central/AWSLogs/*"),
        ),
        ("", format!("arn:aws:s3:::{TRAIL_BUCKET}/AWSLogs/*")),
    ] {
        let deployment = s3_deployment(deployed, &[("TrailKeyPrefix", prefix)]);
        let statements = resolved_role_statements(&deployment);
        let reads: Vec<&Value> = statements
            .iter()
            .filter(|s| actions(s).iter().any(|a| a.starts_with("s3:")))
            .collect();
        assert_eq!(reads.len(), 1, "{}", shown(&reads));
        assert_eq!(actions(reads[0]), ["s3:GetObject"]);
        assert_eq!(reads[0]["Resource"], json!(objects), "exactly the prefix");
        let decrypts: Vec<&Value> = statements
            .iter()
            .filter(|s| as_list(&s["Resource"]).contains(&&json!(TRAIL_KEY)))
            .collect();
        assert_eq!(decrypts.len(), 1, "{}", shown(&decrypts));
        assert_eq!(actions(decrypts[0]), ["kms:Decrypt"]);
        assert_eq!(
            decrypts[0]["Condition"],
            json!({"StringLike": {"kms:ViaService": "s3.*.amazonaws.com"}})
        );
        let queue_arn = deployment.text(&json!({"Fn::GetAtt": ["TrailFileQueue", "Arn"]}));
        let receives: Vec<&Value> = statements
            .iter()
            .filter(|s| actions(s).iter().any(|a| a == "sqs:ReceiveMessage"))
            .collect();
        assert_eq!(receives.len(), 1, "{}", shown(&receives));
        assert_eq!(receives[0]["Resource"], json!(queue_arn));
        let variables = deployment
            .resolve(&resource(deployed, "CodeWatchFunction")["Properties"]["Environment"])
            .unwrap();
        assert_eq!(variables["Variables"]["TRAIL_BUCKET"], TRAIL_BUCKET);
        assert_eq!(variables["Variables"]["TRAIL_PREFIX"], prefix);
    }
    // Without a trail key: no decrypt; without S3 mode: nothing of it at all.
    let deployment = s3_deployment(deployed, &[("TrailKmsKeyArn", "")]);
    assert!(
        !resolved_role_statements(&deployment)
            .iter()
            .any(|s| s.to_string().contains("kms:ViaService\":\"s3.")),
        "no trail key, no decrypt"
    );
    let single = Deployment::new(
        deployed,
        &[
            ("AlertEmail", "sec@example.com"),
            ("OpsEmail", "ops@example.com"),
        ],
    );
    for statement in resolved_role_statements(&single) {
        assert!(
            !actions(&statement)
                .iter()
                .any(|a| a.starts_with("s3:") || a == "sqs:ReceiveMessage"),
            "{statement}"
        );
    }
    for id in [
        "TrailFileQueue",
        "TrailFileDeadLetterQueue",
        "TrailFileQueuePolicy",
        "TrailFileEventSourceMapping",
        "TrailFileEventsRule",
        "TrailFileQueueAgeAlarm",
        "TrailFileDeadLetterQueueAlarm",
        "TrailCanaryHeartbeatAlarm",
    ] {
        assert!(!single.exists(id), "{id} exists without S3 mode");
        assert!(deployment.exists(id), "{id} is missing in S3 mode");
    }
    let function = single
        .resolve(&resource(deployed, "CodeWatchFunction")["Properties"])
        .unwrap();
    assert_eq!(
        function["Environment"]["Variables"].get("TRAIL_BUCKET"),
        None
    );
    assert_eq!(
        (&function["MemorySize"], &function["Timeout"]),
        (&json!(128), &json!(10)),
        "the single-account function is sized as before"
    );
}

/// An S3 "Object Created" event on EventBridge for `key` in `bucket`.
fn object_created(bucket: &str, key: &str) -> Value {
    json!({"version": "0", "id": "e0", "detail-type": "Object Created", "source": "aws.s3",
           "account": TRAIL_OWNER, "time": "2026-01-02T00:05:00Z", "region": "us-east-1",
           "resources": [format!("arn:aws:s3:::{bucket}")],
           "detail": {"version": "0", "bucket": {"name": bucket},
                      "object": {"key": key, "size": 1024, "etag": "e", "sequencer": "1"},
                      "request-id": "r", "requester": "cloudtrail.amazonaws.com",
                      "reason": "PutObject"}})
}

#[test]
fn s3_mode_queue_admits_only_the_trail_bucket_and_its_rule_which_forwards_only_log_files() {
    let Some(deployed) = deployed_template() else {
        return;
    };
    let deployment = s3_deployment(deployed, &[]);
    let queue_arn = deployment.text(&json!({"Fn::GetAtt": ["TrailFileQueue", "Arn"]}));
    let rule_arn = deployment.text(&json!({"Fn::GetAtt": ["TrailFileEventsRule", "Arn"]}));
    let policy = deployment
        .resolve(&resource(deployed, "TrailFileQueuePolicy")["Properties"])
        .unwrap();
    let statements = as_list(&policy["PolicyDocument"]["Statement"]);
    let allows: Vec<&&Value> = statements
        .iter()
        .filter(|s| s["Effect"] == "Allow")
        .collect();
    assert_eq!(
        allows
            .iter()
            .map(|s| (
                s["Principal"].clone(),
                s["Action"].clone(),
                s["Resource"].clone(),
                s["Condition"].clone()
            ))
            .collect::<Vec<_>>(),
        [
            (
                json!({"Service": "s3.amazonaws.com"}),
                json!("sqs:SendMessage"),
                json!(queue_arn),
                json!({"ArnEquals": {"aws:SourceArn": format!("arn:aws:s3:::{TRAIL_BUCKET}")},
                       "StringEquals": {"aws:SourceAccount": TRAIL_OWNER}})
            ),
            (
                json!({"Service": "events.amazonaws.com"}),
                json!("sqs:SendMessage"),
                json!(queue_arn),
                json!({"ArnEquals": {"aws:SourceArn": rule_arn}})
            ),
        ],
        "the queue admits the trail bucket (in its owner's account) and the rule, nothing else"
    );
    assert!(
        statements
            .iter()
            .any(|s| s["Effect"] == "Deny"
                && s["Condition"]["Bool"]["aws:SecureTransport"] == "false"),
        "the queue refuses plain HTTP"
    );

    // The EventBridge route: on the organization bus, only the trail's log files.
    let rule = deployment
        .resolve(&resource(deployed, "TrailFileEventsRule")["Properties"])
        .unwrap();
    assert_eq!(
        rule["EventBusName"],
        deployment.text(&json!({"Ref": "OrganizationEventBus"}))
    );
    assert_eq!(
        rule["Targets"][0]["Arn"],
        json!(queue_arn),
        "the rule feeds the queue"
    );
    let day = "2026/01/02";
    let cases: Vec<Case> = [
        (
            format!("central/AWSLogs/{ORGANIZATION}/111122223333/CloudTrail/us-east-1/{day}/a.json.gz"),
            TRAIL_BUCKET,
            true,
        ),
        (
            format!("central/AWSLogs/111122223333/CloudTrail/eu-west-1/{day}/b.json.gz"),
            TRAIL_BUCKET,
            true,
        ),
        (
            format!("central/AWSLogs/{ORGANIZATION}/111122223333/CloudTrail-Digest/us-east-1/{day}/d.json.gz"),
            TRAIL_BUCKET,
            false,
        ),
        (
            format!("central/AWSLogs/111122223333/CloudTrail-Insight/us-east-1/{day}/i.json.gz"),
            TRAIL_BUCKET,
            false,
        ),
        (
            format!("other/AWSLogs/111122223333/CloudTrail/us-east-1/{day}/c.json.gz"),
            TRAIL_BUCKET,
            false,
        ),
        (
            format!("central/AWSLogs/111122223333/CloudTrail/us-east-1/{day}/a.json.gz"),
            "someone-elses-bucket",
            false,
        ),
    ]
    .into_iter()
    .map(|(key, bucket, must_deliver)| Case {
        name: format!("{bucket}/{key}"),
        envelope: object_created(bucket, &key),
        must_deliver,
        because: match must_deliver {
            true => "a log file of the trail".to_owned(),
            false => "not a log file of the trail".to_owned(),
        },
    })
    .collect();
    let Some(outcomes) = apply_pattern(&rule["EventPattern"], &cases) else {
        return;
    };
    assert_eq!(misrouted(&cases, &outcomes), Vec::<String>::new());
}

#[test]
fn s3_mode_batches_report_item_failures_and_failed_files_are_kept_and_watched() {
    let Some(deployed) = deployed_template() else {
        return;
    };
    let deployment = s3_deployment(deployed, &[]);
    let mapping = deployment
        .resolve(&resource(deployed, "TrailFileEventSourceMapping")["Properties"])
        .unwrap();
    let queue_arn = deployment.text(&json!({"Fn::GetAtt": ["TrailFileQueue", "Arn"]}));
    let dead_letters_arn =
        deployment.text(&json!({"Fn::GetAtt": ["TrailFileDeadLetterQueue", "Arn"]}));
    assert_eq!(
        mapping["FunctionResponseTypes"],
        json!(["ReportBatchItemFailures"])
    );
    assert_eq!(mapping["EventSourceArn"], json!(queue_arn));
    assert_eq!(
        mapping["FunctionName"],
        deployment
            .resolve(&json!({"Ref": "CodeWatchFunction"}))
            .unwrap()
    );
    let reserved: u64 = deployment.parameters["ReservedConcurrency"]
        .parse()
        .unwrap();
    let batches = mapping["ScalingConfig"]["MaximumConcurrency"]
        .as_u64()
        .expect("the mapping caps its concurrency");
    assert!(
        batches < reserved,
        "trail files ({batches} at once) leave the real-time path some of the {reserved} reserved"
    );

    let function = deployment
        .resolve(&resource(deployed, "CodeWatchFunction")["Properties"])
        .unwrap();
    let timeout = function["Timeout"].as_u64().unwrap();
    let queue = deployment
        .resolve(&resource(deployed, "TrailFileQueue")["Properties"])
        .unwrap();
    assert!(
        queue["VisibilityTimeout"].as_u64().unwrap() >= 6 * timeout,
        "the visibility timeout ({}) is at least six times the function's timeout ({timeout})",
        queue["VisibilityTimeout"]
    );
    assert_eq!(
        queue["RedrivePolicy"]["deadLetterTargetArn"],
        json!(dead_letters_arn)
    );
    assert!(queue["RedrivePolicy"]["maxReceiveCount"].as_u64() > Some(1));
    for id in ["TrailFileQueue", "TrailFileDeadLetterQueue"] {
        let queue = resource(deployed, id);
        assert_eq!(queue["DeletionPolicy"], "Retain", "{id}");
        assert_eq!(queue["UpdateReplacePolicy"], "Retain", "{id}");
        assert_eq!(
            queue["Properties"]["MessageRetentionPeriod"], 1209600,
            "{id}"
        );
    }

    // Alarms on both queues; the tamper rule watches both (and neither exists without S3 mode).
    for (alarm, queue_id) in [
        ("TrailFileQueueAgeAlarm", "TrailFileQueue"),
        ("TrailFileDeadLetterQueueAlarm", "TrailFileDeadLetterQueue"),
    ] {
        let alarm = deployment
            .resolve(&resource(deployed, alarm)["Properties"])
            .unwrap();
        assert_eq!(
            alarm["Dimensions"],
            json!([{"Name": "QueueName",
                    "Value": deployment.text(&json!({"Fn::GetAtt": [queue_id, "QueueName"]}))}])
        );
    }
    let watched = |deployment: &Deployment| -> Vec<Value> {
        let rule = deployment
            .resolve(&resource(deployed, "TamperQueueRule")["Properties"])
            .unwrap();
        as_list(&rule["EventPattern"]["detail"]["requestParameters"]["queueUrl"])
            .into_iter()
            .cloned()
            .collect()
    };
    let in_s3_mode = watched(&deployment);
    for queue_id in ["TrailFileQueue", "TrailFileDeadLetterQueue"] {
        let name = deployment.text(&json!({"Fn::GetAtt": [queue_id, "QueueName"]}));
        assert!(
            in_s3_mode.contains(&json!({"suffix": format!("/{ACCOUNT}/{name}")})),
            "the tamper rule watches {queue_id}: {in_s3_mode:?}"
        );
    }
    let single = Deployment::new(
        deployed,
        &[
            ("AlertEmail", "sec@example.com"),
            ("OpsEmail", "ops@example.com"),
        ],
    );
    assert_eq!(watched(&single).len(), 2, "{:?}", watched(&single));
}

#[test]
fn s3_mode_settings_need_a_bucket_and_its_owner() {
    let Some(source) = source_template() else {
        return;
    };
    let destinations = [
        ("AlertEmail", "sec@example.com"),
        ("OpsEmail", "ops@example.com"),
    ];
    let with = |extra: &[(&str, &str)]| {
        let mut given = destinations.to_vec();
        given.extend_from_slice(extra);
        broken_rules(source, &given)
    };
    assert_eq!(with(S3_MODE), Vec::<String>::new());
    assert_eq!(
        with(&[("TrailBucketName", TRAIL_BUCKET)]),
        ["TrailNeedsItsOwner"]
    );
    for parameter in ["TrailKeyPrefix", "TrailBucketAccountId", "TrailKmsKeyArn"] {
        let value = S3_MODE.iter().find(|(p, _)| *p == parameter).unwrap().1;
        assert_eq!(
            with(&[(parameter, value)]),
            ["TrailSettingsNeedABucket"],
            "{parameter} without TrailBucketName"
        );
    }
}
