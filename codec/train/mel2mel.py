"""Train the mel2mel flow-matching decoder: dequantised mel (+ pitch, quantiser) → clean mel.

    python -m codec.train.mel2mel --data ../shared/data/synthetic --data ../shared/data/real/ljspeech:8 \
        --exclude 'LJ001-00(2[5-9]|3)' --out runs/mel2mel --steps 12000 --threads 2
    python -m codec.train.mel2mel --export runs/mel2mel/last.safetensors codec/bundles/default

Works in the mel domain only (no vocoder in the loop), so it trains fast on a CPU. Resumes from
``OUT/last.safetensors``; ``torchrun`` runs it data-parallel like the vocoder trainer. With ``--noise``
(or ``--noise-p``/``--reverb-p``) it restores: the condition comes from the noisy, reverberant crop,
the target is the clean one.
"""
from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from bitstream.payload import step_size

from ..features import LogMel, MelConfig
from ..mel2mel import Mel2Mel, Mel2MelConfig, quantiser_rows
from ..mel_repr import degrade
from ..modes import MEL_MODES
from . import loop
from .data import Crops
from .export import addon
from .validate import DevSet


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


def main(argv=None) -> None:
    ap = loop.parser(__doc__, out="runs/mel2mel", steps=12000, segment=32768)
    ap.add_argument("--sigma", type=float, default=Mel2MelConfig.sigma,
                    help="prior noise around the dequantised mel (nats); kept in the exported config")
    ap.add_argument("--dev", help="held-out speakers' folder: log the restored mels' L1 on it (OUT/dev.tsv)")
    ap.add_argument("--dev-every", type=int, default=1000, help="steps between dev checks (a multiple of --save-every)")
    args = ap.parse_args(argv)
    if args.export:
        return addon(Path(args.export[0]), Path(args.export[1]), "mel2mel")
    if not args.data:
        ap.error("--data is required for training")

    run, out, corpus = loop.start(args)
    cfg = Mel2MelConfig(sigma=args.sigma)
    logmel = LogMel(MelConfig()).to(run.device)
    model = Mel2Mel(cfg).to(run.device)
    opt, ema, step = loop.prepare(run, out, corpus, args, model, "mel2mel", {"mel2mel": asdict(cfg)})
    rng = np.random.default_rng([args.seed, step, run.rank])

    def batch_loss(net):
        """Rectified flow: x_t on the straight path prior → clean, regress its velocity."""
        crops = corpus.batch(args.batch, args.segment)
        with torch.no_grad():
            clean, cond = training_pair(crops, logmel(crops.tensor(run.device)), rng)
            if crops.clean is not None:  # with --noise: conditioned on the noisy crop, restoring the clean one
                clean = logmel(crops.tensor(run.device, clean=True))
            x0 = cond[:, : cfg.n_mels] + cfg.sigma * torch.randn_like(clean)
            t = torch.rand(clean.shape[0], device=run.device)
            xt = x0 + t[:, None, None] * (clean - x0)
        return torch.mean((net(xt, t, cond) - (clean - x0)) ** 2)

    dev = DevSet(args.dev, MelConfig()) if args.dev and run.rank == 0 else None

    def on_save(step: int) -> None:
        if dev and step % args.dev_every == 0:
            scores = dev.restoration(ema)
            run.log(f"dev step {step}: mel L1 {scores['mel2mel']:.4f} (direct {scores['direct']:.4f})")
            with open(out / "dev.tsv", "a") as f:
                f.write(f"{step}\t" + "\t".join(f"{k}={v:.4f}" for k, v in scores.items()) + "\n")

    loop.fit(run, model, ema, opt, out, step, args.steps, args.lr, batch_loss, clip=5.0, **loop.schedule(args),
             on_save=on_save)

if __name__ == "__main__":
    main()
