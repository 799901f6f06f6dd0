//! Test support for the Lambda end-to-end tests: the external tools (moto_server, cargo-lambda,
//! python with boto3), child processes that are always killed (Drop guards, whole process groups),
//! a minimal HTTP client for the runtime emulator, and a fault-injecting HTTP proxy for SNS.
//!
//! A missing tool fails the test under `CI=true` and skips it loudly otherwise. Nothing here knows
//! the rule or the alert format: assertions live in the test files.
#![allow(dead_code)] // each test uses a different part

use serde_json::Value;
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// The binary target cargo-lambda runs, and its function name in the emulator.
pub const HANDLER_BIN: &str = "lambda-code-watch-handler";
/// The first build of the handler compiles the AWS SDK: minutes on a small machine.
pub const BUILD_TIMEOUT: Duration = Duration::from_secs(45 * 60);
/// One invocation, SDK retries and backoff included.
pub const INVOKE_TIMEOUT: Duration = Duration::from_secs(5 * 60);

#[allow(unused_imports)] // not every test file lists sample events
pub use crate::common::{event_files, repo_dir};

/// The tools these tests drive, found on PATH or in the repo's `.venv/bin`.
pub struct Tools {
    pub moto_server: PathBuf,
    pub cargo_lambda: PathBuf,
    pub python: PathBuf,
    /// PATH for children: the venv first, so cargo-lambda finds what it needs.
    pub path: std::ffi::OsString,
}

impl Tools {
    /// The tools, or `None` after saying loudly what is missing (outside CI only; in CI a missing
    /// tool is a failure).
    pub fn find(test: &str) -> Option<Tools> {
        let venv_bin = repo_dir().join(".venv/bin");
        let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).collect())
            .unwrap_or_default();
        if venv_bin.is_dir() {
            dirs.push(venv_bin.clone());
        }
        let find = |name: &str| dirs.iter().map(|d| d.join(name)).find(|p| p.is_file());
        let mut missing = Vec::new();
        let moto_server = find("moto_server");
        let cargo_lambda = find("cargo-lambda");
        let python = [venv_bin.join("python3"), venv_bin.join("python")]
            .into_iter()
            .find(|p| p.is_file())
            .or_else(|| find("python3"));
        if moto_server.is_none() {
            missing.push("moto_server (pip install 'moto[server]')".to_owned());
        }
        if cargo_lambda.is_none() {
            missing.push("cargo-lambda (pip install cargo-lambda)".to_owned());
        }
        match &python {
            None => missing.push("python3".to_owned()),
            Some(python) => {
                let has_boto3 = Command::new(python)
                    .args(["-c", "import boto3"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success());
                if !has_boto3 {
                    missing.push(format!(
                        "boto3 for {} (pip install boto3)",
                        python.display()
                    ));
                }
            }
        }
        if !missing.is_empty() {
            crate::common::unavailable(&format!("{test}: missing {}", missing.join(", ")));
            return None;
        }
        let mut path_dirs = vec![venv_bin];
        path_dirs.extend(dirs);
        Some(Tools {
            moto_server: moto_server.unwrap(),
            cargo_lambda: cargo_lambda.unwrap(),
            python: python.unwrap(),
            path: std::env::join_paths(path_dirs).expect("PATH entries are joinable"),
        })
    }
}

/// A free TCP port on 127.0.0.1 (bound then released, so the child can take it).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind an ephemeral port on 127.0.0.1")
        .port()
}

/// Where children write their logs, kept after the run for diagnosis.
pub fn log_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("lambda-e2e-logs");
    std::fs::create_dir_all(&dir).expect("create the e2e log directory");
    dir
}

/// The target dir for what these tests build: not cargo test's own (it holds that lock while tests
/// run, so a nested build there would wait forever).
pub fn nested_target_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("lambda-e2e-target")
}

/// A child process in its own process group, killed with the whole group on drop (also when the
/// test panics), so no moto or handler outlives the test.
pub struct Guarded {
    child: Child,
    name: String,
    pub log: PathBuf,
}

