"""The kit passes a store made of the abstract methods and the base-class defaults only.

It declares no capability, so the rules of capabilities are skipped; every other
rule must pass. This proves the ported defaults of `ThreadStore`/`ThreadRunStore`.
"""

from __future__ import annotations

from minimal_store import MinimalStore

from conformance import StoreContract


class TestMinimalStore(StoreContract):
    """Every rule that needs no capability, against the defaults."""

    capabilities = ()

    def store(self) -> MinimalStore:
        return MinimalStore()
