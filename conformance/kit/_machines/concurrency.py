"""State machine: batches of concurrent calls whose results some one-at-a-time order must explain.

The store is warmed once (`conformance.kit._races.warm`). Each step draws a batch of
one to five calls (versioned and unversioned `checkpoint_append`,
`append_message_records`, `save_thread_validated` with a parent, and reads), starts
them all on a barrier, and records for each call its result and the values of one
counter (incremented at every start and every end of a call) when it was invoked and
when it returned. Once all returned, the machine reads every log and thread they wrote.

The batch passes when some order of its calls that keeps real time (a call that
returned before another started comes first) gives every call its result and ends in
what was read (`conformance.kit._linearizable`), against the model below: two message
logs and three threads, written from SPEC sections 4, 7 and 8 without the kit's
helpers or the reference store, so the reference store is checked too. A batch no
order explains breaks the rule of a call that could not follow the deepest orders
found: CON-1 for a versioned append, CON-2 for an unconditional one, CON-3 for a
validated save (a read, the rules of the writes it ran with); the failure prints the
history, and Hypothesis shrinks it to the smallest failing batch.
"""

from __future__ import annotations

import itertools
from collections.abc import Hashable, Iterator, Sequence
from dataclasses import dataclass, fields, replace
from functools import partial
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import initialize, rule

from conformance.contract._enums import RunStatus
from conformance.contract._errors import StorageError, ValidationError, VersionConflictError
from conformance.contract._stores import ThreadRunStore
from conformance.kit._boundary import answering
from conformance.kit._linearizable import Call, Verdict, linearize
from conformance.kit._races import race, warm
from conformance.kit._scenarios import run, thread, user
from conformance.kit._stateful import StoreMachine, stateful
from conformance.kit._violation import BrokenCall, RuleViolation

__all__ = ["ConcurrencyMachine", "ConcurrencyMachineRules"]

#: Threads whose message logs the calls append to (no thread record is needed to append).
LOGS = ("t1", "t2")
#: Threads saved as roots at the start, then given parents by validated saves.
FAMILY = ("a", "b", "c")
#: A parent that never exists.
MISSING = "x"
#: What a message id ends with: two calls of a batch that draw the same letter append the same id.
LETTERS = "pqrs"
#: The parent field of a thread that does not exist.
ABSENT = "(no thread)"
#: The rules this machine's checks name; every one of them needs `concurrent_writers`.
RULES = ("CON-1", "CON-2", "CON-3")
#: The rules of what calls do alone, which the machine stands on (it raises `BrokenCall` for them): not its own.
STANDS_ON = ("MSG-4", "MSG-5", "CKP-3", "CKP-4", "HIE-3", "HIE-4", "HIE-5", "ATO-2")

Result = tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Op:
    """One call of a batch, drawn compactly so that a shrunk batch reads well: `Op('checkpoint_append', 't1', 'p')`.

    Kinds: `checkpoint_append` (of messages `letters`, at the log's length plus
    `version`, or unconditional when `version` is None), `append_message_records`
    (of `letters`), `save_thread_validated` (thread `target` under `parent`) and
    `read` (the log of a thread of `LOGS`, or a thread of `FAMILY`).
    """

    kind: str
    target: str
    letters: str = ""
    version: int | None = None
    parent: str | None = None

    def __repr__(self) -> str:
        changed = [
            f"{f.name}={getattr(self, f.name)!r}" for f in fields(self)[2:] if getattr(self, f.name) != f.default
        ]
        return f"Op({', '.join([repr(self.kind), repr(self.target), *changed])})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """Print as `repr` in Hypothesis' falsifying examples (not field by field)."""
        printer.text(repr(self))


