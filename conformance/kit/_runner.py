"""How a contract test runs: the `rule` decorator and the per-test event loop.

Contract tests are written as `async def` methods, but pytest sees plain functions:
the kit opens a fresh store, runs the body and tears the store down inside one
event loop of its own (asyncio or trio, through anyio). So the kit behaves the
same whatever async plugin (anyio, pytest-asyncio in any mode) a project uses.

Before a class's first test the kit checks its store source once under each event
loop the class's tests run under (`check_loops`): a store that cannot be built, or
does not run under a chosen loop, stops the run with one line. Every store call goes
through the boundary (`_boundary.checked`), so a timeout names the call in flight,
and the kit's own frames are hidden from tracebacks.
"""

from __future__ import annotations

import inspect
import itertools
import signal
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, MutableMapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, NoReturn

import anyio
import pytest
from hypothesis.errors import Flaky, FlakyFailure, HypothesisException

from conformance.contract._stores import ThreadRunStore
from conformance.kit._boundary import CallLog, CallStats, NotCarried, StoreHang, checked
from conformance.kit._loops import (
    LOOP_PROPERTY,
    LOOPS_LEFT_OUT_PROPERTY,
    LoopCheck,
    check_loops,
    declared_loops,
    run_check,
)
from conformance.kit._rules import CAPABILITIES, RULES
from conformance.kit._sources import (
    SetupError,
    SourceCheck,
    StoreSource,
    declared_capabilities,
    factory_fixtures,
    open_store,
    reopen,
)
from conformance.kit._stateful import StoreMachine, run_machine, terminal_line
from conformance.kit._tracebacks import cleaned
from conformance.kit._violation import StoreLifecycleError

__all__ = ["Kit", "StoreSource", "open_store", "rule"]

#: `user_properties` names by which a test's report tells the plugin what the kit saw (they
#: travel with the report, also from pytest-xdist workers to the controller).
CAPABILITIES_PROPERTY = "conformance_capabilities"
SKIPPED_PROPERTY = "conformance_capability_skip"
#: A test left out because the store process cannot take a value it sends (`NotCarried`): it does not apply.
NOT_CARRIED_PROPERTY = "conformance_not_carried"
TIMEOUT_PROPERTY = "conformance_timeout"
#: The rules a hung call answered to (`answering`): the hang breaks those, not the test's own.
HANG_RULE_PROPERTY = "conformance_hang_rule"
SETUP_PROPERTY = "conformance_setup"
#: A test's store calls: `count:seconds`.
CALLS_PROPERTY = "conformance_calls"
#: Opening or closing the store failed or hung in this test: what happened (no rule's failure).
LIFECYCLE_PROPERTY = "conformance_lifecycle"

#: What a contract test body may fail with (or be left out with: `NotCarried`), caught inside the
#: event loop and raised again outside it.
_TEST_FAILURES = (Exception, pytest.fail.Exception, pytest.skip.Exception, pytest.xfail.Exception, NotCarried)

#: What a durable contract test receives as `reopen` (another store on the test's location), and
#: any test as `fresh` (a new, independent store on a location of its own).
Reopen = Callable[[], AbstractAsyncContextManager[ThreadRunStore]]

BODY_ATTRIBUTE = "__conformance_body__"
#: Arguments of a contract test body that the kit supplies, not pytest.
KIT_ARGUMENTS = ("store", "reopen", "fresh")


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
            __tracebackhide__ = True
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
    """The capabilities a collected contract test needs: its rules' (but `ungated` ones) and its `requires`."""
    needed: set[str] = set()
    for mark in item.iter_markers("rule"):
        gated = [rule_id for rule_id in mark.args if rule_id not in mark.kwargs.get("ungated", ())]
        needed.update(cap for rule_id in gated if (cap := RULES[rule_id].capability) is not None)
        if mark.kwargs.get("requires"):
            needed.add(mark.kwargs["requires"])
    return needed


