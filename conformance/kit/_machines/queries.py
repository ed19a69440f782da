"""State machine: thread queries, pages and cursors against an independent model.

The model is a dict of what each saved thread shows a query: its normalized resource
and parent and its two timestamps. From it the machine computes, with its own code,
the order of recent activity (THR-5), the filters (QRY-2) and every page (QRY-3..5),
and checks the store's pages, totals, `has_more` and cursors against them. Cursors are
followed with `ThreadQuery.decode_cursor` only, never with the kit's pagination helpers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from hypothesis import note
from hypothesis import strategies as st
from hypothesis.stateful import precondition, rule

from conformance.contract._errors import InvalidCursorError
from conformance.contract._models import Thread, ThreadMetadata
from conformance.contract._queries import ThreadPage, ThreadParentFilter, ThreadQuery
from conformance.contract._stores import ThreadRunStore
from conformance.kit._stateful import StoreMachine, stateful
from conformance.kit._violation import RuleViolation, expect, present

__all__ = ["QueryMachine", "QueryMachineRules"]

#: Portable ids whose `%`, `_` and `\` a LIKE-based store would read as patterns.
IDS = ("a", "ab", "a_b", "axb", "a%", "a%c", "a\\b", "b")
#: Never saved: a parent that dangles, a filter that matches nothing.
MISSING = "zz"
#: How many extra threads the bulk rule saves: more than a page of 200 can hold, even filtered.
BULK = 205
MAX_LIMIT = 200
#: The most pages one walk reads: a walk over many threads pages with a larger limit.
MAX_PAGES = 25

RESOURCES = st.sampled_from([None, "r1", " r1 ", "r2"])
#: Filters are often absent, so that pages are long and the limit cap and cursors matter.
RESOURCE_FILTERS = st.one_of(st.none(), st.sampled_from(["r1", " r1 ", "  ", "r2", MISSING]))
PREFIXES = st.one_of(st.none(), st.sampled_from(["", "a", "a_", "a%", "a\\", "%", "_", "\\", "b", "z", "z1", MISSING]))
PARENT_FILTERS = st.sampled_from(
    [
        ThreadParentFilter.any(),
        ThreadParentFilter.any(),
        ThreadParentFilter.root(),
        *(ThreadParentFilter.parent(p) for p in ("a", "ab", "b", MISSING, "   ")),
    ]
)
OFFSETS = st.one_of(st.integers(0, 12), st.sampled_from([199, 200, 250]))
LIMITS = st.sampled_from([0, 0, 1, 2, 3, 5, 50, 200, 201, 250])
QUERIES = st.builds(
    ThreadQuery,
    offset=OFFSETS,
    limit=LIMITS,
    resource_id=RESOURCE_FILTERS,
    parent_filter=PARENT_FILTERS,
    id_prefix=PREFIXES,
)


def _strip(value: str | None) -> str | None:
    """The model's own lineage normalization (MOD-1): strip; blank or None is None."""
    if value is None:
        return None
    return value.strip() or None


@dataclass(frozen=True, slots=True)
class _Row:
    """What a query can see of one thread."""

    resource: str | None
    parent: str | None
    updated_at: int | None
    created_at: int | None

    def activity(self) -> int:
        """THR-5: updated_at, else created_at, else 0."""
        if self.updated_at is not None:
            return self.updated_at
        return self.created_at if self.created_at is not None else 0


@dataclass(frozen=True, slots=True)
class _Filters:
    """A query's filters as QRY-1 normalizes them."""

    resource: str | None
    parent_kind: str
    parent: str | None
    prefix: str | None

    @classmethod
    def of(cls, query: ThreadQuery) -> _Filters:
        kind, parent = query.parent_filter.kind, query.parent_filter.parent_id
        if kind == "parent" and _strip(parent) is None:
            kind, parent = "any", None
        return cls(_strip(query.resource_id), kind, parent, query.id_prefix)

    def matches(self, thread_id: str, row: _Row) -> bool:
        """QRY-2: literal prefix, normalized resource, root or parent."""
        if self.prefix is not None and thread_id[: len(self.prefix)] != self.prefix:
            return False
        if self.resource is not None and row.resource != self.resource:
            return False
        if self.parent_kind == "root":
            return row.parent is None
        if self.parent_kind == "parent":
            return row.parent == self.parent
        return True


@dataclass(frozen=True, slots=True)
class _Expected:
    """The page QRY-3..5 call for: items, total, has_more and the offsets the cursors hold."""

    items: list[str]
    total: int
    has_more: bool
    next_offset: int | None
    prev_offset: int | None


@dataclass(slots=True)
class _Walk:
    """Pages met while following cursors, with the offset each was asked at, and why the walk stopped."""

    pages: list[tuple[int, ThreadPage]] = field(default_factory=list)
    stopped: str | None = None


