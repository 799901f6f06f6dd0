//! Shared by the integration tests: where the sample events and the corpus are, and running the CLI.
#![allow(dead_code)] // each test file uses a different part

use std::io::Write;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use lambda_code_watch::input::{RecordVisitor, decode};
use serde_json::Value;

pub fn repo_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.json` file below `events/<sub>`, sorted.
pub fn event_files(sub: &str) -> Vec<PathBuf> {
    fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, files);
            } else if path.extension().is_some_and(|e| e == "json") {
                files.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(&repo_dir().join("events").join(sub), &mut files);
    files.sort();
    assert!(!files.is_empty(), "no sample events under events/{sub}");
    files
}

/// The one skip policy of the tests, for a prerequisite (a tool, the corpus) that is missing:
/// with `CI=true` (which `.ci/run` sets) the test fails; elsewhere it says loudly that it did not
/// run, straight to the process's stderr (`cargo test` would hide an `eprintln!` of a passing
/// test), and the caller returns.
pub fn unavailable(what: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{what}; with CI=true a missing prerequisite fails the test");
    }
    let _ = writeln!(
        std::io::stderr(),
        "\n*** SKIPPED ***: {what}. Run scripts/test (it installs the tools into .venv); the corpus \
         is read from ../shared/corpus or $LCW_CORPUS_DIR.\n"
    );
}

/// The shared CloudTrail corpus: `$LCW_CORPUS_DIR`, else `../shared/corpus` beside the repo;
/// `None` when it is missing (see [`unavailable`]).
pub fn corpus_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("LCW_CORPUS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_dir().join("../shared/corpus"));
    if dir.join("real").is_dir() {
        return Some(dir);
    }
    unavailable(&format!(
        "the CloudTrail corpus is missing at {}",
        dir.display()
    ));
    None
}

/// The `.ndjson` files of one corpus folder (`real` or `fixtures`), sorted.
pub fn corpus_files(corpus: &Path, folder: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus.join(folder))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "ndjson"))
        .collect();
    files.sort();
    files
}

/// Runs the CLI with `args`, feeding `stdin`.
pub fn cli(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_lambda-code-watch"))
        .args(args)
        .current_dir(repo_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the CLI binary runs");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

pub fn stdout_lines(output: &Output) -> Vec<serde_json::Value> {
    String::from_utf8(output.stdout.clone())
        .expect("stdout is UTF-8")
        .lines()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {l}"))
        })
        .collect()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The numbers in the summary line: records, alerts, errors.
pub fn summary_counts(output: &Output) -> (u64, u64, u64) {
    let err = stderr(output);
    let line = err
        .lines()
        .rev()
        .find(|l| l.starts_with("scanned "))
        .unwrap_or_else(|| panic!("no summary line in stderr:\n{err}"));
    let number_before = |word: &str| -> u64 {
        let end = line
            .find(word)
            .unwrap_or_else(|| panic!("no '{word}' in '{line}'"));
        line[..end]
            .trim_end()
            .rsplit(' ')
            .next()
            .unwrap()
            .trim_start_matches('(')
            .parse()
            .unwrap()
    };
    (
        number_before(" record(s)"),
        number_before(" alert(s)"),
        number_before(" error(s)"),
    )
}

/// Kills `child` and everything in its process group (children are started as group leaders), then
/// reaps it. For Drop guards: a test that panics must leave no server or build running.
pub fn kill_group(child: &mut std::process::Child) {
    let group = format!("-{}", child.id());
    let _ = Command::new("kill")
        .args(["-KILL", "--", &group])
        .stderr(Stdio::null())
        .status();
    let _ = child.kill();
    let _ = child.wait();
}

/// Everything a decoder reported, in order.
#[derive(Debug, Default)]
pub struct Collected {
    pub records: Vec<(Vec<u8>, u64)>,
    pub errors: Vec<(u64, String)>,
}

impl RecordVisitor for Collected {
    fn record(&mut self, json: &[u8], line: u64) -> ControlFlow<()> {
        self.records.push((json.to_vec(), line));
        ControlFlow::Continue(())
    }

    fn error(&mut self, line: u64, reason: &str) -> ControlFlow<()> {
        self.errors.push((line, reason.to_string()));
        ControlFlow::Continue(())
    }
}

impl Collected {
    pub fn values(&self) -> Vec<Value> {
        self.records
            .iter()
            .map(|(json, line)| {
                serde_json::from_slice(json).unwrap_or_else(|error| {
                    panic!(
                        "record at line {line} does not parse ({error}): {}",
                        String::from_utf8_lossy(json)
                    )
                })
            })
            .collect()
    }

    pub fn lines(&self) -> Vec<u64> {
        self.records.iter().map(|(_, line)| *line).collect()
    }
}

/// What the fast decoder reports for `input`.
pub fn fast(input: &[u8]) -> Collected {
    let mut collected = Collected::default();
    decode(input, &mut collected).expect("plain input never fails to read");
    collected
}

/// A small deterministic generator (xorshift), so that failures replay.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number below `bound` (0 for a bound of 0).
    pub fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound.max(1) as u64) as usize
    }
}
