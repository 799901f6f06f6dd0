//! The rule as SQL: a query that returns exactly the records the rule alerts on, for the tables where
//! teams already keep CloudTrail, so the detection can be backtested or hunted where the data is.
//!
//! Three dialects, each over its own table:
//! - [`Dialect::Athena`]: the Athena table of a trail's S3 logs, as AWS documents it
//!   (`CREATE EXTERNAL TABLE cloudtrail_logs`, Hive JSON SerDe): lower-case columns,
//!   `useridentity` a STRUCT, `requestparameters` / `responseelements` STRINGs holding JSON text.
//! - [`Dialect::CloudTrailLake`]: a CloudTrail Lake event data store (`FROM <event data store id>`):
//!   `userIdentity` a struct, `requestParameters` / `responseElements` `map<string,string>`,
//!   `eventTime` a timestamp.
//! - [`Dialect::SecurityLake`]: Amazon Security Lake's CloudTrail management events as OCSF API
//!   Activity (class 6003): `api.service.name`, `api.operation`, `api.response.error` /
//!   `api.response.message`, `actor.user.type`, and `actor.session.issuer`, the ARN of the role that
//!   issued the session. The SSO test reads the role name as the last path segment of that ARN
//!   (`.../AWSReservedSSO_<set>_<hash>`), since OCSF does not keep `sessionIssuer.userName`.
//!
//! All three speak Trino SQL (Athena engine 3, CloudTrail Lake, Security Lake through Athena); the
//! queries use only what Trino and DuckDB agree on, plus `json_extract_scalar` (Athena, Security Lake)
//! and `element_at` on maps (CloudTrail Lake). `scripts/sql-equivalence.py` runs them on DuckDB over
//! tables built like the real ones and `tests/sql.rs` checks that they return exactly the records
//! [`crate::rule::evaluate`] alerts on.
//!
//! **Where a table cannot say what the JSON said.** The tables keep `errorCode` and `errorMessage` as
//! strings, so the query's "the call succeeded" is "NULL or empty string". A record whose
//! `errorCode` or `errorMessage` is not a JSON string (a number, a boolean, an object, an array)
//! reaches the table as that value's JSON text (`0`, `false`, `{}`), which is not empty: the query
//! treats the call as failed whatever the value, where the rule reads the value itself. (Panther's
//! rule counts a truthy value as a failure and a falsy one, such as `0`, `false`, `{}`, `[]`, as
//! none; CloudTrail itself writes only strings.) Likewise a `functionName` that is not a string
//! shows as its text in the `function_name` column, where the alert has none. In Security Lake the
//! SSO test depends on the issuer ARN: a record whose ARN was anonymised while `userName` kept its
//! `AWSReservedSSO_` prefix, or the reverse, is judged differently there. `tests/sql/` holds one
//! record of each of these cases with the dialects where it differs.
//!
//! What this module does not do: run queries, know any AWS API, or decide anything the rule does not
//! (it renders [`crate::rule`]'s constants). Everything that shapes a query comes in [`RuleSql`].

use crate::rule::{EVENT_NAME_PREFIX, EVENT_SOURCE, SSO_ROLE_PREFIX};
use std::fmt;
use std::str::FromStr;

/// `userIdentity.type` values that are a person by themselves.
pub const PERSON_IDENTITY_TYPES: [&str; 2] = ["IAMUser", "FederatedUser"];
/// `userIdentity.type` of a role session, a person only when issued by an SSO permission-set role.
pub const ASSUMED_ROLE: &str = "AssumedRole";
/// The escape character of every `LIKE` pattern rendered here.
pub const LIKE_ESCAPE: char = '\\';

/// Where the CloudTrail records are, and so which SQL to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    /// Amazon Athena over the trail's S3 logs (the table AWS documents for CloudTrail).
    Athena,
    /// A CloudTrail Lake event data store.
    CloudTrailLake,
    /// Amazon Security Lake's OCSF CloudTrail management events table, queried with Athena.
    SecurityLake,
}

