"""The report on its own: rule statuses, completeness, the verdict line, the JSON shape, and blame."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conformance import CAPABILITIES, RULES, RULES_VERSION, __version__
from conformance.kit._report import Outcome, Report, TestResult
from conformance.kit._violation import BrokenCall, RuleViolation, blamed_rules

EVERY = frozenset(CAPABILITIES)
#: The rules a store declaring every capability must keep: all but new rules still in their warning release.
REQUIRED = sum(not rule.warning for rule in RULES.values())


def result(
    outcome: Outcome, *rules: str, message: str = "", nodeid: str = "", blamed: tuple[str, ...] = ()
) -> TestResult:
    """A test outcome for `rules` (default THR-1); a failure blames all its rules unless `blamed` says."""
    rules = rules or ("THR-1",)
    failing = outcome in ("failed", "xfailed")
    return TestResult(
        nodeid=nodeid or f"t::C::test_{outcome}_{'_'.join(rules)}",
        rules=rules,
        outcome=outcome,
        message=message,
        blamed=(blamed or rules) if failing else (),
        capability_skip=outcome == "skipped" and "capability" in message,
    )


def full_report(
    *extra: TestResult, capabilities: frozenset[str] = EVERY, baseline: dict[str, str] | None = None
) -> Report:
    """A complete run in which every rule passed once, plus `extra` outcomes."""
    report = Report(store="pkg:make", kit_version="9.8.7", rules_version="4.5", baseline=baseline)
    report.capabilities = capabilities
    for rule_id in RULES:
        report.add(result("passed", rule_id))
    for outcome in extra:
        report.add(outcome)
    return report


def status(report: Report, rule_id: str) -> str:
    return next(row.status for row in report.rule_results() if row.rule.id == rule_id)


def test_a_complete_passing_run_conforms() -> None:
    """All required rules checked and passed: complete, conforming, every capability named."""
    report = full_report(capabilities=frozenset({"thread_state"}))
    required = sum(rule.capability in (None, "thread_state") and not rule.warning for rule in RULES.values())
    assert (report.complete(), report.conforms()) == (True, True)
    assert report.counts() == {"required": required, "checked": required, "failed": 0, "known_failures": 0}
    assert report.verdict() == (
        f"conforms to all {required} required rules; capabilities: "
        + ", ".join(f"{name} {'yes' if name == 'thread_state' else 'not declared'}" for name in CAPABILITIES)
    )
    assert status(report, "DUR-1") == "skipped"


def test_failed_rules_are_counted_and_named_in_spec_order() -> None:
    """A complete run with failures does not conform and names them in SPEC order."""
    report = full_report(result("failed", "HIE-3"), result("failed", "THR-2"))
    assert (report.complete(), report.conforms()) == (True, False)
    assert report.verdict().startswith(f"does NOT conform: 2 of {REQUIRED} required rules failed (THR-2, HIE-3);")


def test_a_failure_counts_only_against_the_rules_it_blames() -> None:
    """A test of THR-2 and MOD-1 that fails on THR-2 does not fail MOD-1, nor claims it checked:
    MOD-1 is not checked past THR-2's failure (the test stopped there), and the verdict says so."""
    report = full_report(result("failed", "THR-2", "MOD-1", blamed=("THR-2",)))
    assert (status(report, "THR-2"), status(report, "MOD-1")) == ("failed", "incomplete")
    assert report.blocked() == ["MOD-1"]
    assert report.complete()
    assert "does NOT conform: 1 of" in report.verdict()
    assert "1 more not checked past those failures (MOD-1)" in report.verdict()


def test_a_rule_with_a_planned_test_that_did_not_run_is_incomplete() -> None:
    """A planned test with no outcome (cut off by -x or Ctrl-C) leaves its rule unchecked: the run is partial."""
    report = full_report()
    report.plan("t::C::test_never_ran", ("THR-3",))
    assert status(report, "THR-3") == "incomplete"
    assert not report.complete()
    assert report.partial_reasons() == ["1 required rules not checked"]
    assert report.verdict().startswith(
        f"partial run: {REQUIRED - 1} of {REQUIRED} required rules checked, 0 failed; no conformance verdict ("
    )


def test_a_rule_is_checked_only_when_every_test_of_it_in_the_kit_was_planned() -> None:
    """A rule tagged on one selected test, while the kit has others for it, is not checked by that one."""
    report = full_report()
    report.expected = {"THR-2": {"test_passed_THR-2", "test_thr2_elsewhere"}}
    assert status(report, "THR-2") == "incomplete"