impl Guarded {
    pub fn spawn(name: &str, mut command: Command) -> Guarded {
        let log = log_dir().join(format!("{name}.log"));
        let file = std::fs::File::create(&log).expect("create a child log file");
        let stderr = file.try_clone().expect("clone the log file handle");
        command
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(stderr)
            .process_group(0);
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("start {name} ({command:?}): {e}"));
        Guarded {
            child,
            name: name.to_owned(),
            log,
        }
    }

    /// The child's output so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Panics, with the child's log, if it has exited.
    pub fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!(
                "{} exited early ({status}); its log ({}):\n{}",
                self.name,
                self.log.display(),
                tail(&self.output(), 60)
            );
        }
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        crate::common::kill_group(&mut self.child);
    }
}

pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Waits until something accepts connections on `port`, checking that `child` is still alive.
pub fn wait_for_port(child: &mut Guarded, port: u16, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        child.assert_running();
        assert!(
            Instant::now() < deadline,
            "{} did not listen on port {port} within {timeout:?}; log:\n{}",
            child.name,
            tail(&child.output(), 60)
        );
        thread::sleep(Duration::from_millis(200));
    }
}

/// Runs `command` to completion, failing after `timeout` (and killing it).
pub fn run_with_timeout(what: &str, mut command: Command, timeout: Duration) -> Output {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: cannot start {command:?}: {e}"));
    let mut stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let out = thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf);
        buf
    });
    let err = thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf);
        buf
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().expect("poll child") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .status();
            let _ = child.wait();
            panic!("{what}: still running after {timeout:?}, killed");
        }
        thread::sleep(Duration::from_millis(50));
    };
    Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}

/// A moto server on its own port.
pub struct Moto {
    pub endpoint: String,
    pub port: u16,
    process: Guarded,
    python: PathBuf,
}

impl Moto {
    pub fn start(tools: &Tools, name: &str) -> Moto {
        let port = free_port();
        let mut command = Command::new(&tools.moto_server);
        command
            .args(["-p", &port.to_string()])
            .env("PATH", &tools.path);
        let mut process = Guarded::spawn(&format!("{name}-moto"), command);
        wait_for_port(&mut process, port, Duration::from_secs(60));
        Moto {
            endpoint: format!("http://127.0.0.1:{port}"),
            port,
            process,
            python: tools.python.clone(),
        }
    }

