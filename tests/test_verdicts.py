"""Verdicts a user can trust: one under xdist, partial when partial, fail-fast set-up, hangs, baselines.

Every case runs the kit as a user does, `python -m conformance` in a subprocess, in a
fresh folder, and reads the verdict line, the JSON report and the exit status.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

STORES = """
    import time

    import anyio
    from conformance import RunPage, RunQuery, ThreadRunStore
    from reference_store import ReferenceStore


    class RunsById(ReferenceStore):
        '''list_runs orders by run_id only: breaks RUN-4 (its tie test passes, its order test fails).'''

        async def list_runs(self, query: RunQuery) -> RunPage:
            page = await super().list_runs(
                RunQuery(thread_id=query.thread_id, status=query.status, id_prefix=query.id_prefix, limit=200)
            )
            start, limit = query.offset, max(1, min(query.limit, 200))
            items = sorted(page.items, key=lambda r: r.run_id)[start : start + limit]
            return RunPage(items=items, total=page.total, has_more=start + limit < page.total)


    class Waits(ReferenceStore):
        '''Blocks in load_thread until killed, after saying so in a file (for Ctrl-C).'''

        async def load_thread(self, thread_id):
            with open("started", "w") as marker:
                marker.write("x")
            await anyio.sleep(3600)


    class Hangs(ReferenceStore):
        '''list_threads never returns: it awaits forever.'''

        async def list_threads(self, offset, limit):
            await anyio.sleep_forever()


    class Spins(ReferenceStore):
        '''list_threads never returns and never awaits.'''

        async def list_threads(self, offset, limit):
            while True:
                time.sleep(0.01)


    class Unwritten(ThreadRunStore):
        '''Writes none of the abstract methods.'''


    def cannot_connect():
        raise ConnectionError("cannot connect to db.example:5432")


    def not_a_store():
        return {"threads": {}}


    class Blocking(ReferenceStore):
        def load_thread(self, thread_id):
            return None
"""


TESTS = Path(__file__).resolve().parent


def kit(folder: Path, *arguments: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """`python -m conformance ARGUMENTS` in `folder` (which holds `stores.py`; the zoo is importable), quietly."""
    (folder / "stores.py").write_text(textwrap.dedent(STORES), encoding="utf-8")
    return subprocess.run(
        [sys.executable, "-m", "conformance", "-q", *arguments],
        cwd=folder,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])},
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )


def verdict(output: str) -> str:
    lines = [line for line in output.splitlines() if line.startswith("verdict: ")]
    assert len(lines) == 1, output[-3000:]
    return lines[0]


def report(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def statuses(data: dict[str, Any]) -> dict[str, str]:
    return {row["id"]: row["status"] for row in data["rules"]}


# ── one verdict under xdist ─────────────────────────────────────────────


def test_xdist_gives_the_serial_verdict_once(tmp_path: Path) -> None:
    """With -n 2 the controller prints the one summary and verdict and writes the one JSON: as serially."""
    serial = kit(tmp_path, "--store", "stores.py:RunsById", "--conformance-report", "serial.json")
    spread = kit(tmp_path, "--store", "stores.py:RunsById", "-n", "2", "--conformance-report", "spread.json")
    assert serial.returncode == spread.returncode == 1
    assert verdict(spread.stdout) == verdict(serial.stdout)
    assert verdict(spread.stdout).startswith("verdict: does NOT conform: ")
    assert spread.stdout.count("conformance summary") == 1
    one, two = report(tmp_path / "serial.json"), report(tmp_path / "spread.json")
    assert (two["complete"], two["conforms"]) == (True, False)
    assert statuses(two) == statuses(one)
    assert statuses(two)["RUN-4"] == "failed"
    assert two["counts"] == one["counts"]
    ran = [test["nodeid"] for row in two["rules"] for test in row["tests"]]
    assert len(set(ran)) == len({test["nodeid"] for row in one["rules"] for test in row["tests"]})


TWO_STORES = """
    from conformance import StoreContract
    from reference_store import ReferenceStore


    class TestClaimsDurable(StoreContract):
        capabilities = ("durable",)  # an in-memory store is not: DUR-1 and DUR-2 fail

        def store(self):
            return ReferenceStore


    class TestInMemory(StoreContract):
        capabilities = ()

        def store(self):
            return ReferenceStore
