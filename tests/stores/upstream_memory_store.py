"""`UpstreamMemoryStore`: a faithful port of upstream's in-memory store, to measure the contract against it.

Ported from the facts of awakenworks/awaken, `crates/awaken-stores/src/memory/mod.rs`
(`InMemoryStore`), with the `ThreadStore`/`RunStore`/`ThreadRunStore` trait defaults it
relies on (`crates/awaken-server-contract/src/contract/store_traits.rs`) and the pure
helpers both call (`upstream_rules`). It keeps upstream's order of normalization and
validation, its tie-breaks and its bugs; it is not a correct store of this contract.
`docs/UPSTREAM.md` lists where the two part, and `tests/test_upstream_parity.py`
checks that the kit fails this store on exactly those rules.

How the Rust maps to Python:

- Each `tokio::sync::RwLock<HashMap<..>>` is a dict behind an `anyio.Lock` of its own,
  taken in upstream's order; a read lock is a lock too (same outcomes, less overlap).
- Rust's `HashMap` iterates in an arbitrary order; a dict iterates in insertion
  order, which is one of those orders. Where upstream leaves a tie to the map's
  order (`list_runs` of runs created in the same second), the port keeps it.
- Every value is copied on the way in and on the way out, as Rust's `clone()`s do.
- `StorageError::Validation`, `NotFound`, `AlreadyExists`, `VersionConflict` are the
  contract's exceptions of the same names.
- Serde parses every argument before upstream's code sees it, and upstream's integers
  are unsigned: a negative one does not parse. `_parsed` refuses it with
  `ValidationError`, as the upstream shim answers such a request.
- The pending-message, profile and config maps of `InMemoryStore` are left out: no
  rule reads them.

Capabilities: what upstream's design gives, not what the contract hopes for. Every
write takes its maps' locks for the whole read-check-write (`concurrent_writers`,
`atomic_delete`, ADR-0042 D4/D5 in its comments); thread state is kept
(`thread_state`); any string is an id (`any_ids`). Nothing is durable, and upstream
says nothing about cancellation, so `cancel_safe` is not declared.
"""

from __future__ import annotations

from itertools import count

import anyio

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
    ThreadParentFilter,
    ThreadQuery,
    ThreadRunStore,
    ValidationError,
    VersionConflictError,
    normalize_lineage_id,
)
from stores.upstream_rules import (
    apply_run_projection,
    checkpoint_parent_thread_id,
    current_millis,
    effective_committed_view,
    merge_checkpoint_append_messages,
    paginate_message_records,
    paginate_threads,
    sort_threads_by_recent_activity,
    strip_unpaired_tool_calls_from_view,
    touch,
    validate_append_only_delta,
    validate_committed_message_records,
    validate_committed_messages,
    validate_thread_hierarchy_map,
)

__all__ = ["UpstreamMemoryStore"]

#: The trait defaults' page size when they scan (`SCAN_LIMIT`, `PAGE_LIMIT`).
_PAGE = 200


def _parsed(*values: object) -> None:
    """Refuse what serde cannot parse into upstream's unsigned integers: a negative number, in a model or alone."""
    for value in values:
        if isinstance(value, list):
            _parsed(*value)
        elif hasattr(value, "check_types"):
            value.check_types(type(value).__name__)
        elif isinstance(value, int) and value < 0:
            raise ValidationError(f"does not parse as upstream's model: invalid value {value}, expected u64")


