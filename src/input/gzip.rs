//! Gzip input: CloudTrail-sized files are inflated whole with libdeflate, anything larger streams
//! through flate2 (zlib-rs).
//!
//! CloudTrail delivers one `.json.gz` file of a few MB at most per account, region and five minutes,
//! and libdeflate, which needs the whole member in memory, inflates them about 1.6 times as fast as the
//! fastest streaming decoder (measured by `scripts/bench`, see README.md). A file whose compressed
//! size exceeds [`MAX_WHOLE_INPUT`], or whose inflated size would exceed [`MAX_WHOLE_OUTPUT`], streams
//! instead, and so does any file while [`WHOLE_SLOTS`] others are being inflated whole (by other
//! scanning threads): memory stays bounded whatever the input and the number of threads. Damaged data
//! also goes the streaming way, from the start: it delivers every record before the damage and says
//! where the damage is.
//!
//! This module only produces decompressed bytes; it does not know what they hold.

use flate2::read::MultiGzDecoder;
use libdeflate_sys::{
    libdeflate_alloc_decompressor, libdeflate_decompressor, libdeflate_free_decompressor,
    libdeflate_gzip_decompress_ex, libdeflate_result_LIBDEFLATE_INSUFFICIENT_SPACE,
    libdeflate_result_LIBDEFLATE_SUCCESS,
};
use std::io::{self, Cursor, Read};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Largest compressed input inflated whole.
pub(super) const MAX_WHOLE_INPUT: usize = 4 << 20;
/// Largest inflated output kept whole (with the compressed input, per scanning thread).
pub(super) const MAX_WHOLE_OUTPUT: usize = 20 << 20;
/// How many inputs may be inflated whole at once, process-wide.
pub(super) const WHOLE_SLOTS: usize = 2;

static FREE_WHOLE_SLOTS: AtomicUsize = AtomicUsize::new(WHOLE_SLOTS);

/// One of the [`WHOLE_SLOTS`], given back on drop.
pub(super) struct WholeSlot;

impl WholeSlot {
    fn take() -> Option<WholeSlot> {
        FREE_WHOLE_SLOTS
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |free| {
                free.checked_sub(1)
            })
            .ok()
            .map(|_| WholeSlot)
    }
}

impl Drop for WholeSlot {
    fn drop(&mut self) {
        FREE_WHOLE_SLOTS.fetch_add(1, Ordering::AcqRel);
    }
}

/// The decompressed bytes of a gzip input.
pub(super) enum Inflated<R> {
    /// All of it, already inflated (holding one of the [`WHOLE_SLOTS`]).
    Whole(Vec<u8>, WholeSlot),
    /// To be read as it inflates.
    Streaming(Box<MultiGzDecoder<io::Chain<Cursor<Vec<u8>>, R>>>),
}

/// The inflated bytes of one input, at most `cap` of them: past that, a read fails with
/// [`io::ErrorKind::FileTooLarge`] instead of inflating on (a gzip bomb inflates a thousand
/// times its size).
pub(super) struct Capped<R> {
    inner: R,
    left: u64,
    cap: u64,
}

impl<R: Read> Capped<R> {
    pub(super) fn new(inner: R, cap: u64) -> Capped<R> {
        Capped {
            inner,
            left: cap,
            cap,
        }
    }
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            // Exactly at the cap: fine if the stream ends here.
            let mut probe = [0; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => Err(io::Error::new(
                    io::ErrorKind::FileTooLarge,
                    format!(
                        "the gzip stream inflates to more than {} (--max-inflated-size); the rest \
                         of this input was not read",
                        human_size(self.cap)
                    ),
                )),
            };
        }
        let room = out
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let read = self.inner.read(&mut out[..room])?;
        self.left -= read as u64;
        Ok(read)
    }
}

/// `bytes` as people read a size: `1 GiB`, `512 MiB`, or bytes.
pub(super) fn human_size(bytes: u64) -> String {
    for (shift, unit) in [(40, "TiB"), (30, "GiB"), (20, "MiB"), (10, "KiB")] {
        if bytes >= 1 << shift && bytes.is_multiple_of(1 << shift) {
            return format!("{} {unit}", bytes >> shift);
        }
    }
    format!("{bytes} bytes")
}

