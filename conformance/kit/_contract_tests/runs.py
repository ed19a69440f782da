"""Contract tests: run records (RUN-1..4, MOD-4)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from conformance.contract._enums import RunStatus, WaitingReason
from conformance.contract._errors import AlreadyExistsError, ValidationError
from conformance.contract._models import JsonValue
from conformance.contract._queries import RunQuery
from conformance.contract._runs import (
    MessageSeqRange,
    PersistedState,
    RunMessageInput,
    RunMessageOutput,
    RunOutcome,
    RunRecord,
    RunRequestSnapshot,
    RunWaitingState,
)
from conformance.contract._stores import ThreadRunStore
from conformance.kit._differ import diff, named, shown
from conformance.kit._exact import expect_same
from conformance.kit._runner import rule
from conformance.kit._scenarios import activation, run, snapshot
from conformance.kit._violation import expect

WAITING = RunWaitingState(reason=WaitingReason.USER_INPUT, ticket_ids=["ticket-1"])
OUTCOME = RunOutcome(termination_reason={"type": "natural_end"}, final_output="ok")


def _variant(status: RunStatus = RunStatus.CREATED, **changes: Any) -> RunRecord:
    """Run `r1` of thread `t1` in `status` (valid, as `run` builds it), with `changes` applied."""
    return replace(run("r1", "t1", status), **changes)


def _seqs(from_seq: int, to_seq: int) -> MessageSeqRange:
    return MessageSeqRange(from_seq=from_seq, to_seq=to_seq)


INVALID_RUNS: dict[str, RunRecord] = {
    "blank-run-id": _variant(run_id="  "),
    "empty-thread-id": _variant(thread_id=""),
    "blank-agent-id": _variant(agent_id=" \t"),
    "input-of-another-thread": _variant(input=RunMessageInput(thread_id="t2")),
    "output-of-another-thread": _variant(output=RunMessageOutput(thread_id="t2")),
    "activation-intent-of-another-thread": _variant(activation=activation("t2")),
    "activation-input-of-another-thread": _variant(activation=activation("t1", input_thread="t2")),
    "input-range-from-0": _variant(input=RunMessageInput(thread_id="t1", range=_seqs(0, 2))),
    "output-range-from-0": _variant(output=RunMessageOutput(thread_id="t1", range=_seqs(0, 1), message_ids=["a", "b"])),
    "input-range-reversed": _variant(input=RunMessageInput(thread_id="t1", range=_seqs(3, 2))),
    "output-range-reversed": _variant(output=RunMessageOutput(thread_id="t1", range=_seqs(3, 2))),
    "output-range-longer-than-ids": _variant(
        output=RunMessageOutput(thread_id="t1", range=_seqs(1, 3), message_ids=["a", "b"])
    ),
    "output-range-shorter-than-ids": _variant(
        output=RunMessageOutput(thread_id="t1", range=_seqs(2, 2), message_ids=["a", "b"])
    ),
    "created-with-waiting": _variant(waiting=WAITING),
    "created-with-outcome": _variant(outcome=OUTCOME),
    "created-with-finished-at": _variant(finished_at=5),
    "running-with-waiting": _variant(RunStatus.RUNNING, waiting=WAITING),
    "running-with-outcome": _variant(RunStatus.RUNNING, outcome=OUTCOME),
    "running-with-finished-at": _variant(RunStatus.RUNNING, finished_at=5),
    "waiting-without-waiting": _variant(RunStatus.WAITING, waiting=None),
    "waiting-with-outcome": _variant(RunStatus.WAITING, outcome=OUTCOME),
    "waiting-with-finished-at": _variant(RunStatus.WAITING, finished_at=5),
    "done-without-finished-at": _variant(RunStatus.DONE, finished_at=None),
    "done-with-waiting": _variant(RunStatus.DONE, waiting=WAITING),
    "done-reason-differs-from-outcome": _variant(RunStatus.DONE, termination_reason={"type": "cancelled"}),
    "done-output-differs-from-outcome": _variant(RunStatus.DONE, final_output="something else"),
    "done-error-differs-from-outcome": _variant(
        RunStatus.DONE,
        error_payload={"code": 2},
        outcome=RunOutcome(termination_reason={"type": "error", "value": "boom"}, error_payload={"code": 1}),
    ),
}

VALID_EDGE_RUNS: dict[str, RunRecord] = {
    "done-without-outcome": _variant(RunStatus.DONE, outcome=None),
    "done-matching-outcome": _variant(RunStatus.DONE, termination_reason={"type": "natural_end"}, final_output="ok"),
    "single-seq-ranges": _variant(
        input=RunMessageInput(thread_id="t1", range=_seqs(1, 1)),
        output=RunMessageOutput(thread_id="t1", range=_seqs(2, 2), message_ids=["m2"]),
    ),
    "output-ids-without-range": _variant(output=RunMessageOutput(thread_id="t1", message_ids=["m1", "m2"])),
    "waiting-with-state": _variant(RunStatus.WAITING),
    "activation-of-its-own-thread": _variant(activation=activation("t1", agent_id="agent", trigger=["m1"])),
}

TERMINATION_REASONS: dict[str, dict[str, JsonValue]] = {
    "natural-end": {"type": "natural_end"},
    "cancelled": {"type": "cancelled"},
    "suspended": {"type": "suspended"},
    "behavior-requested": {"type": "behavior_requested"},
    "blocked": {"type": "blocked", "value": "policy says no"},
    "error": {"type": "error", "value": "boom"},
    "stopped-with-detail": {"type": "stopped", "value": {"code": "max_rounds", "detail": "after 8 rounds"}},
    "stopped": {"type": "stopped", "value": {"code": "max_rounds"}},
}


#: An activation with every part of upstream's `RunActivationSnapshot` set, as its serde writes it:
#: a human-in-the-loop resume of run r0, inference overrides, a frontend tool whose
#: parameters are free JSON, the trace of a sub-agent call and a seeded decision.
FULL_ACTIVATION: dict[str, JsonValue] = {
    "intent": {"agent_id": "agent-x", "thread_id": "t1", "kind": {"kind": "hitl_resume", "run_id": "r0"}},
    "input": {
        "thread_id": "t1",
        "range": {"from_seq": 1, "to_seq": 2},
        "trigger_message_ids": ["m2"],
        "selected_message_ids": ["m1", "m2"],
        "context_policy": "all",
        "compacted_snapshot_id": "snap-1",
    },
    "options": {
        "overrides": {
            "upstream_model": "model-b",
            "temperature": 0.5,
            "max_tokens": 512,
            "top_p": 0.25,
            "reasoning_effort": "high",
        },
        "frontend_tools": [
            {
                "id": "pick",
                "name": "Pick",
                "description": "Let the user pick one",
                "parameters": {"type": "object", "properties": {"choices": {"type": "array"}}, "nested": [1, None]},
                "category": None,
                "metadata": {"ui": {"hint": "list"}},
            }
        ],
    },
    "trace": {
        "parent_run_id": "r0",
        "parent_thread_id": "p",
        "origin": "subagent",
        "adapter": "a2a",
        "run_mode": "resume",
        "dispatch_id": "d-1",
        "session_id": "s-1",
        "transport_request_id": "tr-1",
        "correlation_id": "c-1",
    },
    "seeded_decisions": [
        [
            "call-1",
            {
                "decision_id": "dec-1",
                "action": "resume",
                "result": {"approved": True},
                "reason": "ok",
                "updated_at": 104,
            },
        ]
    ],
    "resolution_id": "res-1",
}
#: A ticket with every field of upstream's `RunWaitingTicket`; its `arguments` are free JSON.
FULL_TICKET: dict[str, JsonValue] = {
    "ticket_id": "k1",
    "tool_call_id": "call-1",
    "tool_name": "shell",
    "arguments": {"command": "ls", "flags": ["-l", None, 0]},
    "resume_mode": "use_decision_as_tool_result",
    "reason": "shell needs permission",
    "updated_at": 105,
}


def _full_run(status: RunStatus, reason: dict[str, JsonValue] | None = None) -> RunRecord:
    """A run with every field set: a `waiting` one carries its waiting state, a `done` one `reason`."""
    record = RunRecord(
        run_id="full",
        thread_id="t1",
        agent_id="agent-x",
        parent_run_id="r0",
        resolution_id="res-1",
        activation=FULL_ACTIVATION,
        request=RunRequestSnapshot(
            origin="A2A",
            sender_id="peer",
            input_message_ids=["m1", "m2"],
            input_message_count=2,
            request_extras={"k": ["v", {"deep": None}], "values": [1, 2.5, True, None, "s"]},
            parent_thread_id="p",
            transport_request_id="tr-1",
        ),
        input=RunMessageInput(
            thread_id="t1",
            range=_seqs(1, 2),
            trigger_message_ids=["m2"],
            selected_message_ids=["m1", "m2"],
            context_policy="all",
            compacted_snapshot_id="snap-1",
        ),
        output=RunMessageOutput(thread_id="t1", range=_seqs(3, 4), message_ids=["m3", "m4"]),
        status=status,
        dispatch_id="d-1",
        session_id="s-1",
        transport_request_id="tr-1",
        created_at=100,
        started_at=101,
        updated_at=110,
        steps=3,
        input_tokens=1200,
        output_tokens=340,
        state=PersistedState(revision=7, extensions={"memory": {"facts": ["a"]}, "empty": {}}),
    )
    if status is RunStatus.WAITING:
        record.waiting = RunWaitingState(
            reason=WaitingReason.TOOL_PERMISSION,
            ticket_ids=["k1"],
            tickets=[FULL_TICKET],
            since_dispatch_id="d-1",
            message="approve the shell call?",
        )
    if reason is not None:
        error: JsonValue = {"trace": ["frame-1", "frame-2"]}
        record.finished_at = 110
        record.termination_reason = reason
        record.final_output = "answer"
        record.error_payload = error
        record.outcome = RunOutcome(termination_reason=reason, final_output="answer", error_payload=error)
    return record


FULL_RUNS: dict[str, RunRecord] = {
    "waiting": _full_run(RunStatus.WAITING),
    **{f"done-{name}": _full_run(RunStatus.DONE, reason) for name, reason in TERMINATION_REASONS.items()},
}


async def _run_ids(store: ThreadRunStore, query: RunQuery) -> list[str]:
    page = await store.list_runs(query)
    return [record.run_id for record in page.items]


def _expect_prefixed(found: list[str], expected: list[str], prefix: str) -> None:
    """`list_runs(id_prefix=prefix)` gave `found`: a run outside the prefix breaks SEC-1 too, a missing one RUN-4."""
    outside = [run_id for run_id in found if run_id not in expected]
    expect(not outside, ("RUN-4", "SEC-1"), f"id_prefix {prefix!r} lists {outside!r}, runs of threads outside it")
    expect(found == expected, "RUN-4", f"id_prefix {prefix!r} lists {found!r}, expected {expected!r}")


class RunRules:
    """RUN-1..4: creating, loading, choosing the latest and listing run records; MOD-4 on create."""

    @rule("RUN-1")
    async def test_create_run_stores_the_record(self, store: ThreadRunStore) -> None:
        """A created run reads back and is listed."""
        await store.create_run(run("r1", "t1", RunStatus.RUNNING, created_at=3, updated_at=4))
        found, due = await store.load_run("r1"), run("r1", "t1", RunStatus.RUNNING, created_at=3, updated_at=4)
        assert found == due, f"load_run('r1') after create_run: {diff(found, due)}"
        listed = await _run_ids(store, RunQuery())
        assert listed == ["r1"], f"list_runs() after create_run lists {listed}; expected ['r1']"

    @rule("RUN-1", "MOD-4")
    @pytest.mark.parametrize("invalid", list(INVALID_RUNS.values()), ids=list(INVALID_RUNS))
    async def test_create_run_rejects_invalid_run(self, store: ThreadRunStore, invalid: RunRecord) -> None:
        """A run breaking MOD-4 raises ValidationError and nothing is stored."""
        before = await snapshot(store)
        with pytest.raises(ValidationError):
            await store.create_run(invalid)
        after = await snapshot(store)
        assert after == before, f"create_run refused an invalid run but changed the store: {diff(after, before)}"

    @rule("RUN-1", "MOD-4")
    @pytest.mark.parametrize("valid", list(VALID_EDGE_RUNS.values()), ids=list(VALID_EDGE_RUNS))
    async def test_create_run_accepts_valid_edge_cases(self, store: ThreadRunStore, valid: RunRecord) -> None:
        """A done run without outcome, single-seq ranges, output ids without a range, an own-thread activation.

        The run is stored (that it reads back whole is RUN-2's).
        """
        await store.create_run(valid)
        found = await store.load_run(valid.run_id)
        assert found is not None, f"create_run took a valid run, yet load_run({valid.run_id!r}) gives None"

    @rule("RUN-1")
    async def test_create_run_with_existing_id_keeps_the_old_record(self, store: ThreadRunStore) -> None:
        """Creating r1 twice raises AlreadyExistsError; the first r1 stays, whole."""
        first = run("r1", "t1", RunStatus.CREATED, created_at=1)
        await store.create_run(first)
        with pytest.raises(AlreadyExistsError):
            await store.create_run(run("r1", "t2", RunStatus.RUNNING, created_at=2, updated_at=9))
        kept = await store.load_run("r1")
        assert kept == first, f"create_run of an existing id raised, yet load_run('r1') changed: {diff(kept, first)}"
        listed = await _run_ids(store, RunQuery(thread_id="t2"))
        assert listed == [], f"the refused create_run lists {listed} under thread 't2'; expected []"
        latest = await store.latest_run("t1")
        assert latest == first, f"latest_run('t1') after the refused create_run: {diff(latest, first)}"

    @rule("RUN-2")
    async def test_load_unknown_run_returns_none(self, store: ThreadRunStore) -> None:
        """Loading a run id that was never created gives None, not an error."""
        await store.create_run(run("r1", "t1"))
        found = await store.load_run("r2")
        assert found is None, f"load_run('r2') of an unknown id gives {named(found)}; expected None"

    @rule("RUN-2", "MOD-5")
    @pytest.mark.parametrize("full", list(FULL_RUNS.values()), ids=list(FULL_RUNS))
    async def test_every_run_field_survives_storage(self, store: ThreadRunStore, full: RunRecord) -> None:
        """A run with every field set reads back equal, and its JSON is unchanged."""
        await store.create_run(full)
        loaded = await store.load_run("full")
        expect_same(loaded, full, ("RUN-2", "MOD-5"), "load_run('full')")
        assert loaded is not None, "load_run('full') gives None for a run just created"
        expect_same(loaded.to_json(), full.to_json(), "MOD-5", "the JSON of load_run('full')")

    @rule("RUN-3")
    async def test_latest_run_is_none_for_a_thread_without_runs(self, store: ThreadRunStore) -> None:
        """A thread whose runs are all elsewhere has no latest run."""
        await store.create_run(run("r1", "t10"))
        await store.create_run(run("r2", "other"))
        latest = await store.latest_run("t1")
        assert latest is None, f"latest_run('t1') of a thread without runs gives {named(latest)}; expected None"

    @rule("RUN-3")
    async def test_latest_run_picks_the_greatest_updated_at(self, store: ThreadRunStore) -> None:
        """updated_at decides, not creation time, write order or id; other threads do not count."""
        await store.create_run(run("r-a", "t1", created_at=1, updated_at=5))
        await store.create_run(run("r-b", "t1", created_at=2, updated_at=9))
        await store.create_run(run("r-c", "t1", created_at=3, updated_at=7))
        await store.create_run(run("r-d", "t10", created_at=4, updated_at=99))
        await store.create_run(run("r-e", "other", created_at=5, updated_at=99))
        latest, due = await store.latest_run("t1"), run("r-b", "t1", created_at=2, updated_at=9)
        assert latest == due, f"latest_run('t1') (updated_at 5, 9, 7): {diff(latest, due)}"

    @rule("RUN-3")
    async def test_latest_run_tie_goes_to_the_last_created(self, store: ThreadRunStore) -> None:
        """Among runs with equal updated_at, the one created last wins, whatever its id or created_at."""
        for run_id, created_at in [("r1", 3), ("r3", 2), ("r2", 1)]:
            await store.create_run(run(run_id, "t1", created_at=created_at, updated_at=5))
            latest = await store.latest_run("t1")
            assert latest is not None, f"latest_run('t1') gives None after create_run({run_id!r})"
            assert latest.run_id == run_id, (
                f"latest_run('t1') of runs tied at updated_at 5 is {latest.run_id!r}; expected {run_id!r}, created last"
            )

    @rule("RUN-3", "CKP-2")
    async def test_latest_run_tie_goes_to_the_last_checkpointed(self, store: ThreadRunStore) -> None:
        """Checkpointing an older run with an equal updated_at makes it the latest."""
        await store.create_run(run("r1", "t1", created_at=1, updated_at=5))
        await store.create_run(run("r2", "t1", created_at=2, updated_at=5))
        rewritten = run("r1", "t1", RunStatus.RUNNING, created_at=1, updated_at=5)
        await store.checkpoint("t1", [], rewritten)
        latest = await store.latest_run("t1")
        assert latest == rewritten, f"latest_run('t1') after checkpointing r1 (tied at 5): {diff(latest, rewritten)}"

    @rule("RUN-4")
    async def test_run_filters_are_taken_as_given(self, store: ThreadRunStore) -> None:
        """A thread_id filter " t " or id prefix " t" matches no run of thread t: run filters are not normalized."""
        await store.create_run(run("r1", "t"))
        for query in [RunQuery(thread_id=" t "), RunQuery(id_prefix=" t")]:
            page = await store.list_runs(query)
            assert (page.total, [r.run_id for r in page.items]) == (0, []), f"{query} matched runs of thread 't'"

    @rule("RUN-4")
    async def test_list_runs_filters_by_exact_thread_id(self, store: ThreadRunStore) -> None:
        """thread_id keeps that thread's runs only: not those of t10 or t2."""
        await store.create_run(run("r1", "t1", created_at=1))
        await store.create_run(run("r2", "t10", created_at=2))
        await store.create_run(run("r3", "t2", created_at=3))
        await store.create_run(run("r4", "t1", created_at=4))
        page = await store.list_runs(RunQuery(thread_id="t1"))
        listed = [r.run_id for r in page.items]
        assert listed == ["r1", "r4"], f"list_runs(thread_id='t1') lists {listed}; expected ['r1', 'r4']"
        counts = (page.total, page.has_more)
        assert counts == (2, False), f"list_runs(thread_id='t1') gives (total, has_more) {counts}; expected (2, False)"

    @rule("RUN-4")
    async def test_list_runs_filters_by_status(self, store: ThreadRunStore) -> None:
        """status keeps the runs in that status, across threads."""
        await store.create_run(run("r1", "t1", RunStatus.DONE, created_at=1))
        await store.create_run(run("r2", "t1", RunStatus.RUNNING, created_at=2))
        await store.create_run(run("r3", "t2", RunStatus.DONE, created_at=3))
        await store.create_run(run("r4", "t2", RunStatus.WAITING, created_at=4))
        for query, due in [
            (RunQuery(status=RunStatus.DONE), ["r1", "r3"]),
            (RunQuery(status=RunStatus.DONE, thread_id="t2"), ["r3"]),
            (RunQuery(status=RunStatus.CREATED), []),
        ]:
            listed = await _run_ids(store, query)
            assert listed == due, (
                f"list_runs(status={shown(query.status)}, thread_id={query.thread_id!r}) lists {listed}; expected {due}"
            )

    @rule("RUN-4", "SEC-1")
    async def test_list_runs_id_prefix_matches_the_thread_id(self, store: ThreadRunStore) -> None:
        """id_prefix is a prefix of the run's thread_id, not of its run_id."""
        await store.create_run(run("chat-run", "x-thread", created_at=1))
        await store.create_run(run("x-run", "chat-1", created_at=2))
        await store.create_run(run("y-run", "chat", created_at=3))
        await store.create_run(run("z-run", "a-chat", created_at=4))
        _expect_prefixed(await _run_ids(store, RunQuery(id_prefix="chat")), ["x-run", "y-run"], "chat")

    @rule("RUN-4", "SEC-1")
    async def test_list_runs_id_prefix_is_literal(self, store: ThreadRunStore) -> None:
        """`_`, `%`, `*` and `\\` in id_prefix match only themselves."""
        for number, thread_id in enumerate(["a_b", "axb", "a%c", "abc", "a\\e", "aze"]):
            await store.create_run(run(f"r{number}", thread_id, created_at=number))
        for prefix, expected in [("a_", ["r0"]), ("a%", ["r2"]), ("a*", []), ("a\\", ["r4"])]:
            _expect_prefixed(await _run_ids(store, RunQuery(id_prefix=prefix)), expected, prefix)

    @rule("RUN-4")
    async def test_list_runs_orders_by_created_at_then_run_id(self, store: ThreadRunStore) -> None:
        """Older runs first; runs created in the same second go by run_id, whatever the write order."""
        for run_id, created_at in [("r-b", 2), ("r-c", 1), ("r-a", 2), ("r-d", 1), ("r-0", 3)]:
            await store.create_run(run(run_id, f"t-{run_id}", created_at=created_at))
        listed, due = await _run_ids(store, RunQuery()), ["r-c", "r-d", "r-a", "r-b", "r-0"]
        assert listed == due, f"list_runs() lists {listed}; expected {due}, by created_at then run_id"

    @rule("RUN-4")
    async def test_list_runs_pages_with_total_and_has_more(self, store: ThreadRunStore) -> None:
        """offset and limit cut the ordered runs; total counts all matches; has_more iff runs remain."""
        for number in range(5):
            await store.create_run(run(f"r{number}", "t1", created_at=number))
        pages = [await store.list_runs(RunQuery(offset=o, limit=2)) for o in (0, 3, 4, 9)]
        listed, due = [[r.run_id for r in p.items] for p in pages], [["r0", "r1"], ["r3", "r4"], ["r4"], []]
        assert listed == due, f"list_runs(offset 0, 3, 4, 9; limit=2) of 5 lists {listed}; expected {due}"
        totals = [p.total for p in pages]
        assert totals == [5, 5, 5, 5], (
            f"list_runs(offset 0, 3, 4, 9; limit=2) of 5 gives totals {totals}; expected 5 each"
        )
        more = [p.has_more for p in pages]
        due_more = [True, False, False, False]
        assert more == due_more, (
            f"list_runs(offset 0, 3, 4, 9; limit=2) of 5 gives has_more {more}; expected {due_more}"
        )

    @rule("RUN-4")
    async def test_list_runs_limit_zero_returns_one_run(self, store: ThreadRunStore) -> None:
        """limit is clamped to at least 1: limit 0 returns the first run and says more remain."""
        for number in range(3):
            await store.create_run(run(f"r{number}", "t1", created_at=number))
        page = await store.list_runs(RunQuery(limit=0))
        listed = [r.run_id for r in page.items]
        assert listed == ["r0"], f"list_runs(limit=0) of 3 lists {listed}; expected ['r0'] (limit clamped to 1)"
        counts = (page.total, page.has_more)
        assert counts == (3, True), f"list_runs(limit=0) of 3 gives (total, has_more) {counts}; expected (3, True)"

    @rule("RUN-4")
    async def test_list_runs_limit_is_capped_at_200(self, store: ThreadRunStore) -> None:
        """Asking for 500 of 205 runs returns the first 200, with has_more."""
        for number in range(205):
            await store.create_run(run(f"r{number:03}", "t1", created_at=number))
        page = await store.list_runs(RunQuery(limit=500))
        listed = [r.run_id for r in page.items]
        assert listed == [f"r{number:03}" for number in range(200)], (
            f"list_runs(limit=500) of 205 lists {len(listed)} runs {shown(listed)}; expected r000..r199"
        )
        counts = (page.total, page.has_more)
        assert counts == (205, True), (
            f"list_runs(limit=500) of 205 gives (total, has_more) {counts}; expected (205, True)"
        )
