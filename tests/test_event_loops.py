"""Event loops: a store's declared `backends` against `--conformance-backend`, and the set-up check under each loop.

The sessions run in process with `pytester`, on the reference store and small
variants of it: one that runs under asyncio only (its methods await `asyncio.sleep`),
declaring it on the test class, the store class or the factory, or not at all.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from conformance.kit._loops import Declared, LoopPlan, declared_loops, plan_loops
from conformance.kit._report import Report
from conformance.kit._sources import SetupError

STORES = """
    import asyncio

    from conformance import StorageIOError
    from reference_store import ReferenceStore


    class AsyncioOnly(ReferenceStore):
        '''Runs under asyncio only and does not say so: under trio its first await fails.'''

        async def list_threads(self, offset, limit):
            await asyncio.sleep(0)
            return await super().list_threads(offset, limit)

        async def load_thread(self, thread_id):
            await asyncio.sleep(0)
            return await super().load_thread(thread_id)


    class Declares(AsyncioOnly):
        backends = ("asyncio",)


    def make_store():
        return AsyncioOnly()


    make_store.backends = ("asyncio",)


    def opens_under_asyncio_only():
        asyncio.get_running_loop()
        return ReferenceStore()


    class ListsNothing(ReferenceStore):
        '''list_threads fails under every loop: a broken rule (THR-5), not a loop the store cannot run under.'''

        async def list_threads(self, offset, limit):
            raise StorageIOError("the index is gone")


    class Unknown(ReferenceStore):
        backends = ("curio",)
"""

CLASS_WAY = """
    from conformance import StoreContract
    from reference_store import ReferenceStore


    class TestMine(StoreContract):
        backends = {backends!r}

        def store(self):
            return ReferenceStore
"""

ASYNCIO_ONLY_CLASS = """
    from conformance import StoreContract
    from loop_stores import AsyncioOnly


    class TestMine(StoreContract):
        def store(self):
            return AsyncioOnly
"""


def run(pytester: pytest.Pytester, *arguments: str) -> pytest.RunResult:
    """Run pytest in process, quietly, with `loop_stores.py` importable."""
    pytester.makepyfile(loop_stores=STORES)
    pytester.syspathinsert()
    return pytester.runpytest_inprocess(
        "-p", "no:cacheprovider", "-o", "asyncio_default_fixture_loop_scope=function", *arguments
    )


def store_run(pytester: pytest.Pytester, target: str, *arguments: str) -> pytest.RunResult:
    """The packaged suite against `--store loop_stores.py:TARGET`, on THR-1's tests, with a JSON report."""
    return run(
        pytester,
        "--pyargs",
        "conformance.suite",
        "--store",
        f"loop_stores.py:{target}",
        "--conformance-rules",
        "THR-1",
        "--conformance-report",
        "r.json",
        *arguments,
    )


def report(pytester: pytest.Pytester) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((pytester.path / "r.json").read_text(encoding="utf-8"))
    return data


def output(result: pytest.RunResult) -> str:
    return "\n".join([*result.outlines, *result.errlines])


# ── the plan: chosen loops against declared ones ────────────────────────


def test_without_the_option_the_declared_loops_run() -> None:
    """No --conformance-backend: the store's declared loops, or asyncio when it declares none."""
    assert plan_loops(None, None) == LoopPlan(("asyncio",))
    assert plan_loops(None, Declared(("asyncio", "trio"), "TestMine")) == LoopPlan(("asyncio", "trio"))
    assert plan_loops(None, Declared(("trio",), "TestMine")) == LoopPlan(("trio",))


def test_the_chosen_loops_the_store_declares_run_and_the_rest_are_left_out_saying_why() -> None:
    """--conformance-backend asyncio,trio on an asyncio-only store: asyncio runs, trio is left out."""
    assert plan_loops(("asyncio", "trio"), None) == LoopPlan(("asyncio", "trio"))
    assert plan_loops(("asyncio", "trio"), Declared(("asyncio",), "TestMine")) == LoopPlan(
        ("asyncio",), {"trio": "the store runs under asyncio only (backends = ('asyncio',) on TestMine)"}
    )


