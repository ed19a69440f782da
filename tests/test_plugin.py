"""The plugin in real pytest sessions: the three ways in, capabilities, report, baseline, async plugins."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conformance import RULES

SUBCLASS_MODULE = """
    import anyio
    from conformance import StoreContract
    from reference_store import ReferenceStore


    class TestMine(StoreContract):
        async def store(self):
            await anyio.lowlevel.checkpoint()
            yield ReferenceStore()
"""


def run(pytester: pytest.Pytester, *arguments: str) -> pytest.RunResult:
    """Run pytest in-process, quietly: no cache folder, pytest-asyncio's loop-scope warning settled."""
    return pytester.runpytest_inprocess(
        "-p", "no:cacheprovider", "-o", "asyncio_default_fixture_loop_scope=function", *arguments
    )


def _rules(report: Path) -> dict[str, str]:
    return {row["id"]: row["status"] for row in json.loads(report.read_text())["rules"]}


def test_installed_plugin_collects_and_runs_nothing_unasked(pytester: pytest.Pytester) -> None:
    """A project that does not ask for the kit sees only its own tests and no summary."""
    pytester.makepyfile("def test_own():\n    assert 1 + 1 == 2\n")
    result = run(pytester)
    result.assert_outcomes(passed=1)
    assert "conformance summary" not in result.stdout.str()


def test_markers_are_registered_for_strict_markers(pytester: pytest.Pytester) -> None:
    """`rule` and `conformance_stateful` work under --strict-markers."""
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.rule("THR-1")
        @pytest.mark.conformance_stateful
        def test_marked():
            pass
        """
    )
    run(pytester, "--strict-markers").assert_outcomes(passed=1)


def test_subclass_way_with_an_async_generator_store(pytester: pytest.Pytester) -> None:
    """Subclassing StoreContract with an async-generator `store` runs the contract on it."""
    pytester.makepyfile(test_mine=SUBCLASS_MODULE)
    result = run(pytester, "--conformance-rules", "THR")
    outcomes = result.parseoutcomes()
    assert outcomes["passed"] > 10
    assert "failed" not in outcomes
    result.stdout.fnmatch_lines(["*conformance summary*", "THR-1 * passed*", "verdict: partial run: * 0 failed;*"])


def test_subclass_capabilities_gate_rules(pytester: pytest.Pytester) -> None:
    """Rules of capabilities the subclass does not declare are skipped, naming the capability."""
    pytester.makepyfile(
        test_mine=SUBCLASS_MODULE + "\n        capabilities = ()\n",
    )
    report = pytester.path / "r.json"
    result = run(pytester, "-rs", "--conformance-rules", "THR-6", "--conformance-report", str(report))
    result.stdout.fnmatch_lines(["*needs capability 'thread_state' (not declared)*"])
    assert _rules(report)["THR-6"] == "skipped"


def test_fixture_way_with_conftest_store(pytester: pytest.Pytester) -> None:
    """`pytest --pyargs conformance.suite` takes the store from the project's conftest.py."""
    pytester.makeconftest(
        """
        import pytest
        from reference_store import ReferenceStore

        @pytest.fixture
        def store():
            return ReferenceStore
        """
    )
    result = run(pytester, "--pyargs", "conformance.suite", "--conformance-rules", "THR-1,THR-3")
    # THR-1: unknown id, and two ids no store can hold; THR-3: four, and eight metadata values read back exactly
    result.assert_outcomes(passed=15)


def test_suite_without_any_store_explains_the_three_ways(pytester: pytest.Pytester) -> None:
    """Running the suite with no store stops at once with a message saying how to give one."""
    result = run(pytester, "--pyargs", "conformance.suite")
    result.stdout.fnmatch_lines(["*no store to test: pass --store module:attr*"])
    result.assert_outcomes(failed=1)
    assert result.ret == pytest.ExitCode.USAGE_ERROR


