"""The contract by example: every rule with its text, its capability and the tests that show it.

`python -m conformance spec` renders it as Markdown (`docs/EXAMPLES.md` in the kit's
repository) or as one self-contained HTML page. The normative text of each rule is
`docs/SPEC.md`; the rendering shows each rule's one-line summary (the registry's,
which `tests/test_rules.py` holds to the spec's rule index). Each rule's examples are the contract tests that verify
it: their docstrings, and their bodies as the code that runs against a store, each
with the names it uses by where a reader gets them (`conformance`'s public names,
other imports, the scenario helpers, whose code closes the page, and the kit's own);
state-machine tests are listed by name and docstring. The output depends only on
the rule registry, the kit's version and the kit's source (no clock, no paths), so
the same kit renders the same bytes on every machine.

    from conformance.kit._spec import render_spec

    Path("docs/EXAMPLES.md").write_text(render_spec("md"), encoding="utf-8")
"""

from __future__ import annotations

import ast
import builtins
import html
import inspect
import re
import sys
import textwrap
import types
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import conformance
from conformance._version import RULES_VERSION, __version__
from conformance.kit import _differ, _scenarios
from conformance.kit._rules import CAPABILITIES, RULES, Rule
from conformance.kit._runner import BODY_ATTRIBUTE
from conformance.kit._stateful import MACHINE_ATTRIBUTE

__all__ = [
    "AREAS",
    "FORMATS",
    "HTML_COMMAND",
    "REGENERATE",
    "Example",
    "Names",
    "contract_examples",
    "names_used",
    "render_spec",
]

#: The formats `render_spec` writes.
FORMATS = ("md", "html")

#: The command that rewrites the committed Markdown rendering.
REGENERATE = "python -m conformance spec --output docs/EXAMPLES.md"
#: The command that writes the HTML rendering.
HTML_COMMAND = "python -m conformance spec --format html --output PATH"

TITLE = "The thread/run store contract, by example"

#: Each rule area's heading and one sentence on what it covers, in SPEC order.
AREAS: dict[str, tuple[str, str]] = {
    "MOD": ("Validation and the data model", "What makes a thread, message or run valid, and the JSON of every model."),
    "THR": ("Threads", "Loading, saving, updating, deleting and listing threads, and thread state."),
    "HIE": ("Hierarchy", "Parent links: which parents a thread may take, and listing a thread's children."),
    "DEL": ("Deletes with a child strategy", "Deleting a thread that has children: reject, detach or cascade."),
    "QRY": ("Thread queries and pages", "Filtering threads, the order of a page, its total and its cursors."),
    "CUR": ("Cursors", "The opaque text of a cursor, what it decodes to, and what it refuses."),
    "MSG": ("Messages", "The append-only committed log, its records and their queries."),
    "VIEW": ("The read view", "What a runtime resumes from: tool calls paired, compactions folded."),
    "RUN": ("Runs", "Run records: creating, loading, the latest run, and listing runs."),
    "CKP": ("Checkpoints", "Writing a log and a run together, versioned appends, and the run's projection."),
    "ISO": ("Isolation", "A store never shares mutable objects with its callers."),
    "ATO": ("Atomicity", "Failed, cancelled and completed writes leave a state a reader can explain."),
    "CON": ("Concurrency", "Concurrent writers keep version checks, appends and hierarchies."),
    "DUR": ("Durability", "Data survives close and reopen; two stores on one location act as one."),
    "SEC": ("Filters that cannot be widened", "A prefix filter returns nothing outside its prefix."),
}


@dataclass(frozen=True, slots=True)
class Names:
    """The names an example's code uses, by where a reader gets them.

    `public`: from `conformance`; `imports`: other import statements (`import pytest`,
    `from dataclasses import replace`); `scenarios`: the scenario helpers the page
    shows in full; `own`: helpers of the kit's contract-test modules, not importable;
    `wording`: the kit's helpers that word a failed check (`diff`), which check nothing.
    """

    public: tuple[str, ...] = ()
    imports: tuple[str, ...] = ()
    scenarios: tuple[str, ...] = ()
    own: tuple[str, ...] = ()
    wording: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Example:
    """One contract test, as the spec shows it.

    `source` is the dedented code of a `rule` test's body, `names` where the names it
    uses come from; a state-machine test has neither and is shown by name and
    docstring, with its `machine` class named.
    """

    name: str
    owner: str
    rules: tuple[str, ...]
    doc: str
    source: str | None
    requires: str | None = None
    machine: str | None = None
    names: Names = field(default_factory=Names)

    @property
    def kind(self) -> str:
        """How the spec heads it: an example (with code), a state machine, or a plain test."""
        if self.source is not None:
            return "Example"
        return "State machine" if self.machine is not None else "Test"


