"""Contract tests: checkpoints (CKP-1..5); the run projection (CKP-6) is in `projection`."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import pytest

from conformance.contract._enums import Role, RunStatus
from conformance.contract._errors import ValidationError, VersionConflictError
from conformance.contract._models import Message
from conformance.contract._queries import RunQuery
from conformance.contract._runs import PersistedState, RunMessageOutput, RunRecord
from conformance.contract._stores import ThreadRunStore
from conformance.kit._boundary import answering
from conformance.kit._contract_tests.projection import ProjectionRules
from conformance.kit._differ import diff, named
from conformance.kit._runner import rule
from conformance.kit._scenarios import (
    Snapshot,
    activation,
    assistant,
    log,
    run,
    snapshot,
    system,
    thread,
    tool,
    tree,
    user,
)
from conformance.kit._violation import BrokenCall, RuleViolation, expect

INVALID_CHECKPOINT_RUNS: dict[str, RunRecord] = {
    "blank-agent-id": replace(run("r1", "t"), agent_id=" "),
    "done-without-finished-at": replace(run("r1", "t", RunStatus.DONE), finished_at=None),
    "output-of-another-thread": replace(run("r1", "t"), output=RunMessageOutput(thread_id="elsewhere")),
    "activation-of-another-thread": replace(run("r1", "t"), activation=activation("elsewhere")),
}

INVALID_CHECKPOINT_MESSAGES: dict[str, list[Message]] = {
    "repeated-id": [user("m1"), user("m9"), user("m9")],
    "tool-without-call-id": [user("m1"), tool("m9", " ")],
    "user-with-tool-calls": [user("m1"), replace(assistant("m9", calls=["c1"]), role=Role.USER)],
    "blank-id": [user("m1"), user(" ")],
}

BAD_DELTAS: dict[str, list[Message]] = {
    "committed-id": [user("m4"), user("m2")],
    "repeated-id": [user("m4"), user("m4")],
    "invalid-message": [user("m4"), tool("m5", "")],
    # valid one seq later: a summary's mark must end before the summary's own seq (MOD-3), here 5
    "mark-reaching-its-summary": [user("m4"), system("s5", summary_of=(2, 5))],
}


@dataclass(frozen=True, slots=True)
class _Refusal:
    """A checkpoint of thread t that CKP-1 refuses: its run, and the parent t is stored with."""

    name: str
    what: str
    run: RunRecord
    stored_parent: str | None = None


#: Refused for the run or the hierarchy (CKP-1), which `checkpoint_append` checks before the version (CKP-3).
REFUSED_BEFORE_THE_VERSION: list[_Refusal] = [
    _Refusal("blank-agent-id", "a run whose agent_id is blank", replace(run("r1", "t"), agent_id=" ")),
    _Refusal("run-of-another-thread", "a run of thread u", run("r1", "u", RunStatus.RUNNING)),
    _Refusal("missing-stored-parent", "thread t's stored parent missing", run("r1", "t"), stored_parent="gone"),
    _Refusal("missing-request-parent", "a run naming a missing parent", run("r1", "t", parent_thread_id="gone")),
]


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _outside(taken: Snapshot, thread_id: str) -> Snapshot:
    """The part of a snapshot that belongs to threads other than `thread_id`."""
    return Snapshot(
        threads={k: v for k, v in taken.threads.items() if k != thread_id},
        logs={k: v for k, v in taken.logs.items() if k != thread_id},
        states={k: v for k, v in taken.states.items() if k != thread_id},
        runs={k: v for k, v in taken.runs.items() if v.thread_id != thread_id},
        latest={k: v for k, v in taken.latest.items() if k != thread_id},
    )


async def _hidden_log(store: ThreadRunStore, thread_id: str) -> None:
    """A raw log of 5 whose read view has 3: a retracted call, its internal result, an orphan result."""
    await log(
        store,
        thread_id,
        user("m1"),
        assistant("m2", calls=["c1", "c2"]),
        tool("m3", "c1"),
        tool("m4", "c2", internal=True),
        tool("m5", "c9"),
    )


class CheckpointRules(ProjectionRules):
    """CKP-1..5: checkpoints validate first, write thread, log and run together; CKP-6 comes from ProjectionRules."""

    # ── CKP-1: validation first, nothing changes on error ─────────────

    @rule("CKP-1")
    @pytest.mark.parametrize("invalid", list(INVALID_CHECKPOINT_RUNS.values()), ids=list(INVALID_CHECKPOINT_RUNS))
    async def test_checkpoint_rejects_invalid_run(self, store: ThreadRunStore, invalid: RunRecord) -> None:
        """A run breaking MOD-4 raises ValidationError; thread, log and runs stay as they were."""
        await store.save_thread(thread("t", created_at=1))
        await log(store, "t", "m1")
        await store.create_run(run("r0", "t"))
        before = await snapshot(store, "t")
        with pytest.raises(ValidationError):
            await store.checkpoint("t", [user("m1"), user("m2")], invalid)
        after = await snapshot(store, "t")
        assert after == before, f"checkpoint refused an invalid run but changed the store: {diff(after, before)}"

    @rule("CKP-1")
    @pytest.mark.parametrize("append", [False, True], ids=["checkpoint", "checkpoint_append"])
    async def test_checkpoint_refuses_a_run_of_another_thread(self, store: ThreadRunStore, append: bool) -> None:
        """Checkpointing thread t with a run of thread u raises ValidationError; neither thread changes."""
        await store.save_thread(thread("t", created_at=1))
        await log(store, "t", "m1")
        await store.save_thread(thread("u", created_at=1))
        before = await snapshot(store, "t", "u")
        foreign = run("r1", "u", RunStatus.RUNNING)
        call = (
            store.checkpoint_append("t", [user("m2")], 1, foreign)
            if append
            else store.checkpoint("t", [user("m1"), user("m2")], foreign)
        )
        with pytest.raises(ValidationError):
            await call
        after = await snapshot(store, "t", "u")
        method = "checkpoint_append" if append else "checkpoint"
        assert after == before, f"{method} refused a run of thread u but changed the store: {diff(after, before)}"

    @rule("CKP-1")
    @pytest.mark.parametrize(
        "messages", list(INVALID_CHECKPOINT_MESSAGES.values()), ids=list(INVALID_CHECKPOINT_MESSAGES)
    )
    async def test_checkpoint_rejects_invalid_messages(self, store: ThreadRunStore, messages: list[Message]) -> None:
        """An invalid message or a repeated id raises ValidationError; nothing changes, no thread appears."""
        await store.save_thread(thread("other"))
        before = await snapshot(store, "t")
        with pytest.raises(ValidationError):
            await store.checkpoint("t", messages, run("r1", "t", RunStatus.RUNNING))
        after = await snapshot(store, "t")
        assert after == before, f"checkpoint refused invalid messages but changed the store: {diff(after, before)}"
        created = await store.load_thread("t")
        assert created is None, f"checkpoint refused invalid messages but load_thread('t') gives {created!r}"

    @rule("CKP-1")
    async def test_checkpoint_rejects_missing_request_parent(self, store: ThreadRunStore) -> None:
        """A new thread whose run names a parent that does not exist is refused, and not created."""
        await store.save_thread(thread("other"))
        before = await snapshot(store, "t")
        with pytest.raises(ValidationError):
            await store.checkpoint("t", [user("m1")], run("r1", "t", parent_thread_id="missing"))
        after = await snapshot(store, "t")
        assert after == before, f"checkpoint refused a missing parent but changed the store: {diff(after, before)}"
        stored = await store.load_run("r1")
        assert stored is None, (
            f"checkpoint refused a missing parent but stored its run: load_run('r1') gives {stored!r}"
        )

    @rule("CKP-1")
    async def test_checkpoint_rejects_missing_stored_parent(self, store: ThreadRunStore) -> None:
        """A stored thread whose parent is gone (saved without checks) cannot be checkpointed."""
        await store.save_thread(thread("t", parent="gone"))
        await log(store, "t", "m1")
        before = await snapshot(store, "t")
        with pytest.raises(ValidationError):
            await store.checkpoint("t", [user("m1"), user("m2")], run("r1", "t"))
        after = await snapshot(store, "t")
        assert after == before, (
            f"checkpoint refused a missing stored parent but changed the store: {diff(after, before)}"
        )

    @rule("CKP-1")
    async def test_checkpoint_rejects_missing_ancestor(self, store: ThreadRunStore) -> None:
        """A parent whose own parent is missing fails the hierarchy check."""
        await store.save_thread(thread("p", parent="gone"))
        before = await snapshot(store, "t")
        with pytest.raises(ValidationError):
            await store.checkpoint("t", [user("m1")], run("r1", "t", parent_thread_id="p"))
        after = await snapshot(store, "t")
        assert after == before, f"checkpoint refused a missing ancestor but changed the store: {diff(after, before)}"

    @rule("CKP-1")
    async def test_checkpoint_rejects_a_stored_cycle(self, store: ThreadRunStore) -> None:
        """Threads a and b parenting each other (saved without checks) cannot be checkpointed."""
        await store.save_thread(thread("a", parent="b"))
        await store.save_thread(thread("b", parent="a"))
        before = await snapshot(store)
        with pytest.raises(ValidationError):
            await store.checkpoint("a", [user("m1")], run("r1", "a"))
        after = await snapshot(store)
        assert after == before, f"checkpoint refused a stored cycle but changed the store: {diff(after, before)}"

    @rule("CKP-1")
    async def test_checkpoint_checks_the_stored_parent_before_the_request_parent(self, store: ThreadRunStore) -> None:
        """A thread that has a valid parent is checkpointed even if its run names a missing one."""
        await tree(store, {"p": {"t": {}}})
        await store.checkpoint("t", [user("m1")], run("r1", "t", parent_thread_id="missing"))
        stored, due = await store.load_run("r1"), run("r1", "t", parent_thread_id="missing")
        assert stored == due, f"load_run('r1') after a checkpoint of a thread with a valid parent: {diff(stored, due)}"

    # ── CKP-2: what a checkpoint writes ────────────────────────────────

    @rule("CKP-2")
    async def test_checkpoint_creates_a_missing_thread_stamped_now(self, store: ThreadRunStore) -> None:
        """Checkpointing an unknown thread creates it with created_at and updated_at set to now, in ms."""
        start = _now_ms()
        await store.checkpoint("t", [user("m1")], run("r1", "t"))
        end = _now_ms()
        created = await store.load_thread("t")
        assert created is not None, "load_thread('t') gives None: checkpoint did not create the thread"
        created_at, updated_at = created.metadata.created_at, created.metadata.updated_at
        assert created_at is not None, "checkpoint created thread 't' without metadata.created_at"
        assert updated_at is not None, "checkpoint created thread 't' without metadata.updated_at"
        assert start <= created_at <= end, (
            f"checkpoint created thread 't' with created_at {created_at}; expected now, in [{start}, {end}] (ms)"
        )
        assert start <= updated_at <= end, (
            f"checkpoint created thread 't' with updated_at {updated_at}; expected now, in [{start}, {end}] (ms)"
        )

    @rule("CKP-2")
    async def test_checkpoint_keeps_created_at_and_refreshes_updated_at(self, store: ThreadRunStore) -> None:
        """An existing thread keeps created_at, title and resource; updated_at becomes now."""
        await store.save_thread(thread("t", resource="res", created_at=1000, updated_at=2000, title="T"))
        saved = await store.load_thread("t")  # what save_thread keeps is THR-2's business; the checkpoint keeps it
        assert saved is not None, "load_thread('t') gives None for a thread just saved"
        start = _now_ms()
        await store.checkpoint("t", [user("m1")], run("r1", "t"))
        end = _now_ms()
        found = await store.load_thread("t")
        assert found is not None, "load_thread('t') gives None after a checkpoint of the thread"
        kept = (found.resource_id, found.metadata.title, found.metadata.created_at)
        due = (saved.resource_id, saved.metadata.title, saved.metadata.created_at)
        assert kept == due, f"after checkpoint, thread 't' has (resource_id, title, created_at) {kept}; expected {due}"
        updated_at = found.metadata.updated_at
        assert updated_at is not None, "checkpoint left thread 't' without metadata.updated_at"
        assert start <= updated_at <= end, (
            f"checkpoint set updated_at to {updated_at}; expected now, in [{start}, {end}] (ms)"
        )

    @rule("CKP-2")
    async def test_checkpoint_sets_created_at_when_unset(self, store: ThreadRunStore) -> None:
        """An existing thread without created_at gets it set to now."""
        await store.save_thread(thread("t", updated_at=2000))
        start = _now_ms()
        await store.checkpoint("t", [], run("r1", "t"))
        end = _now_ms()
        found = await store.load_thread("t")
        assert found is not None, "load_thread('t') gives None after a checkpoint of the thread"
        created_at = found.metadata.created_at
        assert created_at is not None, "checkpoint left thread 't' without metadata.created_at, though it had none"
        assert start <= created_at <= end, (
            f"checkpoint set created_at to {created_at}; expected now, in [{start}, {end}] (ms)"
        )

    @rule("CKP-2")
    async def test_checkpoint_replaces_the_log_raw(self, store: ThreadRunStore) -> None:
        """The log becomes exactly the given messages, unanswered tool calls and all."""
        await log(store, "t", "m1", "m2", "m3")
        messages = [user("m4"), user("m2"), assistant("m5", calls=["c1"])]
        await store.checkpoint("t", messages, run("r1", "t"))
        found = await store.load_committed_messages("t")
        assert found == messages, f"load_committed_messages('t') after checkpoint: {diff(found, messages)}"

    @rule("CKP-2")
    async def test_checkpoint_without_messages_leaves_no_message(self, store: ThreadRunStore) -> None:
        """Checkpointing an empty list empties the log (which reads as None: MSG-1)."""
        await log(store, "t", "m1", "m2")
        await store.checkpoint("t", [], run("r1", "t"))
        found = await store.load_committed_messages("t")
        assert not found, (
            f"after checkpoint with no messages, load_committed_messages('t') gives {found!r}; expected None"
        )

    @rule("CKP-2")
    async def test_checkpoint_upserts_the_run_exactly(self, store: ThreadRunStore) -> None:
        """Checkpointing a stored run raises nothing and stores the new record whole, created_at too."""
        await store.create_run(run("r1", "t", RunStatus.CREATED, created_at=1))
        rewritten = replace(run("r1", "t", RunStatus.RUNNING, created_at=2, updated_at=3), steps=4)
        await store.checkpoint("t", [user("m1")], rewritten)
        stored = await store.load_run("r1")
        assert stored == rewritten, f"load_run('r1') after checkpoint: {diff(stored, rewritten)}"
        page = await store.list_runs(RunQuery(thread_id="t"))
        assert page.items == [rewritten], f"list_runs(thread_id='t') after checkpoint: {diff(page.items, [rewritten])}"

    @rule("CKP-2")
    async def test_checkpoint_moves_a_run_to_its_new_thread(self, store: ThreadRunStore) -> None:
        """A run checkpointed under another thread belongs to that thread only."""
        await store.create_run(run("r1", "old", created_at=1))
        moved = run("r1", "new", RunStatus.RUNNING, created_at=1, updated_at=2)
        await store.checkpoint("new", [user("m1")], moved)
        stored = await store.load_run("r1")
        assert stored == moved, f"load_run('r1') after checkpoint under thread 'new': {diff(stored, moved)}"
        old = await store.latest_run("old")
        assert old is None, f"latest_run('old') gives {named(old)}; expected None: the run moved to thread 'new'"
        new = await store.latest_run("new")
        assert new == moved, f"latest_run('new') after the run moved there: {diff(new, moved)}"

    @rule("CKP-2")
    async def test_checkpoint_never_changes_another_thread(self, store: ThreadRunStore) -> None:
        """The parent, a sibling and their logs, runs and states stay as they were."""
        await tree(store, {"p": {"sibling": {}}})
        await log(store, "sibling", "s1")
        await store.create_run(run("r0", "sibling", RunStatus.RUNNING))
        await store.save_thread_state("p", PersistedState(revision=1))
        before = await snapshot(store, "t")
        await store.checkpoint("t", [user("m1")], run("r1", "t", RunStatus.RUNNING, parent_thread_id="p"))
        after = _outside(await snapshot(store, "t"), "t")
        assert after == _outside(before, "t"), (
            f"checkpoint of 't' changed other threads: {diff(after, _outside(before, 't'))}"
        )

    # ── CKP-3: the version guard ───────────────────────────────────────

    @rule("CKP-3")
    @pytest.mark.parametrize("stale", [0, 2, 4])
    async def test_stale_expected_version_raises_conflict(self, store: ThreadRunStore, stale: int) -> None:
        """A log of 3 messages is version 3: expecting 0, 2 or 4 raises VersionConflictError(stale, 3)."""
        await store.save_thread(thread("t", created_at=1))
        await log(store, "t", "m1", "m2", "m3")
        await store.create_run(run("r0", "t"))
        before = await snapshot(store, "t")
        with pytest.raises(VersionConflictError) as caught:
            await store.checkpoint_append("t", [user("m4")], stale, run("r1", "t"))
        conflict = (caught.value.expected, caught.value.actual)
        assert conflict == (stale, 3), f"VersionConflictError (expected, actual) is {conflict}; expected ({stale}, 3)"
        after = await snapshot(store, "t")
        assert after == before, f"checkpoint_append raised a conflict but changed the store: {diff(after, before)}"

    @rule("CKP-3")
    async def test_thread_without_log_is_version_zero(self, store: ThreadRunStore) -> None:
        """Expecting version 1 of an unknown thread conflicts with 0 and creates nothing."""
        before = await snapshot(store, "t")
        with pytest.raises(VersionConflictError) as caught:
            await store.checkpoint_append("t", [user("m1")], 1, run("r1", "t"))
        conflict = (caught.value.expected, caught.value.actual)
        assert conflict == (1, 0), f"VersionConflictError (expected, actual) is {conflict}; expected (1, 0)"
        after = await snapshot(store, "t")
        assert after == before, f"checkpoint_append raised a conflict but changed the store: {diff(after, before)}"

    @rule("CKP-3", "CKP-4")
    async def test_matching_expected_version_appends(self, store: ThreadRunStore) -> None:
        """Expecting the current version 3 appends and returns 4."""
        await log(store, "t", "m1", "m2", "m3")
        version = await store.checkpoint_append("t", [user("m4")], 3, run("r1", "t"))
        assert version == 4, f"checkpoint_append of 1 to a log of 3 returned {version!r}; expected 4"
        found, due = await store.load_committed_messages("t"), [user("m1"), user("m2"), user("m3"), user("m4")]
        assert found == due, f"load_committed_messages('t') after checkpoint_append: {diff(found, due)}"

    @rule("CKP-3")
    async def test_no_expected_version_appends_unconditionally(self, store: ThreadRunStore) -> None:
        """expected_version None appends whatever the version (what it returns is CKP-4's)."""
        await log(store, "t", "m1", "m2")
        await store.checkpoint_append("t", [user("m3")], None, run("r1", "t"))
        found, due = await store.load_committed_messages("t"), [user("m1"), user("m2"), user("m3")]
        assert found == due, f"load_committed_messages('t') after checkpoint_append: {diff(found, due)}"

    @rule("CKP-3")
    async def test_version_counts_messages_hidden_from_the_read_view(self, store: ThreadRunStore) -> None:
        """A raw log of 5 with a 3-message read view is version 5: expecting 5 appends."""
        await _hidden_log(store, "t")
        await store.checkpoint_append("t", [user("m6")], 5, run("r1", "t"))
        tail = [m.id for m in await store.load_committed_messages("t") or []][4:]
        assert tail == ["m5", "m6"], (
            f"after expecting version 5, the log from seq 5 holds {tail}; expected ['m5', 'm6']"
        )

    @rule("CKP-3")
    async def test_read_view_length_is_a_stale_version(self, store: ThreadRunStore) -> None:
        """Expecting the read view's length (3) of a raw log of 5 conflicts with 5."""
        await _hidden_log(store, "t")
        before = await snapshot(store, "t")
        with pytest.raises(VersionConflictError) as caught:
            await store.checkpoint_append("t", [user("m6")], 3, run("r1", "t"))
        conflict = (caught.value.expected, caught.value.actual)
        assert conflict == (3, 5), f"VersionConflictError (expected, actual) is {conflict}; expected (3, 5)"
        after = await snapshot(store, "t")
        assert after == before, f"checkpoint_append raised a conflict but changed the store: {diff(after, before)}"

    @rule("CKP-3")
    @pytest.mark.parametrize("refusal", REFUSED_BEFORE_THE_VERSION, ids=[r.name for r in REFUSED_BEFORE_THE_VERSION])
    async def test_stale_version_with_a_refused_run_raises_validation_error(
        self, store: ThreadRunStore, refusal: _Refusal
    ) -> None:
        """Expecting version 2 of a log of 3 with a run or parent CKP-1 refuses raises ValidationError; nothing changes.

        The run and the hierarchy are checked before the version. A store that answers
        VersionConflictError is asked again without expected_version: if it then
        refuses the run, it checked the version first (this rule); if it accepts the
        run, it breaks CKP-1, and this rule is not checked.
        """
        await store.save_thread(thread("t", parent=refusal.stored_parent, created_at=1))
        await log(store, "t", "m1", "m2", "m3")
        await store.create_run(run("r0", "t"))
        before = await snapshot(store, "t", "u")
        try:
            await store.checkpoint_append("t", [user("m4")], 2, refusal.run)
        except ValidationError:
            after = await snapshot(store, "t", "u")
            if after != before:
                message = f"checkpoint_append refused {refusal.what} but changed the store: {diff(after, before)}"
                raise BrokenCall("CKP-1", message) from None
            return
        except VersionConflictError as conflict:
            try:
                with answering("CKP-1"):
                    await store.checkpoint_append("t", [user("m4")], None, refusal.run)
            except ValidationError:
                raise RuleViolation(
                    "CKP-3",
                    f"with {refusal.what} and the stale expected_version 2 (the log holds 3), checkpoint_append "
                    f"raised {conflict!r}, though without expected_version it refuses the call with ValidationError: "
                    "check the run and the hierarchy (CKP-1) before the version",
                ) from conflict
            raise BrokenCall("CKP-1", f"checkpoint_append without expected_version accepted {refusal.what}") from None
        raise RuleViolation("CKP-3", f"checkpoint_append accepted the stale expected_version 2 with {refusal.what}")

    @rule("CKP-3")
    @pytest.mark.parametrize("delta", list(BAD_DELTAS.values()), ids=list(BAD_DELTAS))
    async def test_stale_version_with_a_bad_delta_raises_version_conflict(
        self, store: ThreadRunStore, delta: list[Message]
    ) -> None:
        """Expecting version 2 of a log of 3 with a delta CKP-4 refuses raises VersionConflictError; nothing changes.

        The version is checked before the delta (a committed id, a repeated id, an
        invalid message).
        """
        await store.save_thread(thread("t", created_at=1))
        await log(store, "t", "m1", "m2", "m3")
        before = await snapshot(store, "t")
        try:
            await store.checkpoint_append("t", delta, 2, run("r1", "t"))
        except VersionConflictError as conflict:
            after = await snapshot(store, "t")
            expect(
                after == before,
                "CKP-3",
                f"checkpoint_append raised {conflict!r} but changed the store: {diff(after, before)}",
            )
            return
        except ValidationError as refused:
            raise RuleViolation(
                "CKP-3",
                f"with the stale expected_version 2 (the log holds 3), checkpoint_append refused the delta "
                f"first ({refused!r}): check the version before the delta (CKP-4)",
            ) from refused
        raise RuleViolation("CKP-3", "checkpoint_append accepted the stale expected_version 2 with a bad delta")

    # ── CKP-4: the append ──────────────────────────────────────────────

    @rule("CKP-4")
    @pytest.mark.parametrize("delta", list(BAD_DELTAS.values()), ids=list(BAD_DELTAS))
    async def test_checkpoint_append_rejects_a_bad_delta(self, store: ThreadRunStore, delta: list[Message]) -> None:
        """A committed id, a repeated id or an invalid message (at its seq in the log) raises ValidationError."""
        await store.save_thread(thread("t", created_at=1))
        await log(store, "t", "m1", "m2", "m3")
        before = await snapshot(store, "t")
        with pytest.raises(ValidationError):
            await store.checkpoint_append("t", delta, 3, run("r1", "t"))
        after = await snapshot(store, "t")
        assert after == before, f"checkpoint_append refused the delta but changed the store: {diff(after, before)}"

    @rule("CKP-4")
    @pytest.mark.parametrize("position", [0, 1], ids=["first-of-the-delta", "second-of-the-delta"])
    async def test_checkpoint_append_accepts_a_mark_ending_just_before_its_summary(
        self, store: ThreadRunStore, position: int
    ) -> None:
        """A summary landing at seq n may fold up to n - 1: each message is checked at the seq it lands on."""
        await log(store, "t", "m1", "m2", "m3")
        delta = [user("m4"), system("s5", summary_of=(1, 4))] if position else [system("s4", summary_of=(1, 3))]
        version = await store.checkpoint_append("t", delta, 3, run("r1", "t"))
        assert version == 3 + len(delta), (
            f"checkpoint_append of {len(delta)} to 3 returned {version!r}; expected {3 + len(delta)}"
        )

    @rule("CKP-4")
    async def test_checkpoint_append_appends_and_stores_the_run(self, store: ThreadRunStore) -> None:
        """The delta lands at the tail, the run is stored, and the new length is returned."""
        await log(store, "t", "m1", "m2")
        record = run("r1", "t", RunStatus.RUNNING)
        version = await store.checkpoint_append("t", [user("m3"), assistant("m4")], None, record)
        assert version == 4, f"checkpoint_append of 2 to a log of 2 returned {version!r}; expected 4"
        found, due = await store.load_committed_messages("t"), [user("m1"), user("m2"), user("m3"), assistant("m4")]
        assert found == due, f"load_committed_messages('t') after checkpoint_append: {diff(found, due)}"
        stored = await store.load_run("r1")
        assert stored == record, f"load_run('r1') after checkpoint_append: {diff(stored, record)}"

    @rule("CKP-4")
    async def test_checkpoint_append_returns_the_raw_length(self, store: ThreadRunStore) -> None:
        """Appending 2 to a raw log of 5 (read view of 3) returns 7."""
        await _hidden_log(store, "t")
        version = await store.checkpoint_append("t", [user("m6"), user("m7")], None, run("r1", "t"))
        assert version == 7, (
            f"checkpoint_append of 2 to a raw log of 5 (read view of 3) returned {version!r}; expected 7"
        )

    @rule("CKP-4")
    async def test_checkpoint_append_of_nothing_returns_the_version(self, store: ThreadRunStore) -> None:
        """An empty delta keeps the log, returns its length and still stores the run."""
        await log(store, "t", "m1", "m2")
        version = await store.checkpoint_append("t", [], 2, run("r1", "t"))
        assert version == 2, f"checkpoint_append of nothing to a log of 2 returned {version!r}; expected 2"
        found, due = await store.load_committed_messages("t"), [user("m1"), user("m2")]
        assert found == due, f"load_committed_messages('t') after checkpoint_append of nothing: {diff(found, due)}"
        stored = await store.load_run("r1")
        assert stored == run("r1", "t"), (
            f"load_run('r1') after checkpoint_append of nothing: {diff(stored, run('r1', 't'))}"
        )

    @rule("CKP-4")
    async def test_checkpoint_append_creates_a_missing_thread_stamped_now(self, store: ThreadRunStore) -> None:
        """Appending to an unknown thread creates it with created_at and updated_at now, in ms."""
        start = _now_ms()
        await store.checkpoint_append("t", [user("m1")], 0, run("r1", "t"))
        end = _now_ms()
        created = await store.load_thread("t")
        assert created is not None, "load_thread('t') gives None: checkpoint_append did not create the thread"
        created_at, updated_at = created.metadata.created_at, created.metadata.updated_at
        assert created_at is not None, "checkpoint_append created thread 't' without metadata.created_at"
        assert updated_at is not None, "checkpoint_append created thread 't' without metadata.updated_at"
        assert start <= created_at <= end, (
            f"checkpoint_append created thread 't' with created_at {created_at}; expected now, in [{start}, {end}] (ms)"
        )
        assert start <= updated_at <= end, (
            f"checkpoint_append created thread 't' with updated_at {updated_at}; expected now, in [{start}, {end}] (ms)"
        )

    @rule("CKP-4")
    async def test_checkpoint_append_keeps_created_at(self, store: ThreadRunStore) -> None:
        """An existing thread keeps created_at; updated_at becomes now."""
        await store.save_thread(thread("t", created_at=1000, updated_at=2000))
        start = _now_ms()
        await store.checkpoint_append("t", [user("m1")], None, run("r1", "t"))
        end = _now_ms()
        found = await store.load_thread("t")
        assert found is not None, "load_thread('t') gives None after checkpoint_append to the thread"
        created_at, updated_at = found.metadata.created_at, found.metadata.updated_at
        assert created_at == 1000, f"checkpoint_append changed created_at to {created_at!r}; expected it kept at 1000"
        assert updated_at is not None, "checkpoint_append left thread 't' without metadata.updated_at"
        assert start <= updated_at <= end, (
            f"checkpoint_append set updated_at to {updated_at}; expected now, in [{start}, {end}] (ms)"
        )

    @rule("CKP-4")
    async def test_checkpoint_append_upserts_the_run_exactly(self, store: ThreadRunStore) -> None:
        """Appending with a stored run id replaces that run whole, created_at too."""
        await store.create_run(run("r1", "t", created_at=1))
        rewritten = replace(run("r1", "t", RunStatus.DONE, created_at=2, updated_at=3), output_tokens=9)
        await store.checkpoint_append("t", [user("m1")], None, rewritten)
        stored = await store.load_run("r1")
        assert stored == rewritten, f"load_run('r1') after checkpoint_append: {diff(stored, rewritten)}"
        page = await store.list_runs(RunQuery(thread_id="t"))
        found = page.items
        assert found == [rewritten], f"list_runs(thread_id='t') after checkpoint_append: {diff(found, [rewritten])}"

    @rule("CKP-4", "RUN-3")
    async def test_checkpoint_append_run_wins_updated_at_ties(self, store: ThreadRunStore) -> None:
        """Appending with an older run of equal updated_at makes it the latest."""
        await store.create_run(run("r1", "t", created_at=1, updated_at=5))
        await store.create_run(run("r2", "t", created_at=2, updated_at=5))
        rewritten = run("r1", "t", RunStatus.RUNNING, created_at=1, updated_at=5)
        await store.checkpoint_append("t", [user("m1")], None, rewritten)
        latest = await store.latest_run("t")
        assert latest == rewritten, (
            f"latest_run('t') after checkpoint_append of r1 (updated_at 5, as r2's): {diff(latest, rewritten)}"
        )

    # ── CKP-5: load_checkpoint ─────────────────────────────────────────

    @rule("CKP-5")
    async def test_load_checkpoint_is_none_without_messages_or_runs(self, store: ThreadRunStore) -> None:
        """An unknown thread, a bare thread and a thread with only state have no checkpoint."""
        await store.save_thread(thread("bare"))
        await store.save_thread(thread("stateful"))
        await store.save_thread_state("stateful", PersistedState(revision=1))
        await store.create_run(run("r1", "other"))
        await log(store, "other", "m1")
        for thread_id in ["unknown", "bare", "stateful"]:
            found = await store.load_checkpoint(thread_id)
            assert found is None, f"load_checkpoint({thread_id!r}) gives {found!r}; expected None: no messages, no run"

    @rule("CKP-5")
    async def test_load_checkpoint_of_a_thread_with_only_a_run(self, store: ThreadRunStore) -> None:
        """A run without messages gives no messages, version 0 and that run."""
        await store.create_run(run("r1", "t", RunStatus.WAITING))
        found = await store.load_checkpoint("t")
        assert found is not None, "load_checkpoint('t') gives None for a thread with a run"
        messages, version = found.messages, found.message_version
        assert (messages, version) == ([], 0), (
            f"load_checkpoint('t') gives messages {messages!r}, version {version!r}; expected [] and 0"
        )
        due = run("r1", "t", RunStatus.WAITING)
        assert found.latest_run == due, f"load_checkpoint('t').latest_run: {diff(found.latest_run, due)}"

    @rule("CKP-5")
    async def test_load_checkpoint_messages_are_the_effective_view(self, store: ThreadRunStore) -> None:
        """A summary replaces m1..m2; the retracted call c2 and its result disappear; c1 stays."""
        await log(
            store,
            "t",
            user("m1"),
            assistant("m2"),
            user("m3"),
            system("s4", summary_of=(1, 2)),
            assistant("m5", calls=["c1", "c2"]),
            tool("m6", "c1"),
            tool("m7", "c2", internal=True),
        )
        found = await store.load_checkpoint("t")
        assert found is not None, "load_checkpoint('t') gives None for a thread with messages"
        view = [system("s4", summary_of=(1, 2)), user("m3"), assistant("m5", calls=["c1"]), tool("m6", "c1")]
        assert found.messages == view, (
            f"load_checkpoint('t').messages are not the read view: {diff(found.messages, view)}"
        )
        assert found.latest_run is None, (
            f"load_checkpoint('t').latest_run is {named(found.latest_run)}; expected None: the thread has no run"
        )

    @rule("CKP-5")
    async def test_load_checkpoint_version_is_the_raw_log_length(self, store: ThreadRunStore) -> None:
        """A raw log of 5 whose read view has 3 messages is version 5."""
        await _hidden_log(store, "t")
        found = await store.load_checkpoint("t")
        assert found is not None, "load_checkpoint('t') gives None for a thread with messages"
        version = found.message_version
        assert version == 5, f"load_checkpoint('t').message_version is {version!r}; expected 5, the raw log's length"

    @rule("CKP-5")
    async def test_load_checkpoint_carries_the_latest_run(self, store: ThreadRunStore) -> None:
        """The latest run is the thread's run of greatest updated_at (ties are RUN-3's), not the last written."""
        await log(store, "t", "m1")
        await store.create_run(run("r-a", "t", created_at=1, updated_at=9))
        await store.create_run(run("r-b", "t", created_at=2, updated_at=5))
        await store.create_run(run("r-c", "t", created_at=3, updated_at=7))
        await store.create_run(run("r-d", "t-other", created_at=4, updated_at=99))
        found = await store.load_checkpoint("t")
        assert found is not None, "load_checkpoint('t') gives None for a thread with messages and runs"
        due = run("r-a", "t", created_at=1, updated_at=9)
        assert found.latest_run == due, f"load_checkpoint('t').latest_run: {diff(found.latest_run, due)}"

    @rule("CKP-5", requires="thread_state")
    async def test_load_checkpoint_carries_the_thread_state(self, store: ThreadRunStore) -> None:
        """The thread's state, as `load_thread_state` reads it, comes with its checkpoint.

        That it is the last one saved is THR-6's business (a store that keeps the first
        state breaks THR-6, not this rule).
        """
        await log(store, "t", "m1")
        await store.save_thread_state("t", PersistedState(revision=1))
        await store.save_thread_state("t", PersistedState(revision=2, extensions={"k": [1]}))
        stored = await store.load_thread_state("t")
        assert stored is not None, "load_thread_state('t') gives None for a state just saved"
        found = await store.load_checkpoint("t")
        assert found is not None, "load_checkpoint('t') gives None for a thread with messages"
        assert found.thread_state is not None, (
            "load_checkpoint('t') has no thread_state: did the store read another key?"
        )
        assert found.thread_state == stored, (
            f"load_checkpoint('t').thread_state is not load_thread_state's: {diff(found.thread_state, stored)}"
        )
