//! The validating skimmer: walks one JSON value in a byte slice, checks its syntax as strictly as
//! `serde_json` does and reports where the value ends, without building anything.
//!
//! It owns the JSON grammar (structure, strings, escapes, numbers, literals, nesting depth) and
//! the watch on the top-level keys of an object (`Records` / `Events` containers, the
//! `CloudTrailEvent` member of a lookup-events entry). It does not own buffering or input shapes:
//! it runs over whatever slice it is given, and when the slice ends before the value does it
//! answers [`Stop::Incomplete`] so the caller can read more and skim the value again from its
//! start. Records are small next to the read buffer, so restarting costs far less than keeping
//! resumable state in the hot loop.
//!
//! Where the time goes: most of a CloudTrail record is string content, so the end of a string
//! is found with a 64-bit mask of the bytes that can stop it ('"', '\\', control characters,
//! non-ASCII), computed 64 bytes at a time (SSE2 on x86_64, the module's only `unsafe`;
//! portable word arithmetic elsewhere) and kept across strings, since one block holds several.
//! The structure between strings is walked a byte at a time with the common case tested
//! first, and nesting is a bit stack in a `u128`.
//!
//! What it checks, like `serde_json`: control characters and invalid escapes inside strings,
//! unpaired UTF-16 surrogates in `\u` escapes, UTF-8 validity of strings, the number grammar and
//! numbers too large for an `f64`, and nesting deeper than 127 levels (counted from the root of
//! the document, so it never recurses and never overflows the stack). What it does not check:
//! duplicate keys (a full parse keeps the last one), and the exact `f64` overflow boundary, which
//! may differ from `serde_json` for numbers within an ulp of `f64::MAX`.

use std::fmt;

/// Deepest nesting accepted, counted from the root of a document: the same limit as
/// `serde_json`, so a value the skimmer accepts is one the consumer can parse.
pub(super) const MAX_NESTING: usize = 127;

/// Watch nothing: the value is a record.
pub(super) const WATCH_NOTHING: u8 = 0;
/// Watch top-level keys `Records` and `Events`: the object may be a container.
pub(super) const WATCH_CONTAINERS: u8 = 1;
/// Capture the top-level `CloudTrailEvent` member: the object is a lookup-events entry.
pub(super) const WATCH_CLOUDTRAIL_EVENT: u8 = 2;

/// The two container keys an object can have at its top level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ContainerKind {
    /// `{"Records": [ record, ... ]}`: a CloudTrail log file.
    Records,
    /// `{"Events": [ {"CloudTrailEvent": "..."}, ... ]}`: `lookup-events` output.
    Events,
}

/// The `CloudTrailEvent` member of a lookup-events entry, as seen by the skimmer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Capture {
    /// No such member.
    Absent,
    /// The member is not a string; the byte is the first one of its value.
    NotString(u8),
    /// The member is a string whose raw (still escaped) content is `start..end`.
    String {
        start: usize,
        end: usize,
        escaped: bool,
    },
}

/// What a successful skim found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Skimmed {
    /// A complete value that ends just before `end`.
    Value { end: usize, capture: Capture },
    /// The object has a top-level member named after a container; `value_at` is just after
    /// its ':'. The object's other members are of no interest to the skimmer's caller.
    Container {
        kind: ContainerKind,
        value_at: usize,
    },
}

/// Why a skim stopped before the end of the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Stop {
    /// The slice ended first, and more input may follow.
    Incomplete,
    /// The input is not valid JSON at `at`.
    Invalid(Invalid),
}

/// A syntax error: where, and what was wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Invalid {
    pub(super) at: usize,
    pub(super) problem: Problem,
}

/// What was wrong with the input at the position of an [`Invalid`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Problem {
    /// The grammar allowed `expected`; `found` is `None` at the end of the input.
    Unexpected {
        expected: &'static str,
        found: Option<u8>,
    },
    ControlCharacter(u8),
    InvalidEscape,
    LoneSurrogate,
    InvalidUtf8,
    InvalidNumber,
    NumberOutOfRange,
    InvalidLiteral,
    TooDeep,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Unexpected {
                expected,
                found: Some(byte),
            } => write!(f, "expected {expected}, found {}", Byte(*byte)),
            Problem::Unexpected {
                expected,
                found: None,
            } => write!(f, "unexpected end of input, expected {expected}"),
            Problem::ControlCharacter(b'\n') => {
                f.write_str("line break inside a string (the string is not closed on its line)")
            }
            Problem::ControlCharacter(byte) => {
                write!(
                    f,
                    "unescaped control character 0x{byte:02x} inside a string"
                )
            }
            Problem::InvalidEscape => f.write_str("invalid escape sequence in a string"),
            Problem::LoneSurrogate => f.write_str("unpaired UTF-16 surrogate in a \\u escape"),
            Problem::InvalidUtf8 => f.write_str("invalid UTF-8 in a string"),
            Problem::InvalidNumber => f.write_str("invalid number"),
            Problem::NumberOutOfRange => f.write_str("number too large for a 64-bit float"),
            Problem::InvalidLiteral => {
                f.write_str("invalid literal (expected true, false or null)")
            }
            Problem::TooDeep => write!(f, "JSON nested deeper than {MAX_NESTING} levels"),
        }
    }
}

