"""The compact JSON text upstream's serde_json writes, byte for byte (MOD-5)."""

from __future__ import annotations

import json
import math

from conformance.contract._codec import JsonValue

__all__ = ["json_text"]


def json_text(value: JsonValue) -> str:
    """Return the compact JSON text `serde_json::to_string` writes for `value`.

    Keys come in the order the dicts hold them: `Model.to_json()` holds serde's (a
    struct's fields in declaration order, free JSON with sorted keys), so
    `json_text(thread.to_json())` is the text upstream writes for the same thread
    (`Model.to_json_text()` says the same in one call). No spaces; strings as raw UTF-8
    with `"`, `\\` and the control characters escaped (`\\n`, `\\u001f`); integers as
    they are; floats as serde_json 1.0.149 writes them (zmij, the version upstream's
    Cargo.lock pins): the shortest digits that read back to the same float, plain from
    1e-5 up to below 1e16 (`1.0`, `-0.0`, `0.00001`, `1000000000000000.0`) and in
    exponent form outside (`1.5e-7`, `1e+16`, `1.7976931348623157e+308`).

    Raises `ValueError` for a float that is not finite (NaN or infinite: not JSON, and a
    value no model holds), and `TypeError` for a value that is not JSON.

    >>> json_text({"b": [1, 2.0, 0.00001, 1.5e-7, 1e16], "a": "é\\n", "c": None})
    '{"b":[1,2.0,0.00001,1.5e-7,1e+16],"a":"é\\\\n","c":null}'
    """
    parts: list[str] = []
    _write(value, parts)
    return "".join(parts)


def _write(value: object, parts: list[str]) -> None:
    if isinstance(value, str):
        parts.append(json.dumps(value, ensure_ascii=False))
    elif value is None:
        parts.append("null")
    elif value is True:
        parts.append("true")
    elif value is False:
        parts.append("false")
    elif isinstance(value, int):
        parts.append(int.__repr__(value))
    elif isinstance(value, float):
        parts.append(float_text(value))
    elif isinstance(value, dict):
        separator = "{"
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"a JSON object's keys are strings, got {type(key).__name__} {key!r}")
            parts.append(f"{separator}{json.dumps(key, ensure_ascii=False)}:")
            separator = ","
            _write(item, parts)
        parts.append("}" if separator == "," else "{}")
    elif isinstance(value, list):
        separator = "["
        for item in value:
            parts.append(separator)
            separator = ","
            _write(item, parts)
        parts.append("]" if separator == "," else "[]")
    else:
        raise TypeError(f"not a JSON value: {type(value).__name__} {value!r}")


def float_text(number: float) -> str:
    """The text serde_json 1.0.149 (zmij) writes for a finite float.

    The digits are Python's `repr` (the shortest that read back, as zmij's); the layout
    is zmij's: plain while the first digit's decimal exponent is in -5..=15, else
    `d.ddde±x` (a positive exponent with `+`, no zero padding: `1e+16`, `1.5e-7`, where
    Python writes `1e+16` and `1.5e-07`, and `1e-05` for serde's `0.00001`).

    >>> float_text(0.00001), float_text(1e16), float_text(-0.0), float_text(123.0)
    ('0.00001', '1e+16', '-0.0', '123.0')
    """
    if not math.isfinite(number):
        raise ValueError(f"JSON has no {number!r}: serde_json writes only finite floats")
    if number == 0:
        return "-0.0" if math.copysign(1.0, number) < 0 else "0.0"
    text = repr(abs(number))
    mantissa, _, exponent_text = text.partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = whole + fraction
    point = len(whole) - (len(digits) - len(digits.lstrip("0")))
    digits = digits.strip("0")
    exponent = point - 1 + (int(exponent_text) if exponent_text else 0)
    sign = "-" if number < 0 else ""
    if -5 <= exponent <= 15:
        if len(digits) - 1 <= exponent:
            return f"{sign}{digits}{'0' * (exponent + 1 - len(digits))}.0"
        if exponent >= 0:
            return f"{sign}{digits[: exponent + 1]}.{digits[exponent + 1 :]}"
        return f"{sign}0.{'0' * (-exponent - 1)}{digits}"
    head = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    return f"{sign}{head}e{'+' if exponent >= 0 else '-'}{abs(exponent)}"
