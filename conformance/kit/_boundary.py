"""The boundary between the kit and the store under test: every store call is watched and checked.

`checked(store, calls)` wraps a store so that each call the kit makes:

- is logged while in flight and, when the log has a `timeout`, bounded by it: a call
  that takes longer raises `StoreHang` naming it (`list_threads(0, 50)`), with the
  seconds it ran; the log also counts the calls and their time (`CallStats`);
- must be a coroutine (a plain method gets a hint to use `SyncStoreAdapter`);
- must return what the contract's signature says (`list_runs returned list, expected RunPage`);
- may raise only `StorageError` subclasses (`load_thread raised KeyError('x'); ...`).

A broken promise breaks a rule of the called method, wherever it is called (often in
a test's arrange step), and raises `BrokenCall` naming it, chained to the store's own
error so the traceback shows the store's code: a read that raises `NotFoundError`
where an unknown id reads as `None` (`load_thread`: THR-1, `load_run`: RUN-2,
`load_messages` and `load_committed_messages`: MSG-1); an error no rule asks of the
call (`StorageIOError`, say, or no `StorageError` at all) from a call naming an odd id,
one not made of 1 to 128 ASCII letters, digits, `-`, `_`, `:` and single dots (`a%b`,
`a\\b`, `..`, `""`, `x/y`, `nul\\x00`), which breaks MOD-6 (a portable id is stored, any
other id stored or refused with `ValidationError`), so the test's own rules are not
checked past it, unless the test's subject is that id (`answering(..., about_ids=True)`);
and any other error that is no `StorageError`, a result of the wrong type or a plain
method, which break the method's own rule (`METHOD_RULES`: `list_runs` returning a
`list` breaks RUN-4), or the rule the call answers to (`answering`), or a rule of the
method's the failing test is about. A `StorageError` the test did not expect blames,
likewise, the rules the call answers to (`blame_call`). Calls the store makes to
itself (a default method calling an abstract one) are not wrapped.

A test may say which rules a call answers to (`with answering("DEL-5"): ...`): if that
call hangs or fails, it blames those, not the test's own (a cascade that never ends
inside ATO-1's test of a refused cascade breaks DEL-5, "raises and terminates").

A store process that cannot take a value a call sends (a strict JSON peer refusing a
lone surrogate or an integer past 64 bits: `UnrepresentableValueError`) never saw the
call: the boundary raises `NotCarried`, and the test is left out as not applying to
the store, as a test of a capability it does not declare is.

`store_problems(store)` is the set-up check: the abstract methods written, none
still marked `@unwritten`, and every store method a coroutine function.
"""

from __future__ import annotations

import contextvars
import inspect
import itertools
import re
import time
import types
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Union, cast, get_args, get_origin, get_type_hints

import anyio

from conformance.contract._errors import (
    AlreadyExistsError,
    NotFoundError,
    StorageError,
    ValidationError,
    VersionConflictError,
)
from conformance.contract._stores import ThreadRunStore
from conformance.contract._unwritten import unwritten_methods
from conformance.kit._violation import BrokenCall, blame_call
from conformance.wire._errors import UnrepresentableValueError

__all__ = [
    "METHOD_RULES",
    "CallLog",
    "CallStats",
    "NotCarried",
    "StoreCall",
    "StoreHang",
    "answering",
    "checked",
    "describe_call",
    "store_methods",
    "unwrapped",
    "store_problems",
]

#: The rules the store calls made now answer to (`answering`), if a test said.
_ANSWERING: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar("conformance_answering", default=())
#: True while the odd ids of the calls made now are what the test checks (`answering(..., about_ids=True)`).
_ABOUT_IDS: contextvars.ContextVar[bool] = contextvars.ContextVar("conformance_about_ids", default=False)


@contextmanager
def answering(rule_ids: str | tuple[str, ...], *, about_ids: bool = False) -> Iterator[None]:
    """Within the block, store calls answer to `rule_ids`: a call that hangs there breaks those rules.

    With `about_ids=True`, the odd ids the calls name are the test's subject, and the
    rules say what becomes of them (DEL-1: deleting an id no store can hold raises
    `NotFoundError`): a call that errs on one breaks `rule_ids`, not MOD-6.

        with answering("DEL-1", about_ids=True):
            await store.delete_thread_with_strategy("nul\x00id", ChildThreadDeleteStrategy.CASCADE)
    """
    token = _ANSWERING.set((rule_ids,) if isinstance(rule_ids, str) else tuple(rule_ids))
    about = _ABOUT_IDS.set(about_ids)
    try:
        yield
    finally:
        _ABOUT_IDS.reset(about)
        _ANSWERING.reset(token)


