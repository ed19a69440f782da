"""`PostgresStore`: a durable thread/run store on PostgreSQL, through psycopg 3's async API and its pool.

Why psycopg 3 rather than asyncpg: it speaks libpq, so a DSN, a service file or the
`PG*` variables mean what they mean to `psql` and every other PostgreSQL tool; one
typed package holds the async API, the sync one (the exit cleanup below uses it) and
a pool (`psycopg_pool.AsyncConnectionPool`) that rolls back or replaces a connection
returned mid-transaction; and a cancelled query is cancelled on the server, not just
abandoned. Both drivers run on asyncio only, so choosing psycopg costs no event loop.
Needs PostgreSQL 14 or newer (hierarchy walks are recursive queries with `CYCLE`).

Layout. One schema holds the tables; every row carries the `store` it belongs to, an
id from the `stores` registry (one row per `location`, or a fresh row for a temporary
store). Threads, messages, thread states and runs are rows whose model is kept whole as
compact JSON text in `body` (text, not jsonb: it reads back exactly as written, key order
and `\\u0000` escapes included), next to the indexed columns that filters and orders
read: a thread's normalized parent, resource and recent-activity stamp; a message's
seq, id, run id and visibility; a run's thread, status, `created_at`, `updated_at` and
a write number (RUN-3 ties). The stamps are `numeric(20)`: upstream's are u64, up to
2**64 - 1, past what `bigint` holds. Ids are `text COLLATE "C"`, so `ORDER BY id` is Python's
code-point order, and travel only as query parameters; an `id_prefix` is an escaped
`LIKE` (SEC-1). Paging is `ORDER BY ... LIMIT/OFFSET` with the total from the same
statement, so a page and its total come from one snapshot.

Locks. Each thread's log has a version row (`logs`: its length). A write to a log
first upserts that row (`INSERT ... ON CONFLICT DO UPDATE ... RETURNING length`), which
locks it and returns the committed length in one statement, even for a thread's very
first append when no row exists yet: version checks and appends serialize per thread
(concurrent_writers). Writes that can add a parent edge (validated saves, strategy
deletes, checkpoints whose run names a parent) first take a transaction-level advisory
lock of the store, so two of them can never close a cycle together (CON-3). Locks are
always taken in that order (hierarchy, log, thread, run), so writers never deadlock.
Every multi-row write is one transaction; a strategy delete is one transaction under
the hierarchy lock, and every read is one statement (atomic_delete).

Cancellation (cancel_safe). Each call runs in an asyncio task of its own. When the
caller is cancelled, that task is cancelled once: psycopg asks the server to cancel the
running statement and waits for its answer, the open transaction is rolled back, the
connection goes back to the pool idle; only then does the caller see `CancelledError`.
So the store is as before the call, or as after it when the cancel came with the
COMMIT already sent, and nothing lands later. (Cancelling psycopg directly from an anyio
cancel scope would cancel it again while it cleans up, and it then drops the connection
with the transaction's outcome unknown to the caller.)

Where the schema comes from, and when it goes:
- `PostgresStore.open(dsn, location="main")` uses the schema `threadstore` (or `schema=`),
  created on first use and never dropped; the same location finds the same store
  in any process (durable). Without `location`, the store is temporary: its rows are
  deleted when it is closed.
- `make_store(location)`, the factory the conformance kit calls (`--store
  examples/postgres_store.py:make_store`), opens its stores in this process's scratch
  schema `cstore_<random hex>`: one schema per process, not per test, because creating
  one costs a file per table and index (~100 ms on a slow disk, times ~600 stores in a
  kit run). Inside it each location is its own store, so tests stay isolated and a
  reopened location finds its data. At the end of the kit's session its
  `cleanup`, `drop_stores`, deletes the stores of every location the kit opened and
  drops the scratch schema once it holds no store. As a safety net, the scratch
  schema is dropped when the process exits, and each new one first drops the scratch
  schemas whose process is gone (same host) or that are over a day old, so a killed
  run leaks nothing for long.

>>> store = await PostgresStore.open("postgresql://localhost/app", location="main")  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import atexit
import json
import os
import re
import socket
import time
import uuid
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager, suppress
from types import TracebackType
from typing import Any, ClassVar, TypeVar

import anyio
import psycopg
import sniffio
from psycopg import AsyncConnection, sql
from psycopg.conninfo import conninfo_to_dict
from psycopg.pq import TransactionStatus
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool

from conformance import (
    AlreadyExistsError,
    CheckpointSnapshot,
    ChildThreadDeleteStrategy,
    CommitUnknownError,
    JsonValue,
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
    StorageError,
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

__all__ = ["DEFAULT_DSN", "DSN_VARIABLE", "PostgresStore", "drop_stores", "make_store"]

#: The environment variable `make_store` reads its DSN from, and its default.
DSN_VARIABLE = "CONFORMANCE_PG_DSN"
DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/test"
DEFAULT_SCHEMA = "threadstore"
#: Longest id kept: two of them must fit one btree entry (about 2.7 kB) in UTF-8.
MAX_ID_LENGTH = 256
SCRATCH_PREFIX = "cstore_"
#: Any scratch schema older than this (seconds) belonged to a run that is over.
SCRATCH_MAX_AGE = 24 * 3600
_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
#: SQLSTATEs of values the database cannot keep: refused as `ValidationError`.
_UNSTORABLE = {"22003", "22021", "22P05"}
_MESSAGE_ID_UNIQUE = "messages_id_unique"

Connection = AsyncConnection[TupleRow]
Row = tuple[Any, ...]
_T = TypeVar("_T")

_DDL = """
SET LOCAL client_min_messages = warning;
SELECT pg_advisory_xact_lock({lock});
CREATE SCHEMA IF NOT EXISTS {schema};
CREATE TABLE IF NOT EXISTS {schema}.stores (
    id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    location text UNIQUE
);
CREATE TABLE IF NOT EXISTS {schema}.threads (
    store integer NOT NULL,
    id text COLLATE "C" NOT NULL,
    parent_id text COLLATE "C",
    resource_id text COLLATE "C",
    activity numeric(20) NOT NULL,
    body text NOT NULL,
    PRIMARY KEY (store, id)
);
CREATE INDEX IF NOT EXISTS threads_by_parent ON {schema}.threads (store, parent_id);
CREATE INDEX IF NOT EXISTS threads_by_activity ON {schema}.threads (store, activity DESC, id);
CREATE INDEX IF NOT EXISTS threads_by_resource ON {schema}.threads (store, resource_id, activity DESC, id);
CREATE TABLE IF NOT EXISTS {schema}.logs (
    store integer NOT NULL,
    thread_id text COLLATE "C" NOT NULL,
    length integer NOT NULL,
    PRIMARY KEY (store, thread_id)
);
CREATE TABLE IF NOT EXISTS {schema}.messages (
    store integer NOT NULL,
    thread_id text COLLATE "C" NOT NULL,
    seq integer NOT NULL,
    id text COLLATE "C" NOT NULL,
    run_id text COLLATE "C",
    internal boolean NOT NULL,
    body text NOT NULL,
    PRIMARY KEY (store, thread_id, seq),
    CONSTRAINT messages_id_unique UNIQUE (store, thread_id, id)
);
CREATE TABLE IF NOT EXISTS {schema}.states (
    store integer NOT NULL,
    thread_id text COLLATE "C" NOT NULL,
    body text NOT NULL,
    PRIMARY KEY (store, thread_id)
);
CREATE TABLE IF NOT EXISTS {schema}.runs (
    store integer NOT NULL,
    run_id text COLLATE "C" NOT NULL,
    thread_id text COLLATE "C" NOT NULL,
    status text NOT NULL,
    created_at numeric(20) NOT NULL,
    updated_at numeric(20) NOT NULL,
    written bigint NOT NULL,
    body text NOT NULL,
    PRIMARY KEY (store, run_id)
);
CREATE INDEX IF NOT EXISTS runs_latest ON {schema}.runs (store, thread_id, updated_at DESC, written DESC);
CREATE INDEX IF NOT EXISTS runs_by_created ON {schema}.runs (store, created_at, run_id);
CREATE SEQUENCE IF NOT EXISTS {schema}.writes;
DO $$ BEGIN  -- a schema made when the stamps were bigint, which stops at 2**63 - 1
    IF (SELECT data_type FROM information_schema.columns
        WHERE table_schema = {schema_name} AND table_name = 'threads' AND column_name = 'activity') = 'bigint' THEN
        ALTER TABLE {schema}.threads ALTER COLUMN activity TYPE numeric(20);
        ALTER TABLE {schema}.runs ALTER COLUMN created_at TYPE numeric(20), ALTER COLUMN updated_at TYPE numeric(20);
    END IF;
