//! Prints the rule as SQL for one dialect: exactly what `lambda_code_watch::sql::render` returns.
//!
//! Usage: `cargo run --example print_sql -- athena|cloudtrail-lake|security-lake [--table NAME]`
//!
//! `--table` names the table to read (for CloudTrail Lake: the event data store id); without it the
//! dialect's default table is used. `scripts/sql-equivalence.py` runs this to get the SQL it tests.

use lambda_code_watch::sql::{self, Dialect, RuleSql, TableName};
use std::process::ExitCode;

const USAGE: &str =
    "usage: print_sql athena|cloudtrail-lake|security-lake [--table NAME]   (SQL on stdout)";

fn main() -> ExitCode {
    match parse_args(std::env::args().skip(1)) {
        Ok(Some((dialect, rule))) => {
            print!("{}", sql::render(dialect, &rule));
            ExitCode::SUCCESS
        }
        Ok(None) => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("print_sql: {message}\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

/// The dialect and what to render; `None` when help was asked for.
fn parse_args(
    mut args: impl Iterator<Item = String>,
) -> Result<Option<(Dialect, RuleSql)>, String> {
    let mut dialect = None;
    let mut rule = RuleSql::default();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--table" => {
                let name = args.next().ok_or("--table needs a value")?;
                rule.table = Some(TableName::parse(&name).map_err(|e| e.to_string())?);
            }
            "-h" | "--help" => return Ok(None),
            _ if dialect.is_none() => {
                dialect = Some(arg.parse::<Dialect>().map_err(|e| e.to_string())?)
            }
            _ => return Err(format!("unexpected argument '{arg}'")),
        }
    }
    let dialect = dialect.ok_or("which dialect?")?;
    Ok(Some((dialect, rule)))
}