class QueryMachine(StoreMachine):
    """Random thread sets and queries: every page, total, has_more and cursor matches the model."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, _Row] = {}
        self.bulk = False

    # ── the model ────────────────────────────────────────────────────

    def ordered(self, filters: _Filters | None = None) -> list[str]:
        """Ids matching `filters` (all when None) by recent activity descending, then id (THR-5)."""
        ids = [i for i, row in self.rows.items() if filters is None or filters.matches(i, row)]
        return sorted(ids, key=lambda i: (-self.rows[i].activity(), i))

    def matching(self, query: ThreadQuery) -> list[str]:
        """The ids `query` matches, in THR-5 order (QRY-2, QRY-3)."""
        return self.ordered(_Filters.of(query))

    @staticmethod
    def expected(query: ThreadQuery, matching: list[str]) -> _Expected:
        """The page of `query` over its `matching` ids (QRY-1 limit cap, QRY-3 slice, QRY-4 cursors, QRY-5)."""
        total, limit = len(matching), min(query.limit, MAX_LIMIT)
        start = min(query.offset, total)
        end = min(start + limit, total)
        has_more = limit > 0 and end < total
        return _Expected(
            items=matching[start:end],
            total=total,
            has_more=has_more,
            next_offset=end if has_more else None,
            prev_offset=max(start - limit, 0) if limit > 0 and start > 0 else None,
        )

    def check_page(self, query: ThreadQuery, page: ThreadPage, matching: list[str]) -> None:
        """The store's page of `query` equals the model's, cursors decoded under `query` (QRY-1..5, SEC-1)."""
        prefix = query.id_prefix
        if prefix is not None:
            outside = [i for i in page.items if not i.startswith(prefix)]
            expect(not outside, "SEC-1", f"{query} returned {outside}, outside the prefix {prefix!r}")
        want = self.expected(query, matching)
        expect(page.items == want.items, "QRY-3", f"{query} gives items {page.items}, expected {want.items}")
        expect(page.total == want.total, "QRY-3", f"{query} gives total {page.total}, expected {want.total}")
        rule_id = "QRY-5" if query.limit == 0 else "QRY-4"
        expect(
            page.has_more == want.has_more, rule_id, f"{query} gives has_more {page.has_more}, expected {want.has_more}"
        )
        for name, cursor, offset in (
            ("next_cursor", page.next_cursor, want.next_offset),
            ("prev_cursor", page.prev_cursor, want.prev_offset),
        ):
            if offset is None:
                expect(cursor is None, rule_id, f"{query} gives a {name} {cursor!r}, expected none")
                continue
            cursor = present(cursor, rule_id, f"{query} gives no {name}, expected one to offset {offset}")
            decoded = _decode(query, cursor)
            expect(decoded == offset, rule_id, f"{name} of {query} decodes to {decoded!r}, expected offset {offset}")

    # ── rules: writes ────────────────────────────────────────────────

    @rule(
        thread_id=st.sampled_from(IDS),
        resource=RESOURCES,
        parent=st.sampled_from([None, None, "a", "ab", "b", " a ", MISSING]),
        updated_at=st.sampled_from([None, 1, 2, 3]),
        created_at=st.sampled_from([None, 1, 2]),
    )
    def save(
        self, thread_id: str, resource: str | None, parent: str | None, updated_at: int | None, created_at: int | None
    ) -> None:
        """Save (or overwrite) a thread; equal timestamps are common, so ties go to the id."""
        if _strip(parent) == thread_id:
            parent = None
        thread = Thread(
            id=thread_id,
            resource_id=resource,
            parent_thread_id=parent,
            metadata=ThreadMetadata(created_at=created_at, updated_at=updated_at),
        )
        self.call(self.store.save_thread, thread)
        self.rows[thread_id] = _Row(_strip(resource), _strip(parent), updated_at, created_at)

    @precondition(lambda self: bool(self.rows))
    @rule(data=st.data())
    def delete(self, data: st.DataObject) -> None:
        """Delete a thread: it leaves every listing."""
        thread_id = data.draw(st.sampled_from(sorted(self.rows)), label="thread_id")
        self.call(self.store.delete_thread, thread_id)
        del self.rows[thread_id]

    @precondition(lambda self: not self.bulk)
    @rule()
    def save_many(self) -> None:
        """Save 205 more threads (`z000`..`z204`, three timestamps, mostly roots of resource r2), so the cap shows."""
        bulk = {
            f"z{n:03}": _Row(None if n % 10 == 0 else "r2", "b" if n % 8 == 0 else None, 1 + n % 3, None)
            for n in range(BULK)
        }
        threads = [
            Thread(
                id=thread_id,
                resource_id=row.resource,
                parent_thread_id=row.parent,
                metadata=ThreadMetadata(updated_at=row.updated_at),
            )
            for thread_id, row in bulk.items()
        ]
        self.call(_save_all, self.store, threads)
        self.rows.update(bulk)
        self.bulk = True

    # ── rules: reads ─────────────────────────────────────────────────

    @rule(offset=st.integers(0, 12), limit=st.sampled_from([0, 1, 3, 200]))
    def list_all(self, offset: int, limit: int) -> None:
        """`list_threads` pages the THR-5 order: activity descending, then id ascending."""
        found = self.call(self.store.list_threads, offset, limit)
        expected = self.ordered()[offset : offset + limit]
        expect(found == expected, "THR-5", f"list_threads({offset}, {limit}) gives {found}, expected {expected}")

    @rule(query=QUERIES)
    def query(self, query: ThreadQuery) -> None:
        """One page of a random query matches the model (QRY-1..5, SEC-1)."""
        page = self.call(self.store.list_threads_query, query)
        self.check_page(query, page, self.matching(query))

    @rule(query=QUERIES.map(lambda q: replace(q, offset=0)).filter(lambda q: q.limit > 0))
    def walk(self, query: ThreadQuery) -> None:
        """Follow next_cursor from offset 0 to the end, then prev_cursor back to 0 (CUR-4, QRY-4)."""
        expected = self.matching(query)
        if len(expected) > MAX_PAGES * query.limit:
            # Keep walks short on slow stores: at most MAX_PAGES pages.
            query = replace(query, limit=-(-len(expected) // MAX_PAGES))
            note(f"walking with limit {query.limit}")
        forward = self.call(_follow, self.store, query, "next_cursor", MAX_PAGES + 2)
        for offset, page in forward.pages:
            self.check_page(replace(query, offset=offset), page, expected)
        expect(forward.stopped is None, "CUR-4", f"walking {query} forward: {forward.stopped}")
        seen = [i for _, page in forward.pages for i in page.items]
        expect(seen == expected, "CUR-4", f"following next_cursor from 0 visits {seen}, expected {expected}")
        last_offset = forward.pages[-1][0]
        back = self.call(_follow, self.store, replace(query, offset=last_offset), "prev_cursor", MAX_PAGES + 2)
        for offset, page in back.pages:
            self.check_page(replace(query, offset=offset), page, expected)
        expect(back.stopped is None, "QRY-4", f"walking {query} back from offset {last_offset}: {back.stopped}")
        expect(back.pages[-1][0] == 0, "QRY-4", f"following prev_cursor from {last_offset} ends at {back.pages[-1][0]}")

    @rule(query=QUERIES.filter(lambda q: q.limit > 0), other=QUERIES)
    def foreign_cursor(self, query: ThreadQuery, other: ThreadQuery) -> None:
        """A cursor decodes only under a query with the same normalized filters (CUR-2, SEC-1)."""
        page = self.call(self.store.list_threads_query, query)
        self.check_page(query, page, self.matching(query))
        cursors = [c for c in (page.next_cursor, page.prev_cursor) if c is not None]
        if _Filters.of(query) == _Filters.of(other):
            for cursor in cursors:
                expect(
                    other.decode_cursor(cursor) == query.decode_cursor(cursor),
                    "CUR-2",
                    f"a cursor of {query} decodes differently under {other}, which has the same filters",
                )
            return
        for cursor in cursors:
            note(f"cursor {cursor!r} of {query} decoded under {other}")
            try:
                offset = other.decode_cursor(cursor)
            except InvalidCursorError:
                continue
            raise RuleViolation(
                "CUR-2", f"a cursor of {query} decodes to offset {offset} under {other}, whose filters differ"
            )


def _decode(query: ThreadQuery, cursor: str) -> int:
    """The offset a store's cursor holds under its own query; a refusal breaks CUR-2."""
    try:
        return query.decode_cursor(cursor)
    except InvalidCursorError as error:
        raise RuleViolation(
            "CUR-2", f"cursor {cursor!r} does not decode under its own query {query}: {error}"
        ) from None


