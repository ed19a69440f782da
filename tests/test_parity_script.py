"""`scripts/upstream_parity.py` without the shim: reading the departures table, judging a run against it, recording it.

The script itself runs on request (it builds upstream's stores and needs PostgreSQL);
what it concludes from a run is plain functions of the table and the kit's JSON report,
tested here on the real table and on small ones.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from conformance import RULES

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "upstream_parity.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("upstream_parity", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


parity = _load()

TABLE = """# Parity

## Departures

| Rules | Upstream behaviour | Backends | Why the contract departs | Kind |
|---|---|---|---|---|
| MSG-6 | renumbers | memory, file, postgres | raw seqs | bug |
| MSG-1, ATO-1 | `[]` for an emptied log | memory | one spelling | choice |
| QRY-4 | loops at limit 0 | postgres | ends paging | bug |

## Choices no upstream backend shows

| not | a | departure | row | bug |
"""


def test_the_real_table_parses_with_a_kind_on_every_row() -> None:
    """docs/UPSTREAM.md's rows name registered rules, upstream backends, and bug or choice."""
    rows = parity.departures(parity.TABLE.read_text(encoding="utf-8"))
    assert rows
    assert all(row.rules <= set(RULES) for row in rows), [sorted(row.rules) for row in rows]
    assert {row.kind for row in rows} <= {"bug", "choice"}


def test_rows_are_read_from_the_departures_section_only() -> None:
    """Rules, backends and kind of each row of the section; the next section's table is no departure."""
    rows = parity.departures(TABLE)
    assert [(sorted(row.rules), sorted(row.backends), row.kind) for row in rows] == [
        (["MSG-6"], ["file", "memory", "postgres"], "bug"),
        (["ATO-1", "MSG-1"], ["memory"], "choice"),
        (["QRY-4"], ["postgres"], "bug"),
    ]


@pytest.mark.parametrize(
    ("row", "words"),
    [
        ("| MSG-6 | renumbers | memory | raw seqs |", "kind among bug, choice"),
        ("| MSG-6 | renumbers | mysql | raw seqs | bug |", "backends among memory, file, postgres"),
        ("| none | renumbers | memory | raw seqs | bug |", "needs rule IDs"),
    ],
)
def test_a_row_without_its_kind_or_with_an_unknown_backend_is_refused(row: str, words: str) -> None:
    """A row the script cannot judge by is named, not skipped."""
    text = TABLE.replace("| QRY-4 | loops at limit 0 | postgres | ends paging | bug |", row)
    with pytest.raises(ValueError, match=words):
        parity.departures(text)


def test_a_run_is_compared_with_the_rows_of_its_backend() -> None:
    """Failed rules no row names are unexpected; rows' rules the run did not fail are stale, with their status."""
    rows = parity.departures(TABLE)
    statuses = {"MSG-6": "failed", "MSG-1": "passed", "ATO-1": "incomplete", "MOD-5": "warning", "QRY-4": "failed"}
    memory = parity.compare("memory", statuses, rows)
    assert memory.unexpected == ("MOD-5", "QRY-4")  # a warning fails the rule too; QRY-4's row is postgres's
    assert memory.stale == (("ATO-1", "incomplete"), ("MSG-1", "passed"))
    assert not memory.matches
    postgres = parity.compare("postgres", {"MSG-6": "known_failure", "QRY-4": "failed", "THR-1": "passed"}, rows)
    assert postgres.matches
    assert parity.describe(postgres) == ["  matches the table: fails exactly the rules its rows name"]
    file = parity.compare("file", {}, rows)
    assert file.stale == (("MSG-6", "not run"),)
    assert parity.describe(memory) == [
        "  unexpected (failed; no row names memory): MOD-5, QRY-4",
        "  stale (a row names memory; not failed): ATO-1 (incomplete), MSG-1 (passed)",
    ]


def test_the_last_run_is_recorded_in_place_or_appended() -> None:
    """The section lists each store's verdict line and its mismatches; a second record replaces the first,
    keeping what follows."""
    rows = parity.departures(TABLE)
    runs = [
        parity.Run(
            "memory", {"MSG-6": "failed", "MSG-1": "failed", "ATO-1": "failed"}, "verdict: does not conform", 6.0
        ),
        parity.Run("postgres", {"MSG-6": "failed", "RUN-2": "failed"}, "verdict: does not conform", 9.0),
        parity.Run("file", {}, "no verdict line", 1.0),
    ]
    section = parity.last_run_section(date="2025-01-02", upstream="abc123", kit="def456", runs=runs, rows=rows)
    assert section.splitlines() == [
        "## Last parity run",
        "",
        "`python scripts/upstream_parity.py` on 2025-01-02: upstream `abc123`, kit `def456`.",
        "",
        "- memory: `verdict: does not conform`",
        "  - matches the table: fails exactly the rules its rows name",
        "- postgres: `verdict: does not conform`",
        "  - unexpected (failed; no row names postgres): RUN-2",
        "  - stale (a row names postgres; not failed): QRY-4 (not run)",
        "- file: `no verdict line`",
        "  - the kit wrote no report",
    ]
    once = parity.recorded(TABLE, section)
    assert once == TABLE + "\n" + section
    later = parity.last_run_section(date="2025-02-03", upstream="abc124", kit="def457", runs=runs, rows=rows)
    text = TABLE.replace("\n## Choices", "\n## Last parity run\n\nold\n\n## Choices")
    replaced = parity.recorded(text, later)
    assert replaced.count("## Last parity run") == 1
    assert "old" not in replaced
    assert replaced.index("## Last parity run") < replaced.index("## Choices")
    assert parity.departures(replaced) == parity.departures(TABLE)


def test_the_verdict_line_is_the_last_one_of_the_output() -> None:
    assert parity.verdict_line("x\nverdict: conforms\n[store] y\n") == "verdict: conforms"
    assert parity.verdict_line("crashed\n") == "no verdict line"
