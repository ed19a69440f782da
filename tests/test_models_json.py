"""JSON shape of every model (SPEC section 2, MOD-5) against the hand-written vectors in `tests/vectors/`.

Each vector is checked both ways: the JSON parses to the Python object built here by
keyword, and that object dumps to the JSON. Then the malformed values that
`from_json` must refuse, and the deep copies behind ISO-1.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from pathlib import Path
from typing import Any

import pytest

from conformance import (
    CheckpointSnapshot,
    CompactionMark,
    Message,
    MessageMetadata,
    MessageRecord,
    MessageSeqRange,
    PersistedState,
    Role,
    RunMessageInput,
    RunMessageOutput,
    RunOutcome,
    RunRecord,
    RunRequestSnapshot,
    RunStatus,
    RunWaitingState,
    SerializationError,
    StorageError,
    Thread,
    ThreadMetadata,
    ToolCall,
    ValidationError,
    Visibility,
    WaitingReason,
)
from conformance.contract._models import Model

VECTOR_DIR = Path(__file__).parent / "vectors"

MODELS: dict[str, type[Model]] = {
    cls.__name__: cls
    for cls in (
        Thread,
        ThreadMetadata,
        Message,
        MessageMetadata,
        ToolCall,
        CompactionMark,
        MessageRecord,
        RunRecord,
        RunRequestSnapshot,
        RunMessageInput,
        RunMessageOutput,
        MessageSeqRange,
        RunWaitingState,
        RunOutcome,
        PersistedState,
        CheckpointSnapshot,
    )
}


def canonical(value: object) -> str:
    """The JSON text of `value` with sorted keys and no spaces, for exact comparison."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


def _load_vectors() -> dict[str, tuple[str, Any]]:
    """Every vector by name: (model name, JSON value); names are unique across files."""
    vectors: dict[str, tuple[str, Any]] = {}
    for path in sorted(VECTOR_DIR.glob("*.json")):
        for name, entry in json.loads(path.read_text(encoding="utf-8")).items():
            assert name not in vectors, f"vector {name!r} in {path.name} is defined twice"
            vectors[name] = (entry["model"], entry["json"])
    return vectors


VECTORS = _load_vectors()


# ── the Python side of every vector, built by keyword ──────────────


