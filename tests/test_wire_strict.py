"""A strict JSON peer over the wire: values its JSON cannot hold, and parse errors the kit must pair.

A store written on a strict parser (Rust's serde_json) cannot parse a line holding a
lone surrogate, and reads an integer past 64 bits as a float its integer params
refuse. `wire_fake_store.py strict-null` and `strict-id` serve the reference store as
such a peer does; `parse-error` answers -32700 with id null to lines that are JSON.
docs/PROTOCOL.md, "Values strict JSON cannot hold", is what these tests hold the kit to.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from conformance import (
    RemoteStoreError,
    RunRecord,
    StoreCommand,
    Thread,
    ThreadQuery,
    UnrepresentableValueError,
    ValidationError,
    WireProtocolError,
    WireStore,
)
from conformance.kit._scenarios import thread
from conformance.wire._protocol import error_from_json, lone_surrogate_in, wide_integer_in

pytestmark = pytest.mark.anyio

FAKE = Path(__file__).resolve().with_name("wire_fake_store.py")
ROOT = FAKE.parent.parent


def fake(mode: str) -> StoreCommand:
    """A store command running the fake store process in `mode`."""
    return StoreCommand([sys.executable, str(FAKE), mode])


@pytest.fixture
def closing() -> Iterator[Callable[[StoreCommand], StoreCommand]]:
    """Shut down the idle processes of every store command a test makes."""
    made: list[StoreCommand] = []
    yield lambda command: made.append(command) or command  # type: ignore[func-returns-value]
    for command in made:
        command.close()


# ── what strict JSON cannot hold ─────────────────────────────────────────


def test_a_lone_surrogate_is_found_wherever_it_is_and_a_pair_is_not() -> None:
    """A lone surrogate in a nested string or a key is named by its path; an astral character is no surrogate."""
    assert lone_surrogate_in({"query": {"resource_id": "r\udc00"}}) == "a lone surrogate in params.query.resource_id"
    assert lone_surrogate_in({"messages": [{"id": "m"}, {"id": "\ud800x"}]}) == (
        "a lone surrogate in params.messages[1].id"
    )
    assert lone_surrogate_in({"custom": {"k\ud800": 1}}) == "a lone surrogate in a key of params.custom"
    assert lone_surrogate_in({"thread_id": "\U0001f600 \uffff \ue000"}) is None


def test_integers_past_64_bits_are_found_and_the_64_bit_range_is_not() -> None:
    """serde_json holds -2**63 .. 2**64 - 1 as integers; one past either end is named; a bool is no integer."""
    assert wide_integer_in({"offset": 2**64 - 1, "limit": -(2**63), "flag": True}) is None
    assert wide_integer_in({"range": {"to_seq": 2**64}}) == f"the integer {2**64} in params.range.to_seq"
    assert wide_integer_in({"custom": [-(2**63) - 1]}) == f"the integer {-(2**63) - 1} in params.custom[0]"


# ── the client against a strict peer ─────────────────────────────────────


@pytest.mark.parametrize("mode", ["strict-null", "strict-id"])
async def test_a_lone_surrogate_the_store_cannot_parse_is_unrepresentable(
    closing: Callable[[StoreCommand], StoreCommand], mode: str
) -> None:
    """-32700, with id null or the request's id, to a line with a lone surrogate: UnrepresentableValueError; the
    conversation goes on."""
    command = closing(fake(mode))
    async with command() as store:
        with pytest.raises(UnrepresentableValueError, match=r"a lone surrogate in params\.thread_id") as caught:
            await store.load_thread("lone\ud800")
        assert caught.value.code == -32700
        await store.save_thread(thread("t"))
        assert await store.load_thread("t") == thread("t")


async def test_an_integer_past_64_bits_refused_as_validation_is_unrepresentable(
    closing: Callable[[StoreCommand], StoreCommand],
) -> None:
    """Validation to an offset of 2**64 + 1 is UnrepresentableValueError; to an offset of -1 it is the contract's
    ValidationError."""
    command = closing(fake("strict-null"))
    async with command() as store:
        with pytest.raises(UnrepresentableValueError, match=r"refused the integer \d+ in params\.query\.offset"):
            await store.list_threads_query(ThreadQuery(offset=2**64 + 1, limit=3))
        with pytest.raises(ValidationError):
            await store.list_threads(-1, 3)


async def test_a_validation_answer_to_a_lone_surrogate_is_judged_as_the_contracts() -> None:
    """A store that parsed the line and refused the value gave the contract's answer: ValidationError, as sent."""
    command = StoreCommand([sys.executable, "-m", "conformance", "serve"], cwd=ROOT)
    try:
        async with command() as store:
            with pytest.raises(ValidationError) as caught:
                await store.validate_thread_hierarchy("t", "\ud800")  # HIE-4: the parent is not stored
            assert not isinstance(caught.value, UnrepresentableValueError)
    finally:
        command.close()


