"""Opaque cursors of thread and message queries (CUR-1..3, SEC-1), checked without a store.

Expectations come from SPEC section 6: the cursor layout is decoded here with
`base64` and `json` directly, never through the kit's private helpers.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conformance import (
    InvalidCursorError,
    MessageOrder,
    MessageQuery,
    MessageVisibilityFilter,
    ThreadParentFilter,
    ThreadQuery,
    ValidationError,
)

THREAD_KEYS = {"offset", "resource_id", "parent_filter", "id_prefix"}
MESSAGE_KEYS = {"offset", "after", "before", "order", "visibility", "run_id"}
URL_SAFE = re.compile(r"[A-Za-z0-9_-]*")

# Ids full of characters that mean something to LIKE, GLOB, regexes or JSON.
TRICKY = st.text(alphabet=st.sampled_from("ab%_\\*.:-/\"' é中🙂\t"), max_size=8)
OFFSETS = st.integers(min_value=0, max_value=10**15)


def encode_token(prefix: str, token: object) -> str:
    """Build a cursor by hand: prefix + unpadded URL-safe base64 of compact JSON (CUR-1)."""
    raw = json.dumps(token, separators=(",", ":"), ensure_ascii=False).encode()
    return prefix + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def encode_raw(prefix: str, raw: bytes) -> str:
    """A cursor whose body is the unpadded URL-safe base64 of `raw`."""
    return prefix + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_body(prefix: str, cursor: str) -> tuple[bytes, Any]:
    """Decode a cursor independently of the kit: check the layout, return raw JSON and its value."""
    assert cursor.startswith(prefix), cursor
    body = cursor[len(prefix) :]
    assert body, "empty cursor body"
    assert "=" not in body, "cursor body must be unpadded"
    assert URL_SAFE.fullmatch(body), f"cursor body is not URL-safe base64: {body!r}"
    raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    value = json.loads(raw.decode("utf-8"))
    compact = {
        json.dumps(value, separators=(",", ":"), ensure_ascii=False),
        json.dumps(value, separators=(",", ":"), ensure_ascii=True),
    }
    assert raw.decode("utf-8") in compact, f"cursor JSON is not compact: {raw!r}"
    return raw, value


def strictly_equal(left: object, right: object) -> bool:
    """JSON equality that tells `true` from `1` and `1.0` from `1`."""
    return type(left) is type(right) and left == right


def expected_thread_filters(query: ThreadQuery) -> dict[str, object]:
    """The filters a thread cursor must hold: the query's, normalized as QRY-1 says."""
    resource = query.resource_id.strip() if query.resource_id is not None else None
    parent: object = query.parent_filter.kind
    if query.parent_filter.kind == "parent":
        stripped = (query.parent_filter.parent_id or "").strip()
        parent = {"parent": stripped} if stripped else "any"
    return {"resource_id": resource or None, "parent_filter": parent, "id_prefix": query.id_prefix}


def expected_message_filters(query: MessageQuery) -> dict[str, object]:
    """The filters a message cursor must hold, in their JSON spelling."""
    return {
        "after": query.after,
        "before": query.before,
        "order": str(query.order.value),
        "visibility": str(query.visibility.value),
        "run_id": query.run_id,
    }


def oracle_offset(prefix: str, filters: dict[str, object], text: str) -> int | None:
    """What CUR-1/CUR-2 say a token decodes to under a query with `filters`; None = refused."""
    if not text.startswith(prefix):
        return None
    body = text[len(prefix) :]
    if not URL_SAFE.fullmatch(body) or len(body) % 4 == 1:
        return None
    try:
        value = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode("utf-8"))
    except (ValueError, binascii.Error):
        return None
    if not isinstance(value, dict) or set(value) != {"offset", *filters}:
        return None
    offset = value["offset"]
    if type(offset) is not int or offset < 0:
        return None
    if not all(strictly_equal(value[key], expected) for key, expected in filters.items()):
        return None
    return offset


