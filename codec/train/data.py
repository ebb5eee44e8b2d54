"""In-memory speech corpus with cached pitch tracks and weighted random crops (16 kHz mono float32)."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .. import pitch
from ..audio import load, resample, to_mono, SAMPLE_RATE

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg"}
HOP = pitch.HOP  # crops start on a frame boundary so the cached pitch frames line up with the crop's mel


def list_audio(folder: str | Path, exclude: str | None = None) -> list[Path]:
    """Audio files below ``folder`` (sorted), minus names matching the ``exclude`` regex."""
    files = sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
    if exclude:
        files = [p for p in files if not re.search(exclude, p.name)]
    return files


@dataclass
class Crops:
    """A batch of crops: ``wav`` (batch, samples) float32 and its pitch track per 62.5 Hz frame,
    ``f0`` (batch, frames) Hz and ``voiced`` (batch, frames) bool, frames = samples // 256 + 1."""

    wav: np.ndarray
    f0: np.ndarray
    voiced: np.ndarray

    def tensor(self, device: str = "cpu") -> torch.Tensor:
        return torch.from_numpy(self.wav).to(device)

    def rows(self, i: int, decimation: int, frames: int, causal: bool = False) -> torch.Tensor:
        """Crop ``i``'s pitch rows (1, 2, frames), as a stream with groups of ``decimation`` frames carries them."""
        f0, voiced = self.f0[i, :frames], self.voiced[i, :frames]
        return torch.from_numpy(pitch.features(*pitch.group(f0, voiced, decimation), decimation, frames, causal))[None]

    def pitch_rows(self, decimation: int, frames: int, causal: bool = False) -> torch.Tensor:
        """(batch, 2, frames): every crop's :meth:`rows`."""
        return torch.cat([self.rows(i, decimation, frames, causal) for i in range(len(self.wav))])


class Corpus:
    """Holds every clip and its pitch track (estimated once, at load) in memory; :meth:`batch`
    draws random crops weighted by duration × weight.

    ``sources`` is a list of ``(folder, weight)``; weight oversamples a folder (e.g. real speech).
    ``lookahead``: the pitch analysis look-ahead in samples (``MelConfig.lookahead``).
    """

    def __init__(self, sources: list[tuple[str, float]], exclude: str | None = None, seed: int = 0,
                 lookahead: int = pitch.WIN // 2):
        self.clips: list[np.ndarray] = []
        self.tracks: list[tuple[np.ndarray, np.ndarray]] = []
        weights = []
        for folder, weight in sources:
            for path in list_audio(folder, exclude):
                wav, sr = load(path)
                wav = resample(to_mono(wav), sr, SAMPLE_RATE)
                self.clips.append(wav)
                self.tracks.append(pitch.estimate(wav, lookahead))
                weights.append(weight * len(wav))
        if not self.clips:
            raise FileNotFoundError(f"no audio found in {[s for s, _ in sources]}")
        self.p = np.asarray(weights) / np.sum(weights)
        self.rng = np.random.default_rng(seed)

    @property
    def seconds(self) -> float:
        return sum(len(c) for c in self.clips) / SAMPLE_RATE

    def batch(self, size: int, samples: int) -> Crops:
        """``size`` random crops of ``samples``, starting on a frame boundary, zero-padded (unvoiced)
        where a clip is shorter, at a random gain (peak −18 to −1 dBFS)."""
        frames = samples // HOP + 1
        out = Crops(np.zeros((size, samples), np.float32), np.full((size, frames), pitch.F0_MIN, np.float32),
                    np.zeros((size, frames), bool))
        for i, k in enumerate(self.rng.choice(len(self.clips), size=size, p=self.p)):
            clip, (f0, voiced) = self.clips[k], self.tracks[k]
            first = int(self.rng.integers(0, max(1, (len(clip) - samples) // HOP + 1)))
            seg = clip[first * HOP:first * HOP + samples]
            peak = np.abs(seg).max() + 1e-6
            out.wav[i, :len(seg)] = seg * 10 ** (self.rng.uniform(-18, -1) / 20) / peak
            n = min(frames, len(f0) - first)
            out.f0[i, :n], out.voiced[i, :n] = f0[first:first + n], voiced[first:first + n]
        return out
