"""Stores that break the thread rules (THR) and the model rules a store keeps (MOD-1, 2, 5, 6)."""

from __future__ import annotations

import unicodedata
from dataclasses import replace

from broken import Broken
from conformance import (
    Message,
    MessageRecord,
    NotFoundError,
    PersistedState,
    RunRecord,
    StorageIOError,
    Thread,
    ThreadMetadata,
    ValidationError,
    normalize_lineage_id,
)
from reference_store import ReferenceStore


class ParentKeptUnstripped(ReferenceStore):
    """Validates the normalized thread but stores the parent id exactly as given, spaces included."""

    async def save_thread(self, thread: Thread) -> None:
        thread.normalized().validate_for_persist()
        kept = thread.copy()
        kept.resource_id = normalize_lineage_id(kept.resource_id)
        async with self._lock:
            self._threads.put(kept)


class ResourceKeptUnstripped(ReferenceStore):
    """Validates the normalized thread but stores the resource id exactly as given: `"  r "` stays padded."""

    async def save_thread(self, thread: Thread) -> None:
        thread.normalized().validate_for_persist()
        kept = thread.copy()
        kept.parent_thread_id = normalize_lineage_id(kept.parent_thread_id)
        async with self._lock:
            self._threads.put(kept)


class BlankLineageRefused(ReferenceStore):
    """Validates the thread as given, before normalizing (rule set 1.0): a blank resource or parent is refused."""

    async def save_thread(self, thread: Thread) -> None:
        thread.validate_for_persist()
        await super().save_thread(thread)


class BlankLineageAccepted(ReferenceStore):
    """Skips MOD-2 validation: blank ids and self-parents are stored."""

    async def save_thread(self, thread: Thread) -> None:
        async with self._lock:
            self._threads.put(thread.normalized())


class CustomMetadataDropped(ReferenceStore):
    """Persists only the columns it knows: `custom` and `title` are lost."""

    async def save_thread(self, thread: Thread) -> None:
        kept = thread.copy()
        kept.metadata.custom = {}
        kept.metadata.title = None
        await super().save_thread(kept)


class PercentIdsRefused(ReferenceStore):
    """Refuses the portable characters % and \\ with a RuntimeError (a URL-path key store)."""

    async def save_thread(self, thread: Thread) -> None:
        if "%" in thread.id or "\\" in thread.id:
            raise RuntimeError(f"cannot encode {thread.id!r}")
        await super().save_thread(thread)


class TrimmedLogKeys(ReferenceStore):
    """Keys logs by the stripped thread id, as a key-value store that trims keys: "", " " and "   " share one log."""

    async def save_messages(self, thread_id: str, messages: list[Message]) -> None:
        await super().save_messages(thread_id.strip(), messages)

    async def append_message_records(self, thread_id: str, messages: list[Message]) -> list[MessageRecord]:
        return await super().append_message_records(thread_id.strip(), messages)

    async def load_committed_messages(self, thread_id: str) -> list[Message] | None:
        return await super().load_committed_messages(thread_id.strip())


class BlankIdsIOError(ReferenceStore):
    """Refuses a blank thread id on writes with StorageIOError, as upstream's file store does."""

    async def save_messages(self, thread_id: str, messages: list[Message]) -> None:
        if not thread_id.strip():
            raise StorageIOError("thread id cannot be empty")
        await super().save_messages(thread_id, messages)

    async def append_message_records(self, thread_id: str, messages: list[Message]) -> list[MessageRecord]:
        if not thread_id.strip():
            raise StorageIOError("thread id cannot be empty")
        return await super().append_message_records(thread_id, messages)

    async def save_thread_state(self, thread_id: str, state: PersistedState) -> None:
        if not thread_id.strip():
            raise StorageIOError("thread id cannot be empty")
        await super().save_thread_state(thread_id, state)


def _file_name(id: str, label: str) -> None:
    """Refuse `id` as upstream's file backend does (`validate_id`): with StorageIOError, not ValidationError."""
    if not id.strip():
        raise StorageIOError(f"{label} cannot be empty")
    if any(part in id for part in ("/", "\\", "..")) or any(unicodedata.category(c) == "Cc" for c in id):
        raise StorageIOError(f"{label} contains invalid characters: {id!r}")


class IdsAsFileNames(ReferenceStore):
    """Keeps each thread and run in a file named by its id, as upstream's file backend: every call naming a
    blank id, or one holding `/`, `\\`, `..` or a control character, raises StorageIOError (no `any_ids`)."""

    async def save_thread(self, thread: Thread) -> None:
        _file_name(thread.id, "thread id")
        await super().save_thread(thread)

    async def save_thread_validated(self, thread: Thread) -> None:
        _file_name(thread.id, "thread id")
        await super().save_thread_validated(thread)

    async def load_thread(self, thread_id: str) -> Thread | None:
        _file_name(thread_id, "thread id")
        return await super().load_thread(thread_id)

    async def delete_thread(self, thread_id: str) -> None:
        _file_name(thread_id, "thread id")
        await super().delete_thread(thread_id)

    async def save_messages(self, thread_id: str, messages: list[Message]) -> None:
        _file_name(thread_id, "thread id")
        await super().save_messages(thread_id, messages)

    async def append_message_records(self, thread_id: str, messages: list[Message]) -> list[MessageRecord]:
        _file_name(thread_id, "thread id")
        return await super().append_message_records(thread_id, messages)

    async def save_thread_state(self, thread_id: str, state: PersistedState) -> None:
        _file_name(thread_id, "thread id")
        await super().save_thread_state(thread_id, state)

    async def create_run(self, record: RunRecord) -> None:
        _file_name(record.run_id, "run id")
        await super().create_run(record)


