"""In-memory pagination of threads, message records and runs (QRY-1..5, CUR-4, THR-5, MSG-7, RUN-4, SEC-1).

The functions under test are the pure helpers `paginate_threads`,
`paginate_thread_ids`, `paginate_message_records`, `paginate_runs` and `PageWindow`;
every expectation below is written out from SPEC sections 4, 6, 7 and 8.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conformance import (
    InvalidCursorError,
    Message,
    MessageMetadata,
    MessageOrder,
    MessagePage,
    MessageQuery,
    MessageRecord,
    MessageVisibilityFilter,
    PageWindow,
    Role,
    RunQuery,
    RunRecord,
    RunStatus,
    Thread,
    ThreadMetadata,
    ThreadPage,
    ThreadParentFilter,
    ThreadQuery,
    Visibility,
    paginate_message_records,
    paginate_runs,
    paginate_thread_ids,
    paginate_threads,
)

# --- builders --------------------------------------------------------------------------


def thread(
    thread_id: str,
    updated: int | None = None,
    created: int | None = None,
    *,
    resource: str | None = None,
    parent: str | None = None,
) -> Thread:
    """A thread with the given activity stamps (ms) and lineage."""
    return Thread(
        id=thread_id,
        resource_id=resource,
        parent_thread_id=parent,
        metadata=ThreadMetadata(created_at=created, updated_at=updated),
    )


def record(seq: int, *, run: str | None = None, internal: bool = False) -> MessageRecord:
    """The record of message `m{seq}` at `seq`, produced by `run`, optionally internal."""
    message = Message(
        id=f"m{seq}",
        role=Role.USER,
        content=[{"type": "text", "text": str(seq)}],
        visibility=Visibility.INTERNAL if internal else Visibility.ALL,
        metadata=MessageMetadata(run_id=run) if run is not None else None,
    )
    return MessageRecord.from_message("t1", seq, message)


def run(run_id: str, thread_id: str = "t1", created: int = 0, status: RunStatus = RunStatus.CREATED) -> RunRecord:
    """A run record created at `created` (s)."""
    return RunRecord(
        run_id=run_id,
        thread_id=thread_id,
        agent_id="agent",
        status=status,
        created_at=created,
        updated_at=created,
        finished_at=created if status is RunStatus.DONE else None,
    )


def seqs(page: MessagePage) -> list[int]:
    return [r.seq for r in page.records]


def five_threads() -> list[Thread]:
    """t0..t4, t0 most recent: THR-5 order is t0, t1, t2, t3, t4."""
    return [thread(f"t{i}", updated=100 - i) for i in range(5)]


FIVE = ["t0", "t1", "t2", "t3", "t4"]


def check_cursors(
    page: ThreadPage | MessagePage, query: ThreadQuery | MessageQuery, next_offset: int | None, prev: int | None
) -> None:
    """Assert the page's cursors are present exactly when expected and decode to the offsets given."""
    if next_offset is None:
        assert page.next_cursor is None
    else:
        assert page.next_cursor is not None
        assert query.decode_cursor(page.next_cursor) == next_offset
    if prev is None:
        assert page.prev_cursor is None
    else:
        assert page.prev_cursor is not None
        assert query.decode_cursor(page.prev_cursor) == prev


# --- threads: windows ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("offset", "limit", "items", "has_more", "next_offset", "prev"),
    [
        (0, 2, ["t0", "t1"], True, 2, None),
        (2, 2, ["t2", "t3"], True, 4, 0),
        (3, 2, ["t3", "t4"], False, None, 1),
        (4, 2, ["t4"], False, None, 2),
        (1, 3, ["t1", "t2", "t3"], True, 4, 0),
        (0, 5, FIVE, False, None, None),
        (0, 50, FIVE, False, None, None),
        (5, 2, [], False, None, 3),
        (9, 2, [], False, None, 3),
        (7, 10, [], False, None, 0),
        (1000, 1, [], False, None, 4),
    ],
)
def test_thread_page_window(
    offset: int, limit: int, items: list[str], has_more: bool, next_offset: int | None, prev: int | None
) -> None:
    """QRY-3, QRY-4: items are [min(offset, total), +limit); has_more/next/prev as QRY-4, past the end too."""
    query = ThreadQuery(offset=offset, limit=limit)
    page = paginate_threads(five_threads(), query)
    assert page.items == items
    assert page.total == 5
    assert page.has_more is has_more
    check_cursors(page, query, next_offset, prev)


