#!/usr/bin/env python3
"""Reference vectors for Cairn's CloudFront signer (src/signer/), made by AWS's own
implementation: botocore's `CloudFrontSigner` (policy JSON, CloudFront base64, URL building) with
`cryptography` doing the RSA / ECDSA signing it delegates to a callback.

    pip install botocore cryptography

Usage (from anywhere; paths are relative to the repository):

    python3 scripts/cloudfront-vectors.py          # (re)write tests/fixtures/cloudfront/vectors.json
    python3 scripts/cloudfront-vectors.py --check  # exit 1 unless the committed vectors still
                                                   # match botocore and every signature verifies

Test keys are generated only when absent (tests/fixtures/cloudfront/*.pem; they protect
nothing). RSA PKCS#1 v1.5 signatures are deterministic, so `--check` compares RSA vectors byte for
byte; ECDSA signatures are randomised, so for ECDSA vectors everything but the signature is
compared and the committed signature is verified with the public key instead.

botocore does not know CloudFront's SHA-256 option: for SHA-256 vectors the signing callback signs
with SHA-256 and this script appends `&Hash-Algorithm=SHA256` to the URL (cookies:
`CloudFront-Hash-Algorithm=SHA256`), as CloudFront's developer guide describes.
"""

import argparse
import json
import os
import sys
import tempfile
from datetime import datetime, timezone

try:
    import botocore
    from botocore.signers import CloudFrontSigner
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
except ImportError as e:  # pragma: no cover
    sys.exit(f"cloudfront-vectors.py: {e}; run `pip install botocore cryptography`")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "tests", "fixtures", "cloudfront")
VECTORS = os.path.join(FIXTURES, "vectors.json")

DOMAIN = "https://d111111abcdef8.cloudfront.net"
# Fixed times: 2026-01-01T00:00:00Z and 2025-12-01T00:00:00Z.
EXPIRES = 1767225600
NOT_BEFORE = 1764547200

KEYS = {
    "rsa": {"file": "rsa-2048.pem", "public": "rsa-2048.pub.pem", "key_pair_id": "K2JCJMDEHXQW5F"},
    "ecdsa": {"file": "ecdsa-p256.pem", "public": "ecdsa-p256.pub.pem", "key_pair_id": "K3ECDSAP256EXAMPLE"},
}
HASHES = {"SHA1": hashes.SHA1, "SHA256": hashes.SHA256}

# Cases: (name, kind, policy, url, resource, date_greater_than, ip). `resource` None: canned.
ITEM = f"{DOMAIN}/tenants/acme/prod/items/report.pdf"
RUN = f"{DOMAIN}/tenants/acme/prod/runs/run-7"
DISPOSITION = "?response-content-disposition=attachment%3B%20filename%3D%22model%20v2.bin%22"
NON_ASCII = f"{DOMAIN}/tenants/acme/prod/items/r\u00e9sum\u00e9-\u6570\u636e-\U0001f600.txt"
ESCAPES = f'{DOMAIN}/tenants/acme/prod/items/a"b\\c\td\x7fe\u2028f/<g>&h=\'i\'.txt'
CASES = [
    ("canned", "url", ITEM, None, None, None),
    ("custom", "url", ITEM, ITEM, None, None),
    ("custom-not-before-bare-ip", "url", ITEM, ITEM, NOT_BEFORE, "192.0.2.10"),
    ("custom-not-before-cidr", "url", ITEM, ITEM, NOT_BEFORE, "203.0.113.0/24"),
    ("custom-ipv6-cidr", "url", ITEM, ITEM, None, "2001:db8:1234::/48"),
    ("wildcard", "url", f"{RUN}/checkpoints/step-100.safetensors", f"{RUN}/*", None, None),
    ("wildcard-query", "url", f"{RUN}/logs/train.log{DISPOSITION}", f"{RUN}/*", None, None),
    ("canned-query", "url", f"{ITEM}{DISPOSITION}", None, None, None),
    ("canned-non-ascii", "url", NON_ASCII, None, None, None),
    ("custom-non-ascii", "url", NON_ASCII, NON_ASCII, None, None),
    ("custom-json-escapes", "url", ESCAPES, ESCAPES, None, None),
    ("cookies-canned", "cookies", ITEM, None, None, None),
    ("cookies-custom", "cookies", f"{RUN}/logs/train.log", f"{RUN}/*", NOT_BEFORE, "198.51.100.0/24"),
]


