"""How a contract test runs: the `rule` decorator, store sources, and the per-test event loop.

Contract tests are written as `async def` methods, but pytest sees plain functions:
the kit opens a fresh store, runs the body and tears the store down inside one
event loop of its own (asyncio or trio, through anyio). So the kit behaves the
same whatever async plugin (anyio, pytest-asyncio in any mode) a project uses.
"""

from __future__ import annotations

import inspect
import signal
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Collection, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, TypeVar

import anyio
import pytest

from conformance.contract._stores import ThreadRunStore
from conformance.kit._report import Report
from conformance.kit._rules import CAPABILITIES, RULES
from conformance.kit._stateful import StoreMachine, run_machine, terminal_line

__all__ = ["Kit", "StoreSource", "open_store", "rule"]

#: What provides a store: a store, a store class, a callable returning a store, an awaitable
#: of one or an async context manager yielding one, or an async generator function yielding one.
StoreSource = Any
Reopen = Callable[[], AbstractAsyncContextManager[ThreadRunStore]]
_Body = TypeVar("_Body", bound=Callable[..., Awaitable[None]])

BODY_ATTRIBUTE = "__conformance_body__"
#: Arguments of a contract test body that the kit supplies, not pytest.
KIT_ARGUMENTS = ("store", "reopen")


def rule(*ids: str, requires: str | None = None) -> Callable[[Callable[..., Awaitable[None]]], Callable[..., None]]:
    """Tag an async contract test with the rule IDs it verifies and let the kit run it.

    The body receives the fresh store as `store` and, if it asks, `reopen` (an async
    context manager factory opening another store object on the same location, for
    `durable` rules). `requires` names a capability the test needs beyond its rules'.

        @rule("DEL-3")
        async def test_detach_keeps_children(self, store): ...
    """
    unknown = [rule_id for rule_id in ids if rule_id not in RULES]
    if not ids or unknown:
        raise ValueError(f"@rule needs known rule IDs, got unknown {unknown or 'none'}")
    if requires is not None and requires not in CAPABILITIES:
        raise ValueError(f"@rule(requires={requires!r}): unknown capability; known: {sorted(CAPABILITIES)}")

    def decorate(body: Callable[..., Awaitable[None]]) -> Callable[..., None]:
        if not inspect.iscoroutinefunction(body):
            raise TypeError(f"@rule decorates async contract tests; {body.__qualname__} is not async")
        signature = inspect.signature(body)
        self_parameter, *rest = signature.parameters.values()
        kit_parameter = inspect.Parameter("conformance_kit", inspect.Parameter.POSITIONAL_OR_KEYWORD)
        arguments = [p for p in rest if p.name not in KIT_ARGUMENTS]

        def test(self: object, conformance_kit: Kit, **params: Any) -> None:
            conformance_kit.run(self, body, params)

        test.__name__ = body.__name__
        test.__qualname__ = body.__qualname__
        test.__doc__ = body.__doc__
        test.__module__ = body.__module__
        vars(test).update(
            {
                "__signature__": signature.replace(parameters=[self_parameter, kit_parameter, *arguments]),
                BODY_ATTRIBUTE: body,
                "pytestmark": list(getattr(body, "pytestmark", [])),
            }
        )
        marked: Callable[..., None] = pytest.mark.rule(*ids, requires=requires)(test)
        return marked

    return decorate


def required_capabilities(item: pytest.Item) -> set[str]:
    """The capabilities a collected contract test needs: its rules' and its `requires`."""
    needed: set[str] = set()
    for mark in item.iter_markers("rule"):
        needed.update(cap for rule_id in mark.args if (cap := RULES[rule_id].capability) is not None)
        if mark.kwargs.get("requires"):
            needed.add(mark.kwargs["requires"])
    return needed


def _accepts_location(factory: Callable[..., Any]) -> bool:
    try:
        return "location" in inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return False


@asynccontextmanager
async def open_store(source: StoreSource, location: Path | None = None) -> AsyncIterator[ThreadRunStore]:
    """Open a store from a source, yield it, and close it after.

    A callable source is called (with `location=` when it takes that parameter); an
    awaitable result is awaited; an async context manager or async generator is
    entered and exited; a store with an `aclose()` method is closed. Raises
    `TypeError` when the source does not produce a `ThreadRunStore`.
    """
    produced: Any = source
    if callable(source) and not isinstance(source, ThreadRunStore):
        produced = source(location=str(location)) if location and _accepts_location(source) else source()
    if inspect.isawaitable(produced):
        produced = await produced
    if isinstance(produced, AsyncGenerator):
        async with _from_async_generator(produced) as store:
            yield _checked(store, source)
    elif isinstance(produced, AbstractAsyncContextManager) or hasattr(produced, "__aenter__"):
        async with produced as store:
            yield _checked(store, source)
    elif produced is source:
        # A ready store object belongs to whoever made it (a fixture, say): not closed here.
        yield _checked(produced, source)
    else:
        store = _checked(produced, source)
        try:
            yield store
        finally:
            closer = getattr(store, "aclose", None)
            if callable(closer):
                await closer()


def _reopen(source: StoreSource, location: Path) -> AbstractAsyncContextManager[ThreadRunStore]:
    if isinstance(source, ThreadRunStore):
        raise TypeError(
            "durable rules open a second store on the same location, so the store source must be a "
            "factory (a class or callable, taking `location=` if it needs one), not a ready store object"
        )
    return open_store(source, location)


@asynccontextmanager
async def _from_async_generator(generator: AsyncGenerator[Any, None]) -> AsyncIterator[Any]:
    store = await generator.__anext__()
    try:
        yield store
    finally:
        try:
            await generator.__anext__()
        except StopAsyncIteration:
            pass
        else:
            raise RuntimeError("a store async generator must yield exactly once")


