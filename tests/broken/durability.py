"""Broken stores for durability (DUR-1..2): subclasses of the correct `JsonFileStore` with one bug each."""

from __future__ import annotations

import copy

from stores.json_file_store import Data, JsonFileStore

from broken import Broken
from conformance import PersistedState


class StatesInMemory(JsonFileStore):
    """Persists everything but thread states, which it keeps in a dict of the store object."""

    def __init__(self, location: str) -> None:
        super().__init__(location)
        self._states: dict[str, PersistedState] = {}

    async def save_thread_state(self, thread_id: str, state: PersistedState) -> None:
        self._states[thread_id] = state.copy()

    async def load_thread_state(self, thread_id: str) -> PersistedState | None:
        state = self._states.get(thread_id)
        return None if state is None else state.copy()


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


ZOO: list[Broken] = [
    Broken(StatesInMemory, "DUR-1", "thread states live in the store object, so a reopened store has none"),
    Broken(CachedPerObject, "DUR-2", "each object caches the file at first use and never sees another's writes"),
]
