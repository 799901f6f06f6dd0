//! Runs the rule over files, directories and stdin: the engine of the `scan` command (backtesting and
//! hunting over CloudTrail archives).
//!
//! Inputs are scanned in parallel, one file per worker (a large plain file in parts, `scan/split.rs`),
//! and their output is written in input order, so a scan prints the same bytes whatever the number
//! of workers. Each record goes through the literal prefilter ([`rule::may_match`]) first and is
//! parsed only when it could alert; the counts stay exact because a record the prefilter rejects is,
//! provably, quiet for the "other API" reason.
//!
//! With a tuning policy, suppressed alerts are counted per entry (and shown with `--explain`), and
//! an alert that an expired entry would have hidden is reported on stderr every time. With
//! grouping (`--group`), alerts are held until every input is read (alerts are rare, so this is
//! small), then replayed in `eventTime` order through the same grouping logic the Lambda applies
//! (`grouping.rs`), and what the team would have received is printed: each window's first alert,
//! and a summary for each window that held more.
//!
//! This module owns the walk over paths, the per-record bookkeeping and the summary; it does not know
//! input formats (`input.rs`), what makes an alert (`rule.rs`, `policy.rs`) or how grouping decides
//! (`grouping.rs`). Inputs that are not local files (S3
//! objects, `s3.rs`) come in as [`Input::Stream`]: opened by their maker, scanned and ordered here like
//! files, so every scan setting applies to them unchanged.
//!
//! A time window ([`Options::window`]) hides alerts whose `eventTime` is outside it (counted in
//! [`Summary::outside_window`]); quiet records are counted whatever their time, because telling
//! their time would mean parsing every record the prefilter skips.

use crate::alert::{Alert, printable};
use crate::grouping::{Notification, Replay, ReplayCounts, Window};
use crate::input::{self, PartEnd, RecordVisitor};
use crate::rule::QuietReason;
use crate::window::TimeWindow;
use crate::{DecodeError, Detector, Outcome, Record};
use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

mod ordered;
mod split;

pub use split::DEFAULT_PART_BYTES;

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
    /// Number of inputs (or parts of a large plain file) scanned at once.
    pub jobs: usize,
    /// With more than one job, a plain file of at least twice this many bytes is decoded in parts
    /// of about this size at once, with the same output (`scan/split.rs`); 0: never. Not a user
    /// setting: tests make it small to cut small files in many places.
    pub part_bytes: u64,
    /// Most bytes one gzip input may inflate to; past it, the input ends with an error.
    pub max_inflated_bytes: u64,
    /// Test oracle, not a user setting: decode with the simple reference decoder (whole input in
    /// memory, no caps) and parse every record, instead of the streaming decoder and the literal
    /// prefilter. Tests and `examples/scan_reference.rs` use it to show both print the same bytes.
    pub reference_decoder: bool,
    /// Alerts whose `eventTime` is outside this window are not shown (unbounded by default).
    pub window: TimeWindow,
    /// Told each input's summary as soon as a worker finishes it (e.g. a progress bar).
    pub on_input: InputHook,
    /// Group alerts as the Lambda does (by dedup key, in windows of this length, by `eventTime`)
    /// and print what would have been delivered. `None`: print every alert.
    pub group: Option<Window>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            format: Format::Json,
            explain: false,
            jobs: std::thread::available_parallelism().map_or(1, |n| n.get()),
            part_bytes: DEFAULT_PART_BYTES,
            max_inflated_bytes: input::DEFAULT_MAX_INFLATED_BYTES,
            reference_decoder: false,
            window: TimeWindow::default(),
            on_input: InputHook::default(),
            group: None,
        }
    }
}

type InputDone = dyn Fn(&Summary) + Send + Sync;

/// A function called with each input's summary when it has been scanned (from the worker thread,
/// not in input order); none by default.
#[derive(Clone, Default)]
pub struct InputHook(Option<Arc<InputDone>>);

