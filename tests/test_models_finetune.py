"""Training helpers that decide what the encoder sees (no training runs here)."""
from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from models import encoder, finetune  # noqa: E402


def test_chunk_tokens_cover_each_whole_text_in_bounded_windows():
    tok = encoder.load_tokenizer()
    long = " ".join(f"word{i}" for i in range(300))
    texts = ["Short review, one window.", long, "Another short one."]
    ids, am, owner = finetune.chunk_tokens(tok, texts, chunk=64, overlap=16)
    assert owner[0] == 0 and owner[-1] == 2 and owner == sorted(owner)
    assert owner.count(0) == 1 and owner.count(2) == 1 and owner.count(1) > 2
    cls, sep = tok.cls_token_id, tok.sep_token_id
    for window, mask in zip(ids, am):
        assert len(window) <= 64 and window[0] == cls and window[-1] == sep and sum(mask) == len(window)
    # the long text's windows, overlaps removed, are exactly its untruncated tokens
    full = tok(long)["input_ids"][1:-1]
    pieces = [w[1:-1] for w, o in zip(ids, owner) if o == 1]
    rebuilt = pieces[0] + [t for p in pieces[1:] for t in p[16:]]
    assert rebuilt == full
