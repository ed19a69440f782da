"""Contract tests: isolation and atomicity (ISO-1, ATO-1..3)."""

from __future__ import annotations


class SafetyRules:
    """Filled in by the area's contract tests."""
