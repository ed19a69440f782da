"""Contract tests: isolation and atomicity (ISO-1, ATO-1, ATO-2); cancellation (ATO-3) is in `cancellation`."""

from __future__ import annotations

import copy
import dataclasses
import enum
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import pytest

from conformance.contract._enums import ChildThreadDeleteStrategy, Role, RunStatus
from conformance.contract._errors import (
    AlreadyExistsError,
    NotFoundError,
    StorageError,
    ValidationError,
    VersionConflictError,
)
from conformance.contract._models import Message, Thread, ThreadMetadata
from conformance.contract._queries import MessageQuery, RunQuery, ThreadParentFilter, ThreadQuery
from conformance.contract._runs import MessageSeqRange, PersistedState, RunRecord, RunRequestSnapshot
from conformance.contract._stores import ThreadRunStore
from conformance.kit._boundary import answering
from conformance.kit._contract_tests.cancellation import CancellationRules
from conformance.kit._exact import expect_same, same
from conformance.kit._runner import Reopen, rule
from conformance.kit._scenarios import activation, assistant, log, run, snapshot, thread, tool, tree, user
from conformance.kit._violation import BrokenCall, expect

Step = Callable[[ThreadRunStore], Awaitable[object]]


def _nested_thread(thread_id: str, *, parent: str | None = None) -> Thread:
    return Thread(
        id=thread_id,
        parent_thread_id=parent,
        metadata=ThreadMetadata(title="T", custom={"tags": ["a", "b"], "nested": {"depth": [1, {"k": "v"}]}}),
    )


def _nested_messages(*ids: str) -> list[Message]:
    """A user message with a text and an image block, an assistant call and its tool result."""
    first, call, result = ids
    asking = user(first)
    asking.content.append({"type": "image", "source": {"type": "url", "url": "https://example.com/chart.png"}})
    return [asking, assistant(call, calls=[f"call-{call}"]), tool(result, f"call-{call}")]


def _nested_run(run_id: str, thread_id: str, *, updated_at: int = 5) -> RunRecord:
    record = run(run_id, thread_id, RunStatus.RUNNING, updated_at=updated_at)
    record.request = RunRequestSnapshot(input_message_ids=["m1"], input_message_count=1, request_extras={"x": [1]})
    record.activation = activation(thread_id, trigger=["m1"])
    record.state = PersistedState(revision=2, extensions={"memory": {"facts": ["sky is blue"]}})
    return record


def _nested_state() -> PersistedState:
    return PersistedState(revision=3, extensions={"plan": {"steps": ["look", "leap"]}, "seen": [1, 2]})


async def _stocked(store: ThreadRunStore) -> None:
    """Parent `p`, child `t` with nested metadata, a three-message log, state and a run on `t`."""
    await store.save_thread(thread("p"))
    await store.save_thread(_nested_thread("t", parent="p"))
    await store.append_message_records("t", _nested_messages("m1", "m2", "m3"))
    await store.save_thread_state("t", _nested_state())
    await store.create_run(_nested_run("r1", "t"))


def _tamper(value: object) -> None:
    """Change every mutable part of `value` in place, at every depth, keeping each type."""
    if isinstance(value, tuple):
        for item in value:
            _tamper(item)
    elif isinstance(value, list):
        for item in value:
            _tamper(item)
        if value:
            value.append(copy.deepcopy(value[0]))
    elif isinstance(value, dict):
        for item in value.values():
            _tamper(item)
        value["tampered"] = True
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for spec in dataclasses.fields(value):
            current = getattr(value, spec.name)
            if isinstance(current, str) and not isinstance(current, enum.Enum):
                setattr(value, spec.name, current + "-tampered")
            elif isinstance(current, int) and not isinstance(current, bool):
                setattr(value, spec.name, current + 1000)
            else:
                _tamper(current)


@dataclass(frozen=True, slots=True)
class _Handoff:
    """A write taking a model: the fresh model to pass, the call, and how to read what was kept."""

    name: str
    given: Callable[[], Any]
    write: Callable[[ThreadRunStore, Any], Awaitable[object]]
    kept: Step


