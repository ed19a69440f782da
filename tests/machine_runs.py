"""Run one of the kit's state machines against one store, in a pytest session of its own."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

SUITE = Path(importlib.import_module("conformance.suite").__file__ or "").parent


def run_machine(pytester: pytest.Pytester, target: str, machine_test: str) -> pytest.RunResult:
    """Only `machine_test` of the suite, against `target`, at the derandomized `ci` profile."""
    return pytester.runpytest_inprocess(
        str(SUITE),
        "--store", target, "--capabilities", "all",
        "-m", "conformance_stateful", "-k", machine_test,
        "--conformance-profile", "ci", "--conformance-timeout", "3",
        "-p", "no:cacheprovider", "-q",
    )  # fmt: skip
