"""Broken stores of the query area: each breaks one of QRY-1..5, CUR-1..4, SEC-1."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from dataclasses import replace

from broken import Broken
from broken.threads import IdsAsFileNames
from conformance import (
    PageWindow,
    RunPage,
    RunQuery,
    RunRecord,
    StorageIOError,
    ThreadPage,
    ThreadQuery,
    ValidationError,
    paginate_runs,
    paginate_thread_ids,
    recent_activity_key,
)
from reference_store import ReferenceStore


def _like(prefix: str) -> re.Pattern[str]:
    """What `LIKE prefix || '%'` matches when nobody escapes the prefix: `%` and `_` are wildcards."""
    pattern, escaped = [], False
    for char in prefix:
        if escaped:
            pattern.append(re.escape(char))
            escaped = False
        elif char == "\\":
            escaped = True
        else:
            pattern.append({"%": ".*", "_": "."}.get(char, re.escape(char)))
    return re.compile("".join(pattern), re.DOTALL)


def _recode(page: ThreadPage, query: ThreadQuery, encode: Callable[[int], str]) -> ThreadPage:
    """The page with both cursors re-encoded by `encode` from the offsets they hold under `query`."""
    if page.next_cursor is not None:
        page.next_cursor = encode(query.decode_cursor(page.next_cursor))
    if page.prev_cursor is not None:
        page.prev_cursor = encode(query.decode_cursor(page.prev_cursor))
    return page


class UncappedLimit(ReferenceStore):
    """Trusts the caller's limit: a limit of 201 returns 201 threads."""

    async def list_threads_query(self, query: ThreadQuery) -> ThreadPage:
        normalized = query.normalized()
        async with self._lock:
            threads = self._threads.threads
            ordered = [i for i in self._threads.ids_in_order(0, len(threads)) if normalized.matches(threads[i])]
        window = PageWindow(offset=normalized.offset, limit=query.limit, total=len(ordered))
        next_cursor, prev_cursor = window.cursors(normalized)
        return ThreadPage(
            items=ordered[window.start : window.end],
            total=window.total,
            has_more=window.has_more,
            next_cursor=next_cursor,
            prev_cursor=prev_cursor,
        )


class RawResourceFilter(ReferenceStore):
    """Filters by the resource id as the caller spelled it: "  r " matches nothing."""

    async def list_threads_query(self, query: ThreadQuery) -> ThreadPage:
        normalized = replace(query.normalized(), resource_id=query.resource_id)
        async with self._lock:
            return self._threads.page(normalized)


class BlankParentFilter(ReferenceStore):
    """Looks up children of parent " " instead of treating a blank parent filter as any()."""

    async def list_threads_query(self, query: ThreadQuery) -> ThreadPage:
        normalized = replace(query.normalized(), parent_filter=query.parent_filter)
        async with self._lock:
            return self._threads.page(normalized)


class LikePrefix(ReferenceStore):
    """Matches `id LIKE prefix || '%'` without escaping: `a_` also matches `axb`, `%` matches all."""

    async def list_threads_query(self, query: ThreadQuery) -> ThreadPage:
        normalized = query.normalized()
        if normalized.id_prefix is None:
            return await super().list_threads_query(query)
        pattern, others = _like(normalized.id_prefix), replace(normalized, id_prefix=None)
        async with self._lock:
            matching = [t for t in self._threads.threads.values() if others.matches(t) and pattern.match(t.id)]
            return paginate_thread_ids([t.id for t in sorted(matching, key=recent_activity_key)], normalized)


class PrefixRangeIntoSurrogates(ReferenceStore):
    """Matches id_prefix as the range `prefix <= id < successor`, the successor's last character plus one.

    It does not skip the surrogates, so the successor of a prefix ending in U+D7FF is a
    lone surrogate that SQLite cannot bind (read as "no match"), and one ending in
    U+10FFFF has no successor (`chr` raises ValueError).
    """

    async def list_threads_query(self, query: ThreadQuery) -> ThreadPage:
        normalized = query.normalized()
        prefix = normalized.id_prefix
        if not prefix:
            return await super().list_threads_query(query)
        successor = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        if any(0xD800 <= ord(char) <= 0xDFFF for char in successor):
            return paginate_thread_ids([], normalized)
        others = replace(normalized, id_prefix=None)
        async with self._lock:
            matching = [t for t in self._threads.threads.values() if others.matches(t) and prefix <= t.id < successor]
            return paginate_thread_ids([t.id for t in sorted(matching, key=recent_activity_key)], normalized)


