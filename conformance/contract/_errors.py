"""The storage error hierarchy every store raises (SPEC section 1)."""

from __future__ import annotations

__all__ = [
    "AlreadyExistsError",
    "CommitUnknownError",
    "InvalidCursorError",
    "NotFoundError",
    "SerializationError",
    "StorageError",
    "StorageIOError",
    "ValidationError",
    "VersionConflictError",
]


class StorageError(Exception):
    """Base class of every error a store raises on purpose."""


class ValidationError(StorageError):
    """An input breaks a contract rule; the store changed nothing."""


class InvalidCursorError(ValidationError):
    """A pagination cursor does not decode, or belongs to another query (CUR-2)."""


class NotFoundError(StorageError):
    """The operation needs an existing thread or run and there is none."""


class AlreadyExistsError(StorageError):
    """`create_run` was given a `run_id` that is already stored (RUN-1)."""


class VersionConflictError(StorageError):
    """`checkpoint_append` saw a log length other than `expected_version` (CKP-3)."""

    def __init__(self, expected: int, actual: int) -> None:
        super().__init__(
            f"version conflict: expected message version {expected}, the log has {actual}; "
            "reload the checkpoint and retry"
        )
        self.expected = expected
        self.actual = actual

    def __reduce__(self) -> tuple[type[VersionConflictError], tuple[int, int]]:
        return (type(self), (self.expected, self.actual))


class StorageIOError(StorageError):
    """The backend's storage failed (disk, network, driver)."""


class SerializationError(StorageError):
    """A JSON value does not have the shape of the model it should encode."""


class CommitUnknownError(StorageError):
    """A write may or may not have been committed (the acknowledgement was lost)."""
