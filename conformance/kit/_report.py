"""The rule-by-rule verdict: collected from test outcomes, printed and written as JSON."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from conformance.kit._rules import CAPABILITIES, RULES, Rule

__all__ = ["Outcome", "Report", "RuleResult", "TestResult"]

Outcome = Literal["passed", "failed", "skipped", "xfailed", "xpassed"]
Status = Literal["passed", "failed", "known_failure", "skipped", "not_run"]
SCHEMA_VERSION = 1


@dataclass(frozen=True, slots=True)
class TestResult:
    """The outcome of one contract test and the rules it verifies."""

    __test__ = False  # not a test class, though pytest would collect it where it is imported

    nodeid: str
    rules: tuple[str, ...]
    outcome: Outcome
    message: str = ""
    duration: float = 0.0


@dataclass(slots=True)
class RuleResult:
    """The status of one rule, from all its tests."""

    rule: Rule
    tests: list[TestResult] = field(default_factory=list)

    @property
    def status(self) -> Status:
        """failed > known_failure > passed > skipped > not_run."""
        outcomes = {t.outcome for t in self.tests}
        if outcomes & {"failed", "xpassed"}:
            return "failed"
        if "xfailed" in outcomes:
            return "known_failure"
        if "passed" in outcomes:
            return "passed"
        return "skipped" if outcomes else "not_run"

    @property
    def reason(self) -> str:
        """Why the rule did not pass: the first failure's or skip's message."""
        for wanted in ("failed", "xpassed", "xfailed", "skipped"):
            for test in self.tests:
                if test.outcome == wanted and test.message:
                    return test.message
        return ""


class Report:
    """Collects `TestResult`s during a run and renders the verdict."""

    def __init__(self, *, store: str | None = None, kit_version: str = "", rules_version: str = "") -> None:
        self.store = store
        self.kit_version = kit_version
        self.rules_version = rules_version
        self.capabilities: frozenset[str] | None = None
        self.results: list[TestResult] = []

    def add(self, result: TestResult) -> None:
        """Record one test's outcome."""
        self.results.append(result)

    def rule_results(self) -> list[RuleResult]:
        """Every registered rule with the tests that verified it, in SPEC order."""
        by_rule = {rule_id: RuleResult(rule) for rule_id, rule in RULES.items()}
        for result in self.results:
            for rule_id in result.rules:
                by_rule[rule_id].tests.append(result)
        return list(by_rule.values())

    def capability_text(self) -> str:
        """`thread_state yes, durable not declared, ...` for every known capability."""
        declared = self.capabilities or frozenset()
        return ", ".join(f"{name} {'yes' if name in declared else 'not declared'}" for name in CAPABILITIES)

    def verdict(self) -> str:
        """One line: conforms to all N required rules, or which rules failed."""
        rows = self.rule_results()
        required = [r for r in rows if r.status in ("passed", "failed", "known_failure")]
        failed = [r.rule.id for r in rows if r.status == "failed"]
        known = [r.rule.id for r in rows if r.status == "known_failure"]
        scope = "" if not any(r.status == "not_run" for r in rows) else "selected "
        if failed:
            head = (
                f"does NOT conform: {len(failed)} of {len(required)} {scope}required rules failed ({', '.join(failed)})"
            )
        else:
            head = f"conforms to all {len(required) - len(known)} {scope}required rules"
        if known:
            head += f"; {len(known)} known failures from the baseline ({', '.join(known)})"
        return f"{head}; capabilities: {self.capability_text()}"

    def conforms(self) -> bool:
        """True when no rule failed (known failures from the baseline excepted)."""
        return all(r.status != "failed" for r in self.rule_results())

    def version_text(self) -> str:
        """`kit 0.1.0, rules 1.0`: the kit that judged and the rule set it judged by."""
        return f"kit {self.kit_version or 'unknown'}, rules {self.rules_version or 'unknown'}"

    def lines(self) -> Iterable[str]:
        """The terminal summary: one line per rule that ran or was skipped, the versions, then the verdict."""
        for row in self.rule_results():
            if row.status == "not_run":
                continue
            detail = row.rule.text if row.status == "passed" else _first_line(row.reason) or row.rule.text
            yield f"{row.rule.id:<7} {row.status:<13} {detail}"
        yield self.version_text()
        yield f"verdict: {self.verdict()}"

    def to_json(self) -> dict[str, Any]:
        """The same report as a JSON object (schema version 1)."""
        return {
            "schema": SCHEMA_VERSION,
            "kit_version": self.kit_version,
            "rules_version": self.rules_version,
            "store": self.store,
            "capabilities": {name: name in (self.capabilities or ()) for name in CAPABILITIES},
            "conforms": self.conforms(),
            "verdict": self.verdict(),
            "rules": [
                {
                    "id": row.rule.id,
                    "text": row.rule.text,
                    "capability": row.rule.capability,
                    "status": row.status,
                    "reason": row.reason,
                    "tests": [
                        {"nodeid": t.nodeid, "outcome": t.outcome, "message": t.message, "duration": t.duration}
                        for t in row.tests
                    ],
                }
                for row in self.rule_results()
            ],
        }

    def write_json(self, path: Path) -> None:
        """Write `to_json()` to `path` (parents created), atomically via a temporary file."""
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        partial.write_text(json.dumps(self.to_json(), indent=2) + "\n", encoding="utf-8")
        partial.replace(path)


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""