/// A byte as an error message shows it: the character if printable, else its value.
pub(super) struct Byte(pub(super) u8);

impl fmt::Display for Byte {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            b'\'' => f.write_str("\"'\""),
            0x21..=0x7e => write!(f, "'{}'", self.0 as char),
            b' ' => f.write_str("' '"),
            byte => write!(f, "byte 0x{byte:02x}"),
        }
    }
}

/// The kind of JSON value that starts with `first`, for messages about the wrong shape.
pub(super) fn kind_of(first: u8) -> &'static str {
    match first {
        b'{' => "a JSON object",
        b'[' => "a JSON array",
        b'"' => "a JSON string",
        b't' | b'f' => "a JSON boolean",
        b'n' => "JSON null",
        _ => "a JSON number",
    }
}

/// Whether `byte` ends the fast path inside a string: '"', '\\', a control character (an
/// error) or a non-ASCII byte (checked as UTF-8).
#[inline(always)]
fn is_string_stopper(byte: u8) -> bool {
    // One comparison for both ranges: below 0x20 and from 0x80 up wrap to 0x60 and above.
    (byte == b'"') | (byte == b'\\') | (byte.wrapping_sub(0x20) >= 0x60)
}

/// Bit n is set when byte n of `block` is a string stopper; x86_64 form, with the SSE2
/// instructions every x86_64 CPU has.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn string_stoppers(block: &[u8; 64]) -> u64 {
    use std::arch::x86_64::{
        _mm_cmpeq_epi8, _mm_cmplt_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8,
    };
    let mut mask = 0;
    for (n, chunk) in block.chunks_exact(16).enumerate() {
        // SAFETY: SSE2 is part of the x86_64 baseline, so these instructions exist on every
        // x86_64 CPU; the unaligned load reads the 16 bytes of `chunk` and nothing else.
        let bits = unsafe {
            let bytes = _mm_loadu_si128(chunk.as_ptr().cast());
            let quote = _mm_cmpeq_epi8(bytes, _mm_set1_epi8(b'"' as i8));
            let backslash = _mm_cmpeq_epi8(bytes, _mm_set1_epi8(b'\\' as i8));
            // Signed: below 0x20 is a control character, negative is a non-ASCII byte.
            let control_or_high = _mm_cmplt_epi8(bytes, _mm_set1_epi8(0x20));
            _mm_movemask_epi8(_mm_or_si128(
                _mm_or_si128(quote, backslash),
                control_or_high,
            ))
        };
        mask |= u64::from(bits as u16) << (16 * n);
    }
    mask
}

/// Bit n is set when byte n of `block` is a string stopper.
#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn string_stoppers(block: &[u8; 64]) -> u64 {
    string_stoppers_portable(block)
}

/// [`string_stoppers`] for any target: eight bytes at a time with carry-free arithmetic, so
/// each byte's flag is exact.
#[cfg(any(test, not(target_arch = "x86_64")))]
#[inline(always)]
fn string_stoppers_portable(block: &[u8; 64]) -> u64 {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    const ONES: u64 = 0x0101_0101_0101_0101;
    // High bit of each byte set when that byte of `word` is non-zero; no carry crosses bytes.
    let non_zero = |word: u64| ((word & LOW7) + LOW7) | word;
    let mut mask = 0;
    for (n, chunk) in block.chunks_exact(8).enumerate() {
        let mut bytes = [0; 8];
        bytes.copy_from_slice(chunk);
        let word = u64::from_le_bytes(bytes);
        let quote = !non_zero(word ^ (ONES * u64::from(b'"')));
        let backslash = !non_zero(word ^ (ONES * u64::from(b'\\')));
        let control = !((word & LOW7) + ONES * 0x60);
        let flags = (quote | backslash | control | word) & HIGH;
        // Gather the eight high bits into one byte, byte n to bit n.
        let bits = ((flags >> 7).wrapping_mul(0x0102_0408_1020_4080)) >> 56;
        mask |= bits << (8 * n);
    }
    mask
}