END $$;
"""

_UPSERT_THREAD = """
INSERT INTO threads (store, id, parent_id, resource_id, activity, body)
VALUES (%(store)s, %(id)s, %(parent)s, %(resource)s, %(activity)s, %(body)s)
ON CONFLICT (store, id) DO UPDATE SET parent_id = EXCLUDED.parent_id, resource_id = EXCLUDED.resource_id,
    activity = EXCLUDED.activity, body = EXCLUDED.body
"""
_THREAD_EXISTS = "SELECT 1 FROM threads WHERE store = %(store)s AND id = %(id)s"
_LOCK_THREAD = "SELECT body FROM threads WHERE store = %(store)s AND id = %(id)s FOR UPDATE"
_HAS_CHILD = "SELECT 1 FROM threads WHERE store = %(store)s AND parent_id = %(parent)s LIMIT 1"
_LOCK_CHILDREN = (
    "SELECT id, body FROM threads WHERE store = %(store)s AND parent_id = %(parent)s ORDER BY id FOR UPDATE"
)
#: The chain of ancestors from `start` up, stopping at a root, a missing thread or a repeat.
_ANCESTORS = """
WITH RECURSIVE chain(id, parent_id) AS (
    SELECT id, parent_id FROM threads WHERE store = %(store)s AND id = %(start)s
    UNION ALL
    SELECT t.id, t.parent_id FROM chain JOIN threads t ON t.store = %(store)s AND t.id = chain.parent_id
) CYCLE id SET looped USING path
SELECT id, parent_id FROM chain WHERE NOT looped
"""
#: `start` and every thread below it; `looped` marks a thread met again (a cycle, DEL-5).
_SUBTREE = """
WITH RECURSIVE below(id) AS (
    SELECT id FROM threads WHERE store = %(store)s AND id = %(start)s
    UNION ALL
    SELECT t.id FROM below JOIN threads t ON t.store = %(store)s AND t.parent_id = below.id
) CYCLE id SET looped USING path
SELECT id, looped FROM below
"""
#: Lock the log's version row (creating it at 0) and read the committed length.
_LOCK_LOG = """
INSERT INTO logs (store, thread_id, length) VALUES (%(store)s, %(thread)s, 0)
ON CONFLICT (store, thread_id) DO UPDATE SET length = logs.length
RETURNING length
"""
_APPEND = """
WITH added AS (
    INSERT INTO messages (store, thread_id, seq, id, run_id, internal, body)
    SELECT %(store)s, %(thread)s, %(length)s + u.n, u.id, u.run_id, u.internal, u.body
    FROM unnest(%(ids)s::text[], %(runs)s::text[], %(internals)s::boolean[], %(bodies)s::text[])
        WITH ORDINALITY AS u(id, run_id, internal, body, n)
)
UPDATE logs SET length = %(length)s + %(count)s WHERE store = %(store)s AND thread_id = %(thread)s
"""
_FORGET_THREADS = """
WITH m AS (DELETE FROM messages WHERE store = %(store)s AND thread_id = ANY(%(ids)s::text[])),
     s AS (DELETE FROM states WHERE store = %(store)s AND thread_id = ANY(%(ids)s::text[]))
DELETE FROM threads WHERE store = %(store)s AND id = ANY(%(ids)s::text[])
"""
_INSERT_RUN = """
INSERT INTO runs (store, run_id, thread_id, status, created_at, updated_at, written, body)
VALUES (%(store)s, %(run_id)s, %(thread)s, %(status)s, %(created_at)s, %(updated_at)s, nextval('writes'), %(body)s)
"""
_CREATE_RUN = _INSERT_RUN + "ON CONFLICT (store, run_id) DO NOTHING RETURNING 1"
#: Upsert a run as the last one written (CKP-2, RUN-3 ties).
_PUT_RUN = (
    _INSERT_RUN
    + """ON CONFLICT (store, run_id) DO UPDATE SET thread_id = EXCLUDED.thread_id, status = EXCLUDED.status,
    created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at, written = EXCLUDED.written,
    body = EXCLUDED.body"""
)
_LATEST_RUN = "SELECT body FROM runs WHERE store = %(store)s AND thread_id = %(thread)s "
_LATEST_RUN += "ORDER BY updated_at DESC, written DESC LIMIT 1"
_FORGET_STORE = """
WITH t AS (DELETE FROM threads WHERE store = %(store)s), l AS (DELETE FROM logs WHERE store = %(store)s),
     m AS (DELETE FROM messages WHERE store = %(store)s), s AS (DELETE FROM states WHERE store = %(store)s),
     r AS (DELETE FROM runs WHERE store = %(store)s)
DELETE FROM stores WHERE id = %(store)s
"""

# ── arguments and values ─────────────────────────────────────────────


def _str(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"argument '{name}' must be a str, got {type(value).__name__}")
    return value


def _of(value: object, expected: type[_T], name: str) -> _T:
    if not isinstance(value, expected):
        raise TypeError(f"argument '{name}' must be a {expected.__name__}, got {type(value).__name__}")
    return value


def _count(value: object, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValidationError(f"argument '{name}' must be an integer >= 0, got {value!r}")
    return value


#: The greatest value of PostgreSQL's bigint: an offset past it skips every row anyway.
_BIGINT_MAX = 2**63 - 1


def _clamped(number: int) -> int:
    """`number`, or bigint's greatest value when it is greater (a larger parameter is an error)."""
    return min(number, _BIGINT_MAX)


def _messages(value: object) -> list[Message]:
    if not isinstance(value, (list, tuple)):
        raise TypeError(f"argument 'messages' must be a list of Message, got {type(value).__name__}")
    return list(value)


