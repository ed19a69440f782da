"""Run the kit on upstream's three real stores and check `docs/UPSTREAM.md`'s departures against them.

On request only, not in CI: it needs a local git clone of awakenworks/awaken, the upstream
shim's build kit (`/work/shared/upstream-shim`, whose `build.sh` fetches Debian's Rust
crates the first time) and PostgreSQL (the shim's `postgres` store; `AWAKEN_SHIM_PG_URL`
overrides `postgres://postgres@127.0.0.1:5432/test`). From the repository root:

    python scripts/upstream_parity.py --upstream ~/src/awaken.git [--commit REV]
    python scripts/upstream_parity.py --shim /tmp/upstream-shim/target/debug/awaken-store-shim

It builds the shim from upstream at `--commit` (default `HEAD`; `--shim PATH` skips the
build), runs the kit on each store as a user would (`python -m conformance --store-command
"SHIM memory"`, then `file`, then `postgres`; `ci` profile, derandomized, ~1, 2.5 and
2.5 minutes), drops the PostgreSQL schemas the runs left (`SHIM postgres-sweep`), and
compares the rules each store fails with the rows of the "Departures" table that name its
backend:

- *unexpected*: a rule the store fails that no row names for its backend (a new
  departure, or a test whose data upstream's types cannot hold);
- *stale*: a row's rule the store does not fail (shown with its status: a departure
  that went away, or a rule the run did not check).

It prints both per store, then the "Last parity run" section for `docs/UPSTREAM.md`
(each store's verdict line and what it shows against the table; `--record` writes it
there). Each run's report and output stay in `--out` (default: a
new temporary folder). Exit status: 0 when every store fails exactly its rows' rules,
1 on any mismatch or a run without a report, 2 when the shim cannot be built or found.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TABLE = ROOT / "docs" / "UPSTREAM.md"
BACKENDS = ("memory", "file", "postgres")
#: Why a row departs (its "Kind" cell): a bug of upstream's, or one backend's behaviour among disagreeing ones.
KINDS = ("bug", "choice")
#: Rule statuses of the kit's JSON report that mean the store fails the rule.
FAILING = frozenset({"failed", "known_failure", "warning"})
RULE_ID = re.compile(r"\b[A-Z]+-\d+\b")
LAST_RUN = "Last parity run"
#: Seconds one kit run may take (the file and PostgreSQL stores need about 150).
RUN_TIMEOUT = 1800


@dataclass(frozen=True, slots=True)
class Departure:
    """One row of the "Departures" table: the rules it names, the backends that show it, and its kind."""

    rules: frozenset[str]
    backends: frozenset[str]
    kind: str


@dataclass(frozen=True, slots=True)
class Comparison:
    """What one store's run shows against the table: rules failed that no row names, and rows' rules not failed.

    `stale` pairs each rule with the status the run gave it (`passed`, `incomplete`, ...).
    """

    backend: str
    unexpected: tuple[str, ...]
    stale: tuple[tuple[str, str], ...]

    @property
    def matches(self) -> bool:
        """True when the store fails exactly the rules the table's rows name for its backend."""
        return not self.unexpected and not self.stale


@dataclass(frozen=True, slots=True)
class Run:
    """One kit run on one store: its rule statuses (empty without a report), verdict line and seconds."""

    backend: str
    statuses: Mapping[str, str]
    verdict: str
    seconds: float


