"""The reference store: every SPEC rule, in memory, in pure Python."""

from __future__ import annotations

from collections.abc import Sequence

import anyio
import anyio.lowlevel

from conformance import (
    AlreadyExistsError,
    CheckpointSnapshot,
    ChildThreadDeleteStrategy,
    Message,
    MessagePage,
    MessageQuery,
    MessageRecord,
    MessageSeqRange,
    NotFoundError,
    PersistedState,
    RunPage,
    RunQuery,
    RunRecord,
    Thread,
    ThreadMetadata,
    ThreadPage,
    ThreadQuery,
    ThreadRunStore,
    ValidationError,
    VersionConflictError,
    apply_run_projection,
    cascade_walk,
    checkpoint_parent_thread_id,
    effective_committed_view,
    hierarchy_walk,
    normalize_lineage_id,
    now_ms,
    strip_unpaired_tool_calls,
    validate_message_delta,
)
from reference_store._arguments import delete_strategy, message_list, require
from reference_store._log import MessageLog
from reference_store._run_index import RunIndex
from reference_store._thread_index import ThreadIndex

__all__ = ["ReferenceStore"]


def _count(value: object, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValidationError(f"argument '{name}' must be an integer >= 0, got {value!r}")
    return value


class _OperationLock:
    """`anyio.Lock` semantics at two thirds of its cost: each operation takes the lock, then yields once.

    The yield lets concurrent callers queue up and run between operations, as they
    would against a backend that does I/O (the concurrency rules and the kit's
    broken-store zoo rely on it). `anyio.Lock` also yields while holding the lock, but
    inside a shielded cancel scope; here a cancellation during that yield releases the
    lock before anything was changed, which keeps every operation cancel-safe.
    """

    __slots__ = ("_lock",)

    def __init__(self) -> None:
        self._lock = anyio.Lock()

    async def __aenter__(self) -> None:
        try:
            self._lock.acquire_nowait()
        except anyio.WouldBlock:
            await self._lock.acquire()  # queued: another operation is running or yielding
            return
        try:
            await anyio.lowlevel.checkpoint()
        except BaseException:
            self._lock.release()
            raise

    async def __aexit__(self, *exc_info: object) -> None:
        self._lock.release()


class ReferenceStore(ThreadRunStore):
    """An in-memory `ThreadRunStore` that keeps every rule of the contract.

    Capabilities: `thread_state`, `atomic_delete`, `concurrent_writers`,
    `cancel_safe` and `any_ids` (all but `durable`). Every operation holds one anyio
    lock and never awaits between its checks and its writes, so it is atomic and
    cancel-safe under asyncio and trio. Objects passed in are copied before they are
    kept and copied again before they are returned (ISO-1).

    >>> store = ReferenceStore()
    """

    capabilities = frozenset({"thread_state", "atomic_delete", "concurrent_writers", "cancel_safe", "any_ids"})

    def __init__(self) -> None:
        self._lock = _OperationLock()
        self._threads = ThreadIndex()
        self._logs: dict[str, MessageLog] = {}
        self._states: dict[str, PersistedState] = {}
        self._runs = RunIndex()

    def thread_run_storage_identity(self) -> str | None:
        """`reference-store:<object id>`: two stores share nothing, so each has its own identity."""
        return f"reference-store:{id(self):x}"

    # ── helpers: called with the lock held, never awaiting ───────────

    def _check_hierarchy(self, thread_id: str, parent_thread_id: str | None) -> None:
        walk = hierarchy_walk(thread_id, parent_thread_id)
        try:
            current = next(walk)
            while True:
                current = walk.send(self._threads.threads.get(current))
        except StopIteration:
            return

    def _subtree(self, thread_id: str) -> list[str]:
        """`thread_id` and its descendants, as `cascade_walk` finds them; ValidationError on a cycle (DEL-5)."""
        walk = cascade_walk(thread_id)
        try:
            parent_id = next(walk)
            while True:
                parent_id = walk.send(self._threads.children(parent_id))
        except StopIteration as done:
            doomed: list[str] = done.value
        return doomed

    def _drop_thread(self, thread_id: str) -> None:
        self._threads.drop(thread_id)
        self._logs.pop(thread_id, None)
        self._states.pop(thread_id, None)

    def _replace_log(self, thread_id: str, messages: Sequence[Message]) -> None:
        if messages:
            log = MessageLog()
            log.extend([m.copy() for m in messages])
            self._logs[thread_id] = log
        else:
            self._logs.pop(thread_id, None)

    def _prepare_checkpoint(self, thread_id: str, run: RunRecord) -> Thread:
        """Validate a checkpoint's run and hierarchy (CKP-1); return the projected thread (CKP-2)."""
        require(run, RunRecord, "run").validate_for_persist()
        if run.thread_id != thread_id:
            raise ValidationError(
                f"run {run.run_id!r} belongs to thread {run.thread_id!r}, not to the checkpointed thread {thread_id!r}"
            )
        existing = self._threads.threads.get(thread_id)
        self._check_hierarchy(thread_id, checkpoint_parent_thread_id(existing, run))
        thread = existing.copy() if existing is not None else Thread(id=thread_id)
        now = now_ms()
        if thread.metadata.created_at is None:
            thread.metadata.created_at = now
        thread.metadata.updated_at = now
        projected = apply_run_projection(thread, run)
        projected.validate_for_persist()
        return projected

    # ── threads ──────────────────────────────────────────────────────

    async def load_thread(self, thread_id: str) -> Thread | None:
        """Return a copy of the thread, or `None` for an unknown id (THR-1)."""
        async with self._lock:
            thread = self._threads.threads.get(require(thread_id, str, "thread_id"))
            return None if thread is None else thread.copy()

    async def save_thread(self, thread: Thread) -> None:
        """Normalize the lineage, validate (MOD-2), then create or overwrite (THR-2)."""
        normalized = require(thread, Thread, "thread").normalized()
        normalized.validate_for_persist()
        async with self._lock:
            self._threads.put(normalized)

    async def save_thread_validated(self, thread: Thread) -> None:
        """Check the hierarchy (HIE-1..4) and save, atomically (HIE-5, CON-3)."""
        normalized = require(thread, Thread, "thread").normalized()
        normalized.validate_for_persist()
        async with self._lock:
            self._check_hierarchy(normalized.id, normalized.parent_thread_id)
            self._threads.put(normalized)

    async def validate_thread_hierarchy(self, thread_id: str, parent_thread_id: str | None) -> None:
        """Raise `ValidationError` unless `thread_id` may take the parent (HIE-1..4)."""
        if parent_thread_id is not None:
            require(parent_thread_id, str, "parent_thread_id")
        async with self._lock:
            self._check_hierarchy(require(thread_id, str, "thread_id"), parent_thread_id)

    async def delete_thread(self, thread_id: str) -> None:
        """Remove the thread, its log and its state; keep its runs; unknown ids are fine (THR-4)."""
        async with self._lock:
            self._drop_thread(require(thread_id, str, "thread_id"))

    async def delete_thread_with_strategy(
        self,
        thread_id: str,
        strategy: ChildThreadDeleteStrategy = ChildThreadDeleteStrategy.DETACH,
    ) -> None:
        """Delete by strategy, all or nothing (DEL-1..6)."""
        strategy = delete_strategy(strategy)
        async with self._lock:
            if require(thread_id, str, "thread_id") not in self._threads.threads:
                raise NotFoundError(f"thread {thread_id!r} not found")
            children = self._threads.children(thread_id)
            if strategy is ChildThreadDeleteStrategy.REJECT and children:
                raise ValidationError(f"thread {thread_id!r} has child threads; choose 'detach' or 'cascade'")
            if strategy is ChildThreadDeleteStrategy.CASCADE:
                for doomed_id in self._subtree(thread_id):
                    self._drop_thread(doomed_id)
                return
            updated_at = now_ms()
            for child in [c.copy() for c in children]:
                child.parent_thread_id = None
                child.metadata.updated_at = updated_at
                self._threads.put(child)
            self._drop_thread(thread_id)

    async def list_threads(self, offset: int, limit: int) -> list[str]:
        """Thread ids by recent activity, then id (THR-5)."""
        async with self._lock:
            return self._threads.ids_in_order(_count(offset, "offset"), _count(limit, "limit"))

    async def list_threads_query(self, query: ThreadQuery) -> ThreadPage:
        """One page of matching ids (QRY-1..5), served from the parent, resource or id index."""
        normalized = require(query, ThreadQuery, "query").normalized()
        async with self._lock:
            return self._threads.page(normalized)

    async def list_child_threads(self, parent_thread_id: str) -> list[Thread]:
        """Copies of the direct children of a thread, by id (HIE-6)."""
        async with self._lock:
            parent = normalize_lineage_id(require(parent_thread_id, str, "parent_thread_id"))
            children = self._threads.children(parent) if parent is not None else []
            return sorted((c.copy() for c in children), key=lambda t: t.id)

    async def update_thread_metadata(self, id: str, metadata: ThreadMetadata) -> None:
        """Replace the whole metadata; `NotFoundError` for an unknown id (THR-3)."""
        require(metadata, ThreadMetadata, "metadata").check_types(f"metadata of thread {id!r}")
        async with self._lock:
            existing = self._threads.threads.get(require(id, str, "id"))
            if existing is None:
                raise NotFoundError(f"thread {id!r} not found")
            updated = existing.copy()
            updated.metadata = metadata.copy()
            self._threads.put(updated)

    async def save_thread_state(self, thread_id: str, state: PersistedState) -> None:
        """Overwrite the thread's state (THR-6); the thread need not exist."""
        require(state, PersistedState, "state").check_types(f"state of thread {thread_id!r}")
        async with self._lock:
            self._states[require(thread_id, str, "thread_id")] = state.copy()

    async def load_thread_state(self, thread_id: str) -> PersistedState | None:
        """The last saved state, `None` if never saved or after `delete_thread` (THR-6)."""
        async with self._lock:
            state = self._states.get(require(thread_id, str, "thread_id"))
            return None if state is None else state.copy()

    # ── messages ─────────────────────────────────────────────────────

    async def load_committed_messages(self, thread_id: str) -> list[Message] | None:
        """Copies of the raw log, or `None` when it has no message (MSG-1)."""
        async with self._lock:
            log = self._logs.get(require(thread_id, str, "thread_id"))
            return None if log is None else [m.copy() for m in log.messages]

    async def load_messages(self, thread_id: str) -> list[Message] | None:
        """The read view of the log (VIEW-1), or `None` when it has no message (MSG-1)."""
        committed = await self.load_committed_messages(thread_id)
        return None if committed is None else strip_unpaired_tool_calls(committed)

    async def save_messages(self, thread_id: str, messages: list[Message]) -> None:
        """Replace the whole log after validating every message (MSG-2)."""
        messages = message_list(messages)
        validate_message_delta((), 1, messages)
        async with self._lock:
            self._replace_log(require(thread_id, str, "thread_id"), messages)

    async def delete_messages(self, thread_id: str) -> None:
        """Empty the log of an existing thread; `NotFoundError` otherwise (MSG-3)."""
        async with self._lock:
            if require(thread_id, str, "thread_id") not in self._threads.threads:
                raise NotFoundError(f"thread {thread_id!r} not found")
            self._logs.pop(thread_id, None)

    async def append_message_records(self, thread_id: str, messages: list[Message]) -> list[MessageRecord]:
        """Append at the tail in O(delta) and return the new records (MSG-4, MSG-5)."""
        messages = message_list(messages)
        async with self._lock:
            log = self._logs.get(require(thread_id, str, "thread_id"))
            committed = log.positions if log is not None else {}
            start_seq = len(log) + 1 if log is not None else 1
            validate_message_delta(committed, start_seq, messages)
            if not messages:
                return []
            if log is None:
                log = self._logs[thread_id] = MessageLog()
            log.extend([m.copy() for m in messages])
            return [log.record(thread_id, seq) for seq in range(start_seq, len(log) + 1)]

    async def load_message_records(self, thread_id: str) -> list[MessageRecord] | None:
        """A record per committed message, raw seqs (MSG-6); `None` without messages."""
        async with self._lock:
            log = self._logs.get(require(thread_id, str, "thread_id"))
            return None if log is None else [log.record(thread_id, seq) for seq in range(1, len(log) + 1)]

    async def list_message_records(self, thread_id: str, query: MessageQuery) -> MessagePage:
        """One filtered page of records in O(log N + page) (MSG-7)."""
        normalized = require(query, MessageQuery, "query").normalized()
        async with self._lock:
            log = self._logs.get(require(thread_id, str, "thread_id"))
            return MessagePage() if log is None else log.page(thread_id, normalized)

    async def load_message_record(self, thread_id: str, message_id: str) -> MessageRecord | None:
        """The record of one message by id, without scanning; `None` when unknown (MSG-8)."""
        message_id = require(message_id, str, "message_id")
        async with self._lock:
            log = self._logs.get(require(thread_id, str, "thread_id"))
            seq = log.positions.get(message_id) if log is not None else None
            return None if log is None or seq is None else log.record(thread_id, seq)

    async def load_message_records_range(self, thread_id: str, range: MessageSeqRange) -> list[MessageRecord]:
        """Records with `from_seq <= seq <= to_seq`, inclusive (MSG-8)."""
        require(range, MessageSeqRange, "range").check_types("range")
        async with self._lock:
            log = self._logs.get(require(thread_id, str, "thread_id"))
            if log is None:
                return []
            first = max(range.from_seq, 1)
            last = min(range.to_seq, len(log))
            return [log.record(thread_id, seq) for seq in _inclusive(first, last)]

    # ── runs ─────────────────────────────────────────────────────────

    async def create_run(self, record: RunRecord) -> None:
        """Validate (MOD-4) and store a new run; `AlreadyExistsError` keeps the old one (RUN-1)."""
        require(record, RunRecord, "record").validate_for_persist()
        async with self._lock:
            if record.run_id in self._runs.runs:
                raise AlreadyExistsError(f"run {record.run_id!r} already exists")
            self._runs.put(record.copy())

    async def load_run(self, run_id: str) -> RunRecord | None:
        """A copy of the run, or `None` for an unknown id (RUN-2)."""
        async with self._lock:
            run = self._runs.runs.get(require(run_id, str, "run_id"))
            return None if run is None else run.copy()

    async def latest_run(self, thread_id: str) -> RunRecord | None:
        """The thread's latest run by `updated_at`, ties to the last write, without scanning (RUN-3)."""
        async with self._lock:
            run = self._runs.latest(require(thread_id, str, "thread_id"))
            return None if run is None else run.copy()

    async def list_runs(self, query: RunQuery) -> RunPage:
        """One page of matching runs by `created_at`, then `run_id` (RUN-4)."""
        normalized = require(query, RunQuery, "query").normalized()
        async with self._lock:
            page = self._runs.page(normalized)
            page.items = [run.copy() for run in page.items]
            return page

    # ── checkpoints ──────────────────────────────────────────────────

    async def checkpoint(self, thread_id: str, messages: list[Message], run: RunRecord) -> None:
        """Replace the log and upsert the run, all or nothing (CKP-1, CKP-2, CKP-6)."""
        messages = message_list(messages)
        async with self._lock:
            projected = self._prepare_checkpoint(require(thread_id, str, "thread_id"), run)
            validate_message_delta((), 1, messages)
            self._threads.put(projected)
            self._replace_log(thread_id, messages)
            self._runs.put(run.copy())

    async def checkpoint_append(
        self,
        thread_id: str,
        messages: list[Message],
        expected_version: int | None,
        run: RunRecord,
    ) -> int:
        """Append and upsert the run under the version guard, all or nothing (CKP-3, CKP-4).

        Checks the run and the hierarchy (CKP-1), then the version, then the delta: the
        first that fails decides the error (CKP-3).
        """
        messages = message_list(messages)
        if expected_version is not None:
            _count(expected_version, "expected_version")
        async with self._lock:
            projected = self._prepare_checkpoint(require(thread_id, str, "thread_id"), run)
            log = self._logs.get(thread_id)
            actual = len(log) if log is not None else 0
            if expected_version is not None and expected_version != actual:
                raise VersionConflictError(expected_version, actual)
            validate_message_delta(log.positions if log is not None else {}, actual + 1, messages)
            self._threads.put(projected)
            if messages:
                if log is None:
                    log = self._logs[thread_id] = MessageLog()
                log.extend([m.copy() for m in messages])
            self._runs.put(run.copy())
            return actual + len(messages)

    async def load_checkpoint(self, thread_id: str) -> CheckpointSnapshot | None:
        """One consistent read of view, version, latest run and state (CKP-5)."""
        async with self._lock:
            log = self._logs.get(require(thread_id, str, "thread_id"))
            latest = self._runs.latest(thread_id)
            if log is None and latest is None:
                return None
            raw = [m.copy() for m in log.messages] if log is not None else []
            state = self._states.get(thread_id)
            return CheckpointSnapshot(
                messages=effective_committed_view(raw, thread_id),
                message_version=len(raw),
                latest_run=None if latest is None else latest.copy(),
                thread_state=None if state is None else state.copy(),
            )


def _inclusive(first: int, last: int) -> range:
    return range(first, last + 1)
