"""boto3 GetObject / HeadObject / download_file against weightcache's S3 door, for the fast-path tests.

Usage: boto3_gets.py ENDPOINT KEY...   (bucket "models", any credentials: the node runs without auth)
Prints one JSON document: per key its HeadObject fields, the SHA-256 of a whole GetObject, of two
ranged GetObjects and of a download_file (s3transfer's ranged parts, 1 MiB each).
"""

import hashlib
import json
import os
import sys
import tempfile

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

endpoint, keys = sys.argv[1], sys.argv[2:]
s3 = boto3.client(
    "s3",
    endpoint_url=endpoint,
    aws_access_key_id="anything",
    aws_secret_access_key="anything",
    region_name="us-east-1",
    config=Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"}),
)


def sha(b):
    return hashlib.sha256(b).hexdigest()


out = {}
with tempfile.TemporaryDirectory() as tmp:
    for key in keys:
        head = s3.head_object(Bucket="models", Key=key)
        whole = s3.get_object(Bucket="models", Key=key)
        body = whole["Body"].read()
        r1 = s3.get_object(Bucket="models", Key=key, Range="bytes=10-70009")
        r2 = s3.get_object(Bucket="models", Key=key, Range="bytes=-5000")
        path = os.path.join(tmp, "f")
        s3.download_file(
            "models", key, path, Config=TransferConfig(multipart_threshold=1 << 20, multipart_chunksize=1 << 20)
        )
        with open(path, "rb") as f:
            downloaded = f.read()
        out[key] = {
            "etag": head["ETag"],
            "size": head["ContentLength"],
            "type": head["ContentType"],
            "whole": sha(body),
            "whole_etag": whole["ETag"],
            "range": sha(r1["Body"].read()),
            "range_header": r1["ContentRange"],
            "suffix": sha(r2["Body"].read()),
            "download": sha(downloaded),
        }
print(json.dumps(out))
