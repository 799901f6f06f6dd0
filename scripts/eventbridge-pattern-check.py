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
import sys

from eventbridge_emulator import (
    BATCH,
    MATCH_EVERYTHING,
    Refused,
    check_cases,
    drain,
    entry,
    load_json,
    report_main,
    start_emulator,
)


def load_cases(args):
    if args.cases:
        cases = load_json(args.cases, list)
    else:
        cases = [{"name": path, "envelope": load_json(path, dict)} for path in args.envelopes]
    return check_cases(cases)


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
            events, sqs, "control-everything", MATCH_EVERYTHING
        )

        results = []
        unattributed = 0
        for start in range(0, len(cases), BATCH):
            chunk = cases[start : start + BATCH]
            entries = [entry(case["envelope"]) for case in chunk]
            answer = events.put_events(Entries=entries)["Entries"]
            by_id = {}
            for case, answered in zip(chunk, answer):
                result = {
                    "name": case.get("name"),
                    "accepted": "EventId" in answered,
                    "error": answered.get("ErrorMessage") or answered.get("ErrorCode"),
                    "event_id": answered.get("EventId"),
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

    def make_report():
        pattern = load_json(args.pattern, dict)
        transformer = load_json(args.transformer, dict) if args.transformer else None
        return run(pattern, load_cases(args), transformer)

    return report_main("eventbridge-pattern-check", make_report)


if __name__ == "__main__":
    sys.exit(main())
