"""Field codecs: how each model field is checked, copied, written to and read from JSON.

Every model field declares a codec through `field(...)`. One codec serves four jobs,
so the JSON shape (SPEC section 2), the type checks behind `validate_for_persist`,
and the deep copies behind ISO-1 can never disagree about a field.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import math
from collections.abc import Callable, Mapping
from typing import Any, Literal, TypeAlias, TypeVar

JsonValue: TypeAlias = "bool | int | float | str | list[JsonValue] | dict[str, JsonValue] | None"
JsonObject: TypeAlias = "dict[str, JsonValue]"

Omit = Literal["never", "none", "empty", "default"]
_T = TypeVar("_T")


class ShapeError(Exception):
    """A value does not fit its codec; `path` names the field (`metadata.created_at`)."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"field '{path}' {problem}")
        self.path = path
        self.problem = problem


def _describe(value: object) -> str:
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type(value).__name__} {text}"


class Codec:
    """Checks, copies, dumps and loads one kind of field value."""

    expected = "a value"

    def check(self, value: object, path: str) -> None:
        """Raise `ShapeError` unless `value` is a valid Python value for this field."""
        if not self.accepts(value):
            raise ShapeError(path, f"must be {self.expected}, got {_describe(value)}")

    def accepts(self, value: object) -> bool:
        raise NotImplementedError

    def load(self, value: object, path: str) -> Any:
        """Parse a JSON value; raise `ShapeError` when it has the wrong shape."""
        self.check(value, path)
        return self.clone(value)

    def dump(self, value: Any) -> JsonValue:
        result: JsonValue = self.clone(value)
        return result

    def clone(self, value: Any) -> Any:
        """A copy of `value` that shares no mutable object with it (ISO-1)."""
        return self._clone(value)

    def clone_code(self, value: str, scope: dict[str, Any]) -> str:
        """The Python expression that copies the value of the expression `value`.

        Copies are compiled from these expressions: `clone` here, and one function per
        model class in `clone_fields`. `value` is cheap to evaluate more than once (a
        name or `obj.field`); `scope` collects the names the expression uses. The
        default suits immutable values: the copy is the value itself.
        """
        return value

    @functools.cached_property
    def _clone(self) -> Callable[[Any], Any]:
        scope: dict[str, Any] = {}
        function: Callable[[Any], Any] = eval(f"lambda value: {self.clone_code('value', scope)}", scope)
        return function


class _Str(Codec):
    expected = "a string"

    def accepts(self, value: object) -> bool:
        return isinstance(value, str)


class _Choice(Codec):
    def __init__(self, choices: tuple[str, ...]) -> None:
        self.choices = choices
        self.expected = "one of " + ", ".join(repr(c) for c in choices)

    def accepts(self, value: object) -> bool:
        return isinstance(value, str) and value in self.choices


class _Int(Codec):
    expected = "an integer >= 0"

    def accepts(self, value: object) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def is_json(value: object) -> bool:
    """True when `value` is made only of JSON types (str keys, finite floats)."""
    if value is None or isinstance(value, (bool, int, str)):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list):
        return all(is_json(item) for item in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and is_json(v) for k, v in value.items())
    return False


_ATOMS = frozenset({str, int, float, bool, type(None)})


