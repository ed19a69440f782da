"""Event loops: which loops a store's contract tests run under, and the set-up check under each.

A store may declare the loops it runs under, `backends = ("asyncio",)`, on its test
class, on the store source (a store class, or a factory function's attribute) or on
the store object, as it declares `capabilities`. The loops a test runs under are the
ones `--conformance-backend` chose (when given) that the store declares; without the
option, the declared ones (asyncio when none are). A choice the store shares no loop
with stops the run at set-up; chosen loops the store does not declare are left out,
and the report says so (the run is not partial: every rule is checked under every
loop the store supports).

Before the first test the kit opens the store under each loop the run will use and
reads from it once (`check_source`). A read that fails under trio but not under
asyncio is the loop's fault: the run stops at set-up with one line, naming the loop
and how to declare the store asyncio only, instead of failing every test under trio.
A read that fails under every loop is the store's own fault: the tests report it.

What a test ran under travels in its report's `user_properties` (`LOOP_PROPERTY`,
`LOOPS_LEFT_OUT_PROPERTY`), so the controller of a pytest-xdist run sees it too.
"""

from __future__ import annotations

import importlib.util
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio

from conformance.kit._boundary import StoreHang
from conformance.kit._sources import (
    BACKENDS,
    SetupError,
    SourceCheck,
    StoreSource,
    check_source,
    declared_backends,
    holder_name,
)

__all__ = [
    "BACKENDS",
    "LOOPS_LEFT_OUT_PROPERTY",
    "LOOP_PROPERTY",
    "Declared",
    "LoopCheck",
    "LoopPlan",
    "check_loops",
    "declared_loops",
    "plan_loops",
    "run_check",
]

#: `user_properties` name of the event loop a contract test ran under.
LOOP_PROPERTY = "conformance_loop"
#: `user_properties` name of a chosen loop its store's tests leave out, as `trio: why`.
LOOPS_LEFT_OUT_PROPERTY = "conformance_loop_left_out"


@dataclass(frozen=True, slots=True)
class Declared:
    """The event loops a store declares, and where (`TestMine`, `make_store`, `MyStore`)."""

    loops: tuple[str, ...]
    where: str

    def text(self) -> str:
        """`backends = ('asyncio',) on TestMine`."""
        return f"backends = {self.loops!r} on {self.where}"


def declared_loops(*holders: object) -> Declared | None:
    """The first declaration of `backends` among `holders` (test class, source, ...), or None.

    Raises `SetupError` for a declaration that is not a collection of known loop names.
    """
    for holder in holders:
        try:
            loops = declared_backends(holder)
        except (TypeError, ValueError) as error:
            raise SetupError(str(error)) from None
        if loops is not None:
            return Declared(loops, holder_name(holder))
    return None


@dataclass(frozen=True, slots=True)
class LoopPlan:
    """The loops a store's tests run under, in order, and the chosen ones left out, with why."""

    loops: tuple[str, ...]
    left_out: Mapping[str, str] = field(default_factory=dict)


def plan_loops(chosen: tuple[str, ...] | None, declared: Declared | None) -> LoopPlan:
    """The loops to run under: `chosen` (None: the option was not given) as far as `declared` allows.

    Without a choice, the declared loops that are installed, or asyncio. Raises
    `SetupError` when the choice and the declaration share no loop, naming both.

        plan_loops(("asyncio", "trio"), Declared(("asyncio",), "TestMine"))
        # LoopPlan(loops=("asyncio",), left_out={"trio": "the store runs under asyncio only (...)"})
    """
    if chosen is None:
        wanted = declared.loops if declared is not None else ("asyncio",)
        missing = {loop: f"{loop} is not installed (pip install {loop})" for loop in wanted if not _installed(loop)}
        loops = tuple(loop for loop in wanted if loop not in missing)
        if not loops:
            raise SetupError(f"the store runs under {_only(wanted)} ({_text(declared)}), and none is installed")
        return LoopPlan(loops, missing)
    if declared is None:
        return LoopPlan(chosen)
    loops = tuple(loop for loop in chosen if loop in declared.loops)
    why = f"the store runs under {_only(declared.loops)} ({declared.text()})"
    if not loops:
        raise SetupError(f"{why}; --conformance-backend chose {', '.join(chosen)}")
    return LoopPlan(loops, {loop: why for loop in chosen if loop not in loops})


