"""Pure rules of the message log: shape (MOD-3), append-only deltas (MSG-5), read views (VIEW)."""

from __future__ import annotations

from collections.abc import Container, Sequence
from dataclasses import replace

from conformance.contract._enums import Role, Visibility
from conformance.contract._errors import ValidationError
from conformance.contract._models import Message, MessageRecord, is_blank

__all__ = [
    "effective_committed_view",
    "effective_messages",
    "merge_checkpoint_append_messages",
    "strip_unpaired_tool_calls",
    "validate_append_only_delta",
    "validate_message_delta",
    "validate_message_shape",
]


def validate_message_shape(message: Message, seq: int) -> None:
    """Raise `ValidationError` unless `message` may be committed at position `seq` (MOD-3).

    The id is present and not blank; a `tool` message carries a non-blank
    `tool_call_id` and any other role none; only an `assistant` message carries tool
    calls, each with a non-blank id and name, ids unique within the message; a
    compaction mark has `1 <= from_seq <= to_seq < seq`. A field is carried when it is
    not None, even when empty: a user message with `tool_calls=[]` or with
    `tool_call_id=""` is refused, while an assistant with `tool_calls=[]` is valid.
    Raises `TypeError` when `message` is not a `Message`.
    """
    if not isinstance(message, Message):
        raise TypeError(f"expected a Message at seq {seq}, got {type(message).__name__}")
    owner = f"message {message.id!r} (seq {seq})"
    message.check_types(owner)
    if message.id is None or is_blank(message.id):
        raise ValidationError(f"{owner}: field 'id' must be present and not blank")
    if message.role is Role.TOOL:
        if message.tool_call_id is None or is_blank(message.tool_call_id):
            raise ValidationError(f"{owner}: a tool message must carry a non-blank 'tool_call_id'")
    elif message.tool_call_id is not None:
        raise ValidationError(f"{owner}: only a tool message may carry 'tool_call_id'")
    if message.tool_calls is not None:
        if message.role is not Role.ASSISTANT:
            raise ValidationError(f"{owner}: only an assistant message may carry 'tool_calls'")
        seen: set[str] = set()
        for index, call in enumerate(message.tool_calls):
            if is_blank(call.id) or is_blank(call.name):
                raise ValidationError(f"{owner}: tool_calls[{index}] needs a non-blank id and name")
            if call.id in seen:
                raise ValidationError(f"{owner}: tool call id {call.id!r} appears twice")
            seen.add(call.id)
    mark = message.metadata.compaction if message.metadata else None
    if mark is not None and not 1 <= mark.from_seq <= mark.to_seq < seq:
        raise ValidationError(
            f"{owner}: compaction mark [{mark.from_seq}, {mark.to_seq}] must satisfy "
            f"1 <= from_seq <= to_seq < {seq} (the summary's own seq)"
        )


def validate_message_delta(committed_ids: Container[str], start_seq: int, delta: Sequence[Message]) -> None:
    """Raise `ValidationError` unless `delta` may be committed from seq `start_seq` on (MOD-3, MSG-5).

    Each message must be valid (MOD-3) at the seq it would get, and carry an id that
    is not in `committed_ids` and not repeated in the delta. `committed_ids` is any
    container: a set, the keys of an index, or an object whose `__contains__` asks a
    database, so a store need not load its log to append. A whole new log (`save_messages`,
    `checkpoint`) is the delta of an empty one: `validate_message_delta((), 1, messages)`.
    Raises `TypeError` for an element that is not a `Message`.

    >>> validate_message_delta({"m1"}, 2, [Message(id="m2", role=Role.USER, content=[])])
    """
    new_ids: set[str] = set()
    for index, message in enumerate(delta):
        validate_message_shape(message, start_seq + index)
        message_id = message.id
        assert message_id is not None
        if message_id in committed_ids:
            raise ValidationError(f"append delta contains already committed message id {message_id!r}")
        if message_id in new_ids:
            raise ValidationError(f"append delta contains duplicate message id {message_id!r}")
        new_ids.add(message_id)