@st.composite
def parent_filters(draw: st.DrawFn) -> ThreadParentFilter:
    kind = draw(st.sampled_from(["any", "root", "parent"]))
    if kind == "any":
        return ThreadParentFilter.any()
    if kind == "root":
        return ThreadParentFilter.root()
    return ThreadParentFilter.parent(draw(TRICKY))


@st.composite
def thread_queries(draw: st.DrawFn) -> ThreadQuery:
    return ThreadQuery(
        resource_id=draw(st.none() | TRICKY),
        parent_filter=draw(parent_filters()),
        id_prefix=draw(st.none() | TRICKY),
    )


@st.composite
def message_queries(draw: st.DrawFn) -> MessageQuery:
    return MessageQuery(
        after=draw(st.none() | st.integers(min_value=0, max_value=10**6)),
        before=draw(st.none() | st.integers(min_value=0, max_value=10**6)),
        order=draw(st.sampled_from(list(MessageOrder))),
        visibility=draw(st.sampled_from(list(MessageVisibilityFilter))),
        run_id=draw(st.none() | TRICKY),
    )


# --- round trip and layout -------------------------------------------------------------


@given(query=thread_queries(), offset=OFFSETS)
def test_thread_cursor_round_trip(query: ThreadQuery, offset: int) -> None:
    """CUR-1, CUR-2: a thread cursor decodes to its offset under the query and an equal one."""
    cursor = query.encode_cursor(offset)
    assert query.decode_cursor(cursor) == offset
    twin = ThreadQuery(
        offset=99, limit=3, resource_id=query.resource_id, parent_filter=query.parent_filter, id_prefix=query.id_prefix
    )
    assert twin.decode_cursor(cursor) == offset


@given(query=message_queries(), offset=OFFSETS)
def test_message_cursor_round_trip(query: MessageQuery, offset: int) -> None:
    """CUR-1, CUR-2: a message cursor decodes to its offset under the query and an equal one."""
    cursor = query.encode_cursor(offset)
    assert query.decode_cursor(cursor) == offset
    assert replace(query, offset=42, limit=7).decode_cursor(cursor) == offset


@given(query=thread_queries(), offset=OFFSETS)
def test_thread_cursor_layout(query: ThreadQuery, offset: int) -> None:
    """CUR-1: `thr_` + unpadded URL-safe base64 of compact JSON holding offset and every normalized filter."""
    _, token = decode_body("thr_", query.encode_cursor(offset))
    assert isinstance(token, dict)
    assert set(token) == THREAD_KEYS
    assert strictly_equal(token["offset"], offset)
    for key, expected in expected_thread_filters(query).items():
        assert token[key] == expected, key


@given(query=message_queries(), offset=OFFSETS)
def test_message_cursor_layout(query: MessageQuery, offset: int) -> None:
    """CUR-1: `msg_` + unpadded URL-safe base64 of compact JSON holding offset and every filter."""
    _, token = decode_body("msg_", query.encode_cursor(offset))
    assert isinstance(token, dict)
    assert set(token) == MESSAGE_KEYS
    assert strictly_equal(token["offset"], offset)
    for key, expected in expected_message_filters(query).items():
        assert strictly_equal(token[key], expected), key


def test_thread_cursor_spells_parent_filters_as_section_2() -> None:
    """CUR-1: the parent filter inside a thread token is "any", "root" or {"parent": id}."""
    spellings: list[tuple[ThreadParentFilter, object]] = [
        (ThreadParentFilter.any(), "any"),
        (ThreadParentFilter.root(), "root"),
        (ThreadParentFilter.parent("p%1"), {"parent": "p%1"}),
    ]
    for parent_filter, spelling in spellings:
        _, token = decode_body("thr_", ThreadQuery(parent_filter=parent_filter).encode_cursor(3))
        assert token["parent_filter"] == spelling


