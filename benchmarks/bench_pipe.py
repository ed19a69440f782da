"""What a round trip over a pair of pipes costs when the reader sleeps, against when it polls.

    .venv/bin/python benchmarks/bench_pipe.py [--trips 20000] [--rounds 3]

The wire protocol is a ping-pong: the kit sends a request and waits, the store process
answers and waits. This measures the floor of that, with no JSON and no store: a
parent and a child process echo one short line back and forth, `--trips` times, in
three modes, each round running every mode in turn:

- `sleep`: both sides block in `read` (the kernel wakes the reader, often on the
  other core);
- `poll`: both sides poll a non-blocking pipe until the line is there (what
  `BusyWait` does for up to 100 µs before it sleeps);
- `one core`: as `sleep`, with both processes pinned to one core (Linux only), to show
  that the cost of `sleep` is waking a process on another core, not the pipe.

Prints each mode's best round in µs per round trip and its ratio to `poll`, as Markdown.
Numbers are measurements, never assertions.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

LINE = b'{"jsonrpc":"2.0","id":1,"result":null}\n'


def _echo(poll: bool) -> None:
    """The child: echo every read back until end of input."""
    if poll:
        os.set_blocking(0, False)
    while True:
        data = _read(0, poll)
        if not data:
            return
        os.write(1, data)


def _read(fd: int, poll: bool) -> bytes:
    if not poll:
        return os.read(fd, 4096)
    while True:
        try:
            return os.read(fd, 4096)
        except BlockingIOError:
            continue


def round_trip(mode: str, trips: int) -> float:
    """Microseconds per round trip in `mode`, measured by the parent."""
    poll = mode == "poll"
    child = subprocess.Popen(
        [sys.executable, __file__, "--echo", "poll" if poll else "sleep"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert child.stdin is not None
    assert child.stdout is not None
    pinned = mode == "one core"
    allowed = os.sched_getaffinity(0) if pinned else set()
    if pinned:
        core = {min(allowed)}
        os.sched_setaffinity(0, core)
        os.sched_setaffinity(child.pid, core)
    write_fd, read_fd = child.stdin.fileno(), child.stdout.fileno()
    if poll:
        os.set_blocking(read_fd, False)
    try:
        for _ in range(100):  # warm up: the child has started and imported nothing more
            os.write(write_fd, LINE)
            _read(read_fd, poll)
        started = time.perf_counter()
        for _ in range(trips):
            os.write(write_fd, LINE)
            _read(read_fd, poll)
        elapsed = time.perf_counter() - started
    finally:
        child.stdin.close()
        child.wait()
        child.stdout.close()
        if pinned:
            os.sched_setaffinity(0, allowed)
    return elapsed / trips * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trips", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--echo", choices=("poll", "sleep"), help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.echo:
        _echo(arguments.echo == "poll")
        return
    modes = ["sleep", "poll"] + (["one core"] if hasattr(os, "sched_setaffinity") else [])
    best = {mode: float("inf") for mode in modes}
    print(f"load average at start: {os.getloadavg()[0]:.2f}", file=sys.stderr)
    for number in range(1, arguments.rounds + 1):
        for mode in modes:
            cost = round_trip(mode, arguments.trips)
            best[mode] = min(best[mode], cost)
            print(f"round {number} {mode:<9} {cost:7.1f} µs per round trip", file=sys.stderr)
    print("\n| mode | µs per round trip (best round) | ratio to poll |")
    print("|---|---|---|")
    for mode in modes:
        print(f"| {mode} | {best[mode]:.1f} | {best[mode] / best['poll']:.1f}x |")


if __name__ == "__main__":
    main()
