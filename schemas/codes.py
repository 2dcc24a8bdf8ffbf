"""Closed lists of dead-letter error codes and decision reason codes (from ``codes.json``)."""
from __future__ import annotations

from schemas import load

_CODES = load("codes.json")

ERROR_CODES = tuple(_CODES["$defs"]["error_code"]["enum"])
REASON_CODES = tuple(_CODES["$defs"]["reason_code"]["enum"])
ERROR_DESCRIPTIONS = dict(_CODES["error_codes"])
REASON_DESCRIPTIONS = dict(_CODES["reason_codes"])

INVALID_UTF8 = "invalid_utf8"
MALFORMED_JSON = "malformed_json"
NOT_AN_OBJECT = "not_an_object"
MISSING_FIELD = "missing_field"
WRONG_TYPE = "wrong_type"
INVALID_VALUE = "invalid_value"
RATING_OUT_OF_RANGE = "rating_out_of_range"
BAD_TIMESTAMP = "bad_timestamp"
TOO_LARGE = "too_large"
REDELIVERY = "redelivery"
DUPLICATE_KEY = "duplicate_key"
CORRUPT_FILE = "corrupt_file"
TRUNCATED_FILE = "truncated_file"
DECOMPRESSION_LIMIT = "decompression_limit"
INTERNAL_ERROR = "internal_error"

DUPLICATE_SPAM = "duplicate_spam"
SUSPECTED_DUPLICATE = "suspected_duplicate"
SUSPECTED_FAKE = "suspected_fake"
COORDINATED_ACCOUNTS = "coordinated_accounts"
UNUSUAL_ACTIVITY = "unusual_activity"
PERSONAL_DATA_REDACTED = "personal_data_redacted"
ABUSE = "abuse"
OFF_TOPIC = "off_topic"
EMPTY_AFTER_CLEANING = "empty_after_cleaning"
DISCLOSURE_LABEL = "disclosure_label"
MODERATOR_OVERRIDE = "moderator_override"
COPIED_BY_OTHERS = "copied_by_others"
CREATED_AT_ADJUSTED = "created_at_adjusted"
REVIEW_ID_CONFLICT = "review_id_conflict"

for _name, _value in list(globals().items()):
    if _name.isupper() and isinstance(_value, str):
        assert _value in ERROR_CODES + REASON_CODES, f"{_name}={_value!r} missing from codes.json"

DECISIONS = ("publish", "publish_with_label", "hold_for_review", "reject")
PUBLISH_DECISIONS = ("publish", "publish_with_label")
WITHHELD_DECISIONS = ("hold_for_review", "reject")
SIGNAL_STATUSES = ("scored", "not_applicable", "not_run")