@dataclass(frozen=True, slots=True)
class LoopCheck:
    """The set-up check's verdict on a store: the loops its tests run under and what it declares."""

    plan: LoopPlan
    capabilities: frozenset[str]


#: Runs the set-up check (`check_source`) under the named loop, with the probe read or without:
#: what it found, or why it failed.
Check = Callable[[str, bool], "SourceCheck | SetupError"]


def check_loops(check: Check, *, chosen: tuple[str, ...] | None, declared: Declared | None) -> LoopCheck:
    """Check a store under every loop its tests will run under (and under asyncio, to compare).

    `declared` is what the test class or the source declares; without it, the store
    object's own `backends` counts (read under asyncio, or the first loop it allows).
    Raises `SetupError` naming the loop (when it is not asyncio, or several run) when
    the store cannot be opened under a loop, when its probe read fails under a loop
    but not under another (asyncio, checked even when not chosen), and when the
    choice and the declaration share no loop. A probe read that fails under every
    loop is left to the contract tests to judge.
    """
    plan = plan_loops(chosen, declared)
    first = "asyncio" if declared is None or "asyncio" in declared.loops else plan.loops[0]
    # Reads are compared across loops: a run under asyncio alone has nothing to compare (and a store
    # whose read hangs would wait out the timeout for nothing), so it only opens the store.
    probed = plan.loops != ("asyncio",)
    results = {first: check(first, probed)}
    found = results[first]
    if declared is None and isinstance(found, SourceCheck) and found.backends is not None:
        declared = Declared(found.backends, found.store_name)
        plan = plan_loops(chosen, declared)
        if not probed and plan.loops != ("asyncio",):  # the store's own declaration widened the run
            probed = True
            results[first] = check(first, probed)
    for loop in plan.loops:
        if loop not in results:
            results[loop] = check(loop, probed)
    # A loop the store reads fine under (and does not rule out) shows that a read failing elsewhere is the loop's fault.
    working = tuple(
        loop
        for loop in BACKENDS
        if isinstance(seen := results.get(loop), SourceCheck)
        and seen.probe_error is None
        and (declared is None or loop in declared.loops)
    )
    named = len(plan.loops) > 1
    for loop in plan.loops:
        result = results[loop]
        where = f"under {loop}, " if named or loop != "asyncio" else ""
        hint = _hint(declared, loop, working) if working and loop not in working else ""
        if isinstance(result, SetupError):
            raise SetupError(f"{where}{result}{hint}")
        if result.probe_error is not None and hint:
            raise SetupError(f"{where}{result.probe_error}{hint}")
    capabilities = next(result.capabilities for result in results.values() if isinstance(result, SourceCheck))
    return LoopCheck(plan, capabilities)


def run_check(
    source: StoreSource,
    loop: str,
    *,
    timeout: float,
    arguments: Mapping[str, Any] | None = None,
    probe: bool = True,
) -> SourceCheck | SetupError:
    """The set-up check of `source` under `loop`, on a fresh folder: what it found, or why it failed."""
    with tempfile.TemporaryDirectory(prefix="conformance-setup-") as folder:
        try:
            return anyio.run(
                lambda: check_source(source, Path(folder), timeout=timeout, arguments=arguments, probe=probe),
                backend=loop,
            )
        except SetupError as error:
            return error
        except StoreHang:
            return SetupError(f"opening the store did not finish within {timeout:g} s")


def _hint(declared: Declared | None, loop: str, working: tuple[str, ...]) -> str:
    """How to tell the kit that the store does not run under `loop`, which fails where `working` ones do not."""
    works = f"; under {' and '.join(working)} it works"
    if declared is None:
        return f"{works}, so if the store runs under {_only(working)}, declare backends = {working!r} on it"
    return f"{works}, though the store declares {declared.text()}: leave {loop} out if it does not run under it"


def _only(loops: tuple[str, ...]) -> str:
    return f"{' and '.join(loops)} only"


def _text(declared: Declared | None) -> str:
    return declared.text() if declared is not None else "the default"


def _installed(loop: str) -> bool:
    return loop == "asyncio" or importlib.util.find_spec(loop) is not None