HANDOFFS = [
    _Handoff(
        "save_thread",
        lambda: _nested_thread("new", parent="p"),
        lambda s, given: s.save_thread(given),
        lambda s: s.load_thread("new"),
    ),
    _Handoff(
        "save_thread_validated",
        lambda: _nested_thread("new", parent="p"),
        lambda s, given: s.save_thread_validated(given),
        lambda s: s.load_thread("new"),
    ),
    _Handoff(
        "update_thread_metadata",
        lambda: ThreadMetadata(updated_at=9, custom={"labels": {"color": ["red"]}}),
        lambda s, given: s.update_thread_metadata("t", given),
        lambda s: s.load_thread("t"),
    ),
    _Handoff(
        "save_thread_state",
        _nested_state,
        lambda s, given: s.save_thread_state("p", given),
        lambda s: s.load_thread_state("p"),
    ),
    _Handoff(
        "save_messages",
        lambda: _nested_messages("n1", "n2", "n3"),
        lambda s, given: s.save_messages("p", given),
        lambda s: s.load_committed_messages("p"),
    ),
    _Handoff(
        "append_message_records",
        lambda: _nested_messages("n1", "n2", "n3"),
        lambda s, given: s.append_message_records("t", given),
        lambda s: s.load_committed_messages("t"),
    ),
    _Handoff(
        "create_run",
        lambda: _nested_run("r2", "t"),
        lambda s, given: s.create_run(given),
        lambda s: s.load_run("r2"),
    ),
    _Handoff(
        "checkpoint",
        lambda: (_nested_messages("n1", "n2", "n3"), _nested_run("r2", "t", updated_at=7)),
        lambda s, given: s.checkpoint("t", *given),
        lambda s: _both(s.load_committed_messages("t"), s.load_run("r2")),
    ),
    _Handoff(
        "checkpoint_append",
        lambda: (_nested_messages("n1", "n2", "n3"), 3, _nested_run("r2", "t", updated_at=7)),
        lambda s, given: s.checkpoint_append("t", *given),
        lambda s: _both(s.load_committed_messages("t"), s.load_run("r2")),
    ),
]


async def _both(first: Awaitable[object], second: Awaitable[object]) -> tuple[object, object]:
    return (await first, await second)


@dataclass(frozen=True, slots=True)
class _Handout:
    """A read returning models, and the read that shows the store's copy again (the same by default)."""

    name: str
    read: Step
    again: Step | None = None


HANDOUTS = [
    _Handout("load_thread", lambda s: s.load_thread("t")),
    _Handout("list_child_threads", lambda s: s.list_child_threads("p")),
    _Handout("load_messages", lambda s: s.load_messages("t")),
    _Handout("load_committed_messages", lambda s: s.load_committed_messages("t")),
    _Handout("load_message_records", lambda s: s.load_message_records("t")),
    _Handout("list_message_records", lambda s: s.list_message_records("t", MessageQuery())),
    _Handout("load_message_record", lambda s: s.load_message_record("t", "m2")),
    _Handout(
        "load_message_records_range", lambda s: s.load_message_records_range("t", MessageSeqRange(from_seq=1, to_seq=3))
    ),
    _Handout("load_thread_state", lambda s: s.load_thread_state("t")),
    _Handout("load_run", lambda s: s.load_run("r1")),
    _Handout("latest_run", lambda s: s.latest_run("t")),
    _Handout("list_runs", lambda s: s.list_runs(RunQuery())),
    _Handout("load_checkpoint", lambda s: s.load_checkpoint("t")),
    _Handout(
        "append_message_records",
        lambda s: s.append_message_records("t", _nested_messages("n1", "n2", "n3")),
        lambda s: s.load_message_records_range("t", MessageSeqRange(from_seq=4, to_seq=6)),
    ),
]
#: Table entries that show thread state: they run only on stores declaring `thread_state`.
STATEFUL = {"save_thread_state", "load_thread_state"}


def _table(rule_id: str, cases: list[Any]) -> list[Any]:
    """pytest params named for each case; those in STATEFUL also require `thread_state`."""
    needs_state = [pytest.mark.rule(rule_id, requires="thread_state")]
    return [pytest.param(case, id=case.name, marks=needs_state if case.name in STATEFUL else []) for case in cases]


def _invalid(message_id: str) -> Message:
    """A message that breaks MOD-3: a user message carrying a tool_call_id."""
    return Message(id=message_id, role=Role.USER, content=[{"type": "text", "text": "?"}], tool_call_id="call-1")


