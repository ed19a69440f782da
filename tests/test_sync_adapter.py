"""`SyncStoreAdapter`: a blocking store passes the whole kit through it, and the adapter delegates exactly.

`BlockingStore` is a store written against no event loop at all: plain methods on
dicts, one lock around each. It has its own atomic composite writes (validated
save, append, versioned append, strategy delete), which is what lets it declare
the concurrency, atomicity and cancellation capabilities through the adapter.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable
from itertools import count
from typing import Any, ClassVar

import anyio
import pytest
from anyio import wait_all_tasks_blocked

from conformance import (
    AlreadyExistsError,
    ChildThreadDeleteStrategy,
    Message,
    MessageRecord,
    NotFoundError,
    PersistedState,
    RunPage,
    RunQuery,
    RunRecord,
    StoreContract,
    SyncStoreAdapter,
    Thread,
    ThreadMetadata,
    ThreadRunStore,
    ValidationError,
    VersionConflictError,
    apply_run_projection,
    cascade_walk,
    checkpoint_parent_thread_id,
    hierarchy_walk,
    merge_checkpoint_append_messages,
    normalize_lineage_id,
    now_ms,
    paginate_runs,
    sorted_threads_by_recent_activity,
    validate_append_only_delta,
)
from conformance.contract._stores import delete_strategy
from conformance.contract._sync import OPTIONAL, REQUIRED
from reference_store import ReferenceStore


class BlockingStore:
    """Threads, logs, states and runs in dicts behind one lock; every method blocks, none is async."""

    capabilities: ClassVar[frozenset[str]] = frozenset(
        {"thread_state", "atomic_delete", "concurrent_writers", "cancel_safe", "any_ids"}
    )

    def __init__(self) -> None:
        self.threads: dict[str, Thread] = {}
        self.logs: dict[str, list[Message]] = {}
        self.states: dict[str, PersistedState] = {}
        self.runs: dict[str, RunRecord] = {}
        self.written: dict[str, int] = {}
        self.clock = count()
        self.lock = threading.RLock()
        self.closed = False

    def close(self) -> None:
        self.closed = True

    # ── threads ──

    def load_thread(self, thread_id: str) -> Thread | None:
        with self.lock:
            found = self.threads.get(thread_id)
            return found.copy() if found else None

    def save_thread(self, thread: Thread) -> None:
        kept = thread.normalized()
        kept.validate_for_persist()
        with self.lock:
            self.threads[kept.id] = kept

    def save_thread_validated(self, thread: Thread) -> None:
        kept = thread.normalized()
        kept.validate_for_persist()
        with self.lock:
            self.validate_thread_hierarchy(kept.id, kept.parent_thread_id)
            self.threads[kept.id] = kept

    def validate_thread_hierarchy(self, thread_id: str, parent_thread_id: str | None) -> None:
        with self.lock:
            walk = hierarchy_walk(thread_id, parent_thread_id)
            try:
                current = next(walk)
                while True:
                    current = walk.send(self.threads.get(current))
            except StopIteration:
                return

    def delete_thread(self, thread_id: str) -> None:
        with self.lock:
            self.threads.pop(thread_id, None)
            self.logs.pop(thread_id, None)
            self.states.pop(thread_id, None)

    def delete_thread_with_strategy(
        self, thread_id: str, strategy: ChildThreadDeleteStrategy = ChildThreadDeleteStrategy.DETACH
    ) -> None:
        with self.lock:
            strategy = delete_strategy(strategy)
            if thread_id not in self.threads:
                raise NotFoundError(f"thread {thread_id!r} not found")
            children = self._children(thread_id)
            if strategy is ChildThreadDeleteStrategy.REJECT and children:
                raise ValidationError(f"thread {thread_id!r} has child threads; choose 'detach' or 'cascade'")
            doomed = [thread_id]
            if strategy is ChildThreadDeleteStrategy.CASCADE:
                walk = cascade_walk(thread_id)
                try:
                    parent_id = next(walk)
                    while True:
                        parent_id = walk.send(self._children(parent_id))
                except StopIteration as done:
                    doomed = done.value
            elif strategy is ChildThreadDeleteStrategy.DETACH:
                stamp = now_ms()
                for child in children:
                    child.parent_thread_id = None
                    child.metadata.updated_at = stamp
            for doomed_id in doomed:
                self.delete_thread(doomed_id)

    def _children(self, parent_id: str) -> list[Thread]:
        return [t for t in self.threads.values() if normalize_lineage_id(t.parent_thread_id) == parent_id]

    def list_threads(self, offset: int, limit: int) -> list[str]:
        if min(offset, limit) < 0:
            raise ValidationError(f"offset and limit must be >= 0, got {offset}, {limit}")
        with self.lock:
            ordered = sorted_threads_by_recent_activity(list(self.threads.values()))
            return [t.id for t in ordered[offset : offset + limit]]

    def update_thread_metadata(self, id: str, metadata: ThreadMetadata) -> None:
        metadata.check_types(f"metadata of thread {id!r}")  # arguments before state
        with self.lock:
            if id not in self.threads:
                raise NotFoundError(f"thread {id!r} not found")
            self.threads[id].metadata = metadata.copy()

    def save_thread_state(self, thread_id: str, state: PersistedState) -> None:
        state.check_types(f"state of thread {thread_id!r}")
        with self.lock:
            self.states[thread_id] = state.copy()

    def load_thread_state(self, thread_id: str) -> PersistedState | None:
        with self.lock:
            found = self.states.get(thread_id)
            return found.copy() if found else None

    # ── messages ──

    def load_committed_messages(self, thread_id: str) -> list[Message] | None:
        with self.lock:
            found = self.logs.get(thread_id)
            return [m.copy() for m in found] if found else None

    def save_messages(self, thread_id: str, messages: list[Message]) -> None:
        with self.lock:
            validate_append_only_delta([], messages)
            self.logs[thread_id] = [m.copy() for m in messages]

    def append_message_records(self, thread_id: str, messages: list[Message]) -> list[MessageRecord]:
        with self.lock:
            existing = self.logs.get(thread_id, [])
            validate_append_only_delta(existing, messages)
            if messages:
                self.logs[thread_id] = [*existing, *(m.copy() for m in messages)]
            start = len(existing) + 1
            return [MessageRecord.from_message(thread_id, start + i, m) for i, m in enumerate(messages)]

    def delete_messages(self, thread_id: str) -> None:
        with self.lock:
            if thread_id not in self.threads:
                raise NotFoundError(f"thread {thread_id!r} not found")
            self.logs.pop(thread_id, None)

    # ── runs and checkpoints ──

    def create_run(self, record: RunRecord) -> None:
        with self.lock:
            record.validate_for_persist()
            if record.run_id in self.runs:
                raise AlreadyExistsError(f"run {record.run_id!r} already exists")
            self._put_run(record)

    def _put_run(self, record: RunRecord) -> None:
        self.runs[record.run_id] = record.copy()
        self.written[record.run_id] = next(self.clock)

    def load_run(self, run_id: str) -> RunRecord | None:
        with self.lock:
            found = self.runs.get(run_id)
            return found.copy() if found else None

    def latest_run(self, thread_id: str) -> RunRecord | None:
        with self.lock:
            mine = [r for r in self.runs.values() if r.thread_id == thread_id]
            if not mine:
                return None
            return max(mine, key=lambda r: (r.updated_at, self.written[r.run_id])).copy()

    def list_runs(self, query: RunQuery) -> RunPage:
        with self.lock:
            page = paginate_runs(self.runs.values(), query)
            page.items = [r.copy() for r in page.items]
            return page

    def _check_checkpoint_run(self, thread_id: str, run: RunRecord) -> None:
        """Check the run (MOD-4, its thread) and its thread's parent as a checkpoint does (CKP-1); lock held."""
        run.validate_for_persist()
        if run.thread_id != thread_id:
            raise ValidationError(f"run {run.run_id!r} belongs to thread {run.thread_id!r}, not {thread_id!r}")
        self.validate_thread_hierarchy(thread_id, checkpoint_parent_thread_id(self.threads.get(thread_id), run))

    def checkpoint(self, thread_id: str, messages: list[Message], run: RunRecord) -> None:
        with self.lock:
            self._check_checkpoint_run(thread_id, run)
            validate_append_only_delta([], messages)
            existing = self.threads.get(thread_id)
            thread = existing.copy() if existing else Thread(id=thread_id)
            now = now_ms()
            if thread.metadata.created_at is None:
                thread.metadata.created_at = now
            thread.metadata.updated_at = now
            self.threads[thread_id] = apply_run_projection(thread, run)
            if messages:
                self.logs[thread_id] = [m.copy() for m in messages]
            else:
                self.logs.pop(thread_id, None)
            self._put_run(run)

    def checkpoint_append(
        self, thread_id: str, messages: list[Message], expected_version: int | None, run: RunRecord
    ) -> int:
        if expected_version is not None and expected_version < 0:
            raise ValidationError(f"expected_version must be >= 0, got {expected_version}")
        with self.lock:
            self._check_checkpoint_run(thread_id, run)
            merged = list(self.logs.get(thread_id, []))
            if expected_version is not None and expected_version != len(merged):
                raise VersionConflictError(expected_version, len(merged))
            merge_checkpoint_append_messages(merged, messages)
            self.checkpoint(thread_id, merged, run)
            return len(merged)


