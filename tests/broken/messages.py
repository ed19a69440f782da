"""Broken stores of the message area: each breaks one of MSG-1..8, VIEW-1..2, MOD-3."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from broken import Broken
from conformance import (
    CheckpointSnapshot,
    Message,
    MessageOrder,
    MessagePage,
    MessageQuery,
    MessageRecord,
    MessageSeqRange,
    MessageVisibilityFilter,
    PageWindow,
    Role,
    ValidationError,
    effective_messages,
    strip_unpaired_tool_calls,
    validate_message_delta,
    validate_message_shape,
)
from reference_store import ReferenceStore
from reference_store._log import MessageLog


def _page(records: list[MessageRecord], query: MessageQuery, keep: Callable[[MessageRecord], bool]) -> MessagePage:
    """Filter with `keep`, order by seq and window by `query.offset`/`query.limit` as given."""
    matching = sorted(filter(keep, records), key=lambda r: r.seq, reverse=query.order is MessageOrder.DESC)
    win = PageWindow(offset=query.offset, limit=query.limit, total=len(matching))
    next_cursor, prev_cursor = win.cursors(query)
    return MessagePage(
        records=matching[win.start : win.end],
        total=len(matching),
        has_more=win.has_more,
        next_cursor=next_cursor,
        prev_cursor=prev_cursor,
    )


class EmptyLogAsList(ReferenceStore):
    """Returns the rows it found: `[]` instead of `None` for a thread without messages."""

    async def load_committed_messages(self, thread_id: str) -> list[Message] | None:
        async with self._lock:
            log = self._logs.get(thread_id)
            return [] if log is None else [m.copy() for m in log.messages]


class UnvalidatedSave(ReferenceStore):
    """Replaces the log without checking the messages or their ids."""

    async def save_messages(self, thread_id: str, messages: list[Message]) -> None:
        async with self._lock:
            self._replace_log(thread_id, list(messages))


class DeleteMessagesOfAnyThread(ReferenceStore):
    """Empties the log without checking that the thread exists."""

    async def delete_messages(self, thread_id: str) -> None:
        async with self._lock:
            self._logs.pop(thread_id, None)


class AppendCreatesLogFirst(ReferenceStore):
    """Gets-or-creates the log row before validating, so even an empty append leaves an empty log that reads `[]`."""

    async def append_message_records(self, thread_id: str, messages: list[Message]) -> list[MessageRecord]:
        async with self._lock:
            log = self._logs.setdefault(thread_id, MessageLog())
            start_seq = len(log) + 1
            validate_message_delta(log.positions, start_seq, messages)
            log.extend([m.copy() for m in messages])
            return [log.record(thread_id, seq) for seq in range(start_seq, len(log) + 1)]


class AppendNumbersTheDelta(ReferenceStore):
    """Returns the delta's records numbered from 1 (its own positions), not from the tail of the log."""

    async def append_message_records(self, thread_id: str, messages: list[Message]) -> list[MessageRecord]:
        records = await super().append_message_records(thread_id, messages)
        return [replace(record, seq=index) for index, record in enumerate(records, start=1)]


class AppendSeqsWrapAtAThousand(ReferenceStore):
    """Numbers the records append returns with a three-digit counter: the 1,001st message comes back at seq 1."""

    async def append_message_records(self, thread_id: str, messages: list[Message]) -> list[MessageRecord]:
        records = await super().append_message_records(thread_id, messages)
        return [replace(record, seq=(record.seq - 1) % 1000 + 1) for record in records]


class AppendUpserts(ReferenceStore):
    """Appends with ON CONFLICT (id) DO UPDATE: a delta reusing a committed id rewrites it in place."""

    async def append_message_records(self, thread_id: str, messages: list[Message]) -> list[MessageRecord]:
        async with self._lock:
            log = self._logs.get(thread_id)
            validate_message_delta((), len(log) + 1 if log else 1, messages)
            if not messages:
                return []
            if log is None:
                log = self._logs[thread_id] = MessageLog()
            seqs = []
            for message in messages:
                assert message.id is not None
                seq = log.positions.get(message.id)
                if seq is None:
                    log.extend([message.copy()])
                    seq = len(log)
                else:
                    log.messages[seq - 1] = message.copy()
                seqs.append(seq)
            return [log.record(thread_id, seq) for seq in seqs]