def store_methods() -> dict[str, inspect.Signature]:
    """Every async method of the contract (`ThreadRunStore`), by name, with its signature."""
    return {
        name: inspect.signature(member)
        for name, member in inspect.getmembers(ThreadRunStore, inspect.iscoroutinefunction)
        if not name.startswith("_")
    }


_METHODS = store_methods()
_HINTS: dict[str, Any] = {name: get_type_hints(getattr(ThreadRunStore, name)).get("return") for name in _METHODS}
#: The reads whose unknown id reads as None, and the rule that says so: NotFoundError from them breaks it.
_NONE_FOR_UNKNOWN = {
    "load_thread": "THR-1",
    "load_run": "RUN-2",
    "load_messages": "MSG-1",
    "load_committed_messages": "MSG-1",
}
#: Each store method's rules, its own first: a wrong result type, an error that is no
#: `StorageError` or a plain method breaks the first, or another of them the failing test is about.
METHOD_RULES: dict[str, tuple[str, ...]] = {
    "save_thread": ("THR-2", "MOD-2", "MOD-6"),
    "load_thread": ("THR-2", "THR-1"),
    "update_thread_metadata": ("THR-3",),
    "delete_thread": ("THR-4",),
    "list_threads": ("THR-5",),
    "save_thread_state": ("THR-6",),
    "load_thread_state": ("THR-6",),
    "validate_thread_hierarchy": ("HIE-3", "HIE-1", "HIE-2", "HIE-4"),
    "save_thread_validated": ("HIE-5", "HIE-1", "HIE-2", "HIE-3", "HIE-4", "MOD-2", "CON-3"),
    "list_child_threads": ("HIE-6",),
    "delete_thread_with_strategy": ("DEL-1", "DEL-2", "DEL-3", "DEL-4", "DEL-5", "DEL-6"),
    "list_threads_query": ("QRY-3", "QRY-1", "QRY-2", "QRY-4", "QRY-5", "CUR-2", "CUR-3", "CUR-4", "SEC-1"),
    "load_messages": ("VIEW-1", "MSG-1", "VIEW-2"),
    "load_committed_messages": ("MSG-2", "MSG-1"),
    "save_messages": ("MSG-2", "MOD-3"),
    "delete_messages": ("MSG-3",),
    "append_message_records": ("MSG-4", "MSG-5", "MOD-3", "CON-2"),
    "load_message_records": ("MSG-6",),
    "list_message_records": ("MSG-7", "CUR-3"),
    "load_message_records_range": ("MSG-8",),
    "load_message_record": ("MSG-8",),
    "create_run": ("RUN-1", "MOD-4"),
    "load_run": ("RUN-2",),
    "latest_run": ("RUN-3",),
    "list_runs": ("RUN-4",),
    "checkpoint": ("CKP-2", "CKP-1", "CKP-6"),
    "checkpoint_append": ("CKP-4", "CKP-1", "CKP-3", "CKP-6", "CON-1"),
    "load_checkpoint": ("CKP-5",),
}
#: Ids no store trips over: 1 to 128 ASCII letters, digits, `-`, `_`, `:` and `.`, no two dots in a row.
_PLAIN_ID = re.compile(r"(?!.*\.\.)[A-Za-z0-9_.:-]{1,128}", re.ASCII)
#: Portable ids (MOD-6): every store keeps them, `%` and `\\` (and `..`) too, which path- or
#: LIKE-keyed stores choke on.
_PORTABLE_ID = re.compile(r"[A-Za-z0-9_.:%\\-]{1,128}", re.ASCII)
#: The errors a rule asks of a call in some case: raising one is no sign of a refused id.
_RULED_ERRORS = (ValidationError, NotFoundError, AlreadyExistsError, VersionConflictError)
#: What an argument looks like in a call's description, at most.
_ARGUMENT_WIDTH = 60


def describe_call(name: str, args: tuple[Any, ...]) -> str:
    """`list_threads(0, 50)`: a store call as the user would write it, long arguments cut short."""
    shown = []
    for value in args:
        text = repr(value)
        shown.append(text if len(text) <= _ARGUMENT_WIDTH else text[: _ARGUMENT_WIDTH - 3] + "...")
    return f"{name}({', '.join(shown)})"


