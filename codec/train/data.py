"""In-memory speech corpus with weighted random crops (16 kHz mono float32)."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..audio import load, resample, to_mono, SAMPLE_RATE

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg"}


def list_audio(folder: str | Path, exclude: str | None = None) -> list[Path]:
    """Audio files below ``folder`` (sorted), minus names matching the ``exclude`` regex."""
    files = sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
    if exclude:
        files = [p for p in files if not re.search(exclude, p.name)]
    return files


class Corpus:
    """Holds every clip in memory; :meth:`batch` draws random crops weighted by duration × weight.

    ``sources`` is a list of ``(folder, weight)``; weight oversamples a folder (e.g. real speech).
    """

    def __init__(self, sources: list[tuple[str, float]], exclude: str | None = None, seed: int = 0):
        self.clips: list[np.ndarray] = []
        weights = []
        for folder, weight in sources:
            for path in list_audio(folder, exclude):
                wav, sr = load(path)
                wav = resample(to_mono(wav), sr, SAMPLE_RATE)
                self.clips.append(wav)
                weights.append(weight * len(wav))
        if not self.clips:
            raise FileNotFoundError(f"no audio found in {[s for s, _ in sources]}")
        self.p = np.asarray(weights) / np.sum(weights)
        self.rng = np.random.default_rng(seed)

    @property
    def seconds(self) -> float:
        return sum(len(c) for c in self.clips) / SAMPLE_RATE

    def batch(self, size: int, samples: int) -> np.ndarray:
        """(size, samples) random crops, zero-padded where a clip is shorter, random gain."""
        out = np.zeros((size, samples), dtype=np.float32)
        for i, k in enumerate(self.rng.choice(len(self.clips), size=size, p=self.p)):
            clip = self.clips[k]
            start = self.rng.integers(0, max(1, len(clip) - samples + 1))
            seg = clip[start:start + samples]
            peak = np.abs(seg).max() + 1e-6
            gain = 10 ** (self.rng.uniform(-18, -1) / 20) / peak
            out[i, :len(seg)] = seg * gain
        return out
