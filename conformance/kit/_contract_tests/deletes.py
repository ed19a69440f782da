"""Contract tests: deletes with a child strategy (DEL-1..6)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from functools import partial

import anyio
import anyio.lowlevel
import pytest

from conformance.contract._enums import ChildThreadDeleteStrategy
from conformance.contract._errors import NotFoundError, ValidationError
from conformance.contract._models import Thread, ThreadMetadata
from conformance.contract._runs import PersistedState
from conformance.contract._stores import ThreadRunStore
from conformance.kit._boundary import answering
from conformance.kit._differ import diff, named, shown
from conformance.kit._races import ROUNDS, race, round_name, warm
from conformance.kit._runner import rule
from conformance.kit._scenarios import Snapshot, Tree, log, run, snapshot, thread, tree
from conformance.kit._violation import RuleViolation, expect

REJECT = ChildThreadDeleteStrategy.REJECT
DETACH = ChildThreadDeleteStrategy.DETACH
CASCADE = ChildThreadDeleteStrategy.CASCADE
STRATEGIES = pytest.mark.parametrize("strategy", list(ChildThreadDeleteStrategy), ids=lambda s: s.value)


def _ms() -> int:
    """Now in unix milliseconds, as the caller's clock reads it."""
    return time.time_ns() // 1_000_000


async def _furnish(store: ThreadRunStore, *thread_ids: str) -> None:
    """Give each thread a message log and a thread state, so deletes have something to remove."""
    for thread_id in thread_ids:
        await log(store, thread_id, f"{thread_id}-m1", f"{thread_id}-m2")
        await store.save_thread_state(thread_id, PersistedState(revision=1, extensions={"of": thread_id}))


def _forget(expected: Snapshot, *thread_ids: str) -> None:
    """Turn a snapshot into what it becomes once `thread_ids` are deleted as THR-4 (runs stay)."""
    for thread_id in thread_ids:
        expected.threads.pop(thread_id, None)
        expected.logs[thread_id] = None
        expected.states[thread_id] = None


def _settled(taken: Snapshot) -> Snapshot:
    """`taken` with every log that holds no message as None: how such a log reads is MSG-1's to check."""
    return replace(taken, logs={owner: messages or None for owner, messages in taken.logs.items()})


def _child(thread_id: str, parent: str | None) -> Thread:
    """A child thread with every field set, to check that detaching touches only what it must."""
    return Thread(
        id=thread_id,
        resource_id="res",
        parent_thread_id=parent,
        metadata=ThreadMetadata(created_at=11, updated_at=22, title=f"title {thread_id}", custom={"keep": [1, "x"]}),
        active_run_id="run-a",
        open_run_id="run-a",
        latest_run_id="run-a",
        latest_run_updated_at=33,
    )


def _detached(original: Thread, updated_at: int | None) -> Thread:
    """`original` as DEL-3 leaves it: no parent, the given `updated_at`, the rest unchanged."""
    expected = original.copy()
    expected.parent_thread_id = None
    expected.metadata.updated_at = updated_at
    return expected


async def _stored(store: ThreadRunStore, thread_id: str) -> Thread:
    """`load_thread(thread_id)` of a thread the delete must keep; None fails the test."""
    __tracebackhide__ = True
    found = await store.load_thread(thread_id)
    assert found is not None, f"load_thread({thread_id!r}) gives None: the delete must keep thread {thread_id!r}"
    return found


def _fan(prefix: str, fanout: int, depth: int) -> Tree:
    """A tree `depth` levels below its root, every thread with `fanout` children."""
    if depth == 0:
        return {}
    return {f"{prefix}.{n}": _fan(f"{prefix}.{n}", fanout, depth - 1) for n in range(fanout)}


Read = Callable[[], Awaitable[object]]