impl Dialect {
    pub const ALL: [Dialect; 3] = [
        Dialect::Athena,
        Dialect::CloudTrailLake,
        Dialect::SecurityLake,
    ];

    /// As written on the command line: `athena`, `cloudtrail-lake`, `security-lake`.
    pub fn name(self) -> &'static str {
        match self {
            Dialect::Athena => "athena",
            Dialect::CloudTrailLake => "cloudtrail-lake",
            Dialect::SecurityLake => "security-lake",
        }
    }

    /// The table the query reads unless told otherwise: the name AWS's documentation uses.
    /// CloudTrail Lake has no default (every event data store has its own id), so its default is a
    /// placeholder that the service rejects until it is replaced.
    pub fn default_table(self) -> &'static str {
        match self {
            Dialect::Athena => "cloudtrail_logs",
            Dialect::CloudTrailLake => "EVENT_DATA_STORE_ID",
            Dialect::SecurityLake => {
                "amazon_security_lake_glue_db_us_east_1.amazon_security_lake_table_us_east_1_cloud_trail_mgmt_2_0"
            }
        }
    }

    fn schema(self) -> &'static Schema {
        match self {
            Dialect::Athena => &ATHENA,
            Dialect::CloudTrailLake => &CLOUDTRAIL_LAKE,
            Dialect::SecurityLake => &SECURITY_LAKE,
        }
    }
}

impl fmt::Display for Dialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Dialect {
    type Err = SqlError;

    fn from_str(name: &str) -> Result<Dialect, SqlError> {
        Dialect::ALL
            .into_iter()
            .find(|dialect| dialect.name() == name)
            .ok_or_else(|| {
                SqlError(format!(
                    "unknown SQL dialect '{name}' (expected one of: athena, cloudtrail-lake, security-lake)"
                ))
            })
    }
}

/// Why a dialect or table name was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlError(String);

impl fmt::Display for SqlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SqlError {}

/// A table name safe to paste into a query: dot-separated parts, each plain (`[A-Za-z0-9_-]` without
/// `--`, which covers CloudTrail Lake's event data store ids) or double-quoted (`"AwsDataCatalog"."db"."t"`,
/// anything but a double quote or a control character inside).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableName(String);

