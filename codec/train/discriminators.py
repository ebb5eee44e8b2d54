"""Discriminators for adversarial vocoder fine-tuning (HiFi-GAN's multi-period, Vocos's multi-resolution),
slimmed for CPU training, and one on a predicted magnitude, with least-squares GAN and feature-matching losses.

Input waveforms ``(batch, samples)`` at 16 kHz (``MagnitudeDiscriminator``: magnitudes
``(batch, bins, frames)``; ``MelDiscriminator``: log-mels ``(batch, n_mels, frames)`` in nats). Each
sub-discriminator returns (logits, feature maps).
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.nn.utils.parametrizations import weight_norm

from . import checkpoint


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


class SpectrogramDiscriminator(nn.Module):
    """2-D convolutions over a log-magnitude (batch, 1, frames, bins), striding along frequency."""

    def __init__(self, channels: int = 16, strides=(1, 2, 2, 2), kernel: int = 9):
        super().__init__()
        chans = (1, *(channels,) * len(strides))
        self.convs = nn.ModuleList([
            *(weight_norm(nn.Conv2d(a, b, (3, kernel), stride=(1, s), padding=(1, kernel // 2)))
              for a, b, s in zip(chans, chans[1:], strides)),
            weight_norm(nn.Conv2d(channels, channels, (3, 3), padding=(1, 1))),
        ])
        self.post = weight_norm(nn.Conv2d(channels, 1, (3, 3), padding=(1, 1)))

    def forward(self, spec: torch.Tensor):
        return _convs(self.convs, self.post, spec)


class ResolutionDiscriminator(SpectrogramDiscriminator):
    """The log-magnitude of one STFT of the waveform (batch, samples)."""

    def __init__(self, n_fft: int, channels: int = 16):
        super().__init__(channels)
        self.n_fft = n_fft
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)

    def forward(self, x: torch.Tensor):
        spec = torch.stft(x, self.n_fft, self.n_fft // 4, window=self.window, return_complex=True).abs()
        return super().forward(spec.clamp_min(1e-5).log()[:, None].transpose(2, 3))  # (B, 1, frames, bins)


class MelDiscriminator(nn.Module):
    """A small spectrogram discriminator on a log-mel (batch, n_mels, frames) in nats, e.g. the latent
    decoder's output: 16 channels, kernel 3 × 5 strided 2 along frequency. Returns a one-element list,
    like :class:`Discriminators`."""

    def __init__(self):
        super().__init__()
        self.net = SpectrogramDiscriminator(16, strides=(2, 2, 2, 2), kernel=5)

    def forward(self, mel: torch.Tensor):
        return [self.net(mel.transpose(1, 2)[:, None])]


class MagnitudeDiscriminator(MelDiscriminator):
    """The same discriminator on a magnitude (batch, bins, frames), e.g. a ``mag_prior`` head's: log,
    bins averaged in pairs (1024-point STFT → 256 bins of 31 Hz); ≈ 40 ms per batch of 16 × 0.5 s on
    one CPU thread."""

    def forward(self, mag: torch.Tensor):
        log = mag.clamp_min(1e-5).log()[:, : mag.shape[1] // 2 * 2]
        return super().forward(nn.functional.avg_pool1d(log.transpose(1, 2), 2).transpose(1, 2))


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


class Adversary:
    """Discriminators, their optimiser and checkpoint (``path``); calling it trains them one step on
    (real, generated) and returns the generator's adversarial + feature-matching loss. ``run``: the
    trainer's ``loop.Run`` (device, DDP world, log)."""

    def __init__(self, disc: torch.nn.Module, path: Path, lr: float, run):
        self.path, self.run = path, run
        self.disc = disc.to(run.device)
        self.opt = torch.optim.AdamW(self.disc.parameters(), lr=lr, betas=(0.8, 0.99), weight_decay=0.01)
        if path.exists():
            checkpoint.load(path, self.disc, None, self.opt)
            run.log(f"discriminators resumed from {path}")
        self.net = DistributedDataParallel(self.disc) if run.world > 1 else self.disc

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        d_loss = discriminator_loss(self.net(x), self.net(y.detach()))
        self.opt.zero_grad(set_to_none=True)
        d_loss.backward()
        self.opt.step()
        with torch.no_grad():
            real = self.net(x)
        adv, fm = generator_loss(real, self.net(y))
        return adv + 2 * fm

    def save(self, step: int) -> None:
        checkpoint.save(self.path, self.disc, None, self.opt, step)
