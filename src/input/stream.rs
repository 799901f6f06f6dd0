//! The fast decoder: a tiny state machine for the containers around records (top-level arrays,
//! `Records` / `Events` objects), over the input buffer (`buffer.rs`), with the skimmer
//! (`skim.rs`) for everything else and the error recovery in `recovery.rs`.
//!
//! Every unit of work (a record, a key, a value to ignore) is skimmed from its first byte; when
//! the buffer ends inside it, the tail moves to the front, more input is read and the unit is
//! skimmed again. Each refill reads at least as much again as the unit holds so far, which
//! keeps the total re-skimming linear even for a reader that returns one byte at a time; it
//! stops earlier once enough closing brackets have arrived to close the unit, so that a record
//! arriving on a pipe is handed out as soon as it is complete.
//!
//! The visitor can stop decoding: once it answers `ControlFlow::Break`, nothing more is read.

use std::io::{self, Read};

use super::buffer::{Buffer, MAX_RECORD};
use super::gzip::{self, Capped, Inflated};
use super::skim::{
    Capture, ContainerKind, Invalid, Problem, Skimmed, Skimmer, Stop, WATCH_CLOUDTRAIL_EVENT,
    WATCH_CONTAINERS, WATCH_NOTHING, kind_of, unescape,
};
use super::{Limits, PartEnd, RecordVisitor};

pub(crate) const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Decodes `reader`; with `part`, plain (not gzip) input may stop where another part begins
/// (see [`PartEnd`]). Gzip input is decoded to its end whatever `part` says.
pub(super) fn decode<R: Read, V: RecordVisitor>(
    mut reader: R,
    visitor: &mut V,
    limits: &Limits,
    part: Option<&mut dyn PartEnd>,
) -> io::Result<()> {
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
        let cap = limits.max_inflated_bytes;
        match gzip::open(head, reader)? {
            // Small enough for no value in it to be oversized, and within the cap: scanned in place.
            Inflated::Whole(bytes, _slot)
                if bytes.len() < MAX_RECORD && bytes.len() as u64 <= cap =>
            {
                let input = Buffer::whole(bytes, io::empty(), true);
                Stream::with_buffer(input, visitor).run()
            }
            Inflated::Whole(bytes, _slot) => {
                Stream::new(Capped::new(&bytes[..], cap), true, visitor).run()
            }
            Inflated::Streaming(source) => {
                Stream::new(Capped::new(source, cap), true, visitor).run()
            }
        }
    } else {
        let mut stream = Stream::new(head.chain(reader), false, visitor);
        if let Some(part) = part {
            stream.input = stream.input.starting_at(part.start());
            stream.next_end = part.next_end();
            stream.part = Some(part);
            stream.input_lines = false;
        }
        stream.run()
    }
}

/// What the enclosing container expects next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Expect {
    /// Just after '[': an element or ']'.
    FirstOrClose,
    /// Just after ',': an element.
    Element,
    /// After an element: ',' or ']'.
    CommaOrClose,
}

/// What a container object expects next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Member {
    /// After a member: ',' or '}'.
    CommaOrClose,
    /// After ',': a key.
    Key,
    /// After `"Records":` or `"Events":`.
    Value(ContainerKind),
}

/// One open bracket around the records, outermost first in [`Stream::frames`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Frame {
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
        /// Some string in the unit holds a `\u` escape.
        unicode_escape: bool,
    },
    /// Not a value: reported, and the stream recovers (see [`Stream::failed`]).
    Failed(Failed),
}

/// Why a unit could not be skimmed.
enum Failed {
    Invalid {
        invalid: Invalid,
        newlines: u64,
        line_start: Option<usize>,
    },
    /// Larger than [`super::buffer::MAX_RECORD`].
    Oversize,
}

pub(super) struct Stream<'v, R, V> {
    pub(super) input: Buffer<R>,
    pub(super) visitor: &'v mut V,
    /// Line of the last token consumed, for errors about a document that stops short.
    pub(super) last_token_line: u64,
    pub(super) frames: Vec<Frame>,
    /// The line where the unsettled part of the input begins: its first token other than ','
    /// since the last record or wrong-shape value handed to the visitor, the last resume point
    /// or the start (see `recovery.rs`). `None` while nothing but ',' and whitespace was read.
    pub(super) broken_from: Option<u64>,
    /// Unescaped `CloudTrailEvent` strings.
    scratch: Vec<u8>,
    /// The visitor asked to stop.
    stopped: bool,
    /// Where this part of a larger input may hand over to the next (see [`PartEnd`]).
    part: Option<&'v mut dyn PartEnd>,
    /// The part's next possible end ([`PartEnd::next_end`]); `u64::MAX` without a part, so the
    /// check costs one comparison per unit.
    next_end: u64,
    /// Lines are numbered as in the whole input (always, unless this is a part that has not
    /// yet asked [`PartEnd::first_line`]).
    input_lines: bool,
}

