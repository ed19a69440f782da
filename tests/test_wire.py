"""The wire protocol: every fault of a store process ends in its named error; the server keeps the contract.

Faults are played by `wire_fake_store.py` (one mode per fault), started as a real
process. The server (`serve_store`) runs in a thread of this process, on a pair of
pipes, posing as the store process: the kit's client cannot tell, and coverage sees
both sides. Whole kit runs over the wire are in `test_wire_conformance.py`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, cast

import anyio
import pytest

from conformance import (
    AlreadyExistsError,
    CheckpointSnapshot,
    ChildThreadDeleteStrategy,
    CommitUnknownError,
    InvalidCursorError,
    MessageOrder,
    MessageQuery,
    MessageSeqRange,
    NotFoundError,
    PersistedState,
    RemoteStoreError,
    RunQuery,
    RunStatus,
    SerializationError,
    StorageError,
    StorageIOError,
    StoreCommand,
    StoreProcessExited,
    Thread,
    ThreadMetadata,
    ThreadParentFilter,
    ThreadQuery,
    ThreadRunStore,
    UnknownResponseIdError,
    ValidationError,
    VersionConflictError,
    WireError,
    WireProtocolError,
    WireStore,
    WireTimeoutError,
    serve_store,
)
from conformance.kit._scenarios import assistant, run, system, thread, tool, user
from conformance.wire import _channel
from conformance.wire._channel import BusyWait, LineReader
from conformance.wire._connection import Connection
from conformance.wire._protocol import METHODS, error_from_json, error_to_json
from reference_store import ReferenceStore

pytestmark = pytest.mark.anyio

FAKE = Path(__file__).resolve().with_name("wire_fake_store.py")


def fake(mode: str, **options: Any) -> StoreCommand:
    """A store command running the fake store process in `mode`."""
    return StoreCommand([sys.executable, str(FAKE), mode], **options)


@pytest.fixture
def closing() -> Iterator[Callable[[StoreCommand], StoreCommand]]:
    """Shut down the idle processes of every store command a test makes."""
    made: list[StoreCommand] = []
    yield lambda command: made.append(command) or command  # type: ignore[func-returns-value]
    for command in made:
        command.close()


# ── the faults of a store process, each with its named error ─────────────


async def test_a_process_that_dies_raises_store_process_exited_quoting_its_last_words(
    closing: Callable[[StoreCommand], StoreCommand],
) -> None:
    """A crash mid-request is StoreProcessExited with the exit status and the last line of standard error."""
    command = closing(fake("exit"))
    with pytest.raises(StoreProcessExited) as caught:
        async with command() as store:
            await store.load_thread("t1")
    assert caught.value.returncode == 3
    assert caught.value.line == "fake store: crashed in load_thread"
    assert "exited with status 3" in str(caught.value)
    assert "'fake store: crashed in load_thread'" in str(caught.value)


async def test_a_line_that_is_not_json_raises_a_protocol_error_quoting_it(
    closing: Callable[[StoreCommand], StoreCommand],
) -> None:
    """A stray print on standard output is a WireProtocolError that quotes it and says where prints belong."""
    command = closing(fake("garbage"))

    async def two_calls() -> None:
        async with command() as store:
            with pytest.raises(WireProtocolError):
                await store.load_thread("t1")
            await store.load_thread("t2")  # the conversation stays broken: this raises too, it does not hang

    with pytest.raises(WireProtocolError) as caught:
        await two_calls()
    assert caught.value.line == "debug: hello"
    assert "standard error" in str(caught.value)


async def test_an_answer_to_an_unknown_id_raises_unknown_response_id_error(
    closing: Callable[[StoreCommand], StoreCommand],
) -> None:
    """An answer to no request in flight is UnknownResponseIdError, quoting the answer."""
    command = closing(fake("unknown-id"))
    with pytest.raises(UnknownResponseIdError) as caught:
        async with command() as store:
            await store.load_thread("t1")
    assert caught.value.line is not None
    assert json.loads(caught.value.line)["id"] >= 1000


async def test_a_request_never_answered_raises_wire_timeout_error_quoting_it(
    closing: Callable[[StoreCommand], StoreCommand],
) -> None:
    """With `request_timeout`, a silent process is WireTimeoutError quoting the request, not a hang."""
    command = closing(fake("silent", request_timeout=0.5))
    with anyio.fail_after(10), pytest.raises(WireTimeoutError) as caught:
        async with command() as store:
            await store.load_thread("t1")
    assert caught.value.line is not None
    request = json.loads(caught.value.line)
    assert (request["method"], request["params"]) == ("load_thread", {"thread_id": "t1"})


async def test_a_deadline_over_a_silent_process_ends_promptly(closing: Callable[[StoreCommand], StoreCommand]) -> None:
    """The kit's per-test deadline, around the store's whole life, ends a call to a silent process and its close."""
    command = closing(fake("silent"))
    started = time.monotonic()
    with anyio.fail_after(10), anyio.move_on_after(0.3) as scope:
        async with command() as store:
            await store.load_thread("t1")
    assert scope.cancelled_caught
    assert time.monotonic() - started < 5


async def test_a_command_that_cannot_start_raises_store_process_exited(
    closing: Callable[[StoreCommand], StoreCommand],
) -> None:
    """A missing program is StoreProcessExited naming the command."""
    command = closing(StoreCommand("no-such-program-for-the-wire-test --flag"))
    with pytest.raises(StoreProcessExited, match="cannot start the store command 'no-such-program"):
        async with command():
            pass


@pytest.mark.parametrize(
    ("mode", "error", "words"),
    [
        ("bad-kind", WireProtocolError, "unknown storage error kind 'Banana'"),
        ("internal", RemoteStoreError, "JSON-RPC error -32603: KeyError"),
        ("bad-result", WireProtocolError, "the result of load_thread does not have its shape"),
        ("no-result", WireProtocolError, "exactly one of 'result' and an 'error' object"),
        ("bad-error", WireProtocolError, "needs an integer 'code' and a string 'message'"),
        ("cancelled", RemoteStoreError, "answered 'cancelled' to a request never cancelled"),
        ("request", WireProtocolError, "not a JSON-RPC 2.0 response"),
        ("mute-exit", StoreProcessExited, "exited with status 0 .*; it wrote nothing to standard error"),
    ],
)
async def test_a_malformed_answer_raises_its_named_error(
    closing: Callable[[StoreCommand], StoreCommand], mode: str, error: type[WireError], words: str
) -> None:
    """An unknown error kind, a crash inside the store, answers of the wrong shape, a silent death: each is named."""
    command = closing(fake(mode))
    with pytest.raises(error, match=words):
        async with command() as store:
            await store.load_thread("t1")


@pytest.mark.parametrize(
    ("mode", "words"),
    [
        ("bad-initialize", "'initialize' must answer an object"),
        ("bad-capabilities", "'capabilities' must be a list of capability names"),
        ("bad-open", "'open' answers null or"),
    ],
)
async def test_a_malformed_start_raises_a_protocol_error(
    closing: Callable[[StoreCommand], StoreCommand], mode: str, words: str
) -> None:
    """`initialize` and `open` answers of the wrong shape are WireProtocolError before any store call."""
    command = closing(fake(mode))
    with pytest.raises(WireProtocolError, match=words):
        async with command():
            pass


async def test_another_protocol_version_is_refused(closing: Callable[[StoreCommand], StoreCommand]) -> None:
    """A process speaking protocol 2.0 is refused at `initialize`, naming both versions."""
    command = closing(fake("version"))
    with pytest.raises(WireProtocolError, match=r"speaks protocol '2.0'; this kit speaks 1\.0"):
        async with command():
            pass


async def test_a_process_that_exits_between_stores_is_reported_at_the_next_open(
    closing: Callable[[StoreCommand], StoreCommand],
) -> None:
    """A process must serve until `shutdown`; one that leaves after `close` fails the next store, named."""
    command = closing(fake("exit-idle"))
    async with command() as store:
        assert await store.load_thread("t1") is None
    await anyio.sleep(0.3)  # it has exited by now (if not, the next request finds it gone: the same error)
    with pytest.raises(StoreProcessExited, match="exited with status 0"):
        async with command():
            pass


# ── the client's contract ─────────────────────────────────────────────────


async def test_a_process_serves_store_after_store_unless_told_otherwise(
    closing: Callable[[StoreCommand], StoreCommand],
) -> None:
    """With `reuse` one process serves both stores; without it each store has its own process."""
    identities: dict[bool, list[str | None]] = {True: [], False: []}
    for reuse in (True, False):
        command = closing(fake("null", reuse=reuse))
        for _ in range(2):
            async with command() as store:
                identities[reuse].append(store.thread_run_storage_identity())
    assert identities[True][0] == identities[True][1]
    assert identities[False][0] != identities[False][1]


async def test_a_closed_store_refuses_calls(closing: Callable[[StoreCommand], StoreCommand]) -> None:
    """A store used after its block ends raises WireError, naming the method (its process serves another)."""
    command = closing(fake("null"))
    async with command() as store:
        pass
    with pytest.raises(WireError, match="load_thread: this store was closed"):
        await store.load_thread("t1")
    assert repr(command) == f"StoreCommand({sys.executable + ' ' + str(FAKE) + ' null'!r})"


async def test_a_waiting_caller_reads_next_when_the_readers_answer_came_first(
    closing: Callable[[StoreCommand], StoreCommand],
) -> None:
    """Callers read answers in turn: the first caller reads, leaves with its answer, and the next one reads."""
    command = closing(fake("hold"))
    answers: list[object] = []
    async with command() as store:

        async def fast() -> None:
            answers.append(await store.load_thread("fast"))

        with anyio.move_on_after(0.5) as scope:
            async with anyio.create_task_group() as group:
                group.start_soon(fast)
                group.start_soon(store.load_thread, "slow")
        assert await store.load_thread("after") is None
    assert scope.cancelled_caught
    assert answers == [None]


async def test_defaults_the_process_lacks_run_as_the_contracts_defaults(
    closing: Callable[[StoreCommand], StoreCommand], capsys: pytest.CaptureFixture[str]
) -> None:
    """A default answered -32601 runs as ThreadRunStore's default over the abstract methods, asked once."""
    command = closing(fake("minimal"))
    async with command() as store:
        assert await store.load_thread_state("t1") is None
        assert await store.load_messages("t1") is None
        assert await store.load_messages("t1") is None
    received = [line for line in capsys.readouterr().err.splitlines() if line.startswith("[store] got ")]
    assert received.count("[store] got load_messages") == 1
    assert received.count("[store] got load_committed_messages") == 2


