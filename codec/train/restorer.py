"""Train the mel restorer (``codec.restorer``): a mel stream's smoothed log-mel → the clean log-mel.

    python -m codec.train.restorer --data ../shared/data/real/train/librispeech \
        --data ../shared/data/real/train/speechocean762 --out runs/restorer --steps 6000 --threads 1
    python -m codec.train.restorer --export runs/restorer/last.safetensors codec/bundles/default

Each example goes through the quantiser of a random mel mode at a step index near its operating
point, and is smoothed in time as the ``direct`` decoder does. Loss: L1 to the clean log-mel (nats)
+ ``--adversarial-weight`` × (LSGAN + 2 × feature matching) of ``discriminators.MelDiscriminator``
(state in ``OUT/mel_discriminator.safetensors``; weight 0: L1 alone). Mel domain only; resumes from
``OUT/last.safetensors``. Exports as the ``mel_restorer`` add-on: rendering changes, streams do not.
"""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from bitstream.payload import step_size

from ..features import LogMel, MelConfig
from ..mel2mel import quantiser_rows
from ..mel_repr import degrade, smooth_frames
from ..modes import MEL_MODES
from ..restorer import MelRestorer, RestorerConfig
from . import loop
from .data import Crops
from .discriminators import Adversary, MelDiscriminator
from .export import addon


def training_inputs(crops: Crops, mel: torch.Tensor, rng: np.random.Generator) -> tuple[torch.Tensor, ...]:
    """Crops, their clean (B, n_mels, frames) log-mel → the restorer's inputs (smoothed dequantised
    mel, pitch rows, quantiser rows), each example through a random mel mode's quantiser."""
    mels, aux, quant = [], [], []
    frames = mel.shape[-1]
    for i in range(mel.shape[0]):
        mode = MEL_MODES[int(rng.integers(len(MEL_MODES)))]
        step = step_size(mode.typical_g + int(rng.integers(-16, 17)))
        mels.append(smooth_frames(degrade(mel[i:i + 1], mode.n_coefs, mode.decimation, step)))
        aux.append(crops.rows(i, mode.decimation, frames))
        quant.append(quantiser_rows(step, mode.n_coefs, mode.decimation, frames))
    return torch.cat(mels), torch.cat(aux).to(mel), torch.cat(quant).to(mel)


def main(argv=None) -> None:
    ap = loop.parser(__doc__, out="runs/restorer", steps=6000, segment=16000)
    ap.add_argument("--adversarial-weight", type=float, default=0.1, help="GAN terms vs the mel L1 (0: L1 only)")
    args = ap.parse_args(argv)
    if args.export:
        return addon(Path(args.export[0]), Path(args.export[1]), "mel_restorer")
    if not args.data:
        ap.error("--data is required for training")

    run, out, corpus = loop.start(args)
    cfg = RestorerConfig()
    logmel = LogMel(MelConfig()).to(run.device)
    model = MelRestorer(cfg).to(run.device)
    opt, ema, step = loop.prepare(run, out, corpus, args, model, "mel restorer", {"restorer": asdict(cfg)})
    gan = (Adversary(MelDiscriminator(), out / "mel_discriminator.safetensors", args.lr, run)
           if args.adversarial_weight else None)
    rng = np.random.default_rng([args.seed, step, run.rank])
    calls = [step]

    def batch_loss(net):
        crops = corpus.batch(args.batch, args.segment)
        with torch.no_grad():
            clean = logmel(crops.tensor(run.device))
            mel, aux, quant = training_inputs(crops, clean, rng)
        restored = net(mel, aux, quant)
        l1 = torch.mean(torch.abs(restored - clean))
        calls[0] += 1
        if calls[0] % 100 == 0:
            run.log(f"  mel L1 {l1.item():.3f} nats (input {torch.mean(torch.abs(mel - clean)).item():.3f})")
        return l1 + args.adversarial_weight * gan(clean, restored) if gan else l1

    loop.fit(run, model, ema, opt, out, step, args.steps, args.lr, batch_loss, clip=5.0, save_every=args.save_every,
             on_save=gan.save if gan else None)


if __name__ == "__main__":
    main()