class TestBlockingStoreThroughTheAdapter(StoreContract):
    """Every rule, including those of the capabilities the blocking store declares, through worker threads.

    Under asyncio only: the state machines cost four times the reference store's here (two
    thread hops per call), and the adapter's trio path is covered by the unit tests below.
    """

    # The state machines run against the reference and minimal stores in this suite;
    # here they would add minutes of I/O to every CI run (`python -m conformance --store ...` runs them).
    run_machines = False

    def store(self) -> SyncStoreAdapter:
        return SyncStoreAdapter(BlockingStore())


# ── the adapter on its own ────────────────────────────────────────────


class Recorder:
    """The abstract methods only, recording each call with the thread it ran on."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[object, ...], str]] = []

    def _record(self, name: str, *args: object) -> None:
        self.calls.append((name, args, threading.current_thread().name))

    def load_thread(self, thread_id: str) -> Thread | None:
        self._record("load_thread", thread_id)
        return Thread(id=thread_id) if thread_id != "missing" else None

    def save_thread(self, thread: Thread) -> None:
        self._record("save_thread", thread)

    def delete_thread(self, thread_id: str) -> None:
        self._record("delete_thread", thread_id)

    def list_threads(self, offset: int, limit: int) -> list[str]:
        self._record("list_threads", offset, limit)
        return []

    def load_committed_messages(self, thread_id: str) -> list[Message] | None:
        self._record("load_committed_messages", thread_id)
        return None

    def save_messages(self, thread_id: str, messages: list[Message]) -> None:
        self._record("save_messages", thread_id, messages)

    def delete_messages(self, thread_id: str) -> None:
        self._record("delete_messages", thread_id)

    def update_thread_metadata(self, id: str, metadata: ThreadMetadata) -> None:
        self._record("update_thread_metadata", id, metadata)

    def create_run(self, record: RunRecord) -> None:
        self._record("create_run", record)

    def load_run(self, run_id: str) -> RunRecord | None:
        self._record("load_run", run_id)
        return None

    def latest_run(self, thread_id: str) -> RunRecord | None:
        self._record("latest_run", thread_id)
        return None

    def list_runs(self, query: RunQuery) -> RunPage:
        self._record("list_runs", query)
        return RunPage()

    def checkpoint(self, thread_id: str, messages: list[Message], run: RunRecord) -> None:
        self._record("checkpoint", thread_id, messages, run)


def test_required_and_optional_cover_the_store_methods() -> None:
    """The adapter knows every public method of ThreadRunStore: abstract ones required, the rest optional."""
    public = {name for name in dir(ThreadRunStore) if not name.startswith("_")}
    assert set(REQUIRED) == set(ThreadRunStore.__abstractmethods__)
    assert set(REQUIRED) | set(OPTIONAL) == public
    assert not set(REQUIRED) & set(OPTIONAL)
    assert all(name in vars(SyncStoreAdapter) for name in public)


@pytest.mark.anyio
async def test_delegates_each_call_to_a_worker_thread() -> None:
    """Each method calls the wrapped method of the same name with the same arguments, off the event loop."""
    inner = Recorder()
    store = SyncStoreAdapter(inner)
    metadata = ThreadMetadata(title="x")
    assert await store.load_thread("t1") == Thread(id="t1")
    await store.update_thread_metadata("t1", metadata)
    assert await store.list_threads(3, 4) == []
    assert await store.list_runs(RunQuery()) == RunPage()
    loop_thread = threading.current_thread().name
    assert [(name, args) for name, args, _ in inner.calls] == [
        ("load_thread", ("t1",)),
        ("update_thread_metadata", ("t1", metadata)),
        ("list_threads", (3, 4)),
        ("list_runs", (RunQuery(),)),
    ]
    assert all(thread != loop_thread for _, _, thread in inner.calls)
    assert inner.calls[1][1][1] is metadata


def _everything() -> tuple[Any, dict[str, object], list[tuple[str, tuple[object, ...]]]]:
    """An object with every store method, each recording its arguments and returning a sentinel of its own."""
    returns = {name: object() for name in (*REQUIRED, *OPTIONAL)}
    calls: list[tuple[str, tuple[object, ...]]] = []

    def method(name: str) -> Callable[..., object]:
        def call(self: object, *args: object) -> object:
            calls.append((name, args))
            return returns[name]

        return call

    everything = type("Everything", (), {name: method(name) for name in returns})
    return everything(), returns, calls


@pytest.mark.anyio
@pytest.mark.parametrize("name", [*REQUIRED, *OPTIONAL])
async def test_each_method_delegates_its_arguments_and_result(name: str) -> None:
    """Every method passes its arguments through as they are and returns what the wrapped one returned.

    A write (declared to return None) returns None whatever the wrapped method returned.
    """
    inner, returns, calls = _everything()
    store = SyncStoreAdapter(inner)
    assert store.has_own(name)
    signature = inspect.signature(getattr(ThreadRunStore, name))
    args = tuple(f"{parameter}-value" for parameter in list(signature.parameters)[1:])
    method = getattr(store, name)
    got = method(*args) if name == "thread_run_storage_identity" else await method(*args)
    assert got is (None if signature.return_annotation == "None" else returns[name])
    assert calls == [(name, args)]


@pytest.mark.anyio
async def test_missing_defaults_fall_back_to_the_base_class() -> None:
    """Without its own default methods, the base class's run over the wrapped abstract ones."""
    inner = Recorder()
    store = SyncStoreAdapter(inner)
    assert not store.has_own("load_messages")
    assert await store.load_messages("t1") is None
    assert await store.load_thread_state("t1") is None
    await store.save_thread_state("t1", PersistedState())
    assert store.thread_run_storage_identity() is None
    with pytest.raises(ValidationError, match="parent thread not found"):
        await store.validate_thread_hierarchy("t1", "missing")
    assert [name for name, _, _ in inner.calls] == ["load_committed_messages", "load_thread"]


