"""Train the direct vocoder's phase refiner (``codec.phase_refiner``) with the rest of the vocoder frozen.

    python -m codec.train.phase --init codec/bundles/default --data ../shared/data/real/train/librispeech \
        --data ../shared/data/real/train/speechocean762 --out runs/phase --steps 6000 --threads 1
    python -m codec.train.phase --export runs/phase/last.safetensors codec/bundles/default

Each batch is what ``direct`` renders (``vocoder.codec_features``: clean mels, the mel rungs and, through
``--init``'s latent autoencoder, the latent rungs); the frozen vocoder predicts the magnitude and its
Griffin-Lim iterations run as decoding runs them, with the refiner inside. Loss on the waveform: the
multi-resolution STFT and mel losses against the clip (magnitudes at resolutions other than the vocoder's
are where an inconsistent phase shows; a complex L1 to the clip's phase instead taught the refiner to
cancel the energy it could not place). ``--adversarial`` adds discriminators on the complex spectrum at
three resolutions (``discriminators.ComplexDiscriminators``; least-squares GAN + feature matching), the
signal a regression loss does not give a phase; their state is kept in ``OUT/discriminators.safetensors``.
The export replaces ``direct_vocoder``: the same
magnitude weights with the refiner added, so streams and their ids are unchanged.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from ..bundle import Bundle
from ..features import LogMel
from ..modes import LADDER, MEL_MODES
from ..vocoder import Vocoder
from . import loop
from .export import addon
from .discriminators import Adversary, ComplexDiscriminators
from .losses import MultiResolutionSTFTLoss, MultiScaleMelLoss
from .vocoder import RECON_WEIGHT, codec_features


def main(argv=None) -> None:
    ap = loop.parser(__doc__, out="runs/phase", steps=6000, segment=16384)
    ap.add_argument("--init", help="bundle whose direct vocoder (and latent autoencoder) the refiner is trained for")
    ap.add_argument("--layers", type=int, default=3, help="hidden convolutions of a new refiner")
    ap.add_argument("--after", type=int, default=8, help="Griffin-Lim iterations after the refiner (of the vocoder's)")
    ap.add_argument("--bins", type=int, default=0, help="STFT bins from 0 Hz a new refiner corrects (0: all)")
    ap.add_argument("--iterations", type=int, help="Griffin-Lim iterations of a new refiner's vocoder (default: the init's)")
    ap.add_argument("--p-clean", type=float, default=0.3, help="share of clean (unquantised) mels")
    ap.add_argument("--adversarial", action="store_true", help="add complex-spectrum discriminators")
    args = ap.parse_args(argv)
    if args.export:
        ckpt, bundle = Path(args.export[0]), Path(args.export[1])
        addon(ckpt, bundle, "direct_vocoder")
        path = bundle / "direct_vocoder.json"  # the magnitude's training steps stay; the refiner's are added
        config = json.loads(path.read_text())
        config["refiner_steps_trained"] = config.pop("steps_trained")
        config["steps_trained"] = config.pop("vocoder_steps_trained")
        path.write_text(json.dumps(config, indent=1) + "\n")
        return
    if not (args.data and args.init):
        ap.error("--data and --init are required for training")

    init = Bundle.load(args.init)
    source = init.direct_vocoder
    if not source.cfg.mag_prior or not source.cfg.phase_iterations:
        ap.error(f"--init {args.init}: its direct vocoder has no Griffin-Lim phase to refine")
    run, out, corpus = loop.start(args, init.mel_config.lookahead)
    cfg = source.cfg if source.refiner else dataclasses.replace(
        source.cfg, refiner_layers=args.layers, refiner_after=args.after, refiner_bins=args.bins,
        phase_iterations=args.iterations or source.cfg.phase_iterations)
    model = Vocoder(cfg).to(run.device)
    missing, unexpected = model.load_state_dict(source.state_dict(), strict=False)
    if unexpected or any(not k.startswith("refiner.") for k in missing):
        raise RuntimeError(f"direct vocoder weights do not fit: missing {missing}, unexpected {unexpected}")
    model.requires_grad_(False)
    model.refiner.requires_grad_(True)
    vocoder_steps = json.loads((Path(args.init) / "direct_vocoder.json").read_text()).get("steps_trained")
    opt, ema, step = loop.prepare(run, out, corpus, args, model, "vocoder with phase refiner",
                                  {"mel": asdict(init.mel_config), "vocoder": asdict(cfg),
                                   "vocoder_steps_trained": vocoder_steps}, betas=(0.8, 0.99))
    model.eval()  # the frozen parts decode as they will (no dropout or noise); the refiner has neither
    for part in (init.latent, init.latent_decoder):
        if part is not None:
            part.to(run.device)
    ladder = MEL_MODES + (tuple(m for m in LADDER if m.representation == "latent") if init.latent else ())
    logmel = LogMel(init.mel_config).to(run.device)
    stft_loss, mel_loss = MultiResolutionSTFTLoss().to(run.device), MultiScaleMelLoss().to(run.device)
    rng = np.random.default_rng([args.seed, step, run.rank])
    generator = torch.Generator().manual_seed(args.seed * 1000 + step)
    gan = (Adversary(ComplexDiscriminators(), out / "discriminators.safetensors", args.lr, run)
           if args.adversarial else None)

    def batch_loss(net):
        crops = corpus.batch(args.batch, args.segment)
        wav = crops.tensor(run.device)
        with torch.no_grad():
            feats = codec_features(crops, logmel(wav), rng, args.p_clean, ladder, latent_bundle=init)
            spec = model.spectrum(feats)
        y = model.invert(feats, spec, cfg.phase_iterations, generator)
        x = wav[:, : y.shape[-1]]
        spectral = stft_loss(y, x) + mel_loss(y, x)
        return RECON_WEIGHT * spectral + gan(x, y) if gan else spectral

    loop.fit(run, model, ema, opt, out, step, args.steps, args.lr, batch_loss, clip=5.0, save_every=args.save_every,
             on_save=gan.save if gan else None)


if __name__ == "__main__":
    main()