    fn helper(&self, args: &[&str]) -> Value {
        let mut command = Command::new(&self.python);
        command
            .arg(repo_dir().join("scripts/lambda-e2e-sns.py"))
            .args(args)
            .args(["--endpoint", &self.endpoint]);
        let output = run_with_timeout("lambda-e2e-sns.py", command, Duration::from_secs(120));
        assert!(
            output.status.success(),
            "lambda-e2e-sns.py {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).expect("the helper prints JSON")
    }

    /// A topic with a queue subscribed (raw delivery off), in us-east-1.
    pub fn topic_with_queue(&self, name: &str) -> Subscription {
        self.topic_with_queue_in(name, "us-east-1")
    }

    /// A topic with a queue subscribed (raw delivery off), both in `region`.
    pub fn topic_with_queue_in(&self, name: &str, region: &str) -> Subscription {
        let created = self.helper(&["setup", "--name", name, "--region", region]);
        Subscription {
            topic_arn: created["topic_arn"].as_str().expect("topic_arn").to_owned(),
            queue_url: created["queue_url"].as_str().expect("queue_url").to_owned(),
            region: region.to_owned(),
        }
    }

    /// Every SNS envelope waiting in the queue, removed from it.
    pub fn drain(&self, subscription: &Subscription) -> Vec<Value> {
        let envelopes = self.helper(&[
            "drain",
            "--queue-url",
            &subscription.queue_url,
            "--region",
            &subscription.region,
        ]);
        envelopes
            .as_array()
            .expect("the helper prints a list")
            .clone()
    }
}

/// Runs `scripts/lambda-e2e-aws.py` (DynamoDB, SSM, S3 and SQS chores) against `moto`.
pub fn aws_helper(tools: &Tools, moto: &Moto, args: &[&str]) -> Value {
    let mut command = Command::new(&tools.python);
    command
        .arg(repo_dir().join("scripts/lambda-e2e-aws.py"))
        .args(args)
        .args(["--endpoint", &moto.endpoint]);
    let output = run_with_timeout("lambda-e2e-aws.py", command, Duration::from_secs(900));
    assert!(
        output.status.success(),
        "lambda-e2e-aws.py {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("the helper prints JSON")
}

pub struct Subscription {
    pub topic_arn: String,
    pub queue_url: String,
    pub region: String,
}

/// Builds the handler into the nested target dir, so `cargo lambda watch` starts on a fresh build
/// and a compile error shows here, with cargo's message, rather than as an invoke timeout.
pub fn build_handler(tools: &Tools) {
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command
        .current_dir(repo_dir())
        .args(["build", "--bin", HANDLER_BIN])
        .env("CARGO_TARGET_DIR", nested_target_dir())
        .env("PATH", &tools.path);
    let output = run_with_timeout("build the handler", command, BUILD_TIMEOUT);
    assert!(
        output.status.success(),
        "building the handler failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The handler running under `cargo lambda watch`, with the function's environment.
pub struct Watch {
    pub port: u16,
    process: Guarded,
    /// The value of [`WATCH_MARKER`] in this watch's environment, which the function inherits.
    marker: String,
}

/// A variable every watch passes to its function with a value of its own, so the function's
/// process can be found in /proc whatever cargo-lambda spawns in between.
const WATCH_MARKER: &str = "LCW_TEST_WATCH";

/// Variables that would make the handler reach real AWS or another profile.
const AWS_VARIABLES_TO_CLEAR: &[&str] = &[
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_ENDPOINT_URL_SNS",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "ALERT_TOPIC_ARN",
    "ALERT_STDOUT",
    "CANARY_ROLE_ARN",
    "CANARY_TARGET_FUNCTION",
    "ACCOUNT_NAMES",
    "DEDUP_TABLE",
    "DEDUP_WINDOW_MINUTES",
    "POLICY_PARAMETER",
    "POLICY_FILE",
    "POLICY_REFRESH_SECONDS",
    "TRAIL_BUCKET",
    "TRAIL_PREFIX",
];

impl Watch {
    /// Starts `cargo lambda watch` with `env` for the function, and waits for the emulator.
    pub fn start(tools: &Tools, name: &str, env: &[(&str, &str)]) -> Watch {
        build_handler(tools);
        let port = free_port();
        let mut command = Command::new(&tools.cargo_lambda);
        command
            .current_dir(repo_dir())
            .args(["lambda", "watch", "--ignore-changes"])
            .args(["--bin", HANDLER_BIN, "--invoke-address", "127.0.0.1"])
            .args(["--invoke-port", &port.to_string()])
            // cargo-lambda passes `--target-dir` on to `cargo metadata`, which rejects it.
            .env("CARGO_TARGET_DIR", nested_target_dir())
            .env("PATH", &tools.path)
            .env("NO_COLOR", "1")
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("NO_PROXY", "127.0.0.1,localhost");
        for variable in AWS_VARIABLES_TO_CLEAR {
            command.env_remove(variable);
        }
        for (key, value) in env {
            command.env(key, value);
        }
        let marker = format!("{name}-{}", std::process::id());
        command.env(WATCH_MARKER, &marker);
        let mut process = Guarded::spawn(&format!("{name}-watch"), command);
        wait_for_port(&mut process, port, Duration::from_secs(120));
        Watch {
            port,
            process,
            marker,
        }
    }

    /// The peak resident memory (VmHWM, KiB) of this watch's function process so far, read from
    /// /proc: what Lambda reports as "Max Memory Used". `None` until the function has started.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let wanted = format!("{WATCH_MARKER}={}", self.marker);
        let mut peak = None;
        for entry in std::fs::read_dir("/proc").ok()?.flatten() {
            let dir = entry.path();
            let is_handler = std::fs::read_link(dir.join("exe"))
                .is_ok_and(|exe| exe.file_name().is_some_and(|n| n == HANDLER_BIN));
            let ours = std::fs::read(dir.join("environ")).is_ok_and(|environ| {
                environ
                    .split(|b| *b == 0)
                    .any(|variable| variable == wanted.as_bytes())
            });
            if !is_handler || !ours {
                continue;
            }
            let status = std::fs::read_to_string(dir.join("status")).unwrap_or_default();
            let hwm = status
                .lines()
                .find_map(|line| line.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok());
            peak = peak.max(hwm);
        }
        peak
    }

    /// Invokes the function with `payload` over the emulator's Invoke API.
    pub fn invoke(&mut self, payload: &[u8]) -> Invocation {
        let response = http_post(
            self.port,
            &format!("/2015-03-31/functions/{HANDLER_BIN}/invocations"),
            payload,
            INVOKE_TIMEOUT,
        )
        .unwrap_or_else(|e| {
            self.process.assert_running();
            panic!(
                "invoke failed: {e}; watch log:\n{}",
                tail(&self.process.output(), 60)
            )
        });
        let body: Value = serde_json::from_slice(&response.body).unwrap_or_else(|e| {
            panic!(
                "the emulator answered {} with a body that is not JSON ({e}): {}",
                response.status,
                String::from_utf8_lossy(&response.body)
            )
        });
        Invocation {
            status: response.status,
            body,
        }
    }

    pub fn invoke_file(&mut self, file: &Path) -> Invocation {
        let payload =
            std::fs::read(file).unwrap_or_else(|e| panic!("read {}: {e}", file.display()));
        self.invoke(&payload)
    }

    /// What the watch process and the function printed so far.
    pub fn output(&self) -> String {
        self.process.output()
    }

    pub fn log_path(&self) -> &Path {
        &self.process.log
    }
}

/// The emulator's answer: 200 with the handler's response, or an error status with
/// `{"errorType", "errorMessage"}`.
#[derive(Debug)]
pub struct Invocation {
    pub status: u16,
    pub body: Value,
}

impl Invocation {
    pub fn succeeded(&self) -> bool {
        self.status == 200 && self.body.get("errorType").is_none()
    }

    pub fn error_type(&self) -> Option<&str> {
        self.body.get("errorType").and_then(Value::as_str)
    }

    pub fn error_message(&self) -> &str {
        self.body
            .get("errorMessage")
            .and_then(Value::as_str)
            .unwrap_or("")
    }
}

pub struct HttpResponse {
    pub status: u16,
    pub body: Vec<u8>,
}

/// One HTTP/1.1 POST with `Connection: close`; reads the whole answer.
pub fn http_post(
    port: u16,
    path: &str,
    body: &[u8],
    timeout: Duration,
) -> std::io::Result<HttpResponse> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(timeout))?;
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    let mut reader = BufReader::new(stream);
    let (status, headers) = read_head(&mut reader)?;
    let status: u16 = status
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line {status:?}")))?;
    let body = read_body(&mut reader, &headers)?;
    Ok(HttpResponse { status, body })
}

/// The start line and headers (names lowercased) of an HTTP message.
fn read_head(reader: &mut impl BufRead) -> std::io::Result<(String, Vec<(String, String)>)> {
    let mut start = String::new();
    if reader.read_line(&mut start)? == 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "connection closed before any answer",
        ));
    }
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line.trim_end().is_empty() {
            break;
        }
        if let Some((name, value)) = line.trim_end().split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    Ok((start.trim_end().to_owned(), headers))
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

