"""An event loop in a daemon thread that the state machines call into, with a deadline on every call.

A Hypothesis state machine runs its steps as plain functions on pytest's thread; its
store lives in this loop. Every call waits at most `timeout` seconds plus a grace:
a store that awaits forever is cancelled by `anyio.fail_after` inside the loop; one
that never awaits (a busy loop) is interrupted by an asynchronous `StoreHang` raised
in the loop's thread, and the loop is abandoned: its thread is a daemon, so it never
keeps the process alive, and nothing waits for it again.
"""

from __future__ import annotations

import contextlib
import ctypes
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import CancelledError, Future
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import AbstractAsyncContextManager
from typing import Any, TypeVar

import anyio
from anyio.from_thread import BlockingPortal

from conformance.kit._boundary import StoreHang

__all__ = ["GRACE", "LoopThread"]

_T = TypeVar("_T")

#: Seconds past a call's timeout before its loop is interrupted, and again before it is abandoned.
GRACE = 2.0


class LoopThread:
    """An anyio event loop (`backend`) in a daemon thread; `call` runs a coroutine there in time.

    loop = LoopThread("asyncio")
    store = loop.enter(open_store(folder), timeout=60, what="opening the store")
    found = loop.call(lambda: store.load_thread("t1"), timeout=60, what="load_thread('t1')")
    loop.close(timeout=60)  # exits what `enter` entered, then stops the loop
    """

    def __init__(self, backend: str) -> None:
        self.stuck = False
        self._ready: Future[BlockingPortal] = Future()
        self._held: list[tuple[Future[None], anyio.Event]] = []
        self._thread = threading.Thread(target=self._serve, args=(backend,), daemon=True, name="conformance-loop")
        self._thread.start()
        self._portal = self._ready.result()

    def _serve(self, backend: str) -> None:
        async def main() -> None:
            async with BlockingPortal() as portal:
                self._ready.set_result(portal)
                await portal.sleep_until_stopped()

        try:
            anyio.run(main, backend=backend)
        except BaseException as error:  # an interrupted loop ends here; `call` has told the caller
            if not self._ready.done():
                self._ready.set_exception(error)

    def call(self, function: Callable[[], Awaitable[_T]], *, timeout: float, what: str | Callable[[], str]) -> _T:
        """Run `function()` in the loop and return its result; `StoreHang(what)` when it takes too long."""

        async def bounded() -> tuple[bool, _T | None]:
            # No exception of the kit's inside the loop: a BaseException there would end the portal.
            with anyio.move_on_after(timeout):
                return True, await function()
            return False, None

        finished, result = self._wait(self._portal.start_task_soon(bounded), timeout, what)
        if not finished:
            raise StoreHang(what() if callable(what) else what)
        return result  # type: ignore[return-value]  # finished, so the function's own result

    def enter(self, manager: AbstractAsyncContextManager[_T], *, timeout: float, what: str) -> _T:
        """Enter `manager` in a task of the loop that holds it until `close`; return what it yields."""
        entered: Future[_T] = Future()
        release = self._portal.call(anyio.Event)

        async def hold() -> None:
            async with manager as value:
                entered.set_result(value)
                await release.wait()

        def failed(done: Future[None]) -> None:
            if not entered.done():
                entered.set_exception(_failure(done))

        held = self._portal.start_task_soon(hold)
        self._held.append((held, release))
        held.add_done_callback(failed)
        return self._wait(entered, timeout, what)

    def close(self, *, timeout: float) -> None:
        """Exit what `enter` entered (last first), then stop the loop; `StoreHang` if that takes too long.

        Does nothing once the loop is stuck: an abandoned loop is never waited for again.
        """
        if self.stuck:
            return
        try:
            while self._held:
                held, release = self._held.pop()
                # Never `portal.call` here: a loop stuck in a store that does not await (after an
                # interrupt, say) would keep it waiting for ever.
                self._wait(self._portal.start_task_soon(_set, release), timeout, "closing the store")
                self._wait(held, timeout, "closing the store")
        finally:
            if not self.stuck:
                stopping = self._portal.start_task_soon(self._portal.stop, True)
                with contextlib.suppress(FutureTimeout, CancelledError):
                    stopping.result(timeout + GRACE)
                self._thread.join(timeout)

    def _wait(self, future: Future[_T], timeout: float, what: str | Callable[[], str]) -> _T:
        try:
            return future.result(timeout + GRACE)
        except FutureTimeout:
            pass
        # The loop did not get to cancel the call: it is blocked in code that never awaits. Interrupt
        # it, and abandon the loop either way: an asynchronous exception may have left it in any state.
        self.stuck = True
        self._interrupt()
        raise StoreHang(what() if callable(what) else what)

    def _interrupt(self) -> None:
        """Raise `StoreHang` asynchronously in the loop's thread (CPython checks it between bytecodes)."""
        ident = self._thread.ident
        if ident is not None:
            ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), ctypes.py_object(StoreHang))


async def _set(event: anyio.Event) -> None:
    event.set()


def _failure(done: Future[Any]) -> BaseException:
    error = done.exception()
    return error if error is not None else RuntimeError("the store's context manager exited before yielding")
