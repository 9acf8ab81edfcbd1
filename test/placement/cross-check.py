# Re-computes test/placement/vector.json with Python's mmh3 (a C MurmurHash3
# independent of ours) and the C library's log, to show that a client in
# another language computes the same owners. Manual, not part of CI:
#   python3 -m venv /tmp/v && /tmp/v/bin/pip install mmh3 && /tmp/v/bin/python test/placement/cross-check.py
# Last run (mmh3 from PyPI, 2026-11-24): 228 entries, 0 rankings differ.
import json, math, os, struct

import mmh3

v = json.load(open(os.path.join(os.path.dirname(__file__), 'vector.json')))
seed = v['seed']


def score(addr, weight, key):
    a = addr.encode()
    data = struct.pack('<I', len(a)) + a + key.encode()
    h1, h2 = struct.unpack('<II', mmh3.hash_bytes(data, seed, x64arch=False)[:8])
    x = h1 * 2**21 + (h2 >> 11)
    return -weight / math.log(max(x, 0.5) * 2**-53)


bad = 0
for e in v['entries']:
    r = sorted(v['members'], key=lambda m: (-score(m['address'], m['weight'], e['key']), m['address']))
    if [m['address'] for m in r] != e['ranking']:
        bad += 1
print(len(v['entries']), 'entries,', bad, 'rankings differ from the JS vector')
raise SystemExit(1 if bad else 0)
