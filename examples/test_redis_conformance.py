"""The kit's contract suite against `RedisStore`, the subclass way in, as a backend author writes it.

Needs a Redis server at `$CONFORMANCE_REDIS_URL` (default `redis://127.0.0.1:6379/0`);
without one the whole module is skipped, saying how to start one.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from redis_store import DEFAULT_URL, SERVER_COMMAND, URL_VARIABLE, RedisStore, drop_stores, make_store, server_error

from conformance import StoreContract

URL = os.environ.get(URL_VARIABLE, DEFAULT_URL)
_UNREACHABLE = server_error(URL)
if _UNREACHABLE is not None:
    pytest.skip(
        f"no Redis at {URL} ({_UNREACHABLE}): start one with `{SERVER_COMMAND}` or set {URL_VARIABLE}",
        allow_module_level=True,
    )


class TestRedisStore(StoreContract):
    """Every rule, the six capabilities' too: each test gets a fresh location, so a key prefix of its own."""

    # The state machines run against the reference and minimal stores in this suite;
    # `python -m conformance --store examples/redis_store.py:make_store` runs them here.
    run_machines = False

    capabilities = RedisStore.capabilities
    #: redis-py's asyncio client runs on asyncio only.
    backends = ("asyncio",)

    async def store(self, location: str) -> RedisStore:
        return await make_store(location)

    def cleanup(self, locations: list[Path]) -> None:
        """Once, at the end of the session: delete the keys of every location the kit opened."""
        drop_stores(locations)