class RecordsRenumberedAfterView(ReferenceStore):
    """Numbers records over the read view, as upstream's in-memory backend did."""

    async def load_message_records(self, thread_id: str) -> list[MessageRecord] | None:
        view = await self.load_messages(thread_id)
        return None if view is None else [MessageRecord.from_message(thread_id, s, m) for s, m in enumerate(view, 1)]


class RecordBodiesShifted(ReferenceStore):
    """Takes ids and seqs from the raw rows but zips in bodies of the read view, as upstream PostgreSQL did."""

    async def load_message_records(self, thread_id: str) -> list[MessageRecord] | None:
        committed = await self.load_committed_messages(thread_id)
        view = await self.load_messages(thread_id)
        if committed is None or view is None:
            return None
        return [
            replace(MessageRecord.from_message(thread_id, seq, raw), message=body)
            for seq, (raw, body) in enumerate(zip(committed, view, strict=False), start=1)
        ]


class RecordsStampedWithCreatedAt(ReferenceStore):
    """Reads records back with a `created_at`: the row's insert time (unix seconds, fixed here)."""

    async def load_message_records(self, thread_id: str) -> list[MessageRecord] | None:
        records = await super().load_message_records(thread_id)
        return None if records is None else [replace(r, created_at=1_700_000_000) for r in records]


class BeforeInclusive(ReferenceStore):
    """Filters `seq <= before` instead of `seq < before`."""

    async def list_message_records(self, thread_id: str, query: MessageQuery) -> MessagePage:
        normalized = query.normalized()
        unbounded = replace(normalized, before=None)
        before = normalized.before

        def keep(record: MessageRecord) -> bool:
            return unbounded.matches(record) and (before is None or record.seq <= before)

        return _page(await self.load_message_records(thread_id) or [], normalized, keep)


#: What a signed 64-bit INTEGER column holds at most (SQLite, PostgreSQL bigint).
_I64_MAX = 2**63 - 1


class SeqBoundsOverflow(ReferenceStore):
    """Binds `after`/`before` as signed 64-bit integers unclamped: 2**63 raises OverflowError, as sqlite3 does."""

    async def list_message_records(self, thread_id: str, query: MessageQuery) -> MessagePage:
        for bound in (query.after, query.before):
            if isinstance(bound, int) and bound > _I64_MAX:
                raise OverflowError("Python int too large to convert to SQLite INTEGER")
        return await super().list_message_records(thread_id, query)


class RangeEndOverflow(ReferenceStore):
    """Binds a range's `to_seq` as a signed 64-bit integer unclamped: 2**63 raises OverflowError."""

    async def load_message_records_range(self, thread_id: str, range: MessageSeqRange) -> list[MessageRecord]:
        if range.to_seq > _I64_MAX:
            raise OverflowError("Python int too large to convert to SQLite INTEGER")
        return await super().load_message_records_range(thread_id, range)


class NegativeBoundsFromOne(ReferenceStore):
    """Reads a negative range bound as the log's edge (a SQL BETWEEN does) instead of refusing it."""

    async def load_message_records_range(self, thread_id: str, range: MessageSeqRange) -> list[MessageRecord]:
        clamped = MessageSeqRange(from_seq=max(range.from_seq, 0), to_seq=max(range.to_seq, 0))
        return await super().load_message_records_range(thread_id, clamped)


class ExternalIncludesInternal(ReferenceStore):
    """Treats the external visibility filter as no filter at all."""

    async def list_message_records(self, thread_id: str, query: MessageQuery) -> MessagePage:
        normalized = query.normalized()
        if normalized.visibility is MessageVisibilityFilter.EXTERNAL:
            normalized = replace(normalized, visibility=MessageVisibilityFilter.ANY)
        return await super().list_message_records(thread_id, normalized)


class LimitNotCapped(ReferenceStore):
    """Pages with the caller's limit, however large."""

    async def list_message_records(self, thread_id: str, query: MessageQuery) -> MessagePage:
        return _page(await self.load_message_records(thread_id) or [], query, query.normalized().matches)


