"""The validation rules of SPEC section 3, one clause per test: MOD-1 to MOD-4."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any, cast

import pytest

from conformance import (
    CompactionMark,
    Message,
    MessageMetadata,
    MessageSeqRange,
    Role,
    RunMessageInput,
    RunMessageOutput,
    RunOutcome,
    RunRecord,
    RunStatus,
    RunWaitingState,
    Thread,
    ToolCall,
    ValidationError,
    WaitingReason,
    normalize_lineage_id,
    validate_message_shape,
)

BLANKS = ["", " ", "\t\n "]

# ── MOD-1 normalize_lineage_id ───────────────────────────────────────


@pytest.mark.parametrize(("raw", "normalized"), [("p1", "p1"), ("  p1 ", "p1"), ("\tp1\n", "p1"), ("a b", "a b")])
def test_mod1_lineage_id_is_stripped(raw: str, normalized: str) -> None:
    """MOD-1: surrounding whitespace is stripped; inner whitespace is kept."""
    assert normalize_lineage_id(raw) == normalized


@pytest.mark.parametrize("raw", [None, *BLANKS])
def test_mod1_blank_or_none_lineage_id_becomes_none(raw: str | None) -> None:
    """MOD-1: a blank or `None` lineage id becomes `None`."""
    assert normalize_lineage_id(raw) is None


# ── MOD-2 Thread.validate_for_persist ────────────────────────────────


@pytest.mark.parametrize("blank", BLANKS)
def test_mod2_blank_thread_id_is_refused(blank: str) -> None:
    """MOD-2: the thread id must not be blank."""
    with pytest.raises(ValidationError, match="thread id must not be blank"):
        Thread(id=blank).validate_for_persist()


@pytest.mark.parametrize("name", ["resource_id", "parent_thread_id", "active_run_id", "open_run_id", "latest_run_id"])
@pytest.mark.parametrize("blank", BLANKS)
def test_mod2_blank_lineage_field_is_refused(name: str, blank: str) -> None:
    """MOD-2: a present lineage or run field must not be blank (use None for no value); the error names it."""
    changes: dict[str, Any] = {name: blank}
    thread = replace(Thread(id="t1"), **changes)
    with pytest.raises(ValidationError, match=f"thread 't1': field '{name}' must not be blank"):
        thread.validate_for_persist()


@pytest.mark.parametrize(("thread_id", "parent"), [("t1", "t1"), ("t1", "  t1 "), (" t1", "t1"), ("t1 ", "\tt1")])
def test_mod2_thread_cannot_parent_itself_after_stripping(thread_id: str, parent: str) -> None:
    """MOD-2: the normalized parent must not be the thread's own stripped id."""
    with pytest.raises(ValidationError, match="cannot parent itself"):
        Thread(id=thread_id, parent_thread_id=parent).validate_for_persist()


@pytest.mark.parametrize(
    "thread",
    [
        Thread(id="t1"),
        Thread(id=" t1 "),
        Thread(id="t1", parent_thread_id="t2"),
        Thread(id="t1", parent_thread_id=" t2 "),
        Thread(id="t1", parent_thread_id="t10"),
        Thread(
            id="t1",
            resource_id="res",
            parent_thread_id="p",
            active_run_id="r1",
            open_run_id="r1",
            latest_run_id="r1",
            latest_run_updated_at=5,
        ),
    ],
)
def test_mod2_valid_thread_passes_unchanged(thread: Thread) -> None:
    """MOD-2: a thread with a non-blank id, non-blank lineage and another parent is valid, and is not changed."""
    before = thread.copy()
    thread.validate_for_persist()
    assert thread == before


# ── THR-2 Thread.normalized: what a store validates and stores ───────


def test_normalized_strips_resource_and_parent() -> None:
    """THR-2: `"  r "` becomes `"r"`, `" p\t"` becomes `"p"`; every other field is kept."""
    given = Thread(id=" t ", resource_id="  r ", parent_thread_id=" p\t", latest_run_id=" r1 ")
    assert given.normalized() == Thread(id=" t ", resource_id="r", parent_thread_id="p", latest_run_id=" r1 ")