def _invalid_run(run_id: str, thread_id: str) -> RunRecord:
    """A run that breaks MOD-4: done without finished_at."""
    record = run(run_id, thread_id, RunStatus.DONE, updated_at=9)
    record.finished_at = None
    return record


async def _stock_for_refusals(store: ThreadRunStore) -> None:
    """p <- c with logs, a thread state on p, a done run r1 on p, and a log without a thread."""
    await tree(store, {"p": {"c": {}}})
    await log(store, "p", "m1", "m2")
    await log(store, "c", "c1")
    await store.save_thread_state("p", PersistedState(revision=1, extensions={"k": [1]}))
    await store.create_run(run("r1", "p", RunStatus.DONE, updated_at=5))
    await store.save_messages("loose", [user("l1")])


async def _delete(thread_id: str, strategy: ChildThreadDeleteStrategy, store: ThreadRunStore) -> None:
    await store.delete_thread_with_strategy(thread_id, strategy)


async def _with_cycle(store: ThreadRunStore) -> None:
    await store.save_thread(thread("x", parent="y"))
    await store.save_thread(thread("y", parent="x"))
    await log(store, "x", "x1")


@dataclass(frozen=True, slots=True)
class _Refused:
    """An operation that must raise `error` on the stocked store (after `extra` setup), as rule `by` says."""

    name: str
    call: Step
    error: type[StorageError]
    by: str
    extra: Step | None = None


REFUSALS = [
    _Refused(
        "save_thread-invalid", lambda s: s.save_thread(Thread(id="p", active_run_id=" ")), ValidationError, "THR-2"
    ),
    _Refused(
        "save_thread_validated-cycle",
        lambda s: s.save_thread_validated(thread("p", parent="c")),
        ValidationError,
        "HIE-5",
    ),
    _Refused(
        "save_thread_validated-missing-parent",
        lambda s: s.save_thread_validated(thread("n", parent="ghost")),
        ValidationError,
        "HIE-5",
    ),
    _Refused(
        "update_thread_metadata-unknown",
        lambda s: s.update_thread_metadata("ghost", ThreadMetadata()),
        NotFoundError,
        "THR-3",
    ),
    *(
        _Refused(
            f"delete_with_strategy-unknown-{strategy.value}",
            partial(_delete, "ghost", strategy),
            NotFoundError,
            "DEL-1",
        )
        for strategy in ChildThreadDeleteStrategy
    ),
    _Refused(
        "delete_with_strategy-reject-with-child",
        lambda s: s.delete_thread_with_strategy("p", ChildThreadDeleteStrategy.REJECT),
        ValidationError,
        "DEL-2",
    ),
    _Refused(
        "delete_with_strategy-cascade-over-cycle",
        lambda s: s.delete_thread_with_strategy("x", ChildThreadDeleteStrategy.CASCADE),
        ValidationError,
        "DEL-5",
        _with_cycle,
    ),
    _Refused(
        "save_messages-invalid",
        lambda s: s.save_messages("p", [user("n1"), _invalid("n2")]),
        ValidationError,
        "MSG-2",
    ),
    _Refused(
        "save_messages-duplicate", lambda s: s.save_messages("p", [user("n1"), user("n1")]), ValidationError, "MSG-2"
    ),
    _Refused("delete_messages-unknown", lambda s: s.delete_messages("loose"), NotFoundError, "MSG-3"),
    _Refused("append-committed-id", lambda s: log(s, "p", "m3", "m1"), ValidationError, "MSG-5"),
    _Refused("append-duplicate-id", lambda s: log(s, "p", "m3", "m3"), ValidationError, "MSG-5"),
    _Refused("append-invalid-message", lambda s: log(s, "p", "m3", _invalid("m4")), ValidationError, "MSG-5"),
    _Refused("append-unknown-thread", lambda s: log(s, "ghost", "g1", _invalid("g2")), ValidationError, "MSG-5"),
    _Refused(
        "create_run-invalid",
        lambda s: s.create_run(RunRecord(run_id="r2", thread_id="p", agent_id=" ")),
        ValidationError,
        "RUN-1",
    ),
    _Refused(
        "create_run-duplicate",
        lambda s: s.create_run(run("r1", "p", RunStatus.RUNNING, updated_at=9)),
        AlreadyExistsError,
        "RUN-1",
    ),
    _Refused(
        "checkpoint-invalid-run",
        lambda s: s.checkpoint("p", [user("n1")], _invalid_run("r2", "p")),
        ValidationError,
        "CKP-1",
    ),
    _Refused(
        "checkpoint-invalid-messages",
        lambda s: s.checkpoint("p", [user("n1"), _invalid("n2")], run("r2", "p")),
        ValidationError,
        "CKP-1",
    ),
    _Refused(
        "checkpoint-missing-parent",
        lambda s: s.checkpoint("n", [user("n1")], run("r2", "n", parent_thread_id="ghost")),
        ValidationError,
        "CKP-1",
    ),
    _Refused(
        "checkpoint_append-version-conflict",
        lambda s: s.checkpoint_append("p", [user("m3")], 1, run("r2", "p")),
        VersionConflictError,
        "CKP-3",
    ),
    _Refused(
        "checkpoint_append-committed-id",
        lambda s: s.checkpoint_append("p", [user("m3"), user("m1")], 2, run("r2", "p")),
        ValidationError,
        "CKP-4",
    ),
]
#: Ids a refused operation names that may own a log or state without a thread record.
UNLISTED = ("ghost", "n", "loose")

