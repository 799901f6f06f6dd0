#!/usr/bin/env python3
"""Forward events from a member account's default bus to a central bus with a real EventBridge emulator.

Owns: starting a moto server on a free 127.0.0.1 port inside this process, and
building the organization path in it, from the rules the caller read out of the
templates: in the central account, the organization bus (with its policy) and
the detection rule on it, whose target is an SQS queue standing in for the
function; in the member account, the forwarder rule on the default bus, whose
target is the central bus. Control rules that match everything, one on each
bus, show where an event got to. Every case is sent to the member's default
bus with PutEvents, and the report says, per case, whether it reached the
member bus, the central bus, and the stand-in for the function, and whether
the delivered `detail` is the one sent. The server stops with the process.

Deliberately does not: decide what should match (the caller compares the
report with its expectations), read templates, or talk to real AWS (dummy
credentials, endpoint forced to the local server).

What moto does not model, so the caller must not read into the report:
- the forwarded event is re-created in the central account (moto copies only
  source, detail-type and detail), so its id, account, region and time are the
  central side's; EventBridge keeps the member's (`delivered_envelope` in each
  result shows what moto delivered);
- the target's RoleArn and the bus policy are not enforced: any target bus
  accepts the event;
- retries and the target's dead-letter queue.

Each case's `detail.eventID` is replaced by a unique id before sending, which
is how an event is recognised after moto gave it a new envelope id.

Accounts are separate moto accounts, reached with credentials from
sts:AssumeRole into a role of each account (moto ties those to the account).

Usage: eventbridge-forward-check.py --setup SETUP.json --cases CASES.json
SETUP.json: {"central": {"account", "region", "bus": {"Name", "Policy"?},
"rule": {"Name", "EventPattern"}}, "member": {"account", "region",
"rule": {"Name", "EventPattern", "Targets": [one target, whose Arn is the
central bus ARN]}}}. CASES.json: a JSON array of {"name", "envelope"}.
Prints one JSON document: {"emulator", "results": [{"name", "accepted",
"error", "reached_member_bus", "reached_central_bus", "delivered",
"detail_intact", "delivered_envelope"}], "unattributed"}. Exit codes: 0 ran
(whatever matched), 1 bad input or the emulator refused a rule, 3 a required
Python package is missing.
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


class Account:
    """Clients for one moto account and region."""

    def __init__(self, endpoint, account, region):
        import boto3

        # Only the local server is ever addressed; these keys open nothing.
        base = boto3.session.Session(
            aws_access_key_id="test", aws_secret_access_key="test", region_name=region
        )
        credentials = base.client("sts", endpoint_url=endpoint).assume_role(
            RoleArn=f"arn:aws:iam::{account}:role/forward-check",
            RoleSessionName="forward-check",
        )["Credentials"]
        session = boto3.session.Session(
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
            region_name=region,
        )
        self.account = account
        self.events = session.client("events", endpoint_url=endpoint)
        self.sqs = session.client("sqs", endpoint_url=endpoint)

    def queue(self, name):
        url = self.sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        if f":{self.account}:" not in arn:
            raise Refused(f"the emulator put queue {name} in another account: {arn}")
        return url, arn

    def rule(self, name, pattern_text, targets, bus="default"):
        try:
            self.events.put_rule(
                Name=name, EventPattern=pattern_text, State="ENABLED", EventBusName=bus
            )
            answer = self.events.put_targets(Rule=name, EventBusName=bus, Targets=targets)
        except self.events.exceptions.ClientError as error:
            raise Refused(f"the emulator refused rule {name} on bus {bus}: {error}")
        if answer.get("FailedEntryCount"):
            raise Refused(f"the emulator refused a target of rule {name}: {answer}")

    def rule_to_queue(self, name, pattern_text, bus="default"):
        url, arn = self.queue(name)
        self.rule(name, pattern_text, [{"Id": name, "Arn": arn}], bus)
        return url


def build(endpoint, setup):
    central_setup, member_setup = setup["central"], setup["member"]
    central = Account(endpoint, central_setup["account"], central_setup["region"])
    member = Account(endpoint, member_setup["account"], member_setup["region"])

    bus = central_setup["bus"]
    central.events.create_event_bus(Name=bus["Name"])
    if bus.get("Policy"):
        central.events.put_permission(EventBusName=bus["Name"], Policy=json.dumps(bus["Policy"]))
    rule = central_setup["rule"]
    _, function_arn = central.queue("function-stand-in")
    central.rule(
        rule["Name"],
        json.dumps(rule["EventPattern"]),
        [{"Id": "function-stand-in", "Arn": function_arn}],
        bus["Name"],
    )
    central_control = central.rule_to_queue("central-control", MATCH_EVERYTHING, bus["Name"])

    forwarder = member_setup["rule"]
    targets = forwarder["Targets"]
    if len(targets) != 1:
        raise Refused(f"the forwarder rule has {len(targets)} targets; one expected")
    member.rule(forwarder["Name"], json.dumps(forwarder["EventPattern"]), targets)
    member_control = member.rule_to_queue("member-control", MATCH_EVERYTHING)
    return member, central, {
        "reached_member_bus": (member, member_control),
        "reached_central_bus": (central, central_control),
        "delivered": (central, central.sqs.get_queue_url(QueueName="function-stand-in")["QueueUrl"]),
    }


def run(setup, cases):
    import moto

    server, endpoint = start_emulator()
    try:
        member, _central, queues = build(endpoint, setup)
        results = []
        unattributed = 0
        for start in range(0, len(cases), BATCH):
            chunk = list(enumerate(cases[start : start + BATCH], start))
            entries = []
            by_marker = {}
            for index, case in chunk:
                envelope = case["envelope"]
                detail = dict(envelope["detail"])
                marker = f"forward-check-{index}"
                detail["eventID"] = marker
                entries.append(entry(envelope, detail))
                result = {
                    "name": case.get("name"),
                    "accepted": False,
                    "error": None,
                    "reached_member_bus": 0,
                    "reached_central_bus": 0,
                    "delivered": 0,
                    "detail_intact": True,
                    "delivered_envelope": None,
                }
                results.append(result)
                by_marker[marker] = (result, detail)
            answer = member.events.put_events(Entries=entries)["Entries"]
            for answered, result in zip(answer, results[-len(chunk) :]):
                result["accepted"] = "EventId" in answered
                result["error"] = answered.get("ErrorMessage") or answered.get("ErrorCode")
            # Emptied after every batch: moto's SQS slows down with every message it holds.
            for counter, (account, queue_url) in queues.items():
                for delivered in drain(account.sqs, queue_url):
                    detail = delivered.get("detail")
                    marker = detail.get("eventID") if isinstance(detail, dict) else None
                    known = by_marker.get(marker)
                    if known is None:
                        unattributed += 1
                        continue
                    result, sent = known
                    result[counter] += 1
                    if counter == "delivered":
                        if detail != sent:
                            result["detail_intact"] = False
                        result["delivered_envelope"] = {
                            key: delivered.get(key)
                            for key in ("source", "detail-type", "account", "region")
                        }
        return {
            "emulator": f"moto {moto.__version__} at {endpoint}",
            "results": results,
            "unattributed": unattributed,
        }
    finally:
        server.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--setup", required=True, help="the central and member rules (JSON)")
    parser.add_argument("--cases", required=True, help="JSON array of {name, envelope}")
    args = parser.parse_args()

    def make_report():
        setup = load_json(args.setup, dict)
        for side in ("central", "member"):
            if not isinstance(setup.get(side), dict):
                raise Refused(f"{args.setup}: no {side!r} object")
        cases = check_cases(load_json(args.cases, list), detail_object=True)
        return run(setup, cases)

    return report_main("eventbridge-forward-check", make_report)


if __name__ == "__main__":
    sys.exit(main())
