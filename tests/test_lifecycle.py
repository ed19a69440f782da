"""The session's lifecycle: SIGTERM ends a run as Ctrl-C does; a store source's `cleanup` runs once at the end.

Cleanups run in `pytester` sessions in process (so no exit hook of a store hides a
cleanup that did not run); SIGTERM is sent to `python -m conformance` in a subprocess,
once the store says, in a file, that a test is blocked inside it.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
from psycopg import sql

from conformance.kit._lifecycle import TERMINATED
from conformance.kit._report import Report

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
PG_DSN = os.environ.get("CONFORMANCE_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("CONFORMANCE_REDIS_URL", "redis://127.0.0.1:6379/0")

#: Every store source here logs, to `log.jsonl` in the session's folder, each location it
#: opens a store at and each call of its cleanup.
STORES = """
    import json
    import time
    from pathlib import Path

    import anyio
    from conformance import StoreContract
    from reference_store import ReferenceStore

    LOG = Path(__file__).with_name("log.jsonl")


    def log(event, value):
        with LOG.open("a", encoding="utf-8") as out:
            out.write(json.dumps([event, value]) + "\\n")


    def cleaned(locations):
        log("cleanup", [[type(place).__name__, str(place)] for place in locations])


    def make_store(location):
        log("open", location)
        return ReferenceStore()


    async def drop(locations):
        await anyio.lowlevel.checkpoint()
        cleaned(locations)


    make_store.cleanup = drop


    class Recorded(ReferenceStore):
        '''A store class the kit opens at a location; its classmethod cleans up.'''

        def __init__(self, location=None):
            log("open", location)
            super().__init__()

        @classmethod
        def cleanup(cls, locations):
            cleaned(locations)


    class Unordered(ReferenceStore):
        '''list_threads in reverse: breaks THR-5, so `-x` stops there.'''

        async def list_threads(self, offset, limit):
            return list(reversed(await super().list_threads(offset, limit)))


    def broken(location):
        log("open", location)
        return Unordered()


    broken.cleanup = cleaned


    def unreachable(location):
        log("open", location)
        raise ConnectionError("cannot connect to db.example:5432")


    unreachable.cleanup = cleaned


    def raises(location):
        return ReferenceStore()


    def refuse(locations):
        raise RuntimeError(f"cannot drop {len(locations)} namespaces")


    raises.cleanup = refuse


    def hangs(location):
        return ReferenceStore()


    async def wait_forever(locations):
        await anyio.sleep_forever()


    hangs.cleanup = wait_forever


    def blocks(location):
        return ReferenceStore()


    def sleep(locations):
        time.sleep(5)


    blocks.cleanup = sleep


    class Waits(ReferenceStore):
        '''save_thread blocks until the run ends, after saying so in a file.'''

        async def save_thread(self, thread):
            Path("started").write_text("x", encoding="utf-8")
            while True:
                await anyio.sleep(3600)


    def waits(location):
        return Waits()


    waits.cleanup = cleaned


    class Spins(ReferenceStore):
        '''save_thread blocks without awaiting (a blocking driver), after saying so in a file.'''

        async def save_thread(self, thread):
            Path("started").write_text("x", encoding="utf-8")
            while True:
                time.sleep(0.05)


    def spins(location):
        return Spins()


    spins.cleanup = cleaned

"""

SUBCLASS = """
    from lifecycle_stores import cleaned, log
    from reference_store import ReferenceStore
    from conformance import StoreContract


    class TestRecorded(StoreContract):
        run_machines = False

        async def store(self, location):
            log("open", location)
            return ReferenceStore()

        def cleanup(self, locations):
            cleaned(locations)
