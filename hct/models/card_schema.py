"""The model card's typed schema: every field's JSON type and range, checked when a card is read.

A card that is valid JSON but holds, say, a list where ``metrics`` belongs is refused with a
:class:`~hct.errors.ModelCardError` naming the field, what it holds and what it must be, instead of
an AttributeError wherever the field is first used (``models``, ``predict``, ``load_model``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from pathlib import Path

from hct.errors import ModelCardError

DTYPES = ("float32", "float16", "bfloat16")
AUC_METRICS = ("test_auc", "test_auc_low", "test_auc_high")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)


def _is_size(value: object) -> bool:
    return value is None or (
        isinstance(value, (list, tuple)) and len(value) == 2 and all(_is_int(v) and 8 <= v <= 16384 for v in value)
    )


def _is_object(value: object) -> bool:
    return isinstance(value, dict) and all(isinstance(k, str) for k in value)


def _is_metrics(value: object) -> bool:
    return _is_object(value) and all(
        value[k] is None or (_is_number(value[k]) and 0 <= value[k] <= 1) for k in AUC_METRICS if k in value
    )


def _is_preprocessing(value: object) -> bool:
    from hct.data.image.preprocess import MODES

    return (
        _is_object(value)
        and value.get("mode", MODES[0]) in MODES
        and isinstance(value.get("clear_background", True), bool)
    )


# field -> (what it must be, in words; the check)
FIELDS: dict[str, tuple[str, Callable[[object], bool]]] = {
    "architecture": ("a non-empty string (a registered model name)", lambda v: isinstance(v, str) and bool(v)),
    "overrides": ("a JSON object of model settings", _is_object),
    "parameters": ("an integer >= 0", lambda v: _is_int(v) and v >= 0),
    "input_size": ("null or [height, width], two integers in 8..16384", _is_size),
    "stage": ("a string ('patch', 'image' or '')", lambda v: isinstance(v, str)),
    "training_data": ("a string", lambda v: isinstance(v, str)),
    "metrics": (
        "a JSON object whose test_auc, test_auc_low and test_auc_high are numbers in [0, 1] or null",
        _is_metrics,
    ),
    "training": ("a JSON object", _is_object),
    "code_version": ("a string", lambda v: isinstance(v, str)),
    "weights_sha256": (
        "64 hexadecimal digits",
        lambda v: isinstance(v, str) and bool(re.fullmatch(r"[0-9a-f]{64}", v)),
    ),
    "weights_dtype": (f"one of {DTYPES}", lambda v: v in DTYPES),
    "architecture_version": ("an integer >= 1", lambda v: _is_int(v) and v >= 1),
    "preprocessing": (
        "a JSON object whose mode is 'canonical' or 'acquired' and clear_background true or false",
        _is_preprocessing,
    ),
}
REQUIRED = ("architecture", "weights_sha256")


def _shown(value: object) -> str:
    kind = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(type(value))
    text = repr(value)
    return f"{kind or type(value).__name__} {text[:40] + '...' if len(text) > 40 else text}"


def check_card(data: dict, source: str | Path) -> dict:
    """The fields of card ``data`` this version knows (unknown ones are dropped, for cards of later versions),
    each checked against :data:`FIELDS`; :class:`ModelCardError` names every field that is wrong."""
    missing = [k for k in REQUIRED if k not in data]
    if missing:
        raise ModelCardError(f"model card {source} lacks {missing}; it was not written by hct")
    wrong = [
        f"{key} is {_shown(value)}, expected {FIELDS[key][0]}"
        for key, value in data.items()
        if key in FIELDS and not FIELDS[key][1](value)
    ]
    if wrong:
        raise ModelCardError(
            f"model card {source} is invalid: {'; '.join(wrong)}. Restore it from the original "
            "checkpoint (or rewrite that field)."
        )
    return {k: v for k, v in data.items() if k in FIELDS}
