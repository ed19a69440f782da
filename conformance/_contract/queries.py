"""Contract tests: thread queries, pages and cursors (QRY-1..5, CUR-1..4, SEC-1)."""

from __future__ import annotations


class QueryRules:
    """Filled in by the area's contract tests."""
