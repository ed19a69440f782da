"""The rule registry matches docs/SPEC.md, the normative spec, and every rule has a contract test."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import conformance
from conformance import CAPABILITIES, RULES, StoreContract, rule

SPEC = Path(__file__).resolve().parents[1] / "docs" / "SPEC.md"
#: A rule of sections 3-9: `- ID [cap: NAME] text`, its text running on to the next bullet, heading or blank line.
RULE = re.compile(r"^- ([A-Z]+-\d+) (?:\[cap: (\w+)\] )?(.*?)(?=^- |^\S|^$|\Z)", re.MULTILINE | re.DOTALL)
#: A row of section 11, the rule index: `| ID | `capability` | summary |`.
INDEX_ROW = re.compile(r"^\| ([A-Z]+-\d+) \| (?:`(\w+)`)? \| (.+) \|$", re.MULTILINE)
#: A name in code: a method, field or argument (`save_thread`, `updated_at`, `id_prefix`).
CODE_NAME = re.compile(r"\b[a-z]+(?:_[a-z]+)+\b")


def _sections() -> tuple[str, str]:
    """The spec up to its rule index, and the rule index (section 11)."""
    text = SPEC.read_text(encoding="utf-8")
    rules, marker, index = text.partition("\n## 11. Rule index\n")
    assert marker, "docs/SPEC.md has no section '## 11. Rule index'"
    return rules, index


def _spec_rules() -> dict[str, tuple[str | None, str]]:
    """Each rule the spec defines: its capability and its whole text, whitespace collapsed."""
    return {match[1]: (match[2], " ".join(match[3].split())) for match in RULE.finditer(_sections()[0])}


def _spec_index() -> dict[str, tuple[str | None, str]]:
    """Each row of the rule index: capability and summary."""
    return {match[1]: (match[2], match[3]) for match in INDEX_ROW.finditer(_sections()[1])}


def test_registry_matches_spec_rules_and_capabilities() -> None:
    """Every rule defined in docs/SPEC.md is registered with its capability, in spec order, and nothing else is."""
    in_spec = {rule_id: capability for rule_id, (capability, _) in _spec_rules().items()}
    # MOD-6 names any_ids inside its text, for one clause only: the rule itself applies to every backend.
    in_spec["MOD-6"] = None
    assert list(in_spec) == list(RULES)
    assert {rule_id: r.capability for rule_id, r in RULES.items()} == in_spec


def test_registry_texts_are_the_spec_rule_index() -> None:
    """The registry's one-line text and capability of each rule are the spec's rule index row, word for word."""
    registry = {rule_id: (r.capability, r.text) for rule_id, r in RULES.items()}
    assert _spec_index() == registry
    assert list(_spec_index()) == list(RULES), "the rule index lists the rules in spec order"


def test_summaries_name_only_what_their_rule_names() -> None:
    """A summary mentions no method, field or argument that its rule's text in the spec does not."""
    rules = _spec_rules()
    strays = {
        rule_id: names
        for rule_id, r in RULES.items()
        if (names := sorted(set(CODE_NAME.findall(r.text)) - set(CODE_NAME.findall(rules[rule_id][1]))))
    }
    assert strays == {}


def test_spec_does_not_point_outside_the_repository() -> None:
    """The spec is self-contained: no link or path into a sibling checkout (`../shared`, `seeds/`)."""
    text = SPEC.read_text(encoding="utf-8")
    assert "../shared" not in text
    assert "seeds/" not in text


def _contract_rule_ids() -> dict[str, set[str]]:
    """Every contract test of StoreContract and the rule IDs its marks name."""
    tests: dict[str, set[str]] = {}
    for name in dir(StoreContract):
        if name.startswith("test"):
            marks = getattr(getattr(StoreContract, name), "pytestmark", [])
            tests[name] = {rule_id for mark in marks if mark.name == "rule" for rule_id in mark.args}
    return tests


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


def test_spec_section_1_names_every_contract_name() -> None:
    """Section 1 of the spec ("names are normative") names every public name of the contract.

    The contract's names are those `conformance` exports that are not the kit's
    (the kit's and the wire's load lazily, from `conformance.kit` and `conformance.wire`).
    """
    text = SPEC.read_text(encoding="utf-8")
    section = text[text.index("## 1. Python surface") : text.index("## 2. Data model")]
    lazy = conformance._LAZY.keys() | conformance._RENAMED.keys()
    contract = [name for name in conformance.__all__ if name not in lazy]
    assert "paginate_runs" in contract
    assert "WireStore" not in contract
    assert [name for name in contract if not re.search(rf"`{re.escape(name)}\b", section)] == []
