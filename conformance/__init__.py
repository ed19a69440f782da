"""The thread/run store contract and its conformance kit.

Everything a backend or a client writes against is importable from here: errors,
models, enums, queries and pages, the pure helpers, and the store base classes.
The kit's names (`StoreContract`, `rule`, `RULES`, ...) and the wire's (`StoreCommand`,
`WireStore`, `serve_store`, ...) load lazily, so a backend that imports only the
contract imports neither pytest nor the wire's process machinery.
"""

from typing import TYPE_CHECKING, Any

from conformance.contract._codec import JsonObject, JsonValue
from conformance.contract._enums import (
    ChildThreadDeleteStrategy,
    MessageOrder,
    MessageVisibilityFilter,
    Role,
    RunStatus,
    Visibility,
    WaitingReason,
)
from conformance.contract._errors import (
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
from conformance.contract._hierarchy import cascade_walk, hierarchy_walk
from conformance.contract._json_text import json_text
from conformance.contract._messages import (
    effective_committed_view,
    effective_messages,
    merge_checkpoint_append_messages,
    strip_unpaired_tool_calls,
    validate_append_only_delta,
    validate_message_delta,
    validate_message_shape,
)
from conformance.contract._models import (
    CompactionMark,
    Message,
    MessageMetadata,
    MessageRecord,
    Thread,
    ThreadMetadata,
    ToolCall,
    normalize_lineage_id,
)
from conformance.contract._queries import (
    MessagePage,
    MessageQuery,
    PageWindow,
    RunPage,
    RunQuery,
    ThreadPage,
    ThreadParentFilter,
    ThreadQuery,
    paginate_message_records,
    paginate_runs,
    paginate_thread_ids,
    paginate_threads,
)
from conformance.contract._runs import (
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
from conformance.contract._stores import RunStore, ThreadRunCheckpointStore, ThreadRunStore, ThreadStore
from conformance.contract._sync import SyncStoreAdapter
from conformance.contract._threads import (
    apply_run_projection,
    checkpoint_parent_thread_id,
    now_ms,
    recent_activity_key,
    sort_threads_by_recent_activity,
    sorted_threads_by_recent_activity,
)
from conformance.contract._unwritten import unwritten

if TYPE_CHECKING:
    from conformance._version import RULES_VERSION, __version__
    from conformance.kit._contract_tests import StoreContract
    from conformance.kit._rules import CAPABILITIES, RULES, Rule
    from conformance.kit._runner import rule
    from conformance.kit._sources import open_store
    from conformance.kit._violation import RuleViolation
    from conformance.wire._client import StoreCommand, WireStore
    from conformance.wire._errors import (
        RemoteStoreError,
        StoreProcessExited,
        UnknownResponseIdError,
        UnrepresentableValueError,
        WireError,
        WireProtocolError,
        WireTimeoutError,
    )
    from conformance.wire._protocol import PROTOCOL_VERSION as WIRE_PROTOCOL_VERSION
    from conformance.wire._server import serve_store

_LAZY = {
    "StoreContract": "conformance.kit._contract_tests",
    "CAPABILITIES": "conformance.kit._rules",
    "RULES": "conformance.kit._rules",
    "Rule": "conformance.kit._rules",
    "open_store": "conformance.kit._sources",
    "rule": "conformance.kit._runner",
    "RuleViolation": "conformance.kit._violation",
    "RULES_VERSION": "conformance._version",
    "__version__": "conformance._version",
    "StoreCommand": "conformance.wire._client",
    "WireStore": "conformance.wire._client",
    "RemoteStoreError": "conformance.wire._errors",
    "StoreProcessExited": "conformance.wire._errors",
    "UnknownResponseIdError": "conformance.wire._errors",
    "UnrepresentableValueError": "conformance.wire._errors",
    "WireError": "conformance.wire._errors",
    "WireProtocolError": "conformance.wire._errors",
    "WireTimeoutError": "conformance.wire._errors",
    "serve_store": "conformance.wire._server",
}
#: Public names that are another name inside their module.
_RENAMED = {"WIRE_PROTOCOL_VERSION": ("conformance.wire._protocol", "PROTOCOL_VERSION")}


def __getattr__(name: str) -> Any:
    module, attribute = _RENAMED.get(name, (_LAZY.get(name), name))
    if module is None:
        raise AttributeError(f"module 'conformance' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), attribute)


__all__ = [
    "CAPABILITIES",
    "RULES",
    "RULES_VERSION",
    "Rule",
    "RuleViolation",
    "StoreContract",
    "__version__",
    "open_store",
    "rule",
    "RemoteStoreError",
    "StoreCommand",
    "StoreProcessExited",
    "UnknownResponseIdError",
    "UnrepresentableValueError",
    "WIRE_PROTOCOL_VERSION",
    "WireError",
    "WireProtocolError",
    "WireStore",
    "WireTimeoutError",
    "serve_store",
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
    "PageWindow",
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
    "cascade_walk",
    "checkpoint_parent_thread_id",
    "effective_committed_view",
    "effective_messages",
    "hierarchy_walk",
    "json_text",
    "merge_checkpoint_append_messages",
    "normalize_lineage_id",
    "now_ms",
    "paginate_message_records",
    "paginate_runs",
    "paginate_thread_ids",
    "paginate_threads",
    "recent_activity_key",
    "sort_threads_by_recent_activity",
    "sorted_threads_by_recent_activity",
    "strip_unpaired_tool_calls",
    "unwritten",
    "validate_append_only_delta",
    "validate_message_delta",
    "validate_message_shape",
]
