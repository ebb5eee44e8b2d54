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
from pathlib import Path

import torch

from ..bundle import Bundle
from ..features import LogMel
from ..lat2lat import condition
from ..latent import random_steps
from ..mel2mel import Mel2Mel, Mel2MelConfig
from . import loop
from .export import addon


def main(argv=None) -> None:
    ap = loop.parser(__doc__, out="runs/lat2lat", steps=3000, segment=40960)
    ap.add_argument("--bundle", help="bundle whose latent autoencoder defines the latent")
    args = ap.parse_args(argv)
    if args.export:
        return addon(Path(args.export[0]), Path(args.export[1]), "lat2lat")
    if not args.data or not args.bundle:
        ap.error("--data and --bundle are required for training")

    run, out, corpus = loop.start(args)
    bundle = Bundle.load(args.bundle)
    autoencoder = bundle.latent.to(run.device)
    lat = autoencoder.cfg
    cfg = Mel2MelConfig(n_mels=lat.channels, n_aux=lat.n_aux, dim=128, intermediate=384, layers=6, kernel=5, sigma=0.5)
    logmel = LogMel(bundle.mel_config).to(run.device)
    model = Mel2Mel(cfg).to(run.device)
    opt, ema, step = loop.prepare(run, out, corpus, args, model, "lat2lat", {"lat2lat": asdict(cfg)})
    generator = torch.Generator().manual_seed(args.seed * 1000 + step + run.rank)
    frames = (args.segment // bundle.mel_config.hop + 1) // lat.stride * lat.stride

    def batch_loss(net):
        """Rectified flow from q + sigma·noise to z / step (both in quantiser steps)."""
        crops = corpus.batch(args.batch, args.segment)
        wav = crops.tensor(run.device)
        with torch.no_grad():
            mel = logmel(wav)[..., :frames]
            steps = random_steps(len(wav), generator).to(run.device)
            z = autoencoder.encoder(mel) / steps[:, None, None]
            q = torch.round(z)
            clean = z if crops.clean is None else (  # with --noise: the noisy crop's stream → the clean latent
                autoencoder.encoder(logmel(crops.tensor(run.device, clean=True))[..., :frames]) / steps[:, None, None])
            pitch_rows = crops.pitch_rows(lat.stride, frames).to(run.device)
            cond = torch.cat([condition(q[i:i + 1], pitch_rows[i:i + 1], s.expand(q.shape[-1]), lat.stride)
                              for i, s in enumerate(steps)])
            x0 = q + cfg.sigma * torch.randn_like(q)
            t = torch.rand(len(wav), device=run.device)
            xt = x0 + t[:, None, None] * (clean - x0)
        return torch.mean((net(xt, t, cond) - (clean - x0)) ** 2)

    loop.fit(run, model, ema, opt, out, step, args.steps, args.lr, batch_loss, clip=5.0, **loop.schedule(args))


if __name__ == "__main__":
    main()
