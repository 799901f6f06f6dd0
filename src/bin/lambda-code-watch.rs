//! The `lambda-code-watch` command: runs the detection over CloudTrail files (backtesting, hunting)
//! and prints it as SQL for AWS's own query engines. Argument parsing is clap's; everything else is
//! the library's.

use clap::{Args, Parser, Subcommand, ValueEnum};
use lambda_code_watch::detector::Canary;
use lambda_code_watch::grouping::Window;
use lambda_code_watch::scan::{self, Format, Options, Summary};
use lambda_code_watch::sql::{self, Dialect, RuleSql, TableName};
use lambda_code_watch::window::TimeWindow;
use lambda_code_watch::{AccountNames, Detector, Policy};
use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

const ABOUT: &str = "Alert when a person changes the code of an AWS Lambda function.";

const LONG_ABOUT: &str = "\
Alert when a person changes the code of an AWS Lambda function.

Runs the rule AWS.Lambda.UpdateFunctionCode (\"Lambda Code Updated by User\") over CloudTrail
records and prints an alert for every successful UpdateFunctionCode* call made by an IAM user,
a federated user or an IAM Identity Center (AWSReservedSSO_) user.";

#[derive(Parser)]
#[command(
    name = "lambda-code-watch",
    version,
    about = ABOUT,
    long_about = LONG_ABOUT,
    after_help = "Run 'lambda-code-watch help <COMMAND>' for a command's options and examples."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the rule over CloudTrail files, directories or stdin and print the alerts
    #[command(
        long_about = SCAN_ABOUT,
        after_help = SCAN_AFTER_HELP,
    )]
    Scan(ScanArgs),
    /// Print the rule as a SQL query for Athena, CloudTrail Lake or Security Lake
    #[command(after_help = SQL_AFTER_HELP)]
    Sql(SqlArgs),
}

const SCAN_ABOUT: &str = "\
Run the rule over CloudTrail records and print an alert for each code update made by a person.