_DELTA = st.lists(st.sampled_from(LETTERS), min_size=1, max_size=2, unique=True).map("".join)
_CHECKPOINT_APPENDS = st.builds(
    Op,
    st.just("checkpoint_append"),
    st.sampled_from(LOGS),
    _DELTA,
    version=st.sampled_from([0, None, 1, 2, -1]),
)
_APPENDS = st.builds(Op, st.just("append_message_records"), st.sampled_from(LOGS), _DELTA)
_SAVES = st.builds(
    Op,
    st.just("save_thread_validated"),
    st.sampled_from(FAMILY),
    parent=st.sampled_from([*FAMILY, None, MISSING]),
)
_READS = st.builds(Op, st.just("read"), st.sampled_from([*LOGS, *FAMILY]))
#: The most calls a batch races at once: few, so that the search for an order is cheap.
MAX_BATCH = 5
#: Batches of concurrent calls, mostly writes.
BATCHES = st.lists(
    st.one_of(_CHECKPOINT_APPENDS, _SAVES, _APPENDS, _CHECKPOINT_APPENDS, _READS), min_size=1, max_size=MAX_BATCH
)


# ── the model: SPEC sections 4, 7 and 8, written out ────────────────


@dataclass(frozen=True, slots=True)
class World:
    """The state the calls change: the message ids of each log of `LOGS`, the parent of each thread of `FAMILY`."""

    logs: tuple[tuple[str, ...], ...] = tuple(() for _ in LOGS)
    parents: tuple[str | None, ...] = tuple(None for _ in FAMILY)

    def log(self, thread_id: str) -> tuple[str, ...]:
        return self.logs[LOGS.index(thread_id)]

    def parent(self, thread_id: str) -> str | None:
        """The thread's parent, None for a root, `ABSENT` for a thread that does not exist."""
        return self.parents[FAMILY.index(thread_id)] if thread_id in FAMILY else ABSENT

    def logged(self, thread_id: str, ids: Sequence[str]) -> World:
        """This world with the log of `thread_id` holding `ids`."""
        index = LOGS.index(thread_id)
        return replace(self, logs=(*self.logs[:index], tuple(ids), *self.logs[index + 1 :]))

    def appended(self, thread_id: str, ids: Sequence[str]) -> World:
        return self.logged(thread_id, (*self.log(thread_id), *ids))

    def adopted(self, thread_id: str, parent: str | None) -> World:
        index = FAMILY.index(thread_id)
        return replace(self, parents=(*self.parents[:index], parent, *self.parents[index + 1 :]))

    def __str__(self) -> str:
        logs = ", ".join(f"{t} [{', '.join(log)}]" for t, log in zip(LOGS, self.logs, strict=True))
        family = ", ".join(_placed(t, p) for t, p in zip(FAMILY, self.parents, strict=True))
        return f"{logs}; {family}"


def _placed(thread_id: str, parent: str | None) -> str:
    if parent == ABSENT:
        return f"{thread_id} missing"
    return f"{thread_id} root" if parent is None else f"{thread_id} under {parent}"


@dataclass(frozen=True, slots=True)
class Planned:
    """A drawn call made concrete: its arguments, and the rule its result answers to."""

    number: int
    op: Op
    ids: tuple[str, ...] = ()
    expected_version: int | None = None

    @property
    def rule(self) -> str:
        """CON-1 for a versioned append, CON-2 for an unconditional one, CON-3 for a validated save."""
        if self.op.kind == "checkpoint_append":
            return "CON-2" if self.expected_version is None else "CON-1"
        return "CON-2" if self.op.kind == "append_message_records" else "CON-3"

    @property
    def writes(self) -> bool:
        return self.op.kind != "read"

    def __str__(self) -> str:
        kind, target = self.op.kind, self.op.target
        if kind == "checkpoint_append":
            return f"#{self.number} {kind}({target!r}, {list(self.ids)}, expected_version={self.expected_version})"
        if kind == "append_message_records":
            return f"#{self.number} {kind}({target!r}, {list(self.ids)})"
        if kind == "save_thread_validated":
            return f"#{self.number} {kind}({target!r} under {self.op.parent!r})"
        read = "load_committed_messages" if target in LOGS else "load_thread"
        return f"#{self.number} {read}({target!r})"


def _hierarchy_refuses(world: World, thread_id: str, parent: str | None) -> bool:
    """HIE-2..4: a parent that is the thread, missing, or whose ancestors reach the thread or repeat, or go missing."""
    seen = {thread_id}
    current = parent
    while current is not None:
        if current in seen or world.parent(current) == ABSENT:
            return True
        seen.add(current)
        current = world.parent(current)
    return False


