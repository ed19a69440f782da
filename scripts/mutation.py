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

Kit-only mode, on someone else's backend (docs/MUTATION.md, "kit only"):

    .venv/bin/python scripts/mutation.py --target sqlite [--sample 200] [--seed 16] [--jobs 2]

mutates examples/sqlite_store.py (`--target postgres`: examples/postgres_store.py) with
the small AST mutator in scripts/_mutants.py, and runs the kit alone against each
mutant, written to a temporary folder: `python -m conformance --store <mutant>:make_store
-x -q --conformance-profile quick --conformance-timeout 10`. Exit 1 from the kit kills
the mutant, exit 4 (the set-up check refused the store) kills it too and is counted
apart, a run past the wall limit counts as killed by timeout, exit 0 is a survivor.
Results go to mutants-kit/<target>.json; `--only 12,40` reruns some mutants and updates
that file, `--summary` prints it again, `--list` and `--show ID` print the mutants.
Every survivor must have a row in docs/MUTATION.md's kit-only section with its class.
"""

from __future__ import annotations

import argparse
import difflib
import importlib.util
import json
import math
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor, as_completed
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


# ── kit only: mutants of an example backend, the kit as the only killer ──

TARGETS = {"sqlite": ROOT / "examples" / "sqlite_store.py", "postgres": ROOT / "examples" / "postgres_store.py"}
RESULTS = ROOT / "mutants-kit"
#: A mutant's kit run past this many seconds is stopped and counts as killed (timeout).
WALL_LIMIT = 600


def wilson(killed: int, total: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of killed/total (95% for z = 1.96)."""
    if total == 0:
        return 0.0, 1.0
    share = killed / total
    middle = (share + z * z / (2 * total)) / (1 + z * z / total)
    half = z * math.sqrt(share * (1 - share) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    return max(0.0, middle - half), min(1.0, middle + half)


def kit_command(store_file: Path, timeout: float) -> list[str]:
    return [
        sys.executable, "-m", "conformance", "--store", f"{store_file}:make_store", "-x", "-q",
        "--conformance-profile", "quick", "--conformance-timeout", str(timeout), "-p", "no:cacheprovider",
    ]  # fmt: skip


def run_kit(source: str, name: str, timeout: float) -> tuple[str, str, float]:
    """Run the kit on `source` written as `name` in a fresh folder: (outcome, failed rules or tail, seconds)."""
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="kit-mutant-") as folder:
        store_file = Path(folder) / name
        store_file.write_text(source, encoding="utf-8")
        try:
            done = subprocess.run(
                kit_command(store_file, timeout), cwd=folder, capture_output=True, text=True, timeout=WALL_LIMIT
            )
        except subprocess.TimeoutExpired:
            return "timeout", "", time.monotonic() - began
    output = done.stdout + done.stderr
    failed = re.findall(r"^([A-Z]+-\d+)\s+failed", output, flags=re.MULTILINE)
    outcome = {0: "survived", 1: "killed", 4: "setup"}.get(done.returncode, f"error {done.returncode}")
    detail = ",".join(failed) if failed else output.strip().splitlines()[-1][:200] if output.strip() else ""
    return outcome, detail, time.monotonic() - began


def kit_only(options: argparse.Namespace) -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _mutants import mutants  # a script's sibling module

    target = TARGETS[options.target]
    source = target.read_text(encoding="utf-8")
    every = mutants(source)
    if options.list:
        for index, mutant in enumerate(every):
            print(f"{index:4d} {mutant.kind:8s} line {mutant.line:4d}: {mutant.change}")
        return 0
    if options.show is not None:
        mutant = every[options.show]
        diff = difflib.unified_diff(source.splitlines(), mutant.source.splitlines(), lineterm="", n=1)
        print("\n".join(diff))
        return 0
    if options.summary:
        saved = json.loads((RESULTS / f"{options.target}.json").read_text(encoding="utf-8"))
        return summarize(options.target, {int(index): result for index, result in saved["results"].items()})
    if options.only:
        chosen = [int(part) for part in options.only.split(",")]
    elif options.sample and options.sample < len(every):
        chosen = sorted(random.Random(options.seed).sample(range(len(every)), options.sample))
    else:
        chosen = list(range(len(every)))
    print(f"{len(every)} mutants of {target.relative_to(ROOT)}: {dict(Counter(m.kind for m in every))}")
    print(f"testing {len(chosen)} (seed {options.seed}), {options.jobs} at a time; load {os.getloadavg()}")
    print("command: " + " ".join(kit_command(Path("<mutant>") / target.name, options.timeout)), flush=True)
    outcome, detail, seconds = run_kit(source, target.name, options.timeout)
    if outcome != "survived":
        print(f"the unmutated store does not conform ({outcome}: {detail}); stopping")
        return 1
    print(f"unmutated store conforms in {seconds:.0f}s", flush=True)
    results: dict[int, dict[str, object]] = {}
    began = time.monotonic()
    with ThreadPoolExecutor(max_workers=options.jobs) as pool:
        futures = {pool.submit(run_kit, every[i].source, target.name, options.timeout): i for i in chosen}
        for done_count, future in enumerate(as_completed(futures), start=1):
            index = futures[future]
            mutant = every[index]
            outcome, detail, seconds = future.result()
            results[index] = {
                "kind": mutant.kind, "line": mutant.line, "change": mutant.change,
                "outcome": outcome, "detail": detail, "seconds": round(seconds, 1),
            }  # fmt: skip
            elapsed = time.monotonic() - began
            print(
                f"[{done_count}/{len(chosen)} {elapsed / 60:.1f} min] #{index} {outcome:8s} {seconds:5.0f}s"
                f" {mutant.kind} line {mutant.line}: {mutant.change[:90]}  {detail[:60]}",
                flush=True,
            )
            partial = RESULTS / f"{options.target}.partial.json"  # an interrupted run keeps what it measured
            partial.parent.mkdir(exist_ok=True)
            partial.write_text(json.dumps({"seed": options.seed, "results": results}, indent=1), encoding="utf-8")
    RESULTS.mkdir(exist_ok=True)
    record = RESULTS / f"{options.target}.json"
    if options.only and record.exists():  # a rerun (after adding tests): update those mutants' outcomes
        earlier = json.loads(record.read_text(encoding="utf-8"))
        merged = {int(index): result for index, result in earlier["results"].items()}
        results = {**merged, **results}
        options.seed = earlier["seed"]
    record.write_text(
        json.dumps({"seed": options.seed, "total": len(every), "results": results}, indent=1, sort_keys=True),
        encoding="utf-8",
    )
    return summarize(options.target, results)


