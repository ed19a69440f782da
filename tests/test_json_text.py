"""`json_text` and `to_json_text()`: the compact text upstream's serde_json writes, byte for byte (MOD-5).

Floats are checked against serde_json's and zmij's own expectations (the versions
upstream's Cargo.lock pins); strings, integers and key order against what the upstream
shim wrote. `tests/test_upstream_vectors.py` checks whole models against upstream's texts.
"""

from __future__ import annotations

import math

import pytest

from conformance import JsonValue, Message, Role, Thread, ThreadMetadata, ToolCall, json_text


@pytest.mark.parametrize(
    ("number", "text"),
    [
        # serde_json's own expectations (tests/test.rs, tests/debug.rs at 1.0.149)
        (3.1, "3.1"),
        (-1.5, "-1.5"),
        (0.5, "0.5"),
        (1.0, "1.0"),
        (12e40, "1.2e+41"),
        (-1.7976931348623157e308, "-1.7976931348623157e+308"),
        (2.220446049250313e-16, "2.220446049250313e-16"),
        # zmij's own (tests/test.rs at 1.0.21)
        (6.62607015e-34, "6.62607015e-34"),
        (5.444310685350916e14, "544431068535091.6"),
        (9.061488e15, "9061488000000000.0"),
        (5e-324, "5e-324"),
        (0.0, "0.0"),
        (-0.0, "-0.0"),
        # the edges of the plain form, where Python's repr differs
        (0.00001, "0.00001"),
        (0.000015, "0.000015"),
        (1e-6, "1e-6"),
        (1.5e-7, "1.5e-7"),
        (1e15, "1000000000000000.0"),
        (1e16, "1e+16"),
        (123456789012345680.0, "1.2345678901234568e+17"),
    ],
)
def test_json_text_writes_floats_as_serde_json(number: float, text: str) -> None:
    """MOD-5: floats as serde_json 1.0.149 (zmij) writes them, the version upstream's Cargo.lock pins."""
    assert json_text(number) == text
    assert float(text) == number or (math.copysign(1, number) < 0 and text == "-0.0")


def test_json_text_writes_strings_and_integers_as_serde_json() -> None:
    """MOD-5: raw UTF-8, short escapes, `\\u00XX` in lowercase for other controls, integers of any size."""
    value: JsonValue = {
        "s": 'a"b\\c\n\t\r\b\f\x00\x1f\x7f/é\u2028😀',
        "n": [0, -1, 2**64 - 1, -(2**63)],
        "t": True,
        "f": None,
    }
    expected = (
        '{"s":"a\\"b\\\\c\\n\\t\\r\\b\\f\\u0000\\u001f\x7f/é\u2028😀",'
        '"n":[0,-1,18446744073709551615,-9223372036854775808],"t":true,"f":null}'
    )
    assert json_text(value) == expected


def test_json_text_keeps_the_order_it_is_given() -> None:
    """SPEC 2: `json_text` writes keys in dict order; `to_json()` is what puts them in serde's."""
    assert json_text({"b": {}, "a": []}) == '{"b":{},"a":[]}'
    thread = Thread(id="t", metadata=ThreadMetadata(custom={"b": {"y": 1, "x": 2}, "a": 1}))
    assert thread.to_json_text() == '{"id":"t","metadata":{"custom":{"a":1,"b":{"x":2,"y":1}}}}'
    call = ToolCall(id="c", name="n", arguments={"q": 1, "a": [{"z": 0, "k": 1}]})
    assert call.to_json_text() == '{"id":"c","name":"n","arguments":{"a":[{"k":1,"z":0}],"q":1}}'


def test_values_upstream_types_are_written_as_given() -> None:
    """SPEC 2: a content block, ticket or activation is kept as JSON and written as given, never reordered."""
    message = Message(role=Role.USER, content=[{"type": "tool_use", "id": "c", "name": "n", "input": {"b": 1, "a": 2}}])
    assert (
        message.to_json_text()
        == '{"role":"user","content":[{"type":"tool_use","id":"c","name":"n","input":{"b":1,"a":2}}]}'
    )


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_json_text_refuses_a_float_json_has_not(bad: float) -> None:
    """MOD-5: NaN and the infinities are no JSON: `ValueError`, as no model may hold one."""
    with pytest.raises(ValueError, match="finite"):
        json_text([bad])


def test_json_text_refuses_what_is_not_json() -> None:
    """`TypeError` for a non-string key or a Python object JSON has no form for."""
    with pytest.raises(TypeError, match="keys are strings"):
        json_text({1: "x"})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match="not a JSON value"):
        json_text((1, 2))  # type: ignore[arg-type]
