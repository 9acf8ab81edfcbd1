"""azure-storage-blob and adlfs against weightcache's Azure Blob door, configured by a connection
string only (BlobEndpoint=http://cache:8420/azure/{account}).

Usage: azure_client.py MODE CONNECTION_STRING [CA_FILE]
  MODE reads:  download with offset/length, properties, list with paging (and a delimiter), a range
               with its MD5 checked by the SDK, a SAS URL, adlfs ls/info/ranged reads
  MODE denied: a wrong SharedKey, a SAS signed with a wrong key, a token scoped elsewhere
  MODE md5:    properties and listing of md5/with.bin and md5/without.bin (Content-MD5 as base64 or
               null), and each blob's sha256
  MODE get BLOB: properties, the whole blob (also with timeout=30) and bytes 100-1099 of one blob (each sha256), with
               SharedKey (the connection string's AccountKey); azure-fast-path.test.ts checks it
  MODE sas_limits: SAS URLs signed with spr (https only / https,http) and sip (one address, a range)
               used from 127.0.0.1 over the BlobEndpoint's protocol; CA_FILE verifies an https endpoint
Prints one JSON document; azure-blob.test.ts and azurite-origin.test.ts check it.
"""

import hashlib
import json
import sys
from datetime import datetime, timedelta, timezone

from azure.core.exceptions import HttpResponseError
from azure.storage.blob import BlobServiceClient, ContainerClient, generate_blob_sas, generate_container_sas

mode, conn = sys.argv[1:3]


def sha(b):
    return hashlib.sha256(b).hexdigest()


def error_of(fn):
    try:
        fn()
    except HttpResponseError as e:
        return {"status": e.status_code, "code": e.error_code, "header": e.response.headers.get("x-ms-error-code")}
    return None


svc = BlobServiceClient.from_connection_string(conn, retry_total=0)
models = svc.get_container_client("models")
shard = "llama/model-00001-of-00002.safetensors"
out = {}

if mode == "reads":
    b = models.get_blob_client(shard)
    out["whole_sha"] = sha(b.download_blob().readall())
    out["range_sha"] = sha(b.download_blob(offset=1000, length=300_000).readall())
    # Small chunks: the SDK's first ranged GET, then parallel ranged GETs for the rest.
    small = svc.get_container_client("models").get_blob_client(shard)
    small._config.max_single_get_size = 64 * 1024
    small._config.max_chunk_get_size = 100 * 1024
    out["chunked_sha"] = sha(small.download_blob(max_concurrency=3).readall())
    out["md5_range_sha"] = sha(b.download_blob(offset=10, length=50_000, validate_content=True).readall())
    p = b.get_blob_properties()
    out["props"] = {"size": p.size, "type": getattr(p.blob_type, "value", p.blob_type), "etag": p.etag, "md5": p.content_settings.content_md5}
    out["config_sha"] = sha(models.download_blob("llama/config.json").readall())
    out["empty_len"] = len(models.download_blob("llama/empty.bin").readall())
    names = [x.name for x in models.list_blobs(name_starts_with="many/", results_per_page=400)]
    out["many"] = names
    out["many_pages"] = len(list(models.list_blobs(name_starts_with="many/", results_per_page=400).by_page()))
    out["walk"] = [x.name for x in models.walk_blobs(name_starts_with="llama/", delimiter="/")]
    out["missing"] = error_of(lambda: models.download_blob("llama/nope.bin").readall())
    out["missing_props"] = error_of(lambda: models.get_blob_client("llama/nope.bin").get_blob_properties())
    out["bad_range"] = error_of(lambda: models.get_blob_client("llama/config.json").download_blob(offset=10_000_000, length=5).readall())
    out["write"] = error_of(lambda: models.upload_blob("llama/new.bin", b"x"))
    out["container_exists"] = models.exists()
    # A SAS URL, signed with the account key of the connection string.
    parts = dict(kv.split("=", 1) for kv in conn.split(";") if "=" in kv)
    sas = generate_blob_sas(parts["AccountName"], "models", "llama/config.json", account_key=parts["AccountKey"],
                            permission="r", expiry=datetime.now(timezone.utc) + timedelta(minutes=10))
    from azure.storage.blob import BlobClient
    url = f"{parts['BlobEndpoint']}/models/llama/config.json?{sas}"
    out["sas_sha"] = sha(BlobClient.from_blob_url(url).download_blob().readall())
    csas = generate_container_sas(parts["AccountName"], "models", account_key=parts["AccountKey"], permission="rl",
                                  expiry=datetime.now(timezone.utc) + timedelta(minutes=10))
    cc = ContainerClient.from_container_url(f"{parts['BlobEndpoint']}/models?{csas}")
    out["sas_list"] = [x.name for x in cc.list_blobs(name_starts_with="llama/")]

    import adlfs

    fs = adlfs.AzureBlobFileSystem(connection_string=conn)
    out["adlfs_ls"] = sorted(fs.ls("models/llama", detail=False))
    out["adlfs_info"] = fs.info(f"models/{shard}")["size"]
    with fs.open(f"models/{shard}", "rb", block_size=100_000) as f:
        f.seek(123_456)
        out["adlfs_range_sha"] = sha(f.read(200_000))
    out["adlfs_cat_sha"] = sha(fs.cat("models/llama/config.json"))
    out["adlfs_find"] = len(fs.find("models/many"))
