"""Broken stores for concurrent writers (CON-1..3): read-modify-writes with an await in the middle."""

from __future__ import annotations

import anyio.lowlevel

from broken import Broken
from conformance import Message, RunRecord, ThreadRunStore, ThreadStore, VersionConflictError, validate_message_delta
from reference_store import ReferenceStore
from reference_store._log import MessageLog

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
]
