//! The fast decoder: a refillable buffer, a tiny state machine for the containers around
//! records (top-level arrays, `Records` / `Events` objects) and the skimmer for everything else.
//!
//! It owns buffering (bounded: records are handed out as slices of the buffer, which grows only
//! for a single value larger than it, up to [`MAX_RECORD`]), line counting, gzip detection and
//! recovery after errors. It does not own the grammar (`skim.rs`) nor what a record means.
//!
//! Every unit of work (a record, a key, a value to ignore) is skimmed from its first byte; when
//! the buffer ends inside it, the tail moves to the front, more input is read and the unit is
//! skimmed again. Each refill reads at least as much again as the unit holds so far, which
//! keeps the total re-skimming linear even for a reader that returns one byte at a time; it
//! stops earlier once enough closing brackets have arrived to close the unit, so that a record
//! arriving on a pipe is handed out as soon as it is complete.

use std::io::{self, Read};

use super::RecordVisitor;
use super::gzip::{self, Inflated};
use super::skim::{
    Capture, ContainerKind, Invalid, Problem, Skimmed, Skimmer, Stop, WATCH_CLOUDTRAIL_EVENT,
    WATCH_CONTAINERS, WATCH_NOTHING, kind_of, unescape,
};

/// Largest single value (record, lookup-events entry, ignored member) kept whole; a larger one
/// is reported and skipped.
pub(super) const MAX_RECORD: usize = 16 << 20;
/// Initial buffer size, and the most read at once.
const INITIAL_BUFFER: usize = 1 << 20;
/// Below this much free space, the buffer is compacted (or grown) before reading.
const MIN_READ: usize = 64 << 10;
const MAX_BUFFER: usize = MAX_RECORD + INITIAL_BUFFER;

pub(super) const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
pub(super) const BOM: &[u8] = b"\xef\xbb\xbf";

pub(super) fn decode<R: Read, V: RecordVisitor>(mut reader: R, visitor: &mut V) -> io::Result<()> {
    let mut head = [0; 2];
    let mut have = 0;
    while have < head.len() {
        match reader.read(&mut head[have..]) {
            Ok(0) => break,
            Ok(n) => have += n,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    let head = &head[..have];
    if head == GZIP_MAGIC {
        match gzip::open(head, reader)? {
            Inflated::Whole(bytes, _slot) => Stream::new(&bytes[..], true, visitor).run(),
            Inflated::Streaming(source) => Stream::new(source, true, visitor).run(),
        }
    } else {
        Stream::new(head.chain(reader), false, visitor).run()
    }
}

/// What the enclosing container expects next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Just after '[': an element or ']'.
    FirstOrClose,
    /// Just after ',': an element.
    Element,
    /// After an element: ',' or ']'.
    CommaOrClose,
}

/// What a container object expects next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Member {
    /// After a member: ',' or '}'.
    CommaOrClose,
    /// After ',': a key.
    Key,
    /// After `"Records":` or `"Events":`.
    Value(ContainerKind),
}

/// One open bracket around the records, outermost first in [`Stream::frames`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Frame {
    /// A top-level array of documents.
    Documents(Expect),
    /// An object with a `Records` or `Events` member.
    Container(Member),
    /// The array under `Records`.
    Records(Expect),
    /// The array under `Events`.
    Events(Expect),
}

/// The outcome of skimming one unit.
enum Unit<T> {
    Done {
        value: T,
        end: usize,
        newlines: u64,
        line_start: Option<usize>,
    },
    Invalid {
        invalid: Invalid,
        newlines: u64,
        line_start: Option<usize>,
    },
    /// Larger than [`MAX_RECORD`].
    Oversize,
}

