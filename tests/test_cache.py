from __future__ import annotations

from svc.core.lru import WeightedLru


def test_evicts_least_recently_used_first_by_weight() -> None:
    lru: WeightedLru[str, list[str]] = WeightedLru(5, len)
    lru.put("a", ["x", "y"])
    lru.put("b", ["x", "y"])
    assert lru.get("a") == ["x", "y"]  # a is now the most recently used
    lru.put("c", ["x", "y"])  # 6 > 5: b, the least recently used, goes
    assert "b" not in lru and "a" in lru and "c" in lru
    assert lru.total_weight == 4


def test_the_newest_entry_stays_even_over_budget() -> None:
    lru: WeightedLru[str, list[int]] = WeightedLru(3, len)
    lru.put("small", [1])
    lru.put("huge", list(range(10)))
    assert len(lru) == 1 and lru.peek("huge") is not None
    assert lru.total_weight == 10


def test_replacing_and_popping_keep_the_weight_right() -> None:
    lru: WeightedLru[str, list[int]] = WeightedLru(100, len)
    lru.put("a", [1, 2, 3])
    lru.put("a", [1])
    assert lru.total_weight == 1
    assert lru.pop("a") == [1] and lru.pop("a") is None
    assert lru.total_weight == 0 and len(lru) == 0
