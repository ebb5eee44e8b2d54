"""Quality floors a decoder must clear, from the unquantised front end (no bitstream involved).

- copy synthesis: the exact log-mel and pitch rows of the input through a vocoder — the best any
  decoder using that vocoder can do;
- Griffin-Lim: the same 80-band log-mel, mapped back to a linear magnitude by the filterbank's
  non-negative least-squares inverse, phase from 100 iterations of fast Griffin-Lim — no training.
"""
from __future__ import annotations

import numpy as np
import torch

from . import pitch
from .features import LogMel, MelConfig, mel_filterbank
from .vocoder import Vocoder


def features(wav: np.ndarray, mel_cfg: MelConfig) -> torch.Tensor:
    """(samples,) float32 16 kHz → (1, n_mels + 2, frames): log-mel + pitch rows, as a lossless stream would carry them."""
    x = torch.from_numpy(np.ascontiguousarray(wav, dtype=np.float32))[None]
    with torch.inference_mode():
        mel = LogMel(mel_cfg)(x)
    f0, voiced = pitch.estimate(wav, mel_cfg.lookahead)
    aux = pitch.features(*pitch.group(f0, voiced, 1), 1, mel.shape[-1])
    return torch.cat([mel, torch.from_numpy(aux)[None]], dim=1)


def copy_synthesis(wav: np.ndarray, vocoder: Vocoder, mel_cfg: MelConfig) -> np.ndarray:
    """``wav``'s own features through ``vocoder`` → float32 (samples,) at 16 kHz."""
    with torch.inference_mode():
        return vocoder(features(wav, mel_cfg))[0].numpy()


def mel_to_magnitude(mel: torch.Tensor, cfg: MelConfig, iterations: int = 200) -> torch.Tensor:
    """(n_mels, frames) log-mel → (n_fft // 2 + 1, frames) magnitude ≥ 0 minimising ‖fb·S − e^mel‖²
    (projected gradient from the pseudo-inverse)."""
    fb = torch.from_numpy(mel_filterbank(cfg)).double()
    target = torch.exp(mel.double())
    mag = (torch.linalg.pinv(fb) @ target).clamp(min=0)
    lr = 1.0 / torch.linalg.matrix_norm(fb, 2) ** 2
    for _ in range(iterations):
        mag = (mag - lr * fb.T @ (fb @ mag - target)).clamp(min=0)
    return mag.float()


def griffin_lim(wav: np.ndarray, mel_cfg: MelConfig = MelConfig(), iterations: int = 100,
                momentum: float = 0.99) -> np.ndarray:
    """``wav``'s log-mel back to a waveform by fast Griffin-Lim (Perraudin et al. 2013) → float32 (samples,)."""
    x = torch.from_numpy(np.ascontiguousarray(wav, dtype=np.float32))[None]
    with torch.inference_mode():
        mag = mel_to_magnitude(LogMel(mel_cfg)(x)[0], mel_cfg)
        window = torch.hann_window(mel_cfg.window)
        args = dict(n_fft=mel_cfg.n_fft, hop_length=mel_cfg.hop, win_length=mel_cfg.window, window=window)
        gen = torch.Generator().manual_seed(0)
        angles = torch.polar(torch.ones_like(mag), 2 * np.pi * torch.rand(mag.shape, generator=gen))
        previous = torch.zeros_like(angles)
        for _ in range(iterations):
            y = torch.istft(mag * angles, length=len(wav), **args)
            rebuilt = torch.stft(y, return_complex=True, **args)
            angles = rebuilt - momentum / (1 + momentum) * previous
            angles = angles / angles.abs().clamp(min=1e-16)
            previous = rebuilt
        return torch.istft(mag * angles, length=len(wav), **args).numpy()
