"""Reads every tensor of a safetensors file through the mount with safe_open
(numpy; safe_open memory-maps the file) and compares each with the same
tensor read from the origin's copy. Prints one JSON document."""
import json
import sys

import numpy as np
from safetensors import safe_open

mounted, origin = sys.argv[1], sys.argv[2]
tensors = 0
equal = 0
nbytes = 0
with safe_open(mounted, framework="np") as m, safe_open(origin, framework="np") as o:
    names = sorted(m.keys())
    if names != sorted(o.keys()):
        print(json.dumps({"error": "different tensor names", "mounted": names, "origin": sorted(o.keys())}))
        sys.exit(0)
    for name in names:
        a = m.get_tensor(name)
        b = o.get_tensor(name)
        tensors += 1
        nbytes += a.nbytes
        if a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b):
            equal += 1
print(json.dumps({"tensors": tensors, "equal": equal, "bytes": nbytes}))