async def _torn_reads(
    store: ThreadRunStore, delete: Callable[[], Awaitable[None]], reads: Sequence[Read]
) -> list[object]:
    """Run `delete` while one reader per read repeats it; return what no reader should see.

    Each read is one call to the store. A reader's observation is torn when it equals
    neither what the same read returns just before the delete nor just after it. The
    store is warmed first (as `conformance.kit._races.warm`); readers and the deleter
    start on a barrier, the delete once every reader has read once; readers stop when
    it returns.
    """
    before = [await read() for read in reads]
    observed: list[list[object]] = [[] for _ in reads]
    finished = anyio.Event()
    ready = anyio.Semaphore(0)

    async def reader(index: int) -> None:
        while not finished.is_set():
            observed[index].append(await reads[index]())
            if len(observed[index]) == 1:
                ready.release()
            await anyio.lowlevel.checkpoint()

    async def writer() -> None:
        for _ in reads:
            await ready.acquire()
        try:
            await delete()
        finally:
            finished.set()

    await warm([store], len(reads) + 1)
    await race([*(partial(reader, index) for index in range(len(reads))), writer])
    after = [await read() for read in reads]
    return [
        seen for index, seen_by in enumerate(observed) for seen in seen_by if seen not in (before[index], after[index])
    ]


async def _refused(call: Awaitable[None], error: type[Exception], rule_id: str) -> None:
    """Await `call`, which must raise `error`: returning or hanging breaks `rule_id`.

    Another error fails the test as usual.
    """
    try:
        with answering(rule_id):
            await call
    except error:
        return
    raise RuleViolation(rule_id, f"DID NOT RAISE {error.__name__}")


