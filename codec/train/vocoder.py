"""Train the mel vocoder on codec-degraded mels.

    python -m codec.train.vocoder --data ../shared/data/synthetic --data ../shared/data/real/ljspeech:8 \
        --exclude 'LJ001-00(2[5-9]|3)' --out runs/vocoder --steps 30000 --threads 2

Several GPUs (or CPU processes) with DistributedDataParallel:

    torchrun --nproc_per_node=4 -m codec.train.vocoder --data ... --out runs/vocoder

The streaming (causal) vocoder fine-tunes from a bundle's offline one:

    python -m codec.train.vocoder --causal --init codec/bundles/default --data ... --out runs/stream_vocoder

Resumes from ``OUT/last.safetensors`` when it exists. Each batch mixes clean mels with mels
passed through the codec's quantiser at the ladder's operating points, so the vocoder learns to render what
the ``direct`` decoder will feed it. Works on CPU (``--threads``), one CUDA GPU, or several under ``torchrun``.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from ..features import LogMel, MelConfig
from .. import pitch
from ..bundle import Bundle
from ..mel_repr import degrade
from ..melcoder import step_size
from ..modes import LADDER, VOIP_LADDER
from ..vocoder import Vocoder, VocoderConfig
from . import loop
from .data import Corpus
from .losses import MultiResolutionSTFTLoss, MultiScaleMelLoss


def parse_sources(values: list[str]) -> list[tuple[str, float]]:
    """'DIR' or 'DIR:WEIGHT' → (dir, weight)."""
    out = []
    for v in values:
        folder, _, weight = v.partition(":")
        out.append((folder, float(weight or 1)))
    return out


def codec_features(wav: torch.Tensor, mel: torch.Tensor, rng: np.random.Generator, p_clean: float,
                   ladder=LADDER, causal: bool = False, restore=None) -> torch.Tensor:
    """(B, samples), (B, n_mels, frames) → vocoder input (B, n_mels + 2, frames) as the decoder sees it.

    Per example: with probability ``p_clean`` the exact mel (pitch at the full frame rate), else
    mel and pitch through the quantiser and decimation of a random mode of ``ladder``, at a step
    index near that mode's operating point. ``causal``: pitch rows as the streaming decoder makes them.
    ``restore(features, step, mode)``: a decoder stage applied to quantised examples (e.g. mel2mel).
    """
    out = []
    for i in range(mel.shape[0]):
        m, decimation, mode = mel[i:i + 1], 1, None
        if rng.random() >= p_clean:
            mode = ladder[int(rng.integers(len(ladder)))]
            decimation = mode.decimation
            step = step_size(mode.typical_g + int(rng.integers(-16, 17)))
            m = degrade(m, mode.n_coefs, decimation, step)
        f0, voiced = pitch.estimate(wav[i].cpu().numpy())
        aux = pitch.features(*pitch.group(f0, voiced, decimation), decimation, m.shape[-1], causal=causal)
        feats = torch.cat([m, torch.from_numpy(aux)[None].to(m)], dim=1)
        out.append(restore(feats, step, mode) if restore and mode else feats)
    return torch.cat(out)


def mel2mel_restorer(bundle: Bundle, steps: int, rng: np.random.Generator):
    """``restore`` for :func:`codec_features`: the bundle's mel2mel decoder stage, ``steps`` Euler steps."""
    from ..mel2mel import quantiser_rows

    model = bundle.mel2mel
    n_mels = model.cfg.n_mels

    def restore(feats, step, mode):
        rows = quantiser_rows(step, mode.n_coefs, mode.decimation, feats.shape[-1]).to(feats)
        generator = torch.Generator().manual_seed(int(rng.integers(2**31)))
        mel = model.sample(torch.cat([feats, rows], dim=1).cpu(), steps, generator).to(feats)
        return torch.cat([mel, feats[:, n_mels:]], dim=1)

    return restore


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", action="append", required=True, help="DIR[:WEIGHT], repeatable")
    ap.add_argument("--exclude", default=None, help="regex of file names held out (dev set)")
    ap.add_argument("--out", default="runs/vocoder")
    ap.add_argument("--steps", type=int, default=30000)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--segment", type=int, default=8192, help="samples per crop")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--p-clean", type=float, default=0.3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--save-every", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--init", help="start from this bundle's vocoder (fine-tuning) instead of random weights")
    ap.add_argument("--causal", action="store_true",
                    help="streaming vocoder: causal convolutions, trained on the VoIP modes' features")
    ap.add_argument("--mel2mel", action="store_true",
                    help="vocoder for the mel2mel decoder: quantised examples go through --init's mel2mel (4 steps)")
    args = ap.parse_args(argv)
    if args.mel2mel and not args.init:
        ap.error("--mel2mel needs --init BUNDLE (the bundle whose mel2mel model feeds the vocoder)")

    run = loop.setup(args.threads, args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    corpus = Corpus(parse_sources(args.data), args.exclude, seed=args.seed)
    run.log(f"corpus: {len(corpus.clips)} clips, {corpus.seconds / 60:.1f} min")
    init = Bundle.load(args.init) if args.init else None
    mel_cfg = init.mel_config if init else MelConfig()
    voc_cfg = VocoderConfig(**init.config["vocoder"]) if init else VocoderConfig()
    if args.causal:
        voc_cfg = dataclasses.replace(voc_cfg, causal=True)
    ladder = VOIP_LADDER if args.causal else LADDER
    logmel = LogMel(mel_cfg).to(run.device)
    model = Vocoder(voc_cfg).to(run.device)
    if init:
        model.load_state_dict(init.vocoder.state_dict())
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.8, 0.99), weight_decay=0.01)
    stft_loss, mel_loss = MultiResolutionSTFTLoss().to(run.device), MultiScaleMelLoss().to(run.device)
    ema, step = loop.resume(run, out, model, opt)
    if run.rank == 0:
        (out / "config.json").write_text(json.dumps({"mel": asdict(mel_cfg), "vocoder": asdict(voc_cfg)}, indent=1))
    rng = np.random.default_rng([args.seed, step, run.rank])  # different crops per rank and resume
    corpus.rng = np.random.default_rng([args.seed, step, run.rank, 1])
    restore = mel2mel_restorer(init, 4, rng) if args.mel2mel else None

    def batch_loss(net):
        wav = torch.from_numpy(corpus.batch(args.batch, args.segment)).to(run.device)
        with torch.no_grad():
            feats = codec_features(wav, logmel(wav), rng, args.p_clean, ladder, args.causal, restore)
        y = net(feats)
        x = wav[:, : y.shape[-1]]
        return mel_loss(y, x) + stft_loss(y, x)

    loop.fit(run, model, ema, opt, out, step, args.steps, args.lr, batch_loss, clip=10.0, save_every=args.save_every)

if __name__ == "__main__":
    main()
