"""Training and evaluation of the fake-review classifier the pipeline serves.

The serving runtime and the committed artifacts live in ``pipeline/classifier/`` (what Dataflow
workers install); this package imports them, never the reverse. Recipe: ``models/train.py``
(``make train``); evaluation: ``models/evaluate.py``; see models/README.md.
"""
