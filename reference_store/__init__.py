"""The reference implementation of the thread/run store contract: in memory, pure Python."""

from reference_store._store import ReferenceStore

__all__ = ["ReferenceStore"]