def utc(ts):
    return datetime.fromtimestamp(ts, tz=timezone.utc)


def path(name):
    return os.path.join(FIXTURES, name)


def write_private(name, key, fmt):
    with open(path(name), "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption()))


def write_public(name, key):
    with open(path(name), "wb") as f:
        f.write(
            key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )


def ensure_keys():
    """Test keys, generated only when absent. The signing keys in traditional formats (PKCS#1,
    SEC1) and PKCS#8; keys CloudFront does not accept, for the loader's error tests."""
    os.makedirs(FIXTURES, exist_ok=True)
    trad = serialization.PrivateFormat.TraditionalOpenSSL
    pkcs8 = serialization.PrivateFormat.PKCS8
    made = []

    def gen(name, make, fmt, public=None, pkcs8_copy=None):
        if os.path.exists(path(name)):
            return
        key = make()
        write_private(name, key, fmt)
        made.append(name)
        if public:
            write_public(public, key)
            made.append(public)
        if pkcs8_copy:
            write_private(pkcs8_copy, key, pkcs8)
            made.append(pkcs8_copy)

    gen("rsa-2048.pem", lambda: rsa.generate_private_key(65537, 2048), trad,
        "rsa-2048.pub.pem", "rsa-2048.pk8.pem")
    gen("ecdsa-p256.pem", lambda: ec.generate_private_key(ec.SECP256R1()), trad,
        "ecdsa-p256.pub.pem", "ecdsa-p256.pk8.pem")
    gen("rsa-1024.pem", lambda: rsa.generate_private_key(65537, 1024), trad)
    gen("rsa-4096.pem", lambda: rsa.generate_private_key(65537, 4096), pkcs8)
    gen("ecdsa-p384.pem", lambda: ec.generate_private_key(ec.SECP384R1()), trad)
    gen("ed25519.pem", ed25519.Ed25519PrivateKey.generate, pkcs8, "ed25519.pub.pem")
    for name in made:
        print(f"generated tests/fixtures/cloudfront/{name}", file=sys.stderr)


def load_private(name):
    with open(path(name), "rb") as f:
        return serialization.load_pem_private_key(f.read(), password=None)


def load_public(name):
    with open(path(name), "rb") as f:
        return serialization.load_pem_public_key(f.read())


def sign_with(key, hash_name):
    digest = HASHES[hash_name]()
    if isinstance(key, rsa.RSAPrivateKey):
        return lambda message: key.sign(message, padding.PKCS1v15(), digest)
    return lambda message: key.sign(message, ec.ECDSA(digest))


def verify(public, message, signature, hash_name):
    digest = HASHES[hash_name]()
    try:
        if isinstance(public, rsa.RSAPublicKey):
            public.verify(signature, message, padding.PKCS1v15(), digest)
        else:
            public.verify(signature, message, ec.ECDSA(digest))
        return True
    except InvalidSignature:
        return False


def make_vector(alg, hash_name, case):
    name, kind, url, resource, not_before, ip = case
    spec = KEYS[alg]
    signer = CloudFrontSigner(spec["key_pair_id"], sign_with(load_private(spec["file"]), hash_name))
    canned = resource is None
    vector = {
        "name": f"{name}/{alg}-{hash_name.lower()}",
        "kind": kind,
        "canned": canned,
        "algorithm": alg,
        "key": spec["file"],
        "public_key": spec["public"],
        "key_pair_id": spec["key_pair_id"],
        "hash": hash_name,
        "url": url,
        "resource": url if canned else resource,
        "expires": EXPIRES,
        "date_greater_than": not_before,
        "ip": ip,
    }
    policy = signer.build_policy(
        url if canned else resource,
        utc(EXPIRES),
        date_greater_than=utc(not_before) if not_before is not None else None,
        ip_address=ip,
    )
    vector["policy"] = policy
    if kind == "url":
        if canned:
            signed = signer.generate_presigned_url(url, date_less_than=utc(EXPIRES))
        else:
            signed = signer.generate_presigned_url(url, policy=policy)
        if hash_name == "SHA256":
            signed += "&Hash-Algorithm=SHA256"
        vector["signed_url"] = signed
        vector["signature"] = param(signed[len(url) + 1:], "Signature")
    else:
        raw = policy.encode("utf8")
        signature = signer._url_b64encode(signer.rsa_signer(raw)).decode("ascii")
        cookies = (
            [["CloudFront-Expires", str(EXPIRES)]]
            if canned
            else [["CloudFront-Policy", signer._url_b64encode(raw).decode("ascii")]]
        )
        cookies += [["CloudFront-Signature", signature], ["CloudFront-Key-Pair-Id", spec["key_pair_id"]]]
        if hash_name == "SHA256":
            cookies.append(["CloudFront-Hash-Algorithm", "SHA256"])
        vector["cookies"] = cookies
        vector["signature"] = signature
    return vector


def param(query, name):
    for pair in query.split("&"):
        k, _, v = pair.partition("=")
        if k == name:
            return v
    raise KeyError(name)


def generate():
    vectors = [
        make_vector(alg, hash_name, case)
        for case in CASES
        for alg in ("rsa", "ecdsa")
        for hash_name in ("SHA1", "SHA256")
    ]
    return {
        "generator": "scripts/cloudfront-vectors.py (botocore.signers.CloudFrontSigner)",
        "botocore": botocore.__version__,
        "vectors": vectors,
    }


def cf_b64decode(s):
    import base64

    return base64.b64decode(s.replace("-", "+").replace("_", "=").replace("~", "/"), validate=True)


def redact(vector):
    """The vector without its signature when the signature is randomised (ECDSA)."""
    v = dict(vector)
    if v["algorithm"] == "ecdsa":
        sig = v.pop("signature")
        if "signed_url" in v:
            v["signed_url"] = v["signed_url"].replace(sig, "<signature>")
        if "cookies" in v:
            v["cookies"] = [[k, "<signature>" if val == sig else val] for k, val in v["cookies"]]
    return v


def verify_all(doc):
    """Every committed signature verifies with its public key over the policy botocore built."""
    bad = 0
    for v in doc["vectors"]:
        ok = verify(load_public(v["public_key"]), v["policy"].encode("utf8"),
                    cf_b64decode(v["signature"]), v["hash"])
        if not ok:
            print(f"signature does not verify: {v['name']}", file=sys.stderr)
            bad += 1
    return bad


def check():
    for spec in KEYS.values():
        if not os.path.exists(path(spec["file"])):
            sys.exit(f"cloudfront-vectors.py --check: {spec['file']} is missing; run without --check")
    with open(VECTORS, encoding="utf8") as f:
        committed = json.load(f)
    fresh = generate()
    # Round trip through a file, as the committed one was written.
    with tempfile.NamedTemporaryFile("w+", encoding="utf8", suffix=".json") as tmp:
        dump(fresh, tmp)
        tmp.seek(0)
        fresh = json.load(tmp)
    failures = 0
    old = {v["name"]: v for v in committed["vectors"]}
    new = {v["name"]: v for v in fresh["vectors"]}
    for name in sorted(old.keys() | new.keys()):
        if name not in old or name not in new:
            print(f"vector {name}: only in {'the committed' if name in old else 'a fresh'} set", file=sys.stderr)
            failures += 1
            continue
        a, b = redact(old[name]), redact(new[name])
        if a != b:
            keys = sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))
            print(f"vector {name}: differs from botocore in {', '.join(keys)}", file=sys.stderr)
            for k in keys:
                print(f"  committed {k}: {a.get(k)!r}\n  botocore  {k}: {b.get(k)!r}", file=sys.stderr)
            failures += 1
    failures += verify_all(committed)
    n = len(committed["vectors"])
    ecdsa = sum(v["algorithm"] == "ecdsa" for v in committed["vectors"])
    if failures:
        print(f"cloudfront-vectors.py --check: {failures} failure(s) in {n} vectors", file=sys.stderr)
        return 1
    print(
        f"cloudfront-vectors.py --check: {n} vectors match botocore {botocore.__version__} "
        f"({n - ecdsa} RSA byte for byte, {ecdsa} ECDSA apart from the randomised signature); "
        f"all {n} signatures verify"
    )
    return 0


def dump(doc, f):
    json.dump(doc, f, indent=1)
    f.write("\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true",
                    help="compare the committed vectors with a fresh botocore run; exit 1 on a difference")
    args = ap.parse_args()
    if args.check:
        return check()
    ensure_keys()
    doc = generate()
    if verify_all(doc):
        return 1
    with open(VECTORS, "w", encoding="utf8") as f:
        dump(doc, f)
    print(f"wrote tests/fixtures/cloudfront/vectors.json ({len(doc['vectors'])} vectors)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
