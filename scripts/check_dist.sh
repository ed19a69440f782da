#!/usr/bin/env bash
# Check the distributions a user installs: build the sdist and the wheel, check that both
# carry the package data, install the WHEEL into a fresh virtualenv outside the source
# tree, and run the kit from a temporary folder (so nothing is imported from the checkout).
# Exits non-zero on the first failure. Needs python3 (3.11+) and the package index.
#
#   bash scripts/check_dist.sh            # PYTHON=python3.12 bash scripts/check_dist.sh
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-python3}
work=$(mktemp -d "${TMPDIR:-/tmp}/check-dist.XXXXXX")
trap 'rm -rf "$work"' EXIT
export PIP_DISABLE_PIP_VERSION_CHECK=1

fail() {
    echo "check_dist: $*" >&2
    exit 1
}

step() {
    echo "+ $*"
}

step "build the sdist and the wheel (python -m build, in a virtualenv of its own)"
"$python" -m venv "$work/build-env"
"$work/build-env/bin/pip" install --quiet build
"$work/build-env/bin/python" -m build --outdir "$work/dist" "$root" >"$work/build.log" 2>&1 ||
    { cat "$work/build.log" >&2; fail "python -m build failed"; }
sdists=("$work"/dist/*.tar.gz)
wheels=("$work"/dist/*.whl)
[ "${#sdists[@]}" -eq 1 ] && [ -f "${sdists[0]}" ] || fail "expected one sdist in $work/dist"
[ "${#wheels[@]}" -eq 1 ] && [ -f "${wheels[0]}" ] || fail "expected one wheel in $work/dist"
sdist=${sdists[0]}
wheel=${wheels[0]}
echo "built $(basename "$sdist") and $(basename "$wheel")"

step "the sdist and the wheel carry the package data"
"$work/build-env/bin/python" - "$sdist" "$wheel" <<'PY'
import sys
import tarfile
import zipfile

sdist, wheel = sys.argv[1:]
wanted = [
    "conformance/py.typed",
    "conformance/suite/pytest.ini",
    "conformance/suite/test_conformance.py",
    "conformance/kit/_contract_tests/__init__.py",
    "conformance/kit/_machines/__init__.py",
    "reference_store/py.typed",
]
with tarfile.open(sdist) as archive:
    # Members are "<name>-<version>/<path>".
    in_sdist = {name.partition("/")[2] for name in archive.getnames()}
with zipfile.ZipFile(wheel) as archive:
    in_wheel = set(archive.namelist())
missing = [f"sdist: {p}" for p in [*wanted, "README.md", "pyproject.toml"] if p not in in_sdist]
missing += [f"wheel: {p}" for p in wanted if p not in in_wheel]
if missing:
    sys.exit("missing from the distributions:\n  " + "\n  ".join(missing))
print(f"sdist: {len(in_sdist)} files, wheel: {len(in_wheel)} files; package data present")
PY

step "install the wheel into a fresh virtualenv"
"$python" -m venv "$work/env"
"$work/env/bin/pip" install --quiet "$wheel"
run_dir="$work/run"
mkdir -p "$run_dir"
cd "$run_dir"

step "the kit is imported from the virtualenv, not from the checkout"
"$work/env/bin/python" - "$work/env" "$root" <<'PY'
import sys
from pathlib import Path

import conformance
import reference_store

env, root = (Path(p).resolve() for p in sys.argv[1:])
for module in (conformance, reference_store):
    where = Path(module.__file__ or "").resolve()
    if env not in where.parents or root in where.parents:
        sys.exit(f"{module.__name__} imported from {where}, not from the virtualenv {env}")
print(f"conformance {conformance.__version__} (rules {conformance.RULES_VERSION}) from {Path(conformance.__file__).parent}")
PY

step "python -m conformance -q (the whole kit against the reference store)"
"$work/env/bin/python" -m conformance -q >"$work/kit.log" 2>&1 || { cat "$work/kit.log" >&2; fail "the kit failed"; }
grep -E '^kit .*, rules ' "$work/kit.log" || fail "the summary lacks the versions line"
grep -E '^verdict: conforms to all ' "$work/kit.log" || { cat "$work/kit.log" >&2; fail "no conforming verdict"; }
if grep -q "warnings summary" "$work/kit.log"; then
    echo "the installed kit warned:"
    sed -n '/warnings summary/,/^-- Docs/p' "$work/kit.log"
fi
tail -n 1 "$work/kit.log"

step "threadstore-conformance --help"
"$work/env/bin/threadstore-conformance" --help >"$work/help.log" || fail "threadstore-conformance --help failed"
grep -q -- "--store=TARGET" "$work/help.log" || fail "--help does not list the kit's --store option"
grep -q -- "--conformance-profile" "$work/help.log" || fail "--help does not list --conformance-profile"
[ "$(wc -l <"$work/help.log")" -le 80 ] || fail "--help is longer than 80 lines"
echo "help lists --store and the --conformance-* options"

step "threadstore-conformance new (a skeleton), and the kit's one-line answer on it"
"$work/env/bin/threadstore-conformance" new skeleton_store.py >/dev/null || fail "new failed"
status=0
"$work/env/bin/threadstore-conformance" --store skeleton_store.py:make_store >"$work/skeleton.log" 2>&1 || status=$?
[ "$status" -eq 4 ] || { cat "$work/skeleton.log" >&2; fail "the kit on a fresh skeleton exited $status, not 4"; }
grep -q "not implemented yet: load_thread" "$work/skeleton.log" || fail "the kit does not list the skeleton's methods"
echo "the kit lists the skeleton's unwritten methods"

step "python -m conformance spec | head"
"$work/env/bin/python" -m conformance spec | head -n 4
"$work/env/bin/python" -m conformance spec >"$work/EXAMPLES.md"
if [ -f "$root/docs/EXAMPLES.md" ]; then
    cmp -s "$work/EXAMPLES.md" "$root/docs/EXAMPLES.md" ||
        fail "the installed kit renders examples that differ from docs/EXAMPLES.md: regenerate it with" \
            "'python -m conformance spec --output docs/EXAMPLES.md' (and check that the wheel ships every test)"
    echo "the installed kit renders docs/EXAMPLES.md byte for byte"
fi

echo "check_dist: OK"
