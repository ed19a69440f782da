"""Contract tests: the thread hierarchy (HIE-1..6)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from conformance.contract._errors import ValidationError
from conformance.contract._models import Thread, ThreadMetadata
from conformance.contract._stores import ThreadRunStore
from conformance.kit._boundary import answering
from conformance.kit._differ import diff
from conformance.kit._runner import rule
from conformance.kit._scenarios import Tree, snapshot, thread, tree


def _chain(*ids: str) -> Tree:
    """The nested shape of a single line of descent: `_chain("a", "b")` is `{"a": {"b": {}}}`."""
    shape: Tree = {}
    for thread_id in reversed(ids):
        shape = {thread_id: shape}
    return shape


async def _ring(store: ThreadRunStore, *ids: str) -> None:
    """Save a cycle with plain `save_thread`: each thread's parent is the next, the last's the first."""
    for position, thread_id in enumerate(ids):
        await store.save_thread(thread(thread_id, parent=ids[(position + 1) % len(ids)]))


def _descendants(depth: int) -> list[str]:
    return [f"d{level}" for level in range(1, depth + 1)]


def _by_id(threads: Sequence[Thread]) -> list[Thread]:
    return sorted(threads, key=lambda t: t.id)


def _full(thread_id: str, *, parent: str | None) -> Thread:
    """A thread with every field set, to check that children come back whole."""
    return Thread(
        id=thread_id,
        resource_id="res",
        parent_thread_id=parent,
        metadata=ThreadMetadata(created_at=3, updated_at=4, title=f"title {thread_id}", custom={"k": [1, "v"]}),
        active_run_id="r-active",
        open_run_id="r-open",
        latest_run_id="r-latest",
        latest_run_updated_at=9,
    )


class HierarchyRules:
    """HIE-1..6: validating a parent, saving with the check, and listing direct children."""

    # ── HIE-1 ─────────────────────────────────────────────────────────

    @rule("HIE-1")
    @pytest.mark.parametrize("parent", [None, "", "   "], ids=["none", "empty", "blank"])
    async def test_validate_passes_without_parent(self, store: ThreadRunStore, parent: str | None) -> None:
        """A thread with no parent (None, empty or blank) needs no check, stored or not."""
        with answering("HIE-1", about_ids=True):
            await store.validate_thread_hierarchy("new", parent)
        await store.save_thread(thread("stored"))
        with answering("HIE-1", about_ids=True):
            await store.validate_thread_hierarchy("stored", parent)

    @rule("HIE-1", "HIE-5")
    async def test_save_validated_stores_root_thread(self, store: ThreadRunStore) -> None:
        """A root thread passes the check and is saved as given."""
        await store.save_thread_validated(thread("root", title="T", updated_at=5))
        found, due = await store.load_thread("root"), thread("root", title="T", updated_at=5)
        assert found == due, f"load_thread('root') after save_thread_validated: {diff(found, due)}"

    # ── HIE-2 ─────────────────────────────────────────────────────────

    @rule("HIE-2")
    @pytest.mark.parametrize("stored", [False, True], ids=["unsaved", "saved"])
    async def test_validate_rejects_thread_as_its_own_parent(self, store: ThreadRunStore, stored: bool) -> None:
        """validate("t", "t") raises ValidationError, whether or not t is stored."""
        if stored:
            await store.save_thread(thread("t"))
        with pytest.raises(ValidationError):
            await store.validate_thread_hierarchy("t", "t")

    @rule("HIE-2")
    async def test_validate_rejects_own_id_with_spaces_as_parent(self, store: ThreadRunStore) -> None:
        """validate("t", " t ") raises ValidationError: the parent is normalized before comparing."""
        await store.save_thread(thread("t"))
        with pytest.raises(ValidationError), answering("HIE-2", about_ids=True):
            await store.validate_thread_hierarchy("t", " t ")

    # ── HIE-3 ─────────────────────────────────────────────────────────

    @rule("HIE-3")
    @pytest.mark.parametrize("depth", [1, 2, 5])
    async def test_validate_rejects_parent_below_the_thread(self, store: ThreadRunStore, depth: int) -> None:
        """With a <- d1 <- ... <- dN stored, giving a the parent dN closes a cycle: ValidationError."""
        below = _descendants(depth)
        await tree(store, _chain("a", *below))
        with pytest.raises(ValidationError):
            await store.validate_thread_hierarchy("a", below[-1])

    @rule("HIE-3")
    @pytest.mark.parametrize("ring", [["x", "y"], ["x", "y", "z", "w"]], ids=["length-2", "length-4"])
    async def test_validate_rejects_cycle_above_the_parent(self, store: ThreadRunStore, ring: list[str]) -> None:
        """A parent whose ancestors loop (x <- y <- x), not through the thread, raises ValidationError."""
        await _ring(store, *ring)
        with pytest.raises(ValidationError):
            await store.validate_thread_hierarchy("new", ring[0])

    @rule("HIE-3")
    async def test_validate_rejects_cycle_further_up(self, store: ThreadRunStore) -> None:
        """A sound stretch p <- q that leads into a loop x <- y <- x still raises ValidationError."""
        await _ring(store, "x", "y")
        await tree(store, {"p": {"q": {}}}, parent="x")
        with pytest.raises(ValidationError):
            await store.validate_thread_hierarchy("new", "q")

    @rule("HIE-3", "HIE-4")
    @pytest.mark.parametrize("thread_id", ["new", "c", "other"])
    async def test_validate_passes_sound_chain(self, store: ThreadRunStore, thread_id: str) -> None:
        """With a <- b <- c stored, a new thread, c itself, or another root may take c's chain up to a."""
        await tree(store, {"a": {"b": {"c": {}}}, "other": {}})
        parent = "b" if thread_id == "c" else "c"
        await store.validate_thread_hierarchy(thread_id, parent)

    # ── HIE-4 ─────────────────────────────────────────────────────────

    @rule("HIE-4")
    async def test_validate_rejects_missing_parent(self, store: ThreadRunStore) -> None:
        """A parent that is not stored raises ValidationError ("parent thread not found")."""
        await store.save_thread(thread("other"))
        with pytest.raises(ValidationError):
            await store.validate_thread_hierarchy("t", "ghost")

    @rule("HIE-4")
    async def test_validate_rejects_a_parent_no_store_can_hold(self, store: ThreadRunStore) -> None:
        """A parent id with a lone surrogate ("\\ud800") is never stored, so it is not found either."""
        await store.save_thread(thread("other"))
        with pytest.raises(ValidationError), answering("HIE-4", about_ids=True):
            await store.validate_thread_hierarchy("t", "\ud800")

    @rule("HIE-4")
    @pytest.mark.parametrize("depth", [1, 3])
    async def test_validate_rejects_missing_ancestor(self, store: ThreadRunStore, depth: int) -> None:
        """A stored parent whose chain leads up to a thread that is not stored raises ValidationError."""
        chain = _descendants(depth)
        await tree(store, _chain(*chain), parent="gone")
        with pytest.raises(ValidationError):
            await store.validate_thread_hierarchy("t", chain[-1])

    @rule("HIE-4")
    async def test_validate_rejects_parent_deleted_earlier(self, store: ThreadRunStore) -> None:
        """After deleting a's parent g, giving a new thread the parent a raises ValidationError."""
        await tree(store, {"g": {"a": {}}})
        await store.delete_thread("g")
        with pytest.raises(ValidationError):
            await store.validate_thread_hierarchy("t", "a")

    # ── HIE-5 ─────────────────────────────────────────────────────────

    @rule("HIE-5", "THR-2")
    async def test_save_validated_stores_child_with_lineage_normalized(self, store: ThreadRunStore) -> None:
        """A child of a stored chain is saved, its parent stripped of spaces."""
        await tree(store, {"a": {"b": {}}})
        await store.save_thread_validated(_full("c", parent="  b "))
        found, due = await store.load_thread("c"), _full("c", parent="b")
        assert found == due, f"load_thread('c') after save_thread_validated with parent '  b ': {diff(found, due)}"

    @rule("HIE-5", "THR-2")
    async def test_save_validated_takes_a_blank_parent_as_none(self, store: ThreadRunStore) -> None:
        """A blank parent passes the check (HIE-1) and the thread is stored as a root."""
        await store.save_thread_validated(thread("t", parent="   ", resource=" r", title="T"))
        found, due = await store.load_thread("t"), thread("t", resource="r", title="T")
        assert found == due, f"load_thread('t') after save_thread_validated with a blank parent: {diff(found, due)}"

    @rule("HIE-5")
    async def test_save_validated_overwrites_with_new_parent(self, store: ThreadRunStore) -> None:
        """Moving b from under a to under c, a sound move, overwrites b."""
        await tree(store, {"a": {"b": {}}, "c": {}})
        await store.save_thread_validated(thread("b", parent="c", title="moved"))
        found, due = await store.load_thread("b"), thread("b", parent="c", title="moved")
        assert found == due, f"load_thread('b') after save_thread_validated moved it under c: {diff(found, due)}"

    @rule("HIE-5")
    @pytest.mark.parametrize(
        "refused",
        [
            thread("a", parent="a", title="self"),
            thread("a", parent="c", title="cycle"),
            thread("x", parent="ghost"),
            thread("x", parent="orphan"),
            thread("c", parent="orphan", title="overwrite"),
            Thread(id=" "),
        ],
        ids=["own-parent", "cycle", "missing-parent", "missing-ancestor", "overwrite-missing-ancestor", "invalid"],
    )
    async def test_save_validated_refusal_stores_nothing(self, store: ThreadRunStore, refused: Thread) -> None:
        """A save that fails the check raises ValidationError and leaves the store as it was."""
        await tree(store, {"a": {"b": {"c": {}}}})
        await store.save_thread(thread("orphan", parent="gone"))
        before = await snapshot(store, "x")
        with pytest.raises(ValidationError):
            await store.save_thread_validated(refused)
        after = await snapshot(store, "x")
        assert after == before, (
            f"save_thread_validated refused {refused.id!r} but changed the store: {diff(after, before)}"
        )

    # ── HIE-6 ─────────────────────────────────────────────────────────

    @rule("HIE-6")
    async def test_list_children_returns_direct_children_only(self, store: ThreadRunStore) -> None:
        """a's children b and c are listed; b's child d and the other tree x <- y are not."""
        await tree(store, {"a": {"b": {"d": {}}, "c": {}}, "x": {"y": {}}})
        children = await store.list_child_threads("a")
        ids = sorted(child.id for child in children)
        assert ids == ["b", "c"], f"list_child_threads('a') gives ids {ids}; expected ['b', 'c'], its direct children"

    @rule("HIE-6")
    async def test_list_children_of_a_padded_id_strips_it(self, store: ThreadRunStore) -> None:
        """list_child_threads(" a ") lists the children of a: the id is normalized as MOD-1 says."""
        await tree(store, {"a": {"b": {}}, "c": {}})
        with answering("HIE-6", about_ids=True):
            children = await store.list_child_threads(" a ")
        ids = [child.id for child in children]
        assert ids == ["b"], f"list_child_threads(' a ') gives ids {ids}; expected ['b'], the children of 'a'"

    @rule("HIE-6")
    async def test_list_children_returns_full_threads(self, store: ThreadRunStore) -> None:
        """Each child comes back whole, equal to what `load_thread` reads of it.

        What `save_thread` keeps of a thread (the parent normalized, every field) is THR-2
        and MOD-1..5's business: compared with the store's own reads, a store that drops a
        field on save breaks those rules, not this one.
        """
        await store.save_thread(thread("p"))
        await store.save_thread(_full("c1", parent="p"))
        await store.save_thread(_full("c2", parent=" p\t"))
        stored = [await store.load_thread("c1"), await store.load_thread("c2")]
        children = _by_id(await store.list_child_threads("p"))
        assert children == stored, f"list_child_threads('p') is not what load_thread reads: {diff(children, stored)}"

    @rule("HIE-6")
    async def test_list_children_of_unknown_or_childless_parent_is_empty(self, store: ThreadRunStore) -> None:
        """A parent that does not exist, or has no child, has no children: []."""
        await tree(store, {"a": {"leaf": {}}})
        for parent in ["ghost", "leaf"]:
            children = await store.list_child_threads(parent)
            assert children == [], f"list_child_threads({parent!r}): {diff(children, [])}"

    @rule("HIE-6")
    async def test_list_children_of_a_blank_parent_is_empty(self, store: ThreadRunStore) -> None:
        """A blank parent id names no thread, so it has no children, whatever roots exist."""
        await tree(store, {"a": {"b": {}}, "c": {}})
        with answering("HIE-6", about_ids=True):
            for blank in ["", "   "]:
                children = await store.list_child_threads(blank)
                assert children == [], f"list_child_threads({blank!r}) of a blank id: {diff(children, [])}"

    @rule("HIE-6")
    async def test_list_children_follows_moves(self, store: ThreadRunStore) -> None:
        """A child re-saved under another parent leaves the old parent's list and joins the new one's.

        The lists follow the parent `load_thread` reads (a store that ignores the second
        save breaks THR-2, not this rule).
        """
        await tree(store, {"a": {"b": {}}, "c": {}})
        await store.save_thread(thread("b", parent="c"))
        moved = await store.load_thread("b")
        assert moved is not None, "load_thread('b') gives None for a thread just saved"
        parent = moved.parent_thread_id
        for listed in ["a", "c"]:
            children, due = await store.list_child_threads(listed), [moved] if parent == listed else []
            assert children == due, (
                f"b's parent reads {parent!r}; list_child_threads({listed!r}): {diff(children, due)}"
            )

    @rule("HIE-6", "THR-4")
    async def test_list_children_drops_deleted_child(self, store: ThreadRunStore) -> None:
        """A deleted child is no longer listed; its sibling is."""
        await tree(store, {"a": {"b": {}, "c": {}}})
        await store.delete_thread("b")
        children, due = await store.list_child_threads("a"), [thread("c", parent="a")]
        assert children == due, f"list_child_threads('a') after delete_thread('b'): {diff(children, due)}"