@pytest.mark.parametrize("blank", BLANKS)
def test_normalized_makes_blank_lineage_none_and_the_thread_valid(blank: str) -> None:
    """THR-2: a blank resource or parent means none, so the normalized thread passes MOD-2."""
    normalized = Thread(id="t1", resource_id=blank, parent_thread_id=blank).normalized()
    assert (normalized.resource_id, normalized.parent_thread_id) == (None, None)
    normalized.validate_for_persist()


@pytest.mark.parametrize("name", ["active_run_id", "open_run_id", "latest_run_id"])
def test_normalized_leaves_blank_run_ids_invalid(name: str) -> None:
    """THR-2: run ids are not normalized; a blank one stays blank and MOD-2 refuses it."""
    changes: dict[str, Any] = {name: "  "}
    normalized = replace(Thread(id="t1"), **changes).normalized()
    assert getattr(normalized, name) == "  "
    with pytest.raises(ValidationError, match=f"field '{name}' must not be blank"):
        normalized.validate_for_persist()


def test_normalized_is_a_copy() -> None:
    """THR-2: the thread given is not changed, and shares nothing with the copy (ISO-1)."""
    given = Thread(id="t1", resource_id=" r ")
    given.metadata.custom["k"] = [1]
    normalized = given.normalized()
    normalized.metadata.custom["k"] = [2]
    normalized.metadata.title = "changed"
    assert given == Thread(id="t1", resource_id=" r ", metadata=given.metadata)
    assert (given.metadata.custom, given.metadata.title) == ({"k": [1]}, None)


def test_normalized_refuses_a_wrongly_typed_field_by_name() -> None:
    """A thread that cannot be copied is a ValidationError naming the field and the thread."""
    with pytest.raises(ValidationError, match="thread 't1': field 'resource_id'"):
        Thread(id="t1", resource_id=7).normalized()  # type: ignore[arg-type]


# ── MOD-3 validate_message_shape ─────────────────────────────────────


def user(**changes: Any) -> Message:
    """A valid user message `m1`, with `changes` applied."""
    return replace(Message(id="m1", role=Role.USER, content=[{"type": "text", "text": "hi"}]), **changes)


def assistant_calling(*calls: ToolCall) -> Message:
    """A valid assistant message `a1` making `calls`."""
    return Message(id="a1", role=Role.ASSISTANT, content=[], tool_calls=list(calls))


def summary(from_seq: int, to_seq: int) -> Message:
    """An assistant summary `s1` whose compaction mark covers `[from_seq, to_seq]`."""
    mark = CompactionMark(from_seq=from_seq, to_seq=to_seq)
    return Message(id="s1", role=Role.ASSISTANT, content=[], metadata=MessageMetadata(compaction=mark))


def test_mod3_message_without_id_is_refused() -> None:
    """MOD-3: the id must be present."""
    with pytest.raises(ValidationError, match="'id' must be present"):
        validate_message_shape(user(id=None), 1)


@pytest.mark.parametrize("blank", BLANKS)
def test_mod3_message_with_blank_id_is_refused(blank: str) -> None:
    """MOD-3: the id must not be blank."""
    with pytest.raises(ValidationError, match="'id' must be present and not blank"):
        validate_message_shape(user(id=blank), 1)


@pytest.mark.parametrize("tool_call_id", [None, *BLANKS])
def test_mod3_tool_message_needs_a_tool_call_id(tool_call_id: str | None) -> None:
    """MOD-3: a `tool` message carries a non-blank `tool_call_id`."""
    with pytest.raises(ValidationError, match="tool message must carry a non-blank 'tool_call_id'"):
        validate_message_shape(user(role=Role.TOOL, tool_call_id=tool_call_id), 1)


@pytest.mark.parametrize("tool_call_id", ["call-1", *BLANKS])
@pytest.mark.parametrize("role", [Role.SYSTEM, Role.USER, Role.ASSISTANT])
def test_mod3_non_tool_message_carries_no_tool_call_id(role: Role, tool_call_id: str) -> None:
    """MOD-3: any role other than `tool` carries no `tool_call_id`, not even an empty one."""
    with pytest.raises(ValidationError, match="only a tool message may carry 'tool_call_id'"):
        validate_message_shape(user(role=role, tool_call_id=tool_call_id), 1)