def step(world: World, call: Planned) -> tuple[Result, World]:
    """The result `call` gets when it runs alone in `world`, and the world after it."""
    kind, target = call.op.kind, call.op.target
    if kind == "read":
        if target in LOGS:
            return ("log", world.log(target) or None), world
        return ("thread", world.parent(target)), world
    if kind == "save_thread_validated":
        if _hierarchy_refuses(world, target, call.op.parent):
            return ("refused",), world
        return ("saved",), world.adopted(target, call.op.parent)
    log = world.log(target)
    if call.expected_version is not None and call.expected_version != len(log):  # CKP-3: the version first
        return ("conflict", call.expected_version, len(log)), world
    if set(call.ids) & set(log):  # MSG-5: an id committed already appends nothing
        return ("refused",), world
    after = world.appended(target, call.ids)
    if kind == "checkpoint_append":
        return ("version", len(log) + len(call.ids)), after
    return ("records", tuple((i, seq) for seq, i in enumerate(call.ids, start=len(log) + 1))), after


def told(result: Hashable) -> str:
    """A result in words: `version 3`, `VersionConflictError(1, 3)`, `records [s1p@2]`, `log [s1p]`."""
    assert isinstance(result, tuple), f"the kit's results are (kind, ...) tuples, not {result!r}"
    kind, *rest = result
    if kind == "version":
        return f"version {rest[0]}"
    if kind == "conflict":
        return f"VersionConflictError({rest[0]}, {rest[1]})"
    if kind == "records":
        return f"records [{', '.join(f'{i}@{seq}' for i, seq in rest[0])}]"
    if kind == "log":
        return "log None" if rest[0] is None else f"log [{', '.join(rest[0])}]"
    if kind == "thread":
        return "a root" if rest[0] is None else rest[0] if rest[0] == ABSENT else f"parent {rest[0]!r}"
    if kind == "error":
        return f"{rest[0]} (a StorageError the contract does not give here)"
    return {"refused": "ValidationError", "saved": "saved"}[kind]


# ── the store, raced ────────────────────────────────────────────────


async def _perform(store: ThreadRunStore, call: Planned, run_number: int) -> Result:
    """Make `call` on the store; its result as `step` gives it. A StorageError is a result too."""
    kind, target = call.op.kind, call.op.target
    try:
        if kind == "checkpoint_append":
            running = run(f"run-{run_number}", target, RunStatus.RUNNING, updated_at=run_number)
            messages = [user(i) for i in call.ids]
            return ("version", await store.checkpoint_append(target, messages, call.expected_version, running))
        if kind == "append_message_records":
            records = await store.append_message_records(target, [user(i) for i in call.ids])
            return ("records", tuple((r.message_id, r.seq) for r in records))
        if kind == "save_thread_validated":
            await store.save_thread_validated(thread(target, parent=call.op.parent))
            return ("saved",)
        if target in LOGS:
            log = await store.load_committed_messages(target)
            return ("log", None if log is None else tuple(str(m.id) for m in log))
        found = await store.load_thread(target)
        return ("thread", ABSENT if found is None else found.parent_thread_id)
    except VersionConflictError as error:
        return ("conflict", error.expected, error.actual)
    except ValidationError:
        return ("refused",)
    except StorageError as error:
        return ("error", type(error).__name__)


async def _observe(store: ThreadRunStore, before: World, written: set[str]) -> World:
    """`before`, with every log and thread of `written` as the store now shows it (read one at a time).

    The calls change only what they write, so in every order the rest stays as before.
    """
    after = before
    for thread_id in LOGS:
        if thread_id in written:
            log = await store.load_committed_messages(thread_id)
            after = after.logged(thread_id, [str(m.id) for m in log or ()])
    for thread_id in FAMILY:
        if thread_id in written:
            found = await store.load_thread(thread_id)
            after = after.adopted(thread_id, ABSENT if found is None else found.parent_thread_id)
    return after


async def race_batch(
    store: ThreadRunStore, batch: Sequence[Planned], runs: Iterator[int], before: World
) -> tuple[list[Call[Planned]], World]:
    """Start the batch's calls on a barrier, then read what they wrote: the history, and `before` updated by it."""
    clock = itertools.count(1)
    history: dict[int, Call[Planned]] = {}

    async def racer(call: Planned, run_number: int) -> None:
        with answering(call.rule if call.writes else RULES):
            invoked = next(clock)
            result = await _perform(store, call, run_number)
            history[call.number] = Call(call, invoked, next(clock), result)

    await race([partial(racer, call, next(runs)) for call in batch])
    written = {call.op.target for call in batch if call.writes}
    return [history[call.number] for call in batch], await _observe(store, before, written)


