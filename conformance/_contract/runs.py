"""Contract tests: run records (RUN-1..4, MOD-4)."""

from __future__ import annotations


class RunRules:
    """Filled in by the area's contract tests."""