class WithDefaults(Recorder):
    """The abstract methods and a few defaults of its own."""

    def load_thread_state(self, thread_id: str) -> PersistedState | None:
        self._record("load_thread_state", thread_id)
        return PersistedState(revision=7)

    def delete_thread_with_strategy(
        self, thread_id: str, strategy: ChildThreadDeleteStrategy = ChildThreadDeleteStrategy.DETACH
    ) -> None:
        self._record("delete_thread_with_strategy", thread_id, strategy)

    def thread_run_storage_identity(self) -> str | None:
        return "blocking:memory"


@pytest.mark.anyio
async def test_own_defaults_are_used() -> None:
    """A default the wrapped object has is called instead of the base class's."""
    inner = WithDefaults()
    store = SyncStoreAdapter(inner)
    assert await store.load_thread_state("t1") == PersistedState(revision=7)
    await store.delete_thread_with_strategy("t1")
    assert store.thread_run_storage_identity() == "blocking:memory"
    assert [(name, args) for name, args, _ in inner.calls] == [
        ("load_thread_state", ("t1",)),
        ("delete_thread_with_strategy", ("t1", ChildThreadDeleteStrategy.DETACH)),
    ]


def test_capabilities_pass_through() -> None:
    """The wrapped object's `capabilities` are the adapter's; without any, the adapter declares none."""
    assert SyncStoreAdapter(BlockingStore()).capabilities == BlockingStore.capabilities
    assert repr(SyncStoreAdapter(inner := Recorder())) == f"SyncStoreAdapter({inner!r})"
    assert not hasattr(SyncStoreAdapter(Recorder()), "capabilities")


