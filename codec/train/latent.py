"""Train the latent autoencoder (mel → 12.5 Hz latent → mel) with noise-injection quantisation and a rate term.

    python -m codec.train.latent --data ../shared/data/synthetic --data ../shared/data/real/ljspeech:8 \
        --exclude 'LJ001-00(2[5-9]|3)' --out runs/latent --steps 6000 --threads 2
    python -m codec.train.latent --export runs/latent/last.safetensors codec/bundles/default

Loss: L1 between the decoded and the clean log-mel (nats) + ``--rate-weight`` × bits per latent
frame. Mel domain only, so it trains fast on a CPU; resumes from ``OUT/last.safetensors``.
"""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import torch

from ..features import LogMel, MelConfig
from ..latent import LatentAutoencoder, LatentConfig, random_steps
from . import loop
from .export import addon


def main(argv=None) -> None:
    ap = loop.parser(__doc__, out="runs/latent", steps=6000, segment=32000)
    ap.add_argument("--rate-weight", type=float, default=0.003, help="loss per bit per latent frame")
    args = ap.parse_args(argv)
    if args.export:
        return addon(Path(args.export[0]), Path(args.export[1]), "latent")
    if not args.data:
        ap.error("--data is required for training")

    run, out, corpus = loop.start(args)
    cfg = LatentConfig()
    logmel = LogMel(MelConfig()).to(run.device)
    model = LatentAutoencoder(cfg).to(run.device)
    opt, ema, step = loop.prepare(run, out, corpus, args, model, "latent autoencoder", {"latent": asdict(cfg)})
    generator = torch.Generator().manual_seed(args.seed * 1000 + step + run.rank)
    frames = (args.segment // MelConfig().hop + 1) // cfg.stride * cfg.stride
    calls = [step]

    def batch_loss(net):
        crops = corpus.batch(args.batch, args.segment)
        wav = crops.tensor(run.device)
        with torch.no_grad():
            mel = logmel(wav)[..., :frames]
            aux = crops.pitch_rows(cfg.stride, frames).to(run.device)
        steps = random_steps(len(wav), generator).to(run.device)
        rec, bits = net(mel, aux, steps)
        l1 = torch.mean(torch.abs(rec - mel))
        calls[0] += 1
        if calls[0] % 100 == 0:
            run.log(f"  mel L1 {l1.item():.3f} nats, {bits.mean().item():.1f} bits per latent frame")
        return l1 + args.rate_weight * bits.mean()

    loop.fit(run, model, ema, opt, out, step, args.steps, args.lr, batch_loss, clip=5.0, save_every=args.save_every)


if __name__ == "__main__":
    main()
