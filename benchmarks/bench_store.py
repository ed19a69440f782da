"""Per-operation cost of the reference store at N = 1k, 10k, 100k, against a defaults-only baseline.

    .venv/bin/python benchmarks/bench_store.py                 # reference store, N = 1k, 10k, 100k
    .venv/bin/python benchmarks/bench_store.py --baseline      # plus the baseline at 1k and 10k, and ratios

The baseline is `tests/minimal_store.MinimalStore`: only the abstract methods, on plain
dicts, with every other method the base classes' default. Both are measured in the
same run. Each cost is the mean of repeated calls over at least `--seconds` of work.
Never used as an assertion: the numbers go to benchmarks/RESULTS.md by hand.
"""

from __future__ import annotations

import argparse
import gc
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
BASELINE_SIZES = (1_000, 10_000)
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
    """N messages in thread `log`; N threads in groups of 100 by resource, parent and prefix; N runs."""
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
        await store.create_run(run_record(i, f"runs{i % 100}"))
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
        started = time.perf_counter()
        await store.delete_thread_with_strategy(root, ChildThreadDeleteStrategy.CASCADE)
        return time.perf_counter() - started

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


async def measure(op: Op, seconds: float, *, timed_inside: bool) -> float:
    """Mean seconds per call over at least `seconds` of calls (3 calls at least, unless one is slow)."""
    calls = 0
    spent = 0.0
    while (calls < 3 and spent < 5 * seconds) or spent < seconds:
        started = time.perf_counter()
        result = await op()
        spent += float(result) if timed_inside else time.perf_counter() - started  # type: ignore[arg-type]
        calls += 1
        if calls >= 10_000:
            break
    return spent / calls


async def bench(
    store_type: type[ThreadRunStore], n: int, seconds: float, skip: tuple[str, ...] = ()
) -> dict[str, float]:
    fixture = await fill(store_type(), n)
    # Move the filled store out of the collector's sight: costs then show the operation,
    # not how long the cyclic GC takes to walk a large heap.
    gc.collect()
    gc.freeze()
    return {
        name: await measure(op, seconds, timed_inside=name.startswith("cascade"))
        for name, op in operations(fixture).items()
        if name not in skip
    }


async def bytes_per_message(n: int) -> float:
    gc.collect()
    tracemalloc.start()
    store = ReferenceStore()
    before = tracemalloc.get_traced_memory()[0]
    for start in range(0, n, 1_000):
        await store.append_message_records("t", [message(i) for i in range(start, min(start + 1_000, n))])
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return (after - before) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", action="store_true", help="also measure the defaults-only baseline")
    parser.add_argument("--seconds", type=float, default=0.2, help="minimum time spent per measurement")
    args = parser.parse_args()
    results: dict[tuple[str, int], dict[str, float]] = {}
    for n in SIZES:
        results[("reference", n)] = anyio.run(bench, ReferenceStore, n, args.seconds)
        print(f"measured reference store at N={n}", file=sys.stderr)
    if args.baseline:
        for n in BASELINE_SIZES:
            # The defaults walk a cascade by scanning every thread per level: minutes at 10k, so 1k only.
            skip = ("cascade delete, 1k-thread tree",) if n > 1_000 else ()
            results[("baseline", n)] = anyio.run(bench, MinimalStore, n, args.seconds, skip)
            print(f"measured baseline store at N={n}", file=sys.stderr)
    names = list(results[("reference", SIZES[0])])
    header = "| operation | " + " | ".join(f"ref µs N={n:,}" for n in SIZES) + " | growth 1k→100k |"
    if args.baseline:
        header += " baseline µs N=10,000 | baseline/ref at 10k |"
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for name in names:
        ref = [results[("reference", n)][name] * 1e6 for n in SIZES]
        row = f"| {name} | " + " | ".join(f"{value:,.1f}" for value in ref) + f" | {ref[-1] / ref[0]:.2f}x |"
        if args.baseline:
            base_seconds = results[("baseline", 10_000)].get(name)
            if base_seconds is None:
                row += " n/a | n/a |"
            else:
                row += f" {base_seconds * 1e6:,.1f} | {base_seconds * 1e6 / ref[1]:,.0f}x |"
        print(row)
    per_message = anyio.run(bytes_per_message, 100_000)
    print(f"\nreference store: {per_message:,.0f} bytes per message (100k messages, tracemalloc)")


if __name__ == "__main__":
    main()
