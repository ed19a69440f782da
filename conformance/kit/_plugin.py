"""The pytest plugin (entry point `pytest11`): options, markers, the kit fixture, the report.

Installed in any project it only registers its options and markers: nothing is
collected or run until a test class subclasses `StoreContract`, or the suite is
named (`python -m conformance`, `pytest --pyargs conformance.suite`).
"""

from __future__ import annotations

import re
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
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
from conformance.kit._report import Outcome, Report, TestResult
from conformance.kit._rules import CAPABILITIES, RULES
from conformance.kit._runner import Kit, StoreSource
from conformance.kit._target import TargetError, load_target

BACKENDS = ("asyncio", "trio")
PROFILES = ("quick", "ci", "thorough")


@dataclass(slots=True)
class KitConfig:
    """Parsed `--conformance-*` options of one session."""

    backends: tuple[str, ...] = ("asyncio",)
    timeout: float = 60.0
    capabilities: frozenset[str] | None = None
    baseline: dict[str, str] = field(default_factory=dict)
    selected: frozenset[str] | None = None
    profile: str = "quick"
    report_path: Path | None = None
    report: Report = field(default_factory=Report)
    outcomes: dict[str, TestResult] = field(default_factory=dict)
    active: bool = False


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
        help="Hypothesis effort: quick (default), ci (derandomized), thorough (nightly)",
    )
    group.addoption("--conformance-report", metavar="PATH", help="write the rule-by-rule report as JSON to PATH")
    group.addoption(
        "--conformance-baseline",
        metavar="FILE",
        help="known failures, one 'RULE-ID: reason' per line; they run as strict xfail",
    )
    group.addoption(
        "--conformance-rules",
        metavar="IDS",
        help="run only the tests of these rules or areas, comma-separated (DEL-3,QRY)",
    )
    group.addoption(
        "--conformance-timeout",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="fail a contract test that runs longer than this (default 60)",
    )
    group.addoption(
        "--conformance-backend",
        default="asyncio",
        metavar="NAMES",
        help="event loops to run each contract test under: asyncio, trio, or asyncio,trio",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Register markers, parse the options, and provide `store` when `--store` is given."""
    config.addinivalue_line("markers", "rule(*ids, requires=None): the contract rules a test verifies")
    config.addinivalue_line("markers", "conformance_stateful: a Hypothesis state machine of the kit")
    store_target: str | None = config.getoption("conformance_store")
    kit = KitConfig(
        backends=_parse_backends(config.getoption("conformance_backend")),
        timeout=_parse_timeout(config.getoption("conformance_timeout")),
        capabilities=_parse_capabilities(config.getoption("conformance_capabilities")),
        baseline=_parse_baseline(config.getoption("conformance_baseline"), config.invocation_params.dir),
        selected=_parse_selection(config.getoption("conformance_rules")),
        profile=config.getoption("conformance_profile"),
        report_path=_resolve(config.getoption("conformance_report"), config.invocation_params.dir),
        report=Report(store=store_target, kit_version=__version__, rules_version=RULES_VERSION),
    )
    config.stash[KIT_CONFIG] = kit
    if store_target is not None:
        try:
            source = load_target(store_target, base=config.invocation_params.dir)
        except TargetError as error:
            raise pytest.UsageError(str(error)) from None
        config.pluginmanager.register(_StoreFixture(source), "conformance-store")
    command = store_command_source(config)
    if command is not None:
        kit.report.store = f"command: {config.getoption('conformance_store_command')}"
        config.pluginmanager.register(_StoreFixture(command), "conformance-store")


class _StoreFixture:
    """Provides the `store` fixture from `--store`."""

    def __init__(self, source: StoreSource) -> None:
        self.source = source

    @pytest.fixture
    def store(self) -> StoreSource:
        """The store source named by `--store`."""
        return self.source


def _parse_backends(value: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in value.split(",") if name.strip())
    unknown = [name for name in names if name not in BACKENDS]
    if not names or unknown:
        raise pytest.UsageError(f"--conformance-backend {value!r}: choose from {', '.join(BACKENDS)}")
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


def _resolve(value: str | None, base: Path) -> Path | None:
    return None if value is None else (base / value).resolve()


#: A rule ID such as `DEL-3`, as a failure message names it.
_RULE_ID = re.compile(r"\b[A-Z]{2,4}-\d+\b")


def blamed_rules(rule_ids: tuple[str, ...], message: str) -> tuple[str, ...]:
    """The rules a failure of a test verifying `rule_ids` breaks, judged by its message.

    A test of several rules (a state machine) starts its assertion messages with the
    rules they check (`DEL-3: ...`, `ATO-1 (DEL-3): ...`); those of them the test
    verifies are the rules it breaks. A message naming none of them blames them all.
    """
    head = message.removeprefix("AssertionError: ").split(": ", 1)[0]
    named = [rule_id for rule_id in _RULE_ID.findall(head) if rule_id in rule_ids]
    return tuple(dict.fromkeys(named)) or rule_ids


def _rule_ids(item: pytest.Item) -> list[str]:
    ids: list[str] = []
    for mark in item.iter_markers("rule"):
        ids += [rule_id for rule_id in mark.args if rule_id not in ids]
    return ids


@pytest.fixture
def conformance_backend(request: pytest.FixtureRequest) -> str:
    """The event loop a contract test runs under (parametrized when several are chosen)."""
    param: str | None = getattr(request, "param", None)
    return param or request.config.stash[KIT_CONFIG].backends[0]


@pytest.fixture
def conformance_kit(request: pytest.FixtureRequest, tmp_path: Path, conformance_backend: str) -> Kit:
    """Runs a contract test body against a fresh store (see `conformance.rule`)."""
    kit_config = request.config.stash[KIT_CONFIG]
    kit = Kit(
        request,
        backend=conformance_backend,
        timeout=kit_config.timeout,
        capabilities=kit_config.capabilities,
        location=tmp_path,
        report=kit_config.report,
        profile=kit_config.profile,
    )
    return kit


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run contract tests once per chosen event loop when several are chosen."""
    backends = getattr(metafunc.cls, "backends", None) or metafunc.config.stash[KIT_CONFIG].backends
    if "conformance_backend" in metafunc.fixturenames and len(backends) > 1:
        metafunc.parametrize("conformance_backend", backends, indirect=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Apply `--conformance-rules` and the baseline, tag JUnit properties with rule IDs, order the tests."""
    kit = config.stash[KIT_CONFIG]
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
        known = [rule_id for rule_id in rule_ids if rule_id in kit.baseline]
        if known:
            reason = "; ".join(f"{rule_id}: {kit.baseline[rule_id]}" for rule_id in known)
            item.add_marker(pytest.mark.xfail(strict=True, reason=f"baseline: {reason}"))
        kept.append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
    items[:] = sorted(kept, key=_run_order)


#: Each rule's place in the spec, which is also the order its tests run in.
_SPEC_ORDER = {rule_id: place for place, rule_id in enumerate(RULES)}


def _run_order(item: pytest.Item) -> tuple[bool, int]:
    """Contract tests in spec order, so a rule's own tests run before the cross-cutting ones
    (ATO, CON, ...) that touch it, and with -x the first failure names the most specific rule;
    the state machines go last, being slower than the focused tests and less precise."""
    places = [_SPEC_ORDER[rule_id] for rule_id in _rule_ids(item)]
    return item.get_closest_marker("conformance_stateful") is not None, min(places, default=-1)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    """Name the broken rules, with their text, under every failing contract test."""
    report = yield
    rule_ids = _rule_ids(item)
    if rule_ids and report.failed:
        blamed = blamed_rules(tuple(rule_ids), _message(report))
        lines = [f"violates {rule_id}: {RULES[rule_id].text}" for rule_id in blamed]
        report.sections.append(("conformance rules", "\n".join(lines)))
    return report


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Collect each contract test's worst outcome over setup, call and teardown."""
    config = getattr(report, "config", None) or _CURRENT.config
    if config is None:
        return
    kit = config.stash[KIT_CONFIG]
    rule_ids = tuple(str(value) for name, value in report.user_properties if name == "rule")
    if not rule_ids:
        return
    outcome = _outcome(report)
    if outcome is None:
        return
    previous = kit.outcomes.get(report.nodeid)
    if previous is not None and _RANK[previous.outcome] >= _RANK[outcome]:
        return
    message = _message(report)
    kit.outcomes[report.nodeid] = TestResult(
        nodeid=report.nodeid,
        rules=blamed_rules(rule_ids, message) if outcome == "failed" else rule_ids,
        outcome=outcome,
        message=message,
        duration=report.duration,
    )


_RANK: dict[Outcome, int] = {"passed": 0, "skipped": 1, "xfailed": 2, "xpassed": 3, "failed": 4}


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
        return str(crash.message)
    return str(longrepr or "")


class _Current:
    """The running session's config, for hooks that pytest calls without it."""

    config: pytest.Config | None = None


_CURRENT = _Current()


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """Remember the config for `pytest_runtest_logreport`."""
    _CURRENT.config = session.config


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    """Print the rule-by-rule summary and verdict; write the JSON report when asked."""
    kit = config.stash[KIT_CONFIG]
    if not kit.active:
        return
    report = kit.report
    report.results = list(kit.outcomes.values())
    terminalreporter.write_sep("=", "conformance summary")
    for line in report.lines():
        terminalreporter.write_line(line)
    if kit.report_path is not None:
        report.write_json(kit.report_path)
        terminalreporter.write_line(f"report written to {kit.report_path}")


def iter_rule_ids(item: pytest.Item) -> Iterator[str]:
    """The rule IDs a collected test verifies (for tools built on the plugin)."""
    yield from _rule_ids(item)