/// No cached block: an index no slice reaches, far enough from 0 that `from - NO_BLOCK` wraps
/// to a huge offset for every real index.
const NO_BLOCK: usize = usize::MAX / 2;

/// One skim over `bytes`, which hold the value to skim and possibly more after it.
pub(super) struct Skimmer<'a> {
    bytes: &'a [u8],
    /// The next byte to look at.
    pub(super) i: usize,
    /// Whether `bytes` runs to the end of the input (nothing more will come).
    eof: bool,
    /// How deep the value itself sits in its document.
    base_depth: usize,
    /// How many containers were open when the input ran out ([`Stop::Incomplete`]).
    pub(super) open: usize,
    /// Newlines passed so far. Valid JSON holds newlines only in whitespace between tokens.
    pub(super) newlines: u64,
    /// Index just after the last newline passed.
    pub(super) line_start: Option<usize>,
    capture: Capture,
    /// Where the cached [`string_stoppers`] block starts ([`NO_BLOCK`]: none). Strings are
    /// short, so one block serves several of them and the search for a string's end rarely
    /// leaves it.
    block_at: usize,
    block: u64,
    /// A string skimmed so far holds a `\u` escape (every escape passes through
    /// [`Self::escape`], so `false` is a proof that there is none).
    pub(super) unicode_escape: bool,
}