def contract_examples(contract: type | None = None) -> list[Example]:
    """The contract tests of `contract` (default `StoreContract`), in collection order.

    Collection order is the class's method resolution order, then definition order
    within each class; an overridden test appears once, as the subclass has it.
    A test is a contract test when it carries a `rule` mark.
    """
    if contract is None:
        from conformance.kit._contract_tests import StoreContract

        contract = StoreContract
    examples: list[Example] = []
    seen: set[str] = set()
    for cls in contract.__mro__:
        for name in vars(cls):
            if not name.startswith("test") or name in seen:
                continue
            seen.add(name)
            example = _example(name, getattr(contract, name))
            if example is not None:
                examples.append(example)
    return examples


def _example(name: str, test: object) -> Example | None:
    marks = getattr(test, "pytestmark", [])
    rule_marks = [mark for mark in marks if mark.name == "rule"]
    if not rule_marks:
        return None
    rules = tuple(dict.fromkeys(rule_id for mark in rule_marks for rule_id in mark.args))
    requires = next((mark.kwargs["requires"] for mark in rule_marks if mark.kwargs.get("requires")), None)
    doc = inspect.getdoc(test) or ""
    body = getattr(test, BODY_ATTRIBUTE, None)
    if body is not None:
        owner = f"{body.__module__}.{body.__qualname__.rpartition('.')[0] or body.__qualname__}"
        source = textwrap.dedent(inspect.getsource(body)).strip("\n")
        return Example(name, owner, rules, doc, source, requires, names=names_used(source, body.__globals__))
    machine = getattr(test, MACHINE_ATTRIBUTE, None)
    if machine is not None:
        owner = f"{machine.__module__}.{machine.__qualname__}"
        return Example(name, owner, rules, doc, None, requires, machine.__qualname__)
    owner = f"{getattr(test, '__module__', '')}.{getattr(test, '__qualname__', name)}"
    return Example(name, owner, rules, doc, None, requires)


def _free_names(source: str) -> list[str]:
    """The names a test's code, decorators included, reads but does not bind, in order of first use."""
    function = ast.parse(source).body[0]
    assert isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef))
    parts = (*function.decorator_list, function.args, *function.body)
    nodes = [node for part in parts for node in ast.walk(part)]
    if function.returns is not None:
        nodes += list(ast.walk(function.returns))
    bound = {arg.arg for node in nodes if isinstance(node, ast.arguments) for arg in _arguments(node)}
    for node in nodes:
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            bound.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.ExceptHandler)):
            bound.add(node.name or "")  # an `except E:` without `as` binds nothing
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
    loaded = (node.id for node in nodes if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load))
    return [name for name in dict.fromkeys(loaded) if name not in bound]


def _arguments(node: ast.arguments) -> list[ast.arg]:
    extra = [arg for arg in (node.vararg, node.kwarg) if arg is not None]
    return [*node.posonlyargs, *node.args, *node.kwonlyargs, *extra]


def names_used(source: str, namespace: Mapping[str, Any]) -> Names:
    """Where the free names of a test's `source` come from, looked up in its module's `namespace`.

    A name is public when `conformance` exports that very object, a scenario helper
    when `_scenarios` defines it, wording when `_differ` does, an import when a module
    or an object its own module exports under that name, and otherwise the kit's own
    (defined with the tests). Builtins are left out.
    """
    public: list[str] = []
    imports: list[str] = []
    scenarios: list[str] = []
    own: list[str] = []
    wording: list[str] = []
    for name in _free_names(source):
        if name not in namespace:
            if not hasattr(builtins, name):
                own.append(name)
            continue
        value = namespace[name]
        if name in conformance.__all__ and getattr(conformance, name) is value:
            public.append(name)
        elif name in _scenarios.__all__ and getattr(_scenarios, name) is value:
            scenarios.append(name)
        elif name in _differ.__all__ and getattr(_differ, name) is value:
            wording.append(name)
        elif isinstance(value, types.ModuleType):
            imports.append(f"import {value.__name__}" + (f" as {name}" if value.__name__ != name else ""))
        elif _importable(name, value):
            imports.append(f"from {value.__module__} import {name}")
        else:
            own.append(name)
    return Names(
        public=tuple(sorted(public)),
        imports=tuple(sorted(imports)),
        scenarios=tuple(scenarios),
        own=tuple(own),
        wording=tuple(sorted(wording)),
    )


