//! `scan` through the test oracle: the simple reference decoder (whole input in memory, no caps)
//! and a full parse of every record, instead of the streaming decoder and the literal prefilter.
//! It prints exactly what `lambda-code-watch scan` prints, slower; `scripts/bench` uses it to show
//! that on the generated corpus. Not for users: it keeps none of `scan`'s memory promises.
//!
//! Usage: `cargo run --example scan_reference -- [-j N] PATH...`

use lambda_code_watch::Detector;
use lambda_code_watch::scan::{self, Options, Summary};
use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut options = Options {
        reference_decoder: true,
        ..Options::default()
    };
    let mut paths = Vec::new();
    let mut args = std::env::args_os().skip(1);
    while let Some(arg) = args.next() {
        if arg == "-j" {
            match args.next().and_then(|n| n.to_str()?.parse().ok()) {
                Some(jobs) if jobs > 0 => options.jobs = jobs,
                _ => {
                    eprintln!("scan_reference: -j needs a positive number");
                    return ExitCode::from(2);
                }
            }
        } else {
            paths.push(PathBuf::from(arg));
        }
    }
    let mut out = io::BufWriter::new(io::stdout().lock());
    let mut err = io::stderr().lock();
    let mut summary = Summary::default();
    let result = scan::collect_inputs(&paths, &mut summary, &mut err).and_then(|inputs| {
        let scanned = scan::scan(&inputs, &Detector::default(), &options, &mut out, &mut err)?;
        out.flush()?;
        Ok(scanned)
    });
    match result {
        Ok(scanned) => {
            let errors = summary.errors + scanned.errors;
            let _ = writeln!(err, "{}", Summary { errors, ..scanned });
            if errors == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            let _ = writeln!(err, "scan_reference: {e}");
            ExitCode::FAILURE
        }
    }
}
