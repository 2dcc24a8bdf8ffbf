"""The signature store: what lets scheduled batch runs see each other.

A daily job reads only the day's reviews, but a copy of a review published last month is still a
copy. Each run appends its fingerprints (review id, time, author, product, channel, band keys,
signature and shingle hashes; no text) as Parquet under ``<store>/signatures/run-<run_id>-*.parquet``
(local path or gs://), and the next run reads every file back into the LSH step next to its own
reviews, so band buckets join old and new (the GroupByKey by band key in
pipeline/transforms/dedup.py is the join).

* Retention: an entry whose review was written more than ``retention_days`` (default 90) before
  the newest review of the current run is not compared (pipeline/transforms/dedup.py), and
  compaction drops entries that old relative to the newest review in the store. Measuring from
  the data rather than the clock keeps retried runs deterministic and makes backfills work.
* Re-runs: a retried job with the same run id overwrites its own file; with a different run id the
  store holds the review twice, and readers keep one per review id. A review present both in the
  store and in the current run is the current one (never its own duplicate).
* Compaction: ``python -m pipeline.dedup.store compact --store PREFIX [--retention_days 90]``
  rewrites the store as one file without expired or repeated entries and deletes the old files.
  Schedule it weekly; the read cost of a run grows with the number of files.

Size: ~0.7 KB per retained review at 128 permutations (signature 512 B + shingle hashes), so 90
days of 50,000 reviews a day is about 3 GB, read once per run.
"""
from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import logging
import math
import sys
from typing import Iterable, Iterator, List, Optional

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io import fileio
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from pipeline.dedup.clusters import Fingerprint
from pipeline.dedup.config import DedupConfig
from pipeline.timestamps import epoch_seconds

LOG = logging.getLogger(__name__)
SCHEMA = pa.schema([
    ("review_id", pa.string()), ("created_ts", pa.float64()), ("author_id", pa.string()),
    ("product_id", pa.string()), ("channel", pa.string()), ("partner", pa.string()), ("family", pa.string()),
    ("n_shingles", pa.int32()), ("signature", pa.binary()), ("shingle_hashes", pa.binary()),
    ("band_keys", pa.list_(pa.string())), ("run_id", pa.string()), ("stored_at", pa.string()),
    ("arrival_ts", pa.float64()), ("input_uri", pa.string()), ("input_line", pa.int64()),
    ("received", pa.bool_()),   # arrival_ts is the platform's received_at (session 26; null in older stores)
])
FIELDS = ("review_id", "created_ts", "author_id", "product_id", "channel", "partner", "family", "n_shingles",
          "signature", "shingle_hashes")


def files_pattern(store: str) -> str:
    return FileSystems.join(store.rstrip("/"), "signatures", "*.parquet")


def first_seen(row: dict) -> float:
    """When the review arrived, for ordering clusters: its received_at when it had one, else when
    the run that stored it first saw it (``stored_at``; stores written before arrival_ts existed)."""
    value = row.get("arrival_ts")
    if value is not None and math.isfinite(value):
        return value
    return epoch_seconds(row["stored_at"])


def to_row(fp: Fingerprint, band_keys: List[str], run_id: str, stored_at: str) -> dict:
    row = {name: getattr(fp, name) for name in FIELDS}
    row.update(band_keys=band_keys, run_id=run_id, stored_at=stored_at)
    row["arrival_ts"] = first_seen({"arrival_ts": fp.arrival_ts, "stored_at": stored_at})
    # where its run read it: reviews one run stored share its stored_at, and their input order is
    # what tells them apart later (a resent honest review behind copies stored in the same run)
    row.update(input_uri=fp.input_uri, input_line=fp.input_line)
    # said, not inferred: a received_at in the same second as the run's stored_at would otherwise be
    # read back as "no received_at" (session 23, round 12)
    row["received"] = bool(fp.received)
    return row


def from_row(row: dict) -> Fingerprint:
    arrival = first_seen(row)
    flag = row.get("received")
    # a store written before session 26 does not say: its arrival is received_at when the review had
    # one, else when its run stored it, so a received_at equal to stored_at reads as none there
    received = bool(flag) if flag is not None else abs(arrival - epoch_seconds(row["stored_at"])) > 1e-3
    return Fingerprint(**{name: row[name] for name in FIELDS}, stored=True, arrival_ts=arrival, received=received,
                       run_ts=epoch_seconds(row["stored_at"]), **_input_position(row))


def _input_position(row: dict) -> dict:
    """The stored input position, or none ("", 0) when the row has none or an unusable one (a store
    written before positions were kept, or by another tool: a NaN line, a number for the file)."""
    uri, line = row.get("input_uri"), row.get("input_line")
    try:
        line = int(line) if line is not None and 0 <= line < 2 ** 62 else 0
    except (TypeError, ValueError, OverflowError):
        line = 0
    return {"input_uri": sys.intern(uri) if isinstance(uri, str) else "", "input_line": line}


