"""The writer that `test_sqlite_crash.py` kills: a checkpoint schedule, and a server that forks writers.

The schedule: on each thread of `THREADS`, step `n` commits one delta of
`delta_size(n)` messages (ids `message_ids(thread, n)`) together with run
`run_id(thread, n)`, whose `output` names exactly that delta and its seqs; the thread
record takes the run as its latest (CKP-6). Steps with `n % 3 == 2` rewrite the whole
log with `checkpoint`, the others append with `checkpoint_append` at the version they
read. Whatever a store shows, it must be the first N steps of this schedule, whole.

`python tests/sqlite_crash_writer.py serve` imports the SQLite example once, then for
each JSON line `{"location": ..., "steps": N or null}` on stdin forks a writer that
opens the store, prints `{"ready": pid}`, and runs the schedule from where the store
stands, N steps per thread or (null) until it is killed. The server prints
`{"pid": pid}` after the fork and `{"exited": pid, "status": status}` once it reaped
the writer. Forking from a process that never started an event loop (or a thread)
costs a millisecond, where starting Python for each of hundreds of writers would
cost a third of a second.
"""

from __future__ import annotations

import functools
import importlib
import json
import os
import sys
import traceback
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio
import anyio.lowlevel

from conformance import (
    Message,
    MessageSeqRange,
    Role,
    RunMessageOutput,
    RunRecord,
    RunStatus,
    ThreadRunStore,
    open_store,
)

THREADS = ("crash-a", "crash-b")
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
#: A writer left to run (steps null) stops by itself after this many seconds, should nobody kill it.
RUN_AWAY_SECONDS = 60.0
#: Text that makes a message span a good part of a database page, so a delta spans several.
FILLER = "lorem ipsum dolor sit amet " * 24

StoreFactory = Callable[..., Awaitable[ThreadRunStore]]


def store_factory() -> StoreFactory:
    """`SqliteStore.open` of `examples/sqlite_store.py` (a folder of scripts, not a package), `synchronous="NORMAL"`.

    A SIGKILL leaves the operating system's page cache whole, so the fsync per commit
    that `FULL` adds changes nothing a killed process can observe; without it a writer
    commits several times more steps between kills, and kills fall on more moments.
    """
    if str(EXAMPLES) not in sys.path:
        sys.path.insert(0, str(EXAMPLES))
    opener: StoreFactory = importlib.import_module("sqlite_store").SqliteStore.open
    return functools.partial(opener, synchronous="NORMAL")


def delta_size(step: int) -> int:
    """How many messages step `step` commits: 1 to 4."""
    return 1 + step % 4


def message_ids(thread_id: str, step: int) -> list[str]:
    """The ids of the messages step `step` commits on `thread_id`."""
    return [f"{thread_id}:{step:05}:{index}" for index in range(delta_size(step))]


def run_id(thread_id: str, step: int) -> str:
    """The id of the run step `step` commits on `thread_id`."""
    return f"{thread_id}:run:{step:05}"


def step_of(run: RunRecord | None) -> int:
    """How many steps a thread whose latest run is `run` has taken."""
    return 0 if run is None else int(run.run_id.rsplit(":", 1)[1]) + 1


def delta(thread_id: str, step: int) -> list[Message]:
    """The messages step `step` commits."""
    return [
        Message(id=message_id, role=Role.USER, content=[{"type": "text", "text": f"{message_id} {FILLER}"}])
        for message_id in message_ids(thread_id, step)
    ]


def run(thread_id: str, step: int, version: int) -> RunRecord:
    """The done run of step `step`, its output the delta appended after `version` messages."""
    ids = message_ids(thread_id, step)
    return RunRecord(
        run_id=run_id(thread_id, step),
        thread_id=thread_id,
        agent_id="crash-writer",
        status=RunStatus.DONE,
        output=RunMessageOutput(
            thread_id=thread_id, range=MessageSeqRange(from_seq=version + 1, to_seq=version + len(ids)), message_ids=ids
        ),
        created_at=step,
        updated_at=step,
        finished_at=step,
    )


async def take_step(store: ThreadRunStore, thread_id: str) -> None:
    """Commit the next step of `thread_id`'s schedule, from what the store shows."""
    resumed = await store.load_checkpoint(thread_id)
    version = resumed.message_version if resumed is not None else 0
    step = step_of(resumed.latest_run if resumed is not None else None)
    if step % 3 == 2:
        committed = await store.load_committed_messages(thread_id) or []
        await store.checkpoint(thread_id, [*committed, *delta(thread_id, step)], run(thread_id, step, version))
    else:
        await store.checkpoint_append(thread_id, delta(thread_id, step), version, run(thread_id, step, version))


def say(**fields: int) -> None:
    """Write one JSON line to stdout in one system call: server and writer share the pipe, whole lines never mix."""
    os.write(sys.stdout.fileno(), (json.dumps(fields) + "\n").encode())


async def write(location: str, steps: int | None) -> None:
    """Open the store, say so, and take `steps` steps on every thread (None: until killed)."""
    async with open_store(store_factory(), Path(location)) as store:
        say(ready=os.getpid())
        taken = 0
        with anyio.move_on_after(RUN_AWAY_SECONDS):
            while steps is None or taken < steps:
                for thread_id in THREADS:
                    await take_step(store, thread_id)
                taken += 1


def serve() -> None:
    """Fork a writer per command line on stdin; report its pid, then its exit status."""
    store_factory()
    anyio.run(anyio.lowlevel.checkpoint)  # loads the event loop's modules here, not in every writer
    for line in sys.stdin:
        command = json.loads(line)
        pid = os.fork()
        if pid == 0:
            try:
                anyio.run(write, command["location"], command["steps"])
            except BaseException:
                traceback.print_exc()
                os._exit(1)
            os._exit(0)
        say(pid=pid)
        _, status = os.waitpid(pid, 0)
        say(exited=pid, status=status)


if __name__ == "__main__":
    serve()
