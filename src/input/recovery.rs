//! Recovery after a syntax error or an oversized value in the fast decoder: where the error is
//! reported and where decoding resumes. The rules are shared with the reference decoder
//! (`reference.rs`) and documented in `mod.rs`.

use std::io::{self, Read};

use super::RecordVisitor;
use super::buffer::MAX_RECORD;
use super::skim::Problem;
use super::stream::Stream;

impl<R: Read, V: RecordVisitor> Stream<'_, R, V> {
    /// Reports a syntax error at `at` (an index in `buf`; `newlines` and `line_start` are the
    /// skimmer's counts from `pos` to it) and resumes where decoding can go on.
    ///
    /// The rules, shared with the reference decoder: when the offending byte is a '{' or '['
    /// that begins a line, the document before it stopped short (a truncated line), so the
    /// error goes to the line where that document's last token is and decoding resumes at the
    /// '{' or '['. Otherwise the error is reported where it is, and decoding resumes at the
    /// next line that begins with '{' or '[' (the next NDJSON line, the next pretty-printed
    /// document); a document that spans the rest of the input ends it, with one error.
    pub(super) fn syntax_error(
        &mut self,
        at: usize,
        problem: Problem,
        newlines: u64,
        line_start: Option<usize>,
    ) -> io::Result<()> {
        self.frames.clear();
        let line = self.input.line + newlines;
        let line_start = match line_start {
            Some(start) => self.input.offset + (self.input.pos + start) as u64,
            None => self.input.line_start,
        };
        let at_line_start = self.input.offset + at as u64 == line_start;
        let found = self.input.buf[..self.input.end].get(at).copied();
        if problem.is_end_of_input() || (at_line_start && matches!(found, Some(b'{' | b'['))) {
            let last_token_line = self.last_token_line_before(at, line);
            let reason = if found.is_some() {
                format!("the JSON document stops short: {problem} at the start of line {line}")
            } else {
                problem.to_string()
            };
            self.report(last_token_line, &reason);
            self.input.pos = at;
            self.input.line = line;
            self.input.line_start = line_start;
            self.last_token_line = line;
            return Ok(());
        }
        let column = self.input.offset + at as u64 - line_start + 1;
        self.report(line, &format!("{problem} at column {column}"));
        self.input.pos = at;
        self.input.line = line;
        self.input.line_start = line_start;
        self.resync()
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
    /// strings on the way.
    pub(super) fn oversize(&mut self) -> io::Result<()> {
        let reason = format!(
            "a JSON value larger than {} MiB starts here; skipped",
            MAX_RECORD >> 20
        );
        self.report(self.input.line, &reason);
        let mut depth: u64 = 0;
        let mut in_string = false;
        let mut escaped = false;
        loop {
            while let Some(&byte) = self.input.buf[..self.input.end].get(self.input.pos) {
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
                    b',' | b' ' | b'\t' | b'\r' | b'\n' if depth == 0 => {
                        // The end of a huge number or literal; the byte after it is not its.
                        self.input.pos -= 1;
                        if byte == b'\n' {
                            self.input.line -= 1;
                        }
                        return self.after_skip();
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
                return Ok(());
            }
            self.input.fill_more(0)?;
        }
    }

    fn after_skip(&mut self) -> io::Result<()> {
        self.last_token_line = self.input.line;
        Ok(())
    }
}