@pytest.mark.parametrize("calls", [[ToolCall(id="c1", name="f", arguments={})], []], ids=["one-call", "empty-list"])
@pytest.mark.parametrize(("role", "tool_call_id"), [(Role.SYSTEM, None), (Role.USER, None), (Role.TOOL, "call-0")])
def test_mod3_only_assistant_carries_tool_calls(role: Role, tool_call_id: str | None, calls: list[ToolCall]) -> None:
    """MOD-3: only an `assistant` message carries `tool_calls`, not even an empty list."""
    message = user(role=role, tool_call_id=tool_call_id, tool_calls=calls)
    with pytest.raises(ValidationError, match="only an assistant message may carry 'tool_calls'"):
        validate_message_shape(message, 1)


def test_mod3_assistant_with_an_empty_call_list_is_valid() -> None:
    """MOD-3: an assistant may carry `tool_calls=[]` (no call to check); the message is not changed."""
    message = assistant_calling()
    validate_message_shape(message, 1)
    assert message.tool_calls == []


@pytest.mark.parametrize("blank", BLANKS)
def test_mod3_tool_call_with_blank_id_is_refused(blank: str) -> None:
    """MOD-3: each tool call has a non-blank id; the error names its index."""
    message = assistant_calling(ToolCall(id="c1", name="f", arguments={}), ToolCall(id=blank, name="g", arguments={}))
    with pytest.raises(ValidationError, match=r"tool_calls\[1\] needs a non-blank id and name"):
        validate_message_shape(message, 1)


@pytest.mark.parametrize("blank", BLANKS)
def test_mod3_tool_call_with_blank_name_is_refused(blank: str) -> None:
    """MOD-3: each tool call has a non-blank name."""
    message = assistant_calling(ToolCall(id="c1", name=blank, arguments={}))
    with pytest.raises(ValidationError, match=r"tool_calls\[0\] needs a non-blank id and name"):
        validate_message_shape(message, 1)


def test_mod3_duplicate_tool_call_ids_are_refused() -> None:
    """MOD-3: tool call ids are unique within the message."""
    message = assistant_calling(
        ToolCall(id="c1", name="f", arguments={}),
        ToolCall(id="c2", name="g", arguments={}),
        ToolCall(id="c1", name="h", arguments=None),
    )
    with pytest.raises(ValidationError, match="tool call id 'c1' appears twice"):
        validate_message_shape(message, 1)


def test_mod3_valid_messages_of_every_role_pass() -> None:
    """MOD-3: well-formed system, user, assistant (with distinct calls) and tool messages are valid."""
    validate_message_shape(user(role=Role.SYSTEM), 1)
    validate_message_shape(user(), 1)
    validate_message_shape(
        assistant_calling(ToolCall(id="c1", name="f", arguments={}), ToolCall(id="c2", name="f", arguments=[])), 2
    )
    validate_message_shape(user(role=Role.TOOL, tool_call_id="c1"), 3)


def test_mod3_compaction_from_seq_zero_is_refused() -> None:
    """MOD-3: a compaction mark is 1-based (`1 <= from_seq`)."""
    with pytest.raises(ValidationError, match="compaction mark"):
        validate_message_shape(summary(0, 2), 5)


def test_mod3_compaction_from_after_to_is_refused() -> None:
    """MOD-3: a compaction mark has `from_seq <= to_seq`."""
    with pytest.raises(ValidationError, match="compaction mark"):
        validate_message_shape(summary(3, 2), 5)


@pytest.mark.parametrize("to_seq", [5, 6, 100])
def test_mod3_compaction_must_end_before_the_summary_itself(to_seq: int) -> None:
    """MOD-3: a compaction mark's `to_seq` is below the summary message's own seq."""
    with pytest.raises(ValidationError, match="compaction mark"):
        validate_message_shape(summary(1, to_seq), 5)


