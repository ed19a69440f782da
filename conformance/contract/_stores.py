"""The store contract in code: abstract base classes whose defaults port the seed's.

A backend subclasses `ThreadRunStore` and writes the abstract methods; every other
method is the Rust seed's default, written only in terms of the abstract ones and
changed only where SPEC section 10 says so. Backends override defaults for
atomicity or speed; the conformance kit holds them to the same rules.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TypeVar

from conformance.contract._enums import ChildThreadDeleteStrategy
from conformance.contract._errors import NotFoundError, ValidationError, VersionConflictError
from conformance.contract._hierarchy import cascade_walk, hierarchy_walk
from conformance.contract._messages import (
    effective_committed_view,
    merge_checkpoint_append_messages,
    strip_unpaired_tool_calls,
    validate_append_only_delta,
)
from conformance.contract._models import Message, MessageRecord, Thread, ThreadMetadata, normalize_lineage_id
from conformance.contract._queries import (
    MessagePage,
    MessageQuery,
    RunPage,
    RunQuery,
    ThreadPage,
    ThreadParentFilter,
    ThreadQuery,
    paginate_message_records,
    paginate_threads,
)
from conformance.contract._runs import CheckpointSnapshot, MessageSeqRange, PersistedState, RunRecord
from conformance.contract._threads import checkpoint_parent_thread_id, now_ms

__all__ = ["RunStore", "ThreadRunCheckpointStore", "ThreadRunStore", "ThreadStore"]

_SCAN_LIMIT = 200
_T = TypeVar("_T")


def require(value: object, expected: type[_T], name: str) -> _T:
    """Return `value` when it is an `expected`; raise `TypeError` naming the argument otherwise."""
    if not isinstance(value, expected):
        raise TypeError(f"argument '{name}' must be a {expected.__name__}, got {type(value).__name__}")
    return value


def message_list(value: object) -> list[Message]:
    """A copy of the `messages` argument as a list; `TypeError` naming it unless a list or tuple."""
    if not isinstance(value, (list, tuple)):
        raise TypeError(f"argument 'messages' must be a list of Message, got {type(value).__name__}")
    return list(value)


def delete_strategy(strategy: ChildThreadDeleteStrategy | str) -> ChildThreadDeleteStrategy:
    """Coerce a strategy or its JSON spelling; raise `ValidationError` for anything else."""
    try:
        return ChildThreadDeleteStrategy(strategy)
    except ValueError:
        choices = ", ".join(s.value for s in ChildThreadDeleteStrategy)
        raise ValidationError(
            f"argument 'strategy': unknown delete strategy {strategy!r}; use one of {choices}"
        ) from None


class ThreadStore(ABC):
    """Threads, their hierarchy, their append-only message logs and thread state."""

    # ── abstract: every backend writes these ──────────────────────────

    @abstractmethod
    async def load_thread(self, thread_id: str) -> Thread | None:
        """Return the thread, or `None` for an unknown id (THR-1)."""

    @abstractmethod
    async def save_thread(self, thread: Thread) -> None:
        """Create or overwrite `thread` with its lineage normalized (THR-2).

        Normalizes `resource_id` and `parent_thread_id` first (`thread.normalized()`:
        `"  r "` is stored as `"r"`, a blank one as `None`), then validates the copy
        (MOD-2) and stores it. Raises `ValidationError` for an invalid thread (a blank
        id or run id, a self-parent), storing nothing. Does not check the hierarchy:
        use `save_thread_validated` for that.
        """

    @abstractmethod
    async def delete_thread(self, thread_id: str) -> None:
        """Remove the thread, its message log and its thread state; runs are kept (THR-4).

        Deleting an unknown id is not an error.
        """

    @abstractmethod
    async def list_threads(self, offset: int, limit: int) -> list[str]:
        """Return thread ids by recent activity, then id (THR-5), skipping `offset`, at most `limit`."""

    @abstractmethod
    async def load_committed_messages(self, thread_id: str) -> list[Message] | None:
        """Return the raw committed log, untouched; `None` when it has no message (MSG-1, VIEW-1)."""

    @abstractmethod
    async def save_messages(self, thread_id: str, messages: list[Message]) -> None:
        """Replace the whole log with `messages` (MSG-2); the thread need not exist.

        Raises `ValidationError` when a message is invalid (MOD-3) or an id repeats;
        nothing changes then. An empty list leaves no log (MSG-1).
        """

    @abstractmethod
    async def delete_messages(self, thread_id: str) -> None:
        """Empty the log of an existing thread; raises `NotFoundError` for an unknown thread (MSG-3)."""

    @abstractmethod
    async def update_thread_metadata(self, id: str, metadata: ThreadMetadata) -> None:
        """Replace the whole metadata of thread `id` (THR-3).

        Raises `NotFoundError` for an unknown id, creating nothing.
        """

    # ── defaults: the seed's, in terms of the abstract methods ────────

    async def save_thread_validated(self, thread: Thread) -> None:
        """Check the hierarchy (HIE-1..4), then `save_thread` (HIE-5).

        Raises `ValidationError` for a cycle, a missing parent or ancestor, or a
        thread invalid once normalized (THR-2); nothing is stored then. The default is
        not atomic across the check and the write: backends with concurrent writers
        override it (CON-3).
        """
        normalized = require(thread, Thread, "thread").normalized()
        normalized.validate_for_persist()
        await self.validate_thread_hierarchy(normalized.id, normalized.parent_thread_id)
        await self.save_thread(thread)

    async def save_thread_state(self, thread_id: str, state: PersistedState) -> None:
        """Persist thread-scoped state, overwriting the last (THR-6). The default keeps nothing."""
        require(thread_id, str, "thread_id")
        require(state, PersistedState, "state")

    async def load_thread_state(self, thread_id: str) -> PersistedState | None:
        """Return the last saved thread state, or `None` (THR-6). The default always returns `None`."""
        require(thread_id, str, "thread_id")
        return None

    async def delete_thread_with_strategy(
        self,
        thread_id: str,
        strategy: ChildThreadDeleteStrategy = ChildThreadDeleteStrategy.DETACH,
    ) -> None:
        """Delete a thread and handle its children by `strategy` (DEL-1..5).

        `REJECT` raises `ValidationError` when the thread has a direct child;
        `DETACH` clears each direct child's parent and sets its `updated_at` to now;
        `CASCADE` deletes every descendant and raises `ValidationError` on a cycle.
        Raises `NotFoundError` for an unknown id. The default is not atomic (DEL-6).
        """
        strategy = delete_strategy(strategy)
        if await self.load_thread(require(thread_id, str, "thread_id")) is None:
            raise NotFoundError(f"thread {thread_id!r} not found")
        if strategy is ChildThreadDeleteStrategy.REJECT:
            if await self.list_child_threads(thread_id):
                raise ValidationError(f"thread {thread_id!r} has child threads; choose 'detach' or 'cascade'")
            await self.delete_thread(thread_id)
        elif strategy is ChildThreadDeleteStrategy.DETACH:
            children = await self.list_child_threads(thread_id)
            updated_at = now_ms()
            for child in children:
                child.parent_thread_id = None
                child.metadata.updated_at = updated_at
                await self.save_thread(child)
            await self.delete_thread(thread_id)
        else:
            walk = cascade_walk(thread_id)
            try:
                parent_id = next(walk)
                while True:
                    parent_id = walk.send(await self.list_child_threads(parent_id))
            except StopIteration as done:
                doomed: list[str] = done.value
            for doomed_id in doomed:
                await self.delete_thread(doomed_id)

    async def list_threads_query(self, query: ThreadQuery) -> ThreadPage:
        """Return one page of thread ids matching `query` (QRY-1..5, CUR-4, SEC-1).

        The default scans `list_threads` and `load_thread` and pages in memory with
        `paginate_threads`. Raises `ValidationError` for a malformed query.
        """
        query = require(query, ThreadQuery, "query")
        query.normalized()
        offset = 0
        threads: list[Thread] = []
        while True:
            ids = await self.list_threads(offset, _SCAN_LIMIT)
            for thread_id in ids:
                thread = await self.load_thread(thread_id)
                if thread is not None:
                    threads.append(thread)
            if len(ids) < _SCAN_LIMIT:
                break
            offset += len(ids)
        return paginate_threads(threads, query)

    async def list_child_threads(self, parent_thread_id: str) -> list[Thread]:
        """Return the direct children of `parent_thread_id` as full threads, any order (HIE-6).

        An unknown or childless parent gives `[]`, and so does a blank one (it names no thread).
        """
        if normalize_lineage_id(require(parent_thread_id, str, "parent_thread_id")) is None:
            return []
        offset = 0
        children: list[Thread] = []
        while True:
            query = ThreadQuery(
                offset=offset, limit=_SCAN_LIMIT, parent_filter=ThreadParentFilter.parent(parent_thread_id)
            )
            page = await self.list_threads_query(query)
            for child_id in page.items:
                child = await self.load_thread(child_id)
                if child is not None:
                    children.append(child)
            if not page.has_more or not page.items:
                break
            offset = query.decode_cursor(page.next_cursor) if page.next_cursor else offset + len(page.items)
        return children

    async def validate_thread_hierarchy(self, thread_id: str, parent_thread_id: str | None) -> None:
        """Check that `thread_id` may take `parent_thread_id` as its parent (HIE-1..4).

        A blank or `None` parent passes. Raises `ValidationError` when the parent is the
        thread itself, when walking up meets the thread or any thread twice (a cycle),
        when the parent is missing ("parent thread not found") or an ancestor further
        up is missing ("missing ancestor").
        """
        require(thread_id, str, "thread_id")
        if parent_thread_id is not None:
            require(parent_thread_id, str, "parent_thread_id")
        walk = hierarchy_walk(thread_id, parent_thread_id)
        try:
            current = next(walk)
            while True:
                current = walk.send(await self.load_thread(current))
        except StopIteration:
            return

    async def load_messages(self, thread_id: str) -> list[Message] | None:
        """Return the read view of the log (VIEW-1), or `None` when it has no message (MSG-1)."""
        committed = await self.load_committed_messages(require(thread_id, str, "thread_id"))
        return None if committed is None else strip_unpaired_tool_calls(committed)

    async def load_message_records(self, thread_id: str) -> list[MessageRecord] | None:
        """Return a record per committed message, seq = position in the raw log (MSG-6).

        `None` when the log has no message.
        """
        committed = await self.load_committed_messages(require(thread_id, str, "thread_id"))
        if committed is None:
            return None
        # `load_committed_messages` hands out copies already (ISO-1): no second copy.
        return [MessageRecord.from_message(thread_id, seq, m, copy=False) for seq, m in enumerate(committed, start=1)]

    async def list_message_records(self, thread_id: str, query: MessageQuery) -> MessagePage:
        """Return one filtered page of records (MSG-7); an unknown thread gives an empty page.

        Raises `ValidationError` for a malformed query.
        """
        require(thread_id, str, "thread_id")
        query = require(query, MessageQuery, "query")
        query.normalized()
        records = await self.load_message_records(thread_id)
        return MessagePage() if records is None else paginate_message_records(records, query)

    async def append_message_records(self, thread_id: str, messages: list[Message]) -> list[MessageRecord]:
        """Append `messages` at the tail and return their records, seqs `len(log)+1...` (MSG-4).

        Raises `ValidationError` for an invalid message, an id already committed or an
        id repeated in the delta (MSG-5); nothing is appended then. An empty delta
        returns `[]`. The default is a read-modify-write: not safe under concurrent
        writers (CON-2).
        """
        require(thread_id, str, "thread_id")
        messages = message_list(messages)
        existing = await self.load_committed_messages(thread_id) or []
        validate_append_only_delta(existing, messages)
        start_seq = len(existing) + 1
        await self.save_messages(thread_id, [*existing, *messages])
        return [MessageRecord.from_message(thread_id, start_seq + i, m) for i, m in enumerate(messages)]

    async def load_message_record(self, thread_id: str, message_id: str) -> MessageRecord | None:
        """Return the record of one committed message, or `None` for an unknown id (MSG-8)."""
        require(message_id, str, "message_id")
        records = await self.load_message_records(require(thread_id, str, "thread_id"))
        return next((r for r in records or [] if r.message_id == message_id), None)

    async def load_message_records_range(self, thread_id: str, range: MessageSeqRange) -> list[MessageRecord]:
        """Return the records with `range.from_seq <= seq <= range.to_seq`, in seq order (MSG-8).

        Raises `ValidationError` for a negative bound.
        """
        require(thread_id, str, "thread_id")
        range = require(range, MessageSeqRange, "range")
        range.check_types("range")
        records = await self.load_message_records(thread_id)
        return [r for r in records or [] if range.from_seq <= r.seq <= range.to_seq]


class RunStore(ABC):
    """Run records."""

    @abstractmethod
    async def create_run(self, record: RunRecord) -> None:
        """Validate (MOD-4) and store a new run (RUN-1).

        Raises `ValidationError` for an invalid record and `AlreadyExistsError` for a
        stored `run_id`, keeping the old record.
        """

    @abstractmethod
    async def load_run(self, run_id: str) -> RunRecord | None:
        """Return the run, or `None` for an unknown id (RUN-2)."""

    @abstractmethod
    async def latest_run(self, thread_id: str) -> RunRecord | None:
        """Return the thread's run with the greatest `updated_at`, ties to the last written (RUN-3).

        `None` for a thread without runs.
        """

    @abstractmethod
    async def list_runs(self, query: RunQuery) -> RunPage:
        """Return one page of runs matching `query`, by `created_at` then `run_id` (RUN-4)."""


class ThreadRunStore(ThreadStore, RunStore):
    """Threads and runs in one store, with atomic checkpoints."""

    def thread_run_storage_identity(self) -> str | None:
        """An identity of the backing storage, when the store can prove one. Default `None`."""
        return None

    @abstractmethod
    async def checkpoint(self, thread_id: str, messages: list[Message], run: RunRecord) -> None:
        """Replace the log with `messages` and upsert `run`, atomically (CKP-1, CKP-2).

        Validates the run (MOD-4, and `run.thread_id == thread_id`), the messages
        (MOD-3, unique ids) and the hierarchy of the thread's parent (its stored parent,
        else `run.request.parent_thread_id`); raises `ValidationError` and changes
        nothing when any fails. On success the
        thread is created if missing, `created_at` set if unset, `updated_at` set to
        now (ms), the run projected onto it (CKP-6), and the stored run becomes `run`.
        """

    async def checkpoint_append(
        self,
        thread_id: str,
        messages: list[Message],
        expected_version: int | None,
        run: RunRecord,
    ) -> int:
        """Append `messages` and upsert `run`, guarded by the log length; return the new length.

        Checks in this order, and the first check that fails decides the error (CKP-3):
        the run (MOD-4, and `run.thread_id == thread_id`: `ValidationError`, CKP-1); the
        hierarchy of the thread's parent as `checkpoint` checks it (`ValidationError`,
        CKP-1); `expected_version`, when given, against the committed log length
        (`VersionConflictError(expected, actual)`, CKP-3); the delta as MSG-5
        (`ValidationError`, CKP-4). Nothing changes when one fails. So a stale version
        with an invalid run raises `ValidationError`, and a stale version with a bad
        delta `VersionConflictError`. The default is a read-modify-write: not safe
        under concurrent writers (CON-1).
        """
        require(thread_id, str, "thread_id")
        messages = message_list(messages)
        if expected_version is not None and (
            not isinstance(expected_version, int) or isinstance(expected_version, bool) or expected_version < 0
        ):
            wanted = "must be None or an integer >= 0"
            raise ValidationError(f"argument 'expected_version' {wanted}, got {expected_version!r}")
        require(run, RunRecord, "run").validate_for_persist()
        if run.thread_id != thread_id:
            raise ValidationError(
                f"run {run.run_id!r} belongs to thread {run.thread_id!r}, not to the checkpointed thread {thread_id!r}"
            )
        parent_thread_id = checkpoint_parent_thread_id(await self.load_thread(thread_id), run)
        await self.validate_thread_hierarchy(thread_id, parent_thread_id)
        existing = await self.load_committed_messages(thread_id) or []
        actual = len(existing)
        if expected_version is not None and expected_version != actual:
            raise VersionConflictError(expected_version, actual)
        merged = list(existing)
        merge_checkpoint_append_messages(merged, messages)
        await self.checkpoint(thread_id, merged, run)
        return len(merged)

    async def load_checkpoint(self, thread_id: str) -> CheckpointSnapshot | None:
        """Return what a runtime resumes from (CKP-5), or `None` without messages and runs.

        `messages` is the effective view (VIEW-2 then VIEW-1), `message_version` the raw
        log length, `latest_run` as RUN-3, `thread_state` as THR-6.
        """
        committed = await self.load_committed_messages(require(thread_id, str, "thread_id"))
        latest = await self.latest_run(thread_id)
        if committed is None and latest is None:
            return None
        raw = committed or []
        return CheckpointSnapshot(
            messages=effective_committed_view(raw, thread_id),
            message_version=len(raw),
            latest_run=latest,
            thread_state=await self.load_thread_state(thread_id),
        )


class ThreadRunCheckpointStore:
    """The runtime's read port over a `ThreadRunStore`: resume reads only, delegated as they are."""

    def __init__(self, inner: ThreadRunStore) -> None:
        if not isinstance(inner, ThreadRunStore):
            raise TypeError(f"argument 'inner' must be a ThreadRunStore, got {type(inner).__name__}")
        self.inner = inner

    async def load_thread(self, thread_id: str) -> Thread | None:
        """`inner.load_thread`."""
        return await self.inner.load_thread(thread_id)

    async def load_messages(self, thread_id: str) -> list[Message] | None:
        """`inner.load_messages` (the read view)."""
        return await self.inner.load_messages(thread_id)

    async def load_committed_messages(self, thread_id: str) -> list[Message] | None:
        """`inner.load_committed_messages` (the raw log)."""
        return await self.inner.load_committed_messages(thread_id)

    async def load_run(self, run_id: str) -> RunRecord | None:
        """`inner.load_run`."""
        return await self.inner.load_run(run_id)

    async def latest_run(self, thread_id: str) -> RunRecord | None:
        """`inner.latest_run`."""
        return await self.inner.latest_run(thread_id)

    async def load_thread_state(self, thread_id: str) -> PersistedState | None:
        """`inner.load_thread_state`."""
        return await self.inner.load_thread_state(thread_id)

    async def load_checkpoint(self, thread_id: str) -> CheckpointSnapshot | None:
        """`inner.load_checkpoint` (the store's own, possibly atomic, consistent read)."""
        return await self.inner.load_checkpoint(thread_id)
