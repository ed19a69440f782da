"""The boundary between kit and store, as a backend author meets it in a real session.

Each store call is checked against the contract (types returned, only StorageError
raised), reported at the call under the rule being tested, with the store's own code
in the traceback and the kit's frames hidden. The store factory may ask for pytest
fixtures, and runs inside the kit's event loop, so loop-bound resources work.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from conformance import NotFoundError, RunRecord, StorageIOError, Thread, ThreadMetadata, ValidationError
from conformance.kit._boundary import CallLog, answering, checked
from conformance.kit._violation import BrokenCall, blamed_rules
from reference_store import ReferenceStore

QUIET = ("-p", "no:cacheprovider", "-o", "asyncio_default_fixture_loop_scope=function")

STORES = """
    import asyncio

    from conformance import RunQuery, StoreContract, Thread
    from reference_store import ReferenceStore


    class ListsRunsAsList(ReferenceStore):
        async def list_runs(self, query: RunQuery):
            page = await super().list_runs(query)
            return page.items  # a list, where the contract says RunPage


    class RaisesKeyError(ReferenceStore):
        async def load_thread(self, thread_id: str):
            found = await super().load_thread(thread_id)
            if found is None:
                raise KeyError(thread_id)  # the store's own line: the traceback shows it
            return found


    class ListsIdsAsInts(ReferenceStore):
        async def list_threads(self, offset: int, limit: int):
            return [len(i) for i in await super().list_threads(offset, limit)]