def test_a_skip_for_a_capability_counts_as_run_and_any_other_skip_does_not() -> None:
    """A test skipped because the store lacks a capability does not apply; one skipped otherwise did not run."""
    report = full_report(result("skipped", "THR-4", message="needs capability 'durable' (not declared)"))
    assert status(report, "THR-4") == "passed"
    report.add(result("skipped", "THR-5", message="no PostgreSQL server"))
    assert status(report, "THR-5") == "incomplete"


def test_narrowed_stopped_or_set_up_runs_give_no_verdict() -> None:
    """A narrowed or stopped run is partial, says why, and never conforms; a set-up failure says only that."""
    narrowed = full_report()
    narrowed.narrow("narrowed by -k 'x'")
    narrowed.stop("interrupted")
    assert narrowed.partial_reasons() == ["narrowed by -k 'x'", "interrupted"]
    assert "; no conformance verdict (narrowed by -k 'x'; interrupted); " in narrowed.verdict()
    assert (narrowed.complete(), narrowed.conforms()) == (False, False)
    broken = Report()
    broken.setup_error = "Store does not implement load_thread"
    assert broken.verdict() == "set-up failed: Store does not implement load_thread; no conformance verdict"
    assert list(broken.lines()) == ["kit unknown, rules unknown", f"verdict: {broken.verdict()}"]
    assert not broken.conforms()


def test_baseline_rules_fail_as_known_failures_and_stale_ones_are_named() -> None:
    """A baselined rule whose tests partly fail is the known failure; one that passes all is stale."""
    baseline = {"DEL-6": "not atomic", "THR-1": "flaky"}
    report = full_report(result("xfailed", "DEL-6", message="baseline: DEL-6: not atomic"), baseline=baseline)
    assert (status(report, "DEL-6"), status(report, "THR-1")) == ("known_failure", "passed")
    assert report.conforms()
    assert report.stale_baseline() == ["THR-1"]
    assert report.verdict().startswith(
        f"conforms to all {REQUIRED - 1} required rules; 1 known failures from the baseline (DEL-6); "
        "stale baseline entries, passing every test: THR-1 (remove them);"
    )


def test_a_new_rule_in_its_warning_release_is_reported_but_fails_no_verdict() -> None:
    """ISO-2 (a warning in rule set 3.0) broken: the run still conforms, and the verdict and JSON name the warning."""
    warned = next(rule_id for rule_id, rule in RULES.items() if rule.warning)
    report = full_report(result("xfailed", warned, message="shared", nodeid="t::C::warned"))
    assert status(report, warned) == "warning"
    assert (report.complete(), report.conforms(), report.counts()["failed"]) == (True, True, 0)
    assert f"; 1 warning: new rule not yet required ({warned});" in report.verdict()
    assert report.to_json()["warnings"] == [warned]
    assert f"{warned:<7} warning       shared" in list(report.lines())
    assert report.counts()["required"] == REQUIRED


def test_lines_list_rules_then_versions_then_verdict() -> None:
    """One line per rule the run touched (the reason for those that did not pass), the versions, the verdict."""
    report = Report(kit_version="9.8.7", rules_version="4.5")
    report.capabilities = frozenset()
    report.add(result("passed", "THR-1"))
    report.add(result("failed", "THR-2", message="AssertionError: x\nmore detail"))
    report.add(result("failed", "THR-3", message="RuleViolation: " + "y" * 400))
    lines = list(report.lines())
    assert lines[0] == f"THR-1   passed        {RULES['THR-1'].text}"
    assert lines[1] == "THR-2   failed        AssertionError: x"
    assert lines[2] == "THR-3   failed        RuleViolation: " + "y" * (150 - 3 - len("RuleViolation: ")) + "..."
    assert lines[3] == "THR-6   skipped       needs capability 'thread_state' (not declared)"
    assert lines[-2] == "kit 9.8.7, rules 4.5"
    assert lines[-1].startswith("verdict: partial run: 3 of ")


def test_version_line_names_the_installed_kit_and_rule_set() -> None:
    """The plugin's report carries `conformance.__version__` and `conformance.RULES_VERSION`."""
    assert Report(kit_version=__version__, rules_version=RULES_VERSION).version_text() == (
        f"kit {__version__}, rules {RULES_VERSION}"
    )
    assert Report().version_text() == "kit unknown, rules unknown"


