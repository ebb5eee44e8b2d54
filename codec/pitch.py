"""Pitch (F0) and voicing for the encoder and the vocoder: estimation (YIN), per-group grid indices,
and the pitch rows of the vocoder's features.

The mel cepstrum the codec keeps is too short to resolve harmonics, so pitch travels as side
information: per coded group a voicing flag and, when voiced, an index on the 1/24-octave grid of
:mod:`bitstream.pitch`. Frames are the mel frames (16 kHz, hop 256, centred).
"""
from __future__ import annotations

import numpy as np

from bitstream.modes import HOP, SAMPLE_RATE as SR
from bitstream.pitch import F0_MAX, F0_MIN, REF_INDEX, STEPS_PER_OCTAVE, to_index

YIN_THRESHOLD = 0.25
WIN = 1024  # samples of the centred analysis window
BLOCK_FRAMES = 512  # frames analysed at once: bounds memory (≈ 30 MB a block) whatever the input's length


def _frames_of(wav: np.ndarray, first: int, count: int, win: int) -> np.ndarray:
    """The analysis windows (count, win) float64 of frames ``first`` … ``first + count − 1``: frame k covers
    samples [256·k − 512, 256·k − 512 + win), zeros beyond the input."""
    lo, hi = first * HOP - WIN // 2, (first + count - 1) * HOP - WIN // 2 + win
    piece = np.zeros(hi - lo)
    a, b = max(lo, 0), min(hi, len(wav))
    if b > a:
        piece[a - lo: b - lo] = wav[a:b]
    return np.lib.stride_tricks.sliding_window_view(piece, win)[::HOP]


