"""`SqliteStore`: a durable thread/run store on the standard library's `sqlite3`.

One database file per store, `<location>/store.sqlite3`, in WAL mode. Threads, messages,
thread states and runs are rows: each model is kept whole as JSON text (`body`), next
to the columns that filters and orders read, indexed (threads: normalized parent,
resource, recent activity; messages: thread, seq, message id, run id, internal; runs:
thread, status, `created_at`, `updated_at` and a write counter for RUN-3 ties). Ids
travel only as parameters, never inside SQL text; an `id_prefix` is a range
`prefix <= id < next(prefix)`, so `%`, `_` and `\\` mean nothing (SEC-1). The indexed
stamps are upstream's u64 (up to 2**64 - 1), past SQLite's signed INTEGER: each is
kept minus 2**63 (`_sortable`), which fits and keeps the order.

Driving blocking `sqlite3` from async code: each store object owns one connection and
runs every call as one `anyio.to_thread.run_sync` under its own `CapacityLimiter(1)`,
so the connection is used by one worker thread at a time and the event loop never
blocks. One connection per store rather than one per call: opening a connection
re-reads the schema and drops the statement cache on every call, and concurrent calls
of one store queue in the event loop (free, and cancellable) instead of spinning in
SQLite's busy handler. Store objects on the same file (DUR-2, or other processes) are
kept apart by SQLite's own locks: a busy database is waited for up to `busy_timeout`.

Every call is exactly one transaction in one worker call. Reads run in a `BEGIN`
snapshot, so a page and its total, or a checkpoint's log, latest run and state, come
from one state (atomic_delete). Writes read, check and write inside `BEGIN IMMEDIATE`,
which takes the write lock first, so a version check and its append never interleave
with another writer, through this object or another (concurrent_writers). A call
cancelled while waiting for the limiter has done nothing; once its worker runs, anyio
waits for it (threads are not abandoned), so the transaction commits or rolls back
before the cancellation is delivered (cancel_safe).

Durability: `synchronous=FULL` by default, so a committed write survives a crash of the
process or of the machine; `synchronous="NORMAL"` keeps it across process crashes only.
"""

from __future__ import annotations

import json
import sqlite3
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import ClassVar, TypeVar

import anyio
import anyio.to_thread

from conformance import (
    AlreadyExistsError,
    CheckpointSnapshot,
    ChildThreadDeleteStrategy,
    CommitUnknownError,
    Message,
    MessageOrder,
    MessagePage,
    MessageQuery,
    MessageRecord,
    MessageSeqRange,
    MessageVisibilityFilter,
    NotFoundError,
    PageWindow,
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
    Visibility,
    apply_run_projection,
    checkpoint_parent_thread_id,
    effective_committed_view,
    normalize_lineage_id,
    now_ms,
    validate_message_shape,
)

__all__ = ["SqliteStore", "make_store"]

FILE_NAME = "store.sqlite3"
#: 2: the stamps in `threads.activity`, `runs.created_at` and `runs.updated_at` are shifted (`_sortable`).
SCHEMA_VERSION = 2
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS threads (id TEXT PRIMARY KEY, parent TEXT, resource TEXT,"
    " activity INTEGER NOT NULL, body TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS threads_by_activity ON threads (activity DESC, id)",
    "CREATE INDEX IF NOT EXISTS threads_by_parent ON threads (parent)",
    "CREATE INDEX IF NOT EXISTS threads_by_resource ON threads (resource)",
    "CREATE TABLE IF NOT EXISTS messages (thread_id TEXT NOT NULL, seq INTEGER NOT NULL,"
    " message_id TEXT NOT NULL, run_id TEXT, internal INTEGER NOT NULL, body TEXT NOT NULL,"
    " PRIMARY KEY (thread_id, seq)) WITHOUT ROWID",
    "CREATE UNIQUE INDEX IF NOT EXISTS messages_by_id ON messages (thread_id, message_id)",
    "CREATE INDEX IF NOT EXISTS messages_by_run ON messages (thread_id, run_id)",
    "CREATE TABLE IF NOT EXISTS thread_states (thread_id TEXT PRIMARY KEY, body TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS runs (run_id TEXT PRIMARY KEY, thread_id TEXT NOT NULL, status TEXT NOT NULL,"
    " created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, write_order INTEGER NOT NULL, body TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS runs_by_latest ON runs (thread_id, updated_at, write_order)",
    "CREATE INDEX IF NOT EXISTS runs_by_created ON runs (created_at, run_id)",
    "CREATE INDEX IF NOT EXISTS runs_by_status ON runs (status, created_at, run_id)",
    "CREATE INDEX IF NOT EXISTS runs_by_write ON runs (write_order)",
    f"PRAGMA user_version = {SCHEMA_VERSION}",
)
#: PRAGMA statements by `synchronous` level: PRAGMA takes no parameters, so only these are ever run.
SYNCHRONOUS = {"FULL": "PRAGMA synchronous = FULL", "NORMAL": "PRAGMA synchronous = NORMAL"}
#: Bounds of SQLite's INTEGER; query numbers beyond them are clamped (stored ones are refused).
I64_MAX = 2**63 - 1
#: Upstream's stamps are u64 (0 .. 2**64 - 1), SQLite's INTEGER is i64: an indexed stamp is kept minus this.
U64_SHIFT = 2**63
WRITE, READ = "BEGIN IMMEDIATE", "BEGIN"