class DeleteRules:
    """DEL-1..6: `delete_thread_with_strategy` under reject, detach and cascade."""

    # ── DEL-1 ─────────────────────────────────────────────────────────

    @rule("DEL-1", "ATO-1")
    @STRATEGIES
    async def test_delete_unknown_thread_raises_not_found(
        self, store: ThreadRunStore, strategy: ChildThreadDeleteStrategy
    ) -> None:
        """Deleting an id that was never saved raises NotFoundError, whatever the strategy, and changes nothing."""
        await tree(store, {"keep": {"child": {}}})
        await _furnish(store, "keep")
        before = await snapshot(store, "ghost")
        await _refused(store.delete_thread_with_strategy("ghost", strategy), NotFoundError, "DEL-1")
        after = await snapshot(store, "ghost")
        expect(after == before, "ATO-1", f"the refused delete changed the store: {diff(after, before)}")

    @rule("DEL-1", "ATO-1")
    @STRATEGIES
    async def test_delete_missing_parent_of_orphans_raises_not_found(
        self, store: ThreadRunStore, strategy: ChildThreadDeleteStrategy
    ) -> None:
        """An id that only orphans name as their parent is still unknown: NotFoundError, orphans untouched."""
        await tree(store, {"orphan": {"grandchild": {}}}, parent="never-saved")
        before = await snapshot(store, "never-saved")
        await _refused(store.delete_thread_with_strategy("never-saved", strategy), NotFoundError, "DEL-1")
        after = await snapshot(store, "never-saved")
        expect(after == before, "ATO-1", f"the refused delete changed the store: {diff(after, before)}")

    @rule("DEL-1")
    @STRATEGIES
    async def test_delete_twice_raises_not_found(
        self, store: ThreadRunStore, strategy: ChildThreadDeleteStrategy
    ) -> None:
        """A thread deleted once is unknown the second time: NotFoundError."""
        await tree(store, {"t": {}})
        await store.delete_thread_with_strategy("t", strategy)
        with pytest.raises(NotFoundError):
            await store.delete_thread_with_strategy("t", strategy)

    @rule("DEL-1")
    @STRATEGIES
    @pytest.mark.parametrize("odd", ["nul\x00id", "lone\ud800", "x" * 300], ids=["nul", "lone-surrogate", "too-long"])
    async def test_delete_of_an_id_no_store_can_hold_raises_not_found(
        self, store: ThreadRunStore, strategy: ChildThreadDeleteStrategy, odd: str
    ) -> None:
        """An id no store can hold names no thread: every strategy raises NotFoundError, not ValidationError.

        DEL-1 wins over MOD-6 here: MOD-6 refuses such an id where it would be stored;
        a delete stores nothing, so the id is simply unknown.
        """
        await tree(store, {"t": {}})
        with pytest.raises(NotFoundError), answering("DEL-1", about_ids=True):
            await store.delete_thread_with_strategy(odd, strategy)
        listed = await store.list_threads(0, 10)
        assert listed == ["t"], (
            f"after a refused delete of {odd!r:.20}, list_threads(0, 10) gives {listed}; expected ['t']"
        )

    # ── DEL-2 ─────────────────────────────────────────────────────────

    @rule("DEL-2")
    async def test_reject_refuses_thread_with_child_and_deletes_nothing(self, store: ThreadRunStore) -> None:
        """Rejecting a with child b (and grandchild c) raises ValidationError; a, b, c and their logs stay."""
        await tree(store, {"p": {"a": {"b": {"c": {}}}}})
        await _furnish(store, "a", "b", "c")
        before = await snapshot(store)
        with pytest.raises(ValidationError):
            await store.delete_thread_with_strategy("a", REJECT)
        after = await snapshot(store)
        assert after == before, f"the delete refused under reject changed the store: {diff(after, before)}"

    @rule("DEL-2")
    async def test_reject_deletes_childless_thread_like_delete_thread(self, store: ThreadRunStore) -> None:
        """Rejecting leaf a removes a, its log and its state; its run, its parent and its sibling stay."""
        await tree(store, {"p": {"a": {}, "sibling": {}}})
        await _furnish(store, "p", "a", "sibling")
        await store.create_run(run("r1", "a"))
        expected = await snapshot(store, "a")
        await store.delete_thread_with_strategy("a", REJECT)
        _forget(expected, "a")
        after = _settled(await snapshot(store, "a"))
        assert after == _settled(expected), f"after deleting leaf 'a' under reject: {diff(after, _settled(expected))}"

    # ── DEL-3 ─────────────────────────────────────────────────────────

    @rule("DEL-3")
    async def test_detach_clears_each_child_parent(self, store: ThreadRunStore) -> None:
        """Detaching a from its children b and c leaves b and c as roots."""
        await tree(store, {"a": {"b": {}, "c": {}}})
        await store.delete_thread_with_strategy("a", DETACH)
        for child in ("b", "c"):
            parent = (await _stored(store, child)).parent_thread_id
            assert parent is None, f"detached child {child!r} keeps parent_thread_id {parent!r}; expected None"

    @rule("DEL-3")
    async def test_detach_sets_children_updated_at_to_now(self, store: ThreadRunStore) -> None:
        """Each detached child's updated_at becomes the time of the delete, in unix milliseconds."""
        await store.save_thread(thread("a"))
        await store.save_thread(_child("b", "a"))
        await store.save_thread(thread("c", parent="a"))
        low = _ms()
        await store.delete_thread_with_strategy("a", DETACH)
        high = _ms()
        for child in ("b", "c"):
            updated_at = (await _stored(store, child)).metadata.updated_at
            assert updated_at is not None, f"detached child {child!r} has no updated_at"
            # One millisecond of slack either side absorbs rounding in a store that computes ms from float seconds.
            assert low - 1 <= updated_at <= high + 1, (
                f"updated_at of detached child {child!r} is {updated_at}, expected now in ms within [{low}, {high}]"
            )

    @rule("DEL-3")
    async def test_detach_keeps_the_rest_of_each_child(self, store: ThreadRunStore) -> None:
        """Apart from parent and updated_at, a detached child keeps every field (created_at too), its log and state."""
        await store.save_thread(thread("a"))
        await store.save_thread(_child("b", "a"))
        await _furnish(store, "b")
        before = await _stored(store, "b")  # what save_thread keeps of the child is THR-2's business
        log_before = await store.load_committed_messages("b")
        state_before = await store.load_thread_state("b")
        await store.delete_thread_with_strategy("a", DETACH)
        stored = await _stored(store, "b")
        due = _detached(before, stored.metadata.updated_at)
        assert stored == due, f"load_thread('b') of the detached child: {diff(stored, due)}"
        messages = await store.load_committed_messages("b")
        assert messages == log_before, f"the detached child's log changed: {diff(messages, log_before)}"
        state = await store.load_thread_state("b")
        assert state == state_before, f"the detached child's state changed: {diff(state, state_before)}"

    @rule("DEL-3")
    async def test_detach_keeps_grandchildren_attached(self, store: ThreadRunStore) -> None:
        """Detaching a leaves its grandchild c, unchanged, under its own parent b."""
        await store.save_thread(thread("a"))
        await store.save_thread(_child("b", "a"))
        await store.save_thread(_child("c", "b"))
        before = await store.load_thread("c")  # what save_thread keeps of it is THR-2's business
        await store.delete_thread_with_strategy("a", DETACH)
        assert before is not None, "load_thread('c') gives None for a thread just saved"
        after = await store.load_thread("c")
        assert after == before, f"detaching 'a' changed its grandchild: load_thread('c'): {diff(after, before)}"
        ids = [child.id for child in await store.list_child_threads("b")]
        assert ids == ["c"], f"after detaching 'a', list_child_threads('b') gives ids {ids}; expected ['c']"

    @rule("DEL-3")
    async def test_detach_deletes_thread_log_and_state(self, store: ThreadRunStore) -> None:
        """After detaching its child, thread a, its messages and its state are gone."""
        await tree(store, {"a": {"b": {}}})
        await _furnish(store, "a")
        await store.delete_thread_with_strategy("a", DETACH)
        found = await store.load_thread("a")
        assert found is None, f"after detaching, load_thread('a') gives {named(found)}; expected None"
        messages = await store.load_committed_messages("a")
        assert not messages, (
            f"after detaching, load_committed_messages('a') gives {shown(messages)}; expected no message"
        )
        state = await store.load_thread_state("a")
        assert state is None, f"after detaching, load_thread_state('a') gives {state!r}; expected None"

    @rule("DEL-3")
    async def test_detach_changes_nothing_but_thread_and_children(self, store: ThreadRunStore) -> None:
        """Detaching a deletes a and changes its children b, c; its parent, sibling, grandchild, other trees stay."""
        await tree(store, {"root": {"a": {"b": {"g": {}}, "c": {}}, "sibling": {}}, "other": {"o": {}}})
        await _furnish(store, "root", "a", "b", "c", "g", "sibling", "o")
        expected = await snapshot(store, "a")
        await store.delete_thread_with_strategy("a", DETACH)
        _forget(expected, "a")
        for child in ("b", "c"):
            expected.threads[child] = _detached(
                expected.threads[child], (await _stored(store, child)).metadata.updated_at
            )
        after = _settled(await snapshot(store, "a"))
        assert after == _settled(expected), f"after detaching 'a': {diff(after, _settled(expected))}"

    @rule("DEL-3")
    async def test_default_strategy_is_detach(self, store: ThreadRunStore) -> None:
        """Without a strategy, deleting a detaches its child b rather than refusing or deleting it."""
        await tree(store, {"a": {"b": {}}})
        await store.delete_thread_with_strategy("a")
        found = await store.load_thread("a")
        assert found is None, f"after the default delete, load_thread('a') gives {named(found)}; expected None"
        parent = (await _stored(store, "b")).parent_thread_id
        assert parent is None, f"the default delete left child 'b' with parent {parent!r}; expected it detached"

    # ── DEL-4 ─────────────────────────────────────────────────────────

    @rule("DEL-4")
    async def test_cascade_deletes_every_descendant_with_log_and_state(self, store: ThreadRunStore) -> None:
        """Cascading a removes a, its children, grandchildren and deeper, with their messages and state."""
        doomed = await tree(store, {"a": {"b": {"c": {"d": {}}}, "e": {"f": {}, "g": {}}}})
        await _furnish(store, *doomed)
        await store.delete_thread_with_strategy("a", CASCADE)
        for thread_id in doomed:
            assert await store.load_thread(thread_id) is None, f"descendant {thread_id!r} survived the cascade"
            assert not await store.load_committed_messages(thread_id), f"log of {thread_id!r} survived"
            assert await store.load_thread_state(thread_id) is None, f"state of {thread_id!r} survived"
        listed = await store.list_threads(0, 10)
        assert listed == [], f"after the cascade, list_threads(0, 10) gives {listed}; expected []"

    @rule("DEL-4")
    async def test_cascade_leaves_unrelated_threads_untouched(self, store: ThreadRunStore) -> None:
        """Cascading a removes only a's subtree: its parent, sibling, the sibling's child and other trees stay."""
        await tree(store, {"root": {"a": {"b": {"c": {}}}, "sibling": {"s": {}}}, "other": {"o": {}}})
        await _furnish(store, "root", "a", "b", "c", "sibling", "s", "other", "o")
        await store.create_run(run("r1", "b"))
        expected = await snapshot(store, "a", "b", "c")
        await store.delete_thread_with_strategy("a", CASCADE)
        _forget(expected, "a", "b", "c")
        after = _settled(await snapshot(store, "a", "b", "c"))
        assert after == _settled(expected), f"after cascading 'a': {diff(after, _settled(expected))}"

    # ── DEL-5 ─────────────────────────────────────────────────────────

    @rule("DEL-5")
    @pytest.mark.parametrize("length", [2, 4])
    async def test_cascade_over_cycle_raises(self, store: ThreadRunStore, length: int) -> None:
        """With x0 <- x1 <- ... <- x0 saved by plain save_thread, cascading x0 raises ValidationError and returns."""
        ring = [f"x{n}" for n in range(length)]
        for position, thread_id in enumerate(ring):
            await store.save_thread(thread(thread_id, parent=ring[position - 1]))
        await store.save_thread(thread("leaf", parent=ring[-1]))
        with pytest.raises(ValidationError):
            await store.delete_thread_with_strategy("x0", CASCADE)

    @rule("DEL-5", "ATO-1")
    async def test_cascade_over_cycle_deletes_nothing(self, store: ThreadRunStore) -> None:
        """A cascade refused for the cycle a <- b <- c <- a leaves every thread, log and state in place."""
        for thread_id, parent in (("a", "c"), ("b", "a"), ("c", "b"), ("leaf", "b"), ("other", None)):
            await store.save_thread(thread(thread_id, parent=parent))
        await _furnish(store, "a", "b", "c", "leaf")
        before = await snapshot(store)
        await _refused(store.delete_thread_with_strategy("a", CASCADE), ValidationError, "DEL-5")
        after = await snapshot(store)
        expect(after == before, "ATO-1", f"the refused cascade changed the store: {diff(after, before)}")

    # ── DEL-6 ─────────────────────────────────────────────────────────

    @rule("DEL-6")
    async def test_cascade_is_all_or_nothing_to_readers(self, store: ThreadRunStore) -> None:
        """Readers listing threads while a 21-thread subtree is cascaded see all of it or none of it; 32 rounds."""

        async def listing() -> list[str]:
            return await store.list_threads(0, 200)

        for number in range(ROUNDS):
            root = f"{number:02}.root"
            await tree(store, {root: _fan(root, 4, 2), f"{number:02}.stays": {f"{number:02}.stays.child": {}}})
            torn = await _torn_reads(store, partial(store.delete_thread_with_strategy, root, CASCADE), [listing] * 3)
            assert await store.load_thread(root) is None, f"{round_name(number)}: the cascade did not delete {root!r}"
            assert not torn, f"{round_name(number)}: a reader saw the cascade half done, listing {torn[0]!r:.300}"

    @rule("DEL-6")
    async def test_detach_is_all_or_nothing_to_readers(self, store: ThreadRunStore) -> None:
        """Readers listing threads or loading children while 16 children are detached see all detached or none.

        Each of 32 rounds puts the same 16 children (each with a child of its own) under
        a new root, then detaches them.
        """
        children = [f"child{n:02}" for n in range(16)]
        await store.save_thread(thread("stays", updated_at=500))

        async def listing() -> list[str]:
            return await store.list_threads(0, 200)

        reads: list[Read] = [listing, *(partial(store.load_thread, children[n]) for n in (0, 7, 15))]
        for number in range(ROUNDS):
            root = f"root{number:02}"
            await store.save_thread(thread(root, updated_at=1000))
            for position, child in enumerate(children):
                await store.save_thread(thread(child, parent=root, updated_at=position))
                if not number:
                    await store.save_thread(thread(f"grand{child}", parent=child, updated_at=position))
            torn = await _torn_reads(store, partial(store.delete_thread_with_strategy, root, DETACH), reads)
            assert await store.load_thread(root) is None, f"{round_name(number)}: the detach did not delete {root!r}"
            assert not torn, (
                f"{round_name(number)}: a reader saw the detach half done (some children detached and others not, "
                f"a child with its parent cleared but not its updated_at, or the parent still there): {torn[0]!r:.300}"
            )
