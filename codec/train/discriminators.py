"""Discriminators for adversarial vocoder fine-tuning (HiFi-GAN's multi-period, Vocos's multi-resolution),
slimmed for CPU training, with least-squares GAN and feature-matching losses.

Input waveforms ``(batch, samples)`` at 16 kHz. Each sub-discriminator returns (logits, feature maps).
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import weight_norm


def _convs(convs: nn.ModuleList, post: nn.Module, x: torch.Tensor):
    """Leaky-ReLU conv stack, then the logit conv → (logits (B, n), every layer's output)."""
    feats = []
    for conv in convs:
        x = nn.functional.leaky_relu(conv(x), 0.1)
        feats.append(x)
    x = post(x)
    return x.flatten(1), feats + [x]


class PeriodDiscriminator(nn.Module):
    """Folds the waveform into (samples / period, period) and runs 2-D convolutions along time."""

    def __init__(self, period: int, channels=(16, 64, 128, 128)):
        super().__init__()
        self.period = period
        chans = (1, *channels)
        self.convs = nn.ModuleList(
            weight_norm(nn.Conv2d(a, b, (5, 1), (3, 1) if i < len(channels) - 1 else 1, padding=(2, 0)))
            for i, (a, b) in enumerate(zip(chans, chans[1:])))
        self.post = weight_norm(nn.Conv2d(chans[-1], 1, (3, 1), padding=(1, 0)))

    def forward(self, x: torch.Tensor):
        b, t = x.shape
        x = nn.functional.pad(x, (0, -t % self.period), mode="reflect").reshape(b, 1, -1, self.period)
        return _convs(self.convs, self.post, x)


class ResolutionDiscriminator(nn.Module):
    """2-D convolutions over one STFT magnitude (frequency × time)."""

    def __init__(self, n_fft: int, channels: int = 16):
        super().__init__()
        self.n_fft = n_fft
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        self.convs = nn.ModuleList([
            weight_norm(nn.Conv2d(1, channels, (3, 9), padding=(1, 4))),
            *(weight_norm(nn.Conv2d(channels, channels, (3, 9), stride=(1, 2), padding=(1, 4))) for _ in range(3)),
            weight_norm(nn.Conv2d(channels, channels, (3, 3), padding=(1, 1))),
        ])
        self.post = weight_norm(nn.Conv2d(channels, 1, (3, 3), padding=(1, 1)))

    def forward(self, x: torch.Tensor):
        spec = torch.stft(x, self.n_fft, self.n_fft // 4, window=self.window, return_complex=True).abs()
        spec = spec.clamp_min(1e-5).log()[:, None].transpose(2, 3)
        return _convs(self.convs, self.post, spec)  # (B, 1, frames, bins)


class Discriminators(nn.Module):
    """Periods 2, 3, 5, 7, 11 and STFT sizes 256, 512, 1024."""

    def __init__(self, periods=(2, 3, 5, 7, 11), ffts=(256, 512, 1024)):
        super().__init__()
        self.subs = nn.ModuleList([*(PeriodDiscriminator(p) for p in periods),
                                   *(ResolutionDiscriminator(n) for n in ffts)])

    def forward(self, x: torch.Tensor):
        return [d(x) for d in self.subs]


def discriminator_loss(real, fake) -> torch.Tensor:
    """Least squares: real logits → 1, generated → 0."""
    return sum(torch.mean((1 - r) ** 2) + torch.mean(f ** 2) for (r, _), (f, _) in zip(real, fake)) / len(real)


def generator_loss(real, fake) -> tuple[torch.Tensor, torch.Tensor]:
    """(adversarial loss: generated logits → 1, feature matching: L1 between real and generated maps)."""
    adv = sum(torch.mean((1 - f) ** 2) for f, _ in fake) / len(fake)
    fm = sum(torch.mean(torch.abs(a.detach() - b)) for (_, fr), (_, ff) in zip(real, fake)
             for a, b in zip(fr, ff)) / len(fake)
    return adv, fm
