"""State machine: the message log, versions and checkpoints against an independent model.

The model is the raw committed log of each thread (a list of messages), which
threads have a record, and each thread's last checkpointed run. Everything the store
shows — raw log, records and seqs, the read view, the checkpoint's folded view and
version — is computed from those lists by the functions below, written from SPEC
section 7 without the kit's message helpers, so the reference store is checked too.
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any, TypeVar

from hypothesis import note
from hypothesis import strategies as st
from hypothesis.stateful import invariant, precondition, rule

from conformance._enums import MessageOrder, MessageVisibilityFilter, Role, RunStatus, Visibility
from conformance._errors import (
    InvalidCursorError,
    NotFoundError,
    StorageError,
    ValidationError,
    VersionConflictError,
)
from conformance._models import CompactionMark, JsonValue, Message, MessageMetadata, MessageRecord, ToolCall
from conformance._queries import MessagePage, MessageQuery
from conformance._runs import CheckpointSnapshot, MessageSeqRange, RunRecord
from conformance._scenarios import Snapshot, snapshot
from conformance._stateful import StoreMachine, stateful
from conformance._stores import ThreadRunStore

__all__ = ["MessageLogMachine", "MessageMachineRules"]

_T = TypeVar("_T")

THREADS = ("t1", "t2")
#: Ids that drafts reuse on purpose; a new id is the first `m<n>` unused in the thread.
REUSED_IDS = ("x1", "x2")
CALL_IDS = ("c1", "c2", "c3")
RUN_IDS = ("ra", "rb")
#: Ways a draft of kind `invalid` breaks MOD-3.
FLAWS = (
    "no-id",
    "blank-id",
    "tool-without-call-id",
    "user-with-call-id",
    "user-with-tool-calls",
    "same-call-twice",
    "nameless-call",
    "span-over-itself",
    "span-reversed",
)


def _text(text: str) -> list[dict[str, JsonValue]]:
    return [{"type": "text", "text": text}]


@dataclass(frozen=True, slots=True)
class Draft:
    """A message to build, drawn compactly so that a shrunk example reads well: `Draft('tool', calls=('c1',))`.

    Kinds: `user`, `note` (an internal user message), `assistant` (calling `calls`),
    `tool` (answering the first of `calls`), `retract` (an internal tool result for
    it), `summary` (a system message compacting the `length + 1` messages that end
    `back` places before it, clamped to seq 1), and `invalid` (breaking MOD-3 as
    `flaw` says). An `id` of None stands for a new id.
    """

    kind: str
    id: str | None = None
    calls: tuple[str, ...] = ()
    back: int = 0
    length: int = 0
    run_id: str | None = None
    flaw: str = FLAWS[0]

    def __repr__(self) -> str:
        changed = [
            f"{f.name}={getattr(self, f.name)!r}" for f in fields(self)[1:] if getattr(self, f.name) != f.default
        ]
        return f"Draft({', '.join([repr(self.kind), *changed])})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """Print as `repr` in Hypothesis' falsifying examples (not field by field)."""
        printer.text(repr(self))

    def build(self, message_id: str, seq: int) -> Message:
        """The message this draft describes, with id `message_id`, to be committed at `seq`."""
        metadata = MessageMetadata(run_id=self.run_id, step_index=0) if self.run_id else None
        base = Message(id=message_id, role=Role.USER, content=_text(message_id), metadata=metadata)
        call = self.calls[0] if self.calls else "c1"
        kind = self.flaw if self.kind == "invalid" else self.kind
        if kind == "note":
            return replace(base, visibility=Visibility.INTERNAL)
        if kind in ("assistant", "same-call-twice", "nameless-call"):
            calls = {"assistant": list(self.calls), "same-call-twice": [call, call]}.get(kind, [call])
            name = " " if kind == "nameless-call" else "lookup"
            tool_calls = [ToolCall(id=c, name=name, arguments={}) for c in calls]
            return replace(base, role=Role.ASSISTANT, tool_calls=tool_calls or None)
        if kind in ("tool", "retract", "tool-without-call-id"):
            hidden = Visibility.INTERNAL if kind == "retract" else Visibility.ALL
            call_id = None if kind == "tool-without-call-id" else call
            return replace(base, role=Role.TOOL, tool_call_id=call_id, visibility=hidden)
        if kind in ("summary", "span-over-itself", "span-reversed"):
            end = max(seq - 1 - self.back, 1)
            span = {"span-over-itself": (seq - 1, seq), "span-reversed": (end, end - 1)}
            start, end = span.get(kind, (max(end - self.length, 1), end))
            mark = CompactionMark(from_seq=start, to_seq=end)
            return replace(base, role=Role.SYSTEM, metadata=MessageMetadata(compaction=mark))
        if kind == "user-with-call-id":
            return replace(base, tool_call_id=call)
        if kind == "user-with-tool-calls":
            return replace(base, tool_calls=[ToolCall(id=call, name="lookup", arguments={})])
        return replace(base, id={"no-id": None, "blank-id": "  "}.get(kind, message_id))