LOG_IDS = ("m1", "m2", "m3")


async def _log_reads(store: ThreadRunStore) -> dict[str, list[str | None]]:
    """The message ids of thread `t` as each log read shows them (all user messages: no view filtering)."""
    committed = await store.load_committed_messages("t") or []
    view = await store.load_messages("t") or []
    records = await store.load_message_records("t") or []
    page = await store.list_message_records("t", MessageQuery(limit=200))
    ranged = await store.load_message_records_range("t", MessageSeqRange(from_seq=1, to_seq=1000))
    singles = [await store.load_message_record("t", message_id) for message_id in LOG_IDS]
    resumed = await store.load_checkpoint("t")
    return {
        "load_committed_messages": [m.id for m in committed],
        "load_messages": [m.id for m in view],
        "load_message_records": [r.message_id for r in records],
        "list_message_records": [r.message_id for r in page.records],
        "load_message_records_range": [r.message_id for r in ranged],
        "load_message_record": [r.message_id for r in singles if r is not None],
        "load_checkpoint": [m.id for m in resumed.messages] if resumed else [],
    }


LOG_READS = (
    "load_committed_messages",
    "load_messages",
    "load_message_records",
    "list_message_records",
    "load_message_records_range",
    "load_message_record",
    "load_checkpoint",
)


def _log_shown(*ids: str) -> dict[str, list[str | None]]:
    """What `_log_reads` returns when every log read shows `ids`."""
    return {read: list(ids) for read in LOG_READS}


async def _thread_reads(store: ThreadRunStore) -> tuple[object, ...]:
    """Thread `t` through load_thread, the children of `p`, the children query and list_threads.

    Lists are compared sorted: their order is THR-5's and QRY-3's business, which
    their own tests check; here only what each read shows counts.
    """
    children = await store.list_child_threads("p")
    page = await store.list_threads_query(ThreadQuery(parent_filter=ThreadParentFilter.parent("p")))
    return (
        await store.load_thread("t"),
        sorted(c.id for c in children),
        sorted(page.items),
        sorted(await store.list_threads(0, 10)),
    )


async def _run_reads(store: ThreadRunStore) -> tuple[object, ...]:
    """Run `r2` through load_run, latest_run of `t` and list_runs of `t` (sorted: runs of one second tie, RUN-4)."""
    latest = await store.latest_run("t")
    page = await store.list_runs(RunQuery(thread_id="t"))
    return (await store.load_run("r2"), latest.run_id if latest else None, sorted(r.run_id for r in page.items))


async def _stock_for_reads(store: ThreadRunStore) -> None:
    """p, and t (updated at 1) under p with a log m1 and a run r1; q at 5 is the most recent."""
    await store.save_thread(thread("p", updated_at=3))
    await store.save_thread(thread("t", parent="p", updated_at=1))
    await store.save_thread(thread("q", updated_at=5))
    await log(store, "t", "m1")
    await store.create_run(run("r1", "t", updated_at=2))


