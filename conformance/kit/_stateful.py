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

Under `--conformance-profile thorough` a run takes minutes, so it reports its progress
(examples and store calls done) on the terminal every `PROGRESS_INTERVAL` seconds,
past pytest's output capturing.
"""

from __future__ import annotations

import itertools
import sys
import time
from collections.abc import Awaitable, Callable
from contextlib import ExitStack, nullcontext
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeVar

import anyio
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import HealthCheck, Phase, settings
from hypothesis.stateful import RuleBasedStateMachine, run_state_machine_as_test

from conformance.contract._stores import ThreadRunStore
from conformance.kit._rules import RULES

__all__ = ["PROFILES", "PROGRESS_INTERVAL", "Progress", "StoreMachine", "machine_settings", "stateful", "terminal_line"]

_T = TypeVar("_T")

#: Hypothesis effort per `--conformance-profile`: examples per machine and steps per example.
PROFILES: dict[str, dict[str, Any]] = {
    "quick": {"max_examples": 30, "stateful_step_count": 25},
    "ci": {"max_examples": 30, "stateful_step_count": 25, "derandomize": True, "database": None},
    "thorough": {"max_examples": 300, "stateful_step_count": 50},
}

#: The profiles whose runs report progress, and the least number of seconds between two reports.
PROGRESS_PROFILES = frozenset({"thorough"})
PROGRESS_INTERVAL = 5.0

#: Where `stateful` keeps the machine on the test it makes (read by the spec renderer).
MACHINE_ATTRIBUTE = "__conformance_machine__"


def machine_settings(profile: str) -> settings:
    """The Hypothesis settings of a profile; no deadline (stores may do real I/O).

    The explain phase is left out: it replays the shrunk failure under tracing, which
    turned a 20 s failing run into minutes, and the shrunk steps already explain it.
    """
    return settings(
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        phases=tuple(phase for phase in Phase if phase is not Phase.explain),
        **PROFILES[profile],
    )


class StoreMachine(RuleBasedStateMachine):
    """A state machine over a fresh store: `self.store`, `self.call`, `self.capabilities`."""

    #: Set by the kit before each example; machines read them, never set them.
    capabilities: ClassVar[frozenset[str]] = frozenset()
    _opener: ClassVar[Callable[[], tuple[BlockingPortal, ThreadRunStore, ExitStack]] | None] = None
    _timeout: ClassVar[float] = 60.0
    _progress: ClassVar[Progress | None] = None

    def __init__(self) -> None:
        super().__init__()
        opener = type(self)._opener
        if opener is None:
            raise RuntimeError(f"{type(self).__name__} runs through the kit: use stateful() in a StoreContract")
        self._portal, self.store, self._closers = opener()

    def call(self, function: Callable[..., Awaitable[_T]], *args: Any) -> _T:
        """Run one store coroutine in the example's event loop, within the kit's timeout."""

        async def bounded() -> _T:
            with anyio.fail_after(type(self)._timeout):
                return await function(*args)

        progress = type(self)._progress
        if progress is not None:
            progress.call()
        return self._portal.call(bounded)

    def teardown(self) -> None:
        """Close the example's store and its event loop."""
        self._closers.close()


class MachineRunner(Protocol):
    """What runs a machine for a contract test: the kit's `conformance_kit` fixture value."""

    def run_machine(self, instance: object, machine: type[StoreMachine]) -> None:
        """Run `machine` against the store of the test class `instance`."""


def stateful(machine: type[StoreMachine], *ids: str) -> Callable[..., None]:
    """A contract test that runs `machine` against the store, tagged with the rules it checks.

    Marked `conformance_stateful`, so `-m conformance_stateful` runs only machines.
    """
    unknown = [rule_id for rule_id in ids if rule_id not in RULES]
    if not ids or unknown:
        raise ValueError(f"stateful() needs known rule IDs, got unknown {unknown or 'none'}")

    def test(self: object, conformance_kit: MachineRunner) -> None:
        conformance_kit.run_machine(self, machine)

    test.__name__ = f"test_{_snake(machine.__name__)}"
    test.__qualname__ = test.__name__
    test.__doc__ = machine.__doc__
    setattr(test, MACHINE_ATTRIBUTE, machine)
    marked: Callable[..., None] = pytest.mark.conformance_stateful(pytest.mark.rule(*ids)(test))
    return marked


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() and i else c.lower() for i, c in enumerate(name))


def run_machine(
    machine: type[StoreMachine],
    *,
    open_store: Callable[[Path], Any],
    backend: str,
    location: Path,
    capabilities: frozenset[str],
    profile: str,
    timeout: float,
    progress: Callable[[str], None] | None = None,
    progress_interval: float | None = None,
) -> None:
    """Run `machine` under the profile's settings with a fresh store (and folder) per example.

    Under a profile of `PROGRESS_PROFILES`, writes a progress line through `progress`
    (default: standard error) at most every `progress_interval` seconds (default
    `PROGRESS_INTERVAL`), and a closing line if it wrote any.
    """
    examples = itertools.count()
    tracker: Progress | None = None
    if profile in PROGRESS_PROFILES:
        tracker = Progress(
            machine.__name__,
            planned=int(PROFILES[profile]["max_examples"]),
            write=progress or terminal_line(None),
            interval=PROGRESS_INTERVAL if progress_interval is None else progress_interval,
        )

    def opener() -> tuple[BlockingPortal, ThreadRunStore, ExitStack]:
        if tracker is not None:
            tracker.example()
        closers = ExitStack()
        portal = closers.enter_context(start_blocking_portal(backend))
        folder = location / f"example-{next(examples)}"
        folder.mkdir(parents=True, exist_ok=True)
        store = closers.enter_context(portal.wrap_async_context_manager(open_store(folder)))
        return portal, store, closers

    bound = type(
        machine.__name__,
        (machine,),
        {"capabilities": capabilities, "_opener": staticmethod(opener), "_timeout": timeout, "_progress": tracker},
    )
    try:
        run_state_machine_as_test(bound, settings=machine_settings(profile))
    finally:
        if tracker is not None:
            tracker.finish()


class Progress:
    """Counts a machine run's examples and store calls; writes a line at most every `interval` seconds.

    `run_machine` makes one per run of the thorough profile; `clock` is injectable for tests.

        progress = Progress("HierarchyMachine", planned=300, write=print, interval=5.0)
        progress.example()  # a new example (a fresh store) starts
        progress.call()  # the example calls the store
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
        self.lines = 0
        self.started = clock()
        self.last = self.started

    def example(self) -> None:
        """Count an example that starts, and report if the interval has passed."""
        self.examples += 1
        self._tick()

    def call(self) -> None:
        """Count a store call, and report if the interval has passed."""
        self.calls += 1
        self._tick()

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
        return (
            f"conformance: {self.name}: {self.examples} examples of {self.planned} planned, "
            f"{self.calls} store calls, {elapsed:.0f}s"
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
