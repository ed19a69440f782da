"""The kit's side of the wire: `StoreCommand` (a store source) and `WireStore` (the store it opens).

    NODE = StoreCommand("node examples/node/store.mjs")

    async with NODE(location="/tmp/t1") as store:  # a WireStore
        await store.save_thread(Thread(id="t1"))

`WireStore` sends every method of `ThreadRunStore`, the defaults included, so a
store process keeps its own atomicity; a default the process does not implement
(it answers -32601) runs as the contract's default over the abstract methods.
"""

from __future__ import annotations

import json
import os
import shlex
import threading
import weakref
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, TypeVar, cast

from conformance.contract._enums import ChildThreadDeleteStrategy
from conformance.contract._errors import SerializationError
from conformance.contract._models import Message, MessageRecord, Thread, ThreadMetadata
from conformance.contract._queries import MessagePage, MessageQuery, RunPage, RunQuery, ThreadPage, ThreadQuery
from conformance.contract._runs import CheckpointSnapshot, MessageSeqRange, PersistedState, RunRecord
from conformance.contract._stores import ThreadRunStore
from conformance.wire import _protocol as p
from conformance.wire._connection import Connection, spawn
from conformance.wire._errors import RemoteStoreError, WireError, WireProtocolError

__all__ = ["StoreCommand", "WireStore"]

_T = TypeVar("_T")

#: Idle store processes a `StoreCommand` keeps for the next store; more are shut down.
MAX_IDLE = 4


