"""Newline-delimited lines over non-blocking file descriptors, in whichever event loop awaits them.

The kit runs every contract test in an event loop of its own, while a store process
lives from one test to the next. So the pipes are plain file descriptors, read and
written without blocking (`os.read`, `os.write`) and awaited with the loop's reader
(asyncio) or `anyio.wait_readable`/`wait_writable` (trio), which work in any loop on
a POSIX system; nothing here belongs to one loop.

`BusyWait` spends a few microseconds polling for the other side's next line before a
reader sleeps: on the virtual machines CI runs on, waking a process that sleeps on
another core costs tens of microseconds each way, more than a store call itself.
"""

from __future__ import annotations

import asyncio
import os
import time

import anyio
import anyio.lowlevel

__all__ = ["BusyWait", "LineReader", "LineWriter", "checkpoint"]

_CHUNK = 1 << 16
#: How long a reader polls for the other side's next line before it sleeps (most calls of the reference
#: store take 10-130 µs: benchmarks/RESULTS.md).
BUSY_WAIT_SECONDS = 100e-6
#: The most reads in a row that sleep at once after polls that found nothing.
BUSY_WAIT_BACKOFF = 255


class LineReader:
    """Reads newline-terminated lines from a file descriptor, keeping a partial line between calls."""

    def __init__(self, fd: int) -> None:
        os.set_blocking(fd, False)
        self.fd = fd
        self.buffer = bytearray()
        self.eof = False

    def _split(self) -> list[bytes]:
        end = self.buffer.rfind(b"\n")
        if end < 0:
            return []
        lines = bytes(self.buffer[:end]).split(b"\n")
        del self.buffer[: end + 1]
        return lines

    def read_available(self) -> list[bytes]:
        """The complete lines readable now, without waiting; at end of file the last partial line too."""
        while not self.eof:
            try:
                data = os.read(self.fd, _CHUNK)
            except BlockingIOError:
                break
            if not data:
                self.eof = True
            self.buffer += data
            if 0 < len(data) < _CHUNK:
                break  # the pipe held less than asked: it is empty now (saves a read that would fail)
        lines = self._split()
        if self.eof and self.buffer:
            lines.append(bytes(self.buffer))
            self.buffer.clear()
        return lines

    async def read_lines(self) -> list[bytes]:
        """Wait for at least one complete line and return every complete line; `[]` at end of file.

        At end of file an unterminated last line is returned as a line first.
        """
        while True:
            lines = self.read_available()
            if lines or self.eof:
                return lines
            await _readable(self.fd)


class BusyWait:
    """Polls a reader for a short while before it sleeps, backing off while the polls find nothing.

    The kit and a store process answer each other one request at a time, so each
    waits for the other only as long as a store call or a test step takes, usually
    tens of microseconds. Sleeping in the event loop instead makes every answer wake a
    process on another core, which costs more than the wait (about 60 µs per round
    trip on a 2-core virtual machine, against 2 µs polling: benchmarks/bench_pipe.py). When polls keep coming
    back empty (a loaded machine, a slow store call) the reader sleeps at once for the
    next 1, 3, 7, ... up to `BUSY_WAIT_BACKOFF` reads, so the time burnt polling stays a
    small share of the run; each poll that finds a line halves that. `seconds=0` never
    polls, nor does the default on a process allowed only one core (the other side
    cannot answer while this one polls).
    """

    __slots__ = ("penalty", "seconds", "skip")

    def __init__(self, seconds: float | None = None) -> None:
        self.seconds = (BUSY_WAIT_SECONDS if _cores() > 1 else 0.0) if seconds is None else seconds
        self.skip = 0
        self.penalty = 0

    def due(self) -> bool:
        """Whether the next read polls first: False while backed off (which counts one read off)."""
        if self.seconds <= 0:
            return False
        if self.skip:
            self.skip -= 1
            return False
        return True

    def poll(self, reader: LineReader) -> list[bytes]:
        """The lines `reader` gets within the poll window; `[]` when none came (and backs off)."""
        end = time.perf_counter() + self.seconds
        while True:
            lines = reader.read_available()
            if lines or reader.eof:
                self.penalty //= 2
                return lines
            if time.perf_counter() >= end:
                self.penalty = min(2 * self.penalty + 1, BUSY_WAIT_BACKOFF)
                self.skip = self.penalty
                return []


def _cores() -> int:
    """How many cores this process may run on (all of them where the system does not say)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS: no affinity
        return os.cpu_count() or 1


async def checkpoint() -> None:
    """Let every other ready task of the current event loop run once (asyncio directly, else anyio)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        await anyio.lowlevel.checkpoint()
        return
    await asyncio.sleep(0)


async def _readable(fd: int) -> None:
    """Wait until `fd` is readable: on asyncio with the loop's reader directly, elsewhere through anyio.

    The direct way skips anyio's backend lookup and bookkeeping, which every request
    pays; the cancellation of the waiting task works the same.
    """
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        await anyio.wait_readable(fd)
        return
    ready: asyncio.Future[None] = loop.create_future()
    loop.add_reader(fd, _resolve, ready)
    try:
        await ready
    finally:
        loop.remove_reader(fd)


def _resolve(ready: asyncio.Future[None]) -> None:
    if not ready.done():
        ready.set_result(None)


class LineWriter:
    """Writes lines to a file descriptor without ever blocking the caller.

    `send` writes what the pipe takes at once and keeps the rest, in order, for
    `drain`, which a task of the current event loop awaits. Raises `BrokenPipeError`
    once the reading end is gone.
    """

    def __init__(self, fd: int) -> None:
        os.set_blocking(fd, False)
        self.fd = fd
        self.pending = bytearray()

    def send(self, line: bytes) -> bool:
        """Queue `line` (which ends with a newline) and write what fits; True when some is left for later."""
        if self.pending:
            self.pending += line
            return True
        try:
            written = os.write(self.fd, line)
        except BlockingIOError:
            written = 0
        if written < len(line):
            self.pending += line[written:]
            return True
        return False

    def write_some(self) -> bool:
        """Write what the pipe takes now of the queued bytes; True when some is left."""
        if self.pending:
            try:
                written = os.write(self.fd, self.pending)
            except BlockingIOError:
                written = 0
            del self.pending[:written]
        return bool(self.pending)

    async def drain(self) -> None:
        """Write every queued byte, waiting for the pipe to take it."""
        while self.write_some():
            await anyio.wait_writable(self.fd)
