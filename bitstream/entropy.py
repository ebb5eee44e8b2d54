"""Backward-adaptive entropy model for integer residuals, with bit-exact integer tables (SPEC §7).

Each residual ``r`` in ``[-MAX_RESIDUAL, MAX_RESIDUAL]`` is coded under one of ``N_TABLES``
two-sided geometric tables (``freq ∝ θ^|r|``). Which table is used for coefficient ``k`` at
group ``t`` depends only on earlier residuals of that coefficient, through an integer running
mean of ``|r|`` (Q4 fixed point), so encoder and decoder choose identical tables without side
information and without floating point. The tables themselves are built once from θ in Q10
fixed point with Python integer arithmetic (θ comes from +, ×, / and sqrt, which IEEE-754
rounds identically everywhere; ``tests/test_entropy.py`` pins a hash of the bank).
"""
from __future__ import annotations

import hashlib
import math
from functools import lru_cache

import numpy as np

MAX_RESIDUAL = 127
ALPHABET = 2 * MAX_RESIDUAL + 1
N_TABLES = 16
TABLE_TOTAL_BITS = 16
STATE_INIT = 16  # Q4: initial mean |r| of 1.0


@lru_cache(maxsize=1)
def _bank() -> tuple[np.ndarray, np.ndarray]:
    """(tables (N_TABLES, ALPHABET) int64, thresholds (N_TABLES - 1,) int64 in Q4)."""
    means = [0.08]
    for _ in range(N_TABLES - 1):
        means.append(means[-1] * 1.4)  # mean |r| of table s: 0.08 … ~12
    tables = []
    for mu in means:
        theta_q10 = int(round((math.sqrt(1.0 + mu * mu) - 1.0) / mu * 1024))
        theta_q10 = min(max(theta_q10, 1), 1023)
        row = [max(1, (1 << TABLE_TOTAL_BITS) * theta_q10 ** abs(r) // 1024 ** abs(r))
               for r in range(-MAX_RESIDUAL, MAX_RESIDUAL + 1)]
        tables.append(row)
    thresholds = [int(round((a + b) / 2 * 16)) for a, b in zip(means, means[1:])]
    return np.asarray(tables, dtype=np.int64), np.asarray(thresholds, dtype=np.int64)


def table_bank() -> np.ndarray:
    """The integer frequency tables, shape (N_TABLES, ALPHABET)."""
    return _bank()[0]


def bank_digest() -> str:
    """SHA-256 of the table bank and thresholds (what the bitstream depends on)."""
    tables, thresholds = _bank()
    return hashlib.sha256(tables.tobytes() + thresholds.tobytes()).hexdigest()


def table_index(state: np.ndarray) -> np.ndarray:
    """Q4 running mean |r| (int64, any shape) → table index per entry."""
    return np.searchsorted(_bank()[1], state, side="right")


def update(state: np.ndarray, residual: np.ndarray) -> np.ndarray:
    """Integer update of the running mean: state ← (3·state + 16·|r|) // 4."""
    return (3 * state + 16 * np.abs(residual)) >> 2


# Initial states for the short packets of the streaming modes (mode id → (intra, inter), Q4 per
# coefficient): a packet's first group is coded from zero (intra), the rest as differences
# (inter), and with 3 groups per packet there is no time to adapt from STATE_INIT. Measured as
# 16·mean|q| and 16·mean|Δq| on 24 LJSpeech training clips at each mode's typical step.
PACKET_PRIORS: dict[int, tuple[tuple[int, ...], tuple[int, ...]]] = {
    16: ((120, 117, 45, 29, 32, 23, 18, 11, 8, 14, 5, 8, 3, 5, 8, 2, 3, 1, 2, 2),
         (40, 23, 14, 10, 8, 6, 5, 4, 4, 4, 3, 3, 2, 2, 3, 2, 2, 1, 2, 1)),
    17: ((285, 279, 107, 69, 76, 56, 43, 27, 22, 35, 15, 21, 11, 14, 20, 10, 11, 8, 10, 8, 10, 7, 8, 6, 6, 6,
          5, 5, 5, 4, 4, 3),
         (95, 55, 34, 23, 19, 15, 11, 10, 9, 9, 8, 7, 7, 6, 5, 5, 5, 5, 5, 5, 5, 4, 4, 4, 4, 4, 3, 3, 3, 3, 3, 2)),
}
# The 32 ms modes' priors follow the packet's step: (reference step index, intra, inter) measured
# as above (streaming front end, 2-group packets) and scaled by 2^((g_ref − g)/16) for step index
# g, so that a coarse packet codes its near-zero values cheaply. Integer arithmetic only.
SCALED_PRIORS: dict[int, tuple[int, tuple[int, ...], tuple[int, ...]]] = {
    18: (140, (83, 83, 29, 19, 20, 14, 11, 7, 5, 9, 2, 5, 1, 2, 3, 1, 1, 0, 1, 1),
         (31, 18, 11, 8, 7, 5, 4, 3, 3, 4, 2, 3, 1, 2, 3, 1, 1, 0, 1, 1)),
    19: (118, (214, 215, 75, 51, 52, 38, 29, 19, 15, 24, 11, 15, 8, 10, 14, 7, 8, 5, 7, 6, 7, 4, 6, 4, 4, 4, 3,
               3, 3, 2, 2, 1),
         (80, 46, 28, 20, 18, 13, 11, 10, 9, 9, 8, 7, 7, 6, 6, 5, 5, 5, 5, 4, 5, 4, 4, 3, 3, 3, 3, 3, 3, 2, 2, 1)),
    # the 64 ms modes: `python benches/packet_priors.py --mode M --g G` (48 LibriSpeech training clips)
    20: (150, (70, 48, 12, 15, 6, 4, 2, 2, 1, 1, 0, 0),
         (28, 14, 8, 6, 4, 4, 2, 2, 1, 1, 0, 0)),
    21: (120, (256, 175, 47, 56, 26, 21, 16, 14, 11, 10, 7, 7, 6, 6, 5, 4, 3, 3, 3, 2),
         (102, 51, 28, 20, 17, 13, 11, 10, 8, 8, 7, 6, 5, 5, 4, 4, 3, 3, 3, 3)),
    22: (135, (135, 92, 25, 29, 14, 11, 8, 7, 5, 4, 3, 3, 2, 2, 1, 1, 1, 0, 0, 0),
         (35, 18, 11, 8, 7, 6, 5, 5, 4, 3, 3, 2, 2, 1, 1, 1, 1, 0, 0, 0)),
    23: (115, (322, 219, 61, 70, 34, 27, 21, 19, 14, 14, 10, 10, 9, 8, 7, 6, 6, 5, 5, 4, 4, 3, 3, 3, 2, 2, 2, 2, 2, 2,
               2, 1),
         (82, 42, 27, 20, 16, 14, 12, 11, 10, 9, 8, 8, 7, 6, 6, 5, 5, 5, 4, 4, 4, 3, 3, 3, 2, 2, 2, 2, 2, 1, 1, 1)),
}
_POW2_Q16 = (65536, 68438, 71468, 74632, 77936, 81386, 84990, 88752, 92682, 96785, 101070, 105545, 110218,
             115098, 120194, 125515)  # round(65536 · 2^(k/16))


def packet_prior(mode_id: int, g: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(intra, inter) initial states of a streaming packet of mode ``mode_id`` at step index ``g``."""
    if mode_id not in SCALED_PRIORS:
        return PACKET_PRIORS[mode_id]
    g_ref, intra, inter = SCALED_PRIORS[mode_id]
    d = g_ref - g  # states scale by 2^(d/16): floor(v · 2^(d mod 16 / 16) · 2^(d // 16)), d // 16 ≤ 12
    mul, shift = _POW2_Q16[d % 16], 16 - d // 16
    return tuple(v * mul >> shift for v in intra), tuple(v * mul >> shift for v in inter)


def _states(coefs: int, prior) -> tuple[np.ndarray, np.ndarray | None]:
    """Initial state and the state after the first group (None: keep adapting)."""
    if prior is None:
        return np.full(coefs, STATE_INIT, dtype=np.int64), None
    intra, inter = (np.asarray(v, dtype=np.int64) for v in prior)
    if len(intra) != coefs or len(inter) != coefs:
        raise ValueError(f"prior has {len(intra)}/{len(inter)} entries for {coefs} coefficients")
    return intra, inter


def table_rows(residuals: np.ndarray, prior=None) -> np.ndarray:
    """Which table of :func:`table_bank` codes each residual of (..., groups, coefs), in row-major
    order → (..., groups*coefs) int64; leading axes are independent packets. ``prior``: optional
    (intra, inter) initial states (see ``PACKET_PRIORS``)."""
    state, after_first = _states(residuals.shape[-1], prior)
    idx = np.empty(residuals.shape, dtype=np.int64)
    for t in range(residuals.shape[-2]):
        idx[..., t, :] = table_index(state)
        state = after_first if (t == 0 and after_first is not None) else update(state, residuals[..., t, :])
    return idx.reshape(*residuals.shape[:-2], -1)


def decode_residuals(decoder, groups: int, coefs: int, prior=None) -> np.ndarray:
    """Decode residuals (groups, coefs) from a :class:`~bitstream.RangeDecoder`, adapting as it goes."""
    tables, _ = _bank()
    state, after_first = _states(coefs, prior)
    out = np.empty((groups, coefs), dtype=np.int64)
    for t in range(groups):
        out[t] = decoder.decode(tables, offset=-MAX_RESIDUAL, rows=table_index(state))
        state = after_first if (t == 0 and after_first is not None) else update(state, out[t])
    return out


# Voicing flags: a first-order Markov model, row = previous flag (0 before a packet's first group).
FLAG_TABLES = np.array([[7, 1], [1, 7]], dtype=np.int64)


def flag_rows(flags: np.ndarray) -> np.ndarray:
    """Which row of ``FLAG_TABLES`` codes each of the 0/1 ``flags`` (n,), in order: the previous flag."""
    return np.concatenate([[0], flags[:-1]]).astype(np.int64)


def decode_flags(decoder, n: int) -> np.ndarray:
    out, prev = np.empty(n, dtype=np.int64), 0
    for t in range(n):
        prev = out[t] = decoder.decode(FLAG_TABLES[prev], n=1)[0]
    return out
