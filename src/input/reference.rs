//! The reference decoder: the same input shapes and recovery rules as the fast decoder, written
//! the obvious way on `serde_json` so that tests can hold the two side by side.
//!
//! It reads the whole input into memory and walks the few brackets around records by hand (a
//! top-level array, the object holding `Records` or `Events`, their arrays), so it knows where
//! every part starts, which the recovery rules need; every value, key and record is parsed by
//! `serde_json`, and records are handed out re-serialised. It is not meant for large inputs and
//! does not cap the size of a record.

use std::io::{self, Read};
use std::ops::ControlFlow;

use flate2::read::MultiGzDecoder;
use serde_json::{Map, Value};

use super::RecordVisitor;
use super::buffer::BOM;
use super::skim::{ContainerKind, MAX_NESTING};
use super::stream::GZIP_MAGIC;

pub(super) fn decode_reference<R: Read, V: RecordVisitor>(
    mut reader: R,
    visitor: &mut V,
) -> io::Result<()> {
    let mut raw = Vec::new();
    reader.read_to_end(&mut raw)?;
    let data = if raw.starts_with(&GZIP_MAGIC) {
        let mut out = Vec::new();
        if let Err(error) = MultiGzDecoder::new(&raw[..]).read_to_end(&mut out) {
            return Err(io::Error::new(
                error.kind(),
                format!(
                    "gzip stream is corrupt or truncated after {} bytes of decompressed input: {error}",
                    out.len()
                ),
            ));
        }
        out
    } else {
        raw
    };
    let text = data.strip_prefix(BOM).unwrap_or(&data);
    let mut walker = Walker {
        text,
        lines: Lines::new(text),
        visitor: Stopping {
            visitor,
            stopped: false,
        },
        settled: 0,
    };
    walker.run();
    Ok(())
}

/// A syntax error: the byte where it was found (the end of the text for "unexpected end"), and
/// what was wrong.
struct Broken {
    at: usize,
    reason: String,
}

struct Walker<'t, 'v, V> {
    text: &'t [u8],
    lines: Lines,
    visitor: Stopping<'v, V>,
    /// Just after the last record or wrong-shape value handed to the visitor, the last complete
    /// document or the last resume point: what follows is unsettled.
    settled: usize,
}

impl<V: RecordVisitor> Walker<'_, '_, V> {
    fn run(&mut self) {
        let mut at = 0;
        loop {
            at = self.skip_whitespace(at);
            if at >= self.text.len() || self.visitor.stopped {
                return;
            }
            match self.document(at) {
                Ok(end) => at = end,
                Err(broken) => match self.recover(broken) {
                    Some(next) => at = next,
                    None => return,
                },
            }
            self.settled = at;
        }
    }

    /// Reports a syntax error and says where decoding resumes, by the rules of `mod.rs` (the
    /// fast decoder's are on its `syntax_error`).
    fn recover(&mut self, broken: Broken) -> Option<usize> {
        let text = self.text;
        let unsettled = (self.settled..text.len())
            .find(|&i| !matches!(text[i], b' ' | b'\t' | b'\r' | b'\n' | b','))
            .unwrap_or(text.len());
        let from = unsettled.min(broken.at);
        let began = broken.at > from;
        let bracket_starting_a_line =
            |i: usize| matches!(text.get(i), Some(b'{' | b'[')) && (i == 0 || text[i - 1] == b'\n');
        if !began && (bracket_starting_a_line(from) || from >= text.len()) {
            let line = self.lines.last_token_line_before(text, from);
            let _ = self.visitor.error(line, &broken.reason);
            if bracket_starting_a_line(from) {
                return Some(from);
            }
            return None;
        }
        let _ = self.visitor.error(self.lines.line_of(from), &broken.reason);
        let mut next = from;
        loop {
            next += memchr::memchr(b'\n', &text[next..])? + 1;
            if bracket_starting_a_line(next) {
                return Some(next);
            }
        }
    }

    fn skip_whitespace(&self, mut at: usize) -> usize {
        while self
            .text
            .get(at)
            .is_some_and(|byte| matches!(byte, b' ' | b'\t' | b'\r' | b'\n'))
        {
            at += 1;
        }
        at
    }

    fn starts_line(&self, at: usize) -> bool {
        at == 0 || self.text[at - 1] == b'\n'
    }

