"""Print, for every store of the broken zoo, the rule the kit caught it by and how long that took.

    .venv/bin/python scripts/detection_table.py [--area AREA ...] [--jobs N] [--output FILE]

Each store gets the whole kit (`python -m conformance`, derandomized `ci` profile, the
capabilities the store declares) twice. First with `-x`, so the run stops at the first
failing test; the seconds are that run's wall time, interpreter start included. The table
names the rule of the first failure and whether it is the rule the store breaks on
purpose, one its entry lists in `also` (rules the bug genuinely breaks too), or another.
Then without the state machines (`-m "not conformance_stateful"`), every rule, no `-x`:
whether the example tests alone fail the store's rule, and which other rules fail
(a rule outside `also` is marked `!`). Exit status 1 if the kit passed any broken store,
or the example tests alone missed one, else 0. Not part of CI: the whole zoo takes
a quarter of an hour or more.
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
    """What the kit made of one broken store: its `-x` run, then its run without machines."""

    entry: Broken
    failed: tuple[str, ...]
    seconds: float
    status: int
    #: The rules the run without state machines (every rule, no -x) failed.
    examples_failed: tuple[str, ...] = ()
    examples_status: int = 0

    @property
    def caught_by(self) -> str:
        return ", ".join(self.failed) if self.failed else "MISSED"

    @property
    def verdict(self) -> str:
        if not self.failed:
            return "missed" if self.status == 0 else f"error (exit {self.status})"
        if self.entry.rule in self.failed:
            return "intended rule"
        if set(self.failed) <= set(self.entry.also):
            return "another rule first (also)"
        return "another rule first"

    @property
    def without_machines(self) -> str:
        if self.entry.rule in self.examples_failed:
            return "yes"
        return "MISSED" if self.examples_status in (0, 1) else f"error (exit {self.examples_status})"

    @property
    def others(self) -> tuple[str, ...]:
        """Rules beside the store's own that the run without machines failed."""
        return tuple(rule_id for rule_id in self.examples_failed if rule_id != self.entry.rule)

    @property
    def unexpected(self) -> tuple[str, ...]:
        """Other failed rules its entry's `also` does not list."""
        return tuple(rule_id for rule_id in self.others if rule_id not in self.entry.also)


def zoo(areas: list[str] | None) -> list[Broken]:
    """Every broken store of the chosen areas (default: all) that can run here, in area then listing order.

    A store whose server does not answer (its entry's `unavailable` check) is left out, saying why.
    """
    names = sorted(module.name for module in pkgutil.iter_modules(broken.__path__))
    unknown = sorted(set(areas or ()) - set(names))
    if unknown:
        raise SystemExit(f"unknown area(s) {', '.join(unknown)}; the areas are {', '.join(names)}")
    chosen = [name for name in names if not areas or name in areas]
    entries = []
    for entry in (entry for name in chosen for entry in importlib.import_module(f"broken.{name}").ZOO):
        reason = entry.unavailable() if entry.unavailable is not None else None
        if reason is None:
            entries.append(entry)
        else:
            print(f"left out {entry.target}: {reason}", file=sys.stderr, flush=True)
    return entries


def _run(entry: Broken, *options: str) -> tuple[tuple[str, ...], float, int]:
    """Run the kit on `entry`'s store with `options`: the failed rules of its report, wall seconds, exit status."""
    with tempfile.TemporaryDirectory(prefix="detect-") as folder:
        report = Path(folder) / "report.json"
        # "all" in the zoo means "whatever the store declares", as a backend author runs the kit.
        declared = [] if entry.capabilities == "all" else ["--capabilities", entry.capabilities]
        command = [
            sys.executable, "-m", "conformance", "--store", entry.target, *declared,
            "--conformance-profile", "ci", "--conformance-timeout", "10",
            "--conformance-report", str(report), "-q", *options,
        ]  # fmt: skip
        environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
        started = time.perf_counter()
        done = subprocess.run(command, cwd=folder, env=environment, capture_output=True, check=False, timeout=1800)
        seconds = time.perf_counter() - started
        failed: tuple[str, ...] = ()
        if report.exists():
            rules = json.loads(report.read_text(encoding="utf-8"))["rules"]
            failed = tuple(row["id"] for row in rules if row["status"] == "failed")
    return failed, seconds, done.returncode


def detect(entry: Broken) -> Detection:
    """Run the kit with -x against `entry`'s store, then without machines, and read which rules failed."""
    failed, seconds, status = _run(entry, "-x")
    examples_failed, _, examples_status = _run(entry, "-m", "not conformance_stateful")
    return Detection(entry, failed, seconds, status, examples_failed, examples_status)


def table(detections: list[Detection]) -> list[str]:
    """The Markdown table, one row per store, then a summary line."""
    lines = [
        "| broken store | bug | breaks | also | caught by (first failure, -x) | seconds | verdict "
        "| caught without machines | also failed |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for found in detections:
        entry = found.entry
        others = ", ".join(f"{r}!" if r in found.unexpected else r for r in found.others) or "-"
        lines.append(
            f"| `{entry.target.removeprefix('broken.')}` | {entry.bug} | {entry.rule} | {', '.join(entry.also) or '-'} "
            f"| {found.caught_by} | {found.seconds:.1f} | {found.verdict} | {found.without_machines} | {others} |"
        )
    intended = sum(found.verdict == "intended rule" for found in detections)
    honest = sum(found.verdict == "another rule first (also)" for found in detections)
    other = sum(found.verdict.startswith("another rule first") for found in detections)
    missed = len(detections) - intended - other
    examples = sum(found.without_machines == "yes" for found in detections)
    unexpected = sum(bool(found.unexpected) for found in detections)
    seconds = sorted(found.seconds for found in detections)
    median = seconds[len(seconds) // 2] if seconds else 0.0
    lines.append("")
    lines.append(
        f"{len(detections)} broken stores: {intended} caught by their own rule first, {other} by another rule "
        f"first ({honest} of them by a rule their bug also breaks), {missed} missed; median {median:.1f} s, "
        f"slowest {max(seconds, default=0.0):.1f} s, total {sum(seconds):.0f} s (the -x runs). Without the state "
        f"machines: {examples} caught by their own rule, {len(detections) - examples} missed; "
        f"{unexpected} failed a rule outside `also`."
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
    print(
        f"checking {len(entries)} broken stores with -x, then without machines, {options.jobs} at a time",
        file=sys.stderr,
        flush=True,
    )
    detections: list[Detection] = []
    with ThreadPoolExecutor(options.jobs) as pool:
        for number, found in enumerate(pool.map(detect, entries), start=1):
            detections.append(found)
            print(
                f"[{number}/{len(entries)}] {found.entry.target}: {found.caught_by} in {found.seconds:.1f} s; "
                f"without machines {found.without_machines}, others {', '.join(found.others) or '-'}",
                file=sys.stderr,
                flush=True,
            )
    text = "\n".join(table(detections)) + "\n"
    print(text, end="")
    if options.output is not None:
        options.output.write_text(text, encoding="utf-8")
    caught = ("intended rule", "another rule first (also)", "another rule first")
    return 1 if any(found.verdict not in caught or found.without_machines != "yes" for found in detections) else 0


if __name__ == "__main__":
    sys.exit(main())
