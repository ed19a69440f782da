"""The kit over the wire, as a user runs it: `--store-command` sessions and whole-kit runs.

The plugin tests are `pytester` sessions in process. The whole-kit runs are one
`python -m conformance` subprocess each (tens of seconds), with the derandomized `ci`
profile: the reference store served by `python -m conformance serve` must conform
with all its capabilities (the protocol loses nothing), and so must the Node.js
example (`examples/node/store.mjs`), when Node is installed.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conformance.kit._scenarios import run, user
from reference_store import ReferenceStore

ROOT = Path(__file__).resolve().parent.parent
FAKE = Path(__file__).resolve().with_name("wire_fake_store.py")
NODE_STORE = ROOT / "examples" / "node" / "store.mjs"

PASSING_MODULE = "def test_own():\n    assert True\n"


@pytest.fixture
def node() -> str:
    """The `node` program; without it the test skips, except where CI requires it (CONFORMANCE_REQUIRE_NODE=1)."""
    found = shutil.which("node")
    if found is None:
        if os.environ.get("CONFORMANCE_REQUIRE_NODE") == "1":
            pytest.fail("CONFORMANCE_REQUIRE_NODE=1 but `node` is not on PATH: install Node.js 18+", pytrace=False)
        pytest.skip("node is not installed (.ci/run installs Node.js 20)")
    return found


def fake_command(mode: str) -> str:
    """The `--store-command` of the fake store process in `mode` (see wire_fake_store.py)."""
    return shlex.join([sys.executable, str(FAKE), mode])


#: pytest-asyncio warns (an error here) when its loop scope is unset.
QUIET = ("-p", "no:cacheprovider", "-o", "asyncio_default_fixture_loop_scope=function")


def run_in_process(pytester: pytest.Pytester, *arguments: str) -> pytest.RunResult:
    """A kit session on the packaged suite, in this process."""
    return pytester.runpytest_inprocess(*QUIET, "--pyargs", "conformance.suite", *arguments)


def test_store_and_store_command_together_are_refused(pytester: pytest.Pytester) -> None:
    """Two stores to test is a usage error naming both options."""
    pytester.makepyfile(PASSING_MODULE)
    result = pytester.runpytest_inprocess(*QUIET, "--store", "reference_store:ReferenceStore", "--store-command", "x")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--store and --store-command both name the store to test" in result.stderr.str()


def test_an_empty_store_command_is_refused(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(PASSING_MODULE)
    result = pytester.runpytest_inprocess(*QUIET, "--store-command", " ")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "needs a command to run" in result.stderr.str()


def test_a_store_process_that_never_answers_times_out_each_test(pytester: pytest.Pytester) -> None:
    """A silent process fails its tests by the kit's timeout, promptly, with what it wrote on stderr in the report."""
    result = run_in_process(
        pytester,
        "--store-command",
        fake_command("silent"),
        "--conformance-rules",
        "THR-1",
        "--conformance-timeout",
        "1",
    )
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) >= 1
    assert "passed" not in outcomes
    output = result.stdout.str()
    assert "load_thread('never-saved') did not return within 1 s" in output
    assert "[store] got load_thread" in output


def test_a_store_process_that_crashes_fails_with_its_last_words(pytester: pytest.Pytester) -> None:
    """A crash is StoreProcessExited in the failing test, quoting the process's last line on stderr."""
    result = run_in_process(pytester, "--store-command", fake_command("exit"), "--conformance-rules", "THR-1")
    assert result.parseoutcomes().get("failed", 0) >= 1
    output = result.stdout.str()
    assert "StoreProcessExited" in output
    assert "fake store: crashed in load_thread" in output


def test_a_store_process_that_requires_a_question_mark_param_does_not_conform(pytester: pytest.Pytester) -> None:
    """The kit leaves out `expected_version` when it is None: a store that answers -32602 then fails CKP-3."""
    result = run_in_process(
        pytester, "--store-command", fake_command("requires-expected-version"), "--conformance-rules", "CKP-3"
    )
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) >= 1
    assert outcomes.get("passed", 0) >= 1  # the calls that give expected_version pass: only the omission fails
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    output = result.stdout.str()
    assert "FAILED test_conformance.py::TestConformance::test_no_expected_version_appends_unconditionally" in output
    assert "checkpoint_append: missing param 'expected_version'" in output
    assert re.search(r"^CKP-3 +failed", output, re.MULTILINE), output


def run_kit(tmp_path: Path, command: str, *arguments: str) -> tuple[subprocess.CompletedProcess[str], dict[str, str]]:
    """`python -m conformance --store-command COMMAND` from the repository root; its result and rule statuses."""
    report = tmp_path / "report.json"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "conformance",
            "--store-command",
            command,
            "--conformance-profile",
            "ci",
            "--conformance-report",
            str(report),
            "-q",
            "-p",
            "no:randomly",
            *arguments,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    statuses = {row["id"]: row["status"] for row in json.loads(report.read_text())["rules"]} if report.exists() else {}
    return result, statuses


