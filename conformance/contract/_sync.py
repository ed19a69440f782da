"""`SyncStoreAdapter`: a blocking store object presented as an async `ThreadRunStore`.

A backend written against a blocking driver (sqlite3, a synchronous ORM or KV
client) writes plain methods with `ThreadRunStore`'s names and parameters; the
adapter runs each call in a worker thread and is the async store the runtime and
the kit expect.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, Protocol, TypeVar, cast

from conformance.contract._enums import ChildThreadDeleteStrategy
from conformance.contract._models import Message, MessageRecord, Thread, ThreadMetadata
from conformance.contract._queries import MessagePage, MessageQuery, RunPage, RunQuery, ThreadPage, ThreadQuery
from conformance.contract._runs import CheckpointSnapshot, MessageSeqRange, PersistedState, RunRecord
from conformance.contract._stores import ThreadRunStore

__all__ = ["BlockingThreadRunStore", "SyncStoreAdapter"]

_T = TypeVar("_T")


class BlockingThreadRunStore(Protocol):
    """What `SyncStoreAdapter` wraps: `ThreadRunStore`'s abstract methods, as plain blocking methods.

    It may also have any of the store's default methods (blocking too), a
    `capabilities` attribute and a `close()` method.
    """

    def load_thread(self, thread_id: str) -> Thread | None: ...
    def save_thread(self, thread: Thread) -> None: ...
    def delete_thread(self, thread_id: str) -> None: ...
    def list_threads(self, offset: int, limit: int) -> list[str]: ...
    def load_committed_messages(self, thread_id: str) -> list[Message] | None: ...
    def save_messages(self, thread_id: str, messages: list[Message]) -> None: ...
    def delete_messages(self, thread_id: str) -> None: ...
    def update_thread_metadata(self, id: str, metadata: ThreadMetadata) -> None: ...
    def create_run(self, record: RunRecord) -> None: ...
    def load_run(self, run_id: str) -> RunRecord | None: ...
    def latest_run(self, thread_id: str) -> RunRecord | None: ...
    def list_runs(self, query: RunQuery) -> RunPage: ...
    def checkpoint(self, thread_id: str, messages: list[Message], run: RunRecord) -> None: ...


class _BlockingDefaults(Protocol):
    """The store's default methods, blocking; a wrapped object may have any of them."""

    def save_thread_validated(self, thread: Thread) -> None: ...
    def save_thread_state(self, thread_id: str, state: PersistedState) -> None: ...
    def load_thread_state(self, thread_id: str) -> PersistedState | None: ...
    def delete_thread_with_strategy(self, thread_id: str, strategy: ChildThreadDeleteStrategy) -> None: ...
    def list_threads_query(self, query: ThreadQuery) -> ThreadPage: ...
    def list_child_threads(self, parent_thread_id: str) -> list[Thread]: ...
    def validate_thread_hierarchy(self, thread_id: str, parent_thread_id: str | None) -> None: ...
    def load_messages(self, thread_id: str) -> list[Message] | None: ...
    def load_message_records(self, thread_id: str) -> list[MessageRecord] | None: ...
    def list_message_records(self, thread_id: str, query: MessageQuery) -> MessagePage: ...
    def append_message_records(self, thread_id: str, messages: list[Message]) -> list[MessageRecord]: ...
    def load_message_record(self, thread_id: str, message_id: str) -> MessageRecord | None: ...
    def load_message_records_range(self, thread_id: str, range: MessageSeqRange) -> list[MessageRecord]: ...
    def checkpoint_append(
        self, thread_id: str, messages: list[Message], expected_version: int | None, run: RunRecord
    ) -> int: ...
    def load_checkpoint(self, thread_id: str) -> CheckpointSnapshot | None: ...
    def thread_run_storage_identity(self) -> str | None: ...


