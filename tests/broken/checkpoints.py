"""Broken stores for checkpoints: each breaks one of CKP-1..6."""

from __future__ import annotations

from dataclasses import replace

from broken import Broken
from conformance import (
    CheckpointSnapshot,
    Message,
    RunRecord,
    RunStatus,
    Thread,
    ThreadMetadata,
    ValidationError,
    VersionConflictError,
    apply_run_projection,
    effective_committed_view,
    now_ms,
    strip_unpaired_tool_calls,
    validate_message_delta,
)
from reference_store import ReferenceStore
from reference_store._log import MessageLog
from reference_store._store import _count


def _checked_version(expected_version: int | None) -> None:
    """Refuse a negative or non-integer `expected_version` as the reference store does, so that is not the bug."""
    if expected_version is not None:
        _count(expected_version, "expected_version")


class CheckpointSkipsHierarchy(ReferenceStore):
    """`checkpoint` validates run and messages but never walks the parent's hierarchy."""

    async def checkpoint(self, thread_id: str, messages: list[Message], run: RunRecord) -> None:
        run.validate_for_persist()
        validate_message_delta((), 1, messages)
        async with self._lock:
            existing = self._threads.threads.get(thread_id)
            thread = existing.copy() if existing is not None else Thread(id=thread_id)
            now = now_ms()
            if thread.metadata.created_at is None:
                thread.metadata.created_at = now
            thread.metadata.updated_at = now
            self._threads.put(apply_run_projection(thread, run))
            self._replace_log(thread_id, messages)
            self._runs.put(run.copy())


class CheckpointValidatesMessagesLate(ReferenceStore):
    """`checkpoint` writes the thread and the run, then validates the messages and raises half-done."""

    async def checkpoint(self, thread_id: str, messages: list[Message], run: RunRecord) -> None:
        async with self._lock:
            projected = self._prepare_checkpoint(thread_id, run)
            self._threads.put(projected)
            self._runs.put(run.copy())
            validate_message_delta((), 1, messages)
            self._replace_log(thread_id, messages)


class CheckpointAcceptsForeignRun(ReferenceStore):
    """`checkpoint` stores a run of another thread and projects it onto the checkpointed one, as upstream does."""

    async def checkpoint(self, thread_id: str, messages: list[Message], run: RunRecord) -> None:
        async with self._lock:
            projected = self._prepare_checkpoint(thread_id, replace(run, thread_id=thread_id))
            validate_message_delta((), 1, messages)
            self._threads.put(projected)
            self._replace_log(thread_id, messages)
            self._runs.put(run.copy())


class AppendAcceptsForeignRun(ReferenceStore):
    """`checkpoint_append` stores a run of another thread and projects it onto the appended one."""

    async def checkpoint_append(
        self, thread_id: str, messages: list[Message], expected_version: int | None, run: RunRecord
    ) -> int:
        if run.thread_id == thread_id:
            return await super().checkpoint_append(thread_id, messages, expected_version, run)
        async with self._lock:
            projected = self._prepare_checkpoint(thread_id, replace(run, thread_id=thread_id))
            log = self._logs.get(thread_id)
            actual = len(log) if log is not None else 0
            if expected_version is not None and expected_version != actual:
                raise VersionConflictError(expected_version, actual)
            validate_message_delta(log.positions if log is not None else {}, actual + 1, messages)
            self._threads.put(projected)
            if messages:
                self._logs.setdefault(thread_id, MessageLog()).extend([m.copy() for m in messages])
            self._runs.put(run.copy())
            return actual + len(messages)


class CheckpointKeepsFirstRunWrite(ReferenceStore):
    """The run upsert is `ON CONFLICT DO UPDATE` without `created_at`/`thread_id`: the first write's stay."""

    async def checkpoint(self, thread_id: str, messages: list[Message], run: RunRecord) -> None:
        async with self._lock:
            projected = self._prepare_checkpoint(thread_id, run)
            validate_message_delta((), 1, messages)
            stored = run.copy()
            old = self._runs.runs.get(run.run_id)
            if old is not None:
                stored.created_at = old.created_at
                stored.thread_id = old.thread_id
            self._threads.put(projected)
            self._replace_log(thread_id, messages)
            self._runs.put(stored)


class CheckpointResetsCreatedAt(ReferenceStore):
    """The checkpoint stamps `created_at = now` on every write, not only when it is unset."""

    def _prepare_checkpoint(self, thread_id: str, run: RunRecord) -> Thread:
        projected = super()._prepare_checkpoint(thread_id, run)
        projected.metadata.created_at = projected.metadata.updated_at
        return projected


