"""Broken stores for concurrent writers (CON-1..3): read-modify-writes with an await in the middle.

`RedisCheckThenAppend` is the Redis example's store with its guard taken out: it needs
the Redis server, and its entry skips without one.
"""

from __future__ import annotations

import sys
from pathlib import Path

import anyio.lowlevel

from broken import Broken
from conformance import (
    Message,
    RunRecord,
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


class VersionCheckedBeforeAwait(ReferenceStore):
    """`checkpoint_append` checks the version, awaits (a second round trip), then appends and writes."""

    async def checkpoint_append(
        self, thread_id: str, messages: list[Message], expected_version: int | None, run: RunRecord
    ) -> int:
        async with self._lock:
            self._prepare_checkpoint(thread_id, run)  # the run and hierarchy first, as CKP-3 orders the checks
            found = self._logs.get(thread_id)
            actual = len(found) if found is not None else 0
            if expected_version is not None and expected_version != actual:
                raise VersionConflictError(expected_version, actual)
        await anyio.lowlevel.checkpoint()
        async with self._lock:
            found = self._logs.setdefault(thread_id, MessageLog())
            validate_message_delta(found.positions, len(found) + 1, messages)
            self._threads.put(self._prepare_checkpoint(thread_id, run))
            found.extend([m.copy() for m in messages])
            self._runs.put(run.copy())
            return len(found)


class ReadThenCheckpoint(ReferenceStore):
    """Keeps the base-class default `checkpoint_append`: read the log, then `checkpoint` the merged log."""

    checkpoint_append = ThreadRunStore.checkpoint_append


class ReadThenSaveMessages(ReferenceStore):
    """Keeps the base-class default `append_message_records`: read the log, then `save_messages` it whole."""

    append_message_records = ThreadStore.append_message_records


class CheckThenSaveThread(ReferenceStore):
    """Keeps the base-class default `save_thread_validated`: check the hierarchy, then save, in two calls."""

    save_thread_validated = ThreadStore.save_thread_validated


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
    # also CON-1: the same stale read lets every same-version writer pass the check. Caught when
    # the racers start on a warm connection pool; with a cold one, each writer's connection set-up
    # spaces the racers out enough that the first one reads, checks and appends before the others read.
    Broken(
        RedisCheckThenAppend,
        "CON-2",
        "the Redis store's checkpoint_append reads the version, appends without a guard, returns read + delta",
        also=("CON-1",),
        unavailable=redis_unavailable,
    ),
]
