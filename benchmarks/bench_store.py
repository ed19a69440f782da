"""Per-operation cost of the reference store at N = 1k, 10k, 100k, against a defaults-only baseline.

    .venv/bin/python benchmarks/bench_store.py                 # reference store, N = 1k, 10k, 100k
    .venv/bin/python benchmarks/bench_store.py --baseline      # plus the baseline at 10k, and ratios

The baseline is `tests/minimal_store.MinimalStore`: only the abstract methods, on plain
dicts, with every other method the base classes' default. All stores are filled and
measured in the same process, round-robin, `--rounds` times; a cost is the best
round's mean CPU time per call over at least `--seconds` (see `measure` and `bench`).
Memory comes from fresh subprocesses that hold only a store of N messages: peak RSS
(`ru_maxrss`) above the subprocess's own RSS before filling, and tracemalloc's count.
Never used as an assertion: the numbers go to benchmarks/RESULTS.md by hand.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import resource
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from minimal_store import MinimalStore

from conformance import (
    ChildThreadDeleteStrategy,
    Message,
    MessageOrder,
    MessageQuery,
    Role,
    RunQuery,
    RunRecord,
    RunStatus,
    Thread,
    ThreadMetadata,
    ThreadParentFilter,
    ThreadQuery,
    ThreadRunStore,
)
from reference_store import ReferenceStore

SIZES = (1_000, 10_000, 100_000)
BASELINE_SIZE = 10_000
# The defaults walk a cascade by scanning every thread per level: minutes at 10k.
BASELINE_SKIPS = ("cascade delete, 1k-thread tree",)
STORES: dict[str, type[ThreadRunStore]] = {"reference": ReferenceStore, "baseline": MinimalStore}
Op = Callable[[], Awaitable[object]]


def message(index: int) -> Message:
    return Message(id=f"m{index}", role=Role.USER, content=[{"type": "text", "text": f"message {index}"}])


def run_record(index: int, thread_id: str) -> RunRecord:
    return RunRecord(
        run_id=f"r{index:07d}",
        thread_id=thread_id,
        agent_id="a",
        status=RunStatus.RUNNING,
        created_at=index,
        updated_at=index,
    )


@dataclass
class Fixture:
    """A store filled with N messages in one thread, N threads and N runs."""

    store: ThreadRunStore
    n: int
    counter: int = 0

    def fresh(self) -> int:
        self.counter += 1
        return self.counter


async def fill(store: ThreadRunStore, n: int) -> Fixture:
    """N messages in thread `log`; N threads in groups of 100 by resource, parent and prefix; N runs over 10 threads.

    Every read below returns the same amount at every N (a page of 50, 100 children,
    one run), so its growth from 1k to 100k is the cost of finding it, not of its size.
    """
    batch = 1_000
    for start in range(0, n, batch):
        await store.append_message_records("log", [message(i) for i in range(start, min(start + batch, n))])
    await store.save_thread(Thread(id="log"))
    for i in range(n):
        group = i // 100
        await store.save_thread(
            Thread(
                id=f"g{group:05d}/t{i:07d}",
                resource_id=f"res{group}",
                parent_thread_id="log" if group == 0 else None,
                metadata=ThreadMetadata(updated_at=i),
            )
        )
    for i in range(n):
        await store.create_run(run_record(i, f"runs{i % 10}"))
    return Fixture(store, n)


def operations(f: Fixture) -> dict[str, Op]:
    store, n = f.store, f.n

    async def append() -> object:
        return await store.append_message_records("log", [message(n + f.fresh())])

    async def checkpoint_append() -> object:
        version = len(await store.load_committed_messages("log") or []) if isinstance(store, MinimalStore) else None
        run = run_record(0, "log")
        return await store.checkpoint_append("log", [message(10 * n + f.fresh())], version, run)

    async def cascade() -> object:
        root = f"tree{f.fresh()}"
        await store.save_thread(Thread(id=root))
        for i in range(999):
            await store.save_thread(Thread(id=f"{root}/{i}", parent_thread_id=root if i < 10 else f"{root}/{i % 10}"))
        started = time.process_time()
        await store.delete_thread_with_strategy(root, ChildThreadDeleteStrategy.CASCADE)
        return time.process_time() - started

    return {
        "append one message": append,
        "page of 50 after seq N/2, asc": lambda: store.list_message_records(
            "log", MessageQuery(after=n // 2, limit=50)
        ),
        "page of 50 after seq N/2, desc": lambda: store.list_message_records(
            "log", MessageQuery(after=n // 2, limit=50, order=MessageOrder.DESC)
        ),
        "load_message_record by id": lambda: store.load_message_record("log", f"m{n // 2}"),
        "checkpoint_append one message": checkpoint_append,
        "list_threads_query by resource": lambda: store.list_threads_query(ThreadQuery(resource_id="res7")),
        "list_threads_query by prefix": lambda: store.list_threads_query(ThreadQuery(id_prefix="g00007/")),
        "list_threads_query by parent": lambda: store.list_threads_query(
            ThreadQuery(parent_filter=ThreadParentFilter.parent("log"))
        ),
        "list_child_threads": lambda: store.list_child_threads("log"),
        "cascade delete, 1k-thread tree": cascade,
        "latest_run": lambda: store.latest_run("runs7"),
        "list_runs by thread": lambda: store.list_runs(RunQuery(thread_id="runs7", limit=50)),
    }


# Operations that grow the log: capped at N calls per measurement, then the log is reset to N messages.
GROWING = ("append one message", "checkpoint_append one message")


async def measure(op: Op, seconds: float, *, timed_inside: bool, max_calls: int) -> float:
    """Mean CPU seconds per call over at least `seconds` of CPU time (or `max_calls` calls).

    Calls run in doubling batches between two reads of the process CPU clock, so the
    clock (6 µs a read on this VM) adds nothing measurable, and time the process
    spends descheduled by other load is not counted. An op timed inside returns its
    own CPU seconds (the cascade excludes building its tree).
    """
    calls, spent, batch = 0, 0.0, 1
    while spent < seconds and calls < max_calls:
        batch = min(batch, max_calls - calls)
        if timed_inside:
            for _ in range(batch):
                spent += float(await op())  # type: ignore[arg-type]
        else:
            started = time.process_time()
            for _ in range(batch):
                await op()
            spent += time.process_time() - started
        calls += batch
        batch *= 2
    return spent / calls


async def bench(sizes: dict[str, list[int]], seconds: float, rounds: int) -> dict[tuple[str, int, str], float]:
    """The best of `rounds` mean costs of every op on every store, measured round-robin.

    All stores are filled first and live in one process; each round measures each op
    on each store in turn, so a change of machine load hits every N alike, and the
    minimum over rounds is the cost least disturbed by it.
    """
    fixtures = {(kind, n): await fill(STORES[kind](), n) for kind, ns in sizes.items() for n in ns}
    # Move the filled stores out of the collector's sight: costs then show the operation,
    # not how long the cyclic GC takes to walk a large heap.
    gc.collect()
    gc.freeze()
    best: dict[tuple[str, int, str], float] = {}
    for round_number in range(rounds):
        for name in operations(next(iter(fixtures.values()))):
            for (kind, n), fixture in fixtures.items():
                if kind == "baseline" and name in BASELINE_SKIPS:
                    continue
                op = operations(fixture)[name]
                cost = await measure(
                    op, seconds, timed_inside=name.startswith("cascade"), max_calls=n if name in GROWING else 1_000_000
                )
                best[(kind, n, name)] = min(cost, best.get((kind, n, name), cost))
                if name in GROWING:
                    await fixture.store.save_messages("log", [message(i) for i in range(n)])
                    gc.collect()
                    gc.freeze()
        print(f"round {round_number + 1}/{rounds} done, load average {os.getloadavg()[0]:.2f}", file=sys.stderr)
    return best


# ── memory: each figure from a fresh subprocess holding only the store ──────────


async def fill_messages(n: int) -> ReferenceStore:
    store = ReferenceStore()
    for start in range(0, n, 1_000):
        await store.append_message_records("t", [message(i) for i in range(start, min(start + 1_000, n))])
    return store


def memory_probe(what: str, n: int) -> None:
    """In a subprocess: print the bytes a store of `n` messages adds, as peak RSS or as traced allocations."""
    gc.collect()
    if what == "rss":
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        store = anyio.run(fill_messages, n)
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print((after - before) * 1024)  # ru_maxrss is in KiB on Linux
    else:
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        store = anyio.run(fill_messages, n)
        print(tracemalloc.get_traced_memory()[0] - before)
    del store  # alive until measured


def memory(what: str, n: int) -> int:
    probe = [sys.executable, __file__, "--memory-probe", what, str(n)]
    return int(subprocess.run(probe, check=True, capture_output=True, text=True).stdout)


# ── the report ───────────────────────────────────────────────────────


def machine() -> str:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor() or "unknown",
    )
    return (
        f"{os.cpu_count()} CPUs ({model}), Python {platform.python_version()}, {platform.system()} {platform.release()}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", action="store_true", help="also measure the defaults-only baseline at N=10,000")
    parser.add_argument("--seconds", type=float, default=0.1, help="minimum CPU time per measurement")
    parser.add_argument("--rounds", type=int, default=5, help="measurements per op and store; the best one is kept")
    parser.add_argument("--memory-probe", nargs=2, metavar=("WHAT", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_probe:
        memory_probe(args.memory_probe[0], int(args.memory_probe[1]))
        return
    print(f"machine: {machine()}", file=sys.stderr)
    print(f"start: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}, load average {os.getloadavg()}", file=sys.stderr)
    # Memory first: a child inherits its parent's peak RSS (Linux keeps ru_maxrss across
    # fork and exec), so the probes must start while this process is still small.
    n = SIZES[-1]
    rss, traced = memory("rss", n), memory("traced", n)
    sizes = {"reference": list(SIZES), **({"baseline": [BASELINE_SIZE]} if args.baseline else {})}
    results = anyio.run(bench, sizes, args.seconds, args.rounds)
    names = list(dict.fromkeys(name for _, _, name in results))
    header = "| operation | " + " | ".join(f"ref µs N={n:,}" for n in SIZES) + " | growth 1k→100k |"
    if args.baseline:
        header += f" baseline µs N={BASELINE_SIZE:,} | baseline/ref at {BASELINE_SIZE:,} |"
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for name in names:
        ref = [results[("reference", n, name)] * 1e6 for n in SIZES]
        row = f"| {name} | " + " | ".join(f"{value:,.1f}" for value in ref) + f" | {ref[-1] / ref[0]:.2f}x |"
        if args.baseline:
            base = results.get(("baseline", BASELINE_SIZE, name))
            ratio = "n/a | n/a" if base is None else f"{base * 1e6:,.1f} | {base * 1e6 / ref[1]:,.0f}x"
            row += f" {ratio} |"
        print(row)
    only_at_largest = "| - " * (len(SIZES) - 1)
    filler = " - | - |" if args.baseline else ""
    for label, value in (
        (f"peak RSS holding {n:,} messages, MiB above the subprocess before filling", f"{rss / 2**20:,.1f}"),
        ("bytes per message, from that peak RSS", f"{rss / n:,.0f}"),
        ("bytes per message, traced by tracemalloc", f"{traced / n:,.0f}"),
    ):
        print(f"| {label} {only_at_largest}| {value} | - |{filler}")
    print(f"end: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}, load average {os.getloadavg()}", file=sys.stderr)


if __name__ == "__main__":
    main()
