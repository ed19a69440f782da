"""Contract tests: every value a store keeps reads back exactly, type included (MOD-5).

Python's `==` holds `1 == 1.0 == True` and `0.0 == -0.0`, so these tests compare what
a store gives back with `conformance.kit._exact`: the same types at every depth, floats
by `repr`. Every value sent is one upstream's serde types hold: integers up to each
field's unsigned maximum (`u64` timestamps, seqs, counts and revisions, `usize` steps,
`u32` step_index); where JSON is free (`custom`, `extensions`, `arguments`,
`request_extras`, `error_payload`, a `tool_use` block's `input`) any integer from
-2**63 to 2**64 - 1 (what serde_json's `Value` holds exactly), floats short enough that
serde_json's default parser reads them exactly (`-0.0` too), booleans, `null`-valued
keys and empty containers; in text, NUL and every code point but the lone surrogates,
which Rust's strings cannot hold. Every optional field also goes in at its falsy values
(`0`, `""`, `[]`, `{}`), which must not read back as `None` or as another field.
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import replace

import pytest

from conformance.contract._enums import Role, RunStatus, WaitingReason
from conformance.contract._errors import StorageError
from conformance.contract._models import (
    JsonValue,
    Message,
    MessageMetadata,
    MessageRecord,
    Thread,
    ThreadMetadata,
    ToolCall,
)
from conformance.contract._runs import (
    MessageSeqRange,
    PersistedState,
    RunMessageInput,
    RunMessageOutput,
    RunOutcome,
    RunRecord,
    RunRequestSnapshot,
    RunWaitingState,
)
from conformance.contract._stores import ThreadRunStore
from conformance.kit._exact import expect_same
from conformance.kit._runner import rule
from conformance.kit._scenarios import assistant, run, user
from conformance.kit._violation import RuleViolation

#: The greatest value of upstream's `u64` fields (timestamps, seqs, counts, revisions) and of `usize` (`steps`).
U64_MAX = 2**64 - 1
#: The greatest value of upstream's `u32` field, `MessageMetadata.step_index`.
U32_MAX = 2**32 - 1
#: The least integer serde_json's `Value` holds exactly (as `i64`); free JSON holds -2**63 .. 2**64 - 1.
I64_MIN = -(2**63)

#: Numbers where JSON is free, each of which must read back with its type (`1.0` stays a float).
NUMBERS: dict[str, JsonValue] = {
    "int": 1,
    "zero": 0,
    "negative": -7,
    "float-one": 1.0,
    "float-zero": 0.0,
    "negative-zero": -0.0,
    "half": 1.5,
    "tenth": 0.1,
    "small": 2.5e-7,
    "large-float": 1e22,
    "past-2**53": 2**53 + 1,
    "u64-max": U64_MAX,
    "i64-min": I64_MIN,
    "true": True,
    "false": False,
}
#: Nulls and empty containers inside JSON objects: each is kept, none is dropped or replaced.
SHAPES: dict[str, JsonValue] = {
    "null": None,
    "empty-object": {},
    "empty-list": [],
    "empty-text": "",
    "nested": {"null": None, "list": [None, {}, [], ""]},
}
#: Text with NUL, astral and other edge code points (no lone surrogate: serde cannot hold one).
TEXT = (
    "nul \x00, astral \U0001f9f5, last \U0010ffff, noncharacter \uffff, separator \u2028, e\u0301, bom \ufeff, del \x7f"
)
#: Keys are text too: empty, with NUL, astral.
KEYS: dict[str, JsonValue] = {"": "the empty key", "key \x00 with nul": 1, "\U0001f9f5": "astral key", "text": TEXT}
#: One JSON object holding every number, shape and key above, nested once more inside itself.
FREE: dict[str, JsonValue] = {**NUMBERS, **SHAPES, **KEYS, "inside": {**NUMBERS, **SHAPES, **KEYS}}
#: Every falsy JSON value but null: where JSON is free, each is a value, not an absence.
FALSY: dict[str, JsonValue] = {
    "empty-object": {},
    "empty-list": [],
    "empty-text": "",
    "zero": 0,
    "float-zero": 0.0,
    "negative-zero": -0.0,
    "false": False,
}


def _thread(metadata: ThreadMetadata, *, latest_run_updated_at: int | None = None) -> Thread:
    return Thread(id="t", metadata=metadata, latest_run_updated_at=latest_run_updated_at)


THREADS: dict[str, Thread] = {
    "u64-max-stamps": _thread(ThreadMetadata(created_at=U64_MAX, updated_at=U64_MAX), latest_run_updated_at=U64_MAX),
    "zero-stamps": _thread(ThreadMetadata(created_at=0, updated_at=0), latest_run_updated_at=0),
    "updated-at-zero": _thread(ThreadMetadata(created_at=5, updated_at=0)),
    "past-double-precision": _thread(ThreadMetadata(created_at=2**53 + 1, updated_at=2**63 + 1)),
    "empty-title": _thread(ThreadMetadata(title="")),
    "text-title": _thread(ThreadMetadata(title=TEXT)),
    "custom-json": _thread(ThreadMetadata(custom=FREE)),
    "custom-falsy": _thread(ThreadMetadata(custom=dict(FALSY))),
}


def _calls(*arguments: JsonValue) -> list[ToolCall]:
    return [ToolCall(id=f"c{number}", name="f", arguments=value) for number, value in enumerate(arguments)]


MESSAGES: dict[str, Message] = {
    "text": user("m", TEXT),
    "empty-text": Message(id="m", role=Role.USER, content=[{"type": "text", "text": ""}]),
    "no-content": Message(id="m", role=Role.USER, content=[]),
    "tool-use-input": replace(assistant("m"), content=[{"type": "tool_use", "id": "u1", "name": "f", "input": FREE}]),
    "arguments": replace(assistant("m"), tool_calls=_calls(FREE, None, *FALSY.values(), 1.0, U64_MAX, I64_MIN)),
    "empty-metadata": replace(user("m"), metadata=MessageMetadata()),
    "falsy-metadata": replace(user("m"), metadata=MessageMetadata(run_id="", step_index=0, sender_agent_id="")),
    "u32-max-step-index": replace(user("m"), metadata=MessageMetadata(run_id="r1", step_index=U32_MAX)),
}


def _numbered_run(status: RunStatus, number: int) -> RunRecord:
    """Run `r` of thread `t1` whose every integer is `number`, ranges included (a range of `number` seqs ends there)."""
    record = replace(
        run("r", "t1", status, created_at=number, updated_at=number),
        started_at=number,
        steps=number,
        input_tokens=number,
        output_tokens=number,
        request=RunRequestSnapshot(input_message_count=number),
        state=PersistedState(revision=number),
    )
    if number > 0:
        record.input = RunMessageInput(thread_id="t1", range=MessageSeqRange(from_seq=1, to_seq=number))
        record.output = RunMessageOutput(
            thread_id="t1", range=MessageSeqRange(from_seq=number - 1, to_seq=number), message_ids=["m1", "m2"]
        )
    if status is RunStatus.DONE:
        record.finished_at = number
    return record


def _falsy_run() -> RunRecord:
    """A waiting run whose optional text fields are all `""` and whose optional parts are present but empty."""
    return replace(
        run("r", "t1", RunStatus.WAITING),
        parent_run_id="",
        resolution_id="",
        request=RunRequestSnapshot(sender_id="", parent_thread_id="", transport_request_id="", request_extras={}),
        input=RunMessageInput(thread_id="t1", context_policy="", compacted_snapshot_id=""),
        output=RunMessageOutput(thread_id="t1"),
        final_output="",
        error_payload=[],
        dispatch_id="",
        session_id="",
        transport_request_id="",
        waiting=RunWaitingState(reason=WaitingReason.EXTERNAL_EVENT, since_dispatch_id="", message=""),
        state=PersistedState(),
    )


def _json_run() -> RunRecord:
    """A done run whose free JSON (request_extras, error_payload, state extensions) and text hold every edge value."""
    record = replace(
        run("r", "t1", RunStatus.DONE),
        request=RunRequestSnapshot(request_extras=FREE),
        state=PersistedState(revision=1, extensions=FREE),
    )
    reason: dict[str, JsonValue] = {"type": "error", "value": TEXT}
    record.termination_reason, record.final_output, record.error_payload = reason, TEXT, FREE
    record.outcome = RunOutcome(termination_reason=reason, final_output=TEXT, error_payload=FREE)
    return record


RUNS: dict[str, RunRecord] = {
    "u64-max-running": _numbered_run(RunStatus.RUNNING, U64_MAX),
    "u64-max-done": _numbered_run(RunStatus.DONE, U64_MAX),
    "zero-done": _numbered_run(RunStatus.DONE, 0),
    "past-double-precision": _numbered_run(RunStatus.RUNNING, 2**53 + 1),
    "falsy-optionals": _falsy_run(),
    "json-and-text": _json_run(),
}

STATES: dict[str, PersistedState] = {
    "u64-max-revision": PersistedState(revision=U64_MAX, extensions=FREE),
    "zero-revision": PersistedState(revision=0),
    "falsy-extensions": PersistedState(revision=1, extensions=dict(FALSY)),
}


async def _written(write: Awaitable[object], rules: tuple[str, ...], what: str) -> None:
    """Await a write of values upstream's types hold: refusing them, with any `StorageError`, breaks `rules`."""
    try:
        await write
    except StorageError as error:
        raise RuleViolation(rules, f"{what} raised {error!r}; upstream's types hold every value in it") from error


