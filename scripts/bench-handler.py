#!/usr/bin/env python3
"""The usual alternative to the Rust handler: the same Lambda in Python with boto3.

`scripts/bench` measures its cold start beside the Rust handler's, against the same
local Runtime API and the same SNS topic. It does the same work per invocation: unwrap
the EventBridge envelope, apply the rule, and publish the alert (JSON for machines,
text with the runbook for email, Subject, MessageAttributes) with MessageStructure=json.
As on AWS's Python runtime, boto3 is imported and the SNS client created once, at init;
the runtime loop is a minimal client of the Lambda Runtime API (what `awslambdaric`
does, without its extras). It is a baseline for measurement, not a supported handler.
"""

import json
import os
import urllib.request

import boto3

TOPIC_ARN = os.environ["ALERT_TOPIC_ARN"]
RUNTIME = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime/invocation/"
SNS = boto3.client("sns")

RULE_ID = "AWS.Lambda.UpdateFunctionCode"
RUNBOOK = (
    "Verify the user identity and whether this is authorized.\n"
    "Review the code changes made to the Lambda function.\n"
    "If unauthorized:\n"
    "- Disable the user's access key or revoke the SSO session\n"
    "- Revert Lambda function code to previous version\n"
    "- Investigate credential compromise"
)


def text(value):
    return value if isinstance(value, str) else None


def obj(value):
    return value if isinstance(value, dict) else {}


def person(record):
    identity = obj(record.get("userIdentity"))
    kind = text(identity.get("type"))
    if kind == "IAMUser":
        return identity.get("userName") or identity.get("arn", "").rsplit("/", 1)[-1]
    if kind == "FederatedUser":
        return (text(identity.get("principalId")) or "").partition(":")[2]
    if kind == "AssumedRole":
        issuer = obj(obj(identity.get("sessionContext")).get("sessionIssuer"))
        if (text(issuer.get("userName")) or "").startswith("AWSReservedSSO_"):
            return (text(identity.get("principalId")) or "").partition(":")[2]
    return None


def evaluate(record):
    if record.get("eventSource") != "lambda.amazonaws.com":
        return None
    if not (text(record.get("eventName")) or "").startswith("UpdateFunctionCode"):
        return None
    if text(record.get("errorCode")) or text(record.get("errorMessage")):
        return None
    return person(record)


def handler(event):
    record = event["detail"] if "detail-type" in event else event
    actor = evaluate(record)
    if actor is None:
        return {"verdict": "quiet"}
    function = text(obj(record.get("responseElements")).get("functionName")) or "<unknown function>"
    title = f"User [{actor}] updated Lambda function code for [{function}]"
    alert = {
        "rule_id": RULE_ID,
        "severity": "HIGH",
        "title": title,
        "actor": actor,
        "function_name": function,
        "event_id": record.get("eventID"),
        "event_time": record.get("eventTime"),
        "account_id": record.get("recipientAccountId"),
        "region": record.get("awsRegion"),
        "runbook": RUNBOOK,
        "context": {
            "userAgent": record.get("userAgent"),
            "sourceIPAddress": record.get("sourceIPAddress"),
            "userIdentity": record.get("userIdentity"),
            "requestParameters": record.get("requestParameters"),
        },
    }
    document = json.dumps(alert)
    attributes = {
        name: {"DataType": "String", "StringValue": value}
        for name, value in (
            ("severity", "HIGH"),
            ("rule_id", RULE_ID),
            ("account_id", alert["account_id"]),
            ("region", alert["region"]),
        )
        if value
    }
    response = SNS.publish(
        TopicArn=TOPIC_ARN,
        Subject=title.encode("ascii", "backslashreplace").decode()[:100],
        Message=json.dumps({"default": document, "email": title + "\n\n" + RUNBOOK}),
        MessageStructure="json",
        MessageAttributes=attributes,
    )
    return {"verdict": "alert", "title": title, "message_id": response["MessageId"]}


def main():
    while True:
        with urllib.request.urlopen(RUNTIME + "next") as invocation:
            request_id = invocation.headers["Lambda-Runtime-Aws-Request-Id"]
            event = json.loads(invocation.read())
        try:
            outcome, body = "response", handler(event)
        except Exception as error:  # the runtime reports any failure to Lambda
            outcome, body = "error", {"errorMessage": str(error), "errorType": type(error).__name__}
        request = urllib.request.Request(
            RUNTIME + request_id + "/" + outcome,
            data=json.dumps(body).encode(),
            method="POST",
        )
        urllib.request.urlopen(request).close()


if __name__ == "__main__":
    main()