class CheckpointUpdatesRunInPlace(ReferenceStore):
    """An unchanged `updated_at` updates the run row in place, keeping its old write order for ties."""

    async def checkpoint(self, thread_id: str, messages: list[Message], run: RunRecord) -> None:
        async with self._lock:
            projected = self._prepare_checkpoint(thread_id, run)
            validate_message_delta((), 1, messages)
            self._threads.put(projected)
            self._replace_log(thread_id, messages)
            old = self._runs.runs.get(run.run_id)
            if old is not None and (old.thread_id, old.created_at, old.updated_at) == (
                run.thread_id,
                run.created_at,
                run.updated_at,
            ):
                self._runs.runs[run.run_id] = run.copy()
            else:
                self._runs.put(run.copy())


class CheckpointTouchesParent(ReferenceStore):
    """The checkpoint also bumps the parent thread's `updated_at`, so parents sort as recently active."""

    async def checkpoint(self, thread_id: str, messages: list[Message], run: RunRecord) -> None:
        await super().checkpoint(thread_id, messages, run)
        async with self._lock:
            child = self._threads.threads[thread_id]
            parent = self._threads.threads.get(child.parent_thread_id or "")
            if parent is not None:
                touched = parent.copy()
                touched.metadata = ThreadMetadata(
                    created_at=parent.metadata.created_at,
                    updated_at=now_ms(),
                    title=parent.metadata.title,
                    custom=parent.metadata.custom,
                )
                self._threads.put(touched)


class AppendChecksVersionAfterWrite(ReferenceStore):
    """`checkpoint_append` appends the delta, then compares versions: a conflict leaves the delta written."""

    async def checkpoint_append(
        self, thread_id: str, messages: list[Message], expected_version: int | None, run: RunRecord
    ) -> int:
        async with self._lock:
            projected = self._prepare_checkpoint(thread_id, run)  # run and hierarchy checked first (CKP-1)
            log = self._logs.setdefault(thread_id, MessageLog())
            actual = len(log)
            validate_message_delta(log.positions, actual + 1, messages)
            log.extend([m.copy() for m in messages])
            if not log.messages:
                del self._logs[thread_id]
            if expected_version is not None and expected_version != actual:
                raise VersionConflictError(expected_version, actual)
            self._threads.put(projected)
            self._runs.put(run.copy())
            return actual + len(messages)


class NegativeVersionConflicts(ReferenceStore):
    """A negative `expected_version` differs from every log length, so it raises VersionConflictError."""

    async def checkpoint_append(
        self, thread_id: str, messages: list[Message], expected_version: int | None, run: RunRecord
    ) -> int:
        if expected_version is not None and expected_version < 0:
            log = self._logs.get(thread_id)
            raise VersionConflictError(expected_version, len(log) if log is not None else 0)
        return await super().checkpoint_append(thread_id, messages, expected_version, run)


class AppendChecksVersionFirst(ReferenceStore):
    """`checkpoint_append` checks the version, the delta, then the run and hierarchy (upstream PostgreSQL's order).

    A stale version then hides a run or a parent the checkpoint refuses.
    """

    async def checkpoint_append(
        self, thread_id: str, messages: list[Message], expected_version: int | None, run: RunRecord
    ) -> int:
        _checked_version(expected_version)
        async with self._lock:
            log = self._logs.get(thread_id)
            actual = len(log) if log is not None else 0
            if expected_version is not None and expected_version != actual:
                raise VersionConflictError(expected_version, actual)
            validate_message_delta(log.positions if log is not None else {}, actual + 1, messages)
            self._threads.put(self._prepare_checkpoint(thread_id, run))
            if messages:
                self._logs.setdefault(thread_id, MessageLog()).extend([m.copy() for m in messages])
            self._runs.put(run.copy())
            return actual + len(messages)


class AppendChecksHierarchyAfterVersion(ReferenceStore):
    """`checkpoint_append` checks the run, the version, then the hierarchy (upstream's file store order).

    A stale version then hides a missing parent, though not an invalid run.
    """

    async def checkpoint_append(
        self, thread_id: str, messages: list[Message], expected_version: int | None, run: RunRecord
    ) -> int:
        _checked_version(expected_version)
        run.validate_for_persist()
        if run.thread_id != thread_id:
            raise ValidationError(f"run {run.run_id!r} belongs to thread {run.thread_id!r}, not {thread_id!r}")
        async with self._lock:
            log = self._logs.get(thread_id)
            actual = len(log) if log is not None else 0
            if expected_version is not None and expected_version != actual:
                raise VersionConflictError(expected_version, actual)
            projected = self._prepare_checkpoint(thread_id, run)
            validate_message_delta(log.positions if log is not None else {}, actual + 1, messages)
            self._threads.put(projected)
            if messages:
                self._logs.setdefault(thread_id, MessageLog()).extend([m.copy() for m in messages])
            self._runs.put(run.copy())
            return actual + len(messages)