impl InputHook {
    pub fn new(hook: impl Fn(&Summary) + Send + Sync + 'static) -> InputHook {
        InputHook(Some(Arc::new(hook)))
    }

    fn done(&self, summary: &Summary) {
        if let Some(hook) = &self.0 {
            hook(summary);
        }
    }
}

impl fmt::Debug for InputHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "InputHook(Some)"
        } else {
            "InputHook(None)"
        })
    }
}

/// Two hooks are equal when they are the same function (or both absent).
impl PartialEq for InputHook {
    fn eq(&self, other: &InputHook) -> bool {
        match (&self.0, &other.0) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (a, b) => a.is_none() && b.is_none(),
        }
    }
}

impl Eq for InputHook {}

/// One thing to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Stdin,
    File(PathBuf),
    /// Bytes from elsewhere (an S3 object), opened when a worker reaches it.
    Stream(Stream),
}

type Open = dyn Fn() -> io::Result<Box<dyn io::Read + Send>> + Send + Sync;

/// An input that is not a local file: its name for people (e.g. `s3://bucket/key`) and how to read
/// it. Opening may wait for bytes still on the way; a failure to open or read is an error line for
/// that input, like an unreadable file.
#[derive(Clone)]
pub struct Stream {
    name: String,
    open: Arc<Open>,
}

impl Stream {
    pub fn new(
        name: impl Into<String>,
        open: impl Fn() -> io::Result<Box<dyn io::Read + Send>> + Send + Sync + 'static,
    ) -> Stream {
        Stream {
            name: name.into(),
            open: Arc::new(open),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

impl fmt::Debug for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Stream").field(&self.name).finish()
    }
}

/// Streams are told apart by name (one name, one object).
impl PartialEq for Stream {
    fn eq(&self, other: &Stream) -> bool {
        self.name == other.name
    }
}

impl Eq for Stream {}

/// The input's name as people read it: control and format characters in a file name are escaped.
impl fmt::Display for Input {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Input::Stdin => f.write_str("<stdin>"),
            Input::File(path) => f.write_str(&printable(&path.to_string_lossy())),
            Input::Stream(stream) => f.write_str(&printable(&stream.name)),
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
    pub quiet: [u64; QuietReason::ALL.len()],
    /// Inputs or parts of inputs that could not be read or parsed.
    pub errors: u64,
    /// Alerts not shown because their `eventTime` is outside [`Options::window`].
    pub outside_window: u64,
    /// A policy was applied: the summary shows the suppressed count (even when 0).
    pub policy: bool,
    /// Alerts a policy entry hid, by the entry's 1-based number.
    pub suppressed: BTreeMap<usize, u64>,
    /// Alerts an expired entry would have hidden (delivered), by the entry's number.
    pub expired_matches: BTreeMap<usize, u64>,
    /// With grouping: what the team would have received.
    pub grouping: Option<ReplayCounts>,
}

impl Summary {
    pub fn quiet(&self, reason: QuietReason) -> u64 {
        self.quiet[reason as usize]
    }

    /// Alerts suppressed by any entry.
    pub fn suppressed_total(&self) -> u64 {
        self.suppressed.values().sum()
    }

