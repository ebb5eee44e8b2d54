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


class PhaseLoss(nn.Module):
    """Phase losses after APNet (arXiv 2305.07952) between two complex STFTs (B, bins, frames): the
    instantaneous phase, the group delay (its difference across bins) and the instantaneous frequency
    (across frames), each scored as the chord |e^{iφ̂} − e^{iφ}| = 2 sin(|φ̂ − φ| / 2) of the wrapped
    error (no wrapping issue, bounded gradients), weighted by the target's magnitude so that the bins
    that carry the speech count and noise bins do not. Needs no discriminator; the absolute (IP) term
    cannot be learnt where the phase rotates an excitation whose pulse times are not the clip's, and
    2,000 steps of it moved no dev number of the learned-phase run (docs/results.md). Returns
    (IP + GD + IF) / 3, in 0 … 2."""

    def forward(self, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        w = x.abs().detach()

        def unit(z: torch.Tensor) -> torch.Tensor:
            return z / (z.abs() + 1e-6)

        def chord(a: torch.Tensor, b: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
            return (weight * (unit(a) - unit(b)).abs()).sum() / weight.sum().clamp(min=1e-8)

        u, v = unit(y), unit(x)
        ip = chord(u, v, w)
        gd = chord(u[:, 1:] * u[:, :-1].conj(), v[:, 1:] * v[:, :-1].conj(), torch.minimum(w[:, 1:], w[:, :-1]))
        inst = chord(u[..., 1:] * u[..., :-1].conj(), v[..., 1:] * v[..., :-1].conj(),
                     torch.minimum(w[..., 1:], w[..., :-1]))
        return (ip + gd + inst) / 3
