"""The kit passes a durable store built unlike the reference store: every record as JSON text in a file."""

from __future__ import annotations

from stores.json_file_store import JsonFileStore

from conformance import StoreContract


class TestJsonFileStore(StoreContract):
    """Every rule, the durable ones included, against a `JsonFileStore` in a fresh folder per test."""

    # The state machines run against the reference and minimal stores in this suite;
    # here they would add minutes of I/O to every CI run (`python -m conformance --store ...` runs them).
    run_machines = False

    backends = ("asyncio", "trio")

    def store(self, location: str) -> JsonFileStore:
        return JsonFileStore(location)
