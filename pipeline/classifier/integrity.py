"""What a classifier version means, checked before it scores anything.

A decision's ``fake_classifier`` signal names the model by ``name/version``. For that name to say
what scored the review, the files behind it must be the ones released under it: a hand-edited
threshold or cascade bound in ``config.json``, a swapped head, or a bucket copy on ``gs://`` that
drifted would otherwise score under the same name.

- ``SHA256SUMS`` in the artifact folder lists the SHA-256 of every file the runtime reads
  (``config.json`` and its ``files``, except ``metrics.json`` and ``MODEL_CARD.md``, which
  document the model and do not change a score). The loader recomputes them and refuses a
  mismatch (:class:`ArtifactIntegrityError`, naming the file).
- ``pipeline/classifier/pinned_artifacts.json`` (in the code, so in git and in the worker package)
  pins the SHA-256 of each released version's ``SHA256SUMS``. An artifact whose name/version is
  pinned must match the pin: editing a file and re-sealing under the same version is refused too.
  A version that is not pinned (a research variant, a test) loads after its own ``SHA256SUMS``
  checks out, with a warning that nothing pins it.

Writers (``models.train``, ``models.multilingual``, ``models.cascade``) seal what they write:
``seal(dir)`` writes ``SHA256SUMS`` and pins the version. By hand::

    python -m pipeline.classifier.integrity verify DIR
    python -m pipeline.classifier.integrity seal DIR [--no-pin]
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import sys
from pathlib import Path
from typing import Dict, List, Optional

LOG = logging.getLogger(__name__)
SUMS = "SHA256SUMS"
PINNED = Path(__file__).resolve().parent / "pinned_artifacts.json"
DOCUMENTATION = ("metrics.json", "MODEL_CARD.md")


class ArtifactIntegrityError(RuntimeError):
    """The artifact's files are not the ones sealed (or pinned) for its name and version."""


def sealed_files(config: dict) -> List[str]:
    """What the runtime reads: config.json and its listed files, documentation aside."""
    return ["config.json", *(f for f in config.get("files", []) if f not in DOCUMENTATION)]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _sums_text(art: Path, config: dict) -> str:
    return "".join(f"{_sha256(art / name)}  {name}\n" for name in sealed_files(config))


def _key(config: dict) -> str:
    return f'{config["name"]}/{config["version"]}'


def pinned() -> Dict[str, str]:
    return json.loads(PINNED.read_text()) if PINNED.exists() else {}


def seal(art, pin: bool = True) -> str:
    """Writes ``SHA256SUMS`` for the artifact in ``art``; with ``pin``, records its digest for the
    artifact's name/version in ``pinned_artifacts.json``. Returns that digest."""
    art = Path(art)
    config = json.loads((art / "config.json").read_text())
    text = _sums_text(art, config)
    (art / SUMS).write_text(text)
    digest = hashlib.sha256(text.encode()).hexdigest()
    if pin:
        table = pinned()
        table[_key(config)] = digest
        PINNED.write_text(json.dumps(dict(sorted(table.items())), indent=1) + "\n")
    return digest


def verify(art, config: Optional[dict] = None) -> str:
    """Checks every sealed file of the artifact in the local folder ``art`` against its
    ``SHA256SUMS``, and that list against the pin for its name/version. Returns the digest of
    ``SHA256SUMS`` (what identifies the artifact's content); raises ArtifactIntegrityError."""
    art = Path(art)
    config = config if config is not None else json.loads((art / "config.json").read_text())
    key = _key(config)
    sums = art / SUMS
    if not sums.exists():
        raise ArtifactIntegrityError(
            f"{key} at {art} has no {SUMS}: nothing says these files are the released ones. A model "
            f"written by hand or by an older trainer: seal it with `python -m pipeline.classifier.integrity "
            f"seal {art} --no-pin` (and give it a version of its own if its files were changed).")
    text = sums.read_text()
    digest = hashlib.sha256(text.encode()).hexdigest()
    expected = {}
    for line in text.splitlines():
        if line.strip():
            sha, name = line.split(None, 1)
            expected[name.strip()] = sha
    problems = []
    for name in sealed_files(config):
        if name not in expected:
            problems.append(f"{name} is read by the runtime but not listed in {SUMS}")
        elif not (art / name).exists():
            problems.append(f"{name} is missing")
        elif _sha256(art / name) != expected[name]:
            problems.append(f"{name} differs from its sealed SHA-256 {expected[name][:16]}…")
    if problems:
        raise ArtifactIntegrityError(
            f"{key} at {art} is not the artifact sealed under that name: " + "; ".join(problems)
            + ". Restore the released files, or release the change as a new version (write it with the "
            "trainer, or `python -m pipeline.classifier.integrity seal DIR` after changing its version).")
    pin = pinned().get(key)
    if pin is None:
        LOG.warning("Classifier %s at %s is not pinned in %s: its files match its own %s only", key, art,
                    PINNED.name, SUMS)
    elif pin != digest:
        raise ArtifactIntegrityError(
            f"{key} at {art} was re-sealed with other files: its {SUMS} has SHA-256 {digest[:16]}…, the "
            f"version released in this code is pinned to {pin[:16]}… ({PINNED.name}). A changed model "
            "needs a version of its own.")
    return digest


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Seal or verify a classifier artifact's files (SHA256SUMS).")
    ap.add_argument("command", choices=("seal", "verify"))
    ap.add_argument("artifact", type=Path)
    ap.add_argument("--no-pin", action="store_true", help="seal without pinning the version in the code")
    args = ap.parse_args(argv)
    try:
        digest = seal(args.artifact, pin=not args.no_pin) if args.command == "seal" else verify(args.artifact)
    except (ArtifactIntegrityError, FileNotFoundError, KeyError) as exn:
        print(f"error: {exn}", file=sys.stderr)
        return 1
    print(json.dumps({"artifact": str(args.artifact), "sha256": digest}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
