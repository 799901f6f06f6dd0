//! The tools the tests drive (sam, cfn-lint, checkov, cargo-lambda, Python with moto): found, run
//! in their own process group under a time limit, and reported on failure.

use super::*;

pub(crate) fn repo() -> PathBuf {
    common::repo_dir()
}

pub(crate) fn template_path() -> PathBuf {
    repo().join("template.yaml")
}

/// The forwarder every member account and region runs in organization mode.
pub(crate) fn forwarder_path() -> PathBuf {
    repo().join("deploy/forwarder.yaml")
}

/// template.yaml with organization mode (and account names) as its defaults, so the linters and
/// the scanner also judge the template as an organization deploys it: a copy in a temporary
/// directory, made once.
pub(crate) fn organization_variant_path() -> &'static Path {
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
pub(crate) fn variant_with_defaults(
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
pub(crate) const S3_MODE: &[(&str, &str)] = &[
    ("OrganizationId", ORGANIZATION),
    ("TrailBucketName", TRAIL_BUCKET),
    ("TrailKeyPrefix", "central"),
    ("TrailBucketAccountId", TRAIL_OWNER),
    ("TrailKmsKeyArn", TRAIL_KEY),
];
pub(crate) const TRAIL_BUCKET: &str = "org-trail-logs";
pub(crate) const TRAIL_OWNER: &str = "999988887777";
pub(crate) const TRAIL_KEY: &str =
    "arn:aws:kms:us-east-1:999988887777:key/1234abcd-12ab-34cd-56ef-1234567890ab";

/// template.yaml with S3 mode (and organization mode) as its defaults, for the linters and the
/// scanner: a copy in a temporary directory, made once.
pub(crate) fn s3_variant_path() -> &'static Path {
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

pub(crate) fn is_executable(path: &Path) -> bool {
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

pub(crate) fn venv_bin() -> PathBuf {
    repo().join(".venv/bin")
}

/// `name` on PATH, else in the repository's `.venv/bin`.
pub(crate) fn find_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([venv_bin()])
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

/// The Python that has the tools' packages: the repository's venv, else `python3` on PATH.
pub(crate) fn python() -> Option<PathBuf> {
    let venv = venv_bin().join("python");
    if is_executable(&venv) {
        Some(venv)
    } else {
        find_tool("python3")
    }
}

/// PATH for a child: the tool's own directory and `.venv/bin` first, so that `sam` finds
/// `cargo-lambda` and cargo-lambda finds the pip-installed zig.
pub(crate) fn child_path(tool: &Path) -> OsString {
    let mut dirs: Vec<PathBuf> = tool.parent().map(Path::to_path_buf).into_iter().collect();
    dirs.push(venv_bin());
    dirs.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    std::env::join_paths(dirs).expect("PATH entries contain no separator")
}

/// A command for an external tool, run from the repository root, offline-friendly.
pub(crate) fn tool_command(tool: &Path) -> Command {
    let mut command = Command::new(tool);
    command
        .current_dir(repo())
        .env("PATH", child_path(tool))
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("SAM_CLI_TELEMETRY", "0");
    command
}

pub(crate) struct Finished {
    pub(crate) status: ExitStatus,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Finished {
    /// Status and both streams (their last 6 KB), for failure messages.
    pub(crate) fn report(&self) -> String {
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
pub(crate) struct Running {
    pub(crate) child: Child,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            common::kill_group(&mut self.child);
        }
    }
}

pub(crate) fn drain(mut stream: impl Read + Send + 'static) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = stream.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// Runs `command` to completion, or kills it after `limit` (a safety net against a hung tool, not
/// a performance assertion).
pub(crate) fn run(what: &str, command: &mut Command, limit: Duration) -> Finished {
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

pub(crate) const MINUTE: Duration = Duration::from_secs(60);
