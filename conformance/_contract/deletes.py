"""Contract tests: deletes with a child strategy (DEL-1..6)."""

from __future__ import annotations


class DeleteRules:
    """Filled in by the area's contract tests."""
