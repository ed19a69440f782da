"""Threads and messages as dataclasses with the serde JSON shape of SPEC section 2."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from typing import Any, Self, TypeVar, dataclass_transform

from conformance.contract._codec import (
    CONTENT_BLOCK,
    INT,
    JSON,
    JSON_OBJECT,
    STR,
    JsonObject,
    JsonValue,
    ShapeError,
    check_fields,
    clone_fields,
    dump_fields,
    enum_of,
    field,
    list_of,
    load_fields,
    model,
    optional,
)
from conformance.contract._enums import Role, Visibility
from conformance.contract._errors import SerializationError, ValidationError
from conformance.contract._json_text import json_text

__all__ = [
    "CompactionMark",
    "JsonObject",
    "JsonValue",
    "Message",
    "MessageMetadata",
    "MessageRecord",
    "Model",
    "Thread",
    "ThreadMetadata",
    "ToolCall",
]


_M = TypeVar("_M", bound=type)


@dataclass_transform(kw_only_default=True, field_specifiers=(field,))
def contract_model(cls: _M) -> _M:
    """Make `cls` a keyword-only dataclass with slots whose fields are declared by `field`."""
    return dataclass(slots=True, kw_only=True)(cls)  # type: ignore[return-value]


class Model:
    """Base of every contract dataclass: JSON in and out, deep copies, type checks."""

    __slots__ = ()

    def to_json(self) -> JsonObject:
        """Return the serde JSON object of this value (a new dict; absent fields omitted).

        Keys come in serde's order: the fields in declaration order, free JSON values
        (`custom`, `arguments`, `extensions`, ...) with their keys sorted.
        """
        return dump_fields(self)

    def to_json_text(self) -> str:
        """Return the compact JSON text upstream writes for this value, byte for byte (MOD-5).

        `serde_json::to_string` of the same value upstream: `json_text(self.to_json())`.

        >>> Thread(id="t1", metadata=ThreadMetadata(custom={"b": 1.5e-7, "a": 1e16})).to_json_text()
        '{"id":"t1","metadata":{"custom":{"a":1e+16,"b":1.5e-7}}}'
        """
        return json_text(self.to_json())

    @classmethod
    def from_json(cls, value: object) -> Self:
        """Parse the serde JSON object of this model.

        Unknown keys are ignored. Raises `SerializationError` naming the field when a
        value is missing or has the wrong type, e.g.
        `Thread.from_json({"id": 5})` -> "Thread: field 'id' must be a string, got int 5".
        """
        try:
            return load_fields(cls, value)
        except ShapeError as error:
            raise SerializationError(f"{cls.__name__}: {error}") from None

    def copy(self) -> Self:
        """Return a deep copy that shares no mutable object with this one (ISO-1)."""
        return clone_fields(self)

    def check_types(self, owner: str) -> None:
        """Raise `ValidationError` naming `owner` and the field when a field has the wrong type."""
        try:
            check_fields(self)
        except ShapeError as error:
            raise ValidationError(f"{owner}: {error}") from None


def is_blank(value: str | None) -> bool:
    """True for a string that is empty or only whitespace."""
    return value is not None and not value.strip()


def normalize_lineage_id(value: str | None) -> str | None:
    """Strip whitespace; a blank or `None` lineage id becomes `None` (MOD-1).

    >>> normalize_lineage_id("  p1 "), normalize_lineage_id("   "), normalize_lineage_id(None)
    ('p1', None, None)
    """
    if value is None:
        return None
    stripped = value.strip()
    return stripped or None


@contract_model
class ThreadMetadata(Model):
    """Timestamps in unix milliseconds, a title, and free-form `custom` JSON."""

    created_at: int | None = field(optional(INT), default=None)
    updated_at: int | None = field(optional(INT), default=None)
    title: str | None = field(optional(STR), default=None)
    custom: dict[str, JsonValue] = field(JSON_OBJECT, omit="empty", factory=dict)


_LINEAGE_FIELDS = ("resource_id", "parent_thread_id", "active_run_id", "open_run_id", "latest_run_id")


@contract_model
class Thread(Model):
    """A conversation thread: identity, lineage, metadata and its run projection (CKP-6)."""

    id: str = field(STR)
    resource_id: str | None = field(optional(STR), default=None)
    parent_thread_id: str | None = field(optional(STR), default=None)
    metadata: ThreadMetadata = field(model(lambda: ThreadMetadata), omit="never", factory=ThreadMetadata)
    active_run_id: str | None = field(optional(STR), default=None)
    open_run_id: str | None = field(optional(STR), default=None)
    latest_run_id: str | None = field(optional(STR), default=None)
    latest_run_updated_at: int | None = field(optional(INT), default=None)

    def normalized(self) -> Thread:
        """Return a copy with `resource_id` and `parent_thread_id` normalized by MOD-1.

        What `save_thread` stores (THR-2): `"  r "` becomes `"r"`, a blank lineage id
        `None`; the run ids are left as they are. Validate the copy with
        `validate_for_persist` before storing it. Raises `ValidationError` naming the
        field when a field has the wrong type (such a thread cannot be copied).

        >>> stored = Thread(id="t", resource_id="  r ", parent_thread_id="   ").normalized()
        >>> stored.resource_id, stored.parent_thread_id
        ('r', None)
        """
        self.check_types(f"thread {self.id!r}")
        copy = self.copy()
        copy.resource_id = normalize_lineage_id(copy.resource_id)
        copy.parent_thread_id = normalize_lineage_id(copy.parent_thread_id)
        return copy

    def validate_for_persist(self) -> None:
        """Raise `ValidationError` unless this thread may be stored (MOD-2).

        The id must not be blank; `resource_id`, `parent_thread_id` and the run ids
        must not be blank when present; the normalized parent must not be the thread.
        It checks the thread as given: a store validates `normalized()` (THR-2).
        """
        self.check_types(f"thread {self.id!r}")
        if is_blank(self.id):
            raise ValidationError("thread id must not be blank")
        for name in _LINEAGE_FIELDS:
            if is_blank(getattr(self, name)):
                raise ValidationError(f"thread {self.id!r}: field '{name}' must not be blank; use None for no value")
        if normalize_lineage_id(self.parent_thread_id) == self.id.strip():
            raise ValidationError(f"thread {self.id!r} cannot parent itself")


@contract_model
class ToolCall(Model):
    """A tool call an assistant message makes; `arguments` is any JSON value."""

    id: str = field(STR)
    name: str = field(STR)
    arguments: JsonValue = field(JSON, omit="never")


@contract_model
class CompactionMark(Model):
    """Marks a summary message as standing for the committed interval `[from_seq, to_seq]`."""

    from_seq: int = field(INT)
    to_seq: int = field(INT)


@contract_model
class MessageMetadata(Model):
    """Which run and step produced a message, who sent it, and its compaction mark."""

    run_id: str | None = field(optional(STR), default=None)
    step_index: int | None = field(optional(INT), default=None)
    sender_agent_id: str | None = field(optional(STR), default=None)
    compaction: CompactionMark | None = field(optional(model(lambda: CompactionMark)), default=None)


@contract_model
class Message(Model):
    """One message of a thread's log; `content` is a list of JSON blocks tagged by "type"."""

    id: str | None = field(optional(STR), default=None)
    role: Role = field(enum_of(Role))
    content: list[dict[str, JsonValue]] = field(list_of(CONTENT_BLOCK), omit="never")
    tool_calls: list[ToolCall] | None = field(optional(list_of(model(lambda: ToolCall))), default=None)
    tool_call_id: str | None = field(optional(STR), default=None)
    visibility: Visibility = field(enum_of(Visibility), omit="default", default=Visibility.ALL)
    metadata: MessageMetadata | None = field(optional(model(lambda: MessageMetadata)), default=None)


