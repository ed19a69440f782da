"""The message machine's independent model of the log: drafts, strategies, and SPEC section 7.

The model is the raw committed log of each thread (a list of messages). Everything
a store shows of it (records and seqs, the read view, the checkpoint's folded view)
is computed from those lists by the functions below, written from SPEC section 7
without the kit's message helpers, so the reference store is checked too.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

from hypothesis import strategies as st

from conformance.contract._enums import MessageOrder, MessageVisibilityFilter, Role, Visibility
from conformance.contract._models import CompactionMark, JsonValue, Message, MessageMetadata, MessageRecord, ToolCall
from conformance.contract._queries import MessageQuery

__all__ = [
    "DELTAS",
    "QUERIES",
    "REUSED_IDS",
    "THREADS",
    "Draft",
    "brief",
    "delta_problem",
    "folded",
    "read_view",
    "record_diff",
    "records_of",
    "shape_problem",
]
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
    "user-with-empty-tool-calls",
    "user-with-empty-call-id",
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

    Kinds: `user`, `note` (an internal user message), `assistant` (calling `calls`,
    `tool_calls` None without any), `no-calls` (an assistant with `tool_calls=[]`),
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
        if kind == "no-calls":
            return replace(base, role=Role.ASSISTANT, tool_calls=[])
        if kind in ("user-with-call-id", "user-with-empty-call-id"):
            return replace(base, tool_call_id=call if kind == "user-with-call-id" else "")
        if kind in ("user-with-tool-calls", "user-with-empty-tool-calls"):
            made = [ToolCall(id=call, name="lookup", arguments={})] if kind == "user-with-tool-calls" else []
            return replace(base, tool_calls=made)
        return replace(base, id={"no-id": None, "blank-id": "  "}.get(kind, message_id))


_RUNS = (None, *RUN_IDS)
#: Drafts with a new id, of every kind and shape the machine uses.
_FRESH = [
    *(Draft("user", run_id=r) for r in _RUNS),
    *(Draft("assistant", calls=c) for c in ((), ("c1",), ("c2",), ("c1", "c2"), ("c2", "c3"), ("c3", "c1"))),
    Draft("no-calls"),
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
        return "tool_call_id on a non-tool message, even an empty one"
    if message.tool_calls is not None and message.role is not Role.ASSISTANT:
        return "tool_calls on a non-assistant message, even an empty list"
    calls = message.tool_calls or []
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


def records_of(thread_id: str, log: Sequence[Message]) -> list[MessageRecord]:
    """The records of a raw log: seq = 1-based position, fields projected from the message (MSG-6)."""
    out = []
    for seq, message in enumerate(log, start=1):
        metadata = message.metadata or MessageMetadata()
        assert message.id is not None, f"the model's log holds only messages with ids, not {message!r:.80}"
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
    """VIEW-2: every summary leaves its place; each widest interval becomes its summary at its start.

    An interval inside another is not widest, nor is an equal one marked later in the
    log; partly overlapping intervals are both widest. Raw messages inside any widest
    interval go.
    """
    marked = [(s, m) for m in log if (s := _span(m)) is not None]
    widest = [
        (s, m)
        for i, (s, m) in enumerate(marked)
        if not any(o[0] <= s[0] and s[1] <= o[1] and (o != s or j < i) for j, (o, _) in enumerate(marked))
    ]
    placed: list[tuple[int, Message]] = [(span[0], summary) for span, summary in widest]
    for seq, message in enumerate(log, start=1):
        if _span(message) is None and not any(a <= seq <= b for (a, b), _ in widest):
            placed.append((seq, message))
    return [message for _, message in sorted(placed, key=lambda item: item[0])]


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
    for got, want in zip(found, expected, strict=True):
        if got != want:
            names = [f.name for f in fields(MessageRecord) if getattr(got, f.name) != getattr(want, f.name)]
            body = f", message {brief([got.message])} vs {brief([want.message])}" if "message" in names else ""
            return f"the record at seq {want.seq} ({want.message_id!r}) differs in {names}{body}"
    return "equal"
