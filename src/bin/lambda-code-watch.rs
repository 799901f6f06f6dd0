//! The `lambda-code-watch` command: runs the detection over CloudTrail files (backtesting, hunting).

use lambda_code_watch::Detector;
use lambda_code_watch::scan::{self, Format, Options, Summary};
use std::ffi::OsString;
use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "\
lambda-code-watch: alert when a person changes the code of an AWS Lambda function.

Usage:
  lambda-code-watch scan [OPTIONS] [PATH ...]
  lambda-code-watch --help | --version

Runs the rule AWS.Lambda.UpdateFunctionCode (\"Lambda Code Updated by User\") over CloudTrail
records and prints an alert for every successful UpdateFunctionCode* call made by an IAM user,
a federated user or an IAM Identity Center (AWSReservedSSO_) user.

PATH is a file or a directory (read recursively, in name order); none, or '-', reads stdin.
Each input may hold, in any mix: single CloudTrail records, EventBridge envelopes (record under
\"detail\"), CloudTrail log files ({\"Records\": [...]}), `aws cloudtrail lookup-events` output
({\"Events\": [{\"CloudTrailEvent\": \"...\"}]}), JSON arrays of these, one per line (NDJSON) or
pretty-printed one after another; gzip-compressed or not (detected from the content).

Options:
  --format json|text  json (default): one alert document per line, exactly what the Lambda
                      publishes to SNS; text: the human rendering with the runbook
  --explain           also print every record's verdict and why on stderr (parses every
                      record, one input at a time)
  -j, --jobs N        inputs scanned at once (default: number of CPUs)
  -h, --help          this help

Output:
  stdout  the alerts, in input order
  stderr  every unreadable part of the input as 'path:line: reason', then a summary with the
          counts of inputs, records, alerts, quiet records by reason, and errors

Exit status:
  0  all input was read (whether or not there were alerts)
  1  some input could not be read or parsed (everything else was still scanned)
  2  usage error
";

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    match args.first().and_then(|a| a.to_str()) {
        Some("scan") => match parse_scan_args(&args[1..]) {
            Ok(Some((options, paths))) => run_scan(&options, &paths),
            Ok(None) => print_usage(),
            Err(message) => usage_error(&message),
        },
        Some("-h" | "--help" | "help") => print_usage(),
        Some("-V" | "--version") => {
            println!("lambda-code-watch {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Some(other) => usage_error(&format!("unknown command '{other}'")),
        None if args.is_empty() => usage_error("missing command"),
        None => usage_error("arguments must be valid UTF-8"),
    }
}

fn print_usage() -> ExitCode {
    print!("{USAGE}");
    ExitCode::SUCCESS
}

fn usage_error(message: &str) -> ExitCode {
    eprintln!("lambda-code-watch: {message}\nTry 'lambda-code-watch --help'.");
    ExitCode::from(2)
}

/// `Ok(None)` means help was asked for.
fn parse_scan_args(args: &[OsString]) -> Result<Option<(Options, Vec<PathBuf>)>, String> {
    let mut options = Options::default();
    let mut paths = Vec::new();
    let mut args = args.iter();
    let mut only_paths = false;
    while let Some(arg) = args.next() {
        let text = arg.to_str().unwrap_or("");
        if only_paths || !text.starts_with('-') || text == "-" {
            paths.push(PathBuf::from(arg));
            continue;
        }
        let (flag, inline_value) = match text.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag, Some(value.to_owned())),
            _ => (text, None),
        };
        let mut value = |name: &str| -> Result<String, String> {
            match inline_value.clone() {
                Some(v) => Ok(v),
                None => args
                    .next()
                    .and_then(|v| v.to_str())
                    .map(str::to_owned)
                    .ok_or_else(|| format!("{name} needs a value")),
            }
        };
        match flag {
            "--" => only_paths = true,
            "-h" | "--help" => return Ok(None),
            "--explain" => options.explain = true,
            "--format" => {
                options.format = match value("--format")?.as_str() {
                    "json" => Format::Json,
                    "text" => Format::Text,
                    other => return Err(format!("--format must be json or text, not '{other}'")),
                }
            }
            "-j" | "--jobs" => {
                let v = value("--jobs")?;
                options.jobs = match v.parse::<usize>() {
                    Ok(n) if n > 0 => n,
                    _ => return Err(format!("--jobs needs a positive number, not '{v}'")),
                }
            }
            other => return Err(format!("unknown option '{other}' for scan")),
        }
    }
    Ok(Some((options, paths)))
}

fn run_scan(options: &Options, paths: &[PathBuf]) -> ExitCode {
    let stdout = io::stdout();
    let mut out = io::BufWriter::with_capacity(64 * 1024, stdout.lock());
    let stderr = io::stderr();
    let mut err = stderr.lock();
    let mut summary = Summary::default();
    let result = scan::collect_inputs(paths, &mut summary, &mut err).and_then(|inputs| {
        let scanned = scan::scan(&inputs, &Detector::default(), options, &mut out, &mut err)?;
        out.flush()?;
        Ok(scanned)
    });
    match result {
        Ok(scanned) => {
            summary = Summary {
                errors: summary.errors + scanned.errors,
                ..scanned
            };
            let _ = writeln!(err, "{summary}");
            if summary.errors == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        // Output closed early (e.g. piped into `head`): nothing more to say.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::FAILURE,
        Err(e) => {
            let _ = writeln!(err, "lambda-code-watch: cannot write output: {e}");
            ExitCode::FAILURE
        }
    }
}