class AppendValidatesDeltaBeforeVersion(ReferenceStore):
    """`checkpoint_append` checks the run and the hierarchy, then the delta, then the version.

    A bad delta then hides a stale version: the caller is told to fix the messages, not to reload.
    """

    async def checkpoint_append(
        self, thread_id: str, messages: list[Message], expected_version: int | None, run: RunRecord
    ) -> int:
        _checked_version(expected_version)
        async with self._lock:
            projected = self._prepare_checkpoint(thread_id, run)
            log = self._logs.get(thread_id)
            actual = len(log) if log is not None else 0
            validate_message_delta(log.positions if log is not None else {}, actual + 1, messages)
            if expected_version is not None and expected_version != actual:
                raise VersionConflictError(expected_version, actual)
            self._threads.put(projected)
            if messages:
                self._logs.setdefault(thread_id, MessageLog()).extend([m.copy() for m in messages])
            self._runs.put(run.copy())
            return actual + len(messages)


class AppendValidatesOneSeqLate(ReferenceStore):
    """`checkpoint_append` checks each message at one seq past the one it lands on (`version + 2`).

    A summary whose compaction mark ends at its own seq then passes MOD-3.
    """

    start = 2

    async def checkpoint_append(
        self, thread_id: str, messages: list[Message], expected_version: int | None, run: RunRecord
    ) -> int:
        _checked_version(expected_version)
        async with self._lock:
            projected = self._prepare_checkpoint(thread_id, run)
            log = self._logs.get(thread_id)
            actual = len(log) if log is not None else 0
            if expected_version is not None and expected_version != actual:
                raise VersionConflictError(expected_version, actual)
            validate_message_delta(log.positions if log is not None else {}, actual + self.start, messages)
            self._threads.put(projected)
            if messages:
                log = self._logs.setdefault(thread_id, MessageLog())
                log.extend([m.copy() for m in messages])
            self._runs.put(run.copy())
            return actual + len(messages)


class AppendCountsReadView(ReferenceStore):
    """The version guard counts the read view (`len(load_messages)`), not the raw committed log."""

    async def checkpoint_append(
        self, thread_id: str, messages: list[Message], expected_version: int | None, run: RunRecord
    ) -> int:
        view = await self.load_messages(thread_id) or []
        if expected_version is not None and expected_version != len(view):
            raise VersionConflictError(expected_version, len(view))
        return await super().checkpoint_append(thread_id, messages, None, run)


class AppendReturnsViewLength(ReferenceStore):
    """`checkpoint_append` returns the length of the read view after the append, not of the raw log."""

    async def checkpoint_append(
        self, thread_id: str, messages: list[Message], expected_version: int | None, run: RunRecord
    ) -> int:
        await super().checkpoint_append(thread_id, messages, expected_version, run)
        return len(strip_unpaired_tool_calls(await self.load_committed_messages(thread_id) or []))


class AppendTrustsMatchingVersion(ReferenceStore):
    """When `expected_version` matches, the delta is appended without the MSG-5 id and shape checks."""

    async def checkpoint_append(
        self, thread_id: str, messages: list[Message], expected_version: int | None, run: RunRecord
    ) -> int:
        _checked_version(expected_version)
        if expected_version is None:
            return await super().checkpoint_append(thread_id, messages, expected_version, run)
        async with self._lock:
            projected = self._prepare_checkpoint(thread_id, run)
            log = self._logs.get(thread_id)
            actual = len(log) if log is not None else 0
            if expected_version != actual:
                raise VersionConflictError(expected_version, actual)
            self._threads.put(projected)
            if messages:
                log = self._logs.setdefault(thread_id, MessageLog())
                log.extend([m.copy() for m in messages])
            self._runs.put(run.copy())
            return actual + len(messages)


class LoadCheckpointRawLog(ReferenceStore):
    """`load_checkpoint` returns the raw committed log as its messages."""

    async def load_checkpoint(self, thread_id: str) -> CheckpointSnapshot | None:
        found = await super().load_checkpoint(thread_id)
        if found is not None:
            found.messages = await self.load_committed_messages(thread_id) or []
        return found


class LoadCheckpointViewVersion(ReferenceStore):
    """`load_checkpoint` reports the length of the effective view as `message_version`."""

    async def load_checkpoint(self, thread_id: str) -> CheckpointSnapshot | None:
        found = await super().load_checkpoint(thread_id)
        if found is not None:
            found.message_version = len(
                effective_committed_view(await self.load_committed_messages(thread_id) or [], thread_id)
            )
        return found


class ProjectionIgnoresAge(ReferenceStore):
    """The projection never compares `updated_at`: a late write of an older run overwrites a newer one's."""

    def _prepare_checkpoint(self, thread_id: str, run: RunRecord) -> Thread:
        projected = super()._prepare_checkpoint(thread_id, run)
        projected.latest_run_id = run.run_id
        projected.latest_run_updated_at = run.updated_at
        if run.status is RunStatus.RUNNING:
            projected.active_run_id = projected.open_run_id = run.run_id
        elif run.status is not RunStatus.DONE:
            projected.active_run_id, projected.open_run_id = None, run.run_id
        return projected


