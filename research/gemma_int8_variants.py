"""Probe (issue #22/#23, session 25): which 8-bit Gemma pass is faster than 2.3.0's and still serves its bands?

2.3.0's pass re-quantises every projection to 8 bits in blocks of 32 (ONNX Runtime MatMulNBits,
accuracy level 4): 1.2x float32 on this CPU, ~82% of the pass's time still in MatMulNBits (ORT
profile). Gemma's projection inputs carry a few channels 10-100x larger than the rest (layer 0's
attention input: max 280 against a 99th percentile of 65), which wide activation blocks or one scale
per tensor cannot hold. This compares, on the same texts:

* ``b32``: 2.3.0's pass; ``b128``: blocks of 128; ``b128-smooth``: blocks of 128 after SmoothQuant
  factors (alpha 0.5, from ``models.multilingual_kinds.calibration_texts``) are folded into the weights;
* ``dynamic`` / ``dynamic-smooth``: ONNX Runtime's DynamicQuantizeMatMul (8-bit weights per output
  column, activations quantised with one scale per tensor: a whole batch), without and with the factors.

For each: the largest, 99th-percentile and mean probability difference and the band changes of 2.3.0's heads against the
build's float32 figures on ``--n`` seeded texts (``models.multilingual_kinds check``'s sample), and the
pass's milliseconds per review on 96 English product reviews (fake-reviews test, 2 threads).

    python -m research.gemma_int8_variants [--n 400]     # ~6 min on 2 cores
"""
import argparse
import json
import time

import numpy as np

from models import common, multilingual_gemma as mg, multilingual_kinds as mk
from pipeline.classifier import gemma, runtime

ART = common.ARTIFACTS / "fake-review-classifier" / "2.3.0"


def dynamic_graph(W: dict, layers) -> bytes:
    """The float32 graph with every projection's MatMul replaced by DynamicQuantizeMatMul."""
    import onnx
    from onnx import helper, numpy_helper
    m = onnx.load_from_string(gemma.graph(W, False, layers))
    inits = {i.name: i for i in m.graph.initializer}
    nodes = []
    for nd in m.graph.node:
        name = nd.input[1] if nd.op_type == "MatMul" else ""
        if name.endswith(".weight") and name in W:
            w = W[name]
            scale = np.abs(w).max(0) / 127.0
            scale[scale == 0] = 1.0
            del inits[name]
            for suffix, arr in ((".q", np.clip(np.round(w / scale), -127, 127).astype(np.int8)),
                                (".s", scale.astype(np.float32)), (".z", np.zeros(w.shape[1], np.int8))):
                inits[name + suffix] = numpy_helper.from_array(arr, name + suffix)
            nodes.append(helper.make_node("DynamicQuantizeMatMul", [nd.input[0], name + ".q", name + ".s", name + ".z"],
                                          list(nd.output), domain="com.microsoft"))
        else:
            nodes.append(nd)
    del m.graph.node[:]
    m.graph.node.extend(nodes)
    del m.graph.initializer[:]
    m.graph.initializer.extend(inits.values())
    m.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    return m.SerializeToString()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=400)
    ap.add_argument("--variants", default="b32,b128,b128-smooth,dynamic,dynamic-smooth")
    args = ap.parse_args(argv)
    s = mk.sliced_sets((6, 12))
    factors = mk.smoothing(s, (6, 12))
    texts, G = mg.spot_sample(s, args.n)
    spec = runtime.read_head_spec(ART / "head.json.xz")
    built = mk.served(spec["english"], spec["generated"], texts, G)
    product = [r["text"] for r in common.fake_reviews() if r["split"] == "test"][:96]
    clf = runtime.load(ART, threads=2, use_cascade=False)
    ids = clf.gemma_tokenizer(product)
    variants = {"b32": dict(weights="int8"), "b128": dict(weights="int8", int8_block=128),
                "b128-smooth": dict(weights="int8", int8_block=128, smoothing=factors),
                "dynamic": dict(dynamic=True), "dynamic-smooth": dict(dynamic=True, smoothing=factors)}
    out = {}
    for name, kw in ((k, variants[k]) for k in args.variants.split(",")):
        dynamic = kw.pop("dynamic", False)
        if dynamic:   # the float32 body with its graph swapped for the dynamic one
            body = gemma.GemmaBody(layers=(6, 12), threads=2, **kw)
            import onnxruntime as ort
            so = ort.SessionOptions()
            so.intra_op_num_threads, so.inter_op_num_threads = 2, 1
            W = gemma.GemmaBody(layers=(6, 12), backend="numpy").W
            W = gemma.smooth(W, kw["smoothing"]) if "smoothing" in kw else W
            session = ort.InferenceSession(dynamic_graph(W, (6, 12)), so, providers=["CPUExecutionProvider"])
            body.stages = [(0, session, (6, 12))]
        else:
            body = gemma.GemmaBody(layers=(6, 12), threads=2, **kw)
        clf.gemma = body
        r = mg.served_against_built(clf, texts, built)
        diff = np.abs(clf.predict_proba([str(t) for t in texts]) - built)
        body.pools(ids[:8])
        t0 = time.perf_counter()
        body.pools(ids)
        out[name] = {"max_abs_difference": round(r["max_abs_difference"], 4), "band_changes": r["band_changes"],
                     "mean_abs_difference": round(float(diff.mean()), 5),
                     "p99_abs_difference": round(float(np.quantile(diff, 0.99)), 4),
                     "n": r["n"], "pass_ms_per_product_review": round(1000 * (time.perf_counter() - t0) / len(ids), 1)}
        print(json.dumps({name: out[name]}), flush=True)
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
