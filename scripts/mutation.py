"""Mutation-test the reference store and the contract helpers; print the score and the survivors.

    .venv/bin/python scripts/mutation.py [--jobs N] [--no-run]

Installs mutmut (the `mutation` extra) when it is missing, runs `mutmut run` with the
scope and killers of `[tool.mutmut]` in pyproject.toml (mutants are written to the
git-ignored `mutants/`), then reads every mutant's outcome. The score is killed (a
test failed or the mutant timed out) over all mutants tried; a mutant no test runs
counts as survived. Every survivor must be listed in `docs/MUTATION.md` with the
reason it is equivalent; the script names the survivors that are not, and the listed
ones that now die. Exit status 1 if the score is under 90% or a survivor is
unexplained. Not part of CI: a full run takes tens of minutes on two cores.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXPLAINED = ROOT / "docs" / "MUTATION.md"
TARGET = 0.90
KILLED = {"killed", "timeout", "caught by type check"}
#: A survivor's row in docs/MUTATION.md: | `mutant name` | change | why it is equivalent |
ROW = re.compile(r"^\|\s*`([^`]+)`\s*\|")


def mutmut(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "mutmut", *args]
    return subprocess.run(command, cwd=ROOT, text=True, capture_output=args[0] != "run", check=False)


def outcomes() -> dict[str, str]:
    """Every mutant's name and status, from `mutmut results --all true`."""
    done = mutmut("results", "--all", "true")
    found: dict[str, str] = {}
    for line in done.stdout.splitlines():
        name, separator, status = line.strip().rpartition(": ")
        if separator and name:
            found[name] = status
    if not found:
        raise SystemExit(f"mutmut reported no mutants:\n{done.stdout}{done.stderr}")
    return found


def explained() -> set[str]:
    """The survivors docs/MUTATION.md explains, by mutant name."""
    if not EXPLAINED.exists():
        return set()
    lines = EXPLAINED.read_text(encoding="utf-8").splitlines()
    return {match.group(1) for line in lines if (match := ROW.match(line))}


def change(name: str) -> str:
    """The mutant's edit as `old` → `new`, from its diff (`mutmut show`)."""
    diff = mutmut("show", name).stdout.splitlines()
    removed = [line[1:].strip() for line in diff if line.startswith("-") and not line.startswith("---")]
    added = [line[1:].strip() for line in diff if line.startswith("+") and not line.startswith("+++")]
    old, new = " ".join(removed), " ".join(added) or "(line removed)"
    return f"`{old}` → `{new}`".replace("|", "\\|")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="mutants tested at once")
    parser.add_argument("--no-run", action="store_true", help="only read the outcomes of the last run")
    parser.add_argument(
        "--rows", action="store_true", help=f"print a {EXPLAINED.name} table row for each unexplained survivor"
    )
    options = parser.parse_args()
    if importlib.util.find_spec("mutmut") is None:
        print("installing mutmut (the 'mutation' extra)", flush=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-e", f"{ROOT}[mutation]"], check=True)
    if not options.no_run:
        environment_profile = os.environ.setdefault("HYPOTHESIS_PROFILE", "ci")
        print(f"mutmut run, {options.jobs} at a time, Hypothesis profile {environment_profile}", flush=True)
        mutmut("run", "--max-children", str(options.jobs))
    found = outcomes()
    counts = Counter(found.values())
    tried = sum(count for status, count in counts.items() if status not in {"not checked", "skipped"})
    killed = sum(counts[status] for status in KILLED)
    survivors = sorted(name for name, status in found.items() if status not in KILLED | {"not checked", "skipped"})
    reasons = explained()
    unexplained = [name for name in survivors if name not in reasons]
    now_killed = sorted(reasons - set(survivors))
    score = killed / tried if tried else 0.0
    print(", ".join(f"{status} {count}" for status, count in counts.most_common()))
    print(f"mutation score: {killed} of {tried} mutants killed = {score:.1%} (target {TARGET:.0%})")
    explained_count = len(survivors) - len(unexplained)
    print(f"survivors: {len(survivors)}, explained in {EXPLAINED.relative_to(ROOT)}: {explained_count}")
    for name in unexplained:
        print(f"  unexplained survivor: {name}  (see: mutmut show {name})")
    if options.rows:
        for name in unexplained:
            print(f"| `{name}` | {change(name)} | (why no test can tell) |")
    for name in now_killed:
        print(f"  listed in {EXPLAINED.name} but no longer surviving: {name}")
    return 0 if score >= TARGET and not unexplained else 1


if __name__ == "__main__":
    sys.exit(main())
