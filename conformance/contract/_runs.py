"""Run records and checkpoint snapshots with the serde JSON shape of SPEC section 2."""

from __future__ import annotations

from conformance.contract._codec import (
    INT,
    JSON,
    JSON_OBJECT,
    SHAPED_JSON,
    SHAPED_OBJECT,
    STR,
    TERMINATION_REASON,
    JsonValue,
    choice,
    enum_of,
    field,
    list_of,
    model,
    optional,
    termination_reason_of,
)
from conformance.contract._enums import RunStatus, WaitingReason
from conformance.contract._errors import ValidationError
from conformance.contract._models import Message, Model, contract_model

__all__ = [
    "CheckpointSnapshot",
    "MessageSeqRange",
    "PersistedState",
    "RunMessageInput",
    "RunMessageOutput",
    "RunOutcome",
    "RunRecord",
    "RunRequestSnapshot",
    "RunWaitingState",
]

RUN_ORIGINS = ("User", "Mcp", "A2A", "Internal")


@contract_model
class MessageSeqRange(Model):
    """An inclusive range of 1-based seqs in a thread's log."""

    from_seq: int = field(INT)
    to_seq: int = field(INT)


@contract_model
class RunRequestSnapshot(Model):
    """The request that created or resumed a run; `origin` is "User", "Mcp", "A2A" or "Internal".

    `decisions` (upstream's `RunResumeDecision`s) and `frontend_tools` (`ToolDescriptor`s)
    are JSON objects in the serde shape SPEC section 2 states, kept as given.
    """

    origin: str = field(choice(*RUN_ORIGINS), omit="never", default="User")
    sender_id: str | None = field(optional(STR), default=None)
    input_message_ids: list[str] = field(list_of(STR), omit="empty", factory=list)
    input_message_count: int = field(INT, omit="empty", default=0)
    request_extras: JsonValue = field(JSON, default=None)
    decisions: list[dict[str, JsonValue]] = field(list_of(SHAPED_OBJECT), omit="empty", factory=list)
    frontend_tools: list[dict[str, JsonValue]] = field(list_of(SHAPED_OBJECT), omit="empty", factory=list)
    parent_thread_id: str | None = field(optional(STR), default=None)
    transport_request_id: str | None = field(optional(STR), default=None)


@contract_model
class RunMessageInput(Model):
    """The slice of its thread's log that a run read."""

    thread_id: str = field(STR)
    range: MessageSeqRange | None = field(optional(model(lambda: MessageSeqRange)), default=None)
    trigger_message_ids: list[str] = field(list_of(STR), omit="empty", factory=list)
    selected_message_ids: list[str] = field(list_of(STR), omit="empty", factory=list)
    context_policy: str | None = field(optional(STR), default=None)
    compacted_snapshot_id: str | None = field(optional(STR), default=None)


@contract_model
class RunMessageOutput(Model):
    """The slice of its thread's log that a run produced, with the produced ids in order."""

    thread_id: str = field(STR)
    range: MessageSeqRange | None = field(optional(model(lambda: MessageSeqRange)), default=None)
    message_ids: list[str] = field(list_of(STR), omit="empty", factory=list)


@contract_model
class RunWaitingState(Model):
    """Why and on what a `waiting` run waits.

    `tickets` (upstream's `RunWaitingTicket`s) are JSON objects in the serde shape SPEC
    section 2 states, kept as given.
    """

    reason: WaitingReason = field(enum_of(WaitingReason))
    ticket_ids: list[str] = field(list_of(STR), omit="empty", factory=list)
    tickets: list[dict[str, JsonValue]] = field(list_of(SHAPED_OBJECT), omit="empty", factory=list)
    since_dispatch_id: str | None = field(optional(STR), default=None)
    message: str | None = field(optional(STR), default=None)


@contract_model
class RunOutcome(Model):
    """The terminal outcome of a `done` run."""

    termination_reason: dict[str, JsonValue] = field(TERMINATION_REASON)
    final_output: str | None = field(optional(STR), default=None)
    error_payload: JsonValue = field(JSON, default=None)


@contract_model
class PersistedState(Model):
    """Opaque runtime state: a revision and extension values by key."""

    revision: int = field(INT, omit="never", default=0)
    extensions: dict[str, JsonValue] = field(JSON_OBJECT, omit="never", factory=dict)


