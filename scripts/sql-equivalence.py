#!/usr/bin/env python3
"""Runs the rule's SQL, exactly as the project prints it, on DuckDB over tables built like the real
ones, and prints which records each dialect returns, as JSON.

Usage:
  .venv/bin/python scripts/sql-equivalence.py [--print-sql CMD] [--dialect NAME]... PATH...

PATH is a file or a directory (every file below it, in name order). A file holds CloudTrail records,
one JSON document after another (NDJSON or pretty-printed), each document a record, an EventBridge
envelope (the record is its `detail`), a CloudTrail log file `{"Records": [...]}`, `lookup-events`
output `{"Events": [{"CloudTrailEvent": "..."}]}`, or a JSON array of these; gzip or not (found by
the magic bytes). Anything else is an error: the script stops rather than compare less than it read.

The SQL comes from `CMD --dialect DIALECT --table NAME` (default `cargo run --quiet -- sql`,
run in the repository), so what is tested is what `lambda_code_watch::sql::render` writes.

Output (stdout): {"records": N, "dialects": {DIALECT: {"table": ..., "rows_loaded": N,
"event_ids": [sorted distinct event ids returned], "alerts": [every returned row, columns as
strings]}}}.

How the tables are built (a mechanical translation of each record, blind to the rule)
-------------------------------------------------------------------------------------
Each dialect's table is created with the column names and types of the real one, then every record
is translated into one row by these rules alone:

athena, table `cloudtrail_logs`: the columns of AWS's `CREATE EXTERNAL TABLE cloudtrail_logs` for
  CloudTrail (Athena user guide, Hive JSON SerDe), ATHENA_COLUMNS below. Each column, and each
  STRUCT field, takes the record's key of the same name, matched case-insensitively as the SerDe
  does. A STRING takes a JSON string as it is and any other JSON value (number, boolean, object,
  array) as its compact JSON text, which is how `requestparameters` and `responseelements` hold
  JSON; null or absent is NULL. A STRUCT takes an object (anything else is NULL), a MAP an object
  whose values become STRINGs, an ARRAY an array.

cloudtrail-lake, table `event_data_store`: the columns of CloudTrail Lake's documented schema for
  CloudTrail events, LAKE_COLUMNS below, translated by the same rules; `requestparameters` and
  `responseelements` are MAP(VARCHAR, VARCHAR) (a nested value becomes its JSON text), `eventtime`
  a TIMESTAMP (from the ISO 8601 `eventTime`; anything else is NULL), `readonly` a BOOLEAN (from a
  boolean or the string "true"/"false").

security-lake, table `security_lake.cloud_trail_mgmt_2_0`: the OCSF API Activity columns (class
  6003, OCSF 1.1) that Security Lake's CloudTrail management table has, SECURITY_LAKE_COLUMNS below,
  filled by OCSF_MAPPING: each OCSF field takes one CloudTrail field (keys as CloudTrail spells
  them). `actor.session.issuer` is the issuer's ARN (`sessionContext.sessionIssuer.arn`);
  `api.request.data` / `api.response.data` hold `requestParameters` / `responseElements` as JSON
  text; `time` is `eventTime` in epoch milliseconds and `time_dt` the timestamp; `sourceIPAddress`
  goes to `src_endpoint.ip` when it is an IP address, else to `src_endpoint.domain`.

DuckDB for Trino
----------------
The queries are Trino SQL. DuckDB runs them unchanged, with two Trino functions defined as DuckDB
macros with Trino's documented behaviour (TRINO_FUNCTIONS below); no query text is rewritten:
  json_extract_scalar(json, path): the scalar at `path` as a string; NULL for an object, an array,
    JSON null, a missing path, or text that is not JSON.
  element_at(map, key): the map's value for `key`, NULL when absent (used on MAP columns only:
    DuckDB's own element_at returns a list).
Everything else in the queries (LIKE ... ESCAPE, IN, COALESCE, NULLIF, CASE, split_part,
regexp_extract, dotted struct access, case-insensitive identifiers) means the same in both.
"""

import argparse
import datetime
import gzip
import ipaddress
import json
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

import duckdb

REPO = Path(__file__).resolve().parent.parent

