#!/usr/bin/env python3
"""Seeds a running Cairn for scripts/bench-http.sh and prints what the benchmark requests need,
as shell assignments: a registered 1 KiB raw asset (ASSET), a 7-day signed URL of its bytes
(OBJECT_URL), and a run of N private artifacts (RUN) for the manifest.

Usage: bench_http_setup.py BASE_URL TOKEN [ARTIFACTS]"""
import hashlib
import json
import sys
import urllib.request

base, token = sys.argv[1], sys.argv[2]
count = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
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

print(f"ASSET={p['asset_id']}")
print(f"OBJECT_URL='{d['url']}'")
print(f"RUN={run}")
