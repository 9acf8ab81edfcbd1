"""boto3 against weightcache's S3 door, as a loader would use it.

Usage: boto3_client.py ENDPOINT ACCESS_KEY SECRET_KEY MODE
  MODE reads:  listings (with and without a delimiter, paging past 1,000 keys), head, ranged
               gets, download_file, a presigned URL, conditional gets, errors, refused writes
  MODE denied: what a wrong secret, an unknown key id and a token scoped to another bucket get
  MODE limits: SigV4's bounds: a clock 30 minutes off (RequestTimeTooSkewed), an expired presigned URL,
               a request signed with UNSIGNED-PAYLOAD (reads), a tampered one
Prints one JSON document; the vitest file (clients.test.ts) checks it against the origin's bytes.
"""

import hashlib
import json
import os
import sys
import tempfile
import urllib.request

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

endpoint, access_key, secret_key, mode = sys.argv[1:5]


def client(secret=secret_key, key=access_key, **config):
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        region_name="us-east-1",
        config=Config(retries={"max_attempts": 1}, **config),
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


out = {}
s3 = client()

if mode == "reads":
    # Every key under many/ through the paginator: more than 1,000 keys, so several pages.
    pages = list(s3.get_paginator("list_objects_v2").paginate(Bucket="models", Prefix="many/"))
    out["many_pages"] = len(pages)
    out["many_keys"] = [o["Key"] for p in pages for o in p.get("Contents", [])]
    out["first_page_count"] = pages[0]["KeyCount"]
    # A delimiter: folders come back as CommonPrefixes.
    top = s3.list_objects_v2(Bucket="models", Delimiter="/")
    out["top_prefixes"] = [p["Prefix"] for p in top.get("CommonPrefixes", [])]
    out["top_keys"] = [o["Key"] for o in top.get("Contents", [])]
    llama = s3.list_objects_v2(Bucket="models", Prefix="llama/", Delimiter="/")
    out["llama"] = {o["Key"]: {"size": o["Size"], "etag": o["ETag"]} for o in llama.get("Contents", [])}
    out["llama_prefixes"] = [p["Prefix"] for p in llama.get("CommonPrefixes", [])]
    # Paging through folders with a delimiter and a small page.
    keys, prefixes = [], []
    for p in s3.get_paginator("list_objects_v2").paginate(
        Bucket="models", Prefix="dirs/", Delimiter="/", PaginationConfig={"PageSize": 3}
    ):
        keys += [o["Key"] for o in p.get("Contents", [])]
        prefixes += [c["Prefix"] for c in p.get("CommonPrefixes", [])]
    out["dirs_keys"], out["dirs_prefixes"] = keys, prefixes
    out["start_after"] = [
        o["Key"] for o in s3.list_objects_v2(Bucket="models", Prefix="llama/", StartAfter="llama/config.json").get("Contents", [])
    ]
    out["odd"] = [o["Key"] for o in s3.list_objects_v2(Bucket="models", Prefix="odd/").get("Contents", [])]
    v1 = s3.list_objects(Bucket="models", Prefix="llama/")
    out["v1_keys"] = [o["Key"] for o in v1.get("Contents", [])]

    shard = "llama/model-00001-of-00002.safetensors"
    head = s3.head_object(Bucket="models", Key=shard)
    out["head"] = {"length": head["ContentLength"], "etag": head["ETag"], "ranges": head.get("AcceptRanges")}
    rng = s3.get_object(Bucket="models", Key=shard, Range="bytes=1000-300000")
    out["range"] = {"sha": sha(rng["Body"].read()), "content_range": rng["ContentRange"], "status": rng["ResponseMetadata"]["HTTPStatusCode"]}
    suffix = s3.get_object(Bucket="models", Key=shard, Range="bytes=-100")
    out["suffix_sha"] = sha(suffix["Body"].read())
    whole = s3.get_object(Bucket="models", Key="llama/config.json")
    out["config_sha"] = sha(whole["Body"].read())
    out["odd_shas"] = {k: sha(s3.get_object(Bucket="models", Key=k)["Body"].read()) for k in out["odd"]}

    with tempfile.TemporaryDirectory() as d:
        # Small chunks and several threads: s3transfer's ranged, concurrent download.
        from boto3.s3.transfer import TransferConfig

        for i, cfg in enumerate([TransferConfig(), TransferConfig(multipart_chunksize=256 * 1024, multipart_threshold=256 * 1024, max_concurrency=4)]):
            path = os.path.join(d, f"shard{i}")
            s3.download_file("models", shard, path, Config=cfg)
            with open(path, "rb") as f:
                out[f"download_sha_{i}"] = sha(f.read())

    url = s3.generate_presigned_url("get_object", Params={"Bucket": "models", "Key": "llama/config.json"}, ExpiresIn=300)
    with urllib.request.urlopen(url) as r:
        out["presigned_sha"] = sha(r.read())

    etag = head["ETag"]
    out["if_match_ok"] = s3.get_object(Bucket="models", Key=shard, IfMatch=etag, Range="bytes=0-0")["ResponseMetadata"]["HTTPStatusCode"]
    out["if_match_bad"] = error_of(lambda: s3.get_object(Bucket="models", Key=shard, IfMatch='"not-the-etag"'))
    out["if_none_match"] = error_of(lambda: s3.get_object(Bucket="models", Key=shard, IfNoneMatch=etag))
    out["no_such_key"] = error_of(lambda: s3.get_object(Bucket="models", Key="llama/nope.bin"))
    out["head_missing"] = error_of(lambda: s3.head_object(Bucket="models", Key="llama/nope.bin"))
    out["bad_range"] = error_of(lambda: s3.get_object(Bucket="models", Key="llama/config.json", Range="bytes=999999-"))
    out["part_number"] = error_of(lambda: s3.get_object(Bucket="models", Key=shard, PartNumber=1))
    out["put"] = error_of(lambda: s3.put_object(Bucket="models", Key="llama/new.bin", Body=b"x"))
    out["delete"] = error_of(lambda: s3.delete_object(Bucket="models", Key="llama/config.json"))
    out["location"] = s3.get_bucket_location(Bucket="models").get("LocationConstraint")
    out["buckets"] = [b["Name"] for b in s3.list_buckets().get("Buckets", [])]
    out["head_bucket"] = s3.head_bucket(Bucket="models")["ResponseMetadata"]["HTTPStatusCode"]
    out["no_such_bucket"] = error_of(lambda: s3.get_object(Bucket="tokenizers", Key="t/vocab.json"))
    out["no_such_bucket_list"] = error_of(lambda: s3.list_objects_v2(Bucket="tokenizers"))

