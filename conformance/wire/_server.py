"""`serve_store`: any Python store over the wire protocol, on standard input and output.

The reference server for authors in other languages (run it with
`python -m conformance serve --store reference_store:ReferenceStore` and compare),
and the round trip that proves the protocol loses nothing: the reference store,
served, conforms with all its capabilities.

It runs on a plain asyncio loop (stores written with anyio or asyncio): the input is
read by a reader callback, never by a task, and each store method runs in an asyncio
task of its own, so many may be in flight. That is half the cost per request of the
same server on anyio's task groups and `wait_readable`, and the requests are what a
kit run over the wire spends its time on. A `$/cancelRequest` cancels that task: the
store sees the cancellation exactly as it would in process, at its next scheduling
point, and the request is answered -32800 (or with its result, if it finished
first). A store is opened and closed by one task that holds it open in between.
After an answer, with nothing else to do, it polls for the next request for up to
100 µs (`BusyWait`) before the loop sleeps.
"""

from __future__ import annotations

import asyncio
import collections
import inspect
import json
import os
import sys
import tempfile
import traceback
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Collection, Coroutine
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from conformance.contract._codec import JsonObject, JsonValue
from conformance.contract._errors import SerializationError, StorageError, ValidationError
from conformance.contract._stores import ThreadRunStore
from conformance.wire import _protocol as p
from conformance.wire._channel import BusyWait, LineReader, LineWriter

__all__ = ["serve_store"]

RequestId = int | str
#: Compact JSON, one encoder for every line (json.dumps with options builds one per call).
_ENCODE = json.JSONEncoder(separators=(",", ":")).encode


def serve_store(source: Any, *, input_fd: int | None = None, output_fd: int | None = None) -> None:
    """Serve stores from `source` over the wire protocol until `shutdown` or the end of input.

    `source` is anything `--store` names: a store class, a factory (called with
    `location=` when it takes one), an awaitable of a store, an async context manager
    or async generator yielding one. The capabilities `initialize` reports are the
    source's `capabilities` attribute, else those of a store opened once to ask.

    By default it reads file descriptor 0 and writes file descriptor 1; standard output
    is then kept for the protocol alone: file descriptor 1 (and so `print`) is pointed
    at standard error, where a stray print cannot break the conversation. Runs an
    asyncio event loop of its own until the conversation ends.

        serve_store(ReferenceStore)  # python -m conformance serve --store reference_store:ReferenceStore
    """
    if input_fd is None:
        input_fd = 0
    if output_fd is None:
        output_fd = os.dup(1)
        os.dup2(2, 1)
    server = _Server(source, LineReader(input_fd), LineWriter(output_fd))
    asyncio.run(server.run())


