"""Contract tests: checkpoints and the run projection (CKP-1..6)."""

from __future__ import annotations


class CheckpointRules:
    """Filled in by the area's contract tests."""
