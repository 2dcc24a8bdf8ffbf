"""The fake-review classifier as served: ONNX Runtime encoder, TF-IDF features and heads, its artifacts.

Beam-free. ``pipeline/transforms/classify.py`` runs it as a pipeline stage; ``models/`` (training,
evaluation) and the benchmarks import it, never the reverse.
"""