struct Stream<'v, R, V> {
    reader: R,
    gzip: bool,
    visitor: &'v mut V,
    buf: Vec<u8>,
    /// Start of the unread part of `buf`.
    pos: usize,
    /// End of the data in `buf`.
    end: usize,
    eof: bool,
    /// Offset in the (decompressed) input of `buf[0]`.
    offset: u64,
    /// Line number at `pos`.
    line: u64,
    /// Offset in the input of the first byte of that line.
    line_start: u64,
    /// Line of the last token consumed, for errors about a document that stops short.
    last_token_line: u64,
    frames: Vec<Frame>,
    /// Unescaped `CloudTrailEvent` strings.
    scratch: Vec<u8>,
}

impl<'v, R: Read, V: RecordVisitor> Stream<'v, R, V> {
    fn new(reader: R, gzip: bool, visitor: &'v mut V) -> Self {
        Stream {
            reader,
            gzip,
            visitor,
            buf: vec![0; INITIAL_BUFFER],
            pos: 0,
            end: 0,
            eof: false,
            offset: 0,
            line: 1,
            line_start: 0,
            last_token_line: 1,
            frames: Vec::with_capacity(4),
            scratch: Vec::new(),
        }
    }

    fn run(mut self) -> io::Result<()> {
        while self.end - self.pos < BOM.len() && !self.eof {
            self.fill_more(0)?;
        }
        if self.buf[self.pos..self.end].starts_with(BOM) {
            self.pos += BOM.len();
            self.line_start = BOM.len() as u64;
        }
        loop {
            let Some(byte) = self.skip_whitespace()? else {
                if let Some(frame) = self.frames.last() {
                    let expected = match frame {
                        Frame::Container(_) => "'}' closing an object",
                        _ => "']' closing an array",
                    };
                    let reason = Problem::Unexpected {
                        expected,
                        found: None,
                    };
                    self.visitor
                        .error(self.last_token_line, &reason.to_string());
                }
                return Ok(());
            };
            match self.frames.last().copied() {
                None => self.document(byte)?,
                Some(Frame::Documents(expect)) => self.documents(expect, byte)?,
                Some(Frame::Container(member)) => self.container(member, byte)?,
                Some(Frame::Records(expect)) => {
                    self.elements(ContainerKind::Records, expect, byte)?
                }
                Some(Frame::Events(expect)) => {
                    self.elements(ContainerKind::Events, expect, byte)?
                }
            }
        }
    }

    /// A top-level document starting with `byte`.
    fn document(&mut self, byte: u8) -> io::Result<()> {
        match byte {
            b'{' => self.object_document(),
            b'[' => {
                self.pos += 1;
                self.last_token_line = self.line;
                self.frames.push(Frame::Documents(Expect::FirstOrClose));
                Ok(())
            }
            _ => self.wrong_shape(|kind| format!("{kind} is not a CloudTrail record")),
        }
    }

    /// Inside a top-level array of documents.
    fn documents(&mut self, expect: Expect, byte: u8) -> io::Result<()> {
        if expect == Expect::CommaOrClose || (expect == Expect::FirstOrClose && byte == b']') {
            return self.comma_or_close(byte, Frame::Documents);
        }
        self.set_top(Frame::Documents(Expect::CommaOrClose));
        match byte {
            b'{' => self.object_document(),
            b'[' => self
                .wrong_shape(|kind| format!("{kind} inside an array is not a CloudTrail record")),
            _ => self.wrong_shape(|kind| format!("{kind} is not a CloudTrail record")),
        }
    }

    /// Inside the array under `Records` or `Events`.
    fn elements(&mut self, kind: ContainerKind, expect: Expect, byte: u8) -> io::Result<()> {
        let frame = move |expect| match kind {
            ContainerKind::Records => Frame::Records(expect),
            ContainerKind::Events => Frame::Events(expect),
        };
        if expect == Expect::CommaOrClose || (expect == Expect::FirstOrClose && byte == b']') {
            return self.comma_or_close(byte, frame);
        }
        self.set_top(frame(Expect::CommaOrClose));
        match (kind, byte) {
            (ContainerKind::Records, b'{') => self.record(),
            (ContainerKind::Events, b'{') => self.lookup_event(),
            (ContainerKind::Records, _) => self
                .wrong_shape(|found| format!("{found} in \"Records\" is not a CloudTrail record")),
            (ContainerKind::Events, _) => self
                .wrong_shape(|found| format!("{found} in \"Events\" is not a lookup-events entry")),
        }
    }