# The Athena table for CloudTrail, as AWS documents it (Hive types).
ATHENA_COLUMNS = """
eventversion STRING,
useridentity STRUCT<
  type:STRING, principalid:STRING, arn:STRING, accountid:STRING, invokedby:STRING,
  accesskeyid:STRING, username:STRING,
  onbehalfof:STRUCT<userid:STRING, identitystorearn:STRING>,
  sessioncontext:STRUCT<
    attributes:STRUCT<mfaauthenticated:STRING, creationdate:STRING>,
    sessionissuer:STRUCT<type:STRING, principalid:STRING, arn:STRING, accountid:STRING,
                         username:STRING>,
    ec2roledelivery:STRING,
    webidfederationdata:STRUCT<federatedprovider:STRING, attributes:MAP<STRING,STRING>>>>,
eventtime STRING,
eventsource STRING,
eventname STRING,
awsregion STRING,
sourceipaddress STRING,
useragent STRING,
errorcode STRING,
errormessage STRING,
requestparameters STRING,
responseelements STRING,
additionaleventdata STRING,
requestid STRING,
eventid STRING,
resources ARRAY<STRUCT<arn:STRING, accountid:STRING, type:STRING>>,
eventtype STRING,
apiversion STRING,
readonly STRING,
recipientaccountid STRING,
serviceeventdetails STRING,
sharedeventid STRING,
vpcendpointid STRING,
vpcendpointaccountid STRING,
eventcategory STRING,
addendum STRUCT<reason:STRING, updatedfields:STRING, originalrequestid:STRING,
                originaleventid:STRING>,
sessioncredentialfromconsole STRING,
edgedevicedetails STRING,
tlsdetails STRUCT<tlsversion:STRING, ciphersuite:STRING, clientprovidedhostheader:STRING>
"""

# CloudTrail Lake's SQL schema for CloudTrail events, as AWS documents it.
LAKE_COLUMNS = """
eventversion STRING,
useridentity STRUCT<
  type:STRING, principalid:STRING, arn:STRING, accountid:STRING, accesskeyid:STRING,
  username:STRING,
  sessioncontext:STRUCT<
    attributes:STRUCT<creationdate:TIMESTAMP, mfaauthenticated:STRING>,
    sessionissuer:STRUCT<type:STRING, principalid:STRING, arn:STRING, accountid:STRING,
                         username:STRING>,
    webidfederationdata:STRUCT<federatedprovider:STRING, attributes:MAP<STRING,STRING>>,
    sourceidentity:STRING, ec2roledelivery:STRING, ec2issuedinvpc:STRING>,
  invokedby:STRING, identityprovider:STRING>,
eventtime TIMESTAMP,
eventsource STRING,
eventname STRING,
awsregion STRING,
sourceipaddress STRING,
useragent STRING,
errorcode STRING,
errormessage STRING,
requestparameters MAP<STRING,STRING>,
responseelements MAP<STRING,STRING>,
additionaleventdata MAP<STRING,STRING>,
requestid STRING,
eventid STRING,
readonly BOOLEAN,
resources ARRAY<STRUCT<accountid:STRING, type:STRING, arn:STRING, arnprefix:STRING>>,
eventtype STRING,
apiversion STRING,
managementevent BOOLEAN,
recipientaccountid STRING,
sharedeventid STRING,
annotation STRING,
vpcendpointid STRING,
serviceeventdetails MAP<STRING,STRING>,
addendum MAP<STRING,STRING>,
edgedevicedetails MAP<STRING,STRING>,
insightdetails MAP<STRING,STRING>,
eventcategory STRING,
tlsdetails STRUCT<tlsversion:STRING, ciphersuite:STRING, clientprovidedhostheader:STRING>,
sessioncredentialfromconsole STRING
"""

