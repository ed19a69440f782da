"""The named errors of a conversation with a store process that went wrong.

None of them is a `StorageError`: a storage error is an answer the store gives on
purpose, which the contract tests check (`pytest.raises(ValidationError)`). A child
that died, printed garbage or never answered gave no answer at all, and no test may
pass because of it, so these stand outside the contract's hierarchy.
"""

from __future__ import annotations

__all__ = [
    "RemoteStoreError",
    "StoreProcessExited",
    "UnknownResponseIdError",
    "UnrepresentableValueError",
    "WireError",
    "WireProtocolError",
    "WireTimeoutError",
]

#: How much of an offending line a message quotes.
QUOTE_LIMIT = 300


def quote(line: str) -> str:
    """`line` as a message quotes it: its repr, cut at `QUOTE_LIMIT` characters."""
    text = repr(line)
    return text if len(text) <= QUOTE_LIMIT else text[: QUOTE_LIMIT - 3] + "..."


class WireError(Exception):
    """Talking to a store process failed; `line` is the offending line, when there is one."""

    def __init__(self, message: str, line: str | None = None) -> None:
        super().__init__(message if line is None else f"{message}: {quote(line)}")
        self.line = line


class StoreProcessExited(WireError):
    """The store process is gone: it could not start, exited, or closed its standard output.

    `returncode` is its exit status when known; `line` is the last line it wrote to
    standard error, where a crash usually says why.
    """

    def __init__(self, message: str, line: str | None = None, returncode: int | None = None) -> None:
        super().__init__(message, line)
        self.returncode = returncode


class WireProtocolError(WireError):
    """The store process wrote a line that is not a JSON-RPC 2.0 message of the protocol.

    Not JSON (a stray `print`/`console.log` on standard output is the usual cause),
    not a response, an unknown error kind, or a result without the method's shape.
    """


class UnknownResponseIdError(WireProtocolError):
    """The store process answered an id that no request in flight carries."""


class WireTimeoutError(WireError):
    """The store process did not answer a request within `request_timeout`; `line` is the request."""


class UnrepresentableValueError(WireError):
    """The store process refused a request holding a value its JSON cannot hold, as a strict peer may.

    A lone surrogate in a string (the store answered -32700, parse error) or an integer
    outside -2**63 .. 2**64 - 1 (-32700, or a `Validation` error): Python holds both, a
    strict JSON parser such as Rust's serde_json does not (docs/PROTOCOL.md, "Values
    strict JSON cannot hold"). The store never saw the call, so no rule is about its
    answer: the kit leaves the test out as not applying to the store. `line` is the
    store's answer; `code` its JSON-RPC error code.
    """

    def __init__(self, message: str, line: str | None = None, code: int = 0) -> None:
        super().__init__(message, line)
        self.code = code


class RemoteStoreError(WireError):
    """The store process answered with an error that is not a storage error: a bug or crash inside it.

    `code` is the JSON-RPC error code (-32603 internal error, -32601 method not found,
    -32602 invalid params, ...); the message is the store's.
    """

    def __init__(self, message: str, line: str | None = None, code: int = 0) -> None:
        super().__init__(message, line)
        self.code = code
