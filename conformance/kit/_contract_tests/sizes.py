"""Contract tests past the sizes where backends switch strategy: seqs, pages and totals beyond 1,000.

The area tests stay under about 200 items, and a store can pass them all while its seqs
wrap after 1,000 (a three-digit counter), its pages break past some offset (a planner
that sorts ties one way for a small window and another for a large one, a look-ahead
of 1,000 rows) or its totals stop at 1,000 (`count(*)` over a `LIMIT 1000` subquery).
Each test here builds one fixture of 1,100 items and reads it past offset 1,000 in
pages of 200, the largest page a query gives (QRY-1, MSG-7, RUN-4). A log is written in
one `save_messages` call or a few large appends; threads and runs have no bulk write, so
they are saved one call after another, never concurrently: a store that does not
declare `concurrent_writers` may lose concurrent writes (CON-2).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from conformance.contract._enums import MessageOrder
from conformance.contract._errors import InvalidCursorError, StorageError
from conformance.contract._models import Message, MessageRecord, Thread
from conformance.contract._queries import MessagePage, MessageQuery, RunQuery, ThreadPage, ThreadQuery
from conformance.contract._runs import MessageSeqRange, RunRecord
from conformance.contract._stores import ThreadRunStore
from conformance.kit._runner import rule
from conformance.kit._scenarios import log, run, thread, user
from conformance.kit._violation import BrokenCall, RuleViolation, expect, present

#: Items in each large fixture: past 1,000, where backends change strategy, and not a round number of pages.
LONG = 1_100
#: The largest page a query returns (QRY-1, MSG-7, RUN-4).
PAGE = 200


def _differs(found: Sequence[object], due: Sequence[object], show: Callable[[object], str] = repr) -> str:
    """`found` against `due` in one line, short enough for a page of 200: the counts and the first item that differs."""
    pairs = enumerate(zip(found, due, strict=False))
    at = next((i for i, (one, other) in pairs if one != other), min(len(found), len(due)))
    got = show(found[at]) if at < len(found) else "nothing"
    wanted = show(due[at]) if at < len(due) else "nothing"
    if got == wanted:
        got += " (with other fields)"
    return f"{len(found)} items where {len(due)} are due; item {at} is {got}, expected {wanted}"


def _recent_first(saved: Thread) -> tuple[int, str]:
    """THR-5 order: updated_at, else created_at, else 0, descending; then id ascending."""
    stamp = saved.metadata.updated_at if saved.metadata.updated_at is not None else saved.metadata.created_at
    return (-(stamp or 0), saved.id)


async def _threads(store: ThreadRunStore, *, others: int = 0) -> list[str]:
    """Save threads t0000..t1099 of resource r and `others` s00.. of resource s; return all ids in THR-5 order.

    Three threads share each moment of activity (ties go by id), every other one has
    only a created_at (THR-5's fallback), and they are saved in an order that is neither
    THR-5's nor the ids' (a stride of 7, which shares no factor with the count).
    """
    saved = [
        thread(f"t{n:04d}", resource="r", updated_at=n // 3 if n % 2 else None, created_at=None if n % 2 else n // 3)
        for n in range(LONG)
    ]
    saved += [thread(f"s{n:02d}", resource="s", updated_at=n * 37 + 1) for n in range(others)]
    for index in range(len(saved)):
        await store.save_thread(saved[index * 7 % len(saved)])
    return [one.id for one in sorted(saved, key=_recent_first)]


async def _runs(store: ThreadRunStore, *, others: int = 0) -> list[str]:
    """Create runs r0000..r1099 of thread t, and `others` u00.. of thread u among them; return all ids in RUN-4 order.

    Four runs share each created_at and are written in descending run_id within it, so
    neither write order nor created_at alone gives RUN-4's order (created_at, then run_id).
    """
    made: list[RunRecord] = []
    for n in range(LONG):
        moment, place = divmod(n, 4)
        made.append(run(f"r{moment * 4 + 3 - place:04d}", "t", created_at=moment))
    made += [run(f"u{n:02d}", "u", created_at=n * 13) for n in range(others)]
    for record in made:
        await store.create_run(record)
    return [record.run_id for record in sorted(made, key=lambda r: (r.created_at, r.run_id))]


async def _long_log(store: ThreadRunStore) -> list[Message]:
    """Save m1..m1100 as the log of thread t, in one call; return the messages."""
    messages = [user(f"m{seq}") for seq in range(1, LONG + 1)]
    await store.save_messages("t", messages)
    return messages


def _offset(query: ThreadQuery | MessageQuery, cursor: str, what: str) -> int:
    """The offset the store's `cursor` holds under its own `query`.

    A cursor its own query refuses breaks what every cursor of every page keeps,
    whatever the test: it is a token of its query's filters (CUR-1, CUR-2), a bare
    offset only without filters (CUR-3). It blames those rules; the test's own are
    not checked past it.
    """
    try:
        return query.decode_cursor(cursor)
    except InvalidCursorError as error:
        rules = ("CUR-1", "CUR-3") if cursor.isdecimal() else ("CUR-1", "CUR-2")
        raise BrokenCall(rules, f"the store's {what} {cursor!r} is refused by its own query: {error}") from None


def _window(query: ThreadQuery | MessageQuery | RunQuery, total: int) -> slice:
    """The matches a page of `query` holds, of `total`: `[min(offset, total), +limit)` (QRY-3, MSG-7, RUN-4)."""
    start = min(query.offset, total)
    return slice(start, min(start + query.limit, total))


def _paging(call: str, query: ThreadQuery | MessageQuery, page: ThreadPage | MessagePage, total: int) -> int | None:
    """Check `has_more`, `next_cursor` and `prev_cursor` of a page of `total` matches (QRY-4, and MSG-7 for
    messages); return the offset its next_cursor holds, None on the last page."""
    rule_id = "QRY-4" if isinstance(page, ThreadPage) else "MSG-7"
    window = _window(query, total)
    expect(
        page.has_more == (window.stop < total),
        rule_id,
        f"{call} says has_more {page.has_more} with {total - window.stop} of {total} after it",
    )
    following = None
    if window.stop < total:
        cursor = present(page.next_cursor, rule_id, f"{call} has no next_cursor")
        following = _offset(query, cursor, "next_cursor")
        expect(following == window.stop, rule_id, f"{call}: next_cursor decodes to {following}, not {window.stop}")
    else:
        expect(page.next_cursor is None, rule_id, f"{call} ends at the last of {total} and still gives a next_cursor")
    if window.start > 0:
        cursor = present(page.prev_cursor, rule_id, f"{call} starts at {window.start} but has no prev_cursor")
        back = _offset(query, cursor, "prev_cursor")
        due = max(window.start - query.limit, 0)
        expect(back == due, rule_id, f"{call}: prev_cursor decodes to {back}, not {due}")
    else:
        expect(page.prev_cursor is None, rule_id, f"{call} starts at offset 0 and still gives a prev_cursor")
    return following


async def _thread_page(store: ThreadRunStore, query: ThreadQuery, matching: list[str]) -> None:
    """The page of `query` is its slice of `matching` (ids in THR-5 order) with their total (QRY-3), and has_more
    and cursors as QRY-4 says."""
    page = await store.list_threads_query(query)
    call = f"list_threads_query(offset={query.offset}, limit={query.limit}, resource_id={query.resource_id!r})"
    due = matching[_window(query, len(matching))]
    expect(page.items == due, "QRY-3", f"{call} gives {_differs(page.items, due)}")
    expect(page.total == len(matching), "QRY-3", f"{call} gives total {page.total}, expected {len(matching)}")
    _paging(call, query, page, len(matching))


async def _followed(store: ThreadRunStore, query: ThreadQuery) -> list[str]:
    """The ids met by following next_cursor from offset 0 of `query`, for at most two pages past the last match."""
    visited: list[str] = []
    offset = 0
    for _ in range(LONG // query.limit + 3):
        page = await store.list_threads_query(replace(query, offset=offset))
        visited += page.items
        if page.next_cursor is None:
            break
        offset = _offset(query, page.next_cursor, "next_cursor")
    return visited


async def _message_page(store: ThreadRunStore, query: MessageQuery, matching: list[int]) -> int | None:
    """Check the page of `query` on log t against `matching`, the seqs it matches in its order (MSG-7); return the
    offset its next_cursor holds, None on the last page."""
    page = await store.list_message_records("t", query)
    after = "" if query.after is None else f", after={query.after}"
    call = f"list_message_records('t', offset={query.offset}, limit={query.limit}, order={query.order.value}{after})"
    seqs = [record.seq for record in page.records]
    due = matching[_window(query, len(matching))]
    expect(seqs == due, "MSG-7", f"{call} gives seqs {_differs(seqs, due)}")
    expect(page.total == len(matching), "MSG-7", f"{call} gives total {page.total}, expected {len(matching)}")
    return _paging(call, query, page, len(matching))


async def _run_page(store: ThreadRunStore, query: RunQuery, matching: list[str]) -> None:
    """The page of `query` is its slice of `matching` (run ids in RUN-4 order), with their total and has_more."""
    page = await store.list_runs(query)
    call = f"list_runs(offset={query.offset}, limit={query.limit}, thread_id={query.thread_id!r})"
    window = _window(query, len(matching))
    found = [record.run_id for record in page.items]
    expect(found == matching[window], "RUN-4", f"{call} gives {_differs(found, matching[window])}")
    expect(page.total == len(matching), "RUN-4", f"{call} gives total {page.total}, expected {len(matching)}")
    more = window.stop < len(matching)
    expect(page.has_more == more, "RUN-4", f"{call} says has_more {page.has_more} ending at {window.stop}")


def _record(record: object) -> str:
    """A record as `seq 1001 of 'm1001'`, to name it in a failure."""
    __tracebackhide__ = True
    assert isinstance(record, MessageRecord), f"expected a MessageRecord, got {type(record).__name__} {record!r:.80}"
    return f"seq {record.seq} of {record.message_id!r}"


class SizeRules:
    """MSG-4, MSG-6..8, THR-5, QRY-3, QRY-4, CUR-4, RUN-4, CKP-4 and CKP-5 on 1,100 items, past offset 1,000."""

    @rule("THR-5")
    async def test_list_threads_pages_past_a_thousand(self, store: ThreadRunStore) -> None:
        """Of 1,100 threads, list_threads(950, 100), (1000, 200) and (1099, 5) give their slices of THR-5 order;
        (1100, 10) gives none."""
        ordered = await _threads(store)
        for offset, limit in [(950, 100), (1000, 200), (1099, 5), (1100, 10)]:
            found = await store.list_threads(offset, limit)
            due = ordered[offset : offset + limit]
            expect(found == due, "THR-5", f"list_threads({offset}, {limit}) gives {_differs(found, due)}")

    @rule("QRY-3", "QRY-4", "CUR-4")
    async def test_thread_pages_past_a_thousand_matches(self, store: ThreadRunStore) -> None:
        """1,100 threads of resource r among 1,110, by 200: offsets 800, 1,000 and 1,050 give their slices of the
        matches in THR-5 order and total 1,100 (QRY-3), has_more and a next_cursor only before the end, a
        prev_cursor 200 back (QRY-4); unfiltered, offset 1,000 gives the last 110 of 1,110 (QRY-3, QRY-4);
        following next_cursor from offset 0 visits the 1,100 matches once each, in order (CUR-4)."""
        everything = await _threads(store, others=10)
        matching = [thread_id for thread_id in everything if thread_id.startswith("t")]
        query = ThreadQuery(limit=PAGE, resource_id="r")
        for offset in (800, 1000, 1050):
            await _thread_page(store, replace(query, offset=offset), matching)
        await _thread_page(store, ThreadQuery(offset=1000, limit=PAGE), everything)
        visited = await _followed(store, query)
        expect(visited == matching, "CUR-4", f"following next_cursor by 200 visits {_differs(visited, matching)}")

    @rule("MSG-4")
    async def test_appends_past_a_thousand_continue_the_seqs(self, store: ThreadRunStore) -> None:
        """Appends of 500, 500, 99 and 1 messages return seqs 1-500, 501-1,000, 1,001-1,099 and 1,100; the log then
        holds all 1,100 in that order."""
        length = 0
        for size in (500, 500, 99, 1):
            ids = [f"m{seq}" for seq in range(length + 1, length + size + 1)]
            records = await log(store, "t", *ids)
            found = [(record.seq, record.message_id) for record in records]
            due = [(length + place, message_id) for place, message_id in enumerate(ids, start=1)]
            expect(found == due, "MSG-4", f"appending {size} to a log of {length} returns {_differs(found, due)}")
            length += size
        committed = [message.id for message in await store.load_committed_messages("t") or []]
        due_ids = [f"m{seq}" for seq in range(1, LONG + 1)]
        expect(committed == due_ids, "MSG-4", f"after the appends the log holds {_differs(committed, due_ids)}")

    @rule("MSG-6")
    async def test_records_past_a_thousand_keep_their_seqs(self, store: ThreadRunStore) -> None:
        """Of 1,100 messages saved in one call, every reader gives the record of seq n with the n-th message, past
        1,000 too: the whole log, the page at offset 1,000, the records of m1001 and m1100, the range 1,001-1,100."""
        messages = await _long_log(store)
        due = [MessageRecord.from_message("t", seq, message) for seq, message in enumerate(messages, start=1)]
        whole = await store.load_message_records("t") or []
        expect(whole == due, "MSG-6", f"load_message_records gives {_differs(whole, due, _record)}")
        for seq in (1001, 1100):
            found = await store.load_message_record("t", f"m{seq}")
            shown = "None" if found is None else _record(found)
            expect(found == due[seq - 1], "MSG-6", f"load_message_record of m{seq} gives {shown}, expected seq {seq}")
        page = await store.list_message_records("t", MessageQuery(offset=1000, limit=PAGE))
        ranged = await store.load_message_records_range("t", MessageSeqRange(from_seq=1001, to_seq=LONG))
        for reader, records in [("list_message_records at offset 1000", page.records), ("the range", ranged)]:
            for record in records:
                kept = 1 <= record.seq <= LONG and record == due[record.seq - 1]
                expect(kept, "MSG-6", f"{reader} gives {_record(record)}, which is not the record of that seq")

    @rule("MSG-7")
    async def test_message_pages_past_offset_a_thousand(self, store: ThreadRunStore) -> None:
        """Of 1,100 records by 200, next_cursor leads through six pages of seqs 1-200 to 1,001-1,100, each with total
        1,100, has_more and a next_cursor on all but the last and a prev_cursor 200 back; in desc order offset
        1,000 gives seqs 100 down to 1; after=50 from offset 1,000 gives seqs 1,051-1,100 of 1,050."""
        await _long_log(store)
        seqs = list(range(1, LONG + 1))
        offset: int | None = 0
        while offset is not None:
            offset = await _message_page(store, MessageQuery(offset=offset, limit=PAGE), seqs)
        await _message_page(store, MessageQuery(offset=1000, limit=PAGE, order=MessageOrder.DESC), seqs[::-1])
        await _message_page(store, MessageQuery(offset=1000, limit=PAGE, after=50), seqs[50:])

    @rule("MSG-8")
    async def test_ranges_near_the_end_of_a_long_log(self, store: ThreadRunStore) -> None:
        """Of 1,100 messages, [999, 1,002] gives the four around 1,000, [1,099, 1,100] the last two, [1,095, 5,000]
        the last six and [1,101, 1,200] none."""
        await _long_log(store)
        for first, last in [(999, 1002), (1099, 1100), (1095, 5000), (1101, 1200)]:
            records = await store.load_message_records_range("t", MessageSeqRange(from_seq=first, to_seq=last))
            found = [(record.seq, record.message_id) for record in records]
            due = [(seq, f"m{seq}") for seq in range(first, min(last, LONG) + 1)]
            expect(found == due, "MSG-8", f"load_message_records_range({first}, {last}) gives {_differs(found, due)}")

    @rule("RUN-4")
    async def test_list_runs_pages_past_a_thousand(self, store: ThreadRunStore) -> None:
        """1,100 runs of thread t among 1,120, four to each created_at: by 200, every page to offset 1,100 is its
        slice in created_at-then-run_id order with total 1,100 and has_more until the last; unfiltered, offset
        1,000 gives the last 120 of 1,120."""
        everything = await _runs(store, others=20)
        of_t = [run_id for run_id in everything if run_id.startswith("r")]
        for offset in [*range(0, LONG, PAGE), LONG]:
            await _run_page(store, RunQuery(offset=offset, limit=PAGE, thread_id="t"), of_t)
        await _run_page(store, RunQuery(offset=1000, limit=PAGE), everything)

    @rule("CKP-4", "CKP-5")
    async def test_versions_count_past_a_thousand(self, store: ThreadRunStore) -> None:
        """A log of 1,100 messages is version 1,100 (CKP-5); checkpoint_append of 100 more at that version returns
        1,200 (CKP-4); load_checkpoint then gives version 1,200 and all 1,200 messages (CKP-5)."""
        messages = await _long_log(store)
        before = await store.load_checkpoint("t")
        version = None if before is None else before.message_version
        expect(version == LONG, "CKP-5", f"load_checkpoint of a log of {LONG} gives version {version}")
        delta = [user(f"m{seq}") for seq in range(LONG + 1, LONG + 101)]
        try:
            appended = await store.checkpoint_append("t", delta, LONG, run("r1", "t"))
        except StorageError as error:
            raise RuleViolation("CKP-4", f"checkpoint_append at expected_version {LONG} raised {error!r}") from None
        expect(appended == LONG + 100, "CKP-4", f"checkpoint_append of 100 to {LONG} returns version {appended}")
        after = present(await store.load_checkpoint("t"), "CKP-5", "load_checkpoint gives None after the append")
        expect(after.message_version == LONG + 100, "CKP-5", f"load_checkpoint gives version {after.message_version}")
        found = [message.id for message in after.messages]
        due = [message.id for message in [*messages, *delta]]
        expect(found == due, "CKP-5", f"load_checkpoint's messages are {_differs(found, due)}")
