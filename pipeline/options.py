"""The pipeline's own flags; every other flag is passed through to Beam (runner, project, ...)."""
from __future__ import annotations

from apache_beam.options.pipeline_options import PipelineOptions

from pipeline.transforms.parse import DEFAULT_MAX_TEXT_CHARS

DEFAULT_MAX_LINE_BYTES = 1 << 20


def _flag(value: str) -> bool:
    if str(value).lower() in ("1", "true", "yes", "on"):
        return True
    if str(value).lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true or false, got {value!r}")


class ModerationOptions(PipelineOptions):
    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument("--input", help="Input JSON Lines: a file, glob or gs:// pattern "
                            "(compressed .gz/.bz2 files are read too).")
        parser.add_argument("--output", help="Output prefix (directory or gs:// prefix) for published/, "
                            "decisions/, dead_letter/, products/, restricted/ and run_summary.json.")
        parser.add_argument("--run_date", default=None,
                            help="YYYY-MM-DD substituted for {date} in --input and --output, so a fixed "
                                 "scheduled launch reads each day's folder (default: yesterday, UTC).")
        parser.add_argument("--run_id", default=None,
                            help="Id recorded in provenance (default: run-<UTC time>-<random>). Give the "
                                 "same id when re-running a scheduled job to make its records comparable.")
        parser.add_argument("--max_line_bytes", type=int, default=DEFAULT_MAX_LINE_BYTES,
                            help="Lines longer than this become 'too_large' dead letters (default 1 MiB).")
        parser.add_argument("--max_text_chars", type=int, default=DEFAULT_MAX_TEXT_CHARS,
                            help="A title or body longer than this many characters becomes a "
                                 "'too_large' dead letter (default %(default)s).")
        parser.add_argument("--signing_key_file", default=None,
                            help="File (local or gs://) holding the HMAC key that signs published "
                                 "reviews. Default: $REVIEW_SIGNING_KEY, else the demo key.")
        parser.add_argument("--require_signing_key", type=_flag, nargs="?", const=True, default=False,
                            help="Fail instead of falling back to the demo signing key "
                                 "(also --require_signing_key=true, for template parameters).")
        parser.add_argument("--dedup", type=_flag, nargs="?", const=True, default=True,
                            help="Near-duplicate detection on (default) or off (--dedup=false).")
        parser.add_argument("--dedup_threshold", type=float, default=0.8,
                            help="Jaccard similarity at which two reviews are near-duplicates (default 0.8).")
        parser.add_argument("--dedup_num_perm", type=int, default=128,
                            help="MinHash permutations (default 128).")
        parser.add_argument("--signature_store", default=None,
                            help="Prefix (local or gs://) of the signature store that lets scheduled runs "
                                 "find copies of reviews from earlier runs; read, then appended to.")
        parser.add_argument("--signature_retention_days", type=int, default=90,
                            help="Store entries older than this are ignored and compacted away (default 90).")
        parser.add_argument("--num_shards", type=int, default=0,
                            help="Files per output directory (0: the runner decides).")