_RUNS = (None, *RUN_IDS)
#: Drafts with a new id, of every kind and shape the machine uses.
_FRESH = [
    *(Draft("user", run_id=r) for r in _RUNS),
    *(Draft("assistant", calls=c) for c in ((), ("c1",), ("c2",), ("c1", "c2"), ("c2", "c3"), ("c3", "c1"))),
    *(Draft("tool", calls=(c,), run_id=r) for c in CALL_IDS for r in _RUNS),
    *(Draft("summary", back=b, length=n) for b in range(3) for n in range(3)),
    *(Draft("note", run_id=r) for r in _RUNS),
    *(Draft("retract", calls=(c,)) for c in CALL_IDS),
]
#: Drafts reusing an id of `REUSED_IDS`: committed already, or repeated in a delta (MSG-5).
_REUSING = [
    *(Draft("user", i, run_id=r) for i in REUSED_IDS for r in _RUNS),
    *(Draft("tool", i, calls=(c,)) for i in REUSED_IDS for c in CALL_IDS),
]
_INVALID = [Draft("invalid", flaw=f) for f in FLAWS]
#: Every draft, one choice each (cheap to draw, shrink and explain). Each list is repeated to
#: weigh it: about one draft in six reuses an id and one in five is invalid.
DRAFTS = st.sampled_from([*_FRESH, *_FRESH, *_REUSING, *_INVALID, *_INVALID])
DELTAS = st.lists(DRAFTS, max_size=4)
#: Message queries over every filter, one choice each.
QUERIES = st.sampled_from(
    [
        MessageQuery(offset=o, limit=n, after=a, before=b, order=d, visibility=v, run_id=r)
        for o, n, a, b, d, v, r in itertools.product(
            (0, 1, 3),
            (0, 1, 2, 250),
            (None, 0, 1, 2, 3),
            (None, 2, 3, 4, 5),
            MessageOrder,
            MessageVisibilityFilter,
            (None, "ra", "rz"),
        )
    ]
)


# ── the model: SPEC section 7, written out ──────────────────────────


def _blank(value: str | None) -> bool:
    return value is None or not value.strip()


def shape_problem(message: Message, seq: int) -> str | None:
    """Why `message` may not be committed at position `seq` (MOD-3), or None."""
    if _blank(message.id):
        return "an id missing or blank"
    if message.role is Role.TOOL and _blank(message.tool_call_id):
        return "a tool result without tool_call_id"
    if message.role is not Role.TOOL and message.tool_call_id is not None:
        return "tool_call_id on a non-tool message"
    calls = message.tool_calls or []
    if calls and message.role is not Role.ASSISTANT:
        return "tool_calls on a non-assistant message"
    if any(_blank(c.id) or _blank(c.name) for c in calls) or len({c.id for c in calls}) != len(calls):
        return "a tool call with a blank id or name, or a repeated call id"
    mark = message.metadata.compaction if message.metadata else None
    if mark is not None and not 1 <= mark.from_seq <= mark.to_seq < seq:
        return f"compaction [{mark.from_seq}, {mark.to_seq}] not below its own seq {seq}"
    return None


def delta_problem(log: Sequence[Message], delta: Sequence[Message]) -> str | None:
    """Why `delta` may not be appended to `log` (MSG-5: MOD-3, ids new and distinct), or None."""
    taken = {m.id for m in log}
    for seq, message in enumerate(delta, start=len(log) + 1):
        problem = shape_problem(message, seq)
        if problem is not None:
            return f"{message.id!r}: {problem}"
        if message.id in taken:
            return f"{message.id!r} is committed already or repeated"
        taken.add(message.id)
    return None


