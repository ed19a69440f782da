"""Upstream's pure storage helpers, ported from the facts of awakenworks/awaken for `upstream_memory_store`.

Each function does what its Rust namesake does, in the same order, with the same
tie-breaks, where that differs from this project's contract helpers too: the port
must show upstream's behaviour, not the contract's. The Rust sources are named on
each function (crate paths under `crates/`). Nothing here is part of the contract.

Where upstream has a typed value and the contract an opaque or looser one (a run's
`activation` is JSON here), the check is the contract's reading of upstream's.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import replace

from conformance import (
    Message,
    MessageOrder,
    MessagePage,
    MessageQuery,
    MessageRecord,
    MessageVisibilityFilter,
    Role,
    RunRecord,
    RunStatus,
    SerializationError,
    Thread,
    ThreadPage,
    ThreadQuery,
    ValidationError,
    Visibility,
    normalize_lineage_id,
)

__all__ = [
    "apply_run_projection",
    "checkpoint_parent_thread_id",
    "current_millis",
    "effective_committed_view",
    "merge_checkpoint_append_messages",
    "paginate_message_records",
    "paginate_threads",
    "sort_threads_by_recent_activity",
    "strip_unpaired_tool_calls_from_view",
    "touch",
    "validate_append_only_delta",
    "validate_committed_message_records",
    "validate_committed_messages",
    "validate_thread_hierarchy_map",
]


def current_millis() -> int:
    """`awaken-stores/src/lib.rs` `current_millis`: unix time in milliseconds."""
    return time.time_ns() // 1_000_000


# ── messages: runtime-contract/src/contract/storage/message_append.rs ──


def _validate_message_shape(message: Message, context: str) -> None:
    """`validate_message_shape`: id, then tool_call_id by role, then tool calls (any list, even empty)."""
    message_id = message.id
    if message_id is None:
        raise ValidationError(f"{context} message id must not be missing")
    if not message_id.strip():
        raise ValidationError(f"{context} message id must not be empty")
    if message.role is Role.TOOL:
        if message.tool_call_id is None:
            raise ValidationError(f"tool message '{message_id}' must carry tool_call_id")
        if not message.tool_call_id.strip():
            raise ValidationError(f"tool message '{message_id}' tool_call_id must not be empty")
    elif message.tool_call_id is not None:
        raise ValidationError(f"non-tool message '{message_id}' must not carry tool_call_id")
    if message.role is not Role.ASSISTANT and message.tool_calls is not None:
        raise ValidationError(f"non-assistant message '{message_id}' must not carry tool_calls")
    seen: set[str] = set()
    for call in message.tool_calls or []:
        if not call.id.strip():
            raise ValidationError(f"assistant message '{message_id}' tool call id must not be empty")
        if not call.name.strip():
            raise ValidationError(f"assistant message '{message_id}' tool call name must not be empty")
        if call.id in seen:
            raise ValidationError(f"assistant message '{message_id}' contains duplicate tool call id '{call.id}'")
        seen.add(call.id)


def _validate_message_for_append(message: Message, summary_seq: int) -> None:
    """`validate_message_for_append`: the shape, then the compaction mark against the message's own seq."""
    _validate_message_shape(message, "append delta")
    mark = message.metadata.compaction if message.metadata is not None else None
    if mark is None:
        return
    if mark.from_seq == 0 or mark.from_seq > mark.to_seq:
        raise ValidationError(f"compaction mark on message '{message.id}' must be 1-based and non-empty")
    if mark.to_seq >= summary_seq:
        raise ValidationError(
            f"compaction mark on summary message '{message.id}' must not cover the summary seq {summary_seq}"
        )


def validate_append_only_delta(existing: Sequence[Message], delta: Sequence[Message]) -> None:
    """`validate_append_only_delta`: each delta message valid at its seq, its id new and not repeated."""
    existing_ids = {message.id for message in existing if message.id is not None}
    delta_ids: set[str] = set()
    for index, message in enumerate(delta):
        _validate_message_for_append(message, len(existing) + index + 1)
        message_id = message.id
        assert message_id is not None
        if message_id in existing_ids:
            raise ValidationError(f"append delta contains already committed message id '{message_id}'")
        if message_id in delta_ids:
            raise ValidationError(f"append delta contains duplicate message id '{message_id}'")
        delta_ids.add(message_id)


def merge_checkpoint_append_messages(existing: list[Message], delta: Sequence[Message]) -> None:
    """`merge_checkpoint_append_messages`: validate the delta, then extend `existing` in place with copies."""
    validate_append_only_delta(existing, delta)
    existing.extend(message.copy() for message in delta)


# ── awaken-stores/src/message_validation.rs ─────────────────────────


def validate_committed_messages(messages: Sequence[Message]) -> None:
    """`validate_committed_messages`: a whole log is valid as a delta appended to nothing."""
    validate_append_only_delta([], messages)