class FilterSendsUnstorableText(ReferenceStore):
    """Sends a resource or parent filter to its database as is: NUL or a lone surrogate raises StorageIOError."""

    async def list_threads_query(self, query: ThreadQuery) -> ThreadPage:
        normalized = query.normalized()
        for text in (normalized.resource_id, normalized.parent_filter.parent_id):
            if text is not None and ("\x00" in text or any(0xD800 <= ord(char) <= 0xDFFF for char in text)):
                raise StorageIOError(f"the database cannot take {text!r}")
        return await super().list_threads_query(query)


class IdOrder(ReferenceStore):
    """Orders filtered listings by id only, the primary key, forgetting recent activity."""

    async def list_threads_query(self, query: ThreadQuery) -> ThreadPage:
        normalized = query.normalized()
        async with self._lock:
            return paginate_thread_ids(
                sorted(i for i, t in self._threads.threads.items() if normalized.matches(t)), normalized
            )


class RefusesHugeOffset(ReferenceStore):
    """Sends the offset to its database as a 64-bit integer, refusing one past 2**63 - 1."""

    async def list_threads_query(self, query: ThreadQuery) -> ThreadPage:
        if query.offset > 2**63 - 1:
            raise ValidationError(f"offset {query.offset} is out of range for type bigint")
        return await super().list_threads_query(query)


class TotalCappedAtAThousand(ReferenceStore):
    """Counts matches as `count(*)` over a `LIMIT 1000` subquery: `total` stops at 1,000; items and cursors are fine."""

    async def list_threads_query(self, query: ThreadQuery) -> ThreadPage:
        page = await super().list_threads_query(query)
        page.total = min(page.total, 1000)
        return page


class PrevCursorOnFirstPage(ReferenceStore):
    """Gives a prev_cursor whenever limit > 0, even on the first page."""

    async def list_threads_query(self, query: ThreadQuery) -> ThreadPage:
        page = await super().list_threads_query(query)
        normalized = query.normalized()
        if page.prev_cursor is None and normalized.limit > 0:
            page.prev_cursor = normalized.encode_cursor(0)
        return page


class UnclampedPrevCursor(ReferenceStore):
    """Builds prev_cursor from `start - limit` without max(..., 0): offset 2, limit 3 points at -1."""

    async def list_threads_query(self, query: ThreadQuery) -> ThreadPage:
        page = await super().list_threads_query(query)
        normalized = query.normalized()
        if page.prev_cursor is not None:
            start = min(normalized.offset, page.total)
            token = {
                "offset": start - normalized.limit,
                "resource_id": normalized.resource_id,
                "parent_filter": normalized.parent_filter.to_json(),
                "id_prefix": normalized.id_prefix,
            }
            raw = json.dumps(token, separators=(",", ":"), ensure_ascii=False).encode()
            page.prev_cursor = "thr_" + base64.urlsafe_b64encode(raw).decode().rstrip("=")
        return page


class EndlessLimitZero(ReferenceStore):
    """Like upstream PostgreSQL: limit 0 says has_more and hands out a next_cursor to the same offset."""

    async def list_threads_query(self, query: ThreadQuery) -> ThreadPage:
        page = await super().list_threads_query(query)
        normalized = query.normalized()
        if normalized.limit == 0 and normalized.offset < page.total:
            page.has_more = True
            page.next_cursor = normalized.encode_cursor(normalized.offset)
        return page


class BareOffsetCursors(ReferenceStore):
    """Hands out cursors as bare decimal offsets ("3") instead of thr_ tokens."""

    async def list_threads_query(self, query: ThreadQuery) -> ThreadPage:
        page = await super().list_threads_query(query)
        return _recode(page, query.normalized(), str)


class UnboundCursors(ReferenceStore):
    """Encodes cursors with the offset only, as if the query had no filters."""

    async def list_threads_query(self, query: ThreadQuery) -> ThreadPage:
        page = await super().list_threads_query(query)
        return _recode(page, query.normalized(), ThreadQuery().encode_cursor)