async def test_the_next_call_waits_until_a_cancelled_one_is_answered(
    closing: Callable[[StoreCommand], StoreCommand], capsys: pytest.CaptureFixture[str]
) -> None:
    """A cancelled call returns at once, but nothing is sent after it until the process answered it (ATO-3)."""
    command = closing(fake("hold"))
    async with command() as store:
        started = time.monotonic()
        with anyio.move_on_after(0.2):
            await store.load_thread("slow")
        left = time.monotonic() - started
        assert await store.load_thread("fast") is None
    assert left < 1.5
    received = [line.removeprefix("[store] ") for line in capsys.readouterr().err.splitlines()]
    order = [line for line in received if line in ("got load_thread", "got $/cancelRequest", "answered cancelled")]
    assert order == ["got load_thread", "got $/cancelRequest", "answered cancelled", "got load_thread"]


async def test_mistyped_arguments_raise_type_error_before_anything_is_sent(
    closing: Callable[[StoreCommand], StoreCommand],
) -> None:
    """As with every store, a wrong Python type is a TypeError naming the argument."""
    command = closing(fake("silent", request_timeout=5))
    async with command() as store:
        with pytest.raises(TypeError, match="argument 'thread_id' must be a str"):
            await store.load_thread(5)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match=r"argument 'messages\[0\]' must be a Message"):
            await store.save_messages("t", ["not a message"])  # type: ignore[list-item]
        with pytest.raises(TypeError, match="argument 'query' must be a ThreadQuery"):
            await store.list_threads_query(RunQuery())  # type: ignore[arg-type]


