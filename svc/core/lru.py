"""The project's one cache type: least recently used first out, bounded by weight (pure).

Every per-job cache is weighed in container ids, because a job's CID list is what makes
its entries large (docs/benchmarks.md#sizes-and-encoding-costs), so a count of entries bounds
nothing. The newest entry is kept even when it alone is over the budget.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class WeightedLru(Generic[K, V]):
    def __init__(self, max_weight: int, weight: Callable[[V], int]) -> None:
        self.max_weight = max_weight
        self._weight = weight
        self._items: OrderedDict[K, tuple[V, int]] = OrderedDict()
        self.total_weight = 0

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def get(self, key: K) -> V | None:
        """The value, now the most recently used; None when absent."""
        item = self._items.get(key)
        if item is None:
            return None
        self._items.move_to_end(key)
        return item[0]

    def peek(self, key: K) -> V | None:
        """The value without touching the order."""
        item = self._items.get(key)
        return None if item is None else item[0]

    def put(self, key: K, value: V) -> V:
        """Store `value` (replacing any), then evict the oldest while over the budget."""
        self.pop(key)
        weight = self._weight(value)
        self._items[key] = (value, weight)
        self.total_weight += weight
        while self.total_weight > self.max_weight and len(self._items) > 1:
            self.pop(next(iter(self._items)))
        return value

    def pop(self, key: K) -> V | None:
        item = self._items.pop(key, None)
        if item is None:
            return None
        self.total_weight -= item[1]
        return item[0]