    /// A '{' or '[' beginning a line where a container expected another kind of value: the
    /// document before it stopped short.
    fn stops_short(&self, at: usize) -> Broken {
        Broken {
            at,
            reason: "the JSON document stops short: a new one starts here".to_owned(),
        }
    }

    fn unexpected(&self, at: usize, expected: &str) -> Broken {
        let reason = match self.text.get(at) {
            Some(&byte) => format!("expected {expected}, found byte 0x{byte:02x}"),
            None => format!("unexpected end of input, expected {expected}"),
        };
        Broken { at, reason }
    }

    /// The value at `at` (not whitespace), inside `enclosing` brackets, and where it ends.
    fn value(&self, at: usize, enclosing: usize) -> Result<(Value, usize), Broken> {
        let mut values = serde_json::Deserializer::from_slice(&self.text[at..]).into_iter();
        match values.next() {
            Some(Ok(value)) => {
                if enclosing + depth(&value) > MAX_NESTING {
                    return Err(Broken {
                        at: at + 1,
                        reason: format!("JSON nested deeper than {MAX_NESTING} levels"),
                    });
                }
                Ok((value, at + values.byte_offset()))
            }
            // A number or literal followed by a byte that cannot follow a value: the value
            // itself is fine (serde_json has measured it), the byte after it is the error.
            Some(Err(_)) if values.byte_offset() > 0 => {
                let end = at + values.byte_offset();
                let value = serde_json::from_slice(&self.text[at..end])
                    .map_err(|error| self.serde_error(at, &error))?;
                Ok((value, end))
            }
            Some(Err(error)) => Err(self.serde_error(at, &error)),
            None => Err(self.unexpected(at, "a JSON value")),
        }
    }

    /// Where `serde_json`, parsing from `start`, found `error`.
    fn serde_error(&self, start: usize, error: &serde_json::Error) -> Broken {
        let reason = error.to_string();
        if error.classify() == serde_json::error::Category::Eof {
            let at = self.text.len();
            return Broken { at, reason };
        }
        // serde_json counts lines and columns from `start`; column 0 is the line break ending
        // the line before.
        let line_begin = if error.line() <= 1 {
            start
        } else {
            self.lines
                .start_of(self.lines.line_of(start) + error.line() as u64 - 1)
        };
        let found = (line_begin + error.column()).saturating_sub(1);
        // A value that starts with a bracket began there, whatever serde_json points at.
        let began = usize::from(matches!(self.text[start], b'{' | b'['));
        let at = found.max(start + began).min(self.text.len());
        Broken { at, reason }
    }

    /// A top-level document at `at`; returns where it ends.
    fn document(&mut self, at: usize) -> Result<usize, Broken> {
        match self.text[at] {
            b'{' => self.object(at, 0),
            b'[' => self.documents(at),
            _ => self.wrong_shape(at, 0, |kind| format!("{kind} is not a CloudTrail record")),
        }
    }

    /// A top-level array of documents, `[` at `at`.
    fn documents(&mut self, at: usize) -> Result<usize, Broken> {
        let mut i = self.skip_whitespace(at + 1);
        if self.text.get(i) == Some(&b']') {
            return Ok(i + 1);
        }
        loop {
            i = match self.text.get(i) {
                None => return Err(self.unexpected(i, "']' closing an array")),
                Some(b'[') if self.starts_line(i) => return Err(self.stops_short(i)),
                Some(b'{') => self.object(i, 1)?,
                Some(b'[') => self.wrong_shape(i, 1, |kind| {
                    format!("{kind} inside an array is not a CloudTrail record")
                })?,
                Some(_) => {
                    self.wrong_shape(i, 1, |kind| format!("{kind} is not a CloudTrail record"))?
                }
            };
            i = self.skip_whitespace(i);
            match self.text.get(i) {
                Some(b',') => i = self.skip_whitespace(i + 1),
                Some(b']') => return Ok(i + 1),
                _ => return Err(self.unexpected(i, "',' or ']' after an array element")),
            }
        }
    }

    /// A value that is not what its place calls for, at `at`: reported once it parses.
    fn wrong_shape(
        &mut self,
        at: usize,
        enclosing: usize,
        message: impl FnOnce(&str) -> String,
    ) -> Result<usize, Broken> {
        let (value, end) = self.value(at, enclosing)?;
        let _ = self
            .visitor
            .error(self.lines.line_of(at), &message(kind_of(&value)));
        self.settled = end;
        Ok(end)
    }

