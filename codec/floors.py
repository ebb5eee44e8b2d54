"""Quality floors a decoder must clear, from the unquantised front end (no bitstream involved).

- copy synthesis: the exact log-mel and pitch rows of the input through a vocoder — the best any
  decoder using that vocoder can do;
- Griffin-Lim: the same 80-band log-mel, mapped back to a linear magnitude by the filterbank's
  non-negative least-squares inverse, phase from 100 iterations of fast Griffin-Lim — no training.
"""
from __future__ import annotations

import numpy as np
import torch

from . import inversion, pitch
from .features import LogMel, MelConfig, mel_filterbank
from .inversion import mel_to_magnitude
from .vocoder_input import stack, track_rows
from .vocoder import Vocoder


def features(wav: np.ndarray, mel_cfg: MelConfig) -> torch.Tensor:
    """(samples,) float32 16 kHz → (1, n_mels + 2, frames): log-mel + pitch rows, as a lossless stream would carry
    them."""
    x = torch.from_numpy(np.ascontiguousarray(wav, dtype=np.float32))[None]
    with torch.inference_mode():
        mel = LogMel(mel_cfg)(x)
    f0, voiced = pitch.estimate(wav, mel_cfg.lookahead)
    return stack(mel, track_rows(f0, voiced, 1, mel.shape[-1]))


def copy_synthesis(wav: np.ndarray, vocoder: Vocoder, mel_cfg: MelConfig) -> np.ndarray:
    """``wav``'s own features through ``vocoder`` → float32 (samples,) at 16 kHz."""
    with torch.inference_mode():
        return vocoder(features(wav, mel_cfg))[0].numpy()


def griffin_lim(wav: np.ndarray, mel_cfg: MelConfig = MelConfig(), iterations: int = 100) -> np.ndarray:
    """``wav``'s log-mel back to a waveform: NNLS magnitude, fast Griffin-Lim from a random phase → float32
    (samples,)."""
    x = torch.from_numpy(np.ascontiguousarray(wav, dtype=np.float32))[None]
    with torch.inference_mode():
        mag = mel_to_magnitude(LogMel(mel_cfg)(x)[0], torch.from_numpy(mel_filterbank(mel_cfg)), iterations=200)
        gen = torch.Generator().manual_seed(0)
        phase = torch.polar(torch.ones_like(mag), 2 * np.pi * torch.rand(mag.shape, generator=gen))
        window = torch.hann_window(mel_cfg.window)
        return inversion.griffin_lim(mag, phase, iterations, mel_cfg.n_fft, mel_cfg.hop, window, len(wav)).numpy()