def test_json_shape() -> None:
    """Schema 3: versions, store, capabilities, completeness, verdict, counts, baseline, stores, every rule and test."""
    report = full_report(
        result("failed", "HIE-3", message="boom", nodeid="t::C::bad"), capabilities=frozenset({"durable"})
    )
    data = report.to_json()
    assert list(data) == [
        "schema",
        "kit_version",
        "rules_version",
        "store",
        "capabilities",
        "complete",
        "conforms",
        "verdict",
        "partial_reasons",
        "setup_error",
        "counts",
        "known_failures",
        "stale_baseline",
        "blocked",
        "warnings",
        "lifecycle_failures",
        "store_calls",
        "event_loops",
        "loops_left_out",
        "stores",
        "rules",
    ]
    assert data["schema"] == 3
    assert data["stores"] == []  # one store: the report is its report
    assert data["lifecycle_failures"] == []
    assert (data["kit_version"], data["rules_version"], data["store"]) == ("9.8.7", "4.5", "pkg:make")
    assert data["capabilities"] == {name: name == "durable" for name in CAPABILITIES}
    assert (data["complete"], data["conforms"], data["partial_reasons"], data["setup_error"]) == (True, False, [], None)
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
            {"nodeid": "t::C::test_passed_HIE-3", "outcome": "passed", "blamed": [], "message": "", "duration": 0.0},
            {"nodeid": "t::C::bad", "outcome": "failed", "blamed": ["HIE-3"], "message": "boom", "duration": 0.0},
        ],
    }
    json.dumps(data)


def test_unknown_capabilities_are_null_in_json() -> None:
    """Before any test ran the capabilities are unknown: null, and the run is partial."""
    data = Report().to_json()
    assert data["capabilities"] is None
    assert "no test ran, so the store's capabilities are unknown" in data["partial_reasons"]


def test_write_json_creates_parents_and_leaves_no_partial_file(tmp_path: Path) -> None:
    """The JSON lands whole at the path, in folders made for it, and nothing else is left."""
    target = tmp_path / "out" / "deeper" / "report.json"
    report = full_report()
    report.write_json(target)
    assert json.loads(target.read_text(encoding="utf-8")) == report.to_json()
    assert [p.name for p in target.parent.iterdir()] == ["report.json"]


TAGS = ("THR-2", "DEL-3", "ATO-1")


@pytest.mark.parametrize(
    ("error", "blamed"),
    [
        (RuleViolation("DEL-3", "detached child is ..."), ("DEL-3",)),
        (RuleViolation(("ATO-1", "DEL-3"), "the refused delete changed the store"), ("DEL-3", "ATO-1")),
        (RuleViolation("RUN-1", "not a rule of this test"), TAGS),
        (RuleViolation((), "list_runs returned list, expected RunPage"), TAGS),
        (AssertionError("DEL-3: a plain assert's message is not read"), TAGS),
        (KeyError("a"), TAGS),
        (None, TAGS),
        (ExceptionGroup("two", [RuleViolation("DEL-3", "x"), RuleViolation("THR-2", "y")]), ("THR-2", "DEL-3")),
        (ExceptionGroup("mixed", [RuleViolation("DEL-3", "x"), KeyError("a")]), TAGS),
        (BrokenCall("THR-1", "load_thread('a') raised NotFoundError"), ("THR-1",)),
        (BrokenCall("DEL-3", "a broken call of a tagged rule"), ("DEL-3",)),
        (ExceptionGroup("call", [BrokenCall("MOD-6", "x"), RuleViolation("DEL-3", "y")]), ("DEL-3", "MOD-6")),
        (ExceptionGroup("call-plain", [BrokenCall("MOD-6", "x"), KeyError("a")]), (*TAGS, "MOD-6")),
    ],
    ids=[
        *("one", "two", "foreign", "unnamed", "plain-assert", "error", "none", "group", "group-with-plain"),
        *("broken-call", "broken-call-tagged", "group-with-call", "group-with-call-and-plain"),
    ],
)
def test_a_failure_blames_the_rules_its_violation_carries(error: BaseException | None, blamed: tuple[str, ...]) -> None:
    """Blame is data: a violation's own rules (its group's union), else every rule the test is tagged with;
    a broken store call blames its own rule, tagged or not, and not the test's."""
    assert blamed_rules(TAGS, error) == blamed


def test_a_broken_call_fails_its_own_rule_and_leaves_the_tests_rule_unproven() -> None:
    """A QRY-2 test whose arranging save_thread broke MOD-6 fails MOD-6; QRY-2 is not passed, nor failed."""
    report = full_report(result("failed", "QRY-2", message="BrokenCall: MOD-6: ...", blamed=("MOD-6",)))
    statuses = {row.rule.id: row.status for row in report.rule_results()}
    assert statuses["MOD-6"] == "failed"
    assert statuses["QRY-2"] == "incomplete"
    assert [r for r, status in statuses.items() if status not in ("passed", "skipped")] == ["MOD-6", "QRY-2"]
    # The run itself was complete: the store does not conform, and QRY-2 is named as not checked past it.
    assert (report.complete(), report.conforms(), report.blocked()) == (True, False, ["QRY-2"])
    assert report.verdict().startswith(
        f"does NOT conform: 1 of {REQUIRED} required rules failed (MOD-6); "
        "1 more not checked past those failures (QRY-2); "
    )
    # A rule whose other tests did not run at all stays a reason for a partial run.
    report.plan("t::C::test_never_ran", ("QRY-2",))
    assert report.blocked() == []
    assert not report.complete()


