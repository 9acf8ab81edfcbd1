"""A transformers-style load of a model directory by path, without
huggingface_hub: config.json, then model.safetensors.index.json, then every
shard the index names, each through safetensors.safe_open (numpy; safe_open
memory-maps the file). The model's name is resolved once first, as the mount
asks of a loader (docs/mount.md): every file then comes from one snapshot.

  transformers_load.py once MODEL ORIGIN    every tensor compared with ORIGIN's copy; one JSON document
  transformers_load.py digest MODEL         the digests one load computes; one JSON document
  transformers_load.py loop MODEL STOPFILE  loads until STOPFILE exists; one JSON line per load

A load's digests: sha256 of config.json's and the index's bytes, and per shard
sha256 over every tensor's name and bytes in name order.
"""
import hashlib
import json
import os
import sys
import time

import numpy as np
from safetensors import safe_open


def load(model):
    root = os.path.realpath(model)
    with open(os.path.join(root, "config.json"), "rb") as f:
        config_bytes = f.read()
    config = json.loads(config_bytes)
    with open(os.path.join(root, "model.safetensors.index.json"), "rb") as f:
        index_bytes = f.read()
    index = json.loads(index_bytes)
    digests = {
        "config.json": hashlib.sha256(config_bytes).hexdigest(),
        "model.safetensors.index.json": hashlib.sha256(index_bytes).hexdigest(),
    }
    tensors = {}
    for shard in sorted(set(index["weight_map"].values())):
        h = hashlib.sha256()
        with safe_open(os.path.join(root, shard), framework="np") as st:
            for name in sorted(st.keys()):
                t = st.get_tensor(name)
                tensors[name] = t
                h.update(name.encode())
                h.update(t.tobytes())
        digests[shard] = h.hexdigest()
    missing = sorted(set(index["weight_map"]) - set(tensors))
    if missing:
        raise RuntimeError(f"tensors in the index but in no shard: {missing}")
    return root, config, tensors, digests


def main():
    mode, model = sys.argv[1], sys.argv[2]
    if mode == "once":
        _, config, tensors, digests = load(model)
        _, _, expected, _ = load(sys.argv[3])
        equal = sum(
            1
            for name, t in tensors.items()
            if name in expected
            and t.dtype == expected[name].dtype
            and t.shape == expected[name].shape
            and np.array_equal(t, expected[name])
        )
        print(json.dumps({
            "model_type": config.get("model_type"),
            "tensors": len(tensors),
            "expected": len(expected),
            "equal": equal,
            "bytes": int(sum(t.nbytes for t in tensors.values())),
            "files": sorted(digests),
        }))
    elif mode == "digest":
        print(json.dumps(load(model)[3]))
    elif mode == "loop":
        stop = sys.argv[3]
        while not os.path.exists(stop):
            t0 = time.time()
            try:
                root, _, _, digests = load(model)
                out = {"t0": t0, "t1": time.time(), "snapshot": os.path.basename(root), "digests": digests}
            except Exception as e:  # a failed load is reported, never skipped
                out = {"t0": t0, "t1": time.time(), "error": f"{type(e).__name__}: {e}"}
            print(json.dumps(out), flush=True)
    else:
        raise SystemExit(f"unknown mode {mode!r}: once, digest or loop")


main()
