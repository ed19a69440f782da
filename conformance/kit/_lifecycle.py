"""The session's lifecycle: SIGTERM ends a run as Ctrl-C does, and a store source's `cleanup` runs at its end.

**SIGTERM.** CI runners, container engines and `timeout` stop a job with SIGTERM. While
the kit runs contract tests, SIGTERM in the main process (under pytest-xdist, the
controller: it shuts its workers down) raises `Terminated`, a `KeyboardInterrupt`, so
pytest stops as on Ctrl-C: the summary is printed, the JSON report is written as a
partial run whose reason is "terminated (SIGTERM)", and the exit status is 2. Under
trio, whose own Ctrl-C handling raises `KeyboardInterrupt` where that is safe, SIGTERM
goes through it. Before any contract test is planned, and in sessions that run none,
SIGTERM does what it did before the kit was installed; the previous handler is back
after the session.

**Cleanup.** A store that keeps its data outside the process (a database, a server)
outlives the run. A store source may give the kit a `cleanup(locations)` callable,
sync or async: the kit calls it once at the end of the session (after a failure, `-x`,
Ctrl-C or SIGTERM too) with every location (a `Path`) it opened a store of that
source at in this process, in the order first opened: each test's, each `fresh`
store's, each state machine example's and the set-up check's. Under pytest-xdist each
worker cleans its own locations. The kit looks for `cleanup` on the class of a test
class's `store` method (any method), on a store class (a classmethod or staticmethod:
an instance method named `cleanup` is the store's own business), or on a factory
function (a function attribute). A cleanup runs in a thread, an async one in an event
loop of its own, bounded by `--conformance-timeout`; one that raises or does not finish
is a lifecycle failure, on its own line of the summary and in the JSON report's
`lifecycle_failures`, blamed on no rule, and the exit status is not 0.

    async def drop_namespaces(locations: list[Path]) -> None:
        ...  # delete what the stores at these locations wrote

    make_store.cleanup = drop_namespaces
"""

from __future__ import annotations

import inspect
import signal
import sys
import threading
from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import anyio
import pytest

from conformance.contract._stores import ThreadRunStore
from conformance.kit._report import Report

__all__ = ["PLUGIN_NAME", "TERMINATED", "Lifecycle", "Terminated", "interruption", "opened"]

PLUGIN_NAME = "conformance-lifecycle"
#: The partial reason of a run that SIGTERM ended.
TERMINATED = "terminated (SIGTERM)"
#: The `workeroutput` key under which a pytest-xdist worker hands its cleanup failures to the controller.
WORKER_FAILURES = "conformance_lifecycle_failures"
#: Seconds a cleanup may take past `--conformance-timeout` to report its own cancellation.
GRACE = 1.0

Cleanup = Callable[[list[Path]], object]


class Terminated(KeyboardInterrupt):
    """SIGTERM cut the run short; pytest handles it as it does Ctrl-C."""


@dataclass(slots=True)
class _Source:
    """A store source with a `cleanup`, and the locations the kit opened its stores at."""

    key: object
    name: str
    cleanup: Cleanup
    locations: dict[Path, None] = field(default_factory=dict)


#: The session whose store openings are recorded (the innermost, when pytester nests sessions).
_active: Lifecycle | None = None


def opened(source: object, location: object) -> None:
    """Record that the kit opens a store from `source` at `location`, for the source's `cleanup`."""
    lifecycle = _active
    if lifecycle is not None and location is not None:
        lifecycle.record(source, Path(str(location)))


def _cleanup_of(source: object) -> tuple[object, str, Cleanup] | None:
    """The key, name and `cleanup` of a store source, or None when it has none (see the module docstring)."""
    bound = inspect.ismethod(source)
    holder = getattr(source, "__self__", None) if bound else source
    if holder is None or isinstance(holder, ThreadRunStore):
        return None  # a ready store's methods are the store's own
    if isinstance(holder, type) and not isinstance(
        inspect.getattr_static(holder, "cleanup", None), (staticmethod, classmethod)
    ):
        return None
    found = getattr(holder, "cleanup", None)
    if not callable(found):
        return None
    key = type(holder) if bound and not isinstance(holder, type) else holder
    return key, getattr(key, "__qualname__", None) or type(key).__name__, found


def interruption(config: pytest.Config) -> str:
    """Why a run ended by `KeyboardInterrupt`: "terminated (SIGTERM)" after SIGTERM, else "interrupted"."""
    lifecycle = config.pluginmanager.get_plugin(PLUGIN_NAME)
    return TERMINATED if isinstance(lifecycle, Lifecycle) and lifecycle.terminated else "interrupted"


