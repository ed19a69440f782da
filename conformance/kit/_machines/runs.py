"""State machine: run records, latest_run, list_runs and the thread projection against an independent model.

The model is a dict of runs with the number of each run's last write, and the
expected thread records. `latest_run`, `list_runs` pages and the run projection of
checkpoints (CKP-6) are computed from them by the functions below, written from SPEC
section 8 without the kit's helpers, so the reference store is checked too.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from hypothesis import note
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, MultipleResults, invariant, multiple, rule

from conformance.contract._enums import RunStatus, WaitingReason
from conformance.contract._errors import AlreadyExistsError, StorageError, ValidationError
from conformance.contract._models import Thread, ThreadMetadata
from conformance.contract._queries import RunPage, RunQuery
from conformance.contract._runs import (
    MessageSeqRange,
    RunMessageInput,
    RunMessageOutput,
    RunOutcome,
    RunRecord,
    RunWaitingState,
)
from conformance.contract._stores import ThreadRunStore
from conformance.kit._differ import diff
from conformance.kit._scenarios import activation
from conformance.kit._stateful import StoreMachine, stateful
from conformance.kit._violation import RuleViolation, expect, present

__all__ = ["RunMachine", "RunMachineRules"]

_T = TypeVar("_T")
Errors = tuple[type[StorageError], ...]

THREADS = ("a1", "a2", "b1")
RUN_IDS = ("r1", "r2", "r3", "r4")
#: Ways of breaking MOD-4 that keep the run's thread id (so a checkpoint can name it).
FLAWS = (
    "blank-run-id",
    "blank-agent",
    "waiting-without-state",
    "open-with-outcome",
    "done-unfinished",
    "outcome-disagrees",
    "output-elsewhere",
    "output-range-mismatch",
    "input-range-zero",
    "activation-elsewhere",
)
#: The status a flaw needs, where it needs one (flawed drafts are otherwise `running`).
FLAW_STATUS = {
    "waiting-without-state": RunStatus.WAITING,
    "done-unfinished": RunStatus.DONE,
    "outcome-disagrees": RunStatus.DONE,
}
NATURAL_END: dict[str, Any] = {"type": "natural_end"}


@dataclass(frozen=True, slots=True)
class RunDraft:
    """A run to build, drawn compactly so that a shrunk example reads well.

    `RunDraft('r1', 'a1', RunStatus.DONE, 0, 1)` is run r1 of thread a1, done, created at
    0 and updated at 1 (unix seconds); a `flaw` breaks MOD-4 in the way it names.
    """

    run_id: str
    thread_id: str
    status: RunStatus
    created_at: int = 0
    updated_at: int = 0
    flaw: str | None = None

    def __repr__(self) -> str:
        flaw = "" if self.flaw is None else f", flaw={self.flaw!r}"
        times = f"{self.created_at}, {self.updated_at}"
        return f"RunDraft({self.run_id!r}, {self.thread_id!r}, RunStatus.{self.status.name}, {times}{flaw})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """Print as `repr` in Hypothesis' falsifying examples (not field by field)."""
        printer.text(repr(self))

    def build(self) -> RunRecord:
        """The run record this draft describes: consistent with its status unless it has a flaw."""
        flaw = self.flaw
        status = FLAW_STATUS.get(flaw or "", self.status)
        record = RunRecord(
            run_id="  " if flaw == "blank-run-id" else self.run_id,
            thread_id=self.thread_id,
            agent_id="" if flaw == "blank-agent" else "agent",
            status=status,
            created_at=self.created_at,
            updated_at=self.updated_at,
            activation=activation(self.thread_id, agent_id="agent", trigger=[f"m{self.updated_at}"]),
            steps=self.updated_at,
        )
        if status is RunStatus.WAITING and flaw != "waiting-without-state":
            record.waiting = RunWaitingState(reason=WaitingReason.USER_INPUT, ticket_ids=["ticket"])
        if status is RunStatus.DONE or flaw == "open-with-outcome":
            record.outcome = RunOutcome(termination_reason=NATURAL_END, final_output="ok")
        if status is RunStatus.DONE:
            record.termination_reason = NATURAL_END
            record.final_output = "other" if flaw == "outcome-disagrees" else "ok"
            record.finished_at = None if flaw == "done-unfinished" else self.updated_at
        if flaw == "output-elsewhere":
            record.output = RunMessageOutput(thread_id="elsewhere", message_ids=["m1"])
        if flaw == "output-range-mismatch":
            record.output = RunMessageOutput(
                thread_id=self.thread_id, range=MessageSeqRange(from_seq=1, to_seq=2), message_ids=["m1"]
            )
        if flaw == "input-range-zero":
            record.input = RunMessageInput(thread_id=self.thread_id, range=MessageSeqRange(from_seq=0, to_seq=1))
        if flaw == "activation-elsewhere":
            record.activation = activation("elsewhere")
        return record


