"""Broken stores for isolation and atomicity (ISO-1, ISO-2, ATO-1..3)."""

from __future__ import annotations

import weakref
from typing import ClassVar

import anyio.lowlevel

from broken import Broken
from conformance import (
    AlreadyExistsError,
    Message,
    MessageRecord,
    RunRecord,
    Thread,
    ThreadStore,
    VersionConflictError,
    validate_message_delta,
)
from reference_store import ReferenceStore
from reference_store._log import MessageLog


class KeepsCallersRun(ReferenceStore):
    """`create_run` stores the caller's record itself instead of a copy."""

    async def create_run(self, record: RunRecord) -> None:
        record.validate_for_persist()
        async with self._lock:
            if record.run_id in self._runs.runs:
                raise AlreadyExistsError(f"run {record.run_id!r} already exists")
            self._runs.put(record)


class SharesLoggedMessages(ReferenceStore):
    """`load_committed_messages` copies the list but hands out the stored messages."""

    async def load_committed_messages(self, thread_id: str) -> list[Message] | None:
        async with self._lock:
            found = self._logs.get(thread_id)
            return None if found is None else list(found.messages)


class EmptyLogOnRefusedAppend(ReferenceStore):
    """`append_message_records` creates the thread's log before validating, so a refused append leaves `[]`."""

    async def append_message_records(self, thread_id: str, messages: list[Message]) -> list[MessageRecord]:
        async with self._lock:
            found = self._logs.setdefault(thread_id, MessageLog())
            start_seq = len(found) + 1
            validate_message_delta(found.positions, start_seq, messages)  # refused: the empty log stays
            found.extend([m.copy() for m in messages])
            if not found.messages:
                del self._logs[thread_id]  # an accepted empty delta leaves no log (MSG-1 holds)
            return [found.record(thread_id, seq) for seq in range(start_seq, len(found) + 1)]


class StaleThreadCache(ReferenceStore):
    """`load_thread` caches threads; only `save_thread*` and `delete_thread` invalidate the cache.

    Metadata updates, strategy deletes and checkpoints change threads behind its back.
    """

    def __init__(self) -> None:
        super().__init__()
        self._cache: dict[str, Thread | None] = {}

    async def load_thread(self, thread_id: str) -> Thread | None:
        if thread_id not in self._cache:
            self._cache[thread_id] = await super().load_thread(thread_id)
        cached = self._cache[thread_id]
        return None if cached is None else cached.copy()

    async def save_thread(self, thread: Thread) -> None:
        self._cache.pop(thread.id, None)
        await super().save_thread(thread)

    async def save_thread_validated(self, thread: Thread) -> None:
        self._cache.pop(thread.id, None)
        await super().save_thread_validated(thread)

    async def delete_thread(self, thread_id: str) -> None:
        self._cache.pop(thread_id, None)
        await super().delete_thread(thread_id)


class TwoStepCheckpointAppend(ReferenceStore):
    """`checkpoint_append` appends the messages, awaits, then writes the thread and run (two round trips)."""

    async def checkpoint_append(
        self, thread_id: str, messages: list[Message], expected_version: int | None, run: RunRecord
    ) -> int:
        async with self._lock:
            projected = self._prepare_checkpoint(thread_id, run)
            found = self._logs.get(thread_id)
            actual = len(found) if found is not None else 0
            if expected_version is not None and expected_version != actual:
                raise VersionConflictError(expected_version, actual)
            validate_message_delta(found.positions if found is not None else {}, actual + 1, messages)
            self._logs.setdefault(thread_id, MessageLog()).extend([m.copy() for m in messages])
        await anyio.lowlevel.checkpoint()
        async with self._lock:
            self._threads.put(projected)
            self._runs.put(run.copy())
        return actual + len(messages)


class OneByOneCascade(ReferenceStore):
    """Keeps the base-class default strategy delete, which deletes descendants one call at a time.

    Each delete yields to the event loop first, as a call over the network or to a
    worker thread does, so a cancel can land between two of them.
    """

    delete_thread_with_strategy = ThreadStore.delete_thread_with_strategy

    async def delete_thread(self, thread_id: str) -> None:
        await anyio.lowlevel.checkpoint()
        await super().delete_thread(thread_id)


class DeleteForgetsItsStore(ReferenceStore):
    """`delete_thread` runs in every open store, as a `DELETE ... WHERE id = ?` that forgot `AND store = ?`."""

    _open: ClassVar[weakref.WeakSet[DeleteForgetsItsStore]] = weakref.WeakSet()

    def __init__(self) -> None:
        super().__init__()
        DeleteForgetsItsStore._open.add(self)

    async def delete_thread(self, thread_id: str) -> None:
        for store in list(DeleteForgetsItsStore._open):
            await ReferenceStore.delete_thread(store, thread_id)


ZOO: list[Broken] = [
    Broken(DeleteForgetsItsStore, "ISO-2", "delete_thread deletes the id in every open store, whatever its location"),
    Broken(KeepsCallersRun, "ISO-1", "create_run keeps the caller's record, so mutating it rewrites the run"),
    Broken(SharesLoggedMessages, "ISO-1", "load_committed_messages hands out the stored message objects"),
    Broken(EmptyLogOnRefusedAppend, "ATO-1", "a refused append to an unknown thread leaves an empty log behind"),
    # also DEL-3, CKP-2: a child read before a detach reads back with its old parent (DEL-3); a thread
    # read before a checkpoint reads back without the checkpoint's stamp (CKP-2)
    Broken(
        StaleThreadCache,
        "ATO-2",
        "only save_thread and delete_thread invalidate the load_thread cache",
        also=("DEL-3", "CKP-2"),
    ),
    Broken(TwoStepCheckpointAppend, "ATO-3", "checkpoint_append writes messages and run in two steps with an await"),
    # also DEL-6: deleting one thread per awaited call shows readers a half-deleted tree
    Broken(
        OneByOneCascade,
        "ATO-3",
        "a cascade delete deletes one thread per call, so a cancel leaves a half tree",
        also=("DEL-6",),
    ),
]