class StoreHang(BaseException):
    """A store call (or opening or closing a store) did not finish in time; the message names it.

    A `BaseException`, so that neither a store's `except Exception` nor Hypothesis
    (which would shrink the failure by hanging again and again) catches it. `rules`
    are those the hung call answers to (`answering`), if any; `elapsed` the seconds
    it had run when the kit gave up on it (None when unknown).
    """

    def __init__(self, message: str, rules: tuple[str, ...] = (), elapsed: float | None = None) -> None:
        super().__init__(message)
        self.rules = rules
        self.elapsed = elapsed
        #: True when what hung is opening or closing the store, not a contract call.
        self.lifecycle = message in LIFECYCLE_STAGES


class NotCarried(BaseException):
    """A store call the store process could not take: a value its JSON cannot hold (`UnrepresentableValueError`).

    The store never saw the call, so its test does not apply to the store: the kit
    skips it, and the report counts it as it counts a test of an undeclared capability.
    A `BaseException`, so that a test's `except Exception` around a call does not turn
    it into a rule's failure.
    """


#: What `StoreHang` names when the store hangs outside any contract call.
LIFECYCLE_STAGES = ("opening the store", "closing the store")


@dataclass(slots=True)
class CallStats:
    """How many store calls returned or raised, and the seconds they took in all."""

    count: int = 0
    seconds: float = 0.0

    def add(self, seconds: float) -> None:
        """Count one call that took `seconds`."""
        self.count += 1
        self.seconds += seconds

    def average_ms(self) -> float:
        """The mean milliseconds of a call (0 without calls)."""
        return 1000 * self.seconds / self.count if self.count else 0.0


@dataclass(frozen=True, slots=True)
class StoreCall:
    """One store call the kit made, with the monotonic time it started."""

    name: str
    args: tuple[Any, ...]
    started: float
    #: The rules the call answers to (`answering`), if the test said.
    rules: tuple[str, ...] = ()

    def __str__(self) -> str:
        return describe_call(self.name, self.args)


class CallLog:
    """The store calls in flight, oldest first, and those cancelled, for naming the one that hung.

    With a `timeout`, the boundary bounds each call by it (`StoreHang` past it); `stats`
    counts the calls that ended and their time.
    """

    def __init__(self, *, timeout: float | None = None, stats: CallStats | None = None) -> None:
        self.timeout = timeout
        self.stats = CallStats() if stats is None else stats
        self._open: dict[int, StoreCall] = {}
        self._cancelled: list[tuple[float, StoreCall]] = []
        self._tokens = itertools.count()

    def start(self, name: str, args: tuple[Any, ...]) -> int:
        """Log a call that starts; returns its token for `finish`."""
        token = next(self._tokens)
        self._open[token] = StoreCall(name, args, time.monotonic(), _ANSWERING.get())
        return token

    def finish(self, token: int, *, cancelled: bool = False) -> None:
        """Forget a call that returned or raised; remember one that was cancelled, with the time."""
        call = self._open.pop(token, None)
        if call is None:
            return
        if cancelled:
            self._cancelled.append((time.monotonic(), call))
        else:
            self.stats.add(time.monotonic() - call.started)

    def call(self, token: int) -> StoreCall:
        """The call in flight that `start` gave `token`."""
        return self._open[token]

    def in_flight(self) -> list[StoreCall]:
        """The calls started and not yet returned, oldest first."""
        return list(self._open.values())

    def hang(self, default: str, *, since: float | None = None) -> StoreHang:
        """The `StoreHang` to raise for the call that hung, with the rules it answers to and how long it ran:
        the oldest in flight, else the oldest cancelled at or after `since` (a deadline that cancels a
        call ends it before it can be named), else `default`."""
        calls = self.in_flight()
        if calls:
            return StoreHang(str(calls[0]), calls[0].rules, time.monotonic() - calls[0].started)
        if since is not None:
            ended = [(when, call) for when, call in self._cancelled if when >= since]
            if ended:
                when, call = ended[0]
                return StoreHang(str(call), call.rules, when - call.started)
        return StoreHang(default)


def unwrapped(store: ThreadRunStore) -> ThreadRunStore:
    """The store behind the boundary (`checked`), or `store` itself when it is not behind one."""
    return store._inner if isinstance(store, _Checked) else store