def _sendable(value: str) -> bool:
    """True when PostgreSQL text can hold `value`: no NUL character, valid UTF-8 (no lone surrogate)."""
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _storable(value: str | None, what: str) -> None:
    """Refuse an id this store cannot keep with `ValidationError` (MOD-6)."""
    if value is not None and (len(value) > MAX_ID_LENGTH or not _sendable(value)):
        raise ValidationError(
            f"{what} {value[:40]!r} cannot be stored: ids hold at most {MAX_ID_LENGTH} characters, "
            "no NUL and no lone surrogate"
        )


def _dumps(value: JsonValue) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _stored_thread(thread: Thread) -> Thread:
    """A copy with lineage normalized, then validated (THR-2, MOD-2), its indexed ids checked (MOD-6)."""
    stored = thread.normalized()
    stored.validate_for_persist()
    _storable(stored.id, "thread id")
    _storable(stored.parent_thread_id, "parent thread id")
    _storable(stored.resource_id, "resource id")
    return stored


def _thread_row(thread: Thread) -> dict[str, Any]:
    stamp = thread.metadata.updated_at if thread.metadata.updated_at is not None else thread.metadata.created_at
    return {
        "id": thread.id,
        "parent": thread.parent_thread_id,
        "resource": thread.resource_id,
        "activity": stamp or 0,
        "body": _dumps(thread.to_json()),
    }


def _thread(body: str) -> Thread:
    return Thread.from_json(json.loads(body))


def _message(body: str) -> Message:
    return Message.from_json(json.loads(body))


def _run(body: str) -> RunRecord:
    return RunRecord.from_json(json.loads(body))


def _records(thread_id: str, rows: Sequence[Row]) -> list[MessageRecord]:
    return [MessageRecord.from_message(thread_id, seq, _message(body), copy=False) for seq, body in rows]


def _checked_delta(start_seq: int, delta: Sequence[Message]) -> dict[str, list[Any]]:
    """Validate a delta landing at `start_seq` (MOD-3, ids unique in it); return its columns for `_APPEND`.

    Ids already committed are refused by the `messages_id_unique` constraint (MSG-5).
    """
    columns: dict[str, list[Any]] = {"ids": [], "runs": [], "internals": [], "bodies": []}
    for index, message in enumerate(delta):
        validate_message_shape(message, start_seq + index)
        assert message.id is not None
        if message.id in columns["ids"]:
            raise ValidationError(f"the messages repeat message id {message.id!r}")
        run_id = message.metadata.run_id if message.metadata else None
        _storable(message.id, "message id")
        _storable(run_id, "run id")
        columns["ids"].append(message.id)
        columns["runs"].append(run_id)
        columns["internals"].append(message.visibility is Visibility.INTERNAL)
        columns["bodies"].append(_dumps(message.to_json()))
    return columns


def _checked_run(thread_id: str, run: RunRecord) -> dict[str, Any]:
    """Validate a run (MOD-4) written through `thread_id`; return its columns for `_PUT_RUN`."""
    _of(run, RunRecord, "run").validate_for_persist()
    if run.thread_id != thread_id:
        raise ValidationError(f"run {run.run_id!r} belongs to thread {run.thread_id!r}, not to {thread_id!r}")
    _storable(run.run_id, "run id")
    _storable(run.thread_id, "thread id")
    return {
        "run_id": run.run_id,
        "thread": run.thread_id,
        "status": run.status.value,
        "created_at": run.created_at,
        "updated_at": run.updated_at,
        "body": _dumps(run.to_json()),
    }


def _adds_parent(run: RunRecord) -> bool:
    """True when a checkpoint of `run` may give its thread a parent (CKP-6), so takes the hierarchy lock."""
    return run.request is not None and normalize_lineage_id(run.request.parent_thread_id) is not None


def _like_prefix(prefix: str) -> str:
    """A `LIKE ... ESCAPE '\\'` pattern matching exactly the texts that start with `prefix` (SEC-1)."""
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


# ── cancellation and errors ──────────────────────────────────────────


async def _settled(work: Awaitable[_T], *, abandon: Callable[[_T], Awaitable[object]] | None = None) -> _T:
    """Await `work` in a task of its own; if the caller is cancelled, cancel it once and wait until it ends.

    The caller's `CancelledError` is raised only once `work` has finished its cleanup,
    whatever cancels the caller (an anyio scope, which cancels again and again, or
    asyncio). A result that `work` produced anyway is passed to `abandon` first.
    """
    task = asyncio.ensure_future(work)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        task.cancel()
        with anyio.CancelScope(shield=True):
            while not task.done():
                with suppress(asyncio.CancelledError):
                    await asyncio.wait([task])
            if not task.cancelled() and task.exception() is None and abandon is not None:
                await abandon(task.result())
        raise


async def _mapped(work: Awaitable[_T]) -> _T:
    """Await `work`, turning driver errors into the contract's: unstorable values, I/O."""
    try:
        return await work
    except StorageError:
        raise
    except UnicodeEncodeError as error:
        raise ValidationError(f"text PostgreSQL cannot store (not UTF-8): {error}") from None
    except psycopg.DataError as error:
        if error.sqlstate is None or error.sqlstate in _UNSTORABLE:
            raise ValidationError(f"a value PostgreSQL cannot store: {error}") from None
        raise StorageIOError(f"PostgreSQL refused the call: {error}") from error
    except psycopg.errors.ProgramLimitExceeded as error:
        raise ValidationError(f"a value too large for PostgreSQL to index: {error}") from None
    except psycopg.Error as error:
        raise StorageIOError(f"PostgreSQL: {error}") from error


@asynccontextmanager
async def _transaction(conn: Connection) -> AsyncIterator[None]:
    """BEGIN, then COMMIT; roll back on any exception (cancellation included)."""
    await conn.execute("BEGIN")
    try:
        yield
    except BaseException:
        if not conn.closed and conn.info.transaction_status in (TransactionStatus.INTRANS, TransactionStatus.INERROR):
            with suppress(psycopg.Error):
                await conn.execute("ROLLBACK")
        raise
    try:
        await conn.execute("COMMIT")
    except psycopg.OperationalError as error:
        raise CommitUnknownError(
            f"the connection failed during COMMIT; the write may or may not be stored: {error}"
        ) from error


# ── the scratch schema of this process (make_store) ──────────────────

_SCRATCH_SCHEMA = f"{SCRATCH_PREFIX}{uuid.uuid4().hex[:16]}"
#: DSNs whose scratch schema this process created: dropped at exit.
_SCRATCH_DSNS: set[str] = set()
#: (DSN, schema) pairs whose tables this process has made sure of.
_READY: set[tuple[str, str]] = set()


def _scratch_comment() -> str:
    return json.dumps({"scratch": True, "host": socket.gethostname(), "pid": os.getpid(), "created": time.time()})


def _abandoned(comment: str | None) -> bool:
    """True for the comment of a scratch schema whose process is gone (this host) or which is over a day old."""
    try:
        owner = json.loads(comment or "")
        if not isinstance(owner, dict) or owner.get("scratch") is not True:
            return False
        if time.time() - float(owner["created"]) > SCRATCH_MAX_AGE:
            return True
        pid = int(owner["pid"])
    except (ValueError, KeyError, TypeError):
        return False
    if owner.get("host") != socket.gethostname():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # alive, run by another user
    return False


