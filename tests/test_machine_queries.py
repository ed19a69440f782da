"""The query state machine, on its own, catches broken stores of the zoo and passes the reference store.

Each case runs only `test_query_machine` of the kit's suite against one store in a
pytest session of its own, at the derandomized `ci` profile, as a user would run it.
"""

from __future__ import annotations

import pytest
from machine_runs import run_machine

MACHINE = "test_query_machine"

#: Broken stores this machine catches with no example test's help, and the rule each breaks.
CAUGHT = {
    "broken.queries:IdOrder": "QRY-3",
    "broken.queries:EndlessLimitZero": "QRY-5",
    "broken.threads:OldestFirst": "THR-5",
}


@pytest.mark.parametrize("target", list(CAUGHT), ids=[f"{rule}-{t.split(':')[1]}" for t, rule in CAUGHT.items()])
def test_query_machine_catches_broken_store(target: str, pytester: pytest.Pytester) -> None:
    """The machine fails the broken store and prints the shrunk sequence of steps."""
    result = run_machine(pytester, target, MACHINE)
    assert result.ret == pytest.ExitCode.TESTS_FAILED, f"{target} ({CAUGHT[target]}) was not caught"
    result.stdout.fnmatch_lines([f"*AssertionError*{CAUGHT[target]}*"])
    result.stdout.fnmatch_lines(["*state = QueryMachine()*"])


def test_query_machine_passes_reference_store(pytester: pytest.Pytester) -> None:
    """No false alarm: the reference store passes the machine."""
    result = run_machine(pytester, "reference_store:ReferenceStore", MACHINE)
    result.assert_outcomes(passed=1)