async def _state_reads(store: ThreadRunStore) -> tuple[object, ...]:
    """The state of `t` through load_thread_state and load_checkpoint."""
    resumed = await store.load_checkpoint("t")
    return (await store.load_thread_state("t"), resumed.thread_state if resumed else None)


def _projected(run_id: str, thread_id: str = "t") -> Step:
    async def latest_of_thread(store: ThreadRunStore) -> tuple[object, ...]:
        found = await store.load_thread(thread_id)
        return (found.latest_run_id if found else None, *await _run_reads(store))

    return latest_of_thread


@dataclass(frozen=True, slots=True)
class _Visible:
    """A write, the reads that must show it (run once before it, too), and what they must show, as rule `by` says."""

    name: str
    write: Step
    reads: Step
    shown: object
    by: str


VISIBLE = [
    _Visible(
        "save_thread",
        lambda s: s.save_thread(thread("t", parent="p", updated_at=9, title="new")),
        _thread_reads,
        (thread("t", parent="p", updated_at=9, title="new"), ["t"], ["t"], ["p", "q", "t"]),
        "THR-2",
    ),
    _Visible(
        "save_thread_validated",
        lambda s: s.save_thread_validated(thread("t", parent="p", updated_at=9, title="new")),
        _thread_reads,
        (thread("t", parent="p", updated_at=9, title="new"), ["t"], ["t"], ["p", "q", "t"]),
        "HIE-5",
    ),
    _Visible(
        "update_thread_metadata",
        lambda s: s.update_thread_metadata("t", ThreadMetadata(updated_at=9, title="new")),
        _thread_reads,
        (thread("t", parent="p", updated_at=9, title="new"), ["t"], ["t"], ["p", "q", "t"]),
        "THR-3",
    ),
    _Visible("delete_thread", lambda s: s.delete_thread("t"), _thread_reads, (None, [], [], ["p", "q"]), "THR-4"),
    _Visible(
        "delete_thread_with_strategy",
        lambda s: s.delete_thread_with_strategy("p", ChildThreadDeleteStrategy.CASCADE),
        _thread_reads,
        (None, [], [], ["q"]),
        "DEL-4",
    ),
    _Visible("delete_thread-log", lambda s: s.delete_thread("t"), _log_reads, _log_shown(), "THR-4"),
    _Visible(
        "save_messages",
        lambda s: s.save_messages("t", [user("m2"), user("m3")]),
        _log_reads,
        _log_shown("m2", "m3"),
        "MSG-2",
    ),
    _Visible("delete_messages", lambda s: s.delete_messages("t"), _log_reads, _log_shown(), "MSG-3"),
    _Visible(
        "append_message_records", lambda s: log(s, "t", "m2", "m3"), _log_reads, _log_shown("m1", "m2", "m3"), "MSG-4"
    ),
    _Visible(
        "create_run",
        lambda s: s.create_run(run("r2", "t", updated_at=3)),
        _run_reads,
        (run("r2", "t", updated_at=3), "r2", ["r1", "r2"]),
        "RUN-2",
    ),
    _Visible(
        "checkpoint",
        lambda s: s.checkpoint("t", [user("m1"), user("m2")], run("r2", "t", updated_at=3)),
        _projected("r2"),
        ("r2", run("r2", "t", updated_at=3), "r2", ["r1", "r2"]),
        "CKP-2",
    ),
    _Visible(
        "checkpoint-log",
        lambda s: s.checkpoint("t", [user("m2")], run("r2", "t")),
        _log_reads,
        _log_shown("m2"),
        "CKP-2",
    ),
    _Visible(
        "checkpoint_append",
        lambda s: s.checkpoint_append("t", [user("m2")], 1, run("r2", "t", updated_at=3)),
        _projected("r2"),
        ("r2", run("r2", "t", updated_at=3), "r2", ["r1", "r2"]),
        "CKP-4",
    ),
    _Visible(
        "checkpoint_append-log",
        lambda s: s.checkpoint_append("t", [user("m2"), user("m3")], 1, run("r2", "t")),
        _log_reads,
        _log_shown("m1", "m2", "m3"),
        "CKP-4",
    ),
    _Visible(
        "save_thread_state",
        lambda s: s.save_thread_state("t", PersistedState(revision=2, extensions={"k": "v"})),
        _state_reads,
        (PersistedState(revision=2, extensions={"k": "v"}),) * 2,
        "THR-6",
    ),
]


