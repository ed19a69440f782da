"""Each state machine, on its own, catches broken stores of the zoo and passes the reference store.

Each case runs only one machine test of the kit's suite (`-m conformance_stateful -k
...`) against one store in a pytest session of its own, at the derandomized `ci`
profile, as a user would run it: the run must fail with the machine's shrunk steps and
the rule the store breaks in its assertion.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
import re
from pathlib import Path

import broken
import pytest
from broken import Broken, checkpoints, concurrency, deletes, hierarchy, messages, queries, runs, threads
from machine_runs import run_machine

from conformance import StoreContract

RULE_ID = re.compile(r"[A-Z]{2,4}-\d+")

#: Per machine test: its state class, and the zoo stores it catches with no example test's help.
MACHINES: dict[str, tuple[str, tuple[type, ...]]] = {
    "test_hierarchy_machine": (
        "HierarchyMachine",
        (hierarchy.ChildSummariesOnly, deletes.DetachRebuildsMetadata, deletes.CascadeDeletesWhileWalking),
    ),
    "test_query_machine": ("QueryMachine", (queries.IdOrder, queries.EndlessLimitZero, threads.OldestFirst)),
    "test_message_log_machine": (
        "MessageLogMachine",
        (
            messages.EmptyLogAsList,
            messages.DeleteMessagesOfAnyThread,
            messages.RecordsRenumberedAfterView,
            messages.RecordsStampedWithCreatedAt,
            messages.BeforeInclusive,
            messages.ViewIsRawLog,
            messages.CheckpointWithoutFold,
            messages.LaterTwinSummaryWins,
            messages.OverlappedSummaryDropped,
            messages.EmptyToolCallsOnAnyRole,
            messages.EmptyCallIdOnAnyRole,
            messages.EmptyCallListKeptInView,
            checkpoints.LoadCheckpointViewVersion,
        ),
    ),
    "test_run_machine": (
        "RunMachine",
        (
            runs.CreateRunOverwrites,
            runs.CreateRunUnvalidated,
            runs.LoadRunDropsActivation,
            runs.LatestRunByCreatedAt,
            runs.ListRunsHasMoreAtLastPage,
            checkpoints.CheckpointResetsCreatedAt,
            checkpoints.ProjectionIgnoresAge,
        ),
    ),
    "test_concurrency_machine": (
        "ConcurrencyMachine",
        (
            concurrency.VersionCheckedBeforeAwait,
            concurrency.ColdPoolVersionWithoutWatch,
            concurrency.ReadThenSaveMessages,
            concurrency.CheckThenSaveThread,
        ),
    ),
}

ZOO: dict[type, Broken] = {
    entry.store: entry
    for area in pkgutil.iter_modules(broken.__path__)
    for entry in importlib.import_module(f"broken.{area.name}").ZOO
}
CASES = [(machine, ZOO[store]) for machine, (_, stores) in MACHINES.items() for store in stores if store in ZOO]


def test_every_chosen_store_is_in_the_zoo() -> None:
    """Each store named above has its zoo entry, so the rule it breaks is known."""
    chosen = [store for _, stores in MACHINES.values() for store in stores]
    assert [store.__name__ for store in chosen if store not in ZOO] == []


@pytest.mark.parametrize(
    ("machine", "entry"), CASES, ids=[f"{m.removeprefix('test_')}-{e.rule}-{e.store.__name__}" for m, e in CASES]
)
def test_machine_catches_broken_store(machine: str, entry: Broken, pytester: pytest.Pytester) -> None:
    """The machine alone fails the store, printing its shrunk steps and the rule ID broken."""
    result = run_machine(pytester, entry.target, machine)
    assert result.ret == pytest.ExitCode.TESTS_FAILED, f"{entry.target} ({entry.bug}) was not caught"
    result.stdout.fnmatch_lines([f"*state = {MACHINES[machine][0]}()*"])
    result.stdout.fnmatch_lines([f"*RuleViolation: *{entry.rule}*"])


@pytest.mark.parametrize("machine", list(MACHINES))
def test_machine_passes_reference_store(machine: str, pytester: pytest.Pytester) -> None:
    """The machine finds nothing wrong with the reference store (no false alarm)."""
    result = run_machine(pytester, "reference_store:ReferenceStore", machine)
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    result.assert_outcomes(passed=1)


MACHINE_MODULES = ["concurrency", "hierarchy", "messages", "queries", "runs"]


@pytest.mark.parametrize("module", MACHINE_MODULES)
def test_a_machine_is_tagged_with_every_rule_its_checks_name(module: str) -> None:
    """Every rule ID a machine's module names (in its checks) is among the tags of its contract test.

    Except the rules it stands on (`STANDS_ON`, raised as `BrokenCall`, which blames them untagged).
    """
    loaded = importlib.import_module(f"conformance.kit._machines.{module}")
    source = Path(loaded.__file__ or "")
    tree = ast.parse(source.read_text(encoding="utf-8"))
    named = {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and RULE_ID.fullmatch(node.value)
    }
    tests = [name for name in dir(StoreContract) if name.startswith("test") and name.endswith("_machine")]
    owner = next(
        getattr(StoreContract, name)
        for name in tests
        if getattr(StoreContract, name).__conformance_machine__.__module__.endswith(f"._machines.{module}")
    )
    tags = {rule_id for mark in owner.pytestmark if mark.name == "rule" for rule_id in mark.args}
    assert named - tags - set(getattr(loaded, "STANDS_ON", ())) == set()