async def test_the_client_leaves_out_an_optional_param_that_is_none(
    closing: Callable[[StoreCommand], StoreCommand],
) -> None:
    """A `?` param (`expected_version`, `parent_thread_id`) is left out of the request when None, never sent null.

    So a store that requires it fails the kit; a required param (`strategy`) is always sent.
    """
    command = closing(fake("echo"))

    async def sent(call: Awaitable[object]) -> dict[str, Any]:
        with pytest.raises(StorageIOError) as caught:
            await call
        params: dict[str, Any] = json.loads(str(caught.value))
        return params

    async with command() as store:
        record = run("r1", "t")
        assert set(await sent(store.checkpoint_append("t", [], None, record))) == {"thread_id", "messages", "run"}
        assert (await sent(store.checkpoint_append("t", [], 0, record)))["expected_version"] == 0
        assert await sent(store.validate_thread_hierarchy("t", None)) == {"thread_id": "t"}
        assert await sent(store.validate_thread_hierarchy("t", "p")) == {"thread_id": "t", "parent_thread_id": "p"}
        assert await sent(store.delete_thread_with_strategy("t")) == {"thread_id": "t", "strategy": "detach"}


def test_an_empty_command_is_refused() -> None:
    """`StoreCommand("")` says what to give."""
    with pytest.raises(ValueError, match="needs a command to run"):
        StoreCommand("  ")


# ── the server, in a thread ───────────────────────────────────────────────


class _ServedInThread:
    """`serve_store` in a thread on two pipes, with the part of `Popen` a `Connection` uses."""

    def __init__(self, source: Any) -> None:
        to_server, self._to_server = os.pipe()
        self._from_server, from_server = os.pipe()
        self.stdin = os.fdopen(self._to_server, "wb", buffering=0)
        self.stdout = os.fdopen(self._from_server, "rb", buffering=0)
        self.returncode: int | None = None

        def serve() -> None:
            try:
                serve_store(source, input_fd=to_server, output_fd=from_server)
            finally:
                os.close(to_server)
                os.close(from_server)
                self.returncode = 0

        self.thread = threading.Thread(target=serve, daemon=True)
        self.thread.start()

    def poll(self) -> int | None:
        return self.returncode

    def kill(self) -> None:
        if not self.stdin.closed:
            self.stdin.close()
        self.thread.join(10)

    def wait(self, timeout: float | None = None) -> int | None:
        self.thread.join(timeout)
        return self.returncode


class InThread(StoreCommand):
    """A store command whose "process" is `serve_store(source)` in a thread of the test."""

    def __init__(self, source: Any, **options: Any) -> None:
        super().__init__(["serve_store", "(in a thread)"], **options)
        self.source = source

    def _connect(self) -> Connection:
        peer = cast(Any, _ServedInThread(self.source))
        return Connection(peer, "serve_store (in a thread)", tempfile.TemporaryFile())


@pytest.fixture
def served(closing: Callable[[StoreCommand], StoreCommand]) -> StoreCommand:
    """The reference store, served in a thread."""
    return closing(InThread(ReferenceStore))


async def _everything(store: ThreadRunStore) -> list[object]:
    """Call every store method, errors included; what each returned or raised, as JSON-comparable values."""
    outcomes: list[object] = []

    async def record(call: Awaitable[object]) -> None:
        try:
            value = await call
        except Exception as error:
            fields = (error.expected, error.actual) if isinstance(error, VersionConflictError) else str(error)
            outcomes.append((type(error).__name__, fields))
            return
        outcomes.append(_comparable(value))

    await record(store.save_thread(Thread(id="p", resource_id=" r ", metadata=ThreadMetadata(updated_at=3, title="P"))))
    await record(store.save_thread_validated(thread("c", parent="p", updated_at=2)))
    await record(store.save_thread_validated(thread("x", parent="nowhere")))
    await record(store.validate_thread_hierarchy("p", "c"))
    await record(store.load_thread("p"))
    await record(store.list_threads(0, 10))
    await record(store.list_threads_query(ThreadQuery(limit=1, resource_id="r")))
    await record(store.list_threads_query(ThreadQuery(parent_filter=ThreadParentFilter.parent("p"), id_prefix="c")))
    await record(store.list_threads_query(ThreadQuery(offset=-1)))
    await record(store.list_child_threads("p"))
    await record(store.update_thread_metadata("c", ThreadMetadata(updated_at=5, custom={"k": [1, None]})))
    await record(store.update_thread_metadata("missing", ThreadMetadata()))
    await record(store.save_thread_state("p", PersistedState(revision=2, extensions={"a": {"b": 1}})))
    await record(store.load_thread_state("p"))
    delta = [user("m1"), assistant("m2", calls=["k1", "k2"]), tool("m3", "k1"), system("m4", summary_of=(1, 2))]
    await record(store.append_message_records("p", delta))
    await record(store.append_message_records("p", [user("m1")]))
    await record(store.load_committed_messages("p"))
    await record(store.load_messages("p"))
    await record(store.load_message_records("p"))
    await record(store.list_message_records("p", MessageQuery(limit=2, order=MessageOrder.DESC)))
    await record(store.list_message_records("p", MessageQuery(after=1, before=4, run_id="none")))
    await record(store.load_message_record("p", "m2"))
    await record(store.load_message_records_range("p", MessageSeqRange(from_seq=2, to_seq=3)))
    await record(store.save_messages("q", [user("n1"), user("n1")]))
    await record(store.save_messages("q", [user("n1")]))
    await record(store.delete_messages("q"))
    await record(store.create_run(run("r1", "p", RunStatus.WAITING, updated_at=4)))
    await record(store.create_run(run("r1", "p")))
    await record(store.load_run("r1"))
    await record(store.latest_run("p"))
    await record(store.list_runs(RunQuery(thread_id="p", status=RunStatus.WAITING)))
    await record(store.checkpoint("c", [user("c1")], run("r2", "c", RunStatus.RUNNING, updated_at=6)))
    await record(store.checkpoint_append("c", [user("c2")], 1, run("r2", "c", RunStatus.DONE, updated_at=7)))
    await record(store.checkpoint_append("c", [user("c3")], 9, run("r2", "c", RunStatus.DONE, updated_at=7)))
    await record(store.load_checkpoint("c"))
    await record(store.load_checkpoint("nothing"))
    await record(store.delete_thread_with_strategy("p", "sideways"))  # type: ignore[arg-type]
    await record(store.delete_thread_with_strategy("p", ChildThreadDeleteStrategy.REJECT))
    await record(store.delete_thread_with_strategy("p", ChildThreadDeleteStrategy.CASCADE))
    await record(store.delete_thread_with_strategy("p"))
    await record(store.delete_thread("c"))
    await record(store.list_threads(0, 10))
    return outcomes


