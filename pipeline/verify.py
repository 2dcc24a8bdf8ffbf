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

A streaming job's output prefix (``widget_updates/`` and no run index) is checked the streaming
way (``stream_manifests`` in the report): of each product, per run, the document with the highest
signed ``sequence`` must carry a valid streaming manifest whose review count and 2,048-bit digest
equal those of the product's verified published records of that run, whose aggregate equals the one
recomputed from them, and whose carried reviews are those records as displayed. Run it on a stopped
(drained) job's output: while the job runs, the newest records and documents may sit in windows not
yet written, and their products are reported.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import Counter

from apache_beam.io.filesystems import FileSystems

from pipeline import display, signing
from pipeline.files import base_name, read_json_lines


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
    report, ok = verify_target(args.target, keys)
    print(json.dumps(report))
    return 0 if ok else 1


def verify_target(target: str, keys) -> tuple:
    """(report, everything verified?) for an output prefix, file or glob, with ``keys`` (key id → secret)."""
    result, bad, malformed = Counter(), [], []

    def skip(path: str, line: int, message: str) -> None:
        malformed.append(f"{path}:{line}: {message}")

    verified = {}
    for record in read_json_lines(_pattern(target), on_error=skip):
        ok = signing.verify_published(record, keys)
        result["valid" if ok else "invalid"] += 1
        if ok:
            verified.setdefault(record.get("product_id"), []).append(record)
        elif len(bad) < 10:
            bad.append(record.get("review_id"))
    manifests, kind = None, "manifests"
    if _pattern(target) != target:
        if is_stream_output(target):
            manifests, kind = check_stream_manifests(target, verified, keys, skip), "stream_manifests"
            if is_batch_output(target):
                manifests["mismatched"].insert(0, {"product_id": None, "reason": (
                    "the prefix holds both a streaming job's output and a batch run's (run_index.json or widget/): "
                    "each must have a prefix of its own")})
        else:
            manifests = check_manifests(target, verified, keys, skip)
    report = {"checked": sum(result.values()), "valid": result["valid"], "invalid": result["invalid"],
              "first_invalid": bad, "malformed": len(malformed), "first_malformed": malformed[:10]}
    if manifests is not None:
        report[kind] = manifests
    ok = (result["invalid"] == 0 and sum(result.values()) > 0 and not malformed
          and (manifests is None or not manifests["mismatched"]))
    return report, ok


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
    out["mismatched"] += [{"product_id": pid, "reason": "verified published records of a product without a widget document"}
                          for pid in sorted(set(verified) - seen, key=str)]
    out["mismatched"] = out["mismatched"][:50]
    return out


STREAM_DOCS = signing.STREAM_DOCS_DIR


def is_stream_output(prefix: str) -> bool:
    """A streaming job's output: windowed widget documents or a streaming index, whatever else is
    there (a batch run's files planted beside them must not switch the streaming check off)."""
    prefix = prefix.rstrip("/")
    return any(FileSystems.match([FileSystems.join(prefix, folder, pattern)])[0].metadata_list
               for folder, pattern in ((STREAM_DOCS, "*.jsonl"), (signing.STREAM_INDEX_DIR, "*.json")))


def is_batch_output(prefix: str) -> bool:
    """A batch run's output: its run index or widget documents."""
    prefix = prefix.rstrip("/")
    return (FileSystems.exists(FileSystems.join(prefix, signing.RUN_INDEX_FILE))
            or bool(FileSystems.match([FileSystems.join(prefix, display.WIDGET_DIR, "*.json")])[0].metadata_list))