class ProjectionDoneClearsAll(ReferenceStore):
    """A `done` run clears `active_run_id` and `open_run_id` whichever run they name."""

    def _prepare_checkpoint(self, thread_id: str, run: RunRecord) -> Thread:
        projected = super()._prepare_checkpoint(thread_id, run)
        if run.status is RunStatus.DONE:
            projected.active_run_id = None
            projected.open_run_id = None
        return projected


class AppendValidatesOneSeqEarly(AppendValidatesOneSeqLate):
    """`checkpoint_append` checks each message at one seq before the one it lands on (`version + 0`).

    A summary folding everything up to the seq just before its own is then refused.
    """

    start = 0


ZOO: list[Broken] = [
    Broken(CheckpointSkipsHierarchy, "CKP-1", "checkpoint does not validate the parent's hierarchy"),
    # also ATO-1: a checkpoint refused for its messages leaves the thread and run it wrote first
    Broken(
        CheckpointValidatesMessagesLate,
        "CKP-1",
        "checkpoint writes thread and run before validating messages",
        also=("ATO-1",),
    ),
    Broken(CheckpointAcceptsForeignRun, "CKP-1", "checkpoint accepts a run of another thread"),
    Broken(AppendAcceptsForeignRun, "CKP-1", "checkpoint_append accepts a run of another thread"),
    Broken(CheckpointKeepsFirstRunWrite, "CKP-2", "the run upsert keeps the first write's created_at and thread_id"),
    # also CKP-4: checkpoint_append writes the thread as CKP-2 does (CKP-4), so it resets created_at too
    Broken(
        CheckpointResetsCreatedAt, "CKP-2", "checkpoint overwrites the thread's created_at with now", also=("CKP-4",)
    ),
    # also RUN-3: RUN-3 gives latest_run ties to the run checkpointed last
    Broken(
        CheckpointUpdatesRunInPlace,
        "CKP-2",
        "a checkpointed run keeps its old write order for latest_run ties",
        also=("RUN-3",),
    ),
    # also ATO-3: the parent is bumped in a second write after an await: a cancel between leaves the checkpoint
    # without it
    Broken(CheckpointTouchesParent, "CKP-2", "checkpoint bumps the parent thread's updated_at", also=("ATO-3",)),
    # also ATO-1, CON-1: a refused (conflicting) append leaves its delta (ATO-1); every same-version writer
    # appends (CON-1)
    Broken(
        AppendChecksVersionAfterWrite,
        "CKP-3",
        "checkpoint_append checks the version after appending the delta",
        also=("ATO-1", "CON-1"),
    ),
    # also CON-1: the version is read, then the delta appended unchecked: every same-version writer wins the race
    Broken(
        AppendCountsReadView,
        "CKP-3",
        "checkpoint_append's version counts the read view, not the raw log",
        also=("CON-1",),
    ),
    Broken(AppendChecksVersionFirst, "CKP-3", "checkpoint_append checks the version before the run and hierarchy"),
    Broken(NegativeVersionConflicts, "CKP-3", "a negative expected_version raises VersionConflictError"),
    Broken(AppendChecksHierarchyAfterVersion, "CKP-3", "checkpoint_append checks the hierarchy after the version"),
    Broken(AppendValidatesDeltaBeforeVersion, "CKP-3", "checkpoint_append checks the delta before the version"),
    # also CON-2: the version is read again after the append: concurrent appenders are all told the final length
    Broken(
        AppendReturnsViewLength,
        "CKP-4",
        "checkpoint_append returns the read view's length, not the raw log's",
        also=("CON-2",),
    ),
    Broken(AppendTrustsMatchingVersion, "CKP-4", "checkpoint_append skips MSG-5 when expected_version matches"),
    Broken(AppendValidatesOneSeqLate, "CKP-4", "checkpoint_append checks each message one seq past where it lands"),
    Broken(AppendValidatesOneSeqEarly, "CKP-4", "checkpoint_append checks each message one seq before where it lands"),
    # also VIEW-2: load_checkpoint is where the store folds compaction (VIEW-2): the raw log folds nothing
    Broken(
        LoadCheckpointRawLog,
        "CKP-5",
        "load_checkpoint returns the raw log instead of the effective view",
        also=("VIEW-2",),
    ),
    Broken(LoadCheckpointViewVersion, "CKP-5", "load_checkpoint's message_version is the effective view's length"),
    Broken(ProjectionIgnoresAge, "CKP-6", "an older run overwrites a newer run's projection"),
    Broken(ProjectionDoneClearsAll, "CKP-6", "a done run clears active and open run ids naming other runs"),
]