@pytest.mark.anyio
async def test_aclose_closes_the_wrapped_object_once() -> None:
    """aclose() calls close() when there is one, once; an object without close() is fine."""
    inner = BlockingStore()
    store = SyncStoreAdapter(inner)
    await store.aclose()
    assert inner.closed
    inner.closed = False
    await store.aclose()
    assert not inner.closed
    await SyncStoreAdapter(Recorder()).aclose()


@pytest.mark.anyio
async def test_a_cancelled_call_is_not_abandoned() -> None:
    """A caller cancelled mid-call waits for the blocking call to end: the write is done, not left running.

    The blocking call ends only once every task is blocked after the cancel: a caller that
    waits for it is blocked then; one that abandoned it has already left.
    """
    started = threading.Event()
    release = threading.Event()
    cancelled = anyio.Event()

    class Slow(Recorder):
        def save_thread(self, thread: Thread) -> None:
            started.set()
            release.wait(10)
            self._record("save_thread", thread)

    async def releaser() -> None:
        await cancelled.wait()
        await wait_all_tasks_blocked()
        release.set()

    inner = Slow()
    store = SyncStoreAdapter(inner)
    async with anyio.create_task_group() as outer:
        outer.start_soon(releaser)
        with anyio.CancelScope() as scope:
            async with anyio.create_task_group() as group:
                group.start_soon(store.save_thread, Thread(id="t1"))
                await anyio.to_thread.run_sync(started.wait)
                scope.cancel()
                cancelled.set()
        done_when_the_caller_left = [name for name, _, _ in inner.calls]
    assert done_when_the_caller_left == ["save_thread"], "the cancelled caller left before the call ended"