class BareCursorsWhenFiltered(ReferenceStore):
    """Keeps legacy bare offsets as cursors of filtered queries, which refuse them."""

    async def list_threads_query(self, query: ThreadQuery) -> ThreadPage:
        page = await super().list_threads_query(query)
        return _recode(page, query.normalized(), str) if query.has_filters() else page


class LastItemNextCursor(ReferenceStore):
    """Points next_cursor at the last item shown (end - 1), so each page repeats one thread."""

    async def list_threads_query(self, query: ThreadQuery) -> ThreadPage:
        page = await super().list_threads_query(query)
        normalized = query.normalized()
        if page.next_cursor is not None:
            page.next_cursor = normalized.encode_cursor(normalized.decode_cursor(page.next_cursor) - 1)
        return page


class PrefixFreeCursors(ReferenceStore):
    """Leaves id_prefix out of its cursors, so a prefixed cursor pages the unprefixed listing."""

    async def list_threads_query(self, query: ThreadQuery) -> ThreadPage:
        page = await super().list_threads_query(query)
        normalized = query.normalized()
        return _recode(page, normalized, replace(normalized, id_prefix=None).encode_cursor)


def _rewritten(query: ThreadQuery, *, ensure_ascii: bool, sort_keys: bool = False) -> Callable[[int], str]:
    """An encoder of `query`'s cursors whose token JSON `json.dumps` writes with these options."""

    def encode(offset: int) -> str:
        token = json.loads(base64.urlsafe_b64decode(query.encode_cursor(offset)[4:] + "=="))
        raw = json.dumps(token, separators=(",", ":"), ensure_ascii=ensure_ascii, sort_keys=sort_keys).encode()
        return "thr_" + base64.urlsafe_b64encode(raw).decode().rstrip("=")

    return encode


class AsciiEscapedCursors(ReferenceStore):
    """Writes cursor tokens with Python's default `json.dumps`: non-ASCII text as `\\u00e9` escapes."""

    async def list_threads_query(self, query: ThreadQuery) -> ThreadPage:
        page = await super().list_threads_query(query)
        normalized = query.normalized()
        return _recode(page, normalized, _rewritten(normalized, ensure_ascii=True))


class SortedKeyCursors(ReferenceStore):
    """Writes cursor tokens with sorted keys (`id_prefix` first), not in serde's field order."""

    async def list_threads_query(self, query: ThreadQuery) -> ThreadPage:
        page = await super().list_threads_query(query)
        normalized = query.normalized()
        return _recode(page, normalized, _rewritten(normalized, sort_keys=True, ensure_ascii=False))


class RunPrefixOnRunId(ReferenceStore):
    """Applies list_runs' id_prefix to the run id instead of the run's thread id."""

    async def list_runs(self, query: RunQuery) -> RunPage:
        normalized = query.normalized()
        prefix, others = normalized.id_prefix, replace(normalized, id_prefix=None)
        async with self._lock:
            runs: list[RunRecord] = [
                r.copy() for r in self._runs.runs.values() if prefix is None or r.run_id.startswith(prefix)
            ]
        return paginate_runs(runs, others)


class RunLikePrefix(ReferenceStore):
    """Matches runs by `thread_id LIKE prefix || '%'` without escaping `%` and `_`."""

    async def list_runs(self, query: RunQuery) -> RunPage:
        normalized = query.normalized()
        if normalized.id_prefix is None:
            return await super().list_runs(query)
        pattern, others = _like(normalized.id_prefix), replace(normalized, id_prefix=None)
        async with self._lock:
            runs = [r.copy() for r in self._runs.runs.values() if pattern.match(r.thread_id)]
        return paginate_runs(runs, others)


class QueriedIdsAsFileNames(IdsAsFileNames):
    """The file-name store of `broken.threads`, under the query rules: their tests save `\\` ids (QRY-2, SEC-1)."""