def validate_append_only_delta(existing: Sequence[Message], delta: Sequence[Message]) -> None:
    """Raise `ValidationError` unless `delta` may be appended to `existing` (MSG-5).

    Every message must be valid (MOD-3) at the seq it would get, and carry an id that
    is neither committed already nor repeated in the delta.

    >>> validate_append_only_delta([], [Message(id="m1", role=Role.USER, content=[])])
    """
    committed = {message.id for message in existing if message.id is not None}
    validate_message_delta(committed, len(existing) + 1, delta)


def merge_checkpoint_append_messages(existing: list[Message], delta: Sequence[Message]) -> None:
    """Validate `delta` as `validate_append_only_delta`, then extend `existing` in place."""
    validate_append_only_delta(existing, delta)
    existing.extend(delta)


def strip_unpaired_tool_calls(messages: Sequence[Message]) -> list[Message]:
    """Return the read view of a log (VIEW-1); `messages` itself is not changed.

    An assistant tool call survives only when an `all`-visibility tool result answers
    it and no `internal` tool result retracts it; a message left with no calls gets
    `tool_calls = None`. Internal tool results, retracted results and orphan results
    are dropped. Unchanged messages are returned as they are (not copied).
    """
    answered: set[str] = set()
    retracted: set[str] = set()
    for message in messages:
        if message.role is Role.TOOL and message.tool_call_id is not None:
            if message.visibility is Visibility.ALL:
                answered.add(message.tool_call_id)
            else:
                retracted.add(message.tool_call_id)
    view: list[Message] = []
    for message in messages:
        if message.role is Role.TOOL and message.visibility is not Visibility.ALL:
            continue  # an internal result retracts its call and is never shown
        # A result whose call did not survive (retracted, or never made) is dropped below.
        if message.role is Role.ASSISTANT and message.tool_calls is not None:
            calls = [c for c in message.tool_calls if c.id in answered and c.id not in retracted]
            if len(calls) != len(message.tool_calls) or not calls:
                message = replace(message, tool_calls=calls or None)
        view.append(message)
    surviving = {c.id for m in view if m.role is Role.ASSISTANT and m.tool_calls for c in m.tool_calls}
    return [
        m for m in view if not (m.role is Role.TOOL and m.tool_call_id is not None and m.tool_call_id not in surviving)
    ]


def effective_messages(records: Sequence[MessageRecord]) -> list[Message]:
    """Fold compaction summaries into the log (VIEW-2); `records` sorted by seq ascending.

    Each kept interval `[from_seq, to_seq]` is replaced by its summary, placed at the
    interval's start; an interval contained in another is dropped (the wider summary
    wins), and of identical intervals the earlier summary (lower seq) wins; every
    summary record leaves its own position. Disjoint and partly overlapping intervals
    all stay, their summaries in order of `from_seq`, and every raw message in the
    union of the kept intervals is dropped: [1, 3] and [2, 4] fold m1..m4 into the two
    summaries, [1, 3]'s first.
    """
    candidates = sorted(
        ((r.compaction.from_seq, r.compaction.to_seq, r.message) for r in records if r.compaction),
        key=lambda c: (c[0], -c[1]),
    )
    intervals: list[tuple[int, int, Message]] = []
    for start, end, summary in candidates:
        if not any(kept_start <= start and end <= kept_end for kept_start, kept_end, _ in intervals):
            intervals.append((start, end, summary))
    out: list[Message] = []
    pending = 0
    for record in records:
        if record.compaction is not None:
            continue
        while pending < len(intervals) and intervals[pending][0] <= record.seq:
            out.append(intervals[pending][2])
            pending += 1
        if not any(start <= record.seq <= end for start, end, _ in intervals):
            out.append(record.message)
    out.extend(summary for _, _, summary in intervals[pending:])
    return out


def effective_committed_view(committed: Sequence[Message], thread_id: str) -> list[Message]:
    """The resume view of a raw log: the compaction fold (VIEW-2), then the read view (VIEW-1)."""
    records = [MessageRecord.from_message(thread_id, seq, m, copy=False) for seq, m in enumerate(committed, start=1)]
    return strip_unpaired_tool_calls(effective_messages(records))