# The OCSF columns of Security Lake's CloudTrail management table that CloudTrail fields map to,
# and its partition columns. JSON is a string column holding JSON text.
SECURITY_LAKE_COLUMNS = """
metadata STRUCT<uid:STRING, version:STRING,
                product:STRUCT<name:STRING, vendor_name:STRING, version:STRING>>,
time BIGINT,
time_dt TIMESTAMP,
class_uid INT,
cloud STRUCT<provider:STRING, region:STRING, account:STRUCT<uid:STRING>>,
api STRUCT<operation:STRING, version:STRING, service:STRUCT<name:STRING>,
           request:STRUCT<uid:STRING, data:JSON>,
           response:STRUCT<error:STRING, message:STRING, data:JSON>>,
actor STRUCT<user:STRUCT<type:STRING, uid:STRING, uid_alt:STRING, name:STRING,
                         credential_uid:STRING, account:STRUCT<uid:STRING>>,
             session:STRUCT<issuer:STRING>,
             invoked_by:STRING>,
src_endpoint STRUCT<ip:STRING, domain:STRING, uid:STRING>,
http_request STRUCT<user_agent:STRING>,
accountid STRING,
region STRING,
eventday STRING
"""

# OCSF field <- CloudTrail field (dotted paths, keys as CloudTrail spells them).
OCSF_MAPPING = {
    "metadata.uid": "eventID",
    "metadata.product.version": "eventVersion",
    "time_dt": "eventTime",
    "cloud.region": "awsRegion",
    "cloud.account.uid": "recipientAccountId",
    "api.service.name": "eventSource",
    "api.operation": "eventName",
    "api.version": "apiVersion",
    "api.request.uid": "requestID",
    "api.request.data": "requestParameters",
    "api.response.data": "responseElements",
    "api.response.error": "errorCode",
    "api.response.message": "errorMessage",
    "actor.user.type": "userIdentity.type",
    "actor.user.uid": "userIdentity.arn",
    "actor.user.uid_alt": "userIdentity.principalId",
    "actor.user.name": "userIdentity.userName",
    "actor.user.credential_uid": "userIdentity.accessKeyId",
    "actor.user.account.uid": "userIdentity.accountId",
    "actor.session.issuer": "userIdentity.sessionContext.sessionIssuer.arn",
    "actor.invoked_by": "userIdentity.invokedBy",
    "src_endpoint.uid": "vpcEndpointId",
    "http_request.user_agent": "userAgent",
    "accountid": "recipientAccountId",
    "region": "awsRegion",
}

TRINO_FUNCTIONS = [
    """CREATE MACRO json_extract_scalar(json, path) AS
         CASE WHEN json_valid(json) AND json_type(json, path) NOT IN ('OBJECT', 'ARRAY')
              THEN json_extract_string(json, path) END""",
    "CREATE MACRO element_at(map, key) AS map_extract_value(map, key)",
]

TABLES = {
    "athena": "cloudtrail_logs",
    "cloudtrail-lake": "event_data_store",
    "security-lake": "security_lake.cloud_trail_mgmt_2_0",
}


class InputError(Exception):
    pass


# ------------------------------------------------------------------------------------ reading


def input_files(paths):
    for path in map(Path, paths):
        if path.is_dir():
            yield from walk(path)
        elif path.is_file():
            yield path
        else:
            raise InputError(f"{path}: no such file or directory")


def walk(directory):
    for entry in sorted(directory.iterdir(), key=lambda p: p.name):
        if entry.is_dir() and not entry.is_symlink():
            yield from walk(entry)
        elif entry.is_file():
            yield entry


def reject_constant(name):
    raise ValueError(f"{name} is not JSON")


def documents(path):
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    text = data.decode("utf-8")
    if text.startswith("\ufeff"):
        text = text[1:]
    decoder = json.JSONDecoder(parse_constant=reject_constant)
    at = 0
    while True:
        while at < len(text) and text[at] in " \t\r\n":
            at += 1
        if at == len(text):
            return
        try:
            value, at = decoder.raw_decode(text, at)
        except ValueError as e:
            raise InputError(f"{path}: {e}") from None
        yield value


def records_of(document, path, in_array=False):
    if isinstance(document, list) and not in_array:
        for item in document:
            yield from records_of(item, path, in_array=True)
    elif isinstance(document, dict) and isinstance(document.get("Records"), list):
        for record in document["Records"]:
            yield record_of(record, path)
    elif isinstance(document, dict) and isinstance(document.get("Events"), list):
        for event in document["Events"]:
            if not isinstance(event, dict) or not isinstance(event.get("CloudTrailEvent"), str):
                raise InputError(f"{path}: an Events entry without a CloudTrailEvent string")
            yield record_of(json.loads(event["CloudTrailEvent"]), path)
    else:
        yield record_of(document, path)