class UpstreamMemoryStore(ThreadRunStore):
    """Upstream's `InMemoryStore`, method for method; see the module docstring."""

    capabilities = frozenset({"thread_state", "atomic_delete", "concurrent_writers", "any_ids"})

    def __init__(self) -> None:
        self._threads: dict[str, Thread] = {}
        self._threads_lock = anyio.Lock()
        self._runs: dict[str, RunRecord] = {}
        self._runs_lock = anyio.Lock()
        #: Per-run insertion sequence: `latest_run`'s tie-break, refreshed by every checkpoint.
        self._run_insertion: dict[str, int] = {}
        self._run_insertion_lock = anyio.Lock()
        self._run_seq = count()
        self._messages: dict[str, list[Message]] = {}
        self._messages_lock = anyio.Lock()
        self._thread_states: dict[str, PersistedState] = {}
        self._thread_states_lock = anyio.Lock()

    def thread_run_storage_identity(self) -> str | None:
        """`memory-thread-run::<address>`."""
        return f"memory-thread-run::{id(self):#x}"

    # ── ThreadStore ──────────────────────────────────────────────────

    async def load_thread(self, thread_id: str) -> Thread | None:
        async with self._threads_lock:
            found = self._threads.get(thread_id)
            return None if found is None else found.copy()

    async def save_thread(self, thread: Thread) -> None:
        normalized = thread.normalized()
        normalized.validate_for_persist()
        async with self._threads_lock:
            self._threads[normalized.id] = normalized

    async def save_thread_validated(self, thread: Thread) -> None:
        normalized = thread.normalized()
        normalized.validate_for_persist()
        async with self._threads_lock:
            validate_thread_hierarchy_map(self._threads, normalized.id, normalized.parent_thread_id)
            self._threads[normalized.id] = normalized

    async def delete_thread(self, thread_id: str) -> None:
        async with self._threads_lock, self._messages_lock:
            self._threads.pop(thread_id, None)
            self._messages.pop(thread_id, None)
            async with self._thread_states_lock:
                self._thread_states.pop(thread_id, None)

    async def save_thread_state(self, thread_id: str, state: PersistedState) -> None:
        _parsed(state)
        async with self._thread_states_lock:
            self._thread_states[thread_id] = state.copy()

    async def load_thread_state(self, thread_id: str) -> PersistedState | None:
        async with self._thread_states_lock:
            found = self._thread_states.get(thread_id)
            return None if found is None else found.copy()

    async def delete_thread_with_strategy(
        self,
        thread_id: str,
        strategy: ChildThreadDeleteStrategy = ChildThreadDeleteStrategy.DETACH,
    ) -> None:
        """Upstream's: thread and log go under every strategy; the thread state stays."""
        async with self._threads_lock, self._messages_lock:
            if thread_id not in self._threads:
                raise NotFoundError(thread_id)
            if strategy is ChildThreadDeleteStrategy.REJECT:
                if self._child_ids(thread_id):
                    raise ValidationError(f"thread '{thread_id}' has child threads; choose 'detach' or 'cascade'")
                self._drop(thread_id)
            elif strategy is ChildThreadDeleteStrategy.DETACH:
                updated_at = current_millis()
                for child_id in self._child_ids(thread_id):
                    child = self._threads[child_id]
                    child.parent_thread_id = None
                    child.resource_id = normalize_lineage_id(child.resource_id)
                    child.metadata.updated_at = updated_at
                self._drop(thread_id)
            else:
                for doomed in self._cascade_order(thread_id):
                    self._drop(doomed)

    def _child_ids(self, parent_thread_id: str) -> list[str]:
        """`collect_child_ids`: ids of the threads whose stored parent is exactly `parent_thread_id`, sorted."""
        return sorted(t.id for t in self._threads.values() if t.parent_thread_id == parent_thread_id)

    def _cascade_order(self, thread_id: str) -> list[str]:
        """The cascade's depth-first walk: descendants first, `thread_id` last; a thread met twice is a cycle."""
        visited: set[str] = set()
        stack = [(thread_id, False)]
        order: list[str] = []
        while stack:
            current, expanded = stack.pop()
            if expanded:
                order.append(current)
                continue
            if current in visited:
                raise ValidationError(f"thread hierarchy cycle detected while deleting '{thread_id}'")
            visited.add(current)
            stack.append((current, True))
            stack.extend((child_id, False) for child_id in reversed(self._child_ids(current)))
        return order

    def _drop(self, thread_id: str) -> None:
        """Remove a thread and its log (the thread state is not touched: upstream forgets it)."""
        self._threads.pop(thread_id, None)
        self._messages.pop(thread_id, None)

    async def list_threads(self, offset: int, limit: int) -> list[str]:
        _parsed(offset, limit)
        async with self._threads_lock:
            threads = [thread.copy() for thread in self._threads.values()]
        sort_threads_by_recent_activity(threads)
        return [thread.id for thread in threads[offset : offset + limit]]

    async def list_threads_query(self, query: ThreadQuery) -> ThreadPage:
        async with self._threads_lock:
            threads = [thread.copy() for thread in self._threads.values()]
        return paginate_threads(threads, query)

    async def list_child_threads(self, parent_thread_id: str) -> list[Thread]:
        """The trait default: page through `list_threads_query` with `parent(...)` as given (not normalized)."""
        offset = 0
        children: list[Thread] = []
        while True:
            query = ThreadQuery(offset=offset, limit=_PAGE, parent_filter=ThreadParentFilter.parent(parent_thread_id))
            page = await self.list_threads_query(query)
            for child_id in page.items:
                child = await self.load_thread(child_id)
                if child is not None:
                    children.append(child)
            if not page.has_more or not page.items:
                return children
            offset = _decoded(query, page.next_cursor, offset + len(page.items))

    async def validate_thread_hierarchy(self, thread_id: str, parent_thread_id: str | None) -> None:
        """The trait default, walking up through `load_thread`."""
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
            found = await self.load_thread(current)
            if found is None:
                if current == parent:
                    raise ValidationError(f"parent thread not found: {parent}")
                raise ValidationError(f"thread hierarchy references missing ancestor '{current}'")
            next_parent = normalize_lineage_id(found.parent_thread_id)
            if next_parent is None:
                return
            current = next_parent

    async def load_messages(self, thread_id: str) -> list[Message] | None:
        async with self._messages_lock:
            stored = self._messages.get(thread_id)
            messages = None if stored is None else [m.copy() for m in stored]
        if messages is None:
            return None
        validate_committed_messages(messages)
        strip_unpaired_tool_calls_from_view(messages)
        return messages

    async def load_committed_messages(self, thread_id: str) -> list[Message] | None:
        async with self._messages_lock:
            stored = self._messages.get(thread_id)
            messages = None if stored is None else [m.copy() for m in stored]
        if messages is not None:
            validate_committed_messages(messages)
        return messages

    async def load_message_records(self, thread_id: str) -> list[MessageRecord] | None:
        """The trait default: records of `load_messages`, the read view, numbered 1.. after its filter."""
        messages = await self.load_messages(thread_id)
        if messages is None:
            return None
        return [MessageRecord.from_message(thread_id, seq, message) for seq, message in enumerate(messages, start=1)]

    async def list_message_records(self, thread_id: str, query: MessageQuery) -> MessagePage:
        """Upstream's: the read view, numbered 1.. after its filter, then paged."""
        async with self._messages_lock:
            stored = self._messages.get(thread_id)
            if stored is None:
                return MessagePage()
            validate_committed_messages(stored)
            messages = [m.copy() for m in stored]
        strip_unpaired_tool_calls_from_view(messages)
        records = [MessageRecord.from_message(thread_id, seq, message) for seq, message in enumerate(messages, start=1)]
        validate_committed_message_records(thread_id, records)
        return paginate_message_records(records, query)

    async def save_messages(self, thread_id: str, messages: list[Message]) -> None:
        _parsed(messages)
        validate_committed_messages(messages)
        async with self._messages_lock:
            self._messages[thread_id] = [m.copy() for m in messages]

    async def append_message_records(self, thread_id: str, messages: list[Message]) -> list[MessageRecord]:
        """Upstream's atomic append; the log entry is made before the delta is validated."""
        _parsed(messages)
        async with self._messages_lock:
            existing = self._messages.setdefault(thread_id, [])
            validate_append_only_delta(existing, messages)
            start_seq = len(existing) + 1
            existing.extend(m.copy() for m in messages)
        return [MessageRecord.from_message(thread_id, start_seq + i, m.copy()) for i, m in enumerate(messages)]

    async def load_message_record(self, thread_id: str, message_id: str) -> MessageRecord | None:
        """The trait default, over `load_message_records`."""
        records = await self.load_message_records(thread_id)
        return next((record for record in records or [] if record.message_id == message_id), None)

    async def load_message_records_range(self, thread_id: str, range: MessageSeqRange) -> list[MessageRecord]:
        """The trait default, over `load_message_records`."""
        _parsed(range)
        records = await self.load_message_records(thread_id)
        return [record for record in records or [] if range.from_seq <= record.seq <= range.to_seq]

    async def delete_messages(self, thread_id: str) -> None:
        async with self._threads_lock:
            if thread_id not in self._threads:
                raise NotFoundError(thread_id)
        async with self._messages_lock:
            self._messages.pop(thread_id, None)

    async def update_thread_metadata(self, id: str, metadata: ThreadMetadata) -> None:
        _parsed(metadata)
        async with self._threads_lock:
            thread = self._threads.get(id)
            if thread is None:
                raise NotFoundError(id)
            thread.metadata = metadata.copy()

    # ── RunStore ─────────────────────────────────────────────────────

    async def create_run(self, record: RunRecord) -> None:
        record.validate_for_persist()
        async with self._runs_lock:
            if record.run_id in self._runs:
                raise AlreadyExistsError(record.run_id)
            self._runs[record.run_id] = record.copy()
            async with self._run_insertion_lock:
                self._run_insertion[record.run_id] = next(self._run_seq)

    async def load_run(self, run_id: str) -> RunRecord | None:
        async with self._runs_lock:
            found = self._runs.get(run_id)
            return None if found is None else found.copy()

    async def latest_run(self, thread_id: str) -> RunRecord | None:
        """The greatest `(updated_at, insertion sequence)`: ties go to the run written last."""
        async with self._runs_lock, self._run_insertion_lock:
            mine = [run for run in self._runs.values() if run.thread_id == thread_id]
            latest = max(mine, key=lambda r: (r.updated_at, self._run_insertion.get(r.run_id, 0)), default=None)
            return None if latest is None else latest.copy()

    async def list_runs(self, query: RunQuery) -> RunPage:
        """Filtered, stably sorted by `created_at` only (ties in map order), `limit` clamped to [1, 200]."""
        async with self._runs_lock:
            matching = [
                run.copy()
                for run in self._runs.values()
                if (query.thread_id is None or run.thread_id == query.thread_id)
                and (query.status is None or run.status is query.status)
                and (query.id_prefix is None or run.thread_id.startswith(query.id_prefix))
            ]
        matching.sort(key=lambda run: run.created_at)
        offset = min(query.offset, len(matching))
        items = matching[offset : offset + max(1, min(query.limit, 200))]
        return RunPage(items=items, total=len(matching), has_more=offset + len(items) < len(matching))

    # ── ThreadRunStore ───────────────────────────────────────────────

    async def checkpoint(self, thread_id: str, messages: list[Message], run: RunRecord) -> None:
        """Upstream's: run and messages validated, then the hierarchy; a run of another thread is accepted."""
        _parsed(messages, run)
        run.validate_for_persist()
        validate_committed_messages(messages)
        now = current_millis()
        async with self._threads_lock:
            existing = self._threads.get(thread_id)
            validate_thread_hierarchy_map(self._threads, thread_id, checkpoint_parent_thread_id(existing, run))
            async with self._messages_lock, self._runs_lock:
                self._threads[thread_id] = _projected(existing, thread_id, run, now)
                self._messages[thread_id] = [m.copy() for m in messages]
                self._runs[run.run_id] = run.copy()
                async with self._run_insertion_lock:
                    self._run_insertion[run.run_id] = next(self._run_seq)

    async def checkpoint_append(
        self,
        thread_id: str,
        messages: list[Message],
        expected_version: int | None,
        run: RunRecord,
    ) -> int:
        """Upstream's: hierarchy before the version guard; the log entry is made before the delta is validated."""
        _parsed(messages, expected_version, run)
        run.validate_for_persist()
        now = current_millis()
        async with self._threads_lock:
            existing = self._threads.get(thread_id)
            validate_thread_hierarchy_map(self._threads, thread_id, checkpoint_parent_thread_id(existing, run))
            async with self._messages_lock, self._runs_lock:
                stored = self._messages.get(thread_id)
                actual = len(stored) if stored is not None else 0
                if expected_version is not None and expected_version != actual:
                    raise VersionConflictError(expected_version, actual)
                committed = self._messages.setdefault(thread_id, [])
                merge_checkpoint_append_messages(committed, messages)
                self._threads[thread_id] = _projected(existing, thread_id, run, now)
                self._runs[run.run_id] = run.copy()
                async with self._run_insertion_lock:
                    self._run_insertion[run.run_id] = next(self._run_seq)
                return len(committed)

    async def load_checkpoint(self, thread_id: str) -> CheckpointSnapshot | None:
        """The trait default: raw log, latest run and state, read one after another."""
        committed = await self.load_committed_messages(thread_id)
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


def _projected(existing: Thread | None, thread_id: str, run: RunRecord, now: int) -> Thread:
    """The checkpointed thread: the stored one (or a new one) touched, the run projected, lineage normalized."""
    thread = existing.copy() if existing is not None else Thread(id=thread_id)
    touch(thread, now)
    apply_run_projection(thread, run)
    thread.resource_id = normalize_lineage_id(thread.resource_id)
    thread.parent_thread_id = normalize_lineage_id(thread.parent_thread_id)
    return thread


def _decoded(query: ThreadQuery, cursor: str | None, fallback: int) -> int:
    """The trait default's `next_cursor` decode, falling back to `offset + count` when it fails."""
    if cursor is None:
        return fallback
    try:
        return query.decode_cursor(cursor)
    except ValidationError:
        return fallback
