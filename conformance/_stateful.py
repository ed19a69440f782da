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
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import anyio
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, run_state_machine_as_test

from conformance._rules import RULES
from conformance._stores import ThreadRunStore

if TYPE_CHECKING:
    from conformance._runner import Kit

__all__ = ["PROFILES", "StoreMachine", "machine_settings", "stateful"]

_T = TypeVar("_T")

#: Hypothesis effort per `--conformance-profile`: examples per machine and steps per example.
PROFILES: dict[str, dict[str, Any]] = {
    "quick": {"max_examples": 30, "stateful_step_count": 25},
    "ci": {"max_examples": 30, "stateful_step_count": 25, "derandomize": True, "database": None},
    "thorough": {"max_examples": 300, "stateful_step_count": 50},
}


def machine_settings(profile: str) -> settings:
    """The Hypothesis settings of a profile; no deadline (stores may do real I/O)."""
    return settings(
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        **PROFILES[profile],
    )


class StoreMachine(RuleBasedStateMachine):
    """A state machine over a fresh store: `self.store`, `self.call`, `self.capabilities`."""

    #: Set by the kit before each example; machines read them, never set them.
    capabilities: ClassVar[frozenset[str]] = frozenset()
    _opener: ClassVar[Callable[[], tuple[BlockingPortal, ThreadRunStore, ExitStack]] | None] = None
    _timeout: ClassVar[float] = 60.0

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

        return self._portal.call(bounded)

    def teardown(self) -> None:
        """Close the example's store and its event loop."""
        self._closers.close()


def stateful(machine: type[StoreMachine], *ids: str) -> Callable[..., None]:
    """A contract test that runs `machine` against the store, tagged with the rules it checks.

    Marked `conformance_stateful`, so `-m conformance_stateful` runs only machines.
    """
    unknown = [rule_id for rule_id in ids if rule_id not in RULES]
    if not ids or unknown:
        raise ValueError(f"stateful() needs known rule IDs, got unknown {unknown or 'none'}")

    def test(self: object, conformance_kit: Kit) -> None:
        conformance_kit.run_machine(self, machine)

    test.__name__ = f"test_{_snake(machine.__name__)}"
    test.__qualname__ = test.__name__
    test.__doc__ = machine.__doc__
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
) -> None:
    """Run `machine` under the profile's settings with a fresh store (and folder) per example."""
    examples = itertools.count()

    def opener() -> tuple[BlockingPortal, ThreadRunStore, ExitStack]:
        closers = ExitStack()
        portal = closers.enter_context(start_blocking_portal(backend))
        folder = location / f"example-{next(examples)}"
        folder.mkdir(parents=True, exist_ok=True)
        store = closers.enter_context(portal.wrap_async_context_manager(open_store(folder)))
        return portal, store, closers

    bound = type(
        machine.__name__,
        (machine,),
        {"capabilities": capabilities, "_opener": staticmethod(opener), "_timeout": timeout},
    )
    run_state_machine_as_test(bound, settings=machine_settings(profile))
