"""Mel restorer: one forward pass from a dequantised mel stream's log-mel toward the clean log-mel.

The ``direct`` decoder's fast path for mel streams: the cepstra inverted and low-passed in time
(``mel_repr.smooth_frames``) go through a ConvNeXt stack, conditioned on the pitch rows and the
quantiser's settings (``mel2mel.quantiser_rows``), that adds a correction (zero at initialisation,
so an untrained restorer is the plain smoothed mel). Trained with mel L1 and a discriminator on the
log-mel (``codec.train.restorer``); no noise, no steps.

Shapes: mels ``(batch, n_mels, frames)`` in nats at 62.5 Hz; pitch rows ``(batch, n_aux, frames)``;
quantiser rows ``(batch, 3, frames)``.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .mel2mel import N_QUANT
from .mel_repr import MEL_MEAN
from .vocoder import ConvNeXtBlock


@dataclass(frozen=True)
class RestorerConfig:
    n_mels: int = 80
    n_aux: int = 2
    dim: int = 192
    intermediate: int = 576
    layers: int = 6
    kernel: int = 7


class MelRestorer(nn.Module):
    """(B, n_mels, T) smoothed dequantised log-mel, (B, n_aux, T) pitch rows, (B, 3, T) quantiser rows
    → (B, n_mels, T) restored log-mel."""

    def __init__(self, cfg: RestorerConfig = RestorerConfig()):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Conv1d(cfg.n_mels + cfg.n_aux + N_QUANT, cfg.dim, cfg.kernel, padding=cfg.kernel // 2)
        self.blocks = nn.Sequential(*(ConvNeXtBlock(cfg.dim, cfg.intermediate, cfg.kernel, 1.0 / cfg.layers)
                                      for _ in range(cfg.layers)))
        self.norm = nn.LayerNorm(cfg.dim, eps=1e-6)
        self.out = nn.Linear(cfg.dim, cfg.n_mels)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, mel: torch.Tensor, aux: torch.Tensor, quantiser: torch.Tensor) -> torch.Tensor:
        h = self.blocks(self.embed(torch.cat([mel - MEL_MEAN, aux, quantiser], dim=1)))
        return mel + self.out(self.norm(h.transpose(1, 2))).transpose(1, 2)