impl<'v, R: Read, V: RecordVisitor> Stream<'v, R, V> {
    fn new(reader: R, gzip: bool, visitor: &'v mut V) -> Self {
        Stream::with_buffer(Buffer::new(reader, gzip), visitor)
    }

    fn with_buffer(input: Buffer<R>, visitor: &'v mut V) -> Self {
        Stream {
            input,
            visitor,
            last_token_line: 1,
            frames: Vec::with_capacity(4),
            broken_from: None,
            scratch: Vec::new(),
            stopped: false,
            part: None,
            next_end: u64::MAX,
            input_lines: true,
        }
    }

    /// Hands the visitor a problem at `line`.
    pub(super) fn report(&mut self, line: u64, reason: &str) {
        let flow = self.visitor.error(line, reason);
        self.stopped |= flow.is_break();
    }

    /// Hands the visitor the record that starts here and is `len` bytes long, with whether a
    /// string in it holds a `\u` escape, then moves past it (see `settle_past`).
    fn deliver(
        &mut self,
        len: usize,
        newlines: u64,
        line_start: Option<usize>,
        unicode_escape: bool,
    ) {
        let (start, line) = (self.input.pos, self.input.line);
        let json = &self.input.buf[start..start + len];
        let flow = self.visitor.record_checked(json, line, unicode_escape);
        self.stopped |= flow.is_break();
        self.settle_past(len, newlines, line_start);
    }

    fn run(mut self) -> io::Result<()> {
        let Err(error) = self.units() else {
            return Ok(());
        };
        // A read error says on which line it happened: for a part, numbered as in the input,
        // which may mean waiting to know how (a part that does not count reports nothing).
        if !self.number_as_input() {
            return Ok(());
        }
        Err(self.input.read_error(error))
    }

