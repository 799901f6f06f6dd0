//! Every input shape -> records: the bytes of each CloudTrail record (or EventBridge envelope)
//! found in a file or on stdin, in input order, with the line where each starts.
//!
//! Shapes, the same for [`decode`] and [`decode_reference`]:
//! - a CloudTrail record or an EventBridge envelope: any JSON object that is not a container;
//! - a CloudTrail log file `{"Records": [record, ...]}` (`Records` anywhere among the keys,
//!   other keys ignored);
//! - `aws cloudtrail lookup-events` output `{"Events": [{"CloudTrailEvent": "<record>"}, ...]}`:
//!   each `CloudTrailEvent` string is unescaped and must hold one JSON object;
//! - a JSON array of any of the above, flattened (one level: an array in it is an error);
//! - any number of these one after another: NDJSON, or pretty-printed documents;
//! - all of it gzip-compressed (found by the magic bytes, multi-member streams included), with
//!   or without a UTF-8 byte order mark.
//!
//! Each record comes with the line where its object starts; for lookup-events input, the line
//! where its entry in `Events` starts.
//!
//! A part that is not valid JSON, or not one of these shapes, is reported to
//! [`RecordVisitor::error`] and decoding goes on: a wrong-shape value (a number in `Records`,
//! an entry without `CloudTrailEvent`) costs only itself. After a syntax error, the rule (the
//! same in both decoders) is about lines, because a log file cut mid-write must never hide the
//! record after the cut, whatever state the cut left the broken one in (a line cut right after
//! ':' takes the next line as its value and breaks only further on):
//! - The broken part begins at the first token other than ',' read since the last record or
//!   wrong-shape value handed to the visitor, the end of the last complete document, the last
//!   resume point or the start of the input.
//! - Decoding resumes, as a new document, at the first line after that token that begins with
//!   '{' or '[' (the next NDJSON line, the next pretty-printed document, a line the broken part
//!   swallowed). Without one, the input ends with that error; so a single document spanning the
//!   rest of the input ends with one error, after the records before the damage.
//! - The error is reported on the line where the broken part begins, saying where the damage
//!   was found ("... at line 7 column 12"). One exception: when the error is that very token and
//!   it is a '{' or '[' beginning a line (the document before it stopped short, as in `[{...}`
//!   followed by a new line `{...}`), the error goes to the line of the last token before it and
//!   decoding resumes at that '{' or '['. A '{' or '[' beginning a line where a container
//!   expected another kind of value (an array in `Records` or in a top-level array, an object
//!   as the value of `Records`, an entry of `Events` without a `CloudTrailEvent` string) counts
//!   as such an error too: a file cut right after `{"Events":[` must not turn the next record
//!   into a malformed entry.
//!
//! A line that begins with '{' or '[' inside an unbroken document (a pretty-printed array of
//! records at column 0, say) changes nothing: the rule applies only after an error. A value
//! larger than [`MAX_RECORD_BYTES`] is reported at its first line and skipped to its end, or to
//! the next line that begins with '{' or '[', whichever comes first. The fast decoder keeps the
//! input from the resume point on in its buffer only while that is under [`MAX_RECORD_BYTES`]
//! (beyond that, it resumes at the next such line after the error instead), so memory stays
//! bounded; the reference decoder has no such limit.
//!
//! Why a skimmer (`skim.rs`) rather than a JSON parser: `scan` reads gigabytes of CloudTrail and
//! the consumer only needs the bytes of each record (a substring search rules out nearly all of
//! them before anything is parsed). Finding where records start and end while validating the
//! syntax, without building values, runs several times faster than a parse; records are slices
//! of one bounded, refillable buffer, so memory stays flat whatever the input size, including a
//! multi-gigabyte single-line `{"Records": [...]}` file.
//!
//! What this module does not do: decide whether a record is a CloudTrail record or an
//! envelope (the consumer unwraps `detail`), look inside records, or check what JSON cannot
//! express (duplicate keys are left to the consumer's parse, which keeps the last one).
//! Strings are checked for valid UTF-8, escapes and control characters like `serde_json`
//! does, so a record handed out parses.

mod buffer;
mod gzip;
mod recovery;
mod reference;
mod skim;
mod stream;

use std::io::{self, Read};
use std::ops::ControlFlow;

/// The first two bytes of a gzip stream.
pub(crate) use stream::GZIP_MAGIC;

/// Largest record [`decode`] keeps whole; a larger value is reported as an error and skipped.
pub const MAX_RECORD_BYTES: usize = buffer::MAX_RECORD;

/// Receives what decoding finds, in input order.
pub trait RecordVisitor {
    /// One JSON object that is a CloudTrail record or an EventBridge envelope around one
    /// (the consumer tells them apart). `json` is the exact bytes of that object (for
    /// lookup-events input: the unescaped `CloudTrailEvent` string). `line` is the 1-based line
    /// of the (decompressed) input where the object starts.
    ///
    /// [`ControlFlow::Break`] stops decoding: nothing more is read or reported.
    fn record(&mut self, json: &[u8], line: u64) -> ControlFlow<()>;