def test_hand_built_cursors_decode() -> None:
    """CUR-1, CUR-2: a token written by hand from the spec (any key order) is accepted."""
    thread_query = ThreadQuery(resource_id="r", parent_filter=ThreadParentFilter.parent("p"), id_prefix="a_")
    token = {"id_prefix": "a_", "parent_filter": {"parent": "p"}, "resource_id": "r", "offset": 12}
    assert thread_query.decode_cursor(encode_token("thr_", token)) == 12
    message_query = MessageQuery(after=2, before=9, order=MessageOrder.DESC, run_id="run-1")
    message_token = {
        "offset": 4,
        "after": 2,
        "before": 9,
        "order": "desc",
        "visibility": "any",
        "run_id": "run-1",
    }
    assert message_query.decode_cursor(encode_token("msg_", message_token)) == 4


# --- refused text ----------------------------------------------------------------------


def test_invalid_cursor_error_is_a_validation_error() -> None:
    """CUR-2, section 1: InvalidCursorError is a ValidationError, so callers may catch either."""
    assert issubclass(InvalidCursorError, ValidationError)
    with pytest.raises(ValidationError):
        ThreadQuery().decode_cursor("not a cursor")
    with pytest.raises(ValidationError):
        MessageQuery().decode_cursor("not a cursor")


GARBAGE = [
    "",
    "garbage",
    "thr",
    "thr_",
    "msg_",
    "thr_!!!!",
    "thr_eyJvZmZzZXQiOjB9==",
    "THR_eyJvZmZzZXQiOjB9",
    " 7",
    "7 ",
    "7\n",
    "-7",
    "+7",
    "7.0",
    "1e3",
    "0x7",
    "\uff17",  # FULLWIDTH DIGIT SEVEN: not an ASCII decimal
    "None",
    "null",
]


@pytest.mark.parametrize("text", GARBAGE)
def test_garbage_text_is_refused(text: str) -> None:
    """CUR-2, CUR-3: text that is neither a token nor a bare decimal offset raises InvalidCursorError."""
    with pytest.raises(InvalidCursorError):
        ThreadQuery().decode_cursor(text)
    with pytest.raises(InvalidCursorError):
        MessageQuery().decode_cursor(text)


def test_wrong_prefix_is_refused() -> None:
    """CUR-1, CUR-2: a msg_ cursor is refused by a thread query and a thr_ cursor by a message query."""
    thread_cursor = ThreadQuery().encode_cursor(5)
    message_cursor = MessageQuery().encode_cursor(5)
    with pytest.raises(InvalidCursorError):
        ThreadQuery().decode_cursor(message_cursor)
    with pytest.raises(InvalidCursorError):
        MessageQuery().decode_cursor(thread_cursor)
    # Same body, swapped prefix: the token is a valid JSON object but holds the other keys.
    with pytest.raises(InvalidCursorError):
        ThreadQuery().decode_cursor("thr_" + message_cursor[4:])
    with pytest.raises(InvalidCursorError):
        MessageQuery().decode_cursor("msg_" + thread_cursor[4:])


def test_padded_or_standard_alphabet_body_is_refused() -> None:
    """CUR-1, CUR-2: the body must be unpadded URL-safe base64, not padded or `+`/`/` base64."""
    tokens = [base_thread_token(offset) for offset in (1, 10, 100)]
    raws = [json.dumps(token, separators=(",", ":")).encode() for token in tokens]
    # A JSON text whose length is not a multiple of 3 gets "=" padding from the standard encoder.
    raw = next(raw for raw in raws if len(raw) % 3)
    padded = "thr_" + base64.urlsafe_b64encode(raw).decode()
    assert padded.endswith("=")
    assert ThreadQuery().decode_cursor(padded.rstrip("=")) in {1, 10, 100}
    with pytest.raises(InvalidCursorError):
        ThreadQuery().decode_cursor(padded)
    # A body whose URL-safe spelling holds "-" or "_", re-spelled in the standard alphabet.
    resource = "\u00ff\u00fe\u00fd>>>???"
    token = {"offset": 0, "resource_id": resource, "parent_filter": "any", "id_prefix": None}
    url_safe = encode_token("thr_", token)
    standard = "thr_" + url_safe[4:].replace("-", "+").replace("_", "/")
    assert standard != url_safe, "the fixture must exercise '-' or '_'"
    assert ThreadQuery(resource_id=resource).decode_cursor(url_safe) == 0
    with pytest.raises(InvalidCursorError):
        ThreadQuery(resource_id=resource).decode_cursor(standard)


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"[]",
        b"[0]",
        b"7",
        b'"offset"',
        b"null",
        b"true",
        b"{",
        b"\xff\xfe\x00",
        b"{'offset': 0}",
        b"[" * 100_000,
        b'{"a":' * 100_000,
    ],
)
def test_non_object_json_is_refused(raw: bytes) -> None:
    """CUR-2: a body that is not a JSON object (or not JSON, or absurdly nested) raises InvalidCursorError."""
    with pytest.raises(InvalidCursorError):
        ThreadQuery().decode_cursor(encode_raw("thr_", raw))
    with pytest.raises(InvalidCursorError):
        MessageQuery().decode_cursor(encode_raw("msg_", raw))


