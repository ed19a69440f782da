"""Run records with the indexes behind `latest_run` (RUN-3) and `list_runs` (RUN-4)."""

from __future__ import annotations

from bisect import bisect_left, insort
from heapq import merge
from itertools import count

from conformance import RunPage, RunQuery, RunRecord
from conformance._queries import paginate_runs

_Created = tuple[int, str]
_Latest = tuple[int, int, str]


class RunIndex:
    """Stored runs; per thread, ordered by creation and by (updated_at, write order)."""

    __slots__ = ("_created", "_latest", "_thread_ids", "_writes", "_written_at", "runs")

    def __init__(self) -> None:
        self.runs: dict[str, RunRecord] = {}
        self._writes = count(1)
        self._written_at: dict[str, int] = {}
        self._created: dict[str, list[_Created]] = {}
        self._latest: dict[str, list[_Latest]] = {}
        self._thread_ids: list[str] = []

    def put(self, run: RunRecord) -> None:
        """Store `run` (a copy the index may keep), replacing a run of its id; it becomes the last write."""
        old = self.runs.get(run.run_id)
        if old is not None:
            self._unindex(old)
        self.runs[run.run_id] = run
        written = self._written_at[run.run_id] = next(self._writes)
        if run.thread_id not in self._created:
            insort(self._thread_ids, run.thread_id)
        insort(self._created.setdefault(run.thread_id, []), (run.created_at, run.run_id))
        insort(self._latest.setdefault(run.thread_id, []), (run.updated_at, written, run.run_id))

    def _unindex(self, run: RunRecord) -> None:
        created = self._created[run.thread_id]
        del created[bisect_left(created, (run.created_at, run.run_id))]
        latest = self._latest[run.thread_id]
        del latest[bisect_left(latest, (run.updated_at, self._written_at[run.run_id], run.run_id))]
        if not created:
            del self._created[run.thread_id]
            del self._latest[run.thread_id]
            del self._thread_ids[bisect_left(self._thread_ids, run.thread_id)]

    def latest(self, thread_id: str) -> RunRecord | None:
        """The thread's run with the greatest `updated_at`, ties to the last written (not a copy)."""
        latest = self._latest.get(thread_id)
        return self.runs[latest[-1][2]] if latest else None

    def page(self, query: RunQuery) -> RunPage:
        """The page of a normalized query (RUN-4), reading only the threads it can match."""
        if query.thread_id is not None:
            lists = [self._created.get(query.thread_id, [])]
        elif query.id_prefix is not None:
            position = bisect_left(self._thread_ids, query.id_prefix)
            lists = []
            while position < len(self._thread_ids) and self._thread_ids[position].startswith(query.id_prefix):
                lists.append(self._created[self._thread_ids[position]])
                position += 1
        else:
            lists = list(self._created.values())
        ordered = merge(*lists) if len(lists) > 1 else iter(lists[0] if lists else [])
        return paginate_runs((self.runs[run_id] for _, run_id in ordered), query)
