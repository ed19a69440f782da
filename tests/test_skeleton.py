"""`python -m conformance new PATH`: a skeleton backend and its test module, and the kit's short word on it.

The skeleton is written and checked the way a backend author meets it: `new` in a
subprocess, the kit on the fresh skeleton both ways (`--store` and `pytest` on the
written test module), each in at most 60 lines naming what is left to write.
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

import conformance
from conformance import Thread, ThreadRunStore, unwritten
from conformance.contract._unwritten import unwritten_methods
from conformance.kit._boundary import store_problems
from conformance.kit._skeleton import HELPERS, SkeletonError, abstract_methods, write_skeleton
from reference_store import ReferenceStore

#: The longest report the kit may give on a fresh skeleton, as the issue asks.
MAX_LINES = 60
#: The methods a backend writes, as docs/SPEC.md section 1 lists them (in its order).
SPEC_ABSTRACT = [
    "load_thread",
    "save_thread",
    "delete_thread",
    "list_threads",
    "load_committed_messages",
    "save_messages",
    "delete_messages",
    "update_thread_metadata",
    "create_run",
    "load_run",
    "latest_run",
    "list_runs",
    "checkpoint",
]


def _run(*arguments: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *arguments], cwd=cwd, capture_output=True, text=True, check=False, timeout=300
    )


def _import(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"_skeleton_{path.stem}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def skeleton(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder where `python -m conformance new dict_store.py` ran."""
    folder = tmp_path_factory.mktemp("skeleton")
    result = _run("-m", "conformance", "new", "dict_store.py", cwd=folder)
    assert result.returncode == 0, result.stderr
    assert "python -m conformance --store dict_store.py:make_store" in result.stdout
    return folder


def test_new_writes_the_backend_and_its_test_module(skeleton: Path) -> None:
    """Both files exist; the test module subclasses StoreContract and builds the store from the backend's factory."""
    assert sorted(p.name for p in skeleton.iterdir() if p.suffix == ".py") == ["dict_store.py", "test_dict_store.py"]
    tests = ast.parse((skeleton / "test_dict_store.py").read_text(encoding="utf-8"))
    classes = [node for node in tests.body if isinstance(node, ast.ClassDef)]
    assert [(c.name, [ast.unparse(b) for b in c.bases]) for c in classes] == [("TestDictStore", ["StoreContract"])]


def test_the_skeleton_has_every_abstract_method_marked_and_raising(skeleton: Path) -> None:
    """Every abstract method, in the spec's order: async, marked @unwritten, raising NotImplementedError."""
    module = _import(skeleton / "dict_store.py")
    store_class = module.DictStore
    assert abstract_methods() == SPEC_ABSTRACT
    written = [name for name, value in vars(store_class).items() if inspect.iscoroutinefunction(value)]
    assert written == SPEC_ABSTRACT
    assert unwritten_methods(store_class) == SPEC_ABSTRACT
    store = module.make_store(str(skeleton))
    assert isinstance(store, ThreadRunStore)
    with pytest.raises(NotImplementedError):
        store.load_thread("t1").send(None)


def test_each_method_names_the_rules_its_contract_docstring_cites(skeleton: Path) -> None:
    """A method's docstring is the contract's, plus a `Keeps:` list of rule IDs with their summaries."""
    module = _import(skeleton / "dict_store.py")
    for name in SPEC_ABSTRACT:
        doc = inspect.getdoc(getattr(module.DictStore, name)) or ""
        contract_doc = inspect.getdoc(getattr(ThreadRunStore, name)) or ""
        assert doc.startswith(contract_doc), name
        keeps = doc.split("Keeps:\n", 1)[1]
        assert keeps.startswith("- "), name
        cited = [
            rule_id for rule_id in conformance.RULES if f"({rule_id}" in contract_doc or f" {rule_id})" in contract_doc
        ]
        assert [rule_id for rule_id in cited if f"- {rule_id}: " not in keeps] == [], name
    checkpoint = inspect.getdoc(module.DictStore.checkpoint) or ""
    assert "- CKP-6: " in checkpoint
    assert "`now_ms`" in checkpoint


def test_every_helper_the_skeleton_names_is_public() -> None:
    """The helpers a skeleton's docstrings point at are importable from `conformance` (or methods of the store)."""
    for method, helpers in HELPERS.items():
        assert method in SPEC_ABSTRACT
        for helper in helpers:
            owner, _, attribute = helper.rpartition(".")
            if owner == "self":
                assert hasattr(ThreadRunStore, attribute), helper
            elif owner:
                assert owner in conformance.__all__, helper
                assert hasattr(getattr(conformance, owner), attribute), helper
            else:
                assert helper in conformance.__all__, helper


