"""Store sources: what provides a store, how the kit opens and reopens one, and the set-up check.

A source is a store, a store class, or a callable returning a store, an awaitable of
one, an async context manager yielding one, or an async generator yielding one. A
callable's parameters are filled by name: `location` with the test's folder, any
other parameter without a default with the pytest fixture of that name. The kit
calls the source inside its own event loop, so loop-bound resources (an asyncpg or
aiosqlite connection) belong to the loop the test runs in.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Collection, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio

from conformance.contract._stores import ThreadRunStore
from conformance.kit._boundary import StoreHang, store_problems
from conformance.kit._lifecycle import opened
from conformance.kit._rules import CAPABILITIES

__all__ = [
    "BACKENDS",
    "NotAStoreError",
    "SetupError",
    "SourceCheck",
    "StoreSource",
    "UnwrittenMethodsError",
    "check_source",
    "declared_backends",
    "declared_capabilities",
    "factory_fixtures",
    "holder_name",
    "open_store",
    "reopen",
]

#: What provides a store (see the module docstring).
StoreSource = Any
#: The event loops the kit runs stores under (through anyio), in the order it runs them.
BACKENDS = ("asyncio", "trio")


def _parameters(factory: Callable[..., Any]) -> list[inspect.Parameter]:
    try:
        return list(inspect.signature(factory).parameters.values())
    except (TypeError, ValueError):
        return []


def _is_factory(source: StoreSource) -> bool:
    return callable(source) and not isinstance(source, ThreadRunStore)


def factory_fixtures(source: StoreSource) -> list[str]:
    """The pytest fixtures a callable source asks for: its parameters without defaults, but `location`."""
    if not _is_factory(source) or isinstance(source, type):
        return []
    return [
        p.name
        for p in _parameters(source)
        if p.name != "location"
        and p.default is inspect.Parameter.empty
        and p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    ]


class UnwrittenMethodsError(TypeError):
    """A store class leaves abstract methods of the contract unwritten (named in the message)."""

    def __init__(self, store_class: type) -> None:
        missing = ", ".join(sorted(getattr(store_class, "__abstractmethods__", ())))
        super().__init__(f"{store_class.__qualname__} does not implement {missing}: write these methods (async def)")


def _call(source: StoreSource, location: Path | None, arguments: Mapping[str, Any] | None) -> Any:
    """Call a factory source with `location=` (when it takes it) and `arguments`; anything else is the store."""
    if not _is_factory(source):
        return source
    if isinstance(source, type) and getattr(source, "__abstractmethods__", None):
        raise UnwrittenMethodsError(source)
    kwargs = dict(arguments or {})
    if location is not None and any(p.name == "location" for p in _parameters(source)):
        kwargs["location"] = str(location)
    return source(**kwargs)


@asynccontextmanager
async def open_store(
    source: StoreSource, location: Path | None = None, *, arguments: Mapping[str, Any] | None = None
) -> AsyncIterator[ThreadRunStore]:
    """Open a store from a source, yield it, and close it after.

    A callable source is called with `location=` (as a string) when it takes that
    parameter and with `arguments` (fixture values by parameter name); an awaitable
    result is awaited; an async context manager or async generator is entered and
    exited; a store with an `aclose()` method is closed. Raises `TypeError` when the
    source does not produce a `ThreadRunStore`.
    """
    opened(source, location)  # for the source's `cleanup` at the end of the session
    produced: Any = _call(source, location, arguments)
    if inspect.isawaitable(produced):
        produced = await produced
    if isinstance(produced, type) and issubclass(produced, ThreadRunStore):
        produced = _call(produced, location, None)  # `def store(self): return MyStore` names the class
    if isinstance(produced, AsyncGenerator):
        async with _from_async_generator(produced) as store:
            yield _store(store, source)
    elif isinstance(produced, AbstractAsyncContextManager) or hasattr(produced, "__aenter__"):
        async with produced as store:
            yield _store(store, source)
    elif produced is source:
        # A ready store object belongs to whoever made it (a fixture, say): not closed here.
        yield _store(produced, source)
    else:
        store = _store(produced, source)
        try:
            yield store
        finally:
            closer = getattr(store, "aclose", None)
            if callable(closer):
                await closer()


def reopen(
    source: StoreSource, location: Path, *, arguments: Mapping[str, Any] | None = None
) -> AbstractAsyncContextManager[ThreadRunStore]:
    """Open another store on `location` from the same source (for the `durable` rules).

    Raises `TypeError` when the source is a ready store object, which cannot be opened twice.
    """
    if isinstance(source, ThreadRunStore):
        raise TypeError(
            "durable rules open a second store on the same location, so the store source must be a "
            "factory (a class or callable, taking `location=` if it needs one), not a ready store object"
        )
    return open_store(source, location, arguments=arguments)


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


class NotAStoreError(TypeError):
    """A store source produced something that is not a `ThreadRunStore` (kept in `produced`)."""

    def __init__(self, produced: object, source: StoreSource) -> None:
        self.produced = produced
        super().__init__(
            f"the store source {source!r} produced {type(produced).__name__}, not a conformance.ThreadRunStore; "
            "subclass ThreadRunStore (or ReferenceStore) in your backend"
        )


def _store(store: object, source: StoreSource) -> ThreadRunStore:
    if not isinstance(store, ThreadRunStore):
        raise NotAStoreError(store, source)
    return store


def declared_capabilities(value: object) -> frozenset[str] | None:
    """The capability names an object declares in a `capabilities` attribute, or None.

    Raises `TypeError` for a `capabilities` that is not a collection of names and
    `ValueError` for unknown names.
    """
    found = getattr(value, "capabilities", None)
    if found is None:
        return None
    if isinstance(found, str) or not isinstance(found, Collection):
        raise TypeError(f"'capabilities' of {value!r} must be a collection of names, got {found!r}")
    unknown = set(found) - set(CAPABILITIES)
    if unknown:
        raise ValueError(f"unknown capabilities {sorted(unknown)} declared by {value!r}; known: {sorted(CAPABILITIES)}")
    return frozenset(found)


def holder_name(value: object) -> str:
    """How messages name what declares something: `TestMine`, `make_store`, or an object's class `MyStore`."""
    name = getattr(value, "__qualname__", None)
    return (name if isinstance(name, str) else type(value).__qualname__).rpartition("<locals>.")[2]


