"""Quality metrics on 16 kHz speech: WB-PESQ, STOI, log-mel distance, SI-SDR, and alignment."""
from __future__ import annotations

import numpy as np
import torch

from .features import LogMel

SR = 16000


def align(ref: np.ndarray, deg: np.ndarray, max_lag: int = 800) -> np.ndarray:
    """Shift ``deg`` by the lag (≤ max_lag samples, 50 ms) that best matches ``ref``; same length as ref."""
    n = min(len(ref), len(deg))
    spec = np.fft.rfft(ref[:n], 2 * n) * np.conj(np.fft.rfft(deg[:n], 2 * n))
    xc = np.fft.irfft(spec)
    lags = np.concatenate([np.arange(0, max_lag + 1), np.arange(-max_lag, 0)])
    lag = lags[np.argmax(xc[lags])]
    out = np.zeros_like(ref)
    if lag >= 0:
        seg = deg[: len(ref) - lag]
        out[lag: lag + len(seg)] = seg
    else:
        seg = deg[-lag: -lag + len(ref)]
        out[: len(seg)] = seg
    return out


def mel_distance(ref: np.ndarray, deg: np.ndarray) -> float:
    """Mean absolute log-mel difference (natural-log units, 80 mels, 62.5 Hz)."""
    lm = LogMel()
    with torch.inference_mode():
        a, b = lm(torch.from_numpy(ref)[None]), lm(torch.from_numpy(deg)[None])
    return float((a - b).abs().mean())


def si_sdr(ref: np.ndarray, deg: np.ndarray) -> float:
    ref, deg = ref - ref.mean(), deg - deg.mean()
    target = np.dot(deg, ref) / (np.dot(ref, ref) + 1e-12) * ref
    return float(10 * np.log10((target @ target + 1e-12) / ((deg - target) @ (deg - target) + 1e-12)))


def pesq_wb(ref: np.ndarray, deg: np.ndarray) -> float:
    from pesq import pesq

    try:
        return float(pesq(SR, ref, deg, "wb"))
    except Exception:  # noqa: BLE001 - pesq raises on silent/too-short input
        return float("nan")


def stoi(ref: np.ndarray, deg: np.ndarray) -> float:
    from pystoi import stoi as _stoi

    return float(_stoi(ref, deg, SR, extended=False))


def all_metrics(ref: np.ndarray, deg: np.ndarray) -> dict[str, float]:
    """Align ``deg`` to ``ref`` then compute every metric (both float32 16 kHz)."""
    deg = align(ref, deg.astype(np.float32))
    return {"pesq": pesq_wb(ref, deg), "stoi": stoi(ref, deg), "mel": mel_distance(ref, deg),
            "si_sdr": si_sdr(ref, deg)}