impl<'a> Skimmer<'a> {
    pub(super) fn new(bytes: &'a [u8], eof: bool, base_depth: usize) -> Skimmer<'a> {
        Skimmer {
            bytes,
            i: 0,
            eof,
            base_depth,
            open: 0,
            newlines: 0,
            line_start: None,
            capture: Capture::Absent,
            block_at: NO_BLOCK,
            block: 0,
            unicode_escape: false,
        }
    }

    /// Index of the first string stopper at or after `from`, or the length of the bytes.
    #[inline(always)]
    fn next_stopper(&mut self, from: usize) -> usize {
        let offset = from.wrapping_sub(self.block_at);
        if offset < 64 {
            let ahead = self.block >> offset;
            if ahead != 0 {
                return from + ahead.trailing_zeros() as usize;
            }
        }
        self.next_stopper_in_new_blocks(from)
    }

    #[inline(always)]
    fn next_stopper_in_new_blocks(&mut self, from: usize) -> usize {
        // Nothing from `from` to the end of the cached block: go on right after it.
        let mut at = if from.wrapping_sub(self.block_at) < 64 {
            self.block_at + 64
        } else {
            from
        };
        while let Some(block) = self
            .bytes
            .get(at..)
            .and_then(|rest| rest.first_chunk::<64>())
        {
            self.block_at = at;
            self.block = string_stoppers(block);
            if self.block != 0 {
                return at + self.block.trailing_zeros() as usize;
            }
            at += 64;
        }
        self.block_at = NO_BLOCK;
        let tail = self.bytes.get(at..).unwrap_or_default();
        at + tail
            .iter()
            .position(|&byte| is_string_stopper(byte))
            .unwrap_or(tail.len())
    }

    #[cold]
    fn end_of_input(&self, expected: &'static str) -> Stop {
        if self.eof {
            Stop::Invalid(Invalid {
                at: self.bytes.len(),
                problem: Problem::Unexpected {
                    expected,
                    found: None,
                },
            })
        } else {
            Stop::Incomplete
        }
    }

    #[cold]
    fn invalid(&self, at: usize, problem: Problem) -> Stop {
        Stop::Invalid(Invalid { at, problem })
    }

    #[cold]
    fn unexpected(&self, expected: &'static str, found: u8) -> Stop {
        self.invalid(
            self.i,
            Problem::Unexpected {
                expected,
                found: Some(found),
            },
        )
    }

    /// Skips whitespace and returns the next byte without consuming it.
    #[inline(always)]
    pub(super) fn next_token(&mut self, expected: &'static str) -> Result<u8, Stop> {
        // Compact JSON has no whitespace between tokens: one compare, no jump table.
        if let Some(&byte) = self.bytes.get(self.i)
            && byte > b' '
        {
            return Ok(byte);
        }
        self.whitespace_then_token(expected)
    }

    fn whitespace_then_token(&mut self, expected: &'static str) -> Result<u8, Stop> {
        loop {
            let Some(&byte) = self.bytes.get(self.i) else {
                return Err(self.end_of_input(expected));
            };
            match byte {
                b' ' | b'\t' | b'\r' => self.i += 1,
                b'\n' => {
                    self.i += 1;
                    self.newlines += 1;
                    self.line_start = Some(self.i);
                }
                _ => return Ok(byte),
            }
        }
    }

    /// Skips trailing whitespace and fails unless the bytes end there.
    pub(super) fn expect_end(&mut self) -> Result<(), Stop> {
        match self.next_token("the end of the input") {
            Ok(byte) => Err(self.unexpected("the end of the input", byte)),
            Err(Stop::Invalid(_)) if self.i >= self.bytes.len() => Ok(()),
            Err(stop) => Err(stop),
        }
    }

    /// Skims one value starting at the next token. `WATCH` says which top-level keys of an
    /// object matter (see the `WATCH_*` constants).
    pub(super) fn value<const WATCH: u8>(&mut self) -> Result<Skimmed, Stop> {
        let mut depth = 0;
        let skimmed = self.value_with_depth::<WATCH>(&mut depth);
        if skimmed == Err(Stop::Incomplete) {
            self.open = depth;
        }
        skimmed
    }

    /// [`Self::value`], keeping the nesting depth where the caller can see it when the input
    /// runs out (inlined, so `depth` stays a register).
    #[inline(always)]
    fn value_with_depth<const WATCH: u8>(&mut self, depth: &mut usize) -> Result<Skimmed, Stop> {
        // One bit per open container, 1 for an object: depth is bounded, so a u128 is the stack.
        let mut stack: u128 = 0;
        let room = MAX_NESTING.saturating_sub(self.base_depth);
        'value: loop {
            let byte = self.next_token("a JSON value")?;
            // Most values are strings: test for them before the jump table of the match.
            if byte == b'"' {
                self.i += 1;
                self.string()?;
            } else {
                match byte {
                    b'{' => {
                        if *depth >= room {
                            return Err(self.invalid(self.i, Problem::TooDeep));
                        }
                        *depth += 1;
                        stack = (stack << 1) | 1;
                        self.i += 1;
                        let byte = self.next_token("a string (object key) or '}'")?;
                        if byte == b'}' {
                            self.i += 1;
                            *depth -= 1;
                            stack >>= 1;
                        } else if byte == b'"' {
                            match self.member::<WATCH>(*depth)? {
                                Next::Value => continue 'value,
                                Next::Container(kind) => {
                                    return Ok(Skimmed::Container {
                                        kind,
                                        value_at: self.i,
                                    });
                                }
                                Next::AfterValue => {}
                            }
                        } else {
                            return Err(self.unexpected("a string (object key) or '}'", byte));
                        }
                    }
                    b'[' => {
                        if *depth >= room {
                            return Err(self.invalid(self.i, Problem::TooDeep));
                        }
                        *depth += 1;
                        stack <<= 1;
                        self.i += 1;
                        if self.next_token("a JSON value or ']'")? == b']' {
                            self.i += 1;
                            *depth -= 1;
                            stack >>= 1;
                        } else {
                            continue 'value;
                        }
                    }
                    b'-' | b'0'..=b'9' => self.number()?,
                    b't' => self.literal(b"true")?,
                    b'f' => self.literal(b"false")?,
                    b'n' => self.literal(b"null")?,
                    _ => return Err(self.unexpected("a JSON value", byte)),
                }
            }
            // A value just ended: close containers until one expects another element.
            loop {
                if *depth == 0 {
                    return Ok(Skimmed::Value {
                        end: self.i,
                        capture: self.capture,
                    });
                }
                if stack & 1 == 1 {
                    let byte = self.next_token("',' or '}' after an object member")?;
                    if byte == b',' {
                        self.i += 1;
                        let byte = self.next_token("a string (object key)")?;
                        if byte != b'"' {
                            return Err(self.unexpected("a string (object key)", byte));
                        }
                        match self.member::<WATCH>(*depth)? {
                            Next::Value => continue 'value,
                            Next::Container(kind) => {
                                return Ok(Skimmed::Container {
                                    kind,
                                    value_at: self.i,
                                });
                            }
                            Next::AfterValue => {}
                        }
                    } else if byte == b'}' {
                        self.i += 1;
                        *depth -= 1;
                        stack >>= 1;
                    } else {
                        return Err(self.unexpected("',' or '}' after an object member", byte));
                    }
                } else {
                    let byte = self.next_token("',' or ']' after an array element")?;
                    if byte == b',' {
                        self.i += 1;
                        continue 'value;
                    } else if byte == b']' {
                        self.i += 1;
                        *depth -= 1;
                        stack >>= 1;
                    } else {
                        return Err(self.unexpected("',' or ']' after an array element", byte));
                    }
                }
            }
        }
    }