@pytest.mark.parametrize(("from_seq", "to_seq"), [(1, 4), (4, 4), (1, 1), (2, 3)])
def test_mod3_valid_compaction_passes(from_seq: int, to_seq: int) -> None:
    """MOD-3: `1 <= from_seq <= to_seq < seq` is valid."""
    validate_message_shape(summary(from_seq, to_seq), 5)


@pytest.mark.parametrize("value", [{"id": "m1", "role": "user", "content": []}, Thread(id="m1"), None])
def test_mod3_non_message_raises_type_error(value: object) -> None:
    """MOD-3: `validate_message_shape` raises `TypeError` (not `ValidationError`) for a non-Message."""
    with pytest.raises(TypeError, match="expected a Message"):
        validate_message_shape(cast(Message, value), 1)


def test_mod3_wrong_field_type_is_a_validation_error_naming_the_message() -> None:
    """MOD-3: a message field of the wrong type is a `ValidationError` naming the message and the field."""
    message = user(role=cast(Role, "user"))
    with pytest.raises(ValidationError, match=r"message 'm1' \(seq 1\): field 'role'"):
        validate_message_shape(message, 1)


# ── MOD-4 RunRecord.validate_for_persist ─────────────────────────────

DONE_OUTCOME = RunOutcome(
    termination_reason={"type": "error", "value": "boom"}, final_output="partial", error_payload={"code": 1}
)


def run(**changes: Any) -> RunRecord:
    """A valid `created` run `r1` of thread `t1`, with `changes` applied."""
    base = RunRecord(run_id="r1", thread_id="t1", agent_id="agent", created_at=10, updated_at=10)
    return replace(base, **changes)


def done(**changes: Any) -> RunRecord:
    """A valid `done` run `r1` with `finished_at` and an outcome, with `changes` applied."""
    fields: dict[str, Any] = {"status": RunStatus.DONE, "finished_at": 20, "outcome": DONE_OUTCOME.copy()}
    return run(**{**fields, **changes})


def waiting_state() -> RunWaitingState:
    return RunWaitingState(reason=WaitingReason.USER_INPUT)


def one_to(to_seq: int) -> MessageSeqRange:
    return MessageSeqRange(from_seq=1, to_seq=to_seq)


@pytest.mark.parametrize("name", ["run_id", "thread_id", "agent_id"])
@pytest.mark.parametrize("blank", BLANKS)
def test_mod4_blank_ids_are_refused(name: str, blank: str) -> None:
    """MOD-4: `run_id`, `thread_id` and `agent_id` are not blank; the error names the field."""
    with pytest.raises(ValidationError, match=f"field '{name}' must not be blank"):
        run(**{name: blank}).validate_for_persist()


def test_mod4_input_naming_another_thread_is_refused() -> None:
    """MOD-4: `input` names the run's own thread."""
    with pytest.raises(ValidationError, match=re.escape("input.thread_id 't2' must be the run's thread 't1'")):
        run(input=RunMessageInput(thread_id="t2")).validate_for_persist()


def test_mod4_output_naming_another_thread_is_refused() -> None:
    """MOD-4: `output` names the run's own thread."""
    with pytest.raises(ValidationError, match=re.escape("output.thread_id 't2' must be the run's thread 't1'")):
        run(output=RunMessageOutput(thread_id="t2")).validate_for_persist()


@pytest.mark.parametrize(
    ("activation", "part"),
    [
        ({"intent": {"thread_id": "t2"}, "input": {"thread_id": "t2"}}, "intent"),
        ({"intent": {"thread_id": "t1"}, "input": {"thread_id": "t2"}}, "input"),
        ({"input": {"thread_id": " t1"}}, "input"),
        ({"intent": {"thread_id": None}}, "intent"),
    ],
)
def test_mod4_activation_naming_another_thread_is_refused(activation: dict[str, Any], part: str) -> None:
    """MOD-4: an activation's `intent.thread_id` and `input.thread_id`, when present, are the run's own thread."""
    with pytest.raises(ValidationError, match=re.escape(f"activation.{part}.thread_id")):
        run(activation=activation).validate_for_persist()


