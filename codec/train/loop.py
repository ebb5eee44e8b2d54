"""What every trainer shares: the skeleton :func:`main` runs a :class:`Trainer` through (options, corpus,
resume, fit, dev check, export), process set-up (threads, CUDA, ``torchrun`` DDP), the warm-up + cosine
learning rate, the EMA of the weights, logging and checkpoint cadence, and the flow-matching loss of the
mel2mel and lat2lat decoders."""
from __future__ import annotations

import argparse
import copy
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from ..features import MelConfig
from . import augment, checkpoint
from .data import Corpus

WARMUP_STEPS = 500


@dataclass
class Run:
    """This process's place in the job: rank, world size, device."""

    rank: int
    world: int
    device: str

    def log(self, message: str) -> None:
        if self.rank == 0:
            print(message, flush=True)


class Trainer:
    """One trainer: its options, its model and its loss; :func:`main` does the rest. A subclass sets the
    class attributes and fills in the hooks, which keep what the later ones need on ``self``."""

    name = "model"  # in the log
    kind = ""  # the run's config.json key that says what it trained (export.export checks --export's run by it)
    out, steps, segment = "runs/model", 1000, 16000  # --out, --steps and --segment's defaults
    clip = 5.0  # gradient norm
    betas = (0.9, 0.99)  # AdamW's
    exports = True  # --export CHECKPOINT BUNDLE
    dev_every: int | None = None  # --dev-every's default; None: no --dev check
    dev_scores = ""  # what a dev check logs (--dev's help)
    data_error = "--data is required for training"
    mel_config = MelConfig()  # the front end the dev set's features are made with
    adversaries: tuple = ()  # saved with every checkpoint (``discriminators.Adversary``)

    def options(self, ap: argparse.ArgumentParser) -> None:
        """Add the trainer's own options to :func:`parser`'s."""

    def configure(self, args: argparse.Namespace, ap: argparse.ArgumentParser) -> int:
        """Refuse options that cannot train (``ap.error``) and settle what comes before the corpus loads;
        → the analysis look-ahead (samples) of the corpus' pitch tracks."""
        if not args.data:
            ap.error(self.data_error)
        return 512

    def model(self, run: Run, args: argparse.Namespace) -> tuple[torch.nn.Module, dict]:
        """After the process set-up (seeded): → (the model on ``run.device``, the run's ``config.json``)."""
        raise NotImplementedError

    def loss(self, run: Run, args: argparse.Namespace, corpus: Corpus, out: Path, model: torch.nn.Module,
             step: int) -> Callable[[torch.nn.Module], torch.Tensor]:
        """After resuming at ``step``: → ``batch_loss(net)`` for :func:`fit`."""
        raise NotImplementedError

    def dev(self, dev, ema: torch.nn.Module) -> dict[str, float]:
        """A dev check's scores of the EMA model on ``dev`` (``validate.DevSet``)."""
        raise NotImplementedError

    def describe(self, scores: dict[str, float]) -> str:
        """A dev check's scores as the log shows them."""
        return " ".join(f"{k} {v:.3f}" for k, v in scores.items())


def main(trainer: Trainer, doc: str, argv: list[str] | None = None) -> None:
    """Run ``trainer`` with the command line ``argv`` (``doc``: its ``--help``): export a checkpoint
    (``--export``, :func:`codec.train.export.export`), or load the corpus, build the model, resume from
    ``OUT/last.safetensors`` and train, saving the adversaries with each checkpoint and, every
    ``--dev-every`` steps, logging the dev check to ``OUT/dev.tsv``."""
    ap = parser(doc, out=trainer.out, steps=trainer.steps, segment=trainer.segment, exports=trainer.exports)
    trainer.options(ap)
    if trainer.dev_every:
        ap.add_argument("--dev", help=f"held-out speakers' folder: log {trainer.dev_scores} on it (OUT/dev.tsv)")
        ap.add_argument("--dev-every", type=int, default=trainer.dev_every,
                        help="steps between dev checks (a multiple of --save-every)")
    args = ap.parse_args(argv)
    if trainer.exports and args.export:
        from .export import export

        try:
            return export(Path(args.export[0]), Path(args.export[1]), kind=trainer.kind)
        except ValueError as exc:
            ap.error(str(exc))
    run, out, corpus = start(args, trainer.configure(args, ap))
    model, config = trainer.model(run, args)
    opt, ema, step = prepare(run, out, corpus, args, model, trainer.name, config, trainer.betas)
    batch_loss = trainer.loss(run, args, corpus, out, model, step)
    dev = None
    if trainer.dev_every and args.dev and run.rank == 0:
        from .validate import DevSet

        dev = DevSet(args.dev, trainer.mel_config)

    def on_save(step: int) -> None:
        for adversary in trainer.adversaries:
            adversary.save(step)
        if dev and step % args.dev_every == 0:
            scores = trainer.dev(dev, ema)
            run.log(f"dev step {step}: {trainer.describe(scores)}")
            with open(out / "dev.tsv", "a") as f:
                f.write(f"{step}\t" + "\t".join(f"{k}={v:.4f}" for k, v in scores.items()) + "\n")

    fit(run, model, ema, opt, out, step, args.steps, args.lr, batch_loss, clip=trainer.clip, **schedule(args),
        on_save=on_save)


