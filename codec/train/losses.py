"""Spectral reconstruction losses for vocoder training."""
from __future__ import annotations

import torch
from torch import nn

from ..features import LogMel, MelConfig


class MultiResolutionSTFTLoss(nn.Module):
    """Spectral convergence + log-magnitude L1 averaged over several STFT resolutions."""

    def __init__(self, resolutions=((512, 128), (1024, 256), (2048, 512))):
        super().__init__()
        self.resolutions = resolutions
        for n_fft, _ in resolutions:
            self.register_buffer(f"win{n_fft}", torch.hann_window(n_fft), persistent=False)

    def forward(self, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        loss = 0.0
        for n_fft, hop in self.resolutions:
            w = getattr(self, f"win{n_fft}")
            Y = torch.stft(y, n_fft, hop, window=w, return_complex=True).abs().clamp(min=1e-7)
            X = torch.stft(x, n_fft, hop, window=w, return_complex=True).abs().clamp(min=1e-7)
            loss = loss + torch.linalg.norm(X - Y) / torch.linalg.norm(X) + (X.log() - Y.log()).abs().mean()
        return loss / len(self.resolutions)


class MultiScaleMelLoss(nn.Module):
    """L1 between log-mels at several (n_fft, hop, n_mels) scales."""

    def __init__(self, scales=((512, 128, 40), (1024, 256, 80), (2048, 512, 128))):
        super().__init__()
        self.mels = nn.ModuleList(LogMel(MelConfig(n_fft=n, hop=h, n_mels=m)) for n, h, m in scales)

    def forward(self, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return sum((m(y) - m(x)).abs().mean() for m in self.mels) / len(self.mels)