class WireStore(ThreadRunStore):
    """A `ThreadRunStore` served by a store process over the wire protocol (docs/PROTOCOL.md).

    Made by `StoreCommand`, never directly. Every method is one request; arguments of
    the wrong Python type raise `TypeError` before anything is sent; the storage errors
    the process answers are raised as themselves (`VersionConflictError(3, 4)`). A
    broken conversation raises a `WireError`: `StoreProcessExited`,
    `WireProtocolError`, `UnknownResponseIdError`, `WireTimeoutError` or
    `RemoteStoreError`; a call holding a value the process's JSON cannot hold, which it
    refuses as a strict peer does, raises `UnrepresentableValueError` and breaks nothing
    (docs/PROTOCOL.md, "Values strict JSON cannot hold"). A cancelled call returns at once and asks the process to
    cancel (`$/cancelRequest`); the next call waits until the process has answered it.
    """

    def __init__(
        self,
        connection: Connection,
        *,
        capabilities: frozenset[str],
        storage_identity: str | None,
        request_timeout: float | None,
    ) -> None:
        self._connection = connection
        self._storage_identity = storage_identity
        self._timeout = request_timeout
        self._closed = False
        #: What the process declared in `initialize` (read by the kit like any store's `capabilities`).
        self.capabilities = capabilities

    def thread_run_storage_identity(self) -> str | None:
        """The identity the process gave when it opened this store (`open` result), or `None`."""
        return self._storage_identity

    async def _call(self, method: p.Method[_T], *args: Any) -> _T:
        __tracebackhide__ = True
        params = method.encode_params(args)
        if self._closed:
            raise WireError(f"{method.name}: this store was closed; open another")
        if method.name in self._connection.missing:
            return await self._default(method, args)
        try:
            result = await self._connection.request(method.name, params, timeout=self._timeout)
        except RemoteStoreError as error:
            if error.code != p.METHOD_NOT_FOUND or method.abstract:
                raise
            self._connection.missing.add(method.name)
            return await self._default(method, args)
        try:
            return method.result.decode(result)
        except SerializationError as problem:
            raise WireProtocolError(
                f"the result of {method.name} does not have its shape ({problem})", json.dumps(result)
            ) from None

    async def _default(self, method: p.Method[_T], args: tuple[Any, ...]) -> _T:
        default = getattr(ThreadRunStore, method.name)
        return cast(_T, await default(self, *args))

    # ── abstract methods ─────────────────────────────────────────────

    async def load_thread(self, thread_id: str) -> Thread | None:
        """`load_thread` in the store process (THR-1)."""
        return await self._call(p.LOAD_THREAD, thread_id)

    async def save_thread(self, thread: Thread) -> None:
        """`save_thread` in the store process (THR-2)."""
        await self._call(p.SAVE_THREAD, thread)

    async def delete_thread(self, thread_id: str) -> None:
        """`delete_thread` in the store process (THR-4)."""
        await self._call(p.DELETE_THREAD, thread_id)

    async def list_threads(self, offset: int, limit: int) -> list[str]:
        """`list_threads` in the store process (THR-5)."""
        return await self._call(p.LIST_THREADS, offset, limit)

    async def load_committed_messages(self, thread_id: str) -> list[Message] | None:
        """`load_committed_messages` in the store process (MSG-1)."""
        return await self._call(p.LOAD_COMMITTED_MESSAGES, thread_id)

    async def save_messages(self, thread_id: str, messages: list[Message]) -> None:
        """`save_messages` in the store process (MSG-2)."""
        await self._call(p.SAVE_MESSAGES, thread_id, messages)

    async def delete_messages(self, thread_id: str) -> None:
        """`delete_messages` in the store process (MSG-3)."""
        await self._call(p.DELETE_MESSAGES, thread_id)

    async def update_thread_metadata(self, id: str, metadata: ThreadMetadata) -> None:
        """`update_thread_metadata` in the store process (THR-3)."""
        await self._call(p.UPDATE_THREAD_METADATA, id, metadata)

    async def create_run(self, record: RunRecord) -> None:
        """`create_run` in the store process (RUN-1)."""
        await self._call(p.CREATE_RUN, record)

    async def load_run(self, run_id: str) -> RunRecord | None:
        """`load_run` in the store process (RUN-2)."""
        return await self._call(p.LOAD_RUN, run_id)

    async def latest_run(self, thread_id: str) -> RunRecord | None:
        """`latest_run` in the store process (RUN-3)."""
        return await self._call(p.LATEST_RUN, thread_id)

    async def list_runs(self, query: RunQuery) -> RunPage:
        """`list_runs` in the store process (RUN-4)."""
        return await self._call(p.LIST_RUNS, query)

    async def checkpoint(self, thread_id: str, messages: list[Message], run: RunRecord) -> None:
        """`checkpoint` in the store process (CKP-1, CKP-2)."""
        await self._call(p.CHECKPOINT, thread_id, messages, run)

    # ── defaults, sent too: the store process keeps them atomic ───────

    async def save_thread_validated(self, thread: Thread) -> None:
        """`save_thread_validated` in the store process (HIE-5, CON-3)."""
        await self._call(p.SAVE_THREAD_VALIDATED, thread)

    async def save_thread_state(self, thread_id: str, state: PersistedState) -> None:
        """`save_thread_state` in the store process (THR-6)."""
        await self._call(p.SAVE_THREAD_STATE, thread_id, state)

    async def load_thread_state(self, thread_id: str) -> PersistedState | None:
        """`load_thread_state` in the store process (THR-6)."""
        return await self._call(p.LOAD_THREAD_STATE, thread_id)

    async def delete_thread_with_strategy(
        self,
        thread_id: str,
        strategy: ChildThreadDeleteStrategy = ChildThreadDeleteStrategy.DETACH,
    ) -> None:
        """`delete_thread_with_strategy` in the store process (DEL-1..6)."""
        await self._call(p.DELETE_THREAD_WITH_STRATEGY, thread_id, strategy)

    async def list_threads_query(self, query: ThreadQuery) -> ThreadPage:
        """`list_threads_query` in the store process (QRY, CUR)."""
        return await self._call(p.LIST_THREADS_QUERY, query)

    async def list_child_threads(self, parent_thread_id: str) -> list[Thread]:
        """`list_child_threads` in the store process (HIE-6)."""
        return await self._call(p.LIST_CHILD_THREADS, parent_thread_id)

    async def validate_thread_hierarchy(self, thread_id: str, parent_thread_id: str | None) -> None:
        """`validate_thread_hierarchy` in the store process (HIE-1..4)."""
        await self._call(p.VALIDATE_THREAD_HIERARCHY, thread_id, parent_thread_id)

    async def load_messages(self, thread_id: str) -> list[Message] | None:
        """`load_messages` in the store process (VIEW-1)."""
        return await self._call(p.LOAD_MESSAGES, thread_id)

    async def load_message_records(self, thread_id: str) -> list[MessageRecord] | None:
        """`load_message_records` in the store process (MSG-6)."""
        return await self._call(p.LOAD_MESSAGE_RECORDS, thread_id)

    async def list_message_records(self, thread_id: str, query: MessageQuery) -> MessagePage:
        """`list_message_records` in the store process (MSG-7)."""
        return await self._call(p.LIST_MESSAGE_RECORDS, thread_id, query)

    async def append_message_records(self, thread_id: str, messages: list[Message]) -> list[MessageRecord]:
        """`append_message_records` in the store process (MSG-4, MSG-5, CON-2)."""
        return await self._call(p.APPEND_MESSAGE_RECORDS, thread_id, messages)

    async def load_message_record(self, thread_id: str, message_id: str) -> MessageRecord | None:
        """`load_message_record` in the store process (MSG-8)."""
        return await self._call(p.LOAD_MESSAGE_RECORD, thread_id, message_id)

    async def load_message_records_range(self, thread_id: str, range: MessageSeqRange) -> list[MessageRecord]:
        """`load_message_records_range` in the store process (MSG-8)."""
        return await self._call(p.LOAD_MESSAGE_RECORDS_RANGE, thread_id, range)

    async def checkpoint_append(
        self,
        thread_id: str,
        messages: list[Message],
        expected_version: int | None,
        run: RunRecord,
    ) -> int:
        """`checkpoint_append` in the store process (CKP-3, CKP-4, CON-1)."""
        return await self._call(p.CHECKPOINT_APPEND, thread_id, messages, expected_version, run)

    async def load_checkpoint(self, thread_id: str) -> CheckpointSnapshot | None:
        """`load_checkpoint` in the store process (CKP-5)."""
        return await self._call(p.LOAD_CHECKPOINT, thread_id)