    /// [`RecordVisitor::record`], with what the fast decoder learned while checking the record:
    /// `unicode_escape` is `false` only when none of its strings holds a `\u` escape (the
    /// decoder reads every escape, so that is a proof), which spares a literal search its second
    /// look for escaped spellings. The fast decoder calls this for the records it skims, and
    /// [`RecordVisitor::record`] for the rest (a lookup-events `CloudTrailEvent`, the reference
    /// decoder); by default it forgets the hint and calls [`RecordVisitor::record`].
    fn record_checked(&mut self, json: &[u8], line: u64, unicode_escape: bool) -> ControlFlow<()> {
        let _ = unicode_escape;
        self.record(json, line)
    }

    /// A part of the input that is not valid JSON or not one of the shapes above. `reason` says
    /// what was wrong (e.g. "expected ',' or '}' after an object member, found 'x' at column
    /// 17", "a JSON number is not a CloudTrail record"). Decoding goes on after it wherever it
    /// can.
    /// [`ControlFlow::Break`] stops decoding.
    fn error(&mut self, line: u64, reason: &str) -> ControlFlow<()>;
}

/// Default of [`Limits::max_inflated_bytes`]: 1 GiB, far above any CloudTrail log file (AWS
/// delivers one per account, region and five minutes, tens of MB at most inflated), so only a
/// gzip bomb, or a whole archive gzipped as one file, reaches it.
pub const DEFAULT_MAX_INFLATED_BYTES: u64 = 1 << 30;

/// Bounds on the work one input may cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most bytes a gzip-compressed input may inflate to. Past it, decoding stops with an
    /// [`io::ErrorKind::FileTooLarge`] error, after the records before the cut; a small file that
    /// inflates to many gigabytes costs no more than this.
    pub max_inflated_bytes: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_inflated_bytes: DEFAULT_MAX_INFLATED_BYTES,
        }
    }
}

/// Fast streaming decoder with bounded memory and the default [`Limits`]. `Err` only for I/O
/// errors, including corrupt or truncated gzip streams (the records before the damage have been
/// delivered by then).
pub fn decode<R: Read>(reader: R, visitor: &mut impl RecordVisitor) -> io::Result<()> {
    stream::decode(reader, visitor, &Limits::default(), None)
}

/// [`decode`] with the given limits; `Err` also when gzip input inflates past
/// [`Limits::max_inflated_bytes`].
pub fn decode_with_limits<R: Read>(
    reader: R,
    visitor: &mut impl RecordVisitor,
    limits: &Limits,
) -> io::Result<()> {
    stream::decode(reader, visitor, limits, None)
}

/// Where one part of a large plain input may end, for decoding a file in parts at once.
///
/// A part is read from its first byte to the end of the input, but stops where the next part
/// begins if the decoder is there in the state a decoder starting afresh at that byte would be
/// in: nothing unsettled before it, no container open (so the byte begins a new top-level
/// document). Then the next part's own decoder, started there, finds exactly what this one
/// would have found from there on. Parts should begin at a '{' that begins a line: that is
/// where a new document starts in NDJSON or in documents one after another.
///
/// Until it knows on which line of the input it begins ([`PartEnd::first_line`]), a part's
/// decoder numbers lines from 1 at its first byte.
pub trait PartEnd {
    /// The offset in the input of the reader's first byte (the start of a line); offsets and
    /// read errors are the input's.
    fn start(&self) -> u64;

    /// The offset in the input of the next place where another part begins and this one might
    /// end; `u64::MAX` for none.
    fn next_end(&self) -> u64;

    /// The decoder is about to decode the unit at `offset` (on line `line`), at or
    /// past [`PartEnd::next_end`], with everything before it settled: no later error can take
    /// decoding back before `offset`. `fresh`: no container is open, so a decoder starting
    /// at `offset` would do what this one does next. [`ControlFlow::Break`] ends the part
    /// here (it should, when `offset` is where the next part begins and `fresh`); otherwise
    /// decoding goes on, and every place before `offset` where another part begins was passed.
    fn reached(&mut self, offset: u64, line: u64, fresh: bool) -> ControlFlow<()>;

    /// The input's line on which this part begins, waiting until that is known; `None` when the
    /// part turned out not to count, and decoding stops. Asked once, before the first error
    /// whose text names a line ("... at line 7 column 12"): from then on the decoder numbers
    /// lines as the input does, in what it hands the visitor and in [`PartEnd::reached`].
    fn first_line(&mut self) -> Option<u64>;
}

/// [`decode_with_limits`] for one part of a larger plain input, which may end early where
/// `part` says (see [`PartEnd`]). Gzip input is decoded to its end.
pub fn decode_part<R: Read>(
    reader: R,
    visitor: &mut impl RecordVisitor,
    limits: &Limits,
    part: &mut dyn PartEnd,
) -> io::Result<()> {
    stream::decode(reader, visitor, limits, Some(part))
}

/// Reference decoder: the same shapes and recovery rules as [`decode`], written plainly (the
/// brackets around records walked by hand, every value parsed by `serde_json`) with the whole
/// input in memory. Records are handed out re-serialised (compare them parsed). Used by tests
/// to show that [`decode`] finds the same records and the same number of errors.
pub fn decode_reference<R: Read>(reader: R, visitor: &mut impl RecordVisitor) -> io::Result<()> {
    reference::decode_reference(reader, visitor)
}