def base_thread_token(offset: object = 3) -> dict[str, object]:
    return {"offset": offset, "resource_id": None, "parent_filter": "any", "id_prefix": None}


def base_message_token(offset: object = 3) -> dict[str, object]:
    return {"offset": offset, "after": None, "before": None, "order": "asc", "visibility": "any", "run_id": None}


@pytest.mark.parametrize("key", sorted(THREAD_KEYS))
def test_thread_token_missing_key_is_refused(key: str) -> None:
    """CUR-1, CUR-2: a thread token lacking any of its keys is refused."""
    token = base_thread_token()
    assert ThreadQuery().decode_cursor(encode_token("thr_", token)) == 3
    del token[key]
    with pytest.raises(InvalidCursorError):
        ThreadQuery().decode_cursor(encode_token("thr_", token))


@pytest.mark.parametrize("key", sorted(MESSAGE_KEYS))
def test_message_token_missing_key_is_refused(key: str) -> None:
    """CUR-1, CUR-2: a message token lacking any of its keys is refused."""
    token = base_message_token()
    assert MessageQuery().decode_cursor(encode_token("msg_", token)) == 3
    del token[key]
    with pytest.raises(InvalidCursorError):
        MessageQuery().decode_cursor(encode_token("msg_", token))


@pytest.mark.parametrize("extra", ["limit", "extra", "Offset", ""])
def test_token_with_extra_key_is_refused(extra: str) -> None:
    """CUR-1, CUR-2: a token holding a key the spec does not list is refused."""
    thread_token = base_thread_token()
    thread_token[extra] = None
    with pytest.raises(InvalidCursorError):
        ThreadQuery().decode_cursor(encode_token("thr_", thread_token))
    message_token = base_message_token()
    message_token[extra] = None
    with pytest.raises(InvalidCursorError):
        MessageQuery().decode_cursor(encode_token("msg_", message_token))


@pytest.mark.parametrize("offset", [-1, -100, 1.5, 2.0, "3", None, True, False, [3], {"n": 3}])
def test_token_with_bad_offset_is_refused(offset: object) -> None:
    """CUR-1, CUR-2: the offset inside a token must be an integer >= 0 (not a bool, float or string)."""
    with pytest.raises(InvalidCursorError):
        ThreadQuery().decode_cursor(encode_token("thr_", base_thread_token(offset)))
    with pytest.raises(InvalidCursorError):
        MessageQuery().decode_cursor(encode_token("msg_", base_message_token(offset)))


# --- tampering ---------------------------------------------------------------------------

