"""The vocoder's input ("features"): (batch, n_mels + 2, frames) at 62.5 Hz, a log-mel (nats,
``codec.features``) with the two pitch rows of ``codec.pitch.features`` under it: [voicing 0/1,
log2(F0 / 170 Hz)].

Four places build it, each with its own mel (from coded values or from audio; clamped, smoothed or
restored as its decoder does) and its own pitch rows (from a stream's groups, held causally across
packets, or from a pitch track at a decimation); :func:`stack` is the one place they become the
vocoder's input, and :func:`track_rows` the pitch rows of a per-frame track (floors, training).
"""
from __future__ import annotations

import numpy as np
import torch

from . import pitch

N_PITCH_ROWS = 2  # [voicing, log2(F0 / 170 Hz)]


def stack(mel: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """Log-mel (B, n_mels, T) nats + pitch rows (B, 2, T) → the vocoder's input (B, n_mels + 2, T).

    Both must share batch, frame count, dtype and device (no silent promotion or broadcast)."""
    if mel.ndim != 3 or rows.ndim != 3 or rows.shape[1] != N_PITCH_ROWS:
        raise ValueError(f"want mel (B, n_mels, T) and rows (B, 2, T), got {tuple(mel.shape)} and {tuple(rows.shape)}")
    if mel.shape[0] != rows.shape[0] or mel.shape[2] != rows.shape[2]:
        raise ValueError(f"mel {tuple(mel.shape)} and pitch rows {tuple(rows.shape)} differ in batch or frames")
    if mel.dtype != rows.dtype or mel.device != rows.device:
        raise ValueError(f"mel ({mel.dtype}, {mel.device}) and pitch rows ({rows.dtype}, {rows.device}) differ")
    return torch.cat([mel, rows], dim=1)


def track_rows(f0: np.ndarray, voiced: np.ndarray, decimation: int, frames: int,
               causal: bool = False) -> torch.Tensor:
    """A per-frame pitch track (f0 Hz (n,), voiced bool (n,)) → its pitch rows (1, 2, frames) float32 as a
    stream with groups of ``decimation`` frames carries them (``causal``: as the streaming decoder makes them;
    ``codec.pitch.features``). Groups cover the whole track; a track longer than ``frames`` still steers the
    interpolation of the last rows (cut it first to make them depend on ``frames`` frames only)."""
    return torch.from_numpy(pitch.features(*pitch.group(f0, voiced, decimation), decimation, frames, causal))[None]