def _expected_objects() -> dict[str, Model]:
    """A fresh object for every vector name, written independently of the JSON files."""
    return {
        # threads.json
        "thread_metadata_minimal": ThreadMetadata(),
        "thread_metadata_full": ThreadMetadata(
            created_at=1700000000000,
            updated_at=1700000005000,
            title="Trip planning",
            custom={
                "tags": ["travel", "draft"],
                "priority": 2,
                "ratio": 0.5,
                "pinned": False,
                "owner": None,
                "nested": {"depth": {"level": 3}},
            },
        ),
        "thread_metadata_custom_only": ThreadMetadata(custom={"k": "v"}),
        "thread_minimal": Thread(id="t1"),
        "thread_full": Thread(
            id="t-child",
            resource_id="res-1",
            parent_thread_id="t-root",
            metadata=ThreadMetadata(
                created_at=1700000000000,
                updated_at=1700000009000,
                title="Child thread",
                custom={"source": "api"},
            ),
            active_run_id="run-2",
            open_run_id="run-2",
            latest_run_id="run-2",
            latest_run_updated_at=1700000009,
        ),
        # messages.json
        "tool_call_minimal": ToolCall(id="call-1", name="noop", arguments=None),
        "tool_call_full": ToolCall(
            id="call-2",
            name="search",
            arguments={"query": "weather in Lyon", "limit": 3, "exact": False, "score": 0.75, "tags": ["a", None]},
        ),
        "tool_call_array_arguments": ToolCall(id="call-3", name="sum", arguments=[1, 2, 3]),
        "compaction_mark_minimal": CompactionMark(from_seq=1, to_seq=1),
        "compaction_mark_full": CompactionMark(from_seq=2, to_seq=5),
        "message_metadata_minimal": MessageMetadata(),
        "message_metadata_full": MessageMetadata(
            run_id="run-1",
            step_index=3,
            sender_agent_id="planner",
            compaction=CompactionMark(from_seq=2, to_seq=5),
        ),
        "message_minimal": Message(role=Role.USER, content=[]),
        "message_full": Message(
            id="m-full",
            role=Role.ASSISTANT,
            content=[
                {"type": "text", "text": "Let me look that up."},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}},
            ],
            tool_calls=[
                ToolCall(id="call-1", name="search", arguments={"query": "weather"}),
                ToolCall(id="call-2", name="clock", arguments={}),
            ],
            tool_call_id="call-0",
            visibility=Visibility.INTERNAL,
            metadata=MessageMetadata(
                run_id="run-1",
                step_index=0,
                sender_agent_id="planner",
                compaction=CompactionMark(from_seq=1, to_seq=2),
            ),
        ),
        "message_system": Message(id="m-sys", role=Role.SYSTEM, content=[{"type": "text", "text": "Be brief."}]),
        "message_tool_result_internal": Message(
            id="m-tool",
            role=Role.TOOL,
            content=[{"type": "text", "text": "sunny"}],
            tool_call_id="call-1",
            visibility=Visibility.INTERNAL,
        ),
        "message_record_minimal": MessageRecord(
            message_id="m1",
            thread_id="t1",
            seq=1,
            message=Message(id="m1", role=Role.USER, content=[{"type": "text", "text": "hi"}]),
        ),
        "message_record_full": MessageRecord(
            message_id="m4",
            thread_id="t1",
            seq=4,
            message=Message(
                id="m4",
                role=Role.TOOL,
                content=[{"type": "text", "text": "summary of 1..3"}],
                tool_call_id="call-9",
                metadata=MessageMetadata(run_id="run-1", step_index=2, compaction=CompactionMark(from_seq=1, to_seq=3)),
            ),
            produced_by_run_id="run-1",
            step_index=2,
            tool_call_id="call-9",
            created_at=1700000000123,
            compaction=CompactionMark(from_seq=1, to_seq=3),
        ),
        # outcomes.json
        "run_outcome_minimal": RunOutcome(termination_reason={"type": "natural_end"}),
        "run_outcome_full": RunOutcome(
            termination_reason={"type": "error", "value": "tool crashed"},
            final_output="partial answer",
            error_payload={"code": 500, "retryable": False, "trace": ["a", "b"]},
        ),
        "run_outcome_cancelled": RunOutcome(termination_reason={"type": "cancelled"}),
        "run_outcome_suspended": RunOutcome(termination_reason={"type": "suspended"}),
        "run_outcome_behavior_requested": RunOutcome(termination_reason={"type": "behavior_requested"}),
        "run_outcome_blocked": RunOutcome(termination_reason={"type": "blocked", "value": "why"}),
        "run_outcome_error": RunOutcome(termination_reason={"type": "error", "value": "msg"}),
        "run_outcome_stopped_with_detail": RunOutcome(
            termination_reason={"type": "stopped", "value": {"code": "max_rounds", "detail": "reached 10 rounds"}}
        ),
        "run_outcome_stopped_without_detail": RunOutcome(
            termination_reason={"type": "stopped", "value": {"code": "max_rounds"}}
        ),
        "run_outcome_error_payload_string": RunOutcome(
            termination_reason={"type": "error", "value": "msg"}, error_payload="plain text"
        ),
        # runs.json
        "message_seq_range_minimal": MessageSeqRange(from_seq=1, to_seq=1),
        "message_seq_range_full": MessageSeqRange(from_seq=3, to_seq=7),
        "run_request_snapshot_minimal": RunRequestSnapshot(),
        "run_request_snapshot_full": RunRequestSnapshot(
            origin="A2A",
            sender_id="agent-7",
            input_message_ids=["m1", "m2"],
            input_message_count=2,
            request_extras={"locale": "fr", "flags": [1, 2]},
            decisions=[
                {
                    "call_id": "call-1",
                    "resume": {"decision_id": "d-1", "action": "resume", "result": True, "updated_at": 0},
                }
            ],
            frontend_tools=[
                {
                    "id": "calc",
                    "name": "Calculator",
                    "description": "Adds",
                    "parameters": {"type": "object"},
                    "category": None,
                }
            ],
            parent_thread_id="t-root",
            transport_request_id="req-9",
        ),
        "run_request_snapshot_origin_mcp": RunRequestSnapshot(origin="Mcp", input_message_count=1),
        "run_request_snapshot_origin_internal": RunRequestSnapshot(origin="Internal", input_message_ids=["m9"]),
        "run_message_input_minimal": RunMessageInput(thread_id="t1"),
        "run_message_input_full": RunMessageInput(
            thread_id="t1",
            range=MessageSeqRange(from_seq=1, to_seq=3),
            trigger_message_ids=["m3"],
            selected_message_ids=["m1", "m3"],
            context_policy="sliding_window",
            compacted_snapshot_id="snap-1",
        ),
        "run_message_output_minimal": RunMessageOutput(thread_id="t1"),
        "run_message_output_full": RunMessageOutput(
            thread_id="t1", range=MessageSeqRange(from_seq=4, to_seq=5), message_ids=["m4", "m5"]
        ),
        "run_waiting_state_minimal": RunWaitingState(reason=WaitingReason.USER_INPUT),
        "run_waiting_state_full": RunWaitingState(
            reason=WaitingReason.TOOL_PERMISSION,
            ticket_ids=["tk-1"],
            tickets=[
                {
                    "ticket_id": "tk-1",
                    "tool_call_id": "call-1",
                    "tool_name": "search",
                    "arguments": {"q": "x"},
                    "resume_mode": "replay_tool_call",
                    "updated_at": 1700000000000,
                }
            ],
            since_dispatch_id="disp-1",
            message="approve the search?",
        ),
        "run_waiting_state_background_tasks": RunWaitingState(reason=WaitingReason.BACKGROUND_TASKS),
        "run_waiting_state_external_event": RunWaitingState(
            reason=WaitingReason.EXTERNAL_EVENT, ticket_ids=["ev-1", "ev-2"]
        ),
        "run_waiting_state_rate_limit": RunWaitingState(reason=WaitingReason.RATE_LIMIT, message="retry in 30s"),
        "run_waiting_state_manual_pause": RunWaitingState(reason=WaitingReason.MANUAL_PAUSE),
        "persisted_state_minimal": PersistedState(),
        "persisted_state_full": PersistedState(
            revision=7, extensions={"memory": {"facts": ["likes tea"]}, "counter": 3}
        ),
        "run_record_minimal": RunRecord(
            run_id="run-1",
            thread_id="t1",
            agent_id="agent-a",
            status=RunStatus.CREATED,
            created_at=1700000000,
            updated_at=1700000000,
        ),
        "run_record_full": RunRecord(
            run_id="run-2",
            thread_id="t1",
            agent_id="agent-a",
            parent_run_id="run-1",
            resolution_id="binding-1",
            activation={
                "intent": {"thread_id": "t1", "kind": {"kind": "hitl_resume", "run_id": "run-1"}},
                "input": {"thread_id": "t1"},
                "options": {},
                "trace": {"origin": "user", "adapter": "internal", "run_mode": "resume"},
            },
            request=RunRequestSnapshot(
                origin="Mcp",
                sender_id="user-1",
                input_message_ids=["m1"],
                input_message_count=1,
                request_extras={"debug": True},
                parent_thread_id="t-root",
                transport_request_id="req-1",
            ),
            input=RunMessageInput(
                thread_id="t1", range=MessageSeqRange(from_seq=1, to_seq=1), trigger_message_ids=["m1"]
            ),
            output=RunMessageOutput(
                thread_id="t1", range=MessageSeqRange(from_seq=2, to_seq=3), message_ids=["m2", "m3"]
            ),
            status=RunStatus.DONE,
            termination_reason={"type": "stopped", "value": {"code": "max_rounds", "detail": "hit 10 rounds"}},
            final_output="done for now",
            error_payload={"warnings": ["slow tool"]},
            dispatch_id="disp-2",
            session_id="sess-1",
            transport_request_id="req-1",
            waiting=RunWaitingState(reason=WaitingReason.RATE_LIMIT),
            outcome=RunOutcome(
                termination_reason={"type": "stopped", "value": {"code": "max_rounds", "detail": "hit 10 rounds"}},
                final_output="done for now",
                error_payload={"warnings": ["slow tool"]},
            ),
            created_at=1700000000,
            started_at=1700000001,
            finished_at=1700000060,
            updated_at=1700000060,
            steps=10,
            input_tokens=1234,
            output_tokens=567,
            state=PersistedState(revision=3, extensions={"plan": ["a", "b"]}),
        ),
        "run_record_running": RunRecord(
            run_id="run-3",
            thread_id="t1",
            agent_id="agent-a",
            status=RunStatus.RUNNING,
            created_at=1700000000,
            started_at=1700000002,
            updated_at=1700000002,
            steps=1,
            input_tokens=10,
            state=PersistedState(),
        ),
        "run_record_waiting": RunRecord(
            run_id="run-4",
            thread_id="t1",
            agent_id="agent-a",
            parent_run_id="run-3",
            status=RunStatus.WAITING,
            termination_reason={"type": "suspended"},
            waiting=RunWaitingState(reason=WaitingReason.TOOL_PERMISSION, ticket_ids=["tk-1"]),
            created_at=1700000000,
            updated_at=1700000005,
            steps=2,
            input_tokens=20,
            output_tokens=5,
        ),
        "checkpoint_snapshot_minimal": CheckpointSnapshot(),
        "checkpoint_snapshot_full": CheckpointSnapshot(
            messages=[
                Message(id="m1", role=Role.USER, content=[{"type": "text", "text": "hi"}]),
                Message(
                    id="m2",
                    role=Role.ASSISTANT,
                    content=[{"type": "text", "text": "hello"}],
                    metadata=MessageMetadata(run_id="run-1"),
                ),
            ],
            message_version=3,
            latest_run=RunRecord(
                run_id="run-1",
                thread_id="t1",
                agent_id="agent-a",
                status=RunStatus.DONE,
                termination_reason={"type": "natural_end"},
                outcome=RunOutcome(termination_reason={"type": "natural_end"}, final_output="hello"),
                created_at=1700000000,
                finished_at=1700000003,
                updated_at=1700000003,
                steps=1,
                input_tokens=12,
                output_tokens=3,
            ),
            thread_state=PersistedState(revision=1, extensions={"k": "v"}),
        ),
    }