def read_stream_index(prefix: str, keys, skip) -> tuple:
    """(file name → the documents its links list as (product id, sequence, manifest signature), problems,
    the newest link's ``signed_at`` or None): the signed, chained index under ``widget_index/``. Each
    chain's links (one chain per launch of the job) must be numbered 1..N without a gap, each naming
    the one before, all of one run id; a run id may have one chain; and every link a chain's first
    link names in ``after`` (the newest link of each chain already in the prefix when it started) must
    be there. So a link, and the file it lists, removed from a chain is a problem, and of all the
    chains only the newest one's end can be cut."""
    listed, problems, chains, newest = {}, [], {}, None
    pattern = FileSystems.join(prefix.rstrip("/"), signing.STREAM_INDEX_DIR, "*.json")
    for match in sorted(FileSystems.match([pattern])[0].metadata_list, key=lambda m: m.path):
        try:
            with FileSystems.open(match.path, mime_type="application/json") as handle:
                entry = json.loads(handle.read().decode("utf-8"))
        except (OSError, ValueError, RecursionError) as exn:
            skip(match.path, 0, (str(exn) or type(exn).__name__)[:200])
            continue
        if not signing.verify_stream_index_entry(entry, keys):
            problems.append({"product_id": None, "reason": f"{match.path}: an index link not signed by a known key"})
            continue
        chain = chains.setdefault(str(entry.get("chain")), {})
        if entry["sequence"] in chain and chain[entry["sequence"]] != entry:
            problems.append({"product_id": None, "reason": f"two links {entry['sequence']} in chain {entry.get('chain')!r}"})
        chain[entry["sequence"]] = entry
        if entry.get("unreadable"):
            problems.append({"product_id": None, "reason": (
                f"the job could not read back {entry['file']} to index it: its documents are not bound")})
        for product_id, sequence, signature in entry["documents"]:
            listed.setdefault(entry["file"], set()).add((product_id, sequence, signature))
        newest = max(newest or entry["signed_at"], entry["signed_at"])
    if not chains:
        problems.append({"product_id": None, "reason": (
            f"no signed index of the widget documents under {signing.STREAM_INDEX_DIR}/: nothing binds them")})
    runs = {}
    for name, links in chains.items():
        top = max(links)
        run_ids = {link["run_id"] for link in links.values()}
        for run_id in run_ids:
            runs.setdefault(run_id, set()).add(name)
        for n in range(1, top + 1):
            if n not in links:
                problems.append({"product_id": None, "reason": (
                    f"the signed index chain {name!r} (run {sorted(map(str, run_ids))}) has no link {n} of {top}: "
                    "a file of widget documents and its link were removed")})
            elif n > 1 and n - 1 in links and links[n]["previous"] != links[n - 1]["signature"]:
                problems.append({"product_id": None, "reason": f"link {n} of chain {name!r} does not follow link {n - 1}"})
        for other, run_id, sequence, signature in (links.get(1) or {}).get("after", ()):
            bound = chains.get(str(other), {}).get(sequence)
            if bound is None or bound["signature"] != signature:
                problems.append({"product_id": None, "reason": (
                    f"link {sequence} of chain {other!r} (run {run_id!r}), which a later job's first link names as "
                    "that chain's end, is missing: the earlier job's last files were cut")})
    for run_id, names in runs.items():
        if len(names) > 1:
            problems.append({"product_id": None, "reason": (
                f"run {run_id!r} has {len(names)} index chains: a job was launched again under the same --run_id "
                "(give each launch its own run id, or its own --output)")})
    return listed, problems, newest


def newest_stream_docs(prefix: str, keys, skip) -> tuple:
    """(each (product id, run id)'s newest streaming document by signed ``sequence``, problems, number
    of documents read, the newest index link's ``signed_at``): a document whose manifest does not
    verify, two different documents with one sequence, a document the signed index does not list,
    and a document the index lists that is not in its file, are problems of their product."""
    listed, problems, signed_at = read_stream_index(prefix, keys, skip)
    newest, read, present = {}, 0, set()
    pattern = FileSystems.join(prefix.rstrip("/"), STREAM_DOCS, "*.jsonl")
    for match in sorted(FileSystems.match([pattern])[0].metadata_list, key=lambda m: m.path):
        name = base_name(match.path)
        for doc in read_json_lines(match.path, on_error=skip):
            read += 1
            manifest = doc.get("manifest")
            product_id = doc.get("product_id")
            if not signing.verify_stream_manifest(manifest, keys) or manifest["product_id"] != product_id:
                problems.append({"product_id": product_id, "reason": (
                    "a widget document whose streaming manifest is missing, not signed by a known key, or for another product")})
                continue
            entry = (product_id, manifest["sequence"], manifest["signature"])
            present.add((name, entry))
            if entry not in listed.get(name, ()):
                problems.append({"product_id": product_id, "reason": (
                    f"document sequence {manifest['sequence']} in {name} is not in the signed index (added, moved, "
                    "or written after the index's last link)")})
            key = (product_id, manifest["run_id"])
            held = newest.get(key)
            if held is not None and held["manifest"]["sequence"] == manifest["sequence"] and held != doc:
                problems.append({"product_id": product_id, "reason": (
                    f"two different documents with sequence {manifest['sequence']}")})
            if held is None or manifest["sequence"] > held["manifest"]["sequence"]:
                newest[key] = doc
    for name, entries in sorted(listed.items()):
        for product_id, sequence, _ in sorted(e for e in entries if (name, e) not in present):
            problems.append({"product_id": product_id, "reason": (
                f"the signed index lists document sequence {sequence} of this product in {name}, and it is not "
                "there (a newer state removed: rolled back or deleted)")})
    return newest, problems, read, signed_at