#: Every run the machine writes, one choice each (cheap to draw, shrink and explain):
#: each run id, thread, status and pair of small timestamps (ties are the point), and
#: one flawed run per id, thread and flaw, so one draft in five breaks MOD-4.
DRAFTS = st.sampled_from(
    [
        *(RunDraft(*fields) for fields in itertools.product(RUN_IDS, THREADS, RunStatus, range(3), range(3))),
        *(RunDraft(r, t, RunStatus.RUNNING, flaw=f) for r, t, f in itertools.product(RUN_IDS, THREADS, FLAWS)),
    ]
)
#: Run queries over every filter and window, one choice each.
QUERIES = st.sampled_from(
    [
        RunQuery(offset=o, limit=n, thread_id=t, status=s, id_prefix=p)
        for o, n, t, s, p in itertools.product(
            (0, 1, 2, 4),
            (0, 1, 2, 250),
            (None, *THREADS, "zz"),
            (None, *RunStatus),
            (None, "a", "a1", "b", "z"),
        )
    ]
)


# ── the model: SPEC section 8, written out ──────────────────────────


def _blank(value: str | None) -> bool:
    return value is None or not value.strip()


def run_problem(run: RunRecord) -> str | None:
    """Why `run` may not be stored (MOD-4), or None."""
    if _blank(run.run_id) or _blank(run.thread_id) or _blank(run.agent_id):
        return "a blank run_id, thread_id or agent_id"
    activation = run.activation if isinstance(run.activation, dict) else {}
    for named in (activation.get("intent"), activation.get("input")):
        if isinstance(named, dict) and "thread_id" in named and named["thread_id"] != run.thread_id:
            return "an activation naming another thread"
    for part in (run.input, run.output):
        if part is not None and part.thread_id != run.thread_id:
            return "input/output naming another thread"
        if part is not None and part.range is not None and not 1 <= part.range.from_seq <= part.range.to_seq:
            return "an input/output range that is not 1-based and non-empty"
    output = run.output
    if (
        output is not None
        and output.range
        and output.range.to_seq - output.range.from_seq + 1 != len(output.message_ids)
    ):
        return "an output range whose length is not len(message_ids)"
    if run.status is RunStatus.DONE:
        if run.waiting is not None or run.finished_at is None:
            return "a done run with waiting or without finished_at"
        outcome = run.outcome
        if outcome is not None and any(
            own is not None and own != theirs
            for own, theirs in (
                (run.termination_reason, outcome.termination_reason),
                (run.final_output, outcome.final_output),
                (run.error_payload, outcome.error_payload),
            )
        ):
            return "a done run whose fields differ from its outcome"
        return None
    if run.outcome is not None or run.finished_at is not None:
        return f"a {run.status.value} run with an outcome or finished_at"
    if (run.status is RunStatus.WAITING) != (run.waiting is not None):
        return "waiting state on a non-waiting run, or a waiting run without it"
    return None


def project(thread: Thread, run: RunRecord) -> Thread:
    """CKP-6: the thread after `run` is checkpointed onto it."""
    out = thread.copy()
    named = run.run_id
    if out.latest_run_updated_at is not None and run.updated_at < out.latest_run_updated_at:
        if run.status is RunStatus.DONE:
            out.active_run_id = None if out.active_run_id == named else out.active_run_id
            out.open_run_id = None if out.open_run_id == named else out.open_run_id
        return out
    out.latest_run_id, out.latest_run_updated_at = named, run.updated_at
    if run.status is RunStatus.RUNNING:
        out.open_run_id = out.active_run_id = named
    elif run.status is not RunStatus.DONE:
        out.open_run_id, out.active_run_id = named, None
    else:
        out.active_run_id = None if out.active_run_id == named else out.active_run_id
        out.open_run_id = None if out.open_run_id == named else out.open_run_id
    return out


def _diff(found: RunRecord | Thread | None, expected: RunRecord | Thread | None) -> str:
    """The fields in which a record read from the store differs from the model's, for failure messages."""
    if found is None or expected is None:
        return f"found {found and found.to_json()}, expected {expected and expected.to_json()}"
    got, want = found.to_json(), expected.to_json()
    return ", ".join(
        f"{key} is {got.get(key)!r}, expected {want.get(key)!r}"
        for key in sorted({*got, *want})
        if got.get(key) != want.get(key)
    )


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


# ── the store, observed in one portal trip ──────────────────────────


@dataclass(slots=True)
class Observed:
    """What the store shows of the machine's runs and threads."""

    runs: dict[str, RunRecord | None]
    latest: dict[str, RunRecord | None]
    threads: dict[str, Thread | None]
    listed: RunPage


