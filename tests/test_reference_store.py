"""The reference store on bad input, and what only it promises (identity, the read-port adapter).

The contract rules themselves are checked by the kit: `tests/test_reference_conformance.py`.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

import pytest
from minimal_store import MinimalStore

from conformance import (
    ChildThreadDeleteStrategy,
    CompactionMark,
    Message,
    MessageMetadata,
    MessageQuery,
    MessageSeqRange,
    PersistedState,
    Role,
    RunQuery,
    RunRecord,
    Thread,
    ThreadMetadata,
    ThreadQuery,
    ThreadRunCheckpointStore,
    ThreadRunStore,
    ValidationError,
)
from conformance.kit._scenarios import log, run, snapshot, thread, user
from reference_store import ReferenceStore

pytestmark = pytest.mark.anyio


async def call(store: ThreadRunStore, operation: str, *arguments: Any) -> Any:
    return await getattr(store, operation)(*arguments)


@pytest.mark.parametrize(
    ("operation", "arguments"),
    [
        ("save_thread", ({"id": "t"},)),
        ("save_thread_validated", ("t",)),
        ("update_thread_metadata", ("t", {"title": "x"})),
        ("save_thread_state", ("t", {"revision": 1})),
        ("save_messages", ("t", "m1")),
        ("save_messages", ("t", [{"id": "m1", "role": "user"}])),
        ("append_message_records", ("t", [None])),
        ("create_run", ({"run_id": "r"},)),
        ("checkpoint", ("t", [], "run")),
        ("checkpoint_append", ("t", [], None, None)),
        ("list_threads_query", ({"limit": 5},)),
        ("list_message_records", ("t", {"limit": 5})),
        ("list_runs", ({"limit": 5},)),
        ("load_message_records_range", ("t", (1, 2))),
        ("load_thread", (5,)),
        ("load_committed_messages", (None,)),
    ],
)
async def test_non_model_arguments_raise_type_error_naming_the_argument(
    operation: str, arguments: tuple[Any, ...]
) -> None:
    """A dict, string or None where a model belongs is a TypeError, and the store stays empty."""
    store = ReferenceStore()
    with pytest.raises(TypeError, match=r"argument|expected a Message"):
        await call(store, operation, *arguments)
    assert await snapshot(store, "t") == await snapshot(ReferenceStore(), "t")


@pytest.mark.parametrize(
    ("operation", "arguments", "names"),
    [
        ("save_thread", (Thread(id="t1", metadata=ThreadMetadata(created_at="soon")),), ("t1", "metadata.created_at")),  # type: ignore[arg-type]
        ("save_thread", (Thread(id="t1", resource_id=7),), ("t1", "resource_id")),  # type: ignore[arg-type]
        ("create_run", (RunRecord(run_id="r1", thread_id="t", agent_id="a", steps=-1),), ("r1", "steps")),
        ("create_run", (RunRecord(run_id="r1", thread_id="t", agent_id="a", status="done"),), ("r1", "status")),  # type: ignore[arg-type]
        ("append_message_records", ("t", [Message(id="m1", role="user", content=[])]), ("m1", "role")),  # type: ignore[arg-type]
        ("append_message_records", ("t", [Message(id="m1", role=Role.USER, content=["hi"])]), ("m1", "content[0]")),  # type: ignore[list-item]
        ("update_thread_metadata", ("t1", ThreadMetadata(custom={"k": {1, 2}})), ("t1", "custom")),  # type: ignore[dict-item]
        ("save_thread_state", ("t1", PersistedState(revision=-2)), ("t1", "revision")),
        ("list_threads", (-1, 5), ("offset",)),
        ("list_threads_query", (ThreadQuery(limit=-1),), ("limit",)),
        ("list_message_records", ("t", MessageQuery(after=-3)), ("after",)),
        ("list_runs", (RunQuery(status="done"),), ("status",)),  # type: ignore[arg-type]
        ("load_message_records_range", ("t", MessageSeqRange(from_seq=-1, to_seq=2)), ("range", "from_seq")),
        ("checkpoint_append", ("t", [], -1, run("r1", "t")), ("expected_version",)),
        ("delete_thread_with_strategy", ("t1", "obliterate"), ("obliterate", "cascade")),
    ],
)
async def test_mistyped_values_raise_validation_error_naming_field_and_id(
    operation: str, arguments: tuple[Any, ...], names: tuple[str, ...]
) -> None:
    """A value of the wrong type or range is a ValidationError whose message names what to fix."""
    store = ReferenceStore()
    await store.save_thread(thread("t1"))
    before = await snapshot(store, "t")
    with pytest.raises(ValidationError) as raised:
        await call(store, operation, *arguments)
    for name in names:
        assert name in str(raised.value)
    assert await snapshot(store, "t") == before


async def test_checkpoint_append_with_an_invalid_run_appends_nothing() -> None:
    """A valid delta with an invalid run is refused whole: no half-written checkpoint."""
    store = ReferenceStore()
    await log(store, "t", "m1")
    invalid = RunRecord(run_id="r1", thread_id="t", agent_id=" ")
    with pytest.raises(ValidationError, match="agent_id"):
        await store.checkpoint_append("t", [user("m2")], 1, invalid)
    messages = await store.load_committed_messages("t")
    assert [m.id for m in messages or []] == ["m1"]
    assert await store.load_run("r1") is None


async def test_checkpoint_refuses_a_run_of_another_thread() -> None:
    """A checkpoint's run must belong to the checkpointed thread; nothing is written otherwise."""
    store = ReferenceStore()
    with pytest.raises(ValidationError, match="belongs to thread 'other'"):
        await store.checkpoint("t", [user("m1")], run("r1", "other"))
    assert await store.load_thread("t") is None
    assert await store.load_committed_messages("t") is None


