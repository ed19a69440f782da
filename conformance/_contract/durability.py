"""Contract tests: durability across reopen and store objects (DUR-1..2)."""

from __future__ import annotations


class DurabilityRules:
    """Filled in by the area's contract tests."""