EXPECTED = _expected_objects()
VECTOR_NAMES = sorted(VECTORS)


def field_names(model: Model | type[Model]) -> list[str]:
    """The dataclass field names of a model class or instance (mypy cannot see `Model` is a dataclass)."""
    return [f.name for f in dataclasses.fields(model)]  # type: ignore[arg-type]


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


# ── the vector set itself ───────────────────────────────────────────


def test_every_vector_has_an_expected_object_and_back() -> None:
    """MOD-5: no vector goes unchecked in either direction, and no expected object lacks its JSON."""
    assert set(VECTORS) == set(EXPECTED)


@pytest.mark.parametrize("model_name", sorted(MODELS))
def test_every_model_has_a_minimal_and_a_full_vector(model_name: str) -> None:
    """MOD-5: each model has `<model>_minimal` (required fields only) and `<model>_full` (every field set)."""
    for kind in ("minimal", "full"):
        name = f"{_snake(model_name)}_{kind}"
        assert name in VECTORS, f"missing vector {name!r}"
        assert VECTORS[name][0] == model_name


def test_full_vectors_set_every_field() -> None:
    """MOD-5: a `_full` vector writes every field its model has, so none goes untested."""
    for model_name, cls in MODELS.items():
        _, value = VECTORS[f"{_snake(model_name)}_full"]
        assert set(value) == set(field_names(cls)), model_name


