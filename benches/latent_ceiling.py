"""The latent autoencoder's ceiling (#33): how much of the speech the latent carries, before and after
quantisation, on the held-out dev speakers.

    python benches/latent_ceiling.py                                   # the shipped bundle's latent
    python benches/latent_ceiling.py codec/bundles/default ~/ldcodec-runs/latent2-control   # beside a run
    python benches/latent_ceiling.py --oracle 5 3 --json ceiling.json  # + the mel itself at a latent rate

Each MODEL is a bundle folder (its ``latent`` encoder and ``latent_decoder``; ``BUNDLE@latent_v1`` for a kept
generation), a training run folder (``config.json`` + ``last.safetensors``: the EMA weights, rounded to
float16 as the export writes them) or such a checkpoint file. For each file (the first ``--per-speaker``
of each dev speaker, the first ``--seconds``): the encoder's latent of the clip's log-mel, then

- "unquantised": the latent as is, the decoder told the smallest step it trained with (``--min-step``;
  the ``step_range`` of a run's config or a bundle's ``latent.json`` when it has one, else
  ``codec.latent.STEP_RANGE``);
- "K kbps": the latent quantised by the codec's own rate control at K kbps: the finest step index whose
  whole ``.ldc`` file (header, packets of 2.56 s, pitch side information, the range coder's bytes) fits
  ``K × seconds`` — the same bytes ``codec.encode(..., representation="latent")`` writes for a shipped layout
  (16 × 12.5 Hz, 10 × 20.8 Hz), and the same layout (``n_coefs`` = channels, ``decimation`` = stride) for others,

decoded with the pitch rows the stream carries, and rendered by the ``direct_vocoder`` of ``--bundle``
(as ``decoder="direct"`` does). Columns: real kbps (file bytes), quantiser step, the decoder's log-mel L1
against the clip's (nats; what training minimises), and WB-PESQ / STOI of the rendered audio against the
clip (``codec.metrics.all_metrics``; ``--mos``: DNSMOS / DistillMOS too). "copy synthesis" (the clip's
own log-mel and pitch through the same vocoder) is the ceiling; ``--oracle S`` adds the clip's log-mel
averaged over S frames and linearly interpolated back (what a perfect decoder of an S-frame latent rate
could at best keep of the spectrum's motion, with no bits spent).

One CPU thread, means over files; a second table splits STOI by speaker group.
"""
from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch

import bitstream
from bitstream import Header, Mode
from bitstream.modes import LATENT_MODES
from bitstream.payload import dequantize, encode_groups, mode_weights, quantize, step_size
from codec import chunked, pitch, rate
from codec.bundle import Bundle, resolve
from codec.decoders import features, latent_decoder, vocoder_for
from codec.evaluate import DEV_SPLIT, read, select_files, speaker_of
from codec.latent import STEP_RANGE, LatentAutoencoder, LatentConfig
from codec.metrics import all_metrics
from codec.vocoder_input import track_rows
from codec.train.export import ema_weights

KBPS = (0.3, 0.6, 1.2)
PACKET_MEL_FRAMES = 160  # 2.56 s packets (32 groups of 5 frames, as modes 5–6) for a layout no mode has


class Model:
    """A latent encoder + decoder under a label, with the smallest step it trained with."""

    def __init__(self, label: str, encoder, decoder, min_step: float):
        self.label, self.encoder, self.decoder, self.min_step = label, encoder.eval(), decoder.eval(), min_step
        self.cfg = encoder.cfg


