"""MOD-5 against upstream's own serializer: the vectors of `tests/vectors/upstream/`.

Each vector is a value written through upstream awaken's real store and serde models
(the upstream shim, `scripts/upstream_vectors.py`) and two texts upstream wrote for it:
`serde`, the compact text of the struct (`serde_json::to_string`: fields in declaration
order), and `answer`, the shim's wire answer (`serde_json::to_value` first, so every
object's keys come sorted). The contract's models parse both and write them back byte
for byte; the value sent, parsed and written by the contract, is upstream's text too.
`tests/test_json_text.py` checks `json_text` on its own.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from conformance import (
    CheckpointSnapshot,
    Message,
    MessageRecord,
    PersistedState,
    Role,
    RunRecord,
    RunStatus,
    Thread,
    Visibility,
    WaitingReason,
    json_text,
)
from conformance.contract._codec import sorted_json
from conformance.contract._models import Model

VECTOR_DIR = Path(__file__).parent / "vectors" / "upstream"
UPSTREAM_COMMIT = "2b0d375004ec8723cf40d8a59c0bb486ebce57e0"
MODELS: dict[str, type[Model]] = {
    cls.__name__: cls for cls in (Thread, Message, MessageRecord, RunRecord, PersistedState, CheckpointSnapshot)
}


def _load() -> dict[str, dict[str, Any]]:
    vectors: dict[str, dict[str, Any]] = {}
    for path in sorted(VECTOR_DIR.glob("*.json")):
        document = json.loads(path.read_text(encoding="utf-8"))
        assert document["upstream"]["commit"] == UPSTREAM_COMMIT, path.name
        for name, vector in document["vectors"].items():
            assert name not in vectors, f"vector {name!r} in {path.name} is defined twice"
            vectors[name] = vector
    return vectors


VECTORS = _load()
NAMES = sorted(VECTORS)
WITH_SERDE = sorted(name for name in NAMES if VECTORS[name]["serde"] is not None)

Parsed = Model | list[Model]


def parse(model: str, text: str) -> Parsed:
    """The vector's text read by the contract: one model, or `list[Model]`."""
    value = json.loads(text)
    if model.startswith("list["):
        cls = MODELS[model[5:-1]]
        return [cls.from_json(item) for item in value]
    return MODELS[model].from_json(value)


def serde_text(parsed: Parsed) -> str:
    """What the contract writes: `to_json_text()`, or the compact array of them."""
    if isinstance(parsed, list):
        return json_text([item.to_json() for item in parsed])
    return parsed.to_json_text()


def answer_text(parsed: Parsed) -> str:
    """The contract's text with every key sorted: the form the shim answers in (`serde_json::Value`)."""
    value = [item.to_json() for item in parsed] if isinstance(parsed, list) else parsed.to_json()
    return json_text(sorted_json(value))


def sent(vector: dict[str, Any]) -> Parsed:
    """The value the vector's write call sent, read by the contract as the store would keep it."""
    (write,) = vector["write"]
    params = write["params"]
    if write["method"] == "save_thread":
        return Thread.from_json(params["thread"])
    if write["method"] == "create_run":
        return RunRecord.from_json(params["record"])
    if write["method"] == "save_thread_state":
        return PersistedState.from_json(params["state"])
    assert write["method"] == "save_messages"
    messages = [Message.from_json(item) for item in params["messages"]]
    return [MessageRecord.from_message(params["thread_id"], seq, m) for seq, m in enumerate(messages, start=1)]


@pytest.mark.parametrize("name", WITH_SERDE)
def test_serde_text_is_written_back_byte_for_byte(name: str) -> None:
    """MOD-5: a value upstream wrote (`serde_json::to_string`), read by the contract, writes back as the same bytes."""
    vector = VECTORS[name]
    assert serde_text(parse(vector["model"], vector["serde"])) == vector["serde"]


@pytest.mark.parametrize("name", NAMES)
def test_answer_is_written_back_byte_for_byte_with_sorted_keys(name: str) -> None:
    """MOD-5: the shim's answer (serde through `serde_json::Value`) reads and writes back, keys sorted."""
    vector = VECTORS[name]
    assert answer_text(parse(vector["model"], vector["answer"])) == vector["answer"]


