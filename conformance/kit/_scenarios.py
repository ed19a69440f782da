"""Scenario builders that keep each contract test to one behaviour (public names only: copy them freely).

await tree(store, {"a": {"b": {"c": {}}}})      # a <- b <- c
await log(store, "t1", user("m1"), assistant("m2", calls=["c1"]), tool("m3", "c1"))
await store.create_run(run("r1", "t1", RunStatus.DONE, updated_at=5))
replace(run("r1", "t1"), activation=activation("t1", trigger=["m1"]))
before = await snapshot(store); ...; assert await snapshot(store) == before
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from conformance import (
    CompactionMark,
    JsonObject,
    JsonValue,
    Message,
    MessageMetadata,
    MessageRecord,
    PersistedState,
    Role,
    RunOutcome,
    RunQuery,
    RunRecord,
    RunRequestSnapshot,
    RunStatus,
    RunWaitingState,
    Thread,
    ThreadMetadata,
    ThreadRunStore,
    ToolCall,
    Visibility,
    WaitingReason,
)

__all__ = [
    "Snapshot",
    "activation",
    "assistant",
    "log",
    "run",
    "snapshot",
    "system",
    "thread",
    "tool",
    "tree",
    "user",
]

Tree = Mapping[str, "Tree"]


def thread(
    thread_id: str,
    *,
    parent: str | None = None,
    resource: str | None = None,
    updated_at: int | None = None,
    created_at: int | None = None,
    title: str | None = None,
) -> Thread:
    """A thread with the given lineage and timestamps (unix ms)."""
    return Thread(
        id=thread_id,
        parent_thread_id=parent,
        resource_id=resource,
        metadata=ThreadMetadata(created_at=created_at, updated_at=updated_at, title=title),
    )


async def tree(store: ThreadRunStore, shape: Tree, *, parent: str | None = None) -> list[str]:
    """Save the threads of a nested dict (`{"a": {"b": {}}}`: b is a child of a); return their ids.

    Parents are saved before children with plain `save_thread`.
    """
    created: list[str] = []
    for thread_id, children in shape.items():
        await store.save_thread(thread(thread_id, parent=parent))
        created.append(thread_id)
        created += await tree(store, children, parent=thread_id)
    return created


def _text(text: str) -> list[dict[str, Any]]:
    return [{"type": "text", "text": text}]


def _metadata(run_id: str | None, compaction: tuple[int, int] | None) -> MessageMetadata | None:
    if run_id is None and compaction is None:
        return None
    mark = CompactionMark(from_seq=compaction[0], to_seq=compaction[1]) if compaction else None
    return MessageMetadata(run_id=run_id, compaction=mark)


def user(
    message_id: str,
    text: str | None = None,
    *,
    internal: bool = False,
    run_id: str | None = None,
) -> Message:
    """A user message whose text defaults to its id."""
    return Message(
        id=message_id,
        role=Role.USER,
        content=_text(text or message_id),
        visibility=Visibility.INTERNAL if internal else Visibility.ALL,
        metadata=_metadata(run_id, None),
    )


def system(message_id: str, text: str | None = None, *, summary_of: tuple[int, int] | None = None) -> Message:
    """A system message; `summary_of=(from_seq, to_seq)` makes it a compaction summary."""
    return Message(
        id=message_id, role=Role.SYSTEM, content=_text(text or message_id), metadata=_metadata(None, summary_of)
    )


def assistant(
    message_id: str,
    text: str | None = None,
    *,
    calls: Iterable[str] = (),
    run_id: str | None = None,
) -> Message:
    """An assistant message making a tool call for each id in `calls`."""
    tool_calls = [ToolCall(id=call_id, name="lookup", arguments={"q": call_id}) for call_id in calls]
    return Message(
        id=message_id,
        role=Role.ASSISTANT,
        content=_text(text or message_id),
        tool_calls=tool_calls or None,
        metadata=_metadata(run_id, None),
    )


def tool(message_id: str, call_id: str, *, internal: bool = False, run_id: str | None = None) -> Message:
    """A tool result answering `call_id`; `internal=True` makes it a retraction marker."""
    return Message(
        id=message_id,
        role=Role.TOOL,
        content=_text(f"result of {call_id}"),
        tool_call_id=call_id,
        visibility=Visibility.INTERNAL if internal else Visibility.ALL,
        metadata=_metadata(run_id, None),
    )


async def log(store: ThreadRunStore, thread_id: str, *messages: Message | str) -> list[MessageRecord]:
    """Append messages (a bare string is a user message with that id) and return their records."""
    delta = [user(m) if isinstance(m, str) else m for m in messages]
    return await store.append_message_records(thread_id, delta)


def run(
    run_id: str,
    thread_id: str,
    status: RunStatus = RunStatus.CREATED,
    *,
    created_at: int = 1,
    updated_at: int | None = None,
    parent_thread_id: str | None = None,
    agent_id: str = "agent",
) -> RunRecord:
    """A valid run of any status: `waiting` gets a waiting state, `done` an outcome and `finished_at`."""
    updated = created_at if updated_at is None else updated_at
    record = RunRecord(
        run_id=run_id,
        thread_id=thread_id,
        agent_id=agent_id,
        status=status,
        created_at=created_at,
        updated_at=updated,
        request=RunRequestSnapshot(parent_thread_id=parent_thread_id) if parent_thread_id else None,
    )
    if status is RunStatus.WAITING:
        record.waiting = RunWaitingState(reason=WaitingReason.USER_INPUT, ticket_ids=["ticket-1"])
    if status is RunStatus.DONE:
        record.finished_at = updated
        record.outcome = RunOutcome(termination_reason={"type": "natural_end"}, final_output="ok")
    return record


def activation(
    thread_id: str,
    *,
    input_thread: str | None = None,
    agent_id: str | None = None,
    trigger: Iterable[str] = (),
) -> JsonObject:
    """A run's `activation`: a new intent on `thread_id`, in the JSON of upstream's `RunActivationSnapshot`.

    Upstream types the activation (`intent`, `input`, `options` and `trace` are required,
    the intent's `kind` is tagged by `"kind"`), so this is the JSON its serde writes back:
    `trace` spells out its defaults. `input_thread` names another thread in `input` (an
    activation upstream refuses, MOD-4); `trigger` lists the input's trigger message ids.
    """
    intent: JsonObject = {"thread_id": thread_id, "kind": {"kind": "new_intent"}}
    if agent_id is not None:
        intent["agent_id"] = agent_id
    given: JsonObject = {"thread_id": thread_id if input_thread is None else input_thread}
    triggers: list[JsonValue] = list(trigger)
    if triggers:
        given["trigger_message_ids"] = triggers
    return {
        "intent": intent,
        "input": given,
        "options": {},
        "trace": {"origin": "user", "adapter": "internal", "run_mode": "foreground"},
    }


def _plain(value: object) -> object:
    """`value` with every model in it replaced by its `to_json()`."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    to_json = getattr(value, "to_json", None)
    return value if to_json is None else to_json()


@dataclass(slots=True, eq=False)
class Snapshot:
    """The whole observable state of a store, as far as public reads reveal it.

    Two snapshots are equal when their JSON texts (`as_json`) are: the same values with the
    same types at every depth. A custom value `1` read back as `1.0`, or `-0.0` as `0.0`,
    is a change, though `==` on the models takes them as equal.
    """

    threads: dict[str, Thread] = field(default_factory=dict)
    logs: dict[str, list[Message] | None] = field(default_factory=dict)
    states: dict[str, PersistedState | None] = field(default_factory=dict)
    runs: dict[str, RunRecord] = field(default_factory=dict)
    latest: dict[str, str | None] = field(default_factory=dict)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Snapshot) and self.as_json() == other.as_json()

    def as_json(self) -> str:
        """The snapshot as JSON text, keys sorted: `1`, `1.0` and `true` each write differently."""
        parts = {name: _plain(getattr(self, name)) for name in ("threads", "logs", "states", "runs", "latest")}
        return json.dumps(parts, sort_keys=True, ensure_ascii=False)

    __hash__ = None  # type: ignore[assignment]  # mutable, compared by value, as a dataclass with eq is


