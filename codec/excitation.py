"""Harmonic + noise excitation from the transmitted pitch rows: the vocoder's F0-driven phases.

The stream carries voicing and F0 per coded group (``codec.pitch``); the vocoder's conditioning
rows hold them per 62.5 Hz frame as [voicing (0/1), log2(F0 / 169.7 Hz)]. From those we build,
at 16 kHz, a band-limited pulse train whose phase is integrated from F0 (every harmonic below
Nyquist at unit amplitude, gated by voicing) and a white-noise source. Their STFT phase (:func:`phase`,
:func:`sinusoidal_phase`) is what ``VocoderConfig.phase_init`` "excitation", "sinusoidal" and "learned"
start from, and :func:`harmonic_comb` shapes ``harmonic_prior``: harmonics and their phase continuity
come from the transmitted F0.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from . import pitch

REF_HZ = pitch.F0_MIN * 2.0 ** (pitch.REF_INDEX / pitch.STEPS_PER_OCTAVE)  # 169.7 Hz: log-F0 row 0
TOP_HZ = 7800.0  # highest harmonic kept (below the 8 kHz Nyquist)


def upsample(rows: torch.Tensor, hop: int) -> torch.Tensor:
    """(B, C, frames) per frame centre (sample t·hop) → (B, C, (frames − 1)·hop), linear in between."""
    frames = rows.shape[-1]
    if frames < 2:
        return rows[..., :0]
    return F.interpolate(rows, size=(frames - 1) * hop + 1, mode="linear", align_corners=True)[..., :-1]


def harmonic_count(f0: torch.Tensor, top_hz: float = TOP_HZ) -> torch.Tensor:
    """Harmonics kept below ``top_hz`` for F0 ``f0`` (Hz, any shape), at least 1."""
    return torch.floor(top_hz / f0).clamp(min=1)


def voicing_and_f0(pitch_rows: torch.Tensor, hop: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pitch rows (B, 2, frames) → per sample (B, S): voicing in [0, 1] and F0 (Hz, within the pitch grid's range)."""
    up = upsample(pitch_rows, hop)
    return up[:, 0].clamp(0, 1), (REF_HZ * torch.exp2(up[:, 1])).clamp(pitch.F0_MIN, pitch.F0_MAX)


def harmonic(f0: torch.Tensor, sample_rate: int, phase0: torch.Tensor | None = None,
             top_hz: float = TOP_HZ) -> tuple[torch.Tensor, torch.Tensor]:
    """Band-limited pulse train Σ_{k=1..K} cos(k·φ), K = ⌊top_hz / F0⌋, φ integrated from F0.

    ``f0``: (B, samples) Hz; ``phase0``: (B,) starting phase (radians, streaming), 0 if None.
    Returns (excitation (B, samples), phase after the last sample (B,)). Closed form (Dirichlet
    kernel), so memory is O(samples) however many harmonics.
    """
    inc = f0.double() / sample_rate
    cycles = torch.cumsum(inc, dim=-1) + (0.0 if phase0 is None else phase0.double()[:, None] / (2 * math.pi))
    end = cycles[:, -1] if cycles.shape[-1] else torch.zeros(f0.shape[0], dtype=torch.float64)
    phi = 2 * math.pi * torch.frac(cycles)
    k = harmonic_count(f0.double(), top_hz)
    half = torch.sin(phi / 2)
    small = half.abs() < 1e-6
    dirichlet = torch.sin(k * phi / 2) * torch.cos((k + 1) * phi / 2) / torch.where(small, torch.ones_like(half), half)
    out = torch.where(small, k, dirichlet)
    return out.float(), (2 * math.pi * torch.frac(end)).float()