def _comparable(value: object) -> object:
    """A value as JSON, with the stamps a store takes from its clock masked (they differ between stores)."""
    if hasattr(value, "to_json"):
        return _comparable(value.to_json())
    if isinstance(value, list):
        return [_comparable(item) for item in value]
    if isinstance(value, dict):
        return {
            k: "now" if k.endswith("_at") and isinstance(v, int) and v > 10**12 else _comparable(v)
            for k, v in value.items()
        }
    if hasattr(value, "__slots__") and not isinstance(value, (str, int)):
        return {name: _comparable(getattr(value, name)) for name in value.__slots__}
    return value


async def test_every_method_answers_over_the_wire_as_in_process(served: StoreCommand) -> None:
    """Each store method, errors included, gives over the wire what the same store gives in process."""
    async with served() as store:
        assert isinstance(store, WireStore)
        over_the_wire = await _everything(store)
    in_process = await _everything(ReferenceStore())
    assert over_the_wire == in_process
    assert ("VersionConflictError", (9, 2)) in over_the_wire
    assert any(isinstance(o, tuple) and o[0] == "AlreadyExistsError" for o in over_the_wire)


async def test_storage_errors_cross_the_wire_as_themselves(served: StoreCommand) -> None:
    """A storage error arrives as its own class with its fields, never as a wire error."""
    async with served() as store:
        await store.create_run(run("r1", "t"))
        with pytest.raises(AlreadyExistsError):
            await store.create_run(run("r1", "t"))
        with pytest.raises(NotFoundError):
            await store.delete_messages("t")
        with pytest.raises(VersionConflictError) as caught:
            await store.checkpoint_append("t", [], 3, run("r1", "t"))
        assert (caught.value.expected, caught.value.actual) == (3, 0)
        with pytest.raises(ValidationError, match="must not be blank"):
            await store.save_thread(Thread(id="  "))
        assert store.capabilities == ReferenceStore.capabilities


class _Stuck(ReferenceStore):
    """`load_thread("stuck")` waits forever; the test sees whether it was cancelled."""

    cancelled = threading.Event()

    async def load_thread(self, thread_id: str) -> Thread | None:
        if thread_id != "stuck":
            return await super().load_thread(thread_id)
        try:
            await anyio.sleep_forever()
        finally:
            type(self).cancelled.set()
        raise AssertionError("unreachable")


async def test_cancel_request_cancels_the_store_call_at_its_next_scheduling_point(
    closing: Callable[[StoreCommand], StoreCommand],
) -> None:
    """`$/cancelRequest` cancels the task running the call, as a cancel scope would in process."""
    command = closing(InThread(_Stuck))
    async with command() as store:
        with anyio.move_on_after(0.2):
            await store.load_thread("stuck")
        assert await store.load_thread("other") is None  # answered once the cancelled call settled
    assert _Stuck.cancelled.wait(5)


async def test_concurrent_calls_are_all_answered(served: StoreCommand) -> None:
    """Many requests in flight at once each get their own answer."""
    async with served() as store:
        async with anyio.create_task_group() as group:
            for number in range(40):
                group.start_soon(store.save_thread, thread(f"t{number:02d}", updated_at=number))
        assert len(await store.list_threads(0, 100)) == 40


def test_busy_wait_backs_off_after_empty_polls_and_recovers_on_lines() -> None:
    """Empty polls make the next 1, 3, 7 reads sleep at once; a poll that finds a line halves that."""
    read_end, write_end = os.pipe()
    try:
        reader, busy = LineReader(read_end), BusyWait(seconds=0.001)

        def miss() -> int:
            """Poll the empty pipe; how many reads then skip polling."""
            assert busy.due()
            assert busy.poll(reader) == []
            skipped = 0
            while not busy.due():
                skipped += 1
            return skipped

        assert [miss(), miss(), miss()] == [1, 3, 7]
        os.write(write_end, b'{"a":1}\n{"b":')
        assert busy.poll(reader) == [b'{"a":1}']  # the partial line waits for its end
        assert busy.due()  # polls again at once
        assert miss() == 7  # 7 halved to 3, then doubled plus one
    finally:
        os.close(read_end)
        os.close(write_end)


def test_busy_wait_never_polls_when_off_or_on_one_core(monkeypatch: pytest.MonkeyPatch) -> None:
    """`seconds=0`, or a process allowed one core (the other side cannot answer during the poll)."""
    assert not BusyWait(seconds=0).due()
    monkeypatch.setattr(_channel, "_cores", lambda: 1)
    assert not BusyWait().due()
    monkeypatch.setattr(_channel, "_cores", lambda: 2)
    assert BusyWait().due()


class _Polling(InThread):
    """Served in a thread, with the kit polling up to 10 s for an answer: a poll in the wrong place shows."""

    def _connect(self) -> Connection:
        connection = super()._connect()
        connection.busy_wait = BusyWait(seconds=10)
        return connection


class _Gathering(ReferenceStore):
    """`save_thread` returns only once `CALLERS` calls are inside it at the same time (or after 5 s).

    `most` is the most calls it ever had inside at once.
    """

    CALLERS = 5
    most = 0

    def __init__(self) -> None:
        super().__init__()
        self.inside = 0
        self.all_in = anyio.Event()

    async def save_thread(self, thread: Thread) -> None:
        self.inside += 1
        type(self).most = max(type(self).most, self.inside)
        if self.inside == self.CALLERS:
            self.all_in.set()
        try:
            with anyio.move_on_after(5):
                await self.all_in.wait()
            await super().save_thread(thread)
        finally:
            self.inside -= 1


