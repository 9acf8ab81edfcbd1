"""Signed boto3 reads against weightcache's S3 door on a node with auth, for the signed fast-path test.

Usage: boto3_signed.py ENDPOINT KEY_ID TOKEN SCOPED_KEY_ID SCOPED_TOKEN KEY...
(bucket "models"; TOKEN may read it, SCOPED_TOKEN may read only "datasets").
Prints one JSON document: per key its HeadObject fields, the SHA-256 of a whole GetObject, of a ranged
GetObject and of a presigned (SigV4) URL's GET; then the failures: a wrong secret, an expired presigned
URL, a bucket out of the token's scope, each as status, code and message (request ids left out).
"""

import datetime as dt
import hashlib
import json
import re
import sys
import urllib.error
import urllib.request

import boto3
import botocore.auth
from botocore.config import Config
from botocore.exceptions import ClientError

endpoint, key_id, token, scoped_key_id, scoped_token = sys.argv[1:6]
keys = sys.argv[6:]


def client(key=key_id, secret=token, **config):
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        region_name="us-east-1",
        config=Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"}, **config),
    )


def sha(b):
    return hashlib.sha256(b).hexdigest()


def error_of(fn):
    try:
        fn()
    except ClientError as e:
        return {
            "code": e.response["Error"].get("Code"),
            "status": e.response["ResponseMetadata"]["HTTPStatusCode"],
            "message": e.response["Error"].get("Message", ""),
        }
    return None


def fetch(url, headers=None):
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {})) as r:
            return {"status": r.status, "sha": sha(r.read()), "etag": r.headers["ETag"]}
    except urllib.error.HTTPError as e:
        body = re.sub(r"<RequestId>[0-9A-F]{16}</RequestId>", "", e.read().decode())
        return {"status": e.code, "body": body}


s3 = client()
presigner = client(signature_version="s3v4")
out = {}
for key in keys:
    head = s3.head_object(Bucket="models", Key=key)
    whole = s3.get_object(Bucket="models", Key=key)
    ranged = s3.get_object(Bucket="models", Key=key, Range="bytes=10-70009")
    url = presigner.generate_presigned_url("get_object", Params={"Bucket": "models", "Key": key}, ExpiresIn=300)
    out[key] = {
        "etag": head["ETag"],
        "size": head["ContentLength"],
        "type": head["ContentType"],
        "whole": sha(whole["Body"].read()),
        "range": sha(ranged["Body"].read()),
        "range_header": ranged["ContentRange"],
        "presigned": fetch(url),
        "presigned_range": fetch(url, {"Range": "bytes=0-99"}),
    }

first = keys[0]
out["wrong_secret"] = error_of(lambda: client(secret=token + "x").get_object(Bucket="models", Key=first))
out["wrong_secret_head"] = error_of(lambda: client(secret=token + "x").head_object(Bucket="models", Key=first))
out["out_of_scope"] = error_of(lambda: client(scoped_key_id, scoped_token).get_object(Bucket="models", Key=first))
real_now = botocore.auth.get_current_datetime
botocore.auth.get_current_datetime = lambda: real_now() - dt.timedelta(hours=1)
old_url = presigner.generate_presigned_url("get_object", Params={"Bucket": "models", "Key": first}, ExpiresIn=60)
botocore.auth.get_current_datetime = real_now
out["expired_presigned"] = fetch(old_url)
print(json.dumps(out))