"""

#: The packaged suite, for the `--store` way in.
SUITE = ("--pyargs", "conformance.suite")
#: A quick selection: ISO-2's test opens a `fresh` store beside its own; THR-1 has several tests.
SELECTION = ("--conformance-rules", "ISO-2,THR-1")


def run(pytester: pytest.Pytester, *arguments: str) -> pytest.RunResult:
    """Run pytest in-process, quietly, with `lifecycle_stores.py` beside the tests."""
    pytester.makepyfile(lifecycle_stores=textwrap.dedent(STORES))
    return pytester.runpytest_inprocess(
        "-p", "no:cacheprovider", "-o", "asyncio_default_fixture_loop_scope=function", "-q", *arguments
    )


def events(folder: Path) -> list[tuple[str, Any]]:
    log = folder / "log.jsonl"
    if not log.exists():
        return []
    return [tuple(json.loads(line)) for line in log.read_text(encoding="utf-8").splitlines()]


def cleanups(folder: Path) -> list[list[str]]:
    """The locations of each cleanup call, each checked to be a `Path`."""
    calls = [value for event, value in events(folder) if event == "cleanup"]
    for call in calls:
        assert all(kind in ("PosixPath", "WindowsPath") for kind, _ in call), call
    return [[place for _, place in call] for call in calls]


def opened(folder: Path) -> list[str]:
    return list(dict.fromkeys(str(value) for event, value in events(folder) if event == "open"))


def report(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


# ── cleanup ─────────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    "way",
    [
        [*SUITE, "--store", "lifecycle_stores.py:make_store"],
        [*SUITE, "--store", "lifecycle_stores.py:Recorded"],
        ["test_recorded.py"],
    ],
    ids=["factory-function", "store-class", "test-class"],
)
def test_cleanup_gets_every_location_once_after_a_passing_run(pytester: pytest.Pytester, way: list[str]) -> None:
    """A factory's, a store class's or a test class's `cleanup` gets every location the kit opened, once."""
    pytester.makepyfile(test_recorded=textwrap.dedent(SUBCLASS))
    result = run(pytester, *way, *SELECTION)
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    places = opened(pytester.path)
    assert cleanups(pytester.path) == [places]
    assert any(Path(place).name.startswith("fresh-") for place in places)  # the `fresh` store's
    assert any(Path(place).name.startswith("conformance-setup-") for place in places)  # the set-up check's
    assert sum(Path(place).name.startswith("test_") for place in places) > 2  # the tests' own


def test_cleanup_gets_the_state_machines_locations(pytester: pytest.Pytester) -> None:
    """A state machine opens a store per example, in a thread of its own: each location is cleaned."""
    result = run(pytester, *SUITE, "--store", "lifecycle_stores.py:make_store", "-k", "hierarchy_machine")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    places = opened(pytester.path)
    assert cleanups(pytester.path) == [places]
    assert sum(Path(place).name.startswith("example-") for place in places) > 5


def test_cleanup_runs_once_after_a_run_that_stops_at_a_failure(pytester: pytest.Pytester) -> None:
    """`-x` stops at the first failure; the cleanup still gets every location opened until then."""
    result = run(pytester, *SUITE, "--store", "lifecycle_stores.py:broken", "-x")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*violates THR-5*"])
    assert cleanups(pytester.path) == [opened(pytester.path)]


def test_cleanup_runs_after_a_set_up_failure(pytester: pytest.Pytester) -> None:
    """A store that failed to open may have made something first: the set-up check's location is cleaned."""
    result = run(pytester, *SUITE, "--store", "lifecycle_stores.py:unreachable")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*set-up failed*cannot connect to db.example:5432*"])
    assert cleanups(pytester.path) == [opened(pytester.path)]
    assert len(opened(pytester.path)) == 1


def test_a_raising_cleanup_is_a_lifecycle_failure_of_no_rule(pytester: pytest.Pytester) -> None:
    """A cleanup that raises gets its own summary line and JSON entry, fails no rule, and fails the run."""
    result = run(
        pytester, *SUITE, "--store", "lifecycle_stores.py:raises", *SELECTION, "--conformance-report", "r.json"
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        ["lifecycle: cleanup of raises failed: RuntimeError: cannot drop * namespaces", "kit *"]
    )
    data = report(pytester.path / "r.json")
    assert len(data["lifecycle_failures"]) == 1
    assert data["lifecycle_failures"][0].startswith("cleanup of raises failed: RuntimeError: cannot drop ")
    assert data["counts"]["failed"] == 0
    assert not any(test["blamed"] for row in data["rules"] for test in row["tests"])