@pytest.mark.parametrize(
    ("offset", "limit", "total", "start", "end", "has_more"),
    [
        (0, 2, 5, 0, 2, True),
        (3, 2, 5, 3, 5, False),
        (4, 2, 5, 4, 5, False),
        (9, 2, 5, 5, 5, False),
        (0, 0, 5, 0, 0, False),
        (0, 3, 0, 0, 0, False),
    ],
)
def test_page_window_bounds(offset: int, limit: int, total: int, start: int, end: int, has_more: bool) -> None:
    """QRY-3: a page is matches[min(offset, total) : +limit]; has_more iff matches remain after it (not at limit 0)."""
    window = PageWindow(offset=offset, limit=limit, total=total)
    assert (window.start, window.end, window.has_more) == (start, end, has_more)


@pytest.mark.parametrize(
    ("offset", "limit", "next_offset", "prev"),
    [(0, 2, 2, None), (3, 2, None, 1), (1, 3, 4, 0), (9, 2, None, 3), (2, 0, None, None)],
)
def test_page_window_cursors(offset: int, limit: int, next_offset: int | None, prev: int | None) -> None:
    """QRY-4 over 5 matches: next at `end` when more remain, prev at max(start - limit, 0) past the first page."""
    query = ThreadQuery(offset=offset, limit=limit)
    next_cursor, prev_cursor = PageWindow(offset=offset, limit=limit, total=5).cursors(query)
    check_cursors(ThreadPage(next_cursor=next_cursor, prev_cursor=prev_cursor), query, next_offset, prev)


class _SliceOnly(list[str]):
    """Ordered ids that may be measured and sliced, but not walked whole (as a large index would be)."""

    def __iter__(self) -> Iterator[str]:
        raise AssertionError("paginate_thread_ids walked every id instead of slicing the page")


@pytest.mark.parametrize(("offset", "limit", "items"), [(0, 2, ["t4", "t3"]), (3, 5, ["t1", "t0"]), (7, 2, [])])
def test_paginate_thread_ids_cuts_the_page_in_the_given_order(offset: int, limit: int, items: list[str]) -> None:
    """QRY-3: the ids are taken as already filtered and ordered; only the page is sliced out."""
    ordered = _SliceOnly(reversed(FIVE))
    page = paginate_thread_ids(ordered, ThreadQuery(offset=offset, limit=limit))
    assert (page.items, page.total) == (items, 5)


def test_paginate_thread_ids_normalizes_the_query() -> None:
    """QRY-1: the query is normalized first (limit capped at 200), and its cursors carry its filters."""
    ids = [f"t{i:03}" for i in range(250)]
    query = ThreadQuery(limit=500, resource_id=" r ")
    page = paginate_thread_ids(ids, query)
    assert len(page.items) == 200
    assert page.next_cursor is not None
    assert ThreadQuery(resource_id="r").decode_cursor(page.next_cursor) == 200


def test_paginate_threads_equals_paginate_thread_ids_after_sorting() -> None:
    """`paginate_threads` is filtering and THR-5 order, then `paginate_thread_ids`."""
    query = ThreadQuery(offset=1, limit=2)
    assert paginate_threads(reversed(five_threads()), query) == paginate_thread_ids(FIVE, query)


@pytest.mark.parametrize("offset", [0, 2, 5, 9])
def test_thread_limit_zero(offset: int) -> None:
    """QRY-5: limit 0 gives no items, has_more false, no cursors, the correct total."""
    page = paginate_threads(five_threads(), ThreadQuery(offset=offset, limit=0))
    assert page.items == []
    assert page.total == 5
    assert page.has_more is False
    assert page.next_cursor is None
    assert page.prev_cursor is None