@pytest.mark.parametrize("name", WITH_SERDE)
def test_answer_and_serde_text_hold_the_same_value(name: str) -> None:
    """MOD-5: the two texts upstream wrote for one value read as equal models: only the key order differs."""
    vector = VECTORS[name]
    assert parse(vector["model"], vector["answer"]) == parse(vector["model"], vector["serde"])


@pytest.mark.parametrize("name", [name for name in WITH_SERDE if len(VECTORS[name]["write"]) == 1])
def test_value_sent_is_written_as_upstream_wrote_it(name: str) -> None:
    """MOD-5: the value sent, read and written by the contract, is the text upstream's serde wrote for it.

    Free JSON sent with unsorted keys comes out sorted, a termination reason sent as
    serde's alias comes out as its name: the contract writes what serde writes.
    """
    vector = VECTORS[name]
    assert serde_text(sent(vector)) == vector["serde"]


def _texts() -> str:
    return "\n".join(vector["serde"] or vector["answer"] for vector in VECTORS.values())


#: Every variant of every enum the stored types hold, as serde spells it, and where it appears.
VARIANTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "Role": ('"role":"{}"', tuple(role.value for role in Role)),
    "Visibility (all is omitted)": ('"visibility":"{}"', tuple(v.value for v in Visibility if v is not Visibility.ALL)),
    "RunStatus": ('"status":"{}"', tuple(status.value for status in RunStatus)),
    "WaitingReason": ('"waiting":{{"reason":"{}"', tuple(reason.value for reason in WaitingReason)),
    "ContentBlock": (
        '{{"type":"{}"',
        ("text", "image", "document", "audio", "video", "tool_use", "tool_result", "thinking"),
    ),
    "ImageSource/DocumentSource/AudioSource/VideoSource": ('"source":{{"type":"{}"', ("url", "base64")),
    "TerminationReason": (
        '"termination_reason":{{"type":"{}"',
        ("natural_end", "behavior_requested", "stopped", "cancelled", "blocked", "suspended", "error"),
    ),
    "RunRequestOrigin": ('"origin":"{}"', ("User", "Mcp", "A2A", "Internal")),
    "RunOrigin": ('"origin":"{}"', ("user", "mcp", "subagent", "internal")),
    "AdapterKind": ('"adapter":"{}"', ("internal", "acp", "ai_sdk", "ag_ui", "a2a", "mcp")),
    "RunMode": ('"run_mode":"{}"', ("foreground", "scheduled", "resume", "internal_wake")),
    "RunKind": ('"kind":{{"kind":"{}"', ("new_intent", "hitl_resume", "continuation_from_run")),
    "ToolCallResumeMode": (
        '"resume_mode":"{}"',
        ("replay_tool_call", "use_decision_as_tool_result", "pass_decision_to_tool"),
    ),
    "ResumeDecisionAction": ('"action":"{}"', ("resume", "cancel")),
    "ReasoningEffort": ('"reasoning_effort":{}', ('"none"', '"low"', '"medium"', '"high"', '"max"', '{"budget"')),
}


@pytest.mark.parametrize("enum", sorted(VARIANTS))
def test_vectors_cover_every_variant(enum: str) -> None:
    """MOD-5: each variant of each enum a stored type holds appears in a text upstream wrote."""
    pattern, variants = VARIANTS[enum]
    texts = _texts()
    assert [variant for variant in variants if pattern.format(variant) not in texts] == []


def test_vectors_show_the_omissions_and_nulls_serde_writes() -> None:
    """SPEC 2: a stopped reason without detail, `null` parent run and state, absent visibility, empty metadata."""
    texts = _texts()
    assert '"value":{"code":"max_rounds"}}' in texts
    assert '"parent_run_id":null' in texts
    assert '"state":null' in texts
    assert '{"id":"t-min","metadata":{}}' in texts
    assert '"category":null' in texts  # a ToolDescriptor's Option without skip_serializing_if
    assert '"upstream_model":null' in texts  # an InferenceOverride's too
