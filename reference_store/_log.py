"""One thread's committed message log with the indexes that keep reads flat as it grows."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence

from conformance import (
    Message,
    MessageOrder,
    MessagePage,
    MessageQuery,
    MessageRecord,
    MessageVisibilityFilter,
    Visibility,
)
from conformance._queries import window

_FilterKey = tuple[MessageVisibilityFilter, str | None]


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
        return MessageRecord.from_message(thread_id, seq, self.messages[seq - 1].copy())

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
        win = window(query.offset, query.limit, total)
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
