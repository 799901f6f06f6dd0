//! Promises of `template.yaml`, the SAM deployment: the linters and the security scanner accept it,
//! `sam build` turns it into an arm64 `bootstrap`, its EventBridge pattern forwards every Lambda code
//! update and nothing else when a real EventBridge emulator applies it, the function's role can do
//! nothing beyond its job, and an event that cannot be delivered or processed is kept, not dropped.
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
    let Some(python) = python() else {
        missing("python3 is not installed: cannot read template.yaml");
        return None;
    };
    let mut command = tool_command(&python);
    command.arg(repo().join("scripts/template-json.py"));
    if transform {
        command.arg("--transform");
    }
    command.arg(template_path());
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
        "scripts/template-json.py{} could not read template.yaml: {}",
        if transform { " --transform" } else { "" },
        out.report()
    );
    Some(serde_json::from_str(&out.stdout).expect("template-json.py prints JSON"))
}

/// template.yaml as written (SAM resources).
fn source_template() -> Option<&'static Value> {
    static SOURCE: OnceLock<Option<Value>> = OnceLock::new();
    SOURCE.get_or_init(|| load_template(false)).as_ref()
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

/// The function the template deploys: the only `AWS::Lambda::Function`.
fn the_function(deployed: &Value) -> (&str, &Value) {
    let functions = resources_of_type(deployed, "AWS::Lambda::Function");
    assert_eq!(
        functions.len(),
        1,
        "expected exactly one Lambda function in the deployed template, found {:?}",
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
    for args in [&["validate"][..], &["validate", "--lint"][..]] {
        let out = run(
            "sam validate",
            tool_command(&sam)
                .args(args)
                .arg("--template")
                .arg(template_path()),
            5 * MINUTE,
        );
        assert!(
            out.status.success(),
            "`sam {}` rejects template.yaml: {}",
            args.join(" "),
            out.report()
        );
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
    let dir = tempfile::tempdir().expect("a temporary directory");
    let transformed = dir.path().join("transformed.json");
    std::fs::write(&transformed, deployed.to_string()).expect("write the transformed template");

    for (path, template, what) in [
        (template_path(), source, "template.yaml"),
        (transformed, deployed, "the transformed template"),
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
        if what == "template.yaml" {
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

/// Sends every case through moto's EventBridge with `pattern` on a rule; `None` when Python or its
/// packages are missing (after `missing`).
fn apply_pattern(pattern: &Value, cases: &[Case]) -> Option<Vec<Outcome>> {
    let Some(python) = python() else {
        missing("python3 is not installed: cannot run the EventBridge emulator");
        return None;
    };
    let dir = tempfile::tempdir().expect("a temporary directory");
    let pattern_file = dir.path().join("pattern.json");
    let cases_file = dir.path().join("cases.json");
    std::fs::write(&pattern_file, pattern.to_string()).expect("write the pattern");
    let listed: Vec<Value> = cases
        .iter()
        .map(|c| json!({"name": c.name, "envelope": c.envelope}))
        .collect();
    std::fs::write(&cases_file, Value::Array(listed).to_string()).expect("write the cases");

    let out = run(
        "scripts/eventbridge-pattern-check.py",
        tool_command(&python)
            .arg(repo().join("scripts/eventbridge-pattern-check.py"))
            .arg("--pattern")
            .arg(&pattern_file)
            .arg("--cases")
            .arg(&cases_file),
        10 * MINUTE,
    );
    if out.status.code() == Some(MISSING_PACKAGE) {
        missing(&format!(
            "Python packages for the EventBridge emulator: {}",
            out.stderr.trim()
        ));
        return None;
    }
    assert!(
        out.status.success(),
        "the EventBridge emulator run failed: {}",
        out.report()
    );
    let report: Value =
        serde_json::from_str(&out.stdout).expect("eventbridge-pattern-check.py prints JSON");
    assert_eq!(
        report["unattributed"],
        0,
        "the emulator delivered events nobody sent: {}",
        out.report()
    );
    let results = as_list(&report["results"]);
    assert_eq!(
        results.len(),
        cases.len(),
        "one result per case expected from {}",
        report["emulator"]
    );
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
    assert!(
        rule["Properties"].get("EventBusName").is_none()
            || rule["Properties"]["EventBusName"] == "default",
        "CloudTrail events arrive on the default bus; {rule_id} listens elsewhere"
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
    // key policy spells out with the name the rule gets.
    let rule_name = render(&rule["Properties"]["Name"])
        .unwrap_or_else(|| panic!("{rule_id} needs a name computable at deploy time"));
    let rule_arn = format!("arn:aws:events:us-east-1:123456789012:rule/{rule_name}");
    let events_grants = key_grants_to(deployed, key, "events.amazonaws.com");
    assert!(
        events_grants.iter().any(|s| {
            let actions = as_list(&s["Action"]);
            actions.contains(&&json!("kms:GenerateDataKey"))
                && actions.contains(&&json!("kms:Decrypt"))
                && render(&s["Condition"]["ArnEquals"]["aws:SourceArn"]).as_deref()
                    == Some(rule_arn.as_str())
        }),
        "{key}'s policy must let events.amazonaws.com use it (GenerateDataKey, Decrypt) for \
         {rule_arn}; it grants: {}",
        shown(&events_grants)
    );

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
            render(&s["Condition"]["ArnEquals"]["kms:EncryptionContext:aws:logs:arn"]).as_deref()
                == Some(log_group_arn.as_str())
        }),
        "{log_key}'s policy must let CloudWatch Logs use it for {log_group_arn}: {}",
        shown(&logs_grants)
    );
}

#[test]
fn the_topic_refuses_plain_http() {
    let Some(deployed) = deployed_template() else {
        return;
    };
    let topics = resources_of_type(deployed, "AWS::SNS::Topic");
    assert_eq!(
        topics.len(),
        1,
        "one alert topic (created unless one is given)"
    );
    let (topic_id, _) = topics[0];
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