elif mode == "denied":
    out["bad_key"] = error_of(lambda: models.download_blob("llama/config.json").readall())
    out["bad_key_list"] = error_of(lambda: list(models.list_blobs()))
elif mode == "scoped":
    out["other"] = error_of(lambda: models.download_blob("llama/config.json").readall())
    out["own_sha"] = sha(svc.get_container_client("tokenizers").download_blob("t/vocab.json").readall())
    parts = dict(kv.split("=", 1) for kv in conn.split(";") if "=" in kv)
    bad = generate_blob_sas(parts["AccountName"], "tokenizers", "t/vocab.json", account_key="d3Jvbmcta2V5LXdyb25nLWtleQ==",
                            permission="r", expiry=datetime.now(timezone.utc) + timedelta(minutes=10))
    from azure.storage.blob import BlobClient
    out["bad_sas"] = error_of(
        lambda: BlobClient.from_blob_url(f"{parts['BlobEndpoint']}/tokenizers/t/vocab.json?{bad}").download_blob().readall()
    )
elif mode == "md5":
    import base64

    def b64(v):
        return None if v is None else base64.b64encode(bytes(v)).decode()

    for name in ("md5/with.bin", "md5/without.bin"):
        b = models.get_blob_client(name)
        out[name] = {
            "props_md5": b64(b.get_blob_properties().content_settings.content_md5),
            "sha": sha(b.download_blob().readall()),
            "range_sha": sha(b.download_blob(offset=100, length=1000).readall()),
        }
    out["listed"] = {x.name: b64(x.content_settings.content_md5) for x in models.list_blobs(name_starts_with="md5/")}
elif mode == "get":
    b = models.get_blob_client(sys.argv[3])
    out["size"] = b.get_blob_properties().size
    out["sha"] = sha(b.download_blob().readall())
    out["range_sha"] = sha(b.download_blob(offset=100, length=1000).readall())
    out["timeout_sha"] = sha(b.download_blob(timeout=30).readall())  # sent as ?timeout=30
elif mode == "sas_limits":
    from azure.storage.blob import AccountSasPermissions, BlobClient, ResourceTypes, generate_account_sas

    ca = sys.argv[3] if len(sys.argv) > 3 else None
    extra = {"connection_verify": ca} if ca else {}
    parts = dict(kv.split("=", 1) for kv in conn.split(";") if "=" in kv)
    expiry = datetime.now(timezone.utc) + timedelta(minutes=10)
    blob = "llama/config.json"

    def blob_sas(**kw):
        return generate_blob_sas(parts["AccountName"], "models", blob, account_key=parts["AccountKey"], permission="r", expiry=expiry, **kw)

    def read(sas):
        def go():
            return sha(BlobClient.from_blob_url(f"{parts['BlobEndpoint']}/models/{blob}?{sas}", retry_total=0, **extra).download_blob().readall())

        err = error_of(go)
        return err if err is not None else {"sha": go()}

    out["https_only"] = read(blob_sas(protocol="https"))
    out["https_or_http"] = read(blob_sas(protocol="https,http"))
    out["ip_other"] = read(blob_sas(ip="10.1.2.3"))
    out["ip_mine"] = read(blob_sas(ip="127.0.0.1"))
    out["range_mine"] = read(blob_sas(ip="127.0.0.0-127.0.0.255"))
    out["range_other"] = read(blob_sas(ip="10.0.0.0-10.0.0.255"))
    out["ip_garbage"] = read(blob_sas(ip="not-an-address"))
    account = generate_account_sas(parts["AccountName"], parts["AccountKey"], ResourceTypes(container=True, object=True),
                                   AccountSasPermissions(read=True, list=True), expiry, ip="192.168.0.1", protocol="https")
    out["account_sas"] = read(account)
    cc = ContainerClient.from_container_url(
        f"{parts['BlobEndpoint']}/models?" + generate_container_sas(parts["AccountName"], "models", account_key=parts["AccountKey"],
                                                                   permission="rl", expiry=expiry, ip="10.9.9.9"),
        retry_total=0, **extra)
    out["list_ip_other"] = error_of(lambda: list(cc.list_blobs(name_starts_with="llama/")))
print(json.dumps(out, default=str))
