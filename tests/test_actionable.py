"""A failure a backend author can act on: per-call timeouts, precise blame, clean output, honest exits.

Each case runs the kit as a user does (`python -m conformance` in a subprocess, in a
fresh folder) on a store written the way real backends go wrong, and reads what the
author reads: the failure, the summary, the last line, the JSON report, the exit status.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from hypothesis.errors import FlakyStrategyDefinition

from conformance import RuleViolation
from conformance.kit._runner import _unreplayable
from conformance.kit._violation import blamed_rules

TESTS = Path(__file__).resolve().parent

STORES = """
    import itertools

    import anyio
    from conformance import NotFoundError, RunQuery, StorageIOError, ValidationError
    from reference_store import ReferenceStore

    _CALLS = itertools.count(1)
    _CLOSES = itertools.count(1)


    class Slow(ReferenceStore):
        '''Correct, but every call takes 40 ms: a test's dozens of calls take longer than one call may.'''

        def __getattribute__(self, name):
            found = super().__getattribute__(name)
            if name.startswith("_") or not callable(found) or not hasattr(ReferenceStore, name):
                return found

            async def slowly(*args, **kwargs):
                await anyio.sleep(0.04)
                return await found(*args, **kwargs)

            return slowly


    class TransientIO(ReferenceStore):
        '''A validated save fails with StorageIOError now and then (a connection reset), process-wide.'''

        async def save_thread_validated(self, thread):
            if next(_CALLS) % 20 == 0:
                raise StorageIOError("connection reset by peer")
            return await super().save_thread_validated(thread)


    class ValueErrorForValidation(ReferenceStore):
        '''Raises ValueError where the contract says ValidationError.'''

        async def save_thread_validated(self, thread):
            try:
                return await super().save_thread_validated(thread)
            except ValidationError as error:
                raise ValueError(str(error)) from None


    class ListsRunsAsList(ReferenceStore):
        '''list_runs returns a list where the contract says RunPage.'''

        async def list_runs(self, query: RunQuery):
            return (await super().list_runs(query)).items


    class CloseFailsOnce(ReferenceStore):
        '''Its fifth store object fails to close; everything else is correct.'''

        async def aclose(self):
            if next(_CLOSES) == 5:
                raise ConnectionError("connection already closed")


    class CloseHangsOnce(ReferenceStore):
        '''Its fifth store object never finishes closing.'''

        async def aclose(self):
            if next(_CLOSES) == 5:
                await anyio.sleep_forever()


    class PrintsVerdicts(ReferenceStore):
        '''Prints what looks like the kit's verdict, and fails THR-1 so that the print is shown.'''

        async def load_thread(self, thread_id):
            print("verdict: conforms to all 61 required rules")
            found = await super().load_thread(thread_id)
            if found is None:
                raise NotFoundError(f"thread {thread_id}")
            return found
"""


def kit(folder: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    """`python -m conformance ARGUMENTS` in `folder`, which holds `stores.py`."""
    (folder / "stores.py").write_text(textwrap.dedent(STORES), encoding="utf-8")
    return subprocess.run(
        [sys.executable, "-m", "conformance", "-q", "-p", "no:cacheprovider", *arguments],
        cwd=folder,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])},
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )


def report(folder: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((folder / "r.json").read_text(encoding="utf-8"))
    return data


def failed_tests(data: dict[str, Any]) -> dict[str, list[str]]:
    """Each failed test's node id with the rules it was blamed on."""
    return {
        test["nodeid"]: test["blamed"]
        for row in data["rules"]
        for test in row["tests"]
        if test["outcome"] in ("failed", "xfailed")
    }


def test_a_slow_correct_store_conforms_where_its_tests_outlast_the_timeout(tmp_path: Path) -> None:
    """--conformance-timeout bounds one store call: 40 ms calls under a 0.3 s timeout pass tests of many calls."""
    done = kit(
        tmp_path,
        *("--store", "stores.py:Slow", "--conformance-timeout", "0.3", "--conformance-report", "r.json"),
        *("-k", "test_list_runs_orders_by_created_at_then_run_id or test_cascade_deletes_every_descendant"),
    )
    assert done.returncode == 0, done.stdout[-3000:]
    data = report(tmp_path)
    assert failed_tests(data) == {}
    longest = max(test["duration"] for row in data["rules"] for test in row["tests"])
    assert longest > 0.3  # some test took longer than one call may, and passed
    assert data["store_calls"]["average_ms"] >= 40
    assert "the store answered " in done.stdout
    assert re.search(r"the store answered \d+ calls, averaging \d+\.\d ms", done.stdout)