async def test_callers_started_together_are_in_the_store_at_once_though_a_lone_caller_polls(
    closing: Callable[[StoreCommand], StoreCommand],
) -> None:
    """The kit's brief poll for an answer (`BusyWait`) comes after every ready caller sent its request.

    Were it to poll first, each call would end before the next began and the store
    would never see them together: the concurrency rules would test nothing over the
    wire. (The 10 s poll makes that order show: polling first, the first call would
    wait out the store's 5 s alone.)
    """
    _Gathering.most = 0
    command = closing(_Polling(_Gathering))
    async with command() as store:
        await store.load_thread("warm")  # a lone call: the poll's path
        async with anyio.create_task_group() as group:
            for number in range(_Gathering.CALLERS):
                group.start_soon(store.save_thread, thread(f"t{number}"))
    assert _Gathering.most == _Gathering.CALLERS


def _factory() -> ReferenceStore:
    """A source without a `capabilities` attribute: the server asks a store it opens."""
    return ReferenceStore()


async def test_the_server_asks_a_store_for_capabilities_the_source_does_not_declare(
    closing: Callable[[StoreCommand], StoreCommand],
) -> None:
    command = closing(InThread(_factory))
    async with command() as store:
        assert store.capabilities == ReferenceStore.capabilities


@pytest.fixture
async def raw() -> AsyncIterator[Callable[[str], Awaitable[dict[str, Any]]]]:
    """Send one line to a server in a thread and read one answer (for requests the kit never sends)."""
    peer = _ServedInThread(ReferenceStore)
    answers = peer.stdout

    async def exchange(line: str) -> dict[str, Any]:
        peer.stdin.write(line.encode() + b"\n")
        answer: dict[str, Any] = json.loads(await anyio.to_thread.run_sync(answers.readline))
        return answer

    yield exchange
    peer.kill()
    answers.close()


async def test_the_server_refuses_what_is_not_a_request(raw: Callable[[str], Awaitable[dict[str, Any]]]) -> None:
    """Lines that break the protocol get JSON-RPC's error codes, and the server keeps serving."""
    assert (await raw("not json"))["error"]["code"] == -32700
    assert (await raw('{"jsonrpc": "2.0", "id": 1}'))["error"]["code"] == -32600
    assert (await raw('{"jsonrpc": "2.0", "id": 2, "method": "open", "params": {}}'))["error"]["code"] == -32002
    answer = await raw('{"jsonrpc": "2.0", "id": 3, "method": "initialize", "params": {}}')
    assert answer["result"]["protocol_version"] == "1.0"
    assert (await raw('{"jsonrpc": "2.0", "id": 4, "method": "load_thread", "params": {}}'))["error"]["code"] == -32002
    assert (await raw('{"jsonrpc": "2.0", "id": 5, "method": "open", "params": {"location": 7}}'))["error"][
        "code"
    ] == -32602
    assert "result" in await raw('{"jsonrpc": "2.0", "id": 6, "method": "open", "params": {}}')
    assert (await raw('{"jsonrpc": "2.0", "id": 7, "method": "open", "params": {}}'))["error"]["code"] == -32600
    assert (await raw('{"jsonrpc": "2.0", "id": 8, "method": "rename_thread", "params": {}}'))["error"][
        "code"
    ] == -32601
    assert (await raw('{"jsonrpc": "2.0", "id": 9, "method": "load_thread", "params": {}}'))["error"]["code"] == -32602
    shapeless = await raw('{"jsonrpc": "2.0", "id": 10, "method": "save_thread", "params": {"thread": {"id": 5}}}')
    assert shapeless["error"]["data"]["kind"] == "Validation"
    assert (await raw('{"jsonrpc": "2.0", "id": 11, "method": "close", "params": {}}'))["result"] is None


def _request(request_id: int, method: str, params: dict[str, Any]) -> str:
    return json.dumps({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params})


async def test_the_server_takes_a_question_mark_param_left_out_or_null_as_none(
    raw: Callable[[str], Awaitable[dict[str, Any]]],
) -> None:
    """A `?` param left out or null is None (`expected_version`, `parent_thread_id`); a required one missing: -32602."""
    assert "result" in await raw(_request(1, "initialize", {}))
    assert "result" in await raw(_request(2, "open", {"location": None}))
    record = run("r1", "t").to_json()
    appended = [
        await raw(
            _request(3, "checkpoint_append", {"thread_id": "t", "messages": [user("m1").to_json()], "run": record})
        ),
        await raw(
            _request(
                4,
                "checkpoint_append",
                {"thread_id": "t", "messages": [user("m2").to_json()], "expected_version": None, "run": record},
            )
        ),
    ]
    assert [answer.get("result") for answer in appended] == [1, 2], appended
    validated = [
        await raw(_request(5, "validate_thread_hierarchy", {"thread_id": "t"})),
        await raw(_request(6, "validate_thread_hierarchy", {"thread_id": "t", "parent_thread_id": None})),
    ]
    assert validated == [{"jsonrpc": "2.0", "id": 5, "result": None}, {"jsonrpc": "2.0", "id": 6, "result": None}]
    no_run = await raw(_request(7, "checkpoint_append", {"thread_id": "t", "messages": []}))
    assert no_run["error"] == {"code": -32602, "message": "checkpoint_append: missing param 'run'"}
    no_strategy = await raw(_request(8, "delete_thread_with_strategy", {"thread_id": "t"}))
    assert no_strategy["error"] == {"code": -32602, "message": "delete_thread_with_strategy: missing param 'strategy'"}


