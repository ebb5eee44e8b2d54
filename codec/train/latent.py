"""Train the latent autoencoder (mel → 12.5 Hz latent → mel) with noise-injection quantisation and a rate term.

    python -m codec.train.latent --data ../shared/data/synthetic --data ../shared/data/real/ljspeech:8 \
        --exclude 'LJ001-00(2[5-9]|3)' --out runs/latent --steps 6000 --threads 2
    python -m codec.train.latent --export runs/latent/last.safetensors codec/bundles/default
    python -m codec.train.latent --init codec/bundles/default --adversarial --step-range 1 32 \
        --data ../shared/data/real/train/librispeech --data ../shared/data/real/train/speechocean762 \
        --out runs/latent_gan --steps 6000 --segment 16000 --lr 2e-4 --threads 1
    python -m codec.train.latent --export runs/latent_gan/last.safetensors codec/bundles/default

Loss: L1 between the decoded and the clean log-mel (nats) + ``--rate-weight`` × bits per latent
frame. Mel domain only, so it trains fast on a CPU; resumes from ``OUT/last.safetensors``.

Adversarial decoder fine-tuning (``--adversarial``, from ``--init``'s autoencoder): the encoder and
its rate model stay frozen, so every latent stream keeps its meaning; the decoder is trained with the
L1 + ``--adversarial-weight`` × (LSGAN + 2 × feature matching) of a small discriminator on its log-mel
(``discriminators.MelDiscriminator``, state in ``OUT/mel_discriminator.safetensors``), at quantiser
steps log-uniform over ``--step-range`` (the 0.3 kbps rate picks steps ≈ 25, above ``STEP_RANGE``).
Such a run exports the decoder alone, as the ``latent_decoder`` add-on: rendering changes, latent
streams (whose id hashes ``latent.*``) stay decodable. With ``--refit`` the encoder and rate model train
too (rate term kept): the export is a whole autoencoder, ``latent.*``, which gives new latent streams a new
id; the bundle keeps the one it replaces, with its ``latent_decoder`` and ``lat2lat``, as a latent
generation (``latent_v1.*``, ...: ``export.retire_latent``), so the streams written before still decode.
"""
from __future__ import annotations

from dataclasses import asdict, fields

import torch

from ..bundle import Bundle
from ..decoders import latent_decoder
from ..features import LogMel, MelConfig
from ..latent import STEP_RANGE, LatentAutoencoder, LatentConfig, random_steps
from . import loop
from .discriminators import Adversary, MelDiscriminator


