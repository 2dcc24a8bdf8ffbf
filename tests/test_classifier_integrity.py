"""A classifier version names its files: an edited threshold, cascade bound or head under the same
name/version is refused before it scores (pipeline/classifier/integrity.py)."""
from __future__ import annotations

import json
import shutil

import pytest

from pipeline.classifier import integrity, runtime

ART = runtime.default_model_dir()


@pytest.fixture
def copy(tmp_path):
    dst = tmp_path / ART.name
    shutil.copytree(ART, dst)
    return dst


def _edit_config(art, change):
    cfg = json.loads((art / "config.json").read_text())
    change(cfg)
    (art / "config.json").write_text(json.dumps(cfg, indent=1))


def test_the_packaged_artifact_is_sealed_and_pinned():
    cfg = json.loads((ART / "config.json").read_text())
    digest = integrity.verify(ART)
    assert integrity.pinned()[f'{cfg["name"]}/{cfg["version"]}'] == digest
    # everything the runtime reads is sealed; the card and metrics document it
    listed = [line.split()[1] for line in (ART / integrity.SUMS).read_text().splitlines()]
    assert listed == integrity.sealed_files(cfg) and "head.json.xz" in listed and "MODEL_CARD.md" not in listed
    assert runtime.load(ART).artifact_sha256 == digest


def _widen_bounds(cfg):   # every cascade bound very negative: the encoder skipped for everything (fakes pass)
    for part in cfg["cascade"].values():
        for det in part["detectors"].values():
            det["bound"] = -50.0


@pytest.mark.parametrize("tamper", [
    lambda art: _edit_config(art, _widen_bounds),
    lambda art: _edit_config(art, lambda c: c["thresholds"].update(lower=0.99)),
    lambda art: _edit_config(art, lambda c: c["languages"].append("ja")),
    lambda art: (art / "head.json.xz").write_bytes((art / "head.json.xz").read_bytes()[:-1] + b"\0"),
    lambda art: (art / "encoder-rest.onnx").unlink(),
], ids=["cascade-bounds", "threshold", "languages", "head", "missing-encoder"])
def test_an_edited_artifact_is_refused_under_its_released_version(copy, tamper):
    tamper(copy)
    with pytest.raises(integrity.ArtifactIntegrityError, match="fake-review-classifier/2.0.1"):
        runtime.load(copy)


def test_resealing_an_edit_under_the_same_version_is_refused_by_the_pin(copy):
    _edit_config(copy, _widen_bounds)
    integrity.seal(copy, pin=False)    # its own SHA256SUMS now agrees with it...
    with pytest.raises(integrity.ArtifactIntegrityError, match="pinned"):
        runtime.load(copy)             # ...but not with the version this code released


def test_a_change_released_as_a_version_of_its_own_loads(copy, caplog):
    _edit_config(copy, lambda c: c.update(version="2.0.1-research"))
    with pytest.raises(integrity.ArtifactIntegrityError):
        runtime.load(copy)              # the old SHA256SUMS no longer matches config.json
    integrity.seal(copy, pin=False)
    clf = runtime.load(copy)
    assert clf.version.endswith("/2.0.1-research") and "not pinned" in caplog.text


def test_no_sums_no_model(copy):
    (copy / integrity.SUMS).unlink()
    with pytest.raises(integrity.ArtifactIntegrityError, match="no SHA256SUMS"):
        runtime.load(copy)


def test_documentation_edits_do_not_stop_serving(copy):
    (copy / "MODEL_CARD.md").write_text((copy / "MODEL_CARD.md").read_text() + "\nA note.\n")
    assert runtime.load(copy).artifact_sha256 == integrity.verify(ART)


def test_command_line_verify_names_the_file(copy, capsys):
    _edit_config(copy, lambda c: c["thresholds"].update(upper=0.5))
    assert integrity.main(["verify", str(copy)]) == 1
    assert "config.json differs" in capsys.readouterr().err
    assert integrity.main(["verify", str(ART)]) == 0