def read_rows(handle) -> Iterator[dict]:
    """Rows of one Parquet file, from any binary file object (local or gs://)."""
    data = handle.read()  # files are per run; reading whole keeps pyarrow off Beam's file objects
    for batch in pq.ParquetFile(io.BytesIO(data)).iter_batches(batch_size=4096):
        yield from batch.to_pylist()


class _ReadStoreFn(beam.DoFn):
    def __init__(self, skip_run_id: Optional[str] = None):
        self._skip = skip_run_id

    def process(self, readable_file):
        with readable_file.open(mime_type="application/octet-stream",
                                compression_type=CompressionTypes.UNCOMPRESSED) as handle:
            n = 0
            for row in read_rows(handle):
                if self._skip is not None and row.get("run_id") == self._skip:
                    continue   # this run's own earlier attempt (a retry): not an earlier run
                n += 1
                yield from_row(row)
        LOG.info("Signature store %s: %d entries read", readable_file.metadata.path, n)


class ReadSignatureStore(beam.PTransform):
    """PBegin → PCollection[Fingerprint(stored=True)], every entry (an empty store gives none) but
    those of ``skip_run_id``: a retried run (same run id) must not take its own first attempt for an
    earlier run (an id owner or a first posting from a file the operator has since removed)."""

    def __init__(self, store: str, skip_run_id: Optional[str] = None):
        super().__init__()
        self._pattern = files_pattern(store)
        self._skip = skip_run_id

    def expand(self, pbegin):
        return (pbegin
                | "MatchStore" >> fileio.MatchFiles(self._pattern,
                                                    empty_match_treatment=fileio.EmptyMatchTreatment.ALLOW)
                | "ReadStoreFiles" >> fileio.ReadMatches()
                | "ReadStoreRows" >> beam.ParDo(_ReadStoreFn(self._skip)))


class _ToRowFn(beam.DoFn):
    def __init__(self, cfg: DedupConfig, run_id: str, stored_at: str):
        self._cfg, self._run_id, self._stored_at = cfg, run_id, stored_at

    def setup(self):
        self._signer = self._cfg.signer()

    def process(self, fp: Fingerprint):
        yield to_row(fp, self._signer.band_keys(fp.sig()), self._run_id, self._stored_at)


class AppendToSignatureStore(beam.PTransform):
    """Writes this run's fingerprints to ``<store>/signatures/run-<run_id>-SSSSS-of-NNNNN.parquet``."""

    def __init__(self, store: str, cfg: DedupConfig, run_id: str):
        super().__init__()
        self._prefix = FileSystems.join(store.rstrip("/"), "signatures", f"run-{run_id}")
        self._cfg, self._run_id = cfg, run_id

    def expand(self, fingerprints):
        stored_at = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        return (fingerprints
                | "ToStoreRow" >> beam.ParDo(_ToRowFn(self._cfg, self._run_id, stored_at))
                | "WriteParquet" >> beam.io.WriteToParquet(self._prefix, SCHEMA, file_name_suffix=".parquet",
                                                           shard_name_template="-SSSSS-of-NNNNN"))


def compact(store: str, retention_days: int = 90) -> dict:
    """Rewrites the store as one file: entries within retention of the newest review in the store,
    one per review id (the earliest stored). The new file is written before the old ones are deleted."""
    files = [m.path for m in FileSystems.match([files_pattern(store)])[0].metadata_list]
    rows: List[dict] = []
    for path in files:
        with FileSystems.open(path, mime_type="application/octet-stream",
                              compression_type=CompressionTypes.UNCOMPRESSED) as handle:
            rows.extend(read_rows(handle))
    oldest = max((r["created_ts"] for r in rows), default=0.0) - retention_days * 86400
    kept: dict = {}
    expired = 0
    for row in rows:
        if row["created_ts"] < oldest:
            expired += 1
            continue
        row["arrival_ts"] = first_seen(row)
        prev = kept.get(row["review_id"])
        if prev is None or row["stored_at"] < prev["stored_at"]:
            kept[row["review_id"]] = row
    seen = len(rows)
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    target = FileSystems.join(store.rstrip("/"), "signatures", f"compacted-{stamp}.parquet")
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(sorted(kept.values(), key=lambda r: r["review_id"]), schema=SCHEMA), buffer)
    with FileSystems.create(target, mime_type="application/octet-stream",
                            compression_type=CompressionTypes.UNCOMPRESSED) as handle:
        handle.write(buffer.getvalue())
    old = [f for f in files if f != target]
    if old:
        FileSystems.delete(old)
    return {"files_before": len(files), "entries_before": seen, "expired": expired,
            "duplicates_dropped": seen - expired - len(kept), "entries_after": len(kept), "file": target}


def main(argv: Optional[Iterable[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Maintain the near-duplicate signature store.")
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("compact", help="drop expired and repeated entries; rewrite as one file")
    c.add_argument("--store", required=True, help="store prefix (local or gs://), as given to --signature_store")
    c.add_argument("--retention_days", type=int, default=90)
    args = parser.parse_args(argv)
    print(json.dumps(compact(args.store, args.retention_days)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