def _importable(name: str, value: object) -> bool:
    """True when `value` is what its own module, outside this package, exports as `name`."""
    module = getattr(value, "__module__", None)
    if not isinstance(module, str) or module.split(".")[0] == "conformance" or module not in sys.modules:
        return False
    return getattr(sys.modules[module], name, None) is value


@dataclass(slots=True)
class _Entry:
    rule: Rule
    examples: list[Example] = field(default_factory=list)


@dataclass(slots=True)
class _Area:
    code: str
    title: str
    blurb: str
    entries: list[_Entry] = field(default_factory=list)


def _areas(examples: Iterable[Example]) -> list[_Area]:
    entries = {rule_id: _Entry(rule) for rule_id, rule in RULES.items()}
    for example in examples:
        for rule_id in example.rules:
            entries[rule_id].examples.append(example)
    areas: dict[str, _Area] = {}
    for entry in entries.values():
        code = entry.rule.area
        if code not in areas:
            title, blurb = AREAS.get(code, (code, ""))
            areas[code] = _Area(code, title, blurb)
        areas[code].entries.append(entry)
    return list(areas.values())


def render_spec(format: str = "md", *, contract: type | None = None) -> str:
    """The contract by example as Markdown (`"md"`) or one HTML page (`"html"`).

    Raises `ValueError` for another format.

        text = render_spec("html")
    """
    renderers: dict[str, Callable[[list[_Area], list[Example]], Iterator[str]]] = {
        "md": _markdown,
        "html": _html,
    }
    renderer = renderers.get(format)
    if renderer is None:
        raise ValueError(f"unknown spec format {format!r}; choose one of {', '.join(FORMATS)}")
    examples = contract_examples(contract)
    return "\n".join(renderer(_areas(examples), examples)).rstrip("\n") + "\n"


def _capability_text(rule: Rule) -> str:
    if rule.capability is None:
        return "Required of every store."
    return f"Required only of a store that declares `{rule.capability}`: {CAPABILITIES[rule.capability]}."


def _summary(examples: list[Example], command: str) -> str:
    machines = sum(1 for example in examples if example.machine is not None)
    return (
        f"{len(RULES)} rules, {len(examples) - machines} example tests and {machines} state machines. "
        f"Generated by `{command}` from the kit's rule registry and contract tests: "
        "do not edit by hand."
    )


INTRO = (
    "The normative text of every rule is `docs/SPEC.md` in the kit's repository; here each rule "
    "shows its one-line summary and its examples. "
    "Every rule has a stable ID; the kit's report names the rules a store breaks by these IDs. "
    "A rule is required of every store unless it names a capability, which a store declares. "
    "Each rule's examples are the contract tests that verify it: the docstring says the behaviour, "
    "the code is what runs against a fresh `store`. Under each example, the names its code uses: "
    "what to import from `conformance` (and from elsewhere), the scenario helpers (`thread`, `tree`, "
    "`log`, `run`, `user`, `snapshot`, ...), whose code the last section shows, written in public names "
    "only, any helper of the kit's own test modules, which is not importable, and the kit's failure wording "
    "(`diff`, ...), which only says in words what a failed check compared."
)
#: The heading of the section that shows the scenario helpers' code.
SCENARIOS_HEADING = "Scenario helpers"
SCENARIOS_TEXT = (
    "The helpers the examples build their scenarios with, as the kit defines them; they use only "
    "names `conformance` exports, so a backend's own tests may copy them."
)


def _scenario_source() -> str:
    return inspect.getsource(_scenarios).strip("\n")


def _names_text(names: Names, link: str) -> str:
    """`Names it uses: ...`, one sentence; empty when the code uses nothing but builtins."""
    parts = []
    imported = [f"`from conformance import {', '.join(names.public)}`"] if names.public else []
    imported += [f"`{line}`" for line in names.imports]
    if imported:
        parts.append(", ".join(imported))
    if names.scenarios:
        helpers = "the scenario helper" + ("s" if len(names.scenarios) > 1 else "")
        parts.append(f"{helpers} {', '.join(f'`{n}`' for n in names.scenarios)} ({link})")
    if names.own:
        own = ", ".join(f"`{n}`" for n in names.own)
        parts.append(f"the kit's own {own} (defined in the module named above, not importable)")
    if names.wording:
        wording = ", ".join(f"`{n}`" for n in names.wording)
        parts.append(f"the kit's failure wording {wording} (it words a failed check and checks nothing)")
    return f"Names it uses: {'; '.join(parts)}." if parts else ""


# ── Markdown ──────────────────────────────────────────────────────────


