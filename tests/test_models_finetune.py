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


def test_served_windows_are_the_trained_windows_and_embeddings_average_them(tmp_path):
    """runtime (tokenizers only, no torch) cuts the same windows as finetune.chunk_tokens (transformers)
    and embeds a text as the mean of its windows' embeddings."""
    import json
    import shutil

    import numpy as np

    from pipeline.classifier import integrity, runtime
    art = runtime.default_model_dir()
    for f in art.iterdir():
        shutil.copy2(f, tmp_path / f.name)
    config = json.loads((art / "config.json").read_text())
    config["encoder"]["windows"] = {"tokens": 64, "overlap": 16}
    config["version"] += "-windows-test"   # a changed model is another version (pipeline.classifier.integrity)
    (tmp_path / "config.json").write_text(json.dumps(config))
    integrity.seal(tmp_path, pin=False)
    clf = runtime.load(tmp_path)
    long = " ".join(f"word{i}" for i in range(200))
    texts = ["Short review, one window.", long]
    served = clf.tokenize_windows(texts)
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast
    # the same tokenizer file, driven through transformers as models.finetune trained with it
    hf = PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(
        runtime.read_text_file(art / config["tokenizer"])))
    ids, _, owner = finetune.chunk_tokens(hf, texts, chunk=64, overlap=16)
    assert [w for ws in served for w in ws] == [list(x) for x in ids]
    assert [len(ws) for ws in served] == [owner.count(0), owner.count(1)] and len(served[1]) > 2
    per_window = np.concatenate([clf.embed_ids([w]) for w in served[1]])
    assert np.allclose(clf.embed([long])[0], per_window.mean(0), atol=1e-5)
    # without "windows" the same artifact truncates to one window of max_len
    del config["encoder"]["windows"]
    (tmp_path / "config.json").write_text(json.dumps(config))
    integrity.seal(tmp_path, pin=False)
    one = runtime.load(tmp_path).tokenize_windows([long])[0]
    assert len(one) == 1 and len(one[0]) == min(config["encoder"]["max_len"], len(hf(long)["input_ids"]))


def test_gated_max_head_takes_the_gated_detector_only_where_the_gate_opens():
    import numpy as np

    from pipeline.classifier import runtime

    def head(coef, intercept=0.0):   # a linear head on a 2-d embedding, no lexical part, identity calibration
        return {"embedding": {"mean": [0.0, 0.0], "scale": [1.0, 1.0], "coef": coef}, "intercept": intercept,
                "calibration": {"a": 1.0, "b": 0.0}}
    spec = {"kind": "gated_max", "gate_at": 0.5, "always": head([1.0, 0.0]), "gated": head([0.0, 1.0]),
            "gate": head([0.0, 0.0], 0.0)}
    x = np.array([[-2.0, 3.0], [2.0, -3.0]])
    open_gate = runtime.make_head({**spec, "gate": head([0.0, 0.0], 5.0)}).probability(x, ["", ""])
    closed_gate = runtime.make_head({**spec, "gate": head([0.0, 0.0], -5.0)}).probability(x, ["", ""])
    sig = runtime.sigmoid
    assert np.allclose(open_gate, [sig(3.0), sig(2.0)])      # max of both detectors
    assert np.allclose(closed_gate, [sig(-2.0), sig(2.0)])   # the always-on detector alone
    assert isinstance(runtime.make_head(head([1.0, 0.0])), runtime.Head)