async def test_strategy_may_be_given_by_its_json_spelling() -> None:
    """`"cascade"` works as well as `ChildThreadDeleteStrategy.CASCADE`."""
    store = ReferenceStore()
    await store.save_thread(thread("a"))
    await store.save_thread(thread("b", parent="a"))
    await store.delete_thread_with_strategy("a", "cascade")  # type: ignore[arg-type]
    assert await store.list_threads(0, 10) == []
    assert ChildThreadDeleteStrategy("cascade") is ChildThreadDeleteStrategy.CASCADE


async def test_every_store_object_has_its_own_identity_and_state() -> None:
    """Two reference stores share nothing, and say so through their storage identity."""
    first, second = ReferenceStore(), ReferenceStore()
    await first.save_thread(thread("t"))
    assert await second.load_thread("t") is None
    assert first.thread_run_storage_identity() != second.thread_run_storage_identity()
    assert (first.thread_run_storage_identity() or "").startswith("reference-store:")


async def test_checkpoint_read_port_delegates_every_read() -> None:
    """ThreadRunCheckpointStore answers each resume read exactly as the store does."""
    store = ReferenceStore()
    await store.checkpoint("t", [user("m1")], run("r1", "t"))
    await store.save_thread_state("t", PersistedState(revision=4))
    port = ThreadRunCheckpointStore(store)
    assert await port.load_thread("t") == await store.load_thread("t")
    assert await port.load_messages("t") == await store.load_messages("t")
    assert await port.load_committed_messages("t") == await store.load_committed_messages("t")
    assert await port.load_run("r1") == await store.load_run("r1")
    assert await port.latest_run("t") == await store.latest_run("t")
    assert await port.load_thread_state("t") == PersistedState(revision=4)
    assert await port.load_checkpoint("t") == await store.load_checkpoint("t")


def test_checkpoint_read_port_needs_a_store() -> None:
    """The adapter refuses anything but a ThreadRunStore, naming the argument."""
    with pytest.raises(TypeError, match="inner"):
        ThreadRunCheckpointStore("not a store")  # type: ignore[arg-type]