#: The methods a wrapped object must have: `ThreadRunStore`'s abstract ones.
REQUIRED = tuple(sorted(ThreadRunStore.__abstractmethods__))
#: The methods a wrapped object may have; the base class's default runs for each one it lacks.
OPTIONAL = (
    "save_thread_validated",
    "save_thread_state",
    "load_thread_state",
    "delete_thread_with_strategy",
    "list_threads_query",
    "list_child_threads",
    "validate_thread_hierarchy",
    "load_messages",
    "load_message_records",
    "list_message_records",
    "append_message_records",
    "load_message_record",
    "load_message_records_range",
    "checkpoint_append",
    "load_checkpoint",
    "thread_run_storage_identity",
)


class SyncStoreAdapter(ThreadRunStore):
    """An async `ThreadRunStore` over an object with the same methods written as plain blocking ones.

    Each call runs the wrapped method in a worker thread (`anyio.to_thread.run_sync`)
    under asyncio or trio. A method the object lacks among the store's defaults
    falls back to the base class's default, which calls the object's other methods.
    The object's `capabilities` attribute, when it has one, is the adapter's, and
    `aclose()` calls the object's `close()` (in a worker thread) when it has one.

    A call is never abandoned: when the caller is cancelled (a timeout, a client
    that went away), a blocking call already started runs to its end and the
    cancellation lands after it, so each blocking call finishes or never starts.
    Which capabilities therefore survive the adapter:

    - `thread_state`, `durable`, `any_ids`: as the object keeps them.
    - `cancel_safe`: when each of the object's write methods is all or nothing, and
      it has its own `delete_thread_with_strategy` (the default makes several writes,
      and a cancellation may land between two of them).
    - `concurrent_writers`, `atomic_delete`: only when the object is thread-safe
      (concurrent callers become concurrent threads) and has its own atomic
      `save_thread_validated`, `append_message_records`, `checkpoint_append` and
      `delete_thread_with_strategy`: the defaults read, then write, in separate calls.

    A driver whose connections belong to one thread (sqlite3's default
    `check_same_thread=True`) needs `check_same_thread=False` and a lock.

        class BlockingSqliteStore:  # load_thread, save_thread, ... as plain methods
            capabilities = {"thread_state", "durable"}
            def load_thread(self, thread_id: str) -> Thread | None: ...
            ...

        store = SyncStoreAdapter(BlockingSqliteStore("threads.db"))
        thread = await store.load_thread("t1")
        await store.aclose()

    Raises `TypeError` when `inner` is an async store or lacks a required method.
    """

    def __init__(self, inner: BlockingThreadRunStore) -> None:
        given: object = inner  # checked at run time too: callers may not be type-checked
        if isinstance(given, ThreadRunStore):
            raise TypeError(
                f"{type(inner).__name__} is already an async ThreadRunStore: use it directly, not through "
                "SyncStoreAdapter"
            )
        missing = [name for name in REQUIRED if not callable(getattr(inner, name, None))]
        if missing:
            raise TypeError(
                f"SyncStoreAdapter wraps an object with ThreadRunStore's methods as blocking methods; "
                f"{type(inner).__name__} lacks {', '.join(missing)}"
            )
        present = [name for name in (*REQUIRED, *OPTIONAL) if callable(getattr(inner, name, None))]
        asynchronous = [name for name in present if inspect.iscoroutinefunction(getattr(inner, name))]
        if asynchronous:
            raise TypeError(
                f"SyncStoreAdapter runs blocking methods in threads, but {type(inner).__name__}."
                f"{asynchronous[0]} is async: subclass ThreadRunStore instead"
            )
        self.inner = inner
        self._own = frozenset(present)
        self._defaults = cast(_BlockingDefaults, inner)
        self._closed = False
        declared = getattr(inner, "capabilities", None)
        if declared is not None:
            self.capabilities = declared

    def __repr__(self) -> str:
        return f"SyncStoreAdapter({self.inner!r})"

    def has_own(self, name: str) -> bool:
        """True when the wrapped object has its own method `name` (else the base default runs)."""
        return name in self._own

    async def aclose(self) -> None:
        """Close the wrapped object (its `close()`, in a worker thread) once; nothing if it has none."""
        close = getattr(self.inner, "close", None)
        if self._closed or not callable(close):
            return
        self._closed = True
        await _run(close)

    # ── abstract methods: always the wrapped object's ─────────────────

    async def load_thread(self, thread_id: str) -> Thread | None:
        """`inner.load_thread`, in a worker thread."""
        return await _run(self.inner.load_thread, thread_id)

    async def save_thread(self, thread: Thread) -> None:
        """`inner.save_thread`, in a worker thread."""
        await _run(self.inner.save_thread, thread)

    async def delete_thread(self, thread_id: str) -> None:
        """`inner.delete_thread`, in a worker thread."""
        await _run(self.inner.delete_thread, thread_id)

    async def list_threads(self, offset: int, limit: int) -> list[str]:
        """`inner.list_threads`, in a worker thread."""
        return await _run(self.inner.list_threads, offset, limit)

    async def load_committed_messages(self, thread_id: str) -> list[Message] | None:
        """`inner.load_committed_messages`, in a worker thread."""
        return await _run(self.inner.load_committed_messages, thread_id)

    async def save_messages(self, thread_id: str, messages: list[Message]) -> None:
        """`inner.save_messages`, in a worker thread."""
        await _run(self.inner.save_messages, thread_id, messages)

    async def delete_messages(self, thread_id: str) -> None:
        """`inner.delete_messages`, in a worker thread."""
        await _run(self.inner.delete_messages, thread_id)

    async def update_thread_metadata(self, id: str, metadata: ThreadMetadata) -> None:
        """`inner.update_thread_metadata`, in a worker thread."""
        await _run(self.inner.update_thread_metadata, id, metadata)

    async def create_run(self, record: RunRecord) -> None:
        """`inner.create_run`, in a worker thread."""
        await _run(self.inner.create_run, record)

    async def load_run(self, run_id: str) -> RunRecord | None:
        """`inner.load_run`, in a worker thread."""
        return await _run(self.inner.load_run, run_id)

    async def latest_run(self, thread_id: str) -> RunRecord | None:
        """`inner.latest_run`, in a worker thread."""
        return await _run(self.inner.latest_run, thread_id)

    async def list_runs(self, query: RunQuery) -> RunPage:
        """`inner.list_runs`, in a worker thread."""
        return await _run(self.inner.list_runs, query)

    async def checkpoint(self, thread_id: str, messages: list[Message], run: RunRecord) -> None:
        """`inner.checkpoint`, in a worker thread."""
        await _run(self.inner.checkpoint, thread_id, messages, run)

    # ── defaults: the wrapped object's when it has one, else the base class's ──

    async def save_thread_validated(self, thread: Thread) -> None:
        """`inner.save_thread_validated`, else the default (HIE-5)."""
        if not self.has_own("save_thread_validated"):
            return await super().save_thread_validated(thread)
        await _run(self._defaults.save_thread_validated, thread)

    async def save_thread_state(self, thread_id: str, state: PersistedState) -> None:
        """`inner.save_thread_state`, else the default (keeps nothing, THR-6)."""
        if not self.has_own("save_thread_state"):
            return await super().save_thread_state(thread_id, state)
        await _run(self._defaults.save_thread_state, thread_id, state)

    async def load_thread_state(self, thread_id: str) -> PersistedState | None:
        """`inner.load_thread_state`, else the default (`None`, THR-6)."""
        if not self.has_own("load_thread_state"):
            return await super().load_thread_state(thread_id)
        return await _run(self._defaults.load_thread_state, thread_id)

    async def delete_thread_with_strategy(
        self,
        thread_id: str,
        strategy: ChildThreadDeleteStrategy = ChildThreadDeleteStrategy.DETACH,
    ) -> None:
        """`inner.delete_thread_with_strategy`, else the default (DEL-1..5, not atomic)."""
        if not self.has_own("delete_thread_with_strategy"):
            return await super().delete_thread_with_strategy(thread_id, strategy)
        await _run(self._defaults.delete_thread_with_strategy, thread_id, strategy)

    async def list_threads_query(self, query: ThreadQuery) -> ThreadPage:
        """`inner.list_threads_query`, else the default (QRY-1..5)."""
        if not self.has_own("list_threads_query"):
            return await super().list_threads_query(query)
        return await _run(self._defaults.list_threads_query, query)

    async def list_child_threads(self, parent_thread_id: str) -> list[Thread]:
        """`inner.list_child_threads`, else the default (HIE-6)."""
        if not self.has_own("list_child_threads"):
            return await super().list_child_threads(parent_thread_id)
        return await _run(self._defaults.list_child_threads, parent_thread_id)

    async def validate_thread_hierarchy(self, thread_id: str, parent_thread_id: str | None) -> None:
        """`inner.validate_thread_hierarchy`, else the default (HIE-1..4)."""
        if not self.has_own("validate_thread_hierarchy"):
            return await super().validate_thread_hierarchy(thread_id, parent_thread_id)
        await _run(self._defaults.validate_thread_hierarchy, thread_id, parent_thread_id)

    async def load_messages(self, thread_id: str) -> list[Message] | None:
        """`inner.load_messages`, else the default (the read view, VIEW-1)."""
        if not self.has_own("load_messages"):
            return await super().load_messages(thread_id)
        return await _run(self._defaults.load_messages, thread_id)

    async def load_message_records(self, thread_id: str) -> list[MessageRecord] | None:
        """`inner.load_message_records`, else the default (MSG-6)."""
        if not self.has_own("load_message_records"):
            return await super().load_message_records(thread_id)
        return await _run(self._defaults.load_message_records, thread_id)

    async def list_message_records(self, thread_id: str, query: MessageQuery) -> MessagePage:
        """`inner.list_message_records`, else the default (MSG-7)."""
        if not self.has_own("list_message_records"):
            return await super().list_message_records(thread_id, query)
        return await _run(self._defaults.list_message_records, thread_id, query)

    async def append_message_records(self, thread_id: str, messages: list[Message]) -> list[MessageRecord]:
        """`inner.append_message_records`, else the default (MSG-4, a read then a write)."""
        if not self.has_own("append_message_records"):
            return await super().append_message_records(thread_id, messages)
        return await _run(self._defaults.append_message_records, thread_id, messages)

    async def load_message_record(self, thread_id: str, message_id: str) -> MessageRecord | None:
        """`inner.load_message_record`, else the default (MSG-8)."""
        if not self.has_own("load_message_record"):
            return await super().load_message_record(thread_id, message_id)
        return await _run(self._defaults.load_message_record, thread_id, message_id)

    async def load_message_records_range(self, thread_id: str, range: MessageSeqRange) -> list[MessageRecord]:
        """`inner.load_message_records_range`, else the default (MSG-8)."""
        if not self.has_own("load_message_records_range"):
            return await super().load_message_records_range(thread_id, range)
        return await _run(self._defaults.load_message_records_range, thread_id, range)

    async def checkpoint_append(
        self,
        thread_id: str,
        messages: list[Message],
        expected_version: int | None,
        run: RunRecord,
    ) -> int:
        """`inner.checkpoint_append`, else the default (CKP-3, CKP-4, a read then a write)."""
        if not self.has_own("checkpoint_append"):
            return await super().checkpoint_append(thread_id, messages, expected_version, run)
        return await _run(self._defaults.checkpoint_append, thread_id, messages, expected_version, run)

    async def load_checkpoint(self, thread_id: str) -> CheckpointSnapshot | None:
        """`inner.load_checkpoint`, else the default (CKP-5)."""
        if not self.has_own("load_checkpoint"):
            return await super().load_checkpoint(thread_id)
        return await _run(self._defaults.load_checkpoint, thread_id)

    def thread_run_storage_identity(self) -> str | None:
        """`inner.thread_run_storage_identity()` (called directly: it is a plain method), else `None`."""
        if not self.has_own("thread_run_storage_identity"):
            return super().thread_run_storage_identity()
        return self._defaults.thread_run_storage_identity()


async def _run(function: Callable[..., _T], *args: Any) -> _T:
    """Run a blocking call in a worker thread; a cancelled caller waits for it to end (never abandoned)."""
    # Imported here, not at the top: `import conformance` must not import anyio before pytest
    # loads anyio's plugin (pytest then warns that it cannot rewrite the plugin's asserts).
    from anyio import to_thread

    return await to_thread.run_sync(function, *args, abandon_on_cancel=False)
