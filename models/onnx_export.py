"""Exports an encoder (base or fine-tuned) with mean pooling to ONNX, then quantises it to int8.

The graph takes ``input_ids`` and ``attention_mask`` (int64, batch × length, both dynamic) and
returns ``embedding`` (batch × 384, the attention-masked mean of the last hidden states).
Quantisation is ONNX Runtime dynamic int8 with per-channel weights (closer to fp32 than per-tensor;
see ../shared/ENGINEERING.md); accuracy is re-measured on the quantised graph, never assumed.
"""
from __future__ import annotations

from pathlib import Path


def export_pooled_encoder(encoder_dir, out_path, opset: int = 17) -> Path:
    import torch
    from models import encoder as enc

    base = enc.load_torch_encoder(encoder_dir)

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
    with torch.inference_mode():
        torch.onnx.export(model, (ids, mask), str(out_path), dynamo=False, opset_version=opset,
                          input_names=["input_ids", "attention_mask"], output_names=["embedding"],
                          dynamic_axes={"input_ids": {0: "batch", 1: "seq"},
                                        "attention_mask": {0: "batch", 1: "seq"},
                                        "embedding": {0: "batch"}})
    return out_path


def quantize_int8(fp32_path, int8_path) -> Path:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    quantize_dynamic(str(fp32_path), str(int8_path), weight_type=QuantType.QInt8, per_channel=True,
                     extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})  # fused ops lack types
    return Path(int8_path)