#: Per test class and event loop: the set-up check of its store under the loops it runs under, or its failure.
SetupResults = MutableMapping[tuple[object, str], "LoopCheck | SetupError"]


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
        profile: str = "quick",
        setups: SetupResults | None = None,
        hung: Mapping[object, str] | None = None,
        seed: int | None = None,
        chosen: tuple[str, ...] | None = None,
        loop_fixed: bool = True,
    ) -> None:
        self.request = request
        self.profile = profile
        self.backend = backend
        self.timeout = timeout
        self.capability_override = capabilities
        self.location = location
        self.setups: SetupResults = {} if setups is None else setups
        self.hung: Mapping[object, str] = {} if hung is None else hung
        self.seed = seed
        #: The loops `--conformance-backend` chose (None: not given), and whether this test's
        #: loop is fixed (parametrized) or the first its store runs under, known at set-up.
        self.chosen = chosen
        self.loop_fixed = loop_fixed

    def source(self, instance: object) -> StoreSource:
        """The store source: a plain `store` method of the test class, else the `store` fixture."""
        raw = inspect.getattr_static(type(instance), "store", None)
        if inspect.isfunction(raw) or isinstance(raw, (staticmethod, classmethod)):
            found: StoreSource = getattr(instance, "store")  # noqa: B009 - the class has no declared attribute
            return found
        try:
            return self.request.getfixturevalue("store")
        except pytest.FixtureLookupError:
            self._setup_failed(
                "no store to test: pass --store module:attr, define a `store` fixture in conftest.py, "
                "or subclass conformance.StoreContract and give it a `store` method"
            )

    def arguments(self, source: StoreSource) -> dict[str, Any]:
        """The pytest fixtures a callable source asks for by parameter name, resolved for this test."""
        values = {}
        for name in factory_fixtures(source):
            try:
                values[name] = self.request.getfixturevalue(name)
            except pytest.FixtureLookupError:
                self._setup_failed(
                    f"the store factory {getattr(source, '__qualname__', source)!r} asks for {name!r}, "
                    "which is no pytest fixture: give it a default or define the fixture"
                )
        return values

    def capabilities(self, instance: object, source: StoreSource) -> frozenset[str] | None:
        """Declared capabilities: --capabilities, else the class's, else the source's (None: ask the store)."""
        if self.capability_override is not None:
            return self.capability_override
        for holder in (type(instance), source):
            found = declared_capabilities(holder)
            if found is not None:
                return found
        return None

    def prepare(self, instance: object) -> tuple[StoreSource, dict[str, Any], frozenset[str]]:
        """The store source, its fixture arguments and the declared capabilities; skips unless they suffice.

        Checks the source once per test class, under each event loop its tests run
        under, before its first test; a failed check fails this test and stops the run
        (see `_setup_failed`). A test under a chosen loop the store does not declare is
        skipped, and left out of the report (`LOOPS_LEFT_OUT_PROPERTY`).
        """
        hung = self.hung.get(type(instance))
        if hung is not None:
            pytest.skip(f"not run: {hung}")
        source = self.source(instance)
        arguments = self.arguments(source)
        declared = self.capabilities(instance, source)
        found = self._checked(instance, source, arguments)
        node = self.request.node
        node.user_properties += [
            (LOOPS_LEFT_OUT_PROPERTY, f"{loop}: {why}") for loop, why in found.plan.left_out.items()
        ]
        if self.backend not in found.plan.loops:
            if self.loop_fixed:
                node.user_properties.append((LOOP_PROPERTY, self.backend))
                why = found.plan.left_out.get(self.backend, "the store does not run under it")
                pytest.skip(f"not run under {self.backend}: {why}")
            self.backend = found.plan.loops[0]
        node.user_properties.append((LOOP_PROPERTY, self.backend))
        capabilities = found.capabilities if declared is None else declared
        node.user_properties.append((CAPABILITIES_PROPERTY, ",".join(sorted(capabilities))))
        missing = sorted(required_capabilities(node) - capabilities)
        if missing:
            node.user_properties.append((SKIPPED_PROPERTY, ",".join(missing)))
            pytest.skip(f"needs capability {', '.join(repr(m) for m in missing)} (not declared)")
        return source, arguments, capabilities

    def _checked(self, instance: object, source: StoreSource, arguments: dict[str, Any]) -> LoopCheck:
        """The set-up check of the class's store under every loop it runs under (once per class and loop)."""
        __tracebackhide__ = True
        owner = type(instance)
        result = self.setups.get((owner, self.backend))
        if result is None:
            try:
                result = check_loops(
                    lambda loop, probe: self.check_under(
                        source, loop, timeout=self.timeout, arguments=arguments, probe=probe
                    ),
                    chosen=self.chosen,
                    declared=declared_loops(owner, source),
                )
            except SetupError as error:
                result = error
            ran = result.plan.loops if isinstance(result, LoopCheck) else ()
            for loop in (self.backend, *(self.chosen or ()), *ran):
                self.setups.setdefault((owner, loop), result)
        if isinstance(result, SetupError):
            self._setup_failed(str(result))
        return result

    @staticmethod
    def check_under(
        source: StoreSource,
        loop: str,
        *,
        timeout: float,
        arguments: dict[str, Any] | None = None,
        probe: bool = True,
    ) -> SourceCheck | SetupError:
        """The set-up check (`run_check`) under `loop`, interrupted if the store spins without awaiting."""
        try:
            with _hard_deadline(timeout + HARD_DEADLINE_GRACE):
                return run_check(source, loop, timeout=timeout, arguments=arguments, probe=probe)
        except StoreHang:
            return SetupError(f"opening the store did not finish within {timeout:g} s")

    def _setup_failed(self, problem: str) -> NoReturn:
        """Fail this test with `problem` and stop the run: no other test of this store can run."""
        self.request.node.user_properties.append((SETUP_PROPERTY, problem))
        self.request.session.shouldstop = f"the store cannot be tested: {problem}"
        pytest.fail(f"set-up failed: {problem}", pytrace=False)

    def run(self, instance: object, body: Callable[..., Awaitable[None]], params: dict[str, Any]) -> None:
        """Open a fresh store, run `body` against it (with pytest's `params`), close the store.

        Each store call, and opening and closing the store, may take `timeout` seconds
        (a test's budget follows from its calls). Opening or closing that fails or hangs
        raises `StoreLifecycleError`: no contract rule is about it.
        """
        __tracebackhide__ = True
        source, arguments, _ = self.prepare(instance)
        parameters = inspect.signature(body).parameters
        calls = CallLog(timeout=self.timeout)
        stage = _Stage("opening the store")
        raised: list[BaseException] = []

        async def main() -> None:
            __tracebackhide__ = True
            opening = open_store(source, self.location, arguments=arguments)
            async with _lifecycle(opening, self.timeout, stage) as opened:
                kwargs = dict(params)
                if "store" in parameters:
                    kwargs["store"] = checked(opened, calls)
                if "reopen" in parameters:
                    kwargs["reopen"] = lambda: _checked_reopen(source, self.location, arguments, calls)
                if "fresh" in parameters:
                    kwargs["fresh"] = lambda: _checked_fresh(source, self.location, arguments, calls)
                stage.enter("the test")
                try:
                    await body(instance, **kwargs)
                except _TEST_FAILURES as error:
                    # Raised again outside the event loop, so the traceback starts at the test body.
                    raised.append(error)
                except BaseExceptionGroup as group:  # concurrent calls: a hang among them ends the test
                    hang = _first_hang(group)
                    if hang is None:
                        raised.append(group)
                    else:
                        raise hang from None
                stage.enter("closing the store")

        hung = None
        try:
            with _watchdog(self.timeout, calls, stage):
                anyio.run(main, backend=self.backend)
        except StoreHang as hang:
            hung = hang  # failed below, outside the handler, so no chained traceback
        except StoreLifecycleError as error:
            self._lifecycle_failed(error)
            raised.append(error)  # a test that failed on its own first is reported as such
        finally:
            self._record_calls(calls.stats)
        if hung is not None:
            self._timed_out(hung)
        if raised and isinstance(raised[0], NotCarried):
            self._not_carried(raised[0])
        if raised:
            raise cleaned(raised[0])

    def _lifecycle_failed(self, error: BaseException) -> None:
        """Record that opening or closing the store failed in this test (`StoreLifecycleError`)."""
        self.request.node.user_properties.append((LIFECYCLE_PROPERTY, str(error)))

    def _not_carried(self, error: NotCarried) -> NoReturn:
        """Skip the test: the store process cannot take a value it sends, so it does not apply to the store."""
        self.request.node.user_properties.append((NOT_CARRIED_PROPERTY, str(error)))
        pytest.skip(f"does not apply to this store: its JSON cannot hold a value the test sends: {error}")

    def _record_calls(self, stats: CallStats) -> None:
        """Tell the plugin (through the report, also across xdist) how many store calls ran, how long."""
        self.request.node.user_properties.append((CALLS_PROPERTY, f"{stats.count}:{stats.seconds:.6f}"))

    def _timed_out(self, hang: StoreHang) -> NoReturn:
        """Fail the test for a hang; one in a call that answers to rules breaks those (`answering`).

        Opening or closing the store that hangs is a lifecycle failure, no rule's.
        """
        # Not hidden: pytest says "all traceback entries are hidden" when every frame is.
        self.request.node.user_properties.append((TIMEOUT_PROPERTY, str(hang)))
        self.request.node.user_properties += [(HANG_RULE_PROPERTY, rule_id) for rule_id in hang.rules]
        ran = f": still running after {hang.elapsed:.1f} s" if hang.elapsed is not None else ""
        message = (
            f"{hang} did not return within {self.timeout:g} s{ran} "
            "(--conformance-timeout bounds each store call; raise it if the store is merely slow)"
        )
        if hang.lifecycle:
            self.request.node.user_properties.append((LIFECYCLE_PROPERTY, message))
        pytest.fail(message, pytrace=False)

    def run_machine(self, instance: object, machine: type[StoreMachine]) -> None:
        """Run a Hypothesis state machine with a fresh store per example (see `stateful`)."""
        __tracebackhide__ = True
        source, arguments, capabilities = self.prepare(instance)
        hung = None
        replayed: BaseException | None = None
        stats = CallStats()
        try:
            run_machine(
                machine,
                open_store=lambda folder: open_store(source, folder, arguments=arguments),
                backend=self.backend,
                location=self.location,
                capabilities=capabilities,
                profile=self.profile,
                timeout=self.timeout,
                progress=terminal_line(self.request.config),
                seed=self.seed,
                stats=stats,
            )
        except StoreHang as hang:
            hung = hang
        except BaseException as failure:
            lifecycle = _lifecycle_only(failure)
            if lifecycle is not None:
                self._lifecycle_failed(lifecycle)
            replayed = _unreplayable(failure)
            if replayed is None:
                cleaned(failure)
                raise
        finally:
            self._record_calls(stats)
        if hung is not None:
            self._timed_out(hung)
        if replayed is not None:  # raised here, outside the handler, so no chained Hypothesis traceback
            raise cleaned(replayed)


