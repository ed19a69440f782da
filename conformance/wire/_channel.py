"""Newline-delimited lines over non-blocking file descriptors, in whichever event loop awaits them.

The kit runs every contract test in an event loop of its own, while a store process
lives from one test to the next. So the pipes are plain file descriptors, read and
written without blocking (`os.read`, `os.write`) and awaited with
`anyio.wait_readable`/`wait_writable`, which work in any asyncio or trio loop on a
POSIX system; nothing here belongs to one loop.
"""

from __future__ import annotations

import os

import anyio

__all__ = ["LineReader", "LineWriter"]

_CHUNK = 1 << 16


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
            await anyio.wait_readable(self.fd)


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