"""


def test_each_store_of_a_session_gets_its_own_verdict(tmp_path: Path) -> None:
    """Two StoreContract classes: each judged with its own capabilities; a rule one fails is never shown skipped."""
    (tmp_path / "test_two.py").write_text(textwrap.dedent(TWO_STORES), encoding="utf-8")
    options = ("-m", "not conformance_stateful", "--conformance-report", "r.json")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", "test_two.py", *options],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert done.returncode == 1, done.stdout[-3000:]
    lines = done.stdout.splitlines()
    first = lines.index("── store TestClaimsDurable (test_two.py::TestClaimsDurable)")
    second = lines.index("── store TestInMemory (test_two.py::TestInMemory)")
    assert any(line.startswith("DUR-1   failed") for line in lines[first:second])
    assert any(line.startswith("DUR-1   skipped") for line in lines[second:])
    assert verdict(done.stdout).startswith("verdict: partial run of 2 stores: 2 not fully checked ")
    assert "1 failing (TestClaimsDurable)" in verdict(done.stdout)
    data = report(tmp_path / "r.json")
    assert (data["complete"], data["conforms"], data["capabilities"]) == (False, False, None)
    by_store = {row["store"]: row for row in data["stores"]}
    assert by_store["test_two.py::TestClaimsDurable"]["failed"] == ["DUR-1", "DUR-2"]
    assert by_store["test_two.py::TestClaimsDurable"]["capabilities"]["durable"] is True
    assert by_store["test_two.py::TestInMemory"]["failed"] == []
    assert by_store["test_two.py::TestInMemory"]["capabilities"]["durable"] is False


# ── a rule a test stands on, broken ─────────────────────────────────────


def test_a_call_that_should_have_been_refused_leaves_the_run_complete(tmp_path: Path) -> None:
    """save_thread lets an invalid thread through: ATO-1 has nothing to roll back, and says so.

    The run is whole, so the verdict is "does NOT conform" (THR-2 fails, blamed from the
    ATO-1 test too) with ATO-1 named as not checked past it, never "partial run".
    """
    done = kit(
        tmp_path,
        "--store",
        "broken.threads:BlankLineageAccepted",
        "--conformance-profile",
        "quick",
        "--conformance-report",
        "r.json",
    )
    assert done.returncode == 1, done.stdout[-3000:]
    line = verdict(done.stdout)
    assert line.startswith("verdict: does NOT conform: "), line
    assert "more not checked past those failures (" in line
    data = report(tmp_path / "r.json")
    assert (data["complete"], data["conforms"]) == (True, False)
    # ATO-1's test, and the machines that stopped at THR-2's or MOD-2's failure, checked no further.
    assert "ATO-1" in data["blocked"]
    assert not {"THR-2", "MOD-2"} & set(data["blocked"])
    assert statuses(data)["THR-2"] == "failed"
    refusal = next(row for row in data["rules"] if row["id"] == "THR-2")
    assert any("test_refused_operation_changes_nothing[save_thread-invalid]" in t["nodeid"] for t in refusal["tests"])


@pytest.mark.parametrize(
    ("store", "rule_id", "blamed"),
    [
        ("broken.threads:CustomMetadataDropped", "ATO-2", "THR-2"),
        ("broken.messages:AppendNumbersTheDelta", "CON-2", "MSG-4"),
    ],
    ids=["ATO-2", "CON-2"],
)
def test_a_baseline_that_breaks_its_own_rule_blames_it_and_leaves_the_rule_unchecked(
    tmp_path: Path, store: str, rule_id: str, blamed: str
) -> None:
    """ATO-2 needs a fresh store to read back a write as its rule says, CON-2 a lone append numbered right.

    When they do not, the test blames that rule and its own is "not checked", never "passed".
    """
    done = kit(tmp_path, "--store", store, "--conformance-rules", rule_id, "--conformance-report", "r.json")
    assert done.returncode == 1, done.stdout[-3000:]
    data = report(tmp_path / "r.json")
    assert statuses(data)[blamed] == "failed"
    assert statuses(data)[rule_id] == "incomplete"
    assert data["blocked"] == [rule_id]


@pytest.mark.parametrize(
    "selection",
    [
        ["--conformance-rules", "ATO-1", "-m", "not conformance_stateful"],
        ["-k", "test_hierarchy_machine"],
    ],
    ids=["ATO-1-tests", "hierarchy-machine"],
)
def test_a_hang_blames_the_rule_its_call_answers_to(tmp_path: Path, selection: list[str]) -> None:
    """A cascade that walks a cycle forever breaks DEL-5 ("raises and terminates") wherever it hangs.

    In ATO-1's tests of a refused cascade the hang blames DEL-5, not ATO-1; in the
    hierarchy machine (16 rules) its cascade step's DEL-5 alone.
    """
    done = kit(
        tmp_path,
        "--store",
        "broken.deletes:CascadeLoopsOnCycle",
        *selection,
        "--conformance-timeout",
        "2",
        "--conformance-report",
        "r.json",
    )
    assert done.returncode == 1, done.stdout[-3000:]
    data = report(tmp_path / "r.json")
    assert [rule_id for rule_id, status in statuses(data).items() if status == "failed"] == ["DEL-5"]
    hung = [t for row in data["rules"] if row["id"] == "DEL-5" for t in row["tests"] if t["outcome"] == "failed"]
    assert hung, data
    assert all("did not return within 2 s" in t["message"] for t in hung)


# ── complete or partial ─────────────────────────────────────────────────


@pytest.mark.parametrize(
    ("arguments", "reason"),
    [
        (["--conformance-rules", "THR-1"], "narrowed by --conformance-rules THR-1"),
        (["-k", "nomatch"], "narrowed by -k 'nomatch'"),
        (["-m", "not conformance_stateful"], "narrowed by -m 'not conformance_stateful'"),
        (["--store", "stores.py:RunsById", "-x"], "stopping after 1 failures"),
    ],
    ids=["rules", "keyword", "marker", "exitfirst"],
)
def test_a_narrowed_or_cut_run_is_partial(tmp_path: Path, arguments: list[str], reason: str) -> None:
    """A run narrowed by a filter or stopped by -x gives no verdict, says why, and never conforms."""
    completed = kit(tmp_path, *arguments, "--conformance-report", "r.json")
    line = verdict(completed.stdout)
    assert line.startswith("verdict: partial run: "), line
    assert "no conformance verdict" in line
    assert reason in line
    data = report(tmp_path / "r.json")
    assert (data["complete"], data["conforms"]) == (False, False)
    assert reason in data["partial_reasons"]
    assert data["counts"]["checked"] < data["counts"]["required"]


def test_a_rule_counts_as_checked_only_when_all_its_tests_ran(tmp_path: Path) -> None:
    """Selecting THR-2 runs a test also tagged MOD-5; MOD-5 is not checked by that test alone."""
    completed = kit(tmp_path, "--conformance-rules", "THR-2", "--conformance-report", "r.json")
    assert completed.returncode == 0
    rules = statuses(report(tmp_path / "r.json"))
    assert rules["THR-2"] == "passed"
    assert rules["MOD-5"] == "incomplete"
    assert rules["QRY-1"] == "not_run"


def test_an_interrupted_run_is_partial_and_exits_non_zero(tmp_path: Path) -> None:
    """Ctrl-C during a run: a non-zero exit, a partial verdict, and a JSON that does not conform."""
    (tmp_path / "stores.py").write_text(textwrap.dedent(STORES), encoding="utf-8")
    command = [sys.executable, "-m", "conformance", "-q", "--store", "stores.py:Waits"]
    process = subprocess.Popen(
        [*command, "--conformance-report", "r.json"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 120
    while not (tmp_path / "started").exists():  # the first test is blocked inside the store
        assert process.poll() is None, "the kit ended before it reached the store"
        assert time.monotonic() < deadline, "the kit never reached the store"
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=120)
    assert process.returncode == pytest.ExitCode.INTERRUPTED
    assert "; no conformance verdict (interrupted); " in verdict(output)
    data = report(tmp_path / "r.json")
    assert (data["complete"], data["conforms"]) == (False, False)
    assert data["partial_reasons"] == ["interrupted"]


# ── fail fast on set-up ─────────────────────────────────────────────────


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("stores.py:Unwritten", "set-up failed: Unwritten does not implement checkpoint, create_run, "),
        ("stores.py:cannot_connect", "set-up failed: opening the store (cannot_connect) failed: ConnectionError: "),
        ("stores.py:not_a_store", "set-up failed: the store source produced dict ({'threads': {}}), not a "),
        ("stores.py:Blocking", "set-up failed: Blocking.load_thread: plain methods where the contract's are"),
    ],
    ids=["abstract", "raises", "not-a-store", "sync-method"],
)
def test_a_store_that_cannot_be_built_stops_at_once(tmp_path: Path, target: str, message: str) -> None:
    """One clear line, exit status 4, no test run, and a JSON report that says so."""
    completed = kit(tmp_path, "--store", target, "--conformance-report", "r.json")
    assert completed.returncode == pytest.ExitCode.USAGE_ERROR
    output = completed.stdout + completed.stderr
    assert message in output
    assert len(output.splitlines()) <= 40
    assert "passed" not in completed.stdout
    assert "failed" not in completed.stdout
    data = report(tmp_path / "r.json")
    assert data["setup_error"]
    assert (data["complete"], data["conforms"]) == (False, False)
    assert data["verdict"].startswith("set-up failed: ")


SUBCLASS_OF_ABSTRACT = """
    from conformance import StoreContract, ThreadRunStore


    class Unwritten(ThreadRunStore):
        pass


    class TestUnwritten(StoreContract):
        def store(self):
            return Unwritten()