class StoreCommand:
    """A store source that runs `command`, a store process speaking the wire protocol.

    Calling it opens a fresh store: an async context manager yielding a `WireStore`
    (the kit calls it with `location=`, a folder of the test, and again with the same
    folder to reopen for the `durable` rules). `command` is a shell-like string or an
    argument list, run in `cwd` (default: the current directory) with `env`.

    With `reuse` (the default) a process serves one store after another: leaving the
    store's block sends `close`, and the next store is an `open` on the same process;
    up to `MAX_IDLE` idle processes wait, and `close()` (or the interpreter's exit)
    shuts them down. `reuse=False` starts a process per store. `request_timeout`
    bounds each request (`WireTimeoutError`); by default only the caller's own
    timeout does (the kit's `--conformance-timeout`).

        NODE = StoreCommand("node examples/node/store.mjs")

        class TestNodeStore(StoreContract):
            def store(self, location):
                return NODE(location=location)

    POSIX only (Linux, macOS): the pipes are waited on as file descriptors.
    Raises `ValueError` for an empty command.
    """

    def __init__(
        self,
        command: str | Sequence[str],
        *,
        cwd: str | os.PathLike[str] | None = None,
        env: dict[str, str] | None = None,
        reuse: bool = True,
        request_timeout: float | None = None,
    ) -> None:
        self.argv = shlex.split(command) if isinstance(command, str) else [str(part) for part in command]
        if not self.argv:
            raise ValueError("StoreCommand needs a command to run, e.g. 'node store.mjs'")
        self.cwd = None if cwd is None else os.fspath(cwd)
        self.env = env
        self.reuse = reuse
        self.request_timeout = request_timeout
        self._idle: list[Connection] = []
        self._lock = threading.Lock()
        self._finalizer = weakref.finalize(self, _shut_down, self._idle, self._lock)

    def __repr__(self) -> str:
        return f"StoreCommand({shlex.join(self.argv)!r})"

    def __call__(self, location: str | os.PathLike[str] | None = None) -> AbstractAsyncContextManager[WireStore]:
        """Open a fresh store on `location` (none: the process picks; for in-memory stores)."""
        return self._open(None if location is None else os.fspath(location))

    def close(self) -> None:
        """Shut down the idle store processes (a store still open keeps its process until closed)."""
        _shut_down(self._idle, self._lock)

    def _connect(self) -> Connection:
        """Start a store process (the wire tests connect to a server in a thread instead)."""
        return spawn(self.argv, cwd=self.cwd, env=self.env)

    def _take_idle(self) -> Connection | None:
        with self._lock:
            return self._idle.pop() if self._idle else None

    def _has_room(self) -> bool:
        with self._lock:
            return len(self._idle) < MAX_IDLE

    @asynccontextmanager
    async def _open(self, location: str | None) -> AsyncIterator[WireStore]:
        connection = self._take_idle() or self._connect()
        keep = False
        try:
            connection.check_alive()
            store = await self._start(connection, location)
            try:
                yield store
            except BaseException:
                await self._finish(connection, store, quiet=True)
                raise
            keep = await self._finish(connection, store, quiet=False)
        finally:
            if keep:
                with self._lock:
                    self._idle.append(connection)
            else:
                connection.kill()
                connection.close_pipes()

    async def _start(self, connection: Connection, location: str | None) -> WireStore:
        timeout = self.request_timeout
        if not connection.initialized:
            answer = await connection.request(
                p.INITIALIZE,
                {"protocol_version": p.PROTOCOL_VERSION, "client": "threadstore-conformance"},
                timeout=timeout,
            )
            connection.capabilities = _capabilities(answer)
            connection.initialized = True
        opened = await connection.request(p.OPEN, {"location": location}, timeout=timeout)
        identity = opened.get("storage_identity") if isinstance(opened, dict) else None
        if (opened is not None and not isinstance(opened, dict)) or not isinstance(identity, (str, type(None))):
            raise WireProtocolError("'open' answers null or {\"storage_identity\": string or null}", json.dumps(opened))
        return WireStore(
            connection, capabilities=connection.capabilities, storage_identity=identity, request_timeout=timeout
        )

    async def _finish(self, connection: Connection, store: WireStore, *, quiet: bool) -> bool:
        """Close the store; True when its process may serve the next one. `quiet`: raise nothing."""
        store._closed = True
        try:
            if self.reuse and self._has_room():
                await connection.request(p.CLOSE, {}, timeout=self.request_timeout)
                connection.forward_stderr()  # what it logged goes to the report of the test that ends
                return connection.fault is None and not connection.unsettled
            await connection.shutdown()
        except BaseException:
            connection.kill()
            if not quiet:
                raise
        return False


def _capabilities(answer: object) -> frozenset[str]:
    """The capabilities of an `initialize` result; `WireProtocolError` for another version or shape."""
    line = json.dumps(answer)
    if not isinstance(answer, dict):
        raise WireProtocolError("'initialize' must answer an object", line)
    version = answer.get("protocol_version")
    if not isinstance(version, str) or version.split(".")[0] != p.PROTOCOL_VERSION.split(".")[0]:
        raise WireProtocolError(
            f"the store process speaks protocol {version!r}; this kit speaks {p.PROTOCOL_VERSION} (same major needed)",
            line,
        )
    found = answer.get("capabilities", [])
    if not isinstance(found, list) or not all(isinstance(name, str) for name in found):
        raise WireProtocolError("'capabilities' must be a list of capability names", line)
    return frozenset(found)


def _shut_down(idle: list[Connection], lock: threading.Lock) -> None:
    with lock:
        connections = list(idle)
        idle.clear()
    for connection in connections:
        connection.shutdown_now()
