//! Large plain files decoded in parts by several workers at once, with exactly the output that
//! one decoder reading the whole file gives.
//!
//! Before the scan, a plain file of at least two parts' size ([`super::Options::part_bytes`])
//! is cut at the first line that begins with '{' about every part size ([`Split::plan`]). Each part is a unit of the ordered writer (`ordered.rs`), so its output
//! comes out in file order, and is decoded from its first byte to the end of the file by the
//! input's own decoder ([`input::decode_part`]), which stops at a later part's start only where
//! it is in the state that a decoder starting afresh there is in (see [`input::PartEnd`]).
//!
//! The first part is certainly right. A part is *confirmed* when the confirmed part before it
//! stopped exactly at its start; the parts that confirmed part ran over are *void*: their output
//! is dropped, their results do not count, and their workers stop. Until then a part is
//! speculative: its alerts wait in the ordered writer (which writes nothing of a unit before the
//! units before it are done), and whatever needs its line numbers (an error line) waits until it
//! is confirmed, because a part's first line is known only from the part that ends at it.
//!
//! NDJSON, and documents one after another, split exactly where they were cut. A '{' that
//! begins a line inside a document (an array of records written at column 0) is passed over by
//! the confirmed decoder, and the part that began there is voided: it costs parallelism, never
//! a difference in output.
//!
//! This module owns where parts begin and which of them count; it does not know JSON (the
//! decoder decides where a part may end) or output (`ordered.rs`).

use super::ordered::Ordered;
use crate::input::{GZIP_MAGIC, PartEnd};
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::ops::ControlFlow;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};

/// Default of [`super::Options::part_bytes`]: large enough that looking for the parts' starts and
/// reading a little past each part's end cost nothing measurable, small enough for two workers
/// to share a file of a few hundred megabytes evenly.
pub const DEFAULT_PART_BYTES: u64 = 32 << 20;
/// How much is read at a time while looking for where a part begins.
const LOOK: usize = 64 << 10;
/// How far past a multiple of the part size a part's start is looked for.
const MAX_LOOK: u64 = 4 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    /// Not yet known to count.
    Speculative,
    /// Counts; its first byte is on this line of the file.
    Confirmed { first_line: u64 },
    /// Another part's decoder covered it.
    Void,
}

/// Where a part's decoder stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// At the start of part `part`, which is on line `line` of the stopping part.
    At { part: usize, line: u64 },
    /// At the end of the file (or of what could be read of it).
    Eof,
}

struct State {
    status: Vec<Status>,
    end: Vec<Option<End>>,
}

/// One file cut into parts.
pub(super) struct Split {
    /// Offset in the file where each part begins; the first is 0.
    starts: Vec<u64>,
    /// The ordered writer's unit of the first part; the others follow it.
    first_unit: usize,
    state: Mutex<State>,
    /// Wakes workers waiting for their part to be confirmed or voided.
    resolved: Condvar,
    /// Each part's "void" flag, read by its worker at every record.
    void: Vec<AtomicBool>,
    /// Each part's decoder numbers lines as the file does (it has asked for its first line).
    numbered: Vec<AtomicBool>,
}

