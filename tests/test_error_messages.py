"""Errors say what to fix: each names the field, argument, id or choices at fault.

A backend author meets these messages first when a call is wrong; they are part of
what the kit and the reference store promise, so they are pinned here.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from minimal_store import MinimalStore

from conformance import (
    AlreadyExistsError,
    InvalidCursorError,
    Message,
    MessageQuery,
    MessageSeqRange,
    NotFoundError,
    Role,
    RunQuery,
    ThreadMetadata,
    ThreadParentFilter,
    ThreadQuery,
    ValidationError,
    validate_append_only_delta,
)
from conformance.kit._scenarios import run, thread
from reference_store import ReferenceStore

WRONG_FIELDS: list[tuple[Any, str]] = [
    (ThreadQuery(offset="0"), "ThreadQuery: field 'offset'"),  # type: ignore[arg-type]
    (ThreadQuery(limit=-1), "ThreadQuery: field 'limit'"),
    (ThreadQuery(resource_id=5), "ThreadQuery: field 'resource_id'"),  # type: ignore[arg-type]
    (ThreadQuery(id_prefix=5), "ThreadQuery: field 'id_prefix'"),  # type: ignore[arg-type]
    (ThreadQuery(parent_filter="root"), "ThreadQuery: field 'parent_filter'"),  # type: ignore[arg-type]
    (MessageQuery(offset=-1), "MessageQuery: field 'offset'"),
    (MessageQuery(limit=True), "MessageQuery: field 'limit'"),
    (MessageQuery(after=-2), "MessageQuery: field 'after'"),
    (MessageQuery(before="3"), "MessageQuery: field 'before'"),  # type: ignore[arg-type]
    (MessageQuery(order="up"), "MessageQuery: field 'order'"),  # type: ignore[arg-type]
    (MessageQuery(visibility="some"), "MessageQuery: field 'visibility'"),  # type: ignore[arg-type]
    (MessageQuery(run_id=7), "MessageQuery: field 'run_id'"),  # type: ignore[arg-type]
    (RunQuery(offset=-1), "RunQuery: field 'offset'"),
    (RunQuery(limit=1.5), "RunQuery: field 'limit'"),  # type: ignore[arg-type]
    (RunQuery(thread_id=1), "RunQuery: field 'thread_id'"),  # type: ignore[arg-type]
    (RunQuery(id_prefix=1), "RunQuery: field 'id_prefix'"),  # type: ignore[arg-type]
    (RunQuery(status="finished"), "RunQuery: field 'status'"),  # type: ignore[arg-type]
]


@pytest.mark.parametrize(("query", "named"), WRONG_FIELDS, ids=[named for _, named in WRONG_FIELDS])
def test_a_malformed_query_names_its_class_and_field(query: Any, named: str) -> None:
    """normalized() refuses a wrong type or range with `<Query>: field '<name>' ...`."""
    with pytest.raises(ValidationError, match=r"^" + re.escape(named)):
        query.normalized()


@pytest.mark.parametrize("query", [ThreadQuery(), MessageQuery()], ids=["thread", "message"])
def test_a_negative_cursor_offset_is_named(query: ThreadQuery | MessageQuery) -> None:
    """encode_cursor(-1) says the cursor's offset is wrong."""
    with pytest.raises(ValidationError, match=r"^cursor: field 'offset' must be an integer >= 0"):
        query.encode_cursor(-1)


def test_cursor_refusals_say_why() -> None:
    """A bare offset for a filtered thread query, and a token of other filters, are refused with the reason."""
    bare = "a bare numeric cursor is refused for a filtered thread query; pass the next_cursor it returned"
    with pytest.raises(InvalidCursorError, match=f"^{re.escape(bare)}$"):
        ThreadQuery(resource_id="r").decode_cursor("4")
    with pytest.raises(InvalidCursorError, match=r"^cursor does not match the thread query's filters$"):
        ThreadQuery(resource_id="r").decode_cursor(ThreadQuery(resource_id="s").encode_cursor(4))
    with pytest.raises(InvalidCursorError, match=r"^cursor does not match the thread query's filters$"):
        ThreadQuery(parent_filter=ThreadParentFilter.root()).decode_cursor(ThreadQuery().encode_cursor(4))
    with pytest.raises(InvalidCursorError, match=r"^cursor does not match the message query's filters$"):
        MessageQuery(run_id="r").decode_cursor(MessageQuery(run_id="s").encode_cursor(4))


def test_a_repeated_committed_id_is_named() -> None:
    """validate_append_only_delta names the id a delta would commit twice."""
    committed = [Message(id="m1", role=Role.USER, content=[])]
    with pytest.raises(ValidationError, match="'m1'"):
        validate_append_only_delta(committed, [Message(id="m1", role=Role.USER, content=[])])