def test_thread_page_of_empty_set() -> None:
    """QRY-3, QRY-4: no matches: empty page, total 0, no cursors even for a large offset."""
    for offset in (0, 4):
        page = paginate_threads([], ThreadQuery(offset=offset, limit=3))
        assert (page.items, page.total, page.has_more) == ([], 0, False)
        assert page.next_cursor is None
        assert page.prev_cursor is None


def test_thread_limit_is_capped_at_200() -> None:
    """QRY-1, QRY-4: limit 500 returns 200 items and a next cursor to offset 200."""
    threads = [thread(f"t{i:03}", updated=1) for i in range(250)]
    query = ThreadQuery(limit=500)
    page = paginate_threads(threads, query)
    assert page.items == [f"t{i:03}" for i in range(200)]
    assert page.total == 250
    assert page.has_more is True
    check_cursors(page, query, 200, None)
    last = paginate_threads(threads, ThreadQuery(offset=200, limit=500))
    assert last.items == [f"t{i:03}" for i in range(200, 250)]
    assert last.has_more is False
    # prev goes back by the capped limit: max(200 - 200, 0).
    check_cursors(last, query, None, 0)


# --- threads: order (THR-5) ------------------------------------------------------------


def test_threads_order_by_recent_activity_then_id() -> None:
    """THR-5, QRY-3: updated_at (else created_at, else 0) descending, then id ascending."""
    threads = [
        thread("b", updated=10),
        thread("a", updated=10),
        thread("c", updated=None, created=30),  # falls back to created_at = 30
        thread("d", updated=20, created=5),  # updated_at wins over created_at
        thread("e", updated=0, created=999),  # updated_at 0 is present: it counts as 0
        thread("f"),  # neither: 0
        thread("0", updated=None, created=None),  # 0, and "0" < "e" < "f"
        thread("g", updated=-5),
    ]
    page = paginate_threads(threads, ThreadQuery(limit=200))
    assert page.items == ["c", "d", "a", "b", "0", "e", "f", "g"]


def test_thread_ties_are_ordered_by_id_whatever_the_input_order() -> None:
    """THR-5: equal activity is broken by id ascending, independent of the input order."""
    ids = ["t9", "t10", "T1", "t1", "a%", "a_"]
    expected = sorted(ids)
    for rotation in range(len(ids)):
        rotated = ids[rotation:] + ids[:rotation]
        page = paginate_threads([thread(i, updated=7) for i in rotated], ThreadQuery())
        assert page.items == expected


# --- threads: filters (QRY-2, SEC-1) ---------------------------------------------------

PREFIX_IDS = ["a%b", "a_b", "axb", "a\\b", "a*b", "ab", "b%", "A%b"]


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        ("a%", ["a%b"]),
        ("a_", ["a_b"]),
        ("a\\", ["a\\b"]),
        ("a*", ["a*b"]),
        ("a", ["a%b", "a*b", "a\\b", "a_b", "ab", "axb"]),
        ("%", []),
        ("_", []),
        ("*", []),
        ("A%", ["A%b"]),
        ("a%b", ["a%b"]),
        ("a%bc", []),
    ],
)
def test_thread_id_prefix_is_literal(prefix: str, expected: list[str]) -> None:
    """QRY-2, SEC-1: id_prefix is a literal, case-sensitive prefix; % _ \\ * mean nothing special."""
    threads = [thread(i, updated=1) for i in PREFIX_IDS]
    page = paginate_threads(threads, ThreadQuery(id_prefix=prefix))
    assert page.items == sorted(expected)
    assert page.total == len(expected)


@given(
    ids=st.lists(st.text(alphabet="ab%_\\*.é", min_size=1, max_size=5), unique=True, max_size=30),
    prefix=st.text(alphabet="ab%_\\*.é", max_size=3),
)
def test_thread_id_prefix_never_leaks(ids: list[str], prefix: str) -> None:
    """SEC-1, QRY-2: exactly the threads whose id starts with the prefix are returned."""
    page = paginate_threads([thread(i) for i in ids], ThreadQuery(limit=200, id_prefix=prefix))
    assert sorted(page.items) == sorted(i for i in ids if i[: len(prefix)] == prefix)


