"""`JsonFileStore`: a durable store that keeps every record as JSON text in one file.

Built unlike the reference store on purpose: nothing lives in memory between calls.
Every read parses `<location>/store.json`; every write parses it, changes the
decoded JSON, and replaces the file atomically (a temporary file, then
`os.replace`). Two store objects on one location therefore act as one store (DUR-2).

Each operation awaits once, before it touches the file (as any I/O-bound store
does), and never again: the read-modify-write after that point runs without a
scheduling point, under a `threading.Lock` shared by every store object of the
same file in the process. So no task, and no thread, ever sees or makes half a
write (concurrent_writers, atomic_delete), and a cancelled call either never
started its write or finished it (cancel_safe). The lock is a thread lock, not an
anyio lock, so it belongs to no event loop and is never awaited.

Not crash-safe: the file is replaced atomically but not fsynced.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

import anyio.lowlevel

from conformance import (
    AlreadyExistsError,
    CheckpointSnapshot,
    ChildThreadDeleteStrategy,
    Message,
    MessageRecord,
    NotFoundError,
    PersistedState,
    RunPage,
    RunQuery,
    RunRecord,
    StorageIOError,
    Thread,
    ThreadMetadata,
    ThreadPage,
    ThreadQuery,
    ThreadRunStore,
    ValidationError,
    VersionConflictError,
    apply_run_projection,
    checkpoint_parent_thread_id,
    effective_committed_view,
    normalize_lineage_id,
    paginate_threads,
    sorted_threads_by_recent_activity,
    validate_append_only_delta,
)

__all__ = ["JsonFileStore"]

FILE_NAME = "store.json"
_REGISTRY_GUARD = threading.Lock()
_FILE_LOCKS: dict[str, threading.Lock] = {}

#: The decoded file: threads, logs, states and runs by id, and each run's write number.
Data = dict[str, Any]


def _file_lock(path: Path) -> threading.Lock:
    """The one lock of a file, shared by every store object on it in this process."""
    with _REGISTRY_GUARD:
        return _FILE_LOCKS.setdefault(str(path), threading.Lock())


def _empty() -> Data:
    return {"threads": {}, "logs": {}, "states": {}, "runs": {}, "run_writes": {}, "writes": 0}


def _str(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"argument '{name}' must be a str, got {type(value).__name__}")
    return value


def _count(value: object, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValidationError(f"argument '{name}' must be an integer >= 0, got {value!r}")
    return value


def _of(value: object, expected: type[Any], name: str) -> Any:
    if not isinstance(value, expected):
        raise TypeError(f"argument '{name}' must be a {expected.__name__}, got {type(value).__name__}")
    return value


def _messages(value: object) -> list[Message]:
    if not isinstance(value, (list, tuple)):
        raise TypeError(f"argument 'messages' must be a list of Message, got {type(value).__name__}")
    return list(value)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _parent(raw: dict[str, Any]) -> str | None:
    return normalize_lineage_id(raw.get("parent_thread_id"))


def _check_parent(threads: dict[str, Any], thread_id: str, parent_thread_id: str | None) -> None:
    """Walk up from the parent (HIE-1..4), raising `ValidationError` on a self-parent, cycle or gap."""
    first = normalize_lineage_id(parent_thread_id)
    if first is None:
        return
    if first == thread_id:
        raise ValidationError(f"thread {thread_id!r} cannot parent itself")
    passed = {thread_id}
    current: str | None = first
    while current is not None:
        if current in passed:
            raise ValidationError(f"thread hierarchy cycle detected at {current!r} (parent of {thread_id!r})")
        passed.add(current)
        raw = threads.get(current)
        if raw is None:
            if current == first:
                raise ValidationError(f"parent thread not found: {first!r}")
            raise ValidationError(f"thread hierarchy references missing ancestor {current!r}")
        current = _parent(raw)


def _children(threads: dict[str, Any], parent_id: str) -> list[str]:
    return sorted(thread_id for thread_id, raw in threads.items() if _parent(raw) == parent_id)


def _descendants(threads: dict[str, Any], thread_id: str) -> list[str]:
    """`thread_id` and every thread below it; `ValidationError` when a thread is reached twice (DEL-5)."""
    found: list[str] = []
    pending = [thread_id]
    while pending:
        current = pending.pop()
        if current in found:
            raise ValidationError(f"thread hierarchy cycle detected at {current!r} while deleting {thread_id!r}")
        found.append(current)
        pending.extend(_children(threads, current))
    return found


def _drop(data: Data, thread_id: str) -> None:
    for table in ("threads", "logs", "states"):
        data[table].pop(thread_id, None)


def _latest(data: Data, thread_id: str) -> RunRecord | None:
    """The thread's run with the greatest `updated_at`, ties to the last written (RUN-3)."""
    runs = [(raw["updated_at"], data["run_writes"][run_id], raw) for run_id, raw in data["runs"].items()]
    mine = [entry for entry in runs if entry[2]["thread_id"] == thread_id]
    return RunRecord.from_json(max(mine, key=lambda entry: entry[:2])[2]) if mine else None


