"""Contract tests: the thread hierarchy (HIE-1..6)."""

from __future__ import annotations


class HierarchyRules:
    """Filled in by the area's contract tests."""
