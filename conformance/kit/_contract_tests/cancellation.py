"""Contract tests: a cancelled write leaves the state before or after it (ATO-3).

How a write is cancelled "at every scheduling point": for `k = 0, 1, 2, ...` the
test starts the write in a task inside a cancel scope, yields `k` times, then
cancels the scope; it stops at the first `k` for which the write returned before
the cancel came (from 32 on, `k` doubles, for stores that wait on threads).

Where the "after" state comes from: runs are never deleted, so one store cannot be
reset between attempts. Each attempt therefore works in its own namespace (every
thread and run id starts with `k<k>:`), and compares only its namespace, with the
prefix stripped, so that all attempts describe the same scenario: the part of the
store in the namespace must equal its part before the write, or the part the
uncancelled attempt (the last one) left after the write. Everything outside the
namespace must not change. Stamps the store takes from the clock
(`created_at`/`updated_at` in milliseconds) read as "now" in both.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from functools import partial
from itertools import count
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from conformance.contract._enums import ChildThreadDeleteStrategy, RunStatus
from conformance.contract._models import ThreadMetadata
from conformance.contract._queries import RunQuery, ThreadQuery
from conformance.contract._runs import PersistedState
from conformance.contract._stores import ThreadRunStore
from conformance.kit._runner import rule
from conformance.kit._scenarios import Snapshot, log, run, thread, tree, user

#: Any millisecond stamp past 2001-09-09 is one the store took from its clock; scenarios use small ones.
CLOCK_STAMPS = 10**12
NamespacedStep = Callable[[ThreadRunStore, str], Awaitable[object]]


async def _stock(store: ThreadRunStore, ns: str) -> None:
    """p <- c <- g and a root d, logs on p, c and g, states on p and c, a created run r1 on p."""
    await tree(store, {f"{ns}p": {f"{ns}c": {f"{ns}g": {}}}, f"{ns}d": {}})
    await log(store, f"{ns}p", "m1", "m2")
    await log(store, f"{ns}c", "c1")
    await log(store, f"{ns}g", "g1")
    await store.save_thread_state(f"{ns}p", PersistedState(revision=1, extensions={"k": [1]}))
    await store.save_thread_state(f"{ns}c", PersistedState(revision=1))
    await store.create_run(run(f"{ns}r1", f"{ns}p", updated_at=2))


@dataclass(frozen=True, slots=True)
class _Write:
    """A write on the stocked namespace `ns`."""

    name: str
    call: NamespacedStep


WRITES = [
    _Write("save_thread", lambda s, ns: s.save_thread(thread(f"{ns}c", parent=f"{ns}d", title="moved"))),
    _Write(
        "save_thread_validated",
        lambda s, ns: s.save_thread_validated(thread(f"{ns}c", parent=f"{ns}d", title="moved")),
    ),
    _Write(
        "update_thread_metadata",
        lambda s, ns: s.update_thread_metadata(f"{ns}p", ThreadMetadata(updated_at=8, custom={"k": "v"})),
    ),
    _Write("delete_thread", lambda s, ns: s.delete_thread(f"{ns}p")),
    _Write(
        "delete_thread_with_strategy-cascade",
        lambda s, ns: s.delete_thread_with_strategy(f"{ns}p", ChildThreadDeleteStrategy.CASCADE),
    ),
    _Write(
        "delete_thread_with_strategy-detach",
        lambda s, ns: s.delete_thread_with_strategy(f"{ns}c", ChildThreadDeleteStrategy.DETACH),
    ),
    _Write("save_messages", lambda s, ns: s.save_messages(f"{ns}p", [user("n1"), user("n2"), user("n3")])),
    _Write("append_message_records", lambda s, ns: log(s, f"{ns}p", "n1", "n2", "n3")),
    _Write("create_run", lambda s, ns: s.create_run(run(f"{ns}r2", f"{ns}p", RunStatus.RUNNING, updated_at=3))),
    _Write(
        "checkpoint",
        lambda s, ns: s.checkpoint(f"{ns}c", [user("n1"), user("n2")], run(f"{ns}r2", f"{ns}c", RunStatus.RUNNING)),
    ),
    _Write(
        "checkpoint_append",
        lambda s, ns: s.checkpoint_append(
            f"{ns}p", [user("n1"), user("n2")], 2, run(f"{ns}r1", f"{ns}p", RunStatus.DONE, updated_at=4)
        ),
    ),
    _Write(
        "save_thread_state",
        lambda s, ns: s.save_thread_state(f"{ns}p", PersistedState(revision=2, extensions={"k": [2]})),
    ),
]


def _attempts() -> Iterator[int]:
    """How many times to yield before cancelling: 0..31, then doubling."""
    for yields in count():
        yield yields if yields < 32 else 32 << (yields - 32)


async def _cancelled_after(yields: int, write: Callable[[], Awaitable[object]]) -> bool:
    """Run `write` in a task, cancel it after `yields` yields of this task; True if it returned first."""
    finished = False
    scope = anyio.CancelScope()

    async def writer() -> None:
        nonlocal finished
        with scope:
            await write()
            finished = True

    async with anyio.create_task_group() as group:
        group.start_soon(writer)
        for _ in range(yields):
            await anyio.lowlevel.checkpoint()
        scope.cancel()
    return finished


def _masked(value: Any) -> Any:
    """`value` (decoded JSON) with every clock-taken `created_at`/`updated_at` replaced by "now"."""
    if isinstance(value, dict):
        return {
            key: "now"
            if key in ("created_at", "updated_at") and isinstance(item, int) and item >= CLOCK_STAMPS
            else _masked(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_masked(item) for item in value]
    return value


def _part(taken: Snapshot, ns: str, *, inside: bool) -> str:
    """The snapshot's entries whose key is (or is not) in namespace `ns`, as canonical JSON without `ns`."""

    def keep(key: str) -> bool:
        return key.startswith(ns) == inside

    as_json = {
        "threads": {k: v.to_json() for k, v in taken.threads.items() if keep(k)},
        "logs": {k: None if v is None else [m.to_json() for m in v] for k, v in taken.logs.items() if keep(k)},
        "states": {k: None if v is None else v.to_json() for k, v in taken.states.items() if keep(k)},
        "runs": {k: v.to_json() for k, v in taken.runs.items() if keep(k)},
        "latest": {k: v for k, v in taken.latest.items() if keep(k)},
    }
    text = json.dumps(_masked(as_json), sort_keys=True, ensure_ascii=False)
    return text.replace(ns, "") if inside else text


