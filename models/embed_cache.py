"""Computes frozen MiniLM sentence vectors for the training datasets once, into .cache/ (not git).

``python -m models.embed_cache`` (run by ``make train`` when the cache is missing).
"""
from __future__ import annotations

import argparse
import hashlib
import time

import numpy as np

from models import common, encoder


def cache_path(name: str, texts, max_len: int):
    h = hashlib.sha256(("\x00".join(texts) + f"|{max_len}|{encoder.BASE_PACKAGE_VERSION}").encode()).hexdigest()[:16]
    return common.CACHE / f"{name}-{h}.npy"


def embeddings(name: str, texts, max_len: int = encoder.MAX_LEN, threads: int = 1):
    path = cache_path(name, texts, max_len)
    if path.exists():
        return np.load(path)
    import torch
    torch.set_num_threads(threads)
    t0 = time.time()
    vecs = encoder.embed_torch(texts, max_len=max_len, log_every=500)
    print(f"{name}: {len(texts)} texts in {time.time() - t0:.0f}s", flush=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, vecs)
    return vecs


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    embeddings("ott", [r["text"] for r in common.ott()], threads=args.threads)
    embeddings("fake-reviews", [r["text"] for r in common.fake_reviews()], threads=args.threads)


if __name__ == "__main__":
    main()
