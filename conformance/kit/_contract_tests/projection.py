"""Contract tests: the run projection onto the thread through checkpoints (CKP-6)."""

from __future__ import annotations

import pytest

from conformance.contract._enums import RunStatus
from conformance.contract._models import Thread
from conformance.contract._runs import RunRecord
from conformance.contract._stores import ThreadRunStore
from conformance.kit._differ import diff_fields
from conformance.kit._runner import rule
from conformance.kit._scenarios import run, thread, tree

VIA = ["checkpoint", "checkpoint_append"]


#: The fields of a thread CKP-6 writes, in the order `_projection` gives them.
PROJECTED = ("parent_thread_id", "active_run_id", "open_run_id", "latest_run_id", "latest_run_updated_at")
Projection = tuple[str | None, str | None, str | None, str | None, int | None]


def _projection(found: Thread | None) -> Projection:
    """The fields CKP-6 writes: (parent, active, open, latest run id, latest run updated_at)."""
    __tracebackhide__ = True
    assert found is not None, "load_thread('t') gives None after a checkpoint of the thread"
    return (
        found.parent_thread_id,
        found.active_run_id,
        found.open_run_id,
        found.latest_run_id,
        found.latest_run_updated_at,
    )


async def _write(store: ThreadRunStore, via: str, record: RunRecord) -> None:
    """Write `record` onto its thread through `checkpoint` (keeping the log) or `checkpoint_append`."""
    if via == "checkpoint":
        kept = await store.load_committed_messages(record.thread_id) or []
        await store.checkpoint(record.thread_id, kept, record)
    else:
        await store.checkpoint_append(record.thread_id, [], None, record)