"""


def test_the_subclass_way_stops_at_its_first_test(pytester: pytest.Pytester) -> None:
    """A StoreContract subclass whose store cannot be built fails one test, says why, and stops with status 4."""
    pytester.makepyfile(test_unwritten=SUBCLASS_OF_ABSTRACT)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-o", "asyncio_default_fixture_loop_scope=function")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*set-up failed: opening the store (TestUnwritten.store) failed: TypeError: *abstract*", "verdict: set-up*"]
    )
    assert len(result.stdout.lines) <= 40


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--conformance-report", "/proc/nope/r.json"], "--conformance-report /proc/nope/r.json: cannot write there"),
        (["--conformance-report", "."], "--conformance-report .: cannot write there"),
    ],
)
def test_an_unwritable_report_path_is_refused_before_any_test(
    tmp_path: Path, arguments: list[str], message: str
) -> None:
    """The report path is tried at start: a usage error, not a traceback after the whole run."""
    completed = kit(tmp_path, *arguments)
    assert completed.returncode == pytest.ExitCode.USAGE_ERROR
    assert message in completed.stderr
    assert len((completed.stdout + completed.stderr).splitlines()) <= 5


def test_a_backend_that_is_not_installed_is_refused(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """`--conformance-backend trio` without trio installed is a usage error naming the package."""
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "trio" else real(name))
    result = pytester.runpytest_inprocess(
        "--conformance-backend", "asyncio,trio", "-o", "asyncio_default_fixture_loop_scope=function"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--conformance-backend 'asyncio,trio': trio is not installed (pip install trio)*"])


# ── hangs ───────────────────────────────────────────────────────────────


@pytest.mark.parametrize("store", ["Hangs", "Spins"])
def test_a_hanging_store_is_named_and_stops_the_run(tmp_path: Path, store: str) -> None:
    """A call that never returns (awaiting or not) fails its test naming the call; three in a row stop the run."""
    completed = kit(
        tmp_path, "--store", f"stores.py:{store}", "--conformance-timeout", "0.5", "--conformance-report", "r.json"
    )
    assert completed.returncode != 0
    assert "list_threads(0, 10) did not return within 0.5 s" in completed.stdout
    assert completed.stdout.count("did not return within") >= 3
    *_, pytest_line, verdict = completed.stdout.splitlines()
    assert "3 failed" in pytest_line
    assert verdict.startswith("verdict: partial run: ")  # the verdict is the run's last line
    assert completed.stdout.count("\nverdict:") == 1
    data = report(tmp_path / "r.json")
    assert (data["complete"], data["conforms"]) == (False, False)
    assert data["partial_reasons"] == ["the store hangs: 3 contract tests in a row had a store call run past 0.5 s"]


@pytest.mark.parametrize("store", ["Hangs", "Spins"])
def test_a_store_hanging_inside_a_machine_step_is_interrupted(tmp_path: Path, store: str) -> None:
    """A machine's store call that never returns ends the machine at once, naming the call (no shrinking)."""
    completed = kit(
        tmp_path, "--store", f"stores.py:{store}", "--conformance-timeout", "0.5", "-k", "test_query_machine"
    )
    assert completed.returncode == pytest.ExitCode.TESTS_FAILED
    assert re.search(r"list_threads\(\d+, 200\) did not return within 0\.5 s", completed.stdout), completed.stdout
    assert "1 failed" in completed.stdout.splitlines()[-2]