def records_by_run(verified) -> dict:
    """product id → verified records, regrouped as (product id, the records' run id) → records."""
    by_run = {}
    for product_id, records in verified.items():
        for record in records:
            by_run.setdefault((product_id, (record.get("provenance") or {}).get("run_id")), []).append(record)
    return by_run


def check_stream_manifests(prefix: str, verified, keys, skip) -> dict:
    """Each product's newest streaming document (per run, by signed ``sequence``) against its verified
    records of that run: {checked (documents read), products, valid, mismatched: [...]}."""
    newest, problems, read, signed_at = newest_stream_docs(prefix, keys, skip)
    out = {"checked": read, "index_signed_at": signed_at, "products": 0, "valid": 0, "mismatched": problems}
    by_run = records_by_run(verified)
    for key in sorted(set(newest) | set(by_run), key=lambda k: (str(k[0]), str(k[1]))):
        out["products"] += 1
        problem = stream_doc_problem(newest.get(key), by_run.get(key, []))
        if problem:
            out["mismatched"].append({"product_id": key[0], "run_id": key[1], "reason": problem})
        else:
            out["valid"] += 1
    out["mismatched"] = out["mismatched"][:50]
    return out


def _carried_entries_problem(carried) -> str:
    if not isinstance(carried, list) or not all(
            isinstance(e, dict) and isinstance(e.get("review_id"), str) and isinstance(e.get("signature"), str)
            for e in carried):
        return "the document's reviews are not a list of reviews with a review_id and signature"
    return ""


def stream_doc_problem(doc, records) -> str:
    """Why a product's newest streaming document does not vouch for exactly ``records`` (its verified
    published records of the document's run), or what it shows differs from what they give; '' when
    neither. A review published twice under one id (resent after the redelivery retention) is two
    records: records are matched by id *and* signature."""
    if doc is None:
        return f"{len(records)} verified published records and no widget document with a streaming manifest"
    manifest = doc["manifest"]
    digest = signing.ReviewSetDigest.of(records)
    if manifest["review_count"] != digest.count or manifest["reviews_sum"] != digest.hex():
        return (f"the newest document (sequence {manifest['sequence']}) vouches for {manifest['review_count']} "
                f"published reviews, {digest.count} verified records were found, or not the same ones (a review "
                "deleted, altered or added, or a newer document missing)")
    reviews = display.most_recent_first(display.display_review(r) for r in records)
    if manifest["aggregate"] != display.summarise_reviews(reviews):
        return "the signed aggregate differs from the one the verified records give"
    carried = doc.get("reviews")
    problem = _carried_entries_problem(carried)
    if problem:
        return problem
    by_key = {(r["review_id"], r["signature"]): r for r in reviews}
    if (manifest["carried_sha256"] != signing.reviews_digest(carried)
            or any(by_key.get((e["review_id"], e["signature"])) != e for e in carried)):
        return "the reviews the document carries are not the verified records it signed"
    if carried != display.most_recent_first(carried):
        return "the document's reviews are not in the order a widget shows them (most recent first)"
    if any(doc.get(k) != manifest[k] for k in ("aggregate", "withheld", "moderation", "run_id")):
        return "the document shows other numbers than its signed manifest"
    if doc.get("json_ld") != display.build_json_ld(doc["product_id"], carried, display.totals_of(records)):
        return "the document's JSON-LD (what search engines show) is not the one the verified records give"
    return ""


if __name__ == "__main__":
    sys.exit(main())
