"""DCAT-US 1.1 validity of a dataset record (MD-4's interoperability points), with jsonschema."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

SCHEMA_PATH = Path(__file__).with_name("schemas") / "dcat_us_1_1_dataset.json"
MAX_ERRORS = 5


@cache
def _validator() -> Draft202012Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def dcat_us_errors(dataset: dict[str, Any]) -> list[str]:
    """Why the dataset is not valid DCAT-US 1.1 (at most MAX_ERRORS reasons; empty when valid)."""
    errors = sorted(_validator().iter_errors(dataset), key=lambda error: list(error.path))
    return [_describe(error) for error in errors[:MAX_ERRORS]]


def _describe(error: Any) -> str:
    where = ".".join(str(part) for part in error.path) or "dataset"
    if error.validator == "required":
        return f"{where}: {error.message}"
    if error.validator == "pattern":
        return f"{where}: does not have the required form"
    return f"{where}: {error.message[:120]}"
