"""`python -m conformance new PATH`: a skeleton backend module and its test module.

The backend module has every abstract method of `ThreadRunStore`, in the contract's
order, with its docstring, the rules it must keep (their IDs and one-line
summaries) and a body that raises `NotImplementedError`; each is marked
`@unwritten`, so the kit's set-up check lists what is left instead of failing
hundreds of tests. Beside it, `test_<name>.py` subclasses `StoreContract`.
Nothing is ever overwritten.
"""

from __future__ import annotations

import inspect
import keyword
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

import conformance
from conformance.contract._stores import ThreadRunStore
from conformance.kit._rules import RULES

__all__ = ["Skeleton", "SkeletonError", "abstract_methods", "backend_source", "contract_test_source", "write_skeleton"]

_WIDTH = 88
_RULE_ID = re.compile(r"\b([A-Z]+)-(\d+)(?:\.\.(\d+))?\b")
_TYPE_NAME = re.compile(r"\b[A-Z]\w*\b")
#: Rules every method keeps, named once in the module's docstring rather than under each method.
_EVERY_METHOD = ("ISO-1", "ATO-1", "MOD-6")
#: The public helpers that write most of a method, by method (`tests/test_skeleton.py` checks each name).
HELPERS: dict[str, tuple[str, ...]] = {
    "load_thread": ("Thread.copy",),
    "save_thread": ("Thread.normalized", "Thread.validate_for_persist"),
    "list_threads": ("sorted_threads_by_recent_activity", "recent_activity_key"),
    "load_committed_messages": ("Message.copy",),
    "save_messages": ("validate_message_delta",),
    "update_thread_metadata": ("ThreadMetadata.check_types", "ThreadMetadata.copy"),
    "create_run": ("RunRecord.validate_for_persist",),
    "list_runs": ("paginate_runs",),
    "checkpoint": (
        "RunRecord.validate_for_persist",
        "validate_message_delta",
        "checkpoint_parent_thread_id",
        "self.validate_thread_hierarchy",
        "now_ms",
        "apply_run_projection",
    ),
}


class SkeletonError(Exception):
    """`new PATH` cannot write there: a file exists, or PATH names no importable module. The message says which."""


def abstract_methods() -> list[str]:
    """The methods a backend must write, in the order the contract's classes declare them."""
    order: dict[str, None] = {}
    for klass in (conformance.ThreadStore, conformance.RunStore, ThreadRunStore):
        order.update(dict.fromkeys(name for name in vars(klass) if name in ThreadRunStore.__abstractmethods__))
    return list(order)


def _rules_of(doc: str) -> list[str]:
    """The rule IDs a docstring cites, ranges (`HIE-1..4`) spelled out, in order, once each."""
    found: dict[str, None] = {}
    for area, first, last in _RULE_ID.findall(doc):
        for number in range(int(first), int(last or first) + 1):
            if f"{area}-{number}" in RULES:
                found[f"{area}-{number}"] = None
    return list(found)


def _signature(name: str) -> str:
    """`load_thread(self, thread_id: str) -> Thread | None`, as the contract annotates it."""
    signature = inspect.signature(getattr(ThreadRunStore, name))
    parameters = []
    for parameter in signature.parameters.values():
        text = parameter.name
        if parameter.annotation is not inspect.Parameter.empty:
            text += f": {parameter.annotation}"
        parameters.append(text)
    returns = signature.return_annotation
    return f"{name}({', '.join(parameters)}) -> {returns}"


def _method(name: str) -> str:
    doc = inspect.getdoc(getattr(ThreadRunStore, name)) or ""
    rules = [rule_id for rule_id in _rules_of(doc) if rule_id not in _EVERY_METHOD]
    kept = [
        line
        for rule_id in rules
        for line in textwrap.wrap(
            f"{rule_id}: {RULES[rule_id].text}", _WIDTH - 8, initial_indent="- ", subsequent_indent="  "
        )
    ]
    helpers = textwrap.wrap(
        "Helpers: " + ", ".join(f"`{helper}`" for helper in HELPERS.get(name, ())), _WIDTH - 8, break_on_hyphens=False
    )
    lines = [*doc.splitlines(), "", "Keeps:", *kept, *(["", *helpers] if name in HELPERS else [])]
    docstring = textwrap.indent('"""' + "\n".join(lines) + '\n"""', " " * 8)
    return f"    @unwritten\n    async def {_signature(name)}:\n{docstring}\n        raise NotImplementedError\n"


def _every_method_rules() -> str:
    return "\n".join(f"- {rule_id}: {RULES[rule_id].text}" for rule_id in _EVERY_METHOD)


