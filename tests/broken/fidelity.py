"""Stores that change a value on its way through storage, in type or in content (MOD-5).

Each passes every check that compares with `==`: `1 == 1.0`, a dropped `None` key or a
NUL stripped from one message go unseen unless values are compared with their types
and the test data holds such values.
"""

from __future__ import annotations

from dataclasses import replace

from broken import Broken
from conformance import JsonValue, Message, MessageRecord, PersistedState, Thread
from reference_store import ReferenceStore


def _floats(value: JsonValue) -> JsonValue:
    """`value` with every integer (not the booleans) made a float, at every depth."""
    if isinstance(value, dict):
        return {key: _floats(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_floats(item) for item in value]
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _without_nulls(value: JsonValue) -> JsonValue:
    """`value` with every `null`-valued key of every object left out."""
    if isinstance(value, dict):
        return {key: _without_nulls(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [_without_nulls(item) for item in value]
    return value


def _without_nul(block: dict[str, JsonValue]) -> dict[str, JsonValue]:
    """A content block with NUL taken out of its text values."""
    return {key: value.replace("\x00", "") if isinstance(value, str) else value for key, value in block.items()}


class IntsAsFloats(ReferenceStore):
    """Keeps `custom` JSON in a document store whose numbers are doubles: the integer 1 reads back as 1.0."""

    async def save_thread(self, thread: Thread) -> None:
        kept = thread.copy()
        kept.metadata.custom = {key: _floats(value) for key, value in kept.metadata.custom.items()}
        await super().save_thread(kept)


class DoubleStamps(ReferenceStore):
    """Keeps thread stamps as doubles (a REAL column, JavaScript's JSON.parse): 2**53 + 1 reads back as 2**53."""

    async def save_thread(self, thread: Thread) -> None:
        kept = thread.copy()
        metadata = kept.metadata
        for owner, name in ((metadata, "created_at"), (metadata, "updated_at"), (kept, "latest_run_updated_at")):
            stamp = getattr(owner, name)
            if stamp is not None:
                setattr(owner, name, int(float(stamp)))
        await super().save_thread(kept)


class NulStripped(ReferenceStore):
    """Strips NUL from appended message text, as a database text column without escaping forces."""

    async def append_message_records(self, thread_id: str, messages: list[Message]) -> list[MessageRecord]:
        cleaned = [replace(message, content=[_without_nul(block) for block in message.content]) for message in messages]
        return await super().append_message_records(thread_id, cleaned)


class NullKeysDropped(ReferenceStore):
    """Drops `null`-valued keys from a state's extensions, as a document store that omits nulls does."""

    async def save_thread_state(self, thread_id: str, state: PersistedState) -> None:
        kept = replace(state, extensions={k: _without_nulls(v) for k, v in state.extensions.items() if v is not None})
        await super().save_thread_state(thread_id, kept)


class ZeroUpdatedAtReadAsCreated(ReferenceStore):
    """Reads a thread's updated_at as `updated_at or created_at`: an updated_at of 0 loads as its created_at."""

    async def load_thread(self, thread_id: str) -> Thread | None:
        found = await super().load_thread(thread_id)
        if found is not None:
            found.metadata.updated_at = found.metadata.updated_at or found.metadata.created_at
        return found


ZOO: list[Broken] = [
    # also THR-2: the saved thread does not read back as saved
    Broken(IntsAsFloats, "MOD-5", "integers in custom JSON kept as doubles: 1 reads back as 1.0", also=("THR-2",)),
    # also THR-2: the saved thread does not read back as saved
    Broken(DoubleStamps, "MOD-5", "thread stamps kept as doubles: 2**53 + 1 reads back as 2**53", also=("THR-2",)),
    Broken(NulStripped, "MOD-5", "NUL stripped from appended message text"),
    # also THR-6: the saved state does not read back as saved
    Broken(NullKeysDropped, "MOD-5", "null-valued keys dropped from state extensions", also=("THR-6",)),
    # also THR-2, THR-3: a thread saved, or updated, with updated_at 0 does not read back so
    Broken(
        ZeroUpdatedAtReadAsCreated,
        "MOD-5",
        "updated_at read as `updated_at or created_at`: 0 loads as created_at",
        also=("THR-2", "THR-3"),
    ),
]
