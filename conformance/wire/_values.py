"""How each argument and result of a store method crosses the wire: the `Value` codecs.

`encode` runs on the kit's side and refuses a Python value of the wrong type with a
`TypeError` naming the argument, as every store does; `decode` refuses JSON of the
wrong shape with `SerializationError`. Models cross as their serde JSON
(`to_json`/`from_json`); queries and pages, which have no JSON form in the contract,
cross in the shape the Rust serde derives give them (absent filters omitted).
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from conformance.contract._codec import JsonObject, JsonValue
from conformance.contract._enums import ChildThreadDeleteStrategy, MessageOrder, MessageVisibilityFilter, RunStatus
from conformance.contract._errors import SerializationError
from conformance.contract._models import Message, MessageRecord, Model
from conformance.contract._queries import (
    MessagePage,
    MessageQuery,
    RunPage,
    RunQuery,
    ThreadPage,
    ThreadParentFilter,
    ThreadQuery,
)
from conformance.contract._runs import RunRecord

__all__ = [
    "MESSAGES",
    "MESSAGE_PAGE",
    "MESSAGE_QUERY",
    "NOTHING",
    "OPTIONAL_TEXT",
    "PASSED",
    "RECORDS",
    "RUN_PAGE",
    "RUNS",
    "RUN_QUERY",
    "STRATEGY",
    "INTEGER",
    "TEXT",
    "TEXTS",
    "THREAD_PAGE",
    "THREAD_QUERY",
    "Value",
    "is_int",
    "list_of",
    "model_of",
    "optional",
]

_T = TypeVar("_T")


def is_int(value: object) -> bool:
    """True for an int that is not a bool."""
    return isinstance(value, int) and not isinstance(value, bool)


def _shape(expected: str, value: object) -> SerializationError:
    text = repr(value)
    return SerializationError(f"expected {expected}, got {text if len(text) <= 60 else text[:57] + '...'}")


class Value(Generic[_T]):
    """How one argument or result crosses the wire.

    `encode` runs on the kit's side and raises `TypeError` naming the argument for a
    Python value of the wrong type, as every store does; `decode` raises
    `SerializationError` for JSON of the wrong shape.
    """

    def encode(self, value: _T, name: str) -> JsonValue:
        raise NotImplementedError

    def decode(self, value: JsonValue) -> _T:
        raise NotImplementedError


def _require(value: object, expected: type | tuple[type, ...], name: str, what: str | None = None) -> None:
    if not isinstance(value, expected):
        wanted = what or f"a {getattr(expected, '__name__', expected)}"
        raise TypeError(f"argument '{name}' must be {wanted}, got {type(value).__name__}")


class _Text(Value[str]):
    def encode(self, value: str, name: str) -> JsonValue:
        _require(value, str, name)
        return value

    def decode(self, value: JsonValue) -> str:
        if not isinstance(value, str):
            raise _shape("a string", value)
        return value


class _Passed(Value[Any]):
    """A number the store itself checks (`offset`, `limit`, `expected_version`): passed as given."""

    def encode(self, value: Any, name: str) -> JsonValue:
        if value is not None and not isinstance(value, (bool, int, float, str)):
            raise TypeError(f"argument '{name}' must be an integer, got {type(value).__name__}")
        result: JsonValue = value
        return result

    def decode(self, value: JsonValue) -> Any:
        return value


class _Strategy(Value[Any]):
    """A delete strategy or its JSON spelling; the store refuses an unknown one (DEL)."""

    def encode(self, value: Any, name: str) -> JsonValue:
        if isinstance(value, ChildThreadDeleteStrategy):
            return value.value
        _require(value, str, name, "a ChildThreadDeleteStrategy or its name")
        result: str = value
        return result

    def decode(self, value: JsonValue) -> Any:
        if not isinstance(value, str):
            raise _shape("a delete strategy name", value)
        return value


class _Integer(Value[int]):
    def encode(self, value: int, name: str) -> JsonValue:
        _require(value, int, name)
        return value

    def decode(self, value: JsonValue) -> int:
        if not is_int(value):
            raise _shape("an integer", value)
        assert isinstance(value, int)
        return value


class _Nothing(Value[None]):
    def encode(self, value: None, name: str) -> JsonValue:
        return None

    def decode(self, value: JsonValue) -> None:
        if value is not None:
            raise _shape("null", value)


_M = TypeVar("_M", bound=Model)


class _Model(Value[_M]):
    def __init__(self, cls: type[_M]) -> None:
        self.cls = cls

    def encode(self, value: _M, name: str) -> JsonValue:
        _require(value, self.cls, name)
        return value.to_json()

    def decode(self, value: JsonValue) -> _M:
        return self.cls.from_json(value)


class _Optional(Value[_T | None]):
    def __init__(self, inner: Value[_T]) -> None:
        self.inner = inner

    def encode(self, value: _T | None, name: str) -> JsonValue:
        return None if value is None else self.inner.encode(value, name)

    def decode(self, value: JsonValue) -> _T | None:
        return None if value is None else self.inner.decode(value)


class _List(Value[list[_T]]):
    def __init__(self, inner: Value[_T], what: str) -> None:
        self.inner = inner
        self.what = what

    def encode(self, value: list[_T], name: str) -> JsonValue:
        _require(value, (list, tuple), name, f"a list of {self.what}")
        return [self.inner.encode(item, f"{name}[{index}]") for index, item in enumerate(value)]

    def decode(self, value: JsonValue) -> list[_T]:
        if not isinstance(value, list):
            raise _shape(f"a list of {self.what}", value)
        return [self.inner.decode(item) for item in value]


def _fields(value: JsonValue, owner: str, required: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _shape(f"a {owner} object", value)
    missing = [name for name in required if name not in value]
    if missing:
        raise SerializationError(f"{owner}: missing field {missing[0]!r}")
    return value


def _omit_none(**fields: Any) -> JsonObject:
    return {name: value for name, value in fields.items() if value is not None}


def _enum_value(value: object) -> Any:
    return value.value if isinstance(value, (MessageOrder, MessageVisibilityFilter, RunStatus)) else value


def _choice(enum_type: type[Any], value: JsonValue, owner: str, name: str) -> Any:
    try:
        return enum_type(value)
    except ValueError:
        raise SerializationError(f"{owner}: field {name!r} must be one of {[e.value for e in enum_type]}") from None


def _parent_filter_to_json(value: object) -> JsonValue:
    if isinstance(value, ThreadParentFilter):
        json_value: JsonValue = value.to_json()  # type: ignore[assignment]
        return json_value
    raise TypeError(f"ThreadQuery.parent_filter must be a ThreadParentFilter, got {type(value).__name__}")


def _parent_filter_from_json(value: JsonValue) -> ThreadParentFilter:
    if value == "any":
        return ThreadParentFilter.any()
    if value == "root":
        return ThreadParentFilter.root()
    if isinstance(value, dict) and set(value) == {"parent"} and isinstance(value["parent"], str):
        return ThreadParentFilter.parent(value["parent"])
    raise _shape('"any", "root" or {"parent": id}', value)


class _ThreadQuery(Value[ThreadQuery]):
    """`{"offset", "limit", "resource_id"?, "parent_filter"? (omitted when any), "id_prefix"?}`."""

    def encode(self, value: ThreadQuery, name: str) -> JsonValue:
        _require(value, ThreadQuery, name)
        parent = _parent_filter_to_json(value.parent_filter)
        fields = _omit_none(resource_id=value.resource_id, id_prefix=value.id_prefix)
        if parent != "any":
            fields["parent_filter"] = parent
        return {"offset": value.offset, "limit": value.limit, **fields}

    def decode(self, value: JsonValue) -> ThreadQuery:
        fields = _fields(value, "ThreadQuery", ("offset", "limit"))
        return ThreadQuery(
            offset=fields["offset"],
            limit=fields["limit"],
            resource_id=fields.get("resource_id"),
            parent_filter=_parent_filter_from_json(fields.get("parent_filter", "any")),
            id_prefix=fields.get("id_prefix"),
        )


class _MessageQuery(Value[MessageQuery]):
    """`{"offset", "limit", "after"?, "before"?, "order", "visibility", "run_id"?}`."""

    def encode(self, value: MessageQuery, name: str) -> JsonValue:
        _require(value, MessageQuery, name)
        return {
            "offset": value.offset,
            "limit": value.limit,
            **_omit_none(after=value.after, before=value.before),
            "order": _enum_value(value.order),
            "visibility": _enum_value(value.visibility),
            **_omit_none(run_id=value.run_id),
        }

    def decode(self, value: JsonValue) -> MessageQuery:
        owner = "MessageQuery"
        fields = _fields(value, owner, ("offset", "limit"))
        return MessageQuery(
            offset=fields["offset"],
            limit=fields["limit"],
            after=fields.get("after"),
            before=fields.get("before"),
            order=_choice(MessageOrder, fields.get("order", "asc"), owner, "order"),
            visibility=_choice(MessageVisibilityFilter, fields.get("visibility", "any"), owner, "visibility"),
            run_id=fields.get("run_id"),
        )


class _RunQuery(Value[RunQuery]):
    """`{"offset", "limit", "thread_id"?, "status"?, "id_prefix"?}`."""

    def encode(self, value: RunQuery, name: str) -> JsonValue:
        _require(value, RunQuery, name)
        fields = _omit_none(thread_id=value.thread_id, status=_enum_value(value.status), id_prefix=value.id_prefix)
        return {"offset": value.offset, "limit": value.limit, **fields}

    def decode(self, value: JsonValue) -> RunQuery:
        owner = "RunQuery"
        fields = _fields(value, owner, ("offset", "limit"))
        status = fields.get("status")
        return RunQuery(
            offset=fields["offset"],
            limit=fields["limit"],
            thread_id=fields.get("thread_id"),
            status=None if status is None else _choice(RunStatus, status, owner, "status"),
            id_prefix=fields.get("id_prefix"),
        )


def _page_fields(value: JsonValue, owner: str, items: str) -> tuple[list[JsonValue], int, bool, dict[str, Any]]:
    fields = _fields(value, owner, (items, "total", "has_more"))
    listed, total, has_more = fields[items], fields["total"], fields["has_more"]
    if not isinstance(listed, list) or not is_int(total) or not isinstance(has_more, bool):
        raise SerializationError(f"{owner}: expected a list '{items}', an integer 'total' and a boolean 'has_more'")
    for cursor in ("next_cursor", "prev_cursor"):
        if not isinstance(fields.get(cursor), (str, type(None))):
            raise SerializationError(f"{owner}: field {cursor!r} must be a string or absent")
    assert isinstance(total, int)
    return listed, total, has_more, fields


def _cursors(page: ThreadPage | MessagePage) -> JsonObject:
    return _omit_none(next_cursor=page.next_cursor, prev_cursor=page.prev_cursor)


class _ThreadPage(Value[ThreadPage]):
    """`{"items": [id], "total", "has_more", "next_cursor"?, "prev_cursor"?}`."""

    def encode(self, value: ThreadPage, name: str) -> JsonValue:
        items: list[JsonValue] = list(value.items)
        return {"items": items, "total": value.total, "has_more": value.has_more, **_cursors(value)}

    def decode(self, value: JsonValue) -> ThreadPage:
        items, total, has_more, fields = _page_fields(value, "ThreadPage", "items")
        return ThreadPage(
            items=TEXTS.decode(items),
            total=total,
            has_more=has_more,
            next_cursor=fields.get("next_cursor"),
            prev_cursor=fields.get("prev_cursor"),
        )


class _MessagePage(Value[MessagePage]):
    """`{"records": [MessageRecord], "total", "has_more", "next_cursor"?, "prev_cursor"?}`."""

    def encode(self, value: MessagePage, name: str) -> JsonValue:
        records: list[JsonValue] = [record.to_json() for record in value.records]
        return {"records": records, "total": value.total, "has_more": value.has_more, **_cursors(value)}

    def decode(self, value: JsonValue) -> MessagePage:
        records, total, has_more, fields = _page_fields(value, "MessagePage", "records")
        return MessagePage(
            records=RECORDS.decode(records),
            total=total,
            has_more=has_more,
            next_cursor=fields.get("next_cursor"),
            prev_cursor=fields.get("prev_cursor"),
        )


class _RunPage(Value[RunPage]):
    """`{"items": [RunRecord], "total", "has_more"}`."""

    def encode(self, value: RunPage, name: str) -> JsonValue:
        items: list[JsonValue] = [run.to_json() for run in value.items]
        return {"items": items, "total": value.total, "has_more": value.has_more}

    def decode(self, value: JsonValue) -> RunPage:
        items, total, has_more, _ = _page_fields(value, "RunPage", "items")
        return RunPage(items=RUNS.decode(items), total=total, has_more=has_more)


def model_of(cls: type[_M]) -> Value[_M]:
    """A model, as its serde JSON."""
    return _Model(cls)


def optional(inner: Value[_T]) -> Value[_T | None]:
    """`null` or a value of `inner`."""
    return _Optional(inner)


def list_of(inner: Value[_T], what: str) -> Value[list[_T]]:
    """A list (a tuple is accepted on encoding) of values of `inner`; `what` names them in errors."""
    return _List(inner, what)


TEXT: Value[str] = _Text()
OPTIONAL_TEXT = optional(TEXT)
PASSED: Value[Any] = _Passed()
NOTHING: Value[None] = _Nothing()
INTEGER: Value[int] = _Integer()
STRATEGY: Value[Any] = _Strategy()
TEXTS = list_of(TEXT, "str")
RECORDS = list_of(model_of(MessageRecord), "MessageRecord")
RUNS = list_of(model_of(RunRecord), "RunRecord")
MESSAGES = list_of(model_of(Message), "Message")
THREAD_QUERY: Value[ThreadQuery] = _ThreadQuery()
MESSAGE_QUERY: Value[MessageQuery] = _MessageQuery()
RUN_QUERY: Value[RunQuery] = _RunQuery()
THREAD_PAGE: Value[ThreadPage] = _ThreadPage()
MESSAGE_PAGE: Value[MessagePage] = _MessagePage()
RUN_PAGE: Value[RunPage] = _RunPage()