def _checked_reopen(
    source: StoreSource, location: Path, arguments: dict[str, Any], calls: CallLog
) -> AbstractAsyncContextManager[ThreadRunStore]:
    """`reopen` for a durable test: another store on the same location, behind the same boundary."""

    @asynccontextmanager
    async def opened() -> AsyncIterator[ThreadRunStore]:
        async with reopen(source, location, arguments=arguments) as store:
            yield checked(store, calls)

    return opened()


def _checked_fresh(
    source: StoreSource, location: Path, arguments: dict[str, Any], calls: CallLog
) -> AbstractAsyncContextManager[ThreadRunStore]:
    """`fresh` for a test that needs a second, independent store: a new one on a location of its own."""
    places = itertools.count(1)

    @asynccontextmanager
    async def opened() -> AsyncIterator[ThreadRunStore]:
        while (place := location / f"fresh-{next(places)}").exists():
            pass
        place.mkdir(parents=True)
        async with open_store(source, place, arguments=arguments) as store:
            yield checked(store, calls)

    return opened()


#: Seconds past the timeout after which a store stuck without awaiting is interrupted by a signal.
HARD_DEADLINE_GRACE = 2.0
#: How often the watchdog looks for a store call stuck without awaiting, at most.
_WATCH_INTERVAL = 0.5


