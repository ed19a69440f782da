"""The kit catches every store of the broken zoo, naming the rule it breaks.

Each module of `broken` is one pytest session: a `StoreContract` subclass per broken
store, the rules of the module's zoo selected, a JSON report written. For every
entry, its rule must have a failed test in that store's class, and no failed test of
that class may blame a rule outside the entry's `rule` and `also` (the rules its bug
genuinely breaks). Together with the reference, minimal and JSON-file stores passing,
this shows the kit neither misses these bugs, nor cries wolf, nor blames the wrong rule.
An entry whose store needs a server that does not answer (its `unavailable` check) is
left out of its area's session, and its tests skip with the reason.
"""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import subprocess
import sys
import textwrap
from functools import cache
from pathlib import Path
from typing import Any

import broken
import pytest
from broken import Broken

from conformance import CAPABILITIES, RULES

TESTS = Path(__file__).resolve().parent
AREAS = sorted(module.name for module in pkgutil.iter_modules(broken.__path__))
ZOO: list[tuple[str, int, Broken]] = [
    (area, index, entry)
    for area in AREAS
    for index, entry in enumerate(getattr(importlib.import_module(f"broken.{area}"), "ZOO", []))
]

SESSION_MODULE = """
    from broken.{area} import ZOO
    from conformance import StoreContract

    CAPABILITIES = {capabilities!r}

    for index, entry in enumerate(ZOO):
        if index not in CAPABILITIES:
            continue  # its store cannot run here: its tests skip
        name = f"TestBroken{{index}}"
        globals()[name] = type(
            name,
            (StoreContract,),
            {{"capabilities": CAPABILITIES[index], "store": lambda self, made=entry.store: made}},
        )
"""


def _declared(entry: Broken) -> tuple[str, ...]:
    if entry.capabilities == "all":
        return tuple(CAPABILITIES)
    if entry.capabilities == "none":
        return ()
    return tuple(name.strip() for name in entry.capabilities.split(","))


@cache
def _unavailable(entry: Broken) -> str | None:
    """Why `entry`'s store cannot run here (its `unavailable` check, made once), or None."""
    return None if entry.unavailable is None else entry.unavailable()


def _skip_unavailable(entry: Broken) -> None:
    reason = _unavailable(entry)
    if reason is not None:
        pytest.skip(f"{entry.target}: {reason}")


@cache
def _area_report(area: str, folder: Path) -> dict[str, Any]:
    """Run the kit once over every broken store of `area` that can run here; return the JSON report."""
    entries = {index: entry for name, index, entry in ZOO if name == area and _unavailable(entry) is None}
    module = folder / f"test_zoo_{area}.py"
    module.write_text(
        textwrap.dedent(SESSION_MODULE).format(
            area=area, capabilities={index: _declared(entry) for index, entry in entries.items()}
        ),
        encoding="utf-8",
    )
    report = folder / f"{area}.json"
    rules = ",".join(sorted({entry.rule for entry in entries.values()}))
    command = [
        sys.executable, "-m", "pytest", str(module), "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
        "--rootdir", str(folder), "--conformance-rules", rules, "--conformance-timeout", "3",
        "-m", "not conformance_stateful",
        "--conformance-report", str(report), "-o", "asyncio_default_fixture_loop_scope=function",
    ]  # fmt: skip
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    subprocess.run(command, cwd=folder, env=environment, capture_output=True, timeout=600, check=False)
    data: dict[str, Any] = json.loads(report.read_text(encoding="utf-8"))
    return data


@pytest.fixture(scope="session")
def zoo_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("zoo")


def test_every_rule_has_a_broken_store() -> None:
    """For every rule of the registry, at least one store in the zoo breaks it."""
    missing = sorted(set(RULES) - {entry.rule for _, _, entry in ZOO})
    assert missing == []


@pytest.mark.parametrize(
    ("area", "index", "entry"),
    [pytest.param(*case, marks=pytest.mark.xdist_group(case[0])) for case in ZOO],
    ids=[f"{entry.rule}-{entry.store.__name__}" for _, _, entry in ZOO],
)
def test_kit_names_the_broken_rule(area: str, index: int, entry: Broken, zoo_folder: Path) -> None:
    """The broken store's class has a failed test that blames its rule in the report."""
    _skip_unavailable(entry)
    report = _area_report(area, zoo_folder)
    row = next(row for row in report["rules"] if row["id"] == entry.rule)
    tests = [test for test in row["tests"] if f"::TestBroken{index}::" in test["nodeid"]]
    assert tests, f"no test of {entry.rule} ran against {entry.target}"
    # A new rule still in its warning release fails no test: its failures are xfailed, and blamed all the same.
    failed = ("failed", "xfailed") if RULES[entry.rule].warning else ("failed",)
    blamed = [test for test in tests if test["outcome"] in failed and entry.rule in test["blamed"]]
    assert blamed, f"{entry.target} ({entry.bug}) broke no test of {entry.rule}"


@pytest.mark.parametrize(
    ("area", "index", "entry"),
    [pytest.param(*case, marks=pytest.mark.xdist_group(case[0])) for case in ZOO],
    ids=[f"{entry.rule}-{entry.store.__name__}" for _, _, entry in ZOO],
)
def test_kit_blames_no_rule_the_bug_keeps(area: str, index: int, entry: Broken, zoo_folder: Path) -> None:
    """No failed test of the broken store's class blames a rule outside its `rule` and `also`."""
    _skip_unavailable(entry)
    report = _area_report(area, zoo_folder)
    allowed = {entry.rule, *entry.also}
    wrongly = sorted(
        {
            f"{rule_id} by {test['nodeid'].rpartition('::')[2]}"
            for row in report["rules"]
            for test in row["tests"]
            if f"::TestBroken{index}::" in test["nodeid"] and test["outcome"] == "failed"
            for rule_id in test["blamed"]
            if rule_id not in allowed
        }
    )
    assert wrongly == [], f"{entry.target} ({entry.bug}) is blamed for rules its bug keeps: {wrongly}"


def test_also_names_other_known_rules() -> None:
    """An entry's `also` names registered rules other than its own, each once."""
    for _, _, entry in ZOO:
        assert entry.rule not in entry.also, entry.target
        assert len(set(entry.also)) == len(entry.also), entry.target
        assert set(entry.also) <= set(RULES), entry.target
