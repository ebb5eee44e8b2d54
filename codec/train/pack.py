"""A compact copy of training speech for a GPU burst: every clip re-encoded as Ogg Opus, plus its
pitch tracks, so a run on another machine starts training within seconds of landing.

    python -m codec.train.pack --data ../shared/data/real/train/librispeech \
        --data ../shared/data/real/train/speechocean762 --out .burst/data

writes ``OUT/<folder name>/<same relative path>.ogg`` (about 20 kbit/s: 2.2 h ≈ 20 MB) and
``OUT/pitch_cache.npz``, the tracks of the packed (decoded) audio with the trainers' look-ahead. Train on
it with ``--data OUT/librispeech --data OUT/speechocean762 --pitch-cache OUT/pitch_cache.npz``.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import soundfile as sf

from ..audio import SAMPLE_RATE, load, resample, to_mono
from ..features import MelConfig
from .data import PitchCache, list_audio

OPUS_LEVEL = 0.94  # libsndfile's compression level for Opus: 0.94 ≈ 20 kbit/s on speech (0.9 ≈ 31, 1.0 lowest)


def pack(folders: list[str], out: Path, level: float = OPUS_LEVEL, lookahead: int | None = None) -> tuple[int, float]:
    """Re-encode every clip below ``folders`` into ``out`` and cache the packed audio's pitch tracks
    (``lookahead`` samples; default: the mel front end's) → (bytes written, seconds of audio)."""
    lookahead = MelConfig().lookahead if lookahead is None else lookahead
    cache = PitchCache(out / "pitch_cache.npz", lookahead)
    size, seconds = 0, 0.0
    for folder in folders:
        for path in list_audio(folder):
            wav, sr = load(path)
            wav = resample(to_mono(wav), sr, SAMPLE_RATE)
            rel = Path(Path(folder).name) / path.relative_to(folder).with_suffix(".ogg")
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
            sf.write(out / rel, wav, SAMPLE_RATE, format="OGG", subtype="OPUS", compression_level=level)
            packed, _ = sf.read(out / rel, dtype="float32")  # the pitch of what the burst will read
            cache.get(rel.as_posix(), np.asarray(packed))
            size, seconds = size + (out / rel).stat().st_size, seconds + len(wav) / SAMPLE_RATE
    cache.save()
    return size, seconds


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", action="append", required=True, help="speech folder, repeatable")
    ap.add_argument("--out", required=True, help="the pack's folder")
    ap.add_argument("--level", type=float, default=OPUS_LEVEL, help="Opus compression level (0–1; higher: smaller)")
    args = ap.parse_args(argv)
    size, seconds = pack(args.data, Path(args.out), args.level)
    print(f"packed {seconds / 3600:.2f} h into {size / 1e6:.1f} MB ({size * 8 / seconds / 1e3:.1f} kbit/s) "
          f"with pitch tracks in {Path(args.out) / 'pitch_cache.npz'}")


if __name__ == "__main__":
    main()