fn read_body(reader: &mut impl BufRead, headers: &[(String, String)]) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::new();
    if header(headers, "transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size)?;
            let size = usize::from_str_radix(size.trim().split(';').next().unwrap_or(""), 16)
                .map_err(|e| std::io::Error::other(format!("bad chunk size: {e}")))?;
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk)?;
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    } else if let Some(length) = header(headers, "content-length") {
        let length: usize = length
            .parse()
            .map_err(|e| std::io::Error::other(format!("bad content-length: {e}")))?;
        body.resize(length, 0);
        reader.read_exact(&mut body)?;
    } else {
        reader.read_to_end(&mut body)?;
    }
    Ok(body)
}

/// What the fault proxy does with one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// `500 InternalError`, as SNS answers when it fails.
    ServerError,
    /// `400 Throttling`, as SNS answers over its publish rate.
    Throttling,
    /// Reads the request, then closes the connection without answering.
    HangUp,
    /// Reads the request and never answers (until the proxy stops).
    Stall,
    /// Reads the request and answers `200` with a body that is not SNS's XML.
    Malformed,
}

#[derive(Default)]
struct Plan {
    next: VecDeque<Fault>,
    always: Option<Fault>,
    random: Option<RandomFaults>,
}

/// Each request fails with probability `percent`, with one of `faults` (xorshift from `state`).
struct RandomFaults {
    state: u64,
    percent: u64,
    faults: Vec<Fault>,
    /// Faults injected so far, by kind.
    injected: Vec<(Fault, usize)>,
}

