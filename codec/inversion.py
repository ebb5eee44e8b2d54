"""Spectrogram inversion without training: mel → linear magnitude (non-negative least squares) and
magnitude → phase (fast Griffin-Lim, Perraudin et al. 2013). Used as the Griffin-Lim floor and as the
vocoder's DSP prior (magnitude prior, phase refinement)."""
from __future__ import annotations

import math

import torch
from torch import nn


def least_squares_inverse(fb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Filterbank (n_mels, bins) → (its pseudo-inverse (bins, n_mels), the projected-gradient step
    1/‖fb‖₂²): what :func:`mel_to_magnitude` needs of it, computed once per filterbank."""
    fb = fb.float()
    return torch.linalg.pinv(fb), 1.0 / torch.linalg.matrix_norm(fb, 2) ** 2


def mel_to_magnitude(mel: torch.Tensor, fb: torch.Tensor, iterations: int = 20, floor: float = 0.0,
                     inverse: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """(..., n_mels, frames) log-mel, filterbank (n_mels, bins) → (..., bins, frames) magnitude ≥ ``floor``
    minimising ‖fb·S − e^mel‖² (projected gradient from the clamped pseudo-inverse). ``inverse``:
    :func:`least_squares_inverse` of ``fb`` when the caller keeps it (else computed here)."""
    *lead, n_mels, frames = mel.shape
    fb = fb.float()
    batch, bins = math.prod(lead), fb.shape[1]
    target = torch.exp(mel.float()).reshape(batch, n_mels, frames).transpose(0, 1).reshape(n_mels, -1)  # one GEMM
    pinv, lr = inverse or least_squares_inverse(fb)
    mag = (pinv @ target).clamp(min=0)
    for _ in range(iterations):
        mag = (mag - lr * fb.T @ (fb @ mag - target)).clamp(min=0)
    mag = mag.reshape(bins, batch, frames).transpose(0, 1).reshape(*lead, bins, frames)
    return mag.clamp(min=floor).to(mel.dtype)


def minimum_phase(log_mag: torch.Tensor, n_fft: int, lifter: int = 30) -> torch.Tensor:
    """Log-magnitude (..., n_fft // 2 + 1, frames) → the phase (radians, same shape) of the minimum-phase
    filter with its envelope: the real cepstrum kept below ``lifter`` quefrency bins and folded
    (Oppenheim & Schafer), so harmonics are smoothed away and only the vocal-tract phase remains."""
    cepstrum = torch.fft.irfft(log_mag.transpose(-1, -2), n=n_fft)
    fold = torch.zeros(n_fft, dtype=cepstrum.dtype, device=cepstrum.device)
    fold[0], fold[1:lifter] = 1.0, 2.0
    return torch.fft.rfft(cepstrum * fold).imag.transpose(-1, -2)


def overlap_add(frames: torch.Tensor, hop: int) -> torch.Tensor:
    """Frames (B, T, n) → (B, n + hop · (T − 1)): their sum, frame t starting at sample t · hop."""
    b, t, n = frames.shape
    if n % hop:
        return nn.functional.fold(frames.transpose(1, 2), (1, n + hop * (t - 1)), (1, n), stride=(1, hop))[:, 0, 0]
    parts = frames.reshape(b, t, n // hop, hop)
    out = frames.new_zeros(b, t + n // hop - 1, hop)
    for j in range(n // hop):  # n / hop shifted adds: cheaper than fold's scatter
        out[:, j:j + t] += parts[:, :, j]
    return out.reshape(b, -1)


def griffin_lim(mag: torch.Tensor, phase: torch.Tensor, iterations: int, n_fft: int, hop: int,
                window: torch.Tensor, length: int | None = None, momentum: float = 0.99) -> torch.Tensor:
    """Fast Griffin-Lim: magnitude (..., n_fft // 2 + 1, frames) ≥ 0 and a starting phase (unit complex,
    same shape) → (..., samples) waveform whose STFT magnitude approaches ``mag``; ``iterations`` = 0 is
    one inverse STFT (``torch.istft``'s, centred frames ``hop`` samples apart, analysis = synthesis
    ``window``). The iterations work on the whole overlap-added signal, its first and last n_fft / 2
    samples included (the half frames ``torch.istft`` trims and ``torch.stft`` would mirror back), with
    frames along the last axis: 2–3× faster than ``torch.stft(torch.istft(...))`` on one CPU thread."""
    *lead, bins, frames = mag.shape
    w = window.to(mag.dtype)
    envelope = overlap_add((w * w).expand(1, frames, n_fft), hop)[0]
    inv_envelope = torch.where(envelope > 1e-11, 1 / envelope.clamp(min=1e-11), torch.zeros_like(envelope))
    mag = mag.reshape(-1, bins, frames).transpose(1, 2)  # (B, frames, bins)
    phase = phase.reshape(-1, bins, frames).transpose(1, 2)

    def synthesis(phase: torch.Tensor) -> torch.Tensor:  # (B, n_fft + hop · (frames − 1)), padding included
        return overlap_add(torch.fft.irfft(mag * phase, n=n_fft, dim=-1) * w, hop) * inv_envelope

    previous, pull = None, momentum / (1 + momentum)
    for _ in range(iterations):
        rebuilt = torch.fft.rfft(synthesis(phase).unfold(-1, n_fft, hop) * w, dim=-1)
        phase = torch.sgn(rebuilt if previous is None else torch.add(rebuilt, previous, alpha=-pull))
        previous = rebuilt
    y = synthesis(phase)[:, n_fft // 2:n_fft // 2 + hop * (frames - 1)]
    if length is not None:
        y = y[:, :length] if y.shape[1] >= length else nn.functional.pad(y, (0, length - y.shape[1]))
    return y.reshape(*lead, y.shape[-1])
