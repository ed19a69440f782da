"""Crash safety of the SQLite example backend: a writer killed with SIGKILL never leaves a torn checkpoint.

Each trial forks a writer (see `sqlite_crash_writer.py`), lets it run the checkpoint
schedule on a database, kills it with SIGKILL after a delay drawn from a seeded
`random.Random`, reopens the database in this process and checks that every thread
shows a whole prefix of the schedule: its log is exactly the deltas of the runs it
holds, its latest run names exactly the last delta and its seqs, the thread record
names that run, and SQLite's integrity check passes. A step never stored, or stored
whole, both pass; half a step (messages without their run, a run without its thread
update, a log half rewritten) fails, whatever moment the kill came. A writer let run
to the end on each database then proves the schedule moves forward from what a crash
left behind.
"""

from __future__ import annotations

import json
import os
import random
import select
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path
from types import TracebackType
from typing import IO

import anyio
import pytest
from sqlite_crash_writer import THREADS, message_ids, run_id, store_factory

from conformance import MessageSeqRange, RunMessageOutput, RunQuery, open_store

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="the writers are forked: needs a POSIX system")

WRITER = Path(__file__).with_name("sqlite_crash_writer.py")
SEED = 20_240_611
DATABASES = 6
KILLS_PER_DATABASE = 40
#: Kills come at most this many seconds after the writer opened the store: it commits a step every few ms.
LATEST_KILL = 0.03
#: Seconds to wait for the writer server to answer before the test fails.
ANSWER_TIMEOUT = 30.0


class WriterServer:
    """`sqlite_crash_writer.py serve` in a subprocess: fork a writer, kill it, hear how it ended."""

    def __init__(self, log: Path) -> None:
        self.log = log
        self._stderr = log.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, str(WRITER), "serve"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            bufsize=0,
        )
        self._pending = b""
        self._heard: dict[str, int] = {}
        self._writer: int | None = None

    def __enter__(self) -> WriterServer:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if self._writer is not None:
            os.kill(self._writer, signal.SIGKILL)  # not reaped yet, so the pid is still the writer's
        self._pipe(self.process.stdin).close()
        try:
            self.process.wait(timeout=ANSWER_TIMEOUT)
        finally:
            self.process.kill()
            self._pipe(self.process.stdout).close()
            self._stderr.close()

    @staticmethod
    def _pipe(pipe: IO[bytes] | None) -> IO[bytes]:
        assert pipe is not None
        return pipe

    def start(self, location: Path, steps: int | None) -> int:
        """Fork a writer on `location` taking `steps` steps per thread (None: until killed); its pid once ready."""
        command = json.dumps({"location": str(location), "steps": steps}) + "\n"
        self._pipe(self.process.stdin).write(command.encode())
        self._writer = self._expect("pid")["pid"]
        assert self._expect("ready")["ready"] == self._writer
        return self._writer

    def ended(self) -> int:
        """The wait status of the last writer, once the server reaped it."""
        heard = self._expect("exited", "status")
        assert heard["exited"] == self._writer
        self._writer = None
        return heard["status"]

    def _expect(self, *keys: str) -> dict[str, int]:
        """The values of `keys`, from lines heard before (writer and server lines come in either order) or next."""
        deadline = time.monotonic() + ANSWER_TIMEOUT
        while not set(keys) <= set(self._heard):
            while b"\n" not in self._pending:
                stdout = self._pipe(self.process.stdout)
                ready, _, _ = select.select([stdout], [], [], max(deadline - time.monotonic(), 0))
                chunk = os.read(stdout.fileno(), 4096) if ready else b""
                if not chunk:
                    pytest.fail(f"the writer server said nothing more; its stderr:\n{self.log.read_text()}")
                self._pending += chunk
            line, self._pending = self._pending.split(b"\n", 1)
            self._heard.update(json.loads(line))
        return {key: self._heard.pop(key) for key in keys}


async def whole_steps(location: Path) -> dict[str, int]:
    """Reopen the store and check every thread shows whole steps; how many each took."""
    taken: dict[str, int] = {}
    async with open_store(store_factory(), location) as store:
        for thread_id in THREADS:
            steps = (await store.list_runs(RunQuery(thread_id=thread_id))).total
            log = [m.id for m in await store.load_committed_messages(thread_id) or []]
            whole = [message_id for step in range(steps) for message_id in message_ids(thread_id, step)]
            assert log == whole, f"{thread_id}: {steps} runs stored but the log is not their deltas: {log[-6:]}"
            thread = await store.load_thread(thread_id)
            latest = await store.latest_run(thread_id)
            if steps == 0:
                assert (thread, latest) == (None, None), f"{thread_id}: a thread or run without a step"
            else:
                last = message_ids(thread_id, steps - 1)
                output = RunMessageOutput(
                    thread_id=thread_id,
                    range=MessageSeqRange(from_seq=len(log) - len(last) + 1, to_seq=len(log)),
                    message_ids=last,
                )
                shown = (latest and latest.run_id, latest and latest.output, thread and thread.latest_run_id)
                expected = (run_id(thread_id, steps - 1), output, run_id(thread_id, steps - 1))
                assert shown == expected, f"{thread_id}: the last step's run or its projection is not whole"
            taken[thread_id] = steps
    with closing(sqlite3.connect(location / "store.sqlite3")) as db:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    return taken


def test_killed_writers_leave_every_checkpoint_whole(tmp_path: Path) -> None:
    """240 writers killed at seeded random moments; after each, every thread shows whole steps, none lost."""
    rng = random.Random(SEED)
    with WriterServer(tmp_path / "writers.log") as server:
        for database in range(DATABASES):
            location = tmp_path / f"db{database}"
            before = dict.fromkeys(THREADS, 0)
            for kill in range(KILLS_PER_DATABASE):
                pid = server.start(location, None)
                time.sleep(rng.uniform(0, LATEST_KILL))
                os.kill(pid, signal.SIGKILL)
                status = server.ended()
                assert os.waitstatus_to_exitcode(status) == -signal.SIGKILL, (
                    f"writer {kill} on db{database} ended before the kill (status {status}); "
                    f"stderr:\n{server.log.read_text()}"
                )
                after = anyio.run(whole_steps, location)
                assert all(after[t] >= before[t] for t in THREADS), f"a committed step was lost: {before} -> {after}"
                before = after
            server.start(location, 2)
            assert server.ended() == 0, f"the last writer failed; stderr:\n{server.log.read_text()}"
            assert anyio.run(whole_steps, location) == {t: before[t] + 2 for t in THREADS}
