"""Contract tests: thread queries, pages and cursors (QRY-1..5, CUR-1..4, SEC-1)."""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import replace

import pytest

from conformance.contract._errors import InvalidCursorError
from conformance.contract._models import Thread
from conformance.contract._queries import MessageQuery, RunQuery, ThreadPage, ThreadParentFilter, ThreadQuery
from conformance.contract._stores import ThreadRunStore
from conformance.kit._differ import diff
from conformance.kit._runner import rule
from conformance.kit._scenarios import run, thread, tree
from conformance.kit._violation import RuleViolation, expect, present

#: Portable ids (MOD-6) full of characters that LIKE, GLOB or regexes would read as wildcards.
TRICKY_IDS = ["%a", "_a", "\\a", "a%b", "a_b", "a\\b", "a.b", "a:b", "axb", "ab", "b%a"]
#: Prefixes a literal match must take at their word; `*`, `[`, `^` appear only in prefixes.
TRICKY_PREFIXES = ["%", "_", "\\", "*", ".", "a%", "a_", "a\\", "a*", "a.", "a[", "^a", "a%b", "%a", "a\\%"]
#: The filters of an unfiltered thread query, as its cursor tokens hold them (CUR-1).
UNFILTERED: dict[str, object] = {"resource_id": None, "parent_filter": "any", "id_prefix": None}
#: The keys of a thread cursor's token, in the order serde writes them (CUR-1).
TOKEN_KEYS = ("offset", "resource_id", "parent_filter", "id_prefix")
URL_SAFE_BASE64 = re.compile(r"[A-Za-z0-9_-]+")


def _body(token: object, *, padded: bool = False) -> str:
    """URL-safe base64 of `token` as compact JSON, unpadded as a cursor body is built (CUR-1)."""
    encoded = base64.urlsafe_b64encode(json.dumps(token, separators=(",", ":")).encode()).decode()
    assert not padded or encoded.endswith("="), f"{token!r} needs no padding: pick another token"
    return encoded if padded else encoded.rstrip("=")


def _token(cursor: str | None, query: ThreadQuery) -> dict[str, object]:
    """The JSON object inside a thread cursor of `query`, after checking its layout (CUR-1).

    A missing cursor breaks QRY-4; a bare offset given to a filtered query, CUR-3 too.
    """
    cursor = present(cursor, "QRY-4", "expected a cursor on this page, got None")
    if cursor.isdecimal() and query.has_filters():
        raise RuleViolation(("CUR-1", "CUR-3"), f"the store gave bare offset {cursor!r} to a filtered query")
    expect(cursor.startswith("thr_"), "CUR-1", f"a thread cursor starts with 'thr_', got {cursor!r}")
    body = cursor.removeprefix("thr_")
    expect(URL_SAFE_BASE64.fullmatch(body), "CUR-1", f"cursor body {body!r} is not unpadded URL-safe base64")
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        token = json.loads(raw)
    except (binascii.Error, ValueError) as error:
        raise RuleViolation("CUR-1", f"cursor {cursor!r} does not hold a JSON token: {error}") from None
    expect(isinstance(token, dict), "CUR-1", f"cursor {cursor!r} holds {token!r}, not a JSON object")
    written = _serde_bytes(token)
    expect(raw == written, "CUR-1", f"cursor {cursor!r} holds {raw!r}; serde_json writes that token as {written!r}")
    if set(token) == set(TOKEN_KEYS):
        expect(tuple(token) == TOKEN_KEYS, "CUR-1", f"cursor token keys come in order {TOKEN_KEYS}, got {tuple(token)}")
    return dict(token)


def _serde_bytes(token: object) -> bytes:
    """`token` as serde_json writes it (CUR-1): compact, keys in order, text as raw UTF-8.

    Only `"`, `\\` and U+0000-U+001F are escaped; a lone surrogate, which UTF-8
    cannot carry, as its `\\udxxx` escape.
    """
    text = json.dumps(token, separators=(",", ":"), ensure_ascii=False)
    return "".join(f"\\u{ord(c):04x}" if "\ud800" <= c <= "\udfff" else c for c in text).encode()


def _at(query: ThreadQuery, cursor: str | None, offset: int, what: str = "cursor") -> None:
    """The store's cursor, decoded under its own query, points at `offset`.

    No cursor, or the wrong offset, breaks QRY-4; a cursor its own query refuses is no
    token of that query (CUR-1, CUR-2), or a bare offset given to a filtered query (CUR-3 too).
    """
    cursor = present(cursor, "QRY-4", f"expected a {what} on this page, got None")
    try:
        found = query.decode_cursor(cursor)
    except InvalidCursorError as error:
        rules = ("CUR-1", "CUR-3") if cursor.isdecimal() else ("CUR-1", "CUR-2")
        raise RuleViolation(rules, f"the store's {what} {cursor!r} is refused by its own query: {error}") from None
    expect(found == offset, "QRY-4", f"the {what} decodes to offset {found}, expected {offset}")