class SafetyRules(CancellationRules):
    """ISO-1 (nothing shared with callers), ATO-1 (a refused call changes nothing), ATO-2 (read your writes)."""

    @rule("ISO-1")
    @pytest.mark.parametrize("case", _table("ISO-1", HANDOFFS))
    async def test_changing_a_passed_model_after_the_call_changes_nothing_stored(
        self, store: ThreadRunStore, case: _Handoff
    ) -> None:
        """After a write returns, mutating what was passed (nested lists and dicts too) leaves the store as it was."""
        await _stocked(store)
        given = case.given()
        await case.write(store, given)
        kept = copy.deepcopy(await case.kept(store))
        assert kept not in (None, [], (None, None)), f"{case.name} stored nothing to compare"
        _tamper(given)
        expect_same(await case.kept(store), kept, "ISO-1", f"what {case.name} kept, after the caller changed its model")

    @rule("ISO-1")
    @pytest.mark.parametrize("case", _table("ISO-1", HANDOUTS))
    async def test_changing_a_returned_model_changes_nothing_stored(
        self, store: ThreadRunStore, case: _Handout
    ) -> None:
        """Mutating what a read returned (nested lists and dicts too) does not change what the next read returns."""
        await _stocked(store)
        returned = await case.read(store)
        again = case.again or case.read
        kept = copy.deepcopy(returned if case.again is None else await again(store))
        assert kept not in (None, []), f"{case.name} returned nothing to compare"
        _tamper(returned)
        expect_same(await again(store), kept, "ISO-1", f"what {case.name} gives, after the caller changed a result")

    @rule("ATO-1")
    @pytest.mark.parametrize("case", REFUSALS, ids=[case.name for case in REFUSALS])
    async def test_refused_operation_changes_nothing(self, store: ThreadRunStore, case: _Refused) -> None:
        """An operation that raises leaves every thread, log, state and run as before; no log appears.

        Whether the call must raise, and what, is the business of the rule that refuses
        it (`case.by`: THR-2, HIE-5, ...): a store that lets it through breaks that rule,
        which this test then blames, and ATO-1 is not checked past it (there is nothing
        to roll back).
        """
        await _stock_for_refusals(store)
        if case.extra is not None:
            await case.extra(store)
        before = await snapshot(store, *UNLISTED)
        try:
            with answering(case.by):
                await case.call(store)
        except StorageError:
            expect_same(await snapshot(store, *UNLISTED), before, "ATO-1", f"the store after the refused {case.name}")
        else:
            raise BrokenCall(case.by, f"{case.name} returned instead of raising {case.error.__name__}")

    @rule("ATO-2")
    @pytest.mark.parametrize("case", _table("ATO-2", VISIBLE))
    async def test_write_is_visible_to_every_later_read(
        self, store: ThreadRunStore, fresh: Reopen, case: _Visible
    ) -> None:
        """Once a write returns, every read shows it, including reads made (and maybe cached) before it.

        What the write and the reads should show is the business of their own rules (THR-2,
        THR-5, MSG-4, ...): the reads after the write must equal those of a fresh store given
        the same write with no read before it. Only when that fresh store shows `case.shown`
        (so the write and reads keep their own rules) does the case check ATO-2; otherwise the
        case blames the rule that says what the write leaves (`case.by`: THR-2, MSG-4, ...),
        and ATO-2 is not checked past it.
        """
        await _stock_for_reads(store)
        before = await case.reads(store)
        with answering(case.by):
            await case.write(store)
        after = await case.reads(store)
        async with fresh() as unread:
            await _stock_for_reads(unread)
            with answering(case.by):
                await case.write(unread)
            expected = await case.reads(unread)
        if not same(expected, case.shown):
            raise BrokenCall(case.by, f"a fresh store given {case.name} reads {expected!r}, not {case.shown!r}")
        assert before != expected, f"{case.name}: the case reads nothing the write changes"
        expect(same(after, expected), "ATO-2", f"reads after {case.name} show {after!r}, not {expected!r}")
