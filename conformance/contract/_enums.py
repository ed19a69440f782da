"""The contract's enums: `str` enums whose values are the JSON spellings (SPEC section 2)."""

from __future__ import annotations

import enum

__all__ = [
    "ChildThreadDeleteStrategy",
    "MessageOrder",
    "MessageVisibilityFilter",
    "Role",
    "RunStatus",
    "Visibility",
    "WaitingReason",
]


class Role(enum.StrEnum):
    """Who wrote a message."""

    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"
    TOOL = "tool"


class Visibility(enum.StrEnum):
    """`ALL` messages are shown to users; `INTERNAL` ones only to the model."""

    ALL = "all"
    INTERNAL = "internal"


class RunStatus(enum.StrEnum):
    """Where a run is in its life."""

    CREATED = "created"
    RUNNING = "running"
    WAITING = "waiting"
    DONE = "done"


class WaitingReason(enum.StrEnum):
    """Why a `waiting` run waits."""

    TOOL_PERMISSION = "tool_permission"
    USER_INPUT = "user_input"
    BACKGROUND_TASKS = "background_tasks"
    EXTERNAL_EVENT = "external_event"
    RATE_LIMIT = "rate_limit"
    MANUAL_PAUSE = "manual_pause"


class MessageOrder(enum.StrEnum):
    """Order of message records by seq."""

    ASC = "asc"
    DESC = "desc"


class MessageVisibilityFilter(enum.StrEnum):
    """Which records a message query keeps: `EXTERNAL` = not internal (MSG-7)."""

    ANY = "any"
    EXTERNAL = "external"
    INTERNAL = "internal"


class ChildThreadDeleteStrategy(enum.StrEnum):
    """What `delete_thread_with_strategy` does with children (DEL-2..4); default `DETACH`."""

    REJECT = "reject"
    DETACH = "detach"
    CASCADE = "cascade"