def load_model(spec: str, min_step: float | None) -> Model:
    """A bundle folder (``@GENERATION`` for a kept one), a run folder or a run's checkpoint → :class:`Model`."""
    path, _, generation = spec.partition("@")
    path = Path(path).expanduser()
    if (path / "latent.json").exists():  # a bundle
        b = Bundle.load(path)
        if generation:
            b = next((v for v in b.latent_generations() if v.latent_name == generation), None)
            if b is None:
                raise SystemExit(f"{path} keeps no latent generation {generation!r}")
        lo = min_step or (b.addon_config(b.latent_name).get("step_range") or STEP_RANGE)[0]
        return Model(spec, b.latent.encoder, latent_decoder(b), lo)
    ckpt = path / "last.safetensors" if path.is_dir() else path
    config = json.loads((ckpt.parent / "config.json").read_text())
    model = LatentAutoencoder(LatentConfig(**config["latent"]))
    weights, step = ema_weights(ckpt)
    model.load_state_dict({k: v.float() for k, v in weights.items()})
    lo = min_step or (config.get("step_range") or STEP_RANGE)[0]
    return Model(f"{spec} (step {step})", model.encoder, model.decoder, lo)


def latent_mode(cfg: LatentConfig) -> Mode:
    """The storage layout of a latent of ``cfg``'s channels and stride: a shipped latent mode's when one has it
    (16 × 5: modes 5–6, 10 × 3: mode 8), else packets of about 2.56 s."""
    shipped = [m for m in LATENT_MODES if (m.n_coefs, m.decimation) == (cfg.channels, cfg.stride)]
    if shipped:
        return shipped[-1]
    per = max(1, PACKET_MEL_FRAMES // cfg.stride)
    return Mode(7, 0.9, 1.3, "latent", n_coefs=cfg.channels, decimation=cfg.stride, groups_per_packet=per,
                typical_g=150)


def quantised(model: Model, z: np.ndarray, f0: np.ndarray, voiced: np.ndarray, samples: int, kbps: float):
    """Rate control at ``kbps`` → (dequantised latent (L, C), step, real kbps)."""
    mode = latent_mode(model.cfg)
    index, gv = pitch.group(f0, voiced, mode.decimation)
    packets = math.ceil(len(z) / mode.groups_per_packet)
    hdr = Header(sample_rate=16000, mode_id=mode.id, representation="latent", bundle_id=bytes(8),
                 frames_per_packet=mode.groups_per_packet, num_samples=samples, num_packets=packets,
                 decoder="direct", source_rate=16000, source_channels=1)
    seconds = samples / 16000

    def file_at(g: int) -> bytes:
        return bitstream.write_file(hdr, encode_groups(mode, z, index, gv, g))

    g, data = rate.fit(file_at, kbps * 1000 * seconds / 8, mode.typical_g)
    weights = mode_weights(mode)
    q = quantize(z, weights, g, bitstream.payload.VALUE_LIMITS["latent"])
    return dequantize(q, weights, g), step_size(g), len(data) * 8 / seconds / 1000


def pooled(mel: torch.Tensor, stride: int) -> torch.Tensor:
    """``mel`` (1, n_mels, T) averaged over ``stride`` frames, linearly interpolated back to T frames."""
    frames = mel.shape[-1]
    pad = -frames % stride
    x = torch.nn.functional.pad(mel, (0, pad), mode="replicate") if pad else mel
    means = x.reshape(1, mel.shape[1], -1, stride).mean(-1)
    centres = (torch.arange(means.shape[-1]) + 0.5) * stride - 0.5
    t = torch.arange(frames, dtype=torch.float32)
    idx = torch.searchsorted(centres, t).clamp(1, len(centres) - 1) if len(centres) > 1 else None
    if idx is None:
        return means.expand(-1, -1, frames)
    w = ((t - centres[idx - 1]) / stride).clamp(0, 1)
    return means[..., idx - 1] * (1 - w) + means[..., idx] * w


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="*", default=["codec/bundles/default"],
                    help="bundle folders (BUNDLE@latent_v1: a kept generation), run folders or checkpoints")
    ap.add_argument("--folder", default=str(DEV_SPLIT), help="audio folder (default: the dev split)")
    ap.add_argument("--per-speaker", type=int, default=1, help="files per speaker folder (0: all)")
    ap.add_argument("--seconds", type=float, default=6.0, help="the first seconds of each file")
    ap.add_argument("--kbps", type=float, nargs="*", default=list(KBPS))
    ap.add_argument("--bundle", default="codec/bundles/default", help="whose direct_vocoder renders")
    ap.add_argument("--min-step", type=float, help="the step the unquantised latent's decoder is told")
    ap.add_argument("--oracle", type=int, nargs="*", default=[], metavar="S",
                    help="also the clip's log-mel at 1/S of the frame rate (means, interpolated back)")
    ap.add_argument("--mos", action="store_true", help="DNSMOS and DistillMOS too (ldcodec[eval])")
    ap.add_argument("--json", help="write every file's row here")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)

    b = resolve(args.bundle)
    vocoder = vocoder_for(b).eval()
    models = [load_model(m, args.min_step) for m in args.models]
    files = select_files(Path(args.folder), per_speaker=args.per_speaker or None)
    rows: list[dict] = []
    t0 = time.time()
    for path in files:
        wav = read(path)[: int(args.seconds * 16000)]
        mel, f0, voiced = chunked.analyse(wav, b.mel_config)
        frames = mel.shape[-1]
        where = dict(zip(("file", "speaker", "group"), (str(path), *speaker_of(path))))

        def score(system: str, condition: str, out_mel: torch.Tensor, rows_: torch.Tensor, wav=wav, mel=mel,
                  where=where, **extra) -> None:
            with torch.inference_mode():
                y = chunked.vocode(vocoder, features(out_mel, rows_, vocoder))[: len(wav)]
            m = all_metrics(wav[: len(y)], y, mos=args.mos)
            rows.append({**where, "system": system, "condition": condition,
                         "mel_l1": float((out_mel - mel).abs().mean()), **extra, **m})

        score("copy synthesis", "", mel, track_rows(f0, voiced, 1, frames))
        for s in args.oracle:
            score(f"mel at 1/{s} frame rate (oracle)", "", pooled(mel, s), track_rows(f0, voiced, s, frames))
        for model in models:
            cfg = model.cfg
            rows_ = track_rows(f0, voiced, cfg.stride, frames)
            with torch.inference_mode():
                z = model.encoder(mel)
                rec = model.decoder(z, rows_, model.min_step)
                score(model.label, "unquantised", rec, rows_, step=model.min_step)
                for k in args.kbps:
                    zq, step, real = quantised(model, z[0].T.numpy(), f0, voiced, len(wav), k)
                    rec = model.decoder(torch.from_numpy(zq.T.copy())[None], rows_, step)
                    score(model.label, f"{k:g} kbps", rec, rows_, step=step, real_kbps=real)
        print(f"{path.name}: {time.time() - t0:.0f} s", flush=True)

    cols = ["real_kbps", "step", "mel_l1", "pesq", "stoi"] + (["dnsmos", "distillmos"] if args.mos else [])
    fmt = {"real_kbps": "{:.3f}", "step": "{:.2f}", "mel_l1": "{:.3f}", "pesq": "{:.2f}", "stoi": "{:.3f}",
           "dnsmos": "{:.2f}", "distillmos": "{:.2f}"}
    systems = list(dict.fromkeys((r["system"], r["condition"]) for r in rows))
    print(f"\n{len(files)} files, first {args.seconds:g} s, rendered by {args.bundle} direct_vocoder\n")
    print("| model | condition | " + " | ".join(cols) + " |\n|---|---|" + "---|" * len(cols))
    for system, condition in systems:
        sel = [r for r in rows if (r["system"], r["condition"]) == (system, condition)]
        cells = []
        for c in cols:
            v = [r[c] for r in sel if c in r]
            cells.append(fmt[c].format(float(np.nanmean(v))) if v else "")
        print(f"| {system} | {condition} | " + " | ".join(cells) + " |")
    groups = sorted({r["group"] for r in rows})
    print("\nSTOI by speaker group\n\n| model | condition | " + " | ".join(groups) + " |\n|---|---|"
          + "---|" * len(groups))
    for system, condition in systems:
        sel = [r for r in rows if (r["system"], r["condition"]) == (system, condition)]
        print(f"| {system} | {condition} | " + " | ".join(
            f"{np.nanmean([r['stoi'] for r in sel if r['group'] == g]):.3f}" for g in groups) + " |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
