"""Pure thread rules: recent-activity order (THR-5) and the run projection (CKP-6)."""

from __future__ import annotations

import time
from collections.abc import Sequence

from conformance.contract._enums import RunStatus
from conformance.contract._models import Thread, normalize_lineage_id
from conformance.contract._runs import RunRecord

__all__ = [
    "apply_run_projection",
    "checkpoint_parent_thread_id",
    "normalize_lineage_id",
    "sort_threads_by_recent_activity",
]


def now_ms() -> int:
    """The current unix time in milliseconds."""
    return time.time_ns() // 1_000_000


def activity_key(thread: Thread) -> tuple[int, str]:
    """Sort key of THR-5: most recent activity first, then id ascending."""
    metadata = thread.metadata
    stamp = metadata.updated_at if metadata.updated_at is not None else metadata.created_at
    return (-(stamp or 0), thread.id)


def sort_threads_by_recent_activity(threads: Sequence[Thread]) -> list[Thread]:
    """Return `threads` ordered by `updated_at` (else `created_at`, else 0) descending, then id (THR-5)."""
    return sorted(threads, key=activity_key)


def checkpoint_parent_thread_id(existing: Thread | None, run: RunRecord) -> str | None:
    """The parent a checkpoint validates (CKP-1): the stored thread's, else the run request's."""
    if existing is not None and existing.parent_thread_id is not None:
        return existing.parent_thread_id
    return run.request.parent_thread_id if run.request is not None else None


def apply_run_projection(thread: Thread, run: RunRecord) -> Thread:
    """Return a copy of `thread` with `run` projected onto it (CKP-6); `thread` is not changed.

    A run older than `latest_run_updated_at` changes nothing, except that a `done`
    one clears `active_run_id`/`open_run_id` where they name it. Otherwise the run
    becomes the latest; a thread without parent takes `run.request.parent_thread_id`;
    `created`/`waiting` set `open_run_id` and clear `active_run_id`; `running` sets
    both; `done` clears those that name it.
    """
    projected = thread.copy()
    done = run.status is RunStatus.DONE
    if projected.latest_run_updated_at is not None and run.updated_at < projected.latest_run_updated_at:
        if done:
            _clear_if_named(projected, run.run_id)
        return projected
    projected.latest_run_id = run.run_id
    projected.latest_run_updated_at = run.updated_at
    if normalize_lineage_id(projected.parent_thread_id) is None and run.request is not None:
        projected.parent_thread_id = normalize_lineage_id(run.request.parent_thread_id)
    if run.status in (RunStatus.CREATED, RunStatus.WAITING):
        projected.open_run_id = run.run_id
        projected.active_run_id = None
    elif run.status is RunStatus.RUNNING:
        projected.open_run_id = run.run_id
        projected.active_run_id = run.run_id
    else:
        _clear_if_named(projected, run.run_id)
    return projected


def _clear_if_named(thread: Thread, run_id: str) -> None:
    if thread.active_run_id == run_id:
        thread.active_run_id = None
    if thread.open_run_id == run_id:
        thread.open_run_id = None