class UnstorableIdRefusedOnPlainDelete(ReferenceStore):
    """`delete_thread` refuses an id with NUL as unstorable (ValidationError) instead of deleting nothing."""

    async def delete_thread(self, thread_id: str) -> None:
        if "\x00" in thread_id:
            raise ValidationError(f"cannot store id {thread_id!r}")
        await super().delete_thread(thread_id)


class MissingThreadRaises(ReferenceStore):
    """Raises NotFoundError from load_thread instead of returning None."""

    async def load_thread(self, thread_id: str) -> Thread | None:
        found = await super().load_thread(thread_id)
        if found is None:
            raise NotFoundError(thread_id)
        return found


class SaveIgnoresExisting(ReferenceStore):
    """INSERT OR IGNORE: a second save of an id keeps the first version."""

    async def save_thread(self, thread: Thread) -> None:
        if await self.load_thread(thread.id) is None:
            await super().save_thread(thread)


class MetadataMerged(ReferenceStore):
    """Merges the new metadata into the old one instead of replacing it."""

    async def update_thread_metadata(self, id: str, metadata: ThreadMetadata) -> None:
        old = await self.load_thread(id)
        if old is None:
            raise ValidationError(f"no thread {id!r}")
        merged = old.metadata.copy()
        for name in ("created_at", "updated_at", "title"):
            if getattr(metadata, name) is not None:
                setattr(merged, name, getattr(metadata, name))
        merged.custom.update(metadata.custom)
        await super().update_thread_metadata(id, merged)


class DeleteKeepsLog(ReferenceStore):
    """Deletes the thread record only; its messages stay behind."""

    async def delete_thread(self, thread_id: str) -> None:
        async with self._lock:
            self._threads.drop(thread_id)
            self._states.pop(thread_id, None)


class DeleteKeepsLogLength(ReferenceStore):
    """delete_thread removes the messages but remembers the log's length: a new log continues the old seqs."""

    def __init__(self) -> None:
        super().__init__()
        self._lengths: dict[str, int] = {}

    async def delete_thread(self, thread_id: str) -> None:
        self._lengths[thread_id] = len(await self.load_committed_messages(thread_id) or [])
        await super().delete_thread(thread_id)

    async def append_message_records(self, thread_id: str, messages: list[Message]) -> list[MessageRecord]:
        records = await super().append_message_records(thread_id, messages)
        shift = self._lengths.get(thread_id, 0)
        return [replace(record, seq=record.seq + shift) for record in records]


class OldestFirst(ReferenceStore):
    """Lists threads by activity ascending (an ORDER BY without DESC)."""

    async def list_threads(self, offset: int, limit: int) -> list[str]:
        everything = await super().list_threads(0, 1_000_000)
        return list(reversed(everything))[offset : offset + limit]


class NegativeSlices(ReferenceStore):
    """`list_threads` slices `ids[offset:offset + limit]` unchecked: (-1, 10) lists the oldest thread."""

    async def list_threads(self, offset: int, limit: int) -> list[str]:
        everything = await super().list_threads(0, 1_000_000)
        return everything[offset : offset + limit]


class _SortedBy(ReferenceStore):
    """Lists threads by `activity` descending, then id, instead of THR-5's key; one read under the lock."""

    @staticmethod
    def activity(thread: Thread) -> int:
        """The activity stamp this store sorts by (larger lists first)."""
        metadata = thread.metadata
        return (metadata.updated_at if metadata.updated_at is not None else metadata.created_at) or 0

    #: True sorts ties by id descending instead of ascending.
    ids_descending = False

    async def list_threads(self, offset: int, limit: int) -> list[str]:
        async with self._lock:
            every = list(self._threads.threads.values())
        if self.ids_descending:
            ordered = sorted(every, key=lambda t: (self.activity(t), t.id), reverse=True)
        else:
            ordered = sorted(every, key=lambda t: (-self.activity(t), t.id))
        return [t.id for t in ordered][offset : offset + limit]


class UpdatedAtOnly(_SortedBy):
    """ORDER BY updated_at DESC: a thread with only created_at sorts as 0."""

    @staticmethod
    def activity(thread: Thread) -> int:
        return thread.metadata.updated_at or 0


