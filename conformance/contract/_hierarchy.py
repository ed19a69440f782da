"""The hierarchy walks (HIE-1..4, DEL-5) as generators, shared by async defaults and sync stores.

A walk yields the id it needs next and is sent back what the store holds for it, so
the same rules run over `await store.load_thread(...)` and over a plain dict.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence

from conformance.contract._errors import ValidationError
from conformance.contract._models import Thread, normalize_lineage_id

__all__ = ["cascade_walk", "hierarchy_walk"]

HierarchyWalk = Generator[str, Thread | None, None]
CascadeWalk = Generator[str, Sequence[Thread], list[str]]


def hierarchy_walk(thread_id: str, parent_thread_id: str | None) -> HierarchyWalk:
    """Check that `thread_id` may take `parent_thread_id` (HIE-1..4): yields ids to load, is sent the threads.

    Walks up from the parent. Returns normally when the chain ends at a root (a blank
    or `None` parent passes at once). Raises `ValidationError` when the parent is the
    thread itself, when a thread repeats (a cycle), when the parent is missing
    ("parent thread not found") or an ancestor further up is ("missing ancestor").
    A store that checks the hierarchy inside its own lock or transaction drives it
    with its own reads, synchronous or not:

        walk = hierarchy_walk(thread_id, parent_thread_id)
        try:
            wanted = next(walk)
            while True:
                wanted = walk.send(threads.get(wanted))  # or: await load(wanted)
        except StopIteration:
            pass  # the parent is fine
    """
    root_parent = normalize_lineage_id(parent_thread_id)
    if root_parent is None:
        return
    if root_parent == thread_id:
        raise ValidationError(f"thread {thread_id!r} cannot parent itself")
    visited = {thread_id}
    current = root_parent
    while True:
        if current in visited:
            raise ValidationError(f"thread hierarchy cycle detected at {current!r} (parent of {thread_id!r})")
        visited.add(current)
        thread = yield current
        if thread is None:
            if current == root_parent:
                raise ValidationError(f"parent thread not found: {root_parent!r}")
            raise ValidationError(f"thread hierarchy references missing ancestor {current!r}")
        parent = normalize_lineage_id(thread.parent_thread_id)
        if parent is None:
            return
        current = parent


def cascade_walk(thread_id: str) -> CascadeWalk:
    """Order a cascade delete (DEL-4, DEL-5): yields parent ids, is sent their direct children.

    Its return value (the `StopIteration`'s `value`) is the ids to delete,
    descendants before ancestors, `thread_id` last. Raises `ValidationError` when a
    thread is reached twice (a cycle, DEL-5), before anything is deleted:

        walk = cascade_walk(thread_id)
        try:
            parent = next(walk)
            while True:
                parent = walk.send(children_of(parent))
        except StopIteration as done:
            doomed = done.value
    """
    visited: set[str] = set()
    stack: list[tuple[str, bool]] = [(thread_id, False)]
    order: list[str] = []
    while stack:
        current, expanded = stack.pop()
        if expanded:
            order.append(current)
            continue
        if current in visited:
            raise ValidationError(f"thread hierarchy cycle detected at {current!r} while deleting {thread_id!r}")
        visited.add(current)
        stack.append((current, True))
        children = sorted((yield current), key=lambda t: t.id)
        stack.extend((child.id, False) for child in reversed(children))
    return order