    /// Skims an object member's key (at its opening quote) and the ':' after it, and for a
    /// watched top-level key decides what comes next.
    #[inline(always)]
    fn member<const WATCH: u8>(&mut self, depth: usize) -> Result<Next, Stop> {
        self.i += 1;
        let start = self.i;
        let escaped = self.string()?;
        let key_end = self.i - 1;
        let byte = self.next_token("':' after an object key")?;
        if byte != b':' {
            return Err(self.unexpected("':' after an object key", byte));
        }
        self.i += 1;
        if WATCH == WATCH_NOTHING || depth != 1 {
            return Ok(Next::Value);
        }
        let key = &self.bytes[start..key_end];
        if WATCH == WATCH_CONTAINERS {
            return Ok(match container_kind(key, escaped) {
                Some(kind) => Next::Container(kind),
                None => Next::Value,
            });
        }
        if !key_is(key, escaped, b"CloudTrailEvent") {
            return Ok(Next::Value);
        }
        let byte = self.next_token("a JSON value")?;
        if byte != b'"' {
            // A later duplicate key would win in a full parse, so keep watching.
            self.capture = Capture::NotString(byte);
            return Ok(Next::Value);
        }
        self.i += 1;
        let start = self.i;
        let escaped = self.string()?;
        self.capture = Capture::String {
            start,
            end: self.i - 1,
            escaped,
        };
        Ok(Next::AfterValue)
    }

    /// Skims a member key and the ':' after it, starting at the key's opening quote; says
    /// whether the key names a container. Used inside a container object.
    pub(super) fn container_member(&mut self) -> Result<Option<ContainerKind>, Stop> {
        let byte = self.next_token("a string (object key)")?;
        if byte != b'"' {
            return Err(self.unexpected("a string (object key)", byte));
        }
        self.i += 1;
        let start = self.i;
        let escaped = self.string()?;
        let key_end = self.i - 1;
        let byte = self.next_token("':' after an object key")?;
        if byte != b':' {
            return Err(self.unexpected("':' after an object key", byte));
        }
        self.i += 1;
        Ok(container_kind(&self.bytes[start..key_end], escaped))
    }

    /// Skims a string from just after its opening quote to just after its closing quote.
    /// Returns whether it holds escapes.
    #[inline(always)]
    fn string(&mut self) -> Result<bool, Stop> {
        let mut escaped = false;
        loop {
            let i = self.next_stopper(self.i);
            let Some(&byte) = self.bytes.get(i) else {
                self.i = i;
                return Err(self.end_of_input("'\"' closing a string"));
            };
            if byte == b'"' {
                self.i = i + 1;
                return Ok(escaped);
            }
            match byte {
                b'\\' => {
                    escaped = true;
                    self.i = self.escape(i)?;
                    // `escape` succeeded, so the byte after the backslash is there.
                    self.unicode_escape |= self.bytes[i + 1] == b'u';
                }
                0x00..=0x1f => return Err(self.invalid(i, Problem::ControlCharacter(byte))),
                0x80..=0xff => self.i = self.utf8_char(i)?,
                _ => self.i = i + 1,
            }
        }
    }

    /// Checks the escape sequence at `at` (a backslash) and returns the index after it.
    #[cold]
    fn escape(&self, at: usize) -> Result<usize, Stop> {
        let Some(&kind) = self.bytes.get(at + 1) else {
            return Err(self.end_of_input("an escape sequence"));
        };
        match kind {
            b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => Ok(at + 2),
            b'u' => {
                let unit = self.hex4(at + 2)?;
                if (0xDC00..=0xDFFF).contains(&unit) {
                    return Err(self.invalid(at, Problem::LoneSurrogate));
                }
                if !(0xD800..=0xDBFF).contains(&unit) {
                    return Ok(at + 6);
                }
                // A leading surrogate must be followed at once by a trailing one.
                for (offset, wanted) in [(6, b'\\'), (7, b'u')] {
                    match self.bytes.get(at + offset) {
                        None => return Err(self.end_of_input("a trailing surrogate escape")),
                        Some(&byte) if byte == wanted => {}
                        Some(_) => return Err(self.invalid(at + offset, Problem::LoneSurrogate)),
                    }
                }
                let trailing = self.hex4(at + 8)?;
                if !(0xDC00..=0xDFFF).contains(&trailing) {
                    return Err(self.invalid(at + 6, Problem::LoneSurrogate));
                }
                Ok(at + 12)
            }
            _ => Err(self.invalid(at + 1, Problem::InvalidEscape)),
        }
    }

    fn hex4(&self, at: usize) -> Result<u32, Stop> {
        let mut value = 0;
        for index in at..at + 4 {
            let Some(&byte) = self.bytes.get(index) else {
                return Err(self.end_of_input("four hex digits in a \\u escape"));
            };
            let Some(digit) = (byte as char).to_digit(16) else {
                return Err(self.invalid(index, Problem::InvalidEscape));
            };
            value = value * 16 + digit;
        }
        Ok(value)
    }