    /// An object at `at` that is a document or an element of a top-level array (inside
    /// `enclosing` brackets): a record, or a container whose members follow.
    fn object(&mut self, at: usize, enclosing: usize) -> Result<usize, Broken> {
        let mut members = Map::new();
        let mut i = self.skip_whitespace(at + 1);
        if self.text.get(i) == Some(&b'}') {
            self.record(&Value::Object(members), at, i + 1);
            return Ok(i + 1);
        }
        loop {
            let (key, value_at) = self.key(i)?;
            if let Some(kind) = container_kind(&key) {
                return self.container(value_at, kind, enclosing + 1);
            }
            let (value, end) = self.value(value_at, enclosing + 1)?;
            members.insert(key, value);
            i = self.skip_whitespace(end);
            match self.text.get(i) {
                Some(b',') => i = self.skip_whitespace(i + 1),
                Some(b'}') => {
                    self.record(&Value::Object(members), at, i + 1);
                    return Ok(i + 1);
                }
                _ => return Err(self.unexpected(i, "',' or '}' after an object member")),
            }
        }
    }

    /// An object key at `at` and the ':' after it; returns the key and where its value starts.
    fn key(&self, at: usize) -> Result<(String, usize), Broken> {
        if self.text.get(at) != Some(&b'"') {
            return Err(self.unexpected(at, "a string (object key)"));
        }
        let (key, end) = self.value(at, 0)?;
        let Value::String(key) = key else {
            unreachable!("a JSON value starting with '\"' is a string")
        };
        let colon = self.skip_whitespace(end);
        if self.text.get(colon) != Some(&b':') {
            return Err(self.unexpected(colon, "':' after an object key"));
        }
        Ok((key, self.skip_whitespace(colon + 1)))
    }

    /// The rest of a container object, from the value of its `kind` member at `at`; its
    /// members are inside `enclosing` brackets.
    fn container(
        &mut self,
        mut at: usize,
        mut kind: ContainerKind,
        enclosing: usize,
    ) -> Result<usize, Broken> {
        loop {
            at = match self.text.get(at) {
                Some(b'[') => self.elements(at, kind, enclosing + 1)?,
                Some(b'{') if self.starts_line(at) => return Err(self.stops_short(at)),
                _ => self.wrong_shape(at, enclosing, |found| match kind {
                    ContainerKind::Records => {
                        format!("\"Records\" must be an array of CloudTrail records, found {found}")
                    }
                    ContainerKind::Events => {
                        format!(
                            "\"Events\" must be an array of lookup-events entries, found {found}"
                        )
                    }
                })?,
            };
            // Other members: checked, not kept, until the next container member or the end.
            loop {
                let i = self.skip_whitespace(at);
                match self.text.get(i) {
                    Some(b'}') => return Ok(i + 1),
                    Some(b',') => {
                        let (key, value_at) = self.key(self.skip_whitespace(i + 1))?;
                        if let Some(next) = container_kind(&key) {
                            kind = next;
                            at = value_at;
                            break;
                        }
                        at = self.value(value_at, enclosing)?.1;
                    }
                    _ => return Err(self.unexpected(i, "',' or '}' after an object member")),
                }
            }
        }
    }

    /// The array under `Records` or `Events`, `[` at `at`; its elements are inside `enclosing`
    /// brackets.
    fn elements(
        &mut self,
        at: usize,
        kind: ContainerKind,
        enclosing: usize,
    ) -> Result<usize, Broken> {
        let mut i = self.skip_whitespace(at + 1);
        if self.text.get(i) == Some(&b']') {
            return Ok(i + 1);
        }
        loop {
            let (element, end) = match self.text.get(i) {
                None => return Err(self.unexpected(i, "']' closing an array")),
                Some(b'[') if self.starts_line(i) => return Err(self.stops_short(i)),
                Some(_) => self.value(i, enclosing)?,
            };
            let entry_without_record = kind == ContainerKind::Events
                && !matches!(element.get("CloudTrailEvent"), Some(Value::String(_)));
            if entry_without_record && element.is_object() && self.starts_line(i) {
                return Err(self.stops_short(i));
            }
            let line = self.lines.line_of(i);
            match (kind, &element) {
                (ContainerKind::Records, Value::Object(_)) => self.record(&element, i, end),
                (ContainerKind::Records, _) => {
                    let reason = format!(
                        "{} in \"Records\" is not a CloudTrail record",
                        kind_of(&element)
                    );
                    let _ = self.visitor.error(line, &reason);
                }
                (ContainerKind::Events, _) => self.lookup_event(&element, line),
            }
            self.settled = end;
            i = self.skip_whitespace(end);
            match self.text.get(i) {
                Some(b',') => i = self.skip_whitespace(i + 1),
                Some(b']') => return Ok(i + 1),
                _ => return Err(self.unexpected(i, "',' or ']' after an array element")),
            }
        }
    }