def _span(message: Message) -> tuple[int, int] | None:
    mark = message.metadata.compaction if message.metadata else None
    return None if mark is None else (mark.from_seq, mark.to_seq)


def tidy(log: Sequence[Message], delta: Sequence[Message]) -> list[Message]:
    """`delta` with valid compaction marks that cross or repeat an earlier interval removed.

    The machine keeps intervals nested or disjoint: SPEC VIEW-2 says nothing of the fold
    of partly overlapping or equal intervals. Invalid marks are left for MOD-3.
    """
    spans = [s for m in log if (s := _span(m)) is not None]
    out: list[Message] = []
    for seq, message in enumerate(delta, start=len(log) + 1):
        span = _span(message)
        if span is not None and 1 <= span[0] <= span[1] < seq:
            if any(_clash(span, s) for s in spans):
                message = replace(message, metadata=None)
            else:
                spans.append(span)
        out.append(message)
    return out


def _clash(one: tuple[int, int], other: tuple[int, int]) -> bool:
    """True when two intervals are equal or overlap without one containing the other."""
    (a, b), (c, d) = one, other
    return one == other or a < c <= b < d or c < a <= d < b


def records_of(thread_id: str, log: Sequence[Message]) -> list[MessageRecord]:
    """The records of a raw log: seq = 1-based position, fields projected from the message (MSG-6)."""
    out = []
    for seq, message in enumerate(log, start=1):
        metadata = message.metadata or MessageMetadata()
        assert message.id is not None
        out.append(
            MessageRecord(
                message_id=message.id,
                thread_id=thread_id,
                seq=seq,
                message=message,
                produced_by_run_id=metadata.run_id,
                step_index=metadata.step_index,
                tool_call_id=message.tool_call_id,
                compaction=metadata.compaction,
            )
        )
    return out


def read_view(log: Sequence[Message]) -> list[Message]:
    """VIEW-1: keep a tool call only when a visible result answers it and no internal result retracts it."""
    results = [m for m in log if m.role is Role.TOOL]
    answered = {m.tool_call_id for m in results if m.visibility is Visibility.ALL}
    retracted = {m.tool_call_id for m in results if m.visibility is Visibility.INTERNAL}
    kept_calls: set[str] = set()
    view: list[Message] = []
    for message in log:
        if message.role is Role.ASSISTANT and message.tool_calls is not None:
            calls = [c for c in message.tool_calls if c.id in answered and c.id not in retracted]
            kept_calls.update(c.id for c in calls)
            message = replace(message, tool_calls=calls or None)
        view.append(message)
    return [
        m for m in view if m.role is not Role.TOOL or (m.visibility is Visibility.ALL and m.tool_call_id in kept_calls)
    ]


def folded(log: Sequence[Message]) -> list[Message]:
    """VIEW-2: every summary leaves its place; each widest interval becomes its summary at its start."""
    marked = [(s, m) for m in log if (s := _span(m)) is not None]
    widest = [(s, m) for s, m in marked if not any(o != s and o[0] <= s[0] and s[1] <= o[1] for o, _ in marked)]
    placed: list[tuple[int, Message]] = [(span[0], summary) for span, summary in widest]
    for seq, message in enumerate(log, start=1):
        if _span(message) is None and not any(a <= seq <= b for (a, b), _ in widest):
            placed.append((seq, message))
    return [message for _, message in sorted(placed, key=lambda item: item[0])]


def _decoded(query: MessageQuery, cursor: str | None) -> int | None:
    """The offset a page's cursor holds under the page's own query (MSG-7: `msg_` cursors)."""
    if cursor is None:
        return None
    try:
        return query.decode_cursor(cursor)
    except InvalidCursorError as error:
        raise AssertionError(f"MSG-7: cursor {cursor!r} does not decode under its own query: {error}") from error


def brief(messages: Sequence[Message] | None) -> list[str] | None:
    """Messages as short strings for notes and failures: `m1:assistant[c1]`, `m2:tool(c1)`, `m3:system<1..2>`."""
    if messages is None:
        return None
    out = []
    for m in messages:
        calls = f"[{','.join(c.id for c in m.tool_calls)}]" if m.tool_calls is not None else ""
        answer = f"({m.tool_call_id})" if m.tool_call_id is not None else ""
        hidden = ":internal" if m.visibility is Visibility.INTERNAL else ""
        span = _span(m)
        compacts = "" if span is None else f"<{span[0]}..{span[1]}>"
        out.append(f"{m.id}:{m.role.value}{calls}{answer}{compacts}{hidden}")
    return out


