"""One thread's committed message log with the indexes that keep reads flat as it grows."""

from __future__ import annotations

import dataclasses
from bisect import bisect_left, bisect_right
from collections.abc import Sequence

from conformance import (
    Message,
    MessageOrder,
    MessagePage,
    MessageQuery,
    MessageRecord,
    MessageVisibilityFilter,
    PageWindow,
    Visibility,
)

_FilterKey = tuple[MessageVisibilityFilter, str | None]

# `_record` sets every field of a record itself: fail at import, not later, if a field is added.
_RECORD_FIELDS = "message_id thread_id seq message produced_by_run_id step_index tool_call_id created_at compaction"
assert [f.name for f in dataclasses.fields(MessageRecord)] == _RECORD_FIELDS.split(), "update _log._record"


def _record(thread_id: str, seq: int, message: Message) -> MessageRecord:
    """`MessageRecord.from_message(thread_id, seq, message)` for a stored message, a third cheaper.

    Records are built on every read, and the keyword call into the dataclass
    `__init__` cost almost as much as copying the message; setting the slots
    directly costs a fraction of it. The message must have an id and be a copy the
    record may hold.
    """
    assert message.id is not None
    metadata = message.metadata
    record: MessageRecord = object.__new__(MessageRecord)
    record.message_id = message.id
    record.thread_id = thread_id
    record.seq = seq
    record.message = message
    record.produced_by_run_id = metadata.run_id if metadata else None
    record.step_index = metadata.step_index if metadata else None
    record.tool_call_id = message.tool_call_id
    record.created_at = None
    record.compaction = metadata.compaction if metadata else None
    return record


class MessageLog:
    """Stored copies of a thread's messages, positions by id, and seqs by (visibility, run).

    Appends cost O(delta); a filtered page costs O(log N + page) because every
    filter combination keeps its own ascending list of seqs.
    """

    __slots__ = ("_by_filter", "messages", "positions")

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.positions: dict[str, int] = {}
        self._by_filter: dict[_FilterKey, list[int]] = {}

    def __len__(self) -> int:
        return len(self.messages)

    def extend(self, owned: Sequence[Message]) -> None:
        """Append messages the log may keep (already validated and copied)."""
        for message in owned:
            self.messages.append(message)
            seq = len(self.messages)
            assert message.id is not None
            self.positions[message.id] = seq
            internal = message.visibility is Visibility.INTERNAL
            side = MessageVisibilityFilter.INTERNAL if internal else MessageVisibilityFilter.EXTERNAL
            run_id = message.metadata.run_id if message.metadata else None
            keys: list[_FilterKey] = [(side, None)]
            if run_id is not None:
                keys += [(MessageVisibilityFilter.ANY, run_id), (side, run_id)]
            for key in keys:
                self._by_filter.setdefault(key, []).append(seq)

    def record(self, thread_id: str, seq: int) -> MessageRecord:
        """A fresh record (with a copied message) of the message at `seq`."""
        return _record(thread_id, seq, self.messages[seq - 1].copy())

    def page(self, thread_id: str, query: MessageQuery) -> MessagePage:
        """The page of a normalized query (MSG-7), found without scanning the log."""
        seqs: Sequence[int]
        if query.visibility is MessageVisibilityFilter.ANY and query.run_id is None:
            seqs = range(1, len(self.messages) + 1)
        else:
            seqs = self._by_filter.get((query.visibility, query.run_id), [])
        low = 0 if query.after is None else bisect_right(seqs, query.after)
        high = len(seqs) if query.before is None else bisect_left(seqs, query.before)
        total = max(high - low, 0)
        win = PageWindow(offset=query.offset, limit=query.limit, total=total)
        if query.order is MessageOrder.ASC:
            chosen = [seqs[low + i] for i in range(win.start, win.end)]
        else:
            chosen = [seqs[high - 1 - i] for i in range(win.start, win.end)]
        next_cursor, prev_cursor = win.cursors(query)
        return MessagePage(
            records=[self.record(thread_id, seq) for seq in chosen],
            total=total,
            has_more=win.has_more,
            next_cursor=next_cursor,
            prev_cursor=prev_cursor,
        )