def test_a_choice_the_store_shares_no_loop_with_names_both() -> None:
    """--conformance-backend trio on an asyncio-only store: one set-up error naming the declaration and the choice."""
    with pytest.raises(SetupError) as raised:
        plan_loops(("trio",), Declared(("asyncio",), "TestMine"))
    assert str(raised.value) == (
        "the store runs under asyncio only (backends = ('asyncio',) on TestMine); --conformance-backend chose trio"
    )


def test_a_declared_loop_that_is_not_installed_is_left_out(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the option, a declared loop whose package is missing is left out, naming the package."""
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "trio" else real(name))
    assert plan_loops(None, Declared(("asyncio", "trio"), "TestMine")) == LoopPlan(
        ("asyncio",), {"trio": "trio is not installed (pip install trio)"}
    )


class _Declaring:
    def __init__(self, backends: object) -> None:
        self.backends = backends


@pytest.mark.parametrize(
    ("backends", "message"),
    [
        (("curio",), "backends = ('curio',) on _Declaring: unknown event loop 'curio'; choose from asyncio, trio"),
        ((), "backends = () on _Declaring: names no event loop; choose from asyncio, trio"),
        ("asyncio", "backends = 'asyncio' on _Declaring: must be a collection of names, such as ('asyncio',)"),
    ],
    ids=["unknown", "empty", "lone-string"],
)
def test_a_declaration_the_kit_cannot_read_is_a_set_up_error(backends: object, message: str) -> None:
    """Unknown names, none at all, or a string where a collection belongs: a set-up error saying what to write."""
    with pytest.raises(SetupError) as raised:
        declared_loops(_Declaring(backends))
    assert str(raised.value) == message


def test_the_first_declaration_counts_in_the_kits_order() -> None:
    """The test class's declaration first, then the source's; the loops in the kit's order."""

    class Silent:
        backends = None

    class Both:
        backends = ("trio", "asyncio")

    assert declared_loops(Silent, Both, _Declaring(("asyncio",))) == Declared(("asyncio", "trio"), "Both")
    assert declared_loops(Silent) is None


def test_the_version_line_and_the_json_name_the_loops() -> None:
    """`event loops asyncio` on the version line, the chosen loops left out with why; the same in the JSON."""
    report = Report(kit_version="1.2.3", rules_version="3.0")
    assert report.version_text() == "kit 1.2.3, rules 3.0"
    report.event_loops = ["asyncio"]
    report.loops_left_out = {"trio": "the store runs under asyncio only (backends = ('asyncio',) on TestMine)"}
    assert report.version_text() == (
        "kit 1.2.3, rules 3.0, event loops asyncio "
        "(trio left out: the store runs under asyncio only (backends = ('asyncio',) on TestMine))"
    )
    data = report.to_json()
    assert (data["event_loops"], data["loops_left_out"]) == (["asyncio"], report.loops_left_out)


# ── a test class's declaration ──────────────────────────────────────────


def test_a_class_the_chosen_loop_does_not_fit_stops_at_set_up(pytester: pytest.Pytester) -> None:
    """backends = ("asyncio",) under --conformance-backend trio: one line, exit status 4, no rule failure."""
    pytester.makepyfile(test_mine=CLASS_WAY.format(backends=("asyncio",)))
    result = run(pytester, "--conformance-backend", "trio", "--conformance-report", "r.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.assert_outcomes(failed=1)
    problem = (
        "the store runs under asyncio only (backends = ('asyncio',) on TestMine); --conformance-backend chose trio"
    )
    result.stdout.fnmatch_lines([f"verdict: set-up failed: {problem}; no conformance verdict"])
    assert "violates" not in result.stdout.str()
    data = report(pytester)
    assert (data["setup_error"], data["counts"]["failed"], data["event_loops"]) == (problem, 0, [])


def test_a_class_runs_only_under_the_chosen_loops_it_declares(pytester: pytest.Pytester) -> None:
    """backends = ("asyncio",) under asyncio,trio: asyncio only, and the summary and JSON say trio was left out."""
    pytester.makepyfile(test_mine=CLASS_WAY.format(backends=("asyncio",)))
    result = run(
        pytester,
        "-v",
        "--conformance-backend",
        "asyncio,trio",
        "--conformance-rules",
        "THR-1",
        "--conformance-report",
        "r.json",
    )
    result.assert_outcomes(passed=3)
    assert "[trio" not in result.stdout.str()
    why = "the store runs under asyncio only (backends = ('asyncio',) on TestMine)"
    result.stdout.fnmatch_lines([f"kit *, rules *, event loops asyncio (trio left out: {why})"])
    data = report(pytester)
    assert (data["event_loops"], data["loops_left_out"], data["partial_reasons"]) == (
        ["asyncio"],
        {"trio": why},
        ["narrowed by --conformance-rules THR-1"],  # the narrowing only: leaving trio out is not partial
    )


def test_a_class_declaring_both_loops_runs_under_both_without_the_option(pytester: pytest.Pytester) -> None:
    """backends = ("asyncio", "trio") and no option: each test twice; the JSON lists both loops."""
    pytester.makepyfile(test_mine=CLASS_WAY.format(backends=("asyncio", "trio")))
    result = run(pytester, "--conformance-rules", "THR-1", "--conformance-report", "r.json")
    result.assert_outcomes(passed=6)
    result.stdout.fnmatch_lines(["kit *, rules *, event loops asyncio, trio"])
    assert (report(pytester)["event_loops"], report(pytester)["loops_left_out"]) == (["asyncio", "trio"], {})


def test_a_class_declaring_an_unknown_loop_stops_at_set_up(pytester: pytest.Pytester) -> None:
    """backends = ("curio",): a set-up error naming the loop and the known ones."""
    pytester.makepyfile(test_mine=CLASS_WAY.format(backends=("curio",)))
    result = run(pytester)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stdout.fnmatch_lines(["*set-up failed: backends = ('curio',) on TestMine: unknown event loop 'curio'*"])


def test_an_asyncio_only_store_of_a_class_fails_at_set_up_under_trio(pytester: pytest.Pytester) -> None:
    """A store that declares nothing but cannot run under trio: one failed test naming trio, exit status 4."""
    pytester.makepyfile(test_mine=ASYNCIO_ONLY_CLASS)
    result = run(pytester, "--conformance-backend", "asyncio,trio")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "verdict: set-up failed: under trio, list_threads(0, 1) raised *; under asyncio it works, so if the store "
            "runs under asyncio only, declare backends = ('asyncio',) on it; no conformance verdict"
        ]
    )
    assert "violates" not in result.stdout.str()


