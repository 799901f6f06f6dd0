#!/usr/bin/env python3
"""Copies a local directory tree to an S3 bucket and back, with boto3, for the S3 scan tests and
benchmark (tests/s3_scan.rs, scripts/bench-s3) against a moto server.

  s3-tree.py upload   --endpoint URL --bucket NAME [--key-prefix P] DIR
                      creates the bucket; keys = P + the paths below DIR
  s3-tree.py download --endpoint URL --bucket NAME [--prefix P] DIR [--threads N]
  s3-tree.py put      --endpoint URL --bucket NAME --key KEY FILE   one object (e.g. a corrupt one)

`download` is what a user without `scan s3://` does first: every object below the prefix to DIR,
N at a time (default 10, the AWS CLI's `max_concurrent_requests`), through boto3's transfer manager
(the library behind `aws s3 cp --recursive`). Credentials and region come from the environment
(dummy keys for moto); addressing is path-style, as moto needs.
"""

import argparse
import os
import sys
from concurrent.futures import ThreadPoolExecutor

import boto3
from botocore.config import Config


def client(endpoint, threads=10):
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=os.environ.get("AWS_REGION", "us-east-1"),
        config=Config(s3={"addressing_style": "path"}, max_pool_connections=max(threads, 10)),
    )


def upload(args):
    s3 = client(args.endpoint)
    try:
        s3.create_bucket(Bucket=args.bucket)
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    files = []
    for root, _, names in os.walk(args.dir):
        for name in names:
            path = os.path.join(root, name)
            key = args.key_prefix + os.path.relpath(path, args.dir).replace(os.sep, "/")
            files.append((path, key))
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda f: s3.upload_file(f[0], args.bucket, f[1]), files))
    print(len(files))


def download(args):
    s3 = client(args.endpoint, args.threads)
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=args.bucket, Prefix=args.prefix):
        keys.extend(o["Key"] for o in page.get("Contents", []) if not o["Key"].endswith("/"))

    def fetch(key):
        path = os.path.join(args.dir, *key.split("/"))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        s3.download_file(args.bucket, key, path)

    with ThreadPoolExecutor(args.threads) as pool:
        list(pool.map(fetch, keys))
    print(len(keys))


def put(args):
    s3 = client(args.endpoint)
    with open(args.file, "rb") as f:
        s3.put_object(Bucket=args.bucket, Key=args.key, Body=f.read())


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("upload", "download", "put"):
        p = sub.add_parser(name)
        p.add_argument("--endpoint", required=True)
        p.add_argument("--bucket", required=True)
    sub.choices["upload"].add_argument("--key-prefix", default="")
    sub.choices["upload"].add_argument("dir")
    sub.choices["download"].add_argument("--prefix", default="")
    sub.choices["download"].add_argument("--threads", type=int, default=10)
    sub.choices["download"].add_argument("dir")
    sub.choices["put"].add_argument("--key", required=True)
    sub.choices["put"].add_argument("file")
    args = parser.parse_args()
    {"upload": upload, "download": download, "put": put}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
