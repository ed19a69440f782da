"""Contract tests: concurrent writers (CON-1..3)."""

from __future__ import annotations


class ConcurrencyRules:
    """Filled in by the area's contract tests."""
