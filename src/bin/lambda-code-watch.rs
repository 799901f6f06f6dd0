//! The `lambda-code-watch` command: runs the detection over CloudTrail files (backtesting, hunting)
//! and prints it as SQL for AWS's own query engines. Argument parsing is clap's; everything else is
//! the library's.

use clap::{Args, Parser, Subcommand, ValueEnum};
use lambda_code_watch::grouping::Window;
use lambda_code_watch::scan::{self, Format, Options, Summary};
use lambda_code_watch::sql::{self, Dialect, RuleSql, TableName};
use lambda_code_watch::{Detector, Policy};
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
  aws cloudtrail lookup-events --lookup-attributes \\
      AttributeKey=EventSource,AttributeValue=lambda.amazonaws.com | lambda-code-watch scan";

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
    /// Inputs scanned at once [default: number of CPUs]
    #[arg(short, long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    jobs: Option<u16>,
    /// Files or directories to read; none, or '-', reads stdin
    #[arg(value_name = "PATH")]
    paths: Vec<PathBuf>,
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
    let stdout = io::stdout();
    let mut out = io::BufWriter::with_capacity(64 * 1024, stdout.lock());
    let stderr = io::stderr();
    let mut err = stderr.lock();
    let mut summary = Summary::default();
    let detector = match &args.policy {
        None => Detector::default(),
        Some(path) => match Policy::load(path) {
            Ok(policy) => Detector::new(policy),
            Err(e) => {
                let _ = writeln!(err, "lambda-code-watch: invalid policy: {e}");
                return ExitCode::from(2);
            }
        },
    };
    for entry in detector.expired_entries() {
        let _ = writeln!(
            err,
            "{}:{}: {} (\"{}\") expired after {}: it no longer suppresses anything",
            detector.policy().source,
            entry.line,
            entry.name(),
            lambda_code_watch::alert::printable(&entry.reason),
            entry.expires.map(|d| d.to_string()).unwrap_or_default()
        );
    }
    let result = scan::collect_inputs(&args.paths, &mut summary, &mut err).and_then(|inputs| {
        let scanned = scan::scan(&inputs, &detector, &options, &mut out, &mut err)?;
        out.flush()?;
        Ok(scanned)
    });
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
                    args.window_minutes,
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
