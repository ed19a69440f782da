"""The rule-by-rule verdict: collected from test outcomes, printed and written as JSON.

A report never claims more than the run established. A rule is *checked* when every
test of it that the run planned has an outcome (a test skipped for an undeclared
capability counts: the rule does not apply to it). The run is *complete* when the
store could be set up, nothing narrowed the selection, nothing cut the run short
and every required rule was checked; only a complete run gives a verdict, and
`conforms` is true only for a complete run in which no required rule failed
(rules the baseline lists as known failures excepted).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from conformance.kit._rules import CAPABILITIES, RULES, Rule

__all__ = ["Outcome", "Report", "RuleResult", "Status", "TestResult"]

Outcome = Literal["passed", "failed", "skipped", "xfailed", "xpassed"]
Status = Literal["passed", "failed", "known_failure", "warning", "skipped", "incomplete", "not_run"]
#: Version 2 added `complete`, `partial_reasons`, `setup_error`, `counts`, `known_failures`,
#: `stale_baseline`, the `incomplete` status and each test's `blamed` rules. Version 3 added
#: `stores`: each store's own verdict when one session tested several (test classes), and
#: `blocked`: rules not checked past another rule's failure; later, within 3,
#: `warnings` and the `warning` status: a new rule's failures, which no store fails by yet;
#: `lifecycle_failures`: opening, closing or cleaning up the store that failed (no rule's);
#: `store_calls`: how many calls the tests made and their mean time;
#: `event_loops` and `loops_left_out`: the loops the tests ran under, and chosen ones left out.
SCHEMA_VERSION = 3
#: A rule's one-line reason in the terminal summary is cut to this many characters.
REASON_WIDTH = 150


@dataclass(frozen=True, slots=True)
class TestResult:
    """The outcome of one contract test: the rules it verifies and, when it failed, those it breaks."""

    __test__ = False  # not a test class, though pytest would collect it where it is imported

    nodeid: str
    rules: tuple[str, ...]
    outcome: Outcome
    message: str = ""
    duration: float = 0.0
    #: The rules a failure breaks (of `rules`, or a store call's own: `BrokenCall`); empty unless it failed.
    blamed: tuple[str, ...] = ()
    #: True when the test was skipped as not applying to the store: it lacks a capability the
    #: test needs, or its process cannot take a value the test sends (a strict JSON peer).
    capability_skip: bool = False
    #: Opening or closing the store failed or hung in this test: what happened, else "".
    lifecycle: str = ""

    def breaks(self, rule_id: str) -> bool:
        """True when this test failed against `rule_id` (or passed though a known failure: xpassed).

        A test that failed only on the store's lifecycle (no rule blamed) breaks no rule.
        """
        if self.outcome not in ("failed", "xfailed") or (self.lifecycle and not self.blamed):
            return False
        return rule_id in (self.blamed or self.rules)


_RANK: dict[Outcome, int] = {"passed": 0, "skipped": 1, "xpassed": 2, "xfailed": 3, "failed": 4}


@dataclass(slots=True)
class RuleResult:
    """The status of one rule, from the tests the run planned for it and their outcomes."""

    rule: Rule
    status: Status
    tests: list[TestResult] = field(default_factory=list)
    #: Incomplete only because a test stopped at another rule's failure (a check of it, or a broken store call).
    blocked: bool = False

    @property
    def reason(self) -> str:
        """Why the rule did not pass: the first failure's message, else a skip's."""
        for wanted in ("failed", "xfailed", "skipped"):
            for test in self.tests:
                if test.outcome == wanted and test.message and (wanted == "skipped" or test.breaks(self.rule.id)):
                    return test.message
        return ""


class Report:
    """Collects what a run planned and what came of it, and renders the verdict."""

    def __init__(
        self,
        *,
        store: str | None = None,
        kit_version: str = "",
        rules_version: str = "",
        baseline: Mapping[str, str] | None = None,
    ) -> None:
        self.store = store
        self.kit_version = kit_version
        self.rules_version = rules_version
        self.baseline = dict(baseline or {})
        self.capabilities: frozenset[str] | None = None
        #: Every contract test the run selected, by node id, with the rules it is tagged with.
        self.planned: dict[str, tuple[str, ...]] = {}
        self.results: dict[str, TestResult] = {}
        #: Why the selection is narrower than the whole kit (`-k ...`, `--conformance-rules ...`).
        self.narrowed: list[str] = []
        #: Per rule, the names of every contract test the whole kit has for it: a rule is checked only
        #: when all of them were planned (a rule tagged on one selected test is not checked by it).
        self.expected: dict[str, set[str]] = {}
        #: Why the run ended before its end (`-x`, an interrupt, a store that hangs).
        self.stopped: list[str] = []
        self.setup_error: str | None = None
        #: In a session of several stores: per store (test class `path::Class`), the
        #: capabilities its tests ran with and the reasons that concern it alone.
        self.store_capabilities: dict[str, frozenset[str]] = {}
        self.store_reasons: dict[str, list[str]] = {}
        #: Failures of the store's lifecycle (opening, closing, cleaning up): no rule's, but the run is partial.
        self.lifecycle: list[str] = []
        #: Those of `lifecycle` that left tests unfinished: the run is partial.
        self.lifecycle_partial: list[str] = []
        #: Why the run ended early because of the store (a hang), a subset of `stopped`.
        self.stopped_by_store: list[str] = []
        #: Store calls the tests made (count) and the seconds they took.
        self.calls = 0
        self.call_seconds = 0.0
        #: The event loops contract tests ran under, and the chosen loops left out with why (a store
        #: that declares `backends` runs only under those: not a partial run).
        self.event_loops: list[str] = []
        self.loops_left_out: dict[str, str] = {}

    # ── collecting ──────────────────────────────────────────────────────

    def plan(self, nodeid: str, rules: tuple[str, ...]) -> None:
        """Record a contract test the run selected."""
        self.planned[nodeid] = rules

    def add(self, result: TestResult) -> None:
        """Record a test's outcome; of several phases (setup, call, teardown) the worst counts."""
        previous = self.results.get(result.nodeid)
        if previous is None or _RANK[result.outcome] > _RANK[previous.outcome]:
            self.results[result.nodeid] = result
        self.planned.setdefault(result.nodeid, result.rules)

    def narrow(self, reason: str, *, store: str | None = None) -> None:
        """Record why the selection is narrower than the whole kit (once per reason), or than one store's."""
        reasons = self.narrowed if store is None else self.store_reasons.setdefault(store, [])
        if reason not in reasons:
            reasons.append(reason)

    def stop(self, reason: str, *, store: str | None = None, by_store: bool = False) -> None:
        """Record why the run, or one store's tests (`store`: `path::Class`), ended early (once per reason).

        `by_store`: the store's behaviour ended it (it hangs), not the user (Ctrl-C, -x).
        """
        reasons = self.stopped if store is None else self.store_reasons.setdefault(store, [])
        if reason not in reasons:
            reasons.append(reason)
        if by_store and reason not in self.stopped_by_store:
            self.stopped_by_store.append(reason)

    def lifecycle_failure(self, message: str, *, partial: bool = True) -> None:
        """Record that opening, closing or cleaning up the store failed (once per message).

        `partial`: the failure left tests unfinished (opening or closing the store in a test),
        so the run is partial; a failed `cleanup` at the session's end leaves the verdict be.
        Either way no rule is blamed and the exit status is not 0.
        """
        if message not in self.lifecycle:
            self.lifecycle.append(message)
        if partial and message not in self.lifecycle_partial:
            self.lifecycle_partial.append(message)

    def add_calls(self, count: int, seconds: float) -> None:
        """Count store calls a test made and the seconds they took."""
        self.calls += count
        self.call_seconds += seconds

    def call_average_ms(self) -> float:
        """The mean milliseconds of a store call so far (0 before any)."""
        return 1000 * self.call_seconds / self.calls if self.calls else 0.0

    # ── several stores in one session ───────────────────────────────────

    def stores(self) -> list[str]:
        """The stores (test classes, `path::Class`) the run planned contract tests of, in plan order."""
        return list(dict.fromkeys(_owner(nodeid) for nodeid in self.planned))

    def for_store(self, store: str) -> Report:
        """The report of one store of the session: its tests, its capabilities, the reasons that concern it."""
        part = Report(
            store=store, kit_version=self.kit_version, rules_version=self.rules_version, baseline=self.baseline
        )
        part.capabilities = self.store_capabilities.get(store, self.capabilities)
        part.planned = {nodeid: rules for nodeid, rules in self.planned.items() if _owner(nodeid) == store}
        part.results = {nodeid: result for nodeid, result in self.results.items() if nodeid in part.planned}
        part.narrowed = [*self.narrowed, *self.store_reasons.get(store, [])]
        part.stopped = list(self.stopped)
        part.stopped_by_store = list(self.stopped_by_store)
        part.lifecycle = list(self.lifecycle)
        part.lifecycle_partial = list(self.lifecycle_partial)
        part.expected = self.expected
        part.setup_error = self.setup_error
        return part

    def _parts(self) -> list[Report]:
        """One report per store when the session tested several; empty when it tested one (or none)."""
        stores = self.stores()
        return [self.for_store(store) for store in stores] if len(stores) > 1 else []

    # ── judging ─────────────────────────────────────────────────────────

    def applies(self, rule: Rule) -> bool:
        """True when `rule` applies to the store: it needs no capability, or one the store declared."""
        return rule.capability is None or rule.capability in (self.capabilities or frozenset())

    def required(self, rule: Rule) -> bool:
        """True when the store must keep `rule`: it applies and is no new rule still in its warning release."""
        return self.applies(rule) and not rule.warning

    def rule_results(self) -> list[RuleResult]:
        """Every registered rule with its status and its tests' outcomes, in SPEC order."""
        by_rule: dict[str, list[str]] = {rule_id: [] for rule_id in RULES}
        for nodeid, rules in self.planned.items():
            for rule_id in rules:
                by_rule[rule_id].append(nodeid)
        # A store call that broke its own rule (a `BrokenCall`) blames that rule from a test not tagged with it.
        elsewhere: dict[str, list[str]] = {rule_id: [] for rule_id in RULES}
        for nodeid, result in self.results.items():
            for rule_id in result.blamed:
                if rule_id in elsewhere and rule_id not in result.rules:
                    elsewhere[rule_id].append(nodeid)
        return [
            self._judge(
                RULES[rule_id], [self.results[n] for n in [*nodeids, *elsewhere[rule_id]] if n in self.results], nodeids
            )
            for rule_id, nodeids in by_rule.items()
        ]

    def _judge(self, rule: Rule, tests: list[TestResult], planned: list[str]) -> RuleResult:
        if self.capabilities is not None and not self.applies(rule):
            return RuleResult(rule, "skipped", tests)
        if any(test.breaks(rule.id) for test in tests):
            if rule.warning:
                return RuleResult(rule, "warning", tests)
            return RuleResult(rule, "known_failure" if rule.id in self.baseline else "failed", tests)
        if not planned:
            return RuleResult(rule, "not_run", tests)
        ran = [t for t in tests if t.nodeid in planned and (t.outcome != "skipped" or t.capability_skip)]
        left_out = self.expected.get(rule.id, set()) - {_test_name(nodeid) for nodeid in planned}
        if len(ran) < len(planned) or left_out:
            return RuleResult(rule, "incomplete" if tests else "not_run", tests)
        if any(t.lifecycle and not t.blamed for t in ran):
            return RuleResult(rule, "incomplete", tests)
        if any(_stopped_short(t, rule.id) for t in ran):
            return RuleResult(rule, "incomplete", tests, blocked=True)
        if all(t.capability_skip for t in ran):
            return RuleResult(rule, "skipped", tests)
        return RuleResult(rule, "passed", tests)

    def counts(self) -> dict[str, int]:
        """`required`, `checked`, `failed` and `known_failures`: rules, by what the run established.

        In a session of several stores, each store's rules count: the sums over the stores.
        """
        parts = self._parts()
        if parts:
            totals = [part.counts() for part in parts]
            return {key: sum(counts[key] for counts in totals) for key in totals[0]}
        rows = [row for row in self.rule_results() if self.required(row.rule)]
        return {
            "required": len(rows),
            "checked": sum(row.status in ("passed", "failed", "known_failure") for row in rows),
            "failed": sum(row.status == "failed" for row in rows),
            "known_failures": sum(row.status == "known_failure" for row in rows),
        }

    def stale_baseline(self) -> list[str]:
        """Baseline entries whose rule was checked and passed every test (in every store): drop them."""
        parts = self._parts()
        if parts:
            statuses = [{row.rule.id: row.status for row in part.rule_results()} for part in parts]
            return [
                rule_id
                for rule_id in self.baseline
                if any(status.get(rule_id) == "passed" for status in statuses)
                and not any(status.get(rule_id) in ("known_failure", "failed") for status in statuses)
            ]
        return [row.rule.id for row in self.rule_results() if row.rule.id in self.baseline and row.status == "passed"]

    def partial_reasons(self) -> list[str]:
        """Why the run gives no verdict; empty for a complete run."""
        if self.setup_error is not None:
            return [f"set-up failed: {self.setup_error}"]
        parts = self._parts()
        if parts:
            return list(
                dict.fromkeys(
                    reason if reason in (*self.narrowed, *self.stopped) else f"{_class(part.store)}: {reason}"
                    for part in parts
                    for reason in part.partial_reasons()
                )
            )
        own = [reason for reasons in self.store_reasons.values() for reason in reasons]
        reasons = [*self.narrowed, *own, *self.stopped]
        if self.lifecycle_partial:
            more = f" (and {len(self.lifecycle_partial) - 1} more)" if len(self.lifecycle_partial) > 1 else ""
            reasons.append(f"the store's lifecycle failed: {_first_line(self.lifecycle_partial[0])}{more}")
        if self.capabilities is None:
            reasons.append("no test ran, so the store's capabilities are unknown")
        counts = self.counts()
        # Blocked rules are excused only by a failure that sinks the verdict anyway; behind a
        # baselined (known) failure they are simply unchecked.
        excused = len(self.blocked()) if counts["failed"] else 0
        unchecked = counts["required"] - counts["checked"] - excused
        if unchecked and not reasons:
            reasons.append(f"{unchecked} required rules not checked")
        return reasons

    def blocked(self) -> list[str]:
        """Required rules left unchecked only because a test stopped at another rule's failure.

        When that other rule fails, the run that reached them is complete: the store does not
        conform whatever these would show, so they are named in the verdict, not counted as
        partial. Behind a failure the baseline knows they count as unchecked (`partial_reasons`).
        In a session of several stores: the rules blocked in any store, each store judged on its own.
        """
        parts = self._parts()
        if parts:
            blocked = {rule_id for part in parts for rule_id in part.blocked()}
            return [rule_id for rule_id in RULES if rule_id in blocked]
        return [row.rule.id for row in self.rule_results() if row.blocked and self.required(row.rule)]

    def warnings(self) -> list[str]:
        """New rules (still warnings) that the store breaks: reported, never failing the verdict."""
        parts = self._parts()
        if parts:
            warned = {rule_id for part in parts for rule_id in part.warnings()}
            return [rule_id for rule_id in RULES if rule_id in warned]
        return [row.rule.id for row in self.rule_results() if row.status == "warning"]

    def partial_by_store(self) -> bool:
        """True when the store, not the user, left the run partial: it hung, its lifecycle failed,
        or rules stayed unchecked behind a failure the baseline knows (or for no reason the user gave)."""
        if not self.complete():
            if self.setup_error is not None or self.stopped_by_store or self.lifecycle:
                return True
            parts = self._parts()
            if parts:
                return any(part.partial_by_store() for part in parts)
            if any(row.blocked and self.required(row.rule) for row in self.rule_results()):
                return True
            return not self.narrowed and not self.stopped
        return False

    def complete(self) -> bool:
        """True when the run checked every rule the store must keep, with nothing narrowed or cut short."""
        return not self.partial_reasons()

    def conforms(self) -> bool:
        """True only for a complete run in which no required rule failed (baseline known failures excepted).

        In a session of several stores: only when every store conforms.
        """
        return self.complete() and self.counts()["failed"] == 0

    def capability_text(self) -> str:
        """`thread_state yes, durable not declared, ...` for every known capability."""
        if self.capabilities is None:
            return "unknown"
        return ", ".join(f"{name} {'yes' if name in self.capabilities else 'not declared'}" for name in CAPABILITIES)

    def verdict(self) -> str:
        """One line: conforms, does NOT conform, or a partial run that gives no verdict."""
        if self.setup_error is not None:
            return f"set-up failed: {self.setup_error}; no conformance verdict"
        parts = self._parts()
        if parts:
            return self._session_verdict(parts)
        counts = self.counts()
        failed = [row.rule.id for row in self.rule_results() if row.status == "failed"]
        known = [row.rule.id for row in self.rule_results() if row.status == "known_failure"]
        if not self.complete():
            named = f" ({', '.join(failed)})" if failed else ""
            head = (
                f"partial run: {counts['checked']} of {counts['required']} required rules checked, "
                f"{len(failed)} failed{named}; no conformance verdict ({'; '.join(self.partial_reasons())})"
            )
        elif failed:
            head = (
                f"does NOT conform: {len(failed)} of {counts['required']} required rules failed ({', '.join(failed)})"
            )
            blocked = self.blocked()
            if blocked:
                head += f"; {len(blocked)} more not checked past those failures ({', '.join(blocked)})"
        else:
            head = f"conforms to all {counts['required'] - len(known)} required rules"
        if known:
            head += f"; {len(known)} known failures from the baseline ({', '.join(known)})"
        warned = self.warnings()
        if warned:
            plural = "s" if len(warned) > 1 else ""
            head += f"; {len(warned)} warning{plural}: new rule{plural} not yet required ({', '.join(warned)})"
        stale = self.stale_baseline()
        if stale:
            head += f"; stale baseline entries, passing every test: {', '.join(stale)} (remove them)"
        return f"{head}; capabilities: {self.capability_text()}"

    def _session_verdict(self, parts: list[Report]) -> str:
        """The verdict over several stores: each store's own verdict is on its summary's last line."""
        names = [_class(part.store) for part in parts]
        failing = [name for name, part in zip(names, parts, strict=True) if part.counts()["failed"]]
        if not self.complete():
            partial = [name for name, part in zip(names, parts, strict=True) if not part.complete()]
            failed = f"; {len(failing)} failing ({', '.join(failing)})" if failing else ""
            return (
                f"partial run of {len(parts)} stores: {len(partial)} not fully checked ({', '.join(partial)})"
                f"{failed}; no conformance verdict ({'; '.join(self.partial_reasons())})"
            )
        if failing:
            return f"does NOT conform: {len(failing)} of {len(parts)} stores fail ({', '.join(failing)})"
        return f"all {len(parts)} stores conform ({', '.join(names)})"

    def version_text(self) -> str:
        """`kit 0.1.0, rules 1.0`: the kit that judged and the rule set it judged by; then the event
        loops the tests ran under, and the chosen ones left out (`event loops asyncio (trio left out: ...)`)."""
        text = f"kit {self.kit_version or 'unknown'}, rules {self.rules_version or 'unknown'}"
        if self.event_loops:
            text += f", event loops {', '.join(self.event_loops)}"
        left_out = "; ".join(f"{loop} left out: {why}" for loop, why in self.loops_left_out.items())
        return f"{text} ({left_out})" if left_out else text

    def lines(self) -> Iterable[str]:
        """The terminal summary: one line per rule the run touched, the versions, then the verdict.

        In a session of several stores, each store gets its own summary and verdict, then
        the session's verdict.
        """
        parts = self._parts() if self.setup_error is None else []
        for part in parts:
            name = _class(part.store)
            yield f"── store {name} ({part.store})"
            for line in part.lines():
                if line.startswith("verdict: "):
                    yield f"{name} {line}"
                elif line != part.version_text() and not line.startswith(("lifecycle: ", "the store answered ")):
                    yield line
        if parts:
            for failure in self.lifecycle:
                yield f"lifecycle: {_first_line(failure)}"
            if self.calls:
                yield f"the store answered {self.calls} calls, averaging {self.call_average_ms():.1f} ms"
            yield self.version_text()
            yield f"verdict: {self.verdict()}"
            return
        if self.setup_error is None:
            # A run cut short (-x, Ctrl-C, a hang) leaves most rules unchecked: one line says how many.
            unchecked = 0
            for row in self.rule_results():
                if row.status == "not_run":
                    continue
                if self.stopped and row.status == "incomplete" and not row.blocked:
                    unchecked += 1
                    continue
                detail = row.rule.text if row.status == "passed" else _first_line(row.reason) or row.rule.text
                if row.blocked:
                    detail = f"a test stopped at another rule's failure: {row.rule.text}"
                elif row.status == "incomplete":
                    detail = f"not every test ran: {row.rule.text}"
                elif row.status == "skipped" and not row.reason:
                    detail = f"needs capability {row.rule.capability!r} (not declared)"
                yield f"{row.rule.id:<7} {row.status:<13} {detail}"
            if unchecked:
                yield f"{unchecked} rules not checked: the run stopped early ({'; '.join(self.stopped)})"
        for failure in self.lifecycle:
            yield f"lifecycle: {_first_line(failure)}"
        if self.calls:
            yield f"the store answered {self.calls} calls, averaging {self.call_average_ms():.1f} ms"
        yield self.version_text()
        yield f"verdict: {self.verdict()}"

    def to_json(self) -> dict[str, Any]:
        """The same report as a JSON object (schema version 3)."""
        rows = self.rule_results()
        return {
            "schema": SCHEMA_VERSION,
            "kit_version": self.kit_version,
            "rules_version": self.rules_version,
            "store": self.store,
            "capabilities": None
            if self.capabilities is None or self._parts()
            else {name: name in self.capabilities for name in CAPABILITIES},
            "complete": self.complete(),
            "conforms": self.conforms(),
            "verdict": self.verdict(),
            "partial_reasons": self.partial_reasons(),
            "setup_error": self.setup_error,
            "counts": self.counts(),
            "known_failures": [row.rule.id for row in rows if row.status == "known_failure"],
            "stale_baseline": self.stale_baseline(),
            "blocked": self.blocked(),
            "warnings": self.warnings(),
            "lifecycle_failures": list(self.lifecycle),
            "store_calls": {"count": self.calls, "average_ms": round(self.call_average_ms(), 3)},
            "event_loops": list(self.event_loops),
            "loops_left_out": dict(self.loops_left_out),
            "stores": [
                {
                    "store": part.store,
                    "capabilities": None
                    if part.capabilities is None
                    else {name: name in part.capabilities for name in CAPABILITIES},
                    "complete": part.complete(),
                    "conforms": part.conforms(),
                    "verdict": part.verdict(),
                    "partial_reasons": part.partial_reasons(),
                    "counts": part.counts(),
                    "failed": [row.rule.id for row in part.rule_results() if row.status == "failed"],
                    "known_failures": [row.rule.id for row in part.rule_results() if row.status == "known_failure"],
                    "warnings": part.warnings(),
                }
                for part in self._parts()
            ],
            "rules": [
                {
                    "id": row.rule.id,
                    "text": row.rule.text,
                    "capability": row.rule.capability,
                    "status": row.status,
                    "reason": row.reason,
                    "tests": [
                        {
                            "nodeid": t.nodeid,
                            "outcome": t.outcome,
                            "blamed": list(t.blamed),
                            "message": t.message,
                            "duration": t.duration,
                        }
                        for t in row.tests
                    ],
                }
                for row in rows
            ],
        }

    def write_json(self, path: Path) -> None:
        """Write `to_json()` to `path` (parents created), atomically via a temporary file."""
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        partial.write_text(json.dumps(self.to_json(), indent=2) + "\n", encoding="utf-8")
        partial.replace(path)


def _stopped_short(test: TestResult, rule_id: str) -> bool:
    """True when `test` failed on another rule (a check of it, or a store call that broke it:
    `BrokenCall`) before it got to check `rule_id` to the end."""
    return test.outcome in ("failed", "xfailed") and bool(test.blamed) and rule_id not in test.blamed


def _owner(nodeid: str) -> str:
    """`path::Class` of `path::Class::test_x[params]` (params may hold `::` themselves)."""
    return nodeid.split("[", 1)[0].rpartition("::")[0]


def _class(store: str | None) -> str:
    """`Class` of `path::Class`."""
    return (store or "").rpartition("::")[2]


def _test_name(nodeid: str) -> str:
    """`test_x` of `path::Class::test_x[params]` (params may hold `::` themselves)."""
    return nodeid.split("[", 1)[0].rpartition("::")[2]


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= REASON_WIDTH else line[: REASON_WIDTH - 3] + "..."
