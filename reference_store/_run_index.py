"""Run records with the indexes behind `latest_run` (RUN-3) and `list_runs` (RUN-4)."""

from __future__ import annotations

from collections.abc import Iterator
from heapq import merge
from itertools import count, takewhile

from conformance import RunPage, RunQuery, RunRecord, RunStatus, paginate_runs
from reference_store._sorted import SortedBlocks

_Created = tuple[int, str]
_Latest = tuple[int, int, str]
_Key = tuple[str | None, RunStatus | None]
_NONE = SortedBlocks[_Created]()  # read only: what a filter without runs lists


class RunIndex:
    """Stored runs, ordered by creation per (thread, status) filter and by latest write per thread.

    Every `list_runs` filter on thread and status reads one ascending list, so a page
    costs O(log N + page); an `id_prefix` filter merges the lists of the threads in
    the prefix only.
    """

    __slots__ = ("_created", "_latest", "_thread_ids", "_writes", "_written_at", "runs")

    def __init__(self) -> None:
        self.runs: dict[str, RunRecord] = {}
        self._writes = count(1)
        self._written_at: dict[str, int] = {}
        self._created: dict[_Key, SortedBlocks[_Created]] = {}
        self._latest: dict[str, SortedBlocks[_Latest]] = {}
        self._thread_ids = SortedBlocks[str]()

    @staticmethod
    def _keys(run: RunRecord) -> tuple[_Key, ...]:
        return ((run.thread_id, None), (run.thread_id, run.status), (None, None), (None, run.status))

    def put(self, run: RunRecord) -> None:
        """Store `run` (a copy the index may keep), replacing a run of its id; it becomes the last write."""
        old = self.runs.get(run.run_id)
        if old is not None:
            self._unindex(old)
        self.runs[run.run_id] = run
        written = self._written_at[run.run_id] = next(self._writes)
        if run.thread_id not in self._latest:
            self._thread_ids.add(run.thread_id)
            self._latest[run.thread_id] = SortedBlocks()
        for key in self._keys(run):
            listed = self._created.get(key)
            if listed is None:
                listed = self._created[key] = SortedBlocks()
            listed.add((run.created_at, run.run_id))
        self._latest[run.thread_id].add((run.updated_at, written, run.run_id))

    def _unindex(self, run: RunRecord) -> None:
        entry = (run.created_at, run.run_id)
        for key in self._keys(run):
            listed = self._created[key]
            listed.remove(entry)
            if not listed:
                del self._created[key]
        latest = self._latest[run.thread_id]
        latest.remove((run.updated_at, self._written_at[run.run_id], run.run_id))
        if not latest:
            del self._latest[run.thread_id]
            self._thread_ids.remove(run.thread_id)

    def latest(self, thread_id: str) -> RunRecord | None:
        """The thread's run with the greatest `updated_at`, ties to the last written (not a copy)."""
        latest = self._latest.get(thread_id)
        return self.runs[latest[-1][2]] if latest else None

    def _threads_with_prefix(self, prefix: str) -> Iterator[str]:
        return takewhile(lambda thread_id: thread_id.startswith(prefix), self._thread_ids.from_key(prefix))

    def page(self, query: RunQuery) -> RunPage:
        """The page of a normalized query (RUN-4); the runs are the stored ones, not copies."""
        if query.thread_id is not None or query.id_prefix is None:
            listed = self._created.get((query.thread_id, query.status), _NONE)
            if query.id_prefix is not None and not (query.thread_id or "").startswith(query.id_prefix):
                listed = _NONE
            start = min(query.offset, len(listed))
            end = min(start + query.limit, len(listed))
            chosen = [self.runs[run_id] for _, run_id in listed[start:end]]
            return RunPage(items=chosen, total=len(listed), has_more=end < len(listed))
        lists = [
            self._created.get((thread_id, query.status), _NONE)
            for thread_id in self._threads_with_prefix(query.id_prefix)
        ]
        return paginate_runs((self.runs[run_id] for _, run_id in merge(*lists)), query)
