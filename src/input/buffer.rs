//! The fast decoder's input buffer: one refillable, bounded buffer over a reader, with line
//! counting.
//!
//! Records are handed out as slices of this buffer, so it grows only for a single value larger
//! than it, up to [`MAX_RECORD`]; memory stays flat whatever the input size. It knows bytes,
//! offsets and lines; it does not know JSON (`skim.rs`), containers (`stream.rs`) or what to do
//! after an error (`recovery.rs`).

use std::io::{self, Read};

/// Largest single value (record, lookup-events entry, ignored member) kept whole; a larger one
/// is reported and skipped.
pub(super) const MAX_RECORD: usize = 16 << 20;
/// Initial buffer size, and the most read at once.
const INITIAL_BUFFER: usize = 1 << 20;
/// Below this much free space, the buffer is compacted (or grown) before reading.
const MIN_READ: usize = 64 << 10;
const MAX_BUFFER: usize = MAX_RECORD + INITIAL_BUFFER;

pub(super) const BOM: &[u8] = b"\xef\xbb\xbf";

/// A place before `pos` that decoding may go back to after a syntax error (see `recovery.rs`),
/// kept in the buffer across refills while the part of the input after it is less than
/// [`MAX_RECORD`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Restart {
    /// Index in `buf`.
    pub(super) at: usize,
    /// Its line.
    pub(super) line: u64,
}

pub(super) struct Buffer<R> {
    reader: R,
    /// The input is decompressed gzip (for error messages).
    gzip: bool,
    pub(super) buf: Vec<u8>,
    /// Start of the unread part of `buf`.
    pub(super) pos: usize,
    /// End of the data in `buf`.
    pub(super) end: usize,
    pub(super) eof: bool,
    /// Offset in the (decompressed) input of `buf[0]`.
    pub(super) offset: u64,
    /// Line number at `pos`.
    pub(super) line: u64,
    /// Offset in the input of the first byte of that line.
    pub(super) line_start: u64,
    /// Where decoding goes back to after a syntax error, if anywhere; `None` once it would hold
    /// more than [`MAX_RECORD`] of input, so memory stays bounded.
    pub(super) restart: Option<Restart>,
}

impl<R: Read> Buffer<R> {
    pub(super) fn new(reader: R, gzip: bool) -> Self {
        Buffer {
            reader,
            gzip,
            buf: vec![0; INITIAL_BUFFER],
            pos: 0,
            end: 0,
            eof: false,
            offset: 0,
            line: 1,
            line_start: 0,
            restart: None,
        }
    }

    /// A buffer over input that is already all in memory (a gzip file inflated whole), shorter than
    /// [`MAX_RECORD`] so that no unit in it can be oversized: the bytes are used where they are,
    /// not copied.
    pub(super) fn whole(bytes: Vec<u8>, reader: R, gzip: bool) -> Self {
        debug_assert!(bytes.len() < MAX_RECORD);
        Buffer {
            reader,
            gzip,
            end: bytes.len(),
            buf: bytes,
            pos: 0,
            eof: true,
            offset: 0,
            line: 1,
            line_start: 0,
            restart: None,
        }
    }

    /// Skips a UTF-8 byte order mark at the very start.
    pub(super) fn skip_bom(&mut self) -> io::Result<()> {
        while self.end - self.pos < BOM.len() && !self.eof {
            self.fill_more(0)?;
        }
        if self.buf[self.pos..self.end].starts_with(BOM) {
            self.pos += BOM.len();
            self.line_start = BOM.len() as u64;
        }
        Ok(())
    }

    /// Moves past a skimmed unit of `end` bytes holding `newlines` line breaks, the last of which
    /// ends at `line_start` (relative to `pos`).
    pub(super) fn advance(&mut self, end: usize, newlines: u64, line_start: Option<usize>) {
        if let Some(line_start) = line_start {
            self.line_start = self.offset + (self.pos + line_start) as u64;
        }
        self.line += newlines;
        self.pos += end;
    }

    /// Whether `buf[at]` (at or after `pos`) is the first byte of a line.
    pub(super) fn starts_line(&self, at: usize) -> bool {
        if at == self.pos {
            self.offset + at as u64 == self.line_start
        } else {
            self.buf[at - 1] == b'\n'
        }
    }

    /// The first '{' or '[' that begins a line in `buf[from..to]` (`pos <= from`).
    pub(super) fn line_start_bracket(&self, from: usize, to: usize) -> Option<usize> {
        let is_bracket = |at: usize| matches!(self.buf[at], b'{' | b'[');
        let mut at = from;
        if at == self.pos {
            if at < to && is_bracket(at) && self.starts_line(at) {
                return Some(at);
            }
            at += 1;
        }
        while at < to {
            let newline = memchr::memchr(b'\n', &self.buf[at - 1..to - 1])?;
            let candidate = at + newline;
            if is_bracket(candidate) {
                return Some(candidate);
            }
            at = candidate + 1;
        }
        None
    }

    /// The line of `buf[at]` (at or after `pos`).
    pub(super) fn line_of(&self, at: usize) -> u64 {
        self.line + memchr::memchr_iter(b'\n', &self.buf[self.pos..at]).count() as u64
    }

    /// Skips whitespace (counting lines, keeping nothing) up to the next token.
    pub(super) fn skip_whitespace(&mut self) -> io::Result<Option<u8>> {
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
    pub(super) fn fill_more(&mut self, open: usize) -> io::Result<bool> {
        if self.eof {
            return Ok(true);
        }
        let pending = self.end - self.pos;
        if pending >= MAX_RECORD {
            return Ok(false);
        }
        if self
            .restart
            .is_some_and(|restart| self.end - restart.at >= MAX_RECORD)
        {
            self.restart = None;
        }
        if self.buf.len() - self.end < MIN_READ {
            let keep = self.restart.map_or(self.pos, |restart| restart.at);
            if keep > 0 {
                self.buf.copy_within(keep..self.end, 0);
                self.offset += keep as u64;
                self.end -= keep;
                self.pos -= keep;
                if let Some(restart) = &mut self.restart {
                    restart.at = 0;
                }
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
                // Said where by the decoder's `read_error`, once it knows how to number lines.
                Err(error) => return Err(error),
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

    /// Starts `offset` bytes into an input, at the start of a line (a part of a file).
    pub(super) fn starting_at(mut self, offset: u64) -> Self {
        self.offset = offset;
        self.line_start = offset;
        self
    }

    /// `error`, from reading the input, with where it happened.
    pub(super) fn read_error(&self, error: io::Error) -> io::Error {
        let at = self.offset + self.end as u64;
        if error.kind() == io::ErrorKind::FileTooLarge {
            return io::Error::new(
                error.kind(),
                format!(
                    "stopped after {at} bytes of decompressed input (line {}): {error}",
                    self.line_count_at_end()
                ),
            );
        }
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
}
