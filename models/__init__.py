"""Models the pipeline serves (the fake-review classifier): training, evaluation, artifacts.

See models/README.md; the Beam stage is pipeline/transforms/classify.py (ClassifyReviews).
"""
