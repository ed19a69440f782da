"""`python -m conformance`: run the contract suite against a store (default: the reference store).

    python -m conformance [--store TARGET] [--capabilities LIST] [--conformance-profile P]
                          [--conformance-report PATH] [--conformance-baseline FILE] [pytest args...]

Exit status is pytest's: 0 when every selected rule the store must keep passed.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from conformance._target import DEFAULT_TARGET

PLUGIN_MODULE = "conformance._plugin"


def pytest_arguments(argv: Sequence[str]) -> list[str]:
    """The pytest command line that runs the suite folder with the caller's arguments."""
    args = list(argv)
    if not any(arg == "--store" or arg.startswith("--store=") for arg in args):
        args = ["--store", DEFAULT_TARGET, *args]
    suite = Path(__file__).resolve().parent / "suite"
    plugin = [] if _plugin_installed() else ["-p", PLUGIN_MODULE]
    return [str(suite), "--rootdir", str(suite), "-p", "no:cacheprovider", *plugin, *args]


def _plugin_installed() -> bool:
    return any(ep.value == PLUGIN_MODULE for ep in entry_points(group="pytest11"))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the kit; returns pytest's exit status."""
    return int(pytest.main(pytest_arguments(sys.argv[1:] if argv is None else argv)))


if __name__ == "__main__":
    sys.exit(main())