    fn add(&mut self, other: &Summary) {
        self.inputs += other.inputs;
        self.records += other.records;
        self.alerts += other.alerts;
        for (mine, theirs) in self.quiet.iter_mut().zip(other.quiet) {
            *mine += theirs;
        }
        self.errors += other.errors;
        self.outside_window += other.outside_window;
        self.policy |= other.policy;
        for (entry, count) in &other.suppressed {
            *self.suppressed.entry(*entry).or_default() += count;
        }
        for (entry, count) in &other.expired_matches {
            *self.expired_matches.entry(*entry).or_default() += count;
        }
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "scanned {} input(s): {} record(s), {} alert(s), ",
            self.inputs, self.records, self.alerts,
        )?;
        if self.policy {
            write!(f, "{} suppressed, ", self.suppressed_total())?;
        }
        write!(f, "{} quiet (", self.quiet.iter().sum::<u64>())?;
        for (i, reason) in QuietReason::RULE.into_iter().enumerate() {
            let sep = if i == 0 { "" } else { ", " };
            write!(f, "{sep}{} {}", self.quiet(reason), reason.as_str())?;
        }
        // Only a detector told who the canary is finds its calls: shown when there are some.
        if self.quiet(QuietReason::Canary) > 0 {
            write!(f, ", {} canary", self.quiet(QuietReason::Canary))?;
        }
        write!(f, "), {} error(s)", self.errors)?;
        if self.outside_window > 0 {
            write!(f, ", {} outside the time window", self.outside_window)?;
        }
        Ok(())
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
            walk(path, true, &mut inputs, summary, err)?;
        }
    }
    Ok(inputs)
}

/// Adds the inputs at `path`. A path named on the command line is read whatever it is (a FIFO, a
/// device: the user asked for it); below a directory only regular files are, because a FIFO
/// would block the scan and `/dev/zero` would never end; the others are noted on `err`.
fn walk(
    path: &Path,
    named: bool,
    inputs: &mut Vec<Input>,
    summary: &mut Summary,
    err: &mut dyn Write,
) -> io::Result<()> {
    let mut report = |e: io::Error| {
        summary.errors += 1;
        writeln!(err, "{}: {e}", printable(&path.to_string_lossy()))
    };
    let metadata = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) => return report(e),
    };
    if !metadata.is_dir() {
        if named || metadata.is_file() {
            inputs.push(Input::File(path.to_path_buf()));
        } else {
            writeln!(
                err,
                "{}: skipped: not a regular file ({}); name it on the command line to read it",
                printable(&path.to_string_lossy()),
                special_kind(&metadata.file_type())
            )?;
        }
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
            walk(&entry.path(), false, inputs, summary, err)?;
        }
    }
    Ok(())
}

/// What kind of file a skipped one is, for the note on stderr.
fn special_kind(file_type: &fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if file_type.is_fifo() {
            return "a FIFO";
        }
        if file_type.is_char_device() {
            return "a character device";
        }
        if file_type.is_block_device() {
            return "a block device";
        }
        if file_type.is_socket() {
            return "a socket";
        }
    }
    let _ = file_type;
    "a special file"
}