def test_vectors_cover_every_termination_reason_and_enum_value() -> None:
    """MOD-5: every termination_reason variant, origin, role, status and waiting reason appears in a vector."""
    text = "".join(canonical(value) for _, value in VECTORS.values())
    for kind in ("natural_end", "cancelled", "suspended", "behavior_requested", "blocked", "error", "stopped"):
        assert f'{{"type":"{kind}"' in text, kind
    assert '"value":{"code":"max_rounds"}' in text  # stopped without detail
    for origin in ("User", "Mcp", "A2A", "Internal"):
        assert f'"origin":"{origin}"' in text, origin
    for role in Role:
        assert f'"role":"{role.value}"' in text, role
    assert '"visibility":"internal"' in text
    for status in RunStatus:
        assert f'"status":"{status.value}"' in text, status
    for reason in WaitingReason:
        assert f'"reason":"{reason.value}"' in text, reason


# ── both directions, and the round trip ──────────────────────────────


@pytest.mark.parametrize("name", VECTOR_NAMES)
def test_vector_parses_to_expected_object(name: str) -> None:
    """MOD-5: `Model.from_json(vector)` equals the object built by keyword."""
    model_name, value = VECTORS[name]
    parsed = MODELS[model_name].from_json(value)
    assert type(parsed) is MODELS[model_name]
    assert parsed == EXPECTED[name]


@pytest.mark.parametrize("name", VECTOR_NAMES)
def test_expected_object_dumps_to_vector(name: str) -> None:
    """MOD-5: `to_json()` of the object built by keyword is exactly the vector (omitted keys included)."""
    model_name, value = VECTORS[name]
    expected = EXPECTED[name]
    assert type(expected) is MODELS[model_name]
    assert canonical(expected.to_json()) == canonical(value)


@pytest.mark.parametrize("name", VECTOR_NAMES)
def test_vector_round_trips_unchanged(name: str) -> None:
    """MOD-5: `to_json(from_json(v)) == v` for every vector."""
    model_name, value = VECTORS[name]
    assert canonical(MODELS[model_name].from_json(value).to_json()) == canonical(value)


def test_enums_parse_to_members_not_plain_strings() -> None:
    """SPEC 2: enum fields read back as enum members (a plain str would compare equal but is not one)."""
    message = Message.from_json(VECTORS["message_tool_result_internal"][1])
    assert type(message.role) is Role
    assert type(message.visibility) is Visibility
    run = RunRecord.from_json(VECTORS["run_record_waiting"][1])
    assert type(run.status) is RunStatus
    assert run.waiting is not None
    assert type(run.waiting.reason) is WaitingReason


def test_to_json_writes_enum_values_as_plain_strings() -> None:
    """SPEC 2: `to_json()` holds only JSON types, never enum members."""
    dumped = EXPECTED["message_full"].to_json()
    assert type(dumped["role"]) is str
    assert type(dumped["visibility"]) is str
    assert type(EXPECTED["run_record_minimal"].to_json()["status"]) is str