    /// ',' or ']' after an array element (or ']' right after '[').
    fn comma_or_close(&mut self, byte: u8, frame: impl Fn(Expect) -> Frame) -> io::Result<()> {
        match byte {
            b',' => self.set_top(frame(Expect::Element)),
            b']' => {
                self.frames.pop();
            }
            _ => {
                let problem = Problem::Unexpected {
                    expected: "',' or ']' after an array element",
                    found: Some(byte),
                };
                return self.syntax_error(self.pos, problem, 0, None);
            }
        }
        self.pos += 1;
        self.last_token_line = self.line;
        Ok(())
    }

    /// Inside an object known to hold `Records` or `Events`: members other than those are
    /// checked and ignored.
    fn container(&mut self, member: Member, byte: u8) -> io::Result<()> {
        match member {
            Member::CommaOrClose => {
                match byte {
                    b',' => self.set_top(Frame::Container(Member::Key)),
                    b'}' => {
                        self.frames.pop();
                    }
                    _ => {
                        let problem = Problem::Unexpected {
                            expected: "',' or '}' after an object member",
                            found: Some(byte),
                        };
                        return self.syntax_error(self.pos, problem, 0, None);
                    }
                }
                self.pos += 1;
                self.last_token_line = self.line;
                Ok(())
            }
            Member::Key => {
                let depth = self.frames.len();
                match self.skim(depth, |skimmer| skimmer.container_member())? {
                    Unit::Done {
                        value: kind,
                        end,
                        newlines,
                        line_start,
                    } => {
                        self.advance(end, newlines, line_start);
                        match kind {
                            Some(kind) => self.set_top(Frame::Container(Member::Value(kind))),
                            None => {
                                self.set_top(Frame::Container(Member::CommaOrClose));
                                return self.ignored_value();
                            }
                        }
                        Ok(())
                    }
                    Unit::Invalid {
                        invalid,
                        newlines,
                        line_start,
                    } => self.syntax_error(
                        self.pos + invalid.at,
                        invalid.problem,
                        newlines,
                        line_start,
                    ),
                    Unit::Oversize => self.oversize(),
                }
            }
            Member::Value(kind) => {
                self.set_top(Frame::Container(Member::CommaOrClose));
                if byte == b'[' {
                    self.pos += 1;
                    self.last_token_line = self.line;
                    self.frames.push(match kind {
                        ContainerKind::Records => Frame::Records(Expect::FirstOrClose),
                        ContainerKind::Events => Frame::Events(Expect::FirstOrClose),
                    });
                    return Ok(());
                }
                self.wrong_shape(|found| match kind {
                    ContainerKind::Records => {
                        format!("\"Records\" must be an array of CloudTrail records, found {found}")
                    }
                    ContainerKind::Events => format!(
                        "\"Events\" must be an array of lookup-events entries, found {found}"
                    ),
                })
            }
        }
    }

    /// An object that is a document or an element of a top-level array: a record, an
    /// envelope, or a container whose members follow.
    fn object_document(&mut self) -> io::Result<()> {
        let depth = self.frames.len();
        match self.skim(depth, |skimmer| skimmer.value::<WATCH_CONTAINERS>())? {
            Unit::Done {
                value: Skimmed::Value { .. },
                end,
                newlines,
                line_start,
            } => {
                self.visitor
                    .record(&self.buf[self.pos..self.pos + end], self.line);
                self.advance(end, newlines, line_start);
                Ok(())
            }
            Unit::Done {
                value: Skimmed::Container { kind, value_at },
                newlines,
                line_start,
                ..
            } => {
                self.advance(value_at, newlines, line_start);
                self.frames.push(Frame::Container(Member::Value(kind)));
                Ok(())
            }
            Unit::Invalid {
                invalid,
                newlines,
                line_start,
            } => self.syntax_error(self.pos + invalid.at, invalid.problem, newlines, line_start),
            Unit::Oversize => self.oversize(),
        }
    }

