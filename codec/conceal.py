"""Packet-loss concealment, the same for calls and files: lost frames repeat the last good frame's
features (log-mel, voicing, log-F0) for ``HOLD_FRAMES`` frames, then the log-mel fades toward
silence by ``FADE_PER_FRAME`` nats (≈4.3 dB) per frame with voicing off; the next good packet resumes.
"""
from __future__ import annotations

import numpy as np
import torch

from .mel_repr import SILENCE_LOGMEL

HOLD_FRAMES, FADE_PER_FRAME = 2, 0.5


def hold_and_fade(last: torch.Tensor | None, n_mels: int, run: int, frames: int) -> torch.Tensor:
    """Features (1, n_mels + 2, frames) for ``frames`` lost frames that follow ``run`` already concealed
    ones; ``last`` (1, n_mels + 2, 1) is the last good frame (None: nothing heard yet → silence)."""
    if last is None:
        block = torch.zeros(1, n_mels + 2, frames)
        block[:, :n_mels] = SILENCE_LOGMEL
        return block
    j = torch.arange(run + 1, run + frames + 1, dtype=torch.float32)
    block = last.repeat(1, 1, frames)
    fade = FADE_PER_FRAME * torch.clamp(j - HOLD_FRAMES, min=0)
    block[0, :n_mels] = torch.clamp(block[0, :n_mels] - fade, min=SILENCE_LOGMEL)
    block[0, n_mels] *= (j <= HOLD_FRAMES).float()  # voicing off once fading
    return block


def conceal(features: torch.Tensor, lost: np.ndarray, n_mels: int) -> torch.Tensor:
    """Features (1, n_mels + 2, frames) with every run of ``lost`` (frames,) bool frames replaced by
    :func:`hold_and_fade` of the frame before it."""
    out = features.clone()
    edges = np.flatnonzero(np.diff(np.concatenate([[0], lost.astype(np.int8), [0]])))
    for start, end in zip(edges[::2], edges[1::2]):
        last = out[..., start - 1: start] if start else None
        out[..., start:end] = hold_and_fade(last, n_mels, 0, end - start)
    return out
