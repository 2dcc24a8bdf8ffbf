"""Probe (issue #22, session 22): Gemma 3 270M's forward pass in numpy, read straight from the GGUF file.

Since session 23 the forward pass is the product's (``pipeline.classifier.gemma.GemmaBody``, numpy
backend; the served one is its ONNX Runtime graph); this probe times it one review at a time. ``main`` checks it against transformers' ``Gemma3ForCausalLM`` on MAiDE-up
reviews (largest absolute difference of the pools) and times both on one review at a time.

    python -m research.gemma_numpy --n 32
"""
import argparse
import json
import time

import numpy as np

from pipeline.classifier import gemma


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    import torch
    from threadpoolctl import threadpool_limits
    from models import multilingual as mm
    from research import lm_perplexity as lp
    torch.set_num_threads(args.threads)
    tok, lm = lp.load_lm()
    body = gemma.GemmaBody(backend="numpy")
    m = mm.maide()
    rows = np.random.default_rng(0).choice(np.flatnonzero(np.isin(m.language, mm.SERVED)), args.n, replace=False)
    diff, t_np, t_torch, tokens = 0.0, 0.0, 0.0, 0
    with threadpool_limits(args.threads):
        for r in rows:
            ids = tok(str(m.texts[r]), truncation=True, max_length=lp.MAX_TOKENS).input_ids
            tokens += len(ids)
            t = time.perf_counter()
            a = body.pools([ids])[0]
            t_np += time.perf_counter() - t
            t = time.perf_counter()
            with torch.no_grad():
                hs = lm.model(input_ids=torch.tensor([ids]), output_hidden_states=True).hidden_states
            b = torch.cat([hs[L][0, 1:].mean(0) for L in (6, 12, 18)]).numpy()
            t_torch += time.perf_counter() - t
            diff = max(diff, float(np.abs(a - b).max()))
    print(json.dumps({"reviews": args.n, "mean_tokens": tokens / args.n, "threads": args.threads,
                      "max_abs_diff_pools": diff, "ms_per_review_numpy": 1000 * t_np / args.n,
                      "ms_per_review_torch": 1000 * t_torch / args.n}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