FILTERED_THREAD_QUERY = ThreadQuery(resource_id="res-1", parent_filter=ThreadParentFilter.parent("p1"), id_prefix="a%")


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("resource_id", None),
        ("resource_id", "res-2"),
        ("resource_id", " res-1"),
        ("parent_filter", "any"),
        ("parent_filter", "root"),
        ("parent_filter", {"parent": "p2"}),
        ("parent_filter", {"parent": None}),
        ("parent_filter", {"parent": "p1", "x": 1}),
        ("parent_filter", "parent"),
        ("id_prefix", None),
        ("id_prefix", ""),
        ("id_prefix", "a"),
        ("id_prefix", "a%b"),
        ("id_prefix", "A%"),
    ],
)
def test_thread_token_with_changed_filter_is_refused(key: str, value: object) -> None:
    """CUR-2, SEC-1: re-encoding a thread token with any filter changed (or widened) is refused."""
    _, token = decode_body("thr_", FILTERED_THREAD_QUERY.encode_cursor(6))
    assert FILTERED_THREAD_QUERY.decode_cursor(encode_token("thr_", token)) == 6
    token[key] = value
    with pytest.raises(InvalidCursorError):
        FILTERED_THREAD_QUERY.decode_cursor(encode_token("thr_", token))


FILTERED_MESSAGE_QUERY = MessageQuery(
    after=2,
    before=40,
    order=MessageOrder.DESC,
    visibility=MessageVisibilityFilter.EXTERNAL,
    run_id="run-1",
)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("after", None),
        ("after", 1),
        ("after", "2"),
        ("before", None),
        ("before", 41),
        ("order", "asc"),
        ("order", "DESC"),
        ("visibility", "any"),
        ("visibility", "internal"),
        ("run_id", None),
        ("run_id", "run-2"),
        ("run_id", "run-"),
    ],
)
def test_message_token_with_changed_filter_is_refused(key: str, value: object) -> None:
    """CUR-2: re-encoding a message token with any filter changed is refused."""
    _, token = decode_body("msg_", FILTERED_MESSAGE_QUERY.encode_cursor(6))
    assert FILTERED_MESSAGE_QUERY.decode_cursor(encode_token("msg_", token)) == 6
    token[key] = value
    with pytest.raises(InvalidCursorError):
        FILTERED_MESSAGE_QUERY.decode_cursor(encode_token("msg_", token))


@pytest.mark.parametrize(("key", "value"), [("after", True), ("after", 1.0), ("before", False), ("before", 0.0)])
def test_message_token_with_filter_of_wrong_json_type_is_refused(key: str, value: object) -> None:
    """CUR-1, CUR-2: `after`/`before` are JSON integers; `true`, `false` or `1.0` in their place is not a token."""
    query = MessageQuery(after=1, before=0)
    _, token = decode_body("msg_", query.encode_cursor(2))
    assert query.decode_cursor(encode_token("msg_", token)) == 2
    token[key] = value
    with pytest.raises(InvalidCursorError):
        query.decode_cursor(encode_token("msg_", token))


def test_tampered_offset_is_honoured() -> None:
    """CUR-2: the filters are bound to the query, the offset is the token's own (any integer >= 0)."""
    _, token = decode_body("thr_", FILTERED_THREAD_QUERY.encode_cursor(6))
    token["offset"] = 1234
    assert FILTERED_THREAD_QUERY.decode_cursor(encode_token("thr_", token)) == 1234


@pytest.mark.parametrize(
    ("query", "offset"),
    [(FILTERED_THREAD_QUERY, 17), (ThreadQuery(), 0), (FILTERED_MESSAGE_QUERY, 9), (MessageQuery(), 0)],
)
def test_truncated_cursor_is_refused(query: ThreadQuery | MessageQuery, offset: int) -> None:
    """CUR-2: every proper prefix of a cursor is refused (the JSON object loses its closing brace)."""
    cursor = query.encode_cursor(offset)
    assert query.decode_cursor(cursor) == offset
    for end in range(len(cursor)):
        with pytest.raises(InvalidCursorError):
            query.decode_cursor(cursor[:end])


FLIP_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_+/=. é"


