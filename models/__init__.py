"""Models the pipeline serves (the fake-review classifier): training, evaluation, artifacts.

Empty until the classifier issue lands; the detection stage records the classifier as not_run.
"""
