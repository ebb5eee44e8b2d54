"""Learned phase refinement between Griffin-Lim iterations (after Deep Griffin-Lim, Masuyama et al. 2019).

Griffin-Lim from the excitation phase stalls in a local optimum on the vocoder's magnitude: its phase
is what costs copy synthesis most of its WB-PESQ and DNSMOS (docs/results.md). This network sees the
magnitude, the current phase and what one Griffin-Lim projection makes of it, and predicts a complex
correction of that projection; Griffin-Lim iterations before and after it do the rest.
"""
from __future__ import annotations

import math

import torch
from torch import nn


class PhaseRefiner(nn.Module):
    """Magnitude and a phase (B, n_fft // 2 + 1, frames; the phase unit complex) → a corrected unit phase,
    starting as one plain Griffin-Lim projection (the output layer is zero at initialisation).

    2-D convolutions over (bins, frames), as the consistency of an STFT is local in both. Phases enter and
    leave demodulated by each bin's advance per hop (2π·bin·hop / n_fft), so a steady partial has the same
    phase in every frame and the convolutions need not know the bin they are at. Only the lowest ``bins``
    (0: all) are corrected; above them the projection stays plain Griffin-Lim, at a fraction of the cost."""

    def __init__(self, n_fft: int, hop: int, layers: int, channels: int = 16, bins: int = 0):
        super().__init__()
        self.n_fft, self.hop = n_fft, hop
        self.bins = bins or n_fft // 2 + 1
        self.inp = nn.Conv2d(5, channels, 3, padding=1)
        self.hidden = nn.ModuleList(nn.Conv2d(channels, channels, 3, padding=(2 ** i, 1), dilation=(2 ** i, 1))
                                    for i in range(layers))
        self.out = nn.Conv2d(channels, 2, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)

    def _advance(self, frames: int) -> torch.Tensor:
        """(bins, frames) unit complex: each bin's phase advance from frame 0 at its centre frequency."""
        turns = torch.outer(torch.arange(self.bins), torch.arange(frames)) * self.hop % self.n_fft
        return torch.polar(torch.ones(turns.shape), 2 * math.pi * turns / self.n_fft)

    def forward(self, mag: torch.Tensor, phase: torch.Tensor) -> torch.Tensor:
        args = dict(n_fft=self.n_fft, hop_length=self.hop, window=self.window, center=True)
        rebuilt = torch.stft(torch.istft(mag * phase, **args), return_complex=True, **args)
        rebuilt = rebuilt / rebuilt.abs().clamp(min=1e-8)
        advance = self._advance(mag.shape[-1]).to(phase.device)
        low, high = rebuilt[:, : self.bins], rebuilt[:, self.bins:]
        p, r = phase[:, : self.bins] * advance.conj(), low * advance.conj()
        log_mag = torch.log(mag[:, : self.bins].clamp(min=1e-5))
        x = torch.stack([log_mag - log_mag.mean(dim=(1, 2), keepdim=True), p.real, p.imag, r.real, r.imag], dim=1)
        h = nn.functional.gelu(self.inp(x))
        for conv in self.hidden:
            h = h + nn.functional.gelu(conv(h))
        re, im = self.out(h).unbind(dim=1)
        corrected = low + torch.complex(re, im) * advance
        return torch.cat([corrected / corrected.abs().clamp(min=1e-8), high], dim=1)
