"""The broken-store zoo: each store breaks one rule on purpose, and the kit must name it.

Every module here defines `ZOO: list[Broken]`; `tests/test_broken_stores.py` runs the
kit's tests of each entry's rule against its store and expects that rule to fail.
A broken store subclasses `ReferenceStore` (or another correct store, such as an
example backend's) and overrides one method with one bug.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from conformance import ThreadRunStore


@dataclass(frozen=True, slots=True)
class Broken:
    """A store with one bug, the rule the kit must report broken, and the bug in words."""

    store: type[ThreadRunStore]
    rule: str
    bug: str
    capabilities: str = "all"
    #: Rules this bug genuinely breaks too, beside `rule` (each entry's comment says why).
    #: A full run of the kit may blame these and no other rule; `rule` must fail.
    also: tuple[str, ...] = ()
    #: For a store that needs a server: why it cannot run here, or None. Its tests skip with that reason.
    unavailable: Callable[[], str | None] | None = None

    @property
    def target(self) -> str:
        """The `--store` target naming this store (`broken.<module>:<class>`)."""
        return f"{self.store.__module__}:{self.store.__qualname__}"