def _verdict(result: subprocess.CompletedProcess[str]) -> str:
    return next((line for line in result.stdout.splitlines() if line.startswith("verdict:")), result.stdout[-3000:])


def test_the_reference_store_served_over_the_wire_conforms(tmp_path: Path) -> None:
    """The round trip: the reference store behind `serve` keeps every rule of all its capabilities."""
    served = shlex.join([sys.executable, "-m", "conformance", "serve", "--store", "reference_store:ReferenceStore"])
    result, statuses = run_kit(tmp_path, served)
    assert result.returncode == 0, _verdict(result)
    assert _verdict(result).startswith("verdict: conforms to all")
    skipped = {rule for rule, status in statuses.items() if status != "passed"}
    assert skipped == {"DUR-1", "DUR-2"}, statuses  # the reference store keeps nothing: not durable
    assert "durable" not in ReferenceStore.capabilities


def test_the_node_store_conforms(tmp_path: Path, node: str) -> None:
    """`examples/node/store.mjs` conforms with the capabilities it declares (all but durable)."""
    result, statuses = run_kit(tmp_path, shlex.join([node, str(NODE_STORE)]))
    assert result.returncode == 0, _verdict(result)
    assert "thread_state yes, atomic_delete yes, concurrent_writers yes, cancel_safe yes" in _verdict(result)
    assert {rule for rule, status in statuses.items() if status != "passed"} == {"DUR-1", "DUR-2"}


def test_the_node_store_takes_a_question_mark_param_left_out_or_null(node: str) -> None:
    """`expected_version` and `parent_thread_id` left out or null are absent; a required param left out is -32602."""
    record, messages = run("r1", "t").to_json(), [user("m1").to_json()]
    calls: list[tuple[str, dict[str, object]]] = [
        ("initialize", {"protocol_version": "1.0", "client": "test"}),
        ("open", {"location": None}),
        ("checkpoint_append", {"thread_id": "t", "messages": messages, "run": record}),
        ("checkpoint_append", {"thread_id": "t", "messages": [], "expected_version": None, "run": record}),
        ("validate_thread_hierarchy", {"thread_id": "t"}),
        ("validate_thread_hierarchy", {"thread_id": "t", "parent_thread_id": None}),
        ("checkpoint_append", {"thread_id": "t", "messages": []}),
        ("delete_thread_with_strategy", {"thread_id": "t"}),
        ("shutdown", {}),
    ]
    lines = "".join(
        json.dumps({"jsonrpc": "2.0", "id": number, "method": method, "params": params}) + "\n"
        for number, (method, params) in enumerate(calls)
    )
    result = subprocess.run(
        [node, str(NODE_STORE)], input=lines, capture_output=True, text=True, check=False, timeout=60
    )
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    assert [answer.get("result") for answer in answers[2:6]] == [1, 1, None, None], answers
    assert [answer["error"] for answer in answers[6:8]] == [
        {"code": -32602, "message": "checkpoint_append: missing param 'run'"},
        {"code": -32602, "message": "delete_thread_with_strategy: missing param 'strategy'"},
    ]


@pytest.mark.parametrize("process", ["node", "served"])
def test_a_present_param_of_the_wrong_shape_is_validation_not_invalid_params(node: str, process: str) -> None:
    """`thread_id: null` or `5`, and `strategy: "bogus"` or `null`, do not parse: a Validation error, not -32602."""
    command = [node, str(NODE_STORE)] if process == "node" else [sys.executable, "-m", "conformance", "serve"]
    calls: list[tuple[str, dict[str, object]]] = [
        ("initialize", {"protocol_version": "1.0", "client": "test"}),
        ("open", {"location": None}),
        ("load_thread", {"thread_id": None}),
        ("load_thread", {"thread_id": 5}),
        ("delete_thread_with_strategy", {"thread_id": "t", "strategy": "bogus"}),
        ("delete_thread_with_strategy", {"thread_id": "t", "strategy": None}),
        ("shutdown", {}),
    ]
    lines = "".join(
        json.dumps({"jsonrpc": "2.0", "id": number, "method": method, "params": params}) + "\n"
        for number, (method, params) in enumerate(calls)
    )
    result = subprocess.run(command, input=lines, capture_output=True, text=True, check=False, timeout=60)
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    kinds = [(answer["error"]["code"], answer["error"].get("data", {}).get("kind")) for answer in answers[2:6]]
    assert kinds == [(-32000, "Validation")] * 4, answers


def test_the_node_store_keeps_the_durable_rules_with_a_file(tmp_path: Path, node: str) -> None:
    """With `--durable` the Node store keeps one JSON file per location: reopened and shared, it is one store."""
    result, statuses = run_kit(tmp_path, shlex.join([node, str(NODE_STORE), "--durable"]), "--conformance-rules", "DUR")
    assert result.returncode == 0, _verdict(result)
    assert statuses["DUR-1"] == statuses["DUR-2"] == "passed"
