"""huggingface_hub against weightcache's Hub door, with nothing but HF_ENDPOINT set.

Usage: hf_client.py MODE REPO   (HF_ENDPOINT, HF_HOME, HF_TOKEN come from the environment)
  MODE reads:  hf_hub_download, snapshot_download (every file and the one commit), HfFileSystem,
               a paged recursive tree, model_info
  MODE errors: the library's own RepositoryNotFoundError / RevisionNotFoundError / EntryNotFoundError
  MODE badtoken: what a token the node does not know gets
Prints one JSON document; the vitest file (hub.test.ts) checks it against the origin's bytes.
"""

import hashlib
import json
import os
import sys

from huggingface_hub import HfApi, HfFileSystem, hf_hub_download, snapshot_download
from huggingface_hub.errors import (
    EntryNotFoundError,
    HfHubHTTPError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

mode, repo = sys.argv[1:3]


def sha(b):
    return hashlib.sha256(b).hexdigest()


def file_sha(path):
    with open(path, "rb") as f:
        return sha(f.read())


def error_of(fn):
    try:
        fn()
    except Exception as e:  # noqa: BLE001 - the test wants to know exactly which class came back
        status = getattr(getattr(e, "response", None), "status_code", None)
        return {"type": type(e).__name__, "status": status, "mro": [c.__name__ for c in type(e).__mro__]}
    return None


out = {}
if mode == "reads":
    p = hf_hub_download(repo, "config.json")
    out["config_sha"] = file_sha(p)
    out["config_commit"] = p.split(os.sep)[-2]
    folder = snapshot_download(repo)
    out["snapshot_commit"] = os.path.basename(folder)
    files = {}
    for root, _, names in os.walk(folder):
        for n in names:
            full = os.path.join(root, n)
            files[os.path.relpath(full, folder)] = file_sha(full)
    out["snapshot_files"] = files
    info = HfApi().model_info(repo)
    out["info"] = {"id": info.id, "sha": info.sha, "siblings": sorted(s.rfilename for s in info.siblings)}
    tree = list(HfApi().list_repo_tree(repo, recursive=True))
    out["tree"] = [[type(t).__name__, t.path] for t in tree]
    fs = HfFileSystem()
    out["fs_ls"] = sorted(e["name"] for e in fs.ls(repo, detail=True))
    shard = next(n for n in files if n.endswith(".safetensors"))
    with fs.open(f"{repo}/{shard}", "rb") as f:
        f.seek(1000)
        out["fs_range"] = {"file": shard, "sha": sha(f.read(70000))}
    out["fs_cat_sha"] = sha(fs.cat(f"{repo}/config.json"))
    out["fs_info_size"] = fs.info(f"{repo}/{shard}")["size"]
    # Pinned to the commit: the same files again, and a local-only second look needs no server.
    again = snapshot_download(repo, revision=out["snapshot_commit"])
    out["pinned_same_folder"] = again == folder
elif mode == "errors":
    out["missing_repo"] = error_of(lambda: hf_hub_download("nobody/nothing-here", "config.json"))
    out["missing_repo_info"] = error_of(lambda: HfApi().model_info("nobody/nothing-here"))
    out["missing_revision"] = error_of(lambda: hf_hub_download(repo, "config.json", revision="v9"))
    out["missing_file"] = error_of(lambda: hf_hub_download(repo, "no-such-file.bin"))
    out["stale_commit"] = error_of(lambda: hf_hub_download(repo, "config.json", revision="0" * 40))
    out["classes"] = {
        "RepositoryNotFoundError": RepositoryNotFoundError.__name__,
        "RevisionNotFoundError": RevisionNotFoundError.__name__,
        "EntryNotFoundError": EntryNotFoundError.__name__,
    }
elif mode == "badtoken":
    e = error_of(lambda: hf_hub_download(repo, "config.json"))
    out["bad_token"] = e
    out["is_hf_http_error"] = e is not None and "HfHubHTTPError" in e["mro"]
print(json.dumps(out))
