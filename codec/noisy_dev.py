"""The noisy dev set: each clip of the clean dev split (``../shared/data/real/dev``) at several SNRs
(0/5/10/20 dB), each with its own noise kind (real recordings of the noise folder's *dev* split, babble
of other dev speakers, pink noise, non-stationary noise) and ~30 % of them in a room (a dev-split
measured RIR or a simulated one). Built deterministically: the draws of a condition depend only on the
seed, the clip's path under the dev folder and the SNR, so the same inputs give the same bytes.

    python benches/make_noisy_dev.py --out ~/ldcodec-data/noisy_dev      # builds it (a minute or two)
    python benches/quality.py --noisy ~/ldcodec-data/noisy_dev           # scores it

Layout: ``OUT/<speaker folders as in the dev split>/<clip>__<condition>.flac`` (16-bit, 16 kHz), and
``OUT/index.tsv`` with a row per noisy file: ``path`` (under OUT), ``clean`` (under the dev folder),
``speaker``, ``corpus``, ``note`` (as the dev split's index has them, so ``codec.evaluate.speaker_of``
groups the noisy files too), ``condition``, ``snr_db``, ``noise`` (kind), ``noise_file``, ``rir``.
``OUT/build.json`` names the dev folder and the settings; ``OUT/README.md`` keeps the attribution lines
of the speech and of the noise recordings, ``OUT/NOISE_LICENSES.md`` the noise folder's licence notes.
The SNR is the active level of the (reverberant) speech over the noise's mean power
(``codec.train.augment.mix``); a mix that would peak above 0.99 is scaled down (the SNR stays).
"""
from __future__ import annotations

import csv
import json
import shutil
import zlib
from pathlib import Path

import numpy as np
import soundfile as sf

from .audio import SAMPLE_RATE
from .train.augment import (babble, coloured_noise, excerpt, limit, measured_rir, mix, nonstationary_noise, read,
                            reverberate, simulated_rir, split)
from .train.data import list_audio

SNRS = (0, 5, 10, 20)
KINDS = {"real": 0.4, "babble": 0.2, "pink": 0.15, "nonstationary": 0.25}  # kind → share (real: when given)
REVERB_P = 0.3
COLUMNS = ("path", "clean", "speaker", "corpus", "note", "condition", "snr_db", "noise", "noise_file", "rir")


class Sources:
    """What the conditions draw from: the dev clips (for babble), the noise folder's dev split."""

    def __init__(self, dev: Path, clips: list[Path], noise_dir: Path | None):
        self.dev, self.clips = dev, clips
        self.speech = {c: read(c) for c in clips}
        noises, rirs = split(noise_dir, "dev") if noise_dir else ([], [])
        self.noises = {self._name(p, noise_dir): read(p) for p in noises}
        self.rirs = {self._name(p, noise_dir): measured_rir(read(p)) for p in rirs}

    @staticmethod
    def _name(path: Path, root: Path) -> str:
        return Path(path).relative_to(root).as_posix()

    def others(self, clip: Path) -> list[Path]:
        """Clips of other speakers (other folders) for babble; other clips when there is one speaker."""
        return [c for c in self.clips if c.parent != clip.parent] or [c for c in self.clips if c != clip]

    def noise(self, kind: str, clip: Path, samples: int, rng: np.random.Generator) -> tuple[np.ndarray, str]:
        """(noise (samples,), what it is made of) of ``kind`` for ``clip``."""
        if kind == "real":
            name = sorted(self.noises)[int(rng.integers(len(self.noises)))]
            return excerpt(self.noises[name], samples, rng), name
        if kind == "babble":
            others = self.others(clip)
            voices = [others[int(i)] for i in rng.choice(len(others), size=min(len(others), int(rng.integers(3, 7))),
                                                         replace=False)]
            return (babble(np.stack([excerpt(self.speech[v], samples, rng) for v in voices])),
                    " + ".join(v.relative_to(self.dev).as_posix() for v in voices))
        if kind == "pink":
            return coloured_noise(samples, 1.0, rng), "pink (1/f)"
        return nonstationary_noise(samples, rng), "non-stationary coloured"

    def room(self, rng: np.random.Generator) -> tuple[np.ndarray, str]:
        """(RIR, its name): a dev-split measured one half the time when there are any, else simulated."""
        if self.rirs and rng.random() < 0.5:
            name = sorted(self.rirs)[int(rng.integers(len(self.rirs)))]
            return self.rirs[name], name
        rir = simulated_rir(rng)
        return rir, f"simulated, RT60 {len(rir) / SAMPLE_RATE:.2f} s"


def condition(sources: Sources, clip: Path, snr: float, seed: int) -> tuple[np.ndarray, dict]:
    """The noisy version of ``clip`` at ``snr`` dB → (audio (samples,) float32, its manifest fields)."""
    rel = clip.relative_to(sources.dev).as_posix()
    rng = np.random.default_rng([seed, zlib.crc32(rel.encode()), int(round(snr * 10))])
    kinds = {k: w for k, w in KINDS.items() if k != "real" or sources.noises}
    kind = str(rng.choice(list(kinds), p=np.array(list(kinds.values())) / sum(kinds.values())))
    wav = sources.speech[clip]
    rir_name = ""
    if rng.random() < REVERB_P:
        rir, rir_name = sources.room(rng)
        wav = reverberate(wav, rir)
    noise, noise_file = sources.noise(kind, clip, len(wav), rng)
    (noisy,) = limit(mix(wav, noise, snr))
    name = f"snr{snr:02g}_{kind}" + ("_reverb" if rir_name else "")
    return noisy.astype(np.float32), {"clean": rel, "condition": name, "snr_db": f"{snr:g}", "noise": kind,
                                      "noise_file": noise_file, "rir": rir_name}


