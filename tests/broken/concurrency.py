"""Broken stores for concurrent writers (CON-1..3): read-modify-writes with an await in the middle.

Some lose a race only now and then (`EveryFifthAppendUnlocked`, one round in five) or
only once their connection pool is warm (`_ColdPool` stores, as a Redis store without
WATCH): the kit's races warm the store, start on a barrier and repeat for 32 rounds.

`RedisCheckThenAppend` is the Redis example's store with its guard taken out: it needs
the Redis server, and its entry skips without one.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import anyio.lowlevel

from broken import Broken
from conformance import (
    Message,
    RunRecord,
    Thread,
    ThreadRunStore,
    ThreadStore,
    ValidationError,
    VersionConflictError,
    validate_message_delta,
)
from reference_store import ReferenceStore
from reference_store._log import MessageLog

#: `examples/` is a folder of scripts, not a package: the Redis twin subclasses its store.
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
if str(EXAMPLES) not in sys.path:
    sys.path.append(str(EXAMPLES))

from redis_store import RedisStore, _Batch, _checked_run, _checkpointed, _Delta, server_error  # noqa: E402

#: What the reference store declares: everything but `durable` (its objects share nothing).
REFERENCE = "thread_state,atomic_delete,concurrent_writers,cancel_safe,any_ids"


async def _checked_then_written(
    store: ReferenceStore, thread_id: str, messages: list[Message], expected_version: int | None, run: RunRecord
) -> int:
    """`checkpoint_append` that checks the version under the lock, awaits unlocked, then appends and writes."""
    async with store._lock:
        store._prepare_checkpoint(thread_id, run)  # the run and hierarchy first, as CKP-3 orders the checks
        found = store._logs.get(thread_id)
        actual = len(found) if found is not None else 0
        if expected_version is not None and expected_version != actual:
            raise VersionConflictError(expected_version, actual)
    await anyio.lowlevel.checkpoint()
    async with store._lock:
        found = store._logs.setdefault(thread_id, MessageLog())
        validate_message_delta(found.positions, len(found) + 1, messages)
        store._threads.put(store._prepare_checkpoint(thread_id, run))
        found.extend([m.copy() for m in messages])
        store._runs.put(run.copy())
        return len(found)


class VersionCheckedBeforeAwait(ReferenceStore):
    """`checkpoint_append` checks the version, awaits (a second round trip), then appends and writes."""

    async def checkpoint_append(
        self, thread_id: str, messages: list[Message], expected_version: int | None, run: RunRecord
    ) -> int:
        return await _checked_then_written(self, thread_id, messages, expected_version, run)


class ReadThenCheckpoint(ReferenceStore):
    """Keeps the base-class default `checkpoint_append`: read the log, then `checkpoint` the merged log."""

    checkpoint_append = ThreadRunStore.checkpoint_append


class ReadThenSaveMessages(ReferenceStore):
    """Keeps the base-class default `append_message_records`: read the log, then `save_messages` it whole."""

    append_message_records = ThreadStore.append_message_records


class CheckThenSaveThread(ReferenceStore):
    """Keeps the base-class default `save_thread_validated`: check the hierarchy, then save, in two calls."""

    save_thread_validated = ThreadStore.save_thread_validated


class EveryFifthAppendUnlocked(ReferenceStore):
    """Every fifth `checkpoint_append` lets go of the lock for one await between its version check and its write.

    The other four in five are atomic, so a race is lost only when the fifth call is the
    first to check the version in its race: one round in five of the kit's version races
    (8 writers a round, 8 and 5 coprime). A single race, as the kit ran before, misses it.
    """

    def __init__(self) -> None:
        super().__init__()
        self._appends = 0

    async def checkpoint_append(
        self, thread_id: str, messages: list[Message], expected_version: int | None, run: RunRecord
    ) -> int:
        self._appends += 1
        if self._appends % 5:
            return await super().checkpoint_append(thread_id, messages, expected_version, run)
        return await _checked_then_written(self, thread_id, messages, expected_version, run)


#: Round trips it takes a `_ColdPool` to open a connection.
CONNECT_TRIPS = 4


async def _round_trip() -> None:
    """One command to the server and its reply: the task yields once."""
    await anyio.lowlevel.checkpoint()


class _ColdPool(ReferenceStore):
    """A store behind a connection pool that opens connections one at a time, on demand, and keeps them.

    An idle connection is handed out at once, else a new one is opened in
    `CONNECT_TRIPS` round trips, after those already being opened. Reads go through
    the pool; a subclass sends one write as two commands on one connection (a check,
    then a write) with nothing watching in between. While the pool is cold, the first
    caller runs its whole transaction while the next is still connecting, so a race
    on a fresh store never overlaps; warmed by concurrent
    reads, the pool hands every racer a connection at once.
    """

    def __init__(self) -> None:
        super().__init__()
        self._idle = 0
        self._opening = anyio.Lock()

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[None]:
        if self._idle:
            self._idle -= 1
        else:
            async with self._opening:
                for _ in range(CONNECT_TRIPS):
                    await _round_trip()
        try:
            yield
        finally:
            self._idle += 1

    async def load_thread(self, thread_id: str) -> Thread | None:
        async with self._connection():
            await _round_trip()
            return await super().load_thread(thread_id)

    async def list_threads(self, offset: int, limit: int) -> list[str]:
        async with self._connection():
            await _round_trip()
            return await super().list_threads(offset, limit)


class ColdPoolVersionWithoutWatch(_ColdPool):
    """`checkpoint_append` GETs the version, then writes in a second command, without WATCH (no optimistic lock)."""

    async def checkpoint_append(
        self, thread_id: str, messages: list[Message], expected_version: int | None, run: RunRecord
    ) -> int:
        async with self._connection():
            await _round_trip()
            self._prepare_checkpoint(thread_id, run)
            found = self._logs.get(thread_id)
            actual = len(found) if found is not None else 0
            if expected_version is not None and expected_version != actual:
                raise VersionConflictError(expected_version, actual)
            await _round_trip()  # MULTI ... EXEC: applied whatever happened since the GET
            found = self._logs.setdefault(thread_id, MessageLog())
            validate_message_delta(found.positions, len(found) + 1, messages)
            self._threads.put(self._prepare_checkpoint(thread_id, run))
            found.extend([m.copy() for m in messages])
            self._runs.put(run.copy())
            return len(found)


class ColdPoolHierarchyWithoutWatch(_ColdPool):
    """`save_thread_validated` reads the ancestors and checks them, then SETs the thread in a second command."""

    async def save_thread_validated(self, thread: Thread) -> None:
        normalized = thread.normalized()
        normalized.validate_for_persist()
        async with self._connection():
            await _round_trip()
            self._check_hierarchy(normalized.id, normalized.parent_thread_id)
            await _round_trip()
            self._threads.put(normalized)


class RedisCheckThenAppend(RedisStore):
    """`checkpoint_append` reads the log's length, checks the version, then writes without a guard.

    The race window of a Redis backend that reads, then writes in a second command
    (no `WATCH`, no script that checks): every writer that read the same length passes
    the check, and every one appends; each returns the version it computed from its read.
    """

    def __init__(self, location: str | None = None) -> None:
        super().__init__(location=location, scratch=True)

    async def checkpoint_append(
        self, thread_id: str, messages: list[Message], expected_version: int | None, run: RunRecord
    ) -> int:
        if expected_version is not None and expected_version < 0:
            raise ValidationError(f"argument 'expected_version' must be an integer >= 0, got {expected_version}")
        _checked_run(thread_id, run)
        existing, _ = await self._checkpoint_read(thread_id, run)  # the run and hierarchy first, as CKP-3 orders
        actual = int(await self._command("LLEN", self._key(b"m", thread_id)))
        if expected_version is not None and expected_version != actual:
            raise VersionConflictError(expected_version, actual)
        delta = _Delta(list(messages))
        batch = _Batch()  # the bug: no guard, so nothing checks that the version read still holds
        batch.append(thread_id, None, delta)
        batch.put_thread(_checkpointed(thread_id, existing, run))
        batch.put_run(run)
        reply = await self._apply(batch)
        if reply[0] == b"delta":
            delta.refused(int(reply[1]), reply[2:])
        return actual + len(messages)


def redis_unavailable() -> str | None:
    """Why the Redis twin cannot run here: no server answers (`$CONFORMANCE_REDIS_URL`), or None."""
    error = server_error()
    return None if error is None else f"no Redis server ({error}); see examples/test_redis_conformance.py"


ZOO: list[Broken] = [
    Broken(VersionCheckedBeforeAwait, "CON-1", "the version is checked, then an await, then the append", REFERENCE),
    # also CON-2: one bug, two rules: the read-then-write race loses appends with or without a version
    Broken(
        ReadThenCheckpoint,
        "CON-1",
        "checkpoint_append reads the log and checkpoints it back whole",
        REFERENCE,
        also=("CON-2",),
    ),
    # also CON-1: one bug, two rules: the read-then-write race lets several same-version appends win
    Broken(
        ReadThenCheckpoint,
        "CON-2",
        "unversioned checkpoint_append loses the appends it did not read",
        REFERENCE,
        also=("CON-1",),
    ),
    Broken(ReadThenSaveMessages, "CON-2", "append_message_records reads the log and saves it back whole", REFERENCE),
    Broken(
        CheckThenSaveThread, "CON-3", "save_thread_validated checks the hierarchy and saves in two steps", REFERENCE
    ),
    Broken(
        EveryFifthAppendUnlocked,
        "CON-1",
        "every fifth checkpoint_append checks the version, awaits unlocked, then writes",
        REFERENCE,
    ),
    Broken(
        ColdPoolVersionWithoutWatch,
        "CON-1",
        "checkpoint_append checks the version and writes in two commands, behind a pool that starts cold",
        REFERENCE,
    ),
    Broken(
        ColdPoolHierarchyWithoutWatch,
        "CON-3",
        "save_thread_validated checks and saves in two commands, behind a pool that starts cold",
        REFERENCE,
    ),
    # also CON-1: the same stale read lets every same-version writer pass the check; the kit's races
    # warm the connection pool first (with a cold one, each writer's connection set-up spaced the
    # racers out enough that the first one read, checked and appended before the others read).
    Broken(
        RedisCheckThenAppend,
        "CON-2",
        "the Redis store's checkpoint_append reads the version, appends without a guard, returns read + delta",
        also=("CON-1",),
        unavailable=redis_unavailable,
    ),
]