def _offset(query: ThreadQuery, cursor: str | None, what: str) -> int:
    """The offset the store's `what` (`"next_cursor"`) decodes to under `query`; it must be present."""
    __tracebackhide__ = True
    assert cursor is not None, f"list_threads_query({_shown(query)}) gives no {what}; expected one"
    try:
        return query.decode_cursor(cursor)
    except InvalidCursorError as error:
        rules = ("CUR-1", "CUR-3") if cursor.isdecimal() else ("CUR-1", "CUR-2")
        raise RuleViolation(
            rules, f"list_threads_query({_shown(query)}) gives {what} {cursor!r}, refused by its own query: {error}"
        ) from None


def _shown(query: ThreadQuery) -> str:
    """A thread query as a call shows it: only the fields that differ from the defaults (`offset=2, limit=3`)."""
    default = ThreadQuery()
    fields = {
        "offset": query.offset,
        "limit": query.limit,
        "resource_id": query.resource_id,
        "parent_filter": query.parent_filter,
        "id_prefix": query.id_prefix,
    }
    return ", ".join(f"{name}={value!r}" for name, value in fields.items() if value != getattr(default, name))


def _listing(page: ThreadPage, *, ordered: bool = False) -> str:
    """A page's ids (sorted unless `ordered`) and total, as a failure shows them."""
    return f"items {page.items if ordered else sorted(page.items)}, total {page.total!r}"


def _recent_first(saved: Thread) -> tuple[int, str]:
    """THR-5 order: updated_at, else created_at, else 0, descending; then id ascending."""
    stamp = saved.metadata.updated_at if saved.metadata.updated_at is not None else saved.metadata.created_at
    return (-(stamp or 0), saved.id)


async def _numbered(store: ThreadRunStore, count: int, *, prefix: str = "t", resource: str | None = None) -> list[str]:
    """Save `count` threads `t000, t001, ...`, each more recent than the next; return ids in THR-5 order."""
    ids = [f"{prefix}{number:03d}" for number in range(count)]
    for number, thread_id in enumerate(ids):
        await store.save_thread(thread(thread_id, resource=resource, updated_at=10_000 - number))
    return ids


async def _follow(store: ThreadRunStore, query: ThreadQuery) -> list[list[str]]:
    """The pages met by following `next_cursor` from `query`, each decoded under `query` (CUR-4)."""
    __tracebackhide__ = True
    pages: list[list[str]] = []
    offset = query.offset
    while True:
        page = await store.list_threads_query(replace(query, offset=offset))
        pages.append(page.items)
        if page.next_cursor is None:
            return pages
        offset = query.decode_cursor(page.next_cursor)
        assert len(pages) <= page.total + 1, f"next_cursor keeps paging after {len(pages)} pages of {page.total}"


def _refused(query: ThreadQuery, cursor: str, rules: tuple[str, ...]) -> None:
    """`query` must refuse the store's `cursor` (taken under other filters); else `rules` are broken."""
    try:
        found = query.decode_cursor(cursor)
    except InvalidCursorError:
        return
    raise RuleViolation(rules, f"cursor {cursor!r} decodes to offset {found} under {query!r}, a query of other filters")