    /// Checks the UTF-8 sequence starting at `at` (a non-ASCII byte), returns the index after it.
    #[cold]
    fn utf8_char(&self, at: usize) -> Result<usize, Stop> {
        let width = match self.bytes[at] {
            0xC2..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF4 => 4,
            _ => return Err(self.invalid(at, Problem::InvalidUtf8)),
        };
        let Some(sequence) = self.bytes.get(at..at + width) else {
            return Err(self.end_of_input("the rest of a UTF-8 character"));
        };
        // `from_utf8` also rejects overlong forms, surrogates and code points past U+10FFFF.
        if std::str::from_utf8(sequence).is_err() {
            return Err(self.invalid(at, Problem::InvalidUtf8));
        }
        Ok(at + width)
    }

    /// Skims a number at `self.i` (a '-' or a digit).
    fn number(&mut self) -> Result<(), Stop> {
        let bytes = self.bytes;
        let start = self.i;
        let mut i = start;
        if bytes[i] == b'-' {
            i += 1;
        }
        match bytes.get(i) {
            None => return Err(self.end_of_input("a digit")),
            Some(b'0') => i += 1,
            Some(b'1'..=b'9') => i = skip_digits(bytes, i + 1),
            Some(_) => return Err(self.invalid(i, Problem::InvalidNumber)),
        }
        let mut exponent = false;
        if bytes.get(i) == Some(&b'.') {
            i = self.required_digits(i + 1)?;
        }
        if matches!(bytes.get(i), Some(b'e' | b'E')) {
            exponent = true;
            i += 1;
            if matches!(bytes.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            i = self.required_digits(i)?;
        }
        if i >= bytes.len() && !self.eof {
            // More digits may follow in the next read.
            return Err(Stop::Incomplete);
        }
        // Only a number with an exponent or hundreds of digits can overflow an f64.
        if exponent || i - start > 300 {
            let finite = std::str::from_utf8(&bytes[start..i])
                .ok()
                .and_then(|text| text.parse::<f64>().ok())
                .is_some_and(f64::is_finite);
            if !finite {
                return Err(self.invalid(start, Problem::NumberOutOfRange));
            }
        }
        self.i = i;
        Ok(())
    }

    fn required_digits(&self, at: usize) -> Result<usize, Stop> {
        match self.bytes.get(at) {
            None => Err(self.end_of_input("a digit")),
            Some(b'0'..=b'9') => Ok(skip_digits(self.bytes, at + 1)),
            Some(_) => Err(self.invalid(at, Problem::InvalidNumber)),
        }
    }

    fn literal(&mut self, word: &'static [u8]) -> Result<(), Stop> {
        let rest = &self.bytes[self.i..];
        if rest.len() < word.len() && word.starts_with(rest) {
            return Err(self.end_of_input("the rest of a literal"));
        }
        if !rest.starts_with(word) {
            return Err(self.invalid(self.i, Problem::InvalidLiteral));
        }
        self.i += word.len();
        Ok(())
    }
}

/// What follows an object key once its ':' is consumed.
enum Next {
    /// Its value, to skim as usual.
    Value,
    /// Its value was already skimmed (a captured `CloudTrailEvent` string).
    AfterValue,
    /// It names a container; the caller takes over.
    Container(ContainerKind),
}

fn skip_digits(bytes: &[u8], mut i: usize) -> usize {
    while bytes.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
    }
    i
}

#[inline(always)]
fn container_kind(key: &[u8], escaped: bool) -> Option<ContainerKind> {
    if !escaped {
        // Every top-level key of every record passes here: a length switch, no call.
        return match key {
            b"Records" => Some(ContainerKind::Records),
            b"Events" => Some(ContainerKind::Events),
            _ => None,
        };
    }
    if key_is(key, escaped, b"Records") {
        Some(ContainerKind::Records)
    } else if key_is(key, escaped, b"Events") {
        Some(ContainerKind::Events)
    } else {
        None
    }
}

/// Compares a raw key with a name; an escaped key (rare) is unescaped first so that
/// `"Rec\u006frds"` names the same member as a full parse sees.
#[inline(always)]
fn key_is(raw: &[u8], escaped: bool, name: &[u8]) -> bool {
    if !escaped {
        return raw == name;
    }
    let mut key = Vec::with_capacity(raw.len());
    unescape(raw, &mut key);
    key == name
}