def record_of(value, path):
    """A CloudTrail record, or the record in an EventBridge envelope's `detail`."""
    if not isinstance(value, dict):
        raise InputError(f"{path}: a JSON {type(value).__name__} is not a CloudTrail record")
    if "detail-type" in value and isinstance(value.get("detail"), dict):
        return value["detail"]
    return value


def read_records(paths):
    return [
        record
        for path in input_files(paths)
        for document in documents(path)
        for record in records_of(document, path)
    ]


# ------------------------------------------------------------------------------------ types


def parse_type(text):
    """A Hive type (`STRING`, `STRUCT<a:T, ...>`, `MAP<K,V>`, `ARRAY<T>`, ...) as a tuple tree."""
    for punctuation in "<>,:":
        text = text.replace(punctuation, f" {punctuation} ")
    tokens = text.split()
    value, rest = parse_type_tokens(tokens)
    assert not rest, rest
    return value


def parse_type_tokens(tokens):
    name, rest = tokens[0].upper(), tokens[1:]
    if name in ("STRUCT", "MAP", "ARRAY"):
        assert rest[0] == "<", tokens
        rest = rest[1:]
        items = []
        while True:
            if name == "STRUCT":
                field, colon, rest = rest[0].lower(), rest[1], rest[2:]
                assert colon == ":", tokens
                item, rest = parse_type_tokens(rest)
                items.append((field, item))
            else:
                item, rest = parse_type_tokens(rest)
                items.append(item)
            separator, rest = rest[0], rest[1:]
            if separator == ">":
                break
            assert separator == ",", tokens
        return (name, items), rest
    return (name,), rest


def parse_columns(text):
    columns, depth, current = [], 0, ""
    for c in text:
        depth += {"<": 1, ">": -1}.get(c, 0)
        if c == "," and depth == 0:
            columns.append(current)
            current = ""
        else:
            current += c
    columns.append(current)
    result = []
    for column in filter(str.strip, columns):
        name, type_text = column.strip().split(None, 1)
        result.append((name.lower(), parse_type(type_text)))
    return result


def duckdb_type(hive):
    name = hive[0]
    if name == "STRUCT":
        return "STRUCT(" + ", ".join(f'"{f}" {duckdb_type(t)}' for f, t in hive[1]) + ")"
    if name == "MAP":
        return f"MAP({duckdb_type(hive[1][0])}, {duckdb_type(hive[1][1])})"
    if name == "ARRAY":
        return f"{duckdb_type(hive[1][0])}[]"
    return {"STRING": "VARCHAR", "JSON": "VARCHAR", "INT": "INTEGER"}.get(name, name)


# ------------------------------------------------------------------------------------ values


def json_text(value):
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def timestamp(value):
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    return parsed


def get_key(obj, name, case_insensitive):
    if not isinstance(obj, dict):
        return None
    if name in obj:
        return obj[name]
    if case_insensitive:
        for key, value in obj.items():
            if key.lower() == name:
                return value
    return None


def convert(value, hive, case_insensitive=True):
    """The column value a JSON value becomes in a column of type `hive`."""
    name = hive[0]
    if value is None:
        return None
    if name == "STRING":
        return value if isinstance(value, str) else json_text(value)
    if name == "JSON":
        return json_text(value)
    if name == "STRUCT":
        if not isinstance(value, dict):
            return None
        return {
            field: convert(get_key(value, field, case_insensitive), type_, case_insensitive)
            for field, type_ in hive[1]
        }
    if name == "MAP":
        if not isinstance(value, dict):
            return None
        return {k: convert(v, hive[1][1], case_insensitive) for k, v in value.items()}
    if name == "ARRAY":
        if not isinstance(value, list):
            return None
        return [convert(v, hive[1][0], case_insensitive) for v in value]
    if name == "BOOLEAN":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        return None
    if name == "TIMESTAMP":
        parsed = timestamp(value)
        return parsed.isoformat(sep=" ") if parsed else None
    if name in ("BIGINT", "INT"):
        return value if isinstance(value, int) and not isinstance(value, bool) else None
    raise AssertionError(f"no conversion to {name}")


def cloudtrail_row(record, columns):
    return {name: convert(get_key(record, name, True), hive) for name, hive in columns}


