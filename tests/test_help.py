"""`--help` shows the kit, not 500 lines of pytest: its options, subcommands and ways in, under the real name.

The help is read as a user reads it, from `python -m conformance --help` and the
`threadstore-conformance` script in subprocesses; the kit's options it must list are
read from pytest's own help (`--help-pytest`), not from the code that writes it.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from conformance.__main__ import SUBCOMMANDS, main
from conformance.kit._help import MODULE_PROGRAM, program_name

#: What `--help` may take at most, as the issue asks.
MAX_LINES = 80
SCRIPT = Path(sys.executable).with_name("threadstore-conformance")


def _run(*arguments: str, program: list[str] | None = None) -> subprocess.CompletedProcess[str]:
    command = program or [sys.executable, "-m", "conformance"]
    return subprocess.run([*command, *arguments], capture_output=True, text=True, check=False, timeout=120)


@pytest.fixture(scope="module")
def module_help() -> str:
    result = _run("--help")
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def pytest_help() -> str:
    result = _run("--help-pytest")
    assert result.returncode == 0, result.stderr
    return result.stdout


def _kit_flags(pytest_help: str) -> list[str]:
    """The options of the kit's group in pytest's help (`--store=TARGET`, ...), as pytest lists them."""
    section = pytest_help.split("thread/run store conformance kit:\n", 1)[1].split("\n\n", 1)[0]
    return re.findall(r"^  (--[\w-]+(?:=\S+)?)", section, re.MULTILINE)


def test_help_is_short_and_names_the_program(module_help: str) -> None:
    """At most 80 lines, under `usage: python -m conformance`, not pytest's `usage: pytest.main()`."""
    lines = module_help.splitlines()
    assert len(lines) <= MAX_LINES, f"{len(lines)} lines"
    assert lines[0].startswith(f"usage: {MODULE_PROGRAM} ")
    assert "pytest.main()" not in module_help


def test_help_lists_every_option_of_the_kit(module_help: str, pytest_help: str) -> None:
    """Each option pytest lists in the kit's group appears in the short help, with its value name."""
    flags = _kit_flags(pytest_help)
    assert "--store=TARGET" in flags
    assert len(flags) >= 9
    assert [flag for flag in flags if flag not in module_help] == []


def test_help_lists_the_subcommands_and_the_three_ways_in(module_help: str) -> None:
    """`spec`, `new` (and any other registered subcommand), and the command line, subclass and fixture ways."""
    commands = module_help.split("commands:\n", 1)[1].split("\n\n", 1)[0]
    assert {"spec", "new"} <= set(SUBCOMMANDS)
    assert [name for name in SUBCOMMANDS if not re.search(rf"^  {name}\b", commands, re.MULTILINE)] == []
    for way in ("--store path/to/store.py:make_store", "StoreContract", "pytest --pyargs conformance.suite"):
        assert way in module_help


def test_help_says_where_pytests_options_are(module_help: str, pytest_help: str) -> None:
    """The help points at `--help-pytest`, which prints pytest's whole help, the kit's group in it."""
    assert f"{MODULE_PROGRAM} --help-pytest" in module_help
    assert "-x, --exitfirst" in pytest_help
    assert "--conformance-profile" in pytest_help


@pytest.mark.skipif(not SCRIPT.is_file(), reason="the threadstore-conformance script is not installed beside python")
def test_the_console_script_names_itself() -> None:
    """`threadstore-conformance --help` shows the same help under its own name."""
    result = _run("--help", program=[str(SCRIPT)])
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: threadstore-conformance [--store TARGET]")
    assert "  threadstore-conformance --help-pytest" in result.stdout
    assert len(result.stdout.splitlines()) <= MAX_LINES


def test_help_anywhere_on_the_line_shows_the_help_and_runs_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    """`-h` after other options still prints the kit's help, and no test runs."""
    assert main(["--store", "nowhere.py:make_store", "-q", "-h"], prog="threadstore-conformance") == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: threadstore-conformance ")
    assert "conformance summary" not in out


@pytest.mark.parametrize("command", ["spec", "new"])
def test_subcommand_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    """`spec --help` and `new --help` print their own usage under the program's name and exit 0."""
    with pytest.raises(SystemExit) as exited:
        main([command, "--help"], prog="threadstore-conformance")
    assert exited.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: threadstore-conformance {command} ")


@pytest.mark.parametrize(
    ("argv0", "program"),
    [
        ("/site-packages/conformance/__main__.py", "python -m conformance"),
        ("/venv/bin/threadstore-conformance", "threadstore-conformance"),
        ("C:\\venv\\Scripts\\threadstore-conformance.exe", "threadstore-conformance"),
        ("-c", "python -m conformance"),
    ],
)
def test_program_name(argv0: str, program: str) -> None:
    """The usage line names what the user typed: the module, or the console script."""
    assert program_name(argv0.replace("\\", "/")) == program


def test_a_run_imports_no_more_than_before_help_existed() -> None:
    """The help's imports wait until help is asked for: a run's pytest still rewrites what it must, no warning."""
    result = _run("-q", "--conformance-rules", "THR-1")
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"^\d+ passed, \d+ deselected in ", result.stdout, re.MULTILINE)
    assert "PytestAssertRewriteWarning" not in result.stdout + result.stderr