def excitation(pitch_rows: torch.Tensor, hop: int, sample_rate: int, generator: torch.Generator | None = None,
               phase0: torch.Tensor | None = None,
               top_hz: float = TOP_HZ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pitch rows (B, 2, frames) [voicing, log2(F0 / REF_HZ)] → (harmonic (B, S), noise (B, S), end phase (B,)),
    S = (frames − 1)·hop. The harmonic source is gated by the interpolated voicing; the noise is
    unit-variance white noise from ``generator`` (a fixed seed makes decoding repeatable); harmonics up
    to ``top_hz``."""
    voicing, f0 = voicing_and_f0(pitch_rows, hop)
    harm, end = harmonic(f0, sample_rate, phase0, top_hz)
    noise = torch.randn(voicing.shape, generator=generator, device="cpu").to(pitch_rows)
    return harm * voicing, noise, end


def phase(pitch_rows: torch.Tensor, n_fft: int, hop: int, sample_rate: int, window: torch.Tensor, frames: int,
          generator: torch.Generator | None = None, phase0: torch.Tensor | None = None,
          top_hz: float = TOP_HZ) -> torch.Tensor:
    """Pitch rows (B, 2, frames) → the excitation's STFT phase (B, n_fft // 2 + 1, frames), unit complex.

    The pulse train (scaled to the noise's power) where voiced, white noise where not, plus noise at
    −26 dB everywhere: harmonics whose phases advance with the transmitted F0 from frame to frame, the
    phase Codec2 and other sinusoidal coders synthesise with. Centred frames ``hop`` samples apart.
    ``phase0``: the pulse train's phase at the first frame's centre (see :func:`harmonic`); ``top_hz``: the
    highest harmonic, the noise's phase above it (see :func:`sinusoidal_phase`)."""
    harm, noise, _ = excitation(pitch_rows, hop, sample_rate, generator, phase0, top_hz)
    voicing, f0 = voicing_and_f0(pitch_rows, hop)
    source = harm / harmonic_count(f0, top_hz).sqrt() + noise * (1 - voicing + 0.05)
    spec = torch.stft(source, n_fft, hop, window=window, center=True, return_complex=True)[..., :frames]
    spec = torch.nn.functional.pad(spec, (0, frames - spec.shape[-1]))
    return spec / spec.abs().clamp(min=1e-16)


def harmonic_comb(pitch_rows: torch.Tensor, n_fft: int, sample_rate: int) -> torch.Tensor:
    """Pitch rows (B, 2, frames) → the power spectrum shape of the excitation's harmonics through an
    ``n_fft``-point Hann window, (B, n_fft // 2 + 1, frames), mean 1 over frequency: peaks of the window's
    main lobe at every multiple of each frame's F0, nothing below F0. Voicing is not applied here.

    The centred Hann window's transform at δ bins off a harmonic, unit peak, is
    W(δ) = sinc(δ) + ½·sinc(δ − 1) + ½·sinc(δ + 1) = sin(πδ) / (πδ·(1 − δ²)) (1 at δ = 0, ½ at δ = ±1),
    and ∫|W|² dδ = 1.5, so with harmonics s bins apart Σ_k |W(b − k·s)|² · s / 1.5 averages 1 over the
    bins b. The four harmonics nearest each bin are summed (W is below −31 dB beyond ±2 bins, and
    harmonics lie ≥ 3.2 bins apart at the lowest F0).
    """
    f0 = (REF_HZ * torch.exp2(pitch_rows[:, 1:2])).clamp(pitch.F0_MIN, pitch.F0_MAX)  # (B, 1, frames)
    spacing = f0 * n_fft / sample_rate  # bins between harmonics
    bins = torch.arange(n_fft // 2 + 1, dtype=pitch_rows.dtype, device=pitch_rows.device)[None, :, None]
    u = bins / spacing  # harmonic number at each bin (B, bins, frames)
    comb = torch.zeros_like(u)
    for j in (-1, 0, 1, 2):
        k = torch.floor(u) + j
        delta = (u - k) * spacing
        den = math.pi * delta * (1 - delta * delta)
        regular = den.abs() > 1e-4  # one sine instead of three sincs; the limits where it is 0 / 0
        w = torch.where(regular, torch.sin(math.pi * delta) / torch.where(regular, den, torch.ones_like(den)),
                        torch.where(delta.abs() < 0.5, 1.0, 0.5))
        comb = comb + torch.where(k >= 1, w * w, torch.zeros_like(w))
    return comb * spacing / 1.5


def fundamental(pitch_rows: torch.Tensor, hop: int, sample_rate: int,
                start: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Pitch rows (B, 2, frames) → (the fundamental's phase Φ at each frame centre, its F0 in Hz), (B, frames)
    float64, as :func:`sinusoidal_phase` synthesises them: Φ advances by the integral of the linearly
    interpolated F0 between centres, from ``start`` ((B, 2) [Φ, F0] at the frame before; None: Φ = 0 at the
    first frame). ``[Φ, F0]`` at frame t − 1 is the ``start`` of a span from frame t."""
    f0 = (REF_HZ * torch.exp2(pitch_rows[:, 1].double())).clamp(pitch.F0_MIN, pitch.F0_MAX)  # (B, T)
    prev = f0[:, :1] if start is None else start[:, 1:2].double()
    phi0 = torch.zeros_like(prev) if start is None else start[:, :1].double()
    steps = math.pi * hop / sample_rate * (torch.cat([prev, f0[:, :-1]], dim=1) + f0)
    if start is None:
        steps[:, 0] = 0.0
    return torch.remainder(phi0 + torch.cumsum(steps, dim=1), 2 * math.pi), f0


def sinusoidal_phase(pitch_rows: torch.Tensor, n_fft: int, hop: int, sample_rate: int,
                     start: torch.Tensor | None = None, generator: torch.Generator | None = None,
                     top_hz: float = TOP_HZ) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`phase` synthesised frame by frame, with no look-ahead (the streaming decoder computes it as
    it goes): pitch rows (B, 2, frames) → (unit complex (B, n_fft // 2 + 1, frames), the fundamental's
    phase and F0 at the last frame (B, 2), float64: the ``start`` of the next call).

    Each frame's n_fft samples are the excitation of :func:`phase` held at that frame's F0 and voicing:
    the pulse train at the fundamental's phase Φ at the frame centre (Φ advances by the integral of the
    linearly interpolated F0 between centres, 2π·hop·(F0ₜ₋₁ + F0ₜ) / 2 / sample_rate) plus white noise;
    then the frame's windowed DFT (reference: the frame's start, as ``torch.stft(center=True)``).
    ``start``: (B, 2) [Φ, F0] at the frame before the first, None at the start of a stream (Φ = 0).
    ``generator``: the noise, n_fft fresh samples per frame in frame order, so a stream cut anywhere
    draws the same noise as the whole signal when its generator continues (tested). ``top_hz``: the
    highest harmonic; above it the phase is the noise's (a voicing cut-off, as in MELP's mixed excitation
    and Codec2's: the buzz of perfectly periodic high harmonics is what it removes)."""
    phi, f0 = fundamental(pitch_rows, hop, sample_rate, start)
    voicing = pitch_rows[:, 0].double().clamp(0, 1)[..., None]
    offsets = torch.arange(n_fft, dtype=torch.float64, device=pitch_rows.device) - n_fft // 2
    k = harmonic_count(f0, top_hz)[..., None]
    theta = torch.remainder(phi[..., None] + 2 * math.pi * f0[..., None] * offsets / sample_rate, 2 * math.pi)
    half = torch.sin(theta / 2)
    small = half.abs() < 1e-6
    pulses = torch.where(small, k, torch.sin(k * theta / 2) * torch.cos((k + 1) * theta / 2)
                         / torch.where(small, torch.ones_like(half), half))
    noise = torch.randn((pitch_rows.shape[0], pitch_rows.shape[-1], n_fft), generator=generator, dtype=torch.float64)
    frames = pulses / k.sqrt() * voicing + noise.to(pitch_rows.device) * (1 - voicing + 0.05)
    window = torch.hann_window(n_fft, dtype=torch.float64, device=pitch_rows.device)
    spec = torch.fft.rfft(frames * window, dim=-1).transpose(1, 2)
    state = torch.stack([phi[:, -1], f0[:, -1]], dim=1)
    return (spec / spec.abs().clamp(min=1e-16)).to(torch.complex64), state