class QueryRules:
    """QRY-1..5, CUR-1..4 and SEC-1: thread queries, their pages and their cursors."""

    @rule("QRY-1")
    async def test_limit_above_200_is_capped(self, store: ThreadRunStore) -> None:
        """A limit of 201 over 205 threads returns 200 of them, and more remain."""
        ids = await _numbered(store, 205)
        query = ThreadQuery(limit=201)
        page = await store.list_threads_query(query)
        found = (len(page.items), len(set(page.items)), set(page.items) <= set(ids))
        assert found == (200, 200, True), (
            f"limit=201 of 205 threads gives (items, distinct items, all saved ids) {found}; expected (200, 200, True)"
        )
        counts = (page.total, page.has_more)
        assert counts == (205, True), f"limit=201 of 205 threads gives (total, has_more) {counts}; expected (205, True)"

    @rule("QRY-1")
    async def test_resource_filter_is_normalized(self, store: ThreadRunStore) -> None:
        """resource_id "  r " filters as "r"."""
        await store.save_thread(thread("a", resource="r"))
        await store.save_thread(thread("b", resource="rr"))
        await store.save_thread(thread("c"))
        page = await store.list_threads_query(ThreadQuery(resource_id="  r "))
        found = (sorted(page.items), page.total)
        assert found == (["a"], 1), f"list_threads_query(resource_id='  r ') gives {_listing(page)}; expected ['a'], 1"

    @rule("QRY-1")
    async def test_blank_resource_filter_filters_nothing(self, store: ThreadRunStore) -> None:
        """resource_id "  " normalizes to no filter: every thread matches."""
        await store.save_thread(thread("a", resource="r"))
        await store.save_thread(thread("b"))
        page = await store.list_threads_query(ThreadQuery(resource_id="  "))
        found = (sorted(page.items), page.total)
        assert found == (["a", "b"], 2), (
            f"list_threads_query(resource_id='  ') gives {_listing(page)}; expected ['a', 'b'], total 2"
        )

    @rule("QRY-1")
    async def test_blank_parent_filter_acts_as_any(self, store: ThreadRunStore) -> None:
        """parent(" ") matches roots and children alike, as any() does."""
        await tree(store, {"a": {"b": {}}, "c": {}})
        page = await store.list_threads_query(ThreadQuery(parent_filter=ThreadParentFilter.parent(" ")))
        found = (sorted(page.items), page.total)
        assert found == (["a", "b", "c"], 3), (
            f"list_threads_query with parent(' ') gives {_listing(page)}; expected ['a', 'b', 'c'], total 3"
        )

    @rule("QRY-1")
    async def test_padded_parent_filter_is_stripped(self, store: ThreadRunStore) -> None:
        """parent(" a ") matches the children of a, as parent("a") does."""
        await tree(store, {"a": {"b": {}}, "c": {}})
        page = await store.list_threads_query(ThreadQuery(parent_filter=ThreadParentFilter.parent(" a ")))
        found = (page.items, page.total)
        assert found == (["b"], 1), (
            f"list_threads_query with parent(' a ') gives {_listing(page)}; expected ['b'], total 1"
        )

    @rule("QRY-2")
    @pytest.mark.parametrize(
        ("prefix", "expected"),
        [("a%", ["a%b"]), ("a_", ["a_b"]), ("a\\", ["a\\b"]), ("a*", []), ("%", []), ("_", [])],
        ids=["percent", "underscore", "backslash", "star", "lone-percent", "lone-underscore"],
    )
    async def test_id_prefix_is_literal(self, store: ThreadRunStore, prefix: str, expected: list[str]) -> None:
        """With threads a%b, a_b, axb, a\\b, ab: prefix "a_" matches a_b only, "%" matches nothing."""
        for thread_id in ["a%b", "a_b", "axb", "a\\b", "ab"]:
            await store.save_thread(thread(thread_id))
        page = await store.list_threads_query(ThreadQuery(id_prefix=prefix))
        found = (sorted(page.items), page.total)
        assert found == (expected, len(expected)), (
            f"list_threads_query(id_prefix={prefix!r}) gives {_listing(page)}; "
            f"expected items {expected}, total {len(expected)}"
        )

    @rule("QRY-2", requires="any_ids")
    @pytest.mark.parametrize(
        "prefix",
        ["a\ud7fe", "a\ud7ff", "a\ue000", "a\U0010ffff"],
        ids=["below-surrogates", "before-surrogates", "after-surrogates", "last"],
    )
    async def test_id_prefix_ending_at_a_code_point_edge(self, store: ThreadRunStore, prefix: str) -> None:
        """A prefix ending around the surrogates (U+D7FE, U+D7FF, U+E000) or in U+10FFFF matches the ids it starts.

        A store that turns a prefix into a range `prefix <= id < successor` must skip
        the surrogates for the successor of U+D7FF and has none for U+10FFFF.
        """
        ids = ["a\ud7fe", "a\ud7fez", "a\ud7ff", "a\ud7ffz", "a\ue000", "a\ue000z", "a\ue001", "a\U0010ffff"]
        ids += ["a\U0010ffffz", "b"]
        for thread_id in ids:
            await store.save_thread(thread(thread_id))
        page = await store.list_threads_query(ThreadQuery(id_prefix=prefix))
        found, due = (sorted(page.items), page.total), ([prefix, prefix + "z"], 2)
        assert found == due, (
            f"list_threads_query(id_prefix={prefix!a}) gives items {found[0]!a}, total {found[1]!r}; expected {due!a}"
        )

    @rule("QRY-2")
    @pytest.mark.parametrize("odd", ["nul\x00id", "lone\ud800"], ids=["nul", "lone-surrogate"])
    async def test_filter_no_store_can_hold_matches_nothing(self, store: ThreadRunStore, odd: str) -> None:
        """A resource or parent filter holding NUL or a lone surrogate matches no thread: an empty page."""
        await store.save_thread(thread("a", resource="r"))
        for query in [ThreadQuery(resource_id=odd), ThreadQuery(parent_filter=ThreadParentFilter.parent(odd))]:
            page = await store.list_threads_query(query)
            found = (page.items, page.total, page.has_more)
            assert found == ([], 0, False), (
                f"list_threads_query({_shown(query)}) gives (items, total, has_more) {found}; expected ([], 0, False)"
            )

    @rule("QRY-2")
    async def test_resource_filter_matches_normalized_resource(self, store: ThreadRunStore) -> None:
        """A thread saved with resource " r " matches resource "r"; "rr" and no resource do not."""
        await store.save_thread(thread("a", resource=" r "))
        await store.save_thread(thread("b", resource="r"))
        await store.save_thread(thread("c", resource="rr"))
        await store.save_thread(thread("d"))
        page = await store.list_threads_query(ThreadQuery(resource_id="r"))
        found = (sorted(page.items), page.total)
        assert found == (["a", "b"], 2), (
            f"list_threads_query(resource_id='r') gives {_listing(page)}; expected ['a', 'b'], total 2"
        )

    @rule("QRY-2")
    async def test_root_filter_matches_threads_without_parent(self, store: ThreadRunStore) -> None:
        """root() gives a and c of a <- b, c; an orphan whose parent is missing still has a parent."""
        await tree(store, {"a": {"b": {}}, "c": {}})
        await store.save_thread(thread("orphan", parent="missing"))
        page = await store.list_threads_query(ThreadQuery(parent_filter=ThreadParentFilter.root()))
        found = (sorted(page.items), page.total)
        assert found == (["a", "c"], 2), (
            f"list_threads_query with root() gives {_listing(page)}; expected ['a', 'c'], total 2"
        )

    @rule("QRY-2")
    async def test_parent_filter_matches_direct_children(self, store: ThreadRunStore) -> None:
        """parent("a") gives b, d and e (saved with parent " a "), not grandchild c nor a itself."""
        await tree(store, {"a": {"b": {"c": {}}, "d": {}}})
        await store.save_thread(thread("e", parent=" a "))
        page = await store.list_threads_query(ThreadQuery(parent_filter=ThreadParentFilter.parent("a")))
        found = (sorted(page.items), page.total)
        assert found == (["b", "d", "e"], 3), (
            f"list_threads_query with parent('a') gives {_listing(page)}; expected ['b', 'd', 'e'], total 3"
        )

    @rule("QRY-2")
    async def test_filters_combine(self, store: ThreadRunStore) -> None:
        """Prefix, resource and parent together match only threads passing all three."""
        await store.save_thread(thread("p"))
        await store.save_thread(thread("x-1", parent="p", resource="r"))
        await store.save_thread(thread("x-2", parent="p", resource="s"))
        await store.save_thread(thread("y-1", parent="p", resource="r"))
        await store.save_thread(thread("x-3", resource="r"))
        query = ThreadQuery(id_prefix="x-", resource_id="r", parent_filter=ThreadParentFilter.parent("p"))
        page = await store.list_threads_query(query)
        found = (sorted(page.items), page.total)
        assert found == (["x-1"], 1), f"list_threads_query({_shown(query)}) gives {_listing(page)}; expected ['x-1'], 1"

    @rule("QRY-3")
    async def test_matches_are_ordered_by_recent_activity_then_id(self, store: ThreadRunStore) -> None:
        """Among matches, updated_at beats created_at, neither counts as 0, ties go by id."""
        await store.save_thread(thread("none", resource="r"))
        await store.save_thread(thread("b-created-5", resource="r", created_at=5))
        await store.save_thread(thread("a-updated-5", resource="r", created_at=1, updated_at=5))
        await store.save_thread(thread("c-updated-9", resource="r", updated_at=9))
        await store.save_thread(thread("z-other", resource="s", updated_at=99))
        page = await store.list_threads_query(ThreadQuery(resource_id="r"))
        due = ["c-updated-9", "a-updated-5", "b-created-5", "none"]
        assert page.items == due, f"list_threads_query(resource_id='r') gives items {page.items}; expected {due}"

    @rule("QRY-3")
    async def test_items_are_the_offset_limit_slice_of_the_matches(self, store: ThreadRunStore) -> None:
        """Offset 2, limit 3 over 7 matches (and 3 others) gives matches 3 to 5 and total 7."""
        ids = await _numbered(store, 7, resource="r")
        await _numbered(store, 3, prefix="other", resource="s")
        page = await store.list_threads_query(ThreadQuery(offset=2, limit=3, resource_id="r"))
        found = (page.items, page.total)
        assert found == (ids[2:5], 7), (
            f"offset=2, limit=3 of 7 matches gives {_listing(page, ordered=True)}; expected {ids[2:5]}, total 7"
        )

    @rule("QRY-3")
    @pytest.mark.parametrize("offset", [9, 2**63, 2**64 + 1], ids=["9", "2**63", "2**64+1"])
    async def test_offset_past_the_end_gives_no_items(self, store: ThreadRunStore, offset: int) -> None:
        """An offset past 7 matches gives no item, the total still 7, and nothing more: also one
        past what a 64-bit integer holds (a backend must not refuse it, nor let it wrap)."""
        await _numbered(store, 7)
        page = await store.list_threads_query(ThreadQuery(offset=offset, limit=3))
        found = (page.items, page.total, page.has_more)
        assert found == ([], 7, False), (
            f"offset={offset}, limit=3 of 7 gives (items, total, has_more) {found}; expected ([], 7, False)"
        )

    @rule("QRY-4")
    async def test_middle_page_has_more_and_both_cursors(self, store: ThreadRunStore) -> None:
        """Offset 2, limit 3 of 7: has_more, next decodes to 5, prev to max(2 - 3, 0) = 0."""
        await _numbered(store, 7)
        query = ThreadQuery(offset=2, limit=3)
        page = await store.list_threads_query(query)
        assert page.has_more is True, f"offset=2, limit=3 of 7 gives has_more {page.has_more!r}; expected True"
        after = _offset(query, page.next_cursor, "next_cursor")
        assert after == 5, f"next_cursor of offset=2, limit=3 decodes to offset {after}; expected 5"
        before = _offset(query, page.prev_cursor, "prev_cursor")
        assert before == 0, f"prev_cursor of offset=2, limit=3 decodes to offset {before}; expected 0"

    @rule("QRY-4")
    async def test_next_cursor_follows_a_capped_page(self, store: ThreadRunStore) -> None:
        """A limit of 201 over 205 threads gives a page (of 200, QRY-1) whose next_cursor decodes to just after it."""
        await _numbered(store, 205)
        query = ThreadQuery(limit=201)
        page = await store.list_threads_query(query)
        after = _offset(query, page.next_cursor, "next_cursor")
        assert after == len(page.items), (
            f"next_cursor of a page of {len(page.items)} at offset 0 decodes to {after}; expected {len(page.items)}"
        )

    @rule("QRY-4")
    async def test_last_page_has_no_more_and_no_next_cursor(self, store: ThreadRunStore) -> None:
        """Offset 4, limit 3 of 7 ends exactly at the last match: no more, no next_cursor."""
        await _numbered(store, 7)
        page = await store.list_threads_query(ThreadQuery(offset=4, limit=3))
        found = (page.has_more, page.next_cursor)
        assert found == (False, None), (
            f"the last page (offset=4, limit=3 of 7) gives (has_more, next_cursor) {found}; expected (False, None)"
        )

    @rule("QRY-4")
    async def test_first_page_has_no_prev_cursor(self, store: ThreadRunStore) -> None:
        """Offset 0, limit 3 of 7: next decodes to 3 and there is no prev_cursor."""
        await _numbered(store, 7)
        query = ThreadQuery(limit=3)
        page = await store.list_threads_query(query)
        after = _offset(query, page.next_cursor, "next_cursor")
        assert after == 3, f"next_cursor of offset=0, limit=3 decodes to offset {after}; expected 3"
        assert page.prev_cursor is None, f"the first page has prev_cursor {page.prev_cursor!r}; expected None"

    @rule("QRY-4")
    async def test_prev_cursor_steps_back_one_limit(self, store: ThreadRunStore) -> None:
        """Offset 5, limit 2 of 7: prev decodes to 3, the page before this one."""
        await _numbered(store, 7)
        query = ThreadQuery(offset=5, limit=2)
        page = await store.list_threads_query(query)
        before = _offset(query, page.prev_cursor, "prev_cursor")
        assert before == 3, f"prev_cursor of offset=5, limit=2 decodes to offset {before}; expected 3"

    @rule("QRY-4")
    async def test_prev_cursor_past_the_end_steps_back_from_the_end(self, store: ThreadRunStore) -> None:
        """Offset 9, limit 3 of 7 starts at 7: nothing more, and prev decodes to 4, the last full page."""
        await _numbered(store, 7)
        query = ThreadQuery(offset=9, limit=3)
        page = await store.list_threads_query(query)
        found = (page.has_more, page.next_cursor)
        assert found == (False, None), (
            f"offset=9, limit=3 of 7 gives (has_more, next_cursor) {found}; expected (False, None)"
        )
        before = _offset(query, page.prev_cursor, "prev_cursor")
        assert before == 4, f"prev_cursor of offset=9, limit=3 of 7 decodes to offset {before}; expected 4"

    @rule("QRY-5")
    @pytest.mark.parametrize("offset", [0, 3, 9])
    async def test_limit_zero_gives_only_the_total(self, store: ThreadRunStore, offset: int) -> None:
        """limit 0 over 5 threads: no items, no more, no cursors, total 5, at any offset."""
        await _numbered(store, 5)
        page = await store.list_threads_query(ThreadQuery(offset=offset, limit=0))
        due = ThreadPage(items=[], total=5, has_more=False, next_cursor=None, prev_cursor=None)
        assert page == due, f"list_threads_query(offset={offset}, limit=0): {diff(page, due)}"

    @rule("CUR-1", "CUR-2", "CUR-3", "QRY-4", "SEC-1")
    @pytest.mark.parametrize(
        ("filters", "expected"),
        [
            (ThreadQuery(), UNFILTERED),
            (
                ThreadQuery(resource_id="r", parent_filter=ThreadParentFilter.parent("p"), id_prefix="c-"),
                {"resource_id": "r", "parent_filter": {"parent": "p"}, "id_prefix": "c-"},
            ),
            (
                ThreadQuery(parent_filter=ThreadParentFilter.root(), id_prefix="c-%_"),
                {"resource_id": None, "parent_filter": "root", "id_prefix": "c-%_"},
            ),
        ],
        ids=["unfiltered", "every-filter", "root"],
    )
    async def test_cursor_is_thr_and_base64_of_a_json_token(
        self, store: ThreadRunStore, filters: ThreadQuery, expected: dict[str, object]
    ) -> None:
        """Offset 2, limit 2 of 6: next is thr_ + base64 of {"offset": 4, ...filters}, prev of offset 0.

        Layout is CUR-1's; a token of other filters is a cursor of another query (CUR-2,
        and SEC-1 when its id_prefix differs); the offsets are QRY-4's.
        """
        await store.save_thread(thread("p"))
        for number in range(6):
            await store.save_thread(thread(f"c-%_{number}", parent="p", resource="r", updated_at=9 - number))
            await store.save_thread(thread(f"c-{number}", parent="p", resource="r", updated_at=20 - number))
            await store.save_thread(thread(f"c-%_root-{number}", updated_at=30 - number))
        query = replace(filters, offset=2, limit=2)
        page = await store.list_threads_query(query)
        for what, cursor, offset in [("next_cursor", page.next_cursor, 4), ("prev_cursor", page.prev_cursor, 0)]:
            token = _token(cursor, query)
            expect(set(token) == {"offset", *expected}, "CUR-1", f"{what} token {token!r} has other fields")
            held = {name: token[name] for name in expected}
            rules = ("CUR-1", "CUR-2", "SEC-1") if held["id_prefix"] != expected["id_prefix"] else ("CUR-1", "CUR-2")
            expect(held == expected, rules, f"{what} token holds filters {held!r}, expected {expected!r}")
            expect(token["offset"] == offset, "QRY-4", f"{what} token holds offset {token['offset']!r}, not {offset}")

    @rule("CUR-1", "QRY-4", requires="any_ids")
    async def test_cursor_token_holds_text_as_raw_utf8(self, store: ThreadRunStore) -> None:
        """Filters "ré日" and "é-" are written as raw UTF-8 in the token, byte for byte as serde_json writes them.

        Offset 1, limit 1 of 3: next_cursor holds
        `{"offset":2,"resource_id":"r\xc3\xa9\xe6\x97\xa5","parent_filter":"any","id_prefix":"\xc3\xa9-"}`,
        not `\\u00e9` escapes, so every backend mints the same cursor for the same page. The offsets are QRY-4's.
        """
        for number in range(3):
            await store.save_thread(thread(f"é-{number}", resource="ré日", updated_at=10 - number))
        query = ThreadQuery(offset=1, limit=1, resource_id="ré日", id_prefix="é-")
        page = await store.list_threads_query(query)
        for what, cursor, offset in [("next_cursor", page.next_cursor, 2), ("prev_cursor", page.prev_cursor, 0)]:
            held = _token(cursor, query)["offset"]
            expect(held == offset, "QRY-4", f"{what} token holds offset {held!r}, not {offset}")
            body = present(cursor, "QRY-4", f"expected a {what} on this page, got None").removeprefix("thr_")
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
            text = f'{{"offset":{offset},"resource_id":"ré日","parent_filter":"any","id_prefix":"é-"}}'
            expect(raw == text.encode(), "CUR-1", f"{what} token is {raw!r}; expected {text.encode()!r}")

    @rule("CUR-2", "CUR-1", "QRY-4")
    @pytest.mark.parametrize(
        "other",
        [
            ThreadQuery(),
            ThreadQuery(resource_id="s"),
            ThreadQuery(resource_id="r", parent_filter=ThreadParentFilter.root()),
            ThreadQuery(resource_id="r", parent_filter=ThreadParentFilter.parent("p")),
            ThreadQuery(resource_id="r", id_prefix="t"),
        ],
        ids=["unfiltered", "other-resource", "plus-root", "plus-parent", "plus-prefix"],
    )
    async def test_cursor_of_other_filters_is_refused(self, store: ThreadRunStore, other: ThreadQuery) -> None:
        """A next_cursor of the resource "r" query raises InvalidCursorError under any other filters."""
        await _numbered(store, 5, resource="r")
        query = ThreadQuery(limit=2, resource_id="r")
        page = await store.list_threads_query(query)
        _at(query, page.next_cursor, 2, "next_cursor")
        _refused(other, present(page.next_cursor, "QRY-4", "expected a next_cursor on this page"), ("CUR-2",))

    @rule("CUR-2", "CUR-1", "QRY-1", "QRY-4")
    async def test_cursor_decodes_under_either_spelling_of_its_filters(self, store: ThreadRunStore) -> None:
        """A cursor of resource "  r " is a cursor of resource "r": filters compare normalized."""
        await _numbered(store, 5, resource="r")
        page = await store.list_threads_query(ThreadQuery(limit=2, resource_id="  r "))
        expect(page.total == 5, "QRY-1", f"resource '  r ' matches {page.total} of the 5 threads of resource 'r'")
        _at(ThreadQuery(resource_id="  r "), page.next_cursor, 2, "next_cursor")
        cursor = present(page.next_cursor, "QRY-4", "expected a next_cursor on this page")
        try:
            found = ThreadQuery(resource_id="r").decode_cursor(cursor)
        except InvalidCursorError as error:
            raise RuleViolation(
                "CUR-2", f"a cursor of resource '  r ' is refused under resource 'r': {error}"
            ) from None
        expect(found == 2, "CUR-2", f"under resource 'r' the cursor decodes to {found}, expected 2")

    @rule("CUR-2")
    @pytest.mark.parametrize(
        "garbage",
        [
            "",
            "thr_",
            "thr_!!!!",
            "thr_" + _body({"offset": 1, **UNFILTERED}, padded=True),
            "THR_" + _body({"offset": 1, **UNFILTERED}),
            MessageQuery().encode_cursor(1),
            "thr_" + _body([1]),
            "thr_" + _body({"offset": 1, "resource_id": None, "parent_filter": "any"}),
            "thr_" + _body({"offset": 1, **UNFILTERED, "x": 1}),
            "thr_" + _body({"offset": -1, **UNFILTERED}),
            "thr_" + _body({"offset": "1", **UNFILTERED}),
            "thr_" + base64.urlsafe_b64encode(b"\xff\xfe").decode().rstrip("="),
            "-1",
            "1.5",
        ],
        ids=[
            "empty",
            "prefix-only",
            "not-base64",
            "padded",
            "wrong-case-prefix",
            "message-cursor",
            "not-an-object",
            "missing-field",
            "extra-field",
            "negative-offset",
            "string-offset",
            "not-json",
            "negative-number",
            "fraction",
        ],
    )
    async def test_text_that_is_no_token_is_refused(self, garbage: str) -> None:
        """decode_cursor raises InvalidCursorError for anything but a thr_ token (or a bare offset)."""
        with pytest.raises(InvalidCursorError):
            ThreadQuery().decode_cursor(garbage)

    @rule("CUR-3")
    async def test_bare_offset_decodes_only_without_filters(self) -> None:
        """ "7" decodes to 7 without filters (blank filters count as none) and is refused with any filter."""
        for unfiltered in [ThreadQuery(), ThreadQuery(resource_id="  ", parent_filter=ThreadParentFilter.parent(" "))]:
            offset = unfiltered.decode_cursor("7")
            assert offset == 7, f"decode_cursor('7') of an unfiltered query gives {offset!r}; expected 7"
        for filtered in [
            ThreadQuery(resource_id="r"),
            ThreadQuery(parent_filter=ThreadParentFilter.root()),
            ThreadQuery(parent_filter=ThreadParentFilter.parent("p")),
            ThreadQuery(id_prefix="t"),
        ]:
            with pytest.raises(InvalidCursorError):
                filtered.decode_cursor("7")

    @rule("CUR-3", "CUR-1", "QRY-4")
    @pytest.mark.parametrize(
        "query",
        [
            ThreadQuery(offset=2, limit=2, resource_id="r"),
            ThreadQuery(offset=2, limit=2, parent_filter=ThreadParentFilter.root()),
            ThreadQuery(offset=2, limit=2, id_prefix="t"),
        ],
        ids=["resource", "root", "prefix"],
    )
    async def test_cursors_of_a_filtered_query_are_never_bare_offsets(
        self, store: ThreadRunStore, query: ThreadQuery
    ) -> None:
        """A filtered query refuses bare offsets, so the store's cursors for it are tokens that decode."""
        await _numbered(store, 6, resource="r")
        page = await store.list_threads_query(query)
        for what, cursor, offset in [("next_cursor", page.next_cursor, 4), ("prev_cursor", page.prev_cursor, 0)]:
            cursor = present(cursor, "QRY-4", f"expected a {what} on this page, got None")
            expect(not cursor.isdecimal(), "CUR-3", f"the store gave bare offset {cursor!r} to a filtered query")
            _at(query, cursor, offset, what)

    @rule("CUR-4")
    @pytest.mark.parametrize("limit", [1, 2, 3, 7])
    @pytest.mark.parametrize("filtered", [False, True], ids=["all", "root-of-r"])
    async def test_next_cursor_visits_every_match_once_in_order(
        self, store: ThreadRunStore, limit: int, filtered: bool
    ) -> None:
        """Paging 16 threads with tied timestamps by next_cursor yields each match once, in THR-5 order."""
        saved: list[Thread] = []
        for number in range(16):
            resource = "r" if number % 4 else "s"
            parent = "t00" if number % 5 == 4 else None
            updated, created = (number // 3, None) if number % 2 else (None, number // 4)
            saved.append(
                thread(f"t{15 - number:02d}", resource=resource, parent=parent, updated_at=updated, created_at=created)
            )
        for one in saved:
            await store.save_thread(one)
        query = ThreadQuery(limit=limit)
        if filtered:
            query = ThreadQuery(limit=limit, resource_id="r", parent_filter=ThreadParentFilter.root())
        matching = [t for t in saved if not filtered or (t.resource_id == "r" and t.parent_thread_id is None)]
        expected = [t.id for t in sorted(matching, key=_recent_first)]
        pages = await _follow(store, query)
        visited = [thread_id for page in pages for thread_id in page]
        assert visited == expected, (
            f"following next_cursor by {limit} visits {visited}; expected each match once, in order: {expected}"
        )
        short = [len(page) for page in pages[:-1] if len(page) != limit]
        assert all(len(page) == limit for page in pages[:-1]), (
            f"following next_cursor by {limit} meets pages of {short} items before the last; expected {limit} each"
        )

    @rule("SEC-1")
    @pytest.mark.parametrize("prefix", TRICKY_PREFIXES)
    async def test_thread_prefix_returns_nothing_outside_it(self, store: ThreadRunStore, prefix: str) -> None:
        """A prefix of %, _, \\, * or regex characters matches exactly the ids that literally start with it."""
        for thread_id in TRICKY_IDS:
            await store.save_thread(thread(thread_id))
        page = await store.list_threads_query(ThreadQuery(id_prefix=prefix, limit=200))
        expected = sorted(i for i in TRICKY_IDS if i.startswith(prefix))
        found = (sorted(page.items), page.total)
        assert found == (expected, len(expected)), (
            f"list_threads_query(id_prefix={prefix!r}) gives {_listing(page)}; "
            f"expected items {expected}, total {len(expected)}"
        )

    @rule("SEC-1")
    @pytest.mark.parametrize("prefix", TRICKY_PREFIXES)
    async def test_run_prefix_returns_no_run_of_another_thread(self, store: ThreadRunStore, prefix: str) -> None:
        """list_runs(id_prefix=p) gives the runs whose thread id literally starts with p, whatever their run id."""
        for number, thread_id in enumerate(TRICKY_IDS):
            await store.create_run(run(f"run-{number:02d}", thread_id))
            await store.create_run(run(thread_id + "-run", "zz"))
        page = await store.list_runs(RunQuery(id_prefix=prefix, limit=200))
        expected = [f"run-{n:02d}" for n, thread_id in enumerate(TRICKY_IDS) if thread_id.startswith(prefix)]
        found = (sorted(r.run_id for r in page.items), page.total)
        assert found == (expected, len(expected)), (
            f"list_runs(id_prefix={prefix!r}) gives runs {found[0]}, total {found[1]!r}; "
            f"expected {expected}, total {len(expected)}"
        )

    @rule("SEC-1", "CUR-2", "CUR-1", "QRY-4")
    @pytest.mark.parametrize(
        ("taken_under", "decoded_under"),
        [("a", None), (None, "a"), ("a_", "a"), ("a", "a_"), ("a", "a%")],
        ids=["drop-prefix", "add-prefix", "shorten-prefix", "lengthen-prefix", "wildcard-prefix"],
    )
    async def test_cursor_cannot_change_the_prefix(
        self, store: ThreadRunStore, taken_under: str | None, decoded_under: str | None
    ) -> None:
        """A next_cursor of one id_prefix query raises InvalidCursorError under another prefix, or none."""
        for thread_id in ["a_1", "a_2", "a_3", "ab1", "ab2", "b"]:
            await store.save_thread(thread(thread_id))
        query = ThreadQuery(limit=1, id_prefix=taken_under)
        page = await store.list_threads_query(query)
        _at(query, page.next_cursor, 1, "next_cursor")
        cursor = present(page.next_cursor, "QRY-4", "expected a next_cursor on this page")
        _refused(ThreadQuery(limit=1, id_prefix=decoded_under), cursor, ("SEC-1", "CUR-2"))

    @rule("SEC-1", "CUR-3")
    async def test_bare_offset_is_refused_under_a_prefix(self) -> None:
        """A bare "0" cannot stand in for a cursor of a prefixed query, whatever the prefix holds."""
        for prefix in ["a", "%", "_", "\\"]:
            with pytest.raises(InvalidCursorError):
                ThreadQuery(id_prefix=prefix).decode_cursor("0")
