"""Print, for every store of the broken zoo, the rule the kit caught it by and how long that took.

    .venv/bin/python scripts/detection_table.py [--area AREA ...] [--jobs N] [--output FILE]

Each store gets the whole kit (`python -m conformance`, derandomized `ci` profile, the
capabilities the store declares) with `-x`, so the run stops at the first failing test; the
seconds are that run's wall time, interpreter start included. The table names the rule
of the first failure and whether it is the rule the store breaks on purpose. Exit
status 1 if the kit passed any broken store, else 0. Not part of CI: the whole zoo
takes several minutes.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import pkgutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"
sys.path.insert(0, str(TESTS))

import broken  # noqa: E402  (lives in tests/, put on the path above)
from broken import Broken  # noqa: E402


@dataclass(frozen=True)
class Detection:
    """What one `-x` run of the kit made of one broken store."""

    entry: Broken
    failed: tuple[str, ...]
    seconds: float
    status: int

    @property
    def caught_by(self) -> str:
        return ", ".join(self.failed) if self.failed else "MISSED"

    @property
    def verdict(self) -> str:
        if not self.failed:
            return "missed" if self.status == 0 else f"error (exit {self.status})"
        return "intended rule" if self.entry.rule in self.failed else "another rule first"


def zoo(areas: list[str] | None) -> list[Broken]:
    """Every broken store of the chosen areas (default: all), in area then listing order."""
    names = sorted(module.name for module in pkgutil.iter_modules(broken.__path__))
    unknown = sorted(set(areas or ()) - set(names))
    if unknown:
        raise SystemExit(f"unknown area(s) {', '.join(unknown)}; the areas are {', '.join(names)}")
    chosen = [name for name in names if not areas or name in areas]
    return [entry for name in chosen for entry in importlib.import_module(f"broken.{name}").ZOO]


def detect(entry: Broken) -> Detection:
    """Run the kit with -x against `entry`'s store and read which rules its report failed."""
    with tempfile.TemporaryDirectory(prefix="detect-") as folder:
        report = Path(folder) / "report.json"
        # "all" in the zoo means "whatever the store declares", as a backend author runs the kit.
        declared = [] if entry.capabilities == "all" else ["--capabilities", entry.capabilities]
        command = [
            sys.executable, "-m", "conformance", "--store", entry.target, *declared,
            "--conformance-profile", "ci", "--conformance-timeout", "10",
            "--conformance-report", str(report), "-x", "-q",
        ]  # fmt: skip
        environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
        started = time.perf_counter()
        done = subprocess.run(command, cwd=folder, env=environment, capture_output=True, check=False, timeout=900)
        seconds = time.perf_counter() - started
        failed: tuple[str, ...] = ()
        if report.exists():
            rules = json.loads(report.read_text(encoding="utf-8"))["rules"]
            failed = tuple(row["id"] for row in rules if row["status"] == "failed")
    return Detection(entry, failed, seconds, done.returncode)


def table(detections: list[Detection]) -> list[str]:
    """The Markdown table, one row per store, then a summary line."""
    lines = [
        "| broken store | bug | breaks | caught by (first failure, -x) | seconds | verdict |",
        "|---|---|---|---|---|---|",
    ]
    for found in detections:
        entry = found.entry
        lines.append(
            f"| `{entry.target.removeprefix('broken.')}` | {entry.bug} | {entry.rule} | {found.caught_by} "
            f"| {found.seconds:.1f} | {found.verdict} |"
        )
    intended = sum(found.verdict == "intended rule" for found in detections)
    other = sum(found.verdict == "another rule first" for found in detections)
    missed = len(detections) - intended - other
    seconds = sorted(found.seconds for found in detections)
    median = seconds[len(seconds) // 2] if seconds else 0.0
    lines.append("")
    lines.append(
        f"{len(detections)} broken stores: {intended} caught by their own rule first, {other} by another rule "
        f"first, {missed} missed; median {median:.1f} s, slowest {max(seconds, default=0.0):.1f} s, "
        f"total {sum(seconds):.0f} s."
    )
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--area", action="append", help="only this zoo module (repeatable), e.g. deletes")
    parser.add_argument("--jobs", type=int, default=1, help="stores checked at once (default 1, for clean timings)")
    parser.add_argument("--output", type=Path, help="also write the table to this file")
    options = parser.parse_args()
    if options.jobs < 1:
        parser.error("--jobs must be at least 1")
    entries = zoo(options.area)
    print(f"checking {len(entries)} broken stores with -x, {options.jobs} at a time", file=sys.stderr, flush=True)
    detections: list[Detection] = []
    with ThreadPoolExecutor(options.jobs) as pool:
        for number, found in enumerate(pool.map(detect, entries), start=1):
            detections.append(found)
            print(
                f"[{number}/{len(entries)}] {found.entry.target}: {found.caught_by} in {found.seconds:.1f} s",
                file=sys.stderr,
                flush=True,
            )
    text = "\n".join(table(detections)) + "\n"
    print(text, end="")
    if options.output is not None:
        options.output.write_text(text, encoding="utf-8")
    return 1 if any(found.verdict not in ("intended rule", "another rule first") for found in detections) else 0


if __name__ == "__main__":
    sys.exit(main())
