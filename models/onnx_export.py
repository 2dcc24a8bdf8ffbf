"""Exports an encoder (base or fine-tuned) with mean pooling to ONNX, fuses it, then quantises it to int8.

The graph takes ``input_ids`` and ``attention_mask`` (int64, batch × length, both dynamic) and
returns ``embedding`` (batch × 384, the attention-masked mean of the last hidden states).

Steps (training time only; ``onnx`` comes with the ``[train]`` extra):

1. ``torch.onnx.export`` of the encoder loaded with ``attn_implementation="eager"``: the plain
   softmax(QKᵀ)V attention pattern that ONNX Runtime's transformer optimizer recognises (the
   default SDPA export with transformers 5's mask code is not matched, and leaves ~900 small nodes).
2. ``onnxruntime.transformers.optimizer`` (model type ``bert``, 12 heads, hidden 384) fuses it into
   EmbedLayerNormalization, 6 Attention, 6 BiasGelu and 12 SkipLayerNormalization nodes.
3. ONNX Runtime dynamic int8 with per-channel weights (closer to fp32 than per-tensor; see
   ../shared/ENGINEERING.md): the fused ops become QEmbedLayerNormalization / QAttention /
   MatMulInteger. Accuracy is re-measured on the quantised graph that is served, never assumed.

``fused=False`` gives the 1.0.0 graph (SDPA export, no fusion) for comparisons.
"""
from __future__ import annotations

from pathlib import Path

NUM_HEADS, HIDDEN = 12, 384  # all-MiniLM-L6-v2


def export_pooled_encoder(encoder_dir, out_path, opset: int = 17, fused: bool = True) -> Path:
    import torch
    from transformers import AutoModel

    base = AutoModel.from_pretrained(str(encoder_dir), attn_implementation="eager" if fused else None).eval()

    class Pooled(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = base

        def forward(self, input_ids, attention_mask):
            hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)

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
        fuse(raw, out_path)
    return out_path


def fuse(in_path, out_path) -> dict:
    """ONNX Runtime's BERT fusions; raises if the attention layers were not all fused."""
    from onnxruntime.transformers import optimizer
    opt = optimizer.optimize_model(str(in_path), model_type="bert", num_heads=NUM_HEADS, hidden_size=HIDDEN,
                                   opt_level=1)
    stats = {k: v for k, v in opt.get_fused_operator_statistics().items() if v}
    if stats.get("Attention", 0) != 6:
        raise RuntimeError(f"attention fusion failed: {stats}")
    opt.save_model_to_file(str(out_path))
    return stats


def quantize_int8(fp32_path, int8_path) -> Path:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    quantize_dynamic(str(fp32_path), str(int8_path), weight_type=QuantType.QInt8, per_channel=True,
                     extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})  # fused ops lack types
    return Path(int8_path)