async def _sweep(conn: Connection) -> None:
    """Drop the scratch schemas left by runs that are over (killed, or on another host a day ago)."""
    cursor = await conn.execute(
        "SELECT nspname, obj_description(oid, 'pg_namespace') FROM pg_namespace WHERE starts_with(nspname, %s)",
        [SCRATCH_PREFIX],
    )
    abandoned = [name for name, comment in await cursor.fetchall() if _abandoned(comment)]
    if not abandoned:
        return
    await conn.execute("SET lock_timeout = '5s'")
    try:
        for name in abandoned:
            with suppress(psycopg.Error):  # best effort: locked, or not ours to drop
                await conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))
    finally:
        await conn.execute("RESET lock_timeout")


def drop_stores(locations: Sequence[str | os.PathLike[str]]) -> None:
    """Delete the stores at `locations` from this process's scratch schema; drop the schema once it holds none.

    The kit's `cleanup` of `make_store` (and of the example's test class): it calls it
    once at the end of a session with every location it opened a store at. Blocking,
    so it runs in any event loop or none. Locations of other schemas, and locations
    never opened, are left alone. Raises `psycopg.Error` when the server fails.

        drop_stores(["/tmp/pytest-of-me/pytest-7/test_x0"])
    """
    names = [str(location) for location in locations]
    for dsn in sorted(_SCRATCH_DSNS):
        with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn, conn.transaction():
            conn.execute("SET LOCAL lock_timeout = '10s'")
            made = conn.execute("SELECT to_regclass(%s)", [f'"{_SCRATCH_SCHEMA}".stores']).fetchone()
            if made is None or made[0] is None:
                continue  # dropped already, or never made (opening failed before)
            schema = sql.Identifier(_SCRATCH_SCHEMA)
            found = conn.execute(
                sql.SQL("SELECT id FROM {}.stores WHERE location = ANY(%s)").format(schema), [names]
            ).fetchall()
            ids = [row[0] for row in found]
            for table in ("threads", "logs", "messages", "states", "runs", "stores"):
                column = "id" if table == "stores" else "store"
                conn.execute(
                    sql.SQL("DELETE FROM {}.{} WHERE {} = ANY(%s)").format(
                        schema, sql.Identifier(table), sql.Identifier(column)
                    ),
                    [ids],
                )
            left = conn.execute(sql.SQL("SELECT EXISTS (SELECT FROM {}.stores)").format(schema)).fetchone()
            if left is not None and not left[0]:
                conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(schema))
                _READY.discard((dsn, _SCRATCH_SCHEMA))  # a later store makes it again


def _drop_scratch_schemas() -> None:
    """At exit: drop this process's scratch schema on every server it was made on."""
    for dsn in sorted(_SCRATCH_DSNS):
        with suppress(psycopg.Error), psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
            conn.execute("SET lock_timeout = '10s'")
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(_SCRATCH_SCHEMA)))


async def _ensure_schema(conn: Connection, dsn: str, schema: str, *, scratch: bool) -> None:
    """Create the schema and its tables unless this process already made sure of them."""
    if (dsn, schema) in _READY:
        return
    if scratch:
        await _sweep(conn)
    lock = zlib.crc32(f"threadstore-ddl:{schema}".encode())
    ddl = sql.SQL(_DDL).format(schema=sql.Identifier(schema), schema_name=sql.Literal(schema), lock=sql.Literal(lock))
    await conn.execute(ddl)
    if scratch:
        comment = sql.SQL("COMMENT ON SCHEMA {} IS {}").format(sql.Identifier(schema), sql.Literal(_scratch_comment()))
        await conn.execute(comment)
        if not _SCRATCH_DSNS:
            atexit.register(_drop_scratch_schemas)
        _SCRATCH_DSNS.add(dsn)
    _READY.add((dsn, schema))


async def _register(conn: Connection, location: str | None) -> int:
    """The store id of `location` (registered on first use), or of a new temporary store."""
    if location is None:
        cursor = await conn.execute("INSERT INTO stores (location) VALUES (NULL) RETURNING id")
    else:
        cursor = await conn.execute(
            "INSERT INTO stores (location) VALUES (%s) "
            "ON CONFLICT (location) DO UPDATE SET location = EXCLUDED.location RETURNING id",
            [location],
        )
    row = await cursor.fetchone()
    assert row is not None
    store_id: int = row[0]
    return store_id


def _require_asyncio() -> None:
    if sniffio.current_async_library() != "asyncio":
        raise RuntimeError(
            "PostgresStore runs on asyncio only (psycopg's async API); "
            "run the kit with --conformance-backend asyncio (the default)"
        )


