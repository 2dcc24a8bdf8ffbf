"""Exports an encoder (base or fine-tuned) with mean pooling to ONNX, fuses it, then quantises it to int8.

The graph takes ``input_ids`` and ``attention_mask`` (int64, batch × length, both dynamic) and
returns ``embedding`` (batch × 384, the attention-masked mean of the last hidden states).

Steps (training time only; ``onnx`` comes with the ``[train]`` extra):

1. ``torch.onnx.export`` of the encoder loaded with ``attn_implementation="eager"``: the plain
   softmax(QKᵀ)V attention pattern that ONNX Runtime's transformer optimizer recognises (the
   default SDPA export with transformers 5's mask code is not matched, and leaves ~900 small nodes).
2. ``onnxruntime.transformers.optimizer`` (model type ``bert``, 12 heads, hidden 384) fuses it into
   EmbedLayerNormalization, 6 Attention, 6 BiasGelu and 12 SkipLayerNormalization nodes.
3. ONNX Runtime dynamic int8 with per-channel weights (closer to fp32 than per-tensor, as
   measured on this project's 2-core CPU): the fused ops become QEmbedLayerNormalization / QAttention /
   MatMulInteger. Accuracy is re-measured on the quantised graph that is served, never assumed.

``fused=False`` gives the 1.0.0 graph (SDPA export, no fusion) for comparisons.
"""
from __future__ import annotations

import json
from pathlib import Path

NUM_HEADS, HIDDEN, LAYERS = 12, 384, 6  # all-MiniLM-L6-v2 (other encoders: read from their config.json)


