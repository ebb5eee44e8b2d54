"""Quality metrics on 16 kHz speech: WB-PESQ, STOI, log-mel distance, SI-SDR, energy in pauses, harmonic
contrast, DNSMOS, DistillMOS, alignment."""
from __future__ import annotations

import contextlib
import importlib.util
import io
from functools import lru_cache

import numpy as np
import torch

from bitstream.modes import SAMPLE_RATE as SR

from .features import LogMel


def _envelope(x: np.ndarray, win: int = 160) -> np.ndarray:
    """Zero-mean amplitude envelope (10 ms Hann-smoothed power, square-rooted): phase-blind."""
    env = np.sqrt(np.convolve(x.astype(np.float64) ** 2, np.hanning(win) / (win / 2), mode="same"))
    return env - env.mean()


def align(ref: np.ndarray, deg: np.ndarray, max_lag: int = 800) -> np.ndarray:
    """Shift ``deg`` by the lag (≤ max_lag samples, 50 ms) whose amplitude envelope best matches
    ``ref``'s; same length as ref. Envelopes, not waveforms: a vocoder's phase is its own, so
    waveform cross-correlation picks arbitrary lags for neural decoders."""
    n = min(len(ref), len(deg))
    a, b = _envelope(ref[:n]), _envelope(deg[:n])
    xc = np.fft.irfft(np.fft.rfft(a, 2 * n) * np.conj(np.fft.rfft(b, 2 * n)))
    lags = np.concatenate([np.arange(0, max_lag + 1), np.arange(-max_lag, 0)])
    lag = int(lags[np.argmax(xc[lags])])
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
    """STOI (0–1, pystoi), or NaN when the reference has too little speech for it (pystoi needs 30 frames
    of 25.6 ms, ≈ 0.4 s, above its silence threshold; it would warn and return 1e-5)."""
    import warnings

    from pystoi import stoi as _stoi

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = float(_stoi(ref, deg, SR, extended=False))
    if any("Not enough STFT frames" in str(w.message) for w in caught):
        return float("nan")
    for w in caught:  # anything else pystoi says still reaches the caller
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return value


def pause_energy_db(ref: np.ndarray, deg: np.ndarray, below_db: float = 40.0, frame: int = 320) -> float:
    """Sound a decoder puts into pauses: mean power (dB) of ``deg`` minus that of ``ref`` over the
    reference's 20 ms frames more than ``below_db`` under its loudest frame (NaN if none)."""
    n = min(len(ref), len(deg)) // frame * frame
    p_ref = (ref[:n].astype(np.float64).reshape(-1, frame) ** 2).mean(axis=1)
    p_deg = (deg[:n].astype(np.float64).reshape(-1, frame) ** 2).mean(axis=1)
    pause = p_ref < p_ref.max() * 10 ** (-below_db / 10)
    if not pause.any():
        return float("nan")
    return float(10 * np.log10((p_deg[pause].mean() + 1e-12) / (p_ref[pause].mean() + 1e-12)))


def harmonic_contrast_db(ref: np.ndarray, deg: np.ndarray, low_hz: float = 1000.0, high_hz: float = 4000.0) -> float:
    """How far the harmonics stand out of ``deg``'s spectrum compared with ``ref``'s (dB; 0: as in the
    reference, negative: harmonics smeared into noise, positive: more peaked than the reference).

    Over the reference's voiced frames (``codec.pitch``), 1024-point Hann STFT, hop 256: the mean log power
    at the multiples of the reference's F0 between ``low_hz`` and ``high_hz`` minus that halfway between
    them, for ``deg`` minus for ``ref``. NaN without voiced frames."""
    from . import pitch

    f0, voiced = pitch.estimate(ref)
    frames = np.flatnonzero(voiced)
    if not len(frames):
        return float("nan")
    window = torch.hann_window(1024, dtype=torch.float64)

    def contrast(x: np.ndarray) -> float:
        spec = torch.stft(torch.from_numpy(x.astype(np.float64)), 1024, 256, window=window, return_complex=True)
        power = 10 * np.log10(spec.abs().numpy() ** 2 + 1e-10)  # (513, frames)
        rows = []
        for t in frames[frames < power.shape[1]]:
            spacing = f0[t] * 1024 / SR  # bins between harmonics
            k = np.arange(np.ceil(low_hz / f0[t]), np.floor(high_hz / f0[t]) + 1)
            peaks, valleys = np.round(k * spacing).astype(int), np.round((k + 0.5) * spacing).astype(int)
            rows.append(power[peaks, t] - power[valleys, t])
        return float(np.mean(np.concatenate(rows)))

    return contrast(deg) - contrast(ref)


def dnsmos(deg: np.ndarray) -> float:
    """No-reference DNSMOS P.835 overall score (1–5) from the ``speechmos`` package (weights ship in its wheel)."""
    from speechmos import dnsmos as _dnsmos

    return float(_dnsmos.run(np.clip(deg, -1, 1), SR)["ovrl_mos"])


@lru_cache(maxsize=1)
def _distillmos_model():
    import sys
    import types

    if importlib.util.find_spec("torchaudio") is None:  # distillmos imports it for its file CLI only
        sys.modules.setdefault("torchaudio", types.ModuleType("torchaudio"))
    import distillmos

    with contextlib.redirect_stdout(io.StringIO()):  # it prints where it loaded its weights from
        return distillmos.ConvTransformerSQAModel().eval()


def distillmos(deg: np.ndarray) -> float:
    """No-reference DistillMOS (1–5; Stahl & Gamper 2025, MIT, weights in its wheel)."""
    with torch.inference_mode():
        return float(_distillmos_model()(torch.from_numpy(np.clip(deg, -1, 1).astype(np.float32))[None])[0])


MOS_PACKAGES = {"dnsmos": "speechmos", "distillmos": "distillmos"}


def mos_available() -> list[str]:
    """The neural MOS predictors whose packages are installed (``ldcodec[eval]``)."""
    return [name for name, package in MOS_PACKAGES.items() if importlib.util.find_spec(package) is not None]


def all_metrics(ref: np.ndarray, deg: np.ndarray, mos: bool | list[str] = False) -> dict[str, float]:
    """Align ``deg`` to ``ref`` then compute every metric (both float32 16 kHz); neural MOS
    (``mos``: True for every installed one, or a list of names from :data:`MOS_PACKAGES`)."""
    deg = align(ref, deg.astype(np.float32))
    out = {"pesq": pesq_wb(ref, deg), "stoi": stoi(ref, deg), "mel": mel_distance(ref, deg),
           "si_sdr": si_sdr(ref, deg), "pause_db": pause_energy_db(ref, deg),
           "harmonic_db": harmonic_contrast_db(ref, deg)}
    for name in (mos_available() if mos is True else mos or []):
        out[name] = {"dnsmos": dnsmos, "distillmos": distillmos}[name](deg)
    return out