def _put_run(data: Data, run: RunRecord) -> None:
    data["writes"] += 1
    data["runs"][run.run_id] = run.to_json()
    data["run_writes"][run.run_id] = data["writes"]


def _log(data: Data, thread_id: str) -> list[Message]:
    return [Message.from_json(raw) for raw in data["logs"].get(thread_id, [])]


def _stored_thread(thread: Thread) -> dict[str, Any]:
    """The JSON of `thread` with its lineage normalized, once it is valid (THR-2)."""
    stored = thread.normalized()
    stored.validate_for_persist()
    return stored.to_json()


class JsonFileStore(ThreadRunStore):
    """A `ThreadRunStore` in one JSON file under `location`, re-read on every call.

    >>> store = JsonFileStore("/tmp/my-store")
    """

    capabilities: ClassVar[frozenset[str]] = frozenset(
        {"durable", "thread_state", "any_ids", "concurrent_writers", "cancel_safe", "atomic_delete"}
    )

    def __init__(self, location: str) -> None:
        self.path = Path(location).resolve() / FILE_NAME
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = _file_lock(self.path)
        self._closed = False

    def thread_run_storage_identity(self) -> str | None:
        """`json-file:<path>`: every object on the same file is the same storage."""
        return f"json-file:{self.path}"

    async def aclose(self) -> None:
        """Close the store; later calls raise `StorageIOError`."""
        self._closed = True

    # ── the file ─────────────────────────────────────────────────────

    async def _turn(self) -> None:
        """The one scheduling point of every call, before it touches the file."""
        await anyio.lowlevel.checkpoint()
        if self._closed:
            raise StorageIOError(f"the store on {str(self.path)!r} is closed")

    def _load(self) -> Data:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return _empty()
        loaded: Data = json.loads(text)
        return loaded

    def _save(self, data: Data) -> None:
        try:
            encoded = json.dumps(data, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError as error:
            raise ValidationError(f"a value is not storable as UTF-8 text (a lone surrogate?): {error}") from None
        handle, temporary = tempfile.mkstemp(prefix=".store-", suffix=".json", dir=self.path.parent)
        try:
            with os.fdopen(handle, "wb") as file:
                file.write(encoded)
            os.replace(temporary, self.path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    async def _read(self) -> Data:
        await self._turn()
        with self._lock:
            return self._load()

    @contextmanager
    def _writing(self) -> Iterator[Data]:
        """Hold the file lock, yield the decoded file, and save it unless the block raised."""
        with self._lock:
            data = self._load()
            yield data
            self._save(data)

    # ── threads ──────────────────────────────────────────────────────

    async def load_thread(self, thread_id: str) -> Thread | None:
        """The thread, or `None` for an unknown id (THR-1)."""
        raw = (await self._read())["threads"].get(_str(thread_id, "thread_id"))
        return None if raw is None else Thread.from_json(raw)

    async def save_thread(self, thread: Thread) -> None:
        """Normalize the lineage, validate (MOD-2), then create or overwrite (THR-2)."""
        stored = _stored_thread(_of(thread, Thread, "thread"))
        await self._turn()
        with self._writing() as data:
            data["threads"][thread.id] = stored

    async def save_thread_validated(self, thread: Thread) -> None:
        """Check the hierarchy and save in one write (HIE-5, CON-3)."""
        stored = _stored_thread(_of(thread, Thread, "thread"))
        await self._turn()
        with self._writing() as data:
            _check_parent(data["threads"], thread.id, thread.parent_thread_id)
            data["threads"][thread.id] = stored

    async def validate_thread_hierarchy(self, thread_id: str, parent_thread_id: str | None) -> None:
        """`ValidationError` unless `thread_id` may take the parent (HIE-1..4)."""
        data = await self._read()
        _check_parent(data["threads"], _str(thread_id, "thread_id"), parent_thread_id)

    async def delete_thread(self, thread_id: str) -> None:
        """Remove the thread, its log and its state; keep its runs (THR-4)."""
        _str(thread_id, "thread_id")
        await self._turn()
        with self._writing() as data:
            _drop(data, thread_id)

    async def delete_thread_with_strategy(
        self,
        thread_id: str,
        strategy: ChildThreadDeleteStrategy = ChildThreadDeleteStrategy.DETACH,
    ) -> None:
        """Delete by strategy in one write (DEL-1..6)."""
        try:
            strategy = ChildThreadDeleteStrategy(strategy)
        except ValueError:
            raise ValidationError(f"unknown delete strategy {strategy!r}; use reject, detach or cascade") from None
        _str(thread_id, "thread_id")
        await self._turn()
        with self._writing() as data:
            threads = data["threads"]
            if thread_id not in threads:
                raise NotFoundError(f"thread {thread_id!r} not found")
            children = _children(threads, thread_id)
            if strategy is ChildThreadDeleteStrategy.REJECT and children:
                raise ValidationError(f"thread {thread_id!r} has child threads; choose 'detach' or 'cascade'")
            doomed = _descendants(threads, thread_id) if strategy is ChildThreadDeleteStrategy.CASCADE else [thread_id]
            if strategy is ChildThreadDeleteStrategy.DETACH:
                now = _now_ms()
                for child_id in children:
                    threads[child_id].pop("parent_thread_id", None)
                    threads[child_id]["metadata"]["updated_at"] = now
            for doomed_id in doomed:
                _drop(data, doomed_id)

    async def list_threads(self, offset: int, limit: int) -> list[str]:
        """Thread ids by recent activity, then id (THR-5)."""
        offset, limit = _count(offset, "offset"), _count(limit, "limit")
        threads = [Thread.from_json(raw) for raw in (await self._read())["threads"].values()]
        return [t.id for t in sorted_threads_by_recent_activity(threads)][offset : offset + limit]

    async def list_threads_query(self, query: ThreadQuery) -> ThreadPage:
        """One page of matching ids from one read of the file (QRY-1..5)."""
        _of(query, ThreadQuery, "query").normalized()
        data = await self._read()
        return paginate_threads([Thread.from_json(raw) for raw in data["threads"].values()], query)

    async def list_child_threads(self, parent_thread_id: str) -> list[Thread]:
        """The direct children, by id (HIE-6); the id normalized as MOD-1 says, a blank one has none."""
        parent = normalize_lineage_id(_str(parent_thread_id, "parent_thread_id"))
        if parent is None:
            return []
        threads = (await self._read())["threads"]
        return [Thread.from_json(threads[i]) for i in _children(threads, parent)]

    async def update_thread_metadata(self, id: str, metadata: ThreadMetadata) -> None:
        """Replace the whole metadata; `NotFoundError` for an unknown id (THR-3)."""
        _of(metadata, ThreadMetadata, "metadata").check_types(f"metadata of thread {id!r}")
        _str(id, "id")
        await self._turn()
        with self._writing() as data:
            if id not in data["threads"]:
                raise NotFoundError(f"thread {id!r} not found")
            data["threads"][id]["metadata"] = metadata.to_json()

    async def save_thread_state(self, thread_id: str, state: PersistedState) -> None:
        """Overwrite the thread's state (THR-6); the thread need not exist."""
        _of(state, PersistedState, "state").check_types(f"state of thread {thread_id!r}")
        _str(thread_id, "thread_id")
        await self._turn()
        with self._writing() as data:
            data["states"][thread_id] = state.to_json()

    async def load_thread_state(self, thread_id: str) -> PersistedState | None:
        """The last saved state, or `None` (THR-6)."""
        raw = (await self._read())["states"].get(_str(thread_id, "thread_id"))
        return None if raw is None else PersistedState.from_json(raw)

    # ── messages ─────────────────────────────────────────────────────

    async def load_committed_messages(self, thread_id: str) -> list[Message] | None:
        """The raw log, or `None` when it has no message (MSG-1)."""
        return _log(await self._read(), _str(thread_id, "thread_id")) or None

    async def save_messages(self, thread_id: str, messages: list[Message]) -> None:
        """Replace the whole log after validating every message (MSG-2)."""
        messages = _messages(messages)
        validate_append_only_delta([], messages)
        _str(thread_id, "thread_id")
        await self._turn()
        with self._writing() as data:
            if messages:
                data["logs"][thread_id] = [m.to_json() for m in messages]
            else:
                data["logs"].pop(thread_id, None)

    async def delete_messages(self, thread_id: str) -> None:
        """Empty the log of an existing thread; `NotFoundError` otherwise (MSG-3)."""
        _str(thread_id, "thread_id")
        await self._turn()
        with self._writing() as data:
            if thread_id not in data["threads"]:
                raise NotFoundError(f"thread {thread_id!r} not found")
            data["logs"].pop(thread_id, None)

    async def append_message_records(self, thread_id: str, messages: list[Message]) -> list[MessageRecord]:
        """Validate and append in one write; return the new records (MSG-4, MSG-5, CON-2)."""
        messages = _messages(messages)
        _str(thread_id, "thread_id")
        await self._turn()
        with self._writing() as data:
            existing = _log(data, thread_id)
            validate_append_only_delta(existing, messages)
            if messages:
                data["logs"][thread_id] = [m.to_json() for m in [*existing, *messages]]
        start = len(existing) + 1
        return [MessageRecord.from_message(thread_id, start + i, m) for i, m in enumerate(messages)]

    # ── runs ─────────────────────────────────────────────────────────

    async def create_run(self, record: RunRecord) -> None:
        """Validate (MOD-4) and store a new run; `AlreadyExistsError` keeps the old one (RUN-1)."""
        _of(record, RunRecord, "record").validate_for_persist()
        await self._turn()
        with self._writing() as data:
            if record.run_id in data["runs"]:
                raise AlreadyExistsError(f"run {record.run_id!r} already exists")
            _put_run(data, record)

    async def load_run(self, run_id: str) -> RunRecord | None:
        """The run, or `None` for an unknown id (RUN-2)."""
        raw = (await self._read())["runs"].get(_str(run_id, "run_id"))
        return None if raw is None else RunRecord.from_json(raw)

    async def latest_run(self, thread_id: str) -> RunRecord | None:
        """The thread's latest run by `updated_at`, ties to the last write (RUN-3)."""
        return _latest(await self._read(), _str(thread_id, "thread_id"))

    async def list_runs(self, query: RunQuery) -> RunPage:
        """One page of matching runs by `created_at`, then `run_id` (RUN-4)."""
        normalized = _of(query, RunQuery, "query").normalized()
        runs = [RunRecord.from_json(raw) for raw in (await self._read())["runs"].values()]
        matching = sorted((r for r in runs if normalized.matches(r)), key=lambda r: (r.created_at, r.run_id))
        start = min(normalized.offset, len(matching))
        end = min(start + normalized.limit, len(matching))
        return RunPage(items=matching[start:end], total=len(matching), has_more=end < len(matching))

    # ── checkpoints ──────────────────────────────────────────────────

    @staticmethod
    def _checkpoint_parent(data: Data, thread_id: str, run: RunRecord) -> Thread | None:
        """Check the checkpoint's hierarchy (CKP-1); return the stored thread, `None` when there is none."""
        raw = data["threads"].get(thread_id)
        existing = None if raw is None else Thread.from_json(raw)
        _check_parent(data["threads"], thread_id, checkpoint_parent_thread_id(existing, run))
        return existing

    @staticmethod
    def _checkpointed(thread_id: str, existing: Thread | None, run: RunRecord) -> dict[str, Any]:
        """The thread (`existing`, else a new one) stamped, with the run projected, as JSON (CKP-2)."""
        stamped = existing if existing is not None else Thread(id=thread_id)
        now = _now_ms()
        if stamped.metadata.created_at is None:
            stamped.metadata.created_at = now
        stamped.metadata.updated_at = now
        return _stored_thread(apply_run_projection(stamped, run))

    @staticmethod
    def _checked_run(thread_id: str, run: RunRecord) -> None:
        _of(run, RunRecord, "run").validate_for_persist()
        if run.thread_id != _str(thread_id, "thread_id"):
            raise ValidationError(
                f"run {run.run_id!r} belongs to thread {run.thread_id!r}, not to the checkpointed thread {thread_id!r}"
            )

    async def checkpoint(self, thread_id: str, messages: list[Message], run: RunRecord) -> None:
        """Replace the log and upsert the run in one write (CKP-1, CKP-2, CKP-6)."""
        messages = _messages(messages)
        self._checked_run(thread_id, run)
        validate_append_only_delta([], messages)
        await self._turn()
        with self._writing() as data:
            stored = self._checkpoint_parent(data, thread_id, run)
            data["threads"][thread_id] = self._checkpointed(thread_id, stored, run)
            if messages:
                data["logs"][thread_id] = [m.to_json() for m in messages]
            else:
                data["logs"].pop(thread_id, None)
            _put_run(data, run)

    async def checkpoint_append(
        self,
        thread_id: str,
        messages: list[Message],
        expected_version: int | None,
        run: RunRecord,
    ) -> int:
        """Append and upsert the run under the version guard, in one write (CKP-3, CKP-4, CON-1).

        Checks the run, the hierarchy (CKP-1), the version, then the delta: the first
        that fails decides the error (CKP-3).
        """
        messages = _messages(messages)
        if expected_version is not None:
            _count(expected_version, "expected_version")
        self._checked_run(thread_id, run)
        await self._turn()
        with self._writing() as data:
            stored = self._checkpoint_parent(data, thread_id, run)
            existing = _log(data, thread_id)
            if expected_version is not None and expected_version != len(existing):
                raise VersionConflictError(expected_version, len(existing))
            validate_append_only_delta(existing, messages)
            data["threads"][thread_id] = self._checkpointed(thread_id, stored, run)
            if messages:
                data["logs"][thread_id] = [m.to_json() for m in [*existing, *messages]]
            _put_run(data, run)
        return len(existing) + len(messages)

    async def load_checkpoint(self, thread_id: str) -> CheckpointSnapshot | None:
        """View, version, latest run and state from one read of the file (CKP-5)."""
        data = await self._read()
        raw = _log(data, _str(thread_id, "thread_id"))
        latest = _latest(data, thread_id)
        if not raw and latest is None:
            return None
        state = data["states"].get(thread_id)
        return CheckpointSnapshot(
            messages=effective_committed_view(raw, thread_id),
            message_version=len(raw),
            latest_run=latest,
            thread_state=None if state is None else PersistedState.from_json(state),
        )
