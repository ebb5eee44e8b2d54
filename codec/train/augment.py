"""Noise and reverberation mixed into training crops on the fly (16 kHz mono float32).

    aug = Augmenter(AugmentConfig(), noise_dir="../shared/data/noise", speech=corpus.speech)
    noisy, clean = aug(clean_batch)          # (batch, samples) each

Noise kinds: ``real`` (the train split of the recordings in ``noise_dir/noise``), ``babble`` (3-6 other
training crops, each at the same active level), ``white``/``pink``/``brown`` (Gaussian noise shaped to
1/f^0, 1/f^1, 1/f^2 power) and ``nonstationary`` (coloured noise of a random exponent under a slow random
gain envelope). Rooms: the train split of the measured RIRs in ``noise_dir/rir`` or a simulated one
(:func:`simulated_rir`: a direct path, then exponentially decaying noise of a random RT60). Every RIR
starts at its direct path with gain 1, so the reverberant crop stays aligned with the dry one.

The SNR is the active speech level (:func:`active_level`, of the speech as it reaches the microphone,
i.e. after the room) over the noise's mean power, drawn uniformly in ``AugmentConfig.snr``; a share
``1 - noise_p`` of the crops stays clean. :func:`split` divides the recordings and RIRs between
training and the noisy dev set (``codec.noisy_dev``) so that no recording used to train is used to judge.
"""
from __future__ import annotations

import argparse
import csv
import shutil
import subprocess
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import fftconvolve

from ..audio import SAMPLE_RATE, AudioInputError, load, resample, to_mono
from .data import list_audio

DEV_EVERY = 4  # every 4th recording (and RIR) of the category-sorted list is held out for the noisy dev set
FRAME = 320  # 20 ms: the frames of active_level
SPEECH = Callable[[int, int, np.random.Generator], np.ndarray]  # (n, samples, rng) → (n, samples) speech crops


@dataclass
class AugmentConfig:
    """What :class:`Augmenter` does to each crop. Probabilities are per crop; SNR and DRR in dB,
    RT60 in seconds; ``kinds``: noise kind → weight (kinds not available are dropped: ``real``
    without recordings, ``babble`` without a speech source)."""

    noise_p: float = 0.5
    snr: tuple[float, float] = (0.0, 30.0)
    reverb_p: float = 0.25
    real_rir_p: float = 0.5  # share of the reverberant crops that use a measured RIR (when there are any)
    rt60: tuple[float, float] = (0.2, 0.8)
    drr: tuple[float, float] = (-3.0, 12.0)  # direct-to-reverberant energy ratio of the simulated rooms
    voices: tuple[int, int] = (3, 6)  # babble: speakers talking at once
    kinds: dict[str, float] = field(default_factory=lambda: {
        "real": 0.4, "babble": 0.2, "white": 0.05, "pink": 0.1, "brown": 0.05, "nonstationary": 0.2})

    @property
    def active(self) -> bool:
        return self.noise_p > 0 or self.reverb_p > 0


def _catalogue(folder: Path, kind: str) -> list[tuple[str, Path]]:
    """(category, path) of the ``kind`` ("noise" or "rir") files of a noise folder: from its
    ``index.tsv`` when there is one, else every audio file below ``folder/kind`` (category: its folder)."""
    index = folder / "index.tsv"
    if index.exists():
        with open(index, newline="") as f:
            rows = [r for r in csv.DictReader(f, delimiter="\t") if r["kind"] == kind]
        return [(r["category"], folder / r["file"]) for r in rows if (folder / r["file"]).exists()]
    return [(p.parent.name, p) for p in list_audio(folder / kind)] if (folder / kind).is_dir() else []


