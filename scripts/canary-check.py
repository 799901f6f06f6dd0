#!/usr/bin/env python3
"""Run the stack's canary code against moto's Lambda and report what it did (tests/lambda_e2e.rs).

  canary-check.py --code CANARY.py --endpoint URL

Creates, in moto, an execution role and the canary's target function (with code that differs
from the canary's), then imports CANARY.py (the inline code of CanaryFunction, taken from
template.yaml by the caller) and calls its handler exactly as Lambda would, with
CANARY_TARGET_FUNCTION set and boto3 pointed at moto. Every AWS API call the canary makes is
recorded through botocore's event hooks. Prints one JSON document:
{"calls", "result", "function_name", "role_arn", "code_sha256_before", "code_sha256_after",
"expected_code_sha256"}.

Only for tests: dummy credentials, us-east-1, nothing outside the given endpoint.
"""

import argparse
import base64
import contextlib
import hashlib
import importlib.util
import io
import json
import os
import sys
import zipfile

import boto3

TARGET = "lcw-canary-target"
REGION = "us-east-1"


def old_code():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("index.py", "def handler(event, context):\n    return 'old'\n")
    return buffer.getvalue()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--code", required=True)
    parser.add_argument("--endpoint", required=True)
    args = parser.parse_args()

    for variable in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE"):
        os.environ.pop(variable, None)
    os.environ.update(
        AWS_ENDPOINT_URL=args.endpoint,
        AWS_ACCESS_KEY_ID="test",
        AWS_SECRET_ACCESS_KEY="test",
        AWS_DEFAULT_REGION=REGION,
        AWS_REGION=REGION,
        CANARY_TARGET_FUNCTION=TARGET,
    )

    iam = boto3.client("iam")
    role_arn = iam.create_role(
        RoleName="lcw-canary-role",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "lambda.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
    )["Role"]["Arn"]
    lambda_client = boto3.client("lambda")
    created = lambda_client.create_function(
        FunctionName=TARGET,
        Runtime="python3.13",
        Role=role_arn,
        Handler="index.handler",
        Code={"ZipFile": old_code()},
    )

    # The canary builds its own client from boto3's default session: record what it calls.
    calls = []
    boto3.setup_default_session(region_name=REGION)
    boto3.DEFAULT_SESSION.events.register(
        "before-call.*.*", lambda model, **_: calls.append(f"{model.service_model.service_name}:{model.name}")
    )

    spec = importlib.util.spec_from_file_location("canary_index", args.code)
    canary = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(canary)
    # What the canary prints goes to its log on Lambda; here to stderr, keeping stdout for the report.
    with contextlib.redirect_stdout(sys.stderr):
        result = canary.handler({"source": "aws.events", "detail-type": "Scheduled Event"}, None)

    after = lambda_client.get_function(FunctionName=TARGET)["Configuration"]
    expected = base64.b64encode(hashlib.sha256(canary.target_zip()).digest()).decode()
    json.dump(
        {
            "calls": calls,
            "result": result,
            "function_name": TARGET,
            "function_arn": created["FunctionArn"],
            "role_arn": role_arn,
            "code_sha256_before": created["CodeSha256"],
            "code_sha256_after": after["CodeSha256"],
            "expected_code_sha256": expected,
        },
        sys.stdout,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