def record_diff(found: Sequence[MessageRecord] | None, expected: Sequence[MessageRecord]) -> str:
    """Where records read from the store first differ from the model's, for failure messages."""
    if found is None or len(found) != len(expected):
        return f"gave {found and len(found)} records, expected {len(expected)}"
    for got, want in zip(_unstamped(found) or [], expected, strict=True):
        if got != want:
            names = [f.name for f in fields(MessageRecord) if getattr(got, f.name) != getattr(want, f.name)]
            body = f", message {brief([got.message])} vs {brief([want.message])}" if "message" in names else ""
            return f"the record at seq {want.seq} ({want.message_id!r}) differs in {names}{body}"
    return "equal"


def _unstamped(records: Sequence[MessageRecord] | None) -> list[MessageRecord] | None:
    """Records without `created_at`: a store may stamp its rows; the message carries no time."""
    return None if records is None else [replace(r, created_at=None) for r in records]


# ── the store, observed in one call per step ────────────────────────


@dataclass(slots=True)
class Observed:
    """What the store shows of one thread."""

    exists: bool
    committed: list[Message] | None
    view: list[Message] | None
    records: list[MessageRecord] | None
    pages: list[MessagePage]
    ranged: list[MessageRecord]
    by_id: dict[str, MessageRecord | None]
    resumed: CheckpointSnapshot | None


def probes(length: int) -> tuple[list[MessageQuery], MessageSeqRange]:
    """Queries and a range that every step reads, chosen for a log of `length` messages."""
    queries = [
        MessageQuery(limit=200),
        MessageQuery(before=length),
        MessageQuery(after=1, order=MessageOrder.DESC, visibility=MessageVisibilityFilter.EXTERNAL, offset=1, limit=2),
        MessageQuery(visibility=MessageVisibilityFilter.INTERNAL, run_id="ra", limit=1),
    ]
    return queries, MessageSeqRange(from_seq=2, to_seq=max(length, 2))


async def observe(store: ThreadRunStore, lengths: dict[str, int], message_ids: Sequence[str]) -> dict[str, Observed]:
    """Read every thread of the machine through each message read the contract offers."""
    seen = {}
    for thread_id, length in lengths.items():
        queries, bounds = probes(length)
        seen[thread_id] = Observed(
            exists=await store.load_thread(thread_id) is not None,
            committed=await store.load_committed_messages(thread_id),
            view=await store.load_messages(thread_id),
            records=await store.load_message_records(thread_id),
            pages=[await store.list_message_records(thread_id, query) for query in queries],
            ranged=await store.load_message_records_range(thread_id, bounds),
            by_id={m: await store.load_message_record(thread_id, m) for m in message_ids},
            resumed=await store.load_checkpoint(thread_id),
        )
    return seen


async def queried(
    store: ThreadRunStore, query: MessageQuery, bounds: MessageSeqRange
) -> dict[str, tuple[MessagePage, list[MessageRecord]]]:
    """One page of `query` and the records in `bounds`, for every thread and an unknown one."""
    return {
        thread_id: (
            await store.list_message_records(thread_id, query),
            await store.load_message_records_range(thread_id, bounds),
        )
        for thread_id in (*THREADS, "unknown")
    }


async def attempt(
    store: ThreadRunStore, function: Callable[..., Awaitable[Any]], *args: Any
) -> tuple[Snapshot, StorageError | None, Snapshot]:
    """Snapshot the store, call `function`, snapshot again: one portal trip for a refused step."""
    before = await snapshot(store, *THREADS)
    try:
        await function(*args)
    except StorageError as error:
        return before, error, await snapshot(store, *THREADS)
    return before, None, before