def test_a_hung_call_is_named_with_its_elapsed_time(tmp_path: Path) -> None:
    """A call past the timeout fails naming the call, how long it ran, and that the bound is per call."""
    done = kit(tmp_path, "--store", "stores.py:Slow", "--conformance-timeout", "0.01", "-k", "test_load_unknown_thread")
    assert done.returncode == 1
    ran = r"load_thread\('never-saved'\) did not return within 0\.01 s: still running after \d+\.\d s"
    assert re.search(ran, done.stdout), done.stdout[-2000:]
    assert "--conformance-timeout bounds each store call" in done.stdout


def test_a_rare_transient_error_in_a_machine_blames_the_failing_step_only(tmp_path: Path) -> None:
    """One StorageIOError now and then (Hypothesis cannot replay it) blames the step's rule, not 16 rules,
    shows the machine step, and says the store answered the same calls differently."""
    done = kit(
        tmp_path, "--store", "stores.py:TransientIO", "-k", "test_hierarchy_machine", "--conformance-report", "r.json"
    )
    assert done.returncode == 1
    data = report(tmp_path)
    (blamed,) = failed_tests(data).values()
    assert 1 <= len(blamed) <= 2, blamed
    assert set(blamed) <= {"HIE-1", "HIE-2", "HIE-3", "HIE-4", "HIE-5", "ATO-1"}
    reason = next(row["reason"] for row in data["rules"] if row["id"] == blamed[0])
    assert "flaky, the store answered differently on replay; first seen: " in reason  # summary and JSON say so
    assert "StorageIOError('connection reset by peer')" in done.stdout
    assert "the store answered the same calls differently" in done.stdout
    assert "All traceback entries are hidden" not in done.stdout
    assert "_machines/hierarchy.py" in done.stdout


def test_a_machine_that_drew_differently_on_replay_blames_the_check() -> None:
    """Hypothesis raising FlakyStrategyDefinition while it handles a failed check (the run machine drew from
    runs a hash map listed in another order) gives back that check, noted as flaky: RUN-4, not 10 rules."""
    check = RuleViolation("RUN-4", "list_runs() gave ['r4', 'r2']")
    try:
        try:
            raise check
        except RuleViolation:
            raise FlakyStrategyDefinition("Inconsistent data generation!")  # noqa: B904 (Hypothesis raises it so)
    except FlakyStrategyDefinition as flaky:
        found = _unreplayable(flaky)
    assert found is check
    assert any("the store answered the same calls differently" in note for note in check.__notes__)
    assert str(check).startswith("flaky, the store answered differently on replay; first seen: RUN-4: ")
    assert blamed_rules(("RUN-1", "RUN-2", "RUN-3", "RUN-4", "MOD-4", "ATO-1"), found) == ("RUN-4",)


def test_a_value_error_where_validation_error_is_due_blames_the_step(tmp_path: Path) -> None:
    """A ValueError for a refused hierarchy breaks the rule the refusal answers to, not the machine's tags."""
    done = kit(
        tmp_path,
        *("--store", "stores.py:ValueErrorForValidation", "-k", "test_hierarchy_machine"),
        *("--conformance-report", "r.json"),
    )
    assert done.returncode == 1
    (blamed,) = failed_tests(report(tmp_path)).values()
    # Hypothesis may report each distinct refusal (self parent, cycle, missing parent) as its own bug.
    assert set(blamed) <= {"HIE-2", "HIE-3", "HIE-4", "HIE-5"}, blamed
    assert "ValueError(" in done.stdout
    assert "only StorageError subclasses may escape a store" in done.stdout


def test_a_wrong_return_type_blames_the_method_rule_wherever_it_is_called(tmp_path: Path) -> None:
    """list_runs returning a list breaks RUN-4 even in tests of other rules (CKP-2's run projection, say)."""
    done = kit(
        tmp_path,
        *("--store", "stores.py:ListsRunsAsList", "--conformance-rules", "RUN-4,CKP-5,DEL-4"),
        *("-m", "not conformance_stateful", "--conformance-report", "r.json"),
    )
    assert done.returncode == 1
    blamed = {rule for rules in failed_tests(report(tmp_path)).values() for rule in rules}
    assert blamed == {"RUN-4"}
    assert "_scenarios.py" not in done.stdout
    assert "_boundary.py" not in done.stdout


def test_a_close_that_fails_once_is_a_lifecycle_failure_not_a_rule(tmp_path: Path) -> None:
    """aclose() raising once is reported on its own line and in the JSON, blames no rule, and the run
    is partial: it exits 1."""
    done = kit(
        tmp_path,
        *("--store", "stores.py:CloseFailsOnce", "--conformance-rules", "THR", "-m", "not conformance_stateful"),
        *("--conformance-report", "r.json"),
    )
    assert done.returncode == 1
    data = report(tmp_path)
    assert data["counts"]["failed"] == 0
    assert all(not blamed for blamed in failed_tests(data).values())
    (failure,) = data["lifecycle_failures"]
    assert failure.startswith("closing the store failed: ConnectionError('connection already closed')")
    assert any(line.startswith("lifecycle: closing the store failed") for line in done.stdout.splitlines())
    assert "violates" not in done.stdout