def flow_matching_loss(net: torch.nn.Module, start: torch.Tensor, target: torch.Tensor, cond: torch.Tensor,
                       sigma: float) -> torch.Tensor:
    """Rectified flow from ``start`` + ``sigma``·noise to ``target`` (B, C, T), conditioned on ``cond``: the
    mean squared error of ``net(x_t, t, cond)`` against the straight path's velocity, at a uniform random
    time t per example (the mel2mel and lat2lat decoders' training loss)."""
    with torch.no_grad():
        x0 = start + sigma * torch.randn_like(target)
        t = torch.rand(len(target), device=target.device)
        xt = x0 + t[:, None, None] * (target - x0)
    return torch.mean((net(xt, t, cond) - (target - x0)) ** 2)


def parser(doc: str, *, out: str, steps: int, segment: int, exports: bool = True) -> argparse.ArgumentParser:
    """The options every trainer takes (data, schedule, threads, checkpoints; ``--export``, i.e.
    :func:`codec.train.export.export`, unless ``python -m codec.train.export`` alone exports it), with its
    defaults."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", action="append", help="DIR[:WEIGHT], repeatable")
    ap.add_argument("--exclude", default=None, help="regex of file names held out (dev set)")
    ap.add_argument("--out", default=out)
    ap.add_argument("--steps", type=int, default=steps)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--segment", type=int, default=segment, help="samples per crop")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--save-every", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--pitch-cache", metavar="FILE",
                    help="pitch tracks kept across runs (.npz; default: OUT/pitch_cache.npz)")
    ap.add_argument("--minutes", type=float,
                    help="stop (and save) after this many minutes of training, e.g. a GPU burst; rerun to resume")
    ap.add_argument("--bf16", action="store_true", help="bfloat16 autocast (CUDA; the iSTFT stays float32)")
    augment.add_options(ap)
    if exports:
        ap.add_argument("--export", nargs=2, metavar=("CHECKPOINT", "BUNDLE"),
                        help="write a checkpoint into a bundle and exit")
    return ap


def start(args: argparse.Namespace, lookahead: int = 512) -> tuple["Run", Path, Corpus]:
    """Process set-up, the output folder and the corpus (pitch tracks with ``lookahead`` samples of
    analysis look-ahead, cached at load; noise and rooms mixed in when the options ask), from
    :func:`parser`'s options."""
    run = setup(args.threads, args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    corpus = Corpus(parse_sources(args.data), args.exclude, seed=args.seed, lookahead=lookahead,
                    cache=args.pitch_cache or out / "pitch_cache.npz")
    run.log(f"corpus: {len(corpus.clips)} clips, {corpus.seconds / 60:.1f} min, loaded in {time.time() - t0:.0f} s")
    config = augment.from_args(args)
    if config:
        corpus.augmenter = augment.Augmenter(config, args.noise, speech=corpus.speech)
        run.log(str(corpus.augmenter))
    return run, out, corpus


def prepare(run: "Run", out: Path, corpus: Corpus, args: argparse.Namespace, model: torch.nn.Module, name: str,
            config: dict, betas=(0.9, 0.99)) -> tuple[torch.optim.Optimizer, torch.nn.Module, int]:
    """Log ``model``'s size, make its AdamW, resume from ``out`` (→ EMA copy and step), write the run's
    ``config.json`` and reseed the corpus for this (step, rank): → (optimiser, EMA model, step)."""
    run.log(f"{name}: {sum(p.numel() for p in model.parameters()) / 1e6:.2f} M parameters")
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=betas, weight_decay=0.01)
    ema, step = resume(run, out, model, opt)
    if run.rank == 0:
        (out / "config.json").write_text(json.dumps(config, indent=1))
    corpus.rng = np.random.default_rng([args.seed, step, run.rank, 1])  # different crops per rank and resume
    return opt, ema, step


