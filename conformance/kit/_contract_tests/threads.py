"""Contract tests: threads (THR) and the model rules a store must keep (MOD-1, MOD-2, MOD-5, MOD-6)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from conformance.contract._errors import NotFoundError, ValidationError
from conformance.contract._models import Thread, ThreadMetadata
from conformance.contract._runs import MessageSeqRange, PersistedState
from conformance.contract._stores import ThreadRunStore
from conformance.kit._boundary import answering
from conformance.kit._differ import diff, named, shown
from conformance.kit._exact import expect_same
from conformance.kit._runner import rule
from conformance.kit._scenarios import log, run, snapshot, thread, tree, user
from conformance.kit._violation import RuleViolation, expect

PORTABLE_IDS = ["t", "a" * 128, "A-z_0.9:x", "100%", "back\\slash", "under_score", "..", "::"]
ANY_IDS = ["日本語", "with space", "slash/inside", "emoji-🧵", "é" * 40]
#: Thread ids no thread can have (MOD-2); writes that validate no thread may still meet them.
BLANK_IDS = ["", " ", "   "]


class ThreadRules:
    """THR-1..6 and the model rules that a store's reads and writes must keep."""

    @rule("THR-1")
    async def test_load_unknown_thread_returns_none(self, store: ThreadRunStore) -> None:
        """Loading an id that was never saved gives None, not an error."""
        found = await store.load_thread("never-saved")
        assert found is None, f"load_thread('never-saved') gives {named(found)}; expected None for an unknown id"

    @rule("THR-2")
    async def test_save_thread_creates_and_overwrites(self, store: ThreadRunStore) -> None:
        """Saving twice keeps the second version, whole."""
        await store.save_thread(thread("t1", title="first", updated_at=10))
        await store.save_thread(thread("t1", title="second"))
        found, due = await store.load_thread("t1"), thread("t1", title="second")
        assert found == due, f"load_thread('t1') after a second save_thread: {diff(found, due)}"

    @rule("THR-2", "MOD-1")
    async def test_save_thread_normalizes_parent(self, store: ThreadRunStore) -> None:
        """A parent id saved with surrounding spaces reads back stripped."""
        await store.save_thread(thread("p"))
        await store.save_thread(thread("c", parent="  p "))
        loaded = await store.load_thread("c")
        assert loaded is not None, "load_thread('c') gives None for a thread just saved"
        parent = loaded.parent_thread_id
        assert parent == "p", f"parent_thread_id saved as '  p ' reads back as {parent!r}; expected 'p'"

    @rule("THR-2", "MOD-1")
    async def test_save_thread_normalizes_resource(self, store: ThreadRunStore) -> None:
        """A resource id saved as "  r " reads back as "r"."""
        await store.save_thread(thread("t", resource="  r "))
        found, due = await store.load_thread("t"), thread("t", resource="r")
        assert found == due, f"load_thread('t') of a thread saved with resource_id '  r ': {diff(found, due)}"

    @rule("THR-2", "MOD-1")
    @pytest.mark.parametrize(
        "blank",
        [Thread(id="t", resource_id="  "), Thread(id="t", parent_thread_id=""), Thread(id="t", parent_thread_id="\t")],
        ids=["blank-resource", "empty-parent", "tab-parent"],
    )
    async def test_save_thread_stores_blank_lineage_as_none(self, store: ThreadRunStore, blank: Thread) -> None:
        """A blank resource or parent id means none: the thread is stored, without it."""
        await store.save_thread(blank)
        found = await store.load_thread("t")
        assert found == Thread(id="t"), (
            f"load_thread('t') of a thread saved with a blank lineage id: {diff(found, Thread(id='t'))}"
        )

    @rule("THR-2", "MOD-2")
    @pytest.mark.parametrize(
        "invalid",
        [
            Thread(id=""),
            Thread(id="   "),
            Thread(id="t", active_run_id=" "),
            Thread(id="t", open_run_id=""),
            Thread(id="t", latest_run_id="\t"),
            Thread(id="t", parent_thread_id=" t "),
        ],
        ids=["empty-id", "blank-id", "blank-active", "empty-open", "tab-latest", "self-parent"],
    )
    async def test_save_thread_rejects_invalid_thread(self, store: ThreadRunStore, invalid: Thread) -> None:
        """An invalid thread raises ValidationError and nothing is stored; blank run ids stay invalid."""
        with pytest.raises(ValidationError):
            await store.save_thread(invalid)
        listed = await store.list_threads(0, 10)
        assert listed == [], (
            f"save_thread refused an invalid thread but list_threads(0, 10) gives {listed}; expected []"
        )

    @rule("THR-2")
    async def test_save_thread_does_not_check_hierarchy(self, store: ThreadRunStore) -> None:
        """A plain save accepts a parent that does not exist."""
        await store.save_thread(thread("orphan", parent="missing"))
        loaded = await store.load_thread("orphan")
        assert loaded is not None, "load_thread('orphan') gives None: save_thread must take a missing parent"
        parent = loaded.parent_thread_id
        assert parent == "missing", f"load_thread('orphan').parent_thread_id is {parent!r}; expected 'missing'"

    @rule("THR-3")
    async def test_update_metadata_replaces_it_whole(self, store: ThreadRunStore) -> None:
        """Updating metadata replaces every field of it; lineage stays."""
        await store.save_thread(Thread(id="t", resource_id="r", metadata=ThreadMetadata(title="old", custom={"k": 1})))
        await store.update_thread_metadata("t", ThreadMetadata(updated_at=7))
        found, due = (
            await store.load_thread("t"),
            Thread(id="t", resource_id="r", metadata=ThreadMetadata(updated_at=7)),
        )
        assert found == due, f"load_thread('t') after update_thread_metadata: {diff(found, due)}"

    @rule("THR-3")
    async def test_update_metadata_of_unknown_thread_raises(self, store: ThreadRunStore) -> None:
        """Updating an unknown thread raises NotFoundError and creates nothing."""
        with pytest.raises(NotFoundError):
            await store.update_thread_metadata("ghost", ThreadMetadata(title="boo"))
        found = await store.load_thread("ghost")
        assert found is None, (
            f"update_thread_metadata of an unknown thread raised, yet load_thread('ghost') gives {named(found)}"
        )

    @rule("THR-4")
    async def test_delete_thread_removes_thread_and_log_but_keeps_runs(self, store: ThreadRunStore) -> None:
        """Deleting a thread removes it and its messages; its run records stay."""
        await store.save_thread(thread("t"))
        await log(store, "t", "m1", "m2")
        await store.create_run(run("r1", "t"))
        await store.delete_thread("t")
        found = await store.load_thread("t")
        assert found is None, f"after delete_thread('t'), load_thread('t') gives {named(found)}; expected None"
        messages = await store.load_committed_messages("t")  # no message; that it reads None is MSG-1's
        assert not messages, (
            f"after delete_thread('t'), load_committed_messages('t') gives {shown(messages)}; expected no message"
        )
        kept = await store.load_run("r1")
        assert kept == run("r1", "t"), (
            f"delete_thread('t') must keep its runs; load_run('r1'): {diff(kept, run('r1', 't'))}"
        )

    @rule("THR-1", "RUN-2", "MSG-8", "CKP-5")
    @pytest.mark.parametrize("odd", ["nul\x00id", "lone\ud800"], ids=["nul", "lone-surrogate"])
    async def test_an_id_no_store_can_hold_is_unknown(self, store: ThreadRunStore, odd: str) -> None:
        """An id holding NUL or a lone surrogate was never stored, so reads of it find nothing.

        Each read answers to its own rule: a store whose `load_run` chokes on such an id
        breaks RUN-2, not THR-1 or CKP-5.
        """
        await log(store, "t", "m1")
        await store.create_run(run("r1", "t"))
        reads: list[tuple[str, str, Callable[[], Awaitable[object]]]] = [
            ("THR-1", "load_thread", lambda: store.load_thread(odd)),
            ("RUN-2", "load_run", lambda: store.load_run(odd)),
            ("MSG-8", "load_message_record('t', ...)", lambda: store.load_message_record("t", odd)),
            ("MSG-8", "load_message_record(..., 'm1')", lambda: store.load_message_record(odd, "m1")),
            ("CKP-5", "load_checkpoint", lambda: store.load_checkpoint(odd)),
        ]
        for rule_id, name, read in reads:
            try:
                with answering(rule_id, about_ids=True):
                    found = await read()
            except Exception as error:
                raise RuleViolation(
                    rule_id, f"{name} of {odd!r} raised {error!r}; an id never stored reads as None"
                ) from error
            expect(found is None, rule_id, f"{name} of {odd!r} returned {found!r}, not None")
        try:
            with answering("MSG-8", about_ids=True):
                records = await store.load_message_records_range(odd, MessageSeqRange(from_seq=1, to_seq=5))
        except Exception as error:
            raise RuleViolation("MSG-8", f"the range of {odd!r} raised {error!r}; expected []") from error
        expect(records == [], "MSG-8", f"load_message_records_range of {odd!r} returned {records!r}, not []")

    @rule("THR-4")
    async def test_log_of_a_deleted_thread_starts_again_at_seq_one(self, store: ThreadRunStore) -> None:
        """After deleting a thread with two messages, appending to its id numbers the new log from 1."""
        await store.save_thread(thread("t"))
        await log(store, "t", "m1", "m2")
        await store.delete_thread("t")
        seqs = [r.seq for r in await log(store, "t", "n1")]
        assert seqs == [1], f"append_message_records to a deleted thread's id returned seqs {seqs}; expected [1]"
        records = await store.load_message_records("t")
        found = [(r.seq, r.message_id) for r in records or []]
        assert found == [(1, "n1")], f"load_message_records('t') gives (seq, id) {found}; expected [(1, 'n1')]"

    @rule("THR-4", "THR-6")
    async def test_delete_thread_removes_state(self, store: ThreadRunStore) -> None:
        """Deleting a thread removes its thread state."""
        await store.save_thread(thread("t"))
        await store.save_thread_state("t", PersistedState(revision=3))
        await store.delete_thread("t")
        state = await store.load_thread_state("t")
        assert state is None, f"after delete_thread('t'), load_thread_state('t') gives {state!r}; expected None"

    @rule("THR-4")
    async def test_delete_unknown_thread_is_not_an_error(self, store: ThreadRunStore) -> None:
        """Deleting an id that does not exist succeeds and changes nothing."""
        await store.save_thread(thread("keep"))
        before = await snapshot(store)
        await store.delete_thread("ghost")
        after = await snapshot(store)
        assert after == before, f"delete_thread('ghost') of an unknown id changed the store: {diff(after, before)}"

    @rule("THR-4")
    @pytest.mark.parametrize("odd", ["nul\x00id", "lone\ud800", "x" * 300], ids=["nul", "lone-surrogate", "too-long"])
    async def test_delete_of_an_id_no_store_can_hold_is_no_error(self, store: ThreadRunStore, odd: str) -> None:
        """delete_thread of an id no store can hold deletes an unknown thread: no error, nothing else changes."""
        await store.save_thread(thread("t"))
        with answering("THR-4", about_ids=True):
            await store.delete_thread(odd)
        listed = await store.list_threads(0, 10)
        assert listed == ["t"], f"after delete_thread({odd!r:.20}), list_threads(0, 10) gives {listed}; expected ['t']"

    @rule("THR-5", requires="any_ids")
    async def test_id_ties_go_by_code_point(self, store: ThreadRunStore) -> None:
        """Equally active U+FFFF and U+10000 list in code point order; UTF-16 code units would swap them."""
        for thread_id in ["\U00010000", "\uffff", "a"]:
            await store.save_thread(thread(thread_id, updated_at=5))
        listed = await store.list_threads(0, 10)
        due = ["a", "\uffff", "\U00010000"]
        assert listed == due, f"list_threads(0, 10) of equally active ids gives {listed!a}; expected {due!a}"

    @rule("THR-5")
    async def test_list_threads_orders_by_recent_activity_then_id(self, store: ThreadRunStore) -> None:
        """updated_at wins over created_at; a thread with neither counts as 0; ties go by id."""
        await store.save_thread(thread("none"))
        await store.save_thread(thread("b-created-5", created_at=5))
        await store.save_thread(thread("a-updated-5", created_at=1, updated_at=5))
        await store.save_thread(thread("c-updated-9", updated_at=9))
        listed, due = await store.list_threads(0, 10), ["c-updated-9", "a-updated-5", "b-created-5", "none"]
        assert listed == due, f"list_threads(0, 10) gives {listed}; expected {due}"

    @rule("THR-5")
    @pytest.mark.parametrize(
        ("stamps", "expected"),
        [
            ({"b": (7, None), "a": (None, 5)}, ["b", "a"]),
            ({"a": (None, 5), "b": (7, None)}, ["b", "a"]),
            ({"a": (9, 2), "b": (None, 5)}, ["b", "a"]),
            ({"b": (None, None), "a": (None, 1)}, ["a", "b"]),
            ({"b": (None, None), "a": (None, None), "c": (0, None)}, ["a", "b", "c"]),
            ({"c": (4, None), "a": (None, 4), "b": (1, 4)}, ["a", "b", "c"]),
            ({"a": (9, 0), "b": (None, 5)}, ["b", "a"]),
        ],
        ids=[
            "only-created",
            "only-updated",
            "updated-wins",
            "neither-is-zero",
            "ties-by-id",
            "equal-keys-by-id",
            "updated-zero-wins",
        ],
    )
    async def test_list_threads_falls_back_from_updated_at_to_created_at(
        self, store: ThreadRunStore, stamps: dict[str, tuple[int | None, int | None]], expected: list[str]
    ) -> None:
        """A thread's activity is its updated_at, else its created_at, else 0: `(created_at, updated_at)`
        of `(7, None)` is newer than `(None, 5)`, and `(9, 2)` older than `(None, 5)`; equal ones go by id.
        An updated_at of 0 is a stamp, not an absence: `(9, 0)` is older than `(None, 5)`."""
        for thread_id, (created_at, updated_at) in stamps.items():
            await store.save_thread(thread(thread_id, created_at=created_at, updated_at=updated_at))
        listed = await store.list_threads(0, 10)
        assert listed == expected, (
            f"list_threads(0, 10) of (created_at, updated_at) {stamps} gives {listed}; expected {expected}"
        )

    @rule("THR-5")
    async def test_list_threads_pages_by_offset_and_limit(self, store: ThreadRunStore) -> None:
        """offset skips and limit caps, in the same order."""
        for number in range(5):
            await store.save_thread(thread(f"t{number}", updated_at=number))
        for (offset, limit), due in {(1, 2): ["t3", "t2"], (4, 10): ["t0"], (9, 10): []}.items():
            listed = await store.list_threads(offset, limit)
            assert listed == due, f"list_threads({offset}, {limit}) of t4..t0 gives {listed}; expected {due}"

    @rule("THR-6")
    async def test_thread_state_overwrites_and_reads_back(self, store: ThreadRunStore) -> None:
        """The last saved state wins; a thread never given state has None."""
        first = await store.load_thread_state("t")
        assert first is None, f"load_thread_state('t') of a thread never given state gives {first!r}; expected None"
        await store.save_thread_state("t", PersistedState(revision=1, extensions={"a": [1]}))
        await store.save_thread_state("t", PersistedState(revision=2, extensions={"b": {"c": None}}))
        found, due = await store.load_thread_state("t"), PersistedState(revision=2, extensions={"b": {"c": None}})
        assert found == due, f"load_thread_state('t') after two saves: {diff(found, due)}"

    @rule("MOD-5", "THR-2")
    async def test_every_thread_field_survives_storage(self, store: ThreadRunStore) -> None:
        """A thread with every field set reads back equal, and its JSON is unchanged."""
        await tree(store, {"parent": {}})
        full = Thread(
            id="full",
            resource_id="res",
            parent_thread_id="parent",
            metadata=ThreadMetadata(created_at=1, updated_at=2, title="T", custom={"n": 1.5, "l": [True, None, "x"]}),
            active_run_id="r1",
            open_run_id="r1",
            latest_run_id="r1",
            latest_run_updated_at=99,
        )
        await store.save_thread(full)
        loaded = await store.load_thread("full")
        expect_same(loaded, full, ("MOD-5", "THR-2"), "load_thread('full')")
        assert loaded is not None, "load_thread('full') gives None for a thread just saved"
        expect_same(loaded.to_json(), full.to_json(), "MOD-5", "the JSON of load_thread('full')")

    @rule("MOD-6")
    @pytest.mark.parametrize("thread_id", PORTABLE_IDS)
    async def test_portable_ids_are_accepted(self, store: ThreadRunStore, thread_id: str) -> None:
        """Ids of ASCII letters, digits and - _ . : % \\ up to 128 characters work everywhere."""
        await store.save_thread(thread(thread_id, updated_at=1))
        await log(store, thread_id, thread_id)
        found, due = await store.load_thread(thread_id), thread(thread_id, updated_at=1)
        assert found == due, f"load_thread({thread_id!r:.40}): {diff(found, due)}"
        listed = await store.list_threads(0, 10)
        assert listed == [thread_id], f"list_threads(0, 10) gives {listed!r:.200}; expected [{thread_id!r:.40}]"
        messages = await store.load_committed_messages(thread_id)
        assert messages is not None, f"load_committed_messages({thread_id!r:.40}) gives None for a log just appended"
        ids = [m.id for m in messages]
        assert ids == [thread_id], f"the log of {thread_id!r:.40} holds {ids!r:.200}; expected one message"

    @rule("MOD-6", requires="any_ids")
    @pytest.mark.parametrize("thread_id", ANY_IDS)
    async def test_any_ids_are_accepted(self, store: ThreadRunStore, thread_id: str) -> None:
        """A store declaring any_ids accepts unicode, spaces and slashes inside ids."""
        await store.save_thread(thread(thread_id))
        await log(store, thread_id, "m1")
        found = await store.load_thread(thread_id)
        assert found == thread(thread_id), f"load_thread({thread_id!r}): {diff(found, thread(thread_id))}"
        listed = await store.list_threads(0, 10)
        assert listed == [thread_id], f"list_threads(0, 10) gives {listed}; expected [{thread_id!r}]"

    @rule("MOD-6")
    async def test_unstorable_ids_are_refused_with_validation_error(self, store: ThreadRunStore) -> None:
        """An id outside what the store can keep is refused with ValidationError, never another error."""
        # The lone surrogate last: a strict JSON peer cannot take it, and the test ends there for it.
        for thread_id in [*ANY_IDS, "nul\x00inside", "x" * 300, "lone\ud800surrogate"]:
            try:
                await store.save_thread(thread(thread_id))
            except ValidationError:
                found = await store.load_thread(thread_id)
                assert found is None, f"save_thread refused {thread_id!r:.40}, yet load_thread gives {named(found):.80}"
                continue
            found = await store.load_thread(thread_id)
            assert found == thread(thread_id), (
                f"save_thread took {thread_id!r:.40}; load_thread: {diff(found, thread(thread_id))}"
            )

    @rule("MOD-6")
    @pytest.mark.parametrize("append", [False, True], ids=["save_messages", "append_message_records"])
    async def test_blank_log_ids_are_kept_exactly_or_refused(self, store: ThreadRunStore, append: bool) -> None:
        """A log written under "", " " or "   " (no thread validates it) is kept under exactly that id, or refused.

        Blank ids are not portable, so a store may refuse them with ValidationError;
        one that takes them never strips them: each reads back its own log only.
        """
        kept: dict[str, str] = {}
        for number, thread_id in enumerate(BLANK_IDS):
            message = user(f"m{number}")
            try:
                if append:
                    await store.append_message_records(thread_id, [message])
                else:
                    await store.save_messages(thread_id, [message])
            except ValidationError:
                expect(
                    await store.load_committed_messages(thread_id) is None,
                    "MOD-6",
                    f"a refused write left a log under {thread_id!r}",
                )
                continue
            kept[thread_id] = f"m{number}"
        for thread_id, message_id in kept.items():
            found = await store.load_committed_messages(thread_id)
            ids = None if found is None else [m.id for m in found]
            expect(ids == [message_id], "MOD-6", f"the log of {thread_id!r} reads back {ids}, not [{message_id!r}]")

    @rule("MOD-6", requires="thread_state")
    async def test_blank_state_ids_are_kept_exactly_or_refused(self, store: ThreadRunStore) -> None:
        """A thread state saved under "", " " or "   " is kept under exactly that id, or refused (ValidationError)."""
        kept: dict[str, int] = {}
        for revision, thread_id in enumerate(BLANK_IDS, start=1):
            try:
                await store.save_thread_state(thread_id, PersistedState(revision=revision))
            except ValidationError:
                expect(
                    await store.load_thread_state(thread_id) is None,
                    "MOD-6",
                    f"a refused save left a state under {thread_id!r}",
                )
                continue
            kept[thread_id] = revision
        for thread_id, revision in kept.items():
            state = await store.load_thread_state(thread_id)
            found = None if state is None else state.revision
            expect(found == revision, "MOD-6", f"the state of {thread_id!r} has revision {found}, not {revision}")