def at_path(record, dotted):
    value = record
    for key in dotted.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def set_path(row, dotted, value):
    keys = dotted.split(".")
    for key in keys[:-1]:
        row = row.setdefault(key, {})
    row[keys[-1]] = value


def ocsf_row(record, columns):
    source = {}
    for target, path in OCSF_MAPPING.items():
        set_path(source, target, at_path(record, path))
    source["class_uid"] = 6003
    source.setdefault("cloud", {})["provider"] = "AWS"
    event_time = timestamp(record.get("eventTime"))
    if event_time is not None:
        epoch = event_time.replace(tzinfo=datetime.timezone.utc).timestamp()
        source["time"] = int(round(epoch * 1000))
        source["eventday"] = event_time.strftime("%Y%m%d")
    address = record.get("sourceIPAddress")
    if isinstance(address, str):
        try:
            ipaddress.ip_address(address)
            set_path(source, "src_endpoint.ip", address)
        except ValueError:
            set_path(source, "src_endpoint.domain", address)
    # The values above are CloudTrail's; their OCSF types decide what lands in each column.
    return {name: convert(source.get(name), hive, False) for name, hive in columns}


# ------------------------------------------------------------------------------------ DuckDB


def load_table(con, table, columns, rows, workdir):
    path = Path(workdir) / (table.replace(".", "_") + ".ndjson")
    with path.open("w", encoding="utf-8") as out:
        for row in rows:
            out.write(json_text(row) + "\n")
    spec = ", ".join(f"'{name}': '{duckdb_type(hive)}'" for name, hive in columns)
    if "." in table:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {table.split('.')[0]}")
    con.execute(
        f"CREATE TABLE {table} AS SELECT * FROM read_json(?, format = 'newline_delimited', "
        f"columns = {{{spec}}})",
        [str(path)],
    )
    return con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def print_sql(command, dialect, table):
    argv = command + ["--dialect", dialect, "--table", table]
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True)
    if done.returncode != 0:
        raise InputError(f"{shlex.join(argv)} failed ({done.returncode}):\n{done.stderr}")
    return done.stdout


def as_text(value):
    if value is None:
        return None
    if isinstance(value, datetime.datetime):
        return value.isoformat(sep=" ")
    return str(value)


def run(paths, dialects, command):
    records = read_records(paths)
    builders = {
        "athena": (parse_columns(ATHENA_COLUMNS), cloudtrail_row),
        "cloudtrail-lake": (parse_columns(LAKE_COLUMNS), cloudtrail_row),
        "security-lake": (parse_columns(SECURITY_LAKE_COLUMNS), ocsf_row),
    }
    con = duckdb.connect()
    for macro in TRINO_FUNCTIONS:
        con.execute(macro)
    result = {"records": len(records), "dialects": {}}
    with tempfile.TemporaryDirectory(prefix="lcw-sql-") as workdir:
        for dialect in dialects:
            columns, build = builders[dialect]
            table = TABLES[dialect]
            loaded = load_table(con, table, columns, (build(r, columns) for r in records), workdir)
            sql = print_sql(command, dialect, table)
            cursor = con.execute(sql)
            names = [d[0] for d in cursor.description]
            alerts = [dict(zip(names, map(as_text, row))) for row in cursor.fetchall()]
            ids = {a["event_id"] for a in alerts}
            result["dialects"][dialect] = {
                "table": table,
                "rows_loaded": loaded,
                "event_ids": sorted(ids, key=lambda i: (i is not None, i or "")),
                "alerts": alerts,
            }
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="+", metavar="PATH")
    parser.add_argument(
        "--print-sql",
        default="cargo run --quiet -- sql",
        help="command printing a dialect's SQL (given --dialect DIALECT --table NAME)",
    )
    parser.add_argument("--dialect", action="append", choices=sorted(TABLES), help="default: all")
    args = parser.parse_args()
    command = shlex.split(args.print_sql)
    if command and command[0] == "cargo":
        command[0] = os.environ.get("CARGO", "cargo")
    try:
        result = run(args.paths, args.dialect or list(TABLES), command)
    except (InputError, OSError, UnicodeDecodeError) as e:
        print(f"sql-equivalence: {e}", file=sys.stderr)
        return 1
    json.dump(result, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