def validate_committed_message_records(thread_id: str, records: Sequence[MessageRecord]) -> None:
    """`validate_committed_message_records`: records of `thread_id`, seqs 1.., ids matching their messages."""
    for index, record in enumerate(records):
        if record.thread_id != thread_id:
            raise ValidationError(
                f"committed message '{record.message_id}' belongs to thread '{record.thread_id}', "
                f"expected '{thread_id}'"
            )
        if record.seq != index + 1:
            raise SerializationError(
                f"committed message seq must be continuous: expected {index + 1}, got {record.seq}"
            )
        if record.message.id is None:
            raise ValidationError(f"committed message record '{record.message_id}' must carry message id")
        if record.message.id != record.message_id:
            raise ValidationError(
                f"committed message record '{record.message_id}' cannot carry message id '{record.message.id}'"
            )
    validate_committed_messages([record.message for record in records])


# ── views: runtime-contract/src/contract/message.rs ──────────────────


def strip_unpaired_tool_calls_from_view(messages: list[Message]) -> None:
    """`strip_unpaired_tool_calls_from_view`, in place: upstream's read view.

    A call survives when a visible result answers it and no internal one retracts
    it; internal results and results of retracted calls are dropped. An orphan
    result (answering a call no message made) is kept: its comment says otherwise.
    """
    answered: set[str] = set()
    retracted: set[str] = set()
    for message in messages:
        if message.role is Role.TOOL and message.tool_call_id is not None:
            (answered if message.visibility is Visibility.ALL else retracted).add(message.tool_call_id)
    for index, message in enumerate(messages):
        if message.role is Role.ASSISTANT and message.tool_calls is not None:
            calls = [c for c in message.tool_calls if c.id in answered and c.id not in retracted]
            messages[index] = replace(message, tool_calls=calls or None)
    messages[:] = [
        m
        for m in messages
        if m.role is not Role.TOOL
        or m.tool_call_id is None
        or (m.visibility is Visibility.ALL and m.tool_call_id not in retracted)
    ]


def _effective_messages(records: Sequence[MessageRecord]) -> list[Message]:
    """`effective_messages`: fold compaction, the widest covering interval winning, summaries at their start."""
    summary_seqs = {record.seq for record in records if record.compaction is not None}
    candidates = sorted(
        ((r.compaction.from_seq, r.compaction.to_seq, r.message) for r in records if r.compaction is not None),
        key=lambda candidate: (candidate[0], -candidate[1]),
    )
    intervals: list[tuple[int, int, Message]] = []
    for start, end, summary in candidates:
        if not any(kept[0] <= start and end <= kept[1] for kept in intervals):
            intervals.append((start, end, summary))
    intervals.sort(key=lambda interval: interval[0])
    out: list[Message] = []
    pending = 0
    for record in records:
        if record.seq in summary_seqs:
            continue
        while pending < len(intervals) and intervals[pending][0] <= record.seq:
            out.append(intervals[pending][2].copy())
            pending += 1
        if any(start <= record.seq <= end for start, end, _ in intervals):
            continue
        out.append(record.message.copy())
    out.extend(summary.copy() for _, _, summary in intervals[pending:])
    return out


def effective_committed_view(committed: Sequence[Message], thread_id: str) -> list[Message]:
    """`effective_committed_view`: records of the raw log, the compaction fold, then the read view."""
    records = [MessageRecord.from_message(thread_id, seq, m) for seq, m in enumerate(committed, start=1)]
    view = _effective_messages(records)
    strip_unpaired_tool_calls_from_view(view)
    return view


# ── threads: runtime-contract/src/thread.rs, server-contract/src/contract/storage.rs ──


def touch(thread: Thread, now: int) -> None:
    """`Thread::touch`, in place: set `created_at` if unset, `updated_at` to `now`."""
    if thread.metadata.created_at is None:
        thread.metadata.created_at = now
    thread.metadata.updated_at = now


def apply_run_projection(thread: Thread, run: RunRecord) -> None:
    """`Thread::apply_run_projection`, in place: the run's status projected onto the thread's run ids."""
    if thread.latest_run_updated_at is not None and run.updated_at < thread.latest_run_updated_at:
        if run.status is RunStatus.DONE:
            _clear_run_projection_if_matches(thread, run.run_id)
        return
    thread.latest_run_id = run.run_id
    thread.latest_run_updated_at = run.updated_at
    if thread.parent_thread_id is None:
        thread.parent_thread_id = normalize_lineage_id(run.request.parent_thread_id if run.request else None)
    if run.status is RunStatus.CREATED or run.status is RunStatus.WAITING:
        thread.active_run_id = None
        thread.open_run_id = run.run_id
    elif run.status is RunStatus.RUNNING:
        thread.active_run_id = run.run_id
        thread.open_run_id = run.run_id
    else:
        _clear_run_projection_if_matches(thread, run.run_id)