class LatestOfBothStamps(_SortedBy):
    """ORDER BY GREATEST(created_at, updated_at): a later created_at beats an earlier updated_at."""

    @staticmethod
    def activity(thread: Thread) -> int:
        return max(thread.metadata.created_at or 0, thread.metadata.updated_at or 0)


class CreatedAtFirst(_SortedBy):
    """COALESCE(created_at, updated_at): the fallback taken the wrong way round."""

    @staticmethod
    def activity(thread: Thread) -> int:
        metadata = thread.metadata
        return (metadata.created_at if metadata.created_at is not None else metadata.updated_at) or 0


class UpdatedAtOrCreatedAt(_SortedBy):
    """ORDER BY `updated_at or created_at`: an updated_at of 0 counts as missing, so the created_at wins."""

    @staticmethod
    def activity(thread: Thread) -> int:
        return thread.metadata.updated_at or thread.metadata.created_at or 0


class TiesByIdDescending(_SortedBy):
    """ORDER BY activity DESC, id DESC: ties between equally active threads go the wrong way."""

    ids_descending = True


class FirstStateWins(ReferenceStore):
    """save_thread_state does not overwrite an existing state."""

    async def save_thread_state(self, thread_id: str, state: PersistedState) -> None:
        if await self.load_thread_state(thread_id) is None:
            await super().save_thread_state(thread_id, state)


ZOO = [
    # also THR-2: THR-2 stores the lineage normalized (MOD-1)
    Broken(ParentKeptUnstripped, "MOD-1", "parent ids stored with their spaces", also=("THR-2",)),
    # also THR-2: THR-2 validates (MOD-2) what it saves
    Broken(BlankLineageAccepted, "MOD-2", "blank ids and self-parents accepted", also=("THR-2",)),
    # also MOD-1: MOD-1 is the normalization THR-2 applies
    Broken(ResourceKeptUnstripped, "THR-2", "resource ids stored with their spaces", also=("MOD-1",)),
    # also MOD-1: MOD-1 normalizes a blank lineage id to None
    Broken(BlankLineageRefused, "THR-2", "blank resource or parent refused instead of stored as None", also=("MOD-1",)),
    # also THR-2: the saved thread no longer reads back as saved (THR-2)
    Broken(CustomMetadataDropped, "MOD-5", "metadata.custom and title lost on save", also=("THR-2",)),
    Broken(PercentIdsRefused, "MOD-6", "portable % and \\ refused with RuntimeError"),
    Broken(TrimmedLogKeys, "MOD-6", "logs keyed by the stripped thread id: blank ids share one log"),
    Broken(BlankIdsIOError, "MOD-6", "a blank thread id on a log or state write raises StorageIOError"),
    # also THR-1, THR-4: reading or deleting an id no store can hold (NUL) raises, where those rules say it
    # finds or deletes nothing (the rule wins over MOD-6 there); the blank ids of MOD-2's tests and the portable
    # `\\` and `..` of every other test break MOD-6 alone, their tests not checked past it
    Broken(
        IdsAsFileNames,
        "MOD-6",
        "ids kept as file names: blank ids and /, \\, .., control characters raise StorageIOError",
        capabilities="thread_state,atomic_delete,concurrent_writers,cancel_safe",
        also=("THR-1", "THR-4"),
    ),
    # also THR-3, THR-4: every read of an absent thread raises: a refused update or a delete cannot be seen to
    # leave no thread
    Broken(MissingThreadRaises, "THR-1", "unknown thread raises instead of None", also=("THR-3", "THR-4")),
    Broken(SaveIgnoresExisting, "THR-2", "second save of an id ignored"),
    Broken(MetadataMerged, "THR-3", "metadata merged, not replaced; unknown id raises ValidationError"),
    # also MSG-1: a deleted thread's log reads None; it still reads the old messages
    Broken(DeleteKeepsLog, "THR-4", "delete_thread leaves the message log", also=("MSG-1",)),
    Broken(UnstorableIdRefusedOnPlainDelete, "THR-4", "delete_thread of an id with NUL raises ValidationError"),
    Broken(DeleteKeepsLogLength, "THR-4", "delete_thread keeps the log's length: appends after it continue old seqs"),
    Broken(OldestFirst, "THR-5", "threads listed oldest first"),
    Broken(NegativeSlices, "THR-5", "list_threads slices with a negative offset or limit instead of refusing it"),
    Broken(UpdatedAtOnly, "THR-5", "threads ordered by updated_at only, without the created_at fallback"),
    Broken(LatestOfBothStamps, "THR-5", "threads ordered by the later of created_at and updated_at"),
    Broken(CreatedAtFirst, "THR-5", "threads ordered by created_at, falling back to updated_at"),
    Broken(UpdatedAtOrCreatedAt, "THR-5", "threads ordered by `updated_at or created_at`: updated_at 0 is skipped"),
    Broken(TiesByIdDescending, "THR-5", "equally active threads listed by id descending"),
    Broken(FirstStateWins, "THR-6", "thread state not overwritten"),
]
