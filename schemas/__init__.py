"""The contract: JSON Schema files, the typed records that mirror them, and the closed code lists.

The JSON files in this directory are the source of truth for producers and consumers outside
Python (widgets, audit tools); :mod:`schemas.records` mirrors them as typed Python records and
``tests/test_schemas.py`` proves the two agree.
"""
from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any, Dict

SCHEMA_FILES = (
    "review.schema.json",
    "provenance.schema.json",
    "signals.schema.json",
    "label.schema.json",
    "decision.schema.json",
    "published.schema.json",
    "dead_letter.schema.json",
    "product.schema.json",
    "run_summary.schema.json",
    "policy.schema.json",
    "codes.json",
)
BASE_URI = "https://review-integrity.example/schemas/"


@functools.lru_cache(maxsize=None)
def load(name: str) -> Dict[str, Any]:
    """Returns one schema file of this package, parsed."""
    return json.loads(resources.files(__name__).joinpath(name).read_text(encoding="utf-8"))


@functools.lru_cache(maxsize=None)
def registry():
    """A ``referencing`` registry holding every schema here, so ``$ref`` between files resolves offline."""
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT202012

    return Registry().with_resources(
        (BASE_URI + name, Resource.from_contents(load(name), default_specification=DRAFT202012))
        for name in SCHEMA_FILES)


@functools.lru_cache(maxsize=None)
def validator(name: str):
    """A Draft 2020-12 validator (with format checking) for one schema file."""
    from jsonschema import Draft202012Validator

    return Draft202012Validator(load(name), registry=registry(),
                                format_checker=Draft202012Validator.FORMAT_CHECKER)
