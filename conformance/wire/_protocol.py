"""The protocol both sides share: versions, error codes, storage errors as JSON, and the method table.

Every store method is one JSON-RPC method of the same name whose params are named as
the Python parameters (SPEC section 1) and whose payloads have the serde JSON shape
(SPEC section 2). A `Method` row says how each argument and the result cross the
wire, so the kit's client and the Python server cannot disagree. `docs/PROTOCOL.md`
is the specification; this module is its code.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from conformance.contract._codec import JsonObject, JsonValue
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
from conformance.contract._models import MessageRecord, Thread, ThreadMetadata
from conformance.contract._runs import CheckpointSnapshot, MessageSeqRange, PersistedState, RunRecord
from conformance.wire._values import (
    INTEGER,
    MESSAGE_PAGE,
    MESSAGE_QUERY,
    MESSAGES,
    NOTHING,
    OPTIONAL_TEXT,
    PASSED,
    RECORDS,
    RUN_PAGE,
    RUN_QUERY,
    STRATEGY,
    TEXT,
    TEXTS,
    THREAD_PAGE,
    THREAD_QUERY,
    Value,
    is_int,
    list_of,
    model_of,
    optional,
)

__all__ = [
    "METHODS",
    "PROTOCOL_VERSION",
    "Method",
    "Param",
    "error_from_json",
    "error_to_json",
    "lone_surrogate_in",
    "wide_integer_in",
]

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


#: The integers strict JSON holds as integers: serde_json reads -2**63 .. 2**64 - 1 as `i64` or
#: `u64`, and any other integer literal as a float (PROTOCOL.md, "Values strict JSON cannot hold").
STRICT_INTEGERS = range(-(2**63), 2**64)
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def lone_surrogate_in(value: JsonValue, where: str = "params") -> str | None:
    """Where `value` holds a lone surrogate (in a string or a key), in words, else None.

    A Python string may hold one; it crosses as its `\\udxxx` escape, and a strict JSON
    parser (serde_json) refuses the whole line.

        lone_surrogate_in({"thread_id": "lone\\ud800"}) == "a lone surrogate in params.thread_id"
    """
    return _found(value, where, lambda item: isinstance(item, str) and _LONE_SURROGATE.search(item) is not None)


def wide_integer_in(value: JsonValue, where: str = "params") -> str | None:
    """Where `value` holds an integer outside `STRICT_INTEGERS`, in words, else None.

    wide_integer_in({"offset": 2**64 + 1}) == "the integer 18446744073709551617 in params.offset"
    """
    return _found(
        value, where, lambda item: isinstance(item, int) and not isinstance(item, bool) and item not in STRICT_INTEGERS
    )


def _found(value: object, where: str, odd: Callable[[object], bool]) -> str | None:
    """The first value or key within `value` (which sits at `where`) that is `odd`, in words, else None."""
    if odd(value):
        return f"a lone surrogate in {where}" if isinstance(value, str) else f"the integer {value} in {where}"
    parts: list[tuple[object, str]]
    if isinstance(value, dict):
        parts = [(key, f"a key of {where}") for key in value]
        parts += [(item, f"{where}.{key}") for key, item in value.items()]
    elif isinstance(value, list):
        parts = [(item, f"{where}[{index}]") for index, item in enumerate(value)]
    else:
        return None
    return next((found for part, at in parts if (found := _found(part, at, odd)) is not None), None)


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
        raise ValueError(
            f"unknown storage error kind {kind!r}; known: {', '.join(ERROR_KINDS)} "
            "(a store answers an error of its own that has no kind here as Io: docs/PROTOCOL.md section 4)"
        )
    if cls is VersionConflictError:
        expected, actual = data.get("expected"), data.get("actual")
        if not isinstance(expected, int) or not isinstance(actual, int) or not is_int(expected) or not is_int(actual):
            raise ValueError("a VersionConflict needs integer 'expected' and 'actual'")
        return VersionConflictError(expected, actual)
    message = data.get("message")
    return cls(message if isinstance(message, str) else kind)


@dataclass(frozen=True, slots=True)
class Param:
    """One param of a store method: its name, how its value crosses, and whether it is `?`.

    An `optional` param (`?` in PROTOCOL.md section 3) may be left out or be `null`:
    both mean `None`. The kit leaves it out when it is `None`, so that a store that
    requires it fails; every other param is required.
    """

    name: str
    value: Value[Any]
    optional: bool = False


@dataclass(frozen=True, slots=True)
class Method(Generic[_T]):
    """One store method on the wire: its params and its result.

    `abstract` methods every store process must answer; for the others it may answer
    -32601 (method not found) and the kit runs the contract's default in their place.
    """

    name: str
    params: tuple[Param, ...]
    result: Value[_T]
    abstract: bool = False

    def encode_params(self, args: tuple[Any, ...]) -> JsonObject:
        """The `params` object of a call with positional `args`; `TypeError` names a mistyped one.

        An optional param whose value is `None` is left out.
        """
        return {
            param.name: param.value.encode(arg, param.name)
            for param, arg in zip(self.params, args, strict=True)
            if not (param.optional and arg is None)
        }

    def decode_params(self, params: JsonValue) -> dict[str, Any]:
        """Keyword arguments from a `params` object; an optional param left out is `None`.

        Raises `KeyError` naming a missing required param and `SerializationError` for
        one of the wrong shape.
        """
        if not isinstance(params, dict):
            raise SerializationError(f"{self.name}: params must be an object")
        missing = [param.name for param in self.params if not param.optional and param.name not in params]
        if missing:
            raise KeyError(missing[0])
        return {param.name: param.value.decode(params.get(param.name)) for param in self.params}


def _method(
    name: str, result: Value[_T], *params: Param | tuple[str, Value[Any]], abstract: bool = False
) -> Method[_T]:
    return Method(
        name, tuple(param if isinstance(param, Param) else Param(*param) for param in params), result, abstract
    )


_THREAD_ID = ("thread_id", TEXT)

LOAD_THREAD = _method("load_thread", optional(model_of(Thread)), _THREAD_ID, abstract=True)
SAVE_THREAD = _method("save_thread", NOTHING, ("thread", model_of(Thread)), abstract=True)
DELETE_THREAD = _method("delete_thread", NOTHING, _THREAD_ID, abstract=True)
LIST_THREADS = _method("list_threads", TEXTS, ("offset", PASSED), ("limit", PASSED), abstract=True)
LOAD_COMMITTED_MESSAGES = _method("load_committed_messages", optional(MESSAGES), _THREAD_ID, abstract=True)
SAVE_MESSAGES = _method("save_messages", NOTHING, _THREAD_ID, ("messages", MESSAGES), abstract=True)
DELETE_MESSAGES = _method("delete_messages", NOTHING, _THREAD_ID, abstract=True)
UPDATE_THREAD_METADATA = _method(
    "update_thread_metadata", NOTHING, ("id", TEXT), ("metadata", model_of(ThreadMetadata)), abstract=True
)
CREATE_RUN = _method("create_run", NOTHING, ("record", model_of(RunRecord)), abstract=True)
LOAD_RUN = _method("load_run", optional(model_of(RunRecord)), ("run_id", TEXT), abstract=True)
LATEST_RUN = _method("latest_run", optional(model_of(RunRecord)), _THREAD_ID, abstract=True)
LIST_RUNS = _method("list_runs", RUN_PAGE, ("query", RUN_QUERY), abstract=True)
CHECKPOINT = _method(
    "checkpoint", NOTHING, _THREAD_ID, ("messages", MESSAGES), ("run", model_of(RunRecord)), abstract=True
)

SAVE_THREAD_VALIDATED = _method("save_thread_validated", NOTHING, ("thread", model_of(Thread)))
SAVE_THREAD_STATE = _method("save_thread_state", NOTHING, _THREAD_ID, ("state", model_of(PersistedState)))
LOAD_THREAD_STATE = _method("load_thread_state", optional(model_of(PersistedState)), _THREAD_ID)
DELETE_THREAD_WITH_STRATEGY = _method("delete_thread_with_strategy", NOTHING, _THREAD_ID, ("strategy", STRATEGY))
LIST_THREADS_QUERY = _method("list_threads_query", THREAD_PAGE, ("query", THREAD_QUERY))
LIST_CHILD_THREADS = _method("list_child_threads", list_of(model_of(Thread), "Thread"), ("parent_thread_id", TEXT))
VALIDATE_THREAD_HIERARCHY = _method(
    "validate_thread_hierarchy", NOTHING, _THREAD_ID, Param("parent_thread_id", OPTIONAL_TEXT, optional=True)
)
LOAD_MESSAGES = _method("load_messages", optional(MESSAGES), _THREAD_ID)
LOAD_MESSAGE_RECORDS = _method("load_message_records", optional(RECORDS), _THREAD_ID)
LIST_MESSAGE_RECORDS = _method("list_message_records", MESSAGE_PAGE, _THREAD_ID, ("query", MESSAGE_QUERY))
APPEND_MESSAGE_RECORDS = _method("append_message_records", RECORDS, _THREAD_ID, ("messages", MESSAGES))
LOAD_MESSAGE_RECORD = _method(
    "load_message_record", optional(model_of(MessageRecord)), _THREAD_ID, ("message_id", TEXT)
)
LOAD_MESSAGE_RECORDS_RANGE = _method(
    "load_message_records_range", RECORDS, _THREAD_ID, ("range", model_of(MessageSeqRange))
)
CHECKPOINT_APPEND = _method(
    "checkpoint_append",
    INTEGER,
    _THREAD_ID,
    ("messages", MESSAGES),
    Param("expected_version", PASSED, optional=True),
    ("run", model_of(RunRecord)),
)
LOAD_CHECKPOINT = _method("load_checkpoint", optional(model_of(CheckpointSnapshot)), _THREAD_ID)

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
