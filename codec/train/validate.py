"""Copy synthesis on held-out speakers during training: is the vocoder getting better on voices it never heard?"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..features import MelConfig
from ..floors import features
from ..metrics import all_metrics
from .data import list_audio


class DevSet:
    """The first ``per_speaker`` files of every speaker folder under ``folder`` (e.g.
    ``../shared/data/real/dev``), their first ``seconds``, with features computed once."""

    def __init__(self, folder: str | Path, mel_cfg: MelConfig, per_speaker: int = 2, seconds: float = 6.0):
        from ..evaluate import read

        by_speaker: dict[Path, list[Path]] = {}
        for path in list_audio(folder):
            by_speaker.setdefault(path.parent, []).append(path)
        self.wavs = [read(p)[: int(seconds * 16000)] for files in by_speaker.values() for p in files[:per_speaker]]
        if not self.wavs:
            raise FileNotFoundError(f"no dev audio in {folder}")
        self.feats = [features(w, mel_cfg) for w in self.wavs]

    def __call__(self, vocoder: torch.nn.Module) -> dict[str, float]:
        """Mean WB-PESQ, STOI and mel distance of ``vocoder``'s copy synthesis."""
        was_training = vocoder.training
        vocoder.eval()
        rows = []
        with torch.inference_mode():
            for wav, feats in zip(self.wavs, self.feats):
                rows.append(all_metrics(wav, vocoder(feats)[0].numpy()))
        vocoder.train(was_training)
        return {k: float(np.nanmean([r[k] for r in rows])) for k in ("pesq", "stoi", "mel")}