@pytest.mark.parametrize(
    "activation",
    [
        None,
        {"intent": {"thread_id": "t1", "kind": "new_intent"}, "input": {"thread_id": "t1"}, "options": {}},
        {"intent": {"agent_id": "a"}, "input": {"range": {"from_seq": 1, "to_seq": 2}}},
        {"thread_id": "t2", "trace": {"parent_thread_id": "t2"}},
        {"intent": "t2", "input": ["t2"]},
        ["intent", {"thread_id": "t2"}],
        "opaque",
    ],
)
def test_mod4_activation_naming_no_other_thread_passes(activation: Any) -> None:
    """MOD-4: an activation naming its own thread, or none where MOD-4 looks, is opaque JSON and valid."""
    run(activation=activation).validate_for_persist()


@pytest.mark.parametrize("part", ["input", "output"])
def test_mod4_range_from_seq_zero_is_refused(part: str) -> None:
    """MOD-4: `input`/`output` ranges are 1-based."""
    bad = MessageSeqRange(from_seq=0, to_seq=0)
    value = (
        RunMessageInput(thread_id="t1", range=bad)
        if part == "input"
        else RunMessageOutput(thread_id="t1", range=bad, message_ids=["m"])
    )
    with pytest.raises(ValidationError, match=re.escape(f"{part}.range must satisfy 1 <= from_seq <= to_seq")):
        run(**{part: value}).validate_for_persist()


@pytest.mark.parametrize("part", ["input", "output"])
def test_mod4_range_from_after_to_is_refused(part: str) -> None:
    """MOD-4: `input`/`output` ranges are non-empty (`from_seq <= to_seq`)."""
    bad = MessageSeqRange(from_seq=3, to_seq=2)
    value = (
        RunMessageInput(thread_id="t1", range=bad)
        if part == "input"
        else RunMessageOutput(thread_id="t1", range=bad, message_ids=[])
    )
    with pytest.raises(ValidationError, match=re.escape(f"{part}.range must satisfy 1 <= from_seq <= to_seq")):
        run(**{part: value}).validate_for_persist()


@pytest.mark.parametrize("message_ids", [[], ["m1"], ["m1", "m2", "m3"]])
def test_mod4_output_range_length_must_equal_message_ids(message_ids: list[str]) -> None:
    """MOD-4: an output range's length equals `len(output.message_ids)`."""
    output = RunMessageOutput(thread_id="t1", range=one_to(2), message_ids=message_ids)
    with pytest.raises(ValidationError, match=f"covers 2 messages but output.message_ids has {len(message_ids)}"):
        run(output=output).validate_for_persist()


def test_mod4_valid_input_and_output_pass() -> None:
    """MOD-4: own-thread input/output with 1-based, non-empty ranges of the right length are valid."""
    run(
        input=RunMessageInput(thread_id="t1", range=MessageSeqRange(from_seq=2, to_seq=2)),
        output=RunMessageOutput(thread_id="t1", range=MessageSeqRange(from_seq=3, to_seq=4), message_ids=["a", "b"]),
    ).validate_for_persist()
    run(input=RunMessageInput(thread_id="t1"), output=RunMessageOutput(thread_id="t1")).validate_for_persist()


@pytest.mark.parametrize("status", [RunStatus.CREATED, RunStatus.RUNNING])
def test_mod4_created_or_running_run_carries_no_waiting(status: RunStatus) -> None:
    """MOD-4: a `created`/`running` run carries no `waiting`."""
    with pytest.raises(ValidationError, match=f"a {status.value} run must not carry 'waiting'"):
        run(status=status, waiting=waiting_state()).validate_for_persist()


@pytest.mark.parametrize("status", [RunStatus.CREATED, RunStatus.RUNNING])
def test_mod4_created_or_running_run_carries_no_outcome(status: RunStatus) -> None:
    """MOD-4: a `created`/`running` run carries no `outcome`."""
    with pytest.raises(ValidationError, match=f"a {status.value} run must carry no 'outcome'"):
        run(status=status, outcome=DONE_OUTCOME.copy()).validate_for_persist()


@pytest.mark.parametrize("status", [RunStatus.CREATED, RunStatus.RUNNING])
def test_mod4_created_or_running_run_carries_no_finished_at(status: RunStatus) -> None:
    """MOD-4: a `created`/`running` run carries no `finished_at`."""
    with pytest.raises(ValidationError, match=rf"a {status.value} run .*'finished_at'"):
        run(status=status, finished_at=20).validate_for_persist()


