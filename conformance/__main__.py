"""`python -m conformance` (or `threadstore-conformance`): run the contract suite against a store.

    python -m conformance [--store TARGET] [--capabilities LIST] [--conformance-profile P]
                          [--conformance-report PATH] [--conformance-baseline FILE] [pytest args...]
    python -m conformance --help            the kit's options, subcommands and ways in
    python -m conformance --help-pytest     every pytest option (they all pass through)
    python -m conformance spec [--format md|html] [--output PATH]
    python -m conformance new PATH
    python -m conformance serve --store TARGET
    python -m conformance --store-command "CMD ARGS" [...]   (a store in any language, docs/PROTOCOL.md)

Exit status is pytest's: 0 when every selected rule the store must keep passed.
A subcommand, as the first argument, does something else (`SUBCOMMANDS`): `spec`
renders the contract by example (every rule with its summary and examples; see
`conformance.kit._spec`) to stdout or `--output`: the repository's `docs/EXAMPLES.md`
is this rendering, and `docs/SPEC.md` the normative spec it summarizes. `new` writes
a skeleton backend and its test module (`conformance.kit._skeleton`). `serve` serves a
Python store over the wire protocol on stdin and stdout (`conformance.wire`).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path

from conformance.kit._target import DEFAULT_TARGET, TargetError, load_target

PLUGIN_MODULE = "conformance.kit._plugin"
SPEC_COMMAND = "spec"
NEW_COMMAND = "new"
SERVE_COMMAND = "serve"
HELP_FLAGS = ("-h", "--help")
#: Running as `python -m conformance` imports the package before pytest starts, so an installed
#: kit's plugin package cannot be marked for assertion rewriting and pytest warns; the contract
#: tests, imported later, are rewritten all the same.
ALREADY_IMPORTED = (
    "ignore:Module already imported so cannot be rewritten; conformance:pytest.PytestAssertRewriteWarning"
)


def pytest_arguments(argv: Sequence[str]) -> list[str]:
    """The pytest command line that runs the suite folder with the caller's arguments."""
    args = list(argv)
    if not any(arg.split("=")[0] in ("--store", "--store-command") for arg in args):
        args = ["--store", DEFAULT_TARGET, *args]
    suite = Path(__file__).resolve().parent / "suite"
    plugin = [] if _plugin_installed() else ["-p", PLUGIN_MODULE]
    return [str(suite), "--rootdir", str(suite), "-p", "no:cacheprovider", "-W", ALREADY_IMPORTED, *plugin, *args]


def _plugin_installed() -> bool:
    return any(ep.value == PLUGIN_MODULE for ep in entry_points(group="pytest11"))


def main(argv: Sequence[str] | None = None, *, prog: str | None = None) -> int:
    """Run the kit, or the subcommand named first; returns the exit status.

    `prog` is the program name help and errors show; by default the one the user
    typed (`python -m conformance` or `threadstore-conformance`, from `sys.argv[0]`).
    """
    from conformance.kit._help import HELP_PYTEST, kit_help, program_name

    args = list(sys.argv[1:] if argv is None else argv)
    prog = prog or program_name(sys.argv[0])
    command = SUBCOMMANDS.get(args[0]) if args else None
    if command is not None:
        return command.run(args[1:], f"{prog} {args[0]}")
    import pytest  # here, not at the top: `serve` starts store processes without it

    ours = args[: args.index("--")] if "--" in args else args
    if HELP_PYTEST in ours:
        print(f"pytest's own options; each may follow `{prog}` (pytest calls itself pytest.main() below):")
        return int(pytest.main(pytest_arguments([arg for arg in args if arg != HELP_PYTEST] + ["--help"])))
    if any(arg in HELP_FLAGS for arg in ours):
        return _print(kit_help(prog, {command.usage: command.summary for command in SUBCOMMANDS.values()}))
    return int(pytest.main(pytest_arguments(args)))