/// Scans `inputs`, writing alerts to `out` and problems (and, with `explain`, every verdict) to `err`.
/// Output is in input order whatever the number of jobs. A failure to write (e.g. the reader of
/// `out` went away) stops the scan at once and is the result.
pub fn scan(
    inputs: &[Input],
    detector: &Detector,
    options: &Options,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> io::Result<Summary> {
    let stop = AtomicBool::new(false);
    let mut summary = Summary::default();
    let mut held = Vec::new();
    let parallel = options.jobs > 1 && !options.explain && (inputs.len() > 1 || can_split(options));
    let (units, splits) = if parallel {
        units(inputs, options)
    } else {
        (Vec::new(), Vec::new())
    };
    if units.len() < 2 {
        for input in inputs {
            let (input_summary, alerts) =
                scan_input(input, None, detector, options, &stop, out, err)?;
            summary.add(&input_summary);
            held.extend(alerts);
        }
        return finish(summary, held, options, out);
    }

    // Workers take the next unit (an input, or a part of a large plain file) and scan it into an
    // ordered writer, which streams the output of the unit being written and holds a bounded
    // amount of the others' (see `ordered.rs`).
    let jobs = options.jobs.min(units.len());
    let next = AtomicUsize::new(0);
    let ordered = ordered::Ordered::new();
    // With grouping, each unit's held alerts, by unit index (replayed in order at the end).
    let held_by_input = std::sync::Mutex::new(Vec::new());
    let summary = std::thread::scope(|scope| {
        for _ in 0..jobs {
            let (next, stop, ordered, held_by_input) = (&next, &stop, &ordered, &held_by_input);
            let (units, splits) = (&units, &splits);
            scope.spawn(move || {
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(unit) = units.get(index) else {
                        break;
                    };
                    // Made first, so that a part that is never scanned still says where it ended.
                    let part = unit
                        .part
                        .map(|(split, part)| split::Cursor::new(&splits[split], ordered, part));
                    if !ordered.start(index) {
                        break;
                    }
                    let mut finished = Finished {
                        ordered,
                        index,
                        result: None,
                    };
                    let mut out_writer = ordered.writer(index, ordered::Stream::Out);
                    let mut err_writer = ordered.writer(index, ordered::Stream::Err);
                    let result = scan_input(
                        unit.input,
                        part,
                        detector,
                        options,
                        stop,
                        &mut out_writer,
                        &mut err_writer,
                    )
                    .and_then(|(summary, alerts)| {
                        out_writer.close()?;
                        err_writer.close()?;
                        if !alerts.is_empty() {
                            held_by_input
                                .lock()
                                .unwrap_or_else(|poisoned| poisoned.into_inner())
                                .push((index, alerts));
                        }
                        Ok(summary)
                    });
                    finished.result = Some(result);
                }
            });
        }
        let written = ordered.write_in_order(units.len(), out, err);
        if written.is_err() {
            // Stop the workers (the one decoding stops at its next record) and give up.
            stop.store(true, Ordering::Relaxed);
            next.store(units.len(), Ordering::Relaxed);
        }
        written
    })?;
    let mut held_by_input = held_by_input
        .into_inner()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    // A void part's alerts were found by another part's worker too.
    held_by_input.retain(|(index, _)| !ordered.is_void(*index));
    held_by_input.sort_by_key(|(index, _)| *index);
    let held = held_by_input
        .into_iter()
        .flat_map(|(_, alerts)| alerts)
        .collect();
    finish(summary, held, options, out)
}

/// Whether a scan with these options may cut large plain files into parts.
fn can_split(options: &Options) -> bool {
    // A progress hook counts inputs as they are done; parts would count one file many times.
    options.part_bytes > 0 && !options.reference_decoder && options.on_input.0.is_none()
}

/// Where a scan with several workers would cut the file at `path` into parts of about
/// `part_bytes` ([`Options::part_bytes`]): each part's first offset, `[0]` when it would be
/// scanned whole.
pub fn part_starts(path: &Path, part_bytes: u64) -> Vec<u64> {
    split::Split::plan(path, part_bytes, 0).map_or_else(
        || vec![0],
        |split| (0..split.parts()).map(|part| split.start(part)).collect(),
    )
}

/// What one worker scans at a time.
struct Unit<'a> {
    input: &'a Input,
    /// For a part of a file: which [`split::Split`] and which of its parts.
    part: Option<(usize, usize)>,
}

/// The inputs as units for the workers: each large plain file cut into parts (see `split.rs`),
/// the rest whole.
fn units<'a>(inputs: &'a [Input], options: &Options) -> (Vec<Unit<'a>>, Vec<split::Split>) {
    let mut units = Vec::with_capacity(inputs.len());
    let mut splits = Vec::new();
    for input in inputs {
        let plan = match input {
            Input::File(path) if can_split(options) => {
                split::Split::plan(path, options.part_bytes, units.len())
            }
            _ => None,
        };
        let Some(plan) = plan else {
            units.push(Unit { input, part: None });
            continue;
        };
        for part in 0..plan.parts() {
            units.push(Unit {
                input,
                part: Some((splits.len(), part)),
            });
        }
        splits.push(plan);
    }
    (units, splits)
}

