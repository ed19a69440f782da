"""Broken stores of the delete area: each breaks one of DEL-1..6."""

from __future__ import annotations

import time

from broken import Broken
from conformance import (
    ChildThreadDeleteStrategy,
    NotFoundError,
    ThreadMetadata,
    ThreadStore,
    ValidationError,
)
from conformance.contract._stores import delete_strategy
from reference_store import ReferenceStore

REJECT = ChildThreadDeleteStrategy.REJECT
DETACH = ChildThreadDeleteStrategy.DETACH
CASCADE = ChildThreadDeleteStrategy.CASCADE


class UnknownIdIgnored(ReferenceStore):
    """Runs `DELETE ... WHERE id = $1` and never checks that a row was there."""

    async def delete_thread_with_strategy(self, thread_id: str, strategy: ChildThreadDeleteStrategy = DETACH) -> None:
        if await self.load_thread(thread_id) is None:
            return
        await super().delete_thread_with_strategy(thread_id, strategy)


class RejectChecksAfterDeleting(ReferenceStore):
    """Deletes first and looks for children after, raising without putting the thread back."""

    async def delete_thread_with_strategy(self, thread_id: str, strategy: ChildThreadDeleteStrategy = DETACH) -> None:
        if delete_strategy(strategy) is not REJECT:
            await super().delete_thread_with_strategy(thread_id, strategy)
            return
        if await self.load_thread(thread_id) is None:
            raise NotFoundError(f"thread {thread_id!r} not found")
        await self.delete_thread(thread_id)
        if await self.list_child_threads(thread_id):
            raise ValidationError(f"thread {thread_id!r} has child threads")


class RejectLeavesState(ReferenceStore):
    """Deletes a childless thread's record and log under reject but leaves its thread state behind."""

    async def delete_thread_with_strategy(self, thread_id: str, strategy: ChildThreadDeleteStrategy = DETACH) -> None:
        if delete_strategy(strategy) is not REJECT:
            await super().delete_thread_with_strategy(thread_id, strategy)
            return
        async with self._lock:
            if thread_id not in self._threads.threads:
                raise NotFoundError(f"thread {thread_id!r} not found")
            if self._threads.children(thread_id):
                raise ValidationError(f"thread {thread_id!r} has child threads")
            self._threads.drop(thread_id)
            self._logs.pop(thread_id, None)


class _Detach(ReferenceStore):
    """Detach done by hand under the lock; subclasses get the child's new metadata wrong."""

    def detached_metadata(self, metadata: ThreadMetadata) -> ThreadMetadata:
        raise NotImplementedError

    async def delete_thread_with_strategy(self, thread_id: str, strategy: ChildThreadDeleteStrategy = DETACH) -> None:
        if delete_strategy(strategy) is not DETACH:
            await super().delete_thread_with_strategy(thread_id, strategy)
            return
        async with self._lock:
            if thread_id not in self._threads.threads:
                raise NotFoundError(f"thread {thread_id!r} not found")
            for child in [c.copy() for c in self._threads.children(thread_id)]:
                child.parent_thread_id = None
                child.metadata = self.detached_metadata(child.metadata)
                self._threads.put(child)
            self._drop_thread(thread_id)


class DetachKeepsUpdatedAt(_Detach):
    """Clears each child's parent but leaves its updated_at as it was."""

    def detached_metadata(self, metadata: ThreadMetadata) -> ThreadMetadata:
        return metadata


class DetachStampsSeconds(_Detach):
    """Stamps the detached children's updated_at in unix seconds instead of milliseconds."""

    def detached_metadata(self, metadata: ThreadMetadata) -> ThreadMetadata:
        metadata.updated_at = int(time.time())
        return metadata