def backend_source(module: str, class_name: str) -> str:
    """The skeleton backend module `module` (its file is `<module>.py`) with the store class `class_name`."""
    methods = abstract_methods()
    names = sorted(
        {name for method in methods for name in _TYPE_NAME.findall(_signature(method))} & set(conformance.__all__)
        | {"ThreadRunStore", "unwritten"},
        key=lambda name: (name[0].islower(), name),
    )
    imports = "".join(f"    {name},\n" for name in names)
    return f'''"""{class_name}: a thread/run store, from the skeleton `python -m conformance new` wrote.

Write each method below, then delete its `@unwritten` line. The kit lists the methods
still marked, and runs no test until none is left:

    python -m conformance --store {module}.py:make_store
    pytest test_{module}.py

Each method names the rules it keeps (the full text: docs/SPEC.md, or
`python -m conformance spec` with examples). Every method also keeps these:

{_every_method_rules()}

{_defaults_paragraph()}
"""

from __future__ import annotations

from conformance import (
{imports})


class {class_name}(ThreadRunStore):
    """A `ThreadRunStore`; `location` is a folder of its own for each test (a durable store keeps its data there)."""

    #: The capabilities this store earns (docs/GUIDE.md); the kit checks their rules only once declared.
    capabilities: frozenset[str] = frozenset()

    def __init__(self, location: str | None = None) -> None:
        self.location = location

{chr(10).join(_method(name) for name in methods)}

def make_store(location: str | None = None) -> {class_name}:
    """A fresh store for each contract test; the kit passes the test's folder as `location`.

    It may also be async, an async context manager or an async generator (to close what
    it opened), and may ask for pytest fixtures by parameter name.
    """
    return {class_name}(location)
'''


def _defaults_paragraph() -> str:
    written = set(abstract_methods())
    defaults = ", ".join(name for name in _contract_methods() if name not in written)
    text = (
        f"Every other method of the contract has a default built on these ({defaults}): "
        "override one for atomicity or speed (docs/GUIDE.md)."
    )
    return "\n".join(textwrap.wrap(text, _WIDTH, break_on_hyphens=False))


def _contract_methods() -> list[str]:
    order: dict[str, None] = {}
    for klass in (conformance.ThreadStore, conformance.RunStore, ThreadRunStore):
        order.update(dict.fromkeys(name for name in vars(klass) if inspect.iscoroutinefunction(vars(klass)[name])))
    return list(order)


def contract_test_source(module: str, class_name: str) -> str:
    """The test module that runs the kit on the skeleton's store: `pytest test_<module>.py`."""
    return f'''"""The conformance kit on {class_name}: `pytest test_{module}.py` (any pytest option, and the kit's)."""

from __future__ import annotations

from {module} import {class_name}, make_store

from conformance import StoreContract


class Test{class_name}(StoreContract):
    """Every rule of the contract, against a fresh {class_name} per test."""

    def store(self, location: str) -> {class_name}:
        return make_store(location)
'''


@dataclass(frozen=True, slots=True)
class Skeleton:
    """What `write_skeleton` wrote: the backend module, its test module and the store class."""

    backend: Path
    tests: Path
    class_name: str

    def instructions(self, *, program: str) -> str:
        """What to do next, for the user who ran `program new`."""
        count = len(abstract_methods())
        return (
            f"wrote {self.backend} ({self.class_name}: {count} methods to write, each marked @unwritten)\n"
            f"  and {self.tests} (Test{self.class_name}, a StoreContract)\n"
            "Write each method and delete its @unwritten; the kit lists the methods still marked:\n"
            f"  {program} --store {self.backend}:make_store\n"
            f"  pytest {self.tests}\n"
            "Step by step: docs/GUIDE.md in the kit's repository.\n"
        )


def write_skeleton(path: Path) -> Skeleton:
    """Write the skeleton backend at `path` (`.py` added when missing) and `test_<name>.py` beside it.

    Raises `SkeletonError` when either file exists (nothing is written then), when
    `path` does not end in `.py`, or when its name is not a Python module name
    (the test module imports it) or starts with `test_` (pytest would collect it).
    """
    if not path.suffix:
        path = path.with_suffix(".py")
    module = path.stem
    if path.suffix != ".py":
        raise SkeletonError(f"{path}: a backend module is a .py file; name it {path.with_suffix('.py').name}")
    if not module.isidentifier() or keyword.iskeyword(module):
        raise SkeletonError(f"{path}: {module!r} is not a Python module name (letters, digits and _)")
    if module.startswith("test_"):
        raise SkeletonError(f"{path}: pytest would collect a module named test_*; name the backend without it")
    tests = path.with_name(f"test_{module}.py")
    existing = [str(p) for p in (path, tests) if p.exists()]
    if existing:
        raise SkeletonError(
            f"refusing to overwrite {' and '.join(existing)}: choose another PATH, or move the file away"
        )
    class_name = "".join(part[:1].upper() + part[1:] for part in module.split("_")) or "Store"
    if not class_name[0].isalpha():
        class_name = f"Store{class_name}"
    while class_name in conformance.__all__:  # `thread.py` must not shadow `conformance.Thread`
        class_name = f"My{class_name}"
    path.parent.mkdir(parents=True, exist_ok=True)
    sources = {path: backend_source(module, class_name), tests: contract_test_source(module, class_name)}
    for target, source in sources.items():
        try:
            with target.open("x", encoding="utf-8") as file:  # "x": never overwrite, even a file made just now
                file.write(source)
        except FileExistsError:
            raise SkeletonError(f"refusing to overwrite {target}: it appeared while writing the skeleton") from None
    return Skeleton(backend=path, tests=tests, class_name=class_name)
