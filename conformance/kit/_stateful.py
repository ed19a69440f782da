"""Infrastructure of the Hypothesis state machines: a store per example, driven through a portal.

A machine subclasses `StoreMachine` and calls the store with `self.call(...)`; the kit
gives every example a fresh store from the same source as the example tests, opened
in an anyio blocking portal (asyncio or trio) and closed by `teardown`.

    class HierarchyMachine(StoreMachine):
        @rule(...)
        def save(self, ...):
            self.call(self.store.save_thread, thread)

    class HierarchyRules:
        test_hierarchy_machine = stateful(HierarchyMachine, "HIE-3", "DEL-4")

A run that takes longer than `PROGRESS_INTERVAL` seconds (thorough takes minutes;
any profile while shrinking a failure of a slow store) reports its progress
(examples and store calls done) on the terminal, past pytest's output capturing.
"""

from __future__ import annotations

import itertools
import random
import sys
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager, nullcontext
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeVar

import hypothesis
import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis.errors import HypothesisException
from hypothesis.stateful import RuleBasedStateMachine, get_state_machine_test

from conformance.contract._errors import StorageError
from conformance.contract._stores import ThreadRunStore
from conformance.kit._boundary import CallLog, CallStats, StoreHang, answering, checked, describe_call
from conformance.kit._portal import LoopThread
from conformance.kit._rules import RULES
from conformance.kit._scenarios import Snapshot, snapshot
from conformance.kit._violation import StoreLifecycleError

__all__ = ["PROFILES", "PROGRESS_INTERVAL", "Progress", "StoreMachine", "machine_settings", "stateful", "terminal_line"]

_T = TypeVar("_T")

#: Hypothesis effort per `--conformance-profile`: examples per machine and steps per example.
#: quick and ci are derandomized and read no example database, so one store always gets one
#: verdict; thorough explores at random, from a seed it prints when a machine fails.
PROFILES: dict[str, dict[str, Any]] = {
    "quick": {"max_examples": 30, "stateful_step_count": 25, "derandomize": True, "database": None},
    "ci": {"max_examples": 30, "stateful_step_count": 25, "derandomize": True, "database": None},
    "thorough": {"max_examples": 300, "stateful_step_count": 50, "derandomize": False, "database": None},
}

#: The least number of seconds between two progress reports of a machine run (in every profile).
PROGRESS_INTERVAL = 5.0

#: Where `stateful` keeps the machine on the test it makes (read by the spec renderer).
MACHINE_ATTRIBUTE = "__conformance_machine__"


def machine_settings(profile: str) -> settings:
    """The Hypothesis settings of a profile; no deadline (stores may do real I/O).

    The explain phase is left out: it replays the shrunk failure under tracing, which
    turned a 20 s failing run into minutes, and the shrunk steps already explain it.
    Randomness and the example database are always the profile's own, never those of a
    Hypothesis profile the user's conftest loaded: a profile that does not say is random.
    """
    chosen = {"derandomize": False, "database": None, **PROFILES[profile]}
    return settings(
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        phases=tuple(phase for phase in Phase if phase is not Phase.explain),
        **chosen,
    )