class PagesEndAtAThousand(ReferenceStore):
    """Decides has_more by a look-ahead that stops at record 1,000 (`LIMIT 1000`): a page ending there says no more."""

    async def list_message_records(self, thread_id: str, query: MessageQuery) -> MessagePage:
        page = await super().list_message_records(thread_id, query)
        if min(query.offset, page.total) + len(page.records) >= 1000:
            page.has_more, page.next_cursor = False, None
        return page


class RangeExcludesEnd(ReferenceStore):
    """Reads seqs with `range(from_seq, to_seq)`, dropping the last one."""

    async def load_message_records_range(self, thread_id: str, range: MessageSeqRange) -> list[MessageRecord]:
        records = await self.load_message_records(thread_id) or []
        return [r for r in records if range.from_seq <= r.seq < range.to_seq]


class ViewIsRawLog(ReferenceStore):
    """`load_messages` returns the committed log untouched."""

    async def load_messages(self, thread_id: str) -> list[Message] | None:
        return await self.load_committed_messages(thread_id)


class CheckpointWithoutFold(ReferenceStore):
    """Resumes from the read view without folding compaction summaries."""

    async def load_checkpoint(self, thread_id: str) -> CheckpointSnapshot | None:
        snapshot = await super().load_checkpoint(thread_id)
        if snapshot is not None:
            snapshot.messages = strip_unpaired_tool_calls(await self.load_committed_messages(thread_id) or [])
        return snapshot


class NarrowerSummaryWins(ReferenceStore):
    """Drops a summary whose interval contains another's, so the narrower summary wins."""

    async def load_checkpoint(self, thread_id: str) -> CheckpointSnapshot | None:
        snapshot = await super().load_checkpoint(thread_id)
        records = await self.load_message_records(thread_id) or []
        marks = {r.seq: r.compaction for r in records if r.compaction is not None}
        wider = {
            seq
            for seq, mark in marks.items()
            for other_seq, other in marks.items()
            if other_seq != seq and mark.from_seq <= other.from_seq and other.to_seq <= mark.to_seq
        }
        if snapshot is not None:
            kept = [r for r in records if r.seq not in wider]
            snapshot.messages = strip_unpaired_tool_calls(effective_messages(kept))
        return snapshot


class LaterTwinSummaryWins(ReferenceStore):
    """Of two summaries of the same interval, keeps the later one (a last-write-wins map keyed by interval)."""

    async def load_checkpoint(self, thread_id: str) -> CheckpointSnapshot | None:
        snapshot = await super().load_checkpoint(thread_id)
        records = await self.load_message_records(thread_id) or []
        last = {(r.compaction.from_seq, r.compaction.to_seq): r.seq for r in records if r.compaction is not None}
        if snapshot is not None:
            kept = [
                r for r in records if r.compaction is None or last[r.compaction.from_seq, r.compaction.to_seq] == r.seq
            ]
            snapshot.messages = strip_unpaired_tool_calls(effective_messages(kept))
        return snapshot


class OverlappedSummaryDropped(ReferenceStore):
    """Keeps a summary only when its interval meets no earlier kept one, so of two partly overlapping, one goes."""

    async def load_checkpoint(self, thread_id: str) -> CheckpointSnapshot | None:
        snapshot = await super().load_checkpoint(thread_id)
        records = await self.load_message_records(thread_id) or []
        taken: list[tuple[int, int]] = []
        kept: list[MessageRecord] = []
        for record in records:
            mark = record.compaction
            if mark is not None:
                if any(start <= mark.to_seq and mark.from_seq <= end for start, end in taken):
                    continue
                taken.append((mark.from_seq, mark.to_seq))
            kept.append(record)
        if snapshot is not None:
            snapshot.messages = strip_unpaired_tool_calls(effective_messages(kept))
        return snapshot