def test_absent_defaults_read_as_python_defaults() -> None:
    """SPEC 2: keys with a Rust default may be left out on read (origin "User", counts 0, metadata empty)."""
    assert Thread.from_json({"id": "t1"}) == Thread(id="t1")
    assert RunRequestSnapshot.from_json({}) == RunRequestSnapshot(origin="User")
    assert PersistedState.from_json({}) == PersistedState(revision=0, extensions={})
    assert RunRecord.from_json({"run_id": "r", "thread_id": "t", "agent_id": "a"}) == RunRecord(
        run_id="r", thread_id="t", agent_id="a", status=RunStatus.CREATED
    )


def test_null_optional_fields_read_as_absent() -> None:
    """SPEC 2: an explicit null in an optional field reads as None (serde's Option), then is omitted."""
    message = Message.from_json({"role": "user", "content": [], "id": None, "metadata": None, "tool_calls": None})
    assert message == Message(role=Role.USER, content=[])
    assert message.to_json() == {"role": "user", "content": []}


# ── unknown keys ─────────────────────────────────────────────────────


@pytest.mark.parametrize("name", VECTOR_NAMES)
def test_unknown_top_level_keys_are_ignored(name: str) -> None:
    """SPEC 2: unknown keys are ignored on read (serde's default) and not written back."""
    model_name, value = VECTORS[name]
    extended = {**value, "x_future_field": {"anything": [1, 2]}, "another": None}
    parsed = MODELS[model_name].from_json(extended)
    assert parsed == EXPECTED[name]
    assert canonical(parsed.to_json()) == canonical(value)


def test_unknown_nested_keys_are_ignored() -> None:
    """SPEC 2: unknown keys inside nested models are ignored too."""
    thread = Thread.from_json({"id": "t1", "metadata": {"title": "x", "colour": "red"}})
    assert thread == Thread(id="t1", metadata=ThreadMetadata(title="x"))
    run = RunRecord.from_json(
        {
            "run_id": "r",
            "thread_id": "t",
            "agent_id": "a",
            "request": {"origin": "Mcp", "decisions": [], "frontend_tools": []},
            "outcome": {"termination_reason": {"type": "cancelled"}, "extra": 1},
        }
    )
    assert run.request == RunRequestSnapshot(origin="Mcp")
    assert run.outcome == RunOutcome(termination_reason={"type": "cancelled"})


# ── malformed values ─────────────────────────────────────────────────

NAN = float("nan")
MSG: dict[str, Any] = {"role": "user", "content": []}
RUN: dict[str, Any] = {"run_id": "r", "thread_id": "t", "agent_id": "a"}


def _malformed(kind: str, model: type[Model], value: object, path: str) -> Any:
    return pytest.param(model, value, path, id=f"{kind}:{path}")


