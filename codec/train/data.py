"""In-memory speech corpus with cached pitch tracks and weighted random crops (16 kHz mono float32)."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .. import pitch
from ..audio import load, resample, to_mono, SAMPLE_RATE
from ..vocoder_input import track_rows

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
    ``f0`` (batch, frames) Hz and ``voiced`` (batch, frames) bool, frames = samples // 256 + 1.

    With augmentation (:attr:`Corpus.augmenter`) ``wav`` is the input as a microphone would take it
    (noise, room) and ``clean`` (batch, samples) the dry clean speech, aligned with it: the target of a
    restoring model (a faithful one, e.g. ``direct``'s vocoder, keeps ``wav`` as its target). The pitch
    track is the clean clip's (cached per clip) in both cases. Without augmentation ``clean`` is None."""

    wav: np.ndarray
    f0: np.ndarray
    voiced: np.ndarray
    clean: np.ndarray | None = None

    def tensor(self, device: str = "cpu", clean: bool = False) -> torch.Tensor:
        """``wav`` (batch, samples) as a tensor on ``device``; ``clean``: the clean crops instead (``wav``
        itself when not augmented)."""
        return torch.from_numpy(self.clean if clean and self.clean is not None else self.wav).to(device)

    def rows(self, i: int, decimation: int, frames: int, causal: bool = False) -> torch.Tensor:
        """Crop ``i``'s pitch rows (1, 2, frames), as a stream with groups of ``decimation`` frames carries them."""
        return track_rows(self.f0[i, :frames], self.voiced[i, :frames], decimation, frames, causal)

    def pitch_rows(self, decimation: int, frames: int, causal: bool = False) -> torch.Tensor:
        """(batch, 2, frames): every crop's :meth:`rows`."""
        return torch.cat([self.rows(i, decimation, frames, causal) for i in range(len(self.wav))])


class Corpus:
    """Holds every clip and its pitch track (estimated once, at load) in memory; :meth:`batch`
    draws random crops weighted by duration × weight.

    ``sources`` is a list of ``(folder, weight)``; weight oversamples a folder (e.g. real speech).
    ``lookahead``: the pitch analysis look-ahead in samples (``MelConfig.lookahead``).
    ``cache``: a :class:`PitchCache` file: tracks found there are not estimated again, new ones are added.
    ``augmenter``: set it (a ``codec.train.augment.Augmenter``) to mix noise and rooms into every batch.
    """

    def __init__(self, sources: list[tuple[str, float]], exclude: str | None = None, seed: int = 0,
                 lookahead: int = pitch.WIN // 2, cache: str | Path | None = None):
        self.clips: list[np.ndarray] = []
        self.tracks: list[tuple[np.ndarray, np.ndarray]] = []
        weights = []
        tracks = PitchCache(cache, lookahead)
        for folder, weight in sources:
            for path in list_audio(folder, exclude):
                wav, sr = load(path)
                wav = resample(to_mono(wav), sr, SAMPLE_RATE)
                self.clips.append(wav)
                self.tracks.append(tracks.get(Path(folder).name + "/" + path.relative_to(folder).as_posix(), wav))
                weights.append(weight * len(wav))
        tracks.save()
        if not self.clips:
            raise FileNotFoundError(f"no audio found in {[s for s, _ in sources]}")
        self.p = np.asarray(weights) / np.sum(weights)
        self.rng = np.random.default_rng(seed)
        self.augmenter = None

    @property
    def seconds(self) -> float:
        return sum(len(c) for c in self.clips) / SAMPLE_RATE

    def batch(self, size: int, samples: int) -> Crops:
        """``size`` random crops of ``samples``, starting on a frame boundary, zero-padded (unvoiced)
        where a clip is shorter, at a random gain (peak −18 to −1 dBFS); through :attr:`augmenter` when set
        (then ``clean`` holds the clean crops)."""
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
        if self.augmenter is not None:  # noisy input, clean target (same random stream: reseeded with rng)
            out.wav, out.clean = self.augmenter(out.wav, self.rng)
        return out

    def speech(self, n: int, samples: int, rng: np.random.Generator) -> np.ndarray:
        """(n, samples) float32: random stretches of random clips at their own level, zero-padded where a
        clip is shorter (the voices of babble noise)."""
        out = np.zeros((n, samples), np.float32)
        for i, k in enumerate(rng.choice(len(self.clips), size=n, p=self.p)):
            clip = self.clips[k]
            first = int(rng.integers(0, max(1, len(clip) - samples + 1)))
            out[i, : min(samples, len(clip))] = clip[first:first + samples]
        return out


class PitchCache:
    """Pitch tracks (``codec.pitch.estimate``) kept in one ``.npz`` (no pickle) across runs, keyed by
    "source folder name/relative path" and the clip's length in samples, for one ``lookahead``.
    ``path`` None: nothing is kept."""

    def __init__(self, path: str | Path | None, lookahead: int):
        self.path, self.lookahead, self.tracks, self.dirty = path and Path(path), lookahead, {}, False
        if self.path and self.path.exists():
            with np.load(self.path, allow_pickle=False) as z:
                if int(z["lookahead"]) == lookahead:
                    ends = np.cumsum(z["frames"])
                    for key, end, n in zip(z["keys"], ends, z["frames"]):
                        self.tracks[str(key)] = (z["f0"][end - n:end], z["voiced"][end - n:end])

    def get(self, name: str, wav: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The track of ``wav`` (16 kHz mono), from the cache or estimated and added."""
        key = f"{name}:{len(wav)}"
        if key not in self.tracks:
            self.tracks[key], self.dirty = pitch.estimate(wav, self.lookahead), True
        return self.tracks[key]

    def save(self) -> None:
        """Write the cache (atomically) if it gained tracks."""
        if not (self.path and self.dirty):
            return
        keys = list(self.tracks)
        tmp = self.path.with_name(self.path.name + ".tmp.npz")
        np.savez(tmp, keys=np.array(keys), lookahead=self.lookahead,
                 frames=np.array([len(self.tracks[k][0]) for k in keys]),
                 f0=np.concatenate([self.tracks[k][0] for k in keys]),
                 voiced=np.concatenate([self.tracks[k][1] for k in keys]))
        tmp.replace(self.path)
        self.dirty = False
