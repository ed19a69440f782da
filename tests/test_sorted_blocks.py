"""`SortedBlocks`, the reference store's index list, against a plain sorted list.

With blocks of a handful of keys, a few dozen updates split and merge blocks many
times over; every read must still agree with `sorted(keys)`.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conformance.kit._scenarios import thread
from reference_store import _sorted
from reference_store._sorted import SortedBlocks
from reference_store._thread_index import ThreadIndex, _ActivityIds

#: Small blocks: split above 8 keys, merge below 2.
LOAD = 4


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_sorted, "_LOAD", LOAD)


def _check(keys: SortedBlocks[int], expected: list[int]) -> None:
    """Every read of `keys` agrees with `expected`, and the blocks keep their invariants."""
    assert list(keys) == expected
    assert len(keys) == len(expected)
    blocks = keys._blocks
    assert all(blocks), "an empty block was kept"
    assert keys._maxes == [block[-1] for block in blocks]
    assert all(len(block) <= 2 * LOAD for block in blocks)
    for index in range(-len(expected), len(expected)):
        assert keys[index] == expected[index]
    for index in (len(expected), -len(expected) - 1):
        with pytest.raises(IndexError, match=r"^SortedBlocks index out of range$"):
            keys[index]
    for start in range(-2, len(expected) + 2):
        for stop in range(start - 1, len(expected) + 3):
            assert keys[start:stop] == expected[start:stop], (start, stop)
    assert keys[::2] == expected[::2]
    assert keys[::-1] == expected[::-1]
    for key in range(-1, 62, 3):
        assert list(keys.from_key(key)) == [k for k in expected if k >= key]


@given(st.lists(st.tuples(st.booleans(), st.integers(0, 60)), max_size=120))
def test_updates_keep_every_read_equal_to_a_sorted_list(updates: list[tuple[bool, int]]) -> None:
    """Adds and removes in any order, with splits and merges, read back as `sorted(keys)`."""
    keys: SortedBlocks[int] = SortedBlocks()
    present: set[int] = set()
    for add, key in updates:
        if add and key not in present:
            keys.add(key)
            present.add(key)
        elif not add and key in present:
            keys.remove(key)
            present.discard(key)
        else:
            continue
        _check(keys, sorted(present))


def test_ascending_fill_then_drain_from_both_ends() -> None:
    """Forty keys added in order split into blocks; removing from the front and back merges them away."""
    keys: SortedBlocks[int] = SortedBlocks()
    present = list(range(40))
    for key in present:
        keys.add(key)
    _check(keys, present)
    assert len(keys._blocks) > 2
    while present:
        key = present.pop(0 if len(present) % 2 else -1)
        keys.remove(key)
        _check(keys, present)
    assert keys._blocks == []
    assert keys._maxes == []


def test_a_merge_too_big_for_one_block_splits_again() -> None:
    """A block shrunk to one key merges with a full neighbour (2 * LOAD keys) and splits back in two."""
    keys: SortedBlocks[int] = SortedBlocks()
    present = list(range(12))
    for key in present:
        keys.add(key)
    assert [len(block) for block in keys._blocks] == [LOAD, 2 * LOAD]
    for key in (1, 2, 3):
        keys.remove(key)
        present.remove(key)
        _check(keys, present)
    assert [len(block) for block in keys._blocks] == [LOAD, LOAD + 1]


def test_out_of_range_index_says_so() -> None:
    """Reading past either end is an IndexError that names the container."""
    keys: SortedBlocks[int] = SortedBlocks()
    keys.add(1)
    for index in (1, -2):
        with pytest.raises(IndexError, match=r"^SortedBlocks index out of range$"):
            keys[index]


def test_thread_ids_in_activity_order_read_by_position() -> None:
    """The index's id view reads one position as the slice of it does, both ends included."""
    index = ThreadIndex()
    for number in range(12):
        index.put(thread(f"t{number:02d}", updated_at=number % 5))
    view = _ActivityIds(index._activity)
    ordered = view[0 : len(view)]
    assert [view[position] for position in range(len(view))] == ordered
    assert view[-1] == ordered[-1]
    assert ordered == index.ids_in_order(0, 100)


def test_blocks_ahead_of_others_split_and_merge_without_touching_their_neighbours() -> None:
    """A split of the first block, and a merge-and-split of the first two, keep every later block."""
    keys: SortedBlocks[int] = SortedBlocks()
    present = list(range(0, 400, 10))
    for key in present:
        keys.add(key)
    assert [len(block) for block in keys._blocks[:2]] == [LOAD, LOAD]
    for key in range(41, 45):  # fill the second block to 2 * LOAD keys, just short of a split
        keys.add(key)
        present.append(key)
    present.sort()
    _check(keys, present)
    assert len(keys._blocks[1]) == 2 * LOAD
    blocks = len(keys._blocks)
    for key in (10, 20, 30):  # the first block shrinks to one key, merges (9 keys) and splits again
        keys.remove(key)
        present.remove(key)
        _check(keys, present)
    assert len(keys._blocks) == blocks
    for key in range(1, 10):  # the first block grows past 2 * LOAD and splits
        keys.add(key)
        present.append(key)
    present.sort()
    _check(keys, present)
    assert len(keys._blocks) > blocks