class SummariesInSeqOrder(ReferenceStore):
    """Places the kept summaries in the order they were appended, not in the order of their intervals' starts."""

    async def load_checkpoint(self, thread_id: str) -> CheckpointSnapshot | None:
        snapshot = await super().load_checkpoint(thread_id)
        if snapshot is not None:
            records = await self.load_message_records(thread_id) or []
            seq_of = {r.message_id: r.seq for r in records if r.compaction is not None}
            slots = [i for i, m in enumerate(snapshot.messages) if m.id in seq_of]
            appended = sorted((snapshot.messages[i] for i in slots), key=lambda m: seq_of[m.id or ""])
            for slot, summary in zip(slots, appended, strict=True):
                snapshot.messages[slot] = summary
        return snapshot


class _OwnShapeCheck(ReferenceStore):
    """Appends as the reference store does, but checks each message with `shape` (a broken store's own MOD-3)."""

    def shape(self, message: Message, seq: int) -> None:
        validate_message_shape(message, seq)

    async def append_message_records(self, thread_id: str, messages: list[Message]) -> list[MessageRecord]:
        async with self._lock:
            log = self._logs.get(thread_id)
            start_seq = len(log) + 1 if log else 1
            seen: set[str | None] = set(log.positions) if log else set()
            for index, message in enumerate(messages):
                self.shape(message, start_seq + index)
                if message.id in seen:
                    raise ValidationError(f"message id {message.id!r} is already committed or repeated")
                seen.add(message.id)
            if not messages:
                return []
            if log is None:
                log = self._logs[thread_id] = MessageLog()
            log.extend([m.copy() for m in messages])
            return [log.record(thread_id, seq) for seq in range(start_seq, len(log) + 1)]


class ToolResultWithoutCallId(_OwnShapeCheck):
    """Checks `tool_call_id` only when present, so a tool result without one is appended."""

    def shape(self, message: Message, seq: int) -> None:
        if not (message.role is Role.TOOL and message.tool_call_id is None):
            validate_message_shape(message, seq)


class EmptyToolCallsOnAnyRole(_OwnShapeCheck):
    """Tests `tool_calls` by truthiness (`if message.tool_calls:`), so a user message with `[]` is appended."""

    def shape(self, message: Message, seq: int) -> None:
        validate_message_shape(replace(message, tool_calls=message.tool_calls or None), seq)


class EmptyCallIdOnAnyRole(_OwnShapeCheck):
    """Tests a non-tool message's `tool_call_id` by truthiness, so a user message with `""` is appended."""

    def shape(self, message: Message, seq: int) -> None:
        if message.role is not Role.TOOL:
            message = replace(message, tool_call_id=message.tool_call_id or None)
        validate_message_shape(message, seq)


class EmptyCallListRefused(_OwnShapeCheck):
    """Demands at least one call of a message carrying `tool_calls`, so an assistant with `[]` is refused."""

    def shape(self, message: Message, seq: int) -> None:
        if message.tool_calls == []:
            raise ValidationError(f"message {message.id!r}: tool_calls must not be empty")
        validate_message_shape(message, seq)


class EmptyCallListStoredAsNone(ReferenceStore):
    """Validates the delta, then writes `tool_calls=[]` as None (a NULL column): the raw log loses the empty list."""

    async def append_message_records(self, thread_id: str, messages: list[Message]) -> list[MessageRecord]:
        records = await super().append_message_records(thread_id, messages)
        async with self._lock:
            stored = self._logs[thread_id].messages if records else []
            for record in records:
                stored[record.seq - 1].tool_calls = stored[record.seq - 1].tool_calls or None
        return records


class EmptyCallListKeptInView(ReferenceStore):
    """Rewrites only the calls the read view strips, so an assistant committed with `[]` keeps `[]` there."""

    async def load_messages(self, thread_id: str) -> list[Message] | None:
        committed = await self.load_committed_messages(thread_id)
        if committed is None:
            return None
        empty = {m.id for m in committed if m.tool_calls == []}
        return [replace(m, tool_calls=[]) if m.id in empty else m for m in strip_unpaired_tool_calls(committed)]


