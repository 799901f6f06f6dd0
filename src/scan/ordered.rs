//! Output of parallel workers written in input order, in bounded memory.
//!
//! Each worker scans one input at a time and writes its stdout and stderr into an
//! [`OrderedWriter`]; one thread ([`Ordered::write_in_order`]) writes the inputs' output in input
//! order. The input being written (the head) streams: what its worker flushes (every alert) is
//! written at once, and stdout is flushed whenever the writing thread has nothing more to write,
//! so an alert never waits for a slow input, yet a fast scan pays no system call per alert. Inputs further on are held in memory, but
//! only up to [`HELD_LIMIT`] bytes in all and [`AHEAD`] inputs beyond the head: past that their
//! workers wait, so a file with millions of alerts costs a few megabytes, not its whole output.
//!
//! A unit can be voided before its turn (a part of a file that another worker's decoder turned
//! out to cover, see `split.rs`): what it handed over is dropped, it counts as empty, and its
//! worker is told to stop at its next hand-over.
//!
//! It owns ordering and back-pressure; it does not know what is written.

use super::Summary;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Write};
use std::mem;
use std::sync::{Condvar, Mutex, MutexGuard};

/// Output held for inputs after the head, in all, before their workers wait.
const HELD_LIMIT: usize = 8 << 20;
/// Output of the head held before its worker waits for the writing thread.
const HEAD_LIMIT: usize = 1 << 20;
/// What a worker gathers before handing it over (unless it is the head and flushes).
const CHUNK: usize = 64 << 10;
/// How many inputs beyond the head may be started.
const AHEAD: usize = 64;

/// Which of an input's outputs an [`OrderedWriter`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stream {
    Out,
    Err,
}

#[derive(Default)]
struct Pending {
    out: Vec<u8>,
    err: Vec<u8>,
    /// The input's result, once its worker is done.
    done: Option<io::Result<Summary>>,
}

struct State {
    /// The input being written.
    head: usize,
    pending: BTreeMap<usize, Pending>,
    /// Bytes in `pending`.
    held: usize,
    /// The writing thread gave up: workers stop.
    stopped: bool,
    /// The writing thread waits for output (so a worker must wake it).
    writer_waiting: bool,
    /// Workers waiting for room or for their turn to start.
    workers_waiting: usize,
    /// Units voided: their output and results are not taken.
    void: BTreeSet<usize>,
}

pub(super) struct Ordered {
    state: Mutex<State>,
    /// Wakes the writing thread: output arrived.
    to_writer: Condvar,
    /// Wakes workers: room was made or the head moved.
    to_workers: Condvar,
}

