"""Rate control: the finest quantiser step whose coded bytes fit a budget.

One implementation serves ``codec.encode`` (a whole file against the requested average rate) and
``StreamEncoder`` (one packet against its share of the budget).
"""
from __future__ import annotations

from typing import Callable

G_MIN, G_MAX = 48, 255  # step indices the rate control searches (step sizes 2^-5 … 2^7.9)


def search_step(fits: Callable[[int], bool], start: int) -> int:
    """Smallest step index in [G_MIN, G_MAX] that ``fits`` (size falls as the index grows): gallop
    from ``start`` to a bracket, then bisect. G_MAX if nothing fits."""
    lo = hi = start
    step = 4
    if fits(hi):
        while hi > G_MIN:
            lo = max(G_MIN, hi - step)
            if not fits(lo):
                break
            hi, step = lo, step * 2
        else:
            return G_MIN
    else:
        while lo < G_MAX:
            hi = min(G_MAX, lo + step)
            if fits(hi):
                break
            lo, step = hi, step * 2
        else:
            return G_MAX
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if fits(mid):
            hi = mid
        else:
            lo = mid
    return hi


def fit(code: Callable[[int], bytes], budget: float, start: int) -> tuple[int, bytes]:
    """The finest step index whose ``code(step_index)`` is at most ``budget`` bytes (G_MAX's if none is),
    searched from ``start`` (the caller's best guess) → (step_index, its bytes). Each index is coded once."""
    cache: dict[int, bytes] = {}

    def coded(step_index: int) -> bytes:
        if step_index not in cache:
            cache[step_index] = code(step_index)
        return cache[step_index]

    best = search_step(lambda step_index: len(coded(step_index)) <= budget, start)
    return best, coded(best)