class LatentTrainer(loop.Trainer):
    """The latent autoencoder: mel L1 + rate term, or with ``--adversarial`` a discriminator on its log-mel."""

    name, kind = "latent autoencoder", "latent"
    out, steps, segment = "runs/latent", 6000, 32000

    def options(self, ap) -> None:
        ap.add_argument("--rate-weight", type=float, default=0.003, help="loss per bit per latent frame")
        ap.add_argument("--init", help="start from this bundle's latent autoencoder (and latent_decoder) instead of "
                                       "random weights")
        ap.add_argument("--adversarial", action="store_true",
                        help="fine-tune --init's decoder only, with a discriminator on its log-mel")
        ap.add_argument("--adversarial-weight", type=float, default=0.1, help="GAN terms vs the mel L1")
        ap.add_argument("--refit", action="store_true",
                        help="with --adversarial: train the encoder and rate model too, with the rate term (new "
                             "latent streams: the export is a whole autoencoder, with a new stream id)")
        ap.add_argument("--step-range", type=float, nargs=2, default=STEP_RANGE, metavar=("LO", "HI"),
                        help="quantiser steps seen in training (log-uniform)")
        ap.add_argument("--latent", action="append", default=[], metavar="KEY=VALUE",
                        help="a new run's LatentConfig field (repeatable), e.g. stride=3 channels=10 "
                             "dec_low_layers=4; a resumed run keeps its config.json's")
        ap.add_argument("--delta-weight", type=float, default=0.0,
                        help="also this × the L1 of the log-mel's frame-to-frame differences (sharper onsets, #33)")

    def configure(self, args, ap) -> int:
        lookahead = super().configure(args, ap)
        if args.adversarial and not args.init:
            ap.error("--adversarial fine-tunes a trained decoder: give --init BUNDLE")
        if args.refit and not args.adversarial:
            ap.error("--refit goes with --adversarial")
        if args.latent and args.init:
            ap.error("--latent sets a new autoencoder's shape; --init takes the bundle's")
        self.init = Bundle.load(args.init) if args.init else None
        if self.init and self.init.latent is None:
            ap.error(f"--init {args.init}: the bundle has no latent autoencoder (latent.safetensors)")
        resumed = loop.run_config(args.out)  # a resumed run keeps its shape
        self.cfg = (LatentConfig(**resumed["latent"]) if resumed and "latent" in resumed
                    else self.init.latent.cfg if self.init else latent_config(args.latent, ap))
        return lookahead

    def model(self, run, args):
        init, cfg = self.init, self.cfg
        self.logmel = LogMel(MelConfig()).to(run.device)
        model = LatentAutoencoder(cfg).to(run.device)
        if init:  # its autoencoder, with the decoder it renders with (its latent_decoder add-on, if any)
            model.load_state_dict(init.latent.state_dict())
            model.decoder.load_state_dict(latent_decoder(init).state_dict())
        self.decoder_only = args.adversarial and not args.refit
        if self.decoder_only:  # the streams' meaning: encoder and rate model
            model.encoder.requires_grad_(False)
            model.log_scale.requires_grad_(False)
        return model, {"latent": asdict(cfg), **({"trained": "decoder"} if self.decoder_only else {}),
                       "step_range": list(args.step_range)}

    def loss(self, run, args, corpus, out, model, step):
        gan = (Adversary(MelDiscriminator(), out / "mel_discriminator.safetensors", args.lr, run)
               if args.adversarial else None)
        self.adversaries = (gan,) if gan else ()
        generator = torch.Generator().manual_seed(args.seed * 1000 + step + run.rank)
        cfg, logmel, decoder_only = self.cfg, self.logmel, self.decoder_only
        frames = (args.segment // MelConfig().hop + 1) // cfg.stride * cfg.stride
        calls = [step]

        def batch_loss(net):
            crops = corpus.batch(args.batch, args.segment)
            wav = crops.tensor(run.device)
            with torch.no_grad():
                mel = logmel(wav)[..., :frames]
                pitch_rows = crops.pitch_rows(cfg.stride, frames).to(run.device)
            steps = random_steps(len(wav), generator, args.step_range).to(run.device)
            rec, bits = net(mel, pitch_rows, steps)
            l1 = torch.mean(torch.abs(rec - mel))
            calls[0] += 1
            if calls[0] % 100 == 0:
                run.log(f"  mel L1 {l1.item():.3f} nats, {bits.mean().item():.1f} bits per latent frame")
            loss = l1 if decoder_only else l1 + args.rate_weight * bits.mean()
            if args.delta_weight:
                loss = loss + args.delta_weight * torch.mean(torch.abs(rec.diff(dim=-1) - mel.diff(dim=-1)))
            return loss + args.adversarial_weight * gan(mel, rec) if gan else loss

        return batch_loss


def main(argv=None) -> None:
    loop.main(LatentTrainer(), __doc__, argv)


def latent_config(items: list[str], ap) -> LatentConfig:
    """``KEY=VALUE`` items (integer fields of :class:`LatentConfig`) → the config, the others at their defaults."""
    known = {f.name for f in fields(LatentConfig)}
    values = {}
    for item in items:
        key, _, value = item.partition("=")
        if key not in known or not value.lstrip("-").isdigit():
            ap.error(f"--latent {item!r}: expected KEY=INTEGER with KEY one of {', '.join(sorted(known))}")
        values[key] = int(value)
    return LatentConfig(**values)


if __name__ == "__main__":
    main()
