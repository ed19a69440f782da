"""Contract tests: the message log and its read view (MSG-1..8, VIEW-1..2, MOD-3)."""

from __future__ import annotations


class MessageRules:
    """Filled in by the area's contract tests."""