async def snapshot(store: ThreadRunStore, *extra_ids: str) -> Snapshot:
    """Read every thread, log, state and run the store shows, plus logs of `extra_ids`.

    Threads come from `list_threads`; logs and states are read for every listed
    thread, every run's thread and `extra_ids` (threads without a record may own a log).
    Paging stops at the first page that shows nothing new, so a store that ignores
    `offset` ends the snapshot instead of looping: the snapshot relies on no listing
    order or tie-break (those are THR-5's and RUN-4's to check).
    """
    taken = Snapshot()
    thread_ids: list[str] = []
    offset = 0
    while batch := [i for i in await store.list_threads(offset, 200) if i not in thread_ids]:
        thread_ids += batch
        offset += len(batch)
    for thread_id in thread_ids:
        found = await store.load_thread(thread_id)
        if found is not None:
            taken.threads[thread_id] = found
    page_offset = 0
    while True:
        page = await store.list_runs(RunQuery(offset=page_offset, limit=200))
        fresh = [record for record in page.items if record.run_id not in taken.runs]
        for record in fresh:
            taken.runs[record.run_id] = record
        page_offset += len(page.items)
        if not page.has_more or not fresh:
            break
    owners = {*thread_ids, *extra_ids, *(r.thread_id for r in taken.runs.values())}
    for owner in sorted(owners):
        taken.logs[owner] = await store.load_committed_messages(owner)
        taken.states[owner] = await store.load_thread_state(owner)
        latest = await store.latest_run(owner)
        taken.latest[owner] = latest.run_id if latest else None
    return taken