/// With grouping: replays the held alerts and prints what would have been delivered.
fn finish(
    mut summary: Summary,
    held: Vec<Alert>,
    options: &Options,
    out: &mut dyn Write,
) -> io::Result<Summary> {
    let Some(window) = options.group else {
        return Ok(summary);
    };
    let mut replay = Replay::new(window);
    for alert in held {
        replay.push(alert);
    }
    let (notifications, counts) = replay.finish();
    for notification in notifications {
        match (notification, options.format) {
            (Notification::Alert(alert), Format::Json) => writeln!(out, "{}", alert.to_json())?,
            (Notification::Alert(alert), Format::Text) => writeln!(out, "{}", alert.to_text())?,
            (Notification::Summary(group), Format::Json) => writeln!(out, "{}", group.to_json())?,
            (Notification::Summary(group), Format::Text) => writeln!(out, "{}", group.to_text())?,
        }
    }
    summary.grouping = Some(counts);
    Ok(summary)
}

/// Hands an input's result to the ordered writer when dropped, so that even a worker that
/// panicked does not leave the writing thread waiting for it.
struct Finished<'a> {
    ordered: &'a ordered::Ordered,
    index: usize,
    result: Option<io::Result<Summary>>,
}

impl Drop for Finished<'_> {
    fn drop(&mut self) {
        let result = self
            .result
            .take()
            .unwrap_or_else(|| Err(io::Error::other("the scanning thread failed")));
        self.ordered.finish(self.index, result);
    }
}

