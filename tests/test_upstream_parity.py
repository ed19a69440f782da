"""The kit fails a faithful port of upstream's in-memory store on exactly the departures of docs/UPSTREAM.md.

The port (`tests/stores/upstream_memory_store.py`) keeps upstream's behaviour, bugs
included; the table of `docs/UPSTREAM.md` lists every rule where the contract parts
from it. The kit runs on the port as a user would run it (`python -m conformance
--store ...`, derandomized), once for the example tests and once for the state
machines, and its JSON report must name the table's `memory` rules: all of them for
the example tests, and none other for anyone. A departure added to the contract, or
one that goes away, fails here until the table says so.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from conformance import RULES

TESTS = Path(__file__).resolve().parent
TABLE = TESTS.parent / "docs" / "UPSTREAM.md"
TARGET = "stores.upstream_memory_store:UpstreamMemoryStore"
BACKENDS = {"memory", "file", "postgres"}
RULE_ID = re.compile(r"\b[A-Z]+-\d+\b")


def departures(text: str) -> list[tuple[set[str], set[str]]]:
    """The rows of the "Departures" table: (rule IDs, backends) each."""
    section = text.split("\n## Departures\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("|")][2:]  # skip header and rule
    parsed = []
    for row in rows:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        parsed.append((set(RULE_ID.findall(cells[0])), {name.strip() for name in cells[2].split(",")}))
    return parsed


def memory_departures() -> set[str]:
    """The rules of every row whose backends include the in-memory store."""
    return {
        rule_id
        for rules, backends in departures(TABLE.read_text(encoding="utf-8"))
        if "memory" in backends
        for rule_id in rules
    }


def failed_rules(folder: Path, marker: str) -> set[str]:
    """Run the kit on the port (tests selected by `-m marker`); the rules its JSON report says failed."""
    report = folder / "report.json"
    command = [
        sys.executable, "-m", "conformance", "--store", TARGET, "--conformance-profile", "ci",
        "--conformance-report", str(report), "-m", marker, "-q", "-p", "no:randomly",
    ]  # fmt: skip
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        command, cwd=folder, env=environment, capture_output=True, text=True, timeout=600, check=False
    )
    assert report.is_file(), f"the kit wrote no report:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    data = json.loads(report.read_text(encoding="utf-8"))
    return {row["id"] for row in data["rules"] if row["status"] == "failed"}


def test_table_rows_name_registered_rules_and_upstream_backends() -> None:
    """Each row names rules of the registry and backends among memory, file and postgres; no rule twice for one
    backend (a rule may depart differently on two backends: the file backend's Io for an id it cannot name a
    file by, PostgreSQL's for NUL)."""
    rows = departures(TABLE.read_text(encoding="utf-8"))
    assert rows, "docs/UPSTREAM.md has no departures table"
    named = [rule_id for rules, _ in rows for rule_id in rules]
    assert all(rules for rules, _ in rows), "a row names no rule"
    assert set(named) <= set(RULES), f"unknown rule IDs {sorted(set(named) - set(RULES))}"
    for backend in BACKENDS:
        own = [rule_id for rules, backends in rows if backend in backends for rule_id in rules]
        twice = sorted(rule_id for rule_id in own if own.count(rule_id) > 1)
        assert not twice, f"{backend}: a rule has two rows: {twice}"
    assert all(backends and backends <= BACKENDS for _, backends in rows), [b for _, b in rows]


def test_example_tests_fail_exactly_the_documented_departures(tmp_path: Path) -> None:
    """The example tests fail the port on every `memory` rule of the table, and on no other rule."""
    assert failed_rules(tmp_path, "not conformance_stateful") == memory_departures()


def test_state_machines_fail_no_undocumented_rule(tmp_path: Path) -> None:
    """The state machines fail the port on `memory` rules of the table only."""
    assert failed_rules(tmp_path, "conformance_stateful") <= memory_departures()
