"""The package keeps its rooms apart: the contract and the wire never reach into the kit, and no import circle.

`conformance.contract` is what a backend imports in production; `conformance.wire` is
what a store process may import to be served (`serve_store`); `conformance.kit` is
what only tests import. These tests read the source (imports as written, lazy ones
inside functions included, `if TYPE_CHECKING:` blocks excluded) and import the
contract and the wire in a fresh interpreter where pytest and Hypothesis cannot be
imported.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import conformance

PACKAGE = Path(conformance.__file__).resolve().parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _runtime_imports(tree: ast.Module) -> set[str]:
    """Modules named by import statements, except those under `if TYPE_CHECKING:`."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for branch in node.orelse:
                visit(branch)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def _import_graph() -> dict[str, set[str]]:
    modules = {_module_name(path): path for path in PACKAGE.rglob("*.py")}
    return {
        name: {m for m in _runtime_imports(ast.parse(path.read_text(encoding="utf-8"))) if m in modules and m != name}
        for name, path in modules.items()
    }


GRAPH = _import_graph()


def _cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import circle of `graph` as a path `[a, b, ..., a]`, or [] when there is none."""
    state: dict[str, str] = {}
    stack: list[str] = []

    def walk(node: str) -> list[str]:
        state[node] = "open"
        stack.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                return [*stack[stack.index(target) :], target]
            if target not in state and (found := walk(target)):
                return found
        stack.pop()
        state[node] = "done"
        return []

    for start in sorted(graph):
        if start not in state and (found := walk(start)):
            return found
    return []


def test_no_import_circle_inside_the_package() -> None:
    """No module of `conformance` imports, directly or through others, a module that imports it back."""
    assert _cycle(GRAPH) == []


def test_the_cycle_finder_sees_a_circle() -> None:
    """The check above can fail: a lazy import back into the plugin is a circle."""
    graph = {"plugin": {"runner"}, "runner": {"stateful"}, "stateful": {"plugin"}, "other": set()}
    assert _cycle(graph) == ["plugin", "runner", "stateful", "plugin"]


@pytest.mark.parametrize("room", ["contract", "wire"])
def test_contract_and_wire_modules_import_nothing_from_the_kit(room: str) -> None:
    """Every module of `conformance.contract` (and of the wire, which a store process may import) keeps off the kit."""
    reaching = {
        name: sorted(m for m in imports if m.startswith("conformance.kit"))
        for name, imports in GRAPH.items()
        if name.startswith(f"conformance.{room}")
    }
    assert {name: found for name, found in reaching.items() if found} == {}


BLOCKED = """
    import importlib.abc
    import pkgutil
    import sys

    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("pytest", "_pytest", "hypothesis"):
                raise ImportError(f"{name} is blocked: the contract must not import it")
            return None

    sys.meta_path.insert(0, Block())
    import conformance
    import conformance.contract

    import conformance.wire

    for package in (conformance.contract, conformance.wire):
        for module in pkgutil.iter_modules(package.__path__, package.__name__ + "."):
            __import__(module.name)
    store = conformance.ThreadRunStore  # a public name, through the package's front door
    served = conformance.serve_store  # and the wire's, which load lazily
    loaded = sorted(name for name in sys.modules if name.split(".")[0] in ("pytest", "_pytest", "hypothesis"))
    kit = sorted(name for name in sys.modules if name.startswith("conformance.kit"))
    print(f"loaded={loaded} kit={kit}")
"""


def test_contract_imports_without_pytest_or_hypothesis() -> None:
    """In an interpreter where pytest and Hypothesis cannot be imported, the whole contract and wire still import."""
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(BLOCKED)], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "loaded=[] kit=[]"


def test_the_blocker_blocks() -> None:
    """The check above can fail: importing the kit in the same interpreter is refused."""
    script = textwrap.dedent(BLOCKED) + "\nimport conformance.kit._plugin\n"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False, timeout=60)
    assert result.returncode != 0
    assert "pytest is blocked" in result.stderr


@pytest.mark.parametrize("room", ["contract", "kit", "wire"])
def test_each_room_is_a_package_of_private_modules(room: str) -> None:
    """`conformance.contract`, `.kit` and `.wire` hold only private modules; public names live in `conformance`."""
    public = sorted(
        path.name
        for path in (PACKAGE / room).iterdir()
        if not path.name.startswith("_") and path.name not in ("py.typed",) and path.suffix in (".py", "")
    )
    assert public == []


COPIED = [PACKAGE.parent / "reference_store", PACKAGE.parent / "examples"]


def _private_uses(source: str) -> list[str]:
    """Imports of `conformance` that reach past its public names: private modules, or names not in `__all__`."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names if alias.name.startswith("conformance.")]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "conformance":
            if node.module != "conformance":
                found.append(str(node.module))
            else:
                found += [f"conformance.{a.name}" for a in node.names if a.name not in conformance.__all__]
    return found


def test_what_authors_copy_imports_only_public_names() -> None:
    """The reference store and the examples import only `conformance`'s public names: a helper they need is public."""
    paths = sorted(path for folder in COPIED for path in folder.rglob("*.py"))
    assert paths, "no reference store or examples found"
    reaching = {
        str(path.relative_to(PACKAGE.parent)): uses
        for path in paths
        if (uses := _private_uses(path.read_text(encoding="utf-8")))
    }
    assert reaching == {}


def test_the_public_import_check_sees_private_imports() -> None:
    """The check above can fail: a private module, and a name outside `__all__`, are both reported."""
    source = "from conformance.contract._threads import now_ms\nfrom conformance import Thread, _LAZY\n"
    assert _private_uses(source) == ["conformance.contract._threads", "conformance._LAZY"]
