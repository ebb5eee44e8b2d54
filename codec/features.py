"""Log-mel front end: 16 kHz waveform → (batch, mels, frames) natural-log mel magnitudes, the first rows
of the vocoder's features (the pitch rows of :mod:`codec.pitch` follow them)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from bitstream.modes import HOP, SAMPLE_RATE


@dataclass(frozen=True)
class MelConfig:
    """STFT/mel parameters. Frame rate = sample_rate / hop (62.5 Hz by default). ``win_length``
    (samples, ≤ n_fft; None = n_fft): a shorter Hann window, centred in the n_fft frame, shortens
    the look-ahead (the streaming front end uses 512: 16 ms) without changing the filterbank."""

    sample_rate: int = SAMPLE_RATE
    n_fft: int = 1024
    hop: int = HOP
    n_mels: int = 80
    fmin: float = 0.0
    fmax: float = 8000.0
    floor: float = 1e-5
    win_length: int | None = None

    @property
    def window(self) -> int:
        """Analysis window length (samples)."""
        return self.win_length or self.n_fft

    @property
    def lookahead(self) -> int:
        """Samples after a frame's centre that its analysis needs (half the window)."""
        return self.window // 2


def _hz_to_mel(f):
    """Slaney mel scale (linear below 1 kHz, log above)."""
    f = np.asarray(f, dtype=np.float64)
    lin = f / (200.0 / 3)
    log = 15.0 + np.log(np.maximum(f, 1e-9) / 1000.0) / (np.log(6.4) / 27.0)
    return np.where(f >= 1000.0, log, lin)


def _mel_to_hz(m):
    m = np.asarray(m, dtype=np.float64)
    lin = m * (200.0 / 3)
    log = 1000.0 * np.exp((np.log(6.4) / 27.0) * (m - 15.0))
    return np.where(m >= 15.0, log, lin)


def mel_filterbank(cfg: MelConfig) -> np.ndarray:
    """Slaney-normalised triangular filters, shape (n_mels, n_fft // 2 + 1)."""
    freqs = np.linspace(0, cfg.sample_rate / 2, cfg.n_fft // 2 + 1)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(cfg.fmin), _hz_to_mel(cfg.fmax), cfg.n_mels + 2))
    lower = (freqs[None, :] - edges[:-2, None]) / (edges[1:-1, None] - edges[:-2, None])
    upper = (edges[2:, None] - freqs[None, :]) / (edges[2:, None] - edges[1:-1, None])
    fb = np.maximum(0.0, np.minimum(lower, upper))
    fb *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return fb.astype(np.float32)


class LogMel(torch.nn.Module):
    """(batch, samples) float waveform at 16 kHz → (batch, n_mels, samples // hop + 1) log-mel."""

    def __init__(self, cfg: MelConfig = MelConfig()):
        super().__init__()
        self.cfg = cfg
        if not 0 < cfg.window <= cfg.n_fft:
            raise ValueError(f"win_length {cfg.win_length} must be in 1..n_fft ({cfg.n_fft})")
        self.register_buffer("window", torch.hann_window(cfg.window), persistent=False)
        self.register_buffer("fb", torch.from_numpy(mel_filterbank(cfg)), persistent=False)

    def forward(self, wav: torch.Tensor, center: bool = True) -> torch.Tensor:
        """``center=False`` (streaming): ``wav`` is already padded, frame k covers samples [k·hop, k·hop + n_fft)."""
        spec = torch.stft(wav, self.cfg.n_fft, self.cfg.hop, self.cfg.window, self.window, center=center,
                          pad_mode="reflect", return_complex=True).abs()
        return torch.log(torch.clamp(self.fb @ spec, min=self.cfg.floor))


def log_mel(wav: np.ndarray, cfg: MelConfig = MelConfig()) -> np.ndarray:
    """(samples,) 16 kHz waveform (numpy) → (n_mels, frames) float32 numpy log-mel."""
    with torch.inference_mode():
        return LogMel(cfg)(torch.from_numpy(np.ascontiguousarray(wav, dtype=np.float32))[None])[0].numpy()