def split(folder: str | Path, part: str) -> tuple[list[Path], list[Path]]:
    """(noise recordings, RIRs) of ``part`` ("train" or "dev") of a noise folder (``../shared/data/noise``).

    Each kind is sorted by (category, path) and every :data:`DEV_EVERY`-th file (the 4th, 8th, ...)
    goes to dev, the rest to train: both sides cover most kinds of sound, the two never share a file.
    """
    if part not in ("train", "dev"):
        raise ValueError(f"part must be 'train' or 'dev', not {part!r}")
    out = []
    for kind in ("noise", "rir"):
        files = [p for _, p in sorted(_catalogue(Path(folder), kind), key=lambda cp: (cp[0], cp[1].as_posix()))]
        out.append([p for i, p in enumerate(files) if (i % DEV_EVERY == DEV_EVERY - 1) == (part == "dev")])
    return out[0], out[1]


def read(path: Path) -> np.ndarray:
    """An audio file → (samples,) float32 mono 16 kHz. Ogg Opus files libsndfile cannot read to the end
    (4 of the shared recordings, 1.2.2) are decoded by ``opusdec`` (opus-tools) when it is installed,
    else read as far as libsndfile goes, with a warning."""
    try:
        wav, sr = load(path)
    except AudioInputError:
        if Path(path).suffix.lower() != ".ogg":
            raise
        wav, sr = _read_opus(Path(path))
    return resample(to_mono(wav), sr, SAMPLE_RATE).astype(np.float32)


def _read_opus(path: Path) -> tuple[np.ndarray, int]:
    if shutil.which("opusdec"):
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(["opusdec", "--quiet", "--float", "--rate", "16000", str(path), f"{tmp}/x.wav"], check=True)
            wav, sr = sf.read(f"{tmp}/x.wav", dtype="float32")
            return wav, sr
    blocks = []
    with sf.SoundFile(str(path)) as f:
        try:
            while len(block := f.read(16000, dtype="float32")):
                blocks.append(block)
        except sf.LibsndfileError:
            warnings.warn(f"{path}: libsndfile stops after {sum(map(len, blocks)) / f.samplerate:.1f} of "
                          f"{f.frames / f.samplerate:.1f} s; install opus-tools (opusdec) to read all of it",
                          stacklevel=3)
        return np.concatenate(blocks) if blocks else np.zeros(0, np.float32), f.samplerate


