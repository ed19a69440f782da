"""Contract tests: stores on different locations share nothing (ISO-2, a warning in rule set 3.0).

`fresh()` opens a second store on a location of its own, while the test's store stays
open: two tenants of one database, say. Nothing either stores may reach the other.
"""

from __future__ import annotations

import pytest

from conformance.contract._enums import ChildThreadDeleteStrategy
from conformance.contract._queries import RunQuery
from conformance.contract._runs import PersistedState
from conformance.contract._stores import ThreadRunStore
from conformance.kit._boundary import unwrapped
from conformance.kit._runner import Reopen, rule
from conformance.kit._scenarios import log, run, thread
from conformance.kit._violation import expect


class LocationRules:
    """ISO-2: what one location holds, another neither reads, lists nor changes."""

    @rule("ISO-2")
    async def test_stores_on_different_locations_share_nothing(self, store: ThreadRunStore, fresh: Reopen) -> None:
        """A thread, log, state and run stored on one location are unseen on another, and deletes there miss them."""
        await store.save_thread(thread("t", updated_at=5))
        await log(store, "t", "m1")
        await store.save_thread_state("t", PersistedState(revision=2))
        await store.create_run(run("r1", "t"))
        async with fresh() as other:
            if unwrapped(other) is unwrapped(store):
                pytest.skip("the store source is one ready store object: ISO-2 needs a factory taking location=")
            expect(await other.load_thread("t") is None, "ISO-2", "another location reads thread 't'")
            expect(await other.list_threads(0, 10) == [], "ISO-2", "another location lists the first one's threads")
            expect(await other.load_committed_messages("t") is None, "ISO-2", "another location reads the log of 't'")
            expect(await other.load_thread_state("t") is None, "ISO-2", "another location reads the state of 't'")
            expect(await other.load_run("r1") is None, "ISO-2", "another location reads run 'r1'")
            expect((await other.list_runs(RunQuery())).total == 0, "ISO-2", "another location lists run 'r1'")
            await other.save_thread(thread("u"))
            await other.delete_thread("t")
            await other.delete_thread_with_strategy("u", ChildThreadDeleteStrategy.CASCADE)
        expect(await store.list_threads(0, 10) == ["t"], "ISO-2", "a delete on another location reached this one")
        kept = await store.load_committed_messages("t")
        expect([m.id for m in kept or []] == ["m1"], "ISO-2", "a delete on another location removed this log")
        expect(await store.load_run("r1") is not None, "ISO-2", "a delete on another location removed run 'r1'")
