"""`StoreContract`: every contract test, as one base class a backend's test module subclasses."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import ClassVar

from conformance.kit._contract_tests.checkpoints import CheckpointRules
from conformance.kit._contract_tests.collation import CollationRules
from conformance.kit._contract_tests.concurrency import ConcurrencyRules
from conformance.kit._contract_tests.deletes import DeleteRules
from conformance.kit._contract_tests.durability import DurabilityRules
from conformance.kit._contract_tests.fidelity import FidelityRules
from conformance.kit._contract_tests.hierarchy import HierarchyRules
from conformance.kit._contract_tests.locations import LocationRules
from conformance.kit._contract_tests.messages import MessageRules
from conformance.kit._contract_tests.numbers import NumberRules
from conformance.kit._contract_tests.queries import QueryRules
from conformance.kit._contract_tests.runs import RunRules
from conformance.kit._contract_tests.safety import SafetyRules
from conformance.kit._contract_tests.sizes import SizeRules
from conformance.kit._contract_tests.threads import ThreadRules
from conformance.kit._machines.concurrency import ConcurrencyMachineRules
from conformance.kit._machines.hierarchy import HierarchyMachineRules
from conformance.kit._machines.messages import MessageMachineRules
from conformance.kit._machines.queries import QueryMachineRules
from conformance.kit._machines.runs import RunMachineRules

__all__ = ["StoreContract"]


class StoreContract(
    ThreadRules,
    HierarchyRules,
    DeleteRules,
    QueryRules,
    MessageRules,
    RunRules,
    CheckpointRules,
    NumberRules,
    FidelityRules,
    CollationRules,
    SizeRules,
    SafetyRules,
    LocationRules,
    ConcurrencyRules,
    DurabilityRules,
    HierarchyMachineRules,
    QueryMachineRules,
    MessageMachineRules,
    RunMachineRules,
    ConcurrencyMachineRules,
):
    """Every rule of the contract as tests; subclass it (named `Test...`) to run them on a store.

    Give the subclass a `store` method (a store, a factory, or an async generator
    yielding one; called fresh for every test) or a `store` pytest fixture returning
    such a source, and optionally the capabilities the store declares:

        class TestMyStore(StoreContract):
            capabilities = {"thread_state", "concurrent_writers"}

            async def store(self):
                async with MyStore.connect("...") as store:
                    yield store

    Without `capabilities`, the kit asks `--capabilities`, then the store class or
    store object (their `capabilities` attribute); rules of undeclared capabilities
    are skipped, naming the capability.
    """

    capabilities: ClassVar[Collection[str] | None] = None
    #: False leaves the Hypothesis state machines out (for a slow store already covered elsewhere).
    run_machines: ClassVar[bool] = True
    #: Event loops the store runs under: its tests run under those --conformance-backend chose (all of
    #: them without the option); None leaves it to the store source or store, else any (default asyncio).
    backends: ClassVar[Sequence[str] | None] = None
