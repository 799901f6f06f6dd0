#!/usr/bin/env python3
"""The rule in straightforward Python: the baseline `scripts/bench` compares `scan` against.

This is what a user would write without the project: `json.loads` per line (or per
`{"Records": [...]}` file, gzip or not), then the same checks as `src/rule.rs`:
a successful `UpdateFunctionCode*` call to `lambda.amazonaws.com` by an IAM user, a
federated user, or an `AssumedRole` session issued by an `AWSReservedSSO_` role.
It prints one JSON line per alert (actor, function, eventID) so its count can be
checked against `scan`'s; it does not render the full alert document, and it does
not try to be fast: it is the honest "obvious" implementation.

With --fast it is what a competent user writes first instead: `orjson` (the fastest JSON
parser for Python) and, before parsing, the literal prefilter `b"UpdateFunctionCode" in line`,
which skips nearly every line unparsed. It checks nothing about the lines it skips (a broken
line is silently ignored, a count of records is not exact) and misses an `eventName` spelled
with a `\\u` escape: the speed of no validation.

Usage: bench-rule.py [--fast] PATH...   (NDJSON files, .json/.json.gz Records files, or directories)
"""

import gzip
import json
import os
import sys


def text(value):
    """A string value, else None: other JSON types count as absent, as in the Rust rule."""
    return value if isinstance(value, str) else None


def obj(value):
    return value if isinstance(value, dict) else {}


def person(record):
    identity = obj(record.get("userIdentity"))
    kind = text(identity.get("type"))
    if kind == "IAMUser":
        return identity.get("userName") or identity.get("arn", "").rsplit("/", 1)[-1]
    if kind == "FederatedUser":
        return text(identity.get("principalId")) or ""
    if kind == "AssumedRole":
        issuer = obj(obj(identity.get("sessionContext")).get("sessionIssuer"))
        role = text(issuer.get("userName")) or ""
        if role.startswith("AWSReservedSSO_"):
            return (text(identity.get("principalId")) or "").partition(":")[2]
    return None


def alert(record):
    """The alert's key facts when `record` alerts, else None."""
    if "detail-type" in record and isinstance(record.get("detail"), dict):
        record = record["detail"]
    if record.get("eventSource") != "lambda.amazonaws.com":
        return None
    name = text(record.get("eventName"))
    if not name or not name.startswith("UpdateFunctionCode"):
        return None
    if text(record.get("errorCode")) or text(record.get("errorMessage")):
        return None
    actor = person(record)
    if actor is None:
        return None
    function = text(obj(record.get("responseElements")).get("functionName"))
    return {"actor": actor, "function": function, "eventID": record.get("eventID")}


def records(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as stream:
        if path.endswith(".ndjson"):
            for line in stream:
                if line.strip():
                    yield json.loads(line)
        else:
            document = json.load(stream)
            yield from document.get("Records", [document])


LITERAL = b"UpdateFunctionCode"


def records_fast(path):
    """`records` with orjson, skipping what does not hold the literal."""
    import orjson

    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as stream:
        if path.endswith(".ndjson"):
            for line in stream:
                if LITERAL in line:
                    yield orjson.loads(line)
        else:
            data = stream.read()
            if LITERAL in data:
                document = orjson.loads(data)
                yield from document.get("Records", [document])


def paths(arguments):
    for argument in arguments:
        if os.path.isdir(argument):
            for root, _, names in sorted(os.walk(argument)):
                for name in sorted(names):
                    yield os.path.join(root, name)
        else:
            yield argument


def main():
    arguments = sys.argv[1:]
    fast = arguments[:1] == ["--fast"]
    if fast:
        arguments = arguments[1:]
    if not arguments:
        print(__doc__, file=sys.stderr)
        return 2
    read = records_fast if fast else records
    count = 0
    out = sys.stdout
    for path in paths(arguments):
        for record in read(path):
            found = alert(record)
            if found is not None:
                count += 1
                out.write(json.dumps(found) + "\n")
    print(f"bench-rule.py: {count} alert(s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