def _markdown(areas: list[_Area], examples: list[Example]) -> Iterator[str]:
    yield f"# {TITLE}"
    yield ""
    # The examples are the kit's source as it stands: Markdown formatters (ruff formats Python
    # blocks in Markdown) must not rewrap them, or the page would drift from the source.
    yield "<!-- fmt:off -->"
    yield ""
    yield f"- kit version: {__version__}"
    yield f"- rule set version: {RULES_VERSION}"
    yield ""
    yield _md_prose(_summary(examples, REGENERATE))
    yield ""
    yield _md_prose(INTRO)
    yield ""
    yield "## Capabilities"
    yield ""
    for name, text in CAPABILITIES.items():
        yield f"- `{name}`: {_md_prose(text)}"
    yield ""
    yield "## Contents"
    yield ""
    for area in areas:
        heading = _area_heading(area)
        ids = ", ".join(f"[{entry.rule.id}](#{_slug(entry.rule.id)})" for entry in area.entries)
        yield f"- [{heading}](#{_slug(heading)}): {ids}"
    yield f"- [{SCENARIOS_HEADING}](#{_slug(SCENARIOS_HEADING)})"
    for area in areas:
        yield ""
        yield f"## {_area_heading(area)}"
        if area.blurb:
            yield ""
            yield _md_prose(area.blurb)
        for entry in area.entries:
            yield from _md_rule(entry)
    source = _scenario_source()
    fence = "`" * max(3, _longest_backtick_run(source) + 1)
    yield ""
    yield f"## {SCENARIOS_HEADING}"
    yield ""
    yield _md_prose(SCENARIOS_TEXT)
    yield ""
    yield f"{fence}python"
    yield source
    yield fence
    yield ""
    yield "<!-- fmt:on -->"


def _area_heading(area: _Area) -> str:
    return f"{area.code}: {area.title}" if area.title != area.code else area.code


def _md_rule(entry: _Entry) -> Iterator[str]:
    yield ""
    yield f"### {entry.rule.id}"
    yield ""
    yield _md_prose(entry.rule.text)
    yield ""
    yield _md_prose(_capability_text(entry.rule))
    if not entry.examples:
        yield ""
        yield "No example yet."
    for example in entry.examples:
        yield ""
        yield f"#### {example.kind}: `{example.name}`"
        yield ""
        yield from _md_paragraphs(example.doc)
        yield _md_prose(_provenance(example, entry.rule.id))
        names = _names_text(example.names, f"[{SCENARIOS_HEADING}](#{_slug(SCENARIOS_HEADING)})")
        if names:
            yield ""
            yield _md_prose(names)
        if example.source is not None:
            fence = "`" * max(3, _longest_backtick_run(example.source) + 1)
            yield ""
            yield f"{fence}python"
            yield example.source
            yield fence


def _md_paragraphs(doc: str) -> Iterator[str]:
    for paragraph in doc.split("\n\n"):
        if paragraph.strip():
            yield _md_prose(" ".join(line.strip() for line in paragraph.splitlines()))
            yield ""


def _provenance(example: Example, rule_id: str) -> str:
    where = f"From `{example.owner}`."
    others = [other for other in example.rules if other != rule_id]
    if others:
        where += f" Also verifies {', '.join(others)}."
    if example.requires:
        where += f" Needs capability `{example.requires}`."
    return where


_CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.DOTALL)
_MD_SPECIAL = re.compile(r"([\\*<>])")


def _md_prose(text: str) -> str:
    """Text with Markdown's active characters escaped outside `code spans`."""
    out: list[str] = []
    position = 0
    for span in _CODE_SPAN.finditer(text):
        out.append(_MD_SPECIAL.sub(r"\\\1", text[position : span.start()]))
        out.append(span.group(0))
        position = span.end()
    out.append(_MD_SPECIAL.sub(r"\\\1", text[position:]))
    return "".join(out)


def _longest_backtick_run(text: str) -> int:
    return max((len(run) for run in re.findall(r"`+", text)), default=0)


