"""Pure thread rules: recent-activity order (THR-5) and the run projection (CKP-6)."""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence

from conformance.contract._enums import RunStatus
from conformance.contract._models import Thread, normalize_lineage_id
from conformance.contract._runs import RunRecord

__all__ = [
    "apply_run_projection",
    "checkpoint_parent_thread_id",
    "normalize_lineage_id",
    "now_ms",
    "recent_activity_key",
    "sort_threads_by_recent_activity",
    "sorted_threads_by_recent_activity",
]


def now_ms() -> int:
    """The current unix time in whole milliseconds, the unit of every thread timestamp.

    `ThreadMetadata.created_at`/`updated_at` are milliseconds (section 2 of the spec);
    a checkpoint (CKP-2) and a detaching delete (DEL-3) set `updated_at` to this.
    Run timestamps are seconds: do not use it for `RunRecord`.

    >>> now_ms() > 1_700_000_000_000
    True
    """
    return time.time_ns() // 1_000_000


def recent_activity_key(thread: Thread) -> tuple[int, str]:
    """The sort key of THR-5: most recent activity first, then id ascending.

    Activity is `updated_at`, else `created_at`, else 0. Sort a list in place with
    `threads.sort(key=recent_activity_key)`, or keep an ordered index of the keys.

    >>> [t.id for t in sorted([Thread(id="b"), Thread(id="a")], key=recent_activity_key)]
    ['a', 'b']
    """
    metadata = thread.metadata
    stamp = metadata.updated_at if metadata.updated_at is not None else metadata.created_at
    return (-(stamp or 0), thread.id)


def sorted_threads_by_recent_activity(threads: Sequence[Thread]) -> list[Thread]:
    """Return a new list of `threads` in THR-5 order; `threads` itself is not changed.

    The order is `updated_at` (else `created_at`, else 0) descending, then id ascending.
    Upstream's Rust helper sorts in place: in Python that is
    `threads.sort(key=recent_activity_key)`.
    """
    return sorted(threads, key=recent_activity_key)


def sort_threads_by_recent_activity(threads: Sequence[Thread]) -> list[Thread]:
    """Deprecated: `sorted_threads_by_recent_activity`, which says that it returns a new list.

    Returns a new sorted list and leaves `threads` unchanged, as before, and warns
    with `DeprecationWarning`: a port of upstream's in-place sort that ignores the
    result would keep the old order.
    """
    warnings.warn(
        "sort_threads_by_recent_activity is deprecated: it returns a new list and leaves its argument unsorted; "
        "use sorted_threads_by_recent_activity(threads), or threads.sort(key=recent_activity_key) to sort in place",
        DeprecationWarning,
        stacklevel=2,
    )
    return sorted_threads_by_recent_activity(threads)


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