# ── deterministic ───────────────────────────────────────────────────────


def test_the_same_store_gets_the_same_verdict_in_fresh_folders(tmp_path: Path) -> None:
    """The default profile is derandomized and reads no example database: three runs, one verdict."""
    target = "broken.queries:IdOrder"
    lines, blamed = [], []
    for number in range(3):
        folder = tmp_path / f"run{number}"
        (folder / ".hypothesis" / "examples" / "0123abcd").mkdir(parents=True)  # a stale database, ignored
        completed = kit(folder, "--store", target, "-k", "test_query_machine", "--conformance-report", "r.json")
        lines.append(verdict(completed.stdout))
        blamed.append([test["blamed"] for row in report(folder / "r.json")["rules"] for test in row["tests"]])
    assert lines[0] == lines[1] == lines[2]
    assert blamed[0] == blamed[1] == blamed[2]
    assert "failed (QRY-3)" in lines[0]


# ── baselines, per rule ─────────────────────────────────────────────────


def with_baseline(folder: Path, line: str, *arguments: str) -> subprocess.CompletedProcess[str]:
    """The kit with a baseline of one `line`, writing `r.json`."""
    (folder / "known.txt").write_text(line + "\n", encoding="utf-8")
    return kit(folder, "--conformance-baseline", "known.txt", "--conformance-report", "r.json", *arguments)


