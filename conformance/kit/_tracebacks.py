"""Tracebacks that start where a backend author looks: the kit's check and the store's own code.

A contract test runs in an event loop of the kit's (anyio, asyncio or trio), a state
machine through Hypothesis and a thread's portal: left alone, a failure's traceback
opens with the event loop runner's source and walks through the kit's helpers.
`cleaned(error)` drops those frames from the error, its causes, contexts and group
members, keeping the contract test or machine step that failed and every frame of
the store (and of any library the store itself uses, but the event loops').
"""

from __future__ import annotations

import sysconfig
import types
from functools import cache
from pathlib import Path

__all__ = ["cleaned"]

_KIT = Path(__file__).resolve().parent
#: Kit folders whose frames are the checks an author reads: kept.
_CHECKS = (_KIT / "_contract_tests", _KIT / "_machines")
#: Library packages that only carry a call to the store and back: their frames are dropped.
_PLUMBING = frozenset(
    {"anyio", "asyncio", "trio", "outcome", "sniffio", "concurrent", "hypothesis", "_pytest", "pluggy", "pytest"}
)
_STDLIB_CARRIERS = frozenset({"threading.py", "contextlib.py", "runners.py", "base_events.py", "events.py"})
_STDLIB = Path(sysconfig.get_paths()["stdlib"]).resolve()


def cleaned(error: BaseException) -> BaseException:
    """`error` with the plumbing frames cut from its traceback and those of the errors it chains to."""
    _clean(error, set())
    return error


def _clean(error: BaseException, seen: set[int]) -> None:
    if id(error) in seen:
        return
    seen.add(id(error))
    error.__traceback__ = _kept(error.__traceback__)
    for linked in (error.__cause__, error.__context__):
        if linked is not None:
            _clean(linked, seen)
    if isinstance(error, BaseExceptionGroup):
        for member in error.exceptions:
            _clean(member, seen)


def _kept(traceback: types.TracebackType | None) -> types.TracebackType | None:
    """A new traceback chain of the entries worth reading; the innermost entry always stays."""
    entries: list[types.TracebackType] = []
    while traceback is not None:
        entries.append(traceback)
        traceback = traceback.tb_next
    if not entries:
        return None
    wanted = [entry for entry in entries[:-1] if not _plumbing(entry.tb_frame.f_code.co_filename)] + entries[-1:]
    if len(wanted) == len(entries):
        return entries[0]
    rebuilt: types.TracebackType | None = None
    for entry in reversed(wanted):
        rebuilt = types.TracebackType(rebuilt, entry.tb_frame, entry.tb_lasti, entry.tb_lineno)
    return rebuilt


@cache
def _plumbing(filename: str) -> bool:
    """True for a frame of an event loop, Hypothesis, pytest, or a kit helper (not a contract check)."""
    path = Path(filename)
    if not path.is_absolute():
        return False
    path = path.resolve()
    if path.is_relative_to(_KIT):
        return not any(path.is_relative_to(folder) for folder in _CHECKS)
    parts = set(path.parts)
    if "site-packages" in parts or "dist-packages" in parts:
        return bool(parts & _PLUMBING)
    if path.is_relative_to(_STDLIB):
        relative = path.relative_to(_STDLIB).parts
        return bool(relative) and (relative[0] in _PLUMBING or path.name in _STDLIB_CARRIERS)
    return False
