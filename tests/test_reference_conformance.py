"""The kit passes the reference store, under asyncio and trio (no false alarms)."""

from __future__ import annotations

from conformance import StoreContract
from reference_store import ReferenceStore


class TestReferenceStore(StoreContract):
    """Every rule, against a fresh `ReferenceStore` per test, with its declared capabilities."""

    backends = ("asyncio", "trio")

    def store(self) -> ReferenceStore:
        return ReferenceStore()
