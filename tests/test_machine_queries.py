"""The query state machine, on its own, catches broken stores of the zoo and passes the reference store.

Each case runs only `test_query_machine` of the kit's suite against one store in a
pytest session of its own, at the derandomized `ci` profile, as a user would run it.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import Phase, settings

SUITE = Path(importlib.import_module("conformance.suite").__file__ or "").parent
MACHINE = "test_query_machine"

#: Broken stores this machine catches with no example test's help, and the rule each breaks.
CAUGHT = {
    "broken.queries:IdOrder": "QRY-3",
    "broken.queries:EndlessLimitZero": "QRY-5",
    "broken.queries:LastItemNextCursor": "QRY-4",
    "broken.queries:UnboundCursors": "CUR-2",
    "broken.threads:OldestFirst": "THR-5",
}


@pytest.fixture
def without_explain_phase() -> Iterator[None]:
    """Skip Hypothesis' explain phase in the in-process session, restoring the profile after.

    The kit's machine settings inherit the loaded profile; the explain phase replays the
    shrunk failure hundreds of times under tracing, which takes minutes on Python 3.11.
    """
    previous = settings.get_current_profile_name()
    settings.register_profile(
        "machine-tests",
        parent=settings.get_profile(previous),
        phases=[phase for phase in Phase if phase is not Phase.explain],
    )
    settings.load_profile("machine-tests")
    yield
    settings.load_profile(previous)


def _run_machine(pytester: pytest.Pytester, target: str) -> pytest.RunResult:
    return pytester.runpytest_inprocess(
        str(SUITE),
        "--store",
        target,
        "--capabilities",
        "all",
        "-m",
        "conformance_stateful",
        "-k",
        MACHINE,
        "--conformance-profile",
        "ci",
        "--conformance-timeout",
        "3",
        "-p",
        "no:cacheprovider",
        "-q",
    )


@pytest.mark.usefixtures("without_explain_phase")
@pytest.mark.parametrize("target", list(CAUGHT), ids=[f"{rule}-{t.split(':')[1]}" for t, rule in CAUGHT.items()])
def test_query_machine_catches_broken_store(target: str, pytester: pytest.Pytester) -> None:
    """The machine fails the broken store and prints the shrunk sequence of steps."""
    result = _run_machine(pytester, target)
    assert result.ret == pytest.ExitCode.TESTS_FAILED, f"{target} ({CAUGHT[target]}) was not caught"
    result.stdout.fnmatch_lines([f"*AssertionError*{CAUGHT[target]}*"])
    result.stdout.fnmatch_lines(["*state = QueryMachine()*"])


@pytest.mark.usefixtures("without_explain_phase")
def test_query_machine_passes_reference_store(pytester: pytest.Pytester) -> None:
    """No false alarm: the reference store passes the machine."""
    result = _run_machine(pytester, "reference_store:ReferenceStore")
    result.assert_outcomes(passed=1)
