"""Train the mel2mel flow-matching decoder: dequantised mel (+ pitch, quantiser) → clean mel.

    python -m codec.train.mel2mel --data ../shared/data/synthetic --data ../shared/data/real/ljspeech:8 \
        --exclude 'LJ001-00(2[5-9]|3)' --out runs/mel2mel --steps 12000 --threads 2
    python -m codec.train.mel2mel --export runs/mel2mel/last.safetensors codec/bundles/default

Works in the mel domain only (no vocoder in the loop), so it trains fast on a CPU. Resumes from
``OUT/last.safetensors``; ``torchrun`` runs it data-parallel like the vocoder trainer. With ``--noise``
(or ``--noise-p``/``--reverb-p``) it restores: the condition comes from the noisy, reverberant crop,
the target is the clean one; ``--init BUNDLE`` starts from that bundle's mel2mel:

    python -m codec.train.mel2mel --init codec/bundles/default --noise ../shared/data/noise \
        --data ../shared/data/real/train/librispeech --data ../shared/data/real/train/speechocean762 \
        --out runs/mel2mel_restore --steps 100000 --batch 16 --lr 2e-4 --threads 1
"""
from __future__ import annotations

from dataclasses import asdict

import numpy as np
import torch

from bitstream.payload import step_size

from ..features import LogMel, MelConfig
from ..bundle import Bundle
from ..mel2mel import Mel2Mel, Mel2MelConfig, load, quantiser_rows
from ..mel_repr import degrade
from ..modes import MEL_MODES
from . import loop
from .data import Crops


def training_pair(crops: Crops, mel: torch.Tensor, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Crops, clean (B, n_mels, frames) → (clean mel, condition (B, n_mels + 2 + 3, frames)).

    Each example goes through the quantiser of a random mel mode at a step index near its operating point.
    """
    conds = []
    for i in range(mel.shape[0]):
        mode = MEL_MODES[int(rng.integers(len(MEL_MODES)))]
        step = step_size(mode.typical_g + int(rng.integers(-16, 17)))
        frames = mel.shape[-1]
        m = degrade(mel[i:i + 1], mode.n_coefs, mode.decimation, step)
        pitch_rows = crops.rows(i, mode.decimation, frames)
        q = quantiser_rows(step, mode.n_coefs, mode.decimation, frames)
        conds.append(torch.cat([m, pitch_rows.to(m), q.to(m)], dim=1))
    return mel, torch.cat(conds)


class Mel2MelTrainer(loop.Trainer):
    """The mel2mel decoder (:class:`Mel2Mel`) and its flow-matching loss; dev check: :meth:`DevSet.restoration`."""

    name = kind = "mel2mel"
    out, steps, segment = "runs/mel2mel", 12000, 32768
    dev_every, dev_scores = 1000, "the restored mels' L1"

    def options(self, ap) -> None:
        ap.add_argument("--sigma", type=float, default=Mel2MelConfig.sigma,
                        help="prior noise around the dequantised mel (nats); kept in the exported config")
        ap.add_argument("--init", help="start from this bundle's mel2mel decoder (its config too, --sigma included) "
                                       "instead of random weights, e.g. to make it a restorer with --noise")

    def configure(self, args, ap) -> int:
        """A resumed run keeps its config; a new one takes --init's model, or --sigma."""
        lookahead = super().configure(args, ap)
        resumed, self.start = loop.run_config(args.out), None
        if args.init and not resumed:
            self.start = load(Bundle.load(args.init))
            if self.start is None:
                raise SystemExit(f"--init {args.init}: the bundle has no mel2mel decoder")
        self.cfg = (Mel2MelConfig(**resumed["mel2mel"]) if resumed else self.start.cfg if self.start
                    else Mel2MelConfig(sigma=args.sigma))
        return lookahead

    def model(self, run, args):
        self.logmel = LogMel(MelConfig()).to(run.device)
        model = Mel2Mel(self.cfg)
        if self.start:
            model.load_state_dict(self.start.state_dict())
        return model.to(run.device), {"mel2mel": asdict(self.cfg)}

    def loss(self, run, args, corpus, out, model, step):
        rng = np.random.default_rng([args.seed, step, run.rank])
        n_mels, sigma, logmel = self.cfg.n_mels, self.cfg.sigma, self.logmel

        def batch_loss(net):
            """Rectified flow from the dequantised mel to the clean one."""
            crops = corpus.batch(args.batch, args.segment)
            with torch.no_grad():
                clean, cond = training_pair(crops, logmel(crops.tensor(run.device)), rng)
                if crops.clean is not None:  # with --noise: conditioned on the noisy crop, restoring the clean one
                    clean = logmel(crops.tensor(run.device, clean=True))
            return loop.flow_matching_loss(net, cond[:, :n_mels], clean, cond, sigma)

        return batch_loss

    def dev(self, dev, ema):
        return dev.restoration(ema)

    def describe(self, scores):
        return f"mel L1 {scores['mel2mel']:.4f} (direct {scores['direct']:.4f})"


def main(argv=None) -> None:
    loop.main(Mel2MelTrainer(), __doc__, argv)


if __name__ == "__main__":
    main()