    /// An element of `Records`.
    fn record(&mut self) -> io::Result<()> {
        let depth = self.frames.len();
        match self.skim(depth, |skimmer| skimmer.value::<WATCH_NOTHING>())? {
            Unit::Done {
                end,
                newlines,
                line_start,
                ..
            } => {
                self.visitor
                    .record(&self.buf[self.pos..self.pos + end], self.line);
                self.advance(end, newlines, line_start);
                Ok(())
            }
            Unit::Invalid {
                invalid,
                newlines,
                line_start,
            } => self.syntax_error(self.pos + invalid.at, invalid.problem, newlines, line_start),
            Unit::Oversize => self.oversize(),
        }
    }

    /// An element of `Events`: its `CloudTrailEvent` string holds the record.
    fn lookup_event(&mut self) -> io::Result<()> {
        let depth = self.frames.len();
        let (capture, end, newlines, line_start) =
            match self.skim(depth, |skimmer| skimmer.value::<WATCH_CLOUDTRAIL_EVENT>())? {
                Unit::Done {
                    value,
                    end,
                    newlines,
                    line_start,
                } => match value {
                    Skimmed::Value { capture, .. } => (capture, end, newlines, line_start),
                    // Containers are watched only in documents, never in lookup-events entries.
                    Skimmed::Container { .. } => (Capture::Absent, end, newlines, line_start),
                },
                Unit::Invalid {
                    invalid,
                    newlines,
                    line_start,
                } => {
                    let at = self.pos + invalid.at;
                    return self.syntax_error(at, invalid.problem, newlines, line_start);
                }
                Unit::Oversize => return self.oversize(),
            };
        let line = self.line;
        match capture {
            Capture::Absent => self.visitor.error(
                line,
                "lookup-events entry has no \"CloudTrailEvent\" member",
            ),
            Capture::NotString(first) => {
                let reason = format!("\"CloudTrailEvent\" is {}, not a string", kind_of(first));
                self.visitor.error(line, &reason);
            }
            Capture::String {
                start,
                end,
                escaped,
            } => {
                let raw = &self.buf[self.pos + start..self.pos + end];
                let content = if escaped {
                    self.scratch.clear();
                    unescape(raw, &mut self.scratch);
                    &self.scratch[..]
                } else {
                    raw
                };
                match check_embedded_record(content) {
                    Ok(()) => self.visitor.record(content, line),
                    Err(reason) => self.visitor.error(
                        line,
                        &format!("\"CloudTrailEvent\" does not hold a JSON object: {reason}"),
                    ),
                }
            }
        }
        self.advance(end, newlines, line_start);
        Ok(())
    }

    /// A value whose only use is to be reported as the wrong shape; `message` turns the kind
    /// of value found ("a JSON number") into the reason.
    fn wrong_shape(&mut self, message: impl FnOnce(&str) -> String) -> io::Result<()> {
        let first = self.buf[self.pos];
        let depth = self.frames.len();
        match self.skim(depth, |skimmer| skimmer.value::<WATCH_NOTHING>())? {
            Unit::Done {
                end,
                newlines,
                line_start,
                ..
            } => {
                self.visitor.error(self.line, &message(kind_of(first)));
                self.advance(end, newlines, line_start);
                Ok(())
            }
            Unit::Invalid {
                invalid,
                newlines,
                line_start,
            } => self.syntax_error(self.pos + invalid.at, invalid.problem, newlines, line_start),
            Unit::Oversize => self.oversize(),
        }
    }

