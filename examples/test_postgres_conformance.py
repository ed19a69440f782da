"""The kit's contract suite against `PostgresStore`, the subclass way in, as a backend author writes it.

Needs a PostgreSQL server at `$CONFORMANCE_PG_DSN` (default `postgresql://postgres@127.0.0.1:5432/test`);
without one the whole module is skipped, saying how to start one.
"""

from __future__ import annotations

import os
from pathlib import Path

import psycopg
import pytest
from postgres_store import DEFAULT_DSN, DSN_VARIABLE, PostgresStore, drop_stores, make_store

from conformance import StoreContract

DSN = os.environ.get(DSN_VARIABLE, DEFAULT_DSN)


def _server_error(dsn: str) -> str | None:
    """Why no PostgreSQL answers at `dsn` within 2 seconds, or None when one does."""
    try:
        psycopg.connect(dsn, connect_timeout=2).close()
    except psycopg.Error as error:
        return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return None


_UNREACHABLE = _server_error(DSN)
if _UNREACHABLE is not None:
    pytest.skip(
        f"no PostgreSQL at {DSN} ({_UNREACHABLE}): start one with `pg_ctlcluster 15 main start` or set {DSN_VARIABLE}",
        allow_module_level=True,
    )


class TestPostgresStore(StoreContract):
    """Every rule, the durable ones included: each test gets a fresh location, so a store of its own."""

    # The state machines run against the reference and minimal stores in this suite;
    # here they would add minutes of I/O to every CI run (`python -m conformance --store ...` runs them).
    run_machines = False

    capabilities = PostgresStore.capabilities
    #: psycopg's async API runs on asyncio only.
    backends = ("asyncio",)

    async def store(self, location: str) -> PostgresStore:
        return await make_store(location)

    def cleanup(self, locations: list[Path]) -> None:
        """Once, at the end of the session: delete the stores of every location the kit opened."""
        drop_stores(locations)
