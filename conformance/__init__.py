"""The thread/run store contract and its conformance kit.

Everything a backend or a client writes against is importable from here: errors,
models, enums, queries and pages, the pure helpers, and the store base classes.
The kit's names (`StoreContract`, `rule`, `RULES`, ...) load lazily, so a backend
that imports only the contract does not import pytest.
"""

from typing import TYPE_CHECKING, Any

from conformance._codec import JsonObject, JsonValue
from conformance._enums import (
    ChildThreadDeleteStrategy,
    MessageOrder,
    MessageVisibilityFilter,
    Role,
    RunStatus,
    Visibility,
    WaitingReason,
)
from conformance._errors import (
    AlreadyExistsError,
    CommitUnknownError,
    InvalidCursorError,
    NotFoundError,
    SerializationError,
    StorageError,
    StorageIOError,
    ValidationError,
    VersionConflictError,
)
from conformance._messages import (
    effective_committed_view,
    effective_messages,
    merge_checkpoint_append_messages,
    strip_unpaired_tool_calls,
    validate_append_only_delta,
    validate_message_shape,
)
from conformance._models import (
    CompactionMark,
    Message,
    MessageMetadata,
    MessageRecord,
    Thread,
    ThreadMetadata,
    ToolCall,
    normalize_lineage_id,
)
from conformance._queries import (
    MessagePage,
    MessageQuery,
    RunPage,
    RunQuery,
    ThreadPage,
    ThreadParentFilter,
    ThreadQuery,
    paginate_message_records,
    paginate_threads,
)
from conformance._runs import (
    CheckpointSnapshot,
    MessageSeqRange,
    PersistedState,
    RunMessageInput,
    RunMessageOutput,
    RunOutcome,
    RunRecord,
    RunRequestSnapshot,
    RunWaitingState,
)
from conformance._stores import RunStore, ThreadRunCheckpointStore, ThreadRunStore, ThreadStore
from conformance._sync import SyncStoreAdapter
from conformance._threads import (
    apply_run_projection,
    checkpoint_parent_thread_id,
    sort_threads_by_recent_activity,
)

if TYPE_CHECKING:
    from conformance._contract import StoreContract
    from conformance._rules import CAPABILITIES, RULES, Rule
    from conformance._runner import open_store, rule
    from conformance._version import RULES_VERSION, __version__

_LAZY = {
    "StoreContract": "conformance._contract",
    "CAPABILITIES": "conformance._rules",
    "RULES": "conformance._rules",
    "Rule": "conformance._rules",
    "open_store": "conformance._runner",
    "rule": "conformance._runner",
    "RULES_VERSION": "conformance._version",
    "__version__": "conformance._version",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'conformance' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


__all__ = [
    "CAPABILITIES",
    "RULES",
    "RULES_VERSION",
    "Rule",
    "StoreContract",
    "__version__",
    "open_store",
    "rule",
    "AlreadyExistsError",
    "CheckpointSnapshot",
    "ChildThreadDeleteStrategy",
    "CommitUnknownError",
    "CompactionMark",
    "InvalidCursorError",
    "JsonObject",
    "JsonValue",
    "Message",
    "MessageMetadata",
    "MessageOrder",
    "MessagePage",
    "MessageQuery",
    "MessageRecord",
    "MessageSeqRange",
    "MessageVisibilityFilter",
    "NotFoundError",
    "PersistedState",
    "Role",
    "RunMessageInput",
    "RunMessageOutput",
    "RunOutcome",
    "RunPage",
    "RunQuery",
    "RunRecord",
    "RunRequestSnapshot",
    "RunStatus",
    "RunStore",
    "RunWaitingState",
    "SerializationError",
    "StorageError",
    "StorageIOError",
    "SyncStoreAdapter",
    "Thread",
    "ThreadMetadata",
    "ThreadPage",
    "ThreadParentFilter",
    "ThreadQuery",
    "ThreadRunCheckpointStore",
    "ThreadRunStore",
    "ThreadStore",
    "ToolCall",
    "ValidationError",
    "VersionConflictError",
    "Visibility",
    "WaitingReason",
    "apply_run_projection",
    "checkpoint_parent_thread_id",
    "effective_committed_view",
    "effective_messages",
    "merge_checkpoint_append_messages",
    "normalize_lineage_id",
    "paginate_message_records",
    "paginate_threads",
    "sort_threads_by_recent_activity",
    "strip_unpaired_tool_calls",
    "validate_append_only_delta",
    "validate_message_shape",
]