class ProjectionRules:
    """CKP-6: how `checkpoint` and `checkpoint_append` project a run onto its thread, by status and age."""

    @rule("CKP-6")
    @pytest.mark.parametrize("via", VIA)
    @pytest.mark.parametrize("status", [RunStatus.CREATED, RunStatus.WAITING])
    async def test_created_or_waiting_run_is_open_not_active(
        self, store: ThreadRunStore, via: str, status: RunStatus
    ) -> None:
        """A created or waiting run becomes open and latest; no run is active."""
        await store.save_thread(
            Thread(id="t", active_run_id="r0", open_run_id="r0", latest_run_id="r0", latest_run_updated_at=5)
        )
        await _write(store, via, run("r1", "t", status, updated_at=10))
        found, due = _projection(await store.load_thread("t")), (None, None, "r1", "r1", 10)
        assert found == due, f"thread 't' after {via}: {diff_fields(PROJECTED, found, due)}"

    @rule("CKP-6")
    @pytest.mark.parametrize("via", VIA)
    async def test_running_run_is_open_and_active(self, store: ThreadRunStore, via: str) -> None:
        """A running run becomes open, active and latest."""
        await store.save_thread(
            Thread(id="t", active_run_id="r0", open_run_id="r0", latest_run_id="r0", latest_run_updated_at=5)
        )
        await _write(store, via, run("r1", "t", RunStatus.RUNNING, updated_at=10))
        found, due = _projection(await store.load_thread("t")), (None, "r1", "r1", "r1", 10)
        assert found == due, f"thread 't' after {via}: {diff_fields(PROJECTED, found, due)}"

    @rule("CKP-6")
    @pytest.mark.parametrize("via", VIA)
    async def test_done_run_clears_the_ids_naming_it(self, store: ThreadRunStore, via: str) -> None:
        """A run that finishes is no longer open nor active, and is the latest."""
        await store.save_thread(
            Thread(id="t", active_run_id="r1", open_run_id="r1", latest_run_id="r1", latest_run_updated_at=5)
        )
        await _write(store, via, run("r1", "t", RunStatus.DONE, updated_at=10))
        found, due = _projection(await store.load_thread("t")), (None, None, None, "r1", 10)
        assert found == due, f"thread 't' after {via}: {diff_fields(PROJECTED, found, due)}"

    @rule("CKP-6")
    @pytest.mark.parametrize("via", VIA)
    async def test_done_run_keeps_ids_naming_other_runs(self, store: ThreadRunStore, via: str) -> None:
        """A finishing run r1 leaves r0 open and active, and becomes the latest."""
        await store.save_thread(
            Thread(id="t", active_run_id="r0", open_run_id="r0", latest_run_id="r0", latest_run_updated_at=5)
        )
        await _write(store, via, run("r1", "t", RunStatus.DONE, updated_at=10))
        found, due = _projection(await store.load_thread("t")), (None, "r0", "r0", "r1", 10)
        assert found == due, f"thread 't' after {via}: {diff_fields(PROJECTED, found, due)}"

    @rule("CKP-6")
    @pytest.mark.parametrize("via", VIA)
    @pytest.mark.parametrize("status", list(RunStatus))
    async def test_older_run_changes_nothing(self, store: ThreadRunStore, via: str, status: RunStatus) -> None:
        """A run older than the thread's latest leaves open, active, latest and the missing parent alone."""
        await tree(store, {"p": {}})
        await store.save_thread(
            Thread(id="t", active_run_id="r0", open_run_id="r0", latest_run_id="r0", latest_run_updated_at=10)
        )
        await _write(store, via, run("r1", "t", status, updated_at=5, parent_thread_id="p"))
        found, due = _projection(await store.load_thread("t")), (None, "r0", "r0", "r0", 10)
        assert found == due, f"thread 't' after {via}: {diff_fields(PROJECTED, found, due)}"

    @rule("CKP-6")
    @pytest.mark.parametrize("via", VIA)
    async def test_older_done_run_clears_the_ids_naming_it(self, store: ThreadRunStore, via: str) -> None:
        """An older run r1 that finishes stops being open and active; r2 stays the latest."""
        await store.save_thread(
            Thread(id="t", active_run_id="r1", open_run_id="r1", latest_run_id="r2", latest_run_updated_at=10)
        )
        await _write(store, via, run("r1", "t", RunStatus.DONE, updated_at=5))
        found, due = _projection(await store.load_thread("t")), (None, None, None, "r2", 10)
        assert found == due, f"thread 't' after {via}: {diff_fields(PROJECTED, found, due)}"

    @rule("CKP-6")
    @pytest.mark.parametrize("via", VIA)
    async def test_run_as_recent_as_the_latest_is_projected(self, store: ThreadRunStore, via: str) -> None:
        """A run with the same updated_at as the thread's latest is not older: it takes over."""
        await store.save_thread(Thread(id="t", open_run_id="r0", latest_run_id="r0", latest_run_updated_at=10))
        await _write(store, via, run("r1", "t", RunStatus.CREATED, updated_at=10))
        found, due = _projection(await store.load_thread("t")), (None, None, "r1", "r1", 10)
        assert found == due, f"thread 't' after {via}: {diff_fields(PROJECTED, found, due)}"

    @rule("CKP-6")
    @pytest.mark.parametrize("via", VIA)
    @pytest.mark.parametrize("existing", [False, True], ids=["new-thread", "stored-thread"])
    async def test_thread_without_parent_takes_the_request_parent(
        self, store: ThreadRunStore, via: str, existing: bool
    ) -> None:
        """A thread without parent becomes a child of the parent its run's request names."""
        await tree(store, {"p": {}})
        if existing:
            await store.save_thread(thread("t"))
        await _write(store, via, run("r1", "t", RunStatus.RUNNING, updated_at=10, parent_thread_id="p"))
        found, due = _projection(await store.load_thread("t")), ("p", "r1", "r1", "r1", 10)
        assert found == due, f"thread 't' after {via}: {diff_fields(PROJECTED, found, due)}"

    @rule("CKP-6")
    @pytest.mark.parametrize("via", VIA)
    async def test_request_parent_is_normalized(self, store: ThreadRunStore, via: str) -> None:
        """A request naming parent " p " makes the thread a child of p, stripped as MOD-1 strips lineage ids."""
        await tree(store, {"p": {}})
        await _write(store, via, run("r1", "t", RunStatus.RUNNING, updated_at=10, parent_thread_id=" p "))
        found, due = _projection(await store.load_thread("t")), ("p", "r1", "r1", "r1", 10)
        assert found == due, f"thread 't' after {via}: {diff_fields(PROJECTED, found, due)}"

    @rule("CKP-6")
    @pytest.mark.parametrize("via", VIA)
    async def test_thread_with_parent_keeps_it(self, store: ThreadRunStore, via: str) -> None:
        """A thread that has a parent keeps it whatever parent its run's request names."""
        await tree(store, {"p1": {"t": {}}, "p2": {}})
        await _write(store, via, run("r1", "t", RunStatus.RUNNING, updated_at=10, parent_thread_id="p2"))
        found, due = _projection(await store.load_thread("t")), ("p1", "r1", "r1", "r1", 10)
        assert found == due, f"thread 't' after {via}: {diff_fields(PROJECTED, found, due)}"