class MessageLogMachine(StoreMachine):
    """Appends, saves, deletes and checkpoints keep the log, its records, views and version."""

    def __init__(self) -> None:
        super().__init__()
        self.logs: dict[str, list[Message]] = {t: [] for t in THREADS}
        self.threads: set[str] = set()
        self.latest: dict[str, RunRecord] = {}
        self.clock = 0
        self.last: tuple[str, list[Message]] | None = None

    # ── helpers ──────────────────────────────────────────────────────

    def succeeds(self, rule_ids: str, function: Callable[..., Awaitable[_T]], *args: Any) -> _T:
        """Call the store where the model expects success; a refusal breaks `rule_ids`."""
        try:
            return self.call(function, *args)
        except StorageError as error:
            raise AssertionError(f"{rule_ids}: {function.__name__} refused a valid call: {error!r}") from error

    def refused(
        self, rule_ids: str, expected: type[StorageError], function: Callable[..., Awaitable[Any]], *args: Any
    ) -> StorageError:
        """Call the store where the model expects `expected`; the whole state must stay as it was (ATO-1)."""
        before, caught, after = self.call(attempt, self.store, function, *args)
        if not isinstance(caught, expected):
            outcome = "returned" if caught is None else f"raised {caught!r}"
            raise AssertionError(f"{rule_ids}: {function.__name__} {outcome}, expected {expected.__name__}") from caught
        assert after == before, f"ATO-1: {function.__name__} raised {caught!r} but changed the store"
        return caught

    def run_for(self, thread_id: str) -> RunRecord:
        """A fresh write of the thread's run, newer than every earlier one."""
        self.clock += 1
        return RunRecord(
            run_id=f"run-{thread_id}",
            thread_id=thread_id,
            agent_id="agent",
            status=RunStatus.RUNNING,
            created_at=1,
            updated_at=self.clock,
            steps=self.clock,
        )

    @staticmethod
    def messages(log: Sequence[Message], drafts: Sequence[Draft]) -> list[Message]:
        """Build `drafts` to follow `log`: a new id is the first `m<n>` unused so far."""
        taken = {m.id for m in log}
        fresh = (f"m{n}" for n in itertools.count(1))
        built: list[Message] = []
        for seq, draft in enumerate(drafts, start=len(log) + 1):
            message_id = draft.id or next(i for i in fresh if i not in taken)
            taken.add(message_id)
            built.append(draft.build(message_id, seq))
        built = tidy(log, built)
        note(f"messages: {brief(built)}")
        return built

    # ── rules ────────────────────────────────────────────────────────

    @rule(thread=st.sampled_from(THREADS), delta=DELTAS)
    def append(self, thread: str, delta: list[Draft]) -> None:
        log = self.logs[thread]
        messages = self.messages(log, delta)
        problem = delta_problem(log, messages)
        if problem is not None:
            note(f"refused: {problem}")
            self.refused("MSG-5/MOD-3", ValidationError, self.store.append_message_records, thread, messages)
            return
        returned = self.succeeds("MSG-4", self.store.append_message_records, thread, messages)
        expected = records_of(thread, [*log, *messages])[len(log) :]
        assert _unstamped(returned) == expected, f"MSG-4/MSG-6: append returned {record_diff(returned, expected)}"
        log.extend(messages)
        self.last = (thread, messages)

    @precondition(lambda self: self.last is not None)
    @rule(through_checkpoint=st.booleans())
    def retry(self, through_checkpoint: bool) -> None:
        """Send the last appended delta again, as a client does after a timeout: nothing is appended (MSG-5)."""
        assert self.last is not None
        thread, sent = self.last
        log = self.logs[thread]
        messages = tidy(log, sent)
        problem = delta_problem(log, messages)
        note(f"retrying {[m.id for m in messages]} on {thread!r}: {problem or 'the log was replaced since'}")
        if through_checkpoint:
            self.append_checkpoint(thread, messages, "none")
            return
        if problem is not None:
            self.refused("MSG-5", ValidationError, self.store.append_message_records, thread, messages)
            return
        self.succeeds("MSG-4", self.store.append_message_records, thread, messages)
        log.extend(messages)

    @rule(thread=st.sampled_from(THREADS), drafts=DELTAS)
    def save(self, thread: str, drafts: list[Draft]) -> None:
        messages = self.messages([], drafts)
        problem = delta_problem([], messages)
        if problem is not None:
            note(f"refused: {problem}")
            self.refused("MSG-2/MOD-3", ValidationError, self.store.save_messages, thread, messages)
            return
        self.succeeds("MSG-2", self.store.save_messages, thread, messages)
        self.logs[thread] = messages

    @rule(thread=st.sampled_from(THREADS))
    def delete(self, thread: str) -> None:
        if thread not in self.threads:
            self.refused("MSG-3", NotFoundError, self.store.delete_messages, thread)
            return
        self.succeeds("MSG-3", self.store.delete_messages, thread)
        self.logs[thread] = []

    @rule(thread=st.sampled_from(THREADS), drafts=DELTAS)
    def checkpoint(self, thread: str, drafts: list[Draft]) -> None:
        messages = self.messages([], drafts)
        run = self.run_for(thread)
        problem = delta_problem([], messages)
        if problem is not None:
            note(f"refused: {problem}")
            self.refused("CKP-1/MOD-3", ValidationError, self.store.checkpoint, thread, messages, run)
            return
        self.succeeds("CKP-2", self.store.checkpoint, thread, messages, run)
        self.logs[thread] = messages
        self.threads.add(thread)
        self.latest[thread] = run

    @rule(
        thread=st.sampled_from(THREADS),
        delta=DELTAS,
        version=st.sampled_from(("right", "none", "behind", "ahead")),
    )
    def checkpoint_append(self, thread: str, delta: list[Draft], version: str) -> None:
        self.append_checkpoint(thread, self.messages(self.logs[thread], delta), version)

    def append_checkpoint(self, thread: str, messages: list[Message], version: str) -> None:
        """`checkpoint_append` with `expected_version` right, none, behind or ahead of the log."""
        log = self.logs[thread]
        run = self.run_for(thread)
        actual = len(log)
        expected = {"right": actual, "none": None, "ahead": actual + 1}.get(version, actual - 1 if actual else 2)
        note(f"log length {actual}, expected_version {expected}")
        append = self.store.checkpoint_append
        if expected is not None and expected != actual:
            error = self.refused("CKP-3", VersionConflictError, append, thread, messages, expected, run)
            assert isinstance(error, VersionConflictError)
            assert (error.expected, error.actual) == (expected, actual), (
                f"CKP-3: VersionConflictError({error.expected}, {error.actual}), "
                f"expected VersionConflictError({expected}, {actual})"
            )
            return
        problem = delta_problem(log, messages)
        if problem is not None:
            note(f"refused: {problem}")
            self.refused("CKP-4/MSG-5/MOD-3", ValidationError, append, thread, messages, expected, run)
            return
        new_version = self.succeeds("CKP-4", append, thread, messages, expected, run)
        assert new_version == actual + len(messages), (
            f"CKP-4: checkpoint_append returned version {new_version}, the raw log now has {actual + len(messages)}"
        )
        log.extend(messages)
        self.threads.add(thread)
        self.latest[thread] = run
        self.last = (thread, messages)

    @rule(query=QUERIES, first=st.integers(1, 5), span=st.integers(0, 2))
    def list_records(self, query: MessageQuery, first: int, span: int) -> None:
        bounds = MessageSeqRange(from_seq=first, to_seq=first + span)
        for thread_id, (page, ranged) in self.succeeds("MSG-7/MSG-8", queried, self.store, query, bounds).items():
            records = records_of(thread_id, self.logs.get(thread_id, []))
            self.check_page(query, records, page)
            expected = [r for r in records if first <= r.seq <= first + span]
            assert _unstamped(ranged) == expected, (
                f"MSG-8: range [{first}, {first + span}] of {thread_id!r} gave {[r.seq for r in ranged]}"
            )

    @staticmethod
    def check_page(query: MessageQuery, records: list[MessageRecord], page: MessagePage) -> None:
        """MSG-7: filter, order by seq, window as QRY-3..5, with cursors to the next and previous pages."""
        visible = {MessageVisibilityFilter.ANY: (False, True), MessageVisibilityFilter.EXTERNAL: (False,)}
        matching = [
            r
            for r in records
            if (query.after is None or r.seq > query.after)
            and (query.before is None or r.seq < query.before)
            and (query.run_id is None or r.produced_by_run_id == query.run_id)
            and (r.message.visibility is Visibility.INTERNAL) in visible.get(query.visibility, (True,))
        ]
        if query.order is MessageOrder.DESC:
            matching.reverse()
        limit = min(query.limit, 200)
        start = min(query.offset, len(matching))
        end = min(start + limit, len(matching))
        assert (_unstamped(page.records), page.total) == (matching[start:end], len(matching)), (
            f"MSG-7: page {[r.seq for r in page.records]} of {page.total}, "
            f"expected {[r.seq for r in matching[start:end]]} of {len(matching)}"
        )
        has_more = limit > 0 and end < len(matching)
        assert page.has_more == has_more, f"MSG-7: has_more is {page.has_more}, expected {has_more}"
        following = _decoded(query, page.next_cursor)
        assert following == (end if has_more else None), f"MSG-7: next_cursor leads to {following}, not {end}"
        preceding = _decoded(query, page.prev_cursor)
        back = max(start - limit, 0) if limit > 0 and start > 0 else None
        assert preceding == back, f"MSG-7: prev_cursor leads to {preceding}, expected {back}"

    # ── the store equals the model ───────────────────────────────────

    @invariant()
    def store_matches_model(self) -> None:
        known = sorted({m.id for log in self.logs.values() for m in log if m.id} | {*REUSED_IDS, "m1", "unknown"})
        lengths = {thread_id: len(log) for thread_id, log in self.logs.items()}
        for thread_id, seen in self.call(observe, self.store, lengths, known).items():
            log = self.logs[thread_id]
            raw = log or None
            assert seen.exists == (thread_id in self.threads), f"MSG-2/MSG-3: thread {thread_id!r} exists is wrong"
            assert seen.committed == raw, (
                f"MSG-1/MSG-6: load_committed_messages({thread_id!r}) is {brief(seen.committed)}, expected {brief(raw)}"
            )
            view = read_view(log) if log else None
            assert seen.view == view, (
                f"VIEW-1: load_messages({thread_id!r}) is {brief(seen.view)}, expected {brief(view)}"
            )
            records = records_of(thread_id, log)
            assert _unstamped(seen.records) == (records or None), (
                f"MSG-6: load_message_records({thread_id!r}): {record_diff(seen.records, records)}"
            )
            queries, bounds = probes(len(log))
            for query, page in zip(queries, seen.pages, strict=True):
                self.check_page(query, records, page)
            in_bounds = [r for r in records if bounds.from_seq <= r.seq <= bounds.to_seq]
            assert _unstamped(seen.ranged) == in_bounds, (
                f"MSG-8: range [{bounds.from_seq}, {bounds.to_seq}] of {thread_id!r} gave seqs "
                f"{[r.seq for r in seen.ranged]}"
            )
            by_id = {r.message_id: r for r in records}
            for message_id, found in seen.by_id.items():
                assert (found and replace(found, created_at=None)) == by_id.get(message_id), (
                    f"MSG-8: load_message_record({thread_id!r}, {message_id!r}) gave {found!r}"
                )
            self.check_resumed(thread_id, seen.resumed)

    def check_resumed(self, thread_id: str, resumed: CheckpointSnapshot | None) -> None:
        log = self.logs[thread_id]
        latest = self.latest.get(thread_id)
        if not log and latest is None:
            assert resumed is None, f"CKP-5: load_checkpoint({thread_id!r}) without messages and runs is not None"
            return
        assert resumed is not None, f"CKP-5: load_checkpoint({thread_id!r}) is None"
        assert resumed.message_version == len(log), (
            f"CKP-5: message_version {resumed.message_version}, the raw log has {len(log)}"
        )
        resumed_view = read_view(folded(log))
        assert resumed.messages == resumed_view, (
            f"VIEW-2/CKP-5: load_checkpoint({thread_id!r}).messages is {brief(resumed.messages)}, expected the "
            f"folded read view {brief(resumed_view)} of the log {brief(log)}"
        )
        assert resumed.latest_run == latest, f"CKP-5: load_checkpoint({thread_id!r}).latest_run is not the last run"
        assert resumed.thread_state is None, f"CKP-5: load_checkpoint({thread_id!r}) has a state none saved"


class MessageMachineRules:
    """Holds the machine's contract test (`stateful(...)`)."""

    test_message_log_machine = stateful(
        MessageLogMachine,
        "MSG-1",
        "MSG-2",
        "MSG-3",
        "MSG-4",
        "MSG-5",
        "MSG-6",
        "MSG-7",
        "MSG-8",
        "VIEW-1",
        "VIEW-2",
        "CKP-3",
        "CKP-4",
        "CKP-5",
        "MOD-3",
        "ATO-1",
    )