PATH is a file or a directory (read recursively, in name order); none, or '-', reads stdin.
PATH may also be s3://BUCKET/PREFIX (builds with the cargo feature `s3`): the CloudTrail objects
below it are read straight from S3, many at once, in the order a local scan of the same tree would
read them. --accounts, --regions and --since/--until choose which key prefixes of the trail layout
(AWSLogs/[o-ORGID/]ACCOUNT/CloudTrail/REGION/YYYY/MM/DD/) are listed and fetched.
Each input may hold, in any mix: single CloudTrail records, EventBridge envelopes (record under
\"detail\"), CloudTrail log files ({\"Records\": [...]}), `aws cloudtrail lookup-events` output
({\"Events\": [{\"CloudTrailEvent\": \"...\"}]}), JSON arrays of these, one per line (NDJSON) or
pretty-printed one after another; gzip-compressed or not (detected from the content).";

const SCAN_AFTER_HELP: &str = "\
Output:
  stdout  the alerts, in input order
  stderr  every unreadable part of the input as 'path:line: reason', then a summary with the
          counts of inputs, records, alerts, quiet records by reason, and errors; with --policy,
          alerts suppressed per entry (and a line for every alert an expired entry would have
          hidden); with --group, how many notifications the team would have received

Exit status:
  0  all input was read (whether or not there were alerts)
  1  some input could not be read or parsed (everything else was still scanned)
  2  usage error, or a policy file that cannot be used (the message names file, line and key)

Examples:
  lambda-code-watch scan events/
  lambda-code-watch scan --policy examples/policy.toml --group ~/cloudtrail/
  lambda-code-watch scan --format text ~/cloudtrail/AWSLogs/111122223333/CloudTrail/
  lambda-code-watch scan --since 2025-01-01 --until 2025-12-31 s3://org-trail-bucket/AWSLogs/o-abc123/
  AWS_PROFILE=security-audit lambda-code-watch scan --accounts 111122223333 --regions eu-west-1 \\
      --since 2025-06-01T00:00:00Z s3://org-trail-bucket/
  aws cloudtrail lookup-events --lookup-attributes \\
      AttributeKey=EventSource,AttributeValue=lambda.amazonaws.com | lambda-code-watch scan
  lambda-code-watch scan --account-names accounts.json --format text s3://org-trail-bucket/";

const SQL_AFTER_HELP: &str = "\
Examples:
  lambda-code-watch sql --dialect athena --table cloudtrail_logs
  lambda-code-watch sql --dialect cloudtrail-lake --table <event-data-store-id>
  lambda-code-watch sql --dialect security-lake";

#[derive(Args)]
struct ScanArgs {
    /// Output format: json (one alert document per line, exactly what the Lambda publishes to
    /// SNS) or text (the human rendering with the runbook)
    #[arg(long, value_enum, default_value_t = FormatArg::Json)]
    format: FormatArg,
    /// Also print every record's verdict and why on stderr (parses every record, one input at a
    /// time)
    #[arg(long)]
    explain: bool,
    /// Tuning policy (TOML): who else counts as a person, and which alerts are suppressed; the
    /// same document the Lambda function reads
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Group alerts as the Lambda does (by title, in windows by eventTime) and print what the
    /// team would have received: each window's first alert and one summary per window that held
    /// more
    #[arg(long)]
    group: bool,
    /// Grouping window in minutes (with --group; 0 turns grouping off)
    #[arg(long, value_name = "MINUTES", default_value_t = 60, requires = "group")]
    window_minutes: u32,
    /// Inputs scanned at once, a large uncompressed file counting as one input per 32 MiB
    /// [default: number of CPUs]
    #[arg(short, long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    jobs: Option<u16>,
    /// Most that one gzip-compressed input may inflate to, in bytes or with a K, M, G or T suffix
    /// (powers of 1024); past it the input ends with an error, after its records up to there, so
    /// a small file that inflates to many gigabytes costs no more than this [default: 1G]
    #[arg(long, value_name = "SIZE", value_parser = parse_size_arg)]
    max_inflated_size: Option<u64>,
    /// Show only alerts whose eventTime is at or after this: a date (2025-06-01, from the start of
    /// that UTC day) or an RFC 3339 time (2025-06-01T12:00:00Z); s3:// inputs list only the days
    /// from this one on
    #[arg(long, value_name = "TIME")]
    since: Option<String>,
    /// Show only alerts whose eventTime is at or before this: a date (through the end of that UTC
    /// day) or an RFC 3339 time; s3:// inputs list days up to the day after it (late deliveries)
    #[arg(long, value_name = "TIME")]
    until: Option<String>,
    /// s3:// inputs: read only these accounts' logs (12-digit IDs, comma-separated)
    #[arg(long, value_name = "ID,...", value_delimiter = ',')]
    accounts: Vec<String>,
    /// s3:// inputs: read only these regions' logs (comma-separated, e.g. us-east-1,eu-west-1)
    #[arg(long, value_name = "REGION,...", value_delimiter = ',')]
    regions: Vec<String>,
    /// s3:// inputs: objects downloaded at once, ahead of the scan [default: 32]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    s3_concurrency: Option<u16>,
    /// Name the account in each alert (`account_name`, and the text's "Where:" line) from FILE: a
    /// JSON object from 12-digit account IDs to names, {"111122223333": "payments-prod"}, the
    /// same as the function's ACCOUNT_NAMES
    #[arg(long, value_name = "FILE")]
    account_names: Option<PathBuf>,
    /// The deployment's canary role (its ARN, the stack output CanaryRoleArn): its code updates
    /// are quiet ("canary"), as the deployed function treats them, whatever --policy says about
    /// people
    #[arg(long, value_name = "ARN")]
    canary_role: Option<String>,
    /// Files or directories to read, or s3://BUCKET/PREFIX; none, or '-', reads stdin
    #[arg(value_name = "PATH")]
    paths: Vec<PathBuf>,
}

fn parse_size_arg(text: &str) -> Result<u64, String> {
    match parse_size::Config::new().with_binary().parse_size(text) {
        Ok(0) => Err("must be more than 0".to_owned()),
        Ok(size) => Ok(size),
        Err(e) => Err(format!("{e} (expected e.g. 1G, 512M or a number of bytes)")),
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum FormatArg {
    Json,
    Text,
}

#[derive(Args)]
struct SqlArgs {
    /// The engine the query is for
    #[arg(long, value_enum)]
    dialect: DialectArg,
    /// The table to read (for CloudTrail Lake: the event data store id) [default: the dialect's
    /// usual table name]
    #[arg(long, value_name = "NAME")]
    table: Option<String>,
}

#[derive(Clone, Copy, ValueEnum)]
enum DialectArg {
    /// Amazon Athena over the trail's S3 logs (the CloudTrail table AWS documents)
    Athena,
    /// A CloudTrail Lake event data store
    CloudtrailLake,
    /// Amazon Security Lake's OCSF CloudTrail table (through Athena)
    SecurityLake,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            if e.use_stderr() {
                eprint!("lambda-code-watch: {e}");
            } else {
                let _ = e.print();
            }
            return ExitCode::from(code);
        }
    };
    match cli.command {
        Command::Scan(args) => run_scan(args),
        Command::Sql(args) => run_sql(args),
    }
}

fn run_sql(args: SqlArgs) -> ExitCode {
    let dialect = match args.dialect {
        DialectArg::Athena => Dialect::Athena,
        DialectArg::CloudtrailLake => Dialect::CloudTrailLake,
        DialectArg::SecurityLake => Dialect::SecurityLake,
    };
    let table = match args.table.as_deref().map(TableName::parse).transpose() {
        Ok(table) => table,
        Err(e) => {
            eprintln!("lambda-code-watch: --table: {e}");
            return ExitCode::from(2);
        }
    };
    print!("{}", sql::render(dialect, &RuleSql { table }));
    ExitCode::SUCCESS
}

fn run_scan(args: ScanArgs) -> ExitCode {
    let mut options = Options {
        format: match args.format {
            FormatArg::Json => Format::Json,
            FormatArg::Text => Format::Text,
        },
        explain: args.explain,
        group: args.group.then(|| Window::minutes(args.window_minutes)),
        ..Options::default()
    };
    if let Some(jobs) = args.jobs {
        options.jobs = usize::from(jobs);
    }
    if let Some(size) = args.max_inflated_size {
        options.max_inflated_bytes = size;
    }
    options.window = match TimeWindow::parse(args.since.as_deref(), args.until.as_deref()) {
        Ok(window) => window,
        Err(e) => return usage_error(&e.to_string()),
    };
    if let Err(e) = check_s3_filters(&args) {
        return usage_error(&e);
    }
    let detector = match detector_for(&args) {
        Ok(detector) => detector,
        Err(e) => return usage_error(&e),
    };
    report_expired_entries(&detector);
    if args.paths.iter().any(|p| is_s3(p)) {
        return run_s3_scan(args, options, detector);
    }
    let stdout = io::stdout();
    let mut out = io::BufWriter::with_capacity(64 * 1024, stdout.lock());
    let stderr = io::stderr();
    let mut err = stderr.lock();
    let mut summary = Summary::default();
    let result = scan::collect_inputs(&args.paths, &mut summary, &mut err).and_then(|inputs| {
        let scanned = scan::scan(&inputs, &detector, &options, &mut out, &mut err)?;
        out.flush()?;
        Ok(scanned)
    });
    report(result, summary, &detector, &options, &mut err, || {})
}

/// The detector the scan runs: the original rule, or the rule tuned by `--policy`, naming accounts
/// from `--account-names`.
fn detector_for(args: &ScanArgs) -> Result<Detector, String> {
    let detector = match &args.policy {
        None => Detector::default(),
        Some(path) => {
            Detector::new(Policy::load(path).map_err(|e| format!("invalid policy: {e}"))?)
        }
    }
    .with_canary(args.canary_role.clone().map(|role_arn| Canary {
        role_arn,
        target_function: None,
    }));
    let Some(path) = &args.account_names else {
        return Ok(detector);
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("--account-names {}: {e}", path.display()))?;
    let names = AccountNames::from_json(&text)
        .map_err(|e| format!("--account-names {}: {e}", path.display()))?;
    Ok(detector.with_account_names(names))
}

/// Says at start which policy entries have expired (and, during the scan, every alert one of them
/// would have hidden).
fn report_expired_entries(detector: &Detector) {
    for entry in detector.expired_entries() {
        eprintln!(
            "{}:{}: {} (\"{}\") expired after {}: it no longer suppresses anything",
            detector.policy().source,
            entry.line,
            entry.name(),
            lambda_code_watch::alert::printable(&entry.reason),
            entry.expires.map(|d| d.to_string()).unwrap_or_default()
        );
    }
}

fn usage_error(message: &str) -> ExitCode {
    eprintln!("lambda-code-watch: {message}");
    ExitCode::from(2)
}

fn is_s3(path: &std::path::Path) -> bool {
    path.to_str().is_some_and(|p| p.starts_with("s3://"))
}

/// `--accounts` and `--regions` choose S3 key prefixes: refused when there is nothing to choose
/// from, or when a value cannot be a folder of the layout.
fn check_s3_filters(args: &ScanArgs) -> Result<(), String> {
    let has_s3 = args.paths.iter().any(|p| is_s3(p));
    for (flag, values) in [("--accounts", &args.accounts), ("--regions", &args.regions)] {
        if !values.is_empty() && !has_s3 {
            return Err(format!(
                "{flag} chooses which S3 key prefixes are read: give an s3://BUCKET/PREFIX input"
            ));
        }
    }
    if let Some(bad) = args
        .accounts
        .iter()
        .find(|a| a.len() != 12 || !a.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(format!(
            "--accounts: {bad:?} is not a 12-digit AWS account ID"
        ));
    }
    if let Some(bad) = args.regions.iter().find(|r| {
        r.is_empty()
            || !r
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    }) {
        return Err(format!(
            "--regions: {bad:?} is not an AWS region name (such as eu-west-1)"
        ));
    }
    Ok(())
}

#[cfg(not(feature = "s3"))]
fn run_s3_scan(args: ScanArgs, _options: Options, _detector: Detector) -> ExitCode {
    let url = args
        .paths
        .iter()
        .find(|p| is_s3(p))
        .expect("called with an s3:// input");
    usage_error(&format!(
        "{}: this build reads local files only; build it with S3 support: \
         `cargo install --path . --features s3` (or `cargo run --release --features s3 -- scan ...`)",
        url.display()
    ))
}

/// Lists every s3:// input (a failure there ends the scan before anything is read), then scans
/// the objects and the local inputs in argument order, with a progress bar on a terminal.
#[cfg(feature = "s3")]
fn run_s3_scan(args: ScanArgs, mut options: Options, detector: Detector) -> ExitCode {
    use lambda_code_watch::s3::{self, Progress, S3, S3Url, Selection, Target};
    use std::io::IsTerminal;

    let mut urls = Vec::new();
    for path in args.paths.iter().filter(|p| is_s3(p)) {
        match S3Url::parse(&path.to_string_lossy()) {
            Ok(url) => urls.push(url),
            Err(e) => return usage_error(&e.to_string()),
        }
    }
    let concurrency = args
        .s3_concurrency
        .map_or(s3::DEFAULT_CONCURRENCY, usize::from);
    let fatal = |message: String| {
        eprintln!("lambda-code-watch: {message}");
        ExitCode::FAILURE
    };
    let s3 = match S3::connect(concurrency) {
        Ok(s3) => s3,
        Err(e) => return fatal(e.to_string()),
    };
    let selection = Selection {
        window: options.window,
        accounts: args.accounts.clone(),
        regions: args.regions.clone(),
    };

    // Each argument in turn: local inputs at once, S3 objects listed (downloads start later).
    enum Part {
        Local(Vec<scan::Input>),
        Objects(usize),
    }
    let mut summary = Summary::default();
    let mut parts = Vec::new();
    let mut objects = Vec::new();
    let mut urls = urls.into_iter();
    for path in &args.paths {
        if is_s3(path) {
            let url = urls.next().expect("one URL per s3:// argument");
            match s3.list(&url, &selection) {
                Ok(found) => {
                    parts.push(Part::Objects(found.len()));
                    objects.extend(found);
                }
                Err(e) => return fatal(e.to_string()),
            }
        } else {
            match scan::collect_inputs(std::slice::from_ref(path), &mut summary, &mut io::stderr())
            {
                Ok(inputs) => parts.push(Part::Local(inputs)),
                Err(e) => return fatal(format!("cannot write to stderr: {e}")),
            }
        }
    }
    let inputs_total = parts
        .iter()
        .map(|part| match part {
            Part::Local(inputs) => inputs.len(),
            Part::Objects(n) => *n,
        })
        .sum::<usize>();
    let bytes_total = objects.iter().map(|o| o.size).sum();
    let progress = Progress::on_terminal(inputs_total as u64, bytes_total);
    let mut streams = s3.inputs(objects, progress.clone()).into_iter();
    let mut inputs = Vec::with_capacity(inputs_total);
    for part in parts {
        match part {
            Part::Local(local) => inputs.extend(local),
            Part::Objects(n) => inputs.extend(streams.by_ref().take(n)),
        }
    }

    let (mut out, mut err): (Box<dyn Write>, Box<dyn Write>) = match &progress {
        Some(progress) => {
            let hook = progress.clone();
            options.on_input = scan::InputHook::new(move |s| hook.input_done(s));
            let out: Box<dyn Write> = if io::stdout().is_terminal() {
                Box::new(progress.writer(Target::Stdout))
            } else {
                Box::new(io::BufWriter::with_capacity(64 * 1024, io::stdout()))
            };
            (out, Box::new(progress.writer(Target::Stderr)))
        }
        None => (
            Box::new(io::BufWriter::with_capacity(64 * 1024, io::stdout())),
            Box::new(io::stderr()),
        ),
    };
    let result = scan::scan(&inputs, &detector, &options, &mut out, &mut err).and_then(|scanned| {
        out.flush()?;
        err.flush()?;
        Ok(scanned)
    });
    drop(inputs);
    report(
        result,
        summary,
        &detector,
        &options,
        &mut io::stderr(),
        || {
            if let Some(progress) = &progress {
                progress.finish();
            }
        },
    )
}

/// Prints the summary (after `before_summary`, e.g. clearing a progress bar) and gives the exit
/// status: errors found while collecting inputs (`summary`) add to the scan's.
fn report(
    result: io::Result<Summary>,
    mut summary: Summary,
    detector: &Detector,
    options: &Options,
    err: &mut dyn Write,
    before_summary: impl FnOnce(),
) -> ExitCode {
    before_summary();
    match result {
        Ok(scanned) => {
            summary = Summary {
                errors: summary.errors + scanned.errors,
                ..scanned
            };
            for entry in &detector.policy().suppressions {
                let _ = writeln!(
                    err,
                    "{}: {} alert(s) suppressed (\"{}\"){}",
                    entry.name(),
                    summary.suppressed.get(&entry.number).copied().unwrap_or(0),
                    lambda_code_watch::alert::printable(&entry.reason),
                    match summary.expired_matches.get(&entry.number) {
                        Some(n) =>
                            format!("; expired: {n} alert(s) it would have hidden were delivered"),
                        None => String::new(),
                    }
                );
            }
            if let Some(grouping) = &summary.grouping {
                let _ = writeln!(
                    err,
                    "grouped by title in {}-minute windows: {} alert(s){} -> {} notification(s): {} delivered at once, {} summar{} of {} grouped alert(s){}",
                    options.group.map_or(0, |window| window.as_minutes()),
                    grouping.alerts,
                    if grouping.repeats > 0 {
                        format!(
                            " ({} repeating an event id already seen, dropped)",
                            grouping.repeats
                        )
                    } else {
                        String::new()
                    },
                    grouping.delivered + grouping.summaries,
                    grouping.delivered,
                    grouping.summaries,
                    if grouping.summaries == 1 { "y" } else { "ies" },
                    grouping.grouped,
                    if grouping.untimed > 0 {
                        format!(
                            " ({} without a usable eventTime, each delivered alone)",
                            grouping.untimed
                        )
                    } else {
                        String::new()
                    }
                );
            }
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
