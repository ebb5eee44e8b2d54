"""Checks on held-out speakers during training: is the vocoder (copy synthesis) or the mel2mel decoder
(restoring quantised mels) getting better on voices it never heard?"""
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

    def __call__(self, vocoder: torch.nn.Module, griffin_lim: int = 0) -> dict[str, float]:
        """Mean WB-PESQ, STOI and mel distance of ``vocoder``'s copy synthesis; with ``griffin_lim`` its
        spectrum's phase is instead the start of that many Griffin-Lim iterations (``Vocoder.invert``)."""
        was_training = vocoder.training
        vocoder.eval()
        rows = []
        with torch.inference_mode():
            for wav, feats in zip(self.wavs, self.feats):
                y = vocoder.invert(feats, vocoder.spectrum(feats), griffin_lim) if griffin_lim else vocoder(feats)
                rows.append(all_metrics(wav, y[0].numpy()))
        vocoder.train(was_training)
        return {k: float(np.nanmean([r[k] for r in rows])) for k in ("pesq", "stoi", "mel")}

    def restoration(self, model: torch.nn.Module, steps: int = 4) -> dict[str, float]:
        """Mean 80-band log-mel L1 (nats) of a mel2mel ``model``'s ``steps``-step restoration of every
        clip's mel through each mel mode's quantiser at its operating point (``mel2mel``), beside what
        ``direct`` renders from the same stream: the dequantised mel low-passed in time (``direct``).
        The pitch rows are the unquantised ones."""
        from ..mel2mel import quantiser_rows
        from ..mel_repr import degrade, smooth_frames
        from ..modes import MEL_MODES
        from bitstream.payload import step_size

        was_training = model.training
        model.eval()
        restored, direct = [], []
        with torch.inference_mode():
            for feats in self.feats:
                mel, rows, frames = feats[:, :80], feats[:, 80:], feats.shape[-1]
                for mode in MEL_MODES:
                    step = step_size(mode.typical_g)
                    m = degrade(mel, mode.n_coefs, mode.decimation, step)
                    cond = torch.cat([m, rows, quantiser_rows(step, mode.n_coefs, mode.decimation, frames)], dim=1)
                    out = model.sample(cond, steps, torch.Generator().manual_seed(0))
                    restored.append((out - mel).abs().mean().item())
                    direct.append((smooth_frames(m) - mel).abs().mean().item())
        model.train(was_training)
        return {"mel2mel": float(np.mean(restored)), "direct": float(np.mean(direct))}