_T = TypeVar("_T")


# ── arguments and values ─────────────────────────────────────────────


def _text(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"argument '{name}' must be a str, got {type(value).__name__}")
    return value


def _storable(text: str) -> bool:
    """True when SQLite can bind `text` (UTF-8: no lone surrogate)."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _count(value: object, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValidationError(f"argument '{name}' must be an integer >= 0, got {value!r}")
    return value


def _of(value: object, expected: type[_T], name: str) -> _T:
    if not isinstance(value, expected):
        raise TypeError(f"argument '{name}' must be a {expected.__name__}, got {type(value).__name__}")
    return value


def _messages(value: object) -> list[Message]:
    if not isinstance(value, (list, tuple)):
        raise TypeError(f"argument 'messages' must be a list of Message, got {type(value).__name__}")
    return list(value)


def _clamp(number: int) -> int:
    """A query number as SQLite can bind it: past the INTEGER range, the nearest bound."""
    return max(-I64_MAX - 1, min(number, I64_MAX))


def _sortable(stamp: int) -> int:
    """A u64 stamp as an INTEGER column can hold it, in the same order: `stamp - 2**63`.

    Upstream's timestamps go up to 2**64 - 1, past SQLite's signed 64 bits; shifted,
    0 is stored as -2**63 and 2**64 - 1 as 2**63 - 1, and ORDER BY still sorts them
    right. The model itself, in `body`, keeps the stamp as it is.
    """
    return stamp - U64_SHIFT


def _dump(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _prefix_range(prefix: str) -> tuple[str, str | None]:
    """`(low, high)`: the ids starting with `prefix` are exactly those with `low <= id < high`.

    SQLite compares TEXT as UTF-8 bytes, which orders strings as their code points do;
    `high` is the prefix with its last character incremented (`None`: no upper bound).
    """
    head = prefix
    while head:
        last = ord(head[-1]) + 1
        head = head[:-1]
        if last <= 0x10FFFF:
            return prefix, head + chr(0xE000 if 0xD800 <= last <= 0xDFFF else last)
    return prefix, None


def _where(clauses: list[tuple[str, tuple[object, ...]]]) -> tuple[str, list[object]]:
    """A WHERE condition of fixed SQL fragments, and their parameters in order."""
    condition = " AND ".join(fragment for fragment, _ in clauses) or "1"
    return condition, [value for _, values in clauses for value in values]


def _prefix_clauses(column: str, prefix: str | None) -> list[tuple[str, tuple[object, ...]]]:
    if prefix is None:
        return []
    low, high = _prefix_range(prefix)
    clauses: list[tuple[str, tuple[object, ...]]] = [(f"{column} >= ?", (low,))]
    return [*clauses, (f"{column} < ?", (high,))] if high is not None else clauses


# ── the worker side: plain functions on a connection inside a transaction ──


def _thread(db: sqlite3.Connection, thread_id: str) -> Thread | None:
    row = db.execute("SELECT body FROM threads WHERE id = ?", (thread_id,)).fetchone()
    return None if row is None else Thread.from_json(json.loads(row[0]))


def _put_thread(db: sqlite3.Connection, stored: Thread) -> None:
    """Store a thread whose lineage is normalized and valid (THR-2)."""
    metadata = stored.metadata
    activity = metadata.updated_at if metadata.updated_at is not None else metadata.created_at
    db.execute(
        "INSERT OR REPLACE INTO threads (id, parent, resource, activity, body) VALUES (?, ?, ?, ?, ?)",
        (stored.id, stored.parent_thread_id, stored.resource_id, _sortable(activity or 0), _dump(stored.to_json())),
    )


def _check_parent(db: sqlite3.Connection, thread_id: str, parent_thread_id: str | None) -> None:
    """Walk up from the parent (HIE-1..4): `ValidationError` on a self-parent, a cycle or a gap."""
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
        row = db.execute("SELECT parent FROM threads WHERE id = ?", (current,)).fetchone()
        if row is None:
            if current == first:
                raise ValidationError(f"parent thread not found: {first!r}")
            raise ValidationError(f"thread hierarchy references missing ancestor {current!r}")
        current = row[0]


def _children(db: sqlite3.Connection, parent_id: str) -> list[Thread]:
    rows = db.execute("SELECT body FROM threads WHERE parent = ? ORDER BY id", (parent_id,))
    return [Thread.from_json(json.loads(body)) for (body,) in rows]


def _subtree(db: sqlite3.Connection, thread_id: str) -> list[str]:
    """`thread_id` and every thread below it; `ValidationError` when one is reached twice (DEL-5)."""
    found, seen = [thread_id], {thread_id}
    for current in found:  # grows while it is walked: breadth first
        for (child,) in db.execute("SELECT id FROM threads WHERE parent = ?", (current,)).fetchall():
            if child in seen:
                raise ValidationError(f"thread hierarchy cycle detected at {child!r} while deleting {thread_id!r}")
            found.append(child)
            seen.add(child)
    return found


def _drop(db: sqlite3.Connection, thread_ids: Sequence[str]) -> None:
    """Delete threads with their logs and states (THR-4); their runs stay."""
    rows = [(thread_id,) for thread_id in thread_ids]
    db.executemany("DELETE FROM threads WHERE id = ?", rows)
    db.executemany("DELETE FROM messages WHERE thread_id = ?", rows)
    db.executemany("DELETE FROM thread_states WHERE thread_id = ?", rows)


def _log(db: sqlite3.Connection, thread_id: str) -> list[Message]:
    rows = db.execute("SELECT body FROM messages WHERE thread_id = ? ORDER BY seq", (thread_id,))
    return [Message.from_json(json.loads(body)) for (body,) in rows]


def _version(db: sqlite3.Connection, thread_id: str) -> int:
    """The committed log length: seqs run 1..n without gaps, so the greatest seq."""
    row = db.execute("SELECT coalesce(max(seq), 0) FROM messages WHERE thread_id = ?", (thread_id,)).fetchone()
    version: int = row[0]
    return version


def _check_delta(db: sqlite3.Connection | None, thread_id: str, start_seq: int, delta: Sequence[Message]) -> None:
    """MSG-5 / MOD-3: each message valid at its seq, its id neither committed (when `db`) nor repeated."""
    new_ids: set[str] = set()
    for index, message in enumerate(delta):
        validate_message_shape(message, start_seq + index)
        message_id = message.id
        assert message_id is not None
        committed = "SELECT 1 FROM messages WHERE thread_id = ? AND message_id = ?"
        if db is not None and db.execute(committed, (thread_id, message_id)).fetchone() is not None:
            raise ValidationError(f"append delta contains already committed message id {message_id!r}")
        if message_id in new_ids:
            raise ValidationError(f"append delta contains duplicate message id {message_id!r}")
        new_ids.add(message_id)


def _insert(db: sqlite3.Connection, thread_id: str, start_seq: int, messages: Sequence[Message]) -> None:
    db.executemany(
        "INSERT INTO messages (thread_id, seq, message_id, run_id, internal, body) VALUES (?, ?, ?, ?, ?, ?)",
        [
            (
                thread_id,
                start_seq + index,
                message.id,
                message.metadata.run_id if message.metadata else None,
                message.visibility is Visibility.INTERNAL,
                _dump(message.to_json()),
            )
            for index, message in enumerate(messages)
        ],
    )


def _record(thread_id: str, seq: int, body: str) -> MessageRecord:
    return MessageRecord.from_message(thread_id, seq, Message.from_json(json.loads(body)), copy=False)


def _put_run(db: sqlite3.Connection, run: RunRecord) -> None:
    """Insert or replace `run`, numbered as the latest write (RUN-3 ties)."""
    db.execute(
        "INSERT INTO runs (run_id, thread_id, status, created_at, updated_at, write_order, body)"
        " VALUES (?, ?, ?, ?, ?, (SELECT coalesce(max(write_order), 0) + 1 FROM runs), ?)"
        " ON CONFLICT (run_id) DO UPDATE SET thread_id = excluded.thread_id, status = excluded.status,"
        " created_at = excluded.created_at, updated_at = excluded.updated_at,"
        " write_order = excluded.write_order, body = excluded.body",
        (
            run.run_id,
            run.thread_id,
            run.status.value,
            _sortable(run.created_at),
            _sortable(run.updated_at),
            _dump(run.to_json()),
        ),
    )


def _run(body: str) -> RunRecord:
    return RunRecord.from_json(json.loads(body))


def _latest(db: sqlite3.Connection, thread_id: str) -> RunRecord | None:
    """The thread's run with the greatest `updated_at`, ties to the last written (RUN-3)."""
    row = db.execute(
        "SELECT body FROM runs WHERE thread_id = ? ORDER BY updated_at DESC, write_order DESC LIMIT 1", (thread_id,)
    ).fetchone()
    return None if row is None else _run(row[0])


