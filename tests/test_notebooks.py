"""Notebooks run headless against a real run's output, so they cannot drift from the contract."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow


def execute(path: Path, env: dict) -> dict:
    """Runs every code cell of a notebook in one namespace (no Jupyter kernel needed)."""
    from pipeline.local import patched_environ
    namespace: dict = {"__name__": "__notebook__"}
    with patched_environ(env):
        for cell in json.loads(path.read_text())["cells"]:
            if cell["cell_type"] == "code":
                exec(compile("".join(cell["source"]), f"{path.name}", "exec"), namespace)  # noqa: S102
    return namespace


def test_run_overview_notebook(demo_run, capsys):
    ns = execute(ROOT / "notebooks" / "run_overview.ipynb", {"RUN_OUTPUT": demo_run.prefix})
    assert ns["summary"]["conservation"]["ok"]
    assert set(ns["withheld_rate"]) == {1, 2, 3, 4, 5}
    assert "OK" in capsys.readouterr().out
