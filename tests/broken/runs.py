"""Broken stores for run records: each breaks one of RUN-1..4 or MOD-4."""

from __future__ import annotations

from dataclasses import replace

from broken import Broken
from conformance import AlreadyExistsError, NotFoundError, RunPage, RunQuery, RunRecord, StorageIOError
from reference_store import ReferenceStore


def _page(matching: list[RunRecord], query: RunQuery, limit: int) -> RunPage:
    start = min(query.offset, len(matching))
    end = min(start + limit, len(matching))
    return RunPage(items=[r.copy() for r in matching[start:end]], total=len(matching), has_more=end < len(matching))


class CreateRunOverwrites(ReferenceStore):
    """`create_run` is an upsert (`INSERT OR REPLACE`): a second create replaces the first run."""

    async def create_run(self, record: RunRecord) -> None:
        record.validate_for_persist()
        async with self._lock:
            self._runs.put(record.copy())


class CreateRunUnvalidated(ReferenceStore):
    """`create_run` trusts the caller and stores runs that break MOD-4."""

    async def create_run(self, record: RunRecord) -> None:
        async with self._lock:
            if record.run_id in self._runs.runs:
                raise AlreadyExistsError(f"run {record.run_id!r} already exists")
            self._runs.put(record.copy())


class NegativeRunNumbersStored(ReferenceStore):
    """`create_run` checks every MOD-4 shape but the signs of its numbers: a run created at -1 is stored."""

    async def create_run(self, record: RunRecord) -> None:
        positive = record.copy()
        for name in ("created_at", "updated_at", "started_at", "finished_at", "steps", "input_tokens", "output_tokens"):
            if (number := getattr(positive, name)) is not None:
                setattr(positive, name, abs(number))
        for part, name in [(positive.request, "input_message_count"), (positive.state, "revision")]:
            if part is not None:
                setattr(part, name, abs(getattr(part, name)))
        if positive.input is not None and positive.input.range is not None:
            positive.input.range.from_seq = abs(positive.input.range.from_seq)
        positive.validate_for_persist()
        async with self._lock:
            if record.run_id in self._runs.runs:
                raise AlreadyExistsError(f"run {record.run_id!r} already exists")
            self._runs.put(record.copy())


class CreateRunIgnoresActivation(ReferenceStore):
    """`create_run` validates everything but the activation: one naming another thread is stored."""

    async def create_run(self, record: RunRecord) -> None:
        replace(record, activation=None).validate_for_persist()
        async with self._lock:
            if record.run_id in self._runs.runs:
                raise AlreadyExistsError(f"run {record.run_id!r} already exists")
            self._runs.put(record.copy())


class LoadRunDropsActivation(ReferenceStore):
    """The run table has no `activation` column: it reads back as None."""

    async def load_run(self, run_id: str) -> RunRecord | None:
        found = await super().load_run(run_id)
        return None if found is None else replace(found, activation=None)


class LoadUnknownRunRaises(ReferenceStore):
    """`load_run` of an unknown id raises `NotFoundError` instead of returning None."""

    async def load_run(self, run_id: str) -> RunRecord | None:
        found = await super().load_run(run_id)
        if found is None:
            raise NotFoundError(f"run {run_id!r} not found")
        return found


class LatestRunFirstWritten(ReferenceStore):
    """`latest_run` is `max(runs, key=updated_at)`: among equal updated_at it keeps the first written."""

    async def latest_run(self, thread_id: str) -> RunRecord | None:
        async with self._lock:
            runs = [r for r in self._runs.runs.values() if r.thread_id == thread_id]
            return max(runs, key=lambda r: r.updated_at).copy() if runs else None


class LatestRunByCreatedAt(ReferenceStore):
    """`latest_run` orders by `created_at` (the newest run), not by `updated_at`."""

    async def latest_run(self, thread_id: str) -> RunRecord | None:
        async with self._lock:
            runs = [r for r in self._runs.runs.values() if r.thread_id == thread_id]
            return max(reversed(runs), key=lambda r: r.created_at).copy() if runs else None


class ListRunsByRunId(ReferenceStore):
    """`list_runs` orders by `run_id` only (`ORDER BY run_id`)."""

    async def list_runs(self, query: RunQuery) -> RunPage:
        normalized = query.normalized()
        async with self._lock:
            matching = sorted((r for r in self._runs.runs.values() if normalized.matches(r)), key=lambda r: r.run_id)
            return _page(matching, normalized, normalized.limit)


class ListRunsTiesUnsortedPastOffset500(ReferenceStore):
    """Orders by `created_at` alone: up to offset 500 the planner's top-N sort happens to break ties by run_id,
    past it a full sort leaves them in write order."""

    async def list_runs(self, query: RunQuery) -> RunPage:
        normalized = query.normalized()
        if normalized.offset <= 500:
            return await super().list_runs(query)
        async with self._lock:
            matching = [r for r in self._runs.runs.values() if normalized.matches(r)]
            return _page(sorted(matching, key=lambda r: r.created_at), normalized, normalized.limit)


