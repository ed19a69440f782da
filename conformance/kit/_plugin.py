"""The pytest plugin (entry point `pytest11`): options, markers, the kit fixture, the report.

Installed in any project it only registers its options and markers: nothing is
collected or run until a test class subclasses `StoreContract`, or the suite is
named (`python -m conformance`, `pytest --pyargs conformance.suite`).

Each session gets one `_KitSession` plugin object holding what the run planned and
what came of it. Under pytest-xdist the workers run the tests and the controller
alone gathers every worker's reports, prints the one summary and writes the one
JSON report.
"""

from __future__ import annotations

import importlib.util
import re
import tempfile
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from functools import cache, partial
from pathlib import Path
from typing import Any

import pytest

# Contract tests and machines live in the package, not in a test folder: ask pytest to
# rewrite their asserts (an editable install is not rewritten otherwise), before they load.
pytest.register_assert_rewrite(
    "conformance.kit._contract_tests", "conformance.kit._machines", "conformance.kit._scenarios"
)

from conformance._version import RULES_VERSION, __version__
from conformance.kit._command import add_store_command_option, store_command_source
from conformance.kit._lifecycle import PLUGIN_NAME, Lifecycle, interruption
from conformance.kit._loops import (
    BACKENDS,
    LOOP_PROPERTY,
    LOOPS_LEFT_OUT_PROPERTY,
    check_loops,
    declared_loops,
    plan_loops,
)
from conformance.kit._report import Outcome, Report, TestResult
from conformance.kit._rules import CAPABILITIES, RULES
from conformance.kit._runner import (
    CALLS_PROPERTY,
    CAPABILITIES_PROPERTY,
    HANG_RULE_PROPERTY,
    LIFECYCLE_PROPERTY,
    NOT_CARRIED_PROPERTY,
    SETUP_PROPERTY,
    SKIPPED_PROPERTY,
    TIMEOUT_PROPERTY,
    Kit,
    SetupResults,
)
from conformance.kit._sources import SetupError, StoreSource
from conformance.kit._stateful import terminal_line
from conformance.kit._target import TargetError, load_target
from conformance.kit._violation import BrokenCall, StoreLifecycleError, blamed_rules

PROFILES = ("quick", "ci", "thorough")
#: After this many contract tests in a row time out, the store hangs: the run stops, partial.
HANGS_TO_STOP = 3
#: `user_properties` name of the rules a failed test breaks (read by the report, also across xdist).
BLAME_PROPERTY = "conformance_blame"
#: A store whose calls average this many milliseconds or more is called slow on the terminal.
SLOW_CALL_MS = 100.0
#: Seconds between two "the store is slow" lines, at least.
SLOW_NOTICE_INTERVAL = 30.0
#: Store output shown with a failure may not begin a line with the kit's `verdict:` (`_unforgeable`).
_VERDICT_AT_LINE_START = re.compile(r"^(\s*)verdict:", re.MULTILINE)


@dataclass(slots=True)
class KitConfig:
    """Parsed `--conformance-*` options of one session, and the report it builds."""

    #: The event loops `--conformance-backend` chose; None when not given (each store's declared ones run).
    backends: tuple[str, ...] | None = None
    timeout: float = 60.0
    capabilities: frozenset[str] | None = None
    baseline: dict[str, str] = field(default_factory=dict)
    selected: frozenset[str] | None = None
    profile: str = "quick"
    seed: int | None = None
    report_path: Path | None = None
    report: Report = field(default_factory=Report)
    #: Per test class and event loop, the set-up check's result (see `Kit.prepare`).
    setups: SetupResults = field(default_factory=dict)
    #: The loops the `--store` source's tests run under, from the set-up check at session start.
    source_loops: tuple[str, ...] | None = None
    #: True once the session selected a contract test (else no summary is printed).
    active: bool = False
    #: Per test class (a store), its contract tests in a row that timed out.
    hangs: dict[object, int] = field(default_factory=dict)
    #: Test classes whose store hangs, with why: their remaining tests are skipped.
    hung: dict[object, str] = field(default_factory=dict)
    #: The test classes (stores) the session runs contract tests of.
    stores: set[object] = field(default_factory=set)