async def observe(store: ThreadRunStore) -> Observed:
    """Read every run, every thread's latest run and record, and the whole run list."""
    return Observed(
        runs={r: await store.load_run(r) for r in (*RUN_IDS, "r-unknown")},
        latest={t: await store.latest_run(t) for t in (*THREADS, "unknown")},
        threads={t: await store.load_thread(t) for t in THREADS},
        listed=await store.list_runs(RunQuery(limit=200)),
    )


async def stamped(
    store: ThreadRunStore, function: Callable[..., Awaitable[Any]], *args: Any
) -> tuple[int, int, Thread | None]:
    """Call a checkpoint between two clock readings (ms) and read the thread it wrote."""
    start = _now_ms()
    await function(*args)
    end = _now_ms()
    return start, end, await store.load_thread(args[0])


class RunMachine(StoreMachine):
    """Creates and checkpoints keep load_run, latest_run, list_runs and the thread projection."""

    def __init__(self) -> None:
        super().__init__()
        self.runs: dict[str, RunRecord] = {}
        self.written: dict[str, int] = {}
        self.writes = 0
        self.threads: dict[str, Thread] = {}

    def refused(
        self,
        rule_ids: str | tuple[str, ...],
        expected: Errors,
        function: Callable[..., Awaitable[Any]],
        *args: Any,
    ) -> None:
        """Call the store where the model expects one of `expected`; the state must stay as it was (ATO-1)."""
        before, caught, after = self.attempt(THREADS, rule_ids, function, *args)
        if not isinstance(caught, expected):
            outcome = "returned" if caught is None else f"raised {caught!r}"
            names = " or ".join(e.__name__ for e in expected)
            raise RuleViolation(rule_ids, f"{function.__name__} {outcome}, expected {names}") from caught
        if after != before:
            raise RuleViolation(
                "ATO-1", f"{function.__name__} raised {caught!r} but changed the store: {diff(after, before)}"
            )

    def succeeds(self, rule_ids: str | tuple[str, ...], function: Callable[..., Awaitable[_T]], *args: Any) -> _T:
        """Call the store where the model expects success; a refusal breaks `rule_ids`."""
        try:
            return self.call(function, *args, rules=rule_ids)
        except StorageError as error:
            raise RuleViolation(rule_ids, f"{function.__name__} refused a valid call: {error!r}") from error

    def store_run(self, run: RunRecord) -> None:
        self.writes += 1
        self.runs[run.run_id] = run
        self.written[run.run_id] = self.writes

    def latest(self, thread_id: str) -> RunRecord | None:
        """RUN-3: the greatest `updated_at`, ties to the last write."""
        mine = [r for r in self.runs.values() if r.thread_id == thread_id]
        return max(mine, key=lambda r: (r.updated_at, self.written[r.run_id]), default=None)

    # ── rules ────────────────────────────────────────────────────────

    stored = Bundle("stored")

    @rule(target=stored, draft=DRAFTS)
    def create(self, draft: RunDraft) -> MultipleResults[str]:
        run = draft.build()
        problem = run_problem(run)
        exists = run.run_id in self.runs
        if problem is not None:
            note(f"invalid: {problem}")
            errors: Errors = (ValidationError, AlreadyExistsError) if exists else (ValidationError,)
            self.refused(("RUN-1", "MOD-4"), errors, self.store.create_run, run)
            return multiple()
        if exists:
            self.refused("RUN-1", (AlreadyExistsError,), self.store.create_run, run)
            return multiple()
        self.succeeds("RUN-1", self.store.create_run, run)
        self.store_run(run)
        return multiple(run.run_id)

    @rule(target=stored, draft=DRAFTS, append=st.booleans())
    def checkpoint(self, draft: RunDraft, append: bool) -> MultipleResults[str]:
        return multiple(draft.run_id) if self.write_checkpoint(draft, append) else multiple()

    @rule(run_id=stored, status=st.sampled_from(RunStatus), later=st.booleans(), append=st.booleans())
    def advance(self, run_id: str, status: RunStatus, later: bool, append: bool) -> None:
        """Checkpoint a written run again in a new status, in the same second or the next."""
        old = self.runs[run_id]
        self.write_checkpoint(RunDraft(run_id, old.thread_id, status, old.created_at, old.updated_at + later), append)

    def write_checkpoint(self, draft: RunDraft, append: bool) -> bool:
        """Checkpoint `draft`'s run on its thread with no messages; True when the model expects success."""
        run = draft.build()
        thread_id = draft.thread_id
        call: tuple[Any, ...] = (self.store.checkpoint, thread_id, [], run)
        if append:
            call = (self.store.checkpoint_append, thread_id, [], None, run)
        problem = run_problem(run)
        if problem is not None:
            note(f"invalid: {problem}")
            self.refused(("CKP-1", "MOD-4"), (ValidationError,), *call)
            return False
        start, end, found = self.succeeds("CKP-2", stamped, self.store, *call)
        self.store_run(run)
        before = self.threads.get(thread_id, Thread(id=thread_id))
        expected = project(before, run)
        found = present(found, "CKP-2", f"the checkpoint did not create thread {thread_id!r}")
        created = found.metadata.created_at
        if before.metadata.created_at is None:
            created = present(created, "CKP-2", "a checkpoint left created_at unset")
            expect(start <= created <= end, "CKP-2", f"created_at {created} is not now ({start}..{end} ms)")
        else:
            expect(created == before.metadata.created_at, "CKP-2", f"created_at {created} was changed")
        updated = present(found.metadata.updated_at, "CKP-2", "a checkpoint left updated_at unset")
        expect(start <= updated <= end, "CKP-2", f"updated_at {updated} is not now ({start}..{end} ms)")
        expected.metadata = replace(expected.metadata, created_at=created, updated_at=updated)
        self.threads[thread_id] = expected
        return True

    @rule(thread=st.sampled_from(THREADS), created_at=st.sampled_from((None, 1000)))
    def save_thread(self, thread: str, created_at: int | None) -> None:
        saved = Thread(id=thread, metadata=ThreadMetadata(created_at=created_at))
        self.succeeds("THR-2", self.store.save_thread, saved)
        self.threads[thread] = saved

    @rule(query=QUERIES)
    def list_runs(self, query: RunQuery) -> None:
        page = self.succeeds("RUN-4", self.store.list_runs, query)
        matching = sorted(
            (
                r
                for r in self.runs.values()
                if query.thread_id in (None, r.thread_id)
                and query.status in (None, r.status)
                and r.thread_id.startswith(query.id_prefix or "")
            ),
            key=lambda r: (r.created_at, r.run_id),
        )
        limit = max(1, min(query.limit, 200))
        start = min(query.offset, len(matching))
        end = min(start + limit, len(matching))
        shown, wanted = [r.run_id for r in page.items], [r.run_id for r in matching[start:end]]
        expect(
            (shown, page.total) == (wanted, len(matching)),
            "RUN-4",
            f"page {shown} of {page.total}, expected {wanted} of {len(matching)}",
        )
        expect(page.items == matching[start:end], ("RUN-2", "RUN-4"), "listed runs differ from the stored records")
        expect(page.has_more == (end < len(matching)), "RUN-4", f"has_more is {page.has_more}")

    # ── the store equals the model ───────────────────────────────────

    @invariant()
    def store_matches_model(self) -> None:
        seen = self.call(observe, self.store)
        for run_id, found in seen.runs.items():
            stored = self.runs.get(run_id)
            expect(
                found == stored,
                ("RUN-1", "RUN-2", "CKP-2"),
                f"load_run({run_id!r}) is not the last write: {_diff(found, stored)}",
            )
        for thread_id, latest in seen.latest.items():
            want = self.latest(thread_id)
            expect(
                latest == want,
                "RUN-3",
                f"latest_run({thread_id!r}) is {latest and latest.run_id!r}, expected "
                f"{want and want.run_id!r}: {_diff(latest, want)}",
            )
        for thread_id, thread in seen.threads.items():
            want_thread = self.threads.get(thread_id)
            if thread is None or want_thread is None:
                expect(thread == want_thread, "CKP-2", f"thread {thread_id!r}: {_diff(thread, want_thread)}")
                continue
            wrong = [
                f"{name} is {getattr(thread, name)!r}, expected {getattr(want_thread, name)!r}"
                for name in ("latest_run_id", "latest_run_updated_at", "open_run_id", "active_run_id")
                if getattr(thread, name) != getattr(want_thread, name)
            ]
            expect(not wrong, "CKP-6", f"thread {thread_id!r}: {', '.join(wrong)}")
            expect(thread == want_thread, "CKP-2", f"thread {thread_id!r}: {_diff(thread, want_thread)}")
        everything = sorted(self.runs.values(), key=lambda r: (r.created_at, r.run_id))
        listed = [r.run_id for r in seen.listed.items]
        expect(listed == [r.run_id for r in everything], "RUN-4", f"list_runs() gave {listed}")


class RunMachineRules:
    """Holds the machine's contract test (`stateful(...)`)."""

    test_run_machine = stateful(
        RunMachine, "RUN-1", "RUN-2", "RUN-3", "RUN-4", "CKP-1", "CKP-2", "CKP-6", "MOD-4", "THR-2", "ATO-1"
    )