def departures(text: str) -> list[Departure]:
    """The rows of the "Departures" table of `text` (docs/UPSTREAM.md).

    The table's columns are Rules, Upstream behaviour, Backends, Why the contract
    departs, Kind. Raises `ValueError` naming the row when the section is missing or a
    row names no rule, a backend outside `BACKENDS` or a kind outside `KINDS`.
    """
    if "\n## Departures\n" not in text:
        raise ValueError("no '## Departures' section")
    section = text.split("\n## Departures\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("|")][2:]  # past the header and its rule
    found = []
    for row in rows:
        cells = [cell.strip() for cell in row.strip().strip("|").split("|")]
        rules = frozenset(RULE_ID.findall(cells[0]))
        backends = frozenset(name.strip() for name in cells[2].split(","))
        kind = cells[-1]
        if not rules or not backends <= set(BACKENDS) or kind not in KINDS:
            raise ValueError(
                f"a departures row needs rule IDs, backends among {', '.join(BACKENDS)} and a kind among "
                f"{', '.join(KINDS)} in its last cell: {row[:100]!r}"
            )
        found.append(Departure(rules, backends, kind))
    return found


def departed(rows: Iterable[Departure], backend: str) -> set[str]:
    """The rules of every row whose backends include `backend`: those its store is expected to fail."""
    return {rule_id for row in rows if backend in row.backends for rule_id in row.rules}


def compare(backend: str, statuses: Mapping[str, str], rows: Iterable[Departure]) -> Comparison:
    """The rules `backend`'s run fails that no row names, and the rows' rules it does not fail."""
    expected = departed(rows, backend)
    failed = {rule_id for rule_id, status in statuses.items() if status in FAILING}
    return Comparison(
        backend,
        unexpected=tuple(sorted(failed - expected, key=_rule_order)),
        stale=tuple(
            (rule_id, statuses.get(rule_id, "not run")) for rule_id in sorted(expected - failed, key=_rule_order)
        ),
    )


def _rule_order(rule_id: str) -> tuple[str, int]:
    area, _, number = rule_id.partition("-")
    return area, int(number)


def describe(comparison: Comparison) -> list[str]:
    """The lines that say what `comparison` found, indented under the store's line."""
    if comparison.matches:
        return ["  matches the table: fails exactly the rules its rows name"]
    lines = []
    if comparison.unexpected:
        lines.append(f"  unexpected (failed; no row names {comparison.backend}): {', '.join(comparison.unexpected)}")
    if comparison.stale:
        shown = ", ".join(f"{rule_id} ({status})" for rule_id, status in comparison.stale)
        lines.append(f"  stale (a row names {comparison.backend}; not failed): {shown}")
    return lines


def last_run_section(*, date: str, upstream: str, kit: str, runs: Sequence[Run], rows: Iterable[Departure]) -> str:
    """The "Last parity run" section of docs/UPSTREAM.md: when, which commits, each store's verdict line
    and what it shows against `rows`."""
    rows = list(rows)
    lines = [
        f"## {LAST_RUN}",
        "",
        f"`python scripts/upstream_parity.py` on {date}: upstream `{upstream}`, kit `{kit}`.",
        "",
    ]
    for run in runs:
        lines.append(f"- {run.backend}: `{run.verdict}`")
        found = describe(compare(run.backend, run.statuses, rows)) if run.statuses else ["  the kit wrote no report"]
        lines += [f"  - {line.strip()}" for line in found]
    return "\n".join(lines) + "\n"


def recorded(text: str, section: str) -> str:
    """`text` with its "Last parity run" section replaced by `section`, or `section` appended."""
    heading = f"\n## {LAST_RUN}\n"
    if heading not in text:
        return text.rstrip("\n") + "\n\n" + section
    before, after = text.split(heading, 1)
    rest = after.split("\n## ", 1)
    following = "\n## " + rest[1] if len(rest) == 2 else ""
    return before + "\n" + section + following


def verdict_line(output: str) -> str:
    """The kit's verdict line (`verdict: ...`) of a run's output, or what says there is none."""
    return next((line for line in reversed(output.splitlines()) if line.startswith("verdict:")), "no verdict line")


# ── the shim and the runs ──────────────────────────────────────────────────


def build_shim(source: Path, upstream: Path, commit: str) -> Path:
    """Build the shim from `upstream` at `commit` with `source`'s build.sh; the path of the binary.

    Raises `RuntimeError` when the build fails.
    """
    done = subprocess.run(["sh", str(source / "build.sh"), str(upstream), commit], check=False)
    if done.returncode != 0:
        raise RuntimeError(f"build.sh failed with status {done.returncode}")
    return shim_root() / "target" / "debug" / "awaken-store-shim"


def shim_root() -> Path:
    """Where build.sh builds: `$UPSTREAM_SHIM_ROOT`, else `${TMPDIR:-/tmp}/upstream-shim`."""
    default = Path(os.environ.get("TMPDIR", "/tmp")) / "upstream-shim"
    return Path(os.environ.get("UPSTREAM_SHIM_ROOT", default))


def built_commit(shim: Path) -> str | None:
    """The upstream commit build.sh recorded beside `shim` (`ROOT/build/UPSTREAM_COMMIT`), if any."""
    record = shim.parents[2] / "build" / "UPSTREAM_COMMIT"
    return record.read_text(encoding="utf-8").strip() if record.is_file() else None


def run_kit(shim: Path, backend: str, folder: Path) -> Run:
    """Run the kit on the shim's `backend` store in `folder`; its report and output stay there."""
    folder.mkdir(parents=True, exist_ok=True)
    report = folder / "report.json"
    command = [
        sys.executable, "-m", "conformance", "--store-command", shlex.join([str(shim), backend]),
        "--conformance-profile", "ci", "--conformance-report", str(report), "-q", "-p", "no:randomly",
    ]  # fmt: skip
    path = os.pathsep.join(part for part in (str(ROOT), os.environ.get("PYTHONPATH", "")) if part)
    started = time.monotonic()
    done = subprocess.run(
        command,
        cwd=folder,
        env={**os.environ, "PYTHONPATH": path},
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    seconds = time.monotonic() - started
    (folder / "output.txt").write_text(done.stdout + done.stderr, encoding="utf-8")
    statuses: dict[str, str] = {}
    if report.is_file():
        statuses = {row["id"]: row["status"] for row in json.loads(report.read_text(encoding="utf-8"))["rules"]}
    return Run(backend, statuses, verdict_line(done.stdout), seconds)


def sweep(shim: Path) -> str:
    """Drop the PostgreSQL schemas shim processes left; what the shim says it did."""
    done = subprocess.run([str(shim), "postgres-sweep"], capture_output=True, text=True, check=False, timeout=300)
    return (done.stdout + done.stderr).strip() or f"postgres-sweep exited with status {done.returncode}"


def git_commit(directory: Path, revision: str = "HEAD") -> str:
    """The full commit `revision` names in the git directory or work tree `directory`, else "unknown"."""
    done = subprocess.run(
        ["git", "-C", str(directory), "rev-parse", revision], capture_output=True, text=True, check=False
    )
    return done.stdout.strip() if done.returncode == 0 else "unknown"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--upstream", type=Path, help="a git directory of awakenworks/awaken (a bare clone will do)")
    parser.add_argument("--commit", default="HEAD", help="the upstream commit to build (default: HEAD)")
    parser.add_argument("--shim", type=Path, help="an awaken-store-shim binary already built: skip the build")
    parser.add_argument(
        "--shim-source",
        type=Path,
        default=Path(os.environ.get("UPSTREAM_SHIM_SOURCE", ROOT.parent / "shared" / "upstream-shim")),
        help="the shim's build kit, with build.sh (default: $UPSTREAM_SHIM_SOURCE, else ../shared/upstream-shim)",
    )
    parser.add_argument("--stores", default=",".join(BACKENDS), help="which stores to run (default: all three)")
    parser.add_argument("--out", type=Path, help="where the reports and outputs go (default: a new temporary folder)")
    parser.add_argument("--record", action="store_true", help=f"write the '{LAST_RUN}' section into {TABLE.name}")
    options = parser.parse_args(argv)

    stores = [name.strip() for name in options.stores.split(",") if name.strip()]
    if not stores or not set(stores) <= set(BACKENDS):
        parser.error(f"--stores takes some of {', '.join(BACKENDS)}")
    rows = departures(TABLE.read_text(encoding="utf-8"))
    if options.shim is not None:
        shim: Path = options.shim
        upstream = built_commit(shim) or (git_commit(options.upstream, options.commit) if options.upstream else None)
    elif options.upstream is not None:
        try:
            shim = build_shim(options.shim_source, options.upstream, options.commit)
        except RuntimeError as error:
            print(f"upstream parity: cannot build the shim: {error}", file=sys.stderr)
            return 2
        upstream = git_commit(options.upstream, options.commit)
    else:
        parser.error("name the upstream clone to build the shim from (--upstream GITDIR) or a built shim (--shim PATH)")
    if not shim.is_file():
        print(f"upstream parity: no shim at {shim}", file=sys.stderr)
        return 2

    out = options.out or Path(tempfile.mkdtemp(prefix="upstream-parity-"))
    print(f"upstream parity: upstream {upstream or 'unknown'}, shim {shim}; reports in {out}", flush=True)
    runs: list[Run] = []
    mismatched = False
    for backend in stores:
        run = run_kit(shim, backend, out / backend)
        runs.append(run)
        print(f"{backend} ({run.seconds:.0f} s): {run.verdict}", flush=True)
        if not run.statuses:
            print(f"  the kit wrote no report: see {out / backend / 'output.txt'}")
            mismatched = True
            continue
        comparison = compare(backend, run.statuses, rows)
        mismatched |= not comparison.matches
        for line in describe(comparison):
            print(line, flush=True)
    if "postgres" in stores:
        print(f"PostgreSQL: {sweep(shim)}")

    section = last_run_section(
        date=datetime.date.today().isoformat(),
        upstream=upstream or "unknown",
        kit=git_commit(ROOT),
        runs=runs,
        rows=rows,
    )
    print(f"\n{section}")
    if options.record:
        TABLE.write_text(recorded(TABLE.read_text(encoding="utf-8"), section), encoding="utf-8")
        print(f"written to {TABLE.relative_to(ROOT)}")
    print("mismatch: update docs/UPSTREAM.md's table, or the kit" if mismatched else "the table matches every store")
    return 1 if mismatched else 0


if __name__ == "__main__":
    sys.exit(main())