def declared_backends(value: object) -> tuple[str, ...] | None:
    """The event loops an object declares in a `backends` attribute (in `BACKENDS` order), or None.

    Raises `TypeError` for a `backends` that is not a collection of names (a lone
    string included) and `ValueError` for an empty one or unknown names.

        class MyStore(ThreadRunStore):
            backends = ("asyncio",)  # declared_backends(MyStore) == ("asyncio",)
    """
    found = getattr(value, "backends", None)
    if found is None:
        return None
    where = holder_name(value)
    if isinstance(found, str) or not isinstance(found, Collection):
        raise TypeError(f"backends = {found!r} on {where}: must be a collection of names, such as ('asyncio',)")
    unknown = sorted(str(name) for name in found if name not in BACKENDS)
    if unknown or not found:
        what = f"unknown event loop {', '.join(map(repr, unknown))}" if unknown else "names no event loop"
        raise ValueError(f"backends = {tuple(found)!r} on {where}: {what}; choose from {', '.join(BACKENDS)}")
    return tuple(name for name in BACKENDS if name in found)


class SetupError(Exception):
    """The store cannot be tested at all: it cannot be opened, or is not a usable store. One line."""


#: The harmless read the set-up check makes on the opened store (its result is ignored).
PROBE = "list_threads(0, 1)"


@dataclass(frozen=True, slots=True)
class SourceCheck:
    """What the set-up check found, under one event loop, in the store it opened."""

    #: The capabilities the store object declares (`capabilities` attribute), empty when none.
    capabilities: frozenset[str]
    #: The event loops the store object declares (`backends` attribute), or None.
    backends: tuple[str, ...] | None
    #: The store's class name, where a declaration on the object was found.
    store_name: str
    #: How the probe read (`PROBE`) failed: `list_threads(0, 1) raised RuntimeError: ...`; None when it returned.
    probe_error: str | None = None


async def check_source(
    source: StoreSource,
    location: Path,
    *,
    timeout: float,
    arguments: Mapping[str, Any] | None = None,
    probe: bool = True,
) -> SourceCheck:
    """Open one store from `source`, check it can be tested, read once (`probe`), close it; say what it declares.

    The read (`PROBE`) shows whether the store works in the running event loop; its
    result is not judged (the contract tests do that), and a read that raises or does
    not return within `timeout` is reported in `probe_error`, not raised: whether the
    loop is to blame is the caller's to decide, against another loop.

    Raises `SetupError`, with one line naming the problem, when the source names an
    abstract class, opening or closing the store fails or takes longer than
    `timeout` seconds, the store is not a `ThreadRunStore` with every abstract
    method written and every store method a coroutine function, or it declares
    `capabilities` or `backends` the kit does not know.
    """
    name = getattr(source, "__qualname__", None) or type(source).__name__
    stage = "opening the store"
    capabilities: frozenset[str] = frozenset()
    backends: tuple[str, ...] | None = None
    store_name = name
    probe_error: str | None = None
    try:
        with anyio.fail_after(timeout):
            async with open_store(source, location, arguments=arguments) as store:
                problems = store_problems(store)
                if problems:
                    raise SetupError("; ".join(problems))
                stage = "reading its capabilities"
                capabilities = declared_capabilities(store) or frozenset()
                store_name = holder_name(store)
                try:
                    backends = declared_backends(store)
                except (TypeError, ValueError) as error:
                    raise SetupError(str(error)) from None
                if probe:
                    stage = PROBE
                    try:
                        await store.list_threads(0, 1)
                    except StoreHang:  # it spun without awaiting until the caller's signal stopped it
                        probe_error = f"{PROBE} did not return within {timeout:g} s"
                    except Exception as error:
                        probe_error = f"{PROBE} raised {_described(error)}"
                stage = "closing the store"
    except SetupError:
        raise
    except NotAStoreError as error:
        raise SetupError(store_problems(error.produced)[0]) from None
    except UnwrittenMethodsError as error:
        raise SetupError(str(error)) from None
    except TimeoutError:
        if stage != PROBE and probe_error is None:
            raise SetupError(f"{stage} ({name}) did not finish within {timeout:g} s") from None
        # The read used up the time (the closing after it was cut short): the probe's failure, not the set-up's.
        probe_error = probe_error or f"{PROBE} did not return within {timeout:g} s"
    except Exception as error:
        raise SetupError(f"{stage} ({name}) failed: {_described(error)}") from error
    return SourceCheck(capabilities, backends, store_name, probe_error)


def _described(error: BaseException) -> str:
    """`RuntimeError: no running event loop`: an error's type and its first line."""
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__