impl Split {
    /// Cuts the file at `path` into parts of about `part_bytes`, the first being ordered writer
    /// unit `first_unit`; `None` when it is not a plain regular file of at least two parts, or
    /// nowhere to cut it was found (then it is scanned whole, which also reports any problem
    /// with reading it). Each part after the first begins at the first line that begins with '{'
    /// at or after `part_bytes` past the start of the one before; where none is found within
    /// [`MAX_LOOK`] bytes (a long document written over many lines, such as a pretty-printed
    /// `Records` file), the part before runs to the end of the file, which costs one look, not
    /// one per part size.
    pub(super) fn plan(path: &Path, part_bytes: u64, first_unit: usize) -> Option<Split> {
        if part_bytes == 0 {
            return None;
        }
        // Looked at before opening: opening a FIFO would wait for a writer.
        let metadata = std::fs::metadata(path).ok()?;
        let len = metadata.len();
        if !metadata.is_file() || len < part_bytes.saturating_mul(2) {
            return None;
        }
        let mut file = File::open(path).ok()?;
        let mut head = [0; 2];
        file.read_exact(&mut head).ok()?;
        if head == GZIP_MAGIC {
            return None;
        }
        let mut starts = vec![0];
        let mut at = part_bytes;
        while at < len {
            let Ok(Some(start)) = find_start(&mut file, at, len) else {
                break;
            };
            starts.push(start);
            at = start.saturating_add(part_bytes);
        }
        if starts.len() < 2 {
            return None;
        }
        let parts = starts.len();
        let mut status = vec![Status::Speculative; parts];
        status[0] = Status::Confirmed { first_line: 1 };
        Some(Split {
            starts,
            first_unit,
            state: Mutex::new(State {
                status,
                end: vec![None; parts],
            }),
            resolved: Condvar::new(),
            void: (0..parts).map(|_| AtomicBool::new(false)).collect(),
            numbered: (0..parts).map(|_| AtomicBool::new(false)).collect(),
        })
    }

    pub(super) fn parts(&self) -> usize {
        self.starts.len()
    }

    /// Offset in the file where part `part` begins.
    pub(super) fn start(&self, part: usize) -> u64 {
        self.starts[part]
    }

    /// The ordered writer's unit for part `part`.
    pub(super) fn unit(&self, part: usize) -> usize {
        self.first_unit + part
    }

    /// Whether part `part` was voided (its worker should stop).
    pub(super) fn is_void(&self, part: usize) -> bool {
        self.void[part].load(Ordering::Relaxed)
    }

    /// Line `line` of part `part`'s decoder, as a line of the file: waits until the part is
    /// confirmed, unless its decoder numbers lines as the file does already; `None` when the
    /// part is void.
    pub(super) fn file_line(&self, part: usize, line: u64) -> Option<u64> {
        if self.numbered[part].load(Ordering::Relaxed) {
            return Some(line);
        }
        self.first_line(part).map(|first| first + line - 1)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every update is complete before anything that could panic, so the state is whole.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The file's line where part `part` begins, waiting until the part is confirmed; `None`
    /// when it is void.
    pub(super) fn first_line(&self, part: usize) -> Option<u64> {
        let mut state = self.lock();
        loop {
            match state.status[part] {
                Status::Confirmed { first_line } => return Some(first_line),
                Status::Void => return None,
                Status::Speculative => {
                    state = self.resolved.wait(state).unwrap_or_else(|e| e.into_inner())
                }
            }
        }
    }

    /// Part `part`'s decoder stopped (`end`): records it and settles what that decides.
    fn ended(&self, part: usize, end: End, ordered: &Ordered) {
        let voided = {
            let mut state = self.lock();
            state.end[part] = Some(end);
            resolve(&mut state, part)
        };
        self.apply(&voided, ordered);
    }

    /// Part `part`'s decoder went past the start of part `passed` with everything before it
    /// settled: if `part` counts, `passed` does not, and its worker can stop at once.
    fn passed(&self, part: usize, passed: usize, ordered: &Ordered) {
        let voided = {
            let mut state = self.lock();
            let confirmed = matches!(state.status[part], Status::Confirmed { .. });
            if confirmed && state.status[passed] == Status::Speculative {
                state.status[passed] = Status::Void;
                vec![passed]
            } else {
                Vec::new()
            }
        };
        self.apply(&voided, ordered);
    }

    fn apply(&self, voided: &[usize], ordered: &Ordered) {
        for &part in voided {
            self.void[part].store(true, Ordering::Relaxed);
            ordered.void(self.unit(part));
        }
        self.resolved.notify_all();
    }
}

/// From part `part` on, while the part is confirmed and its end is known: the parts it ran over
/// are void, and the part it stopped at is confirmed. Returns the parts newly voided.
fn resolve(state: &mut State, mut part: usize) -> Vec<usize> {
    let mut voided = Vec::new();
    let parts = state.status.len();
    while let Status::Confirmed { first_line } = state.status[part] {
        let Some(end) = state.end[part] else {
            break;
        };
        let next = match end {
            End::At { part, .. } => part,
            End::Eof => parts,
        };
        for over in part + 1..next {
            if state.status[over] == Status::Speculative {
                state.status[over] = Status::Void;
                voided.push(over);
            }
        }
        let End::At { part: next, line } = end else {
            break;
        };
        // Only the confirmed decoder before it can reach a part's start, so it is not void.
        state.status[next] = Status::Confirmed {
            first_line: first_line + line - 1,
        };
        part = next;
    }
    voided
}

/// The first '{' that begins a line at or after offset `from` (at least 1) of `file` (`len`
/// bytes), looked for up to [`MAX_LOOK`] bytes on.
fn find_start(file: &mut File, from: u64, len: u64) -> io::Result<Option<u64>> {
    let mut window = Vec::with_capacity(LOOK);
    // From the byte before `from`, so that a '\n' just before it is seen.
    let mut at = from - 1;
    let limit = from.saturating_add(MAX_LOOK).min(len);
    while at < limit {
        file.seek(SeekFrom::Start(at))?;
        window.clear();
        file.take(LOOK as u64).read_to_end(&mut window)?;
        if window.len() < 2 {
            return Ok(None);
        }
        if let Some(found) = memchr::memmem::find(&window, b"\n{") {
            return Ok(Some(at + found as u64 + 1));
        }
        // The last byte again, in case it is the '\n' of a "\n{" cut by the window.
        at += window.len() as u64 - 1;
    }
    Ok(None)
}

/// Tells part `part`'s decoder where it may stop, and records where it did. Dropped without
/// having stopped at another part (the file ended, reading failed, the scan stopped, the worker
/// failed), it records that the part ran to the end of the file, so no part waits for it.
pub(super) struct Cursor<'a> {
    split: &'a Split,
    ordered: &'a Ordered,
    part: usize,
    /// The next part whose start this decoder has not passed.
    next: usize,
    stopped: bool,
    /// What the decoder's line numbers are ahead of the part's own (once it numbers lines as
    /// the file does, see [`PartEnd::first_line`]).
    shift: u64,
}

