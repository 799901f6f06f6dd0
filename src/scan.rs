//! Runs the rule over files, directories and stdin: the engine of the `scan` command (backtesting and
//! hunting over CloudTrail archives).
//!
//! Inputs are scanned in parallel, one file per worker, and their output is written in input order, so
//! a scan prints the same bytes whatever the number of workers. Each record goes through the literal
//! prefilter ([`rule::may_match`]) first and is parsed only when it could alert; the counts stay exact
//! because a record the prefilter rejects is, provably, quiet for the "other API" reason.
//!
//! This module owns the walk over paths, the per-record bookkeeping and the summary; it does not know
//! input formats (`input.rs`) or what makes an alert (`rule.rs`).

use crate::input::{self, RecordVisitor};
use crate::rule::{self, QuietReason};
use crate::{Alert, Record, Verdict, evaluate};
use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

/// How alerts are printed on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// One alert document per line (what the Lambda publishes).
    #[default]
    Json,
    /// The human rendering, alerts separated by a blank line.
    Text,
}

/// How to scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub format: Format,
    /// Report every record's verdict and why on stderr (parses every record; one worker).
    pub explain: bool,
    /// Number of inputs scanned at once.
    pub jobs: usize,
    /// Use the streaming decoder and the literal prefilter. Off: the simple reference decoder and a
    /// full parse of every record (same verdicts, slower; for checking the fast path).
    pub fast_path: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            format: Format::Json,
            explain: false,
            jobs: std::thread::available_parallelism().map_or(1, |n| n.get()),
            fast_path: true,
        }
    }
}

/// One thing to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Stdin,
    File(PathBuf),
}

impl fmt::Display for Input {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Input::Stdin => f.write_str("<stdin>"),
            Input::File(path) => write!(f, "{}", path.display()),
        }
    }
}

/// What a scan saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Inputs opened (files and stdin).
    pub inputs: u64,
    /// Records decoded (each alerts or is quiet).
    pub records: u64,
    pub alerts: u64,
    /// Quiet records by reason, in [`QuietReason::ALL`] order.
    pub quiet: [u64; 3],
    /// Inputs or parts of inputs that could not be read or parsed.
    pub errors: u64,
}

impl Summary {
    pub fn quiet(&self, reason: QuietReason) -> u64 {
        self.quiet[reason as usize]
    }

    fn add(&mut self, other: &Summary) {
        self.inputs += other.inputs;
        self.records += other.records;
        self.alerts += other.alerts;
        for (mine, theirs) in self.quiet.iter_mut().zip(other.quiet) {
            *mine += theirs;
        }
        self.errors += other.errors;
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "scanned {} input(s): {} record(s), {} alert(s), {} quiet (",
            self.inputs,
            self.records,
            self.alerts,
            self.quiet.iter().sum::<u64>()
        )?;
        for (i, reason) in QuietReason::ALL.into_iter().enumerate() {
            let sep = if i == 0 { "" } else { ", " };
            write!(f, "{sep}{} {}", self.quiet(reason), reason.as_str())?;
        }
        write!(f, "), {} error(s)", self.errors)
    }
}

/// Expands paths into inputs: `-` is stdin, a directory is every file below it (sorted, symlinked
/// directories not followed). A path that cannot be read is reported on `err` and counted.
pub fn collect_inputs(
    paths: &[PathBuf],
    summary: &mut Summary,
    err: &mut dyn Write,
) -> io::Result<Vec<Input>> {
    let mut inputs = Vec::new();
    if paths.is_empty() {
        inputs.push(Input::Stdin);
    }
    for path in paths {
        if path.as_os_str() == "-" {
            inputs.push(Input::Stdin);
        } else {
            walk(path, &mut inputs, summary, err)?;
        }
    }
    Ok(inputs)
}

fn walk(
    path: &Path,
    inputs: &mut Vec<Input>,
    summary: &mut Summary,
    err: &mut dyn Write,
) -> io::Result<()> {
    let mut report = |e: io::Error| {
        summary.errors += 1;
        writeln!(err, "{}: {e}", path.display())
    };
    let metadata = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) => return report(e),
    };
    if !metadata.is_dir() {
        inputs.push(Input::File(path.to_path_buf()));
        return Ok(());
    }
    let mut entries = match fs::read_dir(path).and_then(|d| d.collect::<io::Result<Vec<_>>>()) {
        Ok(entries) => entries,
        Err(e) => return report(e),
    };
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let is_symlinked_dir = entry.file_type().is_ok_and(|t| t.is_symlink())
            && fs::metadata(entry.path()).is_ok_and(|m| m.is_dir());
        if !is_symlinked_dir {
            walk(&entry.path(), inputs, summary, err)?;
        }
    }
    Ok(())
}

