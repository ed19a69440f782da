"""A sorted list of unique keys in blocks, so that an update moves one block, not the whole list."""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterator, Sequence
from itertools import accumulate, chain, islice
from typing import Protocol, Self, TypeVar, overload


class _Ordered(Protocol):
    def __lt__(self, other: Self, /) -> bool: ...


K = TypeVar("K", bound=_Ordered)

# Blocks split above 2 * _LOAD keys and merge with a neighbour below _LOAD // 2: an
# update shifts at most a few thousand pointers, and a position is found by summing
# the lengths of N / _LOAD blocks in C.
_LOAD = 1_000


class SortedBlocks(Sequence[K]):
    """Unique keys in ascending order, as consecutive sorted blocks.

    `add` and `remove` cost O(log N + _LOAD) instead of the O(N) memmove of `insort`
    on one flat list; reading by position costs O(N / _LOAD) (in C) plus the slice.

    >>> keys = SortedBlocks[int]()
    >>> keys.add(3); keys.add(1); keys.add(2); keys.remove(3)
    >>> list(keys), keys[-1], keys[0:1]
    ([1, 2], 2, [1])
    """

    __slots__ = ("_blocks", "_len", "_maxes")

    def __init__(self) -> None:
        self._blocks: list[list[K]] = []
        self._maxes: list[K] = []
        self._len = 0

    def __len__(self) -> int:
        return self._len

    def __iter__(self) -> Iterator[K]:
        return chain.from_iterable(self._blocks)

    def add(self, key: K) -> None:
        """Insert `key`, which must not be present."""
        blocks, maxes = self._blocks, self._maxes
        self._len += 1
        if not blocks:
            blocks.append([key])
            maxes.append(key)
            return
        i = min(bisect_left(maxes, key), len(maxes) - 1)
        block = blocks[i]
        insort(block, key)
        maxes[i] = block[-1]
        if len(block) > 2 * _LOAD:
            blocks[i : i + 1] = [block[:_LOAD], block[_LOAD:]]
            maxes[i : i + 1] = [block[_LOAD - 1], block[-1]]

    def remove(self, key: K) -> None:
        """Remove `key`, which must be present."""
        blocks, maxes = self._blocks, self._maxes
        i = bisect_left(maxes, key)
        block = blocks[i]
        del block[bisect_left(block, key)]
        self._len -= 1
        if len(block) >= _LOAD // 2 or len(blocks) == 1:
            if block:
                maxes[i] = block[-1]
            else:
                del blocks[i], maxes[i]
            return
        # Too small: merge into a neighbour, then split again if the merge is too big.
        j = i - 1 if i > 0 else i
        merged = blocks[j] + blocks[j + 1]
        blocks[j : j + 2] = [merged]
        maxes[j : j + 2] = [merged[-1]]
        if len(merged) > 2 * _LOAD:
            blocks[j : j + 1] = [merged[:_LOAD], merged[_LOAD:]]
            maxes[j : j + 1] = [merged[_LOAD - 1], merged[-1]]

    def from_key(self, key: K) -> Iterator[K]:
        """The keys `>= key`, in order."""
        i = bisect_left(self._maxes, key)
        if i == len(self._blocks):
            return iter(())
        block = self._blocks[i]
        return chain(islice(block, bisect_left(block, key), None), chain.from_iterable(self._blocks[i + 1 :]))

    @overload
    def __getitem__(self, index: int) -> K: ...
    @overload
    def __getitem__(self, index: slice) -> list[K]: ...
    def __getitem__(self, index: int | slice) -> K | list[K]:
        if isinstance(index, slice):
            start, stop, step = index.indices(self._len)
            if step != 1:
                return list(self)[index]
            return self._slice(start, stop)
        position = index + self._len if index < 0 else index
        if not 0 <= position < self._len:
            raise IndexError("SortedBlocks index out of range")
        if position == self._len - 1:
            return self._blocks[-1][-1]  # the last key (a thread's latest run) in O(1)
        return self._slice(position, position + 1)[0]

    def _slice(self, start: int, stop: int) -> list[K]:
        found: list[K] = []
        if start >= stop:
            return found
        ends = list(accumulate(map(len, self._blocks)))
        i = bisect_right(ends, start)
        offset = start - (ends[i - 1] if i else 0)
        wanted = stop - start
        while len(found) < wanted:
            found += self._blocks[i][offset : offset + wanted - len(found)]
            i, offset = i + 1, 0
        return found