def _checked(store: object, source: StoreSource) -> ThreadRunStore:
    if not isinstance(store, ThreadRunStore):
        raise TypeError(
            f"the store source {source!r} produced {type(store).__name__}, not a conformance.ThreadRunStore; "
            "subclass ThreadRunStore (or ReferenceStore) in your backend"
        )
    return store


def declared_capabilities(value: object) -> frozenset[str] | None:
    """The capability names an object declares in a `capabilities` attribute, or None."""
    found = getattr(value, "capabilities", None)
    if found is None:
        return None
    if isinstance(found, str) or not isinstance(found, Collection):
        raise TypeError(f"'capabilities' of {value!r} must be a collection of names, got {found!r}")
    unknown = set(found) - set(CAPABILITIES)
    if unknown:
        raise ValueError(f"unknown capabilities {sorted(unknown)} declared by {value!r}; known: {sorted(CAPABILITIES)}")
    return frozenset(found)


class Kit:
    """The per-test runner behind the `conformance_kit` fixture."""

    def __init__(
        self,
        request: pytest.FixtureRequest,
        *,
        backend: str,
        timeout: float,
        capabilities: frozenset[str] | None,
        location: Path,
        report: Report | None = None,
        profile: str = "quick",
    ) -> None:
        self.request = request
        self.report = report
        self.profile = profile
        self.backend = backend
        self.timeout = timeout
        self.capability_override = capabilities
        self.location = location

    def source(self, instance: object) -> StoreSource:
        """The store source: a plain `store` method of the test class, else the `store` fixture."""
        raw = inspect.getattr_static(type(instance), "store", None)
        if inspect.isfunction(raw) or isinstance(raw, (staticmethod, classmethod)):
            found: StoreSource = getattr(instance, "store")  # noqa: B009 - the class has no declared attribute
            return found
        try:
            return self.request.getfixturevalue("store")
        except pytest.FixtureLookupError:
            pytest.fail(
                "no store to test: pass --store module:attr, define a `store` fixture in conftest.py, "
                "or subclass conformance.StoreContract and give it a `store` method",
                pytrace=False,
            )

    def capabilities(self, instance: object, source: StoreSource) -> frozenset[str] | None:
        """Declared capabilities: --capabilities, else the class's, else the source's (None: ask the store)."""
        if self.capability_override is not None:
            return self.capability_override
        for holder in (type(instance), source):
            found = declared_capabilities(holder)
            if found is not None:
                return found
        return None

    def run(self, instance: object, body: Callable[..., Awaitable[None]], params: dict[str, Any]) -> None:
        """Open a fresh store, run `body` against it (with pytest's `params`) in time, close the store."""
        source = self.source(instance)
        declared = self.capabilities(instance, source)
        needed = required_capabilities(self.request.node)
        if declared is not None:
            self._declare(declared)
            _skip_unless(needed, declared)
        parameters = inspect.signature(body).parameters

        async def main() -> None:
            with anyio.fail_after(self.timeout):
                async with open_store(source, self.location) as store:
                    if declared is None:
                        found = declared_capabilities(store) or frozenset()
                        self._declare(found)
                        _skip_unless(needed, found)
                    kwargs = dict(params)
                    if "store" in parameters:
                        kwargs["store"] = store
                    if "reopen" in parameters:
                        kwargs["reopen"] = lambda: _reopen(source, self.location)
                    await body(instance, **kwargs)

        try:
            with _hard_deadline(self.timeout + HARD_DEADLINE_GRACE):
                anyio.run(main, backend=self.backend)
        except (TimeoutError, _HardTimeout):
            pytest.fail(
                f"timed out after {self.timeout:g}s: the store did not answer "
                "(raise --conformance-timeout if it is merely slow)",
                pytrace=False,
            )

    def run_machine(self, instance: object, machine: type[StoreMachine]) -> None:
        """Run a Hypothesis state machine with a fresh store per example (see `stateful`)."""
        source = self.source(instance)
        declared = self.capabilities(instance, source)
        if declared is None:
            declared = anyio.run(_probe_capabilities, source, self.location / "probe", backend=self.backend)
        self._declare(declared)
        _skip_unless(required_capabilities(self.request.node), declared)
        run_machine(
            machine,
            open_store=lambda folder: open_store(source, folder),
            backend=self.backend,
            location=self.location,
            capabilities=declared,
            profile=self.profile,
            timeout=self.timeout,
            progress=terminal_line(self.request.config),
        )

    def _declare(self, capabilities: frozenset[str]) -> None:
        if self.report is not None:
            self.report.capabilities = capabilities


async def _probe_capabilities(source: StoreSource, location: Path) -> frozenset[str]:
    location.mkdir(parents=True, exist_ok=True)
    async with open_store(source, location) as store:
        return declared_capabilities(store) or frozenset()


#: Seconds past the timeout after which a store stuck without awaiting is interrupted by a signal.
HARD_DEADLINE_GRACE = 2.0


class _HardTimeout(Exception):
    """Raised by SIGALRM when a store blocks the event loop past the deadline."""


@contextmanager
def _hard_deadline(seconds: float) -> Iterator[None]:
    """Interrupt code that never awaits (a busy loop in a store) after `seconds`.

    `anyio.fail_after` can only cancel at an await; a store spinning in plain Python
    would hang the run. On the main thread of a Unix process a SIGALRM timer raises
    `_HardTimeout` there instead; elsewhere this does nothing.
    """
    if not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise _HardTimeout

    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _skip_unless(needed: set[str], declared: frozenset[str]) -> None:
    missing = sorted(needed - declared)
    if missing:
        pytest.skip(f"needs capability {', '.join(repr(m) for m in missing)} (not declared)")