/// Scans one input, or with `cursor` one part of a file. Read and decompression errors are
/// reported and counted, not returned: only a failure to write output is an `Err`. With
/// grouping, the alerts are returned instead of printed.
fn scan_input(
    input: &Input,
    mut cursor: Option<split::Cursor<'_>>,
    detector: &Detector,
    options: &Options,
    stop: &AtomicBool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> io::Result<(Summary, Vec<Alert>)> {
    let name = input.to_string();
    let part = cursor.as_ref().map(split::Cursor::part);
    let mut visitor = RuleVisitor {
        name: &name,
        detector,
        options,
        stop,
        part,
        summary: Summary {
            // A file cut into parts counts once, with its first part.
            inputs: u64::from(part.is_none_or(|(_, part)| part == 0)),
            policy: !detector.policy().is_original(),
            ..Summary::default()
        },
        out,
        err,
        write_error: None,
        held: Vec::new(),
    };
    let decoded = match input {
        Input::Stdin => decode(io::stdin().lock(), options, &mut visitor, None),
        Input::File(path) => fs::File::open(path).and_then(|mut file| {
            if let Some(cursor) = &cursor {
                io::Seek::seek(&mut file, io::SeekFrom::Start(cursor.start()))?;
            }
            let part = cursor.as_mut().map(|cursor| cursor as &mut dyn PartEnd);
            decode(file, options, &mut visitor, part)
        }),
        Input::Stream(stream) => {
            (stream.open)().and_then(|reader| decode(reader, options, &mut visitor, None))
        }
    };
    // Where the part ended is known now: the parts after it may go on.
    drop(cursor);
    if let Some(e) = visitor.write_error.take() {
        return Err(e);
    }
    if let Err(e) = decoded {
        visitor.summary.errors += 1;
        writeln!(visitor.err, "{name}: {}", printable(&e.to_string()))?;
    }
    // A file cut into parts is never empty: each part begins with a '{', which is a record or an
    // error for whichever part's decoder reads it.
    if visitor.summary.records == 0 && visitor.summary.errors == 0 && part.is_none() {
        // An input with nothing in it is almost never what was meant: in `aws cloudtrail
        // lookup-events ... | lambda-code-watch scan`, it is what a failed `aws` (no credentials,
        // wrong region) leaves behind, and a clean-looking summary must not hide that.
        writeln!(
            visitor.err,
            "{name}: warning: no CloudTrail records in this input (is it empty, or did the command \
             producing it fail?)"
        )?;
    }
    options.on_input.done(&visitor.summary);
    Ok((visitor.summary, visitor.held))
}

/// Decodes one input, or with `part` one part of a file (never with the reference decoder: see
/// [`can_split`]).
fn decode(
    reader: impl io::Read,
    options: &Options,
    visitor: &mut RuleVisitor<'_>,
    part: Option<&mut dyn PartEnd>,
) -> io::Result<()> {
    if options.reference_decoder {
        return input::decode_reference(reader, visitor);
    }
    let limits = input::Limits {
        max_inflated_bytes: options.max_inflated_bytes,
    };
    match part {
        Some(part) => input::decode_part(reader, visitor, &limits, part),
        None => input::decode_with_limits(reader, visitor, &limits),
    }
}

/// Applies the detector to each record an input yields and keeps the books.
struct RuleVisitor<'a> {
    name: &'a str,
    detector: &'a Detector,
    options: &'a Options,
    /// Set when the scan must end (output closed): decoding stops at the next record.
    stop: &'a AtomicBool,
    /// For a part of a file: its split and number; line numbers are then the part's own until
    /// the part is confirmed, and decoding stops if it is voided.
    part: Option<(&'a split::Split, usize)>,
    summary: Summary,
    out: &'a mut dyn Write,
    err: &'a mut dyn Write,
    /// The first failure to write output; it stops decoding and is the input's result.
    write_error: Option<io::Error>,
    /// With grouping: the alerts, to be replayed once every input is read.
    held: Vec<Alert>,
}

impl RuleVisitor<'_> {
    fn emit(
        &mut self,
        write: impl FnOnce(&mut dyn Write, &mut dyn Write) -> io::Result<()>,
    ) -> ControlFlow<()> {
        if let Err(e) = write(self.out, self.err) {
            self.write_error = Some(e);
            // A void part's output is refused: only this part stops.
            if !self.void() {
                self.stop.store(true, Ordering::Relaxed);
            }
        }
        self.flow()
    }

    fn flow(&self) -> ControlFlow<()> {
        if self.write_error.is_some() || self.stop.load(Ordering::Relaxed) || self.void() {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    }

    /// This is a part of a file that another part's decoder covers.
    fn void(&self) -> bool {
        self.part.is_some_and(|(split, part)| split.is_void(part))
    }

    /// Line `line` of the input, or of the part, in the input's numbering: for a part, known
    /// once the part is confirmed (this waits for that); `None` when the part is void.
    fn input_line(&self, line: u64) -> Option<u64> {
        match self.part {
            None => Some(line),
            Some((split, part)) => split.file_line(part, line),
        }
    }

    /// The outcome for `json`, and the parsed record when explaining (which shows its fields).
    /// `unicode_escape`: the decoder's word on `\u` escapes in `json` (true when unknown).
    fn assess(
        &self,
        json: &[u8],
        unicode_escape: bool,
    ) -> Result<(Outcome, Option<Record>), DecodeError> {
        if self.options.explain || self.options.reference_decoder {
            let record = Record::from_json(json)?;
            Ok((self.detector.assess(&record), Some(record)))
        } else {
            Ok((self.detector.assess_decoded(json, unicode_escape)?, None))
        }
    }
}

impl RecordVisitor for RuleVisitor<'_> {
    fn record(&mut self, json: &[u8], line: u64) -> ControlFlow<()> {
        self.record_checked(json, line, true)
    }

    fn record_checked(&mut self, json: &[u8], line: u64, unicode_escape: bool) -> ControlFlow<()> {
        let (outcome, record) = match self.assess(json, unicode_escape) {
            Ok(assessed) => assessed,
            Err(e) => return self.error(line, &e.to_string()),
        };
        self.summary.records += 1;
        let (name, explain, format) = (self.name, self.options.explain, self.options.format);
        let shows_line = explain
            || matches!(&outcome, Outcome::Alert(alert) if !alert.expired_suppressions.is_empty());
        let line = match shows_line.then(|| self.input_line(line)) {
            None => line,
            Some(Some(line)) => line,
            Some(None) => return ControlFlow::Break(()),
        };
        let group = self.options.group.is_some();
        match outcome {
            Outcome::Alert(alert)
                if !self
                    .options
                    .window
                    .contains_event_time(alert.event_time.as_deref()) =>
            {
                self.summary.outside_window += 1;
                self.emit(|_, err| {
                    if explain {
                        writeln!(
                            err,
                            "{name}:{line}: outside the time window: {}",
                            printable(&alert.title)
                        )?;
                    }
                    Ok(())
                })
            }
            Outcome::Alert(alert) => {
                self.summary.alerts += 1;
                for expired in &alert.expired_suppressions {
                    *self
                        .summary
                        .expired_matches
                        .entry(expired.number)
                        .or_default() += 1;
                }
                let flow = self.emit(|out, err| {
                    for expired in &alert.expired_suppressions {
                        writeln!(
                            err,
                            "{name}:{line}: {} (\"{}\") expired after {}: it would have hidden this alert, which is delivered: {}",
                            expired.entry,
                            printable(&expired.reason),
                            expired.expired_after,
                            printable(&alert.title)
                        )?;
                    }
                    if !group {
                        match format {
                            Format::Json => writeln!(out, "{}", alert.to_json())?,
                            Format::Text => writeln!(out, "{}", alert.to_text())?,
                        }
                    }
                    // Out at once: the scan may next wait on a slow input (a pipe, a FIFO named
                    // on the command line) or be killed, and an alert found must not wait with it.
                    out.flush()?;
                    if explain {
                        writeln!(err, "{name}:{line}: alert: {}", printable(&alert.title))?;
                    }
                    Ok(())
                });
                if group {
                    self.held.push(*alert);
                }
                flow
            }
            Outcome::Suppressed(suppressed) => {
                *self
                    .summary
                    .suppressed
                    .entry(suppressed.number)
                    .or_default() += 1;
                if explain {
                    self.emit(|_, err| {
                        writeln!(
                            err,
                            "{name}:{line}: suppressed by {} (\"{}\"): {}; eventID={}",
                            suppressed.entry,
                            printable(&suppressed.reason),
                            printable(&suppressed.alert.title),
                            suppressed
                                .alert
                                .event_id
                                .as_deref()
                                .map_or_else(|| "-".into(), printable),
                        )
                    })
                } else {
                    self.flow()
                }
            }
            Outcome::Quiet(reason) => {
                self.summary.quiet[reason as usize] += 1;
                match (explain, record) {
                    (true, Some(record)) => self.emit(|_, err| {
                        writeln!(err, "{name}:{line}: {}", explain_quiet(reason, &record))
                    }),
                    _ => self.flow(),
                }
            }
        }
    }

    fn error(&mut self, line: u64, reason: &str) -> ControlFlow<()> {
        let Some(line) = self.input_line(line) else {
            return ControlFlow::Break(());
        };
        self.summary.errors += 1;
        let name = self.name;
        self.emit(|_, err| writeln!(err, "{name}:{line}: {}", printable(reason)))
    }
}

/// One line for a quiet record: why, and what a responder checks next (for a caller that is not a
/// person, the role or service behind it, to confirm it really is a pipeline). Record text is
/// escaped.
fn explain_quiet(reason: QuietReason, record: &Record) -> String {
    let field = |value: Option<&str>| value.map_or_else(|| "-".to_owned(), printable);
    let mut line = format!(
        "quiet ({}): {}; eventName={} eventID={} userIdentity.type={}",
        reason.as_str(),
        reason.describe(),
        field(record.event_name()),
        field(record.event_id()),
        field(record.identity_type()),
    );
    if reason == QuietReason::NotAPerson {
        let caller = record
            .issuer_str("arn")
            .or_else(|| record.identity_str("arn"))
            .or_else(|| record.identity_str("invokedBy"));
        line.push_str(&format!(" caller={}", field(caller)));
    }
    line
}