def _speaker_rows(dev: Path) -> dict[str, dict]:
    """The dev split's ``index.tsv`` rows (one folder up, the team's layout) by path under ``dev``."""
    index = dev.parent / "index.tsv"
    if not index.exists():
        return {}
    with open(index, newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    prefix = dev.name + "/"
    return {r["path"][len(prefix):]: r for r in rows if r["path"].startswith(prefix)}


def build(dev: str | Path, out: str | Path, noise_dir: str | Path | None = None, seed: int = 0,
          snrs: tuple[float, ...] = SNRS, progress=None) -> list[dict]:
    """Write the noisy dev set of ``dev`` into ``out`` (see the module doc) → its manifest rows.
    ``noise_dir``: the noise folder (None: no real recordings, simulated rooms only);
    ``progress(clip)`` is called after each clip."""
    dev, out = Path(dev).resolve(), Path(out)
    noise_dir = Path(noise_dir).resolve() if noise_dir else None
    clips = list_audio(dev)
    if not clips:
        raise FileNotFoundError(f"no audio in {dev}")
    sources, index, rows = Sources(dev, clips, noise_dir), _speaker_rows(dev), []
    for clip in clips:
        rel = clip.relative_to(dev)
        for snr in snrs:
            noisy, fields = condition(sources, clip, snr, seed)
            path = rel.parent / f"{clip.stem}__{fields['condition']}.flac"
            (out / path).parent.mkdir(parents=True, exist_ok=True)
            sf.write(out / path, noisy, SAMPLE_RATE, subtype="PCM_16", format="FLAC")
            known = index.get(rel.as_posix(), {})
            rows.append({"path": path.as_posix(), "speaker": known.get("speaker", rel.parent.name or dev.name),
                         "corpus": known.get("corpus", rel.parts[0] if len(rel.parts) > 1 else dev.name),
                         "note": known.get("note", ""), **fields})
        if progress:
            progress(clip)
    with open(out / "index.tsv", "w", newline="") as f:
        w = csv.DictWriter(f, COLUMNS, delimiter="\t", lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    settings = {"dev": str(dev), "noise": str(noise_dir) if noise_dir else None, "seed": seed, "snrs": list(snrs),
                "kinds": KINDS, "reverb_p": REVERB_P, "noise_files": sorted(sources.noises),
                "rirs": sorted(sources.rirs)}
    (out / "build.json").write_text(json.dumps(settings, indent=1) + "\n")
    _notices(out, dev, noise_dir, settings)
    return rows


def _notices(out: Path, dev: Path, noise_dir: Path | None, settings: dict) -> None:
    """README.md (what this is, the attribution lines to keep) and NOISE_LICENSES.md (the noise folder's)."""
    lines = ["# Noisy dev set (made by codec.noisy_dev; not for training)", "",
             f"Clean clips: {dev}. Seed {settings['seed']}, SNRs {settings['snrs']} dB, noise kinds "
             f"{settings['kinds']}, reverberant share {settings['reverb_p']}. Rows: index.tsv. Noise recordings and "
             "RIRs used (the dev split of the noise folder: none of them is used in training):", ""]
    lines += [f"- {n}" for n in settings["noise_files"] + settings["rirs"]] or ["- none (synthetic noise only)"]
    for readme in (dev.parent / "README.md", dev.parent.parent / "README.md"):
        text = readme.read_text() if readme.exists() else ""
        if "## Attribution" in text:  # the shared data's attribution section, kept with the clips made from it
            lines += ["", text[text.index("## Attribution"):].strip()]
            break
    if noise_dir and (noise_dir / "LICENSES.md").exists():
        shutil.copyfile(noise_dir / "LICENSES.md", out / "NOISE_LICENSES.md")
        lines += ["", "Noise and RIR licences, with the attribution line of each source to keep: NOISE_LICENSES.md "
                      "(changes made: format, sample rate, channels, excerpted, scaled and mixed with speech)."]
    (out / "README.md").write_text("\n".join(lines) + "\n")


def select(root: str | Path, per_speaker: int | None = None) -> list[dict]:
    """Manifest rows of a noisy dev set built in ``root``, with ``path`` and ``clean`` as absolute Paths:
    the conditions of the first ``per_speaker`` clean clips of each speaker folder (all if None)."""
    root = Path(root)
    with open(root / "index.tsv", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    dev = Path(json.loads((root / "build.json").read_text())["dev"])
    kept: dict[str, list[str]] = {}
    for r in rows:
        clips = kept.setdefault(str(Path(r["clean"]).parent), [])
        if r["clean"] not in clips and (per_speaker is None or len(clips) < per_speaker):
            clips.append(r["clean"])
    chosen = {c for clips in kept.values() for c in clips}
    return [{**r, "path": root / r["path"], "clean": dev / r["clean"]} for r in rows if r["clean"] in chosen]
