"""The kit passes a store that refuses every id outside MOD-6's portable set, as a store without `any_ids` may.

Only MOD-6's own tests may give such a store a blank, unicode or slashed id to keep; the
fixtures and machines of every other rule stay within the portable set unless the store
declares `any_ids`, so a store using its right to refuse is never failed for it.
"""

from __future__ import annotations

from stores.portable_ids_store import PortableIdsStore

from conformance import StoreContract


class TestPortableIdsStore(StoreContract):
    """Every rule but the durable ones, state machines included, against `PortableIdsStore`."""

    def store(self) -> PortableIdsStore:
        return PortableIdsStore()