elif mode == "denied":
    out["wrong_secret"] = error_of(lambda: client(secret="not-the-token-at-all").get_object(Bucket="models", Key="llama/config.json"))
    out["wrong_secret_list"] = error_of(lambda: client(secret="not-the-token-at-all").list_objects_v2(Bucket="models"))
    out["unknown_key"] = error_of(lambda: client(key="0000000000deadbeef00").get_object(Bucket="models", Key="llama/config.json"))
    out["other_bucket"] = error_of(lambda: s3.get_object(Bucket="models", Key="llama/config.json"))
    out["other_bucket_list"] = error_of(lambda: s3.list_objects_v2(Bucket="models"))
    out["own_bucket_sha"] = sha(s3.get_object(Bucket="tokenizers", Key="t/vocab.json")["Body"].read())
    out["own_bucket_list"] = [o["Key"] for o in s3.list_objects_v2(Bucket="tokenizers").get("Contents", [])]
    anon = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", config=Config(signature_version=__import__("botocore").UNSIGNED))
    out["anonymous"] = error_of(lambda: anon.get_object(Bucket="tokenizers", Key="t/vocab.json"))

elif mode == "limits":
    import datetime as dt
    import urllib.error

    import botocore.auth
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    real_now = botocore.auth.get_current_datetime

    def at(offset):
        botocore.auth.get_current_datetime = lambda: real_now() + offset

    at(dt.timedelta(minutes=-30))
    out["skewed"] = error_of(lambda: client().get_object(Bucket="tokenizers", Key="t/vocab.json"))
    at(dt.timedelta(hours=-1))
    old_url = client(signature_version="s3v4").generate_presigned_url(
        "get_object", Params={"Bucket": "tokenizers", "Key": "t/vocab.json"}, ExpiresIn=60
    )
    botocore.auth.get_current_datetime = real_now

    def status_of(url, headers=None):
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {})) as r:
                return {"status": r.status, "sha": sha(r.read())}
        except urllib.error.HTTPError as e:
            body = e.read().decode()
            code = body.split("<Code>", 1)[1].split("</Code>", 1)[0] if "<Code>" in body else None
            return {"status": e.code, "code": code, "body": body[:400]}

    out["expired_presigned"] = status_of(old_url)
    # boto3's default presigned URL for a custom endpoint is Signature Version 2.
    out["v2_presigned"] = status_of(client().generate_presigned_url("get_object", Params={"Bucket": "tokenizers", "Key": "t/vocab.json"}))
    out["v4_presigned"] = status_of(
        client(signature_version="s3v4").generate_presigned_url("get_object", Params={"Bucket": "tokenizers", "Key": "t/vocab.json"})
    )
    # UNSIGNED-PAYLOAD in the header form, as the AWS CRT client sends it (botocore signs the payload over http).
    req = AWSRequest(method="GET", url=f"{endpoint}/tokenizers/t/vocab.json", headers={"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"})
    SigV4Auth(Credentials(access_key, secret_key), "s3", "us-east-1").add_auth(req)
    out["unsigned_payload"] = status_of(req.url, dict(req.headers.items()))
    tampered = dict(req.headers.items())
    tampered["X-Amz-Content-SHA256"] = hashlib.sha256(b"").hexdigest()
    out["tampered"] = status_of(req.url, tampered)
print(json.dumps(out))