def test_a_baselined_rule_may_fail_in_part_and_the_run_stays_green(tmp_path: Path) -> None:
    """RUN-4 fails some tests and passes others: it is the one known failure; nothing else is."""
    completed = with_baseline(
        tmp_path, "RUN-4: our runs are ordered by id", "--store", "stores.py:RunsById", "-m", "not conformance_stateful"
    )
    assert completed.returncode == 0, completed.stdout[-3000:]
    data = report(tmp_path / "r.json")
    assert data["known_failures"] == ["RUN-4"]
    assert [rule for rule, status in statuses(data).items() if status == "known_failure"] == ["RUN-4"]
    run4 = next(row for row in data["rules"] if row["id"] == "RUN-4")
    assert {"passed", "xfailed"} <= {test["outcome"] for test in run4["tests"]}
    assert "1 known failures from the baseline (RUN-4)" in verdict(completed.stdout)


def test_a_stale_baseline_entry_fails_the_run_and_is_named(tmp_path: Path) -> None:
    """A baselined rule that passes all its tests fails the run, so the baseline gets updated."""
    completed = with_baseline(tmp_path, "THR-1: flaky on our side")
    assert completed.returncode == pytest.ExitCode.TESTS_FAILED
    assert "stale baseline entries, passing every test: THR-1 (remove them)" in verdict(completed.stdout)
    data = report(tmp_path / "r.json")
    assert data["stale_baseline"] == ["THR-1"]
    assert data["known_failures"] == []


def test_a_failure_outside_the_baseline_fails_the_run(tmp_path: Path) -> None:
    """The baseline excuses only its own rules: RUN-4 failing with THR-1 baselined fails the run."""
    completed = with_baseline(
        tmp_path, "THR-1: flaky on our side", "--store", "stores.py:RunsById", "--conformance-rules", "RUN-4"
    )
    assert completed.returncode == pytest.ExitCode.TESTS_FAILED
    assert "1 failed (RUN-4)" in verdict(completed.stdout)
    assert statuses(report(tmp_path / "r.json"))["RUN-4"] == "failed"
