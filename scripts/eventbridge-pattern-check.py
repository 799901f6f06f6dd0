#!/usr/bin/env python3
"""Apply an EventBridge event pattern to events with a real EventBridge emulator.

Owns: starting a moto server on a free 127.0.0.1 port inside this process,
creating one rule with the pattern under test on the default bus (target: an
SQS queue) and one control rule that matches everything (target: a second
queue), sending every event with PutEvents, and reporting per event whether
the rule delivered it, whether it reached the bus at all (the control rule
got it), and whether the delivered `detail` is the one that was sent. The
server stops with the process, so nothing outlives a run.

Deliberately does not: decide what should match (the caller compares the
report with its expectations), build envelopes, or talk to real AWS (dummy
credentials, endpoint forced to the local server).

moto delivers synchronously, inside PutEvents; an event that arrived late
would show up as "unattributed" rather than silently count as not matched.

moto, unlike EventBridge, accepts PutEvents with an `aws.*` source, which is
what lets the real CloudTrail envelope (source `aws.lambda`) be replayed here;
EventBridge itself refuses `aws.*` sources from PutEvents.

With --transformer, the rule's target gets that InputTransformer (the JSON
of a CloudFormation target's InputTransformer), so the queue receives what
the real target would: each result then carries the transformed document as
`delivered_body`. The transformed document must carry the event's id (for
example the predefined <aws.events.event.json> under some key) so that it
can be attributed to the event sent.

Usage:
  eventbridge-pattern-check.py --pattern PATTERN.json [--transformer T.json] --cases CASES.json
  eventbridge-pattern-check.py --pattern PATTERN.json ENVELOPE.json ...
CASES.json is a JSON array of {"name": ..., "envelope": {...}}; an envelope
is an EventBridge event ({"source", "detail-type", "detail", "resources"?}).
Prints one JSON document: {"emulator", "results": [{"name", "accepted",
"error", "event_id", "delivered", "reached_bus", "detail_intact"}],
"unattributed"}. Exit codes: 0 ran (whatever matched), 1 bad input or the
emulator refused the pattern, 3 a required Python package is missing.
"""

import argparse
import json
import logging
import os
import sys

MISSING_PACKAGE = 3
BATCH = 10  # PutEvents accepts at most 10 entries per call


class Refused(Exception):
    """Input or pattern the emulator (or this script) will not take."""


def load_cases(args):
    if args.cases:
        with open(args.cases, encoding="utf-8") as handle:
            cases = json.load(handle)
        if not isinstance(cases, list):
            raise Refused(f"{args.cases}: expected a JSON array of cases")
    else:
        cases = []
        for path in args.envelopes:
            with open(path, encoding="utf-8") as handle:
                cases.append({"name": path, "envelope": json.load(handle)})
    for index, case in enumerate(cases):
        envelope = case.get("envelope") if isinstance(case, dict) else None
        if not isinstance(envelope, dict):
            raise Refused(f"case {index}: no envelope object")
        for field in ("source", "detail-type", "detail"):
            if field not in envelope:
                raise Refused(f"case {index} ({case.get('name')}): envelope has no {field!r}")
    return cases


def start_emulator():
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer

    # One access-log line per request would bury the report's context.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    return server, f"http://{host}:{port}"


def clients(endpoint):
    import boto3

    # Only the local server is ever addressed; these keys open nothing.
    session = boto3.session.Session(
        aws_access_key_id="test",
        aws_secret_access_key="test",
        region_name="us-east-1",
    )
    return (
        session.client("events", endpoint_url=endpoint),
        session.client("sqs", endpoint_url=endpoint),
    )


def queue_for_rule(events, sqs, name, pattern_text, transformer=None):
    queue_url = sqs.create_queue(QueueName=name)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    try:
        events.put_rule(Name=name, EventPattern=pattern_text, State="ENABLED")
    except events.exceptions.ClientError as error:
        raise Refused(f"the emulator refused the event pattern of rule {name}: {error}")
    target = {"Id": name, "Arn": queue_arn}
    if transformer is not None:
        target["InputTransformer"] = transformer
    events.put_targets(Rule=name, Targets=[target])
    return queue_url


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