@pytest.mark.anyio
async def test_reference_store_errors_name_the_thread_run_or_argument() -> None:
    """Unknown ids, refused deletes, repeated runs and bad arguments each name what is wrong."""
    store = ReferenceStore()
    await store.save_thread(thread("a"))
    await store.save_thread(thread("b", parent="a"))
    with pytest.raises(NotFoundError, match=r"^thread 'ghost' not found$"):
        await store.delete_thread_with_strategy("ghost")
    with pytest.raises(ValidationError, match=r"^thread 'a' has child threads; choose 'detach' or 'cascade'$"):
        await store.delete_thread_with_strategy("a", "reject")  # type: ignore[arg-type]
    with pytest.raises(
        ValidationError,
        match=r"^argument 'strategy': unknown delete strategy 'purge'; use one of reject, detach, cascade$",
    ):
        await store.delete_thread_with_strategy("a", "purge")  # type: ignore[arg-type]
    with pytest.raises(NotFoundError, match=r"^thread 'ghost' not found$"):
        await store.update_thread_metadata("ghost", ThreadMetadata())
    with pytest.raises(NotFoundError, match="'ghost'"):
        await store.delete_messages("ghost")
    await store.create_run(run("r1", "a"))
    with pytest.raises(AlreadyExistsError, match=r"^run 'r1' already exists$"):
        await store.create_run(run("r1", "a"))
    with pytest.raises(ValidationError, match=r"^argument 'expected_version' must be an integer >= 0"):
        await store.checkpoint_append("a", [], -1, run("r2", "a"))
    with pytest.raises(ValidationError, match=r"^range: field 'from_seq'"):
        await store.load_message_records_range("a", MessageSeqRange(from_seq=-1, to_seq=2))


@pytest.mark.anyio
async def test_a_cascade_over_a_cycle_names_where_it_met_it() -> None:
    """The cycle error of a cascade names the thread it met twice and the thread being deleted."""
    store = ReferenceStore()
    await store.save_thread(thread("a", parent="b"))
    await store.save_thread(thread("b", parent="a"))
    with pytest.raises(ValidationError, match=r"^thread hierarchy cycle detected at 'a' while deleting 'a'$"):
        await store.delete_thread_with_strategy("a", "cascade")  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_hierarchy_refusals_say_which_rule_and_thread() -> None:
    """Self-parent, missing parent, missing ancestor and cycle each have their own message (HIE-2..4)."""
    store = ReferenceStore()
    await store.save_thread(thread("a", parent="b"))
    await store.save_thread(thread("b", parent="a"))
    await store.save_thread(thread("x", parent="gone"))
    for thread_id, parent, message in [
        ("a", "a", "thread 'a' cannot parent itself"),
        ("c", "p", "parent thread not found: 'p'"),
        ("c", "x", "thread hierarchy references missing ancestor 'gone'"),
        ("c", "a", "thread hierarchy cycle detected at 'a' (parent of 'c')"),
    ]:
        with pytest.raises(ValidationError, match=f"^{re.escape(message)}$"):
            await store.validate_thread_hierarchy(thread_id, parent)


@pytest.mark.anyio
async def test_default_checkpoint_append_names_a_bad_expected_version() -> None:
    """The default checkpoint_append refuses a negative or non-integer version by name, before any read."""
    store = MinimalStore()
    for bad in (-1, True, "3"):
        wanted = f"argument 'expected_version' must be None or an integer >= 0, got {bad!r}"
        with pytest.raises(ValidationError, match=f"^{re.escape(wanted)}$"):
            await store.checkpoint_append("t", [], bad, run("r1", "t"))  # type: ignore[arg-type]
    assert await store.load_committed_messages("t") is None


@pytest.mark.anyio
async def test_a_delta_element_that_is_no_message_is_named_by_seq_and_type() -> None:
    """An append whose second element is not a Message says which seq and what it got, and appends nothing."""
    store = ReferenceStore()
    delta: list[Any] = [Message(id="m1", role=Role.USER, content=[]), object()]
    with pytest.raises(TypeError, match=r"^expected a Message at seq 2, got object$"):
        await store.append_message_records("t", delta)
    assert await store.load_committed_messages("t") is None


@pytest.mark.anyio
async def test_a_repeated_id_in_one_delta_is_named() -> None:
    """A delta that holds one id twice is refused naming it (MSG-5)."""
    store = ReferenceStore()
    twice = [Message(id="m1", role=Role.USER, content=[]), Message(id="m1", role=Role.USER, content=[])]
    with pytest.raises(ValidationError, match=r"^append delta contains duplicate message id 'm1'$"):
        await store.append_message_records("t", twice)


@pytest.mark.anyio
async def test_a_checkpoint_whose_run_parents_the_thread_on_itself_says_so() -> None:
    """A new thread whose run asks for itself as parent is refused as self-parenting, not as a missing parent."""
    store = ReferenceStore()
    selfish = run("r1", "t", parent_thread_id="t")
    with pytest.raises(ValidationError, match=r"^thread 't' cannot parent itself$"):
        await store.checkpoint("t", [], selfish)
