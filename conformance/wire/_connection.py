"""One store process and the JSON-RPC conversation with it (the kit's side).

A `Connection` outlives event loops: the kit opens a fresh store per contract test,
each in a loop of its own, and a store process serves one store after another
(`open` ... `close`, then `open` again). So it runs no task of its own: the callers
waiting for answers read them, one at a time. The reader routes every answer it reads
to its caller and, when its own has come, wakes a waiting caller to read next. A
lone caller thus wakes once per request (a reader task would cost a second wake-up,
a third of a request's time), and nothing is left running in a loop that ends. A
lone request's caller first polls the pipe for its answer for up to 100 µs
(`BusyWait`), after letting every other ready caller send: an answer usually comes
sooner than a sleeping process on another core could be woken to read it.

The process writes its standard error to a temporary file, never a pipe, so it can
never block on it however much it writes; the kit forwards the new lines to its own
standard error (into the report of the test that runs, under pytest) each time it
reads an answer, and quotes the last one when the process dies.

A caller cancelled while it waits sends `$/cancelRequest` and leaves at once; its
request stays *unsettled* until the answer comes, and no new request is sent
meanwhile, so nothing the kit does next can race a write the store is still
finishing (ATO-3 over the wire).

A store that cannot parse a line answers -32700 (parse error), with `id: null` when it
cannot tell the id. Lines are parsed in the order they are sent, so such an answer
goes to the oldest request in flight whose line a strict JSON parser refuses (a lone
surrogate, an integer past 64 bits), else to the only request in flight; with several
in flight and none such, no request can be told, and the conversation breaks
(docs/PROTOCOL.md, "Values strict JSON cannot hold").
"""

from __future__ import annotations

import collections
import contextlib
import copy
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from typing import IO, Any

import anyio

from conformance.contract._codec import JsonObject, JsonValue
from conformance.contract._errors import ValidationError
from conformance.wire._channel import BusyWait, LineReader, LineWriter, checkpoint
from conformance.wire._errors import (
    RemoteStoreError,
    StoreProcessExited,
    UnknownResponseIdError,
    UnrepresentableValueError,
    WireError,
    WireProtocolError,
    WireTimeoutError,
)
from conformance.wire._protocol import (
    CANCEL_REQUEST,
    PARSE_ERROR,
    REQUEST_CANCELLED,
    STORAGE_ERROR,
    error_from_json,
    lone_surrogate_in,
    wide_integer_in,
)

__all__ = ["Connection", "spawn"]

#: Compact JSON, one encoder for every line (json.dumps with options builds one per call).
_ENCODE = json.JSONEncoder(separators=(",", ":")).encode
#: Lines of the process's standard error kept to quote when it dies.
STDERR_TAIL = 20
#: Seconds between two looks at the process's standard error while answers come in.
STDERR_EVERY = 0.05
#: Seconds a process gets to exit after `shutdown`, or to report its exit status after closing stdout.
EXIT_GRACE = 2.0


class _Pending:
    """A request in flight: its line (quoted by errors) and params, and the answer once it comes."""

    __slots__ = ("answered", "cancelled", "error", "line", "params", "result", "waiting")

    def __init__(self, line: str, params: JsonObject | None = None) -> None:
        self.line = line
        self.params: JsonObject = {} if params is None else params
        self.answered = False
        self.result: JsonValue = None
        self.error: BaseException | None = None
        self.cancelled = False
        #: The event its caller sleeps on while another caller reads, if it does.
        self.waiting: anyio.Event | None = None


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace").rstrip("\r")


def spawn(argv: Sequence[str], *, cwd: str | None = None, env: dict[str, str] | None = None) -> Connection:
    """Start `argv` with its standard input and output piped to the kit, its standard error to a file.

    Raises `StoreProcessExited` when it cannot start (no such program, not executable).
    """
    stderr = tempfile.TemporaryFile(prefix="conformance-store-stderr-")  # noqa: SIM115 - the Connection closes it
    try:
        process = subprocess.Popen(
            list(argv), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, cwd=cwd, env=env
        )
    except OSError as error:
        stderr.close()
        raise StoreProcessExited(f"cannot start the store command {' '.join(argv)!r}: {error}") from None
    return Connection(process, " ".join(argv), stderr)