def test_resource_filter_is_normalized() -> None:
    """QRY-1, QRY-2: the filter and each thread's resource_id are compared after stripping whitespace."""
    threads = [
        thread("t1", resource="r"),
        thread("t2", resource="  r "),
        thread("t3", resource="r2"),
        thread("t4"),
        thread("t5", resource="   "),
        thread("t6", resource="R"),
    ]
    for filter_value in ("r", " r", "\tr  "):
        page = paginate_threads(threads, ThreadQuery(resource_id=filter_value))
        assert page.items == ["t1", "t2"]
        assert page.total == 2
    # A blank filter is no filter.
    assert paginate_threads(threads, ThreadQuery(resource_id="  ")).total == 6


def lineage_threads() -> list[Thread]:
    return [
        thread("t1"),
        thread("t2", parent="   "),  # a blank parent is no parent
        thread("t3", parent="p"),
        thread("t4", parent=" p "),
        thread("t5", parent="q"),
        thread("t6", parent="p2"),
    ]


@pytest.mark.parametrize(
    ("parent_filter", "expected"),
    [
        (ThreadParentFilter.any(), ["t1", "t2", "t3", "t4", "t5", "t6"]),
        (ThreadParentFilter.root(), ["t1", "t2"]),
        (ThreadParentFilter.parent("p"), ["t3", "t4"]),
        (ThreadParentFilter.parent("  p\t"), ["t3", "t4"]),
        (ThreadParentFilter.parent("q"), ["t5"]),
        (ThreadParentFilter.parent("zz"), []),
        (ThreadParentFilter.parent(" "), ["t1", "t2", "t3", "t4", "t5", "t6"]),
        (ThreadParentFilter.parent(""), ["t1", "t2", "t3", "t4", "t5", "t6"]),
    ],
)
def test_parent_filters(parent_filter: ThreadParentFilter, expected: list[str]) -> None:
    """QRY-1, QRY-2: root() = no normalized parent; parent(p) = normalized parent equals p; parent(" ") = any."""
    page = paginate_threads(lineage_threads(), ThreadQuery(parent_filter=parent_filter))
    assert page.items == expected
    assert page.total == len(expected)


def test_filters_combine_and_total_counts_matches_only() -> None:
    """QRY-2, QRY-3: all filters apply together; total counts the matches, not the thread set."""
    threads = [
        thread("a1", updated=5, resource="r", parent="p"),
        thread("a2", updated=6, resource="r", parent="p"),
        thread("a3", updated=7, resource="r"),
        thread("b1", updated=8, resource="r", parent="p"),
        thread("a4", updated=9, resource="s", parent="p"),
    ]
    query = ThreadQuery(limit=1, resource_id="r", parent_filter=ThreadParentFilter.parent("p"), id_prefix="a")
    page = paginate_threads(threads, query)
    assert page.items == ["a2"]
    assert page.total == 2
    assert page.has_more is True
    check_cursors(page, query, 1, None)


def test_next_cursor_is_bound_to_filtered_query() -> None:
    """CUR-2, SEC-1: the next cursor of a filtered page is refused by a query with a wider prefix."""
    threads = [thread(f"a{i}") for i in range(4)] + [thread(f"b{i}") for i in range(4)]
    query = ThreadQuery(limit=2, id_prefix="a")
    page = paginate_threads(threads, query)
    assert page.items == ["a0", "a1"]
    assert page.next_cursor is not None
    for wider in (ThreadQuery(limit=2), ThreadQuery(limit=2, id_prefix=""), ThreadQuery(limit=2, id_prefix="b")):
        with pytest.raises(InvalidCursorError):
            wider.decode_cursor(page.next_cursor)


# --- threads: walking cursors (CUR-4) --------------------------------------------------


@st.composite
def thread_sets(draw: st.DrawFn) -> list[Thread]:
    ids = draw(st.lists(st.text(alphabet="abc%_", min_size=1, max_size=3), unique=True, max_size=25))
    stamps = st.none() | st.integers(min_value=0, max_value=4)
    parents = st.sampled_from([None, "p", " p", "  ", "q"])
    resources = st.sampled_from([None, "r", " r ", "s"])
    return [thread(i, draw(stamps), draw(stamps), resource=draw(resources), parent=draw(parents)) for i in ids]