def spec_main(argv: Sequence[str], prog: str = f"python -m conformance {SPEC_COMMAND}") -> int:
    """`python -m conformance spec`: write the contract by example as Markdown or HTML.

    Without `--output` it prints to stdout. Exits with status 2 (argparse's) on bad arguments.
    """
    from conformance.kit._spec import FORMATS, render_spec

    parser = argparse.ArgumentParser(
        prog=prog,
        description="Render the contract by example: every rule ID with its one-line summary, its capability "
        "and the contract tests that show it, grouped by area (the repository's docs/EXAMPLES.md; the "
        "normative rule texts are docs/SPEC.md).",
    )
    parser.add_argument("--format", choices=FORMATS, default="md", help="md (default) or html (one page)")
    parser.add_argument("--output", metavar="PATH", help="write to PATH (parents created) instead of stdout")
    options = parser.parse_args(list(argv))
    text = render_spec(options.format)
    if options.output is not None:
        path = Path(options.output)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8", newline="\n")
        return 0
    return _print(text)


def new_main(argv: Sequence[str], prog: str = f"python -m conformance {NEW_COMMAND}") -> int:
    """`python -m conformance new PATH`: write a skeleton backend module and its test module.

    Exits with status 2 on bad arguments and when either file exists (nothing is overwritten).
    """
    from conformance.kit._skeleton import SkeletonError, write_skeleton

    parser = argparse.ArgumentParser(
        prog=prog,
        description="Write a skeleton backend: PATH (a module with every abstract method of the contract, "
        "its docstring and the rules it must keep, each still raising NotImplementedError and marked "
        "@unwritten) and test_<name>.py beside it (a StoreContract subclass). Existing files are never "
        "overwritten. Then run the kit on it; it lists the methods still to write.",
    )
    parser.add_argument("path", metavar="PATH", help="the backend module to write, e.g. my_store.py")
    options = parser.parse_args(list(argv))
    try:
        written = write_skeleton(Path(options.path))
    except SkeletonError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return 2
    return _print(written.instructions(program=prog.rpartition(" ")[0]))


def serve_main(argv: Sequence[str], prog: str = f"python -m conformance {SERVE_COMMAND}") -> int:
    """`python -m conformance serve`: serve a Python store over the wire protocol (docs/PROTOCOL.md).

    Reads requests on stdin and answers on stdout until `shutdown` or end of input;
    exits with status 2 (argparse's) on bad arguments or a `--store` that names nothing.
    """
    from conformance.wire._server import serve_store

    parser = argparse.ArgumentParser(
        prog=prog,
        description="Serve a Python store over the wire protocol on stdin and stdout, "
        "for `--store-command` or for comparing a store written in another language.",
    )
    parser.add_argument("--store", default=DEFAULT_TARGET, metavar="TARGET", help="module:attr or path/to/file.py:attr")
    options = parser.parse_args(list(argv))
    try:
        source = load_target(options.store, base=Path.cwd())
    except TargetError as error:
        parser.error(str(error))
    serve_store(source)
    return 0


@dataclass(frozen=True)
class Subcommand:
    """A subcommand: its usage after the program name, a one-line summary, and what runs it."""

    usage: str
    summary: str
    run: Callable[[Sequence[str], str], int]  # (its arguments, its program name) -> exit status


#: Every subcommand by the first argument, in the order `--help` lists them; a new one registers here.
SUBCOMMANDS: dict[str, Subcommand] = {
    SPEC_COMMAND: Subcommand(
        "spec [--format F]", "print the contract by example (Markdown, or HTML) to stdout or --output", spec_main
    ),
    NEW_COMMAND: Subcommand("new PATH", "write a skeleton backend PATH and its test module beside it", new_main),
    SERVE_COMMAND: Subcommand(
        "serve --store TARGET",
        "serve a Python store over the wire protocol (docs/PROTOCOL.md)",
        serve_main,
    ),
}


def _print(text: str) -> int:
    """Write `text` to stdout as UTF-8; a reader that closes early (`| head`) is not an error."""
    try:
        buffer = getattr(sys.stdout, "buffer", None)
        if buffer is not None:
            buffer.write(text.encode("utf-8"))
        else:
            sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        # Python would report the broken pipe again when it flushes stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    return 0


if __name__ == "__main__":
    sys.exit(main())