def _valid_arguments(operation: str) -> dict[str, Any]:
    """Arguments with which `operation` succeeds on an empty store, by parameter name."""
    queries = {"list_threads_query": ThreadQuery(), "list_message_records": MessageQuery(), "list_runs": RunQuery()}
    return {
        "thread_id": "t",
        "id": "t",
        "parent_thread_id": None if operation == "validate_thread_hierarchy" else "p",
        "thread": thread("t"),
        "metadata": ThreadMetadata(),
        "state": PersistedState(),
        "messages": [],
        "message_id": "m",
        "range": MessageSeqRange(from_seq=1, to_seq=2),
        "record": run("r", "t"),
        "run": run("r", "t"),
        "run_id": "r",
        "expected_version": None,
        "offset": 0,
        "limit": 5,
        "strategy": ChildThreadDeleteStrategy.DETACH,
        "query": queries.get(operation),
    }


def _parameters(store: type[ThreadRunStore], operations: Iterable[str]) -> list[tuple[type[ThreadRunStore], str, str]]:
    """(store, operation, parameter) for every parameter of the named async operations."""
    return [
        (store, operation, name)
        for operation in sorted(operations)
        if not operation.startswith("_") and inspect.iscoroutinefunction(getattr(store, operation))
        for name in list(inspect.signature(getattr(store, operation)).parameters)[1:]
    ]


#: Every parameter of the reference store's operations, and of the base-class defaults
#: that the minimal store inherits (its own abstract methods check nothing). Mutation
#: tools add copies of methods under non-ASCII names; those are not operations.
_PARAMETERS = _parameters(ReferenceStore, filter(str.isascii, vars(ReferenceStore))) + _parameters(
    MinimalStore, {name for name in dir(ThreadRunStore) if name.isascii()} - set(vars(MinimalStore))
)


@pytest.mark.parametrize(
    ("store_type", "operation", "parameter"),
    _PARAMETERS,
    ids=[f"{s.__name__}-{o}-{p}" for s, o, p in _PARAMETERS],
)
async def test_a_wrong_type_for_any_parameter_is_refused_by_name(
    store_type: type[ThreadRunStore], operation: str, parameter: str
) -> None:
    """Each parameter of each operation, given an object of no contract type, is refused naming it and what it got."""
    store = store_type()
    valid = _valid_arguments(operation)
    names = list(inspect.signature(getattr(store_type, operation)).parameters)[1:]
    wrong = object()
    arguments = [wrong if name == parameter else valid[name] for name in names]
    if operation == "delete_thread_with_strategy":
        await store.save_thread(thread("t"))
    before = await snapshot(store, "t")
    with pytest.raises((TypeError, ValidationError)) as raised:
        await call(store, operation, *arguments)
    assert f"'{parameter}'" in str(raised.value), f"{raised.value} does not name {parameter!r}"
    assert "object" in str(raised.value), f"{raised.value} does not say what it got"
    assert await snapshot(store, "t") == before


async def test_records_carry_no_created_at() -> None:
    """The reference store does not stamp records: `created_at` stays None on every record it returns."""
    store = ReferenceStore()
    appended = await log(store, "t", "m1", "m2")
    listed = await store.load_message_records("t") or []
    found = await store.load_message_record("t", "m2")
    assert [record.created_at for record in [*appended, *listed, found] if record is not None] == [None] * 5


async def test_checkpoint_refuses_a_first_message_that_summarizes_itself() -> None:
    """A compaction mark must end below its own seq; as the first message, [1, 1] covers itself (MOD-3)."""
    store = ReferenceStore()
    first = user("m1")
    marked = Message(
        id="s1",
        role=Role.USER,
        content=[],
        metadata=MessageMetadata(compaction=CompactionMark(from_seq=1, to_seq=1)),
    )
    with pytest.raises(ValidationError):
        await store.checkpoint("t", [marked], run("r1", "t"))
    assert await store.load_thread("t") is None
    await store.checkpoint("t", [first, replace(marked, id="s2")], run("r1", "t"))
    assert [m.id for m in await store.load_committed_messages("t") or []] == ["m1", "s2"]