impl<'a> Cursor<'a> {
    pub(super) fn new(split: &'a Split, ordered: &'a Ordered, part: usize) -> Cursor<'a> {
        Cursor {
            split,
            ordered,
            part,
            next: part + 1,
            stopped: false,
            shift: 0,
        }
    }

    /// Which file and which of its parts.
    pub(super) fn part(&self) -> (&'a Split, usize) {
        (self.split, self.part)
    }
}

impl PartEnd for Cursor<'_> {
    fn start(&self) -> u64 {
        self.split.starts[self.part]
    }

    fn next_end(&self) -> u64 {
        self.split
            .starts
            .get(self.next)
            .copied()
            .unwrap_or(u64::MAX)
    }

    fn reached(&mut self, offset: u64, line: u64, fresh: bool) -> ControlFlow<()> {
        while self.next < self.split.parts() {
            let end = self.next_end();
            if offset < end || (offset == end && !fresh) {
                break;
            }
            if offset == end {
                let end = End::At {
                    part: self.next,
                    line: line - self.shift,
                };
                self.split.ended(self.part, end, self.ordered);
                self.stopped = true;
                return ControlFlow::Break(());
            }
            self.split.passed(self.part, self.next, self.ordered);
            self.next += 1;
        }
        ControlFlow::Continue(())
    }

    fn first_line(&mut self) -> Option<u64> {
        let first_line = self.split.first_line(self.part)?;
        self.shift = first_line - 1;
        // The decoder and the visitor run on this thread: the visitor sees this at its next line.
        self.split.numbered[self.part].store(true, Ordering::Relaxed);
        Some(first_line)
    }
}

impl Drop for Cursor<'_> {
    fn drop(&mut self) {
        if !self.stopped {
            self.split.ended(self.part, End::Eof, self.ordered);
        }
    }
}