ZOO: list[Broken] = [
    Broken(EmptyLogAsList, "MSG-1", "an absent log reads as [] instead of None"),
    # also MOD-3: the invalid messages it stores are MOD-3's to refuse
    Broken(UnvalidatedSave, "MSG-2", "save_messages stores invalid messages and repeated ids", also=("MOD-3",)),
    Broken(DeleteMessagesOfAnyThread, "MSG-3", "delete_messages on an unknown thread silently succeeds"),
    # also ATO-1: a refused append to an unknown thread leaves an empty log behind
    Broken(
        AppendCreatesLogFirst,
        "MSG-1",
        "append creates the log before validating; an empty delta leaves []",
        also=("ATO-1",),
    ),
    # also MSG-6: what append returns is no longer what the record reads give back
    Broken(
        AppendNumbersTheDelta,
        "MSG-4",
        "append returns records numbered from 1, not from the log's tail",
        also=("MSG-6",),
    ),
    # also MSG-6: what append returns past seq 1,000 is no longer what the record reads give back
    Broken(
        AppendSeqsWrapAtAThousand,
        "MSG-4",
        "append returns seqs modulo 1,000: the 1,001st message comes back at seq 1",
        also=("MSG-6",),
    ),
    Broken(AppendUpserts, "MSG-5", "a delta reusing a committed id rewrites that message in place"),
    Broken(RecordsRenumberedAfterView, "MSG-6", "records are renumbered after the read view drops messages"),
    Broken(RecordBodiesShifted, "MSG-6", "record bodies come from the read view, shifted against their ids"),
    Broken(RecordsStampedWithCreatedAt, "MSG-6", "load_message_records stamps each record with a created_at"),
    Broken(BeforeInclusive, "MSG-7", "the before filter keeps seq == before"),
    Broken(ExternalIncludesInternal, "MSG-7", "the external visibility filter keeps internal messages"),
    Broken(LimitNotCapped, "MSG-7", "list_message_records does not cap limit at 200"),
    Broken(PagesEndAtAThousand, "MSG-7", "a page ending at record 1,000 or later says has_more false, no next_cursor"),
    Broken(SeqBoundsOverflow, "MSG-7", "after/before of 2**63 or more overflow a 64-bit bind instead of filtering"),
    Broken(RangeExcludesEnd, "MSG-8", "load_message_records_range excludes to_seq"),
    Broken(RangeEndOverflow, "MSG-8", "a range to_seq of 2**63 or more overflows a 64-bit bind"),
    Broken(NegativeBoundsFromOne, "MSG-8", "a negative range bound reads as 0 instead of raising ValidationError"),
    Broken(ViewIsRawLog, "VIEW-1", "load_messages returns the raw committed log"),
    # also CKP-5: load_checkpoint returns the effective view (CKP-5), which folds summaries: it does not
    Broken(CheckpointWithoutFold, "VIEW-2", "load_checkpoint does not fold compaction summaries", also=("CKP-5",)),
    Broken(NarrowerSummaryWins, "VIEW-2", "nested compaction intervals keep the narrower summary"),
    Broken(LaterTwinSummaryWins, "VIEW-2", "of two summaries of the same interval, the later one wins"),
    Broken(OverlappedSummaryDropped, "VIEW-2", "of two partly overlapping intervals, only the earlier summary stays"),
    Broken(SummariesInSeqOrder, "VIEW-2", "kept summaries are ordered by their own seq, not by interval start"),
    # also MSG-5: MSG-5 refuses a delta holding an invalid (MOD-3) message
    Broken(ToolResultWithoutCallId, "MOD-3", "a tool message without tool_call_id is accepted", also=("MSG-5",)),
    # also MSG-5: MSG-5 refuses a delta holding an invalid (MOD-3) message
    Broken(EmptyToolCallsOnAnyRole, "MOD-3", "a user message with tool_calls=[] is accepted", also=("MSG-5",)),
    # also MSG-5: MSG-5 refuses a delta holding an invalid (MOD-3) message
    Broken(EmptyCallIdOnAnyRole, "MOD-3", 'a user message with tool_call_id="" is accepted', also=("MSG-5",)),
    Broken(EmptyCallListRefused, "MOD-3", "an assistant with tool_calls=[] is refused"),
    Broken(EmptyCallListStoredAsNone, "VIEW-1", "tool_calls=[] is committed as None: the raw log changes"),
    Broken(EmptyCallListKeptInView, "VIEW-1", "an assistant committed with tool_calls=[] keeps [] in the read view"),
]