@pytest.mark.parametrize(
    ("inner", "message"),
    [
        (object(), "lacks checkpoint, create_run, delete_messages"),
        (ReferenceStore(), "already an async ThreadRunStore"),
        ({"load_thread": print}, "lacks checkpoint"),
    ],
    ids=["plain-object", "async-store", "dict"],
)
def test_refuses_what_is_not_a_blocking_store(inner: Any, message: str) -> None:
    """A TypeError names what is missing, or says the object is async already."""
    with pytest.raises(TypeError, match=message):
        SyncStoreAdapter(inner)


def test_refuses_async_methods() -> None:
    """An object whose store methods are coroutines is not blocking: use ThreadRunStore directly."""

    class HalfAsync(Recorder):
        async def load_run(self, run_id: str) -> RunRecord | None:  # type: ignore[override]
            return None

    with pytest.raises(TypeError, match=r"HalfAsync\.load_run is async"):
        SyncStoreAdapter(HalfAsync())  # type: ignore[arg-type]


def test_kit_opens_and_closes_it_from_a_factory() -> None:
    """Through `open_store`, an adapter from a factory is closed after use (its wrapped object too)."""
    from conformance import open_store

    made: list[BlockingStore] = []

    def factory() -> SyncStoreAdapter:
        made.append(BlockingStore())
        return SyncStoreAdapter(made[-1])

    async def use() -> None:
        async with open_store(factory) as store:
            await store.save_thread(Thread(id="t1"))
            assert await store.load_thread("t1") == Thread(id="t1")

    anyio.run(use)
    assert made[0].closed