async def _namespace(store: ThreadRunStore, ns: str, names: list[str]) -> Snapshot:
    """The part of the store an attempt may touch: its threads, logs, states and runs.

    Reads only the namespace, so an attempt costs the same however many came before
    (a whole-store snapshot per attempt made the test quadratic on networked stores).
    """
    taken = Snapshot()
    listed = await store.list_threads_query(ThreadQuery(id_prefix=ns, limit=200))
    for thread_id in sorted({*names, *listed.items}):
        found = await store.load_thread(thread_id)
        if found is not None:
            taken.threads[thread_id] = found
        taken.logs[thread_id] = await store.load_committed_messages(thread_id)
        taken.states[thread_id] = await store.load_thread_state(thread_id)
        latest = await store.latest_run(thread_id)
        taken.latest[thread_id] = latest.run_id if latest else None
    for record in (await store.list_runs(RunQuery(id_prefix=ns, limit=200))).items:
        taken.runs[record.run_id] = record
    return taken


async def _outside_counts(store: ThreadRunStore, ns: str) -> tuple[int, int]:
    """How many threads and runs exist outside the namespace (an outside write shows as a difference)."""
    threads = (await store.list_threads_query(ThreadQuery(limit=0))).total
    mine = (await store.list_threads_query(ThreadQuery(id_prefix=ns, limit=0))).total
    runs = (await store.list_runs(RunQuery(limit=1))).total
    my_runs = (await store.list_runs(RunQuery(id_prefix=ns, limit=1))).total
    return threads - mine, runs - my_runs


@dataclass(frozen=True, slots=True)
class _Attempt:
    """One cancelled (or, last, completed) write: the namespace's part before it and the part it left."""

    yields: int
    before: str
    left: str


class CancellationRules:
    """ATO-3: cancelling a write at any scheduling point leaves the state before or after it."""

    @rule("ATO-3")
    @pytest.mark.parametrize("case", WRITES, ids=[write.name for write in WRITES])
    async def test_cancelled_write_leaves_state_before_or_after(self, store: ThreadRunStore, case: _Write) -> None:
        """A write cancelled after any number of scheduling points left the store as before it or as after it.

        Every attempt after a cancelled one writes and reads again, so the store stayed usable.
        """
        attempts: list[_Attempt] = []
        for yields in _attempts():
            ns = f"k{yields}:"
            await _stock(store, ns)
            names = [f"{ns}{name}" for name in ("p", "c", "g", "d")]
            outside = await _outside_counts(store, ns)
            before = await _namespace(store, ns, names)
            finished = await _cancelled_after(yields, partial(case.call, store, ns))
            left = await _namespace(store, ns, names)
            now = await _outside_counts(store, ns)
            assert now == outside, (
                f"{case.name} cancelled after {yields} yields changed data outside its own threads: "
                f"counts {now}, expected {outside}"
            )
            attempts.append(_Attempt(yields, _part(before, ns, inside=True), _part(left, ns, inside=True)))
            if finished:
                break
        after = attempts[-1].left
        for attempt in attempts[:-1]:
            assert attempt.left in (attempt.before, after), (
                f"{case.name} cancelled after {attempt.yields} yields left a state that is neither before nor after it"
            )
        await store.save_thread(thread("after-cancels", title="usable"))
        usable = await store.load_thread("after-cancels")  # what it keeps of the thread is THR-2's business
        assert usable is not None, f"after cancelled {case.name} calls, load_thread gives None for a thread just saved"
        assert usable.id == "after-cancels", (
            f"after cancelled {case.name} calls, load_thread('after-cancels') gives thread {usable.id!r}"
        )