def event_id_of(document):
    """The id of the event a delivered document came from: the envelope's, or that of an
    envelope nested anywhere in a transformed document."""
    if not isinstance(document, dict):
        return None
    if isinstance(document.get("id"), str) and "detail" in document:
        return document["id"]
    for value in document.values():
        found = event_id_of(value)
        if found:
            return found
    return None


def run(pattern, cases, transformer=None):
    import moto

    server, endpoint = start_emulator()
    try:
        events, sqs = clients(endpoint)
        matched_queue = queue_for_rule(
            events, sqs, "pattern-under-test", json.dumps(pattern), transformer
        )
        # Proves a non-delivery means "the pattern said no", not "never sent".
        control_queue = queue_for_rule(
            events, sqs, "control-everything", json.dumps({"source": [{"exists": True}]})
        )

        results = []
        unattributed = 0
        for start in range(0, len(cases), BATCH):
            chunk = cases[start : start + BATCH]
            entries = []
            for case in chunk:
                envelope = case["envelope"]
                entries.append(
                    {
                        "Source": envelope["source"],
                        "DetailType": envelope["detail-type"],
                        "Detail": json.dumps(envelope["detail"]),
                        "Resources": envelope.get("resources") or [],
                    }
                )
            answer = events.put_events(Entries=entries)["Entries"]
            by_id = {}
            for case, entry in zip(chunk, answer):
                result = {
                    "name": case.get("name"),
                    "accepted": "EventId" in entry,
                    "error": entry.get("ErrorMessage") or entry.get("ErrorCode"),
                    "event_id": entry.get("EventId"),
                    "delivered": 0,
                    "reached_bus": 0,
                    "detail_intact": True,
                }
                results.append(result)
                if result["event_id"]:
                    by_id[result["event_id"]] = (result, case)
            # Emptied after every batch: moto's SQS slows down with every message it holds.
            for queue_url, counter in ((matched_queue, "delivered"), (control_queue, "reached_bus")):
                for delivered in drain(sqs, queue_url):
                    transformed = transformer is not None and counter == "delivered"
                    known = by_id.get(event_id_of(delivered) if transformed else delivered.get("id"))
                    if known is None:
                        unattributed += 1
                        continue
                    result, case = known
                    result[counter] += 1
                    if transformed:
                        result["delivered_body"] = delivered
                    elif delivered.get("detail") != case["envelope"]["detail"]:
                        result["detail_intact"] = False
        return {
            "emulator": f"moto {moto.__version__} at {endpoint}",
            "results": results,
            "unattributed": unattributed,
        }
    finally:
        server.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pattern", required=True, help="file holding the event pattern (JSON)")
    parser.add_argument("--cases", help="JSON array of {name, envelope}")
    parser.add_argument(
        "--transformer", help="file holding the target's InputTransformer (JSON)"
    )
    parser.add_argument("envelopes", nargs="*", help="EventBridge envelope files")
    args = parser.parse_args()
    if bool(args.cases) == bool(args.envelopes):
        parser.error("give either --cases or envelope files")
    # No real AWS: keep the caller's profile and endpoints out of the way.
    for variable in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN"):
        os.environ.pop(variable, None)
    try:
        with open(args.pattern, encoding="utf-8") as handle:
            pattern = json.load(handle)
        if not isinstance(pattern, dict):
            raise Refused(f"{args.pattern}: the event pattern must be a JSON object")
        transformer = None
        if args.transformer:
            with open(args.transformer, encoding="utf-8") as handle:
                transformer = json.load(handle)
        report = run(pattern, load_cases(args), transformer)
    except ModuleNotFoundError as missing:
        print(
            f"eventbridge-pattern-check: missing Python package {missing.name!r}; "
            "install scripts/requirements.txt (moto[server], boto3)",
            file=sys.stderr,
        )
        return MISSING_PACKAGE
    except (Refused, OSError, ValueError) as error:
        print(f"eventbridge-pattern-check: {error}", file=sys.stderr)
        return 1
    json.dump(report, sys.stdout, indent=1)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