@pytest.mark.parametrize(
    ("model", "value", "path"),
    [
        # a string field holding another type
        _malformed("wrong-type", Thread, {"id": 5}, "id"),
        _malformed("wrong-type", Thread, {"id": "t", "metadata": {"title": ["x"]}}, "metadata.title"),
        _malformed("wrong-type", Message, {**MSG, "id": 1.5}, "id"),
        _malformed("wrong-type", RunRecord, {**RUN, "parent_run_id": 7}, "parent_run_id"),
        _malformed(
            "wrong-type",
            RunRecord,
            {**RUN, "request": {"input_message_ids": ["m1", 2]}},
            "request.input_message_ids[1]",
        ),
        _malformed("wrong-type", Message, {**MSG, "tool_calls": {"id": "c"}}, "tool_calls"),
        _malformed("wrong-type", RunWaitingState, {"reason": "user_input", "ticket_ids": "tk-1"}, "ticket_ids"),
        _malformed("wrong-type", ThreadMetadata, {"custom": ["not", "an", "object"]}, "custom"),
        _malformed("wrong-type", RunWaitingState, {"reason": "user_input", "tickets": ["tk"]}, "tickets[0]"),
        _malformed("wrong-type", ThreadMetadata, {"created_at": "2024-01-01"}, "created_at"),
        _malformed("wrong-type", RunRecord, {**RUN, "created_at": 1.0}, "created_at"),
        # a negative integer
        _malformed("negative", Thread, {"id": "t", "metadata": {"created_at": -1}}, "metadata.created_at"),
        _malformed("negative", RunRecord, {**RUN, "steps": -1}, "steps"),
        _malformed("negative", MessageRecord, {"message_id": "m", "thread_id": "t", "seq": -3, "message": MSG}, "seq"),
        _malformed(
            "negative",
            RunRecord,
            {**RUN, "output": {"thread_id": "t", "range": {"from_seq": -1, "to_seq": 1}}},
            "output.range.from_seq",
        ),
        # a bool where an int is expected
        _malformed("bool-int", ThreadMetadata, {"updated_at": True}, "updated_at"),
        _malformed(
            "bool-int", MessageRecord, {"message_id": "m", "thread_id": "t", "seq": True, "message": MSG}, "seq"
        ),
        _malformed("bool-int", RunRecord, {**RUN, "input_tokens": False}, "input_tokens"),
        _malformed("bool-int", CheckpointSnapshot, {"message_version": True}, "message_version"),
        # an enum value misspelled
        _malformed("enum", Message, {**MSG, "role": "User"}, "role"),
        _malformed("enum", Message, {**MSG, "visibility": "hidden"}, "visibility"),
        _malformed("enum", RunRecord, {**RUN, "status": "Done"}, "status"),
        _malformed("enum", RunRecord, {**RUN, "status": None}, "status"),
        _malformed("enum", RunWaitingState, {"reason": "UserInput"}, "reason"),
        _malformed("enum", RunRequestSnapshot, {"origin": "user"}, "origin"),
        _malformed("enum", RunRequestSnapshot, {"origin": "a2a"}, "origin"),
        _malformed("enum", CheckpointSnapshot, {"messages": [{"role": "bot", "content": []}]}, "messages[0].role"),
        # a required field missing
        _malformed("missing", Message, {"content": []}, "role"),
        _malformed("missing", Message, {"role": "user"}, "content"),
        _malformed("missing", Thread, {"metadata": {}}, "id"),
        _malformed("missing", ToolCall, {"id": "c", "name": "n"}, "arguments"),
        _malformed("missing", RunRecord, {"run_id": "r", "thread_id": "t"}, "agent_id"),
        _malformed("missing", RunRecord, {**RUN, "output": {"message_ids": []}}, "output.thread_id"),
        _malformed("missing", RunOutcome, {"final_output": "x"}, "termination_reason"),
        _malformed("missing", MessageRecord, {"message_id": "m", "thread_id": "t", "seq": 1}, "message"),
        _malformed(
            "missing", Message, {**MSG, "metadata": {"compaction": {"from_seq": 1}}}, "metadata.compaction.to_seq"
        ),
        _malformed("missing", Message, {**MSG, "tool_calls": [{"id": "c", "arguments": {}}]}, "tool_calls[0].name"),
        # a content block without a string "type"
        _malformed("content", Message, {**MSG, "content": [{"text": "hi"}]}, "content[0]"),
        _malformed("content", Message, {**MSG, "content": [{"type": "text"}, {"type": 1}]}, "content[1]"),
        _malformed("content", Message, {**MSG, "content": ["hi"]}, "content[0]"),
        _malformed("content", Message, {**MSG, "content": None}, "content"),
        _malformed("content", Message, {**MSG, "content": {"type": "text"}}, "content"),
        # termination_reason shapes
        _malformed("termination", RunOutcome, {"termination_reason": "natural_end"}, "termination_reason"),
        _malformed("termination", RunOutcome, {"termination_reason": {}}, "termination_reason"),
        _malformed("termination", RunOutcome, {"termination_reason": {"type": "finished"}}, "termination_reason"),
        _malformed("termination", RunOutcome, {"termination_reason": {"type": "NaturalEnd"}}, "termination_reason"),
        _malformed(
            "termination", RunOutcome, {"termination_reason": {"type": "cancelled", "value": "x"}}, "termination_reason"
        ),
        _malformed("termination", RunOutcome, {"termination_reason": {"type": "blocked"}}, "termination_reason"),
        _malformed(
            "termination", RunOutcome, {"termination_reason": {"type": "error", "value": 5}}, "termination_reason"
        ),
        _malformed(
            "termination", RunOutcome, {"termination_reason": {"type": "blocked", "value": None}}, "termination_reason"
        ),
        _malformed(
            "termination",
            RunOutcome,
            {"termination_reason": {"type": "natural_end", "value": {}}},
            "termination_reason",
        ),
        _malformed(
            "termination",
            RunOutcome,
            {"termination_reason": {"type": "stopped", "value": "max_rounds"}},
            "termination_reason",
        ),
        _malformed(
            "termination", RunOutcome, {"termination_reason": {"type": "stopped", "value": {}}}, "termination_reason"
        ),
        _malformed(
            "termination",
            RunOutcome,
            {"termination_reason": {"type": "stopped", "value": {"code": "c", "detail": 3}}},
            "termination_reason",
        ),
        _malformed("termination", RunOutcome, {"termination_reason": {"type": "stopped"}}, "termination_reason"),
        _malformed("termination", RunRecord, {**RUN, "termination_reason": {"value": "msg"}}, "termination_reason"),
        _malformed(
            "termination",
            RunRecord,
            {**RUN, "outcome": {"termination_reason": {"type": "error"}}},
            "outcome.termination_reason",
        ),
        # not a JSON object where a model is expected
        _malformed("not-object", Thread, ["t1"], "<root>"),
        _malformed("not-object", Thread, "t1", "<root>"),
        _malformed("not-object", RunRecord, None, "<root>"),
        _malformed("not-object", Thread, {"id": "t", "metadata": None}, "metadata"),
        _malformed("not-object", RunRecord, {**RUN, "state": []}, "state"),
        _malformed("not-object", CheckpointSnapshot, {"messages": ["m1"]}, "messages[0]"),
        # a non-finite float inside a JSON field
        _malformed("nan", RunRecord, {**RUN, "error_payload": NAN}, "error_payload"),
        _malformed("nan", ToolCall, {"id": "c", "name": "n", "arguments": {"x": [math.inf]}}, "arguments"),
        _malformed("nan", ThreadMetadata, {"custom": {"score": NAN}}, "custom"),
        _malformed("nan", Message, {**MSG, "content": [{"type": "text", "score": -math.inf}]}, "content[0]"),
        _malformed("nan", PersistedState, {"extensions": {"k": NAN}}, "extensions"),
        _malformed("nan", RunRecord, {**RUN, "request": {"request_extras": [NAN]}}, "request.request_extras"),
    ],
)
def test_malformed_value_raises_serialization_error_naming_the_field(
    model: type[Model], value: object, path: str
) -> None:
    """SPEC 1: `from_json` refuses a malformed value with `SerializationError` naming the model and field path."""
    with pytest.raises(SerializationError, match=re.escape(f"{model.__name__}: field '{path}' ")):
        model.from_json(value)