def _clear_run_projection_if_matches(thread: Thread, run_id: str) -> None:
    if thread.active_run_id == run_id:
        thread.active_run_id = None
    if thread.open_run_id == run_id:
        thread.open_run_id = None


def checkpoint_parent_thread_id(existing: Thread | None, run: RunRecord) -> str | None:
    """`checkpoint_parent_thread_id`: the stored thread's parent, else the run request's, as they are."""
    if existing is not None and existing.parent_thread_id is not None:
        return existing.parent_thread_id
    return run.request.parent_thread_id if run.request is not None else None


def validate_thread_hierarchy_map(threads: Mapping[str, Thread], thread_id: str, parent_thread_id: str | None) -> None:
    """`validate_thread_hierarchy_map` (awaken-stores/src/memory/mod.rs), the trait default's walk over a map."""
    parent = normalize_lineage_id(parent_thread_id)
    if parent is None:
        return
    if parent == thread_id:
        raise ValidationError(f"thread '{thread_id}' cannot parent itself")
    visited = {thread_id}
    current = parent
    while True:
        if current in visited:
            raise ValidationError(f"thread hierarchy cycle detected at '{current}'")
        visited.add(current)
        found = threads.get(current)
        if found is None:
            if current == parent:
                raise ValidationError(f"parent thread not found: {parent}")
            raise ValidationError(f"thread hierarchy references missing ancestor '{current}'")
        next_parent = normalize_lineage_id(found.parent_thread_id)
        if next_parent is None:
            return
        current = next_parent


def sort_threads_by_recent_activity(threads: list[Thread]) -> None:
    """`sort_threads_by_recent_activity`, in place: `updated_at` (else `created_at`, else 0) descending, then id."""

    def activity(thread: Thread) -> int:
        metadata = thread.metadata
        stamp = metadata.updated_at if metadata.updated_at is not None else metadata.created_at
        return stamp if stamp is not None else 0

    threads.sort(key=lambda thread: (-activity(thread), thread.id))


def _matches_thread(query: ThreadQuery, thread: Thread) -> bool:
    """`ThreadQuery::matches_thread` of a normalized query."""
    if query.id_prefix is not None and not thread.id.startswith(query.id_prefix):
        return False
    if query.resource_id is not None and normalize_lineage_id(thread.resource_id) != query.resource_id:
        return False
    parent = normalize_lineage_id(thread.parent_thread_id)
    if query.parent_filter.kind == "root":
        return parent is None
    if query.parent_filter.kind == "parent":
        return parent == query.parent_filter.parent_id
    return True


def paginate_threads(threads: list[Thread], query: ThreadQuery) -> ThreadPage:
    """`paginate_threads`: normalize, sort, filter, then the window and its cursors."""
    query = query.normalized()
    sort_threads_by_recent_activity(threads)
    matching = [thread for thread in threads if _matches_thread(query, thread)]
    start = min(query.offset, len(matching))
    items = [thread.id for thread in matching[start : start + query.limit]]
    next_offset = start + len(items)
    has_more = query.limit > 0 and next_offset < len(matching)
    return ThreadPage(
        items=items,
        total=len(matching),
        has_more=has_more,
        next_cursor=query.encode_cursor(next_offset) if has_more else None,
        prev_cursor=query.encode_cursor(max(start - query.limit, 0)) if query.limit > 0 and start > 0 else None,
    )


def _matches_record(query: MessageQuery, record: MessageRecord) -> bool:
    """`MessageQuery::matches_record`."""
    if query.after is not None and record.seq <= query.after:
        return False
    if query.before is not None and record.seq >= query.before:
        return False
    if query.run_id is not None and record.produced_by_run_id != query.run_id:
        return False
    internal = record.message.visibility is Visibility.INTERNAL
    if query.visibility is MessageVisibilityFilter.EXTERNAL:
        return not internal
    if query.visibility is MessageVisibilityFilter.INTERNAL:
        return internal
    return True


def paginate_message_records(records: list[MessageRecord], query: MessageQuery) -> MessagePage:
    """`paginate_message_records`: normalize, filter, order by seq, then the window and its cursors."""
    query = query.normalized()
    matching = sorted(
        (record for record in records if _matches_record(query, record)),
        key=lambda record: record.seq,
        reverse=query.order is MessageOrder.DESC,
    )
    start = min(query.offset, len(matching))
    page = matching[start : start + query.limit]
    next_offset = start + len(page)
    has_more = query.limit > 0 and next_offset < len(matching)
    return MessagePage(
        records=page,
        total=len(matching),
        has_more=has_more,
        next_cursor=query.encode_cursor(next_offset) if has_more else None,
        prev_cursor=query.encode_cursor(max(start - query.limit, 0)) if query.limit > 0 and start > 0 else None,
    )
