"""Resolve `--store TARGET` (`module:attr` or `path/to/file.py:attr`) to a store source."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from typing import Any

__all__ = ["DEFAULT_TARGET", "TargetError", "load_target"]

DEFAULT_TARGET = "reference_store:ReferenceStore"


class TargetError(ValueError):
    """`--store` names nothing importable; the message says what to fix."""


def load_target(target: str, *, base: Path) -> Any:
    """Import the object `target` names; relative file paths are resolved against `base`.

    Raises `TargetError` for a malformed target, a missing module or file, or a
    missing attribute.
    """
    location, sep, attribute = target.rpartition(":")
    if not sep or not location or not attribute:
        raise TargetError(f"--store {target!r}: expected 'module:attr' or 'path/to/file.py:attr'")
    if location.endswith(".py") or "/" in location or "\\" in location:
        module = _import_file((base / location).resolve(), target)
    else:
        if str(base) not in sys.path:
            sys.path.insert(0, str(base))
        try:
            module = importlib.import_module(location)
        except ImportError as error:
            raise TargetError(f"--store {target!r}: cannot import module {location!r}: {error}") from None
        except Exception as error:  # the module itself fails: a syntax error, a failing import-time call
            raise TargetError(f"--store {target!r}: importing module {location!r} failed: {error!r}") from error
    found = module
    for part in attribute.split("."):
        try:
            found = getattr(found, part)
        except AttributeError:
            raise TargetError(f"--store {target!r}: {location!r} has no attribute {attribute!r}") from None
    return found


def _import_file(path: Path, target: str) -> Any:
    if not path.is_file():
        raise TargetError(f"--store {target!r}: no file {str(path)!r}")
    name = f"_conformance_target_{abs(hash(str(path))):x}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:  # pragma: no cover - .py files always have a loader
        raise TargetError(f"--store {target!r}: cannot load {str(path)!r}")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.parent))
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as error:
        del sys.modules[name]
        raise TargetError(f"--store {target!r}: importing {str(path)!r} failed: {error!r}") from error
    return module
