"""Issue #20 §3, keys: a bad key is an error before any input is read, never the demo key."""
from __future__ import annotations

import pytest

from pipeline import signing
from pipeline.run import main
from tests.conftest import DEMO_INPUT


@pytest.mark.parametrize("env_key, key_file, require, message", [
    (None, None, True, "no signing key"),
    ("", None, False, "at least 32 bytes"),
    ("short", None, True, "at least 32 bytes"),
    (None, "", False, "at least 32 bytes"),          # an empty key file
    (None, "x" * 31, True, "at least 32 bytes"),
    (None, "missing", True, "signing key"),          # a key file that is not there
])
def test_a_bad_or_missing_required_key_stops_the_job_before_reading_input(
        tmp_path, monkeypatch, capsys, env_key, key_file, require, message):
    monkeypatch.delenv(signing.ENV_KEY, raising=False)
    if env_key is not None:
        monkeypatch.setenv(signing.ENV_KEY, env_key)
    args = ["--input", str(DEMO_INPUT), "--output", str(tmp_path / "out")]
    if key_file is not None:
        path = tmp_path / "key"
        if key_file != "missing":
            path.write_text(key_file)
        args += ["--signing_key_file", str(path)]
    if require:
        args.append("--require_signing_key")
    assert main(args) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists(), "nothing may be read or written with a bad key"
