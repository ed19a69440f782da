"""The rule registry matches SPEC.md, and every rule has a contract test."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conformance import CAPABILITIES, RULES, StoreContract, rule

SPEC = Path(__file__).resolve().parents[2] / "shared" / "SPEC.md"
RULE_LINE = re.compile(r"^- ([A-Z]+-\d+) (\[cap: (\w+)\])?", re.MULTILINE)


def _contract_rule_ids() -> dict[str, set[str]]:
    """Every contract test of StoreContract and the rule IDs its marks name."""
    tests: dict[str, set[str]] = {}
    for name in dir(StoreContract):
        if name.startswith("test"):
            marks = getattr(getattr(StoreContract, name), "pytestmark", [])
            tests[name] = {rule_id for mark in marks if mark.name == "rule" for rule_id in mark.args}
    return tests


@pytest.mark.skipif(not SPEC.is_file(), reason=f"the normative spec is not beside the checkout ({SPEC})")
def test_registry_matches_spec_rules_and_capabilities() -> None:
    """Every rule defined in SPEC.md is registered with its capability, and nothing else is."""
    in_spec = {match[1]: match[3] or None for match in RULE_LINE.finditer(SPEC.read_text(encoding="utf-8"))}
    # MOD-6 names any_ids inside its text, for one clause only: the rule itself applies to every backend.
    in_spec["MOD-6"] = None
    assert {rule_id: r.capability for rule_id, r in RULES.items()} == in_spec


def test_capabilities_of_rules_are_known() -> None:
    """A rule's capability is one of the declared capability names."""
    assert {r.capability for r in RULES.values()} - {None} <= set(CAPABILITIES)


def test_every_rule_has_a_contract_test() -> None:
    """No rule of the registry is left without a test that names it."""
    covered = set().union(*_contract_rule_ids().values())
    assert sorted(set(RULES) - covered) == []


def test_every_contract_test_names_known_rules() -> None:
    """Each contract test names at least one rule, and only registered ones."""
    for name, rule_ids in _contract_rule_ids().items():
        assert rule_ids, f"{name} names no rule"
        assert rule_ids <= set(RULES), f"{name} names unknown rules {sorted(rule_ids - set(RULES))}"


def test_rule_decorator_refuses_unknown_ids_and_capabilities() -> None:
    """Tagging a test with an unknown rule or capability fails at import time."""
    with pytest.raises(ValueError, match="XYZ-1"):
        rule("XYZ-1")
    with pytest.raises(ValueError, match="teleport"):
        rule("THR-1", requires="teleport")
    with pytest.raises(ValueError, match="none"):
        rule()


def test_rule_decorator_refuses_sync_tests() -> None:
    """Contract tests are async; a plain function is a mistake the decorator names."""

    def not_async(self: object) -> None:
        """Not a coroutine."""

    with pytest.raises(TypeError, match="not async"):
        rule("THR-1")(not_async)  # type: ignore[arg-type]