@pytest.mark.parametrize("source", ["hangs", "blocks"], ids=["awaits-forever", "blocks"])
def test_a_cleanup_that_does_not_finish_is_cut_off_by_the_timeout(pytester: pytest.Pytester, source: str) -> None:
    """A cleanup that awaits forever, or blocks, is abandoned after `--conformance-timeout` and reported."""
    started = time.monotonic()
    timeout = ("--conformance-timeout", "1")
    result = run(pytester, *SUITE, "--store", f"lifecycle_stores.py:{source}", "--conformance-rules", "ISO-2", *timeout)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines([f"lifecycle: cleanup of {source} failed: did not finish within 1 s"])
    assert time.monotonic() - started < 30


def test_a_run_without_a_cleanup_reports_no_lifecycle_failure(pytester: pytest.Pytester) -> None:
    """A source without `cleanup` is not called: the report's `lifecycle_failures` is empty."""
    pytester.makepyfile(plain="from reference_store import ReferenceStore\n")
    result = run(pytester, *SUITE, "--store", "plain.py:ReferenceStore", *SELECTION, "--conformance-report", "r.json")
    assert result.ret == pytest.ExitCode.OK
    assert report(pytester.path / "r.json")["lifecycle_failures"] == []


def test_the_sigterm_handler_is_given_back_after_the_session(pytester: pytest.Pytester) -> None:
    """The kit's SIGTERM handler lives as long as its session."""
    before = signal.getsignal(signal.SIGTERM)
    run(pytester, *SUITE, "--store", "lifecycle_stores.py:make_store", "--conformance-rules", "ISO-2")
    assert signal.getsignal(signal.SIGTERM) is before


def test_lifecycle_failures_have_their_own_summary_lines() -> None:
    """In the summary they stand before the version and verdict lines; in JSON, under `lifecycle_failures`."""
    report = Report(kit_version="1", rules_version="2")
    report.lifecycle_failure("cleanup of make_store failed: OSError: gone", partial=False)
    lines = list(report.lines())
    assert lines[-3:-1] == ["lifecycle: cleanup of make_store failed: OSError: gone", "kit 1, rules 2"]
    assert report.to_json()["lifecycle_failures"] == ["cleanup of make_store failed: OSError: gone"]


# ── the examples leave nothing behind ───────────────────────────────────


def _postgres_leftovers() -> dict[str, int]:
    """This process's scratch schemas of the PostgreSQL example, each with the number of stores it holds."""
    try:
        conn = psycopg.connect(PG_DSN, autocommit=True, connect_timeout=2)
    except psycopg.Error as error:
        pytest.skip(f"no PostgreSQL at {PG_DSN} ({error}): start one with `pg_ctlcluster 15 main start`")
    with conn:
        schemas = conn.execute(
            "SELECT nspname, obj_description(oid, 'pg_namespace') FROM pg_namespace "
            "WHERE starts_with(nspname, 'cstore_')"
        ).fetchall()
        left = {}
        for name, comment in schemas:
            owner = json.loads(comment or "{}")
            if owner.get("pid") == os.getpid() and owner.get("host") == socket.gethostname():
                count = conn.execute(sql.SQL("SELECT count(*) FROM {}.stores").format(sql.Identifier(name))).fetchone()
                left[name] = count[0] if count else 0
        return left