@given(
    query=thread_queries(),
    offset=st.integers(min_value=0, max_value=10**6),
    position=st.integers(min_value=0),
    replacement=st.text(alphabet=FLIP_ALPHABET, min_size=1, max_size=2),
)
def test_flipped_thread_cursor_is_refused_unless_it_is_still_a_matching_token(
    query: ThreadQuery, offset: int, position: int, replacement: str
) -> None:
    """CUR-2, SEC-1: a thread cursor with characters replaced decodes only if it is still a valid,
    matching token (then to the offset it holds); otherwise InvalidCursorError."""
    cursor = query.encode_cursor(offset)
    index = 4 + position % (len(cursor) - 4)
    flipped = cursor[:index] + replacement + cursor[index + 1 :]
    expected = oracle_offset("thr_", expected_thread_filters(query), flipped)
    if expected is None:
        with pytest.raises(InvalidCursorError):
            query.decode_cursor(flipped)
    else:
        assert query.decode_cursor(flipped) == expected


@given(
    query=message_queries(),
    offset=st.integers(min_value=0, max_value=10**6),
    position=st.integers(min_value=0),
    replacement=st.text(alphabet=FLIP_ALPHABET, min_size=1, max_size=2),
)
def test_flipped_message_cursor_is_refused_unless_it_is_still_a_matching_token(
    query: MessageQuery, offset: int, position: int, replacement: str
) -> None:
    """CUR-2: a message cursor with characters replaced decodes only if it is still a valid,
    matching token (then to the offset it holds); otherwise InvalidCursorError."""
    cursor = query.encode_cursor(offset)
    index = 4 + position % (len(cursor) - 4)
    flipped = cursor[:index] + replacement + cursor[index + 1 :]
    expected = oracle_offset("msg_", expected_message_filters(query), flipped)
    if expected is None:
        with pytest.raises(InvalidCursorError):
            query.decode_cursor(flipped)
    else:
        assert query.decode_cursor(flipped) == expected


def test_flipping_a_filter_character_is_refused() -> None:
    """CUR-2, SEC-1: changing one character inside the encoded id_prefix makes the cursor invalid."""
    query = ThreadQuery(id_prefix="tenant-aaaaaaaaaaaa")
    cursor = query.encode_cursor(0)
    raw, _ = decode_body("thr_", cursor)
    start = raw.index(b"tenant-")
    # Base64 packs 3 bytes into 4 characters: the character covering byte `start + 9` sits here.
    index = 4 + (start + 9) // 3 * 4
    for replacement in "AQgw":
        flipped = cursor[:index] + replacement + cursor[index + 1 :]
        if flipped == cursor:
            continue
        with pytest.raises(InvalidCursorError):
            query.decode_cursor(flipped)


# --- cursors bound to their query ------------------------------------------------------

THREAD_QUERIES = [
    ThreadQuery(),
    ThreadQuery(resource_id="r1"),
    ThreadQuery(resource_id="r2"),
    ThreadQuery(parent_filter=ThreadParentFilter.root()),
    ThreadQuery(parent_filter=ThreadParentFilter.parent("p1")),
    ThreadQuery(parent_filter=ThreadParentFilter.parent("p2")),
    ThreadQuery(id_prefix="a"),
    ThreadQuery(id_prefix="a%"),
    ThreadQuery(id_prefix="a_"),
    ThreadQuery(id_prefix="ab"),
    ThreadQuery(resource_id="r1", parent_filter=ThreadParentFilter.root(), id_prefix="a"),
]


@pytest.mark.parametrize("source", range(len(THREAD_QUERIES)))
def test_thread_cursor_of_another_query_is_refused(source: int) -> None:
    """CUR-2, SEC-1: a thread cursor decodes under its own query and is refused by every other filter set."""
    cursor = THREAD_QUERIES[source].encode_cursor(8)
    for index, other in enumerate(THREAD_QUERIES):
        if index == source:
            assert other.decode_cursor(cursor) == 8
        else:
            with pytest.raises(InvalidCursorError):
                other.decode_cursor(cursor)


