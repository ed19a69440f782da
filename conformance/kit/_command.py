"""`--store-command "CMD ARGS"`: the store under test is a process speaking the wire protocol.

Kept apart from `_plugin.py`, which only registers the option and calls
`store_command_source`. The source it returns is a `StoreCommand`: the `store`
fixture provides it as `--store` provides its target, so the whole kit (state
machines included) runs against the process, and the durable rules reopen it on the
test's location.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conformance.wire._client import StoreCommand

__all__ = ["add_store_command_option", "store_command_source"]


def add_store_command_option(group: pytest.OptionGroup) -> None:
    """Register `--store-command`."""
    group.addoption(
        "--store-command",
        dest="conformance_store_command",
        metavar="'CMD ARGS'",
        help="the store to test is a process speaking the wire protocol (docs/PROTOCOL.md) on stdin/stdout, "
        "started as CMD ARGS in the current directory; provides the `store` fixture",
    )


def store_command_source(config: pytest.Config) -> StoreCommand | None:
    """The `StoreCommand` that `--store-command` names, or None without it; shut down with the session.

    Raises `pytest.UsageError` for an empty command, or with `--store` as well.
    """
    command: str | None = config.getoption("conformance_store_command")
    if command is None:
        return None
    if config.getoption("conformance_store") is not None:
        raise pytest.UsageError("--store and --store-command both name the store to test: give one of them")
    from conformance.wire._client import StoreCommand  # only sessions that ask load the wire

    try:
        source = StoreCommand(command, cwd=config.invocation_params.dir)
    except ValueError as error:
        raise pytest.UsageError(f"--store-command {command!r}: {error}") from None
    config.add_cleanup(source.close)
    return source