async def _plant(store: ThreadRunStore) -> None:
    """Save the threads of `FAMILY` as roots, then warm the store for the largest batch."""
    for thread_id in FAMILY:
        await store.save_thread(thread(thread_id))
    await warm([store], MAX_BATCH)


def _lone(kind: str, target: str, *ids: str, version: int | None = None, parent: str | None = None) -> Planned:
    return Planned(0, Op(kind, target, parent=parent), ids, version)


#: Each kind of write alone, in order, on threads the batches never touch: what it must give, and the rule saying so.
ALONE: tuple[tuple[Planned, Result, str], ...] = (
    (_lone("append_message_records", "solo", "o1"), ("records", (("o1", 1),)), "MSG-4"),
    (_lone("append_message_records", "solo", "o2", "o3"), ("records", (("o2", 2), ("o3", 3))), "MSG-4"),
    (_lone("append_message_records", "solo", "o3"), ("refused",), "MSG-5"),
    (_lone("checkpoint_append", "solo", "o4", version=3), ("version", 4), "CKP-4"),
    (_lone("checkpoint_append", "solo", "o5", version=3), ("conflict", 3, 4), "CKP-3"),
    (_lone("checkpoint_append", "solo", "o5"), ("version", 5), "CKP-4"),
    (_lone("save_thread_validated", "solo-a"), ("saved",), "HIE-5"),
    (_lone("save_thread_validated", "solo-b", parent="solo-a"), ("saved",), "HIE-5"),
    (_lone("save_thread_validated", "solo-a", parent="solo-b"), ("refused",), "HIE-3"),
    (_lone("save_thread_validated", "solo-a", parent=MISSING), ("refused",), "HIE-4"),
)


async def _alone(store: ThreadRunStore) -> None:
    """Make the calls of `ALONE` one at a time: each must give what the model says, or `BrokenCall` names its rule.

    The machine stands on these: a store that breaks one even without a race fails
    here, naming that rule, and the concurrency rules read "not checked", not failed
    for a bug no race caused.
    """
    for call, expected, rule_id in ALONE:
        with answering(rule_id):
            got = await _perform(store, call, 0)
        if got != expected:
            made = str(call).removeprefix("#0 ")
            raise BrokenCall(
                rule_id, f"{made}, made alone after the calls above it, gave {told(got)}, not {told(expected)}"
            )


# ── the verdict ─────────────────────────────────────────────────────


def _overlap(one: Call[Planned], other: Call[Planned]) -> bool:
    return one.invoked < other.returned and other.invoked < one.returned


def blame(history: Sequence[Call[Planned]], verdict: Verdict[World], observed: World) -> tuple[str, ...]:
    """The rules of the calls that could not follow the deepest explained orders (any of them may be the culprit).

    A write breaks its own rule; a read that no order explains, the rules of the
    writes to what it read that ran with it (else of every write to it). Where every
    call was explained but the end state differs from what was read, the writes to
    what differs are blamed.
    """
    writes = [c for c in history if c.op.writes]
    rules: set[str] = set()
    for dead_end in verdict.dead_ends:
        for index in dead_end.stuck:
            call = history[index]
            if call.op.writes:
                rules.add(call.op.rule)
                continue
            on_it = [c for c in writes if c.op.op.target == call.op.op.target]
            rules.update(c.op.rule for c in [c for c in on_it if _overlap(c, call)] or on_it)
        if not dead_end.stuck:
            differ = {t for t in LOGS if dead_end.state.log(t) != observed.log(t)}
            differ |= {t for t in FAMILY if dead_end.state.parent(t) != observed.parent(t)}
            rules.update(c.op.rule for c in writes if c.op.op.target in differ)
    return tuple(r for r in RULES if r in rules) or tuple(sorted({c.op.rule for c in writes})) or RULES