def test_store_option_with_a_file_target_and_factory(pytester: pytest.Pytester) -> None:
    """`--store path/to/file.py:attr` loads a zero-argument factory from a file."""
    pytester.makepyfile(
        backend="""
        from reference_store import ReferenceStore

        async def make_store():
            return ReferenceStore()
        """
    )
    result = run(
        pytester,
        "--pyargs",
        "conformance.suite",
        "--store",
        "backend.py:make_store",
        "-p",
        "no:cacheprovider",
        "--conformance-rules",
        "THR-1",
    )
    result.assert_outcomes(passed=3)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--store", "nowhere_module:Store"], "*cannot import module 'nowhere_module'*"),
        (["--store", "reference_store:Nothing"], "*has no attribute 'Nothing'*"),
        (["--store", "missing.py:x"], "*no file*missing.py*"),
        (["--store", "no-colon"], "*expected 'module:attr'*"),
        (["--capabilities", "durable,teleport"], "*unknown teleport*"),
        (["--conformance-rules", "NOPE-1"], "*unknown rule IDs or areas NOPE-1*"),
        (["--conformance-backend", "curio"], "*choose from asyncio, trio*"),
        (["--conformance-timeout", "0"], "*must be a positive number*"),
    ],
)
def test_bad_options_are_usage_errors(pytester: pytest.Pytester, arguments: list[str], message: str) -> None:
    """A mistyped option stops the run with a message that says what to fix."""
    result = run(pytester, *arguments)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_a_store_module_that_fails_to_import_is_a_usage_error(pytester: pytest.Pytester) -> None:
    """A syntax error in the store's module is one line naming it, exit 4, not pytest's INTERNALERROR."""
    pytester.makepyfile(broken_module="class Store(:\n    pass\n")
    result = run(pytester, "--store", "broken_module:Store")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*importing module 'broken_module' failed: SyntaxError(*"])
    assert "INTERNALERROR" not in result.stderr.str()


def test_json_report_and_junit_properties(pytester: pytest.Pytester) -> None:
    """--conformance-report writes the verdict as JSON; JUnit XML carries rule IDs as properties."""
    pytester.makepyfile(test_mine=SUBCLASS_MODULE)
    report = pytester.path / "out" / "report.json"
    junit = pytester.path / "junit.xml"
    run(
        pytester,
        "--conformance-rules",
        "THR-1,DUR",
        f"--junitxml={junit}",
        "--conformance-report",
        str(report),
    )
    data = json.loads(report.read_text())
    assert data["schema"] == 3
    assert (data["complete"], data["conforms"]) == (False, False)
    assert data["capabilities"]["durable"] is False
    statuses = {row["id"]: row["status"] for row in data["rules"]}
    assert statuses["THR-1"] == "passed"
    assert statuses["DUR-1"] == "skipped"
    assert statuses["HIE-1"] == "not_run"
    # DUR-1, DUR-2 need `durable`; a new rule in its warning release (ISO-2) is not required either
    required = len(statuses) - 2 - sum(rule.warning for rule in RULES.values())
    assert data["counts"] == {"required": required, "checked": 1, "failed": 0, "known_failures": 0}
    assert data["verdict"].startswith(f"partial run: 1 of {required} required rules checked, 0 failed;")
    properties = {(p.get("name"), p.get("value")) for p in ET.parse(junit).iter("property")}
    assert ("rule", "THR-1") in properties


BROKEN_THR1 = """
    from reference_store import ReferenceStore

    class LoadsGhosts(ReferenceStore):
        async def load_thread(self, thread_id):
            found = await super().load_thread(thread_id)
            if found is None:
                raise KeyError(thread_id)
            return found
"""


def test_baseline_turns_known_failures_into_xfails(pytester: pytest.Pytester) -> None:
    """A rule listed in the baseline fails quietly, and the run stays green."""
    pytester.makepyfile(ghosts=BROKEN_THR1)
    baseline = pytester.makefile(".txt", baseline="# known\nTHR-1: our KV store raises on misses\n")
    report = pytester.path / "r.json"
    result = run(
        pytester,
        "--pyargs",
        "conformance.suite",
        "--store",
        "ghosts:LoadsGhosts",
        "-p",
        "no:cacheprovider",
        "--conformance-rules",
        "THR-1",
        "--conformance-baseline",
        str(baseline),
        "--conformance-report",
        str(report),
    )
    result.assert_outcomes(xfailed=3)  # every THR-1 test reads an unknown thread
    assert _rules(report)["THR-1"] == "known_failure"
    result.stdout.fnmatch_lines(["*1 known failures from the baseline (THR-1)*"])


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("NOPE-9: x\n", "*unknown rule ID 'NOPE-9'*"),
        ("THR-1\n", "*THR-1 needs a reason*"),
        ("THR-1: a\nTHR-1: b\n", "*listed twice*"),
    ],
)
def test_bad_baselines_are_usage_errors(pytester: pytest.Pytester, content: str, message: str) -> None:
    """An unknown ID, a missing reason or a duplicate in the baseline is named with its line."""
    baseline = pytester.makefile(".txt", baseline=content)
    result = run(pytester, "--conformance-baseline", str(baseline))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_runs_in_a_project_with_pytest_asyncio_auto_mode(pytester: pytest.Pytester) -> None:
    """pytest-asyncio in auto mode does not take over the kit's tests, under asyncio or trio."""
    pytester.makeini("[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(test_mine=SUBCLASS_MODULE + "\n        backends = ('asyncio', 'trio')\n")
    pytester.makepyfile(
        test_theirs="""
        import asyncio

        async def test_their_own_async_test():
            await asyncio.sleep(0)
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--conformance-rules", "THR-1,THR-2")
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) == 0
    assert outcomes.get("errors", 0) == 0
    assert outcomes["passed"] >= 2 * 6 + 1
    result.stdout.fnmatch_lines(["*asyncio: mode=Mode.AUTO*"])


def test_command_line_runs_from_any_directory(tmp_path: Path) -> None:
    """`python -m conformance` runs the kit on the reference store from an unrelated folder."""
    report = tmp_path / "report.json"
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "conformance",
            "-q",
            "--conformance-rules",
            "THR,HIE-1",
            "--conformance-report",
            str(report),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stdout[-2000:]
    assert "verdict: partial run:" in completed.stdout
    assert json.loads(report.read_text())["store"] == "reference_store:ReferenceStore"


def test_command_line_fails_on_a_broken_store(tmp_path: Path) -> None:
    """The exit status is non-zero when a required rule breaks, and the rule is named."""
    (tmp_path / "ghosts.py").write_text(textwrap.dedent(BROKEN_THR1))
    completed = subprocess.run(
        [sys.executable, "-m", "conformance", "-q", "--store", "ghosts.py:LoadsGhosts", "--conformance-rules", "THR-1"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert completed.returncode == 1
    assert "violates THR-1" in completed.stdout
    assert "load_thread('never-saved') raised KeyError('never-saved'); only StorageError" in completed.stdout
    assert "partial run: 1 of " in completed.stdout
    assert "1 failed (THR-1); no conformance verdict" in completed.stdout
