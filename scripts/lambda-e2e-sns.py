#!/usr/bin/env python3
"""SNS and SQS chores for the Lambda end-to-end tests (tests/lambda_e2e.rs), against moto_server.

  lambda-e2e-sns.py setup --endpoint URL --name NAME [--region REGION]
      Creates topic NAME and queue NAME (in REGION, default us-east-1), subscribes the queue to the topic with raw delivery off
      (so each SQS body is the SNS envelope, with Subject and MessageAttributes), and prints
      {"topic_arn": ..., "queue_url": ...}.

  lambda-e2e-sns.py drain --endpoint URL --queue-url URL [--region REGION]
      Receives and deletes every message in the queue and prints them as a JSON list of SNS
      envelopes (each SQS body parsed). Stops after a receive that comes back empty: moto
      delivers to subscribed queues during Publish, so nothing arrives after the invoke returned.

Only for tests: dummy credentials, us-east-1 unless told otherwise (moto keeps each region apart,
as SNS does), no retries beyond boto3's defaults.
"""

import argparse
import json
import sys

import boto3


def client(service, endpoint, region="us-east-1"):
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


def setup(args):
    sns = client("sns", args.endpoint, args.region)
    sqs = client("sqs", args.endpoint, args.region)
    topic_arn = sns.create_topic(Name=args.name)["TopicArn"]
    queue_url = sqs.create_queue(QueueName=args.name)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    sns.subscribe(
        TopicArn=topic_arn,
        Protocol="sqs",
        Endpoint=queue_arn,
        Attributes={"RawMessageDelivery": "false"},
    )
    json.dump({"topic_arn": topic_arn, "queue_url": queue_url}, sys.stdout)


def drain(args):
    sqs = client("sqs", args.endpoint, args.region)
    envelopes = []
    while True:
        batch = sqs.receive_message(
            QueueUrl=args.queue_url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=args.wait_seconds,
            VisibilityTimeout=30,
        ).get("Messages", [])
        if not batch:
            break
        for message in batch:
            envelopes.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=args.queue_url, ReceiptHandle=message["ReceiptHandle"])
    json.dump(envelopes, sys.stdout)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("setup")
    p.add_argument("--endpoint", required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--region", default="us-east-1")
    p.set_defaults(run=setup)
    p = commands.add_parser("drain")
    p.add_argument("--endpoint", required=True)
    p.add_argument("--queue-url", required=True)
    p.add_argument("--wait-seconds", type=int, default=0)
    p.add_argument("--region", default="us-east-1")
    p.set_defaults(run=drain)
    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
