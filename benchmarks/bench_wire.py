"""The kit's wall time for a store over the wire against the same store in process.

    .venv/bin/python benchmarks/bench_wire.py [--rounds 3] [--profile ci] [--modes in-process,wire,...]

Each round runs the whole kit once per mode, in turn (so a change of machine load hits
every mode alike), each as its own `python -m conformance` subprocess from a scratch
directory, and records its wall time. Modes:

- `in-process`: `--store reference_store:ReferenceStore`;
- `wire`: the same store served by `python -m conformance serve`, one process reused
  from store to store (`close`, then `open`: the kit's default);
- `wire-per-store`: the same, one process per store (`StoreCommand(reuse=False)`);
- `node`, `node-per-store`: `examples/node/store.mjs`, reused or one per store.

Prints one row per run and, per mode, the median wall time and its ratio to the
in-process median, and the same for the CPU time of the whole run (the kit and every
store process it started, which are its children: less sensitive to other load on the
machine than wall time), as Markdown for `benchmarks/RESULTS.md`. Numbers are
measurements, never assertions.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SERVE = f"{sys.executable} -m conformance serve --store reference_store:ReferenceStore"
NODE = f"node {ROOT / 'examples' / 'node' / 'store.mjs'}"
PER_STORE_MODULE = """
from conformance import StoreCommand

def make(command):
    return StoreCommand(command, reuse=False)

served = make({serve!r})
node = make({node!r})
"""

MODES: dict[str, list[str]] = {
    "in-process": ["--store", "reference_store:ReferenceStore"],
    "wire": ["--store-command", SERVE],
    "wire-per-store": ["--store", "per_store.py:served"],
    "node": ["--store-command", NODE],
    "node-per-store": ["--store", "per_store.py:node"],
}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_kit(arguments: list[str], *, profile: str, folder: Path) -> tuple[float, float, str]:
    """Run the kit once; its wall time and CPU time in seconds, and its verdict line."""
    command = [
        sys.executable,
        "-m",
        "conformance",
        *arguments,
        "--conformance-profile",
        profile,
        "-q",
        "-p",
        "no:randomly",
    ]
    cpu = _children_cpu()
    started = time.perf_counter()
    result = subprocess.run(command, cwd=folder, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    cpu = _children_cpu() - cpu
    verdict = next((line for line in result.stdout.splitlines() if line.startswith("verdict:")), "")
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(arguments)} failed ({result.returncode}):\n{result.stdout[-3000:]}")
    return elapsed, cpu, verdict


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", default="ci")
    parser.add_argument("--modes", default="in-process,wire", help=f"comma list of {', '.join(MODES)}")
    options = parser.parse_args()
    modes = [mode.strip() for mode in options.modes.split(",")]
    times: dict[str, list[float]] = {mode: [] for mode in modes}
    cpus: dict[str, list[float]] = {mode: [] for mode in modes}
    with tempfile.TemporaryDirectory(prefix="bench-wire-") as scratch:
        folder = Path(scratch)
        (folder / "per_store.py").write_text(PER_STORE_MODULE.format(serve=SERVE, node=NODE), encoding="utf-8")
        os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
        print(f"load average at start: {os.getloadavg()[0]:.2f}")
        for number in range(1, options.rounds + 1):
            for mode in modes:
                elapsed, cpu, verdict = run_kit(MODES[mode], profile=options.profile, folder=folder)
                times[mode].append(elapsed)
                cpus[mode].append(cpu)
                load = os.getloadavg()[0]
                timing = f"{elapsed:6.1f} s wall {cpu:6.1f} s CPU"
                print(f"round {number} {mode:15s} {timing}  load {load:.2f}  {verdict[:40]}")
    print(
        "\n| mode | wall (s), each run | median wall | wall ratio | CPU (s), each run | median CPU | CPU ratio |"
        "\n|---|---|---|---|---|---|---|"
    )
    for mode in modes:
        cells = []
        for values in (times, cpus):
            median = statistics.median(values[mode])
            base = statistics.median(values["in-process"]) if "in-process" in values else None
            ratio = f"{median / base:.2f}x" if base else "-"
            cells += [", ".join(f"{v:.1f}" for v in values[mode]), f"{median:.1f}", ratio]
        print(f"| {mode} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