class _RpcError(Exception):
    """A JSON-RPC error answer that is not a storage error."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


class _Server:
    def __init__(self, source: Any, reader: LineReader, writer: LineWriter) -> None:
        self.source = source
        self.reader = reader
        self.writer = writer
        self.capabilities: list[str] | None = None
        self.store: ThreadRunStore | None = None
        self.holder: asyncio.Task[None] | None = None
        self.release = asyncio.Event()
        self.running: dict[RequestId, asyncio.Task[None]] = {}
        self.lifecycle: set[asyncio.Task[None]] = set()
        self.finished = asyncio.Event()
        self.backlog: collections.deque[bytes] = collections.deque()
        self.holding = False
        self.gone = False
        self.busy_wait = BusyWait()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        pump: asyncio.Task[None] | None = None
        try:
            loop.add_reader(self.reader.fd, self._readable)
        except PermissionError:  # a regular file (`serve < requests.jsonl`): always readable, never polled
            pump = loop.create_task(self._pump())
        try:
            await self.finished.wait()
        finally:
            if pump is None:
                loop.remove_reader(self.reader.fd)
            else:
                pump.cancel()
        for task in list(self.running.values()):
            task.cancel()
        await asyncio.gather(*self.running.values(), *self.lifecycle, return_exceptions=True)
        await self._close_store()
        await self._flush()

    # ── input ─────────────────────────────────────────────────────────

    def _readable(self) -> None:
        self.backlog.extend(self.reader.read_available())
        self._take_backlog()

    async def _pump(self) -> None:
        while not self.reader.eof:
            self._readable()
            await asyncio.sleep(0)
        self._take_backlog()

    def _take_backlog(self) -> None:
        """Handle the lines read so far, in order; a lifecycle request holds the rest until it is answered.

        So a file of requests piped in (`open`, then calls) is served as the kit's waiting client is.
        """
        while self.backlog and not self.holding and not self.finished.is_set():
            self._receive(self.backlog.popleft())
        if self.reader.eof and not self.backlog and not self.holding:
            self.finished.set()

    def _receive(self, raw: bytes) -> None:
        try:
            message = json.loads(raw)
        except ValueError:
            self._error(None, p.PARSE_ERROR, f"not JSON: {raw[:200]!r}")
            return
        if (
            not isinstance(message, dict)
            or message.get("jsonrpc") != "2.0"
            or not isinstance(message.get("method"), str)
        ):
            request_id = message.get("id") if isinstance(message, dict) else None
            self._error(request_id, p.INVALID_REQUEST, "not a JSON-RPC 2.0 request")
            return
        method, params = message["method"], message.get("params", {})
        if "id" not in message:
            if method == p.CANCEL_REQUEST and isinstance(params, dict):
                task = self.running.get(params.get("id"))  # type: ignore[arg-type]
                if task is not None:
                    task.cancel()
            return
        request_id = message["id"]
        if method in (p.INITIALIZE, p.OPEN, p.CLOSE, p.SHUTDOWN):
            self.holding = True
            self._start_lifecycle(self._lifecycle(request_id, method, params))
        elif self.store is None:
            self._error(request_id, p.NOT_READY, f"{method}: no store is open; send 'initialize', then 'open'")
        else:
            task = asyncio.get_running_loop().create_task(self._answer(request_id, method, params))
            task.add_done_callback(lambda done: self._cancelled_before_start(request_id, method, done))
            self.running[request_id] = task

    def _cancelled_before_start(self, request_id: RequestId, method: str, task: asyncio.Task[None]) -> None:
        """Answer a request cancelled before its task began: `_answer` never ran to answer it."""
        if task.cancelled() and self.running.get(request_id) is task:
            del self.running[request_id]
            self._error(request_id, p.REQUEST_CANCELLED, f"{method} was cancelled before it began")

    def _start_lifecycle(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self.lifecycle.add(task)
        task.add_done_callback(self._lifecycle_done)

    def _lifecycle_done(self, task: asyncio.Task[None]) -> None:
        self.lifecycle.discard(task)
        self.holding = False
        self._take_backlog()

    # ── lifecycle ─────────────────────────────────────────────────────

    async def _lifecycle(self, request_id: RequestId, method: str, params: JsonValue) -> None:
        try:
            if method == p.INITIALIZE:
                result: JsonValue = await self._initialize()
            elif self.capabilities is None:
                raise _RpcError(p.NOT_READY, f"{method}: send 'initialize' first")
            elif method == p.OPEN:
                result = await self._open(params)
            else:
                await self._close_store()
                result = None
        except _RpcError as error:
            self._error(request_id, error.code, str(error))
        except StorageError as error:
            self._reply(request_id, {"error": _storage_error(error)})
        except Exception as error:
            self._internal(request_id, method, error)
        else:
            self._reply(request_id, {"result": result})
        if method == p.SHUTDOWN:
            self.finished.set()

    async def _initialize(self) -> JsonObject:
        if self.capabilities is None:
            declared = getattr(self.source, "capabilities", None)
            if declared is None:
                with tempfile.TemporaryDirectory(prefix="conformance-serve-") as folder:
                    async with _opened(self.source, folder) as probe:
                        declared = getattr(probe, "capabilities", None) or ()
            if isinstance(declared, str) or not isinstance(declared, Collection):
                raise _RpcError(
                    p.INTERNAL_ERROR, f"the store's 'capabilities' must be a collection of names: {declared!r}"
                )
            self.capabilities = sorted(str(name) for name in declared)
        capabilities: list[JsonValue] = list(self.capabilities)
        return {"protocol_version": p.PROTOCOL_VERSION, "capabilities": capabilities, "server": "conformance serve"}

    async def _open(self, params: JsonValue) -> JsonObject:
        if self.holder is not None:
            raise _RpcError(p.INVALID_REQUEST, "open: a store is open already; send 'close' first")
        location = params.get("location") if isinstance(params, dict) else None
        if location is not None and not isinstance(location, str):
            raise _RpcError(p.INVALID_PARAMS, f"open: 'location' must be a string or null, got {location!r}")
        opened: asyncio.Future[ThreadRunStore] = asyncio.get_running_loop().create_future()
        self.release = asyncio.Event()
        self.holder = asyncio.get_running_loop().create_task(self._hold(location, opened))
        try:
            self.store = await opened
        except BaseException:
            self.holder = None
            raise
        return {"storage_identity": self.store.thread_run_storage_identity()}

    async def _hold(self, location: str | None, opened: asyncio.Future[ThreadRunStore]) -> None:
        """Open the store, hold it open until `release`, close it: one task enters and exits it."""
        try:
            async with _opened(self.source, location) as store:
                opened.set_result(store)
                await self.release.wait()
        except BaseException as error:
            if opened.done():
                raise
            opened.set_exception(error)

    async def _close_store(self) -> None:
        """Wait for the store's requests, then close it; raises what closing it raised."""
        holder, self.holder, self.store = self.holder, None, None
        if self.running:
            await asyncio.gather(*self.running.values(), return_exceptions=True)
        if holder is not None:
            self.release.set()
            await holder

    # ── store methods ─────────────────────────────────────────────────

    async def _answer(self, request_id: RequestId, name: str, params: JsonValue) -> None:
        try:
            reply: JsonObject = {"result": await self._call(name, params)}
        except asyncio.CancelledError:
            reply = {"error": {"code": p.REQUEST_CANCELLED, "message": f"{name} was cancelled"}}
        except _RpcError as error:
            reply = {"error": {"code": error.code, "message": str(error)}}
        except StorageError as error:
            reply = {"error": _storage_error(error)}
        except Exception as error:
            self._internal(request_id, name, error)
            return
        finally:
            del self.running[request_id]
        self._reply(request_id, reply)
        self._poll_next()

    def _poll_next(self) -> None:
        """With nothing left to do, poll briefly for the next request before the loop sleeps (`BusyWait`).

        The kit usually sends it within tens of microseconds of reading this answer.
        """
        if self.running or self.holding or self.backlog or self.reader.eof or not self.busy_wait.due():
            return
        lines = self.busy_wait.poll(self.reader)
        if lines or self.reader.eof:
            self.backlog.extend(lines)
            self._take_backlog()

    async def _call(self, name: str, params: JsonValue) -> JsonValue:
        method = p.METHODS.get(name)
        if method is None:
            raise _RpcError(p.METHOD_NOT_FOUND, f"unknown method {name!r}")
        try:
            arguments = method.decode_params(params)
        except KeyError as missing:
            raise _RpcError(p.INVALID_PARAMS, f"{name}: missing param {missing}") from None
        except SerializationError as error:
            raise ValidationError(f"{name}: {error}") from None
        result = await getattr(self.store, name)(**arguments)
        return method.result.encode(result, "result")

    # ── output ────────────────────────────────────────────────────────

    def _reply(self, request_id: RequestId | None, body: JsonObject) -> None:
        self._send({"jsonrpc": "2.0", "id": request_id, **body})

    def _error(self, request_id: Any, code: int, message: str) -> None:
        self._reply(request_id, {"error": {"code": code, "message": message}})

    def _internal(self, request_id: RequestId, method: str, error: Exception) -> None:
        traceback.print_exception(error, file=sys.stderr)
        self._error(request_id, p.INTERNAL_ERROR, f"{method} raised {type(error).__name__}: {error}")

    def _send(self, message: JsonObject) -> None:
        if self.gone:
            return
        line = _ENCODE(message).encode() + b"\n"
        try:
            left = self.writer.send(line)
        except BrokenPipeError:
            self.gone = True
            return
        if left:
            asyncio.get_running_loop().add_writer(self.writer.fd, self._writable)

    def _writable(self) -> None:
        try:
            if not self.writer.write_some():
                asyncio.get_running_loop().remove_writer(self.writer.fd)
        except BrokenPipeError:
            self.gone = True
            asyncio.get_running_loop().remove_writer(self.writer.fd)

    async def _flush(self) -> None:
        """Write what is left before the loop ends (the client waits for the answer to `shutdown`)."""
        asyncio.get_running_loop().remove_writer(self.writer.fd)
        while not self.gone:
            try:
                if not self.writer.write_some():
                    return
            except BrokenPipeError:
                self.gone = True
            await asyncio.sleep(0.001)