class Connection:
    """The conversation with one store process; see the module docstring."""

    def __init__(self, process: subprocess.Popen[bytes], command: str, stderr: IO[bytes]) -> None:
        assert process.stdin is not None
        assert process.stdout is not None
        self.process = process
        self.command = command
        self.answers = LineReader(process.stdout.fileno())
        self.requests = LineWriter(process.stdin.fileno())
        self.stderr = stderr
        self.stderr_read = 0
        self.stderr_looked = 0.0
        self.stderr_partial = b""
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL)
        self.ids = itertools.count(1)
        self.pending: dict[int, _Pending] = {}
        self.unsettled: set[int] = set()
        self.fault: WireError | None = None
        self.initialized = False
        self.capabilities: frozenset[str] = frozenset()
        self.missing: set[str] = set()
        self._reading = False
        self._draining = False
        self._followers: list[_Pending] = []
        self.busy_wait = BusyWait()

    # ── requests ──────────────────────────────────────────────────────

    async def request(self, method: str, params: JsonObject, *, timeout: float | None = None) -> JsonValue:
        """Send a request and return its result.

        Raises the storage error the store answered with, `RemoteStoreError` for any
        other error answer, `WireTimeoutError` when no answer comes within `timeout`,
        and the connection's fault (`StoreProcessExited`, `WireProtocolError`) when
        the conversation broke. Cancelled while it waits, it sends `$/cancelRequest`
        and re-raises at once.
        """
        __tracebackhide__ = True
        if self.unsettled:
            await self._until(_Pending(""), lambda: not self.unsettled)
        self._raise_fault()
        request_id = next(self.ids)
        line = _ENCODE({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params})
        pending = _Pending(line, params)
        self.pending[request_id] = pending
        self._send(line)
        try:
            if self.requests.pending and not self._draining:
                await self._drain()
            if timeout is None:
                await self._until(pending, lambda: pending.answered)
            else:
                with anyio.move_on_after(timeout):
                    await self._until(pending, lambda: pending.answered)
        except BaseException:
            if not pending.answered:
                self._abandon(request_id, pending)
            raise
        self._raise_fault()
        if not pending.answered:
            self._abandon(request_id, pending)
            self.fail(WireTimeoutError(f"the store process did not answer within {timeout}s the request", line))
            self._raise_fault()
        if pending.error is not None:
            raise pending.error
        return pending.result

    async def _until(self, pending: _Pending, done: Callable[[], bool]) -> None:
        """Return once `done()` holds or the conversation broke; read answers while no other caller does."""
        try:
            while not done() and self.fault is None:
                if self.requests.pending and not self._draining:
                    await self._drain()
                    continue
                if not self._reading:
                    await self._read_once()
                    continue
                pending.waiting = anyio.Event()
                self._followers.append(pending)
                try:
                    await pending.waiting.wait()
                finally:
                    self._followers.remove(pending)
                    pending.waiting = None
        finally:
            if not self._reading:
                self._pass_reading()

    def _pass_reading(self) -> None:
        """Wake a waiting caller to read next, unless one is awake already."""
        if any(f.waiting is not None and f.waiting.is_set() for f in self._followers):
            return
        for follower in self._followers:
            if follower.waiting is not None:
                follower.waiting.set()
                return

    async def _read_once(self) -> None:
        self._reading = True
        try:
            lines = await self._next_lines()
            if not lines:
                await self._wait_exit()
                self.fail(self._exited("the store process closed its standard output"))
        finally:
            self._reading = False
        self.forward_stderr(every=STDERR_EVERY)
        for raw in lines:
            self._answer(_decode(raw))
            if self.fault is not None:
                return

    async def _next_lines(self) -> list[bytes]:
        """The next answers: a lone request in flight polls briefly for its answer before sleeping.

        The poll (`BusyWait`) blocks the event loop, so the caller first lets every
        other ready task run once: callers started together all send their requests
        before anyone polls, and the store still sees them in flight at once.
        """
        lines = self.answers.read_available()
        if lines or self.answers.eof:
            return lines
        if len(self.pending) == 1 and self.busy_wait.due():
            await checkpoint()
            if len(self.pending) == 1:
                lines = self.busy_wait.poll(self.answers)
                if lines or self.answers.eof:
                    return lines
        return await self.answers.read_lines()

    async def _drain(self) -> None:
        """Write what the pipe did not take at once (only one caller at a time does)."""
        self._draining = True
        try:
            await self.requests.drain()
        except BrokenPipeError:
            self.fail(self._exited("the store process closed its standard input"))
        finally:
            self._draining = False

    def _abandon(self, request_id: int, pending: _Pending) -> None:
        """Leave a request its caller gave up on: it stays unsettled until answered; ask the store to cancel it."""
        pending.cancelled = True
        self.unsettled.add(request_id)
        if self.fault is None:
            self._send(_ENCODE({"jsonrpc": "2.0", "method": CANCEL_REQUEST, "params": {"id": request_id}}))

    def _send(self, line: str) -> None:
        if self.fault is not None:
            return
        try:
            self.requests.send(line.encode("utf-8") + b"\n")
        except BrokenPipeError:
            self.fail(self._exited("the store process closed its standard input"))

    def _raise_fault(self) -> None:
        if self.fault is not None:
            raise copy.copy(self.fault).with_traceback(None)

    # ── standard error ────────────────────────────────────────────────

    def forward_stderr(self, *, every: float = 0.0) -> None:
        """Copy the new complete lines of the process's standard error to ours, prefixed `[store] `.

        With `every`, only if that many seconds passed since the last look (it costs a system call).
        """
        now = time.monotonic()
        if self.stderr.closed or now - self.stderr_looked < every:
            return
        self.stderr_looked = now
        data = os.pread(self.stderr.fileno(), 1 << 20, self.stderr_read)
        if not data:
            return
        self.stderr_read += len(data)
        *lines, self.stderr_partial = (self.stderr_partial + data).split(b"\n")
        if self.process.poll() is not None and self.stderr_partial:
            lines.append(self.stderr_partial)
            self.stderr_partial = b""
        for raw in lines:
            text = _decode(raw)
            self.stderr_tail.append(text)
            sys.stderr.write(f"[store] {text}\n")

    # ── answers ───────────────────────────────────────────────────────

    def _answer(self, line: str) -> None:
        """Route one line from the store's standard output to the request it answers."""
        try:
            message = json.loads(line)
        except ValueError:
            self.fail(
                WireProtocolError(
                    "the store process wrote a line that is not JSON on standard output "
                    "(write diagnostics to standard error)",
                    line,
                )
            )
            return
        if not isinstance(message, dict) or message.get("jsonrpc") != "2.0" or "method" in message:
            self.fail(WireProtocolError("the store process wrote something that is not a JSON-RPC 2.0 response", line))
            return
        request_id = message.get("id")
        if request_id is None and _code(message) == PARSE_ERROR and self.pending:
            request_id = self._unparsed()
            if request_id is None:
                self.fail(
                    WireProtocolError(
                        f"the store process answered a parse error with id null while {len(self.pending)} requests "
                        "were in flight, none holding a value strict JSON refuses: the kit cannot tell which it "
                        "answers (answer -32700 with the request's id when the line holds one)",
                        line,
                    )
                )
                return
        pending = self.pending.pop(request_id, None) if isinstance(request_id, int) else None
        if pending is None:
            self.fail(UnknownResponseIdError(f"the store process answered id {request_id!r}, not in flight", line))
            return
        if pending.cancelled:
            self.unsettled.discard(request_id)
            if not self.unsettled:
                self._wake_all()
            return
        try:
            pending.result, pending.error = _outcome(message, line, pending.params)
        except WireProtocolError as error:
            self.fail(error)
            return
        pending.answered = True
        if pending.waiting is not None:
            pending.waiting.set()

    def _unparsed(self) -> int | None:
        """The request a parse error with id null answers: the oldest in flight a strict parser
        refuses, else the only one in flight; None when it cannot be told."""
        strict_refuses = (
            request_id
            for request_id, pending in self.pending.items()
            if lone_surrogate_in(pending.params) is not None or wide_integer_in(pending.params) is not None
        )
        found = next(strict_refuses, None)
        if found is None and len(self.pending) == 1:
            found = next(iter(self.pending))
        return found

    def _wake_all(self) -> None:
        for follower in self._followers:
            if follower.waiting is not None:
                follower.waiting.set()

    # ── faults and the end of the process ────────────────────────────

    def fail(self, error: WireError) -> None:
        """Break the conversation: every waiting caller and every later request raises `error`; kill the process."""
        if self.fault is not None:
            return
        self.fault = error
        self.pending.clear()
        self.unsettled.clear()
        self._wake_all()
        self.kill()

    def kill(self) -> None:
        """Stop the process at once; a no-op once it has exited."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def close_pipes(self) -> None:
        """Forward what is left on standard error and close the kit's ends of the pipes and the file."""
        self.forward_stderr()
        for stream in (self.process.stdin, self.process.stdout, self.stderr):
            if stream is not None:
                stream.close()

    async def _wait_exit(self) -> None:
        with anyio.move_on_after(EXIT_GRACE):
            delay = 0.001
            while self.process.poll() is None:
                await anyio.sleep(delay)
                delay = min(delay * 2, 0.05)

    def _exited(self, what: str) -> StoreProcessExited:
        self.forward_stderr()
        code = self.process.poll()
        status = "is still running" if code is None else f"exited with status {code}"
        last = self.stderr_tail[-1] if self.stderr_tail else None
        message = f"{what} and {status} (command {self.command!r})"
        if last is None:
            return StoreProcessExited(message + "; it wrote nothing to standard error", returncode=code)
        return StoreProcessExited(message + "; its last line on standard error", last, returncode=code)

    def check_alive(self) -> None:
        """Raise `StoreProcessExited` if the process exited while idle between two stores."""
        if self.process.poll() is not None:
            self.fail(self._exited("the store process ended between two stores (it must serve until shutdown)"))
            self._raise_fault()

    async def shutdown(self) -> None:
        """Ask the process to close its store and exit; kill it if it has not exited within `EXIT_GRACE`.

        Raises what `request` raises for the `shutdown` request; the process is gone either way.
        """
        try:
            with anyio.move_on_after(EXIT_GRACE):
                await self.request("shutdown", {})
        finally:
            if self.process.stdin is not None and not self.process.stdin.closed:
                self.process.stdin.close()
            await self._wait_exit()
            self.kill()

    def shutdown_now(self) -> None:
        """`shutdown` outside any event loop (for pools closed at exit): ask, close stdin, wait, kill."""
        if self.fault is None and self.process.poll() is None:
            line = json.dumps({"jsonrpc": "2.0", "id": next(self.ids), "method": "shutdown", "params": {}})
            # A process that cannot take the line or does not exit in time is killed below all the same.
            with contextlib.suppress(OSError, subprocess.TimeoutExpired):
                os.set_blocking(self.requests.fd, True)
                os.write(self.requests.fd, self.requests.pending + line.encode() + b"\n")
                assert self.process.stdin is not None
                self.process.stdin.close()
                self.process.wait(EXIT_GRACE)
        self.kill()
        self.close_pipes()


