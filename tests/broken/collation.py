"""Stores that compare ids by a collation: case-insensitive (MySQL's default) or Unicode-normalized keys.

Each keeps every id it is given alone exactly; only two ids that differ by case,
normal form or width, side by side, show the bug (MOD-6, QRY-2, RUN-4).
"""

from __future__ import annotations

import unicodedata
from dataclasses import replace

from broken import Broken
from conformance import (
    AlreadyExistsError,
    Message,
    MessageRecord,
    RunPage,
    RunQuery,
    RunRecord,
    Thread,
    ThreadPage,
    ThreadQuery,
    ValidationError,
    paginate_runs,
    paginate_thread_ids,
    recent_activity_key,
)
from reference_store import ReferenceStore


def _nfkc(text: str) -> str:
    return unicodedata.normalize("NFKC", text)


class CaseInsensitiveThreadKeys(ReferenceStore):
    """Keys threads as a primary key under MySQL's default collation: saving "A" replaces "a", "a" loads "A"."""

    async def save_thread(self, thread: Thread) -> None:
        async with self._lock:
            same = [i for i in self._threads.threads if i != thread.id and i.casefold() == thread.id.casefold()]
            for thread_id in same:
                self._threads.drop(thread_id)
        await super().save_thread(thread)

    async def load_thread(self, thread_id: str) -> Thread | None:
        async with self._lock:
            same = [t for i, t in self._threads.threads.items() if i.casefold() == thread_id.casefold()]
            return same[0].copy() if same else None


class NfcThreadKeys(ReferenceStore):
    """NFC-normalizes every thread id it saves and loads: e + U+0301 is stored, and found, as U+00E9."""

    async def save_thread(self, thread: Thread) -> None:
        await super().save_thread(replace(thread, id=unicodedata.normalize("NFC", thread.id)))

    async def load_thread(self, thread_id: str) -> Thread | None:
        return await super().load_thread(unicodedata.normalize("NFC", thread_id))


class CaseInsensitiveRunKeys(ReferenceStore):
    """A unique run id under a case-insensitive collation: create_run("A") after "a" raises AlreadyExistsError."""

    async def create_run(self, record: RunRecord) -> None:
        async with self._lock:
            taken = [i for i in self._runs.runs if i.casefold() == record.run_id.casefold()]
        if taken:
            raise AlreadyExistsError(f"run {record.run_id!r} collides with {taken[0]!r}")
        await super().create_run(record)


class CaseInsensitiveMessageIds(ReferenceStore):
    """A unique (thread, message id) under a case-insensitive collation: message "A" repeats "a" (ValidationError)."""

    async def append_message_records(self, thread_id: str, messages: list[Message]) -> list[MessageRecord]:
        committed = await self.load_committed_messages(thread_id) or []
        seen = {m.id.casefold() for m in committed if m.id is not None}
        for message in messages:
            if message.id is not None:
                if message.id.casefold() in seen:
                    raise ValidationError(f"duplicate message id {message.id!r}")
                seen.add(message.id.casefold())
        return await super().append_message_records(thread_id, messages)


class CaseInsensitivePrefix(ReferenceStore):
    """Matches id_prefix case-insensitively (`id ILIKE prefix || '%'`): prefix "a" lists "A-2"."""

    async def list_threads_query(self, query: ThreadQuery) -> ThreadPage:
        normalized = query.normalized()
        if normalized.id_prefix is None:
            return await super().list_threads_query(query)
        prefix, others = normalized.id_prefix.casefold(), replace(normalized, id_prefix=None)
        async with self._lock:
            matching = [
                t for t in self._threads.threads.values() if others.matches(t) and t.id.casefold().startswith(prefix)
            ]
            return paginate_thread_ids([t.id for t in sorted(matching, key=recent_activity_key)], normalized)


class NfkcRunFilters(ReferenceStore):
    """Compares list_runs' thread_id and id_prefix NFKC-normalized (width folded): prefix U+FF21 lists "A-5"."""

    async def list_runs(self, query: RunQuery) -> RunPage:
        normalized = query.normalized()
        others = replace(normalized, thread_id=None, id_prefix=None)

        def keeps(r: RunRecord) -> bool:
            if normalized.thread_id is not None and _nfkc(r.thread_id) != _nfkc(normalized.thread_id):
                return False
            prefix = normalized.id_prefix
            return others.matches(r) and (prefix is None or _nfkc(r.thread_id).startswith(_nfkc(prefix)))

        async with self._lock:
            matching = sorted((r for r in self._runs.runs.values() if keeps(r)), key=lambda r: (r.created_at, r.run_id))
            return paginate_runs([r.copy() for r in matching], normalized)


ZOO: list[Broken] = [
    Broken(CaseInsensitiveThreadKeys, "MOD-6", "thread ids compared case-insensitively: saving 'A' replaces 'a'"),
    # also QRY-2, SEC-1: a thread saved as e + U+0301 is listed under the precomposed prefix U+00E9, not its own
    Broken(NfcThreadKeys, "MOD-6", "thread ids NFC-normalized: e + U+0301 becomes U+00E9", also=("QRY-2", "SEC-1")),
    Broken(CaseInsensitiveRunKeys, "MOD-6", "run ids compared case-insensitively: run 'A' after 'a' already exists"),
    Broken(CaseInsensitiveMessageIds, "MOD-6", "message ids compared case-insensitively: 'A' repeats 'a'"),
    # also SEC-1: prefix 'a' lists ids outside it
    Broken(CaseInsensitivePrefix, "QRY-2", "id_prefix matched case-insensitively (ILIKE)", also=("SEC-1",)),
    # also SEC-1: prefix U+FF21 lists runs of threads outside it
    Broken(NfkcRunFilters, "RUN-4", "list_runs compares thread ids NFKC-normalized (width folded)", also=("SEC-1",)),
]