def checked(store: ThreadRunStore, calls: CallLog) -> ThreadRunStore:
    """`store` behind the boundary: the same store, each contract method watched and checked."""
    boundary: Any = _Checked  # its methods are set below, from the contract's signatures
    return cast(ThreadRunStore, boundary(store, calls))


class _Checked(ThreadRunStore):
    """A `ThreadRunStore` whose every contract method forwards to the wrapped store through `_call`."""

    def __init__(self, inner: ThreadRunStore, calls: CallLog) -> None:
        self._inner = inner
        self._calls = calls

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def __repr__(self) -> str:
        return repr(self._inner)

    def thread_run_storage_identity(self) -> str | None:
        return self._inner.thread_run_storage_identity()

    async def _call(self, name: str, args: tuple[Any, ...]) -> Any:
        __tracebackhide__ = True
        call = describe_call(name, args)
        method = getattr(self._inner, name)
        token = self._calls.start(name, args)
        answers = _ANSWERING.get()
        try:
            pending = method(*args)
            if not inspect.isawaitable(pending):
                raise _broken(
                    name,
                    answers,
                    f"{name} returned {type(pending).__name__} instead of an awaitable: the contract's methods are "
                    "async; write `async def`, or wrap a blocking store in conformance.SyncStoreAdapter",
                )
            result = await self._bounded(pending, token)
        except NotFoundError as error:
            self._calls.finish(token)
            if name in _NONE_FOR_UNKNOWN:
                raise BrokenCall(
                    _NONE_FOR_UNKNOWN[name], f"{call} raised {error!r}; an unknown id reads as None"
                ) from error
            blame_call(error, answers or METHOD_RULES[name])
            raise
        except StorageError as error:
            self._calls.finish(token)
            refused = None if isinstance(error, _RULED_ERRORS) else _odd_id_refused(call, args, error)
            if refused is not None:
                raise refused from error
            blame_call(error, answers or METHOD_RULES[name])
            raise
        except BrokenCall:
            self._calls.finish(token)
            raise
        except UnrepresentableValueError as error:
            self._calls.finish(token)
            raise NotCarried(f"{call}: {error}") from None
        except Exception as error:
            self._calls.finish(token)
            refused = _odd_id_refused(call, args, error)
            if refused is not None:
                raise refused from error
            raise _broken(
                name, answers, f"{call} raised {error!r}; only StorageError subclasses may escape a store"
            ) from error
        except BaseException:  # a cancellation: a deadline may be what cancelled it
            self._calls.finish(token, cancelled=True)
            raise
        self._calls.finish(token)
        expected = _HINTS[name]
        # A write's return value is ignored by every caller: a store may return one (a row count, say).
        wrong = None if expected is type(None) else _mismatch(result, expected)
        if wrong is not None:
            raise _broken(name, answers, f"{call} returned {wrong}, expected {_type_name(expected)}")
        return result

    async def _bounded(self, pending: Awaitable[Any], token: int) -> Any:
        """Await one store call within the log's timeout; `StoreHang` naming it past that."""
        __tracebackhide__ = True
        timeout = self._calls.timeout
        if timeout is None:
            return await pending
        call = self._calls.call(token)
        with anyio.move_on_after(timeout):
            return await pending
        # Only the deadline's cancellation, caught by its scope, ends up here.
        raise StoreHang(str(call), call.rules, time.monotonic() - call.started)


def _broken(name: str, answers: tuple[str, ...], message: str) -> BrokenCall:
    """The `BrokenCall` of a call of method `name` that broke a promise every call of it keeps:
    it blames the rules the call answers to when a test said, else the method's own rule, or
    another rule of the method's when the failing test is about that one."""
    if answers:
        return BrokenCall(answers, message)
    own, *related = METHOD_RULES[name]
    return BrokenCall(own, message, related=tuple(related))


def _odd_id_refused(call: str, args: tuple[Any, ...], error: Exception) -> BrokenCall | None:
    """The MOD-6 failure of a call that raised `error`, no error a rule asks of it, on an odd id;
    None when the call names only plain ids, or when its odd ids are the test's subject.

    A portable id is stored; any other id is stored or refused with `ValidationError`.
    Either way the call broke MOD-6 before the test's own rules could be checked.
    """
    if _ABOUT_IDS.get():
        return None
    odd = [i for i in _ids(args) if not _PLAIN_ID.fullmatch(i)]
    if not odd:
        return None
    portable = [i for i in odd if _PORTABLE_ID.fullmatch(i)]
    if portable:
        why = f"the portable id {portable[0]!r} is stored by every store"
    else:
        why = f"an id a store cannot keep, as {odd[0]!r}, is refused with ValidationError, never another error"
    return BrokenCall("MOD-6", f"{call} raised {error!r}; {why}")


