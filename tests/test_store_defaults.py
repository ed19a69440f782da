"""The base classes' default methods where the kit's rules do not reach them.

The kit runs the defaults through `MinimalStore` (tests/test_minimal_conformance.py),
but it declares no capability, keeps fewer than 200 children per thread and reads
error messages only by type; these tests cover the rest.
"""

from __future__ import annotations

import pytest
from minimal_store import MinimalStore

from conformance import (
    Message,
    NotFoundError,
    PersistedState,
    RunRecord,
    ThreadRunCheckpointStore,
    ValidationError,
)
from conformance.kit._scenarios import log, run, thread, user

pytestmark = pytest.mark.anyio


class StatefulMinimalStore(MinimalStore):
    """The minimal store plus thread states, so the default `load_checkpoint` has one to read."""

    def __init__(self) -> None:
        super().__init__()
        self.states: dict[str, PersistedState] = {}

    async def save_thread_state(self, thread_id: str, state: PersistedState) -> None:
        self.states[thread_id] = state.copy()

    async def load_thread_state(self, thread_id: str) -> PersistedState | None:
        found = self.states.get(thread_id)
        return found.copy() if found else None


async def test_list_child_threads_pages_past_the_scan_limit() -> None:
    """450 children, read by the default in pages of 200, come back every one, without the other threads."""
    store = MinimalStore()
    await store.save_thread(thread("p"))
    children = {f"c{number:03d}" for number in range(450)}
    for child in sorted(children):
        await store.save_thread(thread(child, parent="p", updated_at=int(child[1:])))
    for other in range(30):
        await store.save_thread(thread(f"o{other}", parent="c000" if other % 2 else None))
    found = [child.id for child in await store.list_child_threads("p")]
    assert sorted(found) == sorted(children)
    assert len(found) == len(children)


async def test_default_load_checkpoint_reads_the_thread_state() -> None:
    """The default load_checkpoint carries the state the store keeps for that thread, not another's."""
    store = StatefulMinimalStore()
    await log(store, "t", "m1")
    await store.save_thread_state("t", PersistedState(revision=3))
    await store.save_thread_state("u", PersistedState(revision=9))
    snapshot = await store.load_checkpoint("t")
    assert snapshot is not None
    assert snapshot.thread_state == PersistedState(revision=3)
    assert snapshot.message_version == 1


async def test_default_delete_errors_say_which_thread_and_what_to_do() -> None:
    """An unknown id is named in the NotFoundError; reject names the thread and the strategies that work."""
    store = MinimalStore()
    with pytest.raises(NotFoundError, match="'ghost'"):
        await store.delete_thread_with_strategy("ghost")
    await store.save_thread(thread("a"))
    await store.save_thread(thread("b", parent="a"))
    with pytest.raises(ValidationError, match="thread 'a' has child threads; choose 'detach' or 'cascade'"):
        await store.delete_thread_with_strategy("a", "reject")  # type: ignore[arg-type]


class TrustingMinimalStore(MinimalStore):
    """The minimal store with a `checkpoint` that does not check the run's thread, and counts its calls."""

    def __init__(self) -> None:
        super().__init__()
        self.checkpoints = 0

    async def checkpoint(self, thread_id: str, messages: list[Message], run: RunRecord) -> None:
        self.checkpoints += 1
        await super().checkpoint(run.thread_id, messages, run)


async def test_default_checkpoint_append_refuses_a_run_of_another_thread_itself() -> None:
    """CKP-1 in the default: a run of thread u appended to t is refused before `checkpoint` is called."""
    store = TrustingMinimalStore()
    await log(store, "t", "m1")
    with pytest.raises(ValidationError, match="run 'r1' belongs to thread 'u', not to the checkpointed thread 't'"):
        await store.checkpoint_append("t", [user("m2")], 1, run("r1", "u"))
    assert store.checkpoints == 0
    assert await store.load_run("r1") is None


async def test_default_save_thread_validated_takes_a_blank_parent_as_none() -> None:
    """THR-2 in the default: a blank parent passes the hierarchy check and is stored as none."""
    store = MinimalStore()
    await store.save_thread_validated(thread("t", parent="  ", resource=" r "))
    assert await store.load_thread("t") == thread("t", resource="r")


async def test_read_port_refuses_what_is_not_a_store_naming_its_type() -> None:
    """ThreadRunCheckpointStore over something else is a TypeError naming the argument and the type given."""
    with pytest.raises(TypeError, match=r"argument 'inner' must be a ThreadRunStore, got dict"):
        ThreadRunCheckpointStore({})  # type: ignore[arg-type]