impl RandomFaults {
    fn next_u64(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.state = x;
        x
    }

    fn draw(&mut self) -> Option<Fault> {
        if self.next_u64() % 100 >= self.percent || self.faults.is_empty() {
            return None;
        }
        let index = (self.next_u64() % self.faults.len() as u64) as usize;
        let fault = self.faults[index];
        match self.injected.iter_mut().find(|(f, _)| *f == fault) {
            Some((_, n)) => *n += 1,
            None => self.injected.push((fault, 1)),
        }
        Some(fault)
    }
}

/// An HTTP proxy in front of moto that fails requests as planned, then forwards them. Each
/// connection carries one request (the answer says `Connection: close`), so "the next N requests"
/// is exact whatever the client's connection pooling.
pub struct FaultProxy {
    pub port: u16,
    plan: Arc<Mutex<Plan>>,
    requests: Arc<AtomicUsize>,
    forwarded: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl FaultProxy {
    pub fn start(upstream_port: u16) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the fault proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let proxy = FaultProxy {
            port,
            plan: Arc::default(),
            requests: Arc::default(),
            forwarded: Arc::default(),
            stop: Arc::default(),
        };
        let (plan, requests, forwarded, stop) = (
            proxy.plan.clone(),
            proxy.requests.clone(),
            proxy.forwarded.clone(),
            proxy.stop.clone(),
        );
        thread::spawn(move || {
            for stream in listener.incoming() {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let fault = {
                    let mut plan = plan.lock().unwrap_or_else(|e| e.into_inner());
                    let planned = plan.next.pop_front().or(plan.always);
                    planned.or_else(|| plan.random.as_mut().and_then(RandomFaults::draw))
                };
                let (requests, forwarded, stop) =
                    (requests.clone(), forwarded.clone(), stop.clone());
                thread::spawn(move || {
                    let counts = (&*requests, &*forwarded, &*stop);
                    if let Err(e) = serve(stream, fault, upstream_port, counts) {
                        eprintln!("fault proxy: {e}");
                    }
                });
            }
        });
        proxy
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Fails the next requests with `faults`, in order, then forwards again.
    pub fn fail_next(&self, faults: &[Fault]) {
        let mut plan = self.plan.lock().unwrap_or_else(|e| e.into_inner());
        plan.next = faults.iter().copied().collect();
    }

    /// Fails every request with `fault` (`None`: forward everything).
    pub fn fail_always(&self, fault: Option<Fault>) {
        self.plan.lock().unwrap_or_else(|e| e.into_inner()).always = fault;
    }

    /// Fails each request with probability `percent` with one of `faults`, drawn from `seed`
    /// (reproducible); `percent` 0 stops it.
    pub fn fail_randomly(&self, seed: u64, percent: u64, faults: &[Fault]) {
        self.plan.lock().unwrap_or_else(|e| e.into_inner()).random =
            (percent > 0).then(|| RandomFaults {
                state: seed.max(1),
                percent,
                faults: faults.to_vec(),
                injected: Vec::new(),
            });
    }

    /// The random faults injected so far, by kind.
    pub fn random_faults_injected(&self) -> Vec<(Fault, usize)> {
        let plan = self.plan.lock().unwrap_or_else(|e| e.into_inner());
        plan.random
            .as_ref()
            .map(|r| r.injected.clone())
            .unwrap_or_default()
    }

    /// (requests received, requests forwarded to moto) since the last call; resets both.
    pub fn take_counts(&self) -> (usize, usize) {
        (
            self.requests.swap(0, Ordering::SeqCst),
            self.forwarded.swap(0, Ordering::SeqCst),
        )
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn serve(
    client: TcpStream,
    fault: Option<Fault>,
    upstream_port: u16,
    (requests, forwarded, stop): (&AtomicUsize, &AtomicUsize, &AtomicBool),
) -> std::io::Result<()> {
    client.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = BufReader::new(client.try_clone()?);
    let (start, headers) = match read_head(&mut reader) {
        Ok(head) => head,
        // A connection opened and closed without a request (the pool, or the proxy's own wake-up).
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
        Err(e) => return Err(e),
    };
    let body = read_body(&mut reader, &headers)?;
    requests.fetch_add(1, Ordering::SeqCst);
    let mut client = client;
    match fault {
        Some(Fault::HangUp) => {
            let _ = client.shutdown(Shutdown::Both);
            Ok(())
        }
        Some(Fault::Stall) => {
            let until = Instant::now() + Duration::from_secs(120);
            while !stop.load(Ordering::SeqCst) && Instant::now() < until {
                thread::sleep(Duration::from_millis(100));
            }
            Ok(())
        }
        Some(Fault::ServerError) => answer_error(&mut client, 500, "Receiver", "InternalError"),
        Some(Fault::Malformed) => {
            let body = "<html>not an SNS answer";
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/xml\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            client.write_all(head.as_bytes())?;
            client.write_all(body.as_bytes())?;
            client.flush()
        }
        Some(Fault::Throttling) => answer_error(&mut client, 400, "Sender", "Throttling"),
        None => {
            forwarded.fetch_add(1, Ordering::SeqCst);
            let mut upstream = TcpStream::connect(("127.0.0.1", upstream_port))?;
            upstream.set_read_timeout(Some(Duration::from_secs(60)))?;
            let mut head = format!("{start}\r\n");
            for (name, value) in &headers {
                if name != "connection" && name != "keep-alive" {
                    head.push_str(&format!("{name}: {value}\r\n"));
                }
            }
            head.push_str("connection: close\r\n\r\n");
            upstream.write_all(head.as_bytes())?;
            upstream.write_all(&body)?;
            let mut upstream = BufReader::new(upstream);
            let (status, answer_headers) = read_head(&mut upstream)?;
            let answer_body = read_body(&mut upstream, &answer_headers)?;
            let mut answer = format!("{status}\r\n");
            for (name, value) in &answer_headers {
                if !matches!(
                    name.as_str(),
                    "connection" | "keep-alive" | "transfer-encoding" | "content-length"
                ) {
                    answer.push_str(&format!("{name}: {value}\r\n"));
                }
            }
            answer.push_str(&format!(
                "content-length: {}\r\nconnection: close\r\n\r\n",
                answer_body.len()
            ));
            client.write_all(answer.as_bytes())?;
            client.write_all(&answer_body)?;
            client.flush()
        }
    }
}

fn answer_error(
    client: &mut TcpStream,
    status: u16,
    kind: &str,
    code: &str,
) -> std::io::Result<()> {
    let body = format!(
        "<ErrorResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\"><Error><Type>{kind}</Type>\
         <Code>{code}</Code><Message>injected by the test's fault proxy</Message></Error>\
         <RequestId>00000000-0000-0000-0000-000000000000</RequestId></ErrorResponse>"
    );
    let reason = if status == 500 {
        "Internal Server Error"
    } else {
        "Bad Request"
    };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: text/xml\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    client.write_all(head.as_bytes())?;
    client.write_all(body.as_bytes())?;
    client.flush()
}

/// What `lambda-code-watch scan <file>` prints: one alert document per line.
pub fn scan_output(file: &Path) -> Vec<String> {
    let output = Command::new(env!("CARGO_BIN_EXE_lambda-code-watch"))
        .arg("scan")
        .arg(file)
        .output()
        .expect("run lambda-code-watch scan");
    assert!(
        output.status.success(),
        "scan {} failed: {}",
        file.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .expect("scan prints UTF-8")
        .lines()
        .map(str::to_owned)
        .collect()
}