def test_the_skeleton_passes_the_linter(skeleton: Path) -> None:
    """The written modules have no unused import and no undefined name (ruff's pyflakes and pycodestyle rules)."""
    ruff = Path(sys.executable).with_name("ruff")
    if not ruff.is_file():
        pytest.skip("ruff is not installed beside python (pip install -e '.[test]')")
    result = subprocess.run(
        [str(ruff), "check", "--isolated", "--select", "E,F,W", "--line-length", "120", "."],
        cwd=skeleton,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout


def _brief(result: subprocess.CompletedProcess[str]) -> str:
    output = result.stdout + result.stderr
    assert result.returncode == 4, output
    assert len(output.splitlines()) <= MAX_LINES, output
    assert "not implemented yet: " + ", ".join(SPEC_ABSTRACT) in output
    return output


def test_the_kit_on_a_fresh_skeleton_lists_what_to_write(skeleton: Path) -> None:
    """`--store skeleton.py:make_store`: exit status 4 and one line naming the 13 methods, no test run."""
    output = _brief(_run("-m", "conformance", "--store", "dict_store.py:make_store", cwd=skeleton))
    assert "conformance summary" not in output


def test_pytest_on_the_fresh_skeleton_lists_what_to_write(skeleton: Path) -> None:
    """`pytest test_dict_store.py`: exit status 4, the same list, and no rule blamed for a store that cannot run."""
    output = _brief(_run("-m", "pytest", "-p", "no:cacheprovider", "test_dict_store.py", cwd=skeleton))
    assert "1 failed" in output
    assert "violates" not in output


def test_new_refuses_to_overwrite(tmp_path: Path) -> None:
    """An existing backend or test module: exit status 2, a named error, and nothing written or changed."""
    (tmp_path / "mine.py").write_text("KEEP = 1\n", encoding="utf-8")
    result = _run("-m", "conformance", "new", "mine.py", cwd=tmp_path)
    assert result.returncode == 2
    assert "error: refusing to overwrite mine.py" in result.stderr
    assert (tmp_path / "mine.py").read_text(encoding="utf-8") == "KEEP = 1\n"
    assert not (tmp_path / "test_mine.py").exists()
    (tmp_path / "test_other.py").write_text("", encoding="utf-8")
    with pytest.raises(SkeletonError, match=r"refusing to overwrite .*test_other\.py"):
        write_skeleton(tmp_path / "other.py")
    assert not (tmp_path / "other.py").exists()


@pytest.mark.parametrize(
    ("name", "problem"),
    [("my-store.py", "not a Python module name"), ("notes.txt", "a .py file"), ("test_x.py", "pytest would collect")],
)
def test_new_refuses_a_path_that_is_no_backend_module(tmp_path: Path, name: str, problem: str) -> None:
    """A name the test module could not import, or that pytest would collect, is refused with what to do."""
    with pytest.raises(SkeletonError, match=problem):
        write_skeleton(tmp_path / name)
    assert list(tmp_path.iterdir()) == []


def test_new_names_the_class_so_it_shadows_no_contract_name(tmp_path: Path) -> None:
    """`new thread` adds `.py` and names the class MyThread, not Thread, which the module imports."""
    written = write_skeleton(tmp_path / "pkg" / "thread")
    assert (written.backend.name, written.class_name) == ("thread.py", "MyThread")
    assert _import(written.backend).MyThread.__mro__[1] is ThreadRunStore


class _HalfWritten(ReferenceStore):
    """A store part way through the skeleton: one method written, two still marked."""

    async def load_thread(self, thread_id: str) -> Thread | None:
        return await super().load_thread(thread_id)

    @unwritten
    async def save_thread(self, thread: Thread) -> None:
        raise NotImplementedError

    @unwritten
    def latest_run(self, thread_id: str) -> None:  # type: ignore[override]  # a plain method, still marked
        raise NotImplementedError


def test_the_set_up_check_lists_only_the_methods_still_marked() -> None:
    """Written methods drop off the list; a marked method is listed as unwritten, not as a plain (sync) one."""
    assert store_problems(_HalfWritten()) == [
        "_HalfWritten: not implemented yet: save_thread, latest_run (write each method, then delete its @unwritten)"
    ]
    assert store_problems(ReferenceStore()) == []
