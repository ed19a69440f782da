"""Wall time of a whole kit run per store, serially and under pytest-xdist, with its verdict.

    .venv/bin/python benchmarks/bench_kit.py                     # reference, SQLite, PostgreSQL; -n 0, 2, 4
    .venv/bin/python benchmarks/bench_kit.py --store reference --workers 0 4 --rounds 2

Each run is `python -m conformance --store TARGET [-n N] --conformance-report FILE` in a
fresh folder, the `ci` profile, every capability the store declares. The serial run of a
store is the baseline its -n runs are measured against in the same invocation (ratio =
serial seconds / parallel seconds, so above 1 is faster), and every run's verdict (the
report's `conforms`, `complete` and per-rule statuses) must equal the serial one: a
faster run with another verdict is not a speed-up. Rounds alternate the worker counts,
so a change of machine load hits them alike; a time is the best round's. Never an
assertion: the numbers go to benchmarks/RESULTS.md by hand.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: The stores measured, by the name `--store` takes here.
STORES = {
    "reference": "reference_store:ReferenceStore",
    "sqlite": f"{ROOT / 'examples' / 'sqlite_store.py'}:make_store",
    "postgres": f"{ROOT / 'examples' / 'postgres_store.py'}:make_store",
}


@dataclass(frozen=True)
class Run:
    """One kit run: its wall time, exit status and what its report concluded."""

    store: str
    workers: int
    seconds: float
    status: int
    verdict: tuple[object, ...]


def run_kit(store: str, workers: int) -> Run:
    """Run the whole kit once against `store` with `workers` xdist workers (0: serially)."""
    with tempfile.TemporaryDirectory(prefix="bench-kit-") as folder:
        report = Path(folder) / "report.json"
        command = [sys.executable, "-m", "conformance", "--store", STORES[store], "-q"]
        command += ["--conformance-profile", "ci", "--conformance-report", str(report)]
        if workers:
            command += ["-n", str(workers)]
        started = time.perf_counter()
        done = subprocess.run(command, cwd=folder, capture_output=True, text=True, check=False)
        seconds = time.perf_counter() - started
        verdict: tuple[object, ...] = ("no report", done.stdout[-2000:], done.stderr[-2000:])
        if report.exists():
            data = json.loads(report.read_text(encoding="utf-8"))
            statuses = tuple(sorted((row["id"], row["status"]) for row in data["rules"]))
            verdict = (data["conforms"], data["complete"], statuses)
    return Run(store, workers, seconds, done.returncode, verdict)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", action="append", choices=sorted(STORES), help="repeatable; default all three")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2, 4], help="xdist worker counts (0: serial)")
    parser.add_argument("--rounds", type=int, default=1, help="runs per store and worker count; the best counts")
    options = parser.parse_args()
    stores = options.store or list(STORES)
    workers = sorted(set(options.workers) | {0})
    print(
        f"# {time.strftime('%Y-%m-%d %H:%M:%S %Z')}, {os.cpu_count()} CPUs, "
        f"load {os.getloadavg()[0]:.2f}, {platform.python_implementation()} {platform.python_version()}",
        flush=True,
    )
    best: dict[tuple[str, int], Run] = {}
    mismatched = False
    for store in stores:
        for _ in range(options.rounds):
            for count in workers:
                run = run_kit(store, count)
                load = os.getloadavg()[0]
                print(f"{store} -n {count}: {run.seconds:.1f} s, exit {run.status}, load {load:.2f}", flush=True)
                if (store, count) not in best or run.seconds < best[store, count].seconds:
                    best[store, count] = run
        serial = best[store, 0]
        if serial.status not in (0, 1) or serial.verdict[0] == "no report":
            print(f"{store}: the serial run did not finish: {serial.verdict}", file=sys.stderr)
            return 2
    print("\n| store | workers | seconds | speed-up vs serial | exit | same verdict as serial |")
    print("|---|---|---|---|---|---|")
    for store in stores:
        serial = best[store, 0]
        for count in workers:
            run = best[store, count]
            same = run.verdict == serial.verdict and run.status == serial.status
            mismatched |= not same
            label = "serial" if count == 0 else f"-n {count}"
            print(
                f"| {store} | {label} | {run.seconds:.1f} | {serial.seconds / run.seconds:.2f}x "
                f"| {run.status} | {'yes' if same else 'NO'} |"
            )
    return 1 if mismatched else 0


if __name__ == "__main__":
    sys.exit(main())