class _Stage:
    """What a contract test is doing (opening the store, the test, closing it) and since when."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.started = time.monotonic()

    def enter(self, name: str) -> None:
        """Start stage `name` now."""
        self.name = name
        self.started = time.monotonic()


@asynccontextmanager
async def _lifecycle(
    manager: AbstractAsyncContextManager[ThreadRunStore], timeout: float, stage: _Stage
) -> AsyncIterator[ThreadRunStore]:
    """Enter and exit `manager` (opening and closing a store), each within `timeout` seconds.

    A failure of either is the store's lifecycle failure (`StoreLifecycleError`, chained to
    the store's error); either taking longer raises `StoreHang` naming the stage.
    """
    with anyio.move_on_after(timeout) as opening:
        try:
            store = await manager.__aenter__()
        except Exception as error:
            raise StoreLifecycleError(f"opening the store failed: {error!r}") from error
    if opening.cancelled_caught:
        raise StoreHang("opening the store", elapsed=time.monotonic() - stage.started)
    try:
        yield store
    except BaseException:
        # A hang or an interrupt ends the test: close what can be closed, within the bound.
        with anyio.move_on_after(timeout, shield=True):
            await manager.__aexit__(None, None, None)
        raise
    stage.enter("closing the store")
    with anyio.move_on_after(timeout) as closing:
        try:
            await manager.__aexit__(None, None, None)
        except Exception as error:
            raise StoreLifecycleError(f"closing the store failed: {error!r}") from error
    if closing.cancelled_caught:
        raise StoreHang("closing the store", elapsed=time.monotonic() - stage.started)


def _unreplayable(failure: BaseException) -> BaseException | None:
    """The store's failure inside a failure Hypothesis could not replay, with a note saying so;
    None for any other failure.

    Replayed, the same calls got other answers (a transient error, an order a hash map leaves
    open, a race): Hypothesis reports its own `Flaky` error beside the check that failed
    (`FlakyFailure`), or raised while handling it (`FlakyStrategyDefinition`: a machine that
    draws from what the store answered drew differently). The check is what the author
    needs, and the rule it names is what breaks.
    """
    found: list[BaseException]
    if isinstance(failure, FlakyFailure):
        found = [member for member in failure.exceptions if not isinstance(member, Flaky)]
    elif isinstance(failure, Flaky):
        found = [context] if (context := _handled(failure)) is not None else []
    else:
        return None
    if not found:
        return None
    chosen = found[0] if len(found) == 1 else BaseExceptionGroup("several checks failed", found)
    if len(chosen.args) == 1 and isinstance(chosen.args[0], str):
        # The summary and the JSON show a failure's first line: it says so too.
        chosen.args = (f"flaky, the store answered differently on replay; first seen: {chosen.args[0]}",)
    chosen.add_note(
        "flaky: the store answered the same calls differently when Hypothesis replayed them "
        "(a transient error, an order left to a hash map, a race?), so this failure is not shrunk"
    )
    chosen.__suppress_context__ = True
    return chosen


def _handled(failure: BaseException) -> BaseException | None:
    """The failure Hypothesis was handling when it raised `failure`: the nearest in its context chain
    that is not Hypothesis' own; None without one."""
    context = failure.__context__
    while isinstance(context, HypothesisException):
        context = context.__context__
    return context


