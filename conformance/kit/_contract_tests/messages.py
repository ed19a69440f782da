"""Contract tests: the message log and its read view (MSG-1..8, VIEW-1..2, MOD-3)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace

import pytest

from conformance.contract._enums import MessageOrder, MessageVisibilityFilter, Role
from conformance.contract._errors import NotFoundError, ValidationError
from conformance.contract._models import CompactionMark, JsonValue, Message, MessageMetadata, MessageRecord, ToolCall
from conformance.contract._queries import MessagePage, MessageQuery
from conformance.contract._runs import MessageSeqRange
from conformance.contract._stores import ThreadRunStore
from conformance.kit._boundary import answering
from conformance.kit._differ import diff, diff_fields, named, shown
from conformance.kit._exact import same
from conformance.kit._runner import rule
from conformance.kit._scenarios import assistant, log, run, system, thread, tool, user
from conformance.kit._violation import BrokenCall, expect

TEXT: list[dict[str, JsonValue]] = [{"type": "text", "text": "x"}]


def _stepped(message: Message, run_id: str, step_index: int) -> Message:
    """`message` as produced by step `step_index` of run `run_id`."""
    return replace(message, metadata=MessageMetadata(run_id=run_id, step_index=step_index))


def _no_calls(message_id: str) -> Message:
    """An assistant message carrying an empty list of tool calls (`tool_calls=[]`, not None)."""
    return replace(assistant(message_id), tool_calls=[])


def _mixed() -> list[Message]:
    """A log whose read view drops three tool results (t1, x1, o1) and strips both calls of a1."""
    return [
        _stepped(user("u1"), "r1", 0),
        _stepped(assistant("a1", calls=["c1", "c2"]), "r1", 1),
        _stepped(tool("t1", "c1"), "r1", 1),
        tool("x1", "c1", internal=True),
        tool("o1", "nobody"),
        system("s1", summary_of=(1, 2)),
        user("u2"),
    ]


#: (message_id, seq, produced_by_run_id, step_index, tool_call_id, created_at, compaction) of each MIXED
#: record; created_at is always None: a message holds no time to project it from.
MIXED_PROJECTIONS = [
    ("u1", 1, "r1", 0, None, None, None),
    ("a1", 2, "r1", 1, None, None, None),
    ("t1", 3, "r1", 1, "c1", None, None),
    ("x1", 4, None, None, "c1", None, None),
    ("o1", 5, None, None, "nobody", None, None),
    ("s1", 6, None, None, None, None, CompactionMark(from_seq=1, to_seq=2)),
    ("u2", 7, None, None, None, None, None),
]
MIXED_IDS = [projection[0] for projection in MIXED_PROJECTIONS]
PROJECTED = ("message_id", "seq", "produced_by_run_id", "step_index", "tool_call_id", "created_at", "compaction")

#: One message per way of breaking MOD-3, each appended as the third message (seq 3) of a log.
#: A field is carried when present, even empty: `tool_calls=[]` off an assistant, `tool_call_id=""` off a tool.
INVALID = {
    "missing-id": Message(id=None, role=Role.USER, content=TEXT),
    "blank-id": Message(id="  ", role=Role.USER, content=TEXT),
    "tool-without-call-id": Message(id="bad", role=Role.TOOL, content=TEXT),
    "tool-with-blank-call-id": Message(id="bad", role=Role.TOOL, content=TEXT, tool_call_id=" "),
    "user-with-call-id": Message(id="bad", role=Role.USER, content=TEXT, tool_call_id="c1"),
    "user-with-tool-calls": replace(assistant("bad", calls=["c1"]), role=Role.USER),
    "user-with-empty-tool-calls": replace(user("bad"), tool_calls=[]),
    "system-with-empty-tool-calls": replace(system("bad"), tool_calls=[]),
    "tool-with-empty-tool-calls": replace(tool("bad", "c1"), tool_calls=[]),
    "user-with-empty-call-id": replace(user("bad"), tool_call_id=""),
    "tool-with-empty-call-id": replace(tool("bad", "c1"), tool_call_id=""),
    "call-with-blank-id": replace(assistant("bad"), tool_calls=[ToolCall(id=" ", name="f", arguments={})]),
    "call-with-blank-name": replace(assistant("bad"), tool_calls=[ToolCall(id="c1", name="", arguments={})]),
    "duplicate-call-ids": assistant("bad", calls=["c1", "c1"]),
    "compaction-from-zero": system("bad", summary_of=(0, 1)),
    "compaction-reversed": system("bad", summary_of=(2, 1)),
    "compaction-not-before-summary": system("bad", summary_of=(1, 3)),
}

Reader = Callable[[ThreadRunStore, str, list[str]], Awaitable[list[MessageRecord]]]


async def _loaded(store: ThreadRunStore, thread_id: str, ids: list[str]) -> list[MessageRecord]:
    __tracebackhide__ = True
    records = await store.load_message_records(thread_id)
    assert records is not None, f"load_message_records({thread_id!r}) gives None for a log with messages"
    return records


async def _listed(store: ThreadRunStore, thread_id: str, ids: list[str]) -> list[MessageRecord]:
    return (await store.list_message_records(thread_id, MessageQuery(limit=200))).records


async def _one_by_one(store: ThreadRunStore, thread_id: str, ids: list[str]) -> list[MessageRecord]:
    __tracebackhide__ = True
    found = [await store.load_message_record(thread_id, message_id) for message_id in ids]
    lost = [message_id for message_id, record in zip(ids, found, strict=True) if record is None]
    assert None not in found, f"load_message_record({thread_id!r}, ...) gives None for committed messages {lost}"
    return [record for record in found if record is not None]


async def _ranged(store: ThreadRunStore, thread_id: str, ids: list[str]) -> list[MessageRecord]:
    # Past the end: whether to_seq itself is included is MSG-8's business, not the reader's.
    return await store.load_message_records_range(thread_id, MessageSeqRange(from_seq=1, to_seq=len(ids) + 10))


READERS: dict[str, Reader] = {"load": _loaded, "list": _listed, "one": _one_by_one, "range": _ranged}


def _ids(messages: list[Message] | None) -> list[str | None]:
    """The ids of a log read back, which must not be None: the log holds messages."""
    __tracebackhide__ = True
    assert messages is not None, "the log read back as None, though it holds messages"
    return [message.id for message in messages]


def _seqs(page: MessagePage) -> list[int]:
    return [record.seq for record in page.records]


def _misprojected(records: list[MessageRecord]) -> str:
    """Each record of the mixed log whose projected fields are wrong, naming the fields."""
    wrong = [
        f"record {projection[0]!r}: {diff_fields(PROJECTED, [getattr(record, name) for name in PROJECTED], projection)}"
        for record, projection in zip(records, MIXED_PROJECTIONS, strict=False)
        if not same([getattr(record, name) for name in PROJECTED], list(projection))
    ]
    if len(records) != len(MIXED_PROJECTIONS):
        wrong.append(f"{len(records)} records, expected {len(MIXED_PROJECTIONS)}")
    return "; ".join(wrong)


async def _filtered_log(store: ThreadRunStore) -> None:
    """Log "t": seqs 1-2 by run r1, 3 (internal) and 4 by run r2, 5 internal, 6 plain."""
    r1 = [user("m1", run_id="r1"), assistant("m2", run_id="r1")]
    r2 = [user("m3", internal=True, run_id="r2"), user("m4", run_id="r2")]
    await log(store, "t", *r1, *r2, user("m5", internal=True), "m6")


async def _listed_seqs(store: ThreadRunStore, query: MessageQuery) -> list[int]:
    return _seqs(await store.list_message_records("t", query))


EMPTY_LOGS = [
    "never-written",
    "appended-empty",
    "saved-empty",
    "checkpointed-empty",
    "messages-deleted",
    "thread-deleted",
]


async def _emptied(store: ThreadRunStore, how: str) -> None:
    """Thread "t" without messages (`how`): never written, appended [], or m1 then emptied or deleted."""
    await store.save_thread(thread("t"))
    if how == "never-written":
        return
    if how == "appended-empty":
        await store.append_message_records("t", [])
        return
    await log(store, "t", "m1")
    if how == "saved-empty":
        await store.save_messages("t", [])
    elif how == "checkpointed-empty":
        await store.checkpoint("t", [], run("r1", "t"))
    elif how == "messages-deleted":
        await store.delete_messages("t")
    else:
        await store.delete_thread("t")


class MessageRules:
    """MSG-1..8 on the committed log, VIEW-1..2 on its read views, MOD-3 on every append."""

    @rule("MSG-1")
    @pytest.mark.parametrize("how", EMPTY_LOGS)
    async def test_log_without_messages_reads_as_none(self, store: ThreadRunStore, how: str) -> None:
        """A log never written, written empty, or deleted reads as None both raw and as the read view."""
        await _emptied(store, how)
        raw = await store.load_committed_messages("t")
        assert raw is None, f"load_committed_messages('t') of a log {how} gives {shown(raw)}; expected None"
        view = await store.load_messages("t")
        assert view is None, f"load_messages('t') of a log {how} gives {shown(view)}; expected None"

    @rule("MSG-2")
    async def test_save_messages_replaces_the_whole_log(self, store: ThreadRunStore) -> None:
        """Saving [m4, m5] over [m1, m2, m3] leaves exactly [m4, m5], at seqs 1 and 2."""
        await log(store, "t", "m1", "m2", "m3")
        await store.save_messages("t", [user("m4"), user("m5")])
        found, due = await store.load_committed_messages("t"), [user("m4"), user("m5")]
        assert found == due, f"load_committed_messages('t') after save_messages: {diff(found, due)}"
        seqs = [(r.seq, r.message_id) for r in await _loaded(store, "t", [])]
        assert seqs == [(1, "m4"), (2, "m5")], (
            f"records after save_messages are (seq, id) {seqs}; expected [(1, 'm4'), (2, 'm5')]"
        )

    @rule("MSG-2")
    async def test_save_messages_does_not_need_the_thread(self, store: ThreadRunStore) -> None:
        """Messages saved for a thread that was never saved are kept; no thread appears."""
        await store.save_messages("loose", [user("m1")])
        found = await store.load_committed_messages("loose")
        assert found == [user("m1")], (
            f"load_committed_messages('loose') after save_messages: {diff(found, [user('m1')])}"
        )
        created = await store.load_thread("loose")
        assert created is None, f"save_messages created a thread: load_thread('loose') gives {named(created)}"

    @rule("MSG-2", "MOD-3")
    @pytest.mark.parametrize("bad", [*INVALID.values(), user("a")], ids=[*INVALID, "duplicate-message-ids"])
    async def test_save_messages_refuses_an_invalid_list(self, store: ThreadRunStore, bad: Message) -> None:
        """Saving [a, b, bad] (bad invalid, or a second "a") raises ValidationError and keeps the old log."""
        await log(store, "t", "m1")
        with pytest.raises(ValidationError):
            await store.save_messages("t", [user("a"), user("b"), bad.copy()])
        found = await store.load_committed_messages("t")
        assert found == [user("m1")], f"save_messages refused the list but the log changed: {diff(found, [user('m1')])}"

    @rule("MSG-3")
    async def test_delete_messages_empties_the_log_and_keeps_the_thread(self, store: ThreadRunStore) -> None:
        """After delete_messages the log is gone and the thread is still there."""
        await store.save_thread(thread("t", title="kept"))
        await log(store, "t", "m1", "m2")
        saved = await store.load_thread("t")  # what save_thread keeps of the title is THR-2's business
        assert saved is not None, "load_thread('t') gives None for a thread just saved"
        await store.delete_messages("t")
        left = await store.load_committed_messages("t")  # no message; that it reads None is MSG-1's
        assert not left, f"after delete_messages('t'), load_committed_messages('t') gives {shown(left)}; expected none"
        kept = await store.load_thread("t")
        assert kept is not None, "delete_messages('t') deleted the thread: load_thread('t') gives None"
        title, due = kept.metadata.title, saved.metadata.title
        assert title == due, f"delete_messages('t') changed the thread's title to {title!r}; expected {due!r}"

    @rule("MSG-3")
    async def test_delete_messages_of_unknown_thread_raises(self, store: ThreadRunStore) -> None:
        """delete_messages on a thread that does not exist raises NotFoundError and creates nothing."""
        with pytest.raises(NotFoundError):
            await store.delete_messages("ghost")
        created = await store.load_thread("ghost")
        assert created is None, f"delete_messages('ghost') raised, yet load_thread('ghost') gives {named(created)}"

    @rule("MSG-4")
    async def test_append_continues_the_seqs(self, store: ThreadRunStore) -> None:
        """Appending [m3, m4] to [m1, m2] returns records at seqs 3 and 4 and puts them at the tail."""
        await log(store, "t", "m1", "m2")
        records = await log(store, "t", "m3", "m4")
        found = [(r.thread_id, r.seq, r.message_id) for r in records]
        due = [("t", 3, "m3"), ("t", 4, "m4")]
        assert found == due, f"append_message_records returned (thread_id, seq, id) {found}; expected {due}"
        ids = _ids(await store.load_committed_messages("t"))
        assert ids == ["m1", "m2", "m3", "m4"], (
            f"the log after the append holds {ids}; expected ['m1', 'm2', 'm3', 'm4']"
        )

    @rule("MSG-4")
    async def test_first_append_starts_at_seq_one(self, store: ThreadRunStore) -> None:
        """The first append to a new thread numbers its messages 1, 2."""
        records = await log(store, "t", "m1", "m2")
        found = [(r.seq, r.message_id) for r in records]
        assert found == [(1, "m1"), (2, "m2")], (
            f"the first append returned (seq, id) {found}; expected [(1, 'm1'), (2, 'm2')]"
        )

    @rule("MSG-4")
    async def test_empty_delta_changes_nothing(self, store: ThreadRunStore) -> None:
        """Appending [] to [m1] returns [] and the log stays [m1]."""
        await log(store, "t", "m1")
        returned = await store.append_message_records("t", [])
        assert returned == [], f"append_message_records('t', []) returned {diff(returned, [])}"
        found = await store.load_committed_messages("t")
        assert found == [user("m1")], f"load_committed_messages('t') after an empty append: {diff(found, [user('m1')])}"

    @rule("MSG-4")
    async def test_empty_delta_to_an_unknown_thread_changes_nothing(self, store: ThreadRunStore) -> None:
        """Appending [] to an unknown thread returns [] and leaves no message and no thread (None: MSG-1)."""
        returned = await store.append_message_records("ghost", [])
        assert returned == [], f"append_message_records('ghost', []) returned {diff(returned, [])}"
        found = await store.load_committed_messages("ghost")
        assert not found, f"after an empty append, load_committed_messages('ghost') gives {shown(found)}; expected none"
        created = await store.load_thread("ghost")
        assert created is None, f"an empty append created a thread: load_thread('ghost') gives {named(created)}"

    @rule("MSG-5")
    async def test_delta_reusing_a_committed_id_is_refused(self, store: ThreadRunStore) -> None:
        """Appending [m3, m1 with new text] to [m1, m2] raises ValidationError; m1 keeps its text."""
        await log(store, "t", "m1", "m2")
        with pytest.raises(ValidationError):
            await log(store, "t", "m3", user("m1", "rewritten"))
        found, due = await store.load_committed_messages("t"), [user("m1"), user("m2")]
        assert found == due, f"the append was refused but the log changed: {diff(found, due)}"

    @rule("MSG-5")
    async def test_delta_repeating_an_id_is_refused(self, store: ThreadRunStore) -> None:
        """Appending [m2, m2] raises ValidationError and appends neither."""
        await log(store, "t", "m1")
        with pytest.raises(ValidationError):
            await log(store, "t", "m2", "m2")
        found = await store.load_committed_messages("t")
        assert found == [user("m1")], f"the append was refused but the log changed: {diff(found, [user('m1')])}"

    @rule("MSG-5")
    async def test_delta_with_an_invalid_message_is_refused_whole(self, store: ThreadRunStore) -> None:
        """Appending [m2, m3, tool result without call id] appends nothing, not even m2 and m3."""
        await log(store, "t", "m1")
        with pytest.raises(ValidationError):
            await log(store, "t", "m2", "m3", INVALID["tool-without-call-id"].copy())
        found = await store.load_committed_messages("t")
        assert found == [user("m1")], f"the append was refused but the log changed: {diff(found, [user('m1')])}"

    @rule("MSG-5")
    async def test_refused_first_delta_appends_nothing(self, store: ThreadRunStore) -> None:
        """A refused first append to an unknown thread appends no message (its log stays None: ATO-1)."""
        with pytest.raises(ValidationError):
            await log(store, "ghost", "m1", "m1")
        found = await store.load_committed_messages("ghost")
        assert not found, f"the append was refused but load_committed_messages('ghost') gives {shown(found)}"

    @rule("MOD-3", "MSG-5")
    @pytest.mark.parametrize("bad", list(INVALID.values()), ids=list(INVALID))
    async def test_append_refuses_an_invalid_message(self, store: ThreadRunStore, bad: Message) -> None:
        """Each broken clause of MOD-3 alone makes the append raise ValidationError; the log stays [a, b]."""
        await log(store, "t", "a", "b")
        with pytest.raises(ValidationError):
            await log(store, "t", bad.copy())
        found, due = await store.load_committed_messages("t"), [user("a"), user("b")]
        assert found == due, f"the append was refused but the log changed: {diff(found, due)}"

    @rule("MOD-3")
    async def test_append_accepts_a_compaction_mark_before_the_summary(self, store: ThreadRunStore) -> None:
        """A summary at seq 3 may stand for [1, 2]."""
        await log(store, "t", "a", "b")
        records = await log(store, "t", system("s", summary_of=(1, 2)))
        found, due = [(r.message_id, r.compaction) for r in records], [("s", CompactionMark(from_seq=1, to_seq=2))]
        assert found == due, f"appending a summary of [1, 2] at seq 3 returned (id, compaction) {found}; expected {due}"

    @rule("MOD-3")
    async def test_append_accepts_a_tool_exchange(self, store: ThreadRunStore) -> None:
        """An assistant calling c1 and c2 and a tool result per call are appended as they are."""
        exchange = [assistant("a", calls=["c1", "c2"]), tool("r1", "c1"), tool("r2", "c2")]
        await log(store, "t", *exchange)
        found = await store.load_committed_messages("t")
        assert found == exchange, f"load_committed_messages('t') after a tool exchange: {diff(found, exchange)}"

    @rule("MOD-3")
    async def test_append_accepts_an_assistant_with_an_empty_call_list(self, store: ThreadRunStore) -> None:
        """An assistant with tool_calls=[] carries no call to check: it is appended at seq 2."""
        records = await log(store, "t", "u1", _no_calls("a1"))
        found = [(r.seq, r.message_id) for r in records]
        assert found == [(1, "u1"), (2, "a1")], (
            f"the append returned (seq, id) {found}; expected [(1, 'u1'), (2, 'a1')]"
        )

    @rule("MSG-6")
    @pytest.mark.parametrize("reader", list(READERS))
    async def test_records_keep_raw_seqs_when_the_view_drops_messages(self, store: ThreadRunStore, reader: str) -> None:
        """Records number the raw log 1..7 although the read view drops t1, x1 and o1."""
        await log(store, "t", *_mixed())
        records = await READERS[reader](store, "t", MIXED_IDS)
        found, due = [(r.seq, r.message_id) for r in records], [(p[1], p[0]) for p in MIXED_PROJECTIONS]
        assert found == due, f"{reader} reader gives (seq, id) {found}; expected the raw log's {due}"

    @rule("MSG-6")
    @pytest.mark.parametrize("reader", list(READERS))
    async def test_record_body_is_its_own_message(self, store: ThreadRunStore, reader: str) -> None:
        """The record of seq n holds the n-th committed message, as committed, not a neighbour's body."""
        await log(store, "t", *_mixed())
        records = await READERS[reader](store, "t", MIXED_IDS)
        found, due = [(r.message_id, r.message) for r in records], [(m.id, m) for m in _mixed()]
        assert found == due, (
            f"{reader} reader gives records {[i for i, _ in found]} whose bodies differ from the messages committed: "
            f"{diff([m for _, m in found], _mixed())}"
        )

    @rule("MSG-6")
    @pytest.mark.parametrize("reader", list(READERS))
    async def test_record_fields_are_projected_from_the_message(self, store: ThreadRunStore, reader: str) -> None:
        """run_id, step_index, tool_call_id and compaction of a record come from its message; created_at is None.

        A message holds no time, so no record carries `created_at` (upstream builds every
        record with `MessageRecord::from_message`, which leaves it unset); what append
        returns equals what these readers give (test_append_returns_what_reads_give_back).
        """
        await log(store, "t", *_mixed())
        records = await READERS[reader](store, "t", MIXED_IDS)
        owners = {r.thread_id for r in records}
        assert owners == {"t"}, f"{reader} reader gives records of threads {owners}; expected only 't'"
        projected = [
            (r.message_id, r.seq, r.produced_by_run_id, r.step_index, r.tool_call_id, r.created_at, r.compaction)
            for r in records
        ]
        assert projected == MIXED_PROJECTIONS, f"{reader} reader misprojects: {_misprojected(records)}"

    @rule("MSG-6")
    @pytest.mark.parametrize("reader", list(READERS))
    async def test_append_returns_what_reads_give_back(self, store: ThreadRunStore, reader: str) -> None:
        """The records two appends returned equal the records every reader gives back."""
        returned = await log(store, "t", *_mixed()[:3])
        returned += await log(store, "t", *_mixed()[3:])
        read = await READERS[reader](store, "t", MIXED_IDS)
        assert read == returned, (
            f"{reader} reader gives other records than the appends returned: {diff(read, returned)}"
        )

    @rule("MSG-7")
    async def test_after_keeps_later_seqs(self, store: ThreadRunStore) -> None:
        """after=2 keeps seqs 3..6: seq 2 itself is excluded."""
        await _filtered_log(store)
        seqs = await _listed_seqs(store, MessageQuery(after=2))
        assert seqs == [3, 4, 5, 6], f"list_message_records(after=2) gives seqs {seqs}; expected [3, 4, 5, 6]"

    @rule("MSG-7")
    async def test_before_keeps_earlier_seqs(self, store: ThreadRunStore) -> None:
        """before=3 keeps seqs 1 and 2: seq 3 itself is excluded; with after=1 only 2 is left."""
        await _filtered_log(store)
        seqs = await _listed_seqs(store, MessageQuery(before=3))
        assert seqs == [1, 2], f"list_message_records(before=3) gives seqs {seqs}; expected [1, 2]"
        seqs = await _listed_seqs(store, MessageQuery(after=1, before=3))
        assert seqs == [2], f"list_message_records(after=1, before=3) gives seqs {seqs}; expected [2]"

    @rule("MSG-7")
    @pytest.mark.parametrize("bound", [2**63, 2**64], ids=["2**63", "2**64"])
    async def test_after_and_before_past_64_bits(self, store: ThreadRunStore, bound: int) -> None:
        """after or before of 2**63 and more is a number like any: after keeps none, before keeps all."""
        await _filtered_log(store)
        cases = [
            (f"after={bound}", MessageQuery(after=bound), []),
            (f"before={bound}", MessageQuery(before=bound), [1, 2, 3, 4, 5, 6]),
            (f"after=4, before={bound}", MessageQuery(after=4, before=bound), [5, 6]),
        ]
        for shown_query, query, due in cases:
            seqs = await _listed_seqs(store, query)
            assert seqs == due, f"list_message_records({shown_query}) gives seqs {seqs}; expected {due}"

    @rule("MSG-7")
    async def test_run_id_keeps_that_runs_messages(self, store: ThreadRunStore) -> None:
        """run_id="r2" keeps exactly the messages whose metadata names run r2."""
        await _filtered_log(store)
        page = await store.list_message_records("t", MessageQuery(run_id="r2"))
        found = [(r.seq, r.produced_by_run_id) for r in page.records]
        due = [(3, "r2"), (4, "r2")]
        assert found == due, (
            f"list_message_records(run_id='r2') gives (seq, produced_by_run_id) {found}; expected {due}"
        )

    @rule("MSG-7")
    @pytest.mark.parametrize(
        ("visibility", "expected"),
        [
            (MessageVisibilityFilter.EXTERNAL, [1, 2, 4, 6]),
            (MessageVisibilityFilter.INTERNAL, [3, 5]),
            (MessageVisibilityFilter.ANY, [1, 2, 3, 4, 5, 6]),
        ],
        ids=["external", "internal", "any"],
    )
    async def test_visibility_filter(
        self, store: ThreadRunStore, visibility: MessageVisibilityFilter, expected: list[int]
    ) -> None:
        """external keeps messages that are not internal, internal only internal ones, any all."""
        await _filtered_log(store)
        page = await store.list_message_records("t", MessageQuery(visibility=visibility))
        found = (_seqs(page), page.total)
        assert found == (expected, len(expected)), (
            f"list_message_records(visibility={visibility.value!r}) gives seqs {found[0]}, total {found[1]!r}; "
            f"expected {expected}, total {len(expected)}"
        )

    @rule("MSG-7")
    async def test_filters_combine(self, store: ThreadRunStore) -> None:
        """run_id="r2" with external visibility keeps only seq 4."""
        await _filtered_log(store)
        query = MessageQuery(run_id="r2", visibility=MessageVisibilityFilter.EXTERNAL)
        seqs = await _listed_seqs(store, query)
        assert seqs == [4], f"list_message_records(run_id='r2', visibility='external') gives seqs {seqs}; expected [4]"

    @rule("MSG-7")
    async def test_desc_orders_from_the_tail(self, store: ThreadRunStore) -> None:
        """order=desc with limit 2 gives seqs 6, 5, then 4, 3 from its next cursor."""
        await _filtered_log(store)
        query = MessageQuery(limit=2, order=MessageOrder.DESC)
        first = await store.list_message_records("t", query)
        found = (_seqs(first), first.total, first.has_more)
        assert found == ([6, 5], 6, True), (
            f"the first desc page of 2 gives (seqs, total, has_more) {found}; expected ([6, 5], 6, True)"
        )
        assert first.next_cursor is not None, "the first desc page of 6 messages by 2 has no next_cursor"
        second = replace(query, offset=query.decode_cursor(first.next_cursor))
        seqs = await _listed_seqs(store, second)
        assert seqs == [4, 3], (
            f"the desc page at next_cursor (offset {second.offset}) gives seqs {seqs}; expected [4, 3]"
        )

    @rule("MSG-7")
    async def test_pages_follow_msg_cursors(self, store: ThreadRunStore) -> None:
        """Five external messages by twos: [1, 2] [4, 6] [7]; each cursor is msg_ and decodes to its offset."""
        await _filtered_log(store)
        await log(store, "t", "m7")
        query = MessageQuery(limit=2, visibility=MessageVisibilityFilter.EXTERNAL)
        pages = [await store.list_message_records("t", query)]
        while (cursor := pages[-1].next_cursor) is not None and len(pages) < 4:
            pages.append(await store.list_message_records("t", replace(query, offset=query.decode_cursor(cursor))))
        seqs = [_seqs(p) for p in pages]
        assert seqs == [[1, 2], [4, 6], [7]], (
            f"the pages by next_cursor give seqs {seqs}; expected [[1, 2], [4, 6], [7]]"
        )
        counts = [(p.total, p.has_more) for p in pages]
        due_counts = [(5, True), (5, True), (5, False)]
        assert counts == due_counts, f"the pages give (total, has_more) {counts}; expected {due_counts}"
        cursors = [c for p in pages for c in (p.next_cursor, p.prev_cursor) if c is not None]
        odd = [c for c in cursors if not c.startswith("msg_")]
        assert all(c.startswith("msg_") for c in cursors), f"message cursors {odd} do not start with 'msg_'"
        nexts = [p.next_cursor and query.decode_cursor(p.next_cursor) for p in pages]
        assert nexts == [2, 4, None], f"next_cursor of pages 1-3 decodes to offsets {nexts}; expected [2, 4, None]"
        prevs = [p.prev_cursor and query.decode_cursor(p.prev_cursor) for p in pages]
        assert prevs == [None, 0, 2], f"prev_cursor of pages 1-3 decodes to offsets {prevs}; expected [None, 0, 2]"

    @rule("MSG-7")
    async def test_limit_is_capped_at_200(self, store: ThreadRunStore) -> None:
        """With 205 messages, limit=500 returns 200 records and a next cursor to offset 200."""
        await log(store, "t", *[f"m{n}" for n in range(1, 206)])
        query = MessageQuery(limit=500)
        page = await store.list_message_records("t", query)
        found = (len(page.records), page.total, page.has_more)
        assert found == (200, 205, True), (
            f"limit=500 of 205 messages gives (records, total, has_more) {found}; expected (200, 205, True)"
        )
        seqs = _seqs(page)
        assert seqs == list(range(1, 201)), f"limit=500 gives seqs {shown(seqs)}; expected 1..200"
        assert page.next_cursor is not None, "limit=500 of 205 messages has no next_cursor"
        offset = query.decode_cursor(page.next_cursor)
        assert offset == 200, f"next_cursor of the capped page decodes to offset {offset}; expected 200"

    @rule("MSG-7")
    async def test_limit_zero_only_counts(self, store: ThreadRunStore) -> None:
        """limit=0 (even at offset 2) returns no records, has_more false, no cursors, total 6."""
        await _filtered_log(store)
        page = await store.list_message_records("t", MessageQuery(offset=2, limit=0))
        due = MessagePage(records=[], total=6, has_more=False, next_cursor=None, prev_cursor=None)
        assert page == due, f"list_message_records(offset=2, limit=0): {diff(page, due)}"

    @rule("MSG-7")
    async def test_unknown_thread_gives_an_empty_page(self, store: ThreadRunStore) -> None:
        """Listing the records of a thread that has no log returns an empty page with total 0."""
        page = await store.list_message_records("ghost", MessageQuery())
        due = MessagePage(records=[], total=0, has_more=False, next_cursor=None, prev_cursor=None)
        assert page == due, f"list_message_records of a thread with no log: {diff(page, due)}"

    @rule("MSG-8")
    @pytest.mark.parametrize(
        ("from_seq", "to_seq", "expected"),
        [(2, 4, [2, 3, 4]), (3, 3, [3]), (4, 10, [4, 5]), (6, 9, [])],
        ids=["inner", "single", "past-the-end", "beyond"],
    )
    async def test_range_is_inclusive(
        self, store: ThreadRunStore, from_seq: int, to_seq: int, expected: list[int]
    ) -> None:
        """Of five messages, [2, 4] gives 2, 3, 4; [3, 3] gives 3; [4, 10] gives 4, 5; [6, 9] none."""
        await log(store, "t", "m1", "m2", "m3", "m4", "m5")
        records = await store.load_message_records_range("t", MessageSeqRange(from_seq=from_seq, to_seq=to_seq))
        found, due = [(r.seq, r.message_id) for r in records], [(seq, f"m{seq}") for seq in expected]
        assert found == due, (
            f"load_message_records_range [{from_seq}, {to_seq}] gives (seq, id) {found}; expected {due}"
        )

    @rule("MSG-8")
    @pytest.mark.parametrize("to_seq", [2**63, 2**64], ids=["2**63", "2**64"])
    async def test_range_to_past_64_bits_reaches_the_end(self, store: ThreadRunStore, to_seq: int) -> None:
        """A range from 2 to 2**63 (or more) gives seqs 2..5 of five messages: the bound is a number like any."""
        await log(store, "t", "m1", "m2", "m3", "m4", "m5")
        records = await store.load_message_records_range("t", MessageSeqRange(from_seq=2, to_seq=to_seq))
        seqs = [r.seq for r in records]
        assert seqs == [2, 3, 4, 5], (
            f"load_message_records_range [2, {to_seq}] gives seqs {seqs}; expected [2, 3, 4, 5]"
        )

    @rule("MSG-8")
    async def test_unknown_message_record_is_none(self, store: ThreadRunStore) -> None:
        """load_message_record of an id never committed, or on a thread without log, gives None."""
        await log(store, "t", "m1")
        for thread_id, message_id in [("t", "nope"), ("ghost", "m1")]:
            found = await store.load_message_record(thread_id, message_id)
            assert found is None, (
                f"load_message_record({thread_id!r}, {message_id!r}) gives {named(found)}; expected None"
            )

    @rule("VIEW-1")
    async def test_answered_tool_call_is_kept(self, store: ThreadRunStore) -> None:
        """A call answered by a visible result stays, and so does its result."""
        exchange = [user("u1"), assistant("a1", calls=["c1"]), tool("t1", "c1")]
        await log(store, "t", *exchange)
        view = await store.load_messages("t")
        assert view == exchange, f"load_messages('t') of an answered call: {diff(view, exchange)}"

    @rule("VIEW-1")
    async def test_unanswered_tool_call_is_stripped(self, store: ThreadRunStore) -> None:
        """Of calls c1 and c2, only answered c1 stays on the message."""
        await log(store, "t", assistant("a1", calls=["c1", "c2"]), tool("t1", "c1"))
        expected = [assistant("a1", calls=["c1"]), tool("t1", "c1")]
        view = await store.load_messages("t")
        assert view == expected, f"load_messages('t') with c2 unanswered: {diff(view, expected)}"

    @rule("VIEW-1")
    async def test_message_left_without_calls_gets_none(self, store: ThreadRunStore) -> None:
        """An assistant whose only call is unanswered reads back with tool_calls None."""
        await log(store, "t", user("u1"), assistant("a1", calls=["c1"]))
        view, due = await store.load_messages("t"), [user("u1"), assistant("a1")]
        assert view == due, f"load_messages('t') with the only call unanswered: {diff(view, due)}"

    @rule("VIEW-1")
    async def test_internal_result_retracts_its_call(self, store: ThreadRunStore) -> None:
        """An internal result for c1 removes call c1, its visible result and itself; c2 and its result stay."""
        await log(
            store,
            "t",
            assistant("a1", calls=["c1", "c2"]),
            tool("t1", "c1"),
            tool("t2", "c2"),
            tool("x1", "c1", internal=True),
        )
        view, due = await store.load_messages("t"), [assistant("a1", calls=["c2"]), tool("t2", "c2")]
        assert view == due, f"load_messages('t') with c1 retracted: {diff(view, due)}"

    @rule("VIEW-1")
    async def test_orphan_tool_result_is_dropped(self, store: ThreadRunStore) -> None:
        """A tool result answering a call no assistant made is not in the read view."""
        await log(store, "t", user("u1"), tool("o1", "nobody"), user("u2"))
        view, due = await store.load_messages("t"), [user("u1"), user("u2")]
        assert view == due, f"load_messages('t') with an orphan tool result: {diff(view, due)}"

    @rule("VIEW-1")
    async def test_empty_call_list_stays_raw_and_reads_as_none(self, store: ThreadRunStore) -> None:
        """An assistant committed with tool_calls=[] keeps [] in the raw log and reads back with None.

        That the append is accepted is MOD-3's business: a store that refuses it breaks
        that rule, which this test then blames; VIEW-1 is not checked past it.
        """
        try:
            with answering("MOD-3"):
                await log(store, "t", "u1", _no_calls("a1"))
        except ValidationError as error:
            raise BrokenCall("MOD-3", f"an assistant with tool_calls=[] was refused: {error!r}") from error
        raw, appended = await store.load_committed_messages("t"), [user("u1"), _no_calls("a1")]
        expect(
            raw == appended, "VIEW-1", f"load_committed_messages('t') is not the log as appended: {diff(raw, appended)}"
        )
        view, due = await store.load_messages("t"), [user("u1"), assistant("a1")]
        expect(view == due, "VIEW-1", f"load_messages('t') must read tool_calls [] as None: {diff(view, due)}")

    @rule("VIEW-1")
    async def test_committed_messages_stay_raw(self, store: ThreadRunStore) -> None:
        """load_committed_messages returns every message as appended, stripped calls and dropped results too."""
        await log(store, "t", *_mixed())
        raw = await store.load_committed_messages("t")
        assert raw == _mixed(), f"load_committed_messages('t') is not the log as appended: {diff(raw, _mixed())}"
        ids = _ids(await store.load_messages("t"))
        assert ids == ["u1", "a1", "s1", "u2"], f"load_messages('t') holds {ids}; expected ['u1', 'a1', 's1', 'u2']"

    @rule("VIEW-2")
    async def test_summary_replaces_its_interval_at_its_start(self, store: ThreadRunStore) -> None:
        """[m1..m4, s(2, 3)] resumes as [m1, s, m4]: s takes the place of m2 and leaves seq 5."""
        await log(store, "t", "m1", "m2", "m3", "m4", system("s", summary_of=(2, 3)))
        checkpoint = await store.load_checkpoint("t")
        assert checkpoint is not None, "load_checkpoint('t') gives None for a thread with messages"
        due = [user("m1"), system("s", summary_of=(2, 3)), user("m4")]
        assert checkpoint.messages == due, f"load_checkpoint('t').messages: {diff(checkpoint.messages, due)}"

    @rule("VIEW-2")
    @pytest.mark.parametrize("wide_first", [True, False], ids=["wide-first", "narrow-first"])
    async def test_wider_summary_wins(self, store: ThreadRunStore, wide_first: bool) -> None:
        """With summaries of [1, 4] and [2, 3], in either order, only the summary of [1, 4] remains."""
        wide, narrow = system("wide", summary_of=(1, 4)), system("narrow", summary_of=(2, 3))
        await log(store, "t", "m1", "m2", "m3", "m4", *([wide, narrow] if wide_first else [narrow, wide]), "m7")
        checkpoint = await store.load_checkpoint("t")
        assert checkpoint is not None, "load_checkpoint('t') gives None for a thread with messages"
        ids = _ids(checkpoint.messages)
        assert ids == ["wide", "m7"], f"load_checkpoint('t').messages hold {ids}; expected ['wide', 'm7']"

    @rule("VIEW-2")
    async def test_disjoint_summaries_both_stay(self, store: ThreadRunStore) -> None:
        """Summaries of [1, 2] and [4, 5] each replace their own interval; m3 stays between them."""
        await log(store, "t", "m1", "m2", "m3", "m4", "m5", system("s1", summary_of=(1, 2)))
        await log(store, "t", system("s2", summary_of=(4, 5)))
        checkpoint = await store.load_checkpoint("t")
        assert checkpoint is not None, "load_checkpoint('t') gives None for a thread with messages"
        ids = _ids(checkpoint.messages)
        assert ids == ["s1", "m3", "s2"], f"load_checkpoint('t').messages hold {ids}; expected ['s1', 'm3', 's2']"

    @rule("VIEW-2")
    async def test_identical_intervals_keep_the_earlier_summary(self, store: ThreadRunStore) -> None:
        """Summaries s4 and s5 both of [2, 3]: s4 (the lower seq) takes the interval, s5 disappears."""
        twins = [system("s4", summary_of=(2, 3)), system("s5", summary_of=(2, 3))]
        await log(store, "t", "m1", "m2", "m3", *twins, "m6")
        checkpoint = await store.load_checkpoint("t")
        assert checkpoint is not None, "load_checkpoint('t') gives None for a thread with messages"
        ids = _ids(checkpoint.messages)
        assert ids == ["m1", "s4", "m6"], f"load_checkpoint('t').messages hold {ids}; expected ['m1', 's4', 'm6']"

    @rule("VIEW-2")
    @pytest.mark.parametrize("earlier_starts_first", [True, False], ids=["earlier-starts-first", "later-starts-first"])
    async def test_partly_overlapping_summaries_both_stay(
        self, store: ThreadRunStore, earlier_starts_first: bool
    ) -> None:
        """Summaries of [2, 4] and [3, 5] both stay, in order of their start, and m2..m5 all go."""
        spans = [(2, 4), (3, 5)] if earlier_starts_first else [(3, 5), (2, 4)]
        summaries = [system(f"s{seq}", summary_of=span) for seq, span in zip((6, 7), spans, strict=True)]
        await log(store, "t", "m1", "m2", "m3", "m4", "m5", *summaries, "m8")
        checkpoint = await store.load_checkpoint("t")
        assert checkpoint is not None, "load_checkpoint('t') gives None for a thread with messages"
        by_start = ["s6", "s7"] if earlier_starts_first else ["s7", "s6"]
        ids, due = _ids(checkpoint.messages), ["m1", *by_start, "m8"]
        assert ids == due, f"load_checkpoint('t').messages hold {ids}; expected {due}"

    @rule("VIEW-2", "CKP-5")
    async def test_message_version_stays_the_raw_length(self, store: ThreadRunStore) -> None:
        """Folding seven messages into two (VIEW-2) still reports version 7 (CKP-5), without any run."""
        await log(store, "t", "m1", "m2", "m3", "m4", "m5", system("s", summary_of=(1, 5)), "m7")
        checkpoint = await store.load_checkpoint("t")
        assert checkpoint is not None, "load_checkpoint('t') gives None for a thread with messages"
        folded = _ids(checkpoint.messages)
        expect(folded == ["s", "m7"], "VIEW-2", f"the checkpoint's messages are {folded!r}, expected ['s', 'm7']")
        version = checkpoint.message_version
        expect(version == 7, "CKP-5", f"message_version is {version!r}, expected the raw log's length 7")