def clone_json(value: Any) -> Any:
    """Deep-copy a JSON value (lists and dicts are new, leaves are immutable)."""
    if isinstance(value, dict):
        return {k: v if type(v) in _ATOMS else clone_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [v if type(v) in _ATOMS else clone_json(v) for v in value]
    return value


def sorted_json(value: Any) -> Any:
    """A deep copy of a JSON value whose objects have their keys sorted, at every depth.

    The order serde_json writes a `serde_json::Value` in: its `Map` is a `BTreeMap`
    (upstream enables no `preserve_order`), and Python sorts `str` keys by code point,
    which is the byte order of their UTF-8 that Rust's `String` sorts by.
    """
    if isinstance(value, dict):
        return {k: v if type(v) in _ATOMS else sorted_json(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [v if type(v) in _ATOMS else sorted_json(v) for v in value]
    return value


class _Json(Codec):
    """Free JSON (a `serde_json::Value` or a `HashMap` upstream): written with sorted keys."""

    expected = "a JSON value (None, bool, int, float, str, list, dict with str keys)"

    def accepts(self, value: object) -> bool:
        return is_json(value)

    def dump(self, value: Any) -> JsonValue:
        result: JsonValue = sorted_json(value)
        return result

    def clone_code(self, value: str, scope: dict[str, Any]) -> str:
        scope["clone_json"] = clone_json
        return f"clone_json({value})"


class _JsonObject(_Json):
    expected = "a JSON object (dict with str keys)"

    def accepts(self, value: object) -> bool:
        return isinstance(value, dict) and is_json(value)


class _Shaped(_Json):
    """A value of a type upstream declares, kept as JSON: checked as JSON, written as given.

    SPEC section 2 states its serde shape (field order included); the contract neither
    parses nor reorders it, so a value read from upstream writes back as upstream wrote it.
    """

    def dump(self, value: Any) -> JsonValue:
        result: JsonValue = self.clone(value)
        return result


class _ShapedObject(_Shaped):
    expected = "a JSON object (dict with str keys)"

    def accepts(self, value: object) -> bool:
        return isinstance(value, dict) and is_json(value)


class _ContentBlock(_Shaped):
    expected = 'a JSON object tagged by a string "type"'

    def accepts(self, value: object) -> bool:
        return isinstance(value, dict) and isinstance(value.get("type"), str) and is_json(value)


_UNIT_REASONS = ("natural_end", "cancelled", "suspended", "behavior_requested")
_TEXT_REASONS = ("blocked", "error")
#: serde's `#[serde(alias = "plugin_requested")]` on `TerminationReason::BehaviorRequested`.
_REASON_ALIASES = {"plugin_requested": "behavior_requested"}


def termination_reason_of(value: object) -> dict[str, JsonValue] | None:
    """The termination reason serde writes for `value`, or None when serde refuses it.

    Upstream's `TerminationReason` is adjacently tagged (`"type"`, `"value"`). serde reads
    the alias `plugin_requested` as `behavior_requested`, a unit variant with `"value": null`,
    a `stopped` reason with `"detail": null`, and ignores unknown keys; it writes none of
    these back: `{"type": "natural_end", "value": null, "x": 1}` -> `{"type": "natural_end"}`.
    """
    if not isinstance(value, dict) or not is_json(value):
        return None
    kind = value.get("type")
    if isinstance(kind, str):
        kind = _REASON_ALIASES.get(kind, kind)
    if kind in _UNIT_REASONS:
        return {"type": kind} if value.get("value") is None else None
    reason = value.get("value")
    if kind in _TEXT_REASONS:
        return {"type": kind, "value": reason} if isinstance(reason, str) else None
    if kind != "stopped" or not isinstance(reason, dict) or not isinstance(reason.get("code"), str):
        return None
    detail = reason.get("detail")
    if detail is None:
        return {"type": kind, "value": {"code": reason["code"]}}
    return {"type": kind, "value": {"code": reason["code"], "detail": detail}} if isinstance(detail, str) else None


class _TerminationReason(_Json):
    """Parsed and checked: read as serde reads it, written as serde writes it."""

    expected = (
        'a termination reason such as {"type": "natural_end"}, {"type": "error", "value": "msg"} '
        'or {"type": "stopped", "value": {"code": "max_rounds"}}'
    )

    def accepts(self, value: object) -> bool:
        return termination_reason_of(value) is not None

    def load(self, value: object, path: str) -> Any:
        self.check(value, path)
        return termination_reason_of(value)

    def dump(self, value: Any) -> JsonValue:
        written = termination_reason_of(value)
        result: JsonValue = self.clone(value) if written is None else written
        return result


class _Enum(Codec):
    def __init__(self, enum_type: type[enum.Enum]) -> None:
        self.enum_type = enum_type
        members = ", ".join(f"{enum_type.__name__}.{m.name}" for m in enum_type)
        self.expected = f"one of {members}"

    def accepts(self, value: object) -> bool:
        return isinstance(value, self.enum_type)

    def load(self, value: object, path: str) -> Any:
        try:
            return self.enum_type(value)
        except ValueError:
            values = ", ".join(repr(m.value) for m in self.enum_type)
            raise ShapeError(path, f"must be one of {values}, got {_describe(value)}") from None

    def dump(self, value: Any) -> JsonValue:
        result: JsonValue = value.value
        return result


class _Optional(Codec):
    def __init__(self, inner: Codec) -> None:
        self.inner = inner
        self.expected = f"None or {inner.expected}"

    def check(self, value: object, path: str) -> None:
        if value is not None:
            self.inner.check(value, path)

    def load(self, value: object, path: str) -> Any:
        return None if value is None else self.inner.load(value, path)

    def dump(self, value: Any) -> JsonValue:
        return None if value is None else self.inner.dump(value)

    def clone_code(self, value: str, scope: dict[str, Any]) -> str:
        inner = self.inner.clone_code(value, scope)
        return value if inner == value else f"(None if {value} is None else {inner})"


class _List(Codec):
    def __init__(self, inner: Codec) -> None:
        self.inner = inner
        self.expected = f"a list of {inner.expected}"

    def check(self, value: object, path: str) -> None:
        if not isinstance(value, list):
            raise ShapeError(path, f"must be {self.expected}, got {_describe(value)}")
        for index, item in enumerate(value):
            self.inner.check(item, f"{path}[{index}]")

    def load(self, value: object, path: str) -> Any:
        if not isinstance(value, list):
            raise ShapeError(path, f"must be a JSON array, got {_describe(value)}")
        return [self.inner.load(item, f"{path}[{index}]") for index, item in enumerate(value)]

    def dump(self, value: Any) -> JsonValue:
        return [self.inner.dump(item) for item in value]

    def clone_code(self, value: str, scope: dict[str, Any]) -> str:
        item = f"_item{len(scope)}"
        scope[item] = None  # keeps the name unique in nested lists
        inner = self.inner.clone_code(item, scope)
        return f"list({value})" if inner == item else f"[{inner} for {item} in {value}]"


class _Model(Codec):
    def __init__(self, get: Callable[[], type[Any]]) -> None:
        self._get = get

    def check(self, value: object, path: str) -> None:
        cls = self._get()
        if not isinstance(value, cls):
            raise ShapeError(path, f"must be a {cls.__name__}, got {_describe(value)}")
        check_fields(value, f"{path}.")

    def load(self, value: object, path: str) -> Any:
        return load_fields(self._get(), value, f"{path}.")

    def dump(self, value: Any) -> JsonValue:
        return dump_fields(value)

    def clone_code(self, value: str, scope: dict[str, Any]) -> str:
        scope["clone_fields"] = clone_fields
        return f"clone_fields({value})"


STR = _Str()
INT = _Int()
JSON = _Json()
JSON_OBJECT = _JsonObject()
SHAPED_JSON = _Shaped()
SHAPED_OBJECT = _ShapedObject()
CONTENT_BLOCK = _ContentBlock()
TERMINATION_REASON = _TerminationReason()


def choice(*choices: str) -> Codec:
    """A string restricted to `choices`."""
    return _Choice(choices)


def enum_of(enum_type: type[enum.Enum]) -> Codec:
    """An enum member; JSON holds its value."""
    return _Enum(enum_type)


def optional(inner: Codec) -> Codec:
    """`None` or a value of `inner`."""
    return _Optional(inner)


def list_of(inner: Codec) -> Codec:
    """A list whose items are values of `inner`."""
    return _List(inner)


def model(get: Callable[[], type[Any]]) -> Codec:
    """A nested model; `get` returns the class (late, so models may refer to later ones)."""
    return _Model(get)


# ── fields ──────────────────────────────────────────────────────────


@dataclasses.dataclass(frozen=True, slots=True)
class _FieldSpec:
    name: str
    codec: Codec
    omit: Omit
    default: Any
    factory: Callable[[], Any] | None

    def missing(self) -> Any:
        return self.factory() if self.factory is not None else self.default


def field(
    codec: Codec,
    *,
    omit: Omit = "none",
    default: Any = dataclasses.MISSING,
    factory: Callable[[], Any] | None = None,
) -> Any:
    """Declare a model field with its codec and when JSON omits it.

    `omit`: "none" leaves the key out when the value is None, "empty" when it is falsy
    (an empty list or dict, 0), "default" when it equals the default, "never" always
    writes it (None as null).
    """
    metadata = {"codec": codec, "omit": omit}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


_SPECS: dict[type[Any], tuple[_FieldSpec, ...]] = {}


def specs(cls: type[Any]) -> tuple[_FieldSpec, ...]:
    """The field specs of a model class, in declaration order (cached)."""
    found = _SPECS.get(cls)
    if found is None:
        found = tuple(
            _FieldSpec(
                name=f.name,
                codec=f.metadata["codec"],
                omit=f.metadata["omit"],
                default=f.default,
                factory=None if f.default_factory is dataclasses.MISSING else f.default_factory,
            )
            for f in dataclasses.fields(cls)
        )
        _SPECS[cls] = found
    return found


def _omitted(spec: _FieldSpec, value: Any) -> bool:
    if spec.omit == "none":
        return value is None
    if spec.omit == "empty":
        return not value
    if spec.omit == "default":
        return bool(value == spec.missing())
    return False


def dump_fields(obj: Any) -> JsonObject:
    """The JSON object of a model instance, keys in declaration order."""
    out: JsonObject = {}
    for spec in specs(type(obj)):
        value = getattr(obj, spec.name)
        if not _omitted(spec, value):
            out[spec.name] = spec.codec.dump(value)
    return out


def load_fields(cls: type[_T], value: object, prefix: str = "") -> _T:
    """Build `cls` from a JSON object; unknown keys are ignored, as serde does."""
    if not isinstance(value, Mapping):
        raise ShapeError(prefix.rstrip(".") or "<root>", f"must be a JSON object, got {_describe(value)}")
    kwargs: dict[str, Any] = {}
    for spec in specs(cls):
        path = prefix + spec.name
        if spec.name in value:
            kwargs[spec.name] = spec.codec.load(value[spec.name], path)
        elif spec.default is dataclasses.MISSING and spec.factory is None:
            raise ShapeError(path, "is missing")
    return cls(**kwargs)


def check_fields(obj: Any, prefix: str = "") -> None:
    """Raise `ShapeError` for the first field whose value does not fit its codec."""
    for spec in specs(type(obj)):
        spec.codec.check(getattr(obj, spec.name), prefix + spec.name)


_CLONERS: dict[type[Any], Callable[[Any], Any]] = {}


def clone_fields(obj: _T) -> _T:
    """A deep copy of a model instance that shares no mutable object with it."""
    cloner = _CLONERS.get(type(obj))
    if cloner is None:
        cloner = _CLONERS[type(obj)] = _make_cloner(type(obj))
    result: _T = cloner(obj)
    return result


def _make_cloner(cls: type[Any]) -> Callable[[Any], Any]:
    """Generate the clone function of a model class: one statement per field, no loop, no dispatch.

    The same technique as `dataclasses` uses for `__init__`: a copy then costs about
    what a hand-written one would (the generic walk over specs cost 5-20x more). For
    `Thread` the generated source reads::

        def clone(obj):
            copy = new(cls)
            copy.id = obj.id
            copy.metadata = clone_fields(obj.metadata)
            ...
            return copy
    """
    scope: dict[str, Any] = {"cls": cls, "new": object.__new__, "setattr": object.__setattr__}
    frozen = getattr(getattr(cls, "__dataclass_params__", None), "frozen", False)
    lines = ["def clone(obj):", "    copy = new(cls)"]
    for spec in specs(cls):
        code = spec.codec.clone_code(f"obj.{spec.name}", scope)
        lines.append(f"    setattr(copy, {spec.name!r}, {code})" if frozen else f"    copy.{spec.name} = {code}")
    lines.append("    return copy")
    exec("\n".join(lines), scope)
    cloner: Callable[[Any], Any] = scope["clone"]
    return cloner