def _lifecycle_only(failure: BaseException) -> StoreLifecycleError | None:
    """The lifecycle failure that `failure` is (alone, or every member of a group), else None."""
    if isinstance(failure, StoreLifecycleError):
        return failure
    if isinstance(failure, BaseExceptionGroup):
        members = [_lifecycle_only(member) for member in failure.exceptions]
        if members and all(member is not None for member in members):
            return members[0]
    return None


def _first_hang(group: BaseExceptionGroup[BaseException]) -> StoreHang | None:
    """The first `StoreHang` in `group` (nested groups searched), if any."""
    for member in group.exceptions:
        if isinstance(member, StoreHang):
            return member
        if isinstance(member, BaseExceptionGroup):
            found = _first_hang(member)
            if found is not None:
                return found
    return None


@contextmanager
def _watchdog(timeout: float, calls: CallLog, stage: _Stage) -> Iterator[None]:
    """Interrupt a store stuck without awaiting (a busy loop) `HARD_DEADLINE_GRACE` s past `timeout`.

    `anyio` cancels a call at an await only; a store spinning in plain Python would hang
    the run. On the main thread of a Unix process a watcher thread looks at the oldest
    call in flight (or, between calls, the stage: opening or closing the store) and, once
    it has run too long, signals the main thread (SIGALRM), whose handler raises
    `StoreHang` there, naming it. No signal is sent to a store that behaves. Elsewhere
    this does nothing.
    """
    if not hasattr(signal, "pthread_kill") or threading.current_thread() is not threading.main_thread():
        yield
        return
    limit = timeout + HARD_DEADLINE_GRACE
    found: list[StoreHang] = []
    done = threading.Event()
    main = threading.main_thread().ident

    def watch() -> None:
        while not done.wait(min(_WATCH_INTERVAL, limit)):
            now = time.monotonic()
            flight = calls.in_flight()
            if flight and now - flight[0].started > limit:
                found.append(StoreHang(str(flight[0]), flight[0].rules, now - flight[0].started))
            elif not flight and stage.name != "the test" and now - stage.started > limit:
                found.append(StoreHang(stage.name, elapsed=now - stage.started))
            else:
                continue
            if main is not None:
                signal.pthread_kill(main, signal.SIGALRM)
            return

    def interrupt(signum: int, frame: object) -> None:
        if found:
            raise found[0]

    previous = signal.signal(signal.SIGALRM, interrupt)
    watcher = threading.Thread(target=watch, name="conformance-watchdog", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        done.set()
        watcher.join()
        signal.signal(signal.SIGALRM, previous)


@contextmanager
def _hard_deadline(seconds: float) -> Iterator[None]:
    """Interrupt code that never awaits (opening a store that spins) after `seconds`, raising `StoreHang`.

    On the main thread of a Unix process only, like `_watchdog`; elsewhere this does nothing.
    """
    if not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise StoreHang("opening the store", elapsed=seconds)

    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