def _storage_error(error: StorageError) -> JsonObject:
    return {"code": p.STORAGE_ERROR, "message": str(error), "data": p.error_to_json(error)}


@asynccontextmanager
async def _opened(source: Any, location: str | None) -> AsyncIterator[ThreadRunStore]:
    """Open a store from `source` as the kit does (`location=` when the factory takes it); close it after.

    Raises `TypeError` when the source does not produce a `ThreadRunStore`.
    """
    produced: Any = source
    if callable(source) and not isinstance(source, ThreadRunStore):
        produced = source(location=location) if location is not None and _takes_location(source) else source()
    if inspect.isawaitable(produced):
        produced = await produced
    if isinstance(produced, AsyncGenerator):
        async with _from_generator(produced) as store:
            yield _checked(store, source)
    elif isinstance(produced, AbstractAsyncContextManager) or hasattr(produced, "__aenter__"):
        async with produced as store:
            yield _checked(store, source)
    else:
        store = _checked(produced, source)
        try:
            yield store
        finally:
            closer: Callable[[], Any] | None = getattr(store, "aclose", None)
            if produced is not source and callable(closer):
                await closer()


def _takes_location(factory: Callable[..., Any]) -> bool:
    try:
        return "location" in inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return False


@asynccontextmanager
async def _from_generator(generator: AsyncGenerator[Any, None]) -> AsyncIterator[Any]:
    store = await generator.__anext__()
    try:
        yield store
    finally:
        await generator.aclose()


def _checked(store: object, source: Any) -> ThreadRunStore:
    if not isinstance(store, ThreadRunStore):
        raise TypeError(f"the store source {source!r} produced {type(store).__name__}, not a ThreadRunStore")
    return store