def expected_order(threads: list[Thread], query: ThreadQuery) -> list[str]:
    """THR-5 order of the QRY-2 matches, written from the spec."""

    def norm(value: str | None) -> str | None:
        return value.strip() or None if value is not None else None

    def keep(t: Thread) -> bool:
        if query.id_prefix is not None and not t.id.startswith(query.id_prefix):
            return False
        if norm(query.resource_id) is not None and norm(t.resource_id) != norm(query.resource_id):
            return False
        kind = query.parent_filter.kind
        wanted = norm(query.parent_filter.parent_id)
        if kind == "root":
            return norm(t.parent_thread_id) is None
        if kind == "parent" and wanted is not None:
            return norm(t.parent_thread_id) == wanted
        return True

    def stamp(t: Thread) -> int:
        if t.metadata.updated_at is not None:
            return t.metadata.updated_at
        return t.metadata.created_at if t.metadata.created_at is not None else 0

    return [t.id for t in sorted((t for t in threads if keep(t)), key=lambda t: (-stamp(t), t.id))]


FILTER_CHOICES = [
    ThreadQuery(),
    ThreadQuery(id_prefix="a"),
    ThreadQuery(id_prefix="a%"),
    ThreadQuery(resource_id=" r"),
    ThreadQuery(parent_filter=ThreadParentFilter.root()),
    ThreadQuery(parent_filter=ThreadParentFilter.parent("p ")),
    ThreadQuery(parent_filter=ThreadParentFilter.parent(" ")),
    ThreadQuery(resource_id="r", parent_filter=ThreadParentFilter.root(), id_prefix="b"),
]


@given(threads=thread_sets(), limit=st.integers(min_value=1, max_value=7), base=st.sampled_from(FILTER_CHOICES))
def test_following_cursors_visits_every_thread_once(threads: list[Thread], limit: int, base: ThreadQuery) -> None:
    """CUR-4, QRY-3, QRY-4: next_cursor from offset 0 visits each match once, in THR-5 order; prev walks back."""
    expected = expected_order(threads, base)
    query = replace(base, limit=limit)
    pages: list[list[str]] = []
    offset = 0
    last: ThreadPage | None = None
    for _ in range(len(expected) + 2):
        page = paginate_threads(threads, replace(query, offset=offset))
        assert page.total == len(expected)
        pages.append(page.items)
        last = page
        if page.next_cursor is None:
            assert page.has_more is False
            break
        assert page.has_more is True
        offset = query.decode_cursor(page.next_cursor)
    else:
        pytest.fail("next_cursor never ran out")
    assert [i for items in pages for i in items] == expected
    assert all(len(items) == limit for items in pages[:-1])
    # Walk back from the last page with prev_cursor: the same pages in reverse.
    assert last is not None
    back: list[list[str]] = []
    page = last
    while page.prev_cursor is not None:
        offset = query.decode_cursor(page.prev_cursor)
        page = paginate_threads(threads, replace(query, offset=offset))
        back.append(page.items)
    assert back == pages[-2::-1]


# --- message records (MSG-7) -------------------------------------------------------------