def two_stores(*extra: TestResult) -> Report:
    """Two stores, `a.py::TestA` (every capability) and `a.py::TestB` (none), each passing every rule once."""
    report = Report(store=None, kit_version="9.8.7", rules_version="4.5")
    for store, capabilities in (("a.py::TestA", EVERY), ("a.py::TestB", frozenset())):
        report.capabilities = report.store_capabilities[store] = capabilities
        for rule_id in RULES:
            report.add(result("passed", rule_id, nodeid=f"{store}::test_{rule_id}"))
    for outcome in extra:
        report.add(outcome)
    return report


def test_a_session_of_several_stores_judges_each_store_on_its_own() -> None:
    """Each store keeps its capabilities and failures; the session conforms only if every store does."""
    report = two_stores(result("failed", "DUR-1", nodeid="a.py::TestA::test_durable"))
    assert report.stores() == ["a.py::TestA", "a.py::TestB"]
    first, second = report.for_store("a.py::TestA"), report.for_store("a.py::TestB")
    assert (first.conforms(), status(first, "DUR-1")) == (False, "failed")
    assert (second.conforms(), status(second, "DUR-1")) == (True, "skipped")
    assert (report.complete(), report.conforms()) == (True, False)
    assert report.verdict() == "does NOT conform: 1 of 2 stores fail (TestA)"
    assert report.counts()["required"] == first.counts()["required"] + second.counts()["required"]
    stores = report.to_json()["stores"]
    assert [(row["store"], row["conforms"], row["failed"]) for row in stores] == [
        ("a.py::TestA", False, ["DUR-1"]),
        ("a.py::TestB", True, []),
    ]
    assert report.to_json()["capabilities"] is None  # each store has its own, in `stores`
    # A rule blocked in one store is judged with that store's capabilities, not the last store's:
    # DUR-1 applies to TestA (every capability), not to TestB (none).
    blocked = two_stores(result("failed", "DUR-1", nodeid="a.py::TestA::test_x", blamed=("THR-1",)))
    blocked.add(result("failed", "DUR-2", nodeid="a.py::TestB::test_y", blamed=("THR-1",)))
    assert blocked.blocked() == ["DUR-1"]
    assert blocked.to_json()["blocked"] == ["DUR-1"]
    lines = list(report.lines())
    assert lines.index("── store TestA (a.py::TestA)") < lines.index("── store TestB (a.py::TestB)")
    assert any(line.startswith("TestA verdict: does NOT conform: 1 of ") for line in lines)
    assert lines[-1] == f"verdict: {report.verdict()}"


def test_a_session_of_several_stores_is_partial_when_one_store_is() -> None:
    """A store cut short (a hang) makes the session partial, naming that store; the other is still judged."""
    report = two_stores()
    report.stop("the store hangs", store="a.py::TestB")
    assert report.for_store("a.py::TestA").conforms()
    assert report.partial_reasons() == ["TestB: the store hangs"]
    assert report.verdict() == (
        "partial run of 2 stores: 1 not fully checked (TestB); no conformance verdict (TestB: the store hangs)"
    )
    assert not report.conforms()
    clean = two_stores()
    assert (clean.conforms(), clean.verdict()) == (True, "all 2 stores conform (TestA, TestB)")
    assert full_report().to_json()["stores"] == []


def test_a_rule_blocked_only_by_a_baselined_failure_is_not_claimed() -> None:
    """QRY-2's test stopped at a MOD-6 failure the baseline knows: nothing failed, yet QRY-2 was never
    checked, so the run gives no verdict instead of "conforms" (a known failure excuses only itself)."""
    report = full_report(
        result("xfailed", "QRY-2", message="baseline: MOD-6: ours", blamed=("MOD-6",)),
        baseline={"MOD-6": "ours"},
    )
    statuses = {row.rule.id: row.status for row in report.rule_results()}
    assert (statuses["MOD-6"], statuses["QRY-2"]) == ("known_failure", "incomplete")
    assert (report.complete(), report.conforms()) == (False, False)
    assert report.partial_reasons() == ["1 required rules not checked"]
    assert report.verdict().startswith("partial run: ")
