"""Verify the signatures of published reviews.

    python -m pipeline.verify OUTPUT_PREFIX            # every published/*.jsonl under it
    python -m pipeline.verify path/to/published.jsonl  # one file or glob

Keys: $REVIEW_SIGNING_KEY (with optional $REVIEW_SIGNING_KEY_ID), or --key-file; records signed
with the demo key verify only with --allow-demo-key. Exit status 0 when every record verifies.
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
        key = signing.load_signing_key(args.key_file, require=not args.allow_demo_key)
        keys[key.key_id] = key.secret
    except ValueError:
        pass
    if args.allow_demo_key:
        keys[signing.DEMO_KEY_ID] = signing.DEMO_KEY
    if not keys:
        print("error: no key: set REVIEW_SIGNING_KEY, pass --key-file, or --allow-demo-key", file=sys.stderr)
        return 2
    result, bad = Counter(), []
    for record in read_json_lines(_pattern(args.target)):
        ok = signing.verify_published(record, keys)
        result["valid" if ok else "invalid"] += 1
        if not ok and len(bad) < 10:
            bad.append(record.get("review_id"))
    print(json.dumps({"checked": sum(result.values()), "valid": result["valid"], "invalid": result["invalid"],
                      "first_invalid": bad}))
    return 0 if result["invalid"] == 0 and sum(result.values()) > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