def ten_records() -> list[MessageRecord]:
    """Seqs 1..10; runs r1 (1-4), r2 (5-8), none (9-10); 3, 6, 9 internal. Given out of order."""
    records = [
        record(seq, run="r1" if seq <= 4 else "r2" if seq <= 8 else None, internal=seq in (3, 6, 9))
        for seq in range(1, 11)
    ]
    return records[5:] + records[:5]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (MessageQuery(), list(range(1, 11))),
        (MessageQuery(order=MessageOrder.DESC), list(range(10, 0, -1))),
        (MessageQuery(after=3), [4, 5, 6, 7, 8, 9, 10]),
        (MessageQuery(before=3), [1, 2]),
        (MessageQuery(after=2, before=8), [3, 4, 5, 6, 7]),
        (MessageQuery(after=5, before=6), []),
        (MessageQuery(after=0), list(range(1, 11))),
        (MessageQuery(before=1), []),
        (MessageQuery(run_id="r1"), [1, 2, 3, 4]),
        (MessageQuery(run_id="r2", order=MessageOrder.DESC), [8, 7, 6, 5]),
        (MessageQuery(run_id="r"), []),
        (MessageQuery(visibility=MessageVisibilityFilter.EXTERNAL), [1, 2, 4, 5, 7, 8, 10]),
        (MessageQuery(visibility=MessageVisibilityFilter.INTERNAL), [3, 6, 9]),
        (MessageQuery(visibility=MessageVisibilityFilter.ANY), list(range(1, 11))),
        (
            MessageQuery(after=1, before=9, run_id="r2", visibility=MessageVisibilityFilter.EXTERNAL),
            [5, 7, 8],
        ),
        (MessageQuery(after=1, run_id="r1", order=MessageOrder.DESC), [4, 3, 2]),
    ],
)
def test_message_filters_and_order(query: MessageQuery, expected: list[int]) -> None:
    """MSG-7: after (seq > after), before (seq < before), run_id, visibility, then order by seq."""
    page = paginate_message_records(ten_records(), replace(query, limit=200))
    assert seqs(page) == expected
    assert page.total == len(expected)
    assert page.has_more is False


@pytest.mark.parametrize(
    ("order", "offset", "limit", "expected", "has_more", "next_offset", "prev"),
    [
        (MessageOrder.ASC, 0, 3, [1, 2, 4], True, 3, None),
        (MessageOrder.ASC, 3, 3, [5, 7, 8], True, 6, 0),
        (MessageOrder.ASC, 6, 3, [10], False, None, 3),
        (MessageOrder.DESC, 0, 3, [10, 8, 7], True, 3, None),
        (MessageOrder.DESC, 5, 3, [2, 1], False, None, 2),
        (MessageOrder.DESC, 7, 3, [], False, None, 4),
        (MessageOrder.DESC, 50, 4, [], False, None, 3),
    ],
)
def test_message_page_window(
    order: MessageOrder,
    offset: int,
    limit: int,
    expected: list[int],
    has_more: bool,
    next_offset: int | None,
    prev: int | None,
) -> None:
    """MSG-7, QRY-3, QRY-4: the filtered, ordered records are paged like threads, with msg_ cursors."""
    query = MessageQuery(offset=offset, limit=limit, order=order, visibility=MessageVisibilityFilter.EXTERNAL)
    page = paginate_message_records(ten_records(), query)
    assert seqs(page) == expected
    assert page.total == 7
    assert page.has_more is has_more
    check_cursors(page, query, next_offset, prev)
    for cursor in (page.next_cursor, page.prev_cursor):
        assert cursor is None or cursor.startswith("msg_")


@pytest.mark.parametrize("offset", [0, 3, 10, 11])
def test_message_limit_zero(offset: int) -> None:
    """QRY-5, MSG-7: limit 0 gives no records, has_more false, no cursors, the correct total."""
    page = paginate_message_records(ten_records(), MessageQuery(offset=offset, limit=0, run_id="r1"))
    assert page.records == []
    assert page.total == 4
    assert page.has_more is False
    assert page.next_cursor is None
    assert page.prev_cursor is None


def test_message_limit_is_capped_at_200() -> None:
    """MSG-7, QRY-1: limit 1000 returns 200 records and a next cursor to offset 200."""
    records = [record(seq) for seq in range(1, 251)]
    query = MessageQuery(limit=1000, order=MessageOrder.DESC)
    page = paginate_message_records(records, query)
    assert seqs(page) == list(range(250, 50, -1))
    assert page.total == 250
    assert page.has_more is True
    check_cursors(page, query, 200, None)


def test_message_page_of_unknown_thread_is_empty() -> None:
    """MSG-7: no records give an empty page with total 0 and no cursors."""
    page = paginate_message_records([], MessageQuery(offset=3))
    assert (page.records, page.total, page.has_more, page.next_cursor, page.prev_cursor) == ([], 0, False, None, None)