async def test_parse_errors_with_id_null_go_to_the_oldest_unparsable_request_in_flight(
    closing: Callable[[StoreCommand], StoreCommand],
) -> None:
    """Four calls at once, two with a lone surrogate: each of those two gets its own parse error, the others their
    results."""
    command = closing(fake("strict-null"))
    outcomes: dict[str, object] = {}

    async def call(name: str, read: Callable[[], Awaitable[Thread | RunRecord | None]]) -> None:
        try:
            outcomes[name] = await read()
        except UnrepresentableValueError as error:
            outcomes[name] = str(error)

    async with command() as store, anyio.create_task_group() as group:
        group.start_soon(call, "a", lambda: store.load_thread("a"))
        group.start_soon(call, "thread", lambda: store.load_thread("lone\ud800"))
        group.start_soon(call, "run", lambda: store.load_run("\udc00run"))
        group.start_soon(call, "b", lambda: store.load_thread("b"))
    assert outcomes["a"] is None, outcomes
    assert outcomes["b"] is None, outcomes
    assert "a lone surrogate in params.thread_id" in str(outcomes["thread"]), outcomes
    assert "a lone surrogate in params.run_id" in str(outcomes["run"]), outcomes


async def test_a_parse_error_to_the_only_request_in_flight_fails_it_as_the_stores_fault(
    closing: Callable[[StoreCommand], StoreCommand],
) -> None:
    """-32700 with id null to a line that is JSON, alone in flight: RemoteStoreError for it; the next call is
    answered too."""
    command = closing(fake("parse-error"))
    async with command() as store:
        for _ in range(2):
            with pytest.raises(RemoteStoreError, match="could not parse a request that is JSON") as caught:
                await store.load_thread("t")
            assert caught.value.code == -32700


async def test_a_parse_error_no_request_in_flight_can_take_breaks_the_conversation(
    closing: Callable[[StoreCommand], StoreCommand],
) -> None:
    """-32700 with id null while two requests that are JSON are in flight: no one can be told, both fail."""
    command = closing(fake("parse-errors-in-pairs"))
    failures: list[BaseException] = []

    async def call(store: WireStore, thread_id: str) -> None:
        try:
            await store.load_thread(thread_id)
        except WireProtocolError as error:
            failures.append(error)

    async def both() -> None:
        async with command() as store, anyio.create_task_group() as group:
            group.start_soon(call, store, "t1")
            group.start_soon(call, store, "t2")

    with pytest.raises(WireProtocolError):  # closing the store, on the broken conversation
        await both()
    assert len(failures) == 2, failures
    assert all("cannot tell which it answers" in str(error) for error in failures), failures


def test_an_upstream_error_with_no_kind_is_refused_with_the_kind_to_send_instead() -> None:
    """upstream's PendingSelectionConflict has no kind: a store sends Io, and the kit's refusal of it says so."""
    data = {"kind": "PendingSelectionConflict", "message": "pending selection conflict: expected [], actual []"}
    with pytest.raises(ValueError, match=r"unknown storage error kind 'PendingSelectionConflict'.* as Io"):
        error_from_json(data)


# ── the kit against a strict peer ────────────────────────────────────────

#: The rules with a test that sends a lone surrogate or an integer past 64 bits.
STRICT_RULES = "MOD-6,THR-1,THR-4,HIE-4,DEL-1,QRY-2,QRY-3,MSG-7,MSG-8"


def test_a_strict_peer_breaks_no_rule_and_the_tests_it_cannot_take_do_not_apply(tmp_path: Path) -> None:
    """The kit over a strict peer: no failure; each test whose value it cannot parse is skipped as not applying,
    and a rule whose other tests all pass is checked (MOD-6, THR-1)."""
    report = tmp_path / "report.json"
    command = shlex.join([sys.executable, str(FAKE), "strict-null"])
    arguments = [
        sys.executable, "-m", "conformance", "--store-command", command, "--conformance-rules", STRICT_RULES,
        "-m", "not conformance_stateful", "--conformance-report", str(report), "-q", "-rs", "-p", "no:randomly",
    ]  # fmt: skip
    done = subprocess.run(arguments, cwd=ROOT, capture_output=True, text=True, check=False, timeout=300)
    data: dict[str, Any] = json.loads(report.read_text(encoding="utf-8"))
    statuses = {row["id"]: row["status"] for row in data["rules"]}
    assert "failed" not in statuses.values(), done.stdout[-3000:]
    assert statuses["MOD-6"] == statuses["THR-1"] == "passed", done.stdout[-3000:]
    skipped = [line for line in done.stdout.splitlines() if "does not apply to this store" in line]
    assert len(skipped) == 11, done.stdout[-3000:]  # 8 with a lone surrogate (3 of them strategies), 3 past 64 bits
    assert sum("past 64 bits" in line for line in skipped) == 3, skipped