# ── --store: a store source's declaration, and the probe ────────────────


def test_an_asyncio_only_store_fails_at_set_up_under_trio_in_seconds(pytester: pytest.Pytester) -> None:
    """--store of a store that declares nothing but cannot run under trio: one line naming trio, exit status 4."""
    started = time.monotonic()
    result = store_run(pytester, "AsyncioOnly", "--conformance-backend", "trio")
    assert time.monotonic() - started < 20
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: set-up failed: under trio, list_threads(0, 1) raised TypeError: *; under asyncio it works, so if "
            "the store runs under asyncio only, declare backends = ('asyncio',) on it"
        ]
    )
    assert len(output(result).strip().splitlines()) == 1
    assert report(pytester)["setup_error"].startswith("under trio, list_threads(0, 1) raised TypeError: ")


@pytest.mark.parametrize("target", ["Declares", "make_store"], ids=["store-class", "factory-attribute"])
def test_a_store_source_declaring_asyncio_runs_only_under_asyncio(pytester: pytest.Pytester, target: str) -> None:
    """backends on the store class or on the factory, under asyncio,trio: asyncio only, trio left out, saying why."""
    result = store_run(pytester, target, "-v", "--conformance-backend", "asyncio,trio")
    result.assert_outcomes(passed=3)
    assert "[trio" not in result.stdout.str()
    data = report(pytester)
    why = f"the store runs under asyncio only (backends = ('asyncio',) on {target})"
    assert (data["event_loops"], data["loops_left_out"]) == (["asyncio"], {"trio": why})


