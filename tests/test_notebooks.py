"""Notebooks run headless against a real run's output, so they cannot drift from the contract."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import ROOT




def execute(path: Path, env: dict) -> dict:
    """Runs every code cell of a notebook in one namespace (no Jupyter kernel needed)."""
    from pipeline.local import patched_environ
    namespace: dict = {"__name__": "__notebook__"}
    with patched_environ(env):
        for cell in json.loads(path.read_text())["cells"]:
            if cell["cell_type"] == "code":
                exec(compile("".join(cell["source"]), f"{path.name}", "exec"), namespace)  # noqa: S102
    return namespace


@pytest.mark.slow
def test_run_overview_notebook(demo_run, capsys):
    ns = execute(ROOT / "notebooks" / "run_overview.ipynb", {"RUN_OUTPUT": demo_run.prefix})
    assert ns["summary"]["conservation"]["ok"]
    assert set(ns["withheld_rate"]) == {1, 2, 3, 4, 5}
    assert "OK" in capsys.readouterr().out


@pytest.mark.parametrize("version", ["default", "2.1.0", "2.2.0", "2.3.0", "2.4.0"])
def test_classifier_metrics_notebook(tmp_path, capsys, version):
    """The classifier notebook draws its figures from a committed artifact's metrics.json (the
    default one, 2.1.0 with its Gemma generated head, 2.2.0, 2.3.0 and 2.4.0 with every head on Gemma)."""
    from pipeline.classifier import runtime
    model_dir = runtime.default_model_dir() if version == "default" else runtime.default_model_dir().parent / version
    ns = execute(ROOT / "notebooks" / "classifier_metrics.ipynb",
                 {"MODEL_DIR": str(model_dir), "FIGURES_DIR": str(tmp_path)})
    assert set(ns["figures"]) == {"score_distributions", "roc", "fpr_by_group", "maide_up_score_distributions",
                                  "maide_up_roc", "maide_up_fpr_by_sentiment"}
    for name in ns["figures"]:
        assert (tmp_path / f"{name}.png").stat().st_size > 5000
    assert set(ns["fpr_table"]) == set(ns["thresholds"]) == {"lower", "upper"}
    out = capsys.readouterr().out
    assert "fake-reviews test accuracy" in out and "Ott" in out
    # per language (2.0.0): real negative vs real positive reviews flagged, at both thresholds
    assert {"en", "ko", "zh"} <= set(ns["fpr_by_sentiment"])
    assert set(ns["fpr_by_sentiment"]["ko"]) == {"lower", "upper"} and "ko: accuracy" in out
