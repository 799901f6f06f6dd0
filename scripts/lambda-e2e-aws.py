#!/usr/bin/env python3
"""DynamoDB and SSM chores for the tuning end-to-end tests (tests/lambda_tuning.rs), against moto_server.

  lambda-e2e-aws.py table --endpoint URL --name NAME
      Creates the event table as template.yaml does (partition key `pk`, a string; TTL on
      `expires_at`; on-demand) and prints {"table": NAME}.

  lambda-e2e-aws.py put-parameter --endpoint URL --name NAME --file PATH
      Creates or overwrites the String parameter NAME with the file's text, as
      `aws ssm put-parameter --overwrite` does, and prints {"version": N}.

  lambda-e2e-aws.py items --endpoint URL --name NAME
      Prints every item of the table as a JSON list (DynamoDB JSON).

  lambda-e2e-aws.py drain --endpoint URL --name QUEUE_URL
      Receives and deletes (in batches) every message of the queue, and prints the SNS messages
      inside, parsed, as a JSON list: for large bursts, where one delete per message is too slow.

S3 mode (tests/lambda_s3.rs):

  lambda-e2e-aws.py bucket --endpoint URL --name BUCKET
      Creates the trail bucket.

  lambda-e2e-aws.py trail-queue --endpoint URL --name QUEUE --bucket BUCKET --prefix PREFIX
      Creates the queue and sends the bucket's ObjectCreated notifications for PREFIX*.json.gz
      to it (S3 event notifications, as the bucket owner configures them); prints
      {"queue_url": ..., "queue_arn": ...}.

  lambda-e2e-aws.py put-object / delete-object --endpoint URL --name BUCKET --key KEY [--file PATH]
      Writes the file at KEY, or deletes KEY.

  lambda-e2e-aws.py sqs-event --endpoint URL --name QUEUE_URL --count N
      Receives (and deletes) N messages, waiting for them up to 30 s, and prints them as the SQS
      event an event source mapping hands the function ({"Records": [{"messageId", "body",
      "eventSource": "aws:sqs", ...}]}).

Only for tests: dummy credentials, us-east-1.
"""

import argparse
import json
import sys
import time

import boto3


def client(service, endpoint):
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


def table(args):
    dynamodb = client("dynamodb", args.endpoint)
    dynamodb.create_table(
        TableName=args.name,
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    dynamodb.update_time_to_live(
        TableName=args.name,
        TimeToLiveSpecification={"AttributeName": "expires_at", "Enabled": True},
    )
    json.dump({"table": args.name}, sys.stdout)


def put_parameter(args):
    with open(args.file, encoding="utf-8") as f:
        value = f.read()
    ssm = client("ssm", args.endpoint)
    out = ssm.put_parameter(Name=args.name, Value=value, Type="String", Overwrite=True)
    json.dump({"version": out["Version"]}, sys.stdout)


def items(args):
    dynamodb = client("dynamodb", args.endpoint)
    found = []
    kwargs = {"TableName": args.name}
    while True:
        page = dynamodb.scan(**kwargs)
        found.extend(page.get("Items", []))
        if "LastEvaluatedKey" not in page:
            break
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    json.dump(found, sys.stdout)


def drain(args):
    sqs = client("sqs", args.endpoint)
    found = []
    while True:
        batch = sqs.receive_message(QueueUrl=args.name, MaxNumberOfMessages=10, VisibilityTimeout=300).get(
            "Messages", []
        )
        if not batch:
            break
        for message in batch:
            found.append(json.loads(json.loads(message["Body"])["Message"]))
        sqs.delete_message_batch(
            QueueUrl=args.name,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)],
        )
    json.dump(found, sys.stdout)


def bucket(args):
    client("s3", args.endpoint).create_bucket(Bucket=args.name)
    json.dump({"bucket": args.name}, sys.stdout)


def trail_queue(args):
    sqs = client("sqs", args.endpoint)
    url = sqs.create_queue(QueueName=args.name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    client("s3", args.endpoint).put_bucket_notification_configuration(
        Bucket=args.bucket,
        NotificationConfiguration={"QueueConfigurations": [{
            "QueueArn": arn,
            "Events": ["s3:ObjectCreated:*"],
            "Filter": {"Key": {"FilterRules": [
                {"Name": "prefix", "Value": args.prefix},
                {"Name": "suffix", "Value": ".json.gz"},
            ]}},
        }]},
    )
    json.dump({"queue_url": url, "queue_arn": arn}, sys.stdout)


def put_object(args):
    with open(args.file, "rb") as f:
        client("s3", args.endpoint).put_object(Bucket=args.name, Key=args.key, Body=f.read())
    json.dump({"key": args.key}, sys.stdout)


def delete_object(args):
    client("s3", args.endpoint).delete_object(Bucket=args.name, Key=args.key)
    json.dump({"key": args.key}, sys.stdout)


def sqs_event(args):
    sqs = client("sqs", args.endpoint)
    arn = sqs.get_queue_attributes(QueueUrl=args.name, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    records = []
    deadline = time.monotonic() + 30
    while len(records) < int(args.count) and time.monotonic() < deadline:
        batch = sqs.receive_message(QueueUrl=args.name, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                    AttributeNames=["All"]).get("Messages", [])
        for message in batch:
            records.append({
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "attributes": message.get("Attributes", {}),
                "messageAttributes": {},
                "md5OfBody": message["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": arn,
                "awsRegion": "us-east-1",
            })
            sqs.delete_message(QueueUrl=args.name, ReceiptHandle=message["ReceiptHandle"])
    if len(records) != int(args.count):
        sys.exit(f"sqs-event: {len(records)} messages arrived, expected {args.count}")
    json.dump({"Records": records}, sys.stdout)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    for name, run, extra in [
        ("table", table, []),
        ("put-parameter", put_parameter, ["--file"]),
        ("items", items, []),
        ("drain", drain, []),
        ("bucket", bucket, []),
        ("trail-queue", trail_queue, ["--bucket", "--prefix"]),
        ("put-object", put_object, ["--key", "--file"]),
        ("delete-object", delete_object, ["--key"]),
        ("sqs-event", sqs_event, ["--count"]),
    ]:
        p = commands.add_parser(name)
        p.add_argument("--endpoint", required=True)
        p.add_argument("--name", required=True)
        for option in extra:
            p.add_argument(option, required=True)
        p.set_defaults(run=run)
    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