@pytest.mark.parametrize("limit", range(1, 8))
@pytest.mark.parametrize("order", list(MessageOrder))
def test_following_message_cursors_visits_every_record_once(limit: int, order: MessageOrder) -> None:
    """CUR-4, MSG-7: next_cursor from offset 0 visits every matching record once, in order."""
    query = MessageQuery(limit=limit, order=order, after=1, visibility=MessageVisibilityFilter.EXTERNAL)
    expected = [2, 4, 5, 7, 8, 10]
    if order is MessageOrder.DESC:
        expected.reverse()
    visited: list[int] = []
    offset = 0
    for _ in range(20):
        page = paginate_message_records(ten_records(), replace(query, offset=offset))
        visited.extend(seqs(page))
        if page.next_cursor is None:
            break
        offset = query.decode_cursor(page.next_cursor)
    assert visited == expected


# --- runs (RUN-4) ------------------------------------------------------------------------


def run_set() -> list[RunRecord]:
    return [
        run("r3", "t%1", created=10),
        run("r1", "t_1", created=10, status=RunStatus.RUNNING),
        run("r2", "tx1", created=10, status=RunStatus.DONE),
        run("r0", "t%1", created=20, status=RunStatus.DONE),
        run("r9", "t\\1", created=5),
        run("t%9", "zz", created=1),  # its run_id looks like the prefix, its thread does not
    ]


def run_ids(runs: list[RunRecord]) -> list[str]:
    return [r.run_id for r in runs]


def test_runs_order_by_created_at_then_run_id() -> None:
    """RUN-4: created_at ascending, then run_id ascending; total counts all."""
    page = paginate_runs(run_set(), RunQuery())
    assert run_ids(page.items) == ["t%9", "r9", "r1", "r2", "r3", "r0"]
    assert page.total == 6
    assert page.has_more is False


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (RunQuery(thread_id="t%1"), ["r3", "r0"]),
        (RunQuery(thread_id="t"), []),
        (RunQuery(status=RunStatus.DONE), ["r2", "r0"]),
        (RunQuery(status=RunStatus.WAITING), []),
        (RunQuery(id_prefix="t%"), ["r3", "r0"]),
        (RunQuery(id_prefix="t_"), ["r1"]),
        (RunQuery(id_prefix="t\\"), ["r9"]),
        (RunQuery(id_prefix="t"), ["r9", "r1", "r2", "r3", "r0"]),
        (RunQuery(id_prefix="r"), []),
        (RunQuery(id_prefix="t%", status=RunStatus.CREATED), ["r3"]),
        (RunQuery(thread_id="tx1", id_prefix="t_"), []),
    ],
)
def test_run_filters(query: RunQuery, expected: list[str]) -> None:
    """RUN-4, SEC-1: thread_id, status and id_prefix (a literal prefix of the run's thread_id)."""
    page = paginate_runs(run_set(), query)
    assert run_ids(page.items) == expected
    assert page.total == len(expected)


@pytest.mark.parametrize(
    ("offset", "limit", "expected", "has_more"),
    [
        (0, 2, ["t%9", "r9"], True),
        (2, 2, ["r1", "r2"], True),
        (4, 2, ["r3", "r0"], False),
        (5, 2, ["r0"], False),
        (6, 2, [], False),
        (40, 2, [], False),
        (0, 0, ["t%9"], True),  # limit clamped up to 1
        (5, 0, ["r0"], False),
        (0, 6, ["t%9", "r9", "r1", "r2", "r3", "r0"], False),
    ],
)
def test_run_page_window(offset: int, limit: int, expected: list[str], has_more: bool) -> None:
    """RUN-4: limit clamped to [1, 200]; total counts all matches; has_more iff runs remain after the page."""
    page = paginate_runs(run_set(), RunQuery(offset=offset, limit=limit))
    assert run_ids(page.items) == expected
    assert page.total == 6
    assert page.has_more is has_more


def test_run_limit_is_capped_at_200() -> None:
    """RUN-4: a limit above 200 returns 200 runs."""
    runs = [run(f"r{i:03}", created=i) for i in range(250)]
    page = paginate_runs(runs, RunQuery(limit=1000))
    assert run_ids(page.items) == [f"r{i:03}" for i in range(200)]
    assert page.total == 250
    assert page.has_more is True
