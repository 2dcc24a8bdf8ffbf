"""Review integrity and moderation pipeline (Apache Beam, batch and streaming).

Data flow, one composite transform per stage (see pipeline/build.py):
ReadReviewLines → ParseReviews → DropRedeliveries → NormalizeReviews → DetectFakes → Decide →
AttachProvenance → write published/, decisions/, products/, dead_letter/, run_summary.json.
"""
__version__ = "0.1.0"
PIPELINE_NAME = "review-moderation"
