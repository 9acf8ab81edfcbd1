"""The Run:ai Model Streamer's S3 backend (what vLLM's --load-format runai_streamer uses) against
weightcache's S3 door, configured only by environment: AWS_ENDPOINT_URL, the keys,
RUNAI_STREAMER_S3_USE_VIRTUAL_ADDRESSING=0.

Usage: runai_stream.py make DIR      write a sharded safetensors checkpoint into DIR
       runai_stream.py stream DIR URL...  stream_file every shard URL (s3://bucket/key) and compare
                                      every tensor with safetensors' own load of the file in DIR
Prints one JSON document.
"""

import json
import os
import sys

import torch
from safetensors.torch import load_file, save_file

mode = sys.argv[1]

if mode == "make":
    out_dir = sys.argv[2]
    os.makedirs(out_dir, exist_ok=True)
    g = torch.Generator().manual_seed(1234)
    shards = {
        "model-00001-of-00003.safetensors": {
            "embed.weight": torch.randn(512, 256, generator=g),
            "layers.0.attn.q.weight": torch.randn(256, 256, generator=g).to(torch.bfloat16),
            "layers.0.attn.bias": torch.randn(257, generator=g).to(torch.float16),
        },
        "model-00002-of-00003.safetensors": {
            "layers.1.mlp.weight": torch.randn(700, 333, generator=g),
            "layers.1.mlp.steps": torch.randint(-(2**40), 2**40, (1001,), generator=g),
            "layers.1.norm.weight": torch.randn(1, generator=g),
        },
        "model-00003-of-00003.safetensors": {
            "lm_head.weight": torch.randn(256, 1024, generator=g).to(torch.float16),
            "quant.zeros": torch.randint(0, 255, (4099,), generator=g).to(torch.uint8),
        },
    }
    for name, tensors in shards.items():
        save_file(tensors, os.path.join(out_dir, name), metadata={"format": "pt"})
    print(json.dumps({"shards": sorted(shards)}))
elif mode == "stream":
    from runai_model_streamer import SafetensorsStreamer

    local_dir, urls = sys.argv[2], sys.argv[3:]
    result = {}
    for url in urls:
        expected = load_file(os.path.join(local_dir, url.rsplit("/", 1)[1]))
        got = {}
        with SafetensorsStreamer() as streamer:
            streamer.stream_file(url)
            for name, tensor in streamer.get_tensors():
                got[name] = tensor.clone()
        result[url] = {
            "names": sorted(got),
            "expected": sorted(expected),
            "equal": sorted(n for n in got if n in expected and got[n].dtype == expected[n].dtype and torch.equal(got[n], expected[n])),
        }
    print(json.dumps(result))
