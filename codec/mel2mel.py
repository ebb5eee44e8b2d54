"""mel2mel: conditional flow matching in the log-mel domain (restores what quantisation removed).

The model maps a noisy mel ``x_t`` to the velocity of a straight path from the prior
``x_0 = dequantised mel + sigma · noise`` to the clean mel ``x_1`` (rectified flow with a
data-dependent prior, as Grad-TTS centres its prior on the encoder's output). Because the prior
already sits on the dequantised mel, a few Euler steps suffice. Conditioning (channel concat):
the dequantised mel, the pitch rows and three quantiser rows (log2 step / 4, kept cepstral
coefficients / 80, 1 / decimation), so one model serves every mel mode.

Shapes: mels ``(batch, n_mels, frames)`` in natural-log units at 62.5 Hz. Weights: the bundle add-on
``mel2mel`` (:func:`load`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from .bundle import typed

ADDON = "mel2mel"
N_QUANT = 3  # quantiser rows in the conditioning


@dataclass(frozen=True)
class Mel2MelConfig:
    n_mels: int = 80
    n_aux: int = 2
    dim: int = 192
    intermediate: int = 576
    layers: int = 8
    kernel: int = 7
    sigma: float = 1.0  # prior std around the dequantised mel (nats)


def load(bundle, name: str = ADDON, key: str = ADDON) -> "Mel2Mel | None":
    """The flow model in ``bundle``'s add-on ``name`` (``NAME.json``'s ``key`` object: a :class:`Mel2MelConfig`,
    + ``NAME.safetensors``), or None when the bundle has none."""
    return bundle.addon(name, lambda c: Mel2Mel(typed(Mel2MelConfig, c.get(key), f"{name}.json")))


def quantiser_rows(step_size, n_coefs: int, decimation: int, frames: int) -> torch.Tensor:
    """The quantiser's settings as conditioning rows (1, 3, frames); ``step_size`` (nats) is a number or per frame."""
    log_step = torch.log2(torch.as_tensor(step_size, dtype=torch.float32)).expand(frames) / 4
    return torch.stack([log_step, torch.full((frames,), n_coefs / 80), torch.full((frames,), 1 / decimation)])[None]


class AdaConvNeXtBlock(nn.Module):
    """ConvNeXt block whose LayerNorm is scaled and shifted by the flow time (adaptive norm)."""

    def __init__(self, dim: int, intermediate: int, kernel: int, layer_scale: float):
        super().__init__()
        self.dwconv = nn.Conv1d(dim, dim, kernel, padding=kernel // 2, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6, elementwise_affine=False)
        self.modulation = nn.Linear(dim, 2 * dim)
        self.pwconv1 = nn.Linear(dim, intermediate)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(intermediate, dim)
        self.gamma = nn.Parameter(layer_scale * torch.ones(dim))
        nn.init.zeros_(self.modulation.weight)
        nn.init.zeros_(self.modulation.bias)

    def forward(self, x: torch.Tensor, t_emb: torch.Tensor) -> torch.Tensor:  # (B, C, T), (B, C)
        scale, shift = self.modulation(t_emb)[:, None].chunk(2, dim=-1)
        y = self.norm(self.dwconv(x).transpose(1, 2)) * (1 + scale) + shift
        y = self.pwconv2(self.act(self.pwconv1(y)))
        return x + (self.gamma * y).transpose(1, 2)


class Mel2Mel(nn.Module):
    """Velocity field v(x_t, t | condition): (B, n_mels, T), (B,), (B, n_mels + n_aux + 3, T) → (B, n_mels, T)."""

    def __init__(self, cfg: Mel2MelConfig = Mel2MelConfig()):
        super().__init__()
        self.cfg = cfg
        n_cond = cfg.n_mels + cfg.n_aux + N_QUANT
        self.embed = nn.Conv1d(cfg.n_mels + n_cond, cfg.dim, cfg.kernel, padding=cfg.kernel // 2)
        self.time = nn.Sequential(nn.Linear(cfg.dim, cfg.dim), nn.GELU(), nn.Linear(cfg.dim, cfg.dim))
        self.blocks = nn.ModuleList(
            AdaConvNeXtBlock(cfg.dim, cfg.intermediate, cfg.kernel, 1.0 / cfg.layers) for _ in range(cfg.layers))
        self.final_norm = nn.LayerNorm(cfg.dim, eps=1e-6)
        self.out = nn.Linear(cfg.dim, cfg.n_mels)

    def time_embedding(self, t: torch.Tensor) -> torch.Tensor:
        half = self.cfg.dim // 2
        freqs = torch.exp(-math.log(1000.0) * torch.arange(half, device=t.device) / half)
        angles = 1000.0 * t[:, None] * freqs[None]
        return self.time(torch.cat([angles.sin(), angles.cos()], dim=-1))

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        h = self.embed(torch.cat([x, cond], dim=1))
        t_emb = self.time_embedding(t)
        for block in self.blocks:
            h = block(h, t_emb)
        return self.out(self.final_norm(h.transpose(1, 2))).transpose(1, 2)

    @torch.inference_mode()
    def sample(self, cond: torch.Tensor, steps: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Euler integration from the prior around the dequantised mel (cond's first rows) to a clean mel."""
        mel = cond[:, : self.cfg.n_mels]
        noise = torch.randn(mel.shape, generator=generator, dtype=mel.dtype)
        x = mel + self.cfg.sigma * noise
        for i in range(steps):
            t = torch.full((x.shape[0],), i / steps, dtype=x.dtype)
            x = x + self(x, t, cond) / steps
        return x