@pytest.mark.parametrize("status", [RunStatus.CREATED, RunStatus.RUNNING])
def test_mod4_plain_created_or_running_run_passes(status: RunStatus) -> None:
    """MOD-4: a `created`/`running` run without waiting, outcome or finished_at is valid."""
    run(status=status, started_at=11).validate_for_persist()


def test_mod4_waiting_run_without_waiting_is_refused() -> None:
    """MOD-4: a `waiting` run carries `waiting`."""
    with pytest.raises(ValidationError, match="a waiting run must carry 'waiting'"):
        run(status=RunStatus.WAITING).validate_for_persist()


def test_mod4_waiting_run_with_outcome_is_refused() -> None:
    """MOD-4: a `waiting` run carries no `outcome`."""
    with pytest.raises(ValidationError, match="a waiting run must carry no 'outcome'"):
        run(status=RunStatus.WAITING, waiting=waiting_state(), outcome=DONE_OUTCOME.copy()).validate_for_persist()


def test_mod4_waiting_run_with_finished_at_is_refused() -> None:
    """MOD-4: a `waiting` run carries no `finished_at`."""
    with pytest.raises(ValidationError, match=r"a waiting run .*'finished_at'"):
        run(status=RunStatus.WAITING, waiting=waiting_state(), finished_at=20).validate_for_persist()


def test_mod4_waiting_run_with_waiting_passes() -> None:
    """MOD-4: a `waiting` run with `waiting`, no outcome and no finished_at is valid."""
    run(
        status=RunStatus.WAITING, waiting=waiting_state(), termination_reason={"type": "suspended"}
    ).validate_for_persist()


def test_mod4_done_run_with_waiting_is_refused() -> None:
    """MOD-4: a `done` run carries no `waiting`."""
    with pytest.raises(ValidationError, match="a done run must not carry 'waiting'"):
        done(waiting=waiting_state()).validate_for_persist()


def test_mod4_done_run_without_finished_at_is_refused() -> None:
    """MOD-4: a `done` run carries `finished_at`."""
    with pytest.raises(ValidationError, match="a done run must carry 'finished_at'"):
        done(finished_at=None).validate_for_persist()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("termination_reason", {"type": "natural_end"}),
        ("termination_reason", {"type": "error", "value": "other"}),
        ("final_output", "something else"),
        ("final_output", ""),
        ("error_payload", {"code": 2}),
        ("error_payload", [{"code": 1}]),
    ],
)
def test_mod4_done_run_field_differing_from_outcome_is_refused(name: str, value: object) -> None:
    """MOD-4: a `done` run's termination_reason/final_output/error_payload, when set, equal the outcome's."""
    with pytest.raises(ValidationError, match=re.escape(f"field '{name}' differs from outcome.{name}")):
        done(**{name: value}).validate_for_persist()


@pytest.mark.parametrize("name", ["final_output", "error_payload"])
def test_mod4_done_run_field_set_where_outcome_has_none_is_refused(name: str) -> None:
    """MOD-4: a set field differs from an outcome that leaves it unset."""
    outcome = RunOutcome(termination_reason={"type": "natural_end"})
    with pytest.raises(ValidationError, match=re.escape(f"field '{name}' differs from outcome.{name}")):
        done(outcome=outcome, **{name: "x"}).validate_for_persist()


def test_mod4_done_run_with_fields_equal_to_outcome_passes() -> None:
    """MOD-4: a `done` run whose termination_reason/final_output/error_payload equal the outcome's is valid."""
    done(
        termination_reason={"type": "error", "value": "boom"}, final_output="partial", error_payload={"code": 1}
    ).validate_for_persist()


def test_mod4_done_run_with_unset_fields_or_no_outcome_passes() -> None:
    """MOD-4: unset run fields are not compared, and a `done` run need not carry an outcome."""
    done().validate_for_persist()
    done(outcome=None, termination_reason={"type": "cancelled"}, final_output="x").validate_for_persist()