class ListRunsTotalCappedAtAThousand(ReferenceStore):
    """Counts matches as `count(*)` over a `LIMIT 1000` subquery: `total` stops at 1,000."""

    async def list_runs(self, query: RunQuery) -> RunPage:
        page = await super().list_runs(query)
        page.total = min(page.total, 1000)
        return page


class ListRunsLimitZeroEmpty(ReferenceStore):
    """`list_runs` caps `limit` at 200 but does not raise 0 to 1: limit 0 returns nothing."""

    async def list_runs(self, query: RunQuery) -> RunPage:
        normalized = query.normalized()
        async with self._lock:
            matching = sorted(
                (r for r in self._runs.runs.values() if normalized.matches(r)), key=lambda r: (r.created_at, r.run_id)
            )
            return _page(matching, normalized, min(query.limit, 200))


class ListRunsPrefixOnRunId(ReferenceStore):
    """`list_runs` applies `id_prefix` to the run id (`run_id LIKE prefix || '%'`), not the thread id."""

    async def list_runs(self, query: RunQuery) -> RunPage:
        normalized = query.normalized()
        prefix = normalized.id_prefix

        def keeps(r: RunRecord) -> bool:
            unprefixed = replace(normalized, id_prefix=None)
            return unprefixed.matches(r) and (prefix is None or r.run_id.startswith(prefix))

        async with self._lock:
            matching = sorted((r for r in self._runs.runs.values() if keeps(r)), key=lambda r: (r.created_at, r.run_id))
            return _page(matching, normalized, normalized.limit)


class ListRunsHasMoreAtLastPage(ReferenceStore):
    """`has_more` is `len(items) == limit`: a page that ends exactly at the last run says more remain."""

    async def list_runs(self, query: RunQuery) -> RunPage:
        page = await super().list_runs(query)
        page.has_more = len(page.items) == query.normalized().limit
        return page


class LoadRunSendsUnstorableIds(ReferenceStore):
    """load_run sends any id to its database, which fails on NUL or a lone surrogate: StorageIOError, not None."""

    async def load_run(self, run_id: str) -> RunRecord | None:
        if "\x00" in run_id or any(0xD800 <= ord(char) <= 0xDFFF for char in run_id):
            raise StorageIOError(f"the database cannot take the id {run_id!r}")
        return await super().load_run(run_id)


ZOO: list[Broken] = [
    Broken(CreateRunOverwrites, "RUN-1", "create_run replaces an existing run instead of raising AlreadyExistsError"),
    # also RUN-1: RUN-1 is create_run's MOD-4 validation
    Broken(CreateRunUnvalidated, "MOD-4", "create_run stores runs without MOD-4 validation", also=("RUN-1",)),
    Broken(NegativeRunNumbersStored, "MOD-4", "create_run stores a run whose timestamps or counts are negative"),
    # also RUN-1: RUN-1 is create_run's MOD-4 validation
    Broken(
        CreateRunIgnoresActivation,
        "MOD-4",
        "create_run stores a run whose activation names another thread",
        also=("RUN-1",),
    ),
    # also MOD-5: a run field lost in storage is MOD-5's round trip
    Broken(LoadRunDropsActivation, "RUN-2", "load_run loses the activation JSON", also=("MOD-5",)),
    Broken(LoadUnknownRunRaises, "RUN-2", "load_run of an unknown id raises NotFoundError"),
    Broken(LoadRunSendsUnstorableIds, "RUN-2", "load_run of an id with NUL or a lone surrogate raises StorageIOError"),
    Broken(LatestRunFirstWritten, "RUN-3", "latest_run keeps the first written run among equal updated_at"),
    # also CKP-2, CKP-4: a checkpointed run must become the latest for RUN-3 ties (CKP-2, CKP-4)
    Broken(
        LatestRunByCreatedAt,
        "RUN-3",
        "latest_run picks the newest created_at, not the greatest updated_at",
        also=("CKP-2", "CKP-4"),
    ),
    Broken(ListRunsByRunId, "RUN-4", "list_runs orders by run_id only"),
    Broken(ListRunsTiesUnsortedPastOffset500, "RUN-4", "past offset 500, runs of one created_at come in write order"),
    Broken(ListRunsTotalCappedAtAThousand, "RUN-4", "list_runs counts at most 1,000 matching runs in total"),
    Broken(ListRunsLimitZeroEmpty, "RUN-4", "list_runs with limit 0 returns no run"),
    # also SEC-1: matching the run id returns runs of threads outside the prefix
    Broken(
        ListRunsPrefixOnRunId,
        "RUN-4",
        "list_runs matches id_prefix against run_id instead of thread_id",
        also=("SEC-1",),
    ),
    Broken(ListRunsHasMoreAtLastPage, "RUN-4", "list_runs says has_more on a page that ends at the last run"),
]
