"""A correct store that keeps portable ids only (MOD-6), as a backend keyed by file names or URL paths may.

Every write refuses a thread, run or message id that is not portable (1 to 128 ASCII
letters, digits and `- _ . : % \\`) with `ValidationError`, as MOD-6 allows a store that
does not declare `any_ids`; everything else is the reference store. The kit must pass
it: no test but MOD-6's may need an id outside the portable set from such a store.
"""

from __future__ import annotations

import re

from conformance import Message, MessageRecord, PersistedState, RunRecord, Thread, ValidationError
from reference_store import ReferenceStore

#: MOD-6's portable ids.
PORTABLE = re.compile(r"[A-Za-z0-9_.:%\\-]{1,128}", re.ASCII)


def _portable(*ids: str | None) -> None:
    """Refuse the first id that is not portable (absent ids are the models' own rules' business)."""
    for given in ids:
        if given is not None and not PORTABLE.fullmatch(given):
            raise ValidationError(f"id {given!r} is not portable: this store keeps 1-128 of A-Z a-z 0-9 - _ . : % \\")


class PortableIdsStore(ReferenceStore):
    """The reference store, keeping portable ids only: it declares every capability but `any_ids`."""

    capabilities = ReferenceStore.capabilities - {"any_ids"}

    async def save_thread(self, thread: Thread) -> None:
        _portable(thread.id)
        await super().save_thread(thread)

    async def save_thread_validated(self, thread: Thread) -> None:
        _portable(thread.id)
        await super().save_thread_validated(thread)

    async def save_thread_state(self, thread_id: str, state: PersistedState) -> None:
        _portable(thread_id)
        await super().save_thread_state(thread_id, state)

    async def save_messages(self, thread_id: str, messages: list[Message]) -> None:
        _portable(thread_id, *(message.id for message in messages))
        await super().save_messages(thread_id, messages)

    async def append_message_records(self, thread_id: str, messages: list[Message]) -> list[MessageRecord]:
        _portable(thread_id, *(message.id for message in messages))
        return await super().append_message_records(thread_id, messages)

    async def create_run(self, record: RunRecord) -> None:
        _portable(record.run_id, record.thread_id)
        await super().create_run(record)

    async def checkpoint(self, thread_id: str, messages: list[Message], run: RunRecord) -> None:
        _portable(thread_id, run.run_id, *(message.id for message in messages))
        await super().checkpoint(thread_id, messages, run)

    async def checkpoint_append(
        self, thread_id: str, messages: list[Message], expected_version: int | None, run: RunRecord
    ) -> int:
        _portable(thread_id, run.run_id, *(message.id for message in messages))
        return await super().checkpoint_append(thread_id, messages, expected_version, run)