def test_pruned_vocabulary_keeps_segmentation_of_kept_pieces_and_their_embedding_rows(tmp_path):
    """onnx_export.prune_vocabulary on a tiny Unigram tokenizer + BertModel: kept pieces keep their
    embedding rows (renumbered), removed words fall back to single characters, never <unk>."""
    import json

    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import BertConfig, BertModel

    from models import onnx_export
    special = [("<s>", 0.0), ("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    chars = [(c, -5.0) for c in "\u2581abcdexyz"]
    words = [("\u2581ab", -2.0), ("\u2581abc", -1.0), ("cd", -2.5), ("\u2581de", -1.5), ("\u2581xyz", -1.0),
             ("\u2581xy", -2.0)]
    vocab = special + chars[:4] + words[:3] + chars[4:] + words[3:]
    tok = Tokenizer(models.Unigram(vocab, unk_id=3, byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    tok.post_processor = processors.TemplateProcessing(single="<s> $A </s>", special_tokens=[("<s>", 0), ("</s>", 2)])
    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    tok.save(str(src / "tokenizer.json"))
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=len(vocab), hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=16, pad_token_id=1)).save_pretrained(str(src))
    (src / "head.pt").write_bytes(b"fine-tuned head")

    keep = onnx_export.english_pieces(src / "tokenizer.json", ["abc de"], word_list=[])
    kept = {vocab[i][0] for i in keep}
    assert {"\u2581abc", "\u2581de", "<s>", "<unk>", "x", "y", "z"} <= kept and "\u2581xyz" not in kept
    stats = onnx_export.prune_vocabulary(src, keep, out)
    assert stats == {"pieces": len(keep), "of": len(vocab)}

    before, after = Tokenizer.from_file(str(src / "tokenizer.json")), Tokenizer.from_file(str(out / "tokenizer.json"))
    assert after.encode("abc de").tokens == before.encode("abc de").tokens == ["<s>", "\u2581abc", "\u2581de", "</s>"]
    assert after.encode("xyz").tokens == ["<s>", "\u2581", "x", "y", "z", "</s>"]   # finer, no <unk>
    assert after.encode("abc").ids[0] == 0 and after.encode("abc").ids[-1] == 2      # specials keep ids 0 and 2
    e_before = BertModel.from_pretrained(str(src)).get_input_embeddings().weight
    e_after = BertModel.from_pretrained(str(out)).get_input_embeddings().weight
    assert e_after.shape[0] == len(keep)
    for new_id, old_id in enumerate(keep):
        assert torch.equal(e_after[new_id], e_before[old_id])
    assert (out / "head.pt").read_bytes() == b"fine-tuned head"
    assert json.loads((out / "config.json").read_text())["vocab_size"] == len(keep)


def test_early_exit_pieces_equal_the_uncut_graph_and_run_the_rest_only_where_asked(tmp_path):
    """onnx_export.split_at_layer on a tiny 3-layer BertModel exported with every layer's pool, fused
    and int8: the two pieces' embeddings concatenated are exactly the uncut graph's, the pieces share no
    weight (only scalar constants), and runtime serves them (``encoder.rest``): a text not sent
    deep gets the first piece's pools and zeros for the rest."""
    import json

    import numpy as np
    import onnx
    import onnxruntime as ort
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import BertConfig, BertModel

    from models import onnx_export
    from pipeline.classifier import integrity, runtime
    vocab = [("<s>", 0.0), ("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)] + [(c, -3.0) for c in "\u2581abcdefgh"]
    tok = Tokenizer(models.Unigram(vocab, unk_id=3, byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.post_processor = processors.TemplateProcessing(single="<s> $A </s>", special_tokens=[("<s>", 0), ("</s>", 2)])
    src = tmp_path / "src"
    src.mkdir()
    tok.save(str(src / "tokenizer.json"))
    torch.manual_seed(0)
    model = BertModel(BertConfig(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=3, num_attention_heads=2,
                                 intermediate_size=32, pad_token_id=1))
    for p in model.parameters():   # no zero biases: the optimizer would merge identical initializers
        torch.nn.init.normal_(p, std=0.2)
    model.save_pretrained(str(src))
    fp32 = onnx_export.export_pooled_encoder(src, tmp_path / "fused.onnx", all_layers=True)
    uncut = onnx_export.quantize_int8(fp32, tmp_path / "int8.onnx")
    art = tmp_path / "art"
    art.mkdir()
    info = onnx_export.split_at_layer(uncut, 1, art / "first.onnx", art / "rest.onnx")
    first, rest = onnx.load(str(art / "first.onnx")), onnx.load(str(art / "rest.onnx"))
    shared = {t.name for t in first.graph.initializer} & {t.name for t in rest.graph.initializer}
    assert all(onnx.numpy_helper.to_array(t).size <= 4 for t in rest.graph.initializer if t.name in shared), shared
    assert [i.name for i in rest.graph.input] == info["carry"]

    ids = np.array([[0, 5, 6, 7, 8, 2, 1, 1], [0, 9, 10, 11, 5, 6, 7, 2]], dtype=np.int64)
    mask = (ids != 1).astype(np.int64)
    session = ort.InferenceSession(str(uncut))   # one text per call, as served (int8 scales are per tensor)
    want = np.vstack([session.run(None, {"input_ids": x[None, m == 1], "attention_mask": m[None, m == 1]})[0]
                      for x, m in zip(ids, mask)])
    assert want.shape == (2, 4 * 16)
    (art / "tokenizer.json").write_bytes((src / "tokenizer.json").read_bytes())
    (art / "head.json").write_text(json.dumps({"embedding": {"mean": [], "scale": [], "coef": []}, "columns": [0, 0],
                                               "intercept": 0.0, "calibration": {"a": 1.0, "b": 0.0}}))
    (art / "config.json").write_text(json.dumps({
        "name": "t", "version": "0", "languages": ["en"], "thresholds": {"lower": 0.5, "upper": 0.9},
        "encoder": {"file": "first.onnx", "rest": "rest.onnx", "max_len": 32}, "tokenizer": "tokenizer.json",
        "head": "head.json", "files": []}))
    integrity.seal(art, pin=False)
    clf = runtime.load(art)
    got = np.vstack([clf.embed_ids([list(x[m == 1])]) for x, m in zip(ids, mask)])
    assert np.array_equal(got, want)
    shallow = clf.embed(["abc", "defgh"], deep=[False, True])
    deep = clf.embed(["abc", "defgh"])
    assert np.array_equal(shallow[0, 32:], np.zeros(32)) and np.allclose(shallow[0, :32], deep[0, :32])
    assert np.allclose(shallow[1], deep[1])


def test_weighted_cross_entropy_weights_each_example_and_defaults_to_the_plain_mean():
    """--negative-weight: a review's loss counts w times; weight 1 everywhere is the unweighted loss."""
    import torch
    torch.manual_seed(0)
    logits, y = torch.randn(3, 2), torch.tensor([0, 1, 1])
    each = torch.nn.functional.cross_entropy(logits, y, reduction="none")
    plain = finetune.weighted_cross_entropy(logits, y)
    assert torch.isclose(plain, each.mean())
    assert torch.isclose(finetune.weighted_cross_entropy(logits, y, torch.ones(3)), plain)
    assert torch.isclose(finetune.weighted_cross_entropy(logits, y, torch.tensor([2.0, 1.0, 0.0])),
                         (2 * each[0] + each[1]) / 3)
    assert not torch.isclose(finetune.weighted_cross_entropy(logits, y, torch.tensor([2.0, 1.0, 0.0])), plain)