class StoreMachine(RuleBasedStateMachine):
    """A state machine over a fresh store: `self.store`, `self.call`, `self.capabilities`."""

    #: Set by the kit before each example; machines read them, never set them.
    capabilities: ClassVar[frozenset[str]] = frozenset()
    _open: ClassVar[Callable[[Path], AbstractAsyncContextManager[ThreadRunStore]] | None] = None
    _backend: ClassVar[str] = "asyncio"
    _folders: ClassVar[Callable[[], Path]]
    _timeout: ClassVar[float] = 60.0
    _progress: ClassVar[Progress | None] = None
    _stats: ClassVar[CallStats | None] = None

    def __init__(self) -> None:
        super().__init__()
        cls = type(self)
        if cls._open is None:
            raise RuntimeError(f"{cls.__name__} runs through the kit: use stateful() in a StoreContract")
        if cls._progress is not None:
            cls._progress.example()
        self._calls = CallLog(stats=cls._stats)
        self._loop = LoopThread(cls._backend)
        try:
            opened = self._loop.enter(cls._open(cls._folders()), timeout=cls._timeout, what="opening the store")
        except Exception as error:
            raise StoreLifecycleError(f"opening the store failed: {error!r}") from error
        self.store = checked(opened, self._calls)

    def call(self, function: Callable[..., Awaitable[_T]], *args: Any, rules: str | tuple[str, ...] = ()) -> _T:
        """Run one store coroutine in the example's event loop, within the kit's timeout.

        A call that does not return in time raises `StoreHang` naming it, which ends the
        machine run at once (Hypothesis does not shrink it by hanging again). The hang
        breaks `rules` when given (the step's own, as `answering`), else every rule of
        the machine.
        """
        __tracebackhide__ = True
        progress = type(self)._progress
        name = getattr(function, "__name__", "the store")
        started = time.monotonic()

        async def answered() -> _T:
            with answering(rules):
                return await function(*args)

        what = describe_call(name, args)
        try:
            return self._loop.call(answered, timeout=type(self)._timeout, what=what)
        except StoreHang:  # raised again naming the store call that hung, with the rules it answers to
            raise self._calls.hang(what, since=started) from None
        finally:
            if progress is not None:
                progress.call(self._calls.stats)

    def attempt(
        self, ids: tuple[str, ...], rules: str | tuple[str, ...], function: Callable[..., Awaitable[Any]], *args: Any
    ) -> tuple[Snapshot, StorageError | None, Snapshot]:
        """Snapshot threads `ids`, call `function` (answering to `rules`), snapshot again: one portal trip.

        For a step the store must refuse: returns the snapshot before, the `StorageError`
        raised (`None` if the call returned) and the snapshot after (the one before when
        the call returned, as nothing is compared then).
        """
        __tracebackhide__ = True
        return self.call(_attempt, self.store, ids, rules, function, *args)

    def teardown(self) -> None:
        """Close the example's store and its event loop (an abandoned, hung loop is left alone)."""
        progress = type(self)._progress
        if progress is not None and _failed(sys.exc_info()[1]):  # teardown runs in a `finally`
            progress.failing()
        try:
            self._loop.close(timeout=type(self)._timeout)
        except Exception as error:
            raise StoreLifecycleError(f"closing the store failed: {error!r}") from error


async def _attempt(
    store: ThreadRunStore,
    ids: tuple[str, ...],
    rules: str | tuple[str, ...],
    function: Callable[..., Awaitable[Any]],
    *args: Any,
) -> tuple[Snapshot, StorageError | None, Snapshot]:
    before = await snapshot(store, *ids)
    try:
        with answering(rules):
            await function(*args)
    except StorageError as error:
        return before, error, await snapshot(store, *ids)
    return before, None, before


def _failed(error: BaseException | None) -> bool:
    """True when an example ends in a failure, not in Hypothesis's own control flow.

    Hypothesis ends examples it discards (data exhausted, an unsatisfied assumption)
    by raising too; only a check that failed, an error of the store or a hang is a
    failure that Hypothesis will shrink.
    """
    if isinstance(error, StoreHang):
        return True
    return isinstance(error, Exception) and not isinstance(error, HypothesisException)


class MachineRunner(Protocol):
    """What runs a machine for a contract test: the kit's `conformance_kit` fixture value."""

    def run_machine(self, instance: object, machine: type[StoreMachine]) -> None:
        """Run `machine` against the store of the test class `instance`."""


def stateful(machine: type[StoreMachine], *ids: str, ungated: tuple[str, ...] = ()) -> Callable[..., None]:
    """A contract test that runs `machine` against the store, tagged with every rule its steps check.

    `ungated` rules are checked by steps the machine takes only when the store
    declares their capability: they are tagged (a failure may blame them) but do not
    make the machine need that capability. Marked `conformance_stateful`, so
    `-m conformance_stateful` runs only machines.
    """
    unknown = [rule_id for rule_id in (*ids, *ungated) if rule_id not in RULES]
    if not ids or unknown:
        raise ValueError(f"stateful() needs known rule IDs, got unknown {unknown or 'none'}")

    def test(self: object, conformance_kit: MachineRunner) -> None:
        __tracebackhide__ = True
        conformance_kit.run_machine(self, machine)

    test.__name__ = f"test_{_snake(machine.__name__)}"
    test.__qualname__ = test.__name__
    test.__doc__ = machine.__doc__
    setattr(test, MACHINE_ATTRIBUTE, machine)
    marked: Callable[..., None] = pytest.mark.conformance_stateful(
        pytest.mark.rule(*ids, *ungated, ungated=ungated)(test)
    )
    return marked


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() and i else c.lower() for i, c in enumerate(name))