class DetachRebuildsMetadata(_Detach):
    """Writes the children a fresh metadata holding only updated_at, losing created_at, title and custom."""

    def detached_metadata(self, metadata: ThreadMetadata) -> ThreadMetadata:
        return ThreadMetadata(updated_at=time.time_ns() // 1_000_000)


class DetachStampsCreatedAt(_Detach):
    """Stamps both timestamps of a detached child with now, as `SET created_at = $now, updated_at = $now` does."""

    def detached_metadata(self, metadata: ThreadMetadata) -> ThreadMetadata:
        metadata.created_at = metadata.updated_at = time.time_ns() // 1_000_000
        return metadata


class DetachDropsOnlyTheRecord(ReferenceStore):
    """Detaches the children, then deletes the thread's record but not its log and state."""

    async def delete_thread_with_strategy(self, thread_id: str, strategy: ChildThreadDeleteStrategy = DETACH) -> None:
        if delete_strategy(strategy) is not DETACH:
            await super().delete_thread_with_strategy(thread_id, strategy)
            return
        async with self._lock:
            if thread_id not in self._threads.threads:
                raise NotFoundError(f"thread {thread_id!r} not found")
            now = time.time_ns() // 1_000_000
            for child in [c.copy() for c in self._threads.children(thread_id)]:
                child.parent_thread_id = None
                child.metadata.updated_at = now
                self._threads.put(child)
            self._threads.drop(thread_id)


class CascadeOneLevel(ReferenceStore):
    """Cascades to the direct children only, as one `DELETE ... WHERE id = $1 OR parent = $1` does."""

    async def delete_thread_with_strategy(self, thread_id: str, strategy: ChildThreadDeleteStrategy = DETACH) -> None:
        if delete_strategy(strategy) is not CASCADE:
            await super().delete_thread_with_strategy(thread_id, strategy)
            return
        async with self._lock:
            if thread_id not in self._threads.threads:
                raise NotFoundError(f"thread {thread_id!r} not found")
            for child in self._threads.children(thread_id):
                self._drop_thread(child.id)
            self._drop_thread(thread_id)


class CascadeLeavesState(ReferenceStore):
    """Cascades over the whole subtree, cycles refused, but drops only records and logs, leaving states behind."""

    async def delete_thread_with_strategy(self, thread_id: str, strategy: ChildThreadDeleteStrategy = DETACH) -> None:
        if delete_strategy(strategy) is not CASCADE:
            await super().delete_thread_with_strategy(thread_id, strategy)
            return
        async with self._lock:
            if thread_id not in self._threads.threads:
                raise NotFoundError(f"thread {thread_id!r} not found")
            for doomed_id in self._subtree(thread_id):
                self._threads.drop(doomed_id)
                self._logs.pop(doomed_id, None)


class _Cascade(ReferenceStore):
    """Cascade as a walk over `list_child_threads`; subclasses get cycles wrong."""

    async def cascade(self, thread_id: str) -> None:
        raise NotImplementedError

    async def delete_thread_with_strategy(self, thread_id: str, strategy: ChildThreadDeleteStrategy = DETACH) -> None:
        if delete_strategy(strategy) is not CASCADE:
            await super().delete_thread_with_strategy(thread_id, strategy)
            return
        if await self.load_thread(thread_id) is None:
            raise NotFoundError(f"thread {thread_id!r} not found")
        await self.cascade(thread_id)


class CascadeLoopsOnCycle(_Cascade):
    """Collects descendants without a visited set: a cycle is walked forever."""

    async def cascade(self, thread_id: str) -> None:
        doomed: list[str] = []
        pending = [thread_id]
        while pending:
            current = pending.pop()
            doomed.append(current)
            pending += [child.id for child in await self.list_child_threads(current)]
        for doomed_id in reversed(doomed):
            await self.delete_thread(doomed_id)


class CascadeSkipsRepeats(_Cascade):
    """Skips a thread it has already seen instead of refusing the cycle, deleting the whole loop."""

    async def cascade(self, thread_id: str) -> None:
        seen: set[str] = set()
        pending = [thread_id]
        while pending:
            current = pending.pop()
            if current in seen:
                continue
            seen.add(current)
            pending += [child.id for child in await self.list_child_threads(current)]
        for doomed_id in seen:
            await self.delete_thread(doomed_id)


class CascadeDeletesWhileWalking(_Cascade):
    """Deletes each thread as it is reached, so a cycle is found (if at all) after part is gone."""

    async def cascade(self, thread_id: str) -> None:
        seen: set[str] = set()
        pending = [thread_id]
        while pending:
            current = pending.pop()
            if current in seen:
                raise ValidationError(f"cycle at {current!r}")
            seen.add(current)
            pending += [child.id for child in await self.list_child_threads(current)]
            await self.delete_thread(current)


class SeedDefaultDelete(ReferenceStore):
    """Uses the seed's default strategy delete, which awaits between the writes of one delete."""

    async def delete_thread_with_strategy(self, thread_id: str, strategy: ChildThreadDeleteStrategy = DETACH) -> None:
        await ThreadStore.delete_thread_with_strategy(self, thread_id, strategy)


class DetachInTwoStatements(ReferenceStore):
    """Clears the children's parents in one statement, then stamps them and deletes the thread in another."""

    async def delete_thread_with_strategy(self, thread_id: str, strategy: ChildThreadDeleteStrategy = DETACH) -> None:
        if delete_strategy(strategy) is not DETACH:
            await super().delete_thread_with_strategy(thread_id, strategy)
            return
        async with self._lock:
            if thread_id not in self._threads.threads:
                raise NotFoundError(f"thread {thread_id!r} not found")
            children = [c.copy() for c in self._threads.children(thread_id)]
            for child in children:
                child.parent_thread_id = None
                self._threads.put(child.copy())
        async with self._lock:
            now = time.time_ns() // 1_000_000
            for child in children:
                child.metadata.updated_at = now
                self._threads.put(child)
            self._drop_thread(thread_id)


class UnstorableIdRefusedOnDelete(ReferenceStore):
    """A strategy delete binds the id first, so one SQLite cannot encode raises ValidationError, not NotFoundError."""

    async def delete_thread_with_strategy(
        self, thread_id: str, strategy: ChildThreadDeleteStrategy = ChildThreadDeleteStrategy.DETACH
    ) -> None:
        try:
            thread_id.encode()
        except UnicodeEncodeError:
            raise ValidationError(f"cannot store id {thread_id!r}") from None
        await super().delete_thread_with_strategy(thread_id, strategy)


ZOO: list[Broken] = [
    Broken(UnknownIdIgnored, "DEL-1", "deleting an unknown id returns silently instead of raising NotFoundError"),
    Broken(UnstorableIdRefusedOnDelete, "DEL-1", "a strategy delete of a lone-surrogate id raises ValidationError"),
    # also ATO-1: the refused reject has already deleted the thread
    Broken(
        RejectChecksAfterDeleting,
        "DEL-2",
        "reject deletes the thread before finding its children, then raises",
        also=("ATO-1",),
    ),
    Broken(RejectLeavesState, "DEL-2", "reject deletes a childless thread but leaves its thread state"),
    Broken(DetachKeepsUpdatedAt, "DEL-3", "detached children keep their old updated_at"),
    Broken(DetachStampsSeconds, "DEL-3", "detached children get updated_at in seconds, not milliseconds"),
    Broken(DetachRebuildsMetadata, "DEL-3", "detached children lose created_at, title and custom"),
    Broken(DetachStampsCreatedAt, "DEL-3", "detach also sets the children's created_at to now"),
    Broken(DetachDropsOnlyTheRecord, "DEL-3", "detach deletes the thread record but leaves its log and state"),
    # also DEL-5: one DELETE of the children walks no cycle, so a cascade over one deletes and does not raise
    Broken(
        CascadeOneLevel, "DEL-4", "cascade deletes the direct children only; grandchildren survive", also=("DEL-5",)
    ),
    Broken(CascadeLeavesState, "DEL-4", "cascade leaves the thread state of every deleted thread behind"),
    # (it hangs in ATO-1's test of the refused cascade too: that call answers to DEL-5, which the hang blames)
    Broken(CascadeLoopsOnCycle, "DEL-5", "cascade has no visited set and walks a cycle forever"),
    # also DEL-6: the walk awaits list_child_threads and deletes one thread per call, so readers see a half-
    # deleted tree
    # also ATO-3: it awaits between the deletes of the subtree: a cancel between leaves it half deleted
    Broken(
        CascadeSkipsRepeats,
        "DEL-5",
        "cascade skips a repeated thread instead of refusing the cycle",
        also=("DEL-6", "ATO-3"),
    ),
    # also ATO-1, DEL-6: the refused cascade has deleted part of the cycle (ATO-1); it deletes one thread per
    # awaited call (DEL-6)
    # also ATO-3: it deletes as it walks, awaiting between: a cancel leaves the subtree half deleted
    Broken(
        CascadeDeletesWhileWalking,
        "DEL-5",
        "cascade deletes as it walks, so a cycle is left half deleted",
        also=("ATO-1", "DEL-6", "ATO-3"),
    ),
    # also ATO-3: it awaits between the deletes of one subtree: a cancel between leaves it half deleted
    Broken(
        SeedDefaultDelete,
        "DEL-6",
        "the seed's default delete awaits between the deletes of one subtree",
        also=("ATO-3",),
    ),
    # also ATO-3: a cancel between the two statements leaves the children detached without their updated_at
    Broken(
        DetachInTwoStatements,
        "DEL-6",
        "detach clears the parents, then stamps updated_at in a second write",
        also=("ATO-3",),
    ),
]