/// Appends the unescaped content of a JSON string (raw bytes between the quotes, already
/// checked by the skimmer) to `out`.
pub(super) fn unescape(raw: &[u8], out: &mut Vec<u8>) {
    let mut i = 0;
    while let Some(found) = memchr::memchr(b'\\', &raw[i..]) {
        out.extend_from_slice(&raw[i..i + found]);
        i += found;
        let simple = match raw.get(i + 1) {
            Some(b'"') => b'"',
            Some(b'\\') => b'\\',
            Some(b'/') => b'/',
            Some(b'b') => 0x08,
            Some(b'f') => 0x0c,
            Some(b'n') => b'\n',
            Some(b'r') => b'\r',
            Some(b't') => b'\t',
            Some(b'u') => {
                let (code, used) = unicode_escape(&raw[i..]);
                let mut utf8 = [0; 4];
                out.extend_from_slice(code.encode_utf8(&mut utf8).as_bytes());
                i += used;
                continue;
            }
            // Unreachable after a skim; keep the bytes rather than fail.
            _ => {
                out.push(b'\\');
                i += 1;
                continue;
            }
        };
        out.push(simple);
        i += 2;
    }
    out.extend_from_slice(&raw[i..]);
}

/// Decodes `\uXXXX` (and its trailing surrogate escape, if any) at the start of `raw`:
/// the character and the number of bytes used.
fn unicode_escape(raw: &[u8]) -> (char, usize) {
    let hex = |at: usize| {
        raw.get(at..at + 4)
            .and_then(|digits| std::str::from_utf8(digits).ok())
            .and_then(|digits| u32::from_str_radix(digits, 16).ok())
    };
    let Some(unit) = hex(2) else {
        return (char::REPLACEMENT_CHARACTER, 2);
    };
    if (0xD800..=0xDBFF).contains(&unit)
        && raw.get(6..8) == Some(b"\\u")
        && let Some(trailing @ 0xDC00..=0xDFFF) = hex(8)
    {
        let code = 0x1_0000 + ((unit - 0xD800) << 10) + (trailing - 0xDC00);
        return (
            char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER),
            12,
        );
    }
    (
        char::from_u32(unit).unwrap_or(char::REPLACEMENT_CHARACTER),
        6,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn skim(text: &str) -> Result<Skimmed, Stop> {
        Skimmer::new(text.as_bytes(), true, 0).value::<WATCH_NOTHING>()
    }

    /// The skimmer accepts exactly what serde_json accepts, on a gallery of edge cases.
    #[test]
    fn agrees_with_serde_json() {
        let cases = [
            r#"{}"#,
            r#"[]"#,
            r#"{"a":[1,-0,0.5,1e5,1E+5,-2.5e-3,true,false,null,"x"]}"#,
            r#"{"a":01}"#,
            r#"{"a":1.}"#,
            r#"{"a":.5}"#,
            r#"{"a":-}"#,
            r#"{"a":+1}"#,
            r#"{"a":1e}"#,
            r#"{"a":1e400}"#,
            r#"{"a":-1e400}"#,
            r#"{"a":1e-400}"#,
            r#"{"a":123456789012345678901234567890}"#,
            r#"{"a":[1,]}"#,
            r#"{"a":1,}"#,
            r#"{,}"#,
            r#"{"a" 1}"#,
            r#"{"a":tru}"#,
            r#"{"a":nul}"#,
            r#"{"a":True}"#,
            r#"{"a":"\q"}"#,
            r#"{"a":"\u00e9\u0055\/\b\f\n\r\t\"\\"}"#,
            r#"{"a":"\u12"}"#,
            r#"{"a":"\ud83d\ude00"}"#,
            r#"{"a":"\ud83d"}"#,
            r#"{"a":"\ud83dx"}"#,
            r#"{"a":"\ud83d\u0041"}"#,
            r#"{"a":"\ude00"}"#,
            "{\"a\":\"tab\there\"}",
            "{\"a\":\"nul\u{0}\"}",
            "{\"a\":\"del\u{7f}\"}",
            "{\"a\":\"é漢字😀\"}",
            "{\"a\"\n:\r\n1\t}",
            r#"{"a":{"b":{"c":[[[]]]}}}"#,
            r#"[{"a":1}"#,
            r#"{"a":1]"#,
            r#"["a":1]"#,
            r#"{"a":1}}"#,
            r#"{1:2}"#,
        ];
        for case in cases {
            let ours = skim(case);
            let theirs = serde_json::from_str::<serde_json::Value>(case);
            let ours_ok = matches!(ours, Ok(Skimmed::Value { end, .. }) if end == case.len());
            assert_eq!(
                ours_ok,
                theirs.is_ok(),
                "{case:?}: skimmer {ours:?}, serde_json {theirs:?}"
            );
        }
    }

    #[test]
    fn invalid_utf8_and_nesting_match_serde_json() {
        for bytes in [
            &b"{\"a\":\"\xff\"}"[..],
            b"{\"a\":\"\xc3\"}",
            b"{\"a\":\"\xc0\xaf\"}",
            b"{\"a\":\"\xed\xa0\x80\"}",
            b"{\"a\":\"\xf4\x90\x80\x80\"}",
            b"{\"a\":\"\xc3\xa9\"}",
        ] {
            let ours = Skimmer::new(bytes, true, 0).value::<WATCH_NOTHING>();
            let theirs = serde_json::from_slice::<serde_json::Value>(bytes);
            assert_eq!(ours.is_ok(), theirs.is_ok(), "{bytes:?}: {ours:?}");
        }
        for levels in [126, 127, 128, 129, 5000] {
            let text = format!("{}{}", "[".repeat(levels), "]".repeat(levels));
            let ours = skim(&text);
            let theirs = serde_json::from_str::<serde_json::Value>(&text);
            assert_eq!(ours.is_ok(), theirs.is_ok(), "{levels} levels: {ours:?}");
        }
    }

    #[test]
    fn incomplete_until_the_input_ends() {
        let text = r#"{"a":[1,2],"b":"\u00e9x","c":true,"d":12.5e3}"#;
        for cut in 0..text.len() {
            let partial = &text.as_bytes()[..cut];
            assert_eq!(
                Skimmer::new(partial, false, 0).value::<WATCH_NOTHING>(),
                Err(Stop::Incomplete),
                "cut at {cut}"
            );
            assert!(matches!(
                Skimmer::new(partial, true, 0).value::<WATCH_NOTHING>(),
                Err(Stop::Invalid(Invalid {
                    problem: Problem::Unexpected { found: None, .. },
                    ..
                }))
            ));
        }
    }

    #[test]
    fn stoppers_mark_exactly_the_special_bytes() {
        let mut block = [b'a'; 64];
        for (n, byte) in block.iter_mut().enumerate() {
            *byte = (n as u8).wrapping_mul(37).wrapping_add(11);
        }
        for shift in 0..=255u8 {
            for byte in block.iter_mut() {
                *byte = byte.wrapping_add(shift);
            }
            for mask in [string_stoppers(&block), string_stoppers_portable(&block)] {
                for (n, &byte) in block.iter().enumerate() {
                    let special = byte == b'"' || byte == b'\\' || !(0x20..0x80).contains(&byte);
                    assert_eq!(mask >> n & 1 == 1, special, "byte {byte:#04x} at {n}");
                }
            }
        }
    }

    #[test]
    fn watches_only_top_level_keys() {
        let watch = |text: &str| Skimmer::new(text.as_bytes(), true, 0).value::<WATCH_CONTAINERS>();
        assert!(matches!(
            watch(r#"{"a":1,"Records":[]}"#),
            Ok(Skimmed::Container {
                kind: ContainerKind::Records,
                value_at: 17
            })
        ));
        assert!(matches!(
            watch(r#"{"Rec\u006frds":[]}"#),
            Ok(Skimmed::Container {
                kind: ContainerKind::Records,
                ..
            })
        ));
        assert!(matches!(
            watch(r#"{"Events":{}}"#),
            Ok(Skimmed::Container {
                kind: ContainerKind::Events,
                ..
            })
        ));
        assert!(matches!(
            watch(r#"{"a":{"Records":[]}}"#),
            Ok(Skimmed::Value { .. })
        ));
        let text = r#"{"EventId":"1","CloudTrailEvent":"{\"a\":1}","CloudTrailEvent2":5}"#;
        let skimmed = Skimmer::new(text.as_bytes(), true, 0).value::<WATCH_CLOUDTRAIL_EVENT>();
        let Ok(Skimmed::Value {
            capture:
                Capture::String {
                    start,
                    end,
                    escaped: true,
                },
            ..
        }) = skimmed
        else {
            panic!("no capture: {skimmed:?}");
        };
        let mut content = Vec::new();
        unescape(&text.as_bytes()[start..end], &mut content);
        assert_eq!(content, br#"{"a":1}"#);
    }

    #[test]
    fn unescape_matches_serde_json() {
        let raw = r#"a\"b\\c\/d\be\ff\ng\rh\ti\u00e9j\ud83d\ude00k\u0055"#;
        let mut ours = Vec::new();
        unescape(raw.as_bytes(), &mut ours);
        let theirs: String = serde_json::from_str(&format!("\"{raw}\"")).unwrap();
        assert_eq!(ours, theirs.as_bytes());
    }
}