MESSAGE_QUERIES = [
    MessageQuery(),
    MessageQuery(after=0),
    MessageQuery(after=3),
    MessageQuery(before=3),
    MessageQuery(before=4),
    MessageQuery(order=MessageOrder.DESC),
    MessageQuery(visibility=MessageVisibilityFilter.EXTERNAL),
    MessageQuery(visibility=MessageVisibilityFilter.INTERNAL),
    MessageQuery(run_id="run-1"),
    MessageQuery(run_id="run-2"),
    MessageQuery(after=3, before=9, order=MessageOrder.DESC, run_id="run-1"),
]


@pytest.mark.parametrize("source", range(len(MESSAGE_QUERIES)))
def test_message_cursor_of_another_query_is_refused(source: int) -> None:
    """CUR-2: a message cursor decodes under its own query and is refused by every other filter set."""
    cursor = MESSAGE_QUERIES[source].encode_cursor(8)
    for index, other in enumerate(MESSAGE_QUERIES):
        if index == source:
            assert other.decode_cursor(cursor) == 8
        else:
            with pytest.raises(InvalidCursorError):
                other.decode_cursor(cursor)


def test_window_fields_are_not_filters() -> None:
    """CUR-1: offset and limit are not filters, so a cursor survives a change of either."""
    cursor = ThreadQuery(offset=0, limit=5, id_prefix="x").encode_cursor(10)
    assert ThreadQuery(offset=30, limit=200, id_prefix="x").decode_cursor(cursor) == 10
    message_cursor = MessageQuery(limit=5, run_id="r").encode_cursor(10)
    assert MessageQuery(offset=7, limit=0, run_id="r").decode_cursor(message_cursor) == 10


# --- bare decimal offsets ----------------------------------------------------------------


@pytest.mark.parametrize("query", MESSAGE_QUERIES)
def test_message_query_accepts_bare_offsets(query: MessageQuery) -> None:
    """CUR-3: MessageQuery.decode_cursor accepts a bare decimal offset whatever its filters."""
    assert query.decode_cursor("7") == 7
    assert query.decode_cursor("0") == 0
    assert query.decode_cursor("123456789012") == 123456789012


def test_unfiltered_thread_query_accepts_bare_offsets() -> None:
    """CUR-3: ThreadQuery.decode_cursor accepts a bare decimal offset when the query has no filters."""
    assert ThreadQuery().decode_cursor("7") == 7
    assert ThreadQuery(offset=3, limit=9).decode_cursor("0") == 0
    # Filters that normalize away (QRY-1) leave the query unfiltered.
    assert ThreadQuery(resource_id="   ").decode_cursor("7") == 7
    assert ThreadQuery(parent_filter=ThreadParentFilter.parent(" ")).decode_cursor("7") == 7


@pytest.mark.parametrize(
    "query",
    [
        ThreadQuery(resource_id="r"),
        ThreadQuery(resource_id=" r "),
        ThreadQuery(parent_filter=ThreadParentFilter.root()),
        ThreadQuery(parent_filter=ThreadParentFilter.parent("p")),
        ThreadQuery(id_prefix="a"),
        ThreadQuery(id_prefix="%"),
    ],
)
def test_filtered_thread_query_refuses_bare_offsets(query: ThreadQuery) -> None:
    """CUR-3, SEC-1: a filtered ThreadQuery refuses a bare decimal offset; its own cursor still works."""
    with pytest.raises(InvalidCursorError):
        query.decode_cursor("7")
    assert query.decode_cursor(query.encode_cursor(7)) == 7


# --- normalization ---------------------------------------------------------------------


def test_resource_id_is_normalized_in_cursors() -> None:
    """QRY-1, CUR-1, CUR-2: resource_id "  r " and "r" are the same filter; cursors interchange."""
    padded = ThreadQuery(resource_id="  r ")
    plain = ThreadQuery(resource_id="r")
    assert plain.decode_cursor(padded.encode_cursor(4)) == 4
    assert padded.decode_cursor(plain.encode_cursor(5)) == 5
    _, token = decode_body("thr_", padded.encode_cursor(4))
    assert token["resource_id"] == "r"
    # A blank resource id is no filter at all.
    assert ThreadQuery().decode_cursor(ThreadQuery(resource_id=" \t ").encode_cursor(2)) == 2
    _, blank = decode_body("thr_", ThreadQuery(resource_id=" \t ").encode_cursor(2))
    assert blank["resource_id"] is None