def blame_alone(history: Sequence[Call[Planned]], verdict: Verdict[World]) -> tuple[str, ...]:
    """The rules of calls that ran one at a time and still got what no order gives: what each does alone.

    A versioned append breaks CKP-3 where a conflict is due or given, else CKP-4; an
    append MSG-5 where a refusal is, else MSG-4; a validated save HIE-5; a read that
    started after the writes returned, and the reads after the batch, ATO-2.
    """
    rules: set[str] = set()
    for dead_end in verdict.dead_ends:
        if not dead_end.stuck:
            rules.add("ATO-2")
        for index in dead_end.stuck:
            call = history[index]
            kinds = {call.result[0], step(dead_end.state, call.op)[0][0]} if isinstance(call.result, tuple) else set()
            rules.add(
                {
                    "checkpoint_append": "CKP-3" if "conflict" in kinds else "CKP-4",
                    "append_message_records": "MSG-5" if "refused" in kinds else "MSG-4",
                    "save_thread_validated": "HIE-5",
                }.get(call.op.op.kind, "ATO-2")
            )
    return tuple(r for r in STANDS_ON if r in rules)


def one_at_a_time(history: Sequence[Call[Planned]]) -> bool:
    """True when no two calls of the history overlapped: each returned before the next was invoked."""
    return not any(_overlap(one, other) for n, one in enumerate(history) for other in history[n + 1 :])


def report(history: Sequence[Call[Planned]], before: World, verdict: Verdict[World], observed: World) -> str:
    """The history, the state before and after it, and where the deepest orders got stuck."""
    lines = [
        f"no one-at-a-time order of these {len(history)} concurrent calls gives each the result it got "
        "([invoked, returned] count the starts and ends of calls):",
        *(f"  {c.op} [{c.invoked}, {c.returned}] -> {told(c.result)}" for c in history),
        f"before them: {before}",
        f"after them (what they wrote, as read): {observed}",
    ]
    for dead_end in verdict.dead_ends:
        order = " then ".join(f"#{history[i].op.number}" for i in dead_end.explained) or "no call"
        if dead_end.stuck:
            wrong = [
                f"#{history[i].op.number} got {told(history[i].result)}, the model gives "
                + told(step(dead_end.state, history[i].op)[0])
                for i in dead_end.stuck
            ]
            lines.append(f"after {order} (leaving {dead_end.state}): {'; '.join(wrong)}")
        else:
            lines.append(f"{order} leaves {dead_end.state}, not what was read")
    return "\n".join(lines)


class ConcurrencyMachine(StoreMachine):
    """Concurrent appends, versioned appends, validated saves and reads are linearizable: some order explains them."""

    def __init__(self) -> None:
        super().__init__()
        self.world = World()
        self.batches = 0
        self.runs = itertools.count(1)

    @initialize()
    def plant(self) -> None:
        """Save the threads of `FAMILY` as roots; warm the store (its pool keeps the connections); check lone writes."""
        self.call(_plant, self.store, rules=RULES)
        self.call(_alone, self.store, rules=STANDS_ON)

    @rule(ops=BATCHES)
    def batch(self, ops: list[Op]) -> None:
        """Race the calls of `ops` on the store; some order of them that keeps real time must explain every result."""
        self.batches += 1
        planned = []
        for number, op in enumerate(ops, start=1):
            ids = tuple(f"s{self.batches}{letter}" for letter in op.letters)
            version = None
            if op.kind == "checkpoint_append" and op.version is not None:
                version = max(len(self.world.log(op.target)) + op.version, 0)
            planned.append(Planned(number, op, ids, version))
        history, observed = self.call(race_batch, self.store, planned, self.runs, self.world, rules=RULES)
        verdict = linearize(history, self.world, step, accept=observed.__eq__)
        if verdict.order is None:
            told_all = report(history, self.world, verdict, observed)
            if one_at_a_time(history):
                raise BrokenCall(blame_alone(history, verdict), f"{told_all}\nthe calls ran one at a time: no race")
            raise RuleViolation(blame(history, verdict, observed), told_all)
        self.world = observed


class ConcurrencyMachineRules:
    """Holds the machine's contract test (`stateful(...)`)."""

    test_concurrency_machine = stateful(ConcurrencyMachine, *RULES)