@pytest.mark.parametrize(
    ("given", "written"),
    [
        ({"type": "plugin_requested"}, {"type": "behavior_requested"}),
        ({"type": "natural_end", "value": None}, {"type": "natural_end"}),
        ({"type": "cancelled", "extra": 5}, {"type": "cancelled"}),
        ({"value": "m", "type": "error", "x": 1}, {"type": "error", "value": "m"}),
        ({"type": "stopped", "value": {"code": "c", "detail": None}}, {"type": "stopped", "value": {"code": "c"}}),
        ({"type": "stopped", "value": {"code": "c", "why": "x"}}, {"type": "stopped", "value": {"code": "c"}}),
    ],
)
def test_termination_reason_reads_and_writes_as_serde_does(given: dict[str, Any], written: dict[str, Any]) -> None:
    """SPEC 2: what upstream's serde reads (checked through the upstream shim) parses, and writes as serde writes it.

    The alias `plugin_requested`, a unit variant's `"value": null`, a `null` detail and
    unknown keys are read; none is written back.
    """
    outcome = RunOutcome.from_json({"termination_reason": given})
    assert outcome.termination_reason == written
    kept = RunRecord(
        run_id="r", thread_id="t", agent_id="a", status=RunStatus.DONE, finished_at=1, termination_reason=given
    )
    kept.outcome = RunOutcome(termination_reason=written)
    kept.validate_for_persist()
    assert kept.to_json()["termination_reason"] == written


def test_serialization_error_is_a_storage_error_not_a_validation_error() -> None:
    """SPEC 1: `SerializationError` is its own kind of `StorageError`."""
    with pytest.raises(SerializationError) as caught:
        Thread.from_json({"id": None})
    assert isinstance(caught.value, StorageError)
    assert not isinstance(caught.value, ValidationError)


# ── copies share nothing (ISO-1) ─────────────────────────────────────

_MUTATED = "mutated-by-test"


def _mutate_everything(value: object) -> int:
    """Change every list, dict and nested model reachable from `value` in place; return how many."""
    changed = 0
    if isinstance(value, Model):
        for name in field_names(value):
            changed += _mutate_everything(getattr(value, name))
            setattr(value, name, _MUTATED)
        changed += 1
    elif isinstance(value, list):
        for item in value:
            changed += _mutate_everything(item)
        value.append(_MUTATED)
        changed += 1
    elif isinstance(value, dict):
        for item in value.values():
            changed += _mutate_everything(item)
        value[_MUTATED] = _MUTATED
        changed += 1
    return changed


@pytest.mark.parametrize("name", VECTOR_NAMES)
def test_copy_shares_no_mutable_object(name: str) -> None:
    """ISO-1: mutating anything inside `copy()` leaves the original as it was."""
    original = _expected_objects()[name]
    duplicate = original.copy()
    assert duplicate == original
    assert duplicate is not original
    assert _mutate_everything(duplicate) > 0
    assert original == EXPECTED[name]
    assert canonical(original.to_json()) == canonical(VECTORS[name][1])


