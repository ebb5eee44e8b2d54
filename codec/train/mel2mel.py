"""Train the mel2mel flow-matching decoder: dequantised mel (+ pitch, quantiser) → clean mel.

    python -m codec.train.mel2mel --data ../shared/data/synthetic --data ../shared/data/real/ljspeech:8 \
        --exclude 'LJ001-00(2[5-9]|3)' --out runs/mel2mel --steps 12000 --threads 2
    python -m codec.train.mel2mel --export runs/mel2mel/last.safetensors codec/bundles/default

Works in the mel domain only (no vocoder in the loop), so it trains fast on a CPU. Resumes from
``OUT/last.safetensors``; ``torchrun`` runs it data-parallel like the vocoder trainer.
"""
from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from .. import pitch
from ..features import LogMel, MelConfig
from ..mel2mel import Mel2Mel, Mel2MelConfig, quantiser_rows
from ..mel_repr import degrade
from ..melcoder import step_size
from ..modes import LADDER
from . import loop
from .data import Corpus
from .vocoder import parse_sources


def training_pair(wav: torch.Tensor, mel: torch.Tensor, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, samples), clean (B, n_mels, frames) → (clean mel, condition (B, n_mels + 2 + 3, frames)).

    Each example goes through the quantiser of a random mel mode at a step index near its operating point.
    """
    conds = []
    for i in range(mel.shape[0]):
        mode = LADDER[int(rng.integers(len(LADDER)))]
        step = step_size(mode.typical_g + int(rng.integers(-16, 17)))
        frames = mel.shape[-1]
        m = degrade(mel[i:i + 1], mode.n_coefs, mode.decimation, step)
        f0, voiced = pitch.estimate(wav[i].cpu().numpy())
        aux = torch.from_numpy(pitch.features(*pitch.group(f0, voiced, mode.decimation), mode.decimation, frames))
        q = quantiser_rows(step, mode.n_coefs, mode.decimation, frames)
        conds.append(torch.cat([m, aux[None].to(m), q.to(m)], dim=1))
    return mel, torch.cat(conds)


def export(ckpt: Path, bundle: Path) -> None:
    """EMA weights (fp16) + config → ``bundle/mel2mel.safetensors`` and ``bundle/mel2mel.json``."""
    with safe_open(str(ckpt), "pt") as f:
        step = int(f.metadata()["step"])
        weights = {k[4:]: f.get_tensor(k).half().contiguous() for k in f.keys() if k.startswith("ema.")}
    save_file(weights, str(bundle / "mel2mel.safetensors"), metadata={"step": str(step)})
    config = json.loads((ckpt.parent / "config.json").read_text())
    config["steps_trained"] = step
    (bundle / "mel2mel.json").write_text(json.dumps(config, indent=1) + "\n")
    print(f"exported mel2mel step {step} to {bundle}")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", action="append", help="DIR[:WEIGHT], repeatable")
    ap.add_argument("--exclude", default=None, help="regex of file names held out (dev set)")
    ap.add_argument("--out", default="runs/mel2mel")
    ap.add_argument("--steps", type=int, default=12000)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--segment", type=int, default=32768, help="samples per crop")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--save-every", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--export", nargs=2, metavar=("CHECKPOINT", "BUNDLE"), help="write a checkpoint into a bundle and exit")
    args = ap.parse_args(argv)
    if args.export:
        return export(Path(args.export[0]), Path(args.export[1]))
    if not args.data:
        ap.error("--data is required for training")

    run = loop.setup(args.threads, args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    corpus = Corpus(parse_sources(args.data), args.exclude, seed=args.seed)
    run.log(f"corpus: {len(corpus.clips)} clips, {corpus.seconds / 60:.1f} min")
    cfg = Mel2MelConfig()
    logmel = LogMel(MelConfig()).to(run.device)
    model = Mel2Mel(cfg).to(run.device)
    run.log(f"mel2mel: {sum(p.numel() for p in model.parameters()) / 1e6:.2f} M parameters")
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.99), weight_decay=0.01)
    ema, step = loop.resume(run, out, model, opt)
    if run.rank == 0:
        (out / "config.json").write_text(json.dumps({"mel2mel": asdict(cfg)}, indent=1))
    rng = np.random.default_rng([args.seed, step, run.rank])
    corpus.rng = np.random.default_rng([args.seed, step, run.rank, 1])

    def batch_loss(net):
        """Rectified flow: x_t on the straight path prior → clean, regress its velocity."""
        wav = torch.from_numpy(corpus.batch(args.batch, args.segment)).to(run.device)
        with torch.no_grad():
            clean, cond = training_pair(wav, logmel(wav), rng)
            x0 = cond[:, : cfg.n_mels] + cfg.sigma * torch.randn_like(clean)
            t = torch.rand(clean.shape[0], device=run.device)
            xt = x0 + t[:, None, None] * (clean - x0)
        return torch.mean((net(xt, t, cond) - (clean - x0)) ** 2)

    loop.fit(run, model, ema, opt, out, step, args.steps, args.lr, batch_loss, clip=5.0, save_every=args.save_every)

if __name__ == "__main__":
    main()
