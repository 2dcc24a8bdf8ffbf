"""What one run knows about itself: its id, the versions that decide, and the checks applied.

Built once by the launcher and shipped to workers with the transforms, so every record of a run
carries the same facts in its provenance.
"""
from __future__ import annotations

import datetime as dt
import os
import secrets
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Tuple

from pipeline import PIPELINE_NAME, __version__

SCHEMA_VERSION = "1.1.0"  # 1.1.0: review ids ending "#conflict-" + 16 hex digits are reserved (session 20)


def new_run_id() -> str:
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return f"run-{stamp}-{secrets.token_hex(3)}"


def git_commit() -> Optional[str]:
    """The source commit: $PIPELINE_COMMIT, else ``git rev-parse HEAD`` beside this package."""
    if os.environ.get("PIPELINE_COMMIT"):
        return os.environ["PIPELINE_COMMIT"]
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent,
                             capture_output=True, text=True, timeout=5, check=True)
        commit = out.stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=Path(__file__).resolve().parent, capture_output=True, text=True,
                               timeout=5).stdout.strip()
        return commit + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def check_versions() -> Tuple[Tuple[str, str], ...]:
    from importlib.metadata import version
    from pipeline.text import langid, pii
    return (
        ("schema_validation", f"review.schema.json@{SCHEMA_VERSION}"),
        ("text_cleaning", f"nfkc+nh3-{version('nh3')}"),
        ("language_id", f"lingua-{langid.version()}"),
        ("pii_redaction", pii.version()),
    )


@dataclass(frozen=True)
class RunContext:
    run_id: str
    pipeline_version: str = __version__
    commit: Optional[str] = None
    policy_id: str = "review-integrity-default"
    policy_version: str = "1.3.0"  # the packaged default policy's version
    checks: Tuple[Tuple[str, str], ...] = field(default_factory=tuple)
    input: str = ""
    output: str = ""

    @classmethod
    def create(cls, run_id: Optional[str], policy, input: str = "", output: str = "",
               commit: Optional[str] = None) -> "RunContext":
        return cls(run_id=run_id or new_run_id(), commit=commit if commit is not None else git_commit(),
                   policy_id=policy.id, policy_version=policy.version, checks=check_versions(),
                   input=input, output=output)

    def pipeline_dict(self) -> dict:
        return {"name": PIPELINE_NAME, "version": self.pipeline_version, "commit": self.commit}

    def policy_dict(self) -> dict:
        return {"id": self.policy_id, "version": self.policy_version}