/// Opens gzip input whose first bytes, `head`, were already read from `reader`.
pub(super) fn open<R: Read>(head: &[u8], mut reader: R) -> io::Result<Inflated<R>> {
    let Some(slot) = WholeSlot::take() else {
        return Ok(Inflated::Streaming(Box::new(MultiGzDecoder::new(
            Cursor::new(head.to_vec()).chain(reader),
        ))));
    };
    let mut compressed = head.to_vec();
    let limit = (MAX_WHOLE_INPUT + 1).saturating_sub(compressed.len()) as u64;
    (&mut reader).take(limit).read_to_end(&mut compressed)?;
    if compressed.len() <= MAX_WHOLE_INPUT
        && let Some(inflated) = inflate_whole(&compressed)
    {
        drop(compressed);
        // The slot stays taken while the inflated bytes are scanned.
        return Ok(Inflated::Whole(inflated, slot));
    }
    Ok(Inflated::Streaming(Box::new(MultiGzDecoder::new(
        Cursor::new(compressed).chain(reader),
    ))))
}

/// Inflates every member of `compressed`; `None` when the data is damaged or too large, for the
/// streaming decoder to handle.
fn inflate_whole(compressed: &[u8]) -> Option<Vec<u8>> {
    let decompressor = Decompressor::new()?;
    // A single-member file ends with its inflated size (mod 2^32): a good first guess.
    let trailer_size = compressed
        .last_chunk::<4>()
        .map_or(0, |size| u32::from_le_bytes(*size) as usize);
    let mut out = Vec::new();
    let mut input = compressed;
    let mut guess = trailer_size.clamp(64 << 10, MAX_WHOLE_OUTPUT);
    while !input.is_empty() {
        out.reserve(guess);
        if out.capacity() > MAX_WHOLE_OUTPUT {
            return None;
        }
        match decompressor.inflate_member(input, &mut out) {
            Step::Member { consumed } => {
                input = &input[consumed..];
                guess = (input.len() * 8).max(64 << 10);
            }
            Step::NeedsSpace => guess = out.capacity() * 2,
            Step::Damaged => return None,
        }
    }
    Some(out)
}

enum Step {
    /// One member inflated, `consumed` compressed bytes.
    Member {
        consumed: usize,
    },
    /// The member does not fit in the spare capacity.
    NeedsSpace,
    Damaged,
}

/// An owned libdeflate decompressor.
struct Decompressor(*mut libdeflate_decompressor);

impl Decompressor {
    fn new() -> Option<Decompressor> {
        // SAFETY: no preconditions; a null return (out of memory) is handled.
        let raw = unsafe { libdeflate_alloc_decompressor() };
        (!raw.is_null()).then_some(Decompressor(raw))
    }

    /// Inflates the first gzip member of `input` into the spare capacity of `out`.
    fn inflate_member(&self, input: &[u8], out: &mut Vec<u8>) -> Step {
        let spare = out.spare_capacity_mut();
        let (mut consumed, mut produced) = (0usize, 0usize);
        // SAFETY: the decompressor is live; `input` is readable for its length; libdeflate writes at
        // most `spare.len()` bytes into `spare` and reports how many it consumed and produced.
        let result = unsafe {
            libdeflate_gzip_decompress_ex(
                self.0,
                input.as_ptr().cast(),
                input.len(),
                spare.as_mut_ptr().cast(),
                spare.len(),
                &mut consumed,
                &mut produced,
            )
        };
        #[allow(non_upper_case_globals)]
        match result {
            libdeflate_result_LIBDEFLATE_SUCCESS if consumed > 0 && produced <= spare.len() => {
                // SAFETY: libdeflate initialised `produced` bytes of the spare capacity.
                unsafe { out.set_len(out.len() + produced) };
                Step::Member { consumed }
            }
            libdeflate_result_LIBDEFLATE_INSUFFICIENT_SPACE => Step::NeedsSpace,
            _ => Step::Damaged,
        }
    }
}