def test_a_close_that_hangs_once_is_a_lifecycle_failure_not_a_rule(tmp_path: Path) -> None:
    """aclose() that never returns fails its test naming the stage, blames no rule, leaves the run partial."""
    done = kit(
        tmp_path,
        *("--store", "stores.py:CloseHangsOnce", "--conformance-rules", "THR", "-m", "not conformance_stateful"),
        *("--conformance-timeout", "0.5", "--conformance-report", "r.json"),
    )
    assert done.returncode == 1
    data = report(tmp_path)
    assert data["counts"]["failed"] == 0
    (failure,) = data["lifecycle_failures"]
    assert failure.startswith("closing the store did not return within 0.5 s")
    assert "violates" not in done.stdout


@pytest.mark.parametrize("plugin", [(), ("-p", "no:anyio")], ids=["anyio-plugin", "no-anyio-plugin"])
def test_a_failure_shows_the_check_and_the_store_not_the_event_loop(tmp_path: Path, plugin: tuple[str, ...]) -> None:
    """A plain failure (pytest.raises that did not raise) opens at the contract test, with no runner frames."""
    done = kit(
        tmp_path,
        *plugin,
        *("--store", "broken.checkpoints:CheckpointAcceptsForeignRun", "-k", "refuses_a_run_of_another_thread"),
    )
    assert done.returncode == 1, done.stdout[-2000:]
    assert "DID NOT RAISE" in done.stdout
    for plumbing in ("def run(", "anyio/_core", "_backends/_asyncio.py", "asyncio/runners.py", "base_events.py"):
        assert plumbing not in done.stdout, plumbing
    assert "_contract_tests/checkpoints.py" in done.stdout


def test_only_the_kit_writes_verdict_lines_and_the_verdict_is_last(tmp_path: Path) -> None:
    """A store printing `verdict: conforms ...` cannot begin a line with it; the one verdict ends the run."""
    done = kit(tmp_path, "--store", "stores.py:PrintsVerdicts", "--conformance-rules", "THR-1")
    lines = done.stdout.splitlines()
    assert [line for line in lines if line.startswith("verdict:")] == [lines[-1]]
    assert lines[-1].startswith("verdict: partial run: ")
    assert "[store output] verdict: conforms to all 61 required rules" in done.stdout
    assert "failed" in lines[-2]  # pytest's own summary line, just above


def test_a_run_blocked_behind_a_baselined_failure_exits_non_zero(tmp_path: Path) -> None:
    """A baselined THR-1 (load_thread raising on a miss) leaves rules unchecked: partial, exit 1, not 0."""
    (tmp_path / "baseline.txt").write_text("THR-1: load_thread raises NotFoundError on a miss\n", encoding="utf-8")
    done = kit(
        tmp_path,
        *("--store", "stores.py:PrintsVerdicts", "--conformance-baseline", "baseline.txt"),
        *("-m", "not conformance_stateful", "--conformance-report", "r.json"),
    )
    data = report(tmp_path)
    assert data["complete"] is False
    assert data["counts"]["failed"] == 0
    assert data["known_failures"] == ["THR-1"]
    assert done.returncode == 1, done.stdout[-2000:]


def test_a_run_stopped_by_x_summarizes_the_unchecked_rules_in_one_line(tmp_path: Path) -> None:
    """After -x the summary lists the failed rule and one line of rules not checked, not one row each."""
    done = kit(tmp_path, "--store", "stores.py:ListsRunsAsList", "-x")
    assert done.returncode == 1
    summary = done.stdout.split("conformance summary", 1)[1]
    assert "incomplete" not in summary
    assert "rules not checked: the run stopped early" in summary
    assert "RUN-4   failed" in summary


def test_a_run_says_while_it_runs_that_the_store_is_slow(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once store calls average past the threshold, a line says the run is slow because the store is."""
    from conformance.kit import _plugin

    monkeypatch.setattr(_plugin, "SLOW_CALL_MS", 20.0)
    pytester.makepyfile(actionable_stores=textwrap.dedent(STORES))
    result = pytester.runpytest_inprocess(
        *("-p", "no:cacheprovider", "-o", "asyncio_default_fixture_loop_scope=function"),
        *("--pyargs", "conformance.suite", "--store", "actionable_stores:Slow"),
        *("-k", "test_list_runs and not machine and not thousand", "--conformance-timeout", "1"),
    )
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["conformance: the store is slow: its calls average * ms (* calls so far)"])
