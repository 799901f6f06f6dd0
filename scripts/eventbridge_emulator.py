"""What scripts/eventbridge-pattern-check.py and scripts/eventbridge-forward-check.py share.

Owns: an in-process moto server on a free 127.0.0.1 port, checking the cases a
caller passes ({"name", "envelope"}), turning an envelope into a PutEvents
entry, emptying a queue, and the command-line frame both scripts use (no real
AWS, exit codes, the report on stdout). moto and boto3 are imported only when
the emulator starts, so a missing package is reported with its own exit code.
"""

import json
import logging
import os
import sys

MISSING_PACKAGE = 3
BATCH = 10  # PutEvents accepts at most 10 entries per call
MATCH_EVERYTHING = json.dumps({"source": [{"exists": True}]})


# What load_json's callers ask for, in JSON's words.
JSON_NAMES = {dict: "object", list: "array"}


class Refused(Exception):
    """Input or a rule the emulator (or the script) will not take."""


def load_json(path, what):
    with open(path, encoding="utf-8") as handle:
        value = json.load(handle)
    if not isinstance(value, what):
        raise Refused(f"{path}: expected a JSON {JSON_NAMES.get(what, what.__name__)}")
    return value


def check_cases(cases, detail_object=False):
    """Every case has an envelope with the fields PutEvents needs (and, with `detail_object`,
    a `detail` that is an object)."""
    for index, case in enumerate(cases):
        envelope = case.get("envelope") if isinstance(case, dict) else None
        if not isinstance(envelope, dict):
            raise Refused(f"case {index}: no envelope object")
        for field in ("source", "detail-type", "detail"):
            if field not in envelope:
                raise Refused(f"case {index} ({case.get('name')}): envelope has no {field!r}")
        if detail_object and not isinstance(envelope["detail"], dict):
            raise Refused(f"case {index} ({case.get('name')}): detail is not an object")
    return cases


def entry(envelope, detail=None):
    """The PutEvents entry for an envelope, with `detail` in place of the envelope's if given."""
    return {
        "Source": envelope["source"],
        "DetailType": envelope["detail-type"],
        "Detail": json.dumps(envelope["detail"] if detail is None else detail),
        "Resources": envelope.get("resources") or [],
    }


def start_emulator():
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer

    # One access-log line per request would bury the report's context.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    return server, f"http://{host}:{port}"


def drain(sqs, queue_url):
    """Every message in the queue, as parsed event documents; the queue is left empty."""
    received = []
    while True:
        batch = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
        ).get("Messages", [])
        if not batch:
            return received
        received.extend(json.loads(message["Body"]) for message in batch)
        sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[
                {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]}
                for index, message in enumerate(batch)
            ],
        )


def report_main(name, make_report):
    """Runs `make_report()` with real AWS out of reach and prints its report as JSON: exit 0 when
    it ran, 1 on bad input or a refusal, MISSING_PACKAGE when moto or boto3 is not installed."""
    # No real AWS: keep the caller's profile and endpoints out of the way.
    for variable in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN"):
        os.environ.pop(variable, None)
    try:
        report = make_report()
    except ModuleNotFoundError as missing:
        print(
            f"{name}: missing Python package {missing.name!r}; "
            "install scripts/requirements.txt (moto[server], boto3)",
            file=sys.stderr,
        )
        return MISSING_PACKAGE
    except (Refused, OSError, ValueError, KeyError) as error:
        # A KeyError's text is only the key: name it as what it is.
        text = f"missing key {error}" if isinstance(error, KeyError) else str(error)
        print(f"{name}: {text}", file=sys.stderr)
        return 1
    json.dump(report, sys.stdout, indent=1)
    sys.stdout.write("\n")
    return 0