#: A kit-only survivor's row in docs/MUTATION.md: | sqlite #12 | line | change | class: why |
KIT_ROW = re.compile(r"^\|\s*(sqlite|postgres) #(\d+)\s*\|[^|]*\|[^|]*\|\s*(equivalent|spec-open)\b")


def summarize(target: str, results: dict[int, dict[str, object]]) -> int:
    """Print outcomes by kind, the score with its Wilson interval, and every survivor with its class."""
    by_kind: dict[str, Counter[str]] = {}
    for result in results.values():
        by_kind.setdefault(str(result["kind"]), Counter())[str(result["outcome"])] += 1
    print("by kind (tested: outcomes):")
    for kind, counts in sorted(by_kind.items()):
        print(f"  {kind:8s} {sum(counts.values()):4d}: {dict(counts)}")
    outcomes_count = Counter(str(result["outcome"]) for result in results.values())
    killed = outcomes_count["killed"] + outcomes_count["setup"] + outcomes_count["timeout"]
    low, high = wilson(killed, len(results))
    print(f"outcomes: {dict(outcomes_count)}")
    print(
        f"kit-only score: {killed} of {len(results)} killed = {killed / len(results):.1%}"
        f" (95% Wilson interval {low:.1%}..{high:.1%}); set-up check {outcomes_count['setup']},"
        f" timeout {outcomes_count['timeout']}; load {os.getloadavg()}"
    )
    lines = EXPLAINED.read_text(encoding="utf-8").splitlines() if EXPLAINED.exists() else []
    classes = {int(m.group(2)): m.group(3) for line in lines if (m := KIT_ROW.match(line)) and m.group(1) == target}
    survivors = {i: r for i, r in sorted(results.items()) if r["outcome"] not in {"killed", "setup", "timeout"}}
    for index, result in survivors.items():
        label = classes.get(index, "UNEXPLAINED")
        print(f"  {result['outcome']} [{label}]: #{index} line {result['line']} {result['kind']}: {result['change']}")
    equivalent = sum(1 for index in survivors if classes.get(index) == "equivalent")
    if equivalent:
        share = killed / (len(results) - equivalent)
        print(f"without the {equivalent} equivalent mutants: {killed} of {len(results) - equivalent} = {share:.1%}")
    for index in sorted(set(classes) - set(survivors)):
        if index in results:
            print(f"  listed in {EXPLAINED.name} but killed now: {target} #{index}")
    print(f"results: {(RESULTS / f'{target}.json').relative_to(ROOT)}")
    return 0 if killed >= 0.95 * len(results) and all(index in classes for index in survivors) else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--target", choices=["reference", *TARGETS], default="reference",
        help="reference: mutmut on the reference store; sqlite/postgres: the kit alone on an example backend",
    )  # fmt: skip
    parser.add_argument("--sample", type=int, default=0, help="kit only: test a seeded random sample of N mutants")
    parser.add_argument("--seed", type=int, default=16, help="kit only: the sample's seed")
    parser.add_argument("--timeout", type=float, default=10, help="kit only: --conformance-timeout per store call")
    parser.add_argument("--only", help="kit only: comma-separated mutant ids to test")
    parser.add_argument("--list", action="store_true", help="kit only: list the mutants and their ids")
    parser.add_argument("--show", type=int, help="kit only: print one mutant's diff")
    parser.add_argument("--summary", action="store_true", help="kit only: summarize the last results, run nothing")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1), help="mutants tested at once")
    parser.add_argument("--no-run", action="store_true", help="only read the outcomes of the last run")
    parser.add_argument(
        "--rows", action="store_true", help=f"print a {EXPLAINED.name} table row for each unexplained survivor"
    )
    options = parser.parse_args()
    if options.target != "reference":
        return kit_only(options)
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
