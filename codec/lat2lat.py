"""lat2lat: conditional flow matching in the latent domain (restores what latent quantisation removed).

The same velocity network as mel2mel (:class:`codec.mel2mel.Mel2Mel`, with ``n_mels`` = latent
channels) runs on the 12.5 Hz latent measured in quantiser steps (``z / step``), where every
stream's rounding error lies in [-0.5, 0.5] whatever its rate. It carries the prior
``q + sigma · noise`` around the received integers ``q`` to an estimate of the encoder's
unrounded latent; the latent decoder then turns that into a mel for the vocoder. Conditioning
(channel concat): ``q``, the pitch rows averaged over each group, and the quantiser rows.

Shapes: latents ``(batch, channels, groups)``; pitch rows ``(batch, 2, frames)``. Weights: the bundle
add-on ``lat2lat``, or the one made for a kept latent generation (``latent_v1_lat2lat``; :func:`load`).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from . import mel2mel
from .mel2mel import Mel2Mel, quantiser_rows


def load(bundle) -> Mel2Mel | None:
    """The lat2lat flow model made for ``bundle``'s latent generation (``lat2lat.json`` + ``.safetensors``,
    or e.g. ``latent_v1_lat2lat.*``; the config under ``lat2lat``), or None when the bundle has none."""
    return mel2mel.load(bundle, bundle.latent_addon("lat2lat"), "lat2lat")


def condition(q: torch.Tensor, pitch_rows: torch.Tensor, step_size: torch.Tensor, decimation: int) -> torch.Tensor:
    """(B, C, L) latent in quantiser steps, (B, 2, frames) pitch rows, (L,) step sizes → (B, C + 2 + 3, L)
    conditioning."""
    groups = q.shape[-1]
    pitch_rows = F.pad(pitch_rows, (0, groups * decimation - pitch_rows.shape[-1]), mode="replicate")
    pooled = F.avg_pool1d(pitch_rows, decimation)[..., :groups]
    rows = quantiser_rows(step_size, q.shape[1], decimation, groups).to(q).expand(q.shape[0], -1, -1)
    return torch.cat([q, pooled, rows], dim=1)


def restore(model: Mel2Mel, latent: torch.Tensor, pitch_rows: torch.Tensor, step_size: torch.Tensor, decimation: int,
            steps: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Dequantised latent (B, C, L), its (L,) step sizes → restored latent (B, C, L) after ``steps`` Euler steps."""
    scale = step_size.to(latent).reshape(1, 1, -1)
    cond = condition(latent / scale, pitch_rows, step_size, decimation)
    return model.sample(cond, steps, generator) * scale