def active_level(x: np.ndarray) -> float:
    """Active power of ``x`` (samples,): the mean square over the 20 ms frames within 40 dB of the
    loudest one (pauses do not count); the plain mean square for a clip shorter than a frame."""
    x = np.asarray(x, np.float64)
    if len(x) < FRAME:
        return float(np.mean(x ** 2)) if len(x) else 0.0
    power = np.mean(x[: len(x) // FRAME * FRAME].reshape(-1, FRAME) ** 2, axis=1)
    return float(np.mean(power[power >= power.max() * 1e-4]))


def mix(speech: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """``speech`` + ``noise`` (same length) scaled so that active_level(speech) / mean(noise²) = ``snr_db``."""
    gain = np.sqrt(active_level(speech) / 10 ** (snr_db / 10) / (np.mean(noise.astype(np.float64) ** 2) + 1e-20))
    return (speech + gain * noise).astype(np.float32)


def coloured_noise(samples: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise (samples,) with power ∝ 1/f^``exponent`` (0 white, 1 pink, 2 brown; flat below 20 Hz),
    unit RMS."""
    spectrum = np.fft.rfft(rng.standard_normal(samples))
    f = np.maximum(np.fft.rfftfreq(samples, 1 / SAMPLE_RATE), 20.0)
    x = np.fft.irfft(spectrum * f ** (-exponent / 2), samples)
    return (x / (np.sqrt(np.mean(x ** 2)) + 1e-12)).astype(np.float32)


def nonstationary_noise(samples: int, rng: np.random.Generator) -> np.ndarray:
    """Coloured noise (random exponent 0-2) under a slow random gain (samples,): a new level every
    0.2-1 s, −20 to +6 dB, joined smoothly (the machine that starts, the door, the passing car)."""
    step = int(rng.uniform(0.2, 1.0) * SAMPLE_RATE)
    knots = rng.uniform(-20, 6, samples // step + 2)
    t = np.arange(samples) / step
    i = t.astype(int)
    w = 0.5 - 0.5 * np.cos(np.pi * (t - i))  # raised-cosine between knots
    envelope = 10 ** (((1 - w) * knots[i] + w * knots[i + 1]) / 20)
    return (coloured_noise(samples, rng.uniform(0, 2), rng) * envelope).astype(np.float32)


def babble(voices: np.ndarray) -> np.ndarray:
    """(n, samples) speech crops → their sum (samples,), each first brought to unit active level."""
    return np.sum([v / np.sqrt(active_level(v) + 1e-12) for v in voices], axis=0).astype(np.float32)


def excerpt(recording: np.ndarray, samples: int, rng: np.random.Generator) -> np.ndarray:
    """``samples`` of ``recording`` from a random start, looped when the recording is shorter."""
    start = int(rng.integers(len(recording)))
    return np.resize(np.roll(recording, -start), samples).astype(np.float32)


def simulated_rir(rng: np.random.Generator, rt60: tuple[float, float] = (0.2, 0.8),
                  drr: tuple[float, float] = (-3.0, 12.0)) -> np.ndarray:
    """A simulated room (samples,): gain 1 at sample 0 (the direct path), then after 1-5 ms Gaussian
    noise decaying 60 dB over an RT60 drawn in ``rt60`` s, its energy ``drr`` dB (drawn) below the
    direct path's."""
    t60 = rng.uniform(*rt60)
    n = int(t60 * SAMPLE_RATE)
    tail = rng.standard_normal(n) * 10 ** (-3 * np.arange(n) / n)
    tail[: int(rng.uniform(0.001, 0.005) * SAMPLE_RATE)] = 0.0
    tail *= np.sqrt(10 ** (-rng.uniform(*drr) / 10) / np.sum(tail ** 2))
    tail[0] = 1.0
    return tail.astype(np.float32)


def measured_rir(h: np.ndarray) -> np.ndarray:
    """A measured RIR (samples,) trimmed to start at its direct path (the largest peak), scaled to gain 1 there."""
    peak = int(np.argmax(np.abs(h)))
    return (h[peak:] / h[peak]).astype(np.float32)


def reverberate(x: np.ndarray, rir: np.ndarray) -> np.ndarray:
    """``x`` (samples,) in the room ``rir`` (its direct path at sample 0): same length and alignment."""
    return fftconvolve(x, rir)[: len(x)].astype(np.float32)


def limit(*signals: np.ndarray, peak: float = 0.99) -> list[np.ndarray]:
    """Scale every signal by the same gain so that the first one peaks at most at ``peak``."""
    top = float(np.abs(signals[0]).max(initial=0.0))
    return [s * (peak / top) if top > peak else s for s in signals]


class Augmenter:
    """Noise and rooms for training crops. ``noise_dir``: a noise folder (``index.tsv``, ``noise/``,
    ``rir/``) whose ``part`` split it draws recordings and RIRs from (None: synthetic only);
    ``speech(n, samples, rng)``: other speech crops for babble (e.g. :meth:`Corpus.speech`);
    ``seed``: the generator used when a call gives none."""

    def __init__(self, config: AugmentConfig | None = None, noise_dir: str | Path | None = None,
                 part: str = "train", speech: SPEECH | None = None, seed: int = 0):
        self.config = config or AugmentConfig()
        noises, rirs = split(noise_dir, part) if noise_dir else ([], [])
        self.noises = [read(p) for p in noises]
        self.rirs = [measured_rir(read(p)) for p in rirs]
        self.speech = speech
        self.rng = np.random.default_rng(seed)

    def __repr__(self) -> str:
        c = self.config
        kinds = ", ".join(f"{k} {w:.2f}" for k, w in self.kinds().items())
        return (f"Augmenter(noise {c.noise_p:g} at {c.snr[0]:g}-{c.snr[1]:g} dB SNR from {kinds}, "
                f"{len(self.noises)} recordings; reverb {c.reverb_p:g}, {len(self.rirs)} measured rooms)")

    def kinds(self) -> dict[str, float]:
        """The noise kinds this augmenter can make → their weights (summing to 1)."""
        kinds = {k: w for k, w in self.config.kinds.items()
                 if w > 0 and (k != "real" or self.noises) and (k != "babble" or self.speech)}
        total = sum(kinds.values())
        return {k: w / total for k, w in kinds.items()}

    def noise(self, kind: str, samples: int, rng: np.random.Generator) -> np.ndarray:
        """``samples`` of noise of ``kind`` (samples,), at an arbitrary level."""
        if kind == "real":
            return excerpt(self.noises[int(rng.integers(len(self.noises)))], samples, rng)
        if kind == "babble":
            return babble(self.speech(int(rng.integers(self.config.voices[0], self.config.voices[1] + 1)),
                                      samples, rng))
        if kind == "nonstationary":
            return nonstationary_noise(samples, rng)
        exponents = {"white": 0.0, "pink": 1.0, "brown": 2.0}
        if kind not in exponents:
            raise ValueError(f"unknown noise kind {kind!r}: choose from real, babble, nonstationary, "
                             + ", ".join(exponents))
        return coloured_noise(samples, exponents[kind], rng)

    def rir(self, rng: np.random.Generator) -> np.ndarray:
        """A measured room (``real_rir_p`` of the time, when there are any) or a simulated one."""
        c = self.config
        if self.rirs and rng.random() < c.real_rir_p:
            return self.rirs[int(rng.integers(len(self.rirs)))]
        return simulated_rir(rng, c.rt60, c.drr)

    def __call__(self, clean: np.ndarray, rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Clean crops (batch, samples) float32 → (noisy, clean) of the same shape: each crop put in a
        room with probability ``reverb_p``, given noise with probability ``noise_p``; where the noisy
        crop would peak above 0.99 both are scaled down together. ``clean`` is the dry target (the
        direct path, aligned with the noisy crop); ``rng``: the generator (default: the augmenter's)."""
        rng = self.rng if rng is None else rng
        c, kinds = self.config, self.kinds()
        noisy, target = np.array(clean, np.float32), np.array(clean, np.float32)
        for i in range(len(noisy)):
            if rng.random() < c.reverb_p:
                noisy[i] = reverberate(noisy[i], self.rir(rng))
            if rng.random() < c.noise_p and kinds:
                kind = rng.choice(list(kinds), p=list(kinds.values()))
                noisy[i] = mix(noisy[i], self.noise(kind, noisy.shape[1], rng), rng.uniform(*c.snr))
            noisy[i], target[i] = limit(noisy[i], target[i])
        return noisy, target


def add_options(ap: argparse.ArgumentParser) -> None:
    """The augmentation options every trainer takes (all off by default)."""
    d = AugmentConfig()
    g = ap.add_argument_group("noise and reverberation (on the fly; the model sees noisy input, restoring "
                              "trainers learn the clean target)")
    g.add_argument("--noise", metavar="DIR",
                   help="noise folder (../shared/data/noise): its train split of recordings and RIRs; turns "
                        f"augmentation on at --noise-p {d.noise_p:g} --reverb-p {d.reverb_p:g} unless given")
    g.add_argument("--noise-p", type=float, help="share of crops given noise (> 0 turns augmentation on with "
                                                 "synthetic noise and simulated rooms even without --noise)")
    g.add_argument("--snr", type=float, nargs=2, default=d.snr, metavar=("MIN", "MAX"), help="SNR range, dB")
    g.add_argument("--reverb-p", type=float, help="share of crops put in a room")


def from_args(args: argparse.Namespace) -> AugmentConfig | None:
    """:func:`add_options`' choices → a config, or None when augmentation is off."""
    on = args.noise is not None
    config = AugmentConfig(
        noise_p=args.noise_p if args.noise_p is not None else AugmentConfig.noise_p if on else 0.0,
        reverb_p=args.reverb_p if args.reverb_p is not None else AugmentConfig.reverb_p if on else 0.0,
        snr=tuple(args.snr))
    for name in ("noise_p", "reverb_p"):
        if not 0 <= getattr(config, name) <= 1:
            raise SystemExit(f"--{name.replace('_', '-')} must be between 0 and 1")
    return config if config.active else None