    fn units(&mut self) -> io::Result<()> {
        self.input.skip_bom()?;
        while !self.stopped {
            let Some(byte) = self.input.skip_whitespace()? else {
                let Some(frame) = self.frames.last() else {
                    return Ok(());
                };
                let expected = match frame {
                    Frame::Container(_) => "'}' closing an object",
                    _ => "']' closing an array",
                };
                let problem = Problem::Unexpected {
                    expected,
                    found: None,
                };
                // Recovery may go back to a line that a container swallowed.
                self.syntax_error(self.input.pos, problem, 0, None)?;
                continue;
            };
            if self.input.offset + self.input.pos as u64 >= self.next_end && self.at_part_end() {
                return Ok(());
            }
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
        Ok(())
    }

    /// Whether this part ends here, at the next unit to decode, which is at or past the part's
    /// next possible end. Only where everything read so far is settled can the decoder say so:
    /// recovery never goes back before such a place, so a possible end behind it is passed for
    /// good; and there, with no container open, a decoder starting afresh would do exactly
    /// what this one does next.
    fn at_part_end(&mut self) -> bool {
        if self.broken_from.is_some() || self.input.restart.is_some() {
            return false;
        }
        let Some(part) = self.part.as_deref_mut() else {
            return false;
        };
        let at = self.input.offset + self.input.pos as u64;
        let flow = part.reached(at, self.input.line, self.frames.is_empty());
        self.next_end = part.next_end();
        flow.is_break()
    }

    /// Before an error whose text names lines: a part's lines become the input's (see
    /// [`PartEnd::first_line`]). False when the part does not count: decoding stops.
    pub(super) fn number_as_input(&mut self) -> bool {
        if self.input_lines {
            return true;
        }
        let Some(first_line) = self.part.as_deref_mut().and_then(|part| part.first_line()) else {
            self.stopped = true;
            return false;
        };
        let shift = first_line - 1;
        self.input.line += shift;
        self.last_token_line += shift;
        if let Some(line) = &mut self.broken_from {
            *line += shift;
        }
        if let Some(restart) = &mut self.input.restart {
            restart.line += shift;
        }
        self.input_lines = true;
        true
    }

    /// A top-level document starting with `byte`.
    fn document(&mut self, byte: u8) -> io::Result<()> {
        match byte {
            b'{' => self.object_document(),
            b'[' => {
                self.token();
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
        if byte == b'[' && self.input.starts_line(self.input.pos) {
            return self.stops_short("an object (a record), not an array");
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
        if byte == b'[' && self.input.starts_line(self.input.pos) {
            return self.stops_short(match kind {
                ContainerKind::Records => "an object (a record), not an array",
                ContainerKind::Events => "an object (a lookup-events entry), not an array",
            });
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
        let expected = "',' or ']' after an array element";
        self.separator(byte, b']', expected, frame(Expect::Element))
    }

    /// ',' (the top frame becomes `next`) or `close` (the top frame ends) between the members of a
    /// container; anything else is a syntax error, `expected` saying what was wanted.
    fn separator(
        &mut self,
        byte: u8,
        close: u8,
        expected: &'static str,
        next: Frame,
    ) -> io::Result<()> {
        if byte == b',' {
            self.set_top(next);
        } else if byte == close {
            self.frames.pop();
        } else {
            let problem = Problem::Unexpected {
                expected,
                found: Some(byte),
            };
            return self.syntax_error(self.input.pos, problem, 0, None);
        }
        self.token();
        if self.frames.is_empty() {
            self.settle();
        }
        Ok(())
    }

    /// Inside an object known to hold `Records` or `Events`: members other than those are
    /// checked and ignored.
    fn container(&mut self, member: Member, byte: u8) -> io::Result<()> {
        match member {
            Member::CommaOrClose => {
                let expected = "',' or '}' after an object member";
                self.separator(byte, b'}', expected, Frame::Container(Member::Key))
            }
            Member::Key => {
                let depth = self.frames.len();
                match self.skim(depth, |skimmer| skimmer.container_member())? {
                    Unit::Done {
                        value: kind,
                        end,
                        newlines,
                        line_start,
                        ..
                    } => {
                        self.pass(end, newlines, line_start);
                        match kind {
                            Some(kind) => self.set_top(Frame::Container(Member::Value(kind))),
                            None => {
                                self.set_top(Frame::Container(Member::CommaOrClose));
                                return self.ignored_value();
                            }
                        }
                        Ok(())
                    }
                    Unit::Failed(failed) => self.failed(failed),
                }
            }
            Member::Value(kind) => {
                if byte == b'{' && self.input.starts_line(self.input.pos) {
                    return self.stops_short("an array, not an object");
                }
                self.set_top(Frame::Container(Member::CommaOrClose));
                if byte == b'[' {
                    self.token();
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
                unicode_escape,
            } => {
                self.deliver(end, newlines, line_start, unicode_escape);
                Ok(())
            }
            Unit::Done {
                value: Skimmed::Container { kind, value_at },
                newlines,
                line_start,
                ..
            } => {
                self.pass(value_at, newlines, line_start);
                self.frames.push(Frame::Container(Member::Value(kind)));
                Ok(())
            }
            Unit::Failed(failed) => self.failed(failed),
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
                unicode_escape,
                ..
            } => {
                self.deliver(end, newlines, line_start, unicode_escape);
                Ok(())
            }
            Unit::Failed(failed) => self.failed(failed),
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
                    ..
                } => match value {
                    Skimmed::Value { capture, .. } => (capture, end, newlines, line_start),
                    // Containers are watched only in documents, never in lookup-events entries.
                    Skimmed::Container { .. } => (Capture::Absent, end, newlines, line_start),
                },
                Unit::Failed(failed) => return self.failed(failed),
            };
        let line = self.input.line;
        if matches!(capture, Capture::Absent | Capture::NotString(_))
            && self.input.starts_line(self.input.pos)
        {
            return self.stops_short("a lookup-events entry (with a \"CloudTrailEvent\" string)");
        }
        let flow = match capture {
            Capture::Absent => self.visitor.error(
                line,
                "lookup-events entry has no \"CloudTrailEvent\" member",
            ),
            Capture::NotString(first) => {
                let reason = format!("\"CloudTrailEvent\" is {}, not a string", kind_of(first));
                self.visitor.error(line, &reason)
            }
            Capture::String {
                start,
                end,
                escaped,
            } => {
                let raw = &self.input.buf[self.input.pos + start..self.input.pos + end];
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
        };
        self.stopped |= flow.is_break();
        self.settle_past(end, newlines, line_start);
        Ok(())
    }

    /// A '{' or '[' beginning a line where a container expected another kind of value: the
    /// document before it stopped short, and a new one starts there (see `recovery.rs`).
    fn stops_short(&mut self, expected: &'static str) -> io::Result<()> {
        let found = self.input.buf[self.input.pos];
        let problem = Problem::Unexpected {
            expected,
            found: Some(found),
        };
        self.syntax_error(self.input.pos, problem, 0, None)
    }

    /// A value whose only use is to be reported as the wrong shape; `message` turns the kind
    /// of value found ("a JSON number") into the reason.
    fn wrong_shape(&mut self, message: impl FnOnce(&str) -> String) -> io::Result<()> {
        let first = self.input.buf[self.input.pos];
        let depth = self.frames.len();
        match self.skim(depth, |skimmer| skimmer.value::<WATCH_NOTHING>())? {
            Unit::Done {
                end,
                newlines,
                line_start,
                ..
            } => {
                self.report(self.input.line, &message(kind_of(first)));
                self.settle_past(end, newlines, line_start);
                Ok(())
            }
            Unit::Failed(failed) => self.failed(failed),
        }
    }

    /// The value of a container member other than `Records` / `Events`: checked, not kept.
    fn ignored_value(&mut self) -> io::Result<()> {
        if self.input.skip_whitespace()?.is_none() {
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
                self.pass(end, newlines, line_start);
                Ok(())
            }
            Unit::Failed(failed) => self.failed(failed),
        }
    }

    /// Reports a unit that could not be skimmed and recovers past it.
    fn failed(&mut self, failed: Failed) -> io::Result<()> {
        match failed {
            Failed::Invalid {
                invalid,
                newlines,
                line_start,
            } => self.syntax_error(
                self.input.pos + invalid.at,
                invalid.problem,
                newlines,
                line_start,
            ),
            Failed::Oversize => self.oversize(),
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
            let mut skimmer = Skimmer::new(
                &self.input.buf[self.input.pos..self.input.end],
                self.input.eof,
                base_depth,
            );
            match step(&mut skimmer) {
                Ok(value) => {
                    return Ok(Unit::Done {
                        value,
                        end: skimmer.i,
                        newlines: skimmer.newlines,
                        line_start: skimmer.line_start,
                        unicode_escape: skimmer.unicode_escape,
                    });
                }
                Err(Stop::Invalid(invalid)) => {
                    return Ok(Unit::Failed(Failed::Invalid {
                        invalid,
                        newlines: skimmer.newlines,
                        line_start: skimmer.line_start,
                    }));
                }
                // With the whole input in view a skim cannot be incomplete; guard the loop anyway.
                Err(Stop::Incomplete) if self.input.eof => {
                    return Ok(Unit::Failed(Failed::Invalid {
                        invalid: Invalid {
                            at: self.input.end - self.input.pos,
                            problem: Problem::Unexpected {
                                expected: "the rest of the JSON value",
                                found: None,
                            },
                        },
                        newlines: skimmer.newlines,
                        line_start: skimmer.line_start,
                    }));
                }
                Err(Stop::Incomplete) => {
                    let open = skimmer.open;
                    if !self.input.fill_more(open)? {
                        return Ok(Unit::Failed(Failed::Oversize));
                    }
                }
            }
        }
    }

    /// Moves past a skimmed unit of `end` bytes that is not handed to the visitor (a container's
    /// opening, key or ignored member), noting it for recovery.
    fn pass(&mut self, end: usize, newlines: u64, line_start: Option<usize>) {
        self.note_unsettled(end);
        self.advance(end, newlines, line_start);
    }

    /// Moves past a unit of `end` bytes that the visitor was handed (a record, or a problem
    /// in its place): everything read so far is accounted for. `pass` is the unsettled kind.
    fn settle_past(&mut self, end: usize, newlines: u64, line_start: Option<usize>) {
        self.advance(end, newlines, line_start);
        self.settle();
    }

    /// Moves past a one-byte token ('[', ',', ']', '}') of a container, noting it for recovery.
    fn token(&mut self) {
        self.note_unsettled(1);
        self.input.pos += 1;
        self.last_token_line = self.input.line;
    }

    /// Moves past a skimmed unit of `end` bytes.
    pub(super) fn advance(&mut self, end: usize, newlines: u64, line_start: Option<usize>) {
        self.input.advance(end, newlines, line_start);
        self.last_token_line = self.input.line;
    }

    fn set_top(&mut self, frame: Frame) {
        if let Some(top) = self.frames.last_mut() {
            *top = frame;
        }
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