    /// The value of a container member other than `Records` / `Events`: checked, not kept.
    fn ignored_value(&mut self) -> io::Result<()> {
        if self.skip_whitespace()?.is_none() {
            return Ok(());
        }
        let depth = self.frames.len();
        match self.skim(depth, |skimmer| skimmer.value::<WATCH_NOTHING>())? {
            Unit::Done {
                end,
                newlines,
                line_start,
                ..
            } => {
                self.advance(end, newlines, line_start);
                Ok(())
            }
            Unit::Invalid {
                invalid,
                newlines,
                line_start,
            } => self.syntax_error(self.pos + invalid.at, invalid.problem, newlines, line_start),
            Unit::Oversize => self.oversize(),
        }
    }

    /// Runs `step` over the unread input from `pos`, reading more and starting over while the
    /// input ends inside the unit.
    fn skim<T>(
        &mut self,
        base_depth: usize,
        mut step: impl FnMut(&mut Skimmer<'_>) -> Result<T, Stop>,
    ) -> io::Result<Unit<T>> {
        loop {
            let mut skimmer = Skimmer::new(&self.buf[self.pos..self.end], self.eof, base_depth);
            match step(&mut skimmer) {
                Ok(value) => {
                    return Ok(Unit::Done {
                        value,
                        end: skimmer.i,
                        newlines: skimmer.newlines,
                        line_start: skimmer.line_start,
                    });
                }
                Err(Stop::Invalid(invalid)) => {
                    return Ok(Unit::Invalid {
                        invalid,
                        newlines: skimmer.newlines,
                        line_start: skimmer.line_start,
                    });
                }
                // With the whole input in view a skim cannot be incomplete; guard the loop anyway.
                Err(Stop::Incomplete) if self.eof => {
                    return Ok(Unit::Invalid {
                        invalid: Invalid {
                            at: self.end - self.pos,
                            problem: Problem::Unexpected {
                                expected: "the rest of the JSON value",
                                found: None,
                            },
                        },
                        newlines: skimmer.newlines,
                        line_start: skimmer.line_start,
                    });
                }
                Err(Stop::Incomplete) => {
                    let open = skimmer.open;
                    if !self.fill_more(open)? {
                        return Ok(Unit::Oversize);
                    }
                }
            }
        }
    }

    /// Moves past a skimmed unit of `end` bytes.
    fn advance(&mut self, end: usize, newlines: u64, line_start: Option<usize>) {
        if let Some(line_start) = line_start {
            self.line_start = self.offset + (self.pos + line_start) as u64;
        }
        self.line += newlines;
        self.pos += end;
        self.last_token_line = self.line;
    }

    fn set_top(&mut self, frame: Frame) {
        if let Some(top) = self.frames.last_mut() {
            *top = frame;
        }
    }

    /// Skips whitespace (counting lines, keeping nothing) up to the next token.
    fn skip_whitespace(&mut self) -> io::Result<Option<u8>> {
        loop {
            while let Some(&byte) = self.buf[..self.end].get(self.pos) {
                match byte {
                    b' ' | b'\t' | b'\r' => self.pos += 1,
                    b'\n' => {
                        self.pos += 1;
                        self.line += 1;
                        self.line_start = self.offset + self.pos as u64;
                    }
                    _ => return Ok(Some(byte)),
                }
            }
            if self.eof {
                return Ok(None);
            }
            self.fill_more(0)?;
        }
    }

    /// Reads more input after `end`, keeping `buf[pos..end]`, the unit being skimmed, which
    /// stopped with `open` containers open. Returns false, reading nothing, when that unit
    /// already fills [`MAX_RECORD`].
    fn fill_more(&mut self, open: usize) -> io::Result<bool> {
        if self.eof {
            return Ok(true);
        }
        let pending = self.end - self.pos;
        if pending >= MAX_RECORD {
            return Ok(false);
        }
        if self.buf.len() - self.end < MIN_READ {
            if self.pos > 0 {
                self.buf.copy_within(self.pos..self.end, 0);
                self.offset += self.pos as u64;
                self.end = pending;
                self.pos = 0;
            }
            if self.buf.len() - self.end < MIN_READ {
                let grown = (self.buf.len() * 2).min(MAX_BUFFER);
                self.buf.resize(grown, 0);
            }
        }
        let mut got = 0;
        let mut closed: isize = 0;
        while self.end < self.buf.len() {
            let read = match self.reader.read(&mut self.buf[self.end..]) {
                Ok(read) => read,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(self.read_error(error)),
            };
            if read == 0 {
                self.eof = true;
                break;
            }
            let fresh = self.end..self.end + read;
            self.end += read;
            got += read;
            // Enough to make the next skim worth it: as much again as the unit so far (which
            // keeps re-skimming linear), or enough closing brackets to close what was open (so
            // that a record arriving on a pipe is handed out at once). Brackets inside strings
            // skew the count, which only makes the next skim come earlier or later.
            if got >= pending {
                break;
            }
            closed += self.buf[fresh]
                .iter()
                .map(|&byte| match byte {
                    b'}' | b']' => 1,
                    b'{' | b'[' => -1,
                    _ => 0,
                })
                .sum::<isize>();
            if closed >= open as isize {
                break;
            }
        }
        Ok(true)
    }

    fn read_error(&self, error: io::Error) -> io::Error {
        let at = self.offset + self.end as u64;
        let what = if self.gzip {
            "gzip stream is corrupt or truncated"
        } else {
            "read failed"
        };
        io::Error::new(
            error.kind(),
            format!(
                "{what} after {at} bytes of {}input (line {}): {error}",
                if self.gzip { "decompressed " } else { "" },
                self.line_count_at_end()
            ),
        )
    }

    /// The line number at the end of what was read, for messages about read errors.
    fn line_count_at_end(&self) -> u64 {
        self.line + memchr::memchr_iter(b'\n', &self.buf[self.pos..self.end]).count() as u64
    }

    /// Reports a syntax error at `at` (an index in `buf`; `newlines` and `line_start` are the
    /// skimmer's counts from `pos` to it) and resumes where decoding can go on.
    ///
    /// The rules, shared with the reference decoder: when the offending byte is a '{' or '['
    /// that begins a line, the document before it stopped short (a truncated line), so the
    /// error goes to the line where that document's last token is and decoding resumes at the
    /// '{' or '['. Otherwise the error is reported where it is, and decoding resumes at the
    /// next line that begins with '{' or '[' (the next NDJSON line, the next pretty-printed
    /// document); a document that spans the rest of the input ends it, with one error.
    fn syntax_error(
        &mut self,
        at: usize,
        problem: Problem,
        newlines: u64,
        line_start: Option<usize>,
    ) -> io::Result<()> {
        self.frames.clear();
        let line = self.line + newlines;
        let line_start = match line_start {
            Some(start) => self.offset + (self.pos + start) as u64,
            None => self.line_start,
        };
        let at_line_start = self.offset + at as u64 == line_start;
        let found = self.buf[..self.end].get(at).copied();
        if problem.is_end_of_input() || (at_line_start && matches!(found, Some(b'{' | b'['))) {
            let last_token_line = self.last_token_line_before(at, line);
            let reason = if found.is_some() {
                format!("the JSON document stops short: {problem} at the start of line {line}")
            } else {
                problem.to_string()
            };
            self.visitor.error(last_token_line, &reason);
            self.pos = at;
            self.line = line;
            self.line_start = line_start;
            self.last_token_line = line;
            return Ok(());
        }
        let column = self.offset + at as u64 - line_start + 1;
        self.visitor
            .error(line, &format!("{problem} at column {column}"));
        self.pos = at;
        self.line = line;
        self.line_start = line_start;
        self.resync()
    }

    /// The line of the last token before `at` (which is on line `line`): whitespace between
    /// them may hold line breaks.
    fn last_token_line_before(&self, at: usize, line: u64) -> u64 {
        let mut newlines = 0;
        for &byte in self.buf[self.pos..at.min(self.end)].iter().rev() {
            match byte {
                b'\n' => newlines += 1,
                b' ' | b'\t' | b'\r' => {}
                _ => return line - newlines,
            }
        }
        // Only whitespace since `pos`: the last token is the one before this unit.
        self.last_token_line.min(line - newlines)
    }

    /// Skips to the next line that begins with '{' or '['.
    fn resync(&mut self) -> io::Result<()> {
        loop {
            match memchr::memchr(b'\n', &self.buf[self.pos..self.end]) {
                Some(found) => {
                    self.pos += found + 1;
                    self.line += 1;
                    self.line_start = self.offset + self.pos as u64;
                    while self.pos == self.end && !self.eof {
                        self.fill_more(0)?;
                    }
                    match self.buf[..self.end].get(self.pos) {
                        None => return Ok(()),
                        Some(b'{' | b'[') => {
                            self.last_token_line = self.line;
                            return Ok(());
                        }
                        Some(_) => {}
                    }
                }
                None => {
                    self.pos = self.end;
                    if self.eof {
                        return Ok(());
                    }
                    self.fill_more(0)?;
                }
            }
        }
    }

    /// Reports the value at `pos` as too large and skips it, checking nothing but brackets and
    /// strings on the way.
    fn oversize(&mut self) -> io::Result<()> {
        let reason = format!(
            "a JSON value larger than {} MiB starts here; skipped",
            MAX_RECORD >> 20
        );
        self.visitor.error(self.line, &reason);
        let mut depth: u64 = 0;
        let mut in_string = false;
        let mut escaped = false;
        loop {
            while let Some(&byte) = self.buf[..self.end].get(self.pos) {
                self.pos += 1;
                if byte == b'\n' {
                    self.line += 1;
                    self.line_start = self.offset + self.pos as u64;
                }
                if in_string {
                    if escaped {
                        escaped = false;
                    } else if byte == b'\\' {
                        escaped = true;
                    } else if byte == b'"' {
                        in_string = false;
                        if depth == 0 {
                            return self.after_skip();
                        }
                    }
                    continue;
                }
                match byte {
                    b'"' => in_string = true,
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth = depth.saturating_sub(1);
                        if depth == 0 {
                            return self.after_skip();
                        }
                    }
                    b',' | b' ' | b'\t' | b'\r' | b'\n' if depth == 0 => {
                        // The end of a huge number or literal; the byte after it is not its.
                        self.pos -= 1;
                        if byte == b'\n' {
                            self.line -= 1;
                        }
                        return self.after_skip();
                    }
                    _ => {}
                }
            }
            if self.eof {
                self.frames.clear();
                self.visitor.error(
                    self.line,
                    "unexpected end of input inside the oversized JSON value",
                );
                return Ok(());
            }
            self.fill_more(0)?;
        }
    }

    fn after_skip(&mut self) -> io::Result<()> {
        self.last_token_line = self.line;
        Ok(())
    }
}

/// Checks that an unescaped `CloudTrailEvent` string holds one JSON object and nothing else.
fn check_embedded_record(content: &[u8]) -> Result<(), String> {
    let mut skimmer = Skimmer::new(content, true, 0);
    let first = skimmer
        .next_token("a JSON object")
        .map_err(|stop| describe(stop, content))?;
    if first != b'{' {
        return Err(format!("it holds {}", kind_of(first)));
    }
    skimmer
        .value::<WATCH_NOTHING>()
        .map_err(|stop| describe(stop, content))?;
    skimmer.expect_end().map_err(|stop| describe(stop, content))
}

fn describe(stop: Stop, content: &[u8]) -> String {
    match stop {
        Stop::Invalid(invalid) => format!("{} at byte {}", invalid.problem, invalid.at + 1),
        Stop::Incomplete => format!("it ends after {} bytes", content.len()),
    }
}
