//! Decompress-only comparison of the gzip decoders available to Rust: how fast can the benchmark's
//! `.json.gz` tree be inflated when nothing else is done with the bytes?
//!
//! `scan` over gzip input can be no faster than its decoder, so this is the ceiling `scripts/bench`
//! holds it against. The flate2 backend is chosen at build time (features `zlib-rs`, `zlib-ng`,
//! `miniz-oxide`, `zlib`; `scripts/bench` builds one binary per backend); libdeflate (through the
//! `libdeflater` crate) is always built in. flate2 streams through a 256 KiB buffer, as `scan` does;
//! libdeflate cannot stream, so it reads each whole file and inflates it in one call (fine for
//! CloudTrail's few-MB files, not for arbitrarily large input: that is its trade-off).
//!
//! It only counts bytes: no checks beyond the decoders' own CRC checks, no parsing.
//!
//! Usage: `bench-gzip [--decoder flate2|libdeflate] [-j N] PATH...` (files or directories);
//! prints `decoder files compressed_bytes uncompressed_bytes`.

use std::fs::{self, File};
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;

const BUFFER: usize = 256 * 1024;

#[derive(Clone, Copy, PartialEq)]
enum Decoder {
    Flate2,
    Libdeflate,
}

fn flate2_backend() -> &'static str {
    if cfg!(feature = "zlib-ng") {
        "flate2-zlib-ng"
    } else if cfg!(feature = "zlib") {
        "flate2-zlib"
    } else if cfg!(feature = "zlib-rs") {
        "flate2-zlib-rs"
    } else {
        "flate2-miniz-oxide"
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("bench-gzip: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let mut decoder = Decoder::Flate2;
    let mut jobs = 1;
    let mut paths = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--decoder" => {
                decoder = match args.next().as_deref() {
                    Some("flate2") => Decoder::Flate2,
                    Some("libdeflate") => Decoder::Libdeflate,
                    other => return Err(format!("--decoder flate2|libdeflate, not {other:?}")),
                }
            }
            "-j" => {
                jobs = args
                    .next()
                    .and_then(|n| n.parse::<usize>().ok())
                    .filter(|&n| n > 0)
                    .ok_or("-j needs a positive number")?
            }
            _ => paths.push(PathBuf::from(arg)),
        }
    }
    if paths.is_empty() {
        return Err("usage: bench-gzip [--decoder flate2|libdeflate] [-j N] PATH...".into());
    }
    let mut files = Vec::new();
    for path in &paths {
        collect(path, &mut files).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    files.sort();

    let queue = Mutex::new(files.iter());
    let totals = Mutex::new((0u64, 0u64));
    std::thread::scope(|scope| -> Result<(), String> {
        let workers: Vec<_> = (0..jobs)
            .map(|_| {
                scope.spawn(|| -> Result<(), String> {
                    let mut buffer = vec![0; BUFFER];
                    let mut inflater = libdeflater::Decompressor::new();
                    let mut whole = Vec::new();
                    loop {
                        let Some(file) = queue.lock().map_err(|e| e.to_string())?.next() else {
                            return Ok(());
                        };
                        let counted = match decoder {
                            Decoder::Flate2 => with_flate2(file, &mut buffer),
                            Decoder::Libdeflate => with_libdeflate(file, &mut inflater, &mut whole),
                        }
                        .map_err(|e| format!("{}: {e}", file.display()))?;
                        let mut totals = totals.lock().map_err(|e| e.to_string())?;
                        totals.0 += counted.0;
                        totals.1 += counted.1;
                    }
                })
            })
            .collect();
        for worker in workers {
            worker
                .join()
                .map_err(|_| "a worker panicked".to_owned())??;
        }
        Ok(())
    })?;
    let (compressed, uncompressed) = *totals.lock().map_err(|e| e.to_string())?;
    let name = match decoder {
        Decoder::Flate2 => flate2_backend(),
        Decoder::Libdeflate => "libdeflate",
    };
    println!("{name} {} {compressed} {uncompressed}", files.len());
    Ok(())
}

fn collect(path: &Path, files: &mut Vec<PathBuf>) -> io::Result<()> {
    if path.is_dir() {
        for entry in fs::read_dir(path)? {
            collect(&entry?.path(), files)?;
        }
    } else {
        files.push(path.to_owned());
    }
    Ok(())
}

/// Returns (compressed, uncompressed) bytes.
fn with_flate2(path: &Path, buffer: &mut [u8]) -> io::Result<(u64, u64)> {
    let file = File::open(path)?;
    let compressed = file.metadata()?.len();
    let mut gz = flate2::read::MultiGzDecoder::new(BufReader::with_capacity(BUFFER, file));
    let mut uncompressed = 0;
    loop {
        match gz.read(buffer) {
            Ok(0) => return Ok((compressed, uncompressed)),
            Ok(n) => uncompressed += n as u64,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// libdeflate needs the whole member in memory and its exact size (the gzip trailer's ISIZE, the
/// size modulo 4 GiB: enough for CloudTrail files). Multi-member files are not handled. `out` is
/// reused from file to file, as a scanner would, so page faults of fresh buffers are not counted.
fn with_libdeflate(
    path: &Path,
    inflater: &mut libdeflater::Decompressor,
    out: &mut Vec<u8>,
) -> io::Result<(u64, u64)> {
    let data = fs::read(path)?;
    let trailer: [u8; 4] = data
        .get(data.len().saturating_sub(4)..)
        .and_then(|t| t.try_into().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "shorter than a gzip trailer"))?;
    let size = u32::from_le_bytes(trailer) as usize;
    if out.len() < size {
        out.resize(size, 0);
    }
    let n = inflater
        .gzip_decompress(&data, &mut out[..size])
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    Ok((data.len() as u64, n as u64))
}
