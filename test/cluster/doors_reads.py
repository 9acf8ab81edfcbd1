"""boto3, azure-storage-blob and huggingface_hub reading a model through a cluster while the
vitest file (doors.test.ts) SIGKILLs one node: every read must be byte-exact.

Usage: doors_reads.py SIDECAR_URL NODE_URL ROUNDS EXPECTED_JSON
  EXPECTED_JSON maps key (under container models, repo acme/llama) to its sha256.
Prints "round N" after each round (the test kills a node after the first), then one JSON document.
"""

import hashlib
import json
import os
import sys
import tempfile

import boto3
from azure.storage.blob import BlobServiceClient
from botocore.config import Config

sidecar, node, rounds, expected = sys.argv[1], sys.argv[2], int(sys.argv[3]), json.loads(sys.argv[4])
os.environ["HF_ENDPOINT"] = f"{node}/hf"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
from huggingface_hub import hf_hub_download  # noqa: E402 - HF_ENDPOINT is read at import

s3 = boto3.client("s3", endpoint_url=f"{sidecar}/s3", aws_access_key_id="any", aws_secret_access_key="any",
                  region_name="us-east-1", config=Config(retries={"max_attempts": 1}))
az = BlobServiceClient.from_connection_string(
    f"DefaultEndpointsProtocol=http;AccountName=acct;AccountKey={'a' * 88};BlobEndpoint={sidecar}/azure/acct", retry_total=0
).get_container_client("models")


def sha(b):
    return hashlib.sha256(b).hexdigest()


result = {"reads": 0, "wrong": [], "failed": []}
for r in range(rounds):
    for key, want in expected.items():
        for client in ("s3", "azure", "hub"):
            result["reads"] += 1
            try:
                if client == "s3":
                    got = sha(s3.get_object(Bucket="models", Key=key)["Body"].read())
                elif client == "azure":
                    got = sha(az.download_blob(key).readall())
                else:
                    with tempfile.TemporaryDirectory() as d:
                        p = hf_hub_download("acme/llama", key.split("/", 2)[2], cache_dir=d)
                        with open(p, "rb") as f:
                            got = sha(f.read())
                if got != want:
                    result["wrong"].append([client, key])
            except Exception as e:  # noqa: BLE001 - every failure counts, whatever its type
                result["failed"].append([client, key, f"{type(e).__name__}: {e}"[:300]])
    print(f"round {r}", flush=True)
print(json.dumps(result))