def _state(db: sqlite3.Connection, thread_id: str) -> PersistedState | None:
    row = db.execute("SELECT body FROM thread_states WHERE thread_id = ?", (thread_id,)).fetchone()
    return None if row is None else PersistedState.from_json(json.loads(row[0]))


def _checked_run(thread_id: str, run: RunRecord) -> None:
    _of(run, RunRecord, "run").validate_for_persist()
    if run.thread_id != thread_id:
        raise ValidationError(
            f"run {run.run_id!r} belongs to thread {run.thread_id!r}, not to the checkpointed thread {thread_id!r}"
        )


def _checkpoint_parent(db: sqlite3.Connection, thread_id: str, run: RunRecord) -> Thread | None:
    """Check the checkpoint's hierarchy (CKP-1); return the stored thread, `None` when there is none."""
    existing = _thread(db, thread_id)
    _check_parent(db, thread_id, checkpoint_parent_thread_id(existing, run))
    return existing


def _checkpoint_thread(db: sqlite3.Connection, thread_id: str, existing: Thread | None, run: RunRecord) -> None:
    """Store the thread (`existing`, else a new one) stamped, with the run projected (CKP-2, CKP-6)."""
    stamped = existing if existing is not None else Thread(id=thread_id)
    now = now_ms()
    if stamped.metadata.created_at is None:
        stamped.metadata.created_at = now
    stamped.metadata.updated_at = now
    projected = apply_run_projection(stamped, run)
    projected.validate_for_persist()
    _put_thread(db, projected)


