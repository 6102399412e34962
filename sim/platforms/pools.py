"""Idle execution-environment pools, one per Lambda reuse policy.

- ``mru``: the most recently idled environment first (what AWS is observed to do).
- ``newest``: the most recently *created* environment first (SimFaaS's policy).
- ``random``: any idle environment, uniformly (uses the request's routing uniform).

Every pool supports O(1) or O(log n) `add`, `remove` (an idle environment is reclaimed) and
`pick` (take one for a request, or None when the pool is empty).
"""
from __future__ import annotations

import heapq
from collections import OrderedDict


class MruPool:
    def __init__(self):
        self._od: OrderedDict = OrderedDict()

    def __len__(self):
        return len(self._od)

    def add(self, e) -> None:
        self._od[e.id] = e

    def remove(self, e) -> None:
        del self._od[e.id]

    def pick(self, u: float):
        return self._od.popitem(last=True)[1] if self._od else None


class NewestPool:
    def __init__(self):
        self._heap: list = []
        self._live: dict = {}  # id -> (env, tag)
        self._tag = 0

    def __len__(self):
        return len(self._live)

    def add(self, e) -> None:
        self._tag += 1
        self._live[e.id] = (e, self._tag)
        heapq.heappush(self._heap, (-e.id, self._tag))
        if len(self._heap) > 2 * len(self._live) + 64:  # drop stale entries
            self._heap = [(-i, tag) for i, (_, tag) in self._live.items()]
            heapq.heapify(self._heap)

    def remove(self, e) -> None:
        del self._live[e.id]

    def pick(self, u: float):
        heap, live = self._heap, self._live
        while heap:
            neg_id, tag = heapq.heappop(heap)
            entry = live.get(-neg_id)
            if entry is not None and entry[1] == tag:
                del live[-neg_id]
                return entry[0]
        return None


class RandomPool:
    def __init__(self):
        self._items: list = []
        self._pos: dict = {}

    def __len__(self):
        return len(self._items)

    def add(self, e) -> None:
        self._pos[e.id] = len(self._items)
        self._items.append(e)

    def _take(self, i: int):
        items = self._items
        e = items[i]
        last = items.pop()
        if last is not e:
            items[i] = last
            self._pos[last.id] = i
        del self._pos[e.id]
        return e

    def remove(self, e) -> None:
        self._take(self._pos[e.id])

    def pick(self, u: float):
        n = len(self._items)
        return self._take(min(int(u * n), n - 1)) if n else None


POOLS = {"mru": MruPool, "newest": NewestPool, "random": RandomPool}
