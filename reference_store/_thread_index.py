"""Threads with the indexes that answer listings without scanning unrelated threads."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from itertools import takewhile
from typing import overload

from conformance import (
    Thread,
    ThreadPage,
    ThreadQuery,
    normalize_lineage_id,
    paginate_thread_ids,
    recent_activity_key,
)
from reference_store._sorted import SortedBlocks


class _ActivityIds(Sequence[str]):
    """A read-only view of the ids in THR-5 order over the activity list."""

    __slots__ = ("_keys",)

    def __init__(self, keys: SortedBlocks[tuple[int, str]]) -> None:
        self._keys = keys

    def __len__(self) -> int:
        return len(self._keys)

    @overload
    def __getitem__(self, index: int) -> str: ...
    @overload
    def __getitem__(self, index: slice) -> list[str]: ...
    def __getitem__(self, index: int | slice) -> str | list[str]:
        if isinstance(index, slice):
            return [thread_id for _, thread_id in self._keys[index]]
        return self._keys[index][1]


class ThreadIndex:
    """Stored threads, ordered by activity (THR-5), by id, by parent and by resource."""

    __slots__ = ("_activity", "_by_parent", "_by_resource", "_ids", "threads")

    def __init__(self) -> None:
        self.threads: dict[str, Thread] = {}
        self._activity = SortedBlocks[tuple[int, str]]()
        self._ids = SortedBlocks[str]()
        self._by_parent: dict[str | None, set[str]] = {}
        self._by_resource: dict[str | None, set[str]] = {}

    def put(self, thread: Thread) -> None:
        """Store `thread` (a copy the index may keep), replacing any thread of its id."""
        old = self.threads.get(thread.id)
        if old is None:
            self._ids.add(thread.id)
        else:
            self._unindex(old)
        self.threads[thread.id] = thread
        self._activity.add(recent_activity_key(thread))
        self._by_parent.setdefault(normalize_lineage_id(thread.parent_thread_id), set()).add(thread.id)
        self._by_resource.setdefault(normalize_lineage_id(thread.resource_id), set()).add(thread.id)

    def drop(self, thread_id: str) -> None:
        """Remove a thread; an unknown id is ignored."""
        old = self.threads.pop(thread_id, None)
        if old is not None:
            self._unindex(old)
            self._ids.remove(thread_id)

    def _unindex(self, thread: Thread) -> None:
        self._activity.remove(recent_activity_key(thread))
        for index, key in (
            (self._by_parent, normalize_lineage_id(thread.parent_thread_id)),
            (self._by_resource, normalize_lineage_id(thread.resource_id)),
        ):
            members = index[key]
            members.discard(thread.id)
            if not members:
                del index[key]

    def children(self, parent_id: str) -> list[Thread]:
        """The stored direct children of `parent_id` (not copies)."""
        return [self.threads[child] for child in self._by_parent.get(parent_id, ())]

    def ids_in_order(self, offset: int, limit: int) -> list[str]:
        """Ids by THR-5 order, from `offset`, at most `limit`."""
        return _ActivityIds(self._activity)[offset : offset + limit]

    def _with_prefix(self, prefix: str) -> Iterator[str]:
        return takewhile(lambda thread_id: thread_id.startswith(prefix), self._ids.from_key(prefix))

    def page(self, query: ThreadQuery) -> ThreadPage:
        """The page of a normalized query (QRY-1..5), from the smallest index that applies."""
        candidates: list[set[str] | list[str]] = []
        if query.parent_filter.kind == "parent":
            candidates.append(self._by_parent.get(query.parent_filter.parent_id, set()))
        elif query.parent_filter.kind == "root":
            candidates.append(self._by_parent.get(None, set()))
        if query.resource_id is not None:
            candidates.append(self._by_resource.get(query.resource_id, set()))
        if query.id_prefix is not None:
            candidates.append(list(self._with_prefix(query.id_prefix)))
        if not candidates:
            return paginate_thread_ids(_ActivityIds(self._activity), query)
        smallest = min(candidates, key=len)
        matching = [self.threads[i] for i in smallest if query.matches(self.threads[i])]
        matching.sort(key=recent_activity_key)
        return paginate_thread_ids([thread.id for thread in matching], query)