def _code(message: object) -> object:
    """The `code` of an error response, if `message` is one."""
    error = message.get("error") if isinstance(message, dict) else None
    return error.get("code") if isinstance(error, dict) else None


def _outcome(message: dict[str, Any], line: str, params: JsonObject) -> tuple[JsonValue, BaseException | None]:
    """`(result, None)` or `(None, error)` of a response to a request with `params`; `WireProtocolError`
    for a malformed one.

    A request holding a value strict JSON cannot hold, refused as a strict peer refuses
    it (-32700 for a lone surrogate or a wide integer, `Validation` for a wide integer),
    raises `UnrepresentableValueError`.
    """
    if "result" in message and "error" not in message:
        return message["result"], None
    error = message.get("error")
    if "result" in message or not isinstance(error, dict):
        raise WireProtocolError("a response must carry exactly one of 'result' and an 'error' object", line)
    code, text = error.get("code"), error.get("message")
    if not isinstance(code, int) or not isinstance(text, str):
        raise WireProtocolError("an error response needs an integer 'code' and a string 'message'", line)
    if code == STORAGE_ERROR:
        try:
            refusal = error_from_json(error.get("data"))
        except ValueError as problem:
            raise WireProtocolError(f"a storage error response is malformed ({problem})", line) from None
        wide = wide_integer_in(params) if type(refusal) is ValidationError else None
        if wide is not None:
            return None, UnrepresentableValueError(
                f"the store process refused {wide}, past 64 bits ({refusal})", line, code
            )
        return None, refusal
    if code == PARSE_ERROR:
        odd = lone_surrogate_in(params) or wide_integer_in(params)
        if odd is not None:
            return None, UnrepresentableValueError(f"the store process cannot parse a request with {odd}", line, code)
        return None, RemoteStoreError(f"the store process could not parse a request that is JSON ({text})", line, code)
    if code == REQUEST_CANCELLED:
        return None, RemoteStoreError("the store process answered 'cancelled' to a request never cancelled", line, code)
    return None, RemoteStoreError(f"the store process failed the request (JSON-RPC error {code}: {text})", line, code)
