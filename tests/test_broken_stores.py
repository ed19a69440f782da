"""The kit catches every store of the broken zoo, naming the rule it breaks.

Each entry of `broken.*.ZOO` runs the kit's tests of its rule against its store in
a pytest session of its own; the rule must come out `failed` in the JSON report and
the failure must say "violates <RULE>". Together with the reference and minimal
stores passing, this shows the kit neither misses these bugs nor cries wolf.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
from pathlib import Path

import broken
import pytest
from broken import Broken

from conformance import RULES

SUITE = Path(importlib.import_module("conformance.suite").__file__ or "").parent


def _zoo() -> list[Broken]:
    found: list[Broken] = []
    for module in pkgutil.iter_modules(broken.__path__):
        found += getattr(importlib.import_module(f"broken.{module.name}"), "ZOO", [])
    return found


ZOO = _zoo()


def test_every_rule_has_a_broken_store() -> None:
    """For every rule of the registry, at least one store in the zoo breaks it."""
    missing = sorted(set(RULES) - {entry.rule for entry in ZOO})
    assert missing == []


@pytest.mark.parametrize("entry", ZOO, ids=[f"{e.rule}-{e.store.__name__}" for e in ZOO])
def test_kit_names_the_broken_rule(entry: Broken, pytester: pytest.Pytester) -> None:
    """Run the rule's tests against the broken store: the rule fails, and the failure names it."""
    report = pytester.path / "report.json"
    result = pytester.runpytest_inprocess(
        str(SUITE),
        "--store",
        entry.target,
        "--capabilities",
        entry.capabilities,
        "--conformance-rules",
        entry.rule,
        "--conformance-report",
        str(report),
        "--conformance-timeout",
        "3",
        "-p",
        "no:cacheprovider",
        "-q",
    )
    statuses = {row["id"]: row["status"] for row in json.loads(report.read_text())["rules"]}
    assert statuses[entry.rule] == "failed", f"{entry.target} ({entry.bug}) was not caught"
    result.stdout.fnmatch_lines([f"*violates {entry.rule}:*"])
    assert result.ret == pytest.ExitCode.TESTS_FAILED
