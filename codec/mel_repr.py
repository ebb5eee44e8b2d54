"""Mel representation: log-mel → DCT over mels (cepstrum) → truncate → time-decimate.

Shapes: mel ``(batch, n_mels, frames)`` at 62.5 Hz; coefficients ``(batch, n_coefs, groups)``
with ``groups = ceil(frames / decimation)``. The inverse zero-fills the dropped cepstral
coefficients and linearly interpolates back to the mel frame rate. Quantisation of the
coefficients (:mod:`bitstream.payload`) is uniform with step ``step_size * coef_weights[k]``
(coarser for higher quefrencies).
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from scipy.fft import dct

from bitstream.payload import coef_weights

MEL_MEAN = -5.0  # natural-log units; centres c0 so silence and speech are both near zero
SILENCE_LOGMEL = math.log(1e-5)  # log-mel of digital silence (the front end's floor)
# The log-mel a decoder hands its vocoder, nats: wider than any encoder's (the front end's floor is ln 1e-5 ≈ −11.5;
# a full-scale input stays under 4), so a valid stream is never changed, and narrow enough that e^mel is finite.
LOGMEL_RANGE = (-20.0, 8.0)


def dct_matrix(n_mels: int) -> torch.Tensor:
    """Orthonormal DCT-II matrix (n_mels, n_mels): coefs = D @ mel."""
    return torch.from_numpy(dct(np.eye(n_mels), type=2, norm="ortho", axis=0).astype(np.float32))


def mel_to_coefs(mel: torch.Tensor, n_coefs: int, decimation: int) -> torch.Tensor:
    """(B, n_mels, T) → (B, n_coefs, ceil(T / decimation))."""
    d = dct_matrix(mel.shape[1])[:n_coefs].to(mel)
    c = torch.einsum("km,bmt->bkt", d, mel - MEL_MEAN)
    if decimation > 1:
        c = F.avg_pool1d(F.pad(c, (0, -c.shape[-1] % decimation), mode="replicate"), decimation)
    return c


def coefs_to_mel(coefs: torch.Tensor, n_mels: int, decimation: int, frames: int) -> torch.Tensor:
    """(B, n_coefs, G) → (B, n_mels, frames)."""
    if decimation > 1:
        coefs = F.interpolate(coefs, scale_factor=decimation, mode="linear", align_corners=False)
    coefs = coefs[..., :frames]
    d = dct_matrix(n_mels)[: coefs.shape[1]].to(coefs)
    return torch.einsum("km,bkt->bmt", d, coefs) + MEL_MEAN


def degrade(mel: torch.Tensor, n_coefs: int, decimation: int, step_size: float) -> torch.Tensor:
    """What the codec does to a mel at these settings (quantise + reconstruct), for training."""
    c = mel_to_coefs(mel, n_coefs, decimation)
    w = step_size * torch.from_numpy(coef_weights(n_coefs)).to(mel)[None, :, None]
    return coefs_to_mel(torch.round(c / w) * w, mel.shape[1], decimation, mel.shape[-1])


def silence_coefs(n_mels: int, n_coefs: int) -> np.ndarray:
    """Cepstral coefficients (n_coefs,) of a silent frame."""
    return mel_to_coefs(torch.full((1, n_mels, 1), SILENCE_LOGMEL), n_coefs, 1)[0, :, 0].numpy()


def clamp_logmel(mel: torch.Tensor) -> torch.Tensor:
    """A log-mel (any shape, nats) clamped to ``LOGMEL_RANGE``, NaN mapped to silence: what a vocoder can render."""
    lo, hi = LOGMEL_RANGE
    return torch.nan_to_num(mel, nan=SILENCE_LOGMEL).clamp(lo, hi)


def smooth_frames(mel: torch.Tensor, left: torch.Tensor | None = None) -> torch.Tensor:
    """(batch, n_mels, frames) log-mel low-passed along time by [1, 2, 1] / 4 (edge frames repeated;
    ``left`` (batch, n_mels, 1): the frame before the first instead, e.g. the previous packet's last).

    The decoders' post-filter for dequantised cepstra: their quantisation error changes from frame to
    frame, which the vocoder renders as roughness, while speech envelopes change more slowly. Its
    measured effect (and how it was measured) is in docs/results.md, "The vocoder: bake-off, diagnosis,
    design" (files) and "Smoothing the streamed mel" (calls).
    """
    padded = torch.cat([mel[..., :1] if left is None else left, mel, mel[..., -1:]], dim=-1)
    return (padded[..., :-2] + 2 * padded[..., 1:-1] + padded[..., 2:]) / 4


def smooth_packets(mel: torch.Tensor, frames: int) -> torch.Tensor:
    """:func:`smooth_frames` as the streaming decoder applies it, ``frames`` frames (a packet) at a time:
    each packet's first frame sees the previous packet's last, its last frame repeats itself (no
    look-ahead). (batch, n_mels, T) → the same shape."""
    chunks = torch.split(mel, frames, dim=-1)
    return torch.cat([smooth_frames(c, None if i == 0 else chunks[i - 1][..., -1:]) for i, c in enumerate(chunks)],
                     dim=-1)