def _redis_leftovers() -> dict[str, int]:
    """This process's scratch namespaces of the Redis example (registered or holding keys), each with its keys."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2, socket_timeout=30, decode_responses=True)
    try:
        owners = [str(name) for name in client.hkeys("cstore-owners")]
    except redis.RedisError as error:
        pytest.skip(f"no Redis at {REDIS_URL} ({error}): start one with `redis-server --daemonize yes`")
    try:
        mine = f"cstore-{os.getpid()}-"
        left = {f"cstore-{name}": 0 for name in owners if f"cstore-{name}".startswith(mine)}
        for key in client.scan_iter(match=f"{mine}*", count=1000):
            namespace = str(key).split(":", 1)[0]
            left[namespace] = left.get(namespace, 0) + 1
        return left
    finally:
        client.close()


@pytest.mark.parametrize(
    ("leftovers", "way"),
    [
        (_postgres_leftovers, [*SUITE, "--store", f"{EXAMPLES / 'postgres_store.py'}:make_store"]),
        (_postgres_leftovers, [str(EXAMPLES / "test_postgres_conformance.py")]),
        (_redis_leftovers, [*SUITE, "--store", f"{EXAMPLES / 'redis_store.py'}:make_store"]),
        (_redis_leftovers, [str(EXAMPLES / "test_redis_conformance.py")]),
    ],
    ids=["postgres-factory", "postgres-test-class", "redis-factory", "redis-test-class"],
)
def test_the_server_examples_leave_nothing_of_the_run_behind(
    pytester: pytest.Pytester, leftovers: Callable[[], dict[str, int]], way: list[str]
) -> None:
    """After a run in this process (so before any exit hook), no schema, row or key of the run is left."""
    before = leftovers()
    result = run(pytester, *way, "--conformance-rules", "ISO-2,DUR-1,DUR-2", "--conformance-report", "r.json")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    assert report(pytester.path / "r.json")["lifecycle_failures"] == []
    assert leftovers() == before


# ── SIGTERM ─────────────────────────────────────────────────────────────


def sigterm_once_started(command: list[str], folder: Path) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run `command` in `folder`, SIGTERM it once a file `started` appears there; its result, and seconds to end."""
    process = subprocess.Popen(command, cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 120
    while not (folder / "started").exists():  # a test is blocked where it says so
        assert process.poll() is None, "the run ended before the test started"
        assert time.monotonic() < deadline, "the test never started"
        time.sleep(0.05)
    sent = time.monotonic()
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=120)
    return subprocess.CompletedProcess(process.args, process.returncode, output), time.monotonic() - sent


@pytest.mark.parametrize(
    ("source", "arguments", "reasons"),
    [
        ("waits", ["--conformance-backend", "asyncio"], [TERMINATED]),
        ("waits", ["--conformance-backend", "trio"], [TERMINATED]),
        ("spins", ["--conformance-backend", "asyncio"], [TERMINATED]),
        ("waits", ["-k", "hierarchy_machine"], ["narrowed by -k 'hierarchy_machine'", TERMINATED]),
    ],
    ids=["asyncio", "trio", "blocking-without-await", "in-a-state-machine"],
)
def test_sigterm_ends_the_run_as_ctrl_c_does(
    tmp_path: Path, source: str, arguments: list[str], reasons: list[str]
) -> None:
    """SIGTERM mid-test: the summary, a partial JSON report that says so, exit status 2, and the cleanup."""
    (tmp_path / "stores.py").write_text(textwrap.dedent(STORES), encoding="utf-8")
    command = [sys.executable, "-m", "conformance", "-q", "-p", "no:cacheprovider", "--store", f"stores.py:{source}"]
    done, seconds = sigterm_once_started([*command, "--conformance-report", "r.json", *arguments], tmp_path)
    assert done.returncode == pytest.ExitCode.INTERRUPTED, done.stdout[-3000:]
    verdicts = [line for line in done.stdout.splitlines() if line.startswith("verdict: ")]
    assert len(verdicts) == 1, done.stdout[-3000:]
    assert verdicts[0].startswith("verdict: partial run: ")
    assert f"; no conformance verdict ({'; '.join(reasons)}); " in verdicts[0]
    data = report(tmp_path / "r.json")
    assert (data["complete"], data["conforms"], data["partial_reasons"]) == (False, False, reasons)
    assert len(cleanups(tmp_path)) == 1
    assert seconds < 60  # ended by the signal, not by the test's timeout


def test_sigterm_outside_a_kit_run_does_what_it_did_before(pytester: pytest.Pytester) -> None:
    """A session that runs no contract test is killed by SIGTERM as if the kit were not installed."""
    pytester.makepyfile(
        test_own="""
        import time
        from pathlib import Path

        def test_slow():
            Path("started").write_text("x")
            time.sleep(120)
        """
    )
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_own.py"]
    done, _ = sigterm_once_started(command, pytester.path)
    assert done.returncode == -signal.SIGTERM, done.stdout
    assert "conformance summary" not in done.stdout