impl Drop for Decompressor {
    fn drop(&mut self) {
        // SAFETY: allocated by libdeflate_alloc_decompressor, freed once.
        unsafe { libdeflate_free_decompressor(self.0) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{Compression, write::GzEncoder};
    use std::io::Write;
    use std::sync::Mutex;

    /// The whole-inflation slots are process-wide: tests that count on one run one at a time.
    pub(super) static SERIAL: Mutex<()> = Mutex::new(());

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    fn read_all<R: Read>(inflated: Inflated<R>) -> (bool, io::Result<Vec<u8>>) {
        match inflated {
            Inflated::Whole(bytes, _) => (true, Ok(bytes)),
            Inflated::Streaming(mut stream) => {
                let mut bytes = Vec::new();
                let result = stream.read_to_end(&mut bytes).map(|_| bytes);
                (false, result)
            }
        }
    }

    #[test]
    fn small_files_inflate_whole_including_several_members() {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let text: Vec<u8> = (0..200_000u32)
            .flat_map(|i| format!("{i},").into_bytes())
            .collect();
        let mut two_members = gzip(&text[..1000]);
        two_members.extend(gzip(&text[1000..]));
        for (data, expected) in [
            (gzip(&text), &text[..]),
            (two_members, &text[..]),
            (gzip(b""), &b""[..]),
        ] {
            let (whole, bytes) = read_all(open(&data[..2], &data[2..]).unwrap());
            assert!(whole);
            let bytes = bytes.unwrap();
            assert!(bytes == expected, "{} bytes", bytes.len());
        }
    }

    #[test]
    fn a_wrong_size_trailer_only_costs_a_retry() {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let text = vec![b'x'; 3 << 20];
        let mut data = gzip(&text);
        data.extend(gzip(b"tail")); // the trailer now gives the last member's size: 4
        let (whole, bytes) = read_all(open(&data[..2], &data[2..]).unwrap());
        assert!(whole);
        assert_eq!(bytes.unwrap().len(), text.len() + 4);
    }

    #[test]
    fn damaged_or_huge_input_streams() {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let text = vec![b'y'; 1 << 20];
        let mut damaged = gzip(&text);
        let middle = damaged.len() / 2;
        damaged[middle] ^= 0xff;
        let (whole, bytes) = read_all(open(&damaged[..2], &damaged[2..]).unwrap());
        assert!(!whole);
        assert!(bytes.is_err());
        let truncated = &gzip(&text)[..100];
        assert!(!read_all(open(&truncated[..2], &truncated[2..]).unwrap()).0);
        let bomb = gzip(&vec![0u8; MAX_WHOLE_OUTPUT + 1]);
        let (whole, bytes) = read_all(open(&bomb[..2], &bomb[2..]).unwrap());
        assert!(!whole, "inflates past the whole-file limit: streamed");
        assert_eq!(bytes.unwrap().len(), MAX_WHOLE_OUTPUT + 1);
    }
}

#[cfg(test)]
mod cap_tests {
    use super::*;

    #[test]
    fn reads_up_to_the_cap_then_fails_unless_the_stream_ends_there() {
        let data = [7u8; 100];
        let mut exact = Vec::new();
        Capped::new(&data[..], 100).read_to_end(&mut exact).unwrap();
        assert_eq!(exact.len(), 100);
        let mut cut = Vec::new();
        let error = Capped::new(&data[..], 99)
            .read_to_end(&mut cut)
            .unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::FileTooLarge);
        assert_eq!(cut.len(), 99);
        assert!(error.to_string().contains("99 bytes"), "{error}");
        assert_eq!(human_size(1 << 30), "1 GiB");
        assert_eq!(human_size(3 << 20), "3 MiB");
        assert_eq!(human_size(1000), "1000 bytes");
    }
}

#[cfg(test)]
mod slot_tests {
    use super::*;

    #[test]
    fn when_every_slot_is_taken_input_streams() {
        let _serial = tests_serial();
        let held: Vec<WholeSlot> = std::iter::from_fn(WholeSlot::take).collect();
        assert_eq!(held.len(), WHOLE_SLOTS);
        let data = [
            0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ];
        assert!(matches!(
            open(&data[..2], &data[2..]).unwrap(),
            Inflated::Streaming(_)
        ));
        drop(held);
        assert!(matches!(
            open(&data[..2], &data[2..]).unwrap(),
            Inflated::Whole(..)
        ));
    }

    fn tests_serial() -> std::sync::MutexGuard<'static, ()> {
        super::tests::SERIAL
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }
}