def test_a_store_source_declaring_asyncio_under_trio_stops_naming_both(pytester: pytest.Pytester) -> None:
    """--store of a store class declaring asyncio, under --conformance-backend trio: one line, exit status 4."""
    result = store_run(pytester, "Declares", "--conformance-backend", "trio")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: set-up failed: the store runs under asyncio only (backends = ('asyncio',) on Declares); "
            "--conformance-backend chose trio"
        ]
    )


def test_a_store_declaring_an_unknown_loop_stops_at_set_up(pytester: pytest.Pytester) -> None:
    """backends = ("curio",) on the store class: a set-up error naming it."""
    result = store_run(pytester, "Unknown")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*set-up failed: backends = ('curio',) on Unknown: unknown event loop 'curio'*"])


def test_a_store_that_opens_under_asyncio_only_names_the_loop_it_cannot_open_under(pytester: pytest.Pytester) -> None:
    """A factory that fails under trio only: today's opening error, naming trio, and how to declare asyncio."""
    result = store_run(pytester, "opens_under_asyncio_only", "--conformance-backend", "asyncio,trio")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: set-up failed: under trio, opening the store (opens_under_asyncio_only) failed: RuntimeError: "
            "no running event loop; under asyncio it works, so if the store runs under asyncio only, declare *"
        ]
    )


def test_a_probe_failing_under_every_loop_is_left_to_the_tests(pytester: pytest.Pytester) -> None:
    """list_threads raising a StorageError under asyncio and trio alike breaks a rule: the tests say which."""
    result = run(
        pytester,
        "--pyargs",
        "conformance.suite",
        "--store",
        "loop_stores.py:ListsNothing",
        "--conformance-backend",
        "asyncio,trio",
        "--conformance-rules",
        "THR-5",
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["THR-5 * failed *", "kit *, rules *, event loops asyncio, trio"])
    assert "set-up failed" not in result.stdout.str()


def test_the_store_objects_own_declaration_counts_in_the_fixture_way(pytester: pytest.Pytester) -> None:
    """A conftest `store` fixture giving a class that declares asyncio: its trio tests are skipped, left out."""
    pytester.makeconftest(
        """
        import pytest
        from loop_stores import Declares

        @pytest.fixture
        def store():
            return Declares
        """
    )
    result = run(
        pytester,
        "--pyargs",
        "conformance.suite",
        "--conformance-backend",
        "asyncio,trio",
        "--conformance-rules",
        "THR-1",
        "--conformance-report",
        "r.json",
    )
    result.assert_outcomes(passed=3, skipped=3)
    data = report(pytester)
    assert data["event_loops"] == ["asyncio"]
    assert data["loops_left_out"] == {"trio": "the store runs under asyncio only (backends = ('asyncio',) on Declares)"}
    assert data["counts"]["checked"] == 1  # THR-1, checked under asyncio: the skipped trio tests are no part of it
    assert [row["status"] for row in data["rules"] if row["id"] == "THR-1"] == ["passed"]


def test_under_xdist_the_controller_learns_the_loops_from_the_workers(pytester: pytest.Pytester) -> None:
    """-n 2: the workers run only asyncio's tests of an asyncio store, and the one JSON names the loops."""
    pytester.makepyfile(loop_stores=STORES)
    result = pytester.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        "-o",
        "asyncio_default_fixture_loop_scope=function",
        "-n",
        "2",
        "--pyargs",
        "conformance.suite",
        "--store",
        f"{Path(pytester.path, 'loop_stores.py')}:Declares",
        "--conformance-backend",
        "asyncio,trio",
        "--conformance-rules",
        "THR-1",
        "--conformance-report",
        "r.json",
    )
    result.assert_outcomes(passed=3)
    data = report(pytester)
    assert (data["event_loops"], list(data["loops_left_out"])) == (["asyncio"], ["trio"])
