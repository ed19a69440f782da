"""Progress of long state-machine runs: counted, rate-limited, thorough profile only, shown past capturing."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import rule as step

from conformance import Thread, open_store
from conformance.kit import _stateful
from conformance.kit._stateful import Progress, StoreMachine, run_machine, terminal_line
from reference_store import ReferenceStore


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_progress_writes_at_most_once_per_interval() -> None:
    """Counting is free; a line goes out only when `interval` seconds passed since the last one."""
    clock = FakeClock()
    lines: list[str] = []
    progress = Progress("M", planned=300, write=lines.append, interval=5.0, clock=clock)
    progress.example()
    for _ in range(10):
        progress.call()
    assert lines == []
    clock.now += 5.0
    progress.call()
    assert lines == ["conformance: M: 1 examples of 300 planned, 11 store calls, 5s"]
    clock.now += 4.9
    progress.example()
    assert len(lines) == 1
    clock.now += 0.1
    progress.example()
    assert lines[-1] == "conformance: M: 3 examples of 300 planned, 11 store calls, 10s"
    progress.finish()
    assert lines[-1] == "conformance: M: 3 examples of 300 planned, 11 store calls, 10s: done"


def test_a_short_run_writes_nothing() -> None:
    """A run that ends within the interval writes no progress and no closing line."""
    lines: list[str] = []
    progress = Progress("M", planned=30, write=lines.append, interval=5.0, clock=FakeClock())
    progress.example()
    progress.call()
    progress.finish()
    assert lines == []


class SaveMachine(StoreMachine):
    """Saves threads: a store call per step."""

    @step(number=st.integers(0, 3))
    def save(self, number: int) -> None:
        self.call(self.store.save_thread, Thread(id=f"t{number}"))


TINY = {"max_examples": 4, "stateful_step_count": 3, "database": None}


def _run(
    profile: str,
    tmp_path: Path,
    lines: list[str],
    machine: type[StoreMachine] = SaveMachine,
    seed: int | None = None,
) -> None:
    run_machine(
        machine,
        open_store=lambda folder: open_store(ReferenceStore),
        backend="asyncio",
        location=tmp_path,
        capabilities=frozenset(),
        profile=profile,
        timeout=10.0,
        progress=lines.append,
        progress_interval=0.0,
        seed=seed,
    )


def test_thorough_runs_report_examples_and_calls(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Under the thorough profile, each example and store call may report; the counts only grow."""
    monkeypatch.setitem(_stateful.PROFILES, "thorough", TINY)
    lines: list[str] = []
    _run("thorough", tmp_path, lines)
    assert lines[0].startswith("conformance: SaveMachine: 1 examples of 4 planned, 0 store calls, ")
    assert lines[-1].endswith(": done")
    assert any(" 4 examples of 4 planned" in line for line in lines)
    assert any(" 1 store calls" in line for line in lines)


@pytest.mark.parametrize("profile", ["quick", "ci"])
def test_every_profile_reports_a_run_that_outlasts_the_interval(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, profile: str
) -> None:
    """The default and ci profiles report progress too, once a run outlasts the interval (here: at once)."""
    monkeypatch.setitem(_stateful.PROFILES, profile, {**TINY, "derandomize": True})
    lines: list[str] = []
    _run(profile, tmp_path, lines)
    assert lines[0].startswith("conformance: SaveMachine: 1 examples of 4 planned, ")
    assert lines[-1].endswith(": done")
    assert not [line for line in lines if "shrinking" in line], "a passing run said it was shrinking a failure"


class FailingMachine(StoreMachine):
    """Fails once it has saved thread t3: Hypothesis then shrinks the failure."""

    @step(number=st.integers(0, 3))
    def save(self, number: int) -> None:
        self.call(self.store.save_thread, Thread(id=f"t{number}"))
        assert number != 3, "t3 saved"


