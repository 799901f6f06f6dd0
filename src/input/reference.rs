//! The reference decoder: the same input shapes and recovery rules as the fast decoder, written
//! the obvious way on `serde_json` so that tests can hold the two side by side.
//!
//! It reads the whole input into memory, lets `serde_json` parse each document (container
//! members are visited as they are parsed, so the elements before a syntax error are still
//! delivered, as the streaming decoder does) and re-serialises each record it finds. It is not
//! meant for large inputs and does not cap the size of a record.

use std::fmt;
use std::io::{self, Read};
use std::ops::ControlFlow;

use flate2::read::MultiGzDecoder;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use super::RecordVisitor;
use super::buffer::BOM;
use super::skim::ContainerKind;
use super::stream::GZIP_MAGIC;

pub(super) fn decode_reference<R: Read, V: RecordVisitor>(
    mut reader: R,
    visitor: &mut V,
) -> io::Result<()> {
    let visitor = &mut Stopping {
        visitor,
        stopped: false,
    };
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
    let lines = Lines::new(text);
    let mut at = 0;
    loop {
        while text.get(at).is_some_and(|byte| b" \t\r\n".contains(byte)) {
            at += 1;
        }
        if at >= text.len() || visitor.stopped {
            return Ok(());
        }
        let mut sink = Sink {
            visitor: &mut *visitor,
            line: lines.line_of(at),
        };
        let mut parser = serde_json::Deserializer::from_slice(&text[at..]);
        let document = Document {
            sink: &mut sink,
            in_array: false,
        };
        match document.deserialize(&mut parser) {
            Ok(()) => at += parser.into_iter::<IgnoredAny>().byte_offset(),
            Err(error) => match recover(text, &lines, at, &error, visitor) {
                Some(next) => at = next,
                None => return Ok(()),
            },
        }
    }
}

