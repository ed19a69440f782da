"""The port of upstream's own store checks passes correct stores and catches broken ones.

The whole zoo runs through it only on request (`tests/upstream_suite.py --zoo`, counted
in docs/DETECTION.md); here a few stores, in process, in a few seconds.
"""

from __future__ import annotations

from broken import deletes, messages, runs, threads
from stores.upstream_memory_store import UpstreamMemoryStore
from upstream_suite import CHECKS, failed_checks

from reference_store import ReferenceStore


def test_the_suite_has_upstreams_22_checks() -> None:
    """One check per function of upstream's `thread_store_conformance.rs`, each named as there."""
    names = [check.__name__ for check in CHECKS]
    assert len(names) == len(set(names)) == 22


def test_the_reference_store_passes_every_check() -> None:
    """No false alarm on the store that keeps every rule."""
    assert failed_checks(ReferenceStore) == []


def test_the_port_of_upstreams_memory_store_passes_every_check() -> None:
    """Upstream runs this suite on its in-memory store, and so passes the port of it: the port is faithful there."""
    assert failed_checks(UpstreamMemoryStore) == []


def test_the_suite_catches_broken_stores_where_it_looks() -> None:
    """Bugs in what upstream checks are caught, each by the check that looks there."""
    assert failed_checks(runs.LoadUnknownRunRaises) == ["load_run_returns_none_for_unknown"]
    assert failed_checks(deletes.CascadeOneLevel) == ["delete_thread_with_cascade_removes_descendants"]
    assert failed_checks(messages.ExternalIncludesInternal) == ["list_message_records_query_filters_and_orders"]


def test_the_suite_misses_bugs_where_it_does_not_look() -> None:
    """Threads listed oldest first (THR-5) pass upstream's suite: the kit's zoo count is what it adds."""
    assert failed_checks(threads.OldestFirst) == []