/// Scans `inputs`, writing alerts to `out` and problems (and, with `explain`, every verdict) to `err`.
/// Output is in input order whatever the number of jobs.
pub fn scan(
    inputs: &[Input],
    options: &Options,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> io::Result<Summary> {
    let jobs = if options.explain {
        1
    } else {
        options.jobs.clamp(1, inputs.len().max(1))
    };
    let mut summary = Summary::default();
    if jobs == 1 {
        for input in inputs {
            summary.add(&scan_input(input, options, out, err)?);
        }
        return Ok(summary);
    }

    // Workers take the next input, scan it into memory buffers (alerts are rare, so these stay small)
    // and hand them to this thread, which writes them in input order.
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| -> io::Result<Summary> {
        let (sender, receiver) =
            mpsc::channel::<(usize, io::Result<(Summary, Vec<u8>, Vec<u8>)>)>();
        for _ in 0..jobs {
            let sender = sender.clone();
            let next = &next;
            scope.spawn(move || {
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(input) = inputs.get(index) else {
                        break;
                    };
                    let (mut out_buf, mut err_buf) = (Vec::new(), Vec::new());
                    let result = scan_input(input, options, &mut out_buf, &mut err_buf)
                        .map(|s| (s, out_buf, err_buf));
                    if sender.send((index, result)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(sender);
        let mut pending = std::collections::BTreeMap::new();
        let mut written = 0;
        for (index, result) in receiver {
            pending.insert(index, result);
            while let Some(result) = pending.remove(&written) {
                let (input_summary, out_buf, err_buf) = match result {
                    Ok(done) => done,
                    Err(e) => {
                        // Stop the workers; the error (writing to memory cannot fail, so this is
                        // unexpected) is the scan's result.
                        next.store(inputs.len(), Ordering::Relaxed);
                        return Err(e);
                    }
                };
                out.write_all(&out_buf)?;
                err.write_all(&err_buf)?;
                summary.add(&input_summary);
                written += 1;
            }
        }
        Ok(summary)
    })
}

/// Scans one input. Read and decompression errors are reported and counted, not returned: only a
/// failure to write output is an `Err`.
fn scan_input(
    input: &Input,
    options: &Options,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> io::Result<Summary> {
    let name = input.to_string();
    let mut visitor = RuleVisitor {
        name: &name,
        options,
        summary: Summary {
            inputs: 1,
            ..Summary::default()
        },
        out,
        err,
        write_error: None,
    };
    let decoded = match input {
        Input::Stdin => decode(io::stdin().lock(), options, &mut visitor),
        Input::File(path) => {
            fs::File::open(path).and_then(|file| decode(file, options, &mut visitor))
        }
    };
    if let Some(e) = visitor.write_error.take() {
        return Err(e);
    }
    if let Err(e) = decoded {
        visitor.summary.errors += 1;
        writeln!(visitor.err, "{name}: {e}")?;
    }
    Ok(visitor.summary)
}

fn decode(
    reader: impl io::Read,
    options: &Options,
    visitor: &mut RuleVisitor<'_>,
) -> io::Result<()> {
    if options.fast_path && !options.explain {
        input::decode(reader, visitor)
    } else {
        input::decode_reference(reader, visitor)
    }
}

/// Applies the rule to each record an input yields and keeps the books.
struct RuleVisitor<'a> {
    name: &'a str,
    options: &'a Options,
    summary: Summary,
    out: &'a mut dyn Write,
    err: &'a mut dyn Write,
    /// The first failure to write output; decoding cannot be interrupted, so it is kept for later.
    write_error: Option<io::Error>,
}

impl RuleVisitor<'_> {
    fn emit(&mut self, write: impl FnOnce(&mut dyn Write, &mut dyn Write) -> io::Result<()>) {
        if self.write_error.is_none()
            && let Err(e) = write(self.out, self.err)
        {
            self.write_error = Some(e);
        }
    }
}

impl RecordVisitor for RuleVisitor<'_> {
    fn record(&mut self, json: &[u8], line: u64) {
        let fast = self.options.fast_path && !self.options.explain;
        if fast && !rule::may_match(json) {
            self.summary.records += 1;
            self.summary.quiet[QuietReason::OtherApi as usize] += 1;
            return;
        }
        let record = match Record::from_json(json) {
            Ok(record) => record,
            Err(e) => return self.error(line, &e.to_string()),
        };
        self.summary.records += 1;
        let (name, explain, format) = (self.name, self.options.explain, self.options.format);
        match evaluate(&record) {
            Verdict::Alert(person) => {
                let alert = Alert::new(&record, &person);
                self.summary.alerts += 1;
                self.emit(|out, err| {
                    match format {
                        Format::Json => writeln!(out, "{}", alert.to_json())?,
                        Format::Text => writeln!(out, "{}", alert.to_text())?,
                    }
                    if explain {
                        writeln!(err, "{name}:{line}: alert: {}", alert.title)?;
                    }
                    Ok(())
                });
            }
            Verdict::Quiet(reason) => {
                self.summary.quiet[reason as usize] += 1;
                if explain {
                    self.emit(|_, err| {
                        writeln!(
                            err,
                            "{name}:{line}: quiet ({}): {}; eventName={} eventID={} userIdentity.type={}",
                            reason.as_str(),
                            reason.describe(),
                            record.event_name().unwrap_or("-"),
                            record.event_id().unwrap_or("-"),
                            record.identity_type().unwrap_or("-"),
                        )
                    });
                }
            }
        }
    }

    fn error(&mut self, line: u64, reason: &str) {
        self.summary.errors += 1;
        let name = self.name;
        self.emit(|_, err| writeln!(err, "{name}:{line}: {reason}"));
    }
}