impl TableName {
    pub fn parse(text: &str) -> Result<TableName, SqlError> {
        let part_ok = |part: &str| {
            // `--` would start a comment.
            let plain = !part.is_empty()
                && !part.contains("--")
                && part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            let quoted = part.len() > 2
                && part.starts_with('"')
                && part.ends_with('"')
                && !part[1..part.len() - 1]
                    .chars()
                    .any(|c| c == '"' || c.is_control());
            plain || quoted
        };
        if split_table_parts(text).iter().all(|part| part_ok(part)) {
            Ok(TableName(text.to_owned()))
        } else {
            Err(SqlError(format!(
                "not a table name: {text:?} (expected parts such as db.table or \"db\".\"table\", \
                 made of letters, digits, '_' and '-', or double-quoted)"
            )))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `a."b.c".d` -> `a`, `"b.c"`, `d`: dots inside double quotes do not separate.
fn split_table_parts(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted) = (0, false);
    for (i, c) in text.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '.' if !quoted => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

/// Everything a query is rendered from besides the dialect. Today only the table; a tuning policy
/// (more people, suppressions) adds its predicates here, as fields that [`render`] turns into
/// conditions next to the rule's own, with [`sql_string`] and [`like_pattern`] for their values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleSql {
    /// The table (CloudTrail Lake: the event data store id); `None` reads
    /// [`Dialect::default_table`].
    pub table: Option<TableName>,
}

/// The query, in `dialect`, returning one row per record the rule alerts on, oldest first, with the
/// columns `event_id`, `event_time`, `account_id`, `region`, `event_name`, `identity_type`,
/// `identity_arn`, `principal_id`, `user_name`, `access_key_id`, `issuer_name`, `issuer_arn`,
/// `invoked_by`, `source_ip`, `user_agent`, `function_name` (named as in the alert where the alert
/// has the field).
pub fn render(dialect: Dialect, rule: &RuleSql) -> String {
    let schema = dialect.schema();
    let table = rule
        .table
        .as_ref()
        .map_or(dialect.default_table(), TableName::as_str);

    let mut columns: Vec<String> = schema
        .columns
        .iter()
        .map(|(expression, alias)| format!("{expression} AS {alias}"))
        .collect();
    columns.push(format!(
        "{} AS function_name",
        function_name(
            schema.response_function_name,
            schema.requested_function_name
        )
    ));

    let conditions = [
        format!("{} = {}", schema.event_source, sql_string(EVENT_SOURCE)),
        like(schema.event_name, &like_prefix(EVENT_NAME_PREFIX)),
        succeeded(schema.error_code),
        succeeded(schema.error_message),
        is_person(schema),
    ];

    let mut sql = String::from("SELECT\n");
    sql.push_str(&indent_list(&columns, ",\n"));
    sql.push_str(&format!("\nFROM {table}\nWHERE "));
    sql.push_str(&conditions.join("\n  AND "));
    sql.push_str("\nORDER BY event_time\n");
    sql
}

/// Step 3 of the rule: the caller is an IAM user, a federated user, or an SSO user.
fn is_person(schema: &Schema) -> String {
    let types: Vec<String> = PERSON_IDENTITY_TYPES
        .iter()
        .map(|t| sql_string(t))
        .collect();
    format!(
        "(\n    {identity_type} IN ({types})\n    OR ({identity_type} = {assumed_role}\n        AND {sso})\n  )",
        identity_type = schema.identity_type,
        types = types.join(", "),
        assumed_role = sql_string(ASSUMED_ROLE),
        sso = like(schema.issuer_name, &like_prefix(SSO_ROLE_PREFIX)),
    )
}

/// Step 2 for one of `errorCode` / `errorMessage`: absent or empty.
fn succeeded(column: &str) -> String {
    format!("({column} IS NULL OR {column} = '')")
}

/// The function's short name as the alert has it: `responseElements.functionName`, else the name
/// inside `requestParameters.functionName` (full ARN, partial `ACCOUNT:function:NAME`, or the name).
fn function_name(response: &str, requested: &str) -> String {
    format!(
        "COALESCE(\n    NULLIF({response}, ''),\n    NULLIF(CASE\n      \
         WHEN {requested} LIKE 'arn:%' THEN split_part({requested}, ':', 7)\n      \
         WHEN split_part({requested}, ':', 2) = 'function' AND {requested} LIKE '%:%:%'\n        \
         THEN split_part({requested}, ':', 3)\n      \
         ELSE {requested}\n    END, '')\n  )"
    )
}

/// `expression LIKE 'pattern'`, with the `ESCAPE` clause when the pattern escapes something.
fn like(expression: &str, pattern: &str) -> String {
    if pattern.contains(LIKE_ESCAPE) {
        format!(
            "{expression} LIKE {} ESCAPE {}",
            sql_string(pattern),
            sql_string(&LIKE_ESCAPE.to_string())
        )
    } else {
        format!("{expression} LIKE {}", sql_string(pattern))
    }
}

fn indent_list(items: &[String], separator: &str) -> String {
    items
        .iter()
        .map(|item| format!("  {item}"))
        .collect::<Vec<_>>()
        .join(separator)
}

/// A SQL string literal: `it's` -> `'it''s'`. The only character special inside standard SQL
/// literals (Trino, DuckDB) is the quote itself; a backslash is an ordinary character.
pub fn sql_string(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// `text` matched literally inside a `LIKE` pattern: `%`, `_` and the escape character escaped.
pub fn like_literal(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len());
    for c in text.chars() {
        if c == '%' || c == '_' || c == LIKE_ESCAPE {
            pattern.push(LIKE_ESCAPE);
        }
        pattern.push(c);
    }
    pattern
}

/// The `LIKE` pattern of "starts with `prefix`".
pub fn like_prefix(prefix: &str) -> String {
    format!("{}%", like_literal(prefix))
}

/// A glob (`*` any run of characters, `?` one character, everything else literal) as a `LIKE`
/// pattern to use with `ESCAPE '\'`: `okta-*` -> `okta-%`, `100%_?` -> `100\%\__`.
pub fn like_pattern(glob: &str) -> String {
    let mut pattern = String::with_capacity(glob.len());
    for c in glob.chars() {
        match c {
            '*' => pattern.push('%'),
            '?' => pattern.push('_'),
            _ => pattern.push_str(&like_literal(c.encode_utf8(&mut [0; 4]))),
        }
    }
    pattern
}

/// Where each CloudTrail field the query reads is, as an expression of the dialect.
struct Schema {
    event_source: &'static str,
    event_name: &'static str,
    error_code: &'static str,
    error_message: &'static str,
    identity_type: &'static str,
    /// The name of the role that issued the session (`sessionIssuer.userName`).
    issuer_name: &'static str,
    /// `responseElements.functionName` and `requestParameters.functionName`, as strings.
    response_function_name: &'static str,
    requested_function_name: &'static str,
    /// The output columns before `function_name`: (expression, alias).
    columns: &'static [(&'static str, &'static str)],
}

static ATHENA: Schema = Schema {
    event_source: "eventsource",
    event_name: "eventname",
    error_code: "errorcode",
    error_message: "errormessage",
    identity_type: "useridentity.type",
    issuer_name: "useridentity.sessioncontext.sessionissuer.username",
    response_function_name: "json_extract_scalar(responseelements, '$.functionName')",
    requested_function_name: "json_extract_scalar(requestparameters, '$.functionName')",
    columns: &[
        ("eventid", "event_id"),
        ("eventtime", "event_time"),
        (
            "COALESCE(recipientaccountid, useridentity.accountid)",
            "account_id",
        ),
        ("awsregion", "region"),
        ("eventname", "event_name"),
        ("useridentity.type", "identity_type"),
        ("useridentity.arn", "identity_arn"),
        ("useridentity.principalid", "principal_id"),
        ("useridentity.username", "user_name"),
        ("useridentity.accesskeyid", "access_key_id"),
        (
            "useridentity.sessioncontext.sessionissuer.username",
            "issuer_name",
        ),
        (
            "useridentity.sessioncontext.sessionissuer.arn",
            "issuer_arn",
        ),
        ("useridentity.invokedby", "invoked_by"),
        ("sourceipaddress", "source_ip"),
        ("useragent", "user_agent"),
    ],
};

static CLOUDTRAIL_LAKE: Schema = Schema {
    event_source: "eventSource",
    event_name: "eventName",
    error_code: "errorCode",
    error_message: "errorMessage",
    identity_type: "userIdentity.type",
    issuer_name: "userIdentity.sessionContext.sessionIssuer.userName",
    response_function_name: "element_at(responseElements, 'functionName')",
    requested_function_name: "element_at(requestParameters, 'functionName')",
    columns: &[
        ("eventID", "event_id"),
        ("eventTime", "event_time"),
        (
            "COALESCE(recipientAccountId, userIdentity.accountId)",
            "account_id",
        ),
        ("awsRegion", "region"),
        ("eventName", "event_name"),
        ("userIdentity.type", "identity_type"),
        ("userIdentity.arn", "identity_arn"),
        ("userIdentity.principalId", "principal_id"),
        ("userIdentity.userName", "user_name"),
        ("userIdentity.accessKeyId", "access_key_id"),
        (
            "userIdentity.sessionContext.sessionIssuer.userName",
            "issuer_name",
        ),
        (
            "userIdentity.sessionContext.sessionIssuer.arn",
            "issuer_arn",
        ),
        ("userIdentity.invokedBy", "invoked_by"),
        ("sourceIPAddress", "source_ip"),
        ("userAgent", "user_agent"),
    ],
};

/// The last path segment of the issuer ARN: the role name (`[^/]*$` always matches, so Trino's
/// `regexp_extract` never returns NULL for a non-NULL ARN).
const OCSF_ISSUER_NAME: &str = "regexp_extract(actor.session.issuer, '[^/]*$')";

static SECURITY_LAKE: Schema = Schema {
    event_source: "api.service.name",
    event_name: "api.operation",
    error_code: "api.response.error",
    error_message: "api.response.message",
    identity_type: "actor.user.type",
    issuer_name: OCSF_ISSUER_NAME,
    response_function_name: "json_extract_scalar(api.response.data, '$.functionName')",
    requested_function_name: "json_extract_scalar(api.request.data, '$.functionName')",
    columns: &[
        ("metadata.uid", "event_id"),
        ("time_dt", "event_time"),
        (
            "COALESCE(cloud.account.uid, actor.user.account.uid)",
            "account_id",
        ),
        ("cloud.region", "region"),
        ("api.operation", "event_name"),
        ("actor.user.type", "identity_type"),
        ("actor.user.uid", "identity_arn"),
        ("actor.user.uid_alt", "principal_id"),
        ("actor.user.name", "user_name"),
        ("actor.user.credential_uid", "access_key_id"),
        (OCSF_ISSUER_NAME, "issuer_name"),
        ("actor.session.issuer", "issuer_arn"),
        ("actor.invoked_by", "invoked_by"),
        (
            "COALESCE(src_endpoint.ip, src_endpoint.domain)",
            "source_ip",
        ),
        ("http_request.user_agent", "user_agent"),
    ],
};

#[cfg(test)]
mod tests {
    use super::*;

    fn default_sql(dialect: Dialect) -> String {
        render(dialect, &RuleSql::default())
    }

    #[test]
    fn string_literals_double_their_quotes_and_nothing_else() {
        assert_eq!(sql_string("lambda.amazonaws.com"), "'lambda.amazonaws.com'");
        assert_eq!(sql_string("it's"), "'it''s'");
        assert_eq!(sql_string("''"), "''''''");
        assert_eq!(sql_string(""), "''");
        assert_eq!(
            sql_string("x'; DROP TABLE cloudtrail_logs; --"),
            "'x''; DROP TABLE cloudtrail_logs; --'"
        );
        assert_eq!(sql_string(r"a\b%_"), r"'a\b%_'");
        assert_eq!(sql_string("josé\n"), "'josé\n'");
    }

    #[test]
    fn every_literal_in_the_queries_is_closed() {
        // Each rendered literal doubles its quotes, so quotes come in pairs; an odd count would
        // mean a literal left open (or a stray quote from a constant).
        for dialect in Dialect::ALL {
            let sql = default_sql(dialect);
            assert_eq!(sql.matches('\'').count() % 2, 0, "{dialect}:\n{sql}");
        }
    }

    #[test]
    fn like_literals_escape_the_wildcards_and_the_escape_character() {
        assert_eq!(like_literal("UpdateFunctionCode"), "UpdateFunctionCode");
        assert_eq!(like_literal("AWSReservedSSO_"), r"AWSReservedSSO\_");
        assert_eq!(like_literal(r"100%_\x"), r"100\%\_\\x");
        assert_eq!(like_prefix("AWSReservedSSO_"), r"AWSReservedSSO\_%");
        assert_eq!(like_prefix("UpdateFunctionCode"), "UpdateFunctionCode%");
    }

    #[test]
    fn globs_become_like_patterns() {
        assert_eq!(like_pattern("okta-*"), "okta-%");
        assert_eq!(like_pattern("*DeployRole"), "%DeployRole");
        assert_eq!(like_pattern("a?c"), "a_c");
        assert_eq!(like_pattern(r"100%_?\*"), r"100\%\__\\%");
        assert_eq!(like_pattern("exact"), "exact");
        assert_eq!(like_pattern(""), "");
        assert_eq!(like_pattern("josé-*"), "josé-%");
        // A quote in a glob stays a quote: the literal around the pattern escapes it.
        assert_eq!(sql_string(&like_pattern("o'brien*")), "'o''brien%'");
    }

    #[test]
    fn the_rules_constants_are_rendered_escaped() {
        for dialect in Dialect::ALL {
            let sql = default_sql(dialect);
            assert!(
                sql.contains("= 'lambda.amazonaws.com'"),
                "{dialect}:\n{sql}"
            );
            assert!(
                sql.contains("LIKE 'UpdateFunctionCode%'\n"),
                "{dialect}:\n{sql}"
            );
            assert!(
                sql.contains(r"LIKE 'AWSReservedSSO\_%' ESCAPE '\'"),
                "{dialect}:\n{sql}"
            );
            assert!(
                sql.contains("IN ('IAMUser', 'FederatedUser')"),
                "{dialect}:\n{sql}"
            );
            assert!(sql.contains("= 'AssumedRole'"), "{dialect}:\n{sql}");
        }
    }

    #[test]
    fn athena_reads_the_documented_cloudtrail_table() {
        let sql = default_sql(Dialect::Athena);
        for expected in [
            "FROM cloudtrail_logs\n",
            "eventid AS event_id",
            "eventtime AS event_time",
            "COALESCE(recipientaccountid, useridentity.accountid) AS account_id",
            "awsregion AS region",
            "eventname AS event_name",
            "useridentity.type AS identity_type",
            "useridentity.arn AS identity_arn",
            "useridentity.principalid AS principal_id",
            "useridentity.username AS user_name",
            "useridentity.accesskeyid AS access_key_id",
            "useridentity.sessioncontext.sessionissuer.arn AS issuer_arn",
            "useridentity.invokedby AS invoked_by",
            "sourceipaddress AS source_ip",
            "useragent AS user_agent",
            "json_extract_scalar(responseelements, '$.functionName')",
            "json_extract_scalar(requestparameters, '$.functionName')",
            "WHERE eventsource = 'lambda.amazonaws.com'",
            "AND eventname LIKE 'UpdateFunctionCode%'",
            "(errorcode IS NULL OR errorcode = '')",
            "(errormessage IS NULL OR errormessage = '')",
            "useridentity.type IN ('IAMUser', 'FederatedUser')",
            r"useridentity.sessioncontext.sessionissuer.username LIKE 'AWSReservedSSO\_%'",
            "AS function_name\n",
            "ORDER BY event_time",
        ] {
            assert!(sql.contains(expected), "missing {expected:?} in:\n{sql}");
        }
    }

    #[test]
    fn cloudtrail_lake_reads_an_event_data_store() {
        let sql = default_sql(Dialect::CloudTrailLake);
        for expected in [
            "FROM EVENT_DATA_STORE_ID\n",
            "eventID AS event_id",
            "eventTime AS event_time",
            "COALESCE(recipientAccountId, userIdentity.accountId) AS account_id",
            "awsRegion AS region",
            "userIdentity.principalId AS principal_id",
            "userIdentity.invokedBy AS invoked_by",
            "sourceIPAddress AS source_ip",
            "element_at(responseElements, 'functionName')",
            "element_at(requestParameters, 'functionName')",
            "WHERE eventSource = 'lambda.amazonaws.com'",
            "AND eventName LIKE 'UpdateFunctionCode%'",
            "(errorCode IS NULL OR errorCode = '')",
            "(errorMessage IS NULL OR errorMessage = '')",
            "userIdentity.type IN ('IAMUser', 'FederatedUser')",
            r"userIdentity.sessionContext.sessionIssuer.userName LIKE 'AWSReservedSSO\_%'",
        ] {
            assert!(sql.contains(expected), "missing {expected:?} in:\n{sql}");
        }
        assert!(!sql.contains("json_extract"), "maps, not JSON text:\n{sql}");
    }

    #[test]
    fn security_lake_reads_ocsf_api_activity() {
        let sql = default_sql(Dialect::SecurityLake);
        for expected in [
            "FROM amazon_security_lake_glue_db_us_east_1.amazon_security_lake_table_us_east_1_cloud_trail_mgmt_2_0\n",
            "metadata.uid AS event_id",
            "time_dt AS event_time",
            "COALESCE(cloud.account.uid, actor.user.account.uid) AS account_id",
            "cloud.region AS region",
            "api.operation AS event_name",
            "actor.user.type AS identity_type",
            "actor.user.uid AS identity_arn",
            "actor.user.uid_alt AS principal_id",
            "actor.user.name AS user_name",
            "actor.user.credential_uid AS access_key_id",
            "actor.session.issuer AS issuer_arn",
            "actor.invoked_by AS invoked_by",
            "http_request.user_agent AS user_agent",
            "json_extract_scalar(api.response.data, '$.functionName')",
            "json_extract_scalar(api.request.data, '$.functionName')",
            "WHERE api.service.name = 'lambda.amazonaws.com'",
            "AND api.operation LIKE 'UpdateFunctionCode%'",
            "(api.response.error IS NULL OR api.response.error = '')",
            "(api.response.message IS NULL OR api.response.message = '')",
            "actor.user.type IN ('IAMUser', 'FederatedUser')",
            r"regexp_extract(actor.session.issuer, '[^/]*$') LIKE 'AWSReservedSSO\_%'",
        ] {
            assert!(sql.contains(expected), "missing {expected:?} in:\n{sql}");
        }
    }

    #[test]
    fn the_table_is_a_parameter() {
        for (dialect, table) in [
            (Dialect::Athena, "security.cloudtrail_org"),
            (
                Dialect::CloudTrailLake,
                "EXAMPLE-f852-4e8f-8bd1-bcf6cEXAMPLE",
            ),
            (Dialect::SecurityLake, r#""AwsDataCatalog"."my db"."ct""#),
        ] {
            let rule = RuleSql {
                table: Some(TableName::parse(table).unwrap()),
            };
            let sql = render(dialect, &rule);
            assert!(sql.contains(&format!("\nFROM {table}\n")), "{sql}");
            assert!(!sql.contains(dialect.default_table()), "{sql}");
        }
    }

    #[test]
    fn table_names_that_could_change_the_query_are_refused() {
        for bad in [
            "",
            "a b",
            "logs; DROP TABLE x",
            "logs--",
            "logs--x",
            "db..t",
            ".t",
            "t.",
            "'t'",
            "`t`",
            r#""a"b""#,
            r#""a"#,
            "\"\"",
            "\"a\nb\"",
            "t\n",
            "t/*x*/",
        ] {
            assert!(TableName::parse(bad).is_err(), "{bad:?} accepted");
        }
        for good in [
            "cloudtrail_logs",
            "db.cloudtrail_logs",
            "EXAMPLE-f852-4e8f-8bd1-bcf6cEXAMPLE",
            r#""AwsDataCatalog"."default"."cloudtrail_logs""#,
            r#""db.with.dots".t"#,
        ] {
            assert_eq!(TableName::parse(good).unwrap().as_str(), good);
        }
    }

    #[test]
    fn dialects_are_named_as_on_the_command_line() {
        for dialect in Dialect::ALL {
            assert_eq!(dialect.name().parse::<Dialect>(), Ok(dialect));
            assert_eq!(dialect.to_string(), dialect.name());
        }
        let error = "presto".parse::<Dialect>().unwrap_err().to_string();
        assert!(
            error.contains("athena, cloudtrail-lake, security-lake"),
            "{error}"
        );
    }

    #[test]
    fn every_dialect_selects_the_same_columns_in_the_same_order() {
        let aliases = |dialect: Dialect| -> Vec<&str> {
            dialect.schema().columns.iter().map(|(_, a)| *a).collect()
        };
        assert_eq!(aliases(Dialect::Athena), aliases(Dialect::CloudTrailLake));
        assert_eq!(aliases(Dialect::Athena), aliases(Dialect::SecurityLake));
    }
}
