"""State machine: threads, hierarchy and strategy deletes against an independent model.

The model is three plain dicts: the threads the store must hold (as `Thread` values,
parent stripped), the message ids of each log, and the revision of each thread state
(only when the store declares `thread_state`). Threads come from `save_thread`, which
does not check the hierarchy, so cycles and dangling parents appear; from
`save_thread_validated`, which must refuse them; and leave through `delete_thread` and
the three strategies of `delete_thread_with_strategy`. The model computes every
expected outcome with its own walks, never with the kit's hierarchy helpers.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from hypothesis import note
from hypothesis import strategies as st
from hypothesis.stateful import initialize, invariant, precondition, rule

from conformance.contract._enums import ChildThreadDeleteStrategy, Role
from conformance.contract._errors import NotFoundError, StorageError, ValidationError
from conformance.contract._models import Message, Thread, ThreadMetadata
from conformance.contract._runs import PersistedState
from conformance.contract._stores import ThreadRunStore
from conformance.kit._differ import diff
from conformance.kit._stateful import StoreMachine, stateful
from conformance.kit._violation import RuleViolation, expect, present

__all__ = ["HierarchyMachine", "HierarchyMachineRules"]

REJECT = ChildThreadDeleteStrategy.REJECT
DETACH = ChildThreadDeleteStrategy.DETACH
CASCADE = ChildThreadDeleteStrategy.CASCADE

#: Few ids, so that parents, cycles and deletes keep colliding; `MISSING` is never saved.
IDS = ("a", "b", "c", "d", "e")
MISSING = "x"
STAMPS = st.sampled_from([None, 5, 10])
#: A parent (maybe missing, maybe closing a cycle) and an updated_at for each id, and ids left out.
FOREST = st.lists(st.tuples(st.sampled_from([None, *IDS, MISSING]), STAMPS), min_size=len(IDS), max_size=len(IDS))
ABSENT = st.sets(st.sampled_from(IDS), max_size=2)


def _strip(value: str | None) -> str | None:
    """The model's own lineage normalization (MOD-1): strip; blank or None is None."""
    if value is None:
        return None
    return value.strip() or None


def _ms() -> int:
    """Now in unix milliseconds, as the caller's clock reads it."""
    return time.time_ns() // 1_000_000


