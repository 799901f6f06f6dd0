#!/usr/bin/env python3
"""What one CloudTrail log file costs the function in S3 mode: time, CPU and peak memory.

Owns, on 127.0.0.1 and torn down on exit: a moto_server with the trail bucket, the alert topic
(with a queue subscribed) and the event table; the minimal Lambda Runtime API of
scripts/bench-coldstart.py; and one run per file: the handler is spawned fresh, invoked with an
SQS batch holding the S3 notification of that file (as the event source mapping delivers it), and
measured from the moment it takes the event to its answer (wall), with its CPU time (user +
system, from /proc) and peak RSS (VmHWM) read right after the answer.

It measures, it does not judge: README.md ("S3 mode: sizing") turns the figures into MemorySize,
Timeout and cost. moto serves S3 from the same machine, so the download takes no network time
here; Lambda's CPU share is proportional to its memory (1,769 MB = one vCPU), which is why CPU
time is reported apart from wall time.

Usage: bench-trail-file.py --handler PATH [--runs 3] [--json OUT] FILE.json.gz...
"""

import argparse
import gzip
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("bench_coldstart", HERE / "bench-coldstart.py")
coldstart = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(coldstart)

BUCKET = "lcw-bench-trail"
TABLE = "lcw-bench-events"
KEY_DIR = "AWSLogs/o-a1b2c3d4e5/111122223333/CloudTrail/us-east-1/2026/01/02/"


def cpu_seconds(pid):
    """User + system CPU time of `pid` so far."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def sqs_event(key, run):
    body = {"Records": [{"eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
                         "eventName": "ObjectCreated:Put",
                         "s3": {"bucket": {"name": BUCKET}, "object": {"key": key}}}]}
    return json.dumps({"Records": [{
        "messageId": f"bench-{run}", "receiptHandle": "r", "body": json.dumps(body),
        "attributes": {}, "messageAttributes": {}, "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:lcw-trail-files",
        "awsRegion": "us-east-1"}]}).encode()


def run_once(server, command, env, event, name):
    invocation = coldstart.Invocation(event, name)
    server.invocation = invocation
    stderr = tempfile.TemporaryFile()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        # The clock starts when the handler has taken the event (its start is not the file's cost).
        deadline = time.monotonic() + 120
        while not invocation.served:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{name}: the handler never asked for its event")
            time.sleep(0.001)
        served_ns = time.perf_counter_ns()
        cpu_before = cpu_seconds(process.pid)
        deadline = time.monotonic() + 900
        while not invocation.answered.wait(0.005):
            if process.poll() is not None or time.monotonic() > deadline:
                stderr.seek(0)
                tail = stderr.read().decode(errors="replace")[-2000:]
                raise RuntimeError(f"{name}: no answer:\n{tail}")
        cpu = cpu_seconds(process.pid) - cpu_before
        rss = coldstart.peak_rss_kb(process.pid)
    finally:
        invocation.stop.set()
        if process.poll() is None:
            process.kill()
        process.wait()
        server.invocation = None
    if invocation.outcome != "response" or json.loads(invocation.body) != {"batchItemFailures": []}:
        stderr.seek(0)
        tail = stderr.read().decode(errors="replace")[-2000:]
        raise RuntimeError(f"{name}: answered {invocation.outcome} {invocation.body!r}\n{tail}")
    return (invocation.answered_ns - served_ns) / 1e9, cpu, rss


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--handler", required=True, help="the handler binary (release build)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", help="write the figures here")
    parser.add_argument("--moto", default="moto_server")
    parser.add_argument("files", nargs="+")
    args = parser.parse_args()

    moto = coldstart.Moto(args.moto)
    import boto3

    session = boto3.session.Session(aws_access_key_id="test", aws_secret_access_key="test",
                                    region_name="us-east-1")
    s3 = session.client("s3", endpoint_url=moto.endpoint)
    s3.create_bucket(Bucket=BUCKET)
    dynamodb = session.client("dynamodb", endpoint_url=moto.endpoint)
    dynamodb.create_table(TableName=TABLE, BillingMode="PAY_PER_REQUEST",
                          AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                          KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}])
    server = coldstart.RuntimeApi(("127.0.0.1", 0), coldstart.RuntimeApiHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = dict(os.environ)
    env.update({
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{server.server_address[1]}",
        "AWS_LAMBDA_FUNCTION_NAME": "lambda-code-watch",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_ENDPOINT_URL": moto.endpoint,
        "AWS_EC2_METADATA_DISABLED": "true",
        "ALERT_TOPIC_ARN": moto.topic_arn,
        "DEDUP_TABLE": TABLE,
        "DEDUP_WINDOW_MINUTES": "0",
        "TRAIL_BUCKET": BUCKET,
    })
    env.pop("AWS_PROFILE", None)
    report = {}
    try:
        for index, path in enumerate(args.files):
            data = Path(path).read_bytes()
            with gzip.open(path, "rb") as inflating:
                inflated = sum(len(chunk) for chunk in iter(lambda: inflating.read(1 << 20), b""))
            key = f"{KEY_DIR}file-{index}.json.gz"
            s3.put_object(Bucket=BUCKET, Key=key, Body=data)
            walls, cpus, rsss = [], [], []
            for run in range(args.runs):
                wall, cpu, rss = run_once(server, [args.handler], env, sqs_event(key, run),
                                          f"{index}-{run}")
                walls.append(wall)
                cpus.append(cpu)
                rsss.append(rss or 0)
                alerts = len(moto.take_messages())
                # Later runs find the file's alerts completed: only the first publishes.
                if run > 0 and alerts:
                    raise RuntimeError(f"{path}: run {run} published {alerts} alerts again")
            figure = {"gzip_bytes": len(data), "inflated_bytes": inflated, "runs": args.runs,
                      "median_wall_s": statistics.median(walls),
                      "median_cpu_s": statistics.median(cpus), "peak_rss_kb": max(rsss)}
            report[path] = figure
            print(f"{path}: {len(data) / 1e6:.1f} MB gzip, {inflated / 1e6:.1f} MB inflated: "
                  f"median wall {figure['median_wall_s']:.2f} s, CPU {figure['median_cpu_s']:.2f} s, "
                  f"peak RSS {figure['peak_rss_kb'] / 1024:.1f} MiB ({args.runs} runs)", flush=True)
    except RuntimeError as error:
        sys.exit(f"bench-trail-file: {error}")
    finally:
        server.shutdown()
        moto.close()
    if args.json:
        with open(args.json, "w") as out:
            json.dump(report, out, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
