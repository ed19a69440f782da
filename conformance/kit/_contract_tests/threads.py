"""Contract tests: threads (THR) and the model rules a store must keep (MOD-1, MOD-2, MOD-5, MOD-6)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from conformance.contract._errors import NotFoundError, ValidationError
from conformance.contract._models import Thread, ThreadMetadata
from conformance.contract._runs import MessageSeqRange, PersistedState
from conformance.contract._stores import ThreadRunStore
from conformance.kit._boundary import answering
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
        assert await store.load_thread("never-saved") is None

    @rule("THR-2")
    async def test_save_thread_creates_and_overwrites(self, store: ThreadRunStore) -> None:
        """Saving twice keeps the second version, whole."""
        await store.save_thread(thread("t1", title="first", updated_at=10))
        await store.save_thread(thread("t1", title="second"))
        assert await store.load_thread("t1") == thread("t1", title="second")

    @rule("THR-2", "MOD-1")
    async def test_save_thread_normalizes_parent(self, store: ThreadRunStore) -> None:
        """A parent id saved with surrounding spaces reads back stripped."""
        await store.save_thread(thread("p"))
        await store.save_thread(thread("c", parent="  p "))
        loaded = await store.load_thread("c")
        assert loaded is not None
        assert loaded.parent_thread_id == "p"

    @rule("THR-2", "MOD-1")
    async def test_save_thread_normalizes_resource(self, store: ThreadRunStore) -> None:
        """A resource id saved as "  r " reads back as "r"."""
        await store.save_thread(thread("t", resource="  r "))
        assert await store.load_thread("t") == thread("t", resource="r")

    @rule("THR-2", "MOD-1")
    @pytest.mark.parametrize(
        "blank",
        [Thread(id="t", resource_id="  "), Thread(id="t", parent_thread_id=""), Thread(id="t", parent_thread_id="\t")],
        ids=["blank-resource", "empty-parent", "tab-parent"],
    )
    async def test_save_thread_stores_blank_lineage_as_none(self, store: ThreadRunStore, blank: Thread) -> None:
        """A blank resource or parent id means none: the thread is stored, without it."""
        await store.save_thread(blank)
        assert await store.load_thread("t") == Thread(id="t")

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
        assert await store.list_threads(0, 10) == []

    @rule("THR-2")
    async def test_save_thread_does_not_check_hierarchy(self, store: ThreadRunStore) -> None:
        """A plain save accepts a parent that does not exist."""
        await store.save_thread(thread("orphan", parent="missing"))
        loaded = await store.load_thread("orphan")
        assert loaded is not None
        assert loaded.parent_thread_id == "missing"

    @rule("THR-3")
    async def test_update_metadata_replaces_it_whole(self, store: ThreadRunStore) -> None:
        """Updating metadata replaces every field of it; lineage stays."""
        await store.save_thread(Thread(id="t", resource_id="r", metadata=ThreadMetadata(title="old", custom={"k": 1})))
        await store.update_thread_metadata("t", ThreadMetadata(updated_at=7))
        assert await store.load_thread("t") == Thread(id="t", resource_id="r", metadata=ThreadMetadata(updated_at=7))

    @rule("THR-3")
    async def test_update_metadata_of_unknown_thread_raises(self, store: ThreadRunStore) -> None:
        """Updating an unknown thread raises NotFoundError and creates nothing."""
        with pytest.raises(NotFoundError):
            await store.update_thread_metadata("ghost", ThreadMetadata(title="boo"))
        assert await store.load_thread("ghost") is None

    @rule("THR-4")
    async def test_delete_thread_removes_thread_and_log_but_keeps_runs(self, store: ThreadRunStore) -> None:
        """Deleting a thread removes it and its messages; its run records stay."""
        await store.save_thread(thread("t"))
        await log(store, "t", "m1", "m2")
        await store.create_run(run("r1", "t"))
        await store.delete_thread("t")
        assert await store.load_thread("t") is None
        assert not await store.load_committed_messages("t")  # no message; that it reads None is MSG-1's
        assert await store.load_run("r1") == run("r1", "t")

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
        assert [r.seq for r in await log(store, "t", "n1")] == [1]
        records = await store.load_message_records("t")
        assert [(r.seq, r.message_id) for r in records or []] == [(1, "n1")]

    @rule("THR-4", "THR-6")
    async def test_delete_thread_removes_state(self, store: ThreadRunStore) -> None:
        """Deleting a thread removes its thread state."""
        await store.save_thread(thread("t"))
        await store.save_thread_state("t", PersistedState(revision=3))
        await store.delete_thread("t")
        assert await store.load_thread_state("t") is None

    @rule("THR-4")
    async def test_delete_unknown_thread_is_not_an_error(self, store: ThreadRunStore) -> None:
        """Deleting an id that does not exist succeeds and changes nothing."""
        await store.save_thread(thread("keep"))
        before = await snapshot(store)
        await store.delete_thread("ghost")
        assert await snapshot(store) == before

    @rule("THR-4")
    @pytest.mark.parametrize("odd", ["nul\x00id", "lone\ud800", "x" * 300], ids=["nul", "lone-surrogate", "too-long"])
    async def test_delete_of_an_id_no_store_can_hold_is_no_error(self, store: ThreadRunStore, odd: str) -> None:
        """delete_thread of an id no store can hold deletes an unknown thread: no error, nothing else changes."""
        await store.save_thread(thread("t"))
        with answering("THR-4", about_ids=True):
            await store.delete_thread(odd)
        assert await store.list_threads(0, 10) == ["t"]

    @rule("THR-5", requires="any_ids")
    async def test_id_ties_go_by_code_point(self, store: ThreadRunStore) -> None:
        """Equally active U+FFFF and U+10000 list in code point order; UTF-16 code units would swap them."""
        for thread_id in ["\U00010000", "\uffff", "a"]:
            await store.save_thread(thread(thread_id, updated_at=5))
        assert await store.list_threads(0, 10) == ["a", "\uffff", "\U00010000"]

    @rule("THR-5")
    async def test_list_threads_orders_by_recent_activity_then_id(self, store: ThreadRunStore) -> None:
        """updated_at wins over created_at; a thread with neither counts as 0; ties go by id."""
        await store.save_thread(thread("none"))
        await store.save_thread(thread("b-created-5", created_at=5))
        await store.save_thread(thread("a-updated-5", created_at=1, updated_at=5))
        await store.save_thread(thread("c-updated-9", updated_at=9))
        assert await store.list_threads(0, 10) == ["c-updated-9", "a-updated-5", "b-created-5", "none"]

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
        assert await store.list_threads(0, 10) == expected

    @rule("THR-5")
    async def test_list_threads_pages_by_offset_and_limit(self, store: ThreadRunStore) -> None:
        """offset skips and limit caps, in the same order."""
        for number in range(5):
            await store.save_thread(thread(f"t{number}", updated_at=number))
        assert await store.list_threads(1, 2) == ["t3", "t2"]
        assert await store.list_threads(4, 10) == ["t0"]
        assert await store.list_threads(9, 10) == []

    @rule("THR-6")
    async def test_thread_state_overwrites_and_reads_back(self, store: ThreadRunStore) -> None:
        """The last saved state wins; a thread never given state has None."""
        assert await store.load_thread_state("t") is None
        await store.save_thread_state("t", PersistedState(revision=1, extensions={"a": [1]}))
        await store.save_thread_state("t", PersistedState(revision=2, extensions={"b": {"c": None}}))
        assert await store.load_thread_state("t") == PersistedState(revision=2, extensions={"b": {"c": None}})

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
        assert loaded is not None
        expect_same(loaded.to_json(), full.to_json(), "MOD-5", "the JSON of load_thread('full')")

    @rule("MOD-6")
    @pytest.mark.parametrize("thread_id", PORTABLE_IDS)
    async def test_portable_ids_are_accepted(self, store: ThreadRunStore, thread_id: str) -> None:
        """Ids of ASCII letters, digits and - _ . : % \\ up to 128 characters work everywhere."""
        await store.save_thread(thread(thread_id, updated_at=1))
        await log(store, thread_id, thread_id)
        assert await store.load_thread(thread_id) == thread(thread_id, updated_at=1)
        assert await store.list_threads(0, 10) == [thread_id]
        messages = await store.load_committed_messages(thread_id)
        assert messages is not None
        assert [m.id for m in messages] == [thread_id]

    @rule("MOD-6", requires="any_ids")
    @pytest.mark.parametrize("thread_id", ANY_IDS)
    async def test_any_ids_are_accepted(self, store: ThreadRunStore, thread_id: str) -> None:
        """A store declaring any_ids accepts unicode, spaces and slashes inside ids."""
        await store.save_thread(thread(thread_id))
        await log(store, thread_id, "m1")
        assert await store.load_thread(thread_id) == thread(thread_id)
        assert await store.list_threads(0, 10) == [thread_id]

    @rule("MOD-6")
    async def test_unstorable_ids_are_refused_with_validation_error(self, store: ThreadRunStore) -> None:
        """An id outside what the store can keep is refused with ValidationError, never another error."""
        for thread_id in [*ANY_IDS, "nul\x00inside", "lone\ud800surrogate", "x" * 300]:
            try:
                await store.save_thread(thread(thread_id))
            except ValidationError:
                assert await store.load_thread(thread_id) is None
                continue
            assert await store.load_thread(thread_id) == thread(thread_id)

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