def test_copy_of_nested_containers_is_independent() -> None:
    """ISO-1: the copy's nested dicts and lists are new objects, spelled out for the common cases."""
    thread = _expected_objects()["thread_full"]
    assert isinstance(thread, Thread)
    twin = thread.copy()
    twin.metadata.custom["source"] = "changed"
    twin.metadata.title = "changed"
    assert thread.metadata.custom == {"source": "api"}
    assert thread.metadata.title == "Child thread"

    message = _expected_objects()["message_full"]
    assert isinstance(message, Message)
    twin_message = message.copy()
    twin_message.content[0]["text"] = "changed"
    twin_message.content.append({"type": "text", "text": "extra"})
    assert twin_message.tool_calls is not None
    twin_message.tool_calls[0].arguments = "changed"
    twin_message.tool_calls.pop()
    assert message.content[0] == {"type": "text", "text": "Let me look that up."}
    assert len(message.content) == 2
    assert message.tool_calls is not None
    assert [call.arguments for call in message.tool_calls] == [{"query": "weather"}, {}]

    run = _expected_objects()["run_record_full"]
    assert isinstance(run, RunRecord)
    twin_run = run.copy()
    assert twin_run.request is not None
    assert twin_run.state is not None
    assert twin_run.outcome is not None
    twin_run.request.input_message_ids.append("m-new")
    twin_run.state.extensions["plan"] = []
    twin_run.outcome.termination_reason["type"] = "cancelled"
    assert run.request is not None
    assert run.state is not None
    assert run.outcome is not None
    assert run.request.input_message_ids == ["m1"]
    assert run.state.extensions == {"plan": ["a", "b"]}
    assert run.outcome.termination_reason == {
        "type": "stopped",
        "value": {"code": "max_rounds", "detail": "hit 10 rounds"},
    }


def test_from_json_and_to_json_share_nothing_with_their_values() -> None:
    """ISO-1: the parsed object does not alias the JSON it came from, nor the JSON it writes."""
    value = json.loads(canonical(VECTORS["run_record_full"][1]))
    run = RunRecord.from_json(value)
    value["request"]["input_message_ids"].append("m-new")
    value["state"]["extensions"]["plan"].append("c")
    assert run == EXPECTED["run_record_full"]
    dumped = run.to_json()
    _mutate_everything(dumped)
    assert run == EXPECTED["run_record_full"]


# ── validate_for_persist checks types, naming the field and the id ───


def bad(value: object) -> Any:
    """`value` typed as Any, to build a model with a wrong-typed field on purpose."""
    return value


@pytest.mark.parametrize(
    ("thread", "path"),
    [
        (Thread(id="t1", metadata=ThreadMetadata(created_at=bad("soon"))), "metadata.created_at"),
        (Thread(id="t1", metadata=ThreadMetadata(updated_at=True)), "metadata.updated_at"),
        (Thread(id="t1", metadata=ThreadMetadata(custom={"x": NAN})), "metadata.custom"),
        (Thread(id="t1", resource_id=bad(5)), "resource_id"),
        (Thread(id="t1", latest_run_updated_at=-5), "latest_run_updated_at"),
        (Thread(id="t1", metadata=bad({"title": "x"})), "metadata"),
    ],
)
def test_thread_validate_for_persist_names_field_and_id_on_type_error(thread: Thread, path: str) -> None:
    """MOD-2: a field of the wrong type is a `ValidationError` naming the thread id and the field."""
    with pytest.raises(ValidationError, match=re.escape(f"thread 't1': field '{path}' ")):
        thread.validate_for_persist()


RUN_BASE: dict[str, Any] = {"run_id": "run-1", "thread_id": "t1", "agent_id": "agent-a"}


@pytest.mark.parametrize(
    ("run", "path"),
    [
        (RunRecord(**RUN_BASE, steps=-1), "steps"),
        (RunRecord(**RUN_BASE, status=bad("running")), "status"),
        (RunRecord(**RUN_BASE, created_at=bad("yesterday")), "created_at"),
        (RunRecord(**RUN_BASE, request=RunRequestSnapshot(origin="web")), "request.origin"),
        (RunRecord(**RUN_BASE, request=RunRequestSnapshot(input_message_ids=[bad(1)])), "request.input_message_ids[0]"),
        (RunRecord(**RUN_BASE, termination_reason={"type": "oops"}), "termination_reason"),
        (RunRecord(**RUN_BASE, error_payload=NAN), "error_payload"),
        (RunRecord(**RUN_BASE, state=PersistedState(revision=True)), "state.revision"),
        (RunRecord(**RUN_BASE, waiting=bad({"reason": "user_input"})), "waiting"),
    ],
)
def test_run_validate_for_persist_names_field_and_id_on_type_error(run: RunRecord, path: str) -> None:
    """MOD-4: a field of the wrong type is a `ValidationError` naming the run id and the field."""
    with pytest.raises(ValidationError, match=re.escape(f"run 'run-1': field '{path}' ")):
        run.validate_for_persist()