KIT_CONFIG = pytest.StashKey[KitConfig]()


def pytest_addoption(parser: pytest.Parser) -> None:
    """Register `--store`, `--capabilities` and the `--conformance-*` options."""
    group = parser.getgroup("conformance", "thread/run store conformance kit")
    group.addoption(
        "--store",
        dest="conformance_store",
        metavar="TARGET",
        help="the store to test: module:attr or path/to/file.py:attr (a store class, a factory, "
        "an awaitable or async context manager factory); provides the `store` fixture",
    )
    add_store_command_option(group)
    group.addoption(
        "--capabilities",
        dest="conformance_capabilities",
        metavar="LIST",
        help=f"capabilities the store declares: a comma list of {', '.join(CAPABILITIES)}, or all, or none "
        "(default: what the test class or store declares)",
    )
    group.addoption(
        "--conformance-profile",
        choices=PROFILES,
        default="quick",
        help="Hypothesis effort: quick (default) and ci are derandomized; thorough explores at random",
    )
    group.addoption(
        "--conformance-seed",
        type=int,
        metavar="N",
        help="the seed of a thorough run's random exploration (a failing thorough run prints its seed)",
    )
    group.addoption("--conformance-report", metavar="PATH", help="write the rule-by-rule report as JSON to PATH")
    group.addoption(
        "--conformance-baseline",
        metavar="FILE",
        help="rules known to fail, one 'RULE-ID: reason' per line; their tests may fail, the run stays green",
    )
    group.addoption(
        "--conformance-rules",
        metavar="IDS",
        help="run only the tests of these rules or areas, comma-separated (DEL-3,QRY): a partial run",
    )
    group.addoption(
        "--conformance-timeout",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help=f"fail a store call that takes longer (default 60); {HANGS_TO_STOP} timeouts in a row stop the run",
    )
    group.addoption(
        "--conformance-backend",
        metavar="NAMES",
        help="event loops to run each contract test under: asyncio, trio, or asyncio,trio; a store that "
        "declares backends runs only under those (default: the loops it declares, else asyncio)",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Register markers, check and parse the options, and provide `store` when `--store` is given."""
    config.addinivalue_line("markers", "rule(*ids, requires=None, ungated=()): the contract rules a test verifies")
    config.addinivalue_line("markers", "conformance_stateful: a Hypothesis state machine of the kit")
    store_target: str | None = config.getoption("conformance_store")
    base = config.invocation_params.dir
    baseline = _parse_baseline(config.getoption("conformance_baseline"), base)
    kit = KitConfig(
        backends=_parse_backends(config.getoption("conformance_backend")),
        timeout=_parse_timeout(config.getoption("conformance_timeout")),
        capabilities=_parse_capabilities(config.getoption("conformance_capabilities")),
        baseline=baseline,
        selected=_parse_selection(config.getoption("conformance_rules")),
        profile=config.getoption("conformance_profile"),
        seed=config.getoption("conformance_seed"),
        report_path=_writable(config.getoption("conformance_report"), base),
        report=Report(store=store_target, kit_version=__version__, rules_version=RULES_VERSION, baseline=baseline),
    )
    config.stash[KIT_CONFIG] = kit
    from_controller: dict[str, Any] = getattr(config, "workerinput", {})
    if "conformance_loops" in from_controller:  # an xdist worker: the controller checked the `--store` source
        kit.source_loops = tuple(from_controller["conformance_loops"])
    source: StoreSource = None
    if store_target is not None:
        try:
            source = load_target(store_target, base=base)
        except TargetError as error:
            raise pytest.UsageError(str(error)) from None
        config.pluginmanager.register(_StoreFixture(source), "conformance-store")
    command = store_command_source(config)
    if command is not None:
        kit.report.store = f"command: {config.getoption('conformance_store_command')}"
        source = command
        config.pluginmanager.register(_StoreFixture(command), "conformance-store")
    config.pluginmanager.register(_KitSession(config, kit, source), "conformance-session")
    config.pluginmanager.register(_VerdictLine(config, kit), "conformance-verdict")
    backend = (kit.backends or ("asyncio",))[0]  # an async cleanup runs under the first chosen loop
    lifecycle = Lifecycle(config, kit.report, timeout=kit.timeout, backend=backend, running=lambda: kit.active)
    config.pluginmanager.register(lifecycle, PLUGIN_NAME)


class _StoreFixture:
    """Provides the `store` fixture from `--store`."""

    def __init__(self, source: StoreSource) -> None:
        self.source = source

    @pytest.fixture
    def store(self) -> StoreSource:
        """The store source named by `--store`."""
        return self.source


def _is_worker(config: pytest.Config) -> bool:
    """True in a pytest-xdist worker: it runs tests, the controller reports them."""
    return hasattr(config, "workerinput")


@cache
def _contract_tests() -> dict[str, tuple[str, ...]]:
    """Every contract test of `StoreContract` by function name, with the rules it is tagged with."""
    from conformance.kit._contract_tests import StoreContract

    found = {}
    for name in dir(StoreContract):
        marks = getattr(getattr(StoreContract, name), "pytestmark", []) if name.startswith("test") else []
        rules = tuple(dict.fromkeys(rule_id for mark in marks if mark.name == "rule" for rule_id in mark.args))
        if rules:
            found[name] = rules
    return found


def _owner_and_name(nodeid: str) -> tuple[str, str]:
    """`path::Class` and `test_x` of `path::Class::test_x[params]` (params may hold `::` themselves)."""
    owner, _, name = nodeid.split("[", 1)[0].rpartition("::")
    return owner, name


class _KitSession:
    """One session's kit: selection, blame, the hang counter, completeness and the report."""

    def __init__(self, config: pytest.Config, kit: KitConfig, source: StoreSource) -> None:
        self.config = config
        self.kit = kit
        self.source = source
        #: When the terminal last said the store is slow (`_note_slow_store`).
        self.slow_noted: float | None = None

    # ── start: fail fast on a store that cannot be tested ───────────────

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        """Check the `--store` source before any test, under each event loop the run will use:
        one line and exit status 4 when it cannot be tested."""
        if self.source is None or _is_worker(self.config):
            return
        kit = self.kit
        try:
            checked = check_loops(
                lambda loop, probe: Kit.check_under(self.source, loop, timeout=kit.timeout, probe=probe),
                chosen=kit.backends,
                declared=declared_loops(self.source),
            )
        except SetupError as error:
            kit.report.setup_error = str(error)
            self._write_json()
            raise pytest.UsageError(f"set-up failed: {error}") from None
        kit.source_loops = checked.plan.loops
        kit.report.loops_left_out.update(checked.plan.left_out)
        # What the store declares, until a test says otherwise (a test class may declare its own).
        kit.report.capabilities = kit.capabilities if kit.capabilities is not None else checked.capabilities

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        """On the xdist controller: tell each worker the loops the `--store` source runs under."""
        if self.kit.source_loops is not None:
            node.workerinput["conformance_loops"] = list(self.kit.source_loops)

    # ── collection: select, order, plan ─────────────────────────────────

    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        """Apply `--conformance-rules`, tag JUnit properties with rule IDs, order the tests, plan the run."""
        kit = self.kit
        kept: list[pytest.Item] = []
        deselected: list[pytest.Item] = []
        for item in items:
            rule_ids = _rule_ids(item)
            if not rule_ids:
                kept.append(item)
                continue
            kit.active = True
            owner = getattr(item, "cls", None)
            machine_off = item.get_closest_marker("conformance_stateful") and not getattr(owner, "run_machines", True)
            if machine_off or (
                kit.selected is not None
                and not any(rule_id in kit.selected or RULES[rule_id].area in kit.selected for rule_id in rule_ids)
            ):
                deselected.append(item)
                continue
            for rule_id in rule_ids:
                item.user_properties.append(("rule", rule_id))
            kept.append(item)
        if deselected:
            config.hook.pytest_deselected(items=deselected)
        items[:] = sorted(kept, key=partial(_run_order, machines_first=_is_worker(config)))

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        """Plan the contract tests left after every deselection (-k, -m, --conformance-rules, ...)."""
        for item in session.items:
            if _rule_ids(item):
                self.kit.report.plan(item.nodeid, tuple(_rule_ids(item)))
                self.kit.stores.add(getattr(item, "cls", None))

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        """On the xdist controller: plan the contract tests a worker collected (every worker collects the same)."""
        tests = _contract_tests()
        for nodeid in ids:
            rules = tests.get(_owner_and_name(nodeid)[1])
            if rules is not None:
                self.kit.active = True
                self.kit.report.plan(nodeid, rules)

    # ── each test: blame, baseline, hangs ───────────────────────────────

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
        """Name the broken rules under a failing contract test; a baselined rule's failure is a known one."""
        report = yield
        rule_ids = tuple(_rule_ids(item))
        if not rule_ids:
            return report
        report.sections = [(title, _unforgeable(content)) for title, content in report.sections]
        error = call.excinfo.value if call.excinfo is not None else None
        lifecycle_only = isinstance(error, StoreLifecycleError) or (
            error is not None and _is_hang(item) and any(name == LIFECYCLE_PROPERTY for name, _ in item.user_properties)
        )
        if report.failed and lifecycle_only:
            # Opening or closing the store failed or hung: no rule's failure, but the run is partial.
            report.sections.append(("conformance lifecycle", "the store's lifecycle failed: no rule is blamed"))
        elif report.failed and not any(name == SETUP_PROPERTY for name, _ in item.user_properties):
            # A store that cannot be tested breaks no rule: the set-up failure says why.
            hang_rules = tuple(str(value) for name, value in item.user_properties if name == HANG_RULE_PROPERTY)
            if hang_rules:  # a call that answers to other rules hung: it breaks those
                error = BrokenCall(hang_rules, "the call hung")
            blamed = blamed_rules(rule_ids, error)
            report.user_properties += [(BLAME_PROPERTY, rule_id) for rule_id in blamed]
            lines = [f"violates {rule_id}: {RULES[rule_id].text}" for rule_id in blamed]
            report.sections.append(("conformance rules", "\n".join(lines)))
            known = [rule_id for rule_id in blamed if rule_id in self.kit.baseline or RULES[rule_id].warning]
            if report.when == "call" and len(known) == len(blamed):
                report.outcome = "skipped"
                report.wasxfail = "; ".join(_known_because(rule_id, self.kit.baseline) for rule_id in known)
        if report.when == "call":
            self._count_hang(item, _is_hang(item))
        return report

    def _count_hang(self, item: pytest.Item, timed_out: bool) -> None:
        """Stop the run once a store's contract tests time out `HANGS_TO_STOP` times in a row.

        In a session of several stores (test classes), only that store's remaining tests
        are skipped, and the run goes on for the others.
        """
        kit, owner = self.kit, getattr(item, "cls", None)
        kit.hangs[owner] = kit.hangs.get(owner, 0) + 1 if timed_out else 0
        if kit.hangs[owner] < HANGS_TO_STOP or owner in kit.hung:
            return
        reason = (
            f"the store hangs: {kit.hangs[owner]} contract tests in a row had a store call run past {kit.timeout:g} s"
        )
        if len(kit.stores) > 1:
            kit.hung[owner] = f"{getattr(owner, '__name__', owner)}: {reason}"
            kit.report.stop(reason, store=_owner_and_name(item.nodeid)[0], by_store=True)
        else:
            kit.report.stop(reason, by_store=True)
            item.session.shouldstop = reason

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Record each contract test's outcome (here, or on the xdist controller from every worker)."""
        rule_ids = tuple(str(value) for name, value in report.user_properties if name == "rule")
        outcome = _outcome(report)
        if not rule_ids or outcome is None:
            return
        kit = self.kit
        kit.active = True
        properties = dict(report.user_properties)
        if CAPABILITIES_PROPERTY in properties:
            capabilities = frozenset(name for name in str(properties[CAPABILITIES_PROPERTY]).split(",") if name)
            kit.report.capabilities = capabilities
            kit.report.store_capabilities[_owner_and_name(report.nodeid)[0]] = capabilities
        if SETUP_PROPERTY in properties:  # a store that cannot be tested breaks no rule: its test is no outcome
            kit.report.setup_error = str(properties[SETUP_PROPERTY])
            return
        if _record_loops(kit, report):
            return
        blamed = tuple(str(value) for name, value in report.user_properties if name == BLAME_PROPERTY)
        lifecycle = str(properties.get(LIFECYCLE_PROPERTY, "")) if outcome == "failed" else ""
        if lifecycle:
            kit.report.lifecycle_failure(f"{lifecycle} (in {report.nodeid})")
        if CALLS_PROPERTY in properties and report.when == "call":
            count, _, seconds = str(properties[CALLS_PROPERTY]).partition(":")
            kit.report.add_calls(int(count), float(seconds))
            self._note_slow_store()
        kit.report.add(
            TestResult(
                nodeid=report.nodeid,
                rules=rule_ids,
                outcome=outcome,
                message=_message(report),
                duration=report.duration,
                blamed=blamed if outcome in ("failed", "xfailed") else (),
                capability_skip=outcome == "skipped"
                and (SKIPPED_PROPERTY in properties or NOT_CARRIED_PROPERTY in properties),
                lifecycle=lifecycle,
            )
        )

    def _note_slow_store(self) -> None:
        """Say on the terminal, now and then, that a run is slow because the store's calls are."""
        report, now = self.kit.report, time.monotonic()
        if report.calls < 20 or report.call_average_ms() < SLOW_CALL_MS:
            return
        if self.slow_noted is not None and now - self.slow_noted < SLOW_NOTICE_INTERVAL:
            return
        self.slow_noted = now
        terminal_line(self.config)(
            f"conformance: the store is slow: its calls average {report.call_average_ms():.0f} ms "
            f"({report.calls} calls so far)"
        )

    # ── the end: completeness, exit status, summary, JSON ───────────────

    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        """A run cut short (Ctrl-C, SIGTERM, a store that hangs, xdist stopping) is partial."""
        reason = str(excinfo.value).strip()
        self.kit.report.stop(reason if reason and excinfo.type is not KeyboardInterrupt else interruption(self.config))

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        """Judge completeness, set the exit status the verdict asks for, and write the JSON report."""
        kit = self.kit
        if not kit.active or _is_worker(self.config):
            return
        report = kit.report
        for name, rules in _contract_tests().items():
            for rule_id in rules:
                report.expected.setdefault(rule_id, set()).add(name)
        for reason in (session.shouldfail, session.shouldstop):
            if reason:
                report.stop(str(reason))
        for store, reason in _narrowing(self.config, report.planned):
            report.narrow(reason, store=store)
        if report.setup_error is not None:
            session.exitstatus = pytest.ExitCode.USAGE_ERROR
        elif session.exitstatus == pytest.ExitCode.OK and (
            report.stale_baseline() or report.counts()["failed"] or report.partial_by_store()
        ):
            # 0 only for a run that conforms, or one the user narrowed in which nothing failed.
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
        self._write_json()

    def _write_json(self) -> None:
        if self.kit.report_path is not None:
            self.kit.report.write_json(self.kit.report_path)

    def pytest_terminal_summary(self, terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
        """Print the rule-by-rule summary and the verdict."""
        if not self.kit.active or _is_worker(config):
            return
        terminalreporter.write_sep("=", "conformance summary")
        for line in self.kit.report.lines():
            if not line.startswith("verdict: "):  # the verdict ends the run (`pytest_sessionfinish`)
                terminalreporter.write_line(line)
        if self.kit.report_path is not None:
            terminalreporter.write_line(f"report written to {self.kit.report_path}")


class _VerdictLine:
    """Prints the verdict as the run's last line, after pytest's own summary line."""

    def __init__(self, config: pytest.Config, kit: KitConfig) -> None:
        self.config = config
        self.kit = kit

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> Generator[None, None, None]:
        """After every other plugin's end of session (pytest's `N passed in 3s` line), the verdict."""
        yield
        if not self.kit.active or _is_worker(self.config):
            return
        terminal = self.config.pluginmanager.get_plugin("terminalreporter")
        if terminal is not None:
            terminal.write_line(f"verdict: {self.kit.report.verdict()}")


def _is_hang(item: pytest.Item) -> bool:
    """True when a store call (or opening or closing the store) in `item` ran past the timeout."""
    return any(name == TIMEOUT_PROPERTY for name, _ in item.user_properties)


def _unforgeable(text: str) -> str:
    """Store output (captured with a failure) with no line beginning `verdict:`: only the kit writes those."""
    return _VERDICT_AT_LINE_START.sub(r"\1[store output] verdict:", text)


def _narrowing(config: pytest.Config, planned: dict[str, tuple[str, ...]]) -> list[tuple[str | None, str]]:
    """Why the planned tests are fewer than the whole kit: the options that narrowed it (store None),
    and what is left out of each store (test class `path::Class`)."""
    reasons: list[str] = []
    for option, flag in (("keyword", "-k"), ("markexpr", "-m")):
        value = config.getoption(option, default="")
        if value:
            reasons.append(f"narrowed by {flag} {value!r}")
    if config.getoption("conformance_rules"):
        reasons.append(f"narrowed by --conformance-rules {config.getoption('conformance_rules')}")
    if config.getoption("deselect", default=None):
        reasons.append("narrowed by --deselect")
    if config.getoption("lf", default=False):
        reasons.append("narrowed by --last-failed")
    if any("::" in arg for arg in config.args):
        reasons.append("narrowed to named test ids")
    if reasons:
        return [(None, reason) for reason in reasons]  # what those options leave out goes without saying
    every = set(_contract_tests())
    left: list[tuple[str | None, str]] = []
    classes: dict[str, set[str]] = {}
    for nodeid in planned:
        owner, name = _owner_and_name(nodeid)
        classes.setdefault(owner, set()).add(name)
    for owner, names in classes.items():
        left_out = every - names
        if left_out:
            machines = [name for name in left_out if name.endswith("_machine")]
            what = "its state machines" if len(machines) == len(left_out) else f"{len(left_out)} contract tests"
            left.append((owner, f"{owner.rsplit('::', 1)[-1]} leaves out {what}"))
    return left


@pytest.fixture
def conformance_backend(request: pytest.FixtureRequest) -> str:
    """The event loop a contract test runs under (parametrized when several are chosen)."""
    param: str | None = getattr(request, "param", None)
    return param or _class_loops(request.config.stash[KIT_CONFIG], request.cls)[0]


@pytest.fixture
def conformance_kit(request: pytest.FixtureRequest, tmp_path: Path, conformance_backend: str) -> Kit:
    """Runs a contract test body against a fresh store (see `conformance.rule`)."""
    kit_config = request.config.stash[KIT_CONFIG]
    callspec = getattr(request.node, "callspec", None)  # a parametrized test's: its loop is fixed
    return Kit(
        request,
        backend=conformance_backend,
        timeout=kit_config.timeout,
        capabilities=kit_config.capabilities,
        location=tmp_path,
        profile=kit_config.profile,
        setups=kit_config.setups,
        hung=kit_config.hung,
        seed=kit_config.seed,
        chosen=kit_config.backends,
        loop_fixed=callspec is not None and "conformance_backend" in callspec.params,
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run contract tests once per event loop of their store, when it runs under several."""
    loops = _class_loops(metafunc.config.stash[KIT_CONFIG], metafunc.cls)
    if "conformance_backend" in metafunc.fixturenames and len(loops) > 1:
        metafunc.parametrize("conformance_backend", loops, indirect=True)


def _class_loops(kit: KitConfig, owner: type | None) -> tuple[str, ...]:
    """The loops a test class's tests run under, as far as collection knows: the class's `backends`,
    else the `--store` source's, against `--conformance-backend`. A store's own declaration, seen
    at set-up, may leave some out (`Kit.prepare`); a declaration that does not fit fails there."""
    try:
        declared = declared_loops(owner)
        if declared is None and kit.source_loops is not None:
            return kit.source_loops
        return plan_loops(kit.backends, declared).loops
    except SetupError:
        return kit.backends or ("asyncio",)


def _record_loops(kit: KitConfig, report: pytest.TestReport) -> bool:
    """Record the loop a contract test ran under and the chosen loops its store leaves out;
    True when the test's own loop is one of those: the test is no part of the run."""
    loop: str | None = None
    left_out: set[str] = set()
    for name, value in report.user_properties:
        if name == LOOPS_LEFT_OUT_PROPERTY:
            left, _, why = str(value).partition(": ")
            left_out.add(left)
            known = kit.report.loops_left_out.get(left)
            if known is None or why not in known.split("; "):
                kit.report.loops_left_out[left] = why if known is None else f"{known}; {why}"
        elif name == LOOP_PROPERTY:
            loop = str(value)
    if loop in left_out:
        kit.report.planned.pop(report.nodeid, None)
        return True
    if loop is not None and report.when == "call" and loop not in kit.report.event_loops:
        kit.report.event_loops[:] = [name for name in BACKENDS if name in {loop, *kit.report.event_loops}]
    return False


def _rule_ids(item: pytest.Item) -> list[str]:
    ids: list[str] = []
    for mark in item.iter_markers("rule"):
        ids += [rule_id for rule_id in mark.args if rule_id not in ids]
    return ids


#: Each rule's place in the spec, which is also the order its tests run in.
_SPEC_ORDER = {rule_id: place for place, rule_id in enumerate(RULES)}


def _run_order(item: pytest.Item, *, machines_first: bool = False) -> tuple[bool, int]:
    """Contract tests in spec order of the rule each is about (its first tag; later tags name
    rules it checks on the way, blamed only when those checks fail), so a rule's own tests run
    before the cross-cutting ones (ATO, CON, ...) that touch it, and with -x the first failure
    names the most specific rule; the state machines go last, being slower than the focused
    tests and less precise.

    Under pytest-xdist (`machines_first`) the machines go first instead: they are the
    longest tests, and started last they would leave one worker running them alone.
    """
    rule_ids = _rule_ids(item)
    place = _SPEC_ORDER[rule_ids[0]] if rule_ids else -1
    stateful = item.get_closest_marker("conformance_stateful") is not None
    return stateful != machines_first, place


def _outcome(report: pytest.TestReport) -> Outcome | None:
    wasxfail = hasattr(report, "wasxfail")
    if report.failed:
        return "failed"
    if report.skipped:
        return "xfailed" if wasxfail else "skipped"
    if report.when == "call":
        return "xpassed" if wasxfail else "passed"
    return None


def _message(report: pytest.TestReport) -> str:
    if hasattr(report, "wasxfail") and not report.failed:
        return str(report.wasxfail)
    longrepr = report.longrepr
    if isinstance(longrepr, tuple):
        return str(longrepr[2]).removeprefix("Skipped: ")
    crash = getattr(longrepr, "reprcrash", None)
    if crash is not None:
        return str(crash.message).removeprefix("Failed: ")
    return str(longrepr or "")


def iter_rule_ids(item: pytest.Item) -> Iterator[str]:
    """The rule IDs a collected test verifies (for tools built on the plugin)."""
    yield from _rule_ids(item)


def _writable(value: str | None, base: Path) -> Path | None:
    """The report path, checked writable now rather than after the whole run."""
    if value is None:
        return None
    path = (base / value).resolve()
    try:
        if path.is_dir():
            raise IsADirectoryError(f"{path} is a directory")
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", suffix=".check"):
            pass
    except OSError as error:
        raise pytest.UsageError(f"--conformance-report {value}: cannot write there: {error}") from None
    return path


def _parse_backends(value: str | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    names = tuple(name.strip() for name in value.split(",") if name.strip())
    unknown = [name for name in names if name not in BACKENDS]
    if not names or unknown:
        raise pytest.UsageError(f"--conformance-backend {value!r}: choose from {', '.join(BACKENDS)}")
    missing = [name for name in names if importlib.util.find_spec(name) is None]
    if missing:
        raise pytest.UsageError(
            f"--conformance-backend {value!r}: {', '.join(missing)} is not installed (pip install {missing[0]})"
        )
    return names


def _parse_timeout(value: float) -> float:
    if value <= 0:
        raise pytest.UsageError(f"--conformance-timeout {value}: must be a positive number of seconds")
    return value


def _parse_capabilities(value: str | None) -> frozenset[str] | None:
    if value is None:
        return None
    if value.strip() == "all":
        return frozenset(CAPABILITIES)
    if value.strip() == "none":
        return frozenset()
    names = frozenset(name.strip() for name in value.split(",") if name.strip())
    unknown = sorted(names - set(CAPABILITIES))
    if unknown:
        raise pytest.UsageError(
            f"--capabilities: unknown {', '.join(unknown)}; choose from {', '.join(CAPABILITIES)}, all or none"
        )
    return names


def _parse_selection(value: str | None) -> frozenset[str] | None:
    if value is None:
        return None
    names = frozenset(name.strip().upper() for name in value.split(",") if name.strip())
    areas = {rule.area for rule in RULES.values()}
    unknown = sorted(name for name in names if name not in RULES and name not in areas)
    if unknown:
        raise pytest.UsageError(f"--conformance-rules: unknown rule IDs or areas {', '.join(unknown)}")
    return names


def _known_because(rule_id: str, baseline: dict[str, str]) -> str:
    """Why a failure of `rule_id` is a known one: the baseline's reason, or the rule being a new warning."""
    if rule_id in baseline:
        return f"baseline: {rule_id}: {baseline[rule_id]}"
    return f"warning: {rule_id} is new in rule set {RULES_VERSION} and not yet required"


def _parse_baseline(value: str | None, base: Path) -> dict[str, str]:
    if value is None:
        return {}
    path = base / value
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise pytest.UsageError(f"--conformance-baseline {value!r}: cannot read it: {error}") from None
    baseline: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        rule_id, _, reason = (part.strip() for part in line.partition(":"))
        where = f"--conformance-baseline {value}:{number}"
        if rule_id not in RULES:
            raise pytest.UsageError(f"{where}: unknown rule ID {rule_id!r}")
        if not reason:
            raise pytest.UsageError(f"{where}: {rule_id} needs a reason ('{rule_id}: why it fails')")
        if rule_id in baseline:
            raise pytest.UsageError(f"{where}: {rule_id} is listed twice")
        baseline[rule_id] = reason
    return baseline