async def test_the_server_writes_results_in_the_canonical_serde_shape(
    raw: Callable[[str], Awaitable[dict[str, Any]]],
) -> None:
    """The served reference re-serializes what it read: unknown fields and nulls dropped, defaults written.

    A model written with an unknown field reads back equal, and a checkpoint without a
    latest run or thread state omits both.
    """
    assert "result" in await raw(_request(1, "initialize", {}))
    assert "result" in await raw(_request(2, "open", {"location": None}))
    written = {"id": "t", "resource_id": None, "metadata": {"updated_at": 5, "title": None, "extra": 1}, "extra": [1]}
    assert (await raw(_request(3, "save_thread", {"thread": written})))["result"] is None
    loaded = (await raw(_request(4, "load_thread", {"thread_id": "t"})))["result"]
    assert loaded == {"id": "t", "metadata": {"updated_at": 5}}
    assert Thread.from_json(loaded) == Thread.from_json(written)
    assert "result" in await raw(_request(5, "save_thread_state", {"thread_id": "t", "state": {"extra": True}}))
    state = await raw(_request(6, "load_thread_state", {"thread_id": "t"}))
    assert state["result"] == {"revision": 0, "extensions": {}}
    assert "result" in await raw(_request(7, "save_messages", {"thread_id": "u", "messages": [user("m1").to_json()]}))
    snapshot = (await raw(_request(8, "load_checkpoint", {"thread_id": "u"})))["result"]
    assert snapshot == {"messages": [user("m1").to_json()], "message_version": 1}


async def test_the_server_refuses_a_model_with_a_negative_integer_as_validation(
    raw: Callable[[str], Awaitable[dict[str, Any]]],
) -> None:
    """Every integer in a model is unsigned upstream: a negative one is a Validation storage error, not -32602."""
    assert "result" in await raw(_request(1, "initialize", {}))
    assert "result" in await raw(_request(2, "open", {"location": None}))
    negative: list[tuple[str, dict[str, Any]]] = [
        ("save_thread", {"thread": {"id": "t", "metadata": {"created_at": -1}}}),
        ("create_run", {"record": {**run("r1", "t").to_json(), "steps": -1}}),
        ("save_thread_state", {"thread_id": "t", "state": {"revision": -1, "extensions": {}}}),
        ("load_message_records_range", {"thread_id": "t", "range": {"from_seq": -1, "to_seq": 2}}),
    ]
    for number, (method, params) in enumerate(negative, start=3):
        answer = await raw(_request(number, method, params))
        assert answer["error"]["code"] == -32000, answer
        assert answer["error"]["data"]["kind"] == "Validation", answer
        assert "must be an integer >= 0, got int -1" in answer["error"]["message"], answer
    assert (await raw(_request(7, "load_thread", {"thread_id": "t"})))["result"] is None


