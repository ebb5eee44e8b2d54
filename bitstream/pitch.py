"""The pitch grid of the payload (SPEC §7): voiced groups carry an index on a 1/24-octave grid from
60 Hz, ``F0 = 60 · 2^(i/24)`` Hz, ``i`` in ``[0, N_LEVELS)``, coded as steps from the previous voiced
group (the first one from ``REF_INDEX``). Estimating F0 from audio is the encoder's business
(``codec.pitch``).
"""
from __future__ import annotations

import numpy as np

F0_MIN, F0_MAX = 60.0, 420.0
STEPS_PER_OCTAVE = 24
N_LEVELS = int(np.ceil(STEPS_PER_OCTAVE * np.log2(F0_MAX / F0_MIN))) + 1  # 69
REF_INDEX = 36  # ~170 Hz: the prediction for a packet's first voiced group


def to_index(f0: np.ndarray) -> np.ndarray:
    """Hz → nearest grid index (int64, clipped to the grid)."""
    i = np.round(STEPS_PER_OCTAVE * np.log2(np.maximum(f0, 1e-3) / F0_MIN))
    return np.clip(i, 0, N_LEVELS - 1).astype(np.int64)