class HierarchyMachine(StoreMachine):
    """Saves (plain and validated), messages and every kind of delete keep threads, parents and logs as modelled."""

    def __init__(self) -> None:
        super().__init__()
        self.threads: dict[str, Thread] = {}
        self.logs: dict[str, list[str]] = {}
        self.states: dict[str, int] = {}
        #: The rule of the delete that last removed a thread: what a leftover log or state breaks.
        self.deleted_by: dict[str, str] = {}
        self.counter = 0

    # ── the model's own hierarchy walks ──────────────────────────────

    def children(self, thread_id: str) -> list[str]:
        """Ids of the modelled threads whose parent is `thread_id`, sorted."""
        return sorted(t.id for t in self.threads.values() if t.parent_thread_id == thread_id)

    def hierarchy_error(self, thread_id: str, parent: str | None) -> tuple[str, str] | None:
        """The rule refusing `parent` for the thread and why (HIE-2..4), or None when it passes (HIE-1)."""
        if parent is None:
            return None
        if parent == thread_id:
            return "HIE-2", "a thread cannot parent itself"
        seen = {thread_id}
        current: str | None = parent
        while current is not None:
            if current in seen:
                return "HIE-3", f"walking up from {parent!r} reaches {current!r} again (a cycle)"
            seen.add(current)
            found = self.threads.get(current)
            if found is None:
                return "HIE-4", f"missing {'parent' if current == parent else 'ancestor'} {current!r}"
            current = found.parent_thread_id
        return None

    def subtree(self, thread_id: str) -> list[str] | None:
        """The thread and all its descendants, or None when the walk meets a thread twice (DEL-5)."""
        seen: list[str] = []
        pending = [thread_id]
        while pending:
            current = pending.pop()
            if current in seen:
                return None
            seen.append(current)
            pending += self.children(current)
        return seen

    def descendants(self, thread_id: str) -> list[str]:
        """Ids below `thread_id`, each once even when a cycle leads back, sorted."""
        found: set[str] = set()
        pending = self.children(thread_id)
        while pending:
            current = pending.pop()
            if current not in found and current != thread_id:
                found.add(current)
                pending += self.children(current)
        return sorted(found)

    def forget(self, thread_id: str, rule_id: str) -> None:
        """A delete under `rule_id` (THR-4, DEL-2..4) in the model: the thread, its log and its state go."""
        self.deleted_by[thread_id] = rule_id
        self.threads.pop(thread_id, None)
        self.logs.pop(thread_id, None)
        self.states.pop(thread_id, None)

    # ── calling the store ────────────────────────────────────────────

    def succeeds(self, rule_id: str, function: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """Call the store where the model expects success; a refusal names `rule_id`."""
        try:
            self.call(function, *args, rules=rule_id)
        except StorageError as error:
            raise RuleViolation(rule_id, f"{function.__name__}{args!r} should succeed, raised {error!r}") from None

    def refuses(
        self,
        rule_id: str,
        expected: type[StorageError],
        function: Callable[..., Awaitable[Any]],
        *args: Any,
    ) -> None:
        """Call the store where the model expects `expected`; check it raised and changed nothing (ATO-1)."""
        before, error, after = self.attempt(IDS, rule_id, function, *args)
        call = f"{function.__name__}{args!r}"
        if error is None:
            raise RuleViolation(rule_id, f"{call} should raise {expected.__name__}")
        if not isinstance(error, expected):
            raise RuleViolation(rule_id, f"{call} should raise {expected.__name__}, raised {error!r}")
        if after != before:
            raise RuleViolation(("ATO-1", rule_id), f"the refused {call} changed the store: {diff(after, before)}")

    # ── making threads ───────────────────────────────────────────────

    def new_thread(self, thread_id: str, parent: str | None, updated_at: int | None) -> Thread:
        """A thread with every field set and a fresh title, so an overwrite or a lost field shows."""
        self.counter += 1
        return Thread(
            id=thread_id,
            resource_id="res" if self.counter % 2 else None,
            parent_thread_id=parent,
            metadata=ThreadMetadata(
                created_at=1, updated_at=updated_at, title=f"{thread_id} v{self.counter}", custom={"v": self.counter}
            ),
            latest_run_id=f"run-{self.counter}",
        )

    def keep(self, thread: Thread) -> None:
        """Take a saved thread into the model, its lineage stripped (THR-2, MOD-1)."""
        kept = thread.copy()
        kept.parent_thread_id = _strip(kept.parent_thread_id)
        kept.resource_id = _strip(kept.resource_id)
        self.threads[kept.id] = kept

    def draw_parent(self, data: st.DataObject, thread_id: str) -> str | None:
        """A parent worth checking: none, blank, the thread, a descendant, a stored or missing id; maybe padded."""
        below = self.descendants(thread_id)
        pool: list[str | None] = [None, "   ", thread_id, MISSING, *sorted(self.threads), *below, *below]
        parent = data.draw(st.sampled_from(pool), label="parent")
        if parent is not None and parent.strip() and data.draw(st.booleans(), label="padded"):
            return f" {parent}  "
        return parent

    def draw_thread(self, data: st.DataObject) -> str:
        """A stored thread's id, or now and then `MISSING`."""
        return data.draw(st.sampled_from([*sorted(self.threads), MISSING]), label="thread_id")

    # ── rules: writes ────────────────────────────────────────────────

    @initialize(forest=FOREST, absent=ABSENT)
    def plant(self, forest: list[tuple[str | None, int | None]], absent: set[str]) -> None:
        """Start from a forest saved with plain `save_thread`: dangling parents and cycles included."""
        self.replant(forest, absent)

    @precondition(lambda self: len(self.threads) < 3)
    @rule(forest=FOREST, absent=ABSENT)
    def replant(self, forest: list[tuple[str | None, int | None]], absent: set[str]) -> None:
        """Plain-save a forest over the ids (deletes drain the store): dangling parents and cycles included."""
        planted = [
            self.new_thread(thread_id, None if parent == thread_id else parent, updated_at)
            for thread_id, (parent, updated_at) in zip(IDS, forest, strict=True)
            if thread_id not in absent
        ]
        self.succeeds("THR-2", _save_all, self.store, planted)
        for thread in planted:
            self.keep(thread)

    @rule(data=st.data(), thread_id=st.sampled_from(IDS), updated_at=STAMPS)
    def save(self, data: st.DataObject, thread_id: str, updated_at: int | None) -> None:
        """Plain save: overwrites, strips the parent (a blank one is none), refuses only a self parent (MOD-2)."""
        thread = self.new_thread(thread_id, self.draw_parent(data, thread_id), updated_at)
        if _strip(thread.parent_thread_id) == thread_id:
            self.refuses("THR-2", ValidationError, self.store.save_thread, thread)
            return
        self.succeeds("THR-2", self.store.save_thread, thread)
        self.keep(thread)

    @precondition(lambda self: any(t.parent_thread_id in self.threads for t in self.threads.values()))
    @rule(data=st.data())
    def close_loop(self, data: st.DataObject) -> None:
        """Plain save of a thread under one of its descendants, closing a parent cycle (THR-2 allows it)."""
        tops = sorted({t.parent_thread_id for t in self.threads.values() if t.parent_thread_id in self.threads})
        top = data.draw(st.sampled_from(tops), label="thread_id")
        thread = self.threads[top].copy()
        thread.parent_thread_id = data.draw(st.sampled_from(self.descendants(top)), label="parent")
        self.succeeds("THR-2", self.store.save_thread, thread)
        self.keep(thread)

    @rule(data=st.data(), thread_id=st.sampled_from(IDS), updated_at=STAMPS)
    def save_validated(self, data: st.DataObject, thread_id: str, updated_at: int | None) -> None:
        """Validated save: refuses a self parent, a cycle, a missing parent or ancestor (HIE-5); a blank one is none."""
        thread = self.new_thread(thread_id, self.draw_parent(data, thread_id), updated_at)
        parent = thread.parent_thread_id
        problem = self.hierarchy_error(thread_id, _strip(parent))
        if problem is not None:
            note(f"expected refusal by {problem[0]}: {problem[1]}")
            self.refuses(problem[0], ValidationError, self.store.save_thread_validated, thread)
            return
        self.succeeds("HIE-5", self.store.save_thread_validated, thread)
        self.keep(thread)

    @rule(data=st.data(), thread_id=st.sampled_from(IDS))
    def check_hierarchy(self, data: st.DataObject, thread_id: str) -> None:
        """`validate_thread_hierarchy` passes a blank parent (HIE-1) and refuses as HIE-2..4 say."""
        parent = self.draw_parent(data, thread_id)
        problem = self.hierarchy_error(thread_id, _strip(parent))
        if problem is not None:
            note(f"expected refusal by {problem[0]}: {problem[1]}")
            self.refuses(problem[0], ValidationError, self.store.validate_thread_hierarchy, thread_id, parent)
            return
        passing = "HIE-1" if _strip(parent) is None else "HIE-3/HIE-4"
        self.succeeds(passing, self.store.validate_thread_hierarchy, thread_id, parent)

    @precondition(lambda self: bool(self.threads))
    @rule(data=st.data(), count=st.integers(1, 2))
    def append(self, data: st.DataObject, count: int) -> None:
        """Append messages to a stored thread, so deletes have logs to remove."""
        thread_id = data.draw(st.sampled_from(sorted(self.threads)), label="thread_id")
        self.counter += 1
        ids = [f"m{self.counter}-{n}" for n in range(count)]
        delta = [Message(id=i, role=Role.USER, content=[{"type": "text", "text": i}]) for i in ids]
        self.succeeds("MSG-4", self.store.append_message_records, thread_id, delta)
        self.logs.setdefault(thread_id, []).extend(ids)

    @precondition(lambda self: "thread_state" in self.capabilities and bool(self.threads))
    @rule(data=st.data())
    def save_state(self, data: st.DataObject) -> None:
        """Give a stored thread a state, so deletes have states to remove."""
        thread_id = data.draw(st.sampled_from(sorted(self.threads)), label="thread_id")
        self.counter += 1
        self.succeeds("THR-6", self.store.save_thread_state, thread_id, PersistedState(revision=self.counter))
        self.states[thread_id] = self.counter

    # ── rules: deletes ───────────────────────────────────────────────

    @precondition(lambda self: bool(self.threads))
    @rule(data=st.data())
    def delete(self, data: st.DataObject) -> None:
        """Plain delete: the thread, its log and state go; children keep their dangling parent (THR-4)."""
        thread_id = self.draw_thread(data)
        self.succeeds("THR-4", self.store.delete_thread, thread_id)
        self.forget(thread_id, "THR-4")

    @precondition(lambda self: bool(self.threads))
    @rule(data=st.data())
    def delete_reject(self, data: st.DataObject) -> None:
        """`reject` refuses a thread with a direct child, else deletes it as THR-4 (DEL-1, DEL-2)."""
        thread_id = self.draw_thread(data)
        if thread_id not in self.threads:
            self.refuses("DEL-1", NotFoundError, self.store.delete_thread_with_strategy, thread_id, REJECT)
        elif self.children(thread_id):
            self.refuses("DEL-2", ValidationError, self.store.delete_thread_with_strategy, thread_id, REJECT)
        else:
            self.succeeds("DEL-2", self.store.delete_thread_with_strategy, thread_id, REJECT)
            self.forget(thread_id, "DEL-2")

    @precondition(lambda self: bool(self.threads))
    @rule(data=st.data())
    def delete_detach(self, data: st.DataObject) -> None:
        """`detach` frees the direct children, stamping them now, and deletes the thread (DEL-1, DEL-3)."""
        thread_id = self.draw_thread(data)
        if thread_id not in self.threads:
            self.refuses("DEL-1", NotFoundError, self.store.delete_thread_with_strategy, thread_id, DETACH)
            return
        children = self.children(thread_id)
        low = _ms()
        self.succeeds("DEL-3", self.store.delete_thread_with_strategy, thread_id, DETACH)
        high = _ms()
        self.forget(thread_id, "DEL-3")
        for child_id in children:
            self.detached(child_id, low, high)

    def detached(self, child_id: str, low: int, high: int) -> None:
        """Check a detached child's updated_at is now (DEL-3) and take it into the model, parent cleared."""
        found = self.call(self.store.load_thread, child_id)
        found = present(found, "DEL-3", f"detached child {child_id!r} was deleted")
        stamp = present(found.metadata.updated_at, "DEL-3", f"detached child {child_id!r} has no updated_at")
        # One millisecond of slack either side absorbs a store that computes ms from float seconds.
        expect(
            low - 1 <= stamp <= high + 1,
            "DEL-3",
            f"detached child {child_id!r} has updated_at {stamp}, expected now in ms within [{low}, {high}]",
        )
        expected = self.threads[child_id].copy()
        expected.parent_thread_id = None
        expected.metadata.updated_at = stamp
        expect(found == expected, "DEL-3", f"load_thread({child_id!r}) of a detached child: {diff(found, expected)}")
        self.threads[child_id] = expected

    @precondition(lambda self: bool(self.threads))
    @rule(data=st.data())
    def delete_cascade(self, data: st.DataObject) -> None:
        """`cascade` deletes the whole subtree (DEL-4), refusing a thread on a cycle unchanged (DEL-1, DEL-5)."""
        thread_id = self.draw_thread(data)
        if thread_id not in self.threads:
            self.refuses("DEL-1", NotFoundError, self.store.delete_thread_with_strategy, thread_id, CASCADE)
            return
        doomed = self.subtree(thread_id)
        if doomed is None:
            note(f"{thread_id!r} lies on a parent cycle")
            self.refuses("DEL-5", ValidationError, self.store.delete_thread_with_strategy, thread_id, CASCADE)
            return
        self.succeeds("DEL-4", self.store.delete_thread_with_strategy, thread_id, CASCADE)
        for doomed_id in doomed:
            self.forget(doomed_id, "DEL-4")

    # ── invariant ────────────────────────────────────────────────────

    @invariant()
    def store_matches_model(self) -> None:
        """Threads, parents, children, logs and states equal the model (THR-2, THR-4, HIE-6, DEL-2..4)."""
        seen = self.call(_observe, self.store, "thread_state" in self.capabilities)
        extra = sorted(set(seen.listed) - set(self.threads))
        expect(
            sorted(seen.listed) == sorted(self.threads),
            tuple(dict.fromkeys(self.deleted_by.get(t, "THR-2") for t in extra)) or "THR-2",
            f"list_threads gives {sorted(seen.listed)}, the model holds {sorted(self.threads)}",
        )
        for thread_id in IDS:
            expected = self.threads.get(thread_id)
            found = seen.threads[thread_id]
            expect(found == expected, "THR-2", f"load_thread({thread_id!r}): {diff(found, expected)}")
            log = self.logs.get(thread_id)
            deleted_by = self.deleted_by.get(thread_id)
            expect(
                seen.logs[thread_id] == log,
                deleted_by or "MSG-4",
                f"log of {thread_id!r} is {seen.logs[thread_id]}, not {log}",
            )
            state = self.states.get(thread_id)
            expect(
                seen.states[thread_id] == state,
                deleted_by or "THR-6",
                f"state of {thread_id!r} has revision {seen.states[thread_id]}, expected {state}",
            )
            children = [self.threads[child_id] for child_id in self.children(thread_id)]
            expect(
                seen.children[thread_id] == children,
                "HIE-6",
                f"list_child_threads({thread_id!r}): {diff(seen.children[thread_id], children)}",
            )


async def _save_all(store: ThreadRunStore, threads: list[Thread]) -> None:
    """Plain-save threads in order, in one call of the portal."""
    for thread in threads:
        await store.save_thread(thread)


@dataclass(slots=True)
class _Observed:
    """What the store shows for every id of `IDS`, read in one pass."""

    listed: list[str]
    threads: dict[str, Thread | None] = field(default_factory=dict)
    logs: dict[str, list[str | None] | None] = field(default_factory=dict)
    states: dict[str, int | None] = field(default_factory=dict)
    children: dict[str, list[Thread]] = field(default_factory=dict)


async def _observe(store: ThreadRunStore, with_states: bool) -> _Observed:
    """Read threads, logs, states (when kept) and children of every id, in one call of the portal."""
    seen = _Observed(listed=await store.list_threads(0, 200))
    for thread_id in IDS:
        seen.threads[thread_id] = await store.load_thread(thread_id)
        log = await store.load_committed_messages(thread_id)
        seen.logs[thread_id] = None if log is None else [m.id for m in log]
        state = await store.load_thread_state(thread_id) if with_states else None
        seen.states[thread_id] = None if state is None else state.revision
        seen.children[thread_id] = sorted(await store.list_child_threads(thread_id), key=lambda t: t.id)
    return seen


class HierarchyMachineRules:
    """Holds the machine's contract test (`stateful(...)`)."""

    test_hierarchy_machine = stateful(
        HierarchyMachine,
        "HIE-1",
        "HIE-2",
        "HIE-3",
        "HIE-4",
        "HIE-5",
        "HIE-6",
        "DEL-1",
        "DEL-2",
        "DEL-3",
        "DEL-4",
        "DEL-5",
        "THR-2",
        "THR-4",
        "MSG-4",
        "ATO-1",
        ungated=("THR-6",),
    )
