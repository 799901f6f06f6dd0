#!/usr/bin/env python3
"""Lambda cold start, measured locally: process spawn -> first invocation's response.

Owns three things, all on 127.0.0.1 and all torn down on exit:
- a `moto_server` with an SNS topic and an SQS queue subscribed to it, so every
  handler really publishes and the queue proves that each invocation published
  exactly one message;
- a minimal Lambda Runtime API: `GET /2018-06-01/runtime/invocation/next` serves
  the event once (with `Lambda-Runtime-Aws-Request-Id`, `-Deadline-Ms`,
  `-Invoked-Function-Arn`), then `POST .../invocation/<id>/response` stops the
  clock; later `next` calls are held open until the process is killed;
- the runs: each command is spawned fresh (a cold start every time), commands
  interleaved run by run so a noisy neighbour hurts them alike; peak RSS is the
  process' VmHWM read right after its response.

It measures; it does not judge: `scripts/bench` compares the figures it writes
(`--json`). It does not emulate Lambda's sandbox (no freeze, no memory limit).

Usage: bench-coldstart.py --event FILE [--runs 20] [--json OUT] NAME=COMMAND...
"""

import argparse
import http.server
import json
import os
import shlex
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ACCOUNT = "123456789012"
REGION = "us-east-1"
FUNCTION_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:lambda-code-watch"


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Invocation:
    """One run's exchange with the handler; written by the server threads."""

    def __init__(self, event, request_id):
        self.event = event
        self.request_id = request_id
        self.served = False
        self.outcome = None
        self.body = None
        self.answered_ns = None
        self.answered = threading.Event()
        self.stop = threading.Event()

    def finish(self, outcome, body):
        self.answered_ns = time.perf_counter_ns()
        self.outcome, self.body = outcome, body
        self.answered.set()


class RuntimeApi(http.server.ThreadingHTTPServer):
    daemon_threads = True
    invocation = None

    def handle_error(self, request, client_address):
        # Each run ends by killing the handler, which resets its open connections: expected.
        if not isinstance(sys.exc_info()[1], (ConnectionError, BrokenPipeError)):
            super().handle_error(request, client_address)


class RuntimeApiHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    PREFIX = "/2018-06-01/runtime/"

    def log_message(self, *args):
        pass

    def reply(self, status, body=b"", headers=()):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        invocation = self.server.invocation
        if self.path != self.PREFIX + "invocation/next" or invocation is None:
            return self.reply(404)
        if invocation.served:
            # A real runtime blocks here until the next event; the run ends before that.
            invocation.stop.wait(120)
            return self.reply(503)
        invocation.served = True
        deadline_ms = int(time.time() * 1000) + 30_000
        self.reply(
            200,
            invocation.event,
            [
                ("Content-Type", "application/json"),
                ("Lambda-Runtime-Aws-Request-Id", invocation.request_id),
                ("Lambda-Runtime-Deadline-Ms", str(deadline_ms)),
                ("Lambda-Runtime-Invoked-Function-Arn", FUNCTION_ARN),
                ("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000;Sampled=0"),
            ],
        )

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        invocation = self.server.invocation
        if invocation is None:
            return self.reply(404)
        base = self.PREFIX + "invocation/" + invocation.request_id + "/"
        if self.path == base + "response":
            outcome = "response"
        elif self.path == base + "error":
            outcome = "error"
        elif self.path == self.PREFIX + "init/error":
            outcome = "init-error"
        else:
            return self.reply(404)
        invocation.finish(outcome, body)
        self.reply(202, b'{"status":"OK"}', [("Content-Type", "application/json")])