def _ids(args: tuple[Any, ...]) -> list[str]:
    """The ids a call names: its text arguments, and the ids of the records (or lists of them) it passes."""
    found: list[str] = []
    for value in args:
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, str):
                found.append(item)
            for field in ("id", "run_id", "thread_id"):
                named = getattr(item, field, None)
                if isinstance(named, str):
                    found.append(named)
    return found


def _forwarder(name: str, signature: inspect.Signature) -> Callable[..., Awaitable[Any]]:
    async def forward(self: _Checked, *args: Any, **kwargs: Any) -> Any:
        __tracebackhide__ = True
        bound = signature.bind(self, *args, **kwargs)
        return await self._call(name, bound.args[1:])

    forward.__name__ = forward.__qualname__ = name
    return forward


for _name, _signature in _METHODS.items():
    setattr(_Checked, _name, _forwarder(_name, _signature))
_Checked.__abstractmethods__ = frozenset()


def _mismatch(value: object, expected: Any) -> str | None:
    """What `value` is, when it does not fit the annotation `expected`; None when it fits."""
    if _fits(value, expected):
        return None
    item = _item_hint(expected)
    if isinstance(value, list) and item is not None:
        wrong = [element for element in value if not _fits(element, item)]
        if wrong:
            return f"a list holding {type(wrong[0]).__name__} ({_short(wrong[0])})"
    return f"{type(value).__name__} ({_short(value)})" if value is not None else "None"


def _fits(value: object, expected: Any) -> bool:
    origin = get_origin(expected)
    if expected is type(None):
        return value is None
    if origin in (Union, types.UnionType):
        return any(_fits(value, option) for option in get_args(expected))
    if origin is list:
        (item,) = get_args(expected)
        return isinstance(value, list) and all(_fits(element, item) for element in value)
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(expected, type):
        return isinstance(value, expected)
    return True  # JSON values and other open shapes: not checked here


def _item_hint(expected: Any) -> Any:
    """The item type of the list in `expected` (`list[str] | None` gives `str`), or None without a list."""
    options = get_args(expected) if get_origin(expected) in (Union, types.UnionType) else (expected,)
    return next((get_args(option)[0] for option in options if get_origin(option) is list), None)


def _type_name(expected: Any) -> str:
    """`RunPage`, `Thread | None`, `list[str]`: an annotation as the contract's docs write it."""
    text = expected.__name__ if isinstance(expected, type) and get_origin(expected) is None else str(expected)
    return re.sub(r"\b[\w.]+\.(?=\w)", "", text)


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= _ARGUMENT_WIDTH else text[: _ARGUMENT_WIDTH - 3] + "..."


def store_problems(store: object) -> list[str]:
    """What keeps `store` from being tested, one line each; [] when it is a usable store.

    Not a `ThreadRunStore`; abstract methods left unwritten; methods still marked
    `@unwritten` (a skeleton's, listed in the class's order); store methods that are
    plain functions rather than `async def` (pointing at `SyncStoreAdapter`).
    """
    if not isinstance(store, ThreadRunStore):
        return [
            f"the store source produced {type(store).__name__} ({_short(store)}), not a conformance.ThreadRunStore: "
            "subclass ThreadRunStore in your backend, or wrap a blocking one in conformance.SyncStoreAdapter"
        ]
    problems = []
    missing = sorted(getattr(type(store), "__abstractmethods__", ()))
    if missing:
        problems.append(f"{type(store).__name__} does not implement {', '.join(missing)}")
    marked = unwritten_methods(type(store))
    if marked:
        problems.append(
            f"{type(store).__name__}: not implemented yet: {', '.join(marked)} "
            "(write each method, then delete its @unwritten)"
        )
    plain = sorted(
        name
        for name in _METHODS
        if callable(found := getattr(store, name, None))
        and not _is_async(found)
        and name not in missing
        and name not in marked
    )
    if plain:
        problems.append(
            f"{type(store).__name__}.{', '.join(plain)}: plain methods where the contract's are `async def`; "
            "wrap a blocking store in conformance.SyncStoreAdapter"
        )
    return problems


def _is_async(method: object) -> bool:
    return inspect.iscoroutinefunction(method) or inspect.iscoroutinefunction(getattr(method, "__func__", None))