"""


def run(pytester: pytest.Pytester, *arguments: str) -> pytest.RunResult:
    pytester.makepyfile(boundary_stores=STORES)
    return pytester.runpytest_inprocess(*QUIET, "--pyargs", "conformance.suite", *arguments)


def test_a_wrongly_typed_return_is_reported_at_the_call_under_the_rule(pytester: pytest.Pytester) -> None:
    """`list_runs` returning a list fails RUN-4's tests at the call, naming what was expected."""
    result = run(pytester, "--store", "boundary_stores:ListsRunsAsList", "--conformance-rules", "RUN-4")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*BrokenCall: RUN-4: list_runs(RunQuery(*) returned list (*), expected RunPage*"])
    result.stdout.fnmatch_lines(["violates RUN-4: *"])
    assert "_scenarios.py" not in result.stdout.str()


def test_a_list_holding_the_wrong_items_is_named(pytester: pytest.Pytester) -> None:
    """`list_threads` returning ints is reported as a list holding int, expected list[str]."""
    result = run(
        pytester,
        *("--store", "boundary_stores:ListsIdsAsInts", "--conformance-rules", "THR-5"),
        *("-m", "not conformance_stateful"),
    )
    result.stdout.fnmatch_lines(["*list_threads(0, 10) returned a list holding int (*), expected list[[]str[]]*"])


def test_an_error_that_is_no_storage_error_is_named_with_the_store_code(pytester: pytest.Pytester) -> None:
    """A KeyError escaping the store is named as such, its own line is shown, and no kit frame is."""
    result = run(pytester, "--store", "boundary_stores:RaisesKeyError", "--conformance-rules", "THR-1")
    result.stdout.fnmatch_lines(
        [
            "*raise KeyError(thread_id)  # the store's own line: the traceback shows it*",
            "*BrokenCall: load_thread('never-saved') raised KeyError('never-saved'); "
            "only StorageError subclasses may escape a store*",
        ]
    )
    output = result.stdout.str()
    for kit_frame in ("_runner.py", "_boundary.py", "anyio/_core", "asyncio/runners.py", "base_events.py"):
        assert kit_frame not in output, kit_frame


LOOP_BOUND = """
    import asyncio

    import pytest
    from conformance import StoreContract
    from reference_store import ReferenceStore


    class LoopBound(ReferenceStore):
        '''Like a driver connection (asyncpg, aiosqlite): usable only on the loop that made it.'''

        def __init__(self, url):
            super().__init__()
            self.url = url
            self.loop = asyncio.get_running_loop()

        async def load_thread(self, thread_id):
            if asyncio.get_running_loop() is not self.loop:
                raise RuntimeError("attached to a different loop")
            return await super().load_thread(thread_id)


    @pytest.fixture
    def database_url(tmp_path):
        return f"sqlite:///{tmp_path}/db"


    class TestLoopBound(StoreContract):
        async def store(self, database_url, location):
            assert database_url.startswith("sqlite:///") and location
            yield LoopBound(database_url)
"""


def test_the_store_factory_takes_fixtures_and_runs_in_the_kits_loop(pytester: pytest.Pytester) -> None:
    """`store(self, database_url, location)` gets the fixture and the folder; a loop-bound store works."""
    pytester.makepyfile(test_loop_bound=LOOP_BOUND)
    result = pytester.runpytest_inprocess(*QUIET, "--conformance-rules", "THR-1,THR-3")
    # THR-1: unknown id, and two ids no store can hold; THR-3: four, and eight metadata values read back exactly
    result.assert_outcomes(passed=15)


STORE_MADE_ON_ANOTHER_LOOP = """
    import asyncio

    import pytest
    from test_loop_bound import LoopBound


    @pytest.fixture
    def store():
        async def make():
            return LoopBound("sqlite://")

        return asyncio.run(make())  # a ready store, made on a loop of its own: the trap
"""


def test_a_store_built_on_another_loop_fails_and_says_why(pytester: pytest.Pytester) -> None:
    """A ready store made in a fixture on another loop fails at its first call, naming the error."""
    pytester.makepyfile(test_loop_bound=LOOP_BOUND.replace("class TestLoopBound", "class _Unused"))
    pytester.makeconftest(STORE_MADE_ON_ANOTHER_LOOP)
    result = pytester.runpytest_inprocess(*QUIET, "--pyargs", "conformance.suite", "--conformance-rules", "THR-1")
    result.assert_outcomes(failed=3)  # every THR-1 test: its first call fails
    result.stdout.fnmatch_lines(["*load_thread('never-saved') raised RuntimeError('attached to a different loop')*"])


def test_a_fixture_the_factory_asks_for_must_exist(pytester: pytest.Pytester) -> None:
    """A factory parameter that is no fixture stops the run with one line naming it."""
    pytester.makepyfile(
        test_missing="""
        from conformance import StoreContract
        from reference_store import ReferenceStore

        class TestMissing(StoreContract):
            def store(self, no_such_fixture):
                return ReferenceStore()
        """
    )
    result = pytester.runpytest_inprocess(*QUIET)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*asks for 'no_such_fixture', which is no pytest fixture*"])


LONG_FAILURE = """
    from conformance import RunPage, RunQuery
    from reference_store import ReferenceStore


    class LongRuns(ReferenceStore):
        '''list_runs says has_more on every page: the run machine fails, with a long assertion.'''

        async def list_runs(self, query: RunQuery) -> RunPage:
            page = await super().list_runs(query)
            return RunPage(items=page.items, total=page.total, has_more=True)
"""


def test_a_machines_summary_line_is_one_short_line(pytester: pytest.Pytester) -> None:
    """In the summary, a failed rule's reason is one line of at most 150 characters; the failure keeps it all."""
    pytester.makepyfile(boundary_stores=LONG_FAILURE)
    result = pytester.runpytest_inprocess(
        *QUIET, "--pyargs", "conformance.suite", "--store", "boundary_stores:LongRuns", "-k", "test_run_machine"
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    lines = result.stdout.lines
    summary = lines[lines.index(next(line for line in lines if "conformance summary" in line)) :]
    rule_lines = [line for line in summary if line.startswith("RUN-4 ")]
    assert len(rule_lines) == 1
    assert len(rule_lines[0]) <= len("RUN-4   failed        ") + 150


class _AwkwardStore(ReferenceStore):
    """Raises NotFoundError for unknown threads and runs, and a RuntimeError on ids holding `%` (and on `boom`)."""

    async def load_thread(self, thread_id: str) -> Thread | None:
        found = await super().load_thread(thread_id)
        if found is None:
            raise NotFoundError(thread_id)
        return found

    async def load_run(self, run_id: str) -> RunRecord | None:
        raise NotFoundError(run_id)

    async def save_thread(self, thread: Thread) -> None:
        if "%" in thread.id or thread.id == "boom":
            raise RuntimeError("cannot encode")
        await super().save_thread(thread)


@pytest.mark.parametrize(
    ("call", "rules"),
    [
        (lambda store: store.load_thread("ghost"), ("THR-1",)),
        (lambda store: store.load_run("ghost"), ("RUN-2",)),
        (lambda store: store.save_thread(Thread(id="a%b")), ("MOD-6",)),
    ],
    ids=["load_thread-raises", "load_run-raises", "percent-id-crashes"],
)
def test_a_call_that_breaks_its_own_rule_names_it(call: Any, rules: tuple[str, ...]) -> None:
    """In any test, a read raising NotFoundError for an unknown id, or a crash on a `%` id, is that call's rule."""
    store = checked(_AwkwardStore(), CallLog())
    with pytest.raises(BrokenCall) as raised:
        asyncio.run(call(store))
    assert raised.value.rules == rules


def test_other_failures_of_a_call_blame_the_method_or_the_test() -> None:
    """NotFoundError where the contract raises it blames the test's rules it answers to; a crash on a
    plain id breaks the method's own rule (THR-2 for save_thread), or a related one the test is about."""
    store = checked(_AwkwardStore(), CallLog())
    with pytest.raises(NotFoundError) as missing:
        asyncio.run(store.update_thread_metadata("ghost", ThreadMetadata()))
    assert blamed_rules(("THR-3", "ATO-1"), missing.value) == ("THR-3",)
    assert blamed_rules(("ATO-1",), missing.value) == ("ATO-1",)
    with pytest.raises(BrokenCall) as raised:
        asyncio.run(store.save_thread(Thread(id="boom")))
    assert raised.value.rules == ("THR-2",)
    assert "THR-2" not in str(raised.value)  # which rule it breaks depends on the test
    assert blamed_rules(("DEL-3",), raised.value) == ("THR-2",)
    assert blamed_rules(("MOD-2", "THR-2"), raised.value) == ("MOD-2", "THR-2")
    assert blamed_rules(("MOD-2",), raised.value) == ("MOD-2",)


class _FileNameIds(ReferenceStore):
    """Keys threads by file name, as upstream's file backend: odd ids raise StorageIOError (or ValidationError)."""

    async def save_thread(self, thread: Thread) -> None:
        if thread.id == "refused/validly":
            raise ValidationError(f"cannot store {thread.id!r}")
        if not thread.id.strip() or any(part in thread.id for part in ("/", "\\", "..", "\x00")) or thread.id == "io":
            raise StorageIOError(f"thread id contains invalid characters: {thread.id!r}")
        await super().save_thread(thread)


@pytest.mark.parametrize(
    ("thread_id", "why"),
    [
        ("a\\b", "the portable id 'a\\\\b' is stored by every store"),
        ("..", "the portable id '..' is stored by every store"),
        ("", "an id a store cannot keep, as '', is refused with ValidationError, never another error"),
        ("x/y", "an id a store cannot keep, as 'x/y', is refused with ValidationError, never another error"),
        ("nul\x00", "an id a store cannot keep, as 'nul\\x00', is refused with ValidationError, never another error"),
    ],
    ids=["backslash", "dots", "empty", "slash", "nul"],
)
def test_an_odd_id_refused_with_another_error_breaks_mod_6(thread_id: str, why: str) -> None:
    """StorageIOError for an odd id breaks MOD-6 in any test: the test's own rules are not checked past it."""
    store = checked(_FileNameIds(), CallLog())
    with pytest.raises(BrokenCall) as raised:
        asyncio.run(store.save_thread(Thread(id=thread_id)))
    assert raised.value.rules == ("MOD-6",)
    assert str(raised.value).endswith(f"raised StorageIOError({_io(thread_id)!r}); {why}")
    assert isinstance(raised.value.__cause__, StorageIOError)
    assert blamed_rules(("SEC-1",), raised.value) == ("MOD-6",)
    assert blamed_rules(("MOD-2", "THR-2"), raised.value) == ("MOD-6",)


def _io(thread_id: str) -> str:
    return f"thread id contains invalid characters: {thread_id!r}"


def test_an_odd_id_refusal_a_rule_allows_or_a_plain_id_error_is_left_to_the_test() -> None:
    """ValidationError for an odd id is MOD-6's own refusal, and StorageIOError for a plain id no id's fault:
    both reach the test, blamed as any error of the call."""
    store = checked(_FileNameIds(), CallLog())
    with pytest.raises(ValidationError):
        asyncio.run(store.save_thread(Thread(id="refused/validly")))
    with pytest.raises(StorageIOError) as plain:
        asyncio.run(store.save_thread(Thread(id="io")))
    assert blamed_rules(("THR-2", "ATO-1"), plain.value) == ("THR-2",)


def test_a_test_about_odd_ids_keeps_the_blame() -> None:
    """Under `answering(rule, about_ids=True)`, an odd id's refusal reaches the test and breaks that rule."""
    store = checked(_FileNameIds(), CallLog())

    async def about() -> None:
        with answering("DEL-1", about_ids=True):
            await store.save_thread(Thread(id="nul\x00"))

    with pytest.raises(StorageIOError) as raised:
        asyncio.run(about())
    assert blamed_rules(("DEL-1",), raised.value) == ("DEL-1",)
