"""The protocol both sides share: versions, error codes, storage errors as JSON, and the method table.

Every store method is one JSON-RPC method of the same name whose params are named as
the Python parameters (SPEC section 1) and whose payloads have the serde JSON shape
(SPEC section 2). A `Method` row says how each argument and the result cross the
wire, so the kit's client and the Python server cannot disagree. `docs/PROTOCOL.md`
is the specification; this module is its code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from conformance.contract._codec import JsonObject, JsonValue
from conformance.contract._enums import ChildThreadDeleteStrategy, MessageOrder, MessageVisibilityFilter, RunStatus
from conformance.contract._errors import (
    AlreadyExistsError,
    CommitUnknownError,
    InvalidCursorError,
    NotFoundError,
    SerializationError,
    StorageError,
    StorageIOError,
    ValidationError,
    VersionConflictError,
)
from conformance.contract._models import Message, MessageRecord, Model, Thread, ThreadMetadata
from conformance.contract._queries import (
    MessagePage,
    MessageQuery,
    RunPage,
    RunQuery,
    ThreadPage,
    ThreadParentFilter,
    ThreadQuery,
)
from conformance.contract._runs import CheckpointSnapshot, MessageSeqRange, PersistedState, RunRecord

__all__ = ["METHODS", "PROTOCOL_VERSION", "Method", "error_from_json", "error_to_json"]

#: The protocol version this kit speaks; a store must answer `initialize` with the same major version.
PROTOCOL_VERSION = "1.0"

#: JSON-RPC error codes. -32000 carries a storage error in `data`; -32800 is LSP's RequestCancelled.
STORAGE_ERROR = -32000
NOT_READY = -32002
REQUEST_CANCELLED = -32800
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603

#: The lifecycle methods and the cancellation notification.
INITIALIZE = "initialize"
OPEN = "open"
CLOSE = "close"
SHUTDOWN = "shutdown"
CANCEL_REQUEST = "$/cancelRequest"

_T = TypeVar("_T")

#: Storage errors by the `kind` they cross the wire as (the Rust variant names, plus InvalidCursor).
ERROR_KINDS: dict[str, type[StorageError]] = {
    "Validation": ValidationError,
    "InvalidCursor": InvalidCursorError,
    "NotFound": NotFoundError,
    "AlreadyExists": AlreadyExistsError,
    "VersionConflict": VersionConflictError,
    "Io": StorageIOError,
    "Serialization": SerializationError,
    "CommitUnknown": CommitUnknownError,
}


def error_to_json(error: StorageError) -> JsonObject:
    """The `data` of a storage error response: `{"kind": ..., "message": ...}` plus the error's fields."""
    kind = next((name for name, cls in ERROR_KINDS.items() if type(error) is cls), None)
    if kind is None:
        kind = next(name for name, cls in ERROR_KINDS.items() if isinstance(error, cls) and name != "InvalidCursor")
    data: JsonObject = {"kind": kind, "message": str(error)}
    if isinstance(error, VersionConflictError):
        data["expected"] = error.expected
        data["actual"] = error.actual
    return data


def error_from_json(data: object) -> StorageError:
    """The storage error a response's `data` describes. Raises `ValueError` when it describes none."""
    if not isinstance(data, dict) or not isinstance(data.get("kind"), str):
        raise ValueError("a storage error (-32000) needs data {'kind': ..., 'message': ...}")
    kind = data["kind"]
    cls = ERROR_KINDS.get(kind)
    if cls is None:
        raise ValueError(f"unknown storage error kind {kind!r}; known: {', '.join(ERROR_KINDS)}")
    if cls is VersionConflictError:
        expected, actual = data.get("expected"), data.get("actual")
        if not isinstance(expected, int) or not isinstance(actual, int) or not _is_int(expected) or not _is_int(actual):
            raise ValueError("a VersionConflict needs integer 'expected' and 'actual'")
        return VersionConflictError(expected, actual)
    message = data.get("message")
    return cls(message if isinstance(message, str) else kind)


def _is_int(value: object) -> bool:
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
        if not _is_int(value):
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
    if not isinstance(listed, list) or not _is_int(total) or not isinstance(has_more, bool):
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
            items=_TEXT_LIST.decode(items),
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
            records=_RECORD_LIST.decode(records),
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
        return RunPage(items=_RUN_LIST.decode(items), total=total, has_more=has_more)


TEXT = _Text()
OPTIONAL_TEXT = _Optional(TEXT)
PASSED = _Passed()
NOTHING = _Nothing()
_TEXT_LIST = _List(TEXT, "str")
_RECORD_LIST = _List(_Model(MessageRecord), "MessageRecord")
_RUN_LIST = _List(_Model(RunRecord), "RunRecord")
_MESSAGES = _List(_Model(Message), "Message")


@dataclass(frozen=True, slots=True)
class Method(Generic[_T]):
    """One store method on the wire: its params (name, how it crosses) and its result.

    `abstract` methods every store process must answer; for the others it may answer
    -32601 (method not found) and the kit runs the contract's default in their place.
    """

    name: str
    params: tuple[tuple[str, Value[Any]], ...]
    result: Value[_T]
    abstract: bool = False

    def encode_params(self, args: tuple[Any, ...]) -> JsonObject:
        """The `params` object of a call with positional `args`; `TypeError` names a mistyped one."""
        return {name: value.encode(arg, name) for (name, value), arg in zip(self.params, args, strict=True)}

    def decode_params(self, params: JsonValue) -> dict[str, Any]:
        """Keyword arguments from a `params` object.

        Raises `KeyError` naming a missing param and `SerializationError` for one of the
        wrong shape.
        """
        if not isinstance(params, dict):
            raise SerializationError(f"{self.name}: params must be an object")
        missing = [name for name, _ in self.params if name not in params]
        if missing:
            raise KeyError(missing[0])
        return {name: value.decode(params[name]) for name, value in self.params}


