//! The `lambda-code-watch` command: runs the detection over CloudTrail files (backtesting, hunting)
//! and prints it as SQL for AWS's own query engines. Argument parsing is clap's; everything else is
//! the library's.

use clap::{Args, Parser, Subcommand, ValueEnum};
use lambda_code_watch::Detector;
use lambda_code_watch::scan::{self, Format, Options, Summary};
use lambda_code_watch::sql::{self, Dialect, RuleSql, TableName};
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
          counts of inputs, records, alerts, quiet records by reason, and errors

Exit status:
  0  all input was read (whether or not there were alerts)
  1  some input could not be read or parsed (everything else was still scanned)
  2  usage error

Examples:
  lambda-code-watch scan events/
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
    /// Inputs scanned at once [default: number of CPUs]
    #[arg(short, long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    jobs: Option<u16>,
    /// Most that one gzip-compressed input may inflate to, in bytes or with a K, M, G or T suffix
    /// (powers of 1024); past it the input ends with an error, after its records up to there, so
    /// a small file that inflates to many gigabytes costs no more than this [default: 1G]
    #[arg(long, value_name = "SIZE", value_parser = parse_size_arg)]
    max_inflated_size: Option<u64>,
    /// Files or directories to read; none, or '-', reads stdin
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
        ..Options::default()
    };
    if let Some(jobs) = args.jobs {
        options.jobs = usize::from(jobs);
    }
    if let Some(size) = args.max_inflated_size {
        options.max_inflated_bytes = size;
    }
    let stdout = io::stdout();
    let mut out = io::BufWriter::with_capacity(64 * 1024, stdout.lock());
    let stderr = io::stderr();
    let mut err = stderr.lock();
    let mut summary = Summary::default();
    let detector = Detector::default();
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
