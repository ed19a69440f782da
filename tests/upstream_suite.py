"""Upstream's shared store checks, ported: what awakenworks/awaken itself asks of a thread/run store.

A port, from the facts, of `crates/awaken-stores/tests/thread_store_conformance.rs`:
its 22 checks, the same scenario and assertions each, in its order, on a fresh store
each, so the kit's power can be measured against the suite upstream runs on its own
backends. Two adaptations, because the contract fixes error types, not messages:
where upstream compares a whole error message (`"parent thread not found:
missing-parent"`), the port checks the phrase SPEC quotes; and upstream's random
message ids (`Message::user`) are fresh uuids here.

    .venv/bin/python tests/upstream_suite.py [--store TARGET]   # one store (default: the reference store)
    .venv/bin/python tests/upstream_suite.py --zoo              # every broken store of tests/broken/

`--store` takes the kit's targets (`module:attr` or `path/to/file.py:attr`). Exit
status: with `--store`, 1 when a check fails; with `--zoo`, 0 (the count is the
result). Not part of CI: `tests/test_upstream_suite.py` runs it on the reference
store and on a few zoo stores only.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import tempfile
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import anyio

from conformance import (
    ChildThreadDeleteStrategy,
    Message,
    MessageMetadata,
    MessageOrder,
    MessageQuery,
    MessageVisibilityFilter,
    Role,
    RunQuery,
    RunRecord,
    RunRequestSnapshot,
    RunStatus,
    Thread,
    ThreadMetadata,
    ThreadParentFilter,
    ThreadQuery,
    ThreadRunStore,
    ValidationError,
    VersionConflictError,
    Visibility,
)
from conformance.kit._runner import open_store
from conformance.kit._target import DEFAULT_TARGET, load_target

__all__ = ["CHECKS", "Outcome", "failed_checks", "run_checks"]

Check = Callable[[ThreadRunStore], Awaitable[None]]
#: A check that neither passes nor fails in this many seconds has failed (the store hangs).
TIMEOUT = 10


# ── helpers: upstream's `make_run`, `Message::user` and friends ──────


def make_run(run_id: str, thread_id: str, status: RunStatus, **changes: Any) -> RunRecord:
    """`make_run`: created and updated at 1; a `done` run gets `finished_at`."""
    record = RunRecord(run_id=run_id, thread_id=thread_id, agent_id="agent", status=status, created_at=1, updated_at=1)
    record = replace(record, **changes)
    if status is RunStatus.DONE:
        record.finished_at = record.updated_at
    return record


def message(role: Role, text: str, *, internal: bool = False, message_id: str | None = None) -> Message:
    """`Message::user(text)`, `assistant`, `internal_system`: a text message with a fresh id."""
    return Message(
        id=message_id or uuid.uuid4().hex,
        role=role,
        content=[{"type": "text", "text": text}],
        visibility=Visibility.INTERNAL if internal else Visibility.ALL,
    )


def text(found: Message) -> str:
    """`Message::text`: the text of its text blocks."""
    return "".join(str(block.get("text", "")) for block in found.content if block.get("type") == "text")


def thread(
    thread_id: str, *, resource: str | None = None, parent: str | None = None, updated_at: int | None = None
) -> Thread:
    """`Thread::with_id(...).with_resource_id(...).with_parent_thread_id(...)`, `metadata.updated_at` set."""
    return Thread(
        id=thread_id, resource_id=resource, parent_thread_id=parent, metadata=ThreadMetadata(updated_at=updated_at)
    )


async def raises(expected: type[Exception], call: Awaitable[object]) -> Exception:
    """Await `call`; return the `expected` error it raised, or fail."""
    try:
        await call
    except expected as error:
        return error
    raise AssertionError(f"expected {expected.__name__}, the call returned")


# ── the 22 checks, in upstream's order ───────────────────────────────


async def checkpoint_persists_messages_and_run(store: ThreadRunStore) -> None:
    messages = [message(Role.USER, "hello"), message(Role.ASSISTANT, "hi there")]
    await store.checkpoint("t-ckpt", messages, make_run("r1", "t-ckpt", RunStatus.DONE))
    loaded = await store.load_messages("t-ckpt")
    assert loaded is not None
    assert len(loaded) == 2, loaded
    run = await store.load_run("r1")
    assert run is not None
    assert (run.run_id, run.thread_id) == ("r1", "t-ckpt"), run


async def load_messages_returns_none_for_unknown_thread(store: ThreadRunStore) -> None:
    assert not await store.load_messages("unknown-thread")


async def latest_run_returns_most_recent(store: ThreadRunStore) -> None:
    first = make_run("r1", "t-latest", RunStatus.DONE, created_at=100, updated_at=100)
    second = make_run("r2", "t-latest", RunStatus.DONE, created_at=200, updated_at=200)
    await store.checkpoint("t-latest", [], first)
    await store.checkpoint("t-latest", [], second)
    latest = await store.latest_run("t-latest")
    assert latest is not None
    assert latest.run_id == "r2", latest


async def checkpoint_overwrites_messages(store: ThreadRunStore) -> None:
    run = make_run("r1", "t-overwrite", RunStatus.CREATED)
    await store.checkpoint("t-overwrite", [message(Role.USER, "first")], run)
    await store.checkpoint("t-overwrite", [message(Role.USER, "first"), message(Role.ASSISTANT, "second")], run)
    loaded = await store.load_messages("t-overwrite")
    assert loaded is not None
    assert [text(m) for m in loaded][1:] == ["second"], loaded


async def load_thread_reflects_checkpoint(store: ThreadRunStore) -> None:
    await store.checkpoint("t-meta", [], make_run("r1", "t-meta", RunStatus.DONE))
    found = await store.load_thread("t-meta")
    assert found is not None
    assert found.id == "t-meta", found


async def append_message_records_assigns_seq(store: ThreadRunStore) -> None:
    records = await store.append_message_records("t-append", [message(Role.USER, "a"), message(Role.USER, "b")])
    assert [record.seq for record in records] == [1, 2], records


async def checkpoint_append_assigns_version(store: ThreadRunStore) -> None:
    run = make_run("r1", "t-ap-version", RunStatus.CREATED)
    assert await store.checkpoint_append("t-ap-version", [message(Role.USER, "a")], 0, run) == 1
    later = [message(Role.USER, "b"), message(Role.USER, "c")]
    assert await store.checkpoint_append("t-ap-version", later, 1, run) == 3
    loaded = await store.load_messages("t-ap-version")
    assert loaded is not None
    assert len(loaded) == 3, loaded
    assert (text(loaded[0]), text(loaded[2])) == ("a", "c")
    stored = await store.load_run("r1")
    assert stored is not None
    assert stored.thread_id == "t-ap-version", stored


async def checkpoint_append_unconditional_appends(store: ThreadRunStore) -> None:
    run = make_run("r1", "t-ap-uncond", RunStatus.CREATED)
    await store.checkpoint_append("t-ap-uncond", [message(Role.USER, "a")], None, run)
    assert await store.checkpoint_append("t-ap-uncond", [message(Role.USER, "b")], None, run) == 2


async def checkpoint_append_rejects_stale_version(store: ThreadRunStore) -> None:
    run = make_run("r1", "t-ap-stale", RunStatus.CREATED)
    await store.checkpoint_append("t-ap-stale", [message(Role.USER, "a"), message(Role.USER, "b")], 0, run)
    conflict = await raises(
        VersionConflictError, store.checkpoint_append("t-ap-stale", [message(Role.USER, "c")], 0, run)
    )
    assert isinstance(conflict, VersionConflictError)
    assert (conflict.expected, conflict.actual) == (0, 2), conflict
    loaded = await store.load_messages("t-ap-stale")
    assert loaded is not None
    assert len(loaded) == 2, loaded


async def checkpoint_append_rejects_existing_message_id(store: ThreadRunStore) -> None:
    run = make_run("r1", "t-ap-existing-id", RunStatus.CREATED)
    original = message(Role.USER, "original", message_id="msg-1")
    await store.checkpoint_append("t-ap-existing-id", [original], 0, run)
    replacement = message(Role.USER, "replacement", message_id="msg-1")
    refused = await raises(ValidationError, store.checkpoint_append("t-ap-existing-id", [replacement], 1, run))
    assert "already committed" in str(refused), refused
    loaded = await store.load_messages("t-ap-existing-id")
    assert loaded is not None
    assert [text(m) for m in loaded] == ["original"], loaded


async def list_threads_query_filters_lineage(store: ThreadRunStore) -> None:
    await store.save_thread(thread("t-filter-match", resource="resource-a", parent="parent-1", updated_at=300))
    await store.save_thread(thread("t-filter-resource", resource="resource-b", parent="parent-1", updated_at=200))
    await store.save_thread(thread("t-filter-parent", resource="resource-a", parent="parent-2", updated_at=100))
    query = ThreadQuery(limit=10, resource_id="resource-a", parent_filter=ThreadParentFilter.parent("parent-1"))
    page = await store.list_threads_query(query)
    assert (page.items, page.total, page.has_more) == (["t-filter-match"], 1, False), page


async def list_threads_query_filters_root_threads(store: ThreadRunStore) -> None:
    await store.save_thread(thread("t-root-match", resource="resource-a", updated_at=300))
    await store.save_thread(thread("t-root-child", resource="resource-a", parent="parent-1", updated_at=200))
    await store.save_thread(thread("t-root-other", resource="resource-b", updated_at=100))
    query = ThreadQuery(limit=10, resource_id="resource-a", parent_filter=ThreadParentFilter.root())
    page = await store.list_threads_query(query)
    assert (page.items, page.total, page.has_more) == (["t-root-match"], 1, False), page


async def list_runs_filters_by_id_prefix(store: ThreadRunStore) -> None:
    for run_id, thread_id in (("sa-r1", "sa-t1"), ("sa-r2", "sa-t2"), ("sb-r1", "sb-t1")):
        await store.checkpoint(thread_id, [], make_run(run_id, thread_id, RunStatus.DONE))
    page = await store.list_runs(RunQuery(limit=50, id_prefix="sa-"))
    assert page.total == 2, page
    assert all(run.thread_id.startswith("sa-") for run in page.items), page
    assert {"sa-r1", "sa-r2"} <= {run.run_id for run in page.items}, page
    assert not page.has_more, page


async def list_threads_query_filters_by_id_prefix(store: ThreadRunStore) -> None:
    for thread_id in ("sa-t1", "sa-t2", "sb-t1"):
        await store.save_thread(Thread(id=thread_id))
    page = await store.list_threads_query(ThreadQuery(limit=50, id_prefix="sa-"))
    assert (sorted(page.items), page.total, page.has_more) == (["sa-t1", "sa-t2"], 2, False), page


async def list_threads_query_id_prefix_paginates_and_binds_cursor(store: ThreadRunStore) -> None:
    prefix = "scope:4:a%_:"
    for thread_id in (f"{prefix}thread-1", f"{prefix}thread-2", "scope:5:a%_:thread-3", "scope:4:aXY:thread-4"):
        await store.save_thread(Thread(id=thread_id))
    query = ThreadQuery(limit=1, id_prefix=prefix)
    page = await store.list_threads_query(query)
    assert (page.total, len(page.items), page.has_more) == (2, 1, True), page
    assert all(item.startswith(prefix) for item in page.items), page
    assert page.next_cursor is not None, "prefix page should expose cursor"
    next_offset = query.decode_cursor(page.next_cursor)
    assert next_offset == 1, next_offset
    for other in ("scope:5:a%_:", None):
        await raises(ValidationError, _decoded(replace(query, id_prefix=other), page.next_cursor))
    page = await store.list_threads_query(replace(query, offset=next_offset))
    assert (page.total, len(page.items), page.has_more) == (2, 1, False), page
    assert all(item.startswith(prefix) for item in page.items), page


async def _decoded(query: ThreadQuery, cursor: str) -> int:
    return query.decode_cursor(cursor)


async def checkpoint_rejects_missing_parent_thread(store: ThreadRunStore) -> None:
    run = make_run(
        "r-missing-parent",
        "t-missing-parent",
        RunStatus.CREATED,
        request=RunRequestSnapshot(parent_thread_id="missing-parent"),
    )
    refused = await raises(ValidationError, store.checkpoint("t-missing-parent", [], run))
    assert "parent thread not found" in str(refused), refused
    assert "missing-parent" in str(refused), refused


async def checkpoint_rejects_cycle_parent_assignment(store: ThreadRunStore) -> None:
    await store.save_thread(Thread(id="root"))
    await store.save_thread(thread("child", parent="root"))
    run = make_run("r-cycle-parent", "root", RunStatus.CREATED, request=RunRequestSnapshot(parent_thread_id="child"))
    refused = await raises(ValidationError, store.checkpoint("root", [], run))
    assert "cycle detected" in str(refused), refused


async def delete_thread_with_detach_preserves_children(store: ThreadRunStore) -> None:
    await store.save_thread(Thread(id="root"))
    await store.save_thread(thread("child", parent="root"))
    await store.save_thread(thread("grandchild", parent="child"))
    await store.delete_thread_with_strategy("root", ChildThreadDeleteStrategy.DETACH)
    assert await store.load_thread("root") is None
    child, grandchild = await store.load_thread("child"), await store.load_thread("grandchild")
    assert (child and child.parent_thread_id, grandchild and grandchild.parent_thread_id) == (None, "child")


async def delete_thread_with_reject_preserves_tree(store: ThreadRunStore) -> None:
    await store.save_thread(Thread(id="root"))
    await store.save_thread(thread("child", parent="root"))
    refused = await raises(ValidationError, store.delete_thread_with_strategy("root", ChildThreadDeleteStrategy.REJECT))
    assert "child threads" in str(refused), refused
    assert await store.load_thread("root") is not None
    assert await store.load_thread("child") is not None


async def delete_thread_with_cascade_removes_descendants(store: ThreadRunStore) -> None:
    await store.save_thread(Thread(id="root"))
    await store.save_thread(thread("child", parent="root"))
    await store.save_thread(thread("grandchild", parent="child"))
    await store.delete_thread_with_strategy("root", ChildThreadDeleteStrategy.CASCADE)
    for thread_id in ("root", "child", "grandchild"):
        assert await store.load_thread(thread_id) is None, thread_id


async def list_message_records_query_filters_and_orders(store: ThreadRunStore) -> None:
    await store.save_thread(Thread(id="t-message-query"))
    by_run = MessageMetadata(run_id="run-1", step_index=0)
    messages = [
        message(Role.USER, "input"),
        replace(message(Role.ASSISTANT, "first"), metadata=by_run),
        replace(message(Role.SYSTEM, "hidden", internal=True), metadata=by_run.copy()),
        replace(message(Role.ASSISTANT, "second"), metadata=by_run.copy()),
    ]
    await store.save_messages("t-message-query", messages)
    query = MessageQuery(
        limit=10,
        after=1,
        order=MessageOrder.DESC,
        visibility=MessageVisibilityFilter.EXTERNAL,
        run_id="run-1",
    )
    page = await store.list_message_records("t-message-query", query)
    assert ([text(r.message) for r in page.records], page.total, page.has_more) == (["second", "first"], 2, False)


async def load_run_returns_none_for_unknown(store: ThreadRunStore) -> None:
    assert await store.load_run("nonexistent-run") is None


#: Every check, in the order of upstream's `memory_thread_store_conformance.rs`.
CHECKS: list[Check] = [
    checkpoint_persists_messages_and_run,
    load_messages_returns_none_for_unknown_thread,
    latest_run_returns_most_recent,
    checkpoint_overwrites_messages,
    load_thread_reflects_checkpoint,
    append_message_records_assigns_seq,
    checkpoint_append_assigns_version,
    checkpoint_append_unconditional_appends,
    checkpoint_append_rejects_stale_version,
    checkpoint_append_rejects_existing_message_id,
    list_threads_query_filters_lineage,
    list_threads_query_filters_root_threads,
    list_runs_filters_by_id_prefix,
    list_threads_query_filters_by_id_prefix,
    list_threads_query_id_prefix_paginates_and_binds_cursor,
    checkpoint_rejects_missing_parent_thread,
    checkpoint_rejects_cycle_parent_assignment,
    delete_thread_with_detach_preserves_children,
    delete_thread_with_reject_preserves_tree,
    delete_thread_with_cascade_removes_descendants,
    list_message_records_query_filters_and_orders,
    load_run_returns_none_for_unknown,
]


# ── running ───────────────────────────────────────────────────────────


@dataclass(frozen=True, slots=True)
class Outcome:
    """One check on one store: its name, and why it failed (`None` when it passed)."""

    check: str
    failure: str | None


async def run_checks(source: object, checks: Sequence[Check] = CHECKS) -> list[Outcome]:
    """Run each check on a fresh store opened from `source` (a store class, factory or target object).

    A store that takes a `location` gets a fresh folder per check. Any exception,
    or a check still running after `TIMEOUT` seconds, fails that check.
    """
    outcomes = []
    for check in checks:
        with tempfile.TemporaryDirectory(prefix="upstream-suite-") as folder:
            try:
                with anyio.fail_after(TIMEOUT):
                    async with open_store(source, Path(folder)) as store:
                        await check(store)
            except Exception as error:  # every exception is the check failing
                outcomes.append(Outcome(check.__name__, f"{type(error).__name__}: {error}"[:300]))
                continue
        outcomes.append(Outcome(check.__name__, None))
    return outcomes


def failed_checks(source: object) -> list[str]:
    """The names of the checks `source`'s stores fail."""
    return [outcome.check for outcome in anyio.run(run_checks, source) if outcome.failure is not None]