@contract_model
class MessageRecord(Model):
    """A committed message with its 1-based `seq` and fields projected from it (MSG-6).

    `created_at` is always None: upstream's type has the field, but no record a store
    returns carries it (a message holds no time to project it from).
    """

    message_id: str = field(STR)
    thread_id: str = field(STR)
    seq: int = field(INT)
    message: Message = field(model(lambda: Message))
    produced_by_run_id: str | None = field(optional(STR), default=None)
    step_index: int | None = field(optional(INT), default=None)
    tool_call_id: str | None = field(optional(STR), default=None)
    created_at: int | None = field(optional(INT), default=None)
    compaction: CompactionMark | None = field(optional(model(lambda: CompactionMark)), default=None)

    @classmethod
    def from_message(cls, thread_id: str, seq: int, message: Message, *, copy: bool = True) -> MessageRecord:
        """Build the record of `message` at position `seq` of `thread_id`'s log.

        The record holds a copy of `message`, as upstream's Rust clones it, so a store
        that keeps or returns the record shares nothing with the caller (ISO-1);
        `copy=False` keeps `message` itself, for a message the store has just made
        (parsed from its storage, or copied already). `produced_by_run_id`,
        `step_index` and `compaction` come from the message's metadata,
        `tool_call_id` from the message; `created_at` stays None, as on every record
        a store returns (MSG-6). A message without an id gets a new random one (on a
        copy; the argument is not changed).

        >>> message = Message(id="m1", role=Role.USER, content=[])
        >>> MessageRecord.from_message("t1", 1, message).message is message
        False
        """
        if message.id is None:
            message = replace(message, id=uuid.uuid4().hex)
        if copy:
            message = message.copy()
        metadata = message.metadata
        assert message.id is not None
        return cls(
            message_id=message.id,
            thread_id=thread_id,
            seq=seq,
            message=message,
            produced_by_run_id=metadata.run_id if metadata else None,
            step_index=metadata.step_index if metadata else None,
            tool_call_id=message.tool_call_id,
            compaction=metadata.compaction if metadata else None,
        )


def text_of(message: Message) -> str:
    """The concatenated `text` of a message's text blocks (for examples and tests)."""
    parts: list[Any] = [block.get("text", "") for block in message.content if block.get("type") == "text"]
    return "".join(str(part) for part in parts)
