"""`@unwritten`: a store method its author has not written yet, as `python -m conformance new` marks them.

A skeleton's methods each raise `NotImplementedError`; run as they are, hundreds of
contract tests would fail. Marked, they stop the kit's set-up check instead, which
lists them in one line. The author deletes a method's marker once it is written.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["unwritten", "unwritten_methods"]

_F = TypeVar("_F", bound=Callable[..., Any])
#: The attribute `unwritten` sets on a method.
MARKER = "__conformance_unwritten__"


def unwritten(method: _F) -> _F:
    """Mark a store method as not written yet; delete the decorator once the method is written.

    The kit's set-up check lists the marked methods of a store
    (`not implemented yet: load_thread, ...`) and runs no contract test while one is
    left. The method is returned as it is: it still runs (and raises) when called.

        class MyStore(ThreadRunStore):
            @unwritten
            async def load_thread(self, thread_id: str) -> Thread | None:
                raise NotImplementedError
    """
    setattr(method, MARKER, True)
    return method


def unwritten_methods(store_class: type) -> list[str]:
    """The methods of `store_class` still marked `@unwritten`, in the order the class defines them."""
    names: dict[str, None] = {}
    for klass in store_class.__mro__:
        names.update(dict.fromkeys(vars(klass)))
    found = []
    for name in names:
        method = getattr(store_class, name, None)
        if getattr(method, MARKER, False) is True:
            found.append(name)
    return found
