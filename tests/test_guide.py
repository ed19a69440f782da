"""docs/GUIDE.md names only what exists: every helper it lists is public, and it lists every public helper."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import conformance

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "GUIDE.md"
#: `name`, `Class.method`, `name(args)`: a name in code in the guide's prose or tables.
CODE_NAME = re.compile(r"`([A-Za-z_][\w]*(?:\.[A-Za-z_]\w*)?)(?:\([^`]*\))?`")


def _section(heading: str) -> str:
    text = GUIDE.read_text(encoding="utf-8")
    return text.split(f"\n{heading}\n", 1)[1].split("\n## ", 1)[0]


def _resolves(name: str) -> bool:
    owner, _, attribute = name.partition(".")
    if owner not in conformance.__all__:
        return False
    return not attribute or hasattr(getattr(conformance, owner), attribute)


def _listed(text: str) -> set[str]:
    """The names in code of a table's first column."""
    cells = [line.split("|")[1] for line in text.splitlines() if line.startswith("| ") and "---" not in line]
    return {name for cell in cells for name in CODE_NAME.findall(cell)}


def test_every_helper_the_guide_lists_is_public() -> None:
    """The helper table and the helpers `checkpoint` needs are importable from `conformance` by those names."""
    helpers = _listed(_section("## 9. Every public helper")) - {"helper"}
    needed = _section("### `checkpoint`, and every helper it needs").split("The helpers, all importable", 1)[1]
    named = set(CODE_NAME.findall(needed.split("\n\n", 1)[0])) - {"conformance"}
    assert {"now_ms", "apply_run_projection", "checkpoint_parent_thread_id"} <= named
    assert sorted(name for name in helpers | named if not _resolves(name)) == []


def test_the_guide_lists_every_public_helper_function() -> None:
    """Each public function of the contract (and `PageWindow`, `SyncStoreAdapter`) has a row in section 9."""
    listed = {name.split(".")[0] for name in _listed(_section("## 9. Every public helper"))}
    functions = {
        name
        for name in conformance.__all__
        if name not in conformance._LAZY and inspect.isfunction(getattr(conformance, name))
    }
    assert "paginate_runs" in functions
    assert sorted((functions | {"PageWindow", "SyncStoreAdapter"}) - listed - {"sort_threads_by_recent_activity"}) == []


def test_the_guide_names_the_abstract_methods_in_the_contracts_order() -> None:
    """Step 2's table has a row per abstract method of `ThreadRunStore`, in the skeleton's order."""
    table = _section("## 2. The thirteen methods")
    rows = re.findall(r"^\| `(\w+)\(", table, re.MULTILINE)
    from conformance.kit._skeleton import abstract_methods

    assert rows == abstract_methods()
