"""Train the mel2mel flow-matching decoder: dequantised mel (+ pitch, quantiser) → clean mel.

    python -m codec.train.mel2mel --data ../shared/data/synthetic --data ../shared/data/real/ljspeech:8 \
        --exclude 'LJ001-00(2[5-9]|3)' --out runs/mel2mel --steps 12000 --threads 2
    python -m codec.train.mel2mel --export runs/mel2mel/last.safetensors codec/bundles/default

Works in the mel domain only (no vocoder in the loop), so it trains fast on a CPU. Resumes from
``OUT/last.safetensors``; ``torchrun`` runs it data-parallel like the vocoder trainer.
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import os
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from safetensors import safe_open
from safetensors.torch import save_file
from torch.nn.parallel import DistributedDataParallel

from .. import pitch
from ..features import LogMel, MelConfig
from ..mel2mel import Mel2Mel, Mel2MelConfig, quantiser_rows
from ..mel_repr import degrade
from ..melcoder import step_size
from ..modes import LADDER
from . import checkpoint
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

    torch.set_num_threads(args.threads)
    rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    cuda = torch.cuda.is_available()
    device = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if cuda else "cpu"
    if world > 1:
        dist.init_process_group("nccl" if cuda else "gloo")
        if cuda:
            torch.cuda.set_device(device)
    torch.manual_seed(args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log = print if rank == 0 else (lambda *a, **k: None)

    corpus = Corpus(parse_sources(args.data), args.exclude, seed=args.seed)
    log(f"corpus: {len(corpus.clips)} clips, {corpus.seconds / 60:.1f} min", flush=True)
    cfg = Mel2MelConfig()
    logmel = LogMel(MelConfig()).to(device)
    model = Mel2Mel(cfg).to(device)
    log(f"mel2mel: {sum(p.numel() for p in model.parameters()) / 1e6:.2f} M parameters", flush=True)
    ema = copy.deepcopy(model).requires_grad_(False)
    net = DistributedDataParallel(model) if world > 1 else model
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.99), weight_decay=0.01)
    step = 0
    if (out / "last.safetensors").exists():
        step = checkpoint.load(out / "last.safetensors", model, ema, opt)
        log(f"resumed at step {step}", flush=True)
    if rank == 0:
        (out / "config.json").write_text(json.dumps({"mel2mel": asdict(cfg)}, indent=1))

    rng = np.random.default_rng([args.seed, step, rank])
    corpus.rng = np.random.default_rng([args.seed, step, rank, 1])
    t0, running = time.time(), 0.0
    while step < args.steps:
        lr = args.lr * min(1.0, (step + 1) / 500) * (0.5 * (1 + math.cos(math.pi * step / args.steps)) * 0.95 + 0.05)
        for g in opt.param_groups:
            g["lr"] = lr
        wav = torch.from_numpy(corpus.batch(args.batch, args.segment)).to(device)
        with torch.no_grad():
            clean, cond = training_pair(wav, logmel(wav), rng)
            x0 = cond[:, : cfg.n_mels] + cfg.sigma * torch.randn_like(clean)
            t = torch.rand(clean.shape[0], device=device)
            xt = x0 + t[:, None, None] * (clean - x0)
        loss = torch.mean((net(xt, t, cond) - (clean - x0)) ** 2)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        with torch.no_grad():
            decay = min(0.999, (1 + step) / (10 + step))
            for pe, pm in zip(ema.parameters(), model.parameters()):
                pe.lerp_(pm, 1 - decay)
        step += 1
        running += loss.item()
        if step % 50 == 0:
            log(f"step {step} loss {running / 50:.4f} lr {lr:.2e} {(time.time() - t0) / 50:.2f}s/step", flush=True)
            running, t0 = 0.0, time.time()
        if rank == 0 and (step % args.save_every == 0 or step == args.steps):
            checkpoint.save(out / "last.safetensors", model, ema, opt, step)
    if world > 1:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