def test_serve_refuses_a_store_target_that_names_nothing(tmp_path: Path) -> None:
    """`python -m conformance serve --store` with a bad target exits 2 and says what is wrong."""
    result = subprocess.run(
        [sys.executable, "-m", "conformance", "serve", "--store", "no_such_module:Store"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 2
    assert "cannot import module 'no_such_module'" in result.stderr


PRINTING_STORE = """
from reference_store import ReferenceStore

class PrintingStore(ReferenceStore):
    async def load_thread(self, thread_id):
        print("a print in the store")
        return await super().load_thread(thread_id)
"""


async def test_a_print_in_a_served_store_goes_to_standard_error(
    tmp_path: Path, closing: Callable[[StoreCommand], StoreCommand], capsys: pytest.CaptureFixture[str]
) -> None:
    """`serve` keeps standard output for the protocol: the store's prints reach standard error."""
    (tmp_path / "printing.py").write_text(PRINTING_STORE, encoding="utf-8")
    command = closing(
        StoreCommand(
            [sys.executable, "-m", "conformance", "serve", "--store", "printing.py:PrintingStore"], cwd=tmp_path
        )
    )
    async with command() as store:
        assert await store.load_thread("t") is None
    command.close()
    assert "[store] a print in the store" in capsys.readouterr().err


class _Faulty(ReferenceStore):
    """`load_thread` has a bug: it raises KeyError."""

    async def load_thread(self, thread_id: str) -> Thread | None:
        raise KeyError(thread_id)


async def test_a_bug_in_a_served_store_is_a_remote_store_error(
    closing: Callable[[StoreCommand], StoreCommand], capsys: pytest.CaptureFixture[str]
) -> None:
    """An exception that is not a storage error comes back as -32603 naming it; its traceback goes to stderr."""
    command = closing(InThread(_Faulty))
    async with command() as store:
        with pytest.raises(RemoteStoreError, match="load_thread raised KeyError: 't1'") as caught:
            await store.load_thread("t1")
        assert caught.value.code == -32603
        assert await store.load_thread_state("t1") is None  # still serving
    assert "KeyError: 't1'" in capsys.readouterr().err


def _fails_to_open() -> ReferenceStore:
    raise RuntimeError("no database at this location")


class _FailsToOpen(ReferenceStore):
    """Declares its capabilities, so the server opens it only at `open`, where it fails."""

    def __init__(self) -> None:
        raise RuntimeError("no database at this location")


class _DeclaresAString(ReferenceStore):
    capabilities = "thread_state"  # type: ignore[assignment]


@pytest.mark.parametrize(
    ("source", "words"),
    [
        (_fails_to_open, "initialize raised RuntimeError: no database at this location"),
        (_FailsToOpen, "open raised RuntimeError: no database at this location"),
        (lambda: "not a store", "initialize raised TypeError: the store source .* produced str"),
        (_DeclaresAString, "'capabilities' must be a collection of names"),
    ],
)
async def test_a_store_that_cannot_open_is_a_remote_store_error(
    closing: Callable[[StoreCommand], StoreCommand], source: Any, words: str
) -> None:
    """A source that raises, produces no store, or declares capabilities badly fails `initialize` or `open`, named."""
    command = closing(InThread(source))
    with pytest.raises(RemoteStoreError, match=words):
        async with command():
            pass


async def _generator_source() -> AsyncIterator[ReferenceStore]:
    yield ReferenceStore()


class _ContextSource:
    capabilities = ReferenceStore.capabilities

    async def __aenter__(self) -> ReferenceStore:
        return ReferenceStore()

    async def __aexit__(self, *exc_info: object) -> None:
        return None


async def _awaitable_source() -> ReferenceStore:
    return ReferenceStore()


class _ClosableStore(ReferenceStore):
    closed = 0

    def __init__(self, location: str | None = None) -> None:
        super().__init__()
        self.location = location

    async def aclose(self) -> None:
        type(self).closed += 1


@pytest.mark.parametrize(
    "source",
    [_generator_source, lambda: _ContextSource(), _awaitable_source, ReferenceStore(), _ClosableStore],
    ids=["async-generator", "context-manager", "awaitable", "ready-store", "class-with-location-and-aclose"],
)
async def test_the_server_opens_every_kind_of_store_source(
    closing: Callable[[StoreCommand], StoreCommand], source: Any, tmp_path: Path
) -> None:
    """Whatever `--store` accepts, `serve` serves: each form opens, answers and closes."""
    command = closing(InThread(source))
    async with command(location=tmp_path) as store:
        await store.save_thread(thread("t"))
        assert await store.load_thread("t") == thread("t")
    if source is _ClosableStore:
        assert _ClosableStore.closed >= 1


async def test_payloads_larger_than_a_pipe_cross_whole(served: StoreCommand) -> None:
    """A request and an answer of ~1 MB each, more than a pipe holds, are written in parts and read whole."""
    text = "x" * 1_000_000
    async with served() as store:
        await store.save_messages("t", [user("big", text)])
        loaded = await store.load_committed_messages("t")
    assert loaded == [user("big", text)]


async def test_a_request_cancelled_before_it_began_is_answered(
    raw: Callable[[str], Awaitable[dict[str, Any]]],
) -> None:
    """A cancel read together with its request still gets the request answered (here: cancelled)."""
    await raw('{"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}')
    await raw('{"jsonrpc": "2.0", "id": 2, "method": "open", "params": {}}')
    answer = await raw(
        '{"jsonrpc": "2.0", "id": 3, "method": "load_thread", "params": {"thread_id": "t"}}\n'
        '{"jsonrpc": "2.0", "method": "$/cancelRequest", "params": {"id": 3}}'
    )
    assert answer["id"] == 3
    assert answer.get("error", {}).get("code", -32800) == -32800


def test_the_server_ends_at_end_of_input_cancelling_what_runs() -> None:
    """Closing the server's input mid-request ends it: the running call is cancelled and answered so."""
    _Stuck.cancelled.clear()
    peer = _ServedInThread(_Stuck)
    for number, method in enumerate(("initialize", "open")):
        peer.stdin.write(json.dumps({"jsonrpc": "2.0", "id": number, "method": method, "params": {}}).encode() + b"\n")
        assert json.loads(peer.stdout.readline())["id"] == number
    stuck = {"jsonrpc": "2.0", "id": 9, "method": "load_thread", "params": {"thread_id": "stuck"}}
    peer.stdin.write(json.dumps(stuck).encode() + b"\n")
    time.sleep(0.1)  # the call is running (if not yet, it is cancelled before it begins: answered the same)
    peer.stdin.close()
    peer.thread.join(10)
    assert not peer.thread.is_alive()
    answer = json.loads(peer.stdout.readline())
    assert (answer["id"], answer["error"]["code"]) == (9, -32800)
    peer.stdout.close()


# ── the method table, without a process ───────────────────────────────────


class _SubclassedValidationError(ValidationError):
    """A backend's own refinement of a storage error crosses as its base kind."""


@pytest.mark.parametrize(
    "error",
    [
        ValidationError("bad"),
        InvalidCursorError("bad cursor"),
        NotFoundError("gone"),
        AlreadyExistsError("twice"),
        VersionConflictError(3, 4),
        StorageIOError("disk"),
        SerializationError("shape"),
        CommitUnknownError("lost ack"),
        _SubclassedValidationError("refined"),
    ],
    ids=lambda error: type(error).__name__,
)
def test_every_storage_error_crosses_as_its_kind_with_its_fields(error: StorageError) -> None:
    """`{"kind": ..., "message": ...}` (plus expected/actual) decodes to the same class and fields."""
    data = error_to_json(error)
    back = error_from_json(json.loads(json.dumps(data)))
    expected_type = ValidationError if isinstance(error, _SubclassedValidationError) else type(error)
    assert type(back) is expected_type
    assert str(back) == str(error)
    if isinstance(error, VersionConflictError):
        assert data == {"kind": "VersionConflict", "message": str(error), "expected": 3, "actual": 4}


@pytest.mark.parametrize(
    "data",
    [None, {"message": "no kind"}, {"kind": "VersionConflict", "expected": "3", "actual": 4}],
)
def test_a_storage_error_without_its_fields_is_refused(data: object) -> None:
    with pytest.raises(ValueError, match="needs"):
        error_from_json(data)


@pytest.mark.parametrize(
    ("method", "result"),
    [
        ("load_thread", 5),
        ("list_threads", "t1"),
        ("list_threads", [1]),
        ("save_thread", {"unexpected": True}),
        ("checkpoint_append", True),
        ("list_threads_query", []),
        ("list_threads_query", {"items": []}),
        ("list_threads_query", {"items": "t", "total": 1, "has_more": False}),
        ("list_threads_query", {"items": [], "total": 0, "has_more": False, "next_cursor": 3}),
        ("list_message_records", {"records": [{"seq": 1}], "total": 1, "has_more": False}),
        ("list_runs", {"items": [{}], "total": 1, "has_more": False}),
    ],
)
def test_a_result_of_the_wrong_shape_does_not_decode(method: str, result: Any) -> None:
    """Every result is checked against its method's shape; the client turns this into WireProtocolError."""
    with pytest.raises(SerializationError):
        METHODS[method].result.decode(result)


def test_a_result_reads_as_its_model_whatever_its_nulls_unknown_keys_and_key_order() -> None:
    """The kit reads results as models: null for an absent optional field, unknown keys, key order change nothing.

    Upstream's serde reads them alike, so a store that sends back the JSON it was sent
    conforms as one that writes the canonical shape.
    """
    record = run("r1", "t", RunStatus.DONE, updated_at=4)
    snapshot = CheckpointSnapshot(messages=[user("m1")], message_version=1, latest_run=record)
    canonical = snapshot.to_json()
    message = cast(list[dict[str, Any]], canonical["messages"])[0]
    variants: list[Any] = [
        {**canonical, "thread_state": None},
        {**canonical, "from_a_newer_store": {"x": 1}, "messages": [{**message, "unknown": True, "tool_calls": None}]},
        dict(reversed(canonical.items())),
        {**canonical, "latest_run": dict(reversed({**record.to_json(), "waiting": None, "extra": 0}.items()))},
    ]
    decode = METHODS["load_checkpoint"].result.decode
    for variant in variants:
        assert decode(variant) == snapshot, variant
    absent = CheckpointSnapshot(messages=[], message_version=0)
    assert decode({"messages": [], "message_version": 0, "latest_run": None, "thread_state": None}) == absent
    saved = Thread(id="t", metadata=ThreadMetadata(updated_at=5))
    loose: dict[str, Any] = {
        "metadata": {"title": None, "updated_at": 5, "extra": []},
        "resource_id": None,
        "id": "t",
        "extra": 1,
    }
    assert METHODS["load_thread"].result.decode(loose) == saved


@pytest.mark.parametrize(
    ("method", "params"),
    [
        ("load_thread", [1]),
        ("load_thread", {"thread_id": 5}),
        ("delete_thread_with_strategy", {"thread_id": "t", "strategy": 1}),
        ("list_threads_query", {"query": {"offset": 0}}),
        ("list_threads_query", {"query": {"offset": 0, "limit": 1, "parent_filter": {"parent": 5}}}),
        ("list_message_records", {"thread_id": "t", "query": {"offset": 0, "limit": 1, "order": "sideways"}}),
        ("list_runs", {"query": "all"}),
    ],
)
def test_params_of_the_wrong_shape_do_not_decode(method: str, params: Any) -> None:
    """The server answers these with a Validation storage error, as a store refuses a malformed model."""
    with pytest.raises(SerializationError):
        METHODS[method].decode_params(params)


def test_queries_cross_in_their_serde_shape_and_back() -> None:
    """Absent filters are omitted (the Rust serde shape); every filter decodes back to the same query."""
    queries: list[tuple[str, object, dict[str, object]]] = [
        ("list_threads_query", ThreadQuery(), {"offset": 0, "limit": 50}),
        (
            "list_threads_query",
            ThreadQuery(offset=2, limit=3, resource_id="r", parent_filter=ThreadParentFilter.root(), id_prefix="a%"),
            {"offset": 2, "limit": 3, "resource_id": "r", "id_prefix": "a%", "parent_filter": "root"},
        ),
        ("list_runs", RunQuery(status=RunStatus.DONE), {"offset": 0, "limit": 50, "status": "done"}),
        (
            "list_runs",
            RunQuery(thread_id="t", id_prefix="t"),
            {"offset": 0, "limit": 50, "thread_id": "t", "id_prefix": "t"},
        ),
    ]
    for name, query, shape in queries:
        method = METHODS[name]
        encoded = method.encode_params((query,))
        assert encoded == {"query": shape}
        assert method.decode_params(encoded) == {"query": query}
    records = METHODS["list_message_records"]
    query = MessageQuery(after=1, before=9, order=MessageOrder.DESC, run_id="r")
    encoded = records.encode_params(("t", query))
    assert encoded["query"] == {
        "offset": 0,
        "limit": 50,
        "after": 1,
        "before": 9,
        "order": "desc",
        "visibility": "any",
        "run_id": "r",
    }
    assert records.decode_params(encoded) == {"thread_id": "t", "query": query}


@pytest.mark.parametrize(
    ("method", "arguments", "words"),
    [
        ("list_threads", (object(), 5), "argument 'offset' must be an integer"),
        (
            "delete_thread_with_strategy",
            ("t", 3),
            "argument 'strategy' must be a ChildThreadDeleteStrategy or its name",
        ),
        ("list_threads_query", (ThreadQuery(parent_filter="root"),), "parent_filter must be a ThreadParentFilter"),  # type: ignore[arg-type]
        ("checkpoint_append", ("t", [], None, "run"), "argument 'run' must be a RunRecord"),
    ],
)
def test_arguments_of_the_wrong_python_type_are_type_errors(
    method: str, arguments: tuple[object, ...], words: str
) -> None:
    with pytest.raises(TypeError, match=words):
        METHODS[method].encode_params(arguments)


REQUESTS = [
    {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocol_version": "1.0"}},
    {"jsonrpc": "2.0", "id": 2, "method": "open", "params": {"location": None}},
    {"jsonrpc": "2.0", "id": 3, "method": "save_thread", "params": {"thread": {"id": "t1", "metadata": {}}}},
    {"jsonrpc": "2.0", "id": 4, "method": "load_thread", "params": {"thread_id": "t1"}},
    {"jsonrpc": "2.0", "id": 5, "method": "close", "params": {}},
    {"jsonrpc": "2.0", "id": 6, "method": "shutdown", "params": {}},
]


def _answers(output: bytes) -> dict[int, object]:
    return {answer["id"]: answer.get("result", answer.get("error")) for answer in map(json.loads, output.splitlines())}


def test_a_file_of_requests_is_served_in_order() -> None:
    """Requests written all at once (`serve < requests.jsonl`) are served as a waiting client's: `open` first."""
    peer = _ServedInThread(ReferenceStore)
    peer.stdin.write(b"".join(json.dumps(request).encode() + b"\n" for request in REQUESTS))
    peer.stdin.close()
    peer.thread.join(10)
    answers = _answers(peer.stdout.read())
    peer.stdout.close()
    assert answers[4] == {"id": "t1", "metadata": {}}
    assert answers[3] is None
    assert answers[6] is None


def test_serve_reads_requests_from_a_regular_file(tmp_path: Path) -> None:
    """`python -m conformance serve < requests.jsonl`: a file cannot be polled, and is read all the same."""
    requests = tmp_path / "requests.jsonl"
    requests.write_text("".join(json.dumps(request) + "\n" for request in REQUESTS), encoding="utf-8")
    with requests.open("rb") as given:
        result = subprocess.run(
            [sys.executable, "-m", "conformance", "serve"], stdin=given, capture_output=True, check=False, timeout=60
        )
    assert result.returncode == 0, result.stderr.decode()
    assert _answers(result.stdout)[4] == {"id": "t1", "metadata": {}}
