#!/usr/bin/env python3
"""Seeds a running Cairn for scripts/bench-http.sh and prints what the benchmark requests need,
as shell assignments: a registered 1 KiB raw asset (ASSET), a 7-day signed URL of its bytes
(OBJECT_URL), a run of N private artifacts (RUN) for the manifest, and for each of the register
cases (c1, c32) a file of REGISTERS pending assets whose 1 KiB is uploaded (REGISTER_IDS_1,
REGISTER_IDS_32; their content's SHA256).

Usage: bench_http_setup.py BASE_URL TOKEN ARTIFACTS REGISTERS OUT_DIR"""
import hashlib
import json
import os
import sys
import urllib.request
from concurrent.futures import ThreadPoolExecutor

base, token = sys.argv[1], sys.argv[2]
count, registers, out_dir = int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
scope = {"Authorization": f"Bearer {token}", "X-Tenant-Id": "acme", "X-Env": "dev"}


def call(method, url, body=None, headers=None, raw=None):
    h = dict(headers if headers is not None else scope)
    data = raw
    if body is not None:
        data = json.dumps(body).encode()
        h["Content-Type"] = "application/json"
    req = urllib.request.Request(url if url.startswith("http") else base + url, data, h, method=method)
    with urllib.request.urlopen(req) as res:
        text = res.read()
        return json.loads(text) if text else None


data = bytes(range(256)) * 4
sha = hashlib.sha256(data).hexdigest()
p = call("POST", "/storage/raw/presign-upload", {
    "filename": "one-kib.bin", "content_type": "application/octet-stream", "size_bytes": len(data)})
up = p["upload"]
call("PUT", up["url"], headers=up.get("headers") or {"Content-Type": "application/octet-stream"}, raw=data)
call("POST", "/storage/raw/register", {
    "asset_id": p["asset_id"], "sha256": sha, "size_bytes": len(data),
    "content_type": "application/octet-stream", "pii_flags": [], "train_ok": True})
d = call("POST", "/storage/raw/presign-download", {"asset_id": p["asset_id"], "expires_in": 604800})

run = "bench-run"
for i in range(count):
    png = b"\x89PNG\r\n\x1a\n" + i.to_bytes(8, "big")
    a = call("POST", "/artifacts", {
        "run_id": run, "kind": "image", "filename": f"frame-{i:04}.png",
        "content_type": "image/png", "size_bytes": len(png)})
    call("PUT", f"/artifacts/{a['artifact']['artifact_id']}/content",
         headers={**scope, "Content-Type": "image/png"}, raw=png)
    if (i + 1) % 250 == 0:
        print(f"seeded {i + 1}/{count} artifacts", file=sys.stderr)



def pending(_):
    """A presigned upload with its bytes PUT, not registered."""
    q = call("POST", "/storage/raw/presign-upload", {
        "filename": "r.bin", "content_type": "application/octet-stream", "size_bytes": len(data)})
    u = q["upload"]
    call("PUT", u["url"], headers=u.get("headers") or {"Content-Type": "application/octet-stream"},
         raw=data)
    return q["asset_id"]


with ThreadPoolExecutor(16) as pool:
    for c in (1, 32):
        ids = list(pool.map(pending, range(registers)))
        with open(os.path.join(out_dir, f"register-{c}.ids"), "w") as f:
            f.write("\n".join(ids) + "\n")
        print(f"seeded {registers} pending uploads for the register case at c{c}", file=sys.stderr)

print(f"REGISTER_IDS_1={os.path.join(out_dir, 'register-1.ids')}")
print(f"REGISTER_IDS_32={os.path.join(out_dir, 'register-32.ids')}")
print(f"SHA256={sha}")
print(f"ASSET={p['asset_id']}")
print(f"OBJECT_URL='{d['url']}'")
print(f"RUN={run}")