def _method(name: str, result: Value[_T], *params: tuple[str, Value[Any]], abstract: bool = False) -> Method[_T]:
    return Method(name, params, result, abstract)


_THREAD_ID = ("thread_id", TEXT)

LOAD_THREAD = _method("load_thread", _Optional(_Model(Thread)), _THREAD_ID, abstract=True)
SAVE_THREAD = _method("save_thread", NOTHING, ("thread", _Model(Thread)), abstract=True)
DELETE_THREAD = _method("delete_thread", NOTHING, _THREAD_ID, abstract=True)
LIST_THREADS = _method("list_threads", _TEXT_LIST, ("offset", PASSED), ("limit", PASSED), abstract=True)
LOAD_COMMITTED_MESSAGES = _method("load_committed_messages", _Optional(_MESSAGES), _THREAD_ID, abstract=True)
SAVE_MESSAGES = _method("save_messages", NOTHING, _THREAD_ID, ("messages", _MESSAGES), abstract=True)
DELETE_MESSAGES = _method("delete_messages", NOTHING, _THREAD_ID, abstract=True)
UPDATE_THREAD_METADATA = _method(
    "update_thread_metadata", NOTHING, ("id", TEXT), ("metadata", _Model(ThreadMetadata)), abstract=True
)
CREATE_RUN = _method("create_run", NOTHING, ("record", _Model(RunRecord)), abstract=True)
LOAD_RUN = _method("load_run", _Optional(_Model(RunRecord)), ("run_id", TEXT), abstract=True)
LATEST_RUN = _method("latest_run", _Optional(_Model(RunRecord)), _THREAD_ID, abstract=True)
LIST_RUNS = _method("list_runs", _RunPage(), ("query", _RunQuery()), abstract=True)
CHECKPOINT = _method(
    "checkpoint", NOTHING, _THREAD_ID, ("messages", _MESSAGES), ("run", _Model(RunRecord)), abstract=True
)

SAVE_THREAD_VALIDATED = _method("save_thread_validated", NOTHING, ("thread", _Model(Thread)))
SAVE_THREAD_STATE = _method("save_thread_state", NOTHING, _THREAD_ID, ("state", _Model(PersistedState)))
LOAD_THREAD_STATE = _method("load_thread_state", _Optional(_Model(PersistedState)), _THREAD_ID)
DELETE_THREAD_WITH_STRATEGY = _method("delete_thread_with_strategy", NOTHING, _THREAD_ID, ("strategy", _Strategy()))
LIST_THREADS_QUERY = _method("list_threads_query", _ThreadPage(), ("query", _ThreadQuery()))
LIST_CHILD_THREADS = _method("list_child_threads", _List(_Model(Thread), "Thread"), ("parent_thread_id", TEXT))
VALIDATE_THREAD_HIERARCHY = _method(
    "validate_thread_hierarchy", NOTHING, _THREAD_ID, ("parent_thread_id", OPTIONAL_TEXT)
)
LOAD_MESSAGES = _method("load_messages", _Optional(_MESSAGES), _THREAD_ID)
LOAD_MESSAGE_RECORDS = _method("load_message_records", _Optional(_RECORD_LIST), _THREAD_ID)
LIST_MESSAGE_RECORDS = _method("list_message_records", _MessagePage(), _THREAD_ID, ("query", _MessageQuery()))
APPEND_MESSAGE_RECORDS = _method("append_message_records", _RECORD_LIST, _THREAD_ID, ("messages", _MESSAGES))
LOAD_MESSAGE_RECORD = _method("load_message_record", _Optional(_Model(MessageRecord)), _THREAD_ID, ("message_id", TEXT))
LOAD_MESSAGE_RECORDS_RANGE = _method(
    "load_message_records_range", _RECORD_LIST, _THREAD_ID, ("range", _Model(MessageSeqRange))
)
CHECKPOINT_APPEND = _method(
    "checkpoint_append",
    _Integer(),
    _THREAD_ID,
    ("messages", _MESSAGES),
    ("expected_version", PASSED),
    ("run", _Model(RunRecord)),
)
LOAD_CHECKPOINT = _method("load_checkpoint", _Optional(_Model(CheckpointSnapshot)), _THREAD_ID)

#: Every store method by name, abstract ones first, in the order of SPEC section 1.
METHODS: dict[str, Method[Any]] = {
    method.name: method
    for method in (
        LOAD_THREAD,
        SAVE_THREAD,
        DELETE_THREAD,
        LIST_THREADS,
        LOAD_COMMITTED_MESSAGES,
        SAVE_MESSAGES,
        DELETE_MESSAGES,
        UPDATE_THREAD_METADATA,
        CREATE_RUN,
        LOAD_RUN,
        LATEST_RUN,
        LIST_RUNS,
        CHECKPOINT,
        SAVE_THREAD_VALIDATED,
        SAVE_THREAD_STATE,
        LOAD_THREAD_STATE,
        DELETE_THREAD_WITH_STRATEGY,
        LIST_THREADS_QUERY,
        LIST_CHILD_THREADS,
        VALIDATE_THREAD_HIERARCHY,
        LOAD_MESSAGES,
        LOAD_MESSAGE_RECORDS,
        LIST_MESSAGE_RECORDS,
        APPEND_MESSAGE_RECORDS,
        LOAD_MESSAGE_RECORD,
        LOAD_MESSAGE_RECORDS_RANGE,
        CHECKPOINT_APPEND,
        LOAD_CHECKPOINT,
    )
}
