"""Train the mel vocoder on codec-degraded mels.

    python -m codec.train.vocoder --data ../shared/data/synthetic --data ../shared/data/real/ljspeech:8 \
        --exclude 'LJ001-00(2[5-9]|3)' --out runs/vocoder --steps 30000 --threads 2

Several GPUs (or CPU processes) with DistributedDataParallel:

    torchrun --nproc_per_node=4 -m codec.train.vocoder --data ... --out runs/vocoder

The streaming (causal) vocoder fine-tunes from a bundle's streaming vocoder (else its offline one),
with the low-latency front end (512-sample analysis and synthesis windows, 16 ms look-ahead each):

    python -m codec.train.vocoder --causal --mel-window 512 --synthesis-fft 512 --init codec/bundles/default \
        --data ... --out runs/stream_vocoder

Adversarial fine-tuning (``--adversarial``): multi-period + multi-resolution discriminators
(``discriminators.py``), least-squares GAN + feature matching beside the spectral losses; the
discriminators' state is kept in ``OUT/discriminators.safetensors``. ``--magnitude-adversarial``
(``mag_prior`` vocoders): one small discriminator on the head's magnitude instead of the waveform,
cheap enough for a CPU (``OUT/magnitude_discriminator.safetensors``).

Resumes from ``OUT/last.safetensors`` when it exists. Each batch mixes clean mels with mels
passed through the codec's quantiser at the ladder's operating points (latent rungs through ``--init``'s
latent autoencoder), so the vocoder learns to render what the ``direct`` decoder will feed it. Works on
CPU (``--threads``), one CUDA GPU, or several under ``torchrun``.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import asdict

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel

from bitstream.payload import step_size

from ..bundle import Bundle
from ..decoders import latent_decoder, vocoder_for
from ..features import LogMel, MelConfig
from ..mel_repr import degrade, smooth_frames, smooth_packets
from ..modes import LADDER, MEL_MODES, VOIP_MODES
from ..stream import stream_vocoder
from ..vocoder import Vocoder, VocoderConfig
from ..vocoder_input import stack
from . import loop
from .data import Crops
from .discriminators import Adversary, Discriminators, MagnitudeDiscriminator
from .losses import MultiResolutionSTFTLoss, MultiScaleMelLoss, PhaseLoss


def codec_features(crops: Crops, mel: torch.Tensor, rng: np.random.Generator, p_clean: float,
                   ladder=MEL_MODES, causal: bool = False, restore=None, latent_bundle=None) -> torch.Tensor:
    """Crops, their (B, n_mels, frames) log-mel → vocoder input (B, n_mels + 2, frames) as the decoder sees it.

    Per example: with probability ``p_clean`` the exact mel (pitch at the full frame rate), else
    mel and pitch through the quantiser and decimation of a random mode of ``ladder``, at a step
    index near that mode's operating point, then low-passed in time as the decoders do. ``causal``: pitch
    rows, and the low-pass packet by packet, as the streaming decoder makes them.
    ``restore(features, step, mode)``: a decoder stage applied to quantised mel examples (e.g. mel2mel).
    ``latent_bundle``: a bundle, through whose latent encoder and ``latent_decoder`` latent modes of ``ladder``
    pass as a latent stream does (encoded, rounded to the step, decoded with the stream's pitch rows).
    """
    out = []
    for i in range(mel.shape[0]):
        m, decimation, mode = mel[i:i + 1], 1, None
        if rng.random() >= p_clean:
            mode = ladder[int(rng.integers(len(ladder)))]
            decimation = mode.decimation
            step = step_size(mode.typical_g + int(rng.integers(-16, 17)))
        rows = crops.rows(i, decimation, m.shape[-1], causal).to(m)
        if mode and mode.representation == "latent":
            z = latent_bundle.latent.encoder(m)
            m = latent_decoder(latent_bundle)(torch.round(z / step) * step, rows, step)
        elif mode:
            m = degrade(m, mode.n_coefs, decimation, step)
            if causal:
                m = smooth_packets(m, mode.frames_per_packet)
            elif restore is None:
                m = smooth_frames(m)
        feats = stack(m, rows)
        out.append(restore(feats, step, mode) if restore and mode and mode.representation == "mel" else feats)
    return torch.cat(out)


def mel2mel_restorer(bundle: Bundle, steps: int, rng: np.random.Generator):
    """``restore`` for :func:`codec_features`: the bundle's mel2mel decoder stage, ``steps`` Euler steps."""
    from ..mel2mel import load, quantiser_rows

    model = load(bundle)
    n_mels = model.cfg.n_mels

    def restore(feats, step, mode):
        rows = quantiser_rows(step, mode.n_coefs, mode.decimation, feats.shape[-1]).to(feats)
        generator = torch.Generator().manual_seed(int(rng.integers(2**31)))
        mel = model.sample(torch.cat([feats, rows], dim=1).cpu(), steps, generator).to(feats)
        return torch.cat([mel, feats[:, n_mels:]], dim=1)

    return restore


def init_from(model: Vocoder, source: Vocoder) -> None:
    """Load ``source``'s weights into ``model``. A head with an r-times smaller FFT keeps every r-th
    bin, its log-magnitude lowered by ln r (a window r times shorter) and its phase advanced by
    2π·bin·Δ/n, Δ = (n_src − n)/2 samples: how much later its frame starts. A ``mag_prior`` model
    started from a source without one has its log-magnitude rows zeroed: it starts at the prior."""
    state = dict(source.state_dict())
    n_src, n = source.cfg.n_fft, model.cfg.n_fft
    if model.cfg.mag_prior and not source.cfg.mag_prior:
        bins_src = n_src // 2 + 1
        for key in ("head.out.weight", "head.out.bias"):
            state[key] = state[key].clone()
            state[key][:bins_src] = 0
    if n_src != n:
        r = n_src // n
        if r * n != n_src or r < 1:
            raise ValueError(f"cannot start a {n}-point head from a {n_src}-point one")
        bins_src, bins = n_src // 2 + 1, n // 2 + 1
        w, b = state["head.out.weight"], state["head.out.bias"]
        keep = torch.arange(bins) * r
        shift = 2 * math.pi * torch.arange(bins) / n * (n_src - n) / 2
        state["head.out.weight"] = torch.cat([w[keep], w[bins_src + keep]])
        state["head.out.bias"] = torch.cat([b[keep] - math.log(r), b[bins_src + keep] + shift])
    if model.cfg.harmonic_prior and not source.cfg.harmonic_prior:  # a new harmonicity layer keeps its start
        state.update({k: v for k, v in model.state_dict().items() if k.startswith("harmonicity.")})
    model.load_state_dict(state)


def magnitude_and_phase_outputs(net: torch.nn.Module, feats: torch.Tensor, wav: torch.Tensor):
    """A ``mag_prior`` vocoder's training outputs: (waveform from the head's phase on its detached
    magnitude, magnitude loss = L1 log-magnitude + spectral convergence against the STFT of ``wav``,
    the head's complex spectrum and that STFT, both (B, n_fft // 2 + 1, frames))."""
    model = net.module if isinstance(net, DistributedDataParallel) else net
    spec = net(feats, spectrum=True)
    n_fft, hop, window = model.cfg.n_fft, model.cfg.hop, model.head.window
    x = wav[:, : (spec.shape[-1] - 1) * hop]
    stft = torch.stft(x, n_fft, hop, window=window, center=True, return_complex=True)
    target, mag = stft.abs(), spec.abs()
    loss = (torch.log(mag.clamp(min=1e-5)) - torch.log(target.clamp(min=1e-5))).abs().mean()
    loss = loss + torch.linalg.norm(target - mag) / torch.linalg.norm(target).clamp(min=1e-8)
    phase = spec / mag.clamp(min=1e-16)
    y = torch.istft(mag.detach() * phase, n_fft, hop, window=window, center=True)
    return y, loss, spec, stft


def new_config(args, cfg: VocoderConfig) -> VocoderConfig:
    """A new run's vocoder: ``cfg`` (--init's, or the default) changed as the options ask."""
    return dataclasses.replace(cfg, causal=args.causal, n_fft=args.synthesis_fft or cfg.n_fft,
                               relative_level=args.relative_level or cfg.relative_level,
                               mag_prior=args.mag_prior or cfg.mag_prior,
                               harmonic_prior=args.harmonic_prior or cfg.harmonic_prior,
                               phase_iterations=(0 if args.learned_phase else args.phase_iterations
                                                 if args.mag_prior else cfg.phase_iterations),
                               phase_init="learned" if args.learned_phase else cfg.phase_init)


DEV_GRIFFIN_LIM = 24  # iterations: the learned phase is also scored as the start of direct's Griffin-Lim
RECON_WEIGHT = 15.0  # spectral losses vs the adversarial (1) and feature-matching (2) terms


STREAM_WINDOW = 512  # samples: the streaming front end's analysis window and synthesis FFT (--causal's default)


def options(ap) -> None:
    """The vocoder trainer's own options."""
    ap.add_argument("--p-clean", type=float, default=0.3)
    ap.add_argument("--init", help="fine-tune from this bundle's vocoder (the one direct renders with; with --causal "
                                   "its streaming one) instead of random weights")
    ap.add_argument("--causal", action="store_true",
                    help="streaming vocoder: causal convolutions, trained on the VoIP modes' features, with the "
                         f"streaming front end (--mel-window and --synthesis-fft {STREAM_WINDOW}: 48 ms latency)")
    ap.add_argument("--mel-window", type=int,
                    help=f"analysis window (samples, ≤ the mel n_fft); default: {STREAM_WINDOW} with --causal, "
                         "else --init's")
    ap.add_argument("--synthesis-fft", type=int,
                    help=f"the iSTFT head's FFT size (samples); default: {STREAM_WINDOW} with --causal, else --init's")
    ap.add_argument("--relative-level", action="store_true",
                    help="new vocoder that sees each frame's mel relative to its level and adds the level back")
    ap.add_argument("--mag-prior", action="store_true",
                    help="new vocoder whose head predicts log-magnitude relative to the mel's least-squares inverse, "
                         "trained on the STFT magnitude directly; its phase seeds --phase-iterations of Griffin-Lim")
    ap.add_argument("--harmonic-prior", action="store_true",
                    help="with --mag-prior: a learnt share of each voiced band's power goes onto the F0 harmonics")
    ap.add_argument("--phase-iterations", type=int, default=16,
                    help="fast Griffin-Lim iterations at decoding (with --mag-prior)")
    ap.add_argument("--griffin-lim-loss", type=int, default=0, metavar="N",
                    help="with --mag-prior: also score the waveform N fast Griffin-Lim iterations make from the "
                         "head's magnitude (from the excitation's phase, as decoding does), so the magnitude "
                         "learns to be one Griffin-Lim can invert")
    ap.add_argument("--learned-phase", action="store_true",
                    help="no Griffin-Lim: the head's phase learns a correction of the excitation's (F0 + minimum "
                         "phase), which it starts from (phase rows zeroed when --init's vocoder had none)")
    ap.add_argument("--phase-loss", type=float, default=0.0, metavar="WEIGHT",
                    help="with --learned-phase: add WEIGHT × the phase losses (instantaneous phase, group delay, "
                         "instantaneous frequency against the STFT's: losses.PhaseLoss), which teach the phase "
                         "without a discriminator")
    ap.add_argument("--adversarial", action="store_true",
                    help="add discriminators (GAN fine-tuning; start from --init or a trained checkpoint)")
    ap.add_argument("--magnitude-adversarial", action="store_true",
                    help="with --mag-prior: a small discriminator on the head's log-magnitude against the STFT's "
                         "(GAN fine-tuning of the magnitude, against over-smoothing; ~40 %% slower steps)")
    ap.add_argument("--mel2mel", action="store_true",
                    help="vocoder for the mel2mel decoder: quantised examples go through --init's mel2mel (4 steps)")


class VocoderTrainer(loop.Trainer):
    """The vocoder (:class:`Vocoder`) on codec-degraded features: spectral losses, with ``--adversarial``
    discriminators; dev check: copy synthesis (``validate.DevSet``)."""

    name = kind = "vocoder"
    out, steps, segment = "runs/vocoder", 30000, 8192
    clip, betas, exports = 10.0, (0.8, 0.99), False  # exported by codec.train.export
    dev_every, dev_scores = 2000, "copy-synthesis PESQ/STOI"
    data_error = "--data is required"
    options = staticmethod(options)

    def configure(self, args, ap) -> int:
        """The options checked; the run's front end and vocoder config, and where its weights start."""
        if args.causal:  # the streaming front end unless asked otherwise: --init's offline one would stream at 80 ms
            args.mel_window = args.mel_window or STREAM_WINDOW
            args.synthesis_fft = args.synthesis_fft or STREAM_WINDOW
        super().configure(args, ap)
        if args.synthesis_fft is not None and args.synthesis_fft <= 256:
            ap.error("--synthesis-fft must exceed the hop (256 samples) for the overlap-add")
        if args.mel2mel and not args.init:
            ap.error("--mel2mel needs --init BUNDLE (the bundle whose mel2mel model feeds the vocoder)")
        init = self.init = Bundle.load(args.init) if args.init else None
        resumed = loop.run_config(args.out)  # a run goes on with the model it began with, bundle or not
        mel_cfg = MelConfig(**resumed["mel"]) if resumed else init.mel_config if init else MelConfig()
        # start from the vocoder that decodes: the bundle's streaming one (causal runs), else the one direct renders
        self.source = None if resumed else init and ((stream_vocoder(init) or init.vocoder) if args.causal
                                                     else vocoder_for(init))
        source = self.source
        voc_cfg = VocoderConfig(**resumed["vocoder"]) if resumed else source.cfg if source else VocoderConfig()
        if args.mel_window and not resumed:
            mel_cfg = dataclasses.replace(mel_cfg, win_length=args.mel_window)
        for flag, wanted in (("--learned-phase", args.learned_phase), ("--phase-loss", args.phase_loss),
                             ("--magnitude-adversarial", args.magnitude_adversarial),
                             ("--griffin-lim-loss", args.griffin_lim_loss)):
            if wanted and not (args.mag_prior or voc_cfg.mag_prior):
                ap.error(f"{flag} needs a --mag-prior vocoder")
        self.mel_config, self.voc_cfg = mel_cfg, voc_cfg if resumed else new_config(args, voc_cfg)
        return mel_cfg.lookahead

    def model(self, run, args):
        init, source = self.init, self.source
        # the streams the vocoder will render: the streaming modes, or the storage ladder's (its latent rungs
        # through the bundle's latent encoder and decoder, when --init has them and the run is for direct)
        self.latent_bundle = init if init and init.latent and not args.causal and not args.mel2mel else None
        if self.latent_bundle:
            init.latent.to(run.device)
            latent_decoder(init).to(run.device)
        self.ladder = VOIP_MODES if args.causal else MEL_MODES + (
            tuple(m for m in LADDER if m.representation == "latent") if self.latent_bundle else ())
        self.logmel = LogMel(self.mel_config).to(run.device)
        model = Vocoder(self.voc_cfg).to(run.device)
        if source:
            init_from(model, source)
            if args.learned_phase and source.cfg.phase_init != "learned":
                bins = self.voc_cfg.n_fft // 2 + 1
                with torch.no_grad():  # start from the excitation's phase itself
                    model.head.out.weight[bins:].zero_()
                    model.head.out.bias[bins:].zero_()
        return model, {"mel": asdict(self.mel_config), "vocoder": asdict(self.voc_cfg)}

    def loss(self, run, args, corpus, out, model, step):
        stft_loss, mel_loss, phase_loss = (MultiResolutionSTFTLoss().to(run.device),
                                           MultiScaleMelLoss().to(run.device), PhaseLoss())
        rng = np.random.default_rng([args.seed, step, run.rank])  # different degradations per rank and resume
        restore = mel2mel_restorer(self.init, 4, rng) if args.mel2mel else None
        gan = (Adversary(Discriminators(), out / "discriminators.safetensors", args.lr, run)
               if args.adversarial else None)
        mag_gan = (Adversary(MagnitudeDiscriminator(), out / "magnitude_discriminator.safetensors", args.lr, run)
                   if args.magnitude_adversarial else None)
        self.adversaries = tuple(a for a in (gan, mag_gan) if a)
        ladder, latent_bundle, logmel = self.ladder, self.latent_bundle, self.logmel

        def batch_loss(net):
            crops = corpus.batch(args.batch, args.segment)
            wav = crops.tensor(run.device)
            with torch.no_grad():
                feats = codec_features(crops, logmel(wav), rng, args.p_clean, ladder, args.causal, restore,
                                       latent_bundle)
            phase = 0.0
            if self.voc_cfg.mag_prior:  # magnitude learnt from the STFT itself, phase through the waveform losses
                y, magnitude, spec, stft = magnitude_and_phase_outputs(net, feats, wav)
                mag, target = spec.abs(), stft.abs()
                if args.phase_loss:  # and, with --phase-loss, against the STFT's phase directly
                    phase = args.phase_loss * phase_loss(spec, stft)
            else:
                y, magnitude = net(feats), 0.0
            x = wav[:, : y.shape[-1]]
            spectral = mel_loss(y, x) + stft_loss(y, x) + magnitude + phase
            if args.griffin_lim_loss:
                y_gl = model.invert(feats, mag, args.griffin_lim_loss)[:, : x.shape[-1]]  # what decoding renders
                spectral = spectral + mel_loss(y_gl, x) + stft_loss(y_gl, x)
            if not self.adversaries:
                return spectral
            return (RECON_WEIGHT * spectral + (gan(x, y) if gan else 0.0)
                    + (mag_gan(target, mag) if mag_gan else 0.0))

        return batch_loss

    def dev(self, dev, ema):
        scores = dev(ema)
        if self.voc_cfg.phase_init == "learned":  # also as Griffin-Lim's start, as direct could decode with it
            scores |= {f"{k}_gl{DEV_GRIFFIN_LIM}": v for k, v in dev(ema, DEV_GRIFFIN_LIM).items()}
        return scores


def main(argv=None) -> None:
    loop.main(VocoderTrainer(), __doc__, argv)


if __name__ == "__main__":
    main()