class Moto:
    """moto_server with a topic and a queue subscribed to it."""

    def __init__(self, executable):
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.TemporaryFile()
        try:
            self.process = subprocess.Popen(
                [executable, "-p", str(self.port)], stdout=self.log, stderr=subprocess.STDOUT
            )
        except FileNotFoundError:
            sys.exit(f"bench-coldstart: {executable} not found (pip install 'moto[server]')")
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(self.endpoint + "/moto-api/", timeout=1).close()
                break
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.close()
                    sys.exit(f"bench-coldstart: moto_server did not start on {self.endpoint}")
                time.sleep(0.1)
        import boto3  # only needed once moto is up; keeps --help fast

        session = boto3.session.Session(
            aws_access_key_id="test", aws_secret_access_key="test", region_name=REGION
        )
        self.sns = session.client("sns", endpoint_url=self.endpoint)
        self.sqs = session.client("sqs", endpoint_url=self.endpoint)
        self.topic_arn = self.sns.create_topic(Name="lambda-code-watch-bench")["TopicArn"]
        self.queue_url = self.sqs.create_queue(QueueName="lambda-code-watch-bench")["QueueUrl"]
        queue_arn = self.sqs.get_queue_attributes(
            QueueUrl=self.queue_url, AttributeNames=["QueueArn"]
        )["Attributes"]["QueueArn"]
        self.sns.subscribe(TopicArn=self.topic_arn, Protocol="sqs", Endpoint=queue_arn)

    def take_messages(self):
        """Every message now in the queue (SNS envelopes), removed from it."""
        messages = []
        while True:
            batch = self.sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
            ).get("Messages", [])
            if not batch:
                return messages
            for message in batch:
                messages.append(json.loads(message["Body"]))
                self.sqs.delete_message(
                    QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"]
                )

    def close(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def peak_rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def run_once(server, name, command, env, event, run):
    invocation = Invocation(event, f"bench-{name}-{run}")
    server.invocation = invocation
    stderr = tempfile.TemporaryFile()
    started_ns = time.perf_counter_ns()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
    deadline = time.monotonic() + 120
    try:
        while not invocation.answered.wait(0.005):
            if process.poll() is not None or time.monotonic() > deadline:
                stderr.seek(0)
                tail = stderr.read().decode(errors="replace")[-2000:]
                why = "timed out" if process.poll() is None else f"exited with {process.returncode}"
                raise RuntimeError(f"{name} {why} before answering its invocation:\n{tail}")
        rss = peak_rss_kb(process.pid)
    finally:
        invocation.stop.set()
        if process.poll() is None:
            process.kill()
        process.wait()
        server.invocation = None
    if invocation.outcome != "response":
        stderr.seek(0)
        tail = stderr.read().decode(errors="replace")[-2000:]
        raise RuntimeError(f"{name} answered {invocation.outcome}: {invocation.body!r}\n{tail}")
    return (invocation.answered_ns - started_ns) / 1e6, rss, invocation.body


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--event", required=True, help="the event every run is invoked with")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--json", help="write the figures here")
    parser.add_argument("--moto", default="moto_server")
    parser.add_argument("--expect-messages", type=int, default=1,
                        help="SNS messages each invocation must publish (0 for a quiet event)")
    parser.add_argument("commands", nargs="+", metavar="NAME=COMMAND")
    args = parser.parse_args()
    commands = []
    for spec in args.commands:
        name, sep, command = spec.partition("=")
        if not sep or not name or not command:
            parser.error(f"expected NAME=COMMAND, got {spec!r}")
        commands.append((name, shlex.split(command)))
    with open(args.event, "rb") as event_file:
        event = event_file.read()

    moto = Moto(args.moto)
    server = RuntimeApi(("127.0.0.1", 0), RuntimeApiHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = dict(os.environ)
    env.update({
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{server.server_address[1]}",
        "AWS_LAMBDA_FUNCTION_NAME": "lambda-code-watch",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/lambda-code-watch",
        "AWS_LAMBDA_LOG_STREAM_NAME": "bench",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_ENDPOINT_URL": moto.endpoint,
        "AWS_EC2_METADATA_DISABLED": "true",
        "ALERT_TOPIC_ARN": moto.topic_arn,
    })
    env.pop("AWS_PROFILE", None)
    env.pop("AWS_SESSION_TOKEN", None)

    figures = {name: {"ms": [], "rss_kb": [], "subjects": set()} for name, _ in commands}
    try:
        for run in range(args.runs):
            # Alternate the order so neither command always runs right after the other.
            order = commands if run % 2 == 0 else commands[::-1]
            for name, command in order:
                ms, rss, _ = run_once(server, name, command, env, event, run)
                messages = moto.take_messages()
                if len(messages) != args.expect_messages:
                    raise RuntimeError(
                        f"{name} run {run}: {len(messages)} SNS message(s) published, "
                        f"expected {args.expect_messages}"
                    )
                figures[name]["ms"].append(ms)
                if rss is not None:
                    figures[name]["rss_kb"].append(rss)
                figures[name]["subjects"].update(m.get("Subject") for m in messages)
    except RuntimeError as error:
        sys.exit(f"bench-coldstart: {error}")
    finally:
        server.shutdown()
        moto.close()

    report = {}
    for name, figure in figures.items():
        ms = sorted(figure["ms"])
        report[name] = {
            "runs": len(ms),
            "median_ms": statistics.median(ms),
            "mean_ms": statistics.fmean(ms),
            "min_ms": ms[0],
            "max_ms": ms[-1],
            "peak_rss_kb": max(figure["rss_kb"], default=None),
            "subjects": sorted(s for s in figure["subjects"] if s),
        }
        print(
            f"{name}: median {report[name]['median_ms']:.1f} ms "
            f"(min {ms[0]:.1f}, max {ms[-1]:.1f}, {len(ms)} runs), "
            f"peak RSS {report[name]['peak_rss_kb']} kB, subjects {report[name]['subjects']}"
        )
    if args.json:
        with open(args.json, "w") as out:
            json.dump(report, out, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