def estimate(wav: np.ndarray, lookahead: int = WIN // 2, block: int = BLOCK_FRAMES) -> tuple[np.ndarray, np.ndarray]:
    """YIN on (samples,) 16 kHz float → (f0 Hz (frames,), voiced bool (frames,)), frames = samples // 256 + 1.

    Frame k analyses samples [256·k − 512, 256·k + ``lookahead``) (zeros beyond the input): centred
    1024-sample windows by default; the streaming front end looks 256 samples (16 ms) ahead. Frames
    are analysed ``block`` at a time, so memory is bounded (≈ 60 kB a frame of the block) and the
    track is the same whatever ``block`` is."""
    return estimate_frames(wav, 0, len(wav) // HOP + 1, lookahead, block)


def estimate_frames(wav: np.ndarray, first: int, count: int, lookahead: int = WIN // 2,
                    block: int = BLOCK_FRAMES) -> tuple[np.ndarray, np.ndarray]:
    """Frames ``first`` … ``first + count − 1`` of :func:`estimate`'s track → (f0 Hz (count,), voiced (count,))."""
    f0, voiced = np.empty(count, np.float32), np.empty(count, bool)
    for a in range(0, count, block):
        n = min(block, count - a)
        f0[a:a + n], voiced[a:a + n] = _yin(_frames_of(wav, first + a, n, WIN // 2 + lookahead))
    return f0, voiced


def _yin(seg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """YIN on analysis windows (frames, win) float64 → (f0 Hz (frames,) float32, voiced bool (frames,))."""
    frames, win = seg.shape
    seg = seg - seg.mean(axis=1, keepdims=True)
    lag_min, lag_max = int(SR / F0_MAX), int(SR / F0_MIN) + 1
    w = win - lag_max  # integration window
    spec = np.fft.rfft(seg, 2 * win)
    acf = np.fft.irfft(spec * np.conj(np.fft.rfft(seg[:, :w], 2 * win)))[:, : lag_max + 1]
    energy = np.cumsum(np.pad(seg ** 2, ((0, 0), (1, 0))), axis=1)
    e0 = energy[:, w]
    e_lag = energy[:, np.arange(lag_max + 1) + w] - energy[:, np.arange(lag_max + 1)]
    diff = e0[:, None] + e_lag - 2 * acf  # d(τ) = Σ (x_j - x_{j+τ})²
    diff[:, 0] = 0
    cum = np.cumsum(diff[:, 1:], axis=1) / np.arange(1, lag_max + 1)
    cmnd = np.ones_like(diff)
    cmnd[:, 1:] = diff[:, 1:] / np.maximum(cum, 1e-12)
    search = cmnd[:, lag_min: lag_max + 1]
    below = search < YIN_THRESHOLD
    # first dip under the threshold (then its local minimum), else the global minimum
    first = np.where(below.any(axis=1), below.argmax(axis=1), search.argmin(axis=1))
    lag = first.copy()
    for _ in range(lag_max):  # walk down to the local minimum (vectorised, bounded)
        nxt = np.minimum(lag + 1, search.shape[1] - 1)
        move = search[np.arange(frames), nxt] < search[np.arange(frames), lag]
        if not move.any():
            break
        lag = np.where(move, nxt, lag)
    best = search[np.arange(frames), lag]
    tau = (lag + lag_min).astype(np.float64)
    # parabolic interpolation of the minimum
    left, right = np.clip(lag - 1, 0, search.shape[1] - 1), np.clip(lag + 1, 0, search.shape[1] - 1)
    a, b, c = search[np.arange(frames), left], best, search[np.arange(frames), right]
    den = a - 2 * b + c
    curved = np.abs(den) > 1e-12
    tau[curved] += 0.5 * (a - c)[curved] / den[curved]
    rms = np.sqrt(e0 / w)
    voiced = (best < YIN_THRESHOLD) & (rms > 10 ** (-50 / 20))
    return (SR / np.maximum(tau, 1)).astype(np.float32), voiced


def group(f0: np.ndarray, voiced: np.ndarray, decimation: int) -> tuple[np.ndarray, np.ndarray]:
    """Frame track → per group (ceil(frames / decimation),): (pitch index int64, voiced bool).

    A group is voiced when at least half its frames are; its index is the rounded mean index of
    its voiced frames. Unvoiced groups repeat the previous index (it is not transmitted).
    """
    frames = len(f0)
    n = -(-frames // decimation)
    idx = to_index(f0).astype(np.float64)
    out_i, out_v, prev = np.empty(n, np.int64), np.empty(n, bool), REF_INDEX
    for i in range(n):
        sl = slice(i * decimation, min(frames, (i + 1) * decimation))
        v = voiced[sl]
        out_v[i] = v.mean() >= 0.5
        if out_v[i]:
            prev = int(np.round(idx[sl][v].mean()))
        out_i[i] = prev
    return out_i, out_v


def features(index: np.ndarray, voiced: np.ndarray, decimation: int, frames: int, causal: bool = False) -> np.ndarray:
    """Per-group pitch → the pitch rows of the vocoder's features (2, frames) float32: [voicing, octaves re 170 Hz].

    Voicing is held over each group's frames; log-F0 is interpolated linearly between the
    centres of voiced groups (and held flat beyond them). ``causal`` (streaming) holds the last
    voiced value instead of looking ahead to the next one (0 before the first).
    """
    centres = (np.arange(len(index)) + 0.5) * decimation - 0.5
    t = np.arange(frames)
    v = np.repeat(voiced, decimation)[:frames].astype(np.float32)
    octaves = (index - REF_INDEX) / STEPS_PER_OCTAVE
    if causal:
        lf0 = np.repeat(held_octaves(index, voiced)[0], decimation)[:frames].astype(np.float32)
    elif voiced.any():
        lf0 = np.interp(t, centres[voiced], octaves[voiced]).astype(np.float32)
    else:
        lf0 = np.zeros(frames, np.float32)
    return np.stack([v, lf0])


def held_octaves(index: np.ndarray, voiced: np.ndarray, last: float = 0.0) -> tuple[np.ndarray, float]:
    """Causal log-F0 per group: each voiced group's octaves re 170 Hz, held over unvoiced groups
    (``last`` before the first voiced one) → (values, value to carry into the next call)."""
    octaves = (index - REF_INDEX) / STEPS_PER_OCTAVE
    latest = np.maximum.accumulate(np.where(voiced, np.arange(len(index)), -1))
    out = np.where(latest >= 0, octaves[np.maximum(latest, 0)], last)
    return out, float(out[-1]) if len(out) else last