def test_progress_says_when_it_is_shrinking_a_failure(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Once an example failed, the progress lines say the run is shrinking it."""
    monkeypatch.setitem(_stateful.PROFILES, "ci", {**TINY, "max_examples": 20, "derandomize": True})
    lines: list[str] = []
    with pytest.raises(AssertionError, match="t3 saved"):
        _run("ci", tmp_path, lines, FailingMachine)
    assert not lines[0].endswith("shrinking a failure")
    assert lines[-2].endswith(", shrinking a failure")


def test_a_thorough_failure_names_the_seed_that_reproduces_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """thorough draws at random; a failure carries the seed, and that seed finds the same failure again."""
    monkeypatch.setitem(_stateful.PROFILES, "thorough", {**TINY, "max_examples": 20})

    def failure(seed: int | None) -> BaseException:
        with pytest.raises(AssertionError) as caught:
            _run("thorough", tmp_path, [], FailingMachine, seed)
        return caught.value

    notes = getattr(failure(None), "__notes__", [])
    seeds = [note.rsplit(" ", 1)[1] for note in notes if "rerun with --conformance-seed" in note]
    assert len(seeds) == 1
    again = getattr(failure(int(seeds[0])), "__notes__", [])
    assert any(f"drew from seed {seeds[0]}:" in note for note in again)


def test_a_loaded_hypothesis_profile_does_not_change_the_kits_profiles() -> None:
    """A derandomized profile loaded by the user's conftest leaves thorough random, and vice versa."""
    previous = settings._current_profile
    settings.register_profile("conformance-test-fixed", derandomize=True)
    settings.register_profile("conformance-test-random", derandomize=False)
    try:
        settings.load_profile("conformance-test-fixed")
        assert _stateful.machine_settings("thorough").derandomize is False
        settings.load_profile("conformance-test-random")
        assert _stateful.machine_settings("ci").derandomize is True
        assert _stateful.machine_settings("quick").database is None
    finally:
        settings.load_profile(previous or "default")


def test_terminal_line_without_a_session_goes_to_stderr(capfd: pytest.CaptureFixture[str]) -> None:
    """Outside a pytest session the line goes to the process's standard error."""
    terminal_line(None)("conformance: hello")
    assert capfd.readouterr().err == "conformance: hello\n"


#: No cache folder; pytest-asyncio's loop-scope warning settled (warnings are errors here).
QUIET = ("-p", "no:cacheprovider", "-o", "asyncio_default_fixture_loop_scope=function")

MACHINE_MODULE = """
    from hypothesis import strategies as st
    from hypothesis.stateful import rule as step

    from conformance import Thread
    from conformance.kit._stateful import StoreMachine, stateful
    from reference_store import ReferenceStore


    class SaveMachine(StoreMachine):
        @step(number=st.integers(0, 3))
        def save(self, number):
            self.call(self.store.save_thread, Thread(id=f"t{number}"))


    class TestMachine:
        def store(self):
            return ReferenceStore()

        test_save_machine = stateful(SaveMachine, "THR-2")
"""


def test_progress_shows_on_the_terminal_despite_capturing(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In a real session with output capturing on (the default), the progress lines reach the terminal."""
    monkeypatch.setitem(_stateful.PROFILES, "thorough", TINY)
    monkeypatch.setattr(_stateful, "PROGRESS_INTERVAL", 0.0)
    pytester.makepyfile(test_machine=MACHINE_MODULE)
    result = pytester.runpytest_inprocess(*QUIET, "--capture=fd", "--conformance-profile", "thorough")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["conformance: SaveMachine: 1 examples of 4 planned, 0 store calls, *", "*: done"])
    monkeypatch.setattr(_stateful, "PROGRESS_INTERVAL", 3600.0)
    quiet = pytester.runpytest_inprocess(*QUIET, "--conformance-profile", "quick")
    quiet.assert_outcomes(passed=1)
    assert "store calls" not in quiet.stdout.str()
