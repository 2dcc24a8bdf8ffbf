"""Verify the signatures of published reviews and the per-product manifests.

    python -m pipeline.verify OUTPUT_PREFIX            # every published/*.jsonl and widget/*.json under it
    python -m pipeline.verify path/to/published.jsonl  # one file or glob (records only)

Keys: $REVIEW_SIGNING_KEY (with optional $REVIEW_SIGNING_KEY_ID), or --key-file; records signed
with the demo key verify only with --allow-demo-key; an empty or short key is an error. Under an
output prefix, each product's signed manifest (widget/*.json) must verify and list exactly the
product's verified records (a deleted, altered or added review is reported), and the run's signed
index (``run_index.json``) must list exactly those manifests, of its run: a product's files taken
from another run, or a listed product whose document is missing, is reported. A malformed line or
file is reported and skipped, never a crash. Prints one JSON object; exit status 0 when
everything verifies.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import Counter

from apache_beam.io.filesystems import FileSystems

from pipeline import signing
from pipeline.files import read_json_lines


def _pattern(target: str) -> str:
    if target.endswith(".jsonl") or "*" in target:
        return target
    return FileSystems.join(target.rstrip("/"), "published", "*.jsonl")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Verify HMAC signatures of published reviews.")
    parser.add_argument("target", help="output prefix, file or glob (local or gs://)")
    parser.add_argument("--key-file", default=None, help="file holding the signing key")
    parser.add_argument("--allow-demo-key", action="store_true",
                        help="also accept records signed with the demo key")
    args = parser.parse_args(argv)
    keys = {}
    try:
        key = signing.load_signing_key(args.key_file, require=False)
    except (signing.SigningKeyError, OSError) as exn:
        print(f"error: {exn}", file=sys.stderr)
        return 2
    if not key.is_demo and args.allow_demo_key:
        print("error: --allow-demo-key with a real key would also pass whatever the public demo key signed",
              file=sys.stderr)
        return 2
    if not key.is_demo:
        keys[key.key_id] = key.secret
    if args.allow_demo_key:
        keys[signing.DEMO_KEY_ID] = signing.DEMO_KEY
    if not keys:
        print("error: no key: set REVIEW_SIGNING_KEY, pass --key-file, or --allow-demo-key", file=sys.stderr)
        return 2
    result, bad, malformed = Counter(), [], []

    def skip(path: str, line: int, message: str) -> None:
        malformed.append(f"{path}:{line}: {message}")

    verified = {}
    for record in read_json_lines(_pattern(args.target), on_error=skip):
        ok = signing.verify_published(record, keys)
        result["valid" if ok else "invalid"] += 1
        if ok:
            verified.setdefault(record.get("product_id"), []).append(record)
        elif len(bad) < 10:
            bad.append(record.get("review_id"))
    manifests = check_manifests(args.target, verified, keys, skip) if _pattern(args.target) != args.target else None
    report = {"checked": sum(result.values()), "valid": result["valid"], "invalid": result["invalid"],
              "first_invalid": bad, "malformed": len(malformed), "first_malformed": malformed[:10]}
    if manifests is not None:
        report["manifests"] = manifests
    print(json.dumps(report))
    ok = (result["invalid"] == 0 and sum(result.values()) > 0 and not malformed
          and (manifests is None or not manifests["mismatched"]))
    return 0 if ok else 1


def check_manifests(prefix: str, verified, keys, skip) -> dict:
    """Each product's signed manifest against its verified records: {checked, valid, mismatched: [...]}."""
    pattern = FileSystems.join(prefix.rstrip("/"), "widget", "*.json")
    out = {"checked": 0, "valid": 0, "mismatched": []}
    index, problem = signing.read_run_index(prefix, keys)
    if index is None:
        out["mismatched"].append({"product_id": None, "reason": problem})
    else:
        out["run_id"], out["signed_at"] = index["run_id"], index["signed_at"]
    listed, seen = (index or {}).get("products", {}), set()
    for match in sorted(FileSystems.match([pattern])[0].metadata_list, key=lambda m: m.path):
        try:
            with FileSystems.open(match.path, mime_type="application/json") as handle:
                doc = json.loads(handle.read().decode("utf-8"))
            product_id = doc["product_id"]
        except (OSError, ValueError, KeyError, TypeError) as exn:
            skip(match.path, 0, str(exn)[:200])
            continue
        out["checked"] += 1
        seen.add(product_id)
        manifest = doc.get("manifest")
        records = verified.get(product_id, [])
        if not signing.verify_manifest(manifest, keys):
            out["mismatched"].append({"product_id": product_id, "reason": "manifest missing or not signed by a known key"})
        elif (manifest["product_id"] != product_id or manifest["review_count"] != len(records)
              or manifest["reviews_sha256"] != signing.reviews_digest(records)):
            out["mismatched"].append({"product_id": product_id, "reason": (
                f"manifest lists {manifest['review_count']} reviews, {len(records)} verified records found")})
        elif index is not None and not signing.index_lists(index, manifest):
            out["mismatched"].append({"product_id": product_id, "reason": (
                f"manifest of run {manifest['run_id']!r} is not the one the run index of {index['run_id']!r} lists")})
        else:
            out["valid"] += 1
    out["mismatched"] += [{"product_id": pid, "reason": "listed in the run index, widget document missing"}
                          for pid in sorted(set(listed) - seen)]
    out["mismatched"] = out["mismatched"][:50]
    return out


if __name__ == "__main__":
    sys.exit(main())
