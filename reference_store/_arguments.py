"""The reference store's argument checks: a wrong type is a `TypeError` naming the argument.

No rule of the contract asks for these (a call with a wrong type is the caller's
bug), so they are the store's own, written to say the same as the base classes'
defaults do.
"""

from __future__ import annotations

from typing import TypeVar

from conformance import ChildThreadDeleteStrategy, Message, ValidationError

_T = TypeVar("_T")


def require(value: object, expected: type[_T], name: str) -> _T:
    """Return `value` when it is an `expected`; raise `TypeError` naming the argument otherwise."""
    if not isinstance(value, expected):
        raise TypeError(f"argument '{name}' must be a {expected.__name__}, got {type(value).__name__}")
    return value


def message_list(value: object) -> list[Message]:
    """A copy of the `messages` argument as a list; `TypeError` naming it unless a list or tuple."""
    if not isinstance(value, (list, tuple)):
        raise TypeError(f"argument 'messages' must be a list of Message, got {type(value).__name__}")
    return list(value)


def delete_strategy(strategy: ChildThreadDeleteStrategy | str) -> ChildThreadDeleteStrategy:
    """Coerce a strategy or its JSON spelling; raise `ValidationError` for anything else."""
    try:
        return ChildThreadDeleteStrategy(strategy)
    except ValueError:
        choices = ", ".join(s.value for s in ChildThreadDeleteStrategy)
        raise ValidationError(
            f"argument 'strategy': unknown delete strategy {strategy!r}; use one of {choices}"
        ) from None
