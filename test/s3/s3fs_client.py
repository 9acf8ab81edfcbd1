"""s3fs (fsspec) against weightcache's S3 door: ls with and without a delimiter, paging past
1,000 keys, info, ranged reads through a file object, cat of a whole file.

Usage: s3fs_client.py ENDPOINT   (any credentials: the node runs without auth)
Prints one JSON document; clients.test.ts checks it.
"""

import hashlib
import json
import sys

import s3fs

endpoint = sys.argv[1]
fs = s3fs.S3FileSystem(key="any", secret="any", client_kwargs={"endpoint_url": endpoint, "region_name": "us-east-1"})


def sha(b):
    return hashlib.sha256(b).hexdigest()


out = {}
out["ls_root"] = sorted(fs.ls("models/", detail=False))
out["ls_llama"] = sorted(fs.ls("models/llama", detail=False))
out["find_many"] = len(fs.find("models/many/"))
out["walk_dirs"] = sorted(d for d, _, _ in fs.walk("models/dirs"))
shard = "models/llama/model-00001-of-00002.safetensors"
out["info"] = {k: fs.info(shard)[k] for k in ("size", "type")}
with fs.open(shard, "rb", block_size=100_000) as f:
    f.seek(250_000)
    out["range_sha"] = sha(f.read(300_000))
out["cat_sha"] = sha(fs.cat("models/llama/config.json"))
out["cat_range_sha"] = sha(fs.cat_file(shard, start=5, end=70_005))
out["exists_missing"] = fs.exists("models/llama/nope.bin")
print(json.dumps(out))
