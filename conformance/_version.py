"""The kit's version and the version of the rule set it checks."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

__all__ = ["RULES_VERSION", "__version__"]

try:
    __version__ = version("threadstore-conformance")
except PackageNotFoundError:  # pragma: no cover - running from a source tree that was never installed
    __version__ = "0+unknown"

#: The rule set's version: bumped when a rule is added (minor) or changed (major); IDs are never reused.
RULES_VERSION = "3.0"