class SqliteStore(ThreadRunStore):
    """A `ThreadRunStore` in one SQLite database under `location`; see the module docstring.

    Open it with `await SqliteStore.open(location)` (or construct it: the first call
    connects), close it with `await store.aclose()` or `async with`. Several objects,
    in one process or several, may share a location. Raises `StorageIOError` when
    SQLite fails (a locked database past `busy_timeout`, a full disk) and
    `CommitUnknownError` when the commit itself failed.

        store = await SqliteStore.open("/var/lib/agent/threads")
    """

    capabilities: ClassVar[frozenset[str]] = frozenset(
        {"thread_state", "atomic_delete", "concurrent_writers", "cancel_safe", "durable", "any_ids"}
    )

    def __init__(self, location: str | Path, *, busy_timeout: float = 30.0, synchronous: str = "FULL") -> None:
        if synchronous not in SYNCHRONOUS:
            raise ValueError(f"synchronous must be one of {sorted(SYNCHRONOUS)}, got {synchronous!r}")
        self.path = Path(location).resolve() / FILE_NAME
        self._busy_timeout = busy_timeout
        self._synchronous = synchronous
        self._limiter: anyio.CapacityLimiter | None = None
        self._connection: sqlite3.Connection | None = None
        self._closed = False
        self._temporary: tempfile.TemporaryDirectory[str] | None = None

    @classmethod
    async def open(
        cls, location: str | Path | None = None, *, busy_timeout: float = 30.0, synchronous: str = "FULL"
    ) -> SqliteStore:
        """Open (creating file and schema if needed) the store at `location`; a temporary one without.

        A temporary location is removed when the store is closed.
        """
        temporary = None
        if location is None:
            temporary = tempfile.TemporaryDirectory(prefix="sqlite-store-")
            location = temporary.name
        store = cls(location, busy_timeout=busy_timeout, synchronous=synchronous)
        store._temporary = temporary
        await store._read(lambda db: None, None)
        return store

    def thread_run_storage_identity(self) -> str | None:
        """`sqlite:<path>`: every object on the same file is the same storage."""
        return f"sqlite:{self.path}"

    async def aclose(self) -> None:
        """Close the connection once running calls finish; later calls raise `StorageIOError`."""
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(self._disconnect, limiter=self._worker())
        if self._temporary is not None:
            self._temporary.cleanup()
            self._temporary = None

    async def __aenter__(self) -> SqliteStore:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        await self.aclose()

    # ── the connection and its transactions ─────────────────────────

    def _worker(self) -> anyio.CapacityLimiter:
        """The limiter that lets one call at a time use the connection (made in the event loop, on first use)."""
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(1)
        return self._limiter

    def _connect(self) -> sqlite3.Connection:
        if self._closed:
            raise StorageIOError(f"the store on {str(self.path)!r} is closed")
        if self._connection is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=self._busy_timeout, isolation_level=None, check_same_thread=False)
            try:
                db.execute("PRAGMA journal_mode = WAL")
                db.execute(SYNCHRONOUS[self._synchronous])
                if db.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
                    self._transaction_on(db, WRITE, self._create_schema)
            except BaseException:
                db.close()
                raise
            self._connection = db
        return self._connection

    def _create_schema(self, db: sqlite3.Connection) -> None:
        found = db.execute("PRAGMA user_version").fetchone()[0]
        if found not in (0, 1, SCHEMA_VERSION):
            raise StorageIOError(f"{str(self.path)!r} has schema version {found}, expected {SCHEMA_VERSION}")
        for statement in SCHEMA:
            db.execute(statement)
        if found == 1:  # version 1 kept the stamps unshifted: shift them as `_sortable` does (2**63 does not bind)
            db.execute("UPDATE threads SET activity = activity - ? - 1", (I64_MAX,))
            db.execute(
                "UPDATE runs SET created_at = created_at - ? - 1, updated_at = updated_at - ? - 1", (I64_MAX, I64_MAX)
            )

    def _disconnect(self) -> None:
        self._closed = True
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _transaction(self, begin: str, work: Callable[[sqlite3.Connection], _T]) -> _T:
        """Run `work` in one transaction on the worker thread: commit, or roll back if it raised."""
        return self._transaction_on(self._connect(), begin, work)

    def _transaction_on(self, db: sqlite3.Connection, begin: str, work: Callable[[sqlite3.Connection], _T]) -> _T:
        db.execute(begin)
        try:
            result = work(db)
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        try:
            db.execute("COMMIT")
        except sqlite3.Error as error:
            if db.in_transaction:  # the commit was refused, so nothing landed
                db.execute("ROLLBACK")
                raise
            if begin == READ:
                raise
            raise CommitUnknownError(f"the commit to {str(self.path)!r} failed; it may or may not have landed") from (
                error
            )
        return result

    async def _call(self, begin: str, work: Callable[[sqlite3.Connection], _T]) -> _T:
        """`work` in one transaction, on a worker thread, after this store's running call."""
        try:
            return await anyio.to_thread.run_sync(
                self._transaction, begin, work, abandon_on_cancel=False, limiter=self._worker()
            )
        except (sqlite3.Error, OSError) as error:
            raise StorageIOError(f"SQLite failed on {str(self.path)!r}: {error}") from error

    async def _read(self, work: Callable[[sqlite3.Connection], _T], nothing: _T) -> _T:
        """`work` in a read snapshot; `nothing` when it names an id that is not UTF-8 (none is stored)."""
        try:
            return await self._call(READ, work)
        except UnicodeEncodeError:
            return nothing

    async def _write(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        """`work` in a write transaction; `ValidationError` for a value SQLite cannot hold (MOD-6)."""
        try:
            return await self._call(WRITE, work)
        except (UnicodeEncodeError, OverflowError) as error:
            raise ValidationError(f"SQLite cannot store this value: {error}") from None

    # ── threads ──────────────────────────────────────────────────────

    async def load_thread(self, thread_id: str) -> Thread | None:
        """The thread, or `None` for an unknown id (THR-1)."""
        _text(thread_id, "thread_id")
        return await self._read(lambda db: _thread(db, thread_id), None)

    async def save_thread(self, thread: Thread) -> None:
        """Normalize the lineage, validate (MOD-2), then create or overwrite (THR-2)."""
        stored = _of(thread, Thread, "thread").normalized()
        stored.validate_for_persist()
        await self._write(lambda db: _put_thread(db, stored))

    async def save_thread_validated(self, thread: Thread) -> None:
        """Check the hierarchy and save in one transaction (HIE-5, CON-3)."""
        stored = _of(thread, Thread, "thread").normalized()
        stored.validate_for_persist()

        def work(db: sqlite3.Connection) -> None:
            _check_parent(db, stored.id, stored.parent_thread_id)
            _put_thread(db, stored)

        await self._write(work)

    async def validate_thread_hierarchy(self, thread_id: str, parent_thread_id: str | None) -> None:
        """`ValidationError` unless `thread_id` may take the parent (HIE-1..4)."""
        _text(thread_id, "thread_id")
        try:
            await self._call(READ, lambda db: _check_parent(db, thread_id, parent_thread_id))
        except UnicodeEncodeError:
            raise ValidationError(f"parent thread not found: {parent_thread_id!r}") from None

    async def delete_thread(self, thread_id: str) -> None:
        """Remove the thread, its log and its state; keep its runs (THR-4)."""
        if _storable(_text(thread_id, "thread_id")):  # an id no row can hold is unknown: nothing to delete
            await self._write(lambda db: _drop(db, [thread_id]))

    async def delete_thread_with_strategy(
        self,
        thread_id: str,
        strategy: ChildThreadDeleteStrategy = ChildThreadDeleteStrategy.DETACH,
    ) -> None:
        """Delete by strategy in one transaction (DEL-1..6)."""
        try:
            strategy = ChildThreadDeleteStrategy(strategy)
        except ValueError:
            raise ValidationError(f"unknown delete strategy {strategy!r}; use reject, detach or cascade") from None
        if not _storable(_text(thread_id, "thread_id")):
            raise NotFoundError(f"thread {thread_id!r} not found")  # no stored id holds it (DEL-1 over MOD-6)

        def work(db: sqlite3.Connection) -> None:
            if _thread(db, thread_id) is None:
                raise NotFoundError(f"thread {thread_id!r} not found")
            if strategy is ChildThreadDeleteStrategy.CASCADE:
                _drop(db, _subtree(db, thread_id))
                return
            children = _children(db, thread_id)
            if strategy is ChildThreadDeleteStrategy.REJECT and children:
                raise ValidationError(f"thread {thread_id!r} has child threads; choose 'detach' or 'cascade'")
            now = now_ms()
            for child in children:
                child.parent_thread_id = None
                child.metadata.updated_at = now
                _put_thread(db, child)
            _drop(db, [thread_id])

        await self._write(work)

    async def list_threads(self, offset: int, limit: int) -> list[str]:
        """Thread ids by recent activity, then id (THR-5)."""
        bounds = (_clamp(_count(limit, "limit")), _clamp(_count(offset, "offset")))

        def work(db: sqlite3.Connection) -> list[str]:
            rows = db.execute("SELECT id FROM threads ORDER BY activity DESC, id LIMIT ? OFFSET ?", bounds)
            return [thread_id for (thread_id,) in rows]

        return await self._read(work, [])

    async def list_threads_query(self, query: ThreadQuery) -> ThreadPage:
        """One page of matching ids and their total from one snapshot (QRY-1..5, SEC-1)."""
        query = _of(query, ThreadQuery, "query").normalized()
        parent = query.parent_filter
        condition, parameters = _where(
            [
                *_prefix_clauses("id", query.id_prefix),
                *([("resource = ?", (query.resource_id,))] if query.resource_id is not None else []),
                *([("parent IS NULL", ())] if parent.kind == "root" else []),
                *([("parent = ?", (parent.parent_id,))] if parent.kind == "parent" else []),
            ]
        )

        def work(db: sqlite3.Connection) -> ThreadPage:
            total: int = db.execute(f"SELECT count(*) FROM threads WHERE {condition}", parameters).fetchone()[0]
            window = PageWindow(offset=query.offset, limit=query.limit, total=total)
            rows = db.execute(
                f"SELECT id FROM threads WHERE {condition} ORDER BY activity DESC, id LIMIT ? OFFSET ?",
                [*parameters, window.end - window.start, window.start],
            )
            next_cursor, prev_cursor = window.cursors(query)
            items = [thread_id for (thread_id,) in rows]
            return ThreadPage(
                items=items, total=total, has_more=window.has_more, next_cursor=next_cursor, prev_cursor=prev_cursor
            )

        return await self._read(work, ThreadPage())

    async def list_child_threads(self, parent_thread_id: str) -> list[Thread]:
        """The direct children, by id (HIE-6); the id normalized as MOD-1 says, a blank one has none."""
        parent = normalize_lineage_id(_text(parent_thread_id, "parent_thread_id"))
        if parent is None:
            return []
        return await self._read(lambda db: _children(db, parent), [])

    async def update_thread_metadata(self, id: str, metadata: ThreadMetadata) -> None:
        """Replace the whole metadata; `NotFoundError` for an unknown id (THR-3)."""
        _of(metadata, ThreadMetadata, "metadata").check_types(f"metadata of thread {id!r}")
        _text(id, "id")
        replacement = metadata.copy()

        def work(db: sqlite3.Connection) -> None:
            thread = _thread(db, id)
            if thread is None:
                raise NotFoundError(f"thread {id!r} not found")
            thread.metadata = replacement
            _put_thread(db, thread)

        await self._write(work)

    async def save_thread_state(self, thread_id: str, state: PersistedState) -> None:
        """Overwrite the thread's state (THR-6); the thread need not exist."""
        _of(state, PersistedState, "state").check_types(f"state of thread {thread_id!r}")
        _text(thread_id, "thread_id")
        row = (thread_id, _dump(state.to_json()))
        await self._write(lambda db: db.execute("INSERT OR REPLACE INTO thread_states VALUES (?, ?)", row))

    async def load_thread_state(self, thread_id: str) -> PersistedState | None:
        """The last saved state, or `None` (THR-6)."""
        _text(thread_id, "thread_id")
        return await self._read(lambda db: _state(db, thread_id), None)

    # ── messages ─────────────────────────────────────────────────────

    async def load_committed_messages(self, thread_id: str) -> list[Message] | None:
        """The raw log, or `None` when it has no message (MSG-1)."""
        _text(thread_id, "thread_id")
        return await self._read(lambda db: _log(db, thread_id), []) or None

    async def save_messages(self, thread_id: str, messages: list[Message]) -> None:
        """Replace the whole log after validating every message (MSG-2)."""
        messages = _messages(messages)
        _check_delta(None, thread_id, 1, messages)
        _text(thread_id, "thread_id")

        def work(db: sqlite3.Connection) -> None:
            db.execute("DELETE FROM messages WHERE thread_id = ?", (thread_id,))
            _insert(db, thread_id, 1, messages)

        await self._write(work)

    async def delete_messages(self, thread_id: str) -> None:
        """Empty the log of an existing thread; `NotFoundError` otherwise (MSG-3)."""
        if not _storable(_text(thread_id, "thread_id")):
            raise NotFoundError(f"thread {thread_id!r} not found")  # no stored id holds it (DEL-1 over MOD-6)

        def work(db: sqlite3.Connection) -> None:
            if _thread(db, thread_id) is None:
                raise NotFoundError(f"thread {thread_id!r} not found")
            db.execute("DELETE FROM messages WHERE thread_id = ?", (thread_id,))

        await self._write(work)

    async def append_message_records(self, thread_id: str, messages: list[Message]) -> list[MessageRecord]:
        """Validate and append in one transaction; return the new records (MSG-4, MSG-5, CON-2)."""
        messages = [m.copy() for m in _messages(messages)]
        _text(thread_id, "thread_id")

        def work(db: sqlite3.Connection) -> int:
            start = _version(db, thread_id) + 1
            _check_delta(db, thread_id, start, messages)
            _insert(db, thread_id, start, messages)
            return start

        start = await self._write(work)
        return [MessageRecord.from_message(thread_id, start + i, m) for i, m in enumerate(messages)]

    async def load_message_records(self, thread_id: str) -> list[MessageRecord] | None:
        """A record per committed message, seq = position in the log (MSG-6); `None` without a log."""
        _text(thread_id, "thread_id")

        def work(db: sqlite3.Connection) -> list[MessageRecord]:
            rows = db.execute("SELECT seq, body FROM messages WHERE thread_id = ? ORDER BY seq", (thread_id,))
            return [_record(thread_id, seq, body) for seq, body in rows]

        return await self._read(work, []) or None

    async def list_message_records(self, thread_id: str, query: MessageQuery) -> MessagePage:
        """One filtered page of records and their total from one snapshot (MSG-7)."""
        _text(thread_id, "thread_id")
        query = _of(query, MessageQuery, "query").normalized()
        shown = {MessageVisibilityFilter.EXTERNAL: 0, MessageVisibilityFilter.INTERNAL: 1}.get(query.visibility)
        condition, parameters = _where(
            [
                ("thread_id = ?", (thread_id,)),
                *([("seq > ?", (_clamp(query.after),))] if query.after is not None else []),
                *([("seq < ?", (_clamp(query.before),))] if query.before is not None else []),
                *([("run_id = ?", (query.run_id,))] if query.run_id is not None else []),
                *([("internal = ?", (shown,))] if shown is not None else []),
            ]
        )
        order = "DESC" if query.order is MessageOrder.DESC else "ASC"

        def work(db: sqlite3.Connection) -> MessagePage:
            total: int = db.execute(f"SELECT count(*) FROM messages WHERE {condition}", parameters).fetchone()[0]
            window = PageWindow(offset=query.offset, limit=query.limit, total=total)
            rows = db.execute(
                f"SELECT seq, body FROM messages WHERE {condition} ORDER BY seq {order} LIMIT ? OFFSET ?",
                [*parameters, window.end - window.start, window.start],
            )
            next_cursor, prev_cursor = window.cursors(query)
            records = [_record(thread_id, seq, body) for seq, body in rows]
            return MessagePage(
                records=records, total=total, has_more=window.has_more, next_cursor=next_cursor, prev_cursor=prev_cursor
            )

        return await self._read(work, MessagePage())

    async def load_message_record(self, thread_id: str, message_id: str) -> MessageRecord | None:
        """The record of one committed message, or `None` for an unknown id (MSG-8)."""
        key = (_text(thread_id, "thread_id"), _text(message_id, "message_id"))

        def work(db: sqlite3.Connection) -> MessageRecord | None:
            row = db.execute("SELECT seq, body FROM messages WHERE thread_id = ? AND message_id = ?", key).fetchone()
            return None if row is None else _record(thread_id, row[0], row[1])

        return await self._read(work, None)

    async def load_message_records_range(self, thread_id: str, range: MessageSeqRange) -> list[MessageRecord]:
        """The records with `from_seq <= seq <= to_seq`, in seq order (MSG-8)."""
        _text(thread_id, "thread_id")
        _of(range, MessageSeqRange, "range").check_types("range")  # a negative bound: ValidationError
        bounds = (thread_id, _clamp(range.from_seq), _clamp(range.to_seq))

        def work(db: sqlite3.Connection) -> list[MessageRecord]:
            rows = db.execute(
                "SELECT seq, body FROM messages WHERE thread_id = ? AND seq BETWEEN ? AND ? ORDER BY seq", bounds
            )
            return [_record(thread_id, seq, body) for seq, body in rows]

        return await self._read(work, [])

    # ── runs ─────────────────────────────────────────────────────────

    async def create_run(self, record: RunRecord) -> None:
        """Validate (MOD-4) and store a new run; `AlreadyExistsError` keeps the old one (RUN-1)."""
        _of(record, RunRecord, "record").validate_for_persist()
        stored = record.copy()

        def work(db: sqlite3.Connection) -> None:
            if db.execute("SELECT 1 FROM runs WHERE run_id = ?", (stored.run_id,)).fetchone() is not None:
                raise AlreadyExistsError(f"run {stored.run_id!r} already exists")
            _put_run(db, stored)

        await self._write(work)

    async def load_run(self, run_id: str) -> RunRecord | None:
        """The run, or `None` for an unknown id (RUN-2)."""
        _text(run_id, "run_id")

        def work(db: sqlite3.Connection) -> RunRecord | None:
            row = db.execute("SELECT body FROM runs WHERE run_id = ?", (run_id,)).fetchone()
            return None if row is None else _run(row[0])

        return await self._read(work, None)

    async def latest_run(self, thread_id: str) -> RunRecord | None:
        """The thread's latest run by `updated_at`, ties to the last write (RUN-3)."""
        _text(thread_id, "thread_id")
        return await self._read(lambda db: _latest(db, thread_id), None)

    async def list_runs(self, query: RunQuery) -> RunPage:
        """One page of matching runs by `created_at`, then `run_id`, and their total (RUN-4, SEC-1)."""
        query = _of(query, RunQuery, "query").normalized()
        condition, parameters = _where(
            [
                *_prefix_clauses("thread_id", query.id_prefix),
                *([("thread_id = ?", (query.thread_id,))] if query.thread_id is not None else []),
                *([("status = ?", (query.status.value,))] if query.status is not None else []),
            ]
        )

        def work(db: sqlite3.Connection) -> RunPage:
            total: int = db.execute(f"SELECT count(*) FROM runs WHERE {condition}", parameters).fetchone()[0]
            window = PageWindow(offset=query.offset, limit=query.limit, total=total)
            rows = db.execute(
                f"SELECT body FROM runs WHERE {condition} ORDER BY created_at, run_id LIMIT ? OFFSET ?",
                [*parameters, window.end - window.start, window.start],
            )
            return RunPage(items=[_run(body) for (body,) in rows], total=total, has_more=window.has_more)

        return await self._read(work, RunPage())

    # ── checkpoints ──────────────────────────────────────────────────

    async def checkpoint(self, thread_id: str, messages: list[Message], run: RunRecord) -> None:
        """Replace the log and upsert the run in one transaction (CKP-1, CKP-2, CKP-6)."""
        messages = _messages(messages)
        _checked_run(_text(thread_id, "thread_id"), run)
        _check_delta(None, thread_id, 1, messages)
        stored = run.copy()

        def work(db: sqlite3.Connection) -> None:
            _checkpoint_thread(db, thread_id, _checkpoint_parent(db, thread_id, stored), stored)
            db.execute("DELETE FROM messages WHERE thread_id = ?", (thread_id,))
            _insert(db, thread_id, 1, messages)
            _put_run(db, stored)

        await self._write(work)

    async def checkpoint_append(
        self,
        thread_id: str,
        messages: list[Message],
        expected_version: int | None,
        run: RunRecord,
    ) -> int:
        """Append and upsert the run under the version guard, in one transaction (CKP-3, CKP-4, CON-1).

        Checks the run, the hierarchy (CKP-1), the version, then the delta: the first
        that fails decides the error (CKP-3).
        """
        messages = _messages(messages)
        if expected_version is not None:
            _count(expected_version, "expected_version")
        _checked_run(_text(thread_id, "thread_id"), run)
        stored = run.copy()

        def work(db: sqlite3.Connection) -> int:
            existing = _checkpoint_parent(db, thread_id, stored)
            actual = _version(db, thread_id)
            if expected_version is not None and expected_version != actual:
                raise VersionConflictError(expected_version, actual)
            _check_delta(db, thread_id, actual + 1, messages)
            _checkpoint_thread(db, thread_id, existing, stored)
            _insert(db, thread_id, actual + 1, messages)
            _put_run(db, stored)
            return actual + len(messages)

        return await self._write(work)

    async def load_checkpoint(self, thread_id: str) -> CheckpointSnapshot | None:
        """View, version, latest run and state from one snapshot (CKP-5)."""
        _text(thread_id, "thread_id")

        def work(db: sqlite3.Connection) -> CheckpointSnapshot | None:
            raw = _log(db, thread_id)
            latest = _latest(db, thread_id)
            if not raw and latest is None:
                return None
            return CheckpointSnapshot(
                messages=effective_committed_view(raw, thread_id),
                message_version=len(raw),
                latest_run=latest,
                thread_state=_state(db, thread_id),
            )

        return await self._read(work, None)


async def make_store(location: str | None = None) -> SqliteStore:
    """The kit's store source: `python -m conformance --store examples/sqlite_store.py:make_store`.

    The kit passes a fresh folder per test as `location` and the same one again to
    reopen (durable rules); without one the store lives in a temporary folder.
    """
    return await SqliteStore.open(location)
