"""`python -m conformance`: run the contract suite against a store (default: the reference store).

    python -m conformance [--store TARGET] [--capabilities LIST] [--conformance-profile P]
                          [--conformance-report PATH] [--conformance-baseline FILE] [pytest args...]
    python -m conformance --store-command "CMD ARGS" [...]   (a store in any language, docs/PROTOCOL.md)
    python -m conformance spec [--format md|html] [--output PATH]
    python -m conformance serve --store TARGET

Exit status is pytest's: 0 when every selected rule the store must keep passed.
`spec`, as the first argument only, renders the contract by example instead
(every rule with its examples; see `conformance.kit._spec`) to stdout or `--output`.
`serve` serves a Python store over the wire protocol on stdin and stdout.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from importlib.metadata import entry_points
from pathlib import Path

from conformance.kit._target import DEFAULT_TARGET, TargetError, load_target

PLUGIN_MODULE = "conformance.kit._plugin"
SPEC_COMMAND = "spec"
SERVE_COMMAND = "serve"
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


def main(argv: Sequence[str] | None = None) -> int:
    """Run the kit, or with `spec` first, render the contract; returns the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == [SPEC_COMMAND]:
        return spec_main(args[1:])
    if args[:1] == [SERVE_COMMAND]:
        return serve_main(args[1:])
    import pytest  # here, not at the top: `serve` starts store processes without it

    return int(pytest.main(pytest_arguments(args)))


def spec_main(argv: Sequence[str]) -> int:
    """`python -m conformance spec`: write the contract by example as Markdown or HTML.

    Without `--output` it prints to stdout. Exits with status 2 (argparse's) on bad arguments.
    """
    from conformance.kit._spec import FORMATS, render_spec

    parser = argparse.ArgumentParser(
        prog="python -m conformance spec",
        description="Render the contract by example: every rule ID with its text, its capability and "
        "the contract tests that show it, grouped by area.",
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


def serve_main(argv: Sequence[str]) -> int:
    """`python -m conformance serve`: serve a Python store over the wire protocol (docs/PROTOCOL.md).

    Reads requests on stdin and answers on stdout until `shutdown` or end of input;
    exits with status 2 (argparse's) on bad arguments or a `--store` that names nothing.
    """
    from conformance.wire._server import serve_store

    parser = argparse.ArgumentParser(
        prog="python -m conformance serve",
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
