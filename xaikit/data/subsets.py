"""Evaluation subsets: seeded and class-stratified, so a 2000-image subset of ImageNet's validation set covers
every class it can, and the same seed always picks the same images."""
from __future__ import annotations

import random
from collections import defaultdict
from typing import Sequence


def stratified_indices(labels: Sequence, n: int, seed: int = 0) -> list[int]:
    """``n`` indices into ``labels`` (ints; multi-label items: their first label), sorted: every class is
    drawn once (in a seeded random class order, a seeded random image of each) before any class is drawn
    twice, and so on. ``n >= len(labels)`` returns every index."""
    total = len(labels)
    if n >= total:
        return list(range(total))
    if n <= 0:
        return []
    by_class: dict = defaultdict(list)
    for i, y in enumerate(labels):
        key = y if isinstance(y, int) else (list(y)[0] if hasattr(y, "__iter__") and len(list(y)) else -1)
        by_class[int(key)].append(i)
    rng = random.Random(int(seed))
    classes = sorted(by_class)
    rng.shuffle(classes)
    for c in classes:
        rng.shuffle(by_class[c])
    out: list[int] = []
    depth = 0
    while len(out) < n:
        for c in classes:
            if depth < len(by_class[c]):
                out.append(by_class[c][depth])
                if len(out) == n:
                    break
        depth += 1
    return sorted(out)