def _zoo() -> list[Any]:
    """Every `Broken` entry of `tests/broken/`, in area then listing order."""
    import broken

    areas = sorted(module.name for module in pkgutil.iter_modules(broken.__path__))
    return [entry for area in areas for entry in importlib.import_module(f"broken.{area}").ZOO]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the suite on one store, or on every zoo store with `--zoo`; print the outcome."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", default=DEFAULT_TARGET, help="a kit target (default: the reference store)")
    parser.add_argument("--zoo", action="store_true", help="run on every broken store and count the caught ones")
    options = parser.parse_args(argv)
    if not options.zoo:
        outcomes = anyio.run(run_checks, load_target(options.store, base=Path.cwd()))
        for outcome in outcomes:
            print(f"{'FAIL' if outcome.failure else 'pass'}  {outcome.check}  {outcome.failure or ''}".rstrip())
        failed = sum(outcome.failure is not None for outcome in outcomes)
        print(f"{len(outcomes) - failed} of {len(outcomes)} upstream checks passed on {options.store}")
        return 1 if failed else 0
    entries = []
    for entry in _zoo():
        reason = entry.unavailable() if entry.unavailable is not None else None
        if reason is None:
            entries.append(entry)
        else:
            print(f"{entry.rule:<7} {entry.target:<45} left out: {reason}")
    caught = 0
    for entry in entries:
        failing = failed_checks(entry.store)
        caught += bool(failing)
        verdict = f"caught by {', '.join(failing)}" if failing else "MISSED"
        print(f"{entry.rule:<7} {entry.target:<45} {verdict}")
    print(f"upstream's suite caught {caught} of {len(entries)} broken stores ({len(CHECKS)} checks)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
