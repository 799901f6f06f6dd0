//! Recovery after a syntax error or an oversized value in the fast decoder: where the error is
//! reported and where decoding resumes. The rules are shared with the reference decoder
//! (`reference.rs`) and documented in `mod.rs`.
//!
//! The input read since the last record (or wrong-shape value) handed to the visitor is
//! *unsettled*: a container's opening, keys, ignored members, brackets and commas, and the unit
//! being read. A syntax error may show up long after the byte that really broke the input (a
//! line cut right after ':' takes the next line as its value and breaks only at the line after
//! that), so recovery goes back to the first line that begins with '{' or '[' after the start of
//! the unsettled part. To that end the first such line is noted as units are passed, and kept in
//! the buffer (`buffer.rs`) until the next record settles it.

use std::io::{self, Read};

use super::RecordVisitor;
use super::buffer::{MAX_RECORD, Restart};
use super::skim::Problem;
use super::stream::Stream;

impl<R: Read, V: RecordVisitor> Stream<'_, R, V> {
    /// Everything read so far is accounted for: a record or a wrong-shape value was handed to
    /// the visitor, a document ended, or decoding resumed after an error.
    pub(super) fn settle(&mut self) {
        self.broken_from = None;
        self.input.restart = None;
    }

    /// Notes `buf[pos..pos + len]`, about to be passed without being handed to the visitor: where
    /// the unsettled part begins and the first line in it that begins with '{' or '['.
    pub(super) fn note_unsettled(&mut self, len: usize) {
        let (pos, to) = (self.input.pos, self.input.pos + len);
        let mut from = pos;
        if self.broken_from.is_none() {
            let Some(first) = self.input.buf[pos..to]
                .iter()
                .position(|byte| !matches!(byte, b' ' | b'\t' | b'\r' | b'\n' | b','))
            else {
                return;
            };
            self.broken_from = Some(self.input.line_of(pos + first));
            from = pos + first + 1;
        }
        if self.input.restart.is_none()
            && let Some(at) = self.input.line_start_bracket(from, to)
        {
            self.input.restart = Some(Restart {
                at,
                line: self.input.line_of(at),
            });
        }
    }

    /// Reports a syntax error at `at` (an index in `buf`, at or after `pos`, which is where the
    /// unit that broke starts; `newlines` and `line_start` are the skimmer's counts from `pos` to
    /// `at`) and resumes where decoding can go on.
    ///
    /// The rules, shared with the reference decoder: the broken part begins at the first token
    /// other than ',' of the unsettled input, or at `at` when nothing else is unsettled. When the
    /// error is right there and it is a '{' or '[' beginning a line, the document before it
    /// stopped short: the error goes to the line of the last token before it and decoding
    /// resumes at that '{' or '['. Otherwise the error goes to the line where the broken part
    /// begins, and decoding resumes at the first line after that point that begins with '{' or
    /// '[' (the next NDJSON line, the next pretty-printed document, a line that the broken
    /// document had swallowed as a value); without one, the input ends with that error.
    pub(super) fn syntax_error(
        &mut self,
        at: usize,
        problem: Problem,
        newlines: u64,
        line_start: Option<usize>,
    ) -> io::Result<()> {
        if !self.number_as_input() {
            return Ok(());
        }
        self.frames.clear();
        let line = self.input.line + newlines;
        let line_start = match line_start {
            Some(start) => self.input.offset + (self.input.pos + start) as u64,
            None => self.input.line_start,
        };
        let found = self.input.buf[..self.input.end].get(at).copied();
        let bracket_starting_a_line =
            self.input.offset + at as u64 == line_start && matches!(found, Some(b'{' | b'['));
        let (from_line, began) = match self.broken_from {
            Some(from_line) => (from_line, true),
            None => (self.input.line, at > self.input.pos),
        };
        if !began && (bracket_starting_a_line || found.is_none()) {
            let last_token_line = self.last_token_line_before(at, line);
            let reason = if found.is_some() {
                format!("the JSON document stops short: {problem} at the start of line {line}")
            } else {
                problem.to_string()
            };
            self.report(last_token_line, &reason);
            if bracket_starting_a_line {
                self.resume_at(at, line, line_start);
                return Ok(());
            }
        } else {
            let reason = match found {
                None => problem.to_string(),
                Some(_) => {
                    let column = self.input.offset + at as u64 - line_start + 1;
                    if line == from_line {
                        format!("{problem} at column {column}")
                    } else {
                        format!("{problem} at line {line} column {column}")
                    }
                }
            };
            self.report(from_line, &reason);
        }
        if let Some(restart) = self.input.restart {
            let line_start = self.input.offset + restart.at as u64;
            self.resume_at(restart.at, restart.line, line_start);
            return Ok(());
        }
        // The unit that broke may have swallowed lines: look in it first, then past it.
        let from = if self.broken_from.is_some() {
            self.input.pos
        } else {
            self.input.pos + 1
        };
        let to = (at + 1).min(self.input.end);
        if let Some(restart) = self.input.line_start_bracket(from, to) {
            let restart_line = self.input.line_of(restart);
            let line_start = self.input.offset + restart as u64;
            self.resume_at(restart, restart_line, line_start);
            return Ok(());
        }
        self.input.pos = at;
        self.input.line = line;
        self.input.line_start = line_start;
        self.resync()?;
        self.settle();
        Ok(())
    }

    /// Goes on decoding at `buf[at]`, a '{' or '[' beginning line `line`, as a new document.
    fn resume_at(&mut self, at: usize, line: u64, line_start: u64) {
        self.frames.clear();
        self.input.pos = at;
        self.input.line = line;
        self.input.line_start = line_start;
        self.last_token_line = line;
        self.settle();
    }

    /// The line of the last token before `at` (which is on line `line`): whitespace between
    /// them may hold line breaks.
    fn last_token_line_before(&self, at: usize, line: u64) -> u64 {
        let mut newlines = 0;
        for &byte in self.input.buf[self.input.pos..at.min(self.input.end)]
            .iter()
            .rev()
        {
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
            match memchr::memchr(b'\n', &self.input.buf[self.input.pos..self.input.end]) {
                Some(found) => {
                    self.input.pos += found + 1;
                    self.input.line += 1;
                    self.input.line_start = self.input.offset + self.input.pos as u64;
                    while self.input.pos == self.input.end && !self.input.eof {
                        self.input.fill_more(0)?;
                    }
                    match self.input.buf[..self.input.end].get(self.input.pos) {
                        None => return Ok(()),
                        Some(b'{' | b'[') => {
                            self.last_token_line = self.input.line;
                            return Ok(());
                        }
                        Some(_) => {}
                    }
                }
                None => {
                    self.input.pos = self.input.end;
                    if self.input.eof {
                        return Ok(());
                    }
                    self.input.fill_more(0)?;
                }
            }
        }
    }

    /// Reports the value at `pos` as too large and skips it, checking nothing but brackets and
    /// strings on the way. A line that begins with '{' or '[' inside it means the value was cut
    /// short and swallowed what follows: decoding resumes there, as after a syntax error.
    pub(super) fn oversize(&mut self) -> io::Result<()> {
        if !self.number_as_input() {
            return Ok(());
        }
        let reason = format!(
            "a JSON value larger than {} MiB starts here; skipped",
            MAX_RECORD >> 20
        );
        self.report(self.input.line, &reason);
        let mut depth: u64 = 0;
        let mut in_string = false;
        let mut escaped = false;
        let mut first = true;
        loop {
            while let Some(&byte) = self.input.buf[..self.input.end].get(self.input.pos) {
                if !first
                    && matches!(byte, b'{' | b'[')
                    && self.input.offset + self.input.pos as u64 == self.input.line_start
                {
                    self.frames.clear();
                    return self.after_skip();
                }
                first = false;
                if depth == 0 && !in_string && matches!(byte, b',' | b' ' | b'\t' | b'\r' | b'\n') {
                    // The end of a huge number or literal; the byte is not its.
                    return self.after_skip();
                }
                self.input.pos += 1;
                if byte == b'\n' {
                    self.input.line += 1;
                    self.input.line_start = self.input.offset + self.input.pos as u64;
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
                    _ => {}
                }
            }
            if self.input.eof {
                self.frames.clear();
                self.report(
                    self.input.line,
                    "unexpected end of input inside the oversized JSON value",
                );
                self.settle();
                return Ok(());
            }
            self.input.fill_more(0)?;
        }
    }

    fn after_skip(&mut self) -> io::Result<()> {
        self.last_token_line = self.input.line;
        self.settle();
        Ok(())
    }
}
