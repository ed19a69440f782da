"""Collects every contract test once, for the store given by `--store` or a `store` fixture."""

from conformance.kit._contract_tests import StoreContract


class TestConformance(StoreContract):
    """The whole contract against the configured store."""