ZOO: list[Broken] = [
    Broken(UncappedLimit, "QRY-1", "does not cap limit at 200"),
    Broken(RawResourceFilter, "QRY-1", "does not normalize the resource_id filter"),
    Broken(BlankParentFilter, "QRY-1", "treats parent(' ') as a parent id instead of any()"),
    # also SEC-1: a wildcard prefix returns ids outside the prefix
    Broken(LikePrefix, "QRY-2", "id_prefix as an unescaped LIKE pattern: % and _ are wildcards", also=("SEC-1",)),
    Broken(FilterSendsUnstorableText, "QRY-2", "a resource or parent filter with NUL or a lone surrogate raises"),
    Broken(PrefixRangeIntoSurrogates, "QRY-2", "id_prefix as a code point range whose end lands in the surrogates"),
    # also CUR-4: following next_cursor visits the matches out of THR-5 order
    Broken(IdOrder, "QRY-3", "orders query results by id only", also=("CUR-4",)),
    Broken(RefusesHugeOffset, "QRY-3", "an offset past 2**63 - 1 is refused instead of giving an empty page"),
    Broken(TotalCappedAtAThousand, "QRY-3", "list_threads_query counts at most 1,000 matching threads in total"),
    # also QRY-2: the spurious first-page prev_cursor of a filter no store can hold (a lone surrogate)
    # cannot be encoded, so that query crashes instead of returning its empty page
    Broken(PrevCursorOnFirstPage, "QRY-4", "prev_cursor present on the first page", also=("QRY-2",)),
    Broken(UnclampedPrevCursor, "QRY-4", "prev_cursor offset start - limit without max(..., 0)"),
    Broken(EndlessLimitZero, "QRY-5", "limit 0 says has_more with a next_cursor to the same offset"),
    Broken(AsciiEscapedCursors, "CUR-1", "cursor tokens escape non-ASCII text as \\u sequences"),
    Broken(SortedKeyCursors, "CUR-1", "cursor token keys sorted, not in serde's field order"),
    # also CUR-2, CUR-3, CUR-4, SEC-1: a bare offset binds no filter: refused under its own filtered query
    # (CUR-3, CUR-4), accepted under others, prefix dropped (CUR-2, SEC-1)
    Broken(BareOffsetCursors, "CUR-1", "cursors are bare decimal offsets", also=("CUR-2", "CUR-3", "CUR-4", "SEC-1")),
    # also CUR-1, CUR-4, SEC-1: a token without filters is no CUR-1 token of its query, cannot be followed
    # (CUR-4), drops the prefix (SEC-1)
    Broken(
        UnboundCursors,
        "CUR-2",
        "cursors hold the offset only, not the query's filters",
        also=("CUR-1", "CUR-4", "SEC-1"),
    ),
    # also CUR-1, CUR-4: a bare offset is no thr_ token (CUR-1) and filtered queries refuse it, so it cannot be
    # followed (CUR-4)
    Broken(BareCursorsWhenFiltered, "CUR-3", "bare decimal cursors for filtered queries", also=("CUR-1", "CUR-4")),
    # also QRY-4: QRY-4 says next_cursor decodes to the offset just after the page
    Broken(LastItemNextCursor, "CUR-4", "next_cursor points at the last item shown, repeating it", also=("QRY-4",)),
    # also CUR-1, CUR-2: its token lacks the query's id_prefix (CUR-1), so it is a cursor of other filters
    # (CUR-2)
    Broken(
        PrefixFreeCursors, "SEC-1", "cursors leave id_prefix out, so they widen the listing", also=("CUR-1", "CUR-2")
    ),
    # also RUN-4: RUN-4 says list_runs' id_prefix is a prefix of the thread id
    Broken(RunPrefixOnRunId, "SEC-1", "list_runs id_prefix matches the run id, not the thread id", also=("RUN-4",)),
    # also RUN-4: RUN-4 says list_runs' id_prefix is a literal prefix
    Broken(RunLikePrefix, "SEC-1", "list_runs id_prefix as an unescaped LIKE pattern", also=("RUN-4",)),
    # Breaks MOD-6 alone: the tests of QRY-2 and SEC-1 that save ids holding the portable `\\` are not checked
    # past it, and none of them fails
    Broken(
        QueriedIdsAsFileNames,
        "MOD-6",
        "ids kept as file names: the portable \\ and .. raise StorageIOError",
        capabilities="thread_state,atomic_delete,concurrent_writers,cancel_safe",
    ),
]