    /// Hands out the record that spans `start..end`.
    fn record(&mut self, record: &Value, start: usize, end: usize) {
        if let Ok(bytes) = serde_json::to_vec(record) {
            let _ = self.visitor.record(&bytes, self.lines.line_of(start));
        }
        self.settled = end;
    }

    fn lookup_event(&mut self, entry: &Value, line: u64) {
        let Value::Object(entry) = entry else {
            let reason = format!(
                "{} in \"Events\" is not a lookup-events entry",
                kind_of(entry)
            );
            let _ = self.visitor.error(line, &reason);
            return;
        };
        let outcome = match entry.get("CloudTrailEvent") {
            None => Err("lookup-events entry has no \"CloudTrailEvent\" member".to_owned()),
            Some(Value::String(content)) => match serde_json::from_str::<Value>(content) {
                Ok(Value::Object(_)) => Ok(content.as_bytes()),
                Ok(other) => Err(format!(
                    "\"CloudTrailEvent\" does not hold a JSON object: it holds {}",
                    kind_of(&other)
                )),
                Err(error) => Err(format!(
                    "\"CloudTrailEvent\" does not hold a JSON object: {error}"
                )),
            },
            Some(other) => Err(format!(
                "\"CloudTrailEvent\" is {}, not a string",
                kind_of(other)
            )),
        };
        let _ = match outcome {
            Ok(record) => self.visitor.record(record, line),
            Err(reason) => self.visitor.error(line, &reason),
        };
    }
}

fn container_kind(key: &str) -> Option<ContainerKind> {
    match key {
        "Records" => Some(ContainerKind::Records),
        "Events" => Some(ContainerKind::Events),
        _ => None,
    }
}

/// How deeply `value` nests: 0 for a scalar, 1 for a flat array or object.
fn depth(value: &Value) -> usize {
    match value {
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Value::Object(members) => 1 + members.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// Passes records and errors on until the visitor says stop, then swallows the rest (decoding
/// also stops at the next document).
struct Stopping<'v, V> {
    visitor: &'v mut V,
    stopped: bool,
}

impl<V: RecordVisitor> RecordVisitor for Stopping<'_, V> {
    fn record(&mut self, json: &[u8], line: u64) -> ControlFlow<()> {
        if !self.stopped {
            self.stopped = self.visitor.record(json, line).is_break();
        }
        ControlFlow::Continue(())
    }

    fn error(&mut self, line: u64, reason: &str) -> ControlFlow<()> {
        if !self.stopped {
            self.stopped = self.visitor.error(line, reason).is_break();
        }
        ControlFlow::Continue(())
    }
}

/// Where the lines of the input start.
struct Lines {
    starts: Vec<usize>,
}

impl Lines {
    fn new(text: &[u8]) -> Lines {
        let mut starts = vec![0];
        starts.extend(memchr::memchr_iter(b'\n', text).map(|at| at + 1));
        Lines { starts }
    }

    /// The 1-based line holding the byte at `at`.
    fn line_of(&self, at: usize) -> u64 {
        self.starts.partition_point(|&start| start <= at) as u64
    }

    fn start_of(&self, line: u64) -> usize {
        let index = usize::try_from(line.saturating_sub(1)).unwrap_or(usize::MAX);
        self.starts
            .get(index)
            .or(self.starts.last())
            .copied()
            .unwrap_or(0)
    }

    /// The line of the last byte before `at` that is not whitespace.
    fn last_token_line_before(&self, text: &[u8], at: usize) -> u64 {
        let token = text[..at]
            .iter()
            .rposition(|byte| !b" \t\r\n".contains(byte))
            .unwrap_or(0);
        self.line_of(token)
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "JSON null",
        Value::Bool(_) => "a JSON boolean",
        Value::Number(_) => "a JSON number",
        Value::String(_) => "a JSON string",
        Value::Array(_) => "a JSON array",
        Value::Object(_) => "a JSON object",
    }
}
