"""Broken stores for durability (DUR-1..2): subclasses of the correct `JsonFileStore` with one bug each."""

from __future__ import annotations

import copy
import json
from typing import Any

import anyio
from stores.json_file_store import Data, JsonFileStore

from broken import Broken
from conformance import Message, RunRecord, StorageIOError, VersionConflictError


class StatesInMemory(JsonFileStore):
    """Persists everything but thread states, which it keeps in a dict of the store object, never in the file.

    Within one object every operation sees and changes the states as the file store
    does (delete, checkpoint, rollback); only a reopened or second object has none.
    """

    def __init__(self, location: str) -> None:
        super().__init__(location)
        self._states: dict[str, Any] = {}

    def _load(self) -> Data:
        data = super()._load()
        data["states"] = copy.deepcopy(self._states)
        return data

    def _save(self, data: Data) -> None:
        super()._save({**data, "states": {}})
        self._states = copy.deepcopy(data["states"])


class CachedPerObject(JsonFileStore):
    """Reads the file once, on first use, then serves reads and bases writes on its own copy in memory."""

    def __init__(self, location: str) -> None:
        super().__init__(location)
        self._cache: Data | None = None

    def _load(self) -> Data:
        if self._cache is None:
            self._cache = super()._load()
        return copy.deepcopy(self._cache)

    def _save(self, data: Data) -> None:
        super()._save(data)
        self._cache = copy.deepcopy(data)


class VersionLockedPerObject(JsonFileStore):
    """`checkpoint_append` checks the version under a lock of its own object, then appends in a second call.

    Writers through one object queue on its lock, so CON-1 holds there; writers
    through two objects on the same file both pass the check and both append.
    """

    def __init__(self, location: str) -> None:
        super().__init__(location)
        self._own = anyio.Lock()

    async def checkpoint_append(
        self, thread_id: str, messages: list[Message], expected_version: int | None, run: RunRecord
    ) -> int:
        async with self._own:
            actual = len(await self.load_committed_messages(thread_id) or [])
            if expected_version is not None and expected_version != actual:
                raise VersionConflictError(expected_version, actual)
            return await super().checkpoint_append(thread_id, messages, None, run)


class NulRefused(JsonFileStore):
    """Refuses, with StorageIOError, every write whose JSON holds a NUL character, as a PostgreSQL JSONB column
    does (`unsupported Unicode escape sequence`): text and free JSON cannot carry U+0000 (MOD-5)."""

    def _save(self, data: Data) -> None:
        if "\\u0000" in json.dumps(data):
            raise StorageIOError("unsupported Unicode escape sequence: \\u0000 cannot be converted to text")
        super()._save(data)


ZOO: list[Broken] = [
    # also DUR-2: a second store object on the same file sees no state either
    Broken(
        StatesInMemory, "DUR-1", "thread states live in the store object, so a reopened store has none", also=("DUR-2",)
    ),
    Broken(CachedPerObject, "DUR-2", "each object caches the file at first use and never sees another's writes"),
    Broken(
        VersionLockedPerObject,
        "DUR-2",
        "the version check holds within one store object, not across two on the same file",
        "durable,thread_state,any_ids,concurrent_writers,cancel_safe,atomic_delete",
    ),
    # also THR-2, THR-3, THR-6, RUN-2, CKP-2, CKP-4: a refused write of a valid thread, metadata, state, run or
    # checkpoint fails to write it (MOD-5's fidelity tests blame the write's rule too); DUR-1 and DUR-2, which
    # write the same values only to reopen them, are not checked past MOD-5, and neither is blamed
    Broken(
        NulRefused,
        "MOD-5",
        "NUL in text or free JSON refused with StorageIOError, as JSONB refuses it",
        also=("THR-2", "THR-3", "THR-6", "RUN-2", "CKP-2", "CKP-4"),
    ),
]
