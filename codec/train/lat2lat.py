"""Train the lat2lat flow-matching decoder: rounded latent (+ pitch, quantiser) → unrounded latent.

    python -m codec.train.lat2lat --bundle codec/bundles/default --data ../shared/data/synthetic \
        --data ../shared/data/real/ljspeech:8 --exclude 'LJ001-00(2[5-9]|3)' --out runs/lat2lat --steps 3000
    python -m codec.train.lat2lat --export runs/lat2lat/last.safetensors codec/bundles/default

The bundle's latent encoder (frozen) makes the targets; the step of each example is drawn over
``codec.latent.STEP_RANGE``. Resumes from ``OUT/last.safetensors``. With ``--noise`` (or ``--noise-p``/
``--reverb-p``) it restores: the stream is the noisy crop's, the target the clean crop's latent.
"""
from __future__ import annotations

from dataclasses import asdict

import torch

from ..bundle import Bundle
from ..features import LogMel
from ..lat2lat import condition
from ..latent import random_steps
from ..mel2mel import Mel2Mel, Mel2MelConfig
from . import loop


class Lat2LatTrainer(loop.Trainer):
    """The lat2lat decoder (a :class:`Mel2Mel` on latent channels) and its flow-matching loss."""

    name = kind = "lat2lat"
    out, steps, segment = "runs/lat2lat", 3000, 40960
    data_error = "--data and --bundle are required for training"

    def options(self, ap) -> None:
        ap.add_argument("--bundle", help="bundle whose latent autoencoder defines the latent")

    def configure(self, args, ap) -> int:
        if not args.bundle:
            ap.error(self.data_error)
        return super().configure(args, ap)

    def model(self, run, args):
        self.bundle = Bundle.load(args.bundle)
        self.autoencoder = self.bundle.latent.to(run.device)
        lat = self.autoencoder.cfg
        self.cfg = Mel2MelConfig(n_mels=lat.channels, n_aux=lat.n_aux, dim=128, intermediate=384, layers=6, kernel=5,
                                 sigma=0.5)
        self.logmel = LogMel(self.bundle.mel_config).to(run.device)
        return Mel2Mel(self.cfg).to(run.device), {"lat2lat": asdict(self.cfg)}

    def loss(self, run, args, corpus, out, model, step):
        generator = torch.Generator().manual_seed(args.seed * 1000 + step + run.rank)
        autoencoder, logmel, stride = self.autoencoder, self.logmel, self.autoencoder.cfg.stride
        frames = (args.segment // self.bundle.mel_config.hop + 1) // stride * stride

        def batch_loss(net):
            """Rectified flow from q + sigma·noise to z / step (both in quantiser steps)."""
            crops = corpus.batch(args.batch, args.segment)
            wav = crops.tensor(run.device)
            with torch.no_grad():
                mel = logmel(wav)[..., :frames]
                steps = random_steps(len(wav), generator).to(run.device)
                z = autoencoder.encoder(mel) / steps[:, None, None]
                q = torch.round(z)
                if crops.clean is not None:  # with --noise: the noisy crop's stream → the clean latent
                    z = autoencoder.encoder(logmel(crops.tensor(run.device, clean=True))[..., :frames])
                    z = z / steps[:, None, None]
                pitch_rows = crops.pitch_rows(stride, frames).to(run.device)
                cond = torch.cat([condition(q[i:i + 1], pitch_rows[i:i + 1], s.expand(q.shape[-1]), stride)
                                  for i, s in enumerate(steps)])
            return loop.flow_matching_loss(net, q, z, cond, self.cfg.sigma)

        return batch_loss


def main(argv=None) -> None:
    loop.main(Lat2LatTrainer(), __doc__, argv)


if __name__ == "__main__":
    main()