def test_blank_parent_filter_acts_as_any() -> None:
    """QRY-1, CUR-1, CUR-2: parent(" ") is any(); parent(" p ") is parent("p")."""
    blank = ThreadQuery(parent_filter=ThreadParentFilter.parent(" "))
    anything = ThreadQuery(parent_filter=ThreadParentFilter.any())
    assert anything.decode_cursor(blank.encode_cursor(3)) == 3
    assert blank.decode_cursor(anything.encode_cursor(3)) == 3
    _, token = decode_body("thr_", blank.encode_cursor(3))
    assert token["parent_filter"] == "any"
    padded = ThreadQuery(parent_filter=ThreadParentFilter.parent(" p "))
    plain = ThreadQuery(parent_filter=ThreadParentFilter.parent("p"))
    assert plain.decode_cursor(padded.encode_cursor(1)) == 1
    assert padded.decode_cursor(plain.encode_cursor(1)) == 1
    with pytest.raises(InvalidCursorError):
        anything.decode_cursor(padded.encode_cursor(1))


def test_id_prefix_is_not_normalized() -> None:
    """QRY-1, QRY-2, SEC-1: id_prefix is literal, so " a" and "a" are different filters."""
    with pytest.raises(InvalidCursorError):
        ThreadQuery(id_prefix="a").decode_cursor(ThreadQuery(id_prefix=" a").encode_cursor(1))


def test_non_ascii_filters_are_utf8_in_the_token() -> None:
    """A filter of non-ASCII text is held as UTF-8 in the JSON token, not as \\u escapes (as serde_json writes it)."""
    cursor = ThreadQuery(id_prefix="é-线程").encode_cursor(0)
    body = cursor.removeprefix("thr_")
    raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    assert "é-线程".encode() in raw
    assert b"\\u" not in raw


@pytest.mark.parametrize(
    ("cursor", "reason"),
    [
        ("z" * 60, " does not start with 'thr_'"),
        ("thr_" + "a+b" * 20, " is not a valid token: not URL-safe base64"),
        (
            "thr_" + base64.urlsafe_b64encode(json.dumps({"a": "x" * 60}).encode()).decode().rstrip("="),
            " does not hold the fields ['id_prefix', 'offset', 'parent_filter', 'resource_id']",
        ),
    ],
    ids=["prefix", "alphabet", "fields"],
)
def test_a_refused_cursor_is_quoted_to_40_characters_with_the_reason(cursor: str, reason: str) -> None:
    """The error quotes the cursor's first 40 characters (enough to recognise it, never a page of text)."""
    with pytest.raises(InvalidCursorError) as refused:
        ThreadQuery().decode_cursor(cursor)
    assert str(refused.value) == f"cursor {cursor[:40]!r}{reason}"


def test_a_long_cursor_with_a_bad_offset_is_quoted_to_40_characters() -> None:
    """A token whose offset is negative is refused naming the offset, quoting 40 characters."""
    token = {"offset": -5, "resource_id": None, "parent_filter": {"kind": "any"}, "id_prefix": "p" * 40}
    body = base64.urlsafe_b64encode(json.dumps(token, separators=(",", ":")).encode()).decode().rstrip("=")
    cursor = "thr_" + body
    with pytest.raises(InvalidCursorError) as refused:
        ThreadQuery(id_prefix="p" * 40).decode_cursor(cursor)
    assert str(refused.value) == f"cursor {cursor[:40]!r} holds an invalid offset -5"


def test_a_cursor_that_is_no_string_is_refused_naming_its_type() -> None:
    """decode_cursor(5) says a cursor must be a string and what it got."""
    with pytest.raises(InvalidCursorError, match=r"^cursor must be a string, got int$"):
        ThreadQuery().decode_cursor(5)  # type: ignore[arg-type]
