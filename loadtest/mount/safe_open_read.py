"""safetensors.safe_open (numpy) on one file and every tensor read into
memory, as a loader does: prints {"seconds", "bytes", "cpuSeconds", "tensors"}
(timed inside the interpreter, so its start is not counted)."""
import json
import sys
import time

from safetensors import safe_open

path = sys.argv[1]
t0 = time.perf_counter()
c0 = time.process_time()
n = 0
count = 0
with safe_open(path, framework="np") as f:
    for name in f.keys():
        t = f.get_tensor(name)
        n += t.nbytes
        count += 1
print(json.dumps({
    "seconds": time.perf_counter() - t0,
    "cpuSeconds": time.process_time() - c0,
    "bytes": n,
    "tensors": count,
}))
