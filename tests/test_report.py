"""The report on its own: rule statuses, the verdict line, the versions line and the JSON shape."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conformance import CAPABILITIES, RULES, RULES_VERSION, __version__
from conformance.kit._plugin import blamed_rules
from conformance.kit._report import Outcome, Report, RuleResult, TestResult


def result(outcome: Outcome, *rules: str, message: str = "", nodeid: str = "") -> TestResult:
    """A test outcome for `rules` (default THR-1)."""
    rules = rules or ("THR-1",)
    return TestResult(nodeid=nodeid or f"t::{outcome}-{'-'.join(rules)}", rules=rules, outcome=outcome, message=message)


def full_report(*extra: TestResult, capabilities: frozenset[str] = frozenset()) -> Report:
    """A report in which every rule passed once, plus `extra` outcomes."""
    report = Report(store="pkg:make", kit_version="9.8.7", rules_version="4.5")
    report.capabilities = capabilities
    for rule_id in RULES:
        report.add(result("passed", rule_id))
    for outcome in extra:
        report.add(outcome)
    return report


@pytest.mark.parametrize(
    ("outcomes", "status"),
    [
        ([], "not_run"),
        (["skipped"], "skipped"),
        (["skipped", "passed"], "passed"),
        (["passed", "xfailed"], "known_failure"),
        (["xfailed", "failed"], "failed"),
        (["passed", "xpassed"], "failed"),
        (["passed", "failed", "skipped"], "failed"),
    ],
)
def test_rule_status_takes_the_worst_outcome(outcomes: list[Outcome], status: str) -> None:
    """failed (or a known failure that passed) > known_failure > passed > skipped > not_run."""
    row = RuleResult(RULES["THR-1"], [result(outcome) for outcome in outcomes])
    assert row.status == status


def test_rule_reason_is_the_first_failure_then_skip_message() -> None:
    """A failure's message explains the rule before a skip's does; a passed rule has no reason."""
    row = RuleResult(
        RULES["THR-1"],
        [result("skipped", message="needs capability"), result("failed", message="boom"), result("passed")],
    )
    assert row.reason == "boom"
    assert RuleResult(RULES["THR-1"], [result("skipped", message="needs x")]).reason == "needs x"
    assert RuleResult(RULES["THR-1"], [result("passed")]).reason == ""


def test_rule_results_cover_every_rule_in_spec_order() -> None:
    """Every registered rule has a row, in registry order, with the tests that named it."""
    report = Report()
    report.add(result("passed", "THR-1", "MOD-2"))
    rows = report.rule_results()
    assert [row.rule.id for row in rows] == list(RULES)
    by_id = {row.rule.id: row for row in rows}
    assert len(by_id["THR-1"].tests) == len(by_id["MOD-2"].tests) == 1
    assert by_id["THR-2"].status == "not_run"


def test_verdict_when_every_rule_passes() -> None:
    """All required rules passed: the count, and every capability's declaration."""
    report = full_report(capabilities=frozenset({"thread_state"}))
    assert report.conforms()
    assert report.verdict() == (
        f"conforms to all {len(RULES)} required rules; capabilities: "
        + ", ".join(f"{name} {'yes' if name == 'thread_state' else 'not declared'}" for name in CAPABILITIES)
    )


def test_verdict_when_rules_fail() -> None:
    """Failed rules are counted and named, in SPEC order."""
    report = full_report(result("failed", "HIE-3"), result("failed", "THR-2"))
    assert not report.conforms()
    assert report.verdict().startswith(f"does NOT conform: 2 of {len(RULES)} required rules failed (THR-2, HIE-3);")


def test_verdict_with_known_failures_still_conforms() -> None:
    """Baseline rules (xfailed) do not count as conforming, nor break the run, and are named."""
    report = full_report(result("xfailed", "DEL-6", message="baseline: DEL-6: not atomic"))
    assert report.conforms()
    assert report.verdict().startswith(
        f"conforms to all {len(RULES) - 1} required rules; 1 known failures from the baseline (DEL-6);"
    )


def test_verdict_of_a_selection_says_selected() -> None:
    """When some rules did not run (--conformance-rules, -k), the verdict speaks of selected rules."""
    report = Report()
    report.add(result("passed", "THR-1"))
    report.add(result("skipped", "THR-6", message="needs capability 'thread_state' (not declared)"))
    assert report.verdict().startswith("conforms to all 1 selected required rules;")
    report.add(result("failed", "THR-2"))
    assert report.verdict().startswith("does NOT conform: 1 of 2 selected required rules failed (THR-2);")


