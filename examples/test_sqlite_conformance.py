"""The SQLite example backend against every rule: the subclass way in, as a backend's own test suite uses it.

Run it with the project's tests (`pytest` collects `examples/`) or alone:
`pytest examples/test_sqlite_conformance.py -q`.
"""

from __future__ import annotations

from sqlite_store import SqliteStore

from conformance import StoreContract


class TestSqliteStore(StoreContract):
    """Every rule, the six capabilities' too, in a fresh folder per test.

    asyncio only, to keep CI short; the store runs under trio as well
    (`python -m conformance --store examples/sqlite_store.py:make_store --conformance-backend trio`).
    """

    # The state machines run against the reference and minimal stores in this suite;
    # here they would add minutes of I/O to every CI run (`python -m conformance --store ...` runs them).
    run_machines = False

    capabilities = frozenset(
        {"thread_state", "atomic_delete", "concurrent_writers", "cancel_safe", "durable", "any_ids"}
    )
    backends = ("asyncio",)

    async def store(self, location: str) -> SqliteStore:
        """A store on the test's folder; the kit calls this again with the same folder to reopen it.

        `synchronous="NORMAL"`: commits survive a crash of the process (what the durable
        rules and `tests/test_sqlite_crash.py` check) but skip the fsync per commit that
        only a power loss needs, which makes the suite twice as fast.
        """
        return await SqliteStore.open(location, synchronous="NORMAL")
