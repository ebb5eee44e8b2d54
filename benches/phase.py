"""Magnitude or phase: which one costs the vocoder its quality? Copy synthesis on the dev speakers with
each magnitude (the clip's own STFT, or what ``direct``'s vocoder predicts from its log-mel and pitch)
put back with each phase (the clip's own, or Griffin-Lim from the F0-driven excitation after N
iterations, or the vocoder head's own).

    python benches/phase.py                            # ../shared/data/real/dev, 1 file per speaker
    python benches/phase.py --iterations 16 32 64

Means over files of WB-PESQ, STOI and DNSMOS P.835 (overall / signal / background; needs
``pip install -e '.[eval]'``), one CPU thread. STFT: the vocoder's (1024-point Hann, hop 256).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from codec.bundle import resolve
from codec.decoders import vocoder_for
from codec.evaluate import DEV_SPLIT, read, select_files
from codec.floors import features
from codec.inversion import griffin_lim
from codec.metrics import all_metrics


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", nargs="?", default=str(DEV_SPLIT), help="audio folder (default: the dev split)")
    ap.add_argument("--per-speaker", type=int, default=1, help="files per speaker folder (0: all)")
    ap.add_argument("--iterations", type=int, nargs="+", default=[0, 16, 100], help="Griffin-Lim iterations")
    args = ap.parse_args(argv)
    from speechmos import dnsmos

    torch.set_num_threads(1)
    bundle = resolve()
    voc = vocoder_for(bundle).eval()
    n_fft, hop, window = voc.cfg.n_fft, voc.cfg.hop, voc.head.window
    rows: dict[tuple[str, str], list] = {}
    for path in select_files(Path(args.folder), per_speaker=args.per_speaker or None):
        wav = read(path)
        feats = features(wav, bundle.mel_config)
        with torch.inference_mode():
            spec = voc.spectrum(feats)
            frames = spec.shape[-1]
            x = torch.nn.functional.pad(torch.from_numpy(wav)[None], (0, max(0, (frames - 1) * hop - len(wav))))
            true = torch.stft(x, n_fft, hop, window=window, center=True, return_complex=True)[..., :frames]
            start = voc.initial_phase(feats, spec)
            mags = {"reference": true.abs(), "vocoder": spec.abs()}
            phases = {"reference": (true / true.abs().clamp(min=1e-16), 0),  # (starting phase, iterations)
                      **{f"excitation + {n} Griffin-Lim iterations": (start, n) for n in args.iterations},
                      "sinusoidal (per frame, causal)": (voc.sinusoidal_phase(feats, spec.abs())[0], 0),
                      "the head's own": (spec / spec.abs().clamp(min=1e-16), 0)}
            for m_name, mag in mags.items():
                for p_name, (phase, iterations) in phases.items():
                    y = griffin_lim(mag, phase, iterations, n_fft, hop, window)[0, : len(wav)].numpy()
                    ref = wav[: len(y)]
                    m, mos = all_metrics(ref, y), dnsmos.run(np.clip(y, -1, 1), 16000)
                    rows.setdefault((m_name, p_name), []).append(
                        (m["pesq"], m["stoi"], mos["ovrl_mos"], mos["sig_mos"], mos["bak_mos"]))
    print("| magnitude | phase | WB-PESQ | STOI | DNSMOS OVRL / SIG / BAK |\n|---|---|---|---|---|")
    for (m_name, p_name), values in rows.items():
        pesq, stoi, ovrl, sig, bak = np.mean(values, axis=0)
        print(f"| {m_name} | {p_name} | {pesq:.2f} | {stoi:.3f} | {ovrl:.2f} / {sig:.2f} / {bak:.2f} |")


if __name__ == "__main__":
    main()