def run_config(out: str | Path) -> dict | None:
    """The ``config.json`` of a run in ``out`` that has a checkpoint to resume (None: a new run)."""
    out = Path(out)
    if not (out / "last.safetensors").exists() or not (out / "config.json").exists():
        return None
    return json.loads((out / "config.json").read_text())


def parse_sources(values: list[str]) -> list[tuple[str, float]]:
    """'DIR' or 'DIR:WEIGHT' → (dir, weight)."""
    out = []
    for v in values:
        folder, _, weight = v.partition(":")
        out.append((folder, float(weight) if weight else 1.0))
    return out


def setup(threads: int, seed: int) -> Run:
    """CPU threads, the CUDA device when present, the DDP group under ``torchrun``; same seed on every rank."""
    torch.set_num_threads(threads)
    rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    cuda = torch.cuda.is_available()
    device = f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if cuda else "cpu"
    if world > 1:  # launched by torchrun
        dist.init_process_group("nccl" if cuda else "gloo")
        if cuda:
            torch.cuda.set_device(device)
    torch.manual_seed(seed)  # same initial weights on every rank
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    return Run(rank, world, device)


def schedule(args: argparse.Namespace) -> dict:
    """:func:`fit`'s keyword options from :func:`parser`'s: save cadence, samples per step, time limit, bf16."""
    return dict(save_every=args.save_every, samples=args.batch * args.segment, minutes=args.minutes, bf16=args.bf16)


def lr_at(step: int, steps: int, base: float) -> float:
    """Linear warm-up over 500 steps, then cosine from ``base`` down to 5 % of it at ``steps``."""
    return base * min(1.0, (step + 1) / WARMUP_STEPS) * (0.5 * (1 + math.cos(math.pi * step / steps)) * 0.95 + 0.05)


def resume(run: Run, out: Path, model: torch.nn.Module, opt: torch.optim.Optimizer) -> tuple[torch.nn.Module, int]:
    """(EMA copy of ``model``, step to continue from): restored from ``out/last.safetensors`` if it exists."""
    ema = copy.deepcopy(model).requires_grad_(False)
    if not (out / "last.safetensors").exists():
        return ema, 0
    step = checkpoint.load(out / "last.safetensors", model, ema, opt)
    run.log(f"resumed at step {step}")
    return ema, step


def fit(run: Run, model: torch.nn.Module, ema: torch.nn.Module, opt: torch.optim.Optimizer, out: Path, step: int,
        steps: int, base_lr: float, batch_loss: Callable[[torch.nn.Module], torch.Tensor], *, clip: float,
        save_every: int, on_save: Callable[[int], None] | None = None, samples: int = 0,
        minutes: float | None = None, bf16: bool = False) -> None:
    """Train ``model`` from ``step`` to ``steps``; ``batch_loss(net)`` draws a batch and returns its
    loss (``net`` is the DDP wrapper under ``torchrun``). Rank 0 saves ``out/last.safetensors``
    (and calls ``on_save(step)`` for state of its own, e.g. discriminators) every ``save_every`` steps
    and when it stops: at ``steps``, or after ``minutes`` of training. ``samples``: audio samples per
    step and process, for the samples/s in the log. ``bf16``: bfloat16 autocast on CUDA."""
    net = DistributedDataParallel(model) if run.world > 1 else model
    deadline = math.inf if minutes is None else time.time() + 60 * minutes
    device_type = run.device.split(":")[0]
    t0, running, logged = time.time(), torch.zeros((), device=run.device), step
    while step < steps:
        lr = lr_at(step, steps, base_lr)
        for g in opt.param_groups:
            g["lr"] = lr
        with torch.autocast(device_type, torch.bfloat16, enabled=bf16):
            loss = batch_loss(net)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        with torch.no_grad():
            decay = min(0.999, (1 + step) / (10 + step))
            torch._foreach_lerp_(list(ema.parameters()), list(model.parameters()), 1 - decay)
        step += 1
        running += loss.detach()  # no host sync per step: read every 50
        stop = time.time() > deadline
        if step % 50 == 0 or stop:
            n, dt = step - logged, time.time() - t0
            run.log(f"step {step} loss {running.item() / n:.4f} lr {lr:.2e} {dt / n:.2f}s/step "
                    f"{samples * n * run.world / dt / 1e3:.0f} k samples/s on {run.device}")
            running, t0, logged = torch.zeros((), device=run.device), time.time(), step
        if run.rank == 0 and (step % save_every == 0 or step == steps or stop):
            checkpoint.save(out / "last.safetensors", model, ema, opt, step)
            if on_save:
                on_save(step)
        if stop:
            run.log(f"stopped at step {step} after {minutes} min")
            break
    if run.world > 1:
        dist.destroy_process_group()
