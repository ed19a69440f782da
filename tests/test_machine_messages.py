"""The message-log state machine, on its own, catches broken stores and passes the reference store.

Each case runs only `test_message_log_machine` (`-m conformance_stateful -k ...`) in a
pytest session of its own, under the derandomized `ci` profile, against one store of
the broken zoo: the run must fail with the machine's steps and the rule the store
breaks in the output.
"""

from __future__ import annotations

import pytest
from broken import Broken, checkpoints, messages
from machine_runs import run_machine

MACHINE_TEST = "test_message_log_machine"

#: Stores of the zoo that this machine catches alone, each within seconds at the `ci` profile.
CAUGHT_STORES = (
    messages.EmptyLogAsList,
    messages.DeleteMessagesOfAnyThread,
    messages.RecordsRenumberedAfterView,
    messages.BeforeInclusive,
    messages.ViewIsRawLog,
    messages.CheckpointWithoutFold,
    checkpoints.LoadCheckpointViewVersion,
)
CAUGHT = [entry for entry in (*messages.ZOO, *checkpoints.ZOO) if entry.store in CAUGHT_STORES]


def test_every_chosen_store_is_in_the_zoo() -> None:
    """Each store named above has its entry in the zoo (so the rule it breaks is known)."""
    assert sorted(e.store.__name__ for e in CAUGHT) == sorted(s.__name__ for s in CAUGHT_STORES)


@pytest.mark.parametrize("entry", CAUGHT, ids=[f"{e.rule}-{e.store.__name__}" for e in CAUGHT])
def test_machine_catches_broken_store(entry: Broken, pytester: pytest.Pytester) -> None:
    """The machine alone fails the store, printing its shrunk steps and the rule ID broken."""
    result = run_machine(pytester, entry.target, MACHINE_TEST)
    assert result.ret == pytest.ExitCode.TESTS_FAILED, f"{entry.target} ({entry.bug}) was not caught"
    result.stdout.fnmatch_lines(["*state = MessageLogMachine()*"])
    result.stdout.fnmatch_lines([f"*AssertionError: *{entry.rule}*"])


def test_machine_passes_reference_store(pytester: pytest.Pytester) -> None:
    """The machine finds nothing wrong with the reference store (no false alarm)."""
    result = run_machine(pytester, "reference_store:ReferenceStore", MACHINE_TEST)
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    result.assert_outcomes(passed=1)
