"""Vocos-style vocoder: ConvNeXt backbone + iSTFT head.

Input (batch, n_mels + n_aux, frames): log-mel stacked with ``n_aux`` conditioning rows
(voicing and log-F0, see ``codec.pitch.features``); output (batch, (frames - 1) · hop) at 16 kHz.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class VocoderConfig:
    n_mels: int = 80
    n_aux: int = 2
    dim: int = 256
    intermediate: int = 768
    layers: int = 6
    kernel: int = 7
    n_fft: int = 1024
    hop: int = 256


class ConvNeXtBlock(nn.Module):
    """Depthwise conv → LayerNorm → pointwise MLP, with layer scale and a residual (Vocos)."""

    def __init__(self, dim: int, intermediate: int, kernel: int, layer_scale: float):
        super().__init__()
        self.dwconv = nn.Conv1d(dim, dim, kernel, padding=kernel // 2, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, intermediate)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(intermediate, dim)
        self.gamma = nn.Parameter(layer_scale * torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, T)
        y = self.dwconv(x).transpose(1, 2)
        y = self.pwconv2(self.act(self.pwconv1(self.norm(y))))
        return x + (self.gamma * y).transpose(1, 2)


class ISTFTHead(nn.Module):
    """Predicts log-magnitude and phase per STFT bin, then inverts with torch.istft."""

    def __init__(self, dim: int, n_fft: int, hop: int):
        super().__init__()
        self.n_fft, self.hop = n_fft, hop
        self.out = nn.Linear(dim, n_fft + 2)
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, C) → (B, samples)
        mag, phase = self.out(x).transpose(1, 2).chunk(2, dim=1)
        mag = torch.exp(mag).clamp(max=1e2)
        spec = torch.polar(mag, phase)
        return torch.istft(spec, self.n_fft, self.hop, window=self.window, center=True)


class Vocoder(nn.Module):
    """Features (batch, n_mels + n_aux, frames) → waveform (batch, (frames - 1) * hop) at 16 kHz."""

    def __init__(self, cfg: VocoderConfig = VocoderConfig()):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Conv1d(cfg.n_mels + cfg.n_aux, cfg.dim, cfg.kernel, padding=cfg.kernel // 2)
        self.norm = nn.LayerNorm(cfg.dim, eps=1e-6)
        self.blocks = nn.ModuleList(
            ConvNeXtBlock(cfg.dim, cfg.intermediate, cfg.kernel, 1.0 / cfg.layers) for _ in range(cfg.layers))
        self.final_norm = nn.LayerNorm(cfg.dim, eps=1e-6)
        self.head = ISTFTHead(cfg.dim, cfg.n_fft, cfg.hop)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        x = self.norm(self.embed(features).transpose(1, 2)).transpose(1, 2)
        for block in self.blocks:
            x = block(x)
        return self.head(self.final_norm(x.transpose(1, 2)))