@contract_model
class RunRecord(Model):
    """A run of an agent on a thread. Timestamps are unix **seconds**.

    `activation` (upstream's `RunActivationSnapshot`) is a JSON value in the serde shape
    SPEC section 2 states, kept as given; `termination_reason` is read and written as
    serde reads and writes it.
    """

    run_id: str = field(STR)
    thread_id: str = field(STR)
    agent_id: str = field(STR)
    parent_run_id: str | None = field(optional(STR), omit="never", default=None)
    resolution_id: str | None = field(optional(STR), default=None)
    activation: JsonValue = field(SHAPED_JSON, default=None)
    request: RunRequestSnapshot | None = field(optional(model(lambda: RunRequestSnapshot)), default=None)
    input: RunMessageInput | None = field(optional(model(lambda: RunMessageInput)), default=None)
    output: RunMessageOutput | None = field(optional(model(lambda: RunMessageOutput)), default=None)
    status: RunStatus = field(enum_of(RunStatus), omit="never", default=RunStatus.CREATED)
    termination_reason: dict[str, JsonValue] | None = field(optional(TERMINATION_REASON), default=None)
    final_output: str | None = field(optional(STR), default=None)
    error_payload: JsonValue = field(JSON, default=None)
    dispatch_id: str | None = field(optional(STR), default=None)
    session_id: str | None = field(optional(STR), default=None)
    transport_request_id: str | None = field(optional(STR), default=None)
    waiting: RunWaitingState | None = field(optional(model(lambda: RunWaitingState)), default=None)
    outcome: RunOutcome | None = field(optional(model(lambda: RunOutcome)), default=None)
    created_at: int = field(INT, omit="never", default=0)
    started_at: int | None = field(optional(INT), default=None)
    finished_at: int | None = field(optional(INT), default=None)
    updated_at: int = field(INT, omit="never", default=0)
    steps: int = field(INT, omit="never", default=0)
    input_tokens: int = field(INT, omit="never", default=0)
    output_tokens: int = field(INT, omit="never", default=0)
    state: PersistedState | None = field(optional(model(lambda: PersistedState)), omit="never", default=None)

    def validate_for_persist(self) -> None:
        """Raise `ValidationError` unless this run may be stored (MOD-4).

        Ids not blank; an `activation` naming a thread (`intent.thread_id`,
        `input.thread_id`) names the run's own; `input`/`output` name the run's own
        thread with 1-based, non-empty ranges; an output range as long as
        `output.message_ids`; status consistent with `waiting`, `outcome` and
        `finished_at`.
        """
        owner = f"run {self.run_id!r}"
        self.check_types(owner)
        for name in ("run_id", "thread_id", "agent_id"):
            if not getattr(self, name).strip():
                raise ValidationError(f"{owner}: field '{name}' must not be blank")
        self._validate_activation(owner)
        for name in ("input", "output"):
            part: RunMessageInput | RunMessageOutput | None = getattr(self, name)
            if part is None:
                continue
            if part.thread_id != self.thread_id:
                raise ValidationError(
                    f"{owner}: {name}.thread_id {part.thread_id!r} must be the run's thread {self.thread_id!r}"
                )
            if part.range is not None and not 1 <= part.range.from_seq <= part.range.to_seq:
                raise ValidationError(
                    f"{owner}: {name}.range must satisfy 1 <= from_seq <= to_seq, "
                    f"got [{part.range.from_seq}, {part.range.to_seq}]"
                )
        if self.output is not None and self.output.range is not None:
            length = self.output.range.to_seq - self.output.range.from_seq + 1
            if length != len(self.output.message_ids):
                raise ValidationError(
                    f"{owner}: output.range covers {length} messages but output.message_ids has "
                    f"{len(self.output.message_ids)}"
                )
        self._validate_status(owner)

    def _validate_activation(self, owner: str) -> None:
        activation = self.activation
        if not isinstance(activation, dict):
            return
        for part in ("intent", "input"):
            named = activation.get(part)
            if isinstance(named, dict) and "thread_id" in named and named["thread_id"] != self.thread_id:
                raise ValidationError(
                    f"{owner}: activation.{part}.thread_id {named['thread_id']!r} must be the run's thread "
                    f"{self.thread_id!r}"
                )

    def _validate_status(self, owner: str) -> None:
        status = self.status
        if status is RunStatus.DONE:
            if self.waiting is not None:
                raise ValidationError(f"{owner}: a done run must not carry 'waiting'")
            if self.finished_at is None:
                raise ValidationError(f"{owner}: a done run must carry 'finished_at'")
            self._validate_outcome(owner)
            return
        if self.outcome is not None or self.finished_at is not None:
            raise ValidationError(f"{owner}: a {status.value} run must carry no 'outcome' and no 'finished_at'")
        if status is RunStatus.WAITING and self.waiting is None:
            raise ValidationError(f"{owner}: a waiting run must carry 'waiting'")
        if status is not RunStatus.WAITING and self.waiting is not None:
            raise ValidationError(f"{owner}: a {status.value} run must not carry 'waiting'")

    def _validate_outcome(self, owner: str) -> None:
        outcome = self.outcome
        if outcome is None:
            return
        pairs = (
            (
                "termination_reason",
                termination_reason_of(self.termination_reason),
                termination_reason_of(outcome.termination_reason),
            ),
            ("final_output", self.final_output, outcome.final_output),
            ("error_payload", self.error_payload, outcome.error_payload),
        )
        for name, own, theirs in pairs:
            if own is not None and own != theirs:
                raise ValidationError(f"{owner}: field '{name}' differs from outcome.{name}")


@contract_model
class CheckpointSnapshot(Model):
    """What `load_checkpoint` returns: the effective view, the raw version, the latest run, the state."""

    messages: list[Message] = field(list_of(model(lambda: Message)), omit="never", factory=list)
    message_version: int = field(INT, omit="never", default=0)
    latest_run: RunRecord | None = field(optional(model(lambda: RunRecord)), default=None)
    thread_state: PersistedState | None = field(optional(model(lambda: PersistedState)), default=None)
