"""Contract tests: numbers and arguments (SPEC section 2, "Numbers" and "Arguments before state").

Every integer of a model (timestamps, seqs, counts, revisions) and every integer
argument (offsets, limits, seq bounds, `expected_version`) is `>= 0`: upstream's
fields are `u64`, `usize` or `u32`, so serde cannot even read a negative one. A store
refuses one with `ValidationError` and changes nothing; each case names the rule of
the model or method it reaches (MOD-2, MOD-3, MOD-4, THR-3, THR-5, THR-6, QRY-1,
MSG-7, MSG-8, RUN-4, CKP-3). Numbers inside free JSON values are no integer fields and
may be negative. Upward, a `u64` stamp goes to 2**64 - 1: past a signed 64-bit column
and past a double's 2**53, stamps still order exactly (THR-5, RUN-3, RUN-4); that they
read back exactly is the fidelity tests' business (MOD-5). A call checks its arguments
before it reads the store.
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import replace

import pytest

from conformance.contract._errors import StorageError, ValidationError
from conformance.contract._models import CompactionMark, Message, MessageMetadata, Thread, ThreadMetadata
from conformance.contract._queries import MessageQuery, RunQuery, ThreadQuery
from conformance.contract._runs import (
    MessageSeqRange,
    PersistedState,
    RunMessageInput,
    RunRecord,
    RunRequestSnapshot,
)
from conformance.contract._stores import ThreadRunStore
from conformance.kit._contract_tests.fidelity import U64_MAX
from conformance.kit._differ import diff, named
from conformance.kit._runner import rule
from conformance.kit._scenarios import log, run, snapshot, thread, user
from conformance.kit._violation import RuleViolation

NEGATIVE_THREADS: dict[str, Thread] = {
    "metadata.created_at": Thread(id="t-new", metadata=ThreadMetadata(created_at=-1)),
    "metadata.updated_at": Thread(id="t-new", metadata=ThreadMetadata(updated_at=-1)),
    "latest_run_updated_at": Thread(id="t-new", latest_run_updated_at=-1),
}

NEGATIVE_MESSAGES: dict[str, Message] = {
    "metadata.step_index": replace(user("m-new"), metadata=MessageMetadata(step_index=-1)),
    "metadata.compaction.from_seq": replace(
        user("m-new"), metadata=MessageMetadata(compaction=CompactionMark(from_seq=-1, to_seq=1))
    ),
}

NEGATIVE_RUNS: dict[str, RunRecord] = {
    "created_at": replace(run("r-new", "t"), created_at=-1),
    "updated_at": replace(run("r-new", "t"), updated_at=-1),
    "started_at": replace(run("r-new", "t"), started_at=-1),
    "steps": replace(run("r-new", "t"), steps=-1),
    "input_tokens": replace(run("r-new", "t"), input_tokens=-1),
    "output_tokens": replace(run("r-new", "t"), output_tokens=-1),
    "request.input_message_count": replace(run("r-new", "t"), request=RunRequestSnapshot(input_message_count=-1)),
    "input.range.from_seq": replace(
        run("r-new", "t"), input=RunMessageInput(thread_id="t", range=MessageSeqRange(from_seq=-1, to_seq=1))
    ),
    "state.revision": replace(run("r-new", "t"), state=PersistedState(revision=-1)),
}


#: Stamps that a double (2**53 and 2**53 + 1, 2**64 - 2 and 2**64 - 1) or a signed 64-bit column (2**63 - 1 and
#: 2**63) cannot tell apart or order, ascending.
WIDE_STAMPS = [0, 2**53, 2**53 + 1, 2**63 - 1, 2**63, U64_MAX - 1, U64_MAX]


async def _refused(rule_id: str, call: Awaitable[object], what: str) -> None:
    """`call` raises ValidationError; being accepted, or another storage error, breaks `rule_id`."""
    try:
        await call
    except ValidationError:
        return
    except StorageError as error:
        raise RuleViolation(rule_id, f"{what} raised {type(error).__name__} ({error}), not ValidationError") from None
    raise RuleViolation(rule_id, f"{what} was accepted; a negative number is refused with ValidationError")


class NumberRules:
    """Negative numbers, refused with ValidationError wherever a store takes one; arguments before state."""

    @rule("MOD-2")
    async def test_negative_numbers_inside_free_json_are_accepted(self, store: ThreadRunStore) -> None:
        """custom {"n": -5, "x": -0.5} holds JSON numbers, no integer fields: the thread is valid and is stored.

        That the values read back exactly is MOD-5's and THR-2's (the fidelity tests).
        """
        saved = Thread(id="t", metadata=ThreadMetadata(created_at=1, custom={"n": -5, "x": -0.5}))
        await store.save_thread(saved)
        assert await store.load_thread("t") is not None, "a valid thread with negative numbers in custom was not stored"

    @rule("RUN-1")
    async def test_an_invalid_run_under_a_taken_id_is_a_validation_error(self, store: ThreadRunStore) -> None:
        """create_run of an invalid record whose run_id is taken raises ValidationError, not AlreadyExistsError."""
        await store.create_run(run("r1", "t"))
        await _refused("RUN-1", store.create_run(replace(run("r1", "t"), agent_id=" ")), "an invalid run 'r1'")

    @rule("THR-3")
    async def test_invalid_metadata_for_an_unknown_id_is_a_validation_error(self, store: ThreadRunStore) -> None:
        """update_thread_metadata of an unknown id with updated_at -1 raises ValidationError, not NotFoundError."""
        call = store.update_thread_metadata("never-saved", ThreadMetadata(updated_at=-1))
        await _refused("THR-3", call, "metadata with updated_at -1 for an unknown thread")
        created = await store.load_thread("never-saved")
        assert created is None, (
            f"the refused update created a thread: load_thread('never-saved') gives {named(created)}"
        )

    @rule("MOD-2")
    @pytest.mark.parametrize("invalid", list(NEGATIVE_THREADS.values()), ids=list(NEGATIVE_THREADS))
    async def test_thread_with_a_negative_number_is_refused(self, store: ThreadRunStore, invalid: Thread) -> None:
        """A thread whose created_at, updated_at or latest_run_updated_at is -1 is refused; nothing is stored."""
        await _refused("MOD-2", store.save_thread(invalid), f"save_thread of {invalid.to_json()}")
        stored = await store.load_thread(invalid.id)
        assert stored is None, f"save_thread refused a negative number, yet load_thread gives {named(stored)}"

    @rule("THR-3")
    async def test_metadata_with_a_negative_timestamp_is_refused(self, store: ThreadRunStore) -> None:
        """update_thread_metadata with updated_at -1 raises ValidationError; the thread keeps its metadata."""
        await store.save_thread(thread("t", updated_at=5))
        call = store.update_thread_metadata("t", ThreadMetadata(updated_at=-1))
        await _refused("THR-3", call, "update_thread_metadata with updated_at -1")
        found, due = await store.load_thread("t"), thread("t", updated_at=5)
        assert found == due, f"the refused update changed the thread: load_thread('t'): {diff(found, due)}"

    @rule("THR-5")
    @pytest.mark.parametrize(("offset", "limit"), [(-1, 10), (0, -1)], ids=["offset", "limit"])
    async def test_list_threads_refuses_negative_numbers(self, store: ThreadRunStore, offset: int, limit: int) -> None:
        """list_threads(-1, 10) and list_threads(0, -1) raise ValidationError."""
        await store.save_thread(thread("t"))
        await _refused("THR-5", store.list_threads(offset, limit), f"list_threads({offset}, {limit})")

    @rule("THR-6")
    async def test_state_with_a_negative_revision_is_refused(self, store: ThreadRunStore) -> None:
        """save_thread_state with revision -1 raises ValidationError; the saved state stays."""
        await store.save_thread_state("t", PersistedState(revision=3))
        await _refused("THR-6", store.save_thread_state("t", PersistedState(revision=-1)), "a state of revision -1")
        state = await store.load_thread_state("t")
        assert state == PersistedState(revision=3), (
            f"the refused save changed the state: load_thread_state('t'): {diff(state, PersistedState(revision=3))}"
        )

    @rule("MOD-3")
    @pytest.mark.parametrize("invalid", list(NEGATIVE_MESSAGES.values()), ids=list(NEGATIVE_MESSAGES))
    @pytest.mark.parametrize("append", [False, True], ids=["save_messages", "append_message_records"])
    async def test_message_with_a_negative_number_is_refused(
        self, store: ThreadRunStore, invalid: Message, append: bool
    ) -> None:
        """A message whose step_index or compaction seq is -1 is refused whole; the log stays as it was."""
        await log(store, "t", "m1")
        delta = [invalid] if append else [user("m1"), invalid]
        call = store.append_message_records("t", delta) if append else store.save_messages("t", delta)
        await _refused("MOD-3", call, f"a message with {invalid.to_json()['metadata']}")
        ids = [m.id for m in await store.load_committed_messages("t") or []]
        assert ids == ["m1"], f"the refused write changed the log: it holds {ids}; expected ['m1']"

    @rule("MOD-4")
    @pytest.mark.parametrize("invalid", list(NEGATIVE_RUNS.values()), ids=list(NEGATIVE_RUNS))
    async def test_run_with_a_negative_number_is_refused(self, store: ThreadRunStore, invalid: RunRecord) -> None:
        """create_run of a run with a -1 timestamp, count, seq or revision raises ValidationError; nothing is stored."""
        await store.save_thread(thread("t"))
        await _refused("MOD-4", store.create_run(invalid), "create_run of a run holding -1")
        stored = await store.load_run(invalid.run_id)
        assert stored is None, f"create_run refused a negative number, yet load_run gives {named(stored)}"

    @rule("MSG-8")
    @pytest.mark.parametrize(("first", "last"), [(-1, 2), (1, -1)], ids=["from_seq", "to_seq"])
    async def test_range_with_a_negative_bound_is_refused(self, store: ThreadRunStore, first: int, last: int) -> None:
        """load_message_records_range with from_seq -1 or to_seq -1 raises ValidationError."""
        await log(store, "t", "m1", "m2")
        call = store.load_message_records_range("t", MessageSeqRange(from_seq=first, to_seq=last))
        await _refused("MSG-8", call, f"load_message_records_range({first}, {last})")

    @rule("QRY-1")
    @pytest.mark.parametrize("query", [ThreadQuery(offset=-1), ThreadQuery(limit=-1)], ids=["offset", "limit"])
    async def test_thread_query_with_a_negative_number_is_refused(
        self, store: ThreadRunStore, query: ThreadQuery
    ) -> None:
        """A ThreadQuery with offset -1 or limit -1 raises ValidationError."""
        await store.save_thread(thread("t"))
        await _refused("QRY-1", store.list_threads_query(query), f"list_threads_query({query})")

    @rule("MSG-7")
    @pytest.mark.parametrize(
        "query",
        [MessageQuery(offset=-1), MessageQuery(limit=-1), MessageQuery(after=-1), MessageQuery(before=-1)],
        ids=["offset", "limit", "after", "before"],
    )
    async def test_message_query_with_a_negative_number_is_refused(
        self, store: ThreadRunStore, query: MessageQuery
    ) -> None:
        """A MessageQuery with offset, limit, after or before -1 raises ValidationError."""
        await log(store, "t", "m1")
        await _refused("MSG-7", store.list_message_records("t", query), f"list_message_records with {query}")

    @rule("RUN-4")
    @pytest.mark.parametrize("query", [RunQuery(offset=-1), RunQuery(limit=-1)], ids=["offset", "limit"])
    async def test_run_query_with_a_negative_number_is_refused(self, store: ThreadRunStore, query: RunQuery) -> None:
        """A RunQuery with offset -1 or limit -1 raises ValidationError (limit 0 is clamped to 1, -1 is not)."""
        await store.create_run(run("r1", "t"))
        await _refused("RUN-4", store.list_runs(query), f"list_runs({query})")

    @rule("CKP-3")
    async def test_negative_expected_version_is_refused(self, store: ThreadRunStore) -> None:
        """checkpoint_append with expected_version -1 raises ValidationError, not a conflict; nothing changes."""
        await log(store, "t", "m1")
        before = await snapshot(store, "t")
        call = store.checkpoint_append("t", [user("m2")], -1, run("r1", "t"))
        await _refused("CKP-3", call, "checkpoint_append with expected_version -1")
        after = await snapshot(store, "t")
        assert after == before, (
            f"checkpoint_append refused expected_version -1 but changed the store: {diff(after, before)}"
        )

    @rule("THR-5")
    async def test_list_threads_orders_stamps_to_the_u64_maximum(self, store: ThreadRunStore) -> None:
        """Threads updated at 0, 2**53, 2**53 + 1, 2**63 - 1, 2**63, 2**64 - 2 and 2**64 - 1 list newest first.

        Each pair that a double (or a signed 64-bit column) would make equal is ordered
        by its stamps, not by its ids: the ids run the other way.
        """
        ids = [f"t{number}" for number in range(len(WIDE_STAMPS))]
        for thread_id, stamp in zip(ids, WIDE_STAMPS, strict=True):
            await store.save_thread(thread(thread_id, updated_at=stamp))
        listed = await store.list_threads(0, 10)
        assert listed == list(reversed(ids)), (
            f"list_threads(0, 10) of stamps {WIDE_STAMPS} (t0..t6) gives {listed}; expected {list(reversed(ids))}"
        )

    @rule("RUN-4")
    async def test_list_runs_orders_stamps_to_the_u64_maximum(self, store: ThreadRunStore) -> None:
        """Runs created at 0, 2**53, 2**53 + 1, ... 2**64 - 1 list oldest first, though their run ids run backwards."""
        ids = [f"r{number}" for number in reversed(range(len(WIDE_STAMPS)))]
        for run_id, stamp in zip(ids, WIDE_STAMPS, strict=True):
            await store.create_run(run(run_id, "t", created_at=stamp))
        listed = [r.run_id for r in (await store.list_runs(RunQuery())).items]
        assert listed == ids, (
            f"list_runs() of created_at {WIDE_STAMPS} ({ids[0]}..{ids[-1]}) lists {listed}; expected {ids}"
        )

    @rule("RUN-3")
    @pytest.mark.parametrize(("older", "newer"), [(2**53, 2**53 + 1), (2**63 - 1, 2**63), (U64_MAX - 1, U64_MAX)])
    async def test_latest_run_compares_stamps_to_the_u64_maximum(
        self, store: ThreadRunStore, older: int, newer: int
    ) -> None:
        """The run updated at 2**53 + 1 is later than one updated at 2**53 written after it (and so on to 2**64 - 1)."""
        await store.create_run(run("newer", "t", updated_at=newer))
        await store.create_run(run("older", "t", updated_at=older))
        latest = await store.latest_run("t")
        assert latest is not None, "latest_run('t') gives None for a thread with two runs"
        assert latest.run_id == "newer", (
            f"latest_run('t') of runs updated at {older} and {newer} is {latest.run_id!r}; expected 'newer'"
        )