def _slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lowercase, punctuation dropped, spaces to hyphens."""
    kept = re.sub(r"[^\w\- ]", "", heading.lower())
    return kept.replace(" ", "-")


# ── HTML ──────────────────────────────────────────────────────────────

_STYLE = """
body { font: 16px/1.5 system-ui, sans-serif; margin: 0 auto; max-width: 60rem; padding: 1rem 2rem; color: #1b1b1b; }
h1, h2, h3, h4 { line-height: 1.25; }
h2 { border-bottom: 2px solid #ccc; padding-bottom: .2rem; margin-top: 3rem; }
h3 { margin-top: 2rem; }
h4 { font-size: 1rem; margin-bottom: .3rem; }
.versions { color: #555; }
.rule-text { font-size: 1.1rem; }
.capability { color: #555; font-style: italic; }
.provenance { color: #555; font-size: .9rem; }
pre { background: #f5f5f5; border: 1px solid #ddd; padding: .8rem; overflow-x: auto; }
code { font: .9rem/1.4 ui-monospace, monospace; }
nav li { margin: .2rem 0; }
""".strip()


def _html(areas: list[_Area], examples: list[Example]) -> Iterator[str]:
    yield "<!DOCTYPE html>"
    yield '<html lang="en">'
    yield "<head>"
    yield '<meta charset="utf-8">'
    yield '<meta name="viewport" content="width=device-width, initial-scale=1">'
    yield f"<title>{_esc(TITLE)}</title>"
    yield f"<style>\n{_STYLE}\n</style>"
    yield "</head>"
    yield "<body>"
    yield "<header>"
    yield f"<h1>{_esc(TITLE)}</h1>"
    yield f'<p class="versions">kit version {_esc(__version__)}, rule set version {_esc(RULES_VERSION)}</p>'
    yield f"<p>{_html_prose(_summary(examples, HTML_COMMAND))}</p>"
    yield f"<p>{_html_prose(INTRO)}</p>"
    yield "</header>"
    yield '<nav id="contents">'
    yield "<h2>Contents</h2>"
    yield "<ul>"
    for area in areas:
        links = ", ".join(f'<a href="#{_esc(e.rule.id)}">{_esc(e.rule.id)}</a>' for e in area.entries)
        yield f'<li><a href="#area-{_esc(area.code)}">{_esc(_area_heading(area))}</a>: {links}</li>'
    yield f'<li><a href="#scenario-helpers">{_esc(SCENARIOS_HEADING)}</a></li>'
    yield "</ul>"
    yield "<h2>Capabilities</h2>"
    yield "<ul>"
    for name, text in CAPABILITIES.items():
        yield f"<li><code>{_esc(name)}</code>: {_html_prose(text)}</li>"
    yield "</ul>"
    yield "</nav>"
    yield "<main>"
    for area in areas:
        yield f'<section class="area" id="area-{_esc(area.code)}">'
        yield f"<h2>{_esc(_area_heading(area))}</h2>"
        if area.blurb:
            yield f"<p>{_html_prose(area.blurb)}</p>"
        for entry in area.entries:
            yield from _html_rule(entry)
        yield "</section>"
    yield '<section class="area" id="scenario-helpers">'
    yield f"<h2>{_esc(SCENARIOS_HEADING)}</h2>"
    yield f"<p>{_html_prose(SCENARIOS_TEXT)}</p>"
    yield f'<pre><code class="language-python">{_esc(_scenario_source())}</code></pre>'
    yield "</section>"
    yield "</main>"
    yield "</body>"
    yield "</html>"


def _html_rule(entry: _Entry) -> Iterator[str]:
    rule_id = _esc(entry.rule.id)
    yield f'<article class="rule" id="{rule_id}">'
    yield f'<h3><a href="#{rule_id}">{rule_id}</a></h3>'
    yield f'<p class="rule-text">{_html_prose(entry.rule.text)}</p>'
    yield f'<p class="capability">{_html_prose(_capability_text(entry.rule))}</p>'
    if not entry.examples:
        yield "<p>No example yet.</p>"
    for example in entry.examples:
        yield '<section class="example">'
        yield f"<h4>{example.kind}: <code>{_esc(example.name)}</code></h4>"
        for paragraph in example.doc.split("\n\n"):
            if paragraph.strip():
                yield f"<p>{_html_prose(paragraph.strip())}</p>"
        yield f'<p class="provenance">{_html_prose(_provenance(example, entry.rule.id))}</p>'
        names = _names_text(example.names, SCENARIOS_HEADING)
        if names:
            yield f'<p class="provenance">{_html_prose(names).replace(_esc(SCENARIOS_HEADING), _SCENARIOS_LINK, 1)}</p>'
        if example.source is not None:
            yield f'<pre><code class="language-python">{_esc(example.source)}</code></pre>'
        yield "</section>"
    yield "</article>"


_SCENARIOS_LINK = f'<a href="#scenario-helpers">{html.escape(SCENARIOS_HEADING)}</a>'


def _esc(text: str) -> str:
    return html.escape(text, quote=True)


def _html_prose(text: str) -> str:
    """Escaped text whose `code spans` become `<code>` elements."""
    out: list[str] = []
    position = 0
    for span in _CODE_SPAN.finditer(text):
        out.append(_esc(text[position : span.start()]))
        out.append(f"<code>{_esc(span.group(2))}</code>")
        position = span.end()
    out.append(_esc(text[position:]))
    return "".join(out)
