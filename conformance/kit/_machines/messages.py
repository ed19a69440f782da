"""State machine: the message log, versions and checkpoints against an independent model.

The machine keeps the raw committed log of each thread (a list of messages), which
threads have a record, and each thread's last checkpointed run. Everything the store
shows — raw log, records and seqs, the read view, the checkpoint's folded view and
version — is computed from those lists by `message_model`, written from SPEC
section 7 without the kit's message helpers, so the reference store is checked too.
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from hypothesis import note
from hypothesis import strategies as st
from hypothesis.stateful import invariant, precondition, rule

from conformance.contract._enums import MessageOrder, MessageVisibilityFilter, RunStatus, Visibility
from conformance.contract._errors import (
    InvalidCursorError,
    NotFoundError,
    StorageError,
    ValidationError,
    VersionConflictError,
)
from conformance.contract._models import Message, MessageRecord
from conformance.contract._queries import MessagePage, MessageQuery
from conformance.contract._runs import CheckpointSnapshot, MessageSeqRange, RunRecord
from conformance.contract._stores import ThreadRunStore
from conformance.kit._differ import diff
from conformance.kit._machines.message_model import (
    DELTAS,
    QUERIES,
    REUSED_IDS,
    THREADS,
    Draft,
    brief,
    delta_problem,
    folded,
    read_view,
    record_diff,
    records_of,
)
from conformance.kit._stateful import StoreMachine, stateful
from conformance.kit._violation import RuleViolation, expect, present

__all__ = ["MessageLogMachine", "MessageMachineRules"]

_T = TypeVar("_T")


def _decoded(query: MessageQuery, cursor: str | None) -> int | None:
    """The offset a page's cursor holds under the page's own query (MSG-7: `msg_` cursors)."""
    if cursor is None:
        return None
    try:
        return query.decode_cursor(cursor)
    except InvalidCursorError as error:
        raise RuleViolation("MSG-7", f"cursor {cursor!r} does not decode under its own query: {error}") from error


def no_created_at(records: Sequence[MessageRecord] | None, call: str) -> None:
    """MSG-6: no record carries `created_at` (a message holds no time to project it from).

    Checked before a page, range or record is compared with the model, so that a
    stamped record is blamed on MSG-6, not on the rule of the read that returned it.
    """
    stamped = [r.seq for r in records or () if r.created_at is not None]
    expect(not stamped, "MSG-6", f"{call} gave records carrying created_at at seqs {stamped}; records carry none")


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


async def _read(rule_ids: str | tuple[str, ...], call: str, read: Awaitable[_T]) -> _T:
    """Await one read of the machine's state, which is always valid: a `StorageError` breaks the read's `rule_ids`."""
    try:
        return await read
    except StorageError as error:
        raise RuleViolation(rule_ids, f"{call} raised {error!r} on a valid log") from error


async def observe(store: ThreadRunStore, lengths: dict[str, int], message_ids: Sequence[str]) -> dict[str, Observed]:
    """Read every thread of the machine through each message read the contract offers.

    A read that raises breaks the rules its check below names, not every rule of the
    machine; a records reader (records, pages, range, by id) breaks MSG-6: records are
    the committed log, whichever reader returns them.
    """
    seen = {}
    for thread_id, length in lengths.items():
        queries, bounds = probes(length)
        at = repr(thread_id)
        seen[thread_id] = Observed(
            exists=await _read(("MSG-2", "MSG-3"), f"load_thread({at})", store.load_thread(thread_id)) is not None,
            committed=await _read(
                ("MSG-1", "MSG-6"), f"load_committed_messages({at})", store.load_committed_messages(thread_id)
            ),
            view=await _read("VIEW-1", f"load_messages({at})", store.load_messages(thread_id)),
            records=await _read("MSG-6", f"load_message_records({at})", store.load_message_records(thread_id)),
            pages=[
                await _read("MSG-6", f"list_message_records({at}, {q!r})", store.list_message_records(thread_id, q))
                for q in queries
            ],
            ranged=await _read(
                "MSG-6",
                f"load_message_records_range({at}, {bounds!r})",
                store.load_message_records_range(thread_id, bounds),
            ),
            by_id={
                m: await _read("MSG-6", f"load_message_record({at}, {m!r})", store.load_message_record(thread_id, m))
                for m in message_ids
            },
            resumed=await _read("CKP-5", f"load_checkpoint({at})", store.load_checkpoint(thread_id)),
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

    def succeeds(self, rule_ids: str | tuple[str, ...], function: Callable[..., Awaitable[_T]], *args: Any) -> _T:
        """Call the store where the model expects success; a refusal breaks `rule_ids`."""
        try:
            return self.call(function, *args, rules=rule_ids)
        except StorageError as error:
            raise RuleViolation(rule_ids, f"{function.__name__} refused a valid call: {error!r}") from error

    def refused(
        self,
        rule_ids: str | tuple[str, ...],
        expected: type[StorageError],
        function: Callable[..., Awaitable[Any]],
        *args: Any,
    ) -> StorageError:
        """Call the store where the model expects `expected`; the whole state must stay as it was (ATO-1)."""
        before, caught, after = self.attempt(THREADS, rule_ids, function, *args)
        if not isinstance(caught, expected):
            outcome = "returned" if caught is None else f"raised {caught!r}"
            raise RuleViolation(rule_ids, f"{function.__name__} {outcome}, expected {expected.__name__}") from caught
        if after != before:
            raise RuleViolation(
                "ATO-1", f"{function.__name__} raised {caught!r} but changed the store: {diff(after, before)}"
            )
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
            self.refused(("MSG-5", "MOD-3"), ValidationError, self.store.append_message_records, thread, messages)
            return
        returned = self.succeeds("MSG-4", self.store.append_message_records, thread, messages)
        expected = records_of(thread, [*log, *messages])[len(log) :]
        no_created_at(returned, "append_message_records")
        expect(returned == expected, ("MSG-4", "MSG-6"), f"append returned {record_diff(returned, expected)}")
        log.extend(messages)
        self.last = (thread, messages)

    @precondition(lambda self: self.last is not None)
    @rule(through_checkpoint=st.booleans())
    def retry(self, through_checkpoint: bool) -> None:
        """Send the last appended delta again, as a client does after a timeout: nothing is appended (MSG-5)."""
        assert self.last is not None, "retry runs only after an append (its precondition)"
        thread, messages = self.last
        log = self.logs[thread]
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
            self.refused(("MSG-2", "MOD-3"), ValidationError, self.store.save_messages, thread, messages)
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
            self.refused(("CKP-1", "MOD-3"), ValidationError, self.store.checkpoint, thread, messages, run)
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
            assert isinstance(error, VersionConflictError), f"refused() gives back the error it expects, not {error!r}"
            expect(
                (error.expected, error.actual) == (expected, actual),
                "CKP-3",
                f"VersionConflictError({error.expected}, {error.actual}), "
                f"expected VersionConflictError({expected}, {actual})",
            )
            return
        problem = delta_problem(log, messages)
        if problem is not None:
            note(f"refused: {problem}")
            self.refused(("CKP-4", "MSG-5", "MOD-3"), ValidationError, append, thread, messages, expected, run)
            return
        new_version = self.succeeds("CKP-4", append, thread, messages, expected, run)
        expect(
            new_version == actual + len(messages),
            "CKP-4",
            f"checkpoint_append returned version {new_version}, the raw log now has {actual + len(messages)}",
        )
        log.extend(messages)
        self.threads.add(thread)
        self.latest[thread] = run
        self.last = (thread, messages)

    @rule(query=QUERIES, first=st.integers(1, 5), span=st.integers(0, 2))
    def list_records(self, query: MessageQuery, first: int, span: int) -> None:
        bounds = MessageSeqRange(from_seq=first, to_seq=first + span)
        for thread_id, (page, ranged) in self.succeeds(("MSG-7", "MSG-8"), queried, self.store, query, bounds).items():
            records = records_of(thread_id, self.logs.get(thread_id, []))
            self.check_page(query, records, page)
            expected = [r for r in records if first <= r.seq <= first + span]
            no_created_at(ranged, "load_message_records_range")
            expect(
                ranged == expected,
                "MSG-8",
                f"range [{first}, {first + span}] of {thread_id!r} gave {[r.seq for r in ranged]}",
            )

    @staticmethod
    def check_page(query: MessageQuery, records: list[MessageRecord], page: MessagePage) -> None:
        """MSG-7: filter, order by seq, window as QRY-3..5, with cursors to the next and previous pages."""
        no_created_at(page.records, "list_message_records")
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
        expect(
            (page.records, page.total) == (matching[start:end], len(matching)),
            "MSG-7",
            f"page {[r.seq for r in page.records]} of {page.total}, "
            f"expected {[r.seq for r in matching[start:end]]} of {len(matching)}",
        )
        has_more = limit > 0 and end < len(matching)
        expect(page.has_more == has_more, "MSG-7", f"has_more is {page.has_more}, expected {has_more}")
        following = _decoded(query, page.next_cursor)
        expect(following == (end if has_more else None), "MSG-7", f"next_cursor leads to {following}, not {end}")
        preceding = _decoded(query, page.prev_cursor)
        back = max(start - limit, 0) if limit > 0 and start > 0 else None
        expect(preceding == back, "MSG-7", f"prev_cursor leads to {preceding}, expected {back}")

    # ── the store equals the model ───────────────────────────────────

    @invariant()
    def store_matches_model(self) -> None:
        known = sorted({m.id for log in self.logs.values() for m in log if m.id} | {*REUSED_IDS, "m1", "unknown"})
        lengths = {thread_id: len(log) for thread_id, log in self.logs.items()}
        for thread_id, seen in self.call(observe, self.store, lengths, known).items():
            log = self.logs[thread_id]
            raw = log or None
            expect(
                seen.exists == (thread_id in self.threads), ("MSG-2", "MSG-3"), f"thread {thread_id!r} exists is wrong"
            )
            expect(
                seen.committed == raw,
                ("MSG-1", "MSG-6"),
                f"load_committed_messages({thread_id!r}) is {brief(seen.committed)}, expected {brief(raw)}",
            )
            view = read_view(log) if log else None
            expect(
                seen.view == view,
                "VIEW-1",
                f"load_messages({thread_id!r}) is {brief(seen.view)}, expected {brief(view)}",
            )
            records = records_of(thread_id, log)
            no_created_at(seen.records, "load_message_records")
            expect(
                seen.records == (records or None),
                "MSG-6",
                f"load_message_records({thread_id!r}): {record_diff(seen.records, records)}",
            )
            queries, bounds = probes(len(log))
            for query, page in zip(queries, seen.pages, strict=True):
                self.check_page(query, records, page)
            in_bounds = [r for r in records if bounds.from_seq <= r.seq <= bounds.to_seq]
            no_created_at(seen.ranged, "load_message_records_range")
            expect(
                seen.ranged == in_bounds,
                "MSG-8",
                f"range [{bounds.from_seq}, {bounds.to_seq}] of {thread_id!r} gave seqs {[r.seq for r in seen.ranged]}",
            )
            by_id = {r.message_id: r for r in records}
            for message_id, found in seen.by_id.items():
                no_created_at([found] if found else [], "load_message_record")
                expect(
                    found == by_id.get(message_id),
                    "MSG-8",
                    f"load_message_record({thread_id!r}, {message_id!r}): {diff(found, by_id.get(message_id))}",
                )
            self.check_resumed(thread_id, seen.resumed)

    def check_resumed(self, thread_id: str, resumed: CheckpointSnapshot | None) -> None:
        log = self.logs[thread_id]
        latest = self.latest.get(thread_id)
        if not log and latest is None:
            expect(resumed is None, "CKP-5", f"load_checkpoint({thread_id!r}) without messages and runs is not None")
            return
        resumed = present(resumed, "CKP-5", f"load_checkpoint({thread_id!r}) is None")
        expect(
            resumed.message_version == len(log),
            "CKP-5",
            f"message_version {resumed.message_version}, the raw log has {len(log)}",
        )
        resumed_view = read_view(folded(log))
        expect(
            resumed.messages == resumed_view,
            ("VIEW-2", "CKP-5"),
            f"load_checkpoint({thread_id!r}).messages is {brief(resumed.messages)}, expected the "
            f"folded read view {brief(resumed_view)} of the log {brief(log)}",
        )
        expect(
            resumed.latest_run == latest,
            "CKP-5",
            f"load_checkpoint({thread_id!r}).latest_run is not the last run: {diff(resumed.latest_run, latest)}",
        )
        expect(resumed.thread_state is None, "CKP-5", f"load_checkpoint({thread_id!r}) has a state none saved")


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
        "CKP-1",
        "CKP-2",
        "CKP-3",
        "CKP-4",
        "CKP-5",
        "MOD-3",
        "ATO-1",
    )
