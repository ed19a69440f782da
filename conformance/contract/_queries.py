"""Queries, pages and opaque cursors (QRY, CUR, MSG-7, RUN-4) and in-memory pagination."""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from conformance.contract._enums import MessageOrder, MessageVisibilityFilter, RunStatus, Visibility
from conformance.contract._errors import InvalidCursorError, ValidationError
from conformance.contract._models import MessageRecord, Thread, normalize_lineage_id
from conformance.contract._runs import RunRecord
from conformance.contract._threads import recent_activity_key

__all__ = [
    "MessagePage",
    "MessageQuery",
    "PageWindow",
    "RunPage",
    "RunQuery",
    "ThreadPage",
    "ThreadParentFilter",
    "ThreadQuery",
    "paginate_message_records",
    "paginate_runs",
    "paginate_thread_ids",
    "paginate_threads",
]

MAX_LIMIT = 200
THREAD_CURSOR_PREFIX = "thr_"
MESSAGE_CURSOR_PREFIX = "msg_"
_BARE_OFFSET = re.compile(r"[0-9]+")


def _check_count(owner: str, name: str, value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValidationError(f"{owner}: field '{name}' must be an integer >= 0, got {value!r}")
    return value


def _check_optional_str(owner: str, name: str, value: object) -> None:
    if value is not None and not isinstance(value, str):
        raise ValidationError(f"{owner}: field '{name}' must be a string or None, got {value!r}")


@dataclass(frozen=True, slots=True)
class ThreadParentFilter:
    """Lineage filter of a thread query: `any()`, `root()` (no parent) or `parent(id)`."""

    kind: Literal["any", "root", "parent"] = "any"
    parent_id: str | None = None

    @classmethod
    def any(cls) -> ThreadParentFilter:
        """Match every thread."""
        return cls("any")

    @classmethod
    def root(cls) -> ThreadParentFilter:
        """Match threads without a (normalized) parent."""
        return cls("root")

    @classmethod
    def parent(cls, parent_id: str) -> ThreadParentFilter:
        """Match the direct children of `parent_id`."""
        return cls("parent", parent_id)

    def normalized(self) -> ThreadParentFilter:
        """`parent(" p ")` becomes `parent("p")`, a blank parent becomes `any()` (QRY-1)."""
        if self.kind != "parent":
            return self
        parent_id = normalize_lineage_id(self.parent_id)
        return ThreadParentFilter.parent(parent_id) if parent_id else ThreadParentFilter.any()

    def to_json(self) -> object:
        """`"any"`, `"root"` or `{"parent": id}`, as inside thread cursors."""
        return {"parent": self.parent_id} if self.kind == "parent" else self.kind


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _token_bytes(token: dict[str, Any]) -> bytes:
    """The bytes of a cursor token as CUR-1 writes them: compact JSON, text as raw UTF-8.

    This is what upstream's `serde_json::to_vec` writes: keys in the token's order, no
    spaces, absent filters as `null`, non-ASCII text unescaped; only `"`, `\\` and the
    control characters U+0000-U+001F are escaped (`\\n`, `\\t`, ..., `\\u001f`). A lone
    surrogate, which UTF-8 cannot carry, is written as its lowercase `\\udxxx` escape.
    """
    text = json.dumps(token, separators=(",", ":"), ensure_ascii=False)
    return _LONE_SURROGATE.sub(lambda match: f"\\u{ord(match.group()):04x}", text).encode()


def _encode(prefix: str, token: dict[str, Any]) -> str:
    return prefix + base64.urlsafe_b64encode(_token_bytes(token)).decode().rstrip("=")


def _decode(prefix: str, cursor: object, keys: Iterable[str]) -> dict[str, Any]:
    if not isinstance(cursor, str):
        raise InvalidCursorError(f"cursor must be a string, got {type(cursor).__name__}")
    if not cursor.startswith(prefix):
        raise InvalidCursorError(f"cursor {cursor[:40]!r} does not start with {prefix!r}")
    body = cursor[len(prefix) :]
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        if not re.fullmatch(r"[A-Za-z0-9_-]*", body):
            raise ValueError("not URL-safe base64")
        token = json.loads(raw)
    except (binascii.Error, ValueError, RecursionError) as error:
        raise InvalidCursorError(f"cursor {cursor[:40]!r} is not a valid token: {error}") from None
    if not isinstance(token, dict) or set(token) != set(keys):
        raise InvalidCursorError(f"cursor {cursor[:40]!r} does not hold the fields {sorted(keys)}")
    offset = token["offset"]
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        raise InvalidCursorError(f"cursor {cursor[:40]!r} holds an invalid offset {offset!r}")
    return token


@dataclass(slots=True, kw_only=True)
class ThreadQuery:
    """Filters and window of `list_threads_query` (QRY-1..5)."""

    offset: int = 0
    limit: int = 50
    resource_id: str | None = None
    parent_filter: ThreadParentFilter = field(default_factory=ThreadParentFilter.any)
    id_prefix: str | None = None

    def normalized(self) -> ThreadQuery:
        """Check types, cap `limit` at 200, normalize `resource_id` and the parent filter (QRY-1).

        Raises `ValidationError` naming the field for a negative or non-integer
        offset/limit, or a non-string filter.
        """
        owner = "ThreadQuery"
        _check_count(owner, "offset", self.offset)
        _check_count(owner, "limit", self.limit)
        _check_optional_str(owner, "resource_id", self.resource_id)
        _check_optional_str(owner, "id_prefix", self.id_prefix)
        if not isinstance(self.parent_filter, ThreadParentFilter):
            raise ValidationError(f"{owner}: field 'parent_filter' must be a ThreadParentFilter")
        return replace(
            self,
            limit=min(self.limit, MAX_LIMIT),
            resource_id=normalize_lineage_id(self.resource_id),
            parent_filter=self.parent_filter.normalized(),
        )

    def has_filters(self) -> bool:
        """True when the normalized query filters by resource, parent or id prefix."""
        query = self.normalized()
        return query.resource_id is not None or query.parent_filter.kind != "any" or query.id_prefix is not None

    def _token(self, offset: int) -> dict[str, Any]:
        query = self.normalized()
        return {
            "offset": offset,
            "resource_id": query.resource_id,
            "parent_filter": query.parent_filter.to_json(),
            "id_prefix": query.id_prefix,
        }

    def encode_cursor(self, offset: int) -> str:
        """An opaque `thr_` cursor for `offset` under this query's filters (CUR-1)."""
        return _encode(THREAD_CURSOR_PREFIX, self._token(_check_count("cursor", "offset", offset)))

    def decode_cursor(self, cursor: str) -> int:
        """The offset a cursor of this query holds (CUR-2, CUR-3).

        A bare decimal offset is accepted only when the query has no filters. Raises
        `InvalidCursorError` for text that is not a `thr_` token, and for a token whose
        filters differ from this (normalized) query's.
        """
        if isinstance(cursor, str) and _BARE_OFFSET.fullmatch(cursor):
            if self.has_filters():
                raise InvalidCursorError(
                    "a bare numeric cursor is refused for a filtered thread query; pass the next_cursor it returned"
                )
            return int(cursor)
        token = _decode(THREAD_CURSOR_PREFIX, cursor, self._token(0))
        expected = self._token(token["offset"])
        if token != expected:
            raise InvalidCursorError("cursor does not match the thread query's filters")
        offset: int = token["offset"]
        return offset

    def matches(self, thread: Thread) -> bool:
        """True when `thread` passes this (normalized) query's filters (QRY-2)."""
        if self.id_prefix is not None and not thread.id.startswith(self.id_prefix):
            return False
        if self.resource_id is not None and normalize_lineage_id(thread.resource_id) != self.resource_id:
            return False
        parent = normalize_lineage_id(thread.parent_thread_id)
        if self.parent_filter.kind == "root":
            return parent is None
        if self.parent_filter.kind == "parent":
            return parent == self.parent_filter.parent_id
        return True


@dataclass(slots=True, kw_only=True)
class ThreadPage:
    """One page of thread ids with the total and cursors (QRY-3, QRY-4)."""

    items: list[str] = field(default_factory=list)
    total: int = 0
    has_more: bool = False
    next_cursor: str | None = None
    prev_cursor: str | None = None


@dataclass(slots=True, kw_only=True)
class MessageQuery:
    """Filters and window of `list_message_records` (MSG-7)."""

    offset: int = 0
    limit: int = 50
    after: int | None = None
    before: int | None = None
    order: MessageOrder = MessageOrder.ASC
    visibility: MessageVisibilityFilter = MessageVisibilityFilter.ANY
    run_id: str | None = None

    def normalized(self) -> MessageQuery:
        """Check types and cap `limit` at 200. Raises `ValidationError` naming a bad field."""
        owner = "MessageQuery"
        _check_count(owner, "offset", self.offset)
        _check_count(owner, "limit", self.limit)
        for name in ("after", "before"):
            if getattr(self, name) is not None:
                _check_count(owner, name, getattr(self, name))
        if not isinstance(self.order, MessageOrder):
            raise ValidationError(f"{owner}: field 'order' must be a MessageOrder, got {self.order!r}")
        if not isinstance(self.visibility, MessageVisibilityFilter):
            raise ValidationError(
                f"{owner}: field 'visibility' must be a MessageVisibilityFilter, got {self.visibility!r}"
            )
        _check_optional_str(owner, "run_id", self.run_id)
        return replace(self, limit=min(self.limit, MAX_LIMIT))

    def _token(self, offset: int) -> dict[str, Any]:
        query = self.normalized()
        return {
            "offset": offset,
            "after": query.after,
            "before": query.before,
            "order": query.order.value,
            "visibility": query.visibility.value,
            "run_id": query.run_id,
        }

    def encode_cursor(self, offset: int) -> str:
        """An opaque `msg_` cursor for `offset` under this query's filters (CUR-1)."""
        return _encode(MESSAGE_CURSOR_PREFIX, self._token(_check_count("cursor", "offset", offset)))

    def decode_cursor(self, cursor: str) -> int:
        """The offset a cursor of this query holds; a bare decimal offset is accepted (CUR-2, CUR-3).

        Raises `InvalidCursorError` for text that is not a `msg_` token, and for a
        token whose filters differ from this query's.
        """
        if isinstance(cursor, str) and _BARE_OFFSET.fullmatch(cursor):
            return int(cursor)
        token = _decode(MESSAGE_CURSOR_PREFIX, cursor, self._token(0))
        # Compare JSON spellings: in Python `true == 1` and `1.0 == 1`, which a token must not exploit.
        if json.dumps(token, sort_keys=True) != json.dumps(self._token(token["offset"]), sort_keys=True):
            raise InvalidCursorError("cursor does not match the message query's filters")
        offset: int = token["offset"]
        return offset

    def matches(self, record: MessageRecord) -> bool:
        """True when `record` passes the filters `after`, `before`, `run_id`, visibility (MSG-7)."""
        if self.after is not None and record.seq <= self.after:
            return False
        if self.before is not None and record.seq >= self.before:
            return False
        if self.run_id is not None and record.produced_by_run_id != self.run_id:
            return False
        internal = record.message.visibility is Visibility.INTERNAL
        if self.visibility is MessageVisibilityFilter.EXTERNAL:
            return not internal
        if self.visibility is MessageVisibilityFilter.INTERNAL:
            return internal
        return True


@dataclass(slots=True, kw_only=True)
class MessagePage:
    """One page of message records with the total and cursors."""

    records: list[MessageRecord] = field(default_factory=list)
    total: int = 0
    has_more: bool = False
    next_cursor: str | None = None
    prev_cursor: str | None = None


@dataclass(slots=True, kw_only=True)
class RunQuery:
    """Filters and window of `list_runs` (RUN-4); `id_prefix` is a prefix of the run's thread id."""

    offset: int = 0
    limit: int = 50
    thread_id: str | None = None
    status: RunStatus | None = None
    id_prefix: str | None = None

    def normalized(self) -> RunQuery:
        """Check types and clamp `limit` to [1, 200]. Raises `ValidationError` naming a bad field."""
        owner = "RunQuery"
        _check_count(owner, "offset", self.offset)
        _check_count(owner, "limit", self.limit)
        _check_optional_str(owner, "thread_id", self.thread_id)
        _check_optional_str(owner, "id_prefix", self.id_prefix)
        if self.status is not None and not isinstance(self.status, RunStatus):
            raise ValidationError(f"{owner}: field 'status' must be a RunStatus or None, got {self.status!r}")
        return replace(self, limit=max(1, min(self.limit, MAX_LIMIT)))

    def matches(self, run: RunRecord) -> bool:
        """True when `run` passes the filters `thread_id`, `status`, `id_prefix`."""
        if self.thread_id is not None and run.thread_id != self.thread_id:
            return False
        if self.status is not None and run.status is not self.status:
            return False
        return self.id_prefix is None or run.thread_id.startswith(self.id_prefix)


@dataclass(slots=True, kw_only=True)
class RunPage:
    """One page of runs with the total; `has_more` iff runs remain after the page."""

    items: list[RunRecord] = field(default_factory=list)
    total: int = 0
    has_more: bool = False


@dataclass(frozen=True, slots=True)
class PageWindow:
    """Where one page lies among `total` matches: `matches[start:end]` (QRY-3, QRY-4, MSG-7, RUN-4).

    Built from a normalized query's `offset` and `limit`; a store that pages in SQL
    counts the matches, then reads `LIMIT end - start OFFSET start`. `has_more` is
    true when matches remain after the page (never for `limit == 0`), and `cursors`
    gives the page's `next_cursor` and `prev_cursor`.

    >>> window = PageWindow(offset=4, limit=3, total=5)
    >>> window.start, window.end, window.has_more
    (4, 5, False)
    """

    offset: int
    limit: int
    total: int

    @property
    def start(self) -> int:
        """The index of the page's first match: `offset`, or `total` when the offset is past the end."""
        return min(self.offset, self.total)

    @property
    def end(self) -> int:
        """The index after the page's last match: at most `limit` after `start`, at most `total`."""
        return min(self.start + self.limit, self.total)

    @property
    def has_more(self) -> bool:
        """True when matches remain after the page (QRY-3); a zero `limit` has none."""
        return self.limit > 0 and self.end < self.total

    def cursors(self, query: ThreadQuery | MessageQuery) -> tuple[str | None, str | None]:
        """`(next_cursor, prev_cursor)` of this page under `query`'s filters (QRY-4).

        `next_cursor` encodes `end` when `has_more`; `prev_cursor` encodes
        `max(start - limit, 0)` when the page does not start at 0 (and `limit > 0`);
        each is `None` otherwise.
        """
        next_cursor = query.encode_cursor(self.end) if self.has_more else None
        has_prev = self.limit > 0 and self.start > 0
        prev_cursor = query.encode_cursor(max(self.start - self.limit, 0)) if has_prev else None
        return next_cursor, prev_cursor


def paginate_thread_ids(ordered_ids: Sequence[str], query: ThreadQuery) -> ThreadPage:
    """The page of `query` over the ids of every matching thread, already in THR-5 order (QRY-3, QRY-4).

    For a store that filters and orders itself (an index, a sorted table) and has
    only to cut the page; `ordered_ids` is sliced once, not copied. Raises
    `ValidationError` for a malformed query. `paginate_threads` filters and orders too.
    """
    normalized = query.normalized()
    window = PageWindow(offset=normalized.offset, limit=normalized.limit, total=len(ordered_ids))
    next_cursor, prev_cursor = window.cursors(normalized)
    return ThreadPage(
        items=list(ordered_ids[window.start : window.end]),
        total=window.total,
        has_more=window.has_more,
        next_cursor=next_cursor,
        prev_cursor=prev_cursor,
    )


def paginate_threads(threads: Iterable[Thread], query: ThreadQuery) -> ThreadPage:
    """Filter, order (THR-5) and page an in-memory thread set as QRY-1..5 define.

    Raises `ValidationError` for a malformed query.
    """
    normalized = query.normalized()
    ordered = sorted((t for t in threads if normalized.matches(t)), key=recent_activity_key)
    return paginate_thread_ids([t.id for t in ordered], normalized)


def paginate_message_records(records: Iterable[MessageRecord], query: MessageQuery) -> MessagePage:
    """Filter, order by seq and page in-memory records as MSG-7 defines.

    Raises `ValidationError` for a malformed query.
    """
    normalized = query.normalized()
    matching = sorted(
        (r for r in records if normalized.matches(r)),
        key=lambda r: r.seq,
        reverse=normalized.order is MessageOrder.DESC,
    )
    window = PageWindow(offset=normalized.offset, limit=normalized.limit, total=len(matching))
    next_cursor, prev_cursor = window.cursors(normalized)
    return MessagePage(
        records=matching[window.start : window.end],
        total=window.total,
        has_more=window.has_more,
        next_cursor=next_cursor,
        prev_cursor=prev_cursor,
    )


def paginate_runs(runs: Iterable[RunRecord], query: RunQuery) -> RunPage:
    """Filter, order by (`created_at`, `run_id`) and page in-memory runs as RUN-4 defines.

    The page holds the given objects, not copies: a store that keeps them copies the
    page's items before returning it (ISO-1). Raises `ValidationError` for a
    malformed query.

    >>> paginate_runs([], RunQuery(limit=10))
    RunPage(items=[], total=0, has_more=False)
    """
    normalized = query.normalized()
    matching = sorted((r for r in runs if normalized.matches(r)), key=lambda r: (r.created_at, r.run_id))
    window = PageWindow(offset=normalized.offset, limit=normalized.limit, total=len(matching))
    return RunPage(items=matching[window.start : window.end], total=window.total, has_more=window.has_more)
