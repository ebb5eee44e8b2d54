"""Latent representation: a small mel autoencoder with a 12.5 Hz latent, trained for scalar quantisation.

The encoder maps log-mel (62.5 Hz) to ``channels`` latent rows at 62.5 / ``stride`` Hz; the codec
quantises them with a uniform step (``round(z / step)``) and entropy-codes the integers. Training
replaces rounding by additive uniform noise of the same width (noise-injection quantisation) and
adds a rate term, the bits of the noisy latent under a learned per-channel Laplace density, so
the latent is smooth and cheap to code (arXiv 2504.08470). The step is drawn per example over a
20× range (``STEP_RANGE``) and fed to the decoder, so one model serves every latent rate; the decoder also sees the
pitch rows the stream carries as side information.

Shapes: mel ``(batch, n_mels, frames)`` in nats; latent ``(batch, channels, frames / stride)``;
pitch rows ``(batch, n_aux, frames)``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from .mel_repr import MEL_MEAN
from .vocoder import ConvNeXtBlock

STEP_RANGE = (0.7, 14.0)  # latent quantiser steps seen in training


@dataclass(frozen=True)
class LatentConfig:
    n_mels: int = 80
    n_aux: int = 2
    channels: int = 16
    stride: int = 5  # mel frames per latent frame: 62.5 Hz → 12.5 Hz
    dim: int = 192
    intermediate: int = 576
    enc_layers: int = 3
    dec_layers: int = 5
    kernel: int = 7
    # blocks at the latent rate (#33): after the encoder's downsampling, before the decoder's upsampling
    # (a wider reach in time for 1/stride of the cost); 0: none, the shipped autoencoders' layout
    enc_low_layers: int = 0
    dec_low_layers: int = 0


def _blocks(cfg: LatentConfig, n: int) -> nn.Sequential:
    return nn.Sequential(*(ConvNeXtBlock(cfg.dim, cfg.intermediate, cfg.kernel, 1.0 / n) for _ in range(n)))


def _low_blocks(cfg: LatentConfig, n: int) -> nn.Module:
    """``n`` blocks at the latent rate, or the identity (no parameters) when ``n`` is 0."""
    return _blocks(cfg, n) if n else nn.Identity()


class LatentEncoder(nn.Module):
    """(B, n_mels, frames) → (B, channels, ceil(frames / stride)); frames are right-padded by repetition."""

    def __init__(self, cfg: LatentConfig):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Conv1d(cfg.n_mels, cfg.dim, cfg.kernel, padding=cfg.kernel // 2)
        self.blocks = _blocks(cfg, cfg.enc_layers)
        self.down = nn.Conv1d(cfg.dim, cfg.dim, cfg.stride, stride=cfg.stride)
        self.low = _low_blocks(cfg, cfg.enc_low_layers)
        self.norm = nn.LayerNorm(cfg.dim, eps=1e-6)
        self.out = nn.Linear(cfg.dim, cfg.channels)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        pad = -mel.shape[-1] % self.cfg.stride
        x = nn.functional.pad(mel - MEL_MEAN, (0, pad), mode="replicate") if pad else mel - MEL_MEAN
        h = self.low(self.down(self.blocks(self.embed(x))))
        return self.out(self.norm(h.transpose(1, 2))).transpose(1, 2)


class LatentDecoder(nn.Module):
    """(B, channels, L) dequantised latent, (B, n_aux, frames) pitch rows, step size → (B, n_mels, frames)."""

    def __init__(self, cfg: LatentConfig):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Conv1d(cfg.channels + 1, cfg.dim, 3, padding=1)
        self.low = _low_blocks(cfg, cfg.dec_low_layers)
        self.up = nn.ConvTranspose1d(cfg.dim, cfg.dim, cfg.stride, stride=cfg.stride)
        self.aux = nn.Conv1d(cfg.n_aux, cfg.dim, cfg.kernel, padding=cfg.kernel // 2)  # pitch rows (checkpoint key)
        self.blocks = _blocks(cfg, cfg.dec_layers)
        self.norm = nn.LayerNorm(cfg.dim, eps=1e-6)
        self.out = nn.Linear(cfg.dim, cfg.n_mels)

    def forward(self, z: torch.Tensor, pitch_rows: torch.Tensor, step_size) -> torch.Tensor:
        """``step_size``: the quantiser's, a number, (B,) or per latent frame (B, L)."""
        step = torch.as_tensor(step_size, dtype=z.dtype, device=z.device)
        step = step.reshape(1, 1, 1) if step.ndim == 0 else step.reshape(step.shape[0], 1, -1)
        rows = torch.log2(step).expand(z.shape[0], 1, z.shape[-1])
        frames = pitch_rows.shape[-1]
        h = self.up(self.low(self.embed(torch.cat([z, rows], dim=1))))[..., :frames]
        h = self.blocks(h + self.aux(pitch_rows))
        return self.out(self.norm(h.transpose(1, 2))).transpose(1, 2) + MEL_MEAN


class LatentAutoencoder(nn.Module):
    """Encoder, decoder and the per-channel Laplace scales of the training rate model."""

    def __init__(self, cfg: LatentConfig = LatentConfig()):
        super().__init__()
        self.cfg = cfg
        self.encoder = LatentEncoder(cfg)
        self.decoder = LatentDecoder(cfg)
        self.log_scale = nn.Parameter(torch.zeros(cfg.channels))

    def bits(self, z_noisy: torch.Tensor, step: torch.Tensor) -> torch.Tensor:
        """Bits of each noisy latent entry under the Laplace density convolved with the step's uniform
        noise: −log2(F(z + step/2) − F(z − step/2)). (B, C, L), (B,) → (B, C, L)."""
        b = self.log_scale.exp()[None, :, None]
        half = step.reshape(-1, 1, 1) / 2

        def cdf(x):
            return 0.5 + 0.5 * torch.sign(x) * (1 - torch.exp(-x.abs() / b))

        p = cdf(z_noisy + half) - cdf(z_noisy - half)
        return -torch.log2(p.clamp_min(1e-9))

    def forward(self, mel: torch.Tensor, pitch_rows: torch.Tensor, step: torch.Tensor):
        """Training pass with noise-injection quantisation → (reconstructed mel, bits per latent frame (B,))."""
        z = self.encoder(mel)
        noisy = z + (torch.rand_like(z) - 0.5) * step.reshape(-1, 1, 1)
        return self.decoder(noisy, pitch_rows, step), self.bits(noisy, step).sum(1).mean(-1)


def random_steps(n: int, generator: torch.Generator | None = None, step_range=STEP_RANGE) -> torch.Tensor:
    """(n,) steps log-uniform over ``step_range``."""
    lo, hi = (math.log(s) for s in step_range)
    return torch.exp(lo + (hi - lo) * torch.rand(n, generator=generator))
