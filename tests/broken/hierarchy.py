"""Broken stores of the hierarchy area: each breaks one of HIE-1..6."""

from __future__ import annotations

from broken import Broken
from conformance import Thread, ValidationError, normalize_lineage_id
from reference_store import ReferenceStore


class BlankParentLookedUp(ReferenceStore):
    """Looks up any parent that is not None, as `WHERE id = $parent` would, so "" and "  " are not found."""

    async def validate_thread_hierarchy(self, thread_id: str, parent_thread_id: str | None) -> None:
        if parent_thread_id is not None and await self.load_thread(parent_thread_id) is None:
            raise ValidationError(f"parent thread not found: {parent_thread_id!r}")
        await super().validate_thread_hierarchy(thread_id, parent_thread_id)


class SelfParentAccepted(ReferenceStore):
    """Checks the parent exists, then walks up from the parent's parent: a stored thread may parent itself."""

    async def validate_thread_hierarchy(self, thread_id: str, parent_thread_id: str | None) -> None:
        parent_id = normalize_lineage_id(parent_thread_id)
        if parent_id is None:
            return
        parent = await self.load_thread(parent_id)
        if parent is None:
            raise ValidationError(f"parent thread not found: {parent_id!r}")
        seen = {thread_id, parent_id}
        current = parent.parent_thread_id
        while current is not None:
            if current in seen:
                raise ValidationError(f"cycle at {current!r}")
            seen.add(current)
            ancestor = await self.load_thread(current)
            if ancestor is None:
                raise ValidationError(f"missing ancestor {current!r}")
            current = ancestor.parent_thread_id


class DepthGuardInsteadOfCycleCheck(ReferenceStore):
    """Walks up comparing each ancestor with the thread only, giving up quietly after 100 levels."""

    async def validate_thread_hierarchy(self, thread_id: str, parent_thread_id: str | None) -> None:
        current = normalize_lineage_id(parent_thread_id)
        for level in range(100):
            if current is None:
                return
            if current == thread_id:
                raise ValidationError(f"thread {thread_id!r} would be its own ancestor")
            ancestor = await self.load_thread(current)
            if ancestor is None:
                raise ValidationError("parent thread not found" if level == 0 else f"missing ancestor {current!r}")
            current = ancestor.parent_thread_id


class ShallowCycleCheck(ReferenceStore):
    """Refuses only a parent whose own parent is the thread; deeper loops back to it pass."""

    async def validate_thread_hierarchy(self, thread_id: str, parent_thread_id: str | None) -> None:
        parent_id = normalize_lineage_id(parent_thread_id)
        if parent_id == thread_id:
            raise ValidationError(f"thread {thread_id!r} cannot parent itself")
        seen: set[str] = set()
        current = parent_id
        while current is not None and current not in seen and current != thread_id:
            seen.add(current)
            ancestor = await self.load_thread(current)
            if ancestor is None:
                raise ValidationError("parent thread not found" if current == parent_id else "missing ancestor")
            if current == parent_id and ancestor.parent_thread_id == thread_id:
                raise ValidationError(f"thread {thread_id!r} is the parent of {parent_id!r}")
            current = ancestor.parent_thread_id


class DanglingAncestorIsRoot(ReferenceStore):
    """Checks the parent exists, then treats an ancestor that is not stored as the top of the chain."""

    async def validate_thread_hierarchy(self, thread_id: str, parent_thread_id: str | None) -> None:
        parent_id = normalize_lineage_id(parent_thread_id)
        if parent_id is None:
            return
        if parent_id == thread_id:
            raise ValidationError(f"thread {thread_id!r} cannot parent itself")
        if await self.load_thread(parent_id) is None:
            raise ValidationError(f"parent thread not found: {parent_id!r}")
        seen = {thread_id}
        current: str | None = parent_id
        while current is not None:
            if current in seen:
                raise ValidationError(f"cycle at {current!r}")
            seen.add(current)
            ancestor = await self.load_thread(current)
            current = None if ancestor is None else normalize_lineage_id(ancestor.parent_thread_id)


class MissingParentAllowed(ReferenceStore):
    """Lets a thread name a parent that does not exist yet ("it will be created later")."""

    async def validate_thread_hierarchy(self, thread_id: str, parent_thread_id: str | None) -> None:
        parent_id = normalize_lineage_id(parent_thread_id)
        if parent_id is not None and await self.load_thread(parent_id) is None:
            return
        await super().validate_thread_hierarchy(thread_id, parent_thread_id)


class UnencodableParentPasses(ReferenceStore):
    """Looks the parent up as UTF-8 and takes an id that cannot be encoded as nothing to check."""

    async def validate_thread_hierarchy(self, thread_id: str, parent_thread_id: str | None) -> None:
        try:
            (parent_thread_id or "").encode("utf-8")
        except UnicodeEncodeError:
            return
        await super().validate_thread_hierarchy(thread_id, parent_thread_id)


class SaveThenValidate(ReferenceStore):
    """Upserts first and checks after, without rolling back when the check fails."""

    async def save_thread_validated(self, thread: Thread) -> None:
        await self.save_thread(thread)
        await self.validate_thread_hierarchy(thread.id, thread.parent_thread_id)


class ChildrenIncludeDescendants(ReferenceStore):
    """Lists the whole subtree under the parent, as a path-prefix query would, not just the direct children."""

    async def list_child_threads(self, parent_thread_id: str) -> list[Thread]:
        async with self._lock:
            found: list[Thread] = []
            pending = [parent_thread_id]
            while pending:
                children = self._threads.children(pending.pop())
                found += [child.copy() for child in children]
                pending += [child.id for child in children]
            return sorted(found, key=lambda t: t.id)


class ChildSummariesOnly(ReferenceStore):
    """Returns children as id-and-parent summaries, dropping their metadata and run fields."""

    async def list_child_threads(self, parent_thread_id: str) -> list[Thread]:
        children = await super().list_child_threads(parent_thread_id)
        return [Thread(id=child.id, parent_thread_id=child.parent_thread_id) for child in children]


ZOO: list[Broken] = [
    Broken(BlankParentLookedUp, "HIE-1", "a blank parent is looked up as an id instead of meaning no parent"),
    Broken(SelfParentAccepted, "HIE-2", "the walk starts above the parent, so a stored thread may parent itself"),
    Broken(DepthGuardInsteadOfCycleCheck, "HIE-3", "a depth limit replaces the visited set: loops above pass"),
    Broken(ShallowCycleCheck, "HIE-3", "only a parent whose parent is the thread is refused; deeper cycles pass"),
    Broken(DanglingAncestorIsRoot, "HIE-4", "an ancestor that is not stored ends the walk instead of failing it"),
    # also HIE-2: validate('t', 't') of an unsaved t names a missing parent, accepted before the self-parent
    # check
    Broken(MissingParentAllowed, "HIE-4", "a parent that does not exist is accepted", also=("HIE-2",)),
    Broken(UnencodableParentPasses, "HIE-4", "a parent id that cannot be encoded (a lone surrogate) passes"),
    # also ATO-1, CON-3: a refused save keeps the thread it wrote (ATO-1); concurrent saves each check after
    # writing, so both of A->B and B->A stay (CON-3)
    Broken(
        SaveThenValidate,
        "HIE-5",
        "saves before checking and keeps the thread when the check fails",
        also=("ATO-1", "CON-3"),
    ),
    Broken(ChildrenIncludeDescendants, "HIE-6", "grandchildren and deeper are listed as children"),
    Broken(ChildSummariesOnly, "HIE-6", "children come back without metadata and run fields"),
]