class PostgresStore(ThreadRunStore):
    """A `ThreadRunStore` in PostgreSQL: one registry row per location, rows of models in shared tables.

    Open it with `await PostgresStore.open(...)` (or `make_store`), close it with `aclose()`
    or `async with`.

    >>> async with await PostgresStore.open(DEFAULT_DSN, location="main") as store:  # doctest: +SKIP
    ...     await store.save_thread(Thread(id="t1"))
    """

    capabilities: ClassVar[frozenset[str]] = frozenset(
        {"thread_state", "atomic_delete", "concurrent_writers", "cancel_safe", "durable", "any_ids"}
    )

    def __init__(
        self, pool: AsyncConnectionPool[Connection], *, dsn: str, schema: str, store_id: int, location: str | None
    ) -> None:
        """Use `PostgresStore.open`; this wraps an open pool and a registered store id."""
        self._pool = pool
        self._dsn = dsn
        self.schema = schema
        self.store_id = store_id
        self.location = location
        self._hierarchy_key = zlib.crc32(f"threadstore-hierarchy:{schema}".encode()) - 2**31
        self._closed = False

    @classmethod
    async def open(
        cls,
        dsn: str | None = None,
        *,
        location: str | None = None,
        schema: str | None = None,
        scratch: bool = False,
        max_size: int = 10,
        synchronous_commit: bool = True,
    ) -> PostgresStore:
        """Connect a pool to `dsn` (default `$CONFORMANCE_PG_DSN`), make the tables if missing, open the store.

        `location` names a durable store (the same name finds the same data); without
        one the store is temporary and forgotten on close. `schema` (default
        `threadstore`) holds the tables; `scratch=True` uses this process's scratch
        schema instead, dropped at exit. `synchronous_commit=False` lets a commit return
        before its WAL reaches the disk: much faster on slow disks, and a server crash
        may lose the last moment of writes (never corrupt them). Raises `StorageIOError`
        when the server does not answer, `ValueError` for a bad schema name.
        """
        _require_asyncio()
        dsn = dsn or os.environ.get(DSN_VARIABLE, DEFAULT_DSN)
        if scratch and schema is not None:
            raise ValueError("pass either scratch=True or a schema, not both")
        schema = _SCRATCH_SCHEMA if scratch else schema or DEFAULT_SCHEMA
        if not _SCHEMA_NAME.fullmatch(schema):
            raise ValueError(f"schema {schema!r} must be a lowercase SQL name ([a-z_][a-z0-9_]*, at most 63)")
        if location is not None and not _sendable(_str(location, "location")):
            raise ValidationError(f"location {location!r} cannot be stored")
        options = str(conninfo_to_dict(dsn).get("options") or "")
        options += f" -c search_path={schema}" + ("" if synchronous_commit else " -c synchronous_commit=off")
        pool: AsyncConnectionPool[Connection] = AsyncConnectionPool(
            dsn,
            min_size=1,
            max_size=max_size,
            kwargs={"autocommit": True, "options": options.strip()},
            open=False,
            name=f"threadstore-{schema}",
        )

        async def opened() -> PostgresStore:
            try:
                await pool.open(wait=True, timeout=10.0)
                async with pool.connection() as conn:
                    await _ensure_schema(conn, dsn, schema, scratch=scratch)
                    store_id = await _register(conn, location)
            except BaseException:
                await pool.close()
                raise
            return cls(pool, dsn=dsn, schema=schema, store_id=store_id, location=location)

        return await _settled(_mapped(opened()), abandon=lambda store: store.aclose())

    async def aclose(self) -> None:
        """Close the pool; a temporary store's rows are deleted first. Later calls raise `StorageIOError`."""
        if self._closed:
            return
        self._closed = True

        async def closed() -> None:
            try:
                if self.location is None:
                    async with self._pool.connection() as conn:
                        await conn.execute(_FORGET_STORE, {"store": self.store_id})
            finally:
                await self._pool.close()

        await _settled(_mapped(closed()))

    async def __aenter__(self) -> PostgresStore:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        await self.aclose()

    def thread_run_storage_identity(self) -> str | None:
        """`postgresql://host:port/db#schema/store`: every object on the same location is the same storage."""
        info = conninfo_to_dict(self._dsn)
        host, port, dbname = info.get("host", ""), info.get("port", "5432"), info.get("dbname", "")
        return f"postgresql://{host}:{port}/{dbname}#{self.schema}/{self.store_id}"

    # ── running calls ────────────────────────────────────────────────

    async def _call(self, work: Callable[[Connection], Awaitable[_T]], *, transaction: bool) -> _T:
        """Run `work` on a pooled connection (in one transaction if asked), settled and with errors mapped."""
        if self._closed:
            raise StorageIOError(f"the store on {self.location!r} is closed")

        async def run() -> _T:
            async with self._pool.connection() as conn:
                if not transaction:
                    return await work(conn)
                async with _transaction(conn):
                    return await work(conn)

        return await _settled(_mapped(run()))

    def _params(self, **params: Any) -> dict[str, Any]:
        return {"store": self.store_id, **params}

    async def _rows(self, query: str, **params: Any) -> list[Row]:
        """The rows of one statement, which reads from one snapshot or writes atomically on its own."""

        async def work(conn: Connection) -> list[Row]:
            cursor = await conn.execute(query, self._params(**params))
            return await cursor.fetchall() if cursor.description is not None else []

        return await self._call(work, transaction=False)

    async def _row(self, query: str, **params: Any) -> Row | None:
        rows = await self._rows(query, **params)
        return rows[0] if rows else None

    async def _write(self, work: Callable[[Connection], Awaitable[_T]]) -> _T:
        return await self._call(work, transaction=True)

    async def _fetchone(self, conn: Connection, query: str, **params: Any) -> Row | None:
        return await (await conn.execute(query, self._params(**params))).fetchone()

    async def _lock_hierarchy(self, conn: Connection) -> None:
        """Take the store's hierarchy lock until the transaction ends (CON-3)."""
        await conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", [self._hierarchy_key, self.store_id])

    async def _lock_log(self, conn: Connection, thread_id: str) -> int:
        """Lock the log's version row until the transaction ends; return the committed length (CKP-3)."""
        row = await self._fetchone(conn, _LOCK_LOG, thread=thread_id)
        assert row is not None
        length: int = row[0]
        return length

    async def _append(self, conn: Connection, thread_id: str, length: int, columns: dict[str, list[Any]]) -> None:
        """Insert messages after `length` and set the version; a committed id is a `ValidationError` (MSG-5)."""
        try:
            await conn.execute(
                _APPEND, self._params(thread=thread_id, length=length, count=len(columns["ids"]), **columns)
            )
        except psycopg.errors.UniqueViolation as error:
            if error.diag.constraint_name != _MESSAGE_ID_UNIQUE:
                raise
            raise ValidationError(
                f"the messages reuse a message id already committed in thread {thread_id!r} "
                f"({error.diag.message_detail})"
            ) from None

    async def _replace_log(self, conn: Connection, thread_id: str, columns: dict[str, list[Any]] | None) -> None:
        """Make the locked log exactly `columns`' messages; none leaves no log (MSG-1)."""
        await conn.execute(
            "DELETE FROM messages WHERE store = %(store)s AND thread_id = %(thread)s", self._params(thread=thread_id)
        )
        if columns and columns["ids"]:
            await self._append(conn, thread_id, 0, columns)
        else:
            await conn.execute(
                "DELETE FROM logs WHERE store = %(store)s AND thread_id = %(thread)s", self._params(thread=thread_id)
            )

    async def _forget(self, conn: Connection, thread_ids: list[str]) -> None:
        """Delete threads with their logs and states (THR-4), version rows first (the lock order)."""
        await conn.execute(
            "DELETE FROM logs WHERE store = %(store)s AND thread_id = ANY(%(ids)s::text[])",
            self._params(ids=thread_ids),
        )
        await conn.execute(_FORGET_THREADS, self._params(ids=thread_ids))

    async def _detach_children(self, conn: Connection, parent_id: str) -> None:
        """Clear the parent of each direct child and stamp its `updated_at` now, all else kept (DEL-3)."""
        cursor = await conn.execute(_LOCK_CHILDREN, self._params(parent=parent_id))
        children = [_thread(body) for _, body in await cursor.fetchall()]
        if not children:
            return
        now = now_ms()
        for child in children:
            child.parent_thread_id = None
            child.metadata.updated_at = now
        await conn.execute(
            "UPDATE threads AS t SET parent_id = NULL, activity = %(now)s, body = u.body "
            "FROM unnest(%(ids)s::text[], %(bodies)s::text[]) AS u(id, body) WHERE t.store = %(store)s AND t.id = u.id",
            self._params(now=now, ids=[c.id for c in children], bodies=[_dumps(c.to_json()) for c in children]),
        )

    async def _check_parent(self, conn: Connection, thread_id: str, parent_thread_id: str | None) -> None:
        """Walk up from the parent (HIE-1..4): `ValidationError` for a self-parent, a cycle or a missing thread."""
        first = normalize_lineage_id(parent_thread_id)
        if first is None:
            return
        if first == thread_id:
            raise ValidationError(f"thread {thread_id!r} cannot parent itself")
        parents: dict[str, str | None] = {}
        if _sendable(first):
            cursor = await conn.execute(_ANCESTORS, self._params(start=first))
            parents = {row[0]: row[1] for row in await cursor.fetchall()}
        passed = {thread_id}
        current: str | None = first
        while current is not None:
            if current in passed:
                raise ValidationError(f"thread hierarchy cycle detected at {current!r} (parent of {thread_id!r})")
            passed.add(current)
            if current not in parents:
                if current == first:
                    raise ValidationError(f"parent thread not found: {first!r}")
                raise ValidationError(f"thread hierarchy references missing ancestor {current!r}")
            current = parents[current]

    async def _checkpoint_parent(self, conn: Connection, thread_id: str, run: RunRecord) -> Thread | None:
        """Lock the thread's row and check the checkpoint's hierarchy (CKP-1); return the stored thread, if any."""
        row = await self._fetchone(conn, _LOCK_THREAD, id=thread_id)
        existing = None if row is None else _thread(row[0])
        await self._check_parent(conn, thread_id, checkpoint_parent_thread_id(existing, run))
        return existing

    async def _checkpointed(self, conn: Connection, thread_id: str, existing: Thread | None, run: RunRecord) -> None:
        """Write the thread (`existing`, else a new one) stamped, with the run projected (CKP-2, CKP-6)."""
        stamped = existing if existing is not None else Thread(id=thread_id)
        now = now_ms()
        if stamped.metadata.created_at is None:
            stamped.metadata.created_at = now
        stamped.metadata.updated_at = now
        projected = _stored_thread(apply_run_projection(stamped, run))
        await conn.execute(_UPSERT_THREAD, self._params(**_thread_row(projected)))

    # ── threads ──────────────────────────────────────────────────────

    async def load_thread(self, thread_id: str) -> Thread | None:
        """The thread, or `None` for an unknown id (THR-1)."""
        if not _sendable(_str(thread_id, "thread_id")):
            return None
        row = await self._row("SELECT body FROM threads WHERE store = %(store)s AND id = %(id)s", id=thread_id)
        return None if row is None else _thread(row[0])

    async def save_thread(self, thread: Thread) -> None:
        """Normalize the lineage, validate (MOD-2, MOD-6), then create or overwrite (THR-2)."""
        await self._rows(_UPSERT_THREAD, **_thread_row(_stored_thread(_of(thread, Thread, "thread"))))

    async def save_thread_validated(self, thread: Thread) -> None:
        """Check the hierarchy and save in one transaction under the hierarchy lock (HIE-5, CON-3)."""
        stored = _stored_thread(_of(thread, Thread, "thread"))

        async def work(conn: Connection) -> None:
            await self._lock_hierarchy(conn)
            await self._check_parent(conn, stored.id, stored.parent_thread_id)
            await conn.execute(_UPSERT_THREAD, self._params(**_thread_row(stored)))

        await self._write(work)

    async def validate_thread_hierarchy(self, thread_id: str, parent_thread_id: str | None) -> None:
        """`ValidationError` unless `thread_id` may take the parent (HIE-1..4); one recursive query."""
        thread_id = _str(thread_id, "thread_id")

        async def work(conn: Connection) -> None:
            await self._check_parent(conn, thread_id, parent_thread_id)

        await self._call(work, transaction=False)

    async def delete_thread(self, thread_id: str) -> None:
        """Remove the thread, its log and its state; keep its runs; unknown ids are fine (THR-4)."""
        if not _sendable(_str(thread_id, "thread_id")):
            return

        async def work(conn: Connection) -> None:
            await self._forget(conn, [thread_id])

        await self._write(work)

    async def delete_thread_with_strategy(
        self,
        thread_id: str,
        strategy: ChildThreadDeleteStrategy = ChildThreadDeleteStrategy.DETACH,
    ) -> None:
        """Delete by strategy in one transaction under the hierarchy lock (DEL-1..6)."""
        try:
            strategy = ChildThreadDeleteStrategy(strategy)
        except ValueError:
            raise ValidationError(f"unknown delete strategy {strategy!r}; use reject, detach or cascade") from None
        if not _sendable(_str(thread_id, "thread_id")):
            raise NotFoundError(f"thread {thread_id!r} not found")

        async def work(conn: Connection) -> None:
            await self._lock_hierarchy(conn)
            if await self._fetchone(conn, _THREAD_EXISTS, id=thread_id) is None:
                raise NotFoundError(f"thread {thread_id!r} not found")
            if strategy is ChildThreadDeleteStrategy.CASCADE:
                below = await (await conn.execute(_SUBTREE, self._params(start=thread_id))).fetchall()
                looped = [found for found, cycle in below if cycle]
                if looped:
                    raise ValidationError(
                        f"thread hierarchy cycle detected at {looped[0]!r} while deleting {thread_id!r}"
                    )
                await self._forget(conn, [found for found, _ in below])
                return
            rejected = strategy is ChildThreadDeleteStrategy.REJECT
            if rejected and await self._fetchone(conn, _HAS_CHILD, parent=thread_id) is not None:
                raise ValidationError(f"thread {thread_id!r} has child threads; choose 'detach' or 'cascade'")
            await self._forget(conn, [thread_id])
            if strategy is ChildThreadDeleteStrategy.DETACH:
                await self._detach_children(conn, thread_id)

        await self._write(work)

    async def list_threads(self, offset: int, limit: int) -> list[str]:
        """Thread ids by recent activity, then id (THR-5)."""
        rows = await self._rows(
            "SELECT id FROM threads WHERE store = %(store)s "
            "ORDER BY activity DESC, id LIMIT %(limit)s OFFSET %(offset)s",
            offset=_clamped(_count(offset, "offset")),
            limit=_count(limit, "limit"),
        )
        return [row[0] for row in rows]

    async def list_threads_query(self, query: ThreadQuery) -> ThreadPage:
        """One page of matching ids and their total from one statement (QRY-1..5, SEC-1)."""
        normalized = _of(query, ThreadQuery, "query").normalized()
        where = ["store = %(store)s"]
        params: dict[str, Any] = {"limit": normalized.limit, "offset": _clamped(normalized.offset)}
        if normalized.resource_id is not None:
            where.append("resource_id = %(resource)s")
            params["resource"] = normalized.resource_id
        if normalized.parent_filter.kind == "root":
            where.append("parent_id IS NULL")
        elif normalized.parent_filter.kind == "parent":
            where.append("parent_id = %(parent)s")
            params["parent"] = normalized.parent_filter.parent_id
        if normalized.id_prefix is not None:
            where.append(r"id LIKE %(prefix)s ESCAPE '\'")
            params["prefix"] = _like_prefix(normalized.id_prefix)
        if not all(_sendable(value) for value in params.values() if isinstance(value, str)):
            return ThreadPage()
        row = await self._row(
            f"WITH matching AS (SELECT id, activity FROM threads WHERE {' AND '.join(where)}) "
            "SELECT (SELECT count(*) FROM matching), "
            "ARRAY(SELECT id FROM matching ORDER BY activity DESC, id LIMIT %(limit)s OFFSET %(offset)s)",
            **params,
        )
        assert row is not None
        total, items = row
        window = PageWindow(offset=normalized.offset, limit=normalized.limit, total=total)
        next_cursor, prev_cursor = window.cursors(normalized)
        return ThreadPage(
            items=items, total=total, has_more=window.has_more, next_cursor=next_cursor, prev_cursor=prev_cursor
        )

    async def list_child_threads(self, parent_thread_id: str) -> list[Thread]:
        """The direct children, by id (HIE-6); the id normalized as MOD-1 says, a blank one has none."""
        parent = normalize_lineage_id(_str(parent_thread_id, "parent_thread_id"))
        if parent is None or not _sendable(parent):
            return []
        rows = await self._rows(
            "SELECT body FROM threads WHERE store = %(store)s AND parent_id = %(parent)s ORDER BY id",
            parent=parent,
        )
        return [_thread(row[0]) for row in rows]

    async def update_thread_metadata(self, id: str, metadata: ThreadMetadata) -> None:
        """Replace the whole metadata; `NotFoundError` for an unknown id (THR-3)."""
        _of(metadata, ThreadMetadata, "metadata").check_types(f"metadata of thread {id!r}")
        if not _sendable(_str(id, "id")):
            raise NotFoundError(f"thread {id!r} not found")

        async def work(conn: Connection) -> None:
            row = await self._fetchone(conn, _LOCK_THREAD, id=id)
            if row is None:
                raise NotFoundError(f"thread {id!r} not found")
            updated = _thread(row[0])
            updated.metadata = metadata.copy()
            await conn.execute(_UPSERT_THREAD, self._params(**_thread_row(updated)))

        await self._write(work)

    async def save_thread_state(self, thread_id: str, state: PersistedState) -> None:
        """Overwrite the thread's state (THR-6); the thread need not exist."""
        _of(state, PersistedState, "state").check_types(f"state of thread {thread_id!r}")
        _storable(_str(thread_id, "thread_id"), "thread id")
        await self._rows(
            "INSERT INTO states (store, thread_id, body) VALUES (%(store)s, %(thread)s, %(body)s) "
            "ON CONFLICT (store, thread_id) DO UPDATE SET body = EXCLUDED.body",
            thread=thread_id,
            body=_dumps(state.to_json()),
        )

    async def load_thread_state(self, thread_id: str) -> PersistedState | None:
        """The last saved state, or `None` (THR-6)."""
        if not _sendable(_str(thread_id, "thread_id")):
            return None
        row = await self._row(
            "SELECT body FROM states WHERE store = %(store)s AND thread_id = %(thread)s", thread=thread_id
        )
        return None if row is None else PersistedState.from_json(json.loads(row[0]))

    # ── messages ─────────────────────────────────────────────────────

    async def load_committed_messages(self, thread_id: str) -> list[Message] | None:
        """The raw log, or `None` when it has no message (MSG-1)."""
        if not _sendable(_str(thread_id, "thread_id")):
            return None
        rows = await self._rows(
            "SELECT body FROM messages WHERE store = %(store)s AND thread_id = %(thread)s ORDER BY seq",
            thread=thread_id,
        )
        return [_message(row[0]) for row in rows] or None

    async def save_messages(self, thread_id: str, messages: list[Message]) -> None:
        """Replace the whole log after validating every message (MSG-2), under the log's lock."""
        columns = _checked_delta(1, _messages(messages))
        _storable(_str(thread_id, "thread_id"), "thread id")

        async def work(conn: Connection) -> None:
            await self._lock_log(conn, thread_id)
            await self._replace_log(conn, thread_id, columns)

        await self._write(work)

    async def delete_messages(self, thread_id: str) -> None:
        """Empty the log of an existing thread; `NotFoundError` otherwise (MSG-3)."""
        if not _sendable(_str(thread_id, "thread_id")):
            raise NotFoundError(f"thread {thread_id!r} not found")

        async def work(conn: Connection) -> None:
            if await self._fetchone(conn, _THREAD_EXISTS, id=thread_id) is None:
                raise NotFoundError(f"thread {thread_id!r} not found")
            await self._lock_log(conn, thread_id)
            await self._replace_log(conn, thread_id, None)

        await self._write(work)

    async def append_message_records(self, thread_id: str, messages: list[Message]) -> list[MessageRecord]:
        """Validate and append under the log's lock; return the new records (MSG-4, MSG-5, CON-2)."""
        messages = _messages(messages)
        _storable(_str(thread_id, "thread_id"), "thread id")
        if not messages:
            return []

        async def work(conn: Connection) -> int:
            length = await self._lock_log(conn, thread_id)
            await self._append(conn, thread_id, length, _checked_delta(length + 1, messages))
            return length

        start = await self._write(work) + 1
        return [MessageRecord.from_message(thread_id, start + i, m) for i, m in enumerate(messages)]

    async def load_message_records(self, thread_id: str) -> list[MessageRecord] | None:
        """A record per committed message, raw seqs (MSG-6); `None` without messages."""
        if not _sendable(_str(thread_id, "thread_id")):
            return None
        rows = await self._rows(
            "SELECT seq, body FROM messages WHERE store = %(store)s AND thread_id = %(thread)s ORDER BY seq",
            thread=thread_id,
        )
        return _records(thread_id, rows) or None

    async def list_message_records(self, thread_id: str, query: MessageQuery) -> MessagePage:
        """One filtered page of records and its total from one statement (MSG-7)."""
        normalized = _of(query, MessageQuery, "query").normalized()
        thread_id = _str(thread_id, "thread_id")
        where = ["store = %(store)s", "thread_id = %(thread)s"]
        params: dict[str, Any] = {"thread": thread_id, "limit": normalized.limit, "offset": _clamped(normalized.offset)}
        if normalized.after is not None:
            where.append("seq > %(after)s")
            params["after"] = normalized.after
        if normalized.before is not None:
            where.append("seq < %(before)s")
            params["before"] = normalized.before
        if normalized.run_id is not None:
            where.append("run_id = %(run)s")
            params["run"] = normalized.run_id
        if normalized.visibility is MessageVisibilityFilter.EXTERNAL:
            where.append("NOT internal")
        elif normalized.visibility is MessageVisibilityFilter.INTERNAL:
            where.append("internal")
        if not all(_sendable(value) for value in params.values() if isinstance(value, str)):
            return MessagePage()
        order = "DESC" if normalized.order is MessageOrder.DESC else "ASC"
        row = await self._row(
            f"WITH matching AS (SELECT seq, body FROM messages WHERE {' AND '.join(where)}), "
            f"page AS (SELECT seq, body FROM matching ORDER BY seq {order} LIMIT %(limit)s OFFSET %(offset)s) "
            f"SELECT (SELECT count(*) FROM matching), ARRAY(SELECT seq FROM page ORDER BY seq {order}), "
            f"ARRAY(SELECT body FROM page ORDER BY seq {order})",
            **params,
        )
        assert row is not None
        total, seqs, bodies = row
        window = PageWindow(offset=normalized.offset, limit=normalized.limit, total=total)
        next_cursor, prev_cursor = window.cursors(normalized)
        return MessagePage(
            records=_records(thread_id, list(zip(seqs, bodies, strict=True))),
            total=total,
            has_more=window.has_more,
            next_cursor=next_cursor,
            prev_cursor=prev_cursor,
        )

    async def load_message_record(self, thread_id: str, message_id: str) -> MessageRecord | None:
        """The record of one message by id, from the unique index; `None` when unknown (MSG-8)."""
        if not (_sendable(_str(thread_id, "thread_id")) and _sendable(_str(message_id, "message_id"))):
            return None
        row = await self._row(
            "SELECT seq, body FROM messages WHERE store = %(store)s AND thread_id = %(thread)s AND id = %(id)s",
            thread=thread_id,
            id=message_id,
        )
        return None if row is None else _records(thread_id, [row])[0]

    async def load_message_records_range(self, thread_id: str, range: MessageSeqRange) -> list[MessageRecord]:
        """Records with `from_seq <= seq <= to_seq`, in seq order (MSG-8)."""
        _of(range, MessageSeqRange, "range").check_types("range")
        if not _sendable(_str(thread_id, "thread_id")):
            return []
        rows = await self._rows(
            "SELECT seq, body FROM messages WHERE store = %(store)s AND thread_id = %(thread)s "
            "AND seq BETWEEN %(first)s AND %(last)s ORDER BY seq",
            thread=thread_id,
            first=range.from_seq,
            last=range.to_seq,
        )
        return _records(thread_id, rows)

    # ── runs ─────────────────────────────────────────────────────────

    async def create_run(self, record: RunRecord) -> None:
        """Validate (MOD-4) and store a new run; `AlreadyExistsError` keeps the old one (RUN-1)."""
        columns = _checked_run(_of(record, RunRecord, "record").thread_id, record)

        if await self._row(_CREATE_RUN, **columns) is None:
            raise AlreadyExistsError(f"run {record.run_id!r} already exists")

    async def load_run(self, run_id: str) -> RunRecord | None:
        """The run, or `None` for an unknown id (RUN-2)."""
        if not _sendable(_str(run_id, "run_id")):
            return None
        row = await self._row("SELECT body FROM runs WHERE store = %(store)s AND run_id = %(run)s", run=run_id)
        return None if row is None else _run(row[0])

    async def latest_run(self, thread_id: str) -> RunRecord | None:
        """The thread's run with the greatest `updated_at`, ties to the last write (RUN-3)."""
        if not _sendable(_str(thread_id, "thread_id")):
            return None
        row = await self._row(_LATEST_RUN, thread=thread_id)
        return None if row is None else _run(row[0])

    async def list_runs(self, query: RunQuery) -> RunPage:
        """One page of matching runs by `created_at`, then `run_id`, and their total (RUN-4, SEC-1)."""
        normalized = _of(query, RunQuery, "query").normalized()
        where = ["store = %(store)s"]
        params: dict[str, Any] = {"limit": normalized.limit, "offset": _clamped(normalized.offset)}
        if normalized.thread_id is not None:
            where.append("thread_id = %(thread)s")
            params["thread"] = normalized.thread_id
        if normalized.status is not None:
            where.append("status = %(status)s")
            params["status"] = normalized.status.value
        if normalized.id_prefix is not None:
            where.append(r"thread_id LIKE %(prefix)s ESCAPE '\'")
            params["prefix"] = _like_prefix(normalized.id_prefix)
        if not all(_sendable(value) for value in params.values() if isinstance(value, str)):
            return RunPage()
        row = await self._row(
            f"WITH matching AS (SELECT created_at, run_id, body FROM runs WHERE {' AND '.join(where)}) "
            "SELECT (SELECT count(*) FROM matching), "
            "ARRAY(SELECT body FROM matching ORDER BY created_at, run_id LIMIT %(limit)s OFFSET %(offset)s)",
            **params,
        )
        assert row is not None
        total, bodies = row
        window = PageWindow(offset=normalized.offset, limit=normalized.limit, total=total)
        return RunPage(items=[_run(body) for body in bodies], total=total, has_more=window.has_more)

    # ── checkpoints ──────────────────────────────────────────────────

    async def checkpoint(self, thread_id: str, messages: list[Message], run: RunRecord) -> None:
        """Replace the log, write the projected thread and upsert the run in one transaction (CKP-1, CKP-2)."""
        run_columns = _checked_run(_str(thread_id, "thread_id"), run)
        columns = _checked_delta(1, _messages(messages))

        async def work(conn: Connection) -> None:
            if _adds_parent(run):
                await self._lock_hierarchy(conn)
            await self._lock_log(conn, thread_id)
            await self._checkpointed(conn, thread_id, await self._checkpoint_parent(conn, thread_id, run), run)
            await self._replace_log(conn, thread_id, columns)
            await conn.execute(_PUT_RUN, self._params(**run_columns))

        await self._write(work)

    async def checkpoint_append(
        self,
        thread_id: str,
        messages: list[Message],
        expected_version: int | None,
        run: RunRecord,
    ) -> int:
        """Append and upsert the run under the log's lock and version check; return the new length (CKP-3, CKP-4).

        Checks the run, the hierarchy (CKP-1), the version, then the delta: the first
        that fails decides the error (CKP-3).
        """
        messages = _messages(messages)
        if expected_version is not None:
            _count(expected_version, "expected_version")
        run_columns = _checked_run(_str(thread_id, "thread_id"), run)

        async def work(conn: Connection) -> int:
            if _adds_parent(run):
                await self._lock_hierarchy(conn)
            actual = await self._lock_log(conn, thread_id)
            existing = await self._checkpoint_parent(conn, thread_id, run)
            if expected_version is not None and expected_version != actual:
                raise VersionConflictError(expected_version, actual)
            columns = _checked_delta(actual + 1, messages)
            await self._checkpointed(conn, thread_id, existing, run)
            if messages:
                await self._append(conn, thread_id, actual, columns)
            elif actual == 0:
                await self._replace_log(conn, thread_id, None)
            await conn.execute(_PUT_RUN, self._params(**run_columns))
            return actual + len(messages)

        return await self._write(work)

    async def load_checkpoint(self, thread_id: str) -> CheckpointSnapshot | None:
        """View, version, latest run and state from one statement (CKP-5)."""
        if not _sendable(_str(thread_id, "thread_id")):
            return None
        row = await self._row(
            "SELECT ARRAY(SELECT body FROM messages WHERE store = %(store)s AND thread_id = %(thread)s ORDER BY seq), "
            f"({_LATEST_RUN}), "
            "(SELECT body FROM states WHERE store = %(store)s AND thread_id = %(thread)s)",
            thread=thread_id,
        )
        assert row is not None
        bodies, latest, state = row
        if not bodies and latest is None:
            return None
        raw = [_message(body) for body in bodies]
        return CheckpointSnapshot(
            messages=effective_committed_view(raw, thread_id),
            message_version=len(raw),
            latest_run=None if latest is None else _run(latest),
            thread_state=None if state is None else PersistedState.from_json(json.loads(state)),
        )


async def make_store(location: str | None = None) -> PostgresStore:
    """The kit's factory: a store at `location` in this process's scratch schema, on `$CONFORMANCE_PG_DSN`.

    Commits do not wait for the WAL flush (`synchronous_commit=False`): the kit checks
    behaviour across close and reopen, which that keeps, not crash recovery.

        python -m conformance --store examples/postgres_store.py:make_store
    """
    return await PostgresStore.open(location=location, scratch=True, synchronous_commit=False)


# The kit calls it once at the end of its session, with every location it opened (mypy knows no function attributes).
make_store.cleanup = drop_stores  # type: ignore[attr-defined]