def test_lines_list_rules_then_versions_then_verdict() -> None:
    """One line per rule that ran or was skipped (the reason for others), the versions, the verdict."""
    report = Report(kit_version="9.8.7", rules_version="4.5")
    report.add(result("passed", "THR-1"))
    report.add(result("failed", "THR-2", message="AssertionError: x\nmore detail"))
    report.add(result("skipped", "THR-6", message="needs capability 'thread_state' (not declared)"))
    lines = list(report.lines())
    assert lines[0] == f"THR-1   passed        {RULES['THR-1'].text}"
    assert lines[1] == "THR-2   failed        AssertionError: x"
    assert lines[2] == "THR-6   skipped       needs capability 'thread_state' (not declared)"
    assert lines[3] == "kit 9.8.7, rules 4.5"
    assert lines[4].startswith("verdict: does NOT conform: 1 of 2 selected required rules failed (THR-2)")
    assert len(lines) == 5


def test_version_line_names_the_installed_kit_and_rule_set() -> None:
    """The plugin's report carries `conformance.__version__` and `conformance.RULES_VERSION`."""
    assert Report(kit_version=__version__, rules_version=RULES_VERSION).version_text() == (
        f"kit {__version__}, rules {RULES_VERSION}"
    )
    assert Report().version_text() == "kit unknown, rules unknown"


def test_json_shape() -> None:
    """Schema 1: versions, store, every capability, the verdict, and every rule with its tests."""
    report = full_report(
        result("failed", "HIE-3", message="boom", nodeid="t::bad"), capabilities=frozenset({"durable"})
    )
    data = report.to_json()
    assert list(data) == [
        "schema",
        "kit_version",
        "rules_version",
        "store",
        "capabilities",
        "conforms",
        "verdict",
        "rules",
    ]
    assert data["schema"] == 1
    assert (data["kit_version"], data["rules_version"], data["store"]) == ("9.8.7", "4.5", "pkg:make")
    assert data["capabilities"] == {name: name == "durable" for name in CAPABILITIES}
    assert data["conforms"] is False
    assert data["verdict"] == report.verdict()
    assert [row["id"] for row in data["rules"]] == list(RULES)
    hie3 = next(row for row in data["rules"] if row["id"] == "HIE-3")
    assert hie3 == {
        "id": "HIE-3",
        "text": RULES["HIE-3"].text,
        "capability": None,
        "status": "failed",
        "reason": "boom",
        "tests": [
            {"nodeid": "t::passed-HIE-3", "outcome": "passed", "message": "", "duration": 0.0},
            {"nodeid": "t::bad", "outcome": "failed", "message": "boom", "duration": 0.0},
        ],
    }
    thr6 = next(row for row in data["rules"] if row["id"] == "THR-6")
    assert thr6["capability"] == "thread_state"
    json.dumps(data)


def test_write_json_creates_parents_and_leaves_no_partial_file(tmp_path: Path) -> None:
    """The JSON lands whole at the path, in folders made for it, and nothing else is left."""
    target = tmp_path / "out" / "deeper" / "report.json"
    report = full_report()
    report.write_json(target)
    assert json.loads(target.read_text(encoding="utf-8")) == report.to_json()
    assert [p.name for p in target.parent.iterdir()] == ["report.json"]


@pytest.mark.parametrize(
    ("message", "blamed"),
    [
        ("AssertionError: DEL-3: detached child is ...", ("DEL-3",)),
        ("ATO-1 (DEL-3): the refused delete changed the store", ("ATO-1", "DEL-3")),
        ("THR-2/DEL-3: append returned ...", ("THR-2", "DEL-3")),
        ("AssertionError: THR-2: load_thread('a') gives None, expected Thread(... DEL-4: ...)", ("THR-2",)),
        ("AssertionError: RUN-1: not a rule of this test", ("THR-2", "DEL-3", "ATO-1")),
        ("KeyError: 'a'", ("THR-2", "DEL-3", "ATO-1")),
        ("", ("THR-2", "DEL-3", "ATO-1")),
    ],
    ids=["one", "nested", "slash", "only-the-head", "foreign-rule", "no-rule", "empty"],
)
def test_a_failure_blames_the_rules_its_message_starts_with(message: str, blamed: tuple[str, ...]) -> None:
    """A machine's failure counts against the rules its message names first, or all its rules if none."""
    assert blamed_rules(("THR-2", "DEL-3", "ATO-1"), message) == blamed
