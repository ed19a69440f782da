"""`python -m conformance --help`: the kit's own help, short, under the real program's name.

pytest's `--help` lists some 500 lines of pytest options under `usage: pytest.main()`;
a backend author first wants the kit's options, its subcommands and the ways in.
The options are read from the plugin's `pytest_addoption`, so the help and the
plugin cannot disagree. The plugin is imported only when help is printed: before a
run, `python -m conformance` must import no more than pytest can still rewrite.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

import pytest

from conformance.kit._target import DEFAULT_TARGET

__all__ = ["HELP_PYTEST", "MODULE_PROGRAM", "kit_help", "kit_options", "program_name"]

#: The program name when run as a module.
MODULE_PROGRAM = "python -m conformance"
#: The option that prints pytest's own help instead.
HELP_PYTEST = "--help-pytest"
_WIDTH = 80
_NAME_COLUMN = 24


def program_name(argv0: str) -> str:
    """The program the user typed: `python -m conformance`, or the console script's name.

    `sys.argv[0]` is the path of `conformance/__main__.py` under `python -m`, and the
    script's path (`.../bin/threadstore-conformance`) when run as the console script.
    """
    path = Path(argv0)
    if path.name == "__main__.py" or not path.name:
        return MODULE_PROGRAM
    name = path.name.removesuffix(".exe")
    return name if name.startswith("threadstore-conformance") else MODULE_PROGRAM


class _Recorder:
    """Stands in for pytest's parser and option group: records each `addoption` call."""

    def __init__(self) -> None:
        self.options: list[tuple[tuple[str, ...], dict[str, Any]]] = []

    def getgroup(self, name: str, description: str = "") -> _Recorder:
        return self

    def addoption(self, *names: str, **attributes: Any) -> None:
        self.options.append((names, attributes))


def kit_options() -> list[tuple[str, str]]:
    """The plugin's options as `(--name=METAVAR, help)`, in the order the plugin registers them."""
    from conformance.kit._plugin import pytest_addoption

    recorder = _Recorder()
    pytest_addoption(cast(pytest.Parser, recorder))
    shown = []
    for names, attributes in recorder.options:
        choices = attributes.get("choices")
        value = "{" + ",".join(choices) + "}" if choices else attributes.get("metavar")
        flag = names[0] if value is None else f"{names[0]}={value}"
        shown.append((flag, str(attributes.get("help", ""))))
    return shown


def _entry(name: str, text: str, *, column: int = _NAME_COLUMN) -> list[str]:
    """`name` with `text` wrapped beside it from `column` on, as argparse lays out an option."""
    lead = "  " + name
    width = _WIDTH - column
    lines = textwrap.wrap(text, width) or [""]
    if len(lead) + 2 > column:
        return [lead, *(" " * column + line for line in lines)]
    return [lead.ljust(column) + lines[0], *(" " * column + line for line in lines[1:])]


def kit_help(prog: str, subcommands: Mapping[str, str]) -> str:
    """The kit's help for `prog`: usage, commands, the three ways in, the kit's options, where pytest's are.

    `subcommands` maps each subcommand's usage (`new PATH`) to its one-line summary.
    At most 80 lines (`tests/test_help.py` holds it to that).
    """
    lines = [
        f"usage: {prog} [--store TARGET] [options] [pytest options]",
        f"       {prog} COMMAND [--help]",
        "",
        *textwrap.wrap(
            "Check a thread/run store against the contract and print a verdict, rule by rule. Without "
            f"--store it checks the reference store ({DEFAULT_TARGET}). Exit status: 0 when every selected rule "
            "the store must keep passed, 1 when a rule failed, 4 when the store cannot be tested (the set-up "
            "check) or an option is wrong, 2 when interrupted.",
            _WIDTH,
        ),
        "",
        "commands:",
        *(line for usage, summary in subcommands.items() for line in _entry(usage, summary)),
        "",
        "three ways in (the same rules and options each way):",
        *_entry("command line:", f"{prog} --store path/to/store.py:make_store", column=17),
        *_entry("subclass:", "class TestMyStore(StoreContract) with a `store` method", column=17),
        " " * 17 + "in your tests; then: pytest test_my_store.py",
        *_entry("fixture:", "a `store` fixture in your conftest.py; then:", column=17),
        " " * 17 + "pytest --pyargs conformance.suite",
        *textwrap.wrap(
            "TARGET is module:attr or path/to/file.py:attr: a store class, or a factory that returns, awaits or "
            "yields a store; its parameters may name `location` (a folder per test) and pytest fixtures.",
            _WIDTH,
        ),
        "",
        "the kit's options:",
        *(line for flag, text in kit_options() for line in _entry(flag, text)),
        "",
        "pytest options pass through: -x (stop at the first failure), -q, -k EXPR, -m MARKEXPR,",
        "--junitxml=PATH, -n 2 (with pytest-xdist). All of pytest's options:",
        f"  {prog} {HELP_PYTEST}",
        "Writing a backend, step by step: docs/GUIDE.md in the kit's repository.",
    ]
    return "\n".join(lines) + "\n"