/// Reports a syntax error in the document at `start` and says where decoding resumes, by the
/// rules the fast decoder documents on its `syntax_error`.
fn recover<V: RecordVisitor>(
    text: &[u8],
    lines: &Lines,
    start: usize,
    error: &serde_json::Error,
    visitor: &mut V,
) -> Option<usize> {
    if error.classify() == serde_json::error::Category::Eof {
        let _ = visitor.error(
            lines.last_token_line_before(text, text.len()),
            &error.to_string(),
        );
        return None;
    }
    // serde_json counts lines and columns from `start`; column 0 is the line break ending the
    // line before.
    let first_line = lines.line_of(start);
    let line_begin = if error.line() <= 1 {
        start
    } else {
        lines.start_of(first_line + error.line() as u64 - 1)
    };
    let at = (line_begin + error.column())
        .saturating_sub(1)
        .min(text.len());
    let at_line_start = at == 0 || text[at - 1] == b'\n';
    if at_line_start && matches!(text.get(at), Some(b'{' | b'[')) {
        let _ = visitor.error(lines.last_token_line_before(text, at), &error.to_string());
        return Some(at);
    }
    let _ = visitor.error(lines.line_of(at), &error.to_string());
    let mut next = at;
    loop {
        next += memchr::memchr(b'\n', &text[next..])? + 1;
        if matches!(text.get(next), Some(b'{' | b'[')) {
            return Some(next);
        }
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

/// Hands records and errors of one document to the visitor, all at the document's line.
struct Sink<'v, V> {
    visitor: &'v mut V,
    line: u64,
}

impl<V: RecordVisitor> Sink<'_, V> {
    fn record(&mut self, record: &Value) {
        if let Ok(bytes) = serde_json::to_vec(record) {
            let _ = self.visitor.record(&bytes, self.line);
        }
    }

    fn error(&mut self, reason: &str) {
        let _ = self.visitor.error(self.line, reason);
    }

    fn lookup_event(&mut self, entry: &Value) {
        let Value::Object(entry) = entry else {
            let reason = format!(
                "{} in \"Events\" is not a lookup-events entry",
                kind_of(entry)
            );
            return self.error(&reason);
        };
        match entry.get("CloudTrailEvent") {
            None => self.error("lookup-events entry has no \"CloudTrailEvent\" member"),
            Some(Value::String(content)) => match serde_json::from_str::<Value>(content) {
                Ok(Value::Object(_)) => {
                    let _ = self.visitor.record(content.as_bytes(), self.line);
                }
                Ok(other) => self.error(&format!(
                    "\"CloudTrailEvent\" does not hold a JSON object: it holds {}",
                    kind_of(&other)
                )),
                Err(error) => self.error(&format!(
                    "\"CloudTrailEvent\" does not hold a JSON object: {error}"
                )),
            },
            Some(other) => self.error(&format!(
                "\"CloudTrailEvent\" is {}, not a string",
                kind_of(other)
            )),
        }
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

/// A document, or an element of a top-level array (`in_array`).
struct Document<'s, 'v, V> {
    sink: &'s mut Sink<'v, V>,
    in_array: bool,
}

impl<'de, V: RecordVisitor> DeserializeSeed<'de> for Document<'_, '_, V> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<V: RecordVisitor> Document<'_, '_, V> {
    fn wrong_shape(self, kind: &str) {
        self.sink
            .error(&format!("{kind} is not a CloudTrail record"));
    }
}

impl<'de, V: RecordVisitor> Visitor<'de> for Document<'_, '_, V> {
    type Value = ();

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a CloudTrail record or a container of records")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut members = Map::new();
        let mut container = false;
        while let Some(key) = map.next_key::<String>()? {
            let kind = match key.as_str() {
                "Records" => ContainerKind::Records,
                "Events" => ContainerKind::Events,
                _ => {
                    let value: Value = map.next_value()?;
                    members.insert(key, value);
                    continue;
                }
            };
            container = true;
            map.next_value_seed(Elements {
                sink: &mut *self.sink,
                kind,
            })?;
        }
        if !container {
            self.sink.record(&Value::Object(members));
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        if self.in_array {
            while seq.next_element::<Value>()?.is_some() {}
            self.sink
                .error("a JSON array inside an array is not a CloudTrail record");
            return Ok(());
        }
        while seq
            .next_element_seed(Document {
                sink: &mut *self.sink,
                in_array: true,
            })?
            .is_some()
        {}
        Ok(())
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        self.wrong_shape("a JSON boolean");
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        self.wrong_shape("a JSON number");
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        self.wrong_shape("a JSON number");
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        self.wrong_shape("a JSON number");
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        self.wrong_shape("a JSON string");
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        self.wrong_shape("JSON null");
        Ok(())
    }
}

/// The value of a `Records` or `Events` member.
struct Elements<'s, 'v, V> {
    sink: &'s mut Sink<'v, V>,
    kind: ContainerKind,
}

impl<'de, V: RecordVisitor> DeserializeSeed<'de> for Elements<'_, '_, V> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<V: RecordVisitor> Elements<'_, '_, V> {
    fn wrong_shape(self, found: &str) {
        let reason = match self.kind {
            ContainerKind::Records => {
                format!("\"Records\" must be an array of CloudTrail records, found {found}")
            }
            ContainerKind::Events => {
                format!("\"Events\" must be an array of lookup-events entries, found {found}")
            }
        };
        self.sink.error(&reason);
    }
}

impl<'de, V: RecordVisitor> Visitor<'de> for Elements<'_, '_, V> {
    type Value = ();

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "the value of \"{}\"", self.kind.key())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(element) = seq.next_element::<Value>()? {
            match self.kind {
                ContainerKind::Records if element.is_object() => self.sink.record(&element),
                ContainerKind::Records => self.sink.error(&format!(
                    "{} in \"Records\" is not a CloudTrail record",
                    kind_of(&element)
                )),
                ContainerKind::Events => self.sink.lookup_event(&element),
            }
        }
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_entry::<String, Value>()?.is_some() {}
        self.wrong_shape("a JSON object");
        Ok(())
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        self.wrong_shape("a JSON boolean");
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        self.wrong_shape("a JSON number");
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        self.wrong_shape("a JSON number");
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        self.wrong_shape("a JSON number");
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        self.wrong_shape("a JSON string");
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        self.wrong_shape("JSON null");
        Ok(())
    }
}