def run_machine(
    machine: type[StoreMachine],
    *,
    open_store: Callable[[Path], AbstractAsyncContextManager[ThreadRunStore]],
    backend: str,
    location: Path,
    capabilities: frozenset[str],
    profile: str,
    timeout: float,
    progress: Callable[[str], None] | None = None,
    progress_interval: float | None = None,
    seed: int | None = None,
    stats: CallStats | None = None,
) -> None:
    """Run `machine` under the profile's settings with a fresh store (and folder) per example.

    Writes a progress line through `progress` (default: standard error) at most every
    `progress_interval` seconds (default `PROGRESS_INTERVAL`), and a closing line if it
    wrote any. A randomized profile (thorough) draws from `seed`, or a fresh seed that a
    failure names (`rerun with --conformance-seed N`). Counts the store calls and their
    time into `stats`. Raises `StoreHang` when a store call hangs, `StoreLifecycleError`
    when opening or closing a store fails, and the machine's failure otherwise.
    """
    stats = CallStats() if stats is None else stats
    examples = itertools.count()
    tracker = Progress(
        machine.__name__,
        planned=int(PROFILES[profile]["max_examples"]),
        write=progress or terminal_line(None),
        interval=PROGRESS_INTERVAL if progress_interval is None else progress_interval,
    )

    def folder() -> Path:
        path = location / f"example-{next(examples)}"
        path.mkdir(parents=True, exist_ok=True)
        return path

    bound = type(
        machine.__name__,
        (machine,),
        {
            "capabilities": capabilities,
            "_open": staticmethod(open_store),
            "_backend": backend,
            "_folders": staticmethod(folder),
            "_timeout": timeout,
            "_progress": tracker,
            "_stats": stats,
        },
    )
    chosen = settings(machine_settings(profile))
    test = get_state_machine_test(bound, settings=chosen)
    drawn = None
    if not chosen.derandomize:
        drawn = random.SystemRandom().getrandbits(32) if seed is None else seed
        test = hypothesis.seed(drawn)(test)
    try:
        test()
    except Exception as failure:
        if drawn is not None:
            failure.add_note(f"{machine.__name__} drew from seed {drawn}: rerun with --conformance-seed {drawn}")
        raise
    finally:
        tracker.finish()


class Progress:
    """Counts a machine run's examples and store calls; writes a line at most every `interval` seconds.

    `run_machine` makes one per machine run; `clock` is injectable for tests.

        progress = Progress("HierarchyMachine", planned=300, write=print, interval=5.0)
        progress.example()  # a new example (a fresh store) starts
        progress.call(stats)  # the example called the store; `stats` counts all calls so far
        progress.failing()  # an example failed: what follows is Hypothesis shrinking it
        progress.finish()  # the closing line, if any line was written
    """

    def __init__(
        self,
        name: str,
        *,
        planned: int,
        write: Callable[[str], None],
        interval: float = PROGRESS_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.planned = planned
        self.write = write
        self.interval = interval
        self.clock = clock
        self.examples = 0
        self.calls = 0
        self.stats = CallStats()
        self.lines = 0
        self.shrinking = False
        self.started = clock()
        self.last = self.started

    def example(self) -> None:
        """Count an example that starts, and report if the interval has passed."""
        self.examples += 1
        self._tick()

    def call(self, stats: CallStats | None = None) -> None:
        """Count a store call (`stats`: every call's time so far), and report if the interval has passed."""
        self.calls += 1
        if stats is not None:
            self.stats = stats
        self._tick()

    def failing(self) -> None:
        """Note that an example failed: later lines say the run is shrinking the failure."""
        self.shrinking = True

    def finish(self) -> None:
        """Write the closing line, when the run went on long enough to report progress."""
        if self.lines:
            self.write(f"{self._counts()}: done")

    def _tick(self) -> None:
        now = self.clock()
        if now - self.last >= self.interval:
            self.last = now
            self.lines += 1
            self.write(self._counts())

    def _counts(self) -> str:
        elapsed = self.clock() - self.started
        state = ", shrinking a failure" if self.shrinking else ""
        average = f" averaging {self.stats.average_ms():.0f} ms" if self.stats.count else ""
        return (
            f"conformance: {self.name}: {self.examples} examples of {self.planned} planned, "
            f"{self.calls} store calls{average}, {elapsed:.0f}s{state}"
        )


def terminal_line(config: pytest.Config | None) -> Callable[[str], None]:
    """A writer of lines to `config`'s terminal, past pytest's output capturing.

    Without a session (`None`), or without its terminal reporter, the lines go to the
    process's original standard error.
    """

    def write(line: str) -> None:
        terminal = None if config is None else config.pluginmanager.get_plugin("terminalreporter")
        if config is None or terminal is None:
            if sys.__stderr__ is not None:
                sys.__stderr__.write(line + "\n")
                sys.__stderr__.flush()
            return
        capture = config.pluginmanager.get_plugin("capturemanager")
        with capture.global_and_fixture_disabled() if capture is not None else nullcontext():
            terminal.ensure_newline()
            terminal.write_line(line)

    return write