def export_pooled_encoder(encoder_dir, out_path, opset: int = 17, fused: bool = True,
                          all_layers: bool = False) -> Path:
    """``all_layers``: ``embedding`` is the concatenation of the mean pools of every hidden state
    (the embedding output and each layer, (L + 1) × hidden wide; the last block is the usual one)."""
    import torch
    from transformers import AutoModel

    base = AutoModel.from_pretrained(str(encoder_dir), attn_implementation="eager" if fused else None).eval()

    class Pooled(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = base

        def forward(self, input_ids, attention_mask):
            out = self.encoder(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=all_layers)
            mask = attention_mask.unsqueeze(-1).to(out.last_hidden_state.dtype)
            denom = mask.sum(1).clamp(min=1e-9)
            states = out.hidden_states if all_layers else (out.last_hidden_state,)
            return torch.cat([(h * mask).sum(1) / denom for h in states], dim=-1)

    model = Pooled().eval()
    ids = torch.ones((2, 16), dtype=torch.long)
    mask = torch.ones((2, 16), dtype=torch.long)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    raw = out_path.with_name(out_path.stem + "-unfused.onnx") if fused else out_path
    with torch.inference_mode():
        torch.onnx.export(model, (ids, mask), str(raw), dynamo=False, opset_version=opset,
                          input_names=["input_ids", "attention_mask"], output_names=["embedding"],
                          dynamic_axes={"input_ids": {0: "batch", 1: "seq"},
                                        "attention_mask": {0: "batch", 1: "seq"},
                                        "embedding": {0: "batch"}})
    if fused:
        cfg = base.config
        fuse(raw, out_path, cfg.num_attention_heads, cfg.hidden_size, cfg.num_hidden_layers)
    return out_path


def fuse(in_path, out_path, num_heads: int = NUM_HEADS, hidden: int = HIDDEN, layers: int = LAYERS) -> dict:
    """ONNX Runtime's BERT fusions; raises if the attention layers were not all fused."""
    from onnxruntime.transformers import optimizer
    opt = optimizer.optimize_model(str(in_path), model_type="bert", num_heads=num_heads, hidden_size=hidden,
                                   opt_level=1)
    stats = {k: v for k, v in opt.get_fused_operator_statistics().items() if v}
    if stats.get("Attention", 0) != layers:
        raise RuntimeError(f"attention fusion failed: {stats}")
    opt.save_model_to_file(str(out_path))
    return stats


def quantize_int8(fp32_path, int8_path, ffn_out_weight_only: bool = False) -> Path:
    """Dynamic int8 (per-channel weights, per-tensor activations) of every MatMul, attention and
    embedding. ``ffn_out_weight_only``: the feed-forward output projections instead become 8-bit
    ``MatMulNBits`` (symmetric blocks of 128, activations quantised per block): their input, the GELU
    output, has outlier channels that a per-tensor activation scale cannot hold. Measured on the
    Ott fold-0 e5 encoder (12 layers): all dynamic int8 0.859 against fp32 0.897; each group left in
    fp32 in turn locates the loss (attention output 0.856, FFN in 0.863, FFN out 0.894); this mixed
    graph 0.900 at the same size (28.3 MB), ~25% slower than all-dynamic on this CPU."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        source = str(fp32_path)
        if ffn_out_weight_only:
            from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer
            model = onnx.load(source)
            others = [n.name for n in model.graph.node if n.op_type == "MatMul" and not _is_ffn_out(n.name)]
            quantizer = MatMulNBitsQuantizer(model, bits=8, block_size=128, is_symmetric=True, accuracy_level=4,
                                             nodes_to_exclude=others)
            quantizer.process()
            source = str(Path(tmp) / "ffn-out-8bit.onnx")
            quantizer.model.save_model_to_file(source, use_external_data_format=False)
        quantize_dynamic(source, str(int8_path), weight_type=QuantType.QInt8, per_channel=True,
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})  # fused ops lack types
    return Path(int8_path)


def _is_ffn_out(node_name: str) -> bool:
    """A BERT layer's feed-forward output projection (``layer.N/output/dense``, not attention's)."""
    return "/output/dense/" in node_name and "/attention/" not in node_name


# -- vocabulary pruning (a multilingual encoder served for English only) ---------------------------

def english_pieces(tokenizer_json, texts, word_list) -> list:
    """Ids of the pieces an English artifact keeps: the special pieces, every single-character piece
    (so any text still tokenises without <unk>), and every piece used by ``texts`` (the training
    texts) or by the words of ``word_list`` (an English word list, e.g. MiniLM's WordPiece words)."""
    from tokenizers import Tokenizer
    spec = json.loads(Path(tokenizer_json).read_text(encoding="utf-8"))
    vocab = spec["model"]["vocab"]
    keep = {i for i, (piece, _score) in enumerate(vocab)
            if len(piece.replace("\u2581", "")) <= 1 or (piece.startswith("<") and piece.endswith(">"))}
    keep.add(spec["model"]["unk_id"])
    keep.update(t["id"] for t in spec.get("added_tokens", []))
    tok = Tokenizer.from_str(json.dumps(spec))
    for enc in tok.encode_batch(list(texts) + [" " + w for w in word_list], add_special_tokens=False):
        keep.update(enc.ids)
    return sorted(keep)


def prune_vocabulary(encoder_dir, keep_ids, out_dir) -> dict:
    """A copy of a transformers encoder directory (Unigram ``tokenizer.json``) whose word embeddings
    and tokenizer hold only ``keep_ids``, renumbered in order. Pieces removed are no longer
    produced: the Unigram tokenizer segments words with the pieces that remain (finer, never
    <unk> while every single character is kept). Other files (the fine-tuned ``head.pt``) are copied."""
    import shutil
    import torch
    from transformers import AutoModel
    src, out = Path(encoder_dir), Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    keep = sorted(set(int(i) for i in keep_ids))
    remap = {old: new for new, old in enumerate(keep)}
    spec = json.loads((src / "tokenizer.json").read_text(encoding="utf-8"))
    if spec["model"]["type"] != "Unigram":
        raise ValueError(f"vocabulary pruning needs a Unigram tokenizer, not {spec['model']['type']}")
    vocab = spec["model"]["vocab"]
    spec["model"]["vocab"] = [vocab[i] for i in keep]
    spec["model"]["unk_id"] = remap[spec["model"]["unk_id"]]
    for added in spec.get("added_tokens", []):
        added["id"] = remap[added["id"]]
    for special in ((spec.get("post_processor") or {}).get("special_tokens") or {}).values():
        special["ids"] = [remap[i] for i in special["ids"]]   # TemplateProcessing's <s>, </s>
    model = AutoModel.from_pretrained(str(src))
    emb = model.get_input_embeddings().weight.data
    new = torch.nn.Embedding(len(keep), emb.shape[1], padding_idx=remap.get(model.config.pad_token_id))
    new.weight.data = emb[torch.tensor(keep)].clone()
    model.set_input_embeddings(new)
    model.config.vocab_size = len(keep)
    for name in ("pad_token_id", "bos_token_id", "eos_token_id"):
        if getattr(model.config, name, None) is not None:
            setattr(model.config, name, remap[getattr(model.config, name)])
    model.save_pretrained(str(out))
    (out / "tokenizer.json").write_text(json.dumps(spec, ensure_ascii=False), encoding="utf-8")
    for f in src.iterdir():
        if f.is_file() and not (out / f.name).exists():
            shutil.copy2(f, out / f.name)
    return {"pieces": len(keep), "of": len(vocab)}


# -- early exit (one encoder, two depths) ----------------------------------------------------------

def split_at_layer(onnx_path, k: int, out_first, out_rest) -> dict:
    """Cuts an all-layer pooled graph (``export_pooled_encoder(..., all_layers=True)``, fused and
    quantised or not) after its ``k``-th transformer layer, so a text can stop there (early exit)
    or go on at no extra cost:

    * ``out_first``: ``input_ids``, ``attention_mask`` → ``embedding`` (the pools of the embedding
      output and layers 1..k, concatenated) and the tensors the rest needs (the layer-k hidden
      states, the attention mask index, the pooling mask), named ``carry.N``;
    * ``out_rest``: those ``carry.N`` → ``embedding`` (the pools of layers k+1..L).

    Concatenating the two ``embedding`` outputs gives exactly the uncut graph's. Every initializer
    belongs to one piece only, so the two files together are the size of the uncut one."""
    import onnx
    from onnx import helper
    model = onnx.load(str(onnx_path))
    g = model.graph
    concat = next(n for n in g.node if n.output[0] == "embedding")
    pools = list(concat.input)
    if not 0 < k < len(pools) - 1:
        raise ValueError(f"k must be between 1 and {len(pools) - 2}")
    producer = {o: n for n in g.node for o in n.output}
    width = g.output[0].type.tensor_type.shape.dim[-1].dim_value // len(pools)   # one pool's width
    inits = {t.name for t in g.initializer}

    def ancestors(names):
        seen, stack = set(), [producer[x] for x in names if x in producer]
        while stack:
            n = stack.pop()
            if id(n) in seen:
                continue
            seen.add(id(n))
            stack.extend(producer[x] for x in n.input if x in producer)
        return seen
    first = ancestors(pools[:k + 1])
    rest_nodes = [n for n in g.node if id(n) not in ancestors(pools[:k + 1]) and id(n) != id(concat)
                  and id(n) in ancestors(pools[k + 1:])]
    made_in_rest = {o for n in rest_nodes for o in n.output}
    graph_inputs = {i.name for i in g.input}
    carry = sorted({x for n in rest_nodes for x in n.input
                    if x and x not in made_in_rest and x not in inits
                    and (x in graph_inputs or id(producer.get(x)) in first)})
    # graph inputs a later piece needs keep their names; every other carried tensor becomes carry.N
    renames = {x: (x if x in graph_inputs else f"carry.{i}") for i, x in enumerate(carry)}

    def value(name):   # fused contrib ops carry no value_info, but their output types are fixed
        if name in graph_inputs:
            t = next(i.type.tensor_type.elem_type for i in g.input if i.name == name)
        elif producer[name].op_type == "Cast":
            t = next(a.i for a in producer[name].attribute if a.name == "to")
        elif producer[name].op_type.endswith("EmbedLayerNormalization") and name == producer[name].output[1]:
            t = onnx.TensorProto.INT32   # the attention mask index
        else:
            t = onnx.TensorProto.FLOAT
        return helper.make_tensor_value_info(renames.get(name, name), t, None)

    def piece(nodes, inputs, kept, extra_outputs):
        nodes = [onnx.NodeProto.FromString(n.SerializeToString()) for n in nodes]
        for n in nodes:
            n.input[:] = [renames.get(x, x) for x in n.input]
            n.output[:] = [renames.get(x, x) for x in n.output]
        nodes.append(helper.make_node("Concat", [renames.get(x, x) for x in kept], ["embedding"], axis=-1))
        used = {x for n in nodes for x in n.input}
        out = helper.make_tensor_value_info("embedding", onnx.TensorProto.FLOAT, ["batch", len(kept) * width])
        graph = helper.make_graph(nodes, g.name, [value(x) for x in inputs], [out] + [value(x) for x in extra_outputs],
                                  [t for t in g.initializer if t.name in used])
        return helper.make_model(graph, opset_imports=model.opset_import, ir_version=model.ir_version)
    a = piece([n for n in g.node if id(n) in first], ["input_ids", "attention_mask"], pools[:k + 1],
              [x for x in carry if x not in graph_inputs])
    b = piece(rest_nodes, carry, pools[k + 1:], [])
    onnx.save(a, str(out_first))
    onnx.save(b, str(out_rest))
    return {"k": k, "carry": [renames[x] for x in carry]}