impl Ordered {
    pub(super) fn new() -> Ordered {
        Ordered {
            state: Mutex::new(State {
                head: 0,
                pending: BTreeMap::new(),
                held: 0,
                stopped: false,
                writer_waiting: false,
                workers_waiting: 0,
                void: BTreeSet::new(),
            }),
            to_writer: Condvar::new(),
            to_workers: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A worker that panicked holding the lock leaves consistent state (every update is
        // complete before it can panic), so the lock is taken anyway.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits as a worker for room or for the head to move.
    fn worker_wait<'a>(&self, mut state: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        state.workers_waiting += 1;
        let mut state = self
            .to_workers
            .wait(state)
            .unwrap_or_else(|e| e.into_inner());
        state.workers_waiting -= 1;
        state
    }

    /// Wakes the writing thread if it waits (a wake-up is a system call: not one per alert).
    fn wake_writer(&self, state: &State) {
        if state.writer_waiting {
            self.to_writer.notify_one();
        }
    }

    fn wake_workers(&self, state: &State) {
        if state.workers_waiting > 0 {
            self.to_workers.notify_all();
        }
    }

    /// Waits until input `index` may be started; false when the scan stopped.
    pub(super) fn start(&self, index: usize) -> bool {
        let mut state = self.lock();
        while !state.stopped && index >= state.head + AHEAD {
            state = self.worker_wait(state);
        }
        !state.stopped
    }

    pub(super) fn writer(&self, index: usize, stream: Stream) -> OrderedWriter<'_> {
        OrderedWriter {
            ordered: self,
            index,
            stream,
            local: Vec::new(),
        }
    }

    /// Records input `index`'s result; its writers must have been closed.
    pub(super) fn finish(&self, index: usize, result: io::Result<Summary>) {
        let mut state = self.lock();
        if state.void.contains(&index) {
            return;
        }
        state.pending.entry(index).or_default().done = Some(result);
        self.wake_writer(&state);
    }

    /// Unit `index`, not yet written (a unit before it is unfinished), counts as empty: what it
    /// handed over is dropped, and what it hands over from now on is refused.
    pub(super) fn void(&self, index: usize) {
        let mut state = self.lock();
        debug_assert!(
            index > state.head,
            "a voided unit must not have been written"
        );
        if !state.void.insert(index) {
            return;
        }
        let dropped = state.pending.insert(
            index,
            Pending {
                done: Some(Ok(Summary::default())),
                ..Pending::default()
            },
        );
        if let Some(dropped) = dropped {
            state.held -= dropped.out.len() + dropped.err.len();
        }
        self.wake_writer(&state);
        self.wake_workers(&state);
    }

    /// Whether unit `index` was voided.
    pub(super) fn is_void(&self, index: usize) -> bool {
        self.lock().void.contains(&index)
    }

    /// No more output is taken: waiting workers give up.
    pub(super) fn stop(&self) {
        self.lock().stopped = true;
        self.to_workers.notify_all();
    }

    /// Hands `bytes` of input `index` over to the writing thread, waiting while too much is held.
    fn hand_over(&self, index: usize, stream: Stream, bytes: &mut Vec<u8>) -> io::Result<()> {
        let mut state = self.lock();
        loop {
            if state.stopped {
                return Err(io::Error::new(
                    io::ErrorKind::BrokenPipe,
                    "the scan stopped writing output",
                ));
            }
            if state.void.contains(&index) {
                return Err(io::Error::new(
                    io::ErrorKind::Interrupted,
                    "this part of the input is decoded by another worker",
                ));
            }
            let fits = if state.head == index {
                state
                    .pending
                    .get(&index)
                    .map_or(0, |p| p.out.len() + p.err.len())
                    < HEAD_LIMIT
            } else {
                state.held + bytes.len() <= HELD_LIMIT
            };
            if fits {
                break;
            }
            state = self.worker_wait(state);
        }
        state.held += bytes.len();
        let pending = state.pending.entry(index).or_default();
        let target = match stream {
            Stream::Out => &mut pending.out,
            Stream::Err => &mut pending.err,
        };
        if target.is_empty() {
            mem::swap(target, bytes);
        } else {
            target.append(bytes);
        }
        self.wake_writer(&state);
        Ok(())
    }

    /// Writes the output of inputs `0..count` in order, as it comes, and adds up their summaries.
    /// On a failure to write, or an input whose worker failed, stops the workers and returns it.
    pub(super) fn write_in_order(
        &self,
        count: usize,
        out: &mut dyn Write,
        err: &mut dyn Write,
    ) -> io::Result<Summary> {
        let result = self.write_loop(count, out, err);
        if result.is_err() {
            self.stop();
        }
        result
    }

    fn write_loop(
        &self,
        count: usize,
        out: &mut dyn Write,
        err: &mut dyn Write,
    ) -> io::Result<Summary> {
        let mut summary = Summary::default();
        let mut unflushed = false;
        let mut state = self.lock();
        while state.head < count {
            let head = state.head;
            let pending = state.pending.entry(head).or_default();
            let (out_bytes, err_bytes) = (mem::take(&mut pending.out), mem::take(&mut pending.err));
            let done = pending.done.take();
            if out_bytes.is_empty() && err_bytes.is_empty() && done.is_none() {
                if unflushed {
                    // Nothing more to write for now: what was written goes out before waiting.
                    drop(state);
                    out.flush()?;
                    unflushed = false;
                    state = self.lock();
                    continue;
                }
                state.writer_waiting = true;
                state = self
                    .to_writer
                    .wait(state)
                    .unwrap_or_else(|e| e.into_inner());
                state.writer_waiting = false;
                continue;
            }
            state.held -= out_bytes.len() + err_bytes.len();
            if done.is_some() {
                state.pending.remove(&head);
                state.head += 1;
            }
            self.wake_workers(&state);
            drop(state);
            if !out_bytes.is_empty() {
                out.write_all(&out_bytes)?;
                unflushed = true;
            }
            err.write_all(&err_bytes)?;
            if let Some(done) = done {
                summary.add(&done?);
            }
            state = self.lock();
        }
        drop(state);
        out.flush()?;
        Ok(summary)
    }
}

/// One input's stdout or stderr, from its worker.
pub(super) struct OrderedWriter<'a> {
    ordered: &'a Ordered,
    index: usize,
    stream: Stream,
    local: Vec<u8>,
}

impl OrderedWriter<'_> {
    /// Hands over what is left; the input's output is complete.
    pub(super) fn close(mut self) -> io::Result<()> {
        self.hand_over()
    }

    fn hand_over(&mut self) -> io::Result<()> {
        if self.local.is_empty() {
            return Ok(());
        }
        self.ordered
            .hand_over(self.index, self.stream, &mut self.local)?;
        self.local.clear();
        Ok(())
    }
}

impl Write for OrderedWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.local.extend_from_slice(bytes);
        if self.local.len() >= CHUNK {
            self.hand_over()?;
        }
        Ok(bytes.len())
    }

    /// Hands over at once: an alert is written as soon as its input is the head (at once, if it
    /// is), even if its worker then waits for input.
    fn flush(&mut self) -> io::Result<()> {
        self.hand_over()
    }
}