class FidelityRules:
    """MOD-5 through storage: threads (THR-2, THR-3), messages (MSG-6), runs (RUN-2), states (THR-6), checkpoints."""

    @rule("MOD-5", "THR-2")
    @pytest.mark.parametrize("case", list(THREADS))
    async def test_thread_reads_back_exactly(self, store: ThreadRunStore, case: str) -> None:
        """A thread with u64-max or zero timestamps (updated_at 0 beside created_at 5), an empty or NUL-holding title,
        or custom JSON of ints, floats, -0.0, nulls and empty containers, loads back with every value and type."""
        given = THREADS[case]
        await _written(store.save_thread(given.copy()), ("MOD-5", "THR-2"), f"save_thread of the {case} thread")
        expect_same(await store.load_thread("t"), given, ("MOD-5", "THR-2"), f"load_thread of the {case} thread")

    @rule("MOD-5", "THR-3")
    @pytest.mark.parametrize("case", list(THREADS))
    async def test_updated_metadata_reads_back_exactly(self, store: ThreadRunStore, case: str) -> None:
        """Metadata given to update_thread_metadata (u64-max or zero stamps, custom JSON) loads back exactly.

        The thread starts with empty metadata, so a store that merges instead of replacing
        (THR-3's business) still shows exactly what it was given.
        """
        metadata = THREADS[case].metadata
        await store.save_thread(Thread(id="t"))
        rules = ("MOD-5", "THR-3")
        await _written(store.update_thread_metadata("t", metadata.copy()), rules, f"the {case} update")
        expected = Thread(id="t", metadata=metadata)
        expect_same(await store.load_thread("t"), expected, rules, f"load_thread after the {case} update")

    @rule("MOD-5", "MSG-6")
    @pytest.mark.parametrize("case", list(MESSAGES))
    async def test_message_reads_back_exactly(self, store: ThreadRunStore, case: str) -> None:
        """A message with NUL and astral text, free JSON in a tool_use block or in arguments (`{}`, `null`, `0`, `false`
        each as itself), empty metadata, or step_index 0 or 2**32 - 1 reads back exactly, and so does its record.

        An assistant's `tool_calls=[]`, kept apart from None, is MOD-3's and VIEW-1's
        (test_empty_call_list_stays_raw_and_reads_as_none).
        """
        given = MESSAGES[case]
        await _written(store.append_message_records("t", [given.copy()]), ("MOD-5",), f"appending the {case} message")
        committed = await store.load_committed_messages("t")
        expect_same(committed, [given], "MOD-5", f"load_committed_messages of the {case} message")
        records = await store.load_message_records("t")
        expected = [MessageRecord.from_message("t", 1, given)]
        expect_same(records, expected, "MSG-6", f"load_message_records of the {case} message")

    @rule("MOD-5", "RUN-2")
    @pytest.mark.parametrize("case", list(RUNS))
    async def test_run_reads_back_exactly(self, store: ThreadRunStore, case: str) -> None:
        """A run whose every integer is 2**64 - 1 (or 0, or 2**53 + 1), whose optional text is "" and parts empty,
        or whose free JSON holds every edge value, loads back with every value and type."""
        given = RUNS[case]
        await _written(store.create_run(given.copy()), ("MOD-5", "RUN-2"), f"create_run of the {case} run")
        expect_same(await store.load_run("r"), given, ("MOD-5", "RUN-2"), f"load_run of the {case} run")

    @rule("MOD-5", "RUN-2")
    async def test_falsy_free_json_is_a_value(self, store: ThreadRunStore) -> None:
        """request_extras and error_payload of `{}`, `[]`, `""`, `0`, `0.0`, `-0.0` or `false` read back as that value,
        not as absent (None), and absent reads back as absent."""
        given = {
            f"r-{name}": replace(
                run(f"r-{name}", "t1"), request=RunRequestSnapshot(request_extras=value), error_payload=value
            )
            for name, value in [*FALSY.items(), ("absent", None)]
        }
        for run_id, record in given.items():
            await _written(store.create_run(record.copy()), ("MOD-5", "RUN-2"), f"create_run({run_id!r})")
        for run_id, record in given.items():
            expect_same(await store.load_run(run_id), record, ("MOD-5", "RUN-2"), f"load_run({run_id!r})")

    @rule("MOD-5", "THR-6")
    @pytest.mark.parametrize("case", list(STATES))
    async def test_state_reads_back_exactly(self, store: ThreadRunStore, case: str) -> None:
        """A thread state of revision 2**64 - 1 or 0, with extensions of every edge value or of falsy ones, loads
        back exactly."""
        given = STATES[case]
        await _written(store.save_thread_state("t", given.copy()), ("MOD-5", "THR-6"), f"saving the {case} state")
        expect_same(await store.load_thread_state("t"), given, ("MOD-5", "THR-6"), f"load_thread_state ({case})")

    @rule("MOD-5", "CKP-2", "CKP-4")
    @pytest.mark.parametrize("append", [False, True], ids=["checkpoint", "checkpoint_append"])
    async def test_checkpointed_values_read_back_exactly(self, store: ThreadRunStore, append: bool) -> None:
        """A checkpoint of messages with NUL text and free JSON arguments, and of a run of u64-max numbers, stores them
        exactly: the log and the run read back with every value and type."""
        messages = [MESSAGES["text"], replace(MESSAGES["arguments"], id="m2")]
        record = replace(RUNS["u64-max-running"], request=RunRequestSnapshot(request_extras=FREE))
        rules = ("MOD-5", "CKP-4" if append else "CKP-2")
        copies = [m.copy() for m in messages]
        if append:
            await _written(store.checkpoint_append("t1", copies, 0, record.copy()), rules, "checkpoint_append")
        else:
            await _written(store.checkpoint("t1", copies, record.copy()), rules, "checkpoint")
        expect_same(await store.load_committed_messages("t1"), messages, rules, "the checkpointed log")
        expect_same(await store.load_run("r"), record, rules, "the checkpointed run")