class Lifecycle:
    """One session's SIGTERM handler, and the cleanups of the store sources it opened stores of."""

    def __init__(
        self, config: pytest.Config, report: Report, *, timeout: float, backend: str, running: Callable[[], bool]
    ) -> None:
        self.report = report
        self.timeout = timeout
        self.backend = backend
        #: True once the session runs contract tests (before, SIGTERM keeps its old meaning).
        self.running = running
        #: The pytest-xdist worker id (`gw0`) in a worker, else None.
        self.worker: str | None = getattr(config, "workerinput", {}).get("workerid")
        #: True once SIGTERM ended the run.
        self.terminated = False
        self._sources: list[_Source] = []
        self._lock = threading.Lock()  # state machines open their stores in a thread of their own
        self._cleaned = False
        self._outer: Lifecycle | None = None
        self._previous: Any = None
        self._installed = False

    # ── recording ───────────────────────────────────────────────────────

    def record(self, source: object, location: Path) -> None:
        """Add `location` to the locations of `source`, when it has a `cleanup`."""
        found = _cleanup_of(source)
        if found is None:
            return
        key, name, cleanup = found
        with self._lock:
            entry = next((entry for entry in self._sources if entry.key is key), None)
            if entry is None:
                entry = _Source(key, name, cleanup)
                self._sources.append(entry)
            entry.locations[location] = None

    # ── hooks ───────────────────────────────────────────────────────────

    def pytest_configure(self, config: pytest.Config) -> None:
        """Record store openings from now on; in the main process, take over SIGTERM."""
        global _active
        self._outer, _active = _active, self
        if self.worker is not None or threading.current_thread() is not threading.main_thread():
            return
        previous = signal.getsignal(signal.SIGTERM)
        if previous is not None:  # None: a handler not set from Python, which could not be put back
            self._previous = previous
            signal.signal(signal.SIGTERM, self._on_sigterm)
            self._installed = True

    @pytest.hookimpl(wrapper=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> Generator[None, None, None]:
        """Run the cleanups before the report is written; a failed one makes the exit status non-zero."""
        failures = self._clean()
        if self.worker is not None:
            workeroutput: dict[str, object] = getattr(session.config, "workeroutput", {})
            workeroutput[WORKER_FAILURES] = failures
        if self.report.lifecycle and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
        return (yield)

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: object) -> None:
        """On the pytest-xdist controller: report the cleanup failures of a worker."""
        for message in getattr(node, "workeroutput", {}).get(WORKER_FAILURES, ()):
            self.report.lifecycle_failure(str(message), partial=False)

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        """Clean up if the session never finished (a set-up failure); give SIGTERM back."""
        global _active
        for message in self._clean():  # the report is written already: say it on standard error
            sys.stderr.write(f"{message}\n")
        if _active is self:
            _active = self._outer
        if self._installed:
            signal.signal(signal.SIGTERM, self._previous)
            self._installed = False

    # ── SIGTERM ─────────────────────────────────────────────────────────

    def _on_sigterm(self, signum: int, frame: FrameType | None) -> None:
        if not self.running():
            self._as_before(signum, frame)
            return
        self.terminated = True
        on_interrupt = signal.getsignal(signal.SIGINT)
        if callable(on_interrupt) and _in_trio():
            on_interrupt(signal.SIGINT, frame)  # trio's Ctrl-C: KeyboardInterrupt where trio can take it
            return
        raise Terminated(TERMINATED)

    def _as_before(self, signum: int, frame: FrameType | None) -> None:
        """Do what SIGTERM did before the session took it over."""
        if callable(self._previous):
            self._previous(signum, frame)
        elif self._previous != signal.SIG_IGN:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.raise_signal(signal.SIGTERM)

    # ── cleanup ─────────────────────────────────────────────────────────

    def _clean(self) -> list[str]:
        """Call each source's cleanup once with its locations; the failures, also added to the report."""
        if self._cleaned:
            return []
        self._cleaned = True
        with self._lock:
            sources = list(self._sources)
        failures: list[str] = []
        for source in sources:
            try:
                problem = self._run(source)
            except KeyboardInterrupt:  # Ctrl-C or SIGTERM again: stop cleaning, still write the report
                problem = "interrupted"
            if problem is not None:
                where = "" if self.worker is None else f" on {self.worker}"
                failures.append(f"cleanup of {source.name}{where} failed: {problem}")
                if problem == "interrupted":
                    break
        for message in failures:
            self.report.lifecycle_failure(message, partial=False)
        return failures

    def _run(self, source: _Source) -> str | None:
        """Run one cleanup in a thread of its own, bounded by the timeout; what went wrong, or None."""
        outcome: list[BaseException | None] = []
        locations = list(source.locations)

        def work() -> None:
            try:
                result = source.cleanup(locations)
                if inspect.isawaitable(result):
                    anyio.run(_bounded, result, self.timeout, backend=self.backend)
            except BaseException as error:  # reported as the cleanup's failure, whatever it is
                outcome.append(error)
            else:
                outcome.append(None)

        thread = threading.Thread(target=work, name=f"conformance cleanup of {source.name}", daemon=True)
        thread.start()
        thread.join(self.timeout + GRACE)
        if not outcome:
            return f"did not finish within {self.timeout:g} s"
        error = outcome[0]
        if error is None:
            return None
        if isinstance(error, _Late):
            return f"did not finish within {self.timeout:g} s"
        return f"{type(error).__name__}: {error}"


class _Late(Exception):
    """An async cleanup did not finish in time (cancelled)."""


async def _bounded(work: Awaitable[object], seconds: float) -> None:
    with anyio.move_on_after(seconds) as scope:
        await work
    if scope.cancelled_caught:
        raise _Late


def _in_trio() -> bool:
    """True while trio runs in this thread (it handles SIGINT itself then)."""
    trio = sys.modules.get("trio")
    return trio is not None and bool(trio.lowlevel.in_trio_run())