async def _save_all(store: ThreadRunStore, threads: Sequence[Thread]) -> None:
    """Plain-save threads in order, in one call of the portal."""
    for thread in threads:
        await store.save_thread(thread)


async def _follow(store: ThreadRunStore, query: ThreadQuery, which: str, most: int) -> _Walk:
    """Page from `query.offset` by the `which` cursor until there is none, in one call of the portal.

    Stops early, saying why, when a cursor does not decode, does not move the right
    way, or the walk passes `most` pages.
    """
    walk = _Walk()
    offset = query.offset
    while True:
        page = await store.list_threads_query(replace(query, offset=offset))
        walk.pages.append((offset, page))
        cursor: str | None = getattr(page, which)
        if cursor is None:
            return walk
        try:
            following = query.decode_cursor(cursor)
        except InvalidCursorError as error:
            walk.stopped = f"the {which} at offset {offset} does not decode: {error}"
            return walk
        if (following <= offset) if which == "next_cursor" else (following >= offset):
            walk.stopped = f"the {which} at offset {offset} leads to offset {following}"
            return walk
        if len(walk.pages) > most:
            walk.stopped = f"more than {most} pages"
            return walk
        offset = following


class QueryMachineRules:
    """Holds the machine's contract test (`stateful(...)`)."""

    test_query_machine = stateful(
        QueryMachine, "QRY-1", "QRY-2", "QRY-3", "QRY-4", "QRY-5", "CUR-2", "CUR-4", "SEC-1", "THR-5"
    )
