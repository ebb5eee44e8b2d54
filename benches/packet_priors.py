"""Measure a streaming mode's coder priors (``bitstream.entropy.SCALED_PRIORS``) on training speech.

    python benches/packet_priors.py --mode 22 --g 135           # prints the entry to paste
    python benches/packet_priors.py --mode 22 --g 135 --files 48 ../shared/data/real/train/librispeech

A streaming packet holds 2–4 groups, too few for the adaptive coder to learn its tables, so each
coefficient starts from a measured state: ``intra`` for a packet's first group (coded from zero) and
``inter`` for the rest (differences): 16·mean|q| and 16·mean|Δq| at step index ``g`` (the mode's typical
step), through the streaming front end, in packets of the mode's length. The format then scales them to
each packet's step (SPEC §7). Changing a shipped mode's priors changes its bytes: new modes only.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from bitstream.modes import VOIP_MODES, mode_by_id
from bitstream.payload import mode_weights, quantize
from codec.bundle import resolve
from codec.evaluate import DEV_SPLIT, read, select_files
from codec.features import LogMel
from codec.mel_repr import mel_to_coefs
from codec.stream import stream_mel_config

TRAIN = DEV_SPLIT.parent / "train" / "librispeech"  # the shared data's training speech, beside its dev split


def packet_values(wav: np.ndarray, logmel: LogMel, mode, g: int) -> np.ndarray:
    """(samples,) 16 kHz → quantised values of whole packets (packets, groups per packet, K) int64."""
    with torch.inference_mode():
        coefs = mel_to_coefs(logmel(torch.from_numpy(wav)[None]), mode.n_coefs, mode.decimation)[0].T.numpy()
    q = quantize(coefs, mode_weights(mode), g)
    per = mode.groups_per_packet
    return q[: len(q) // per * per].reshape(-1, per, mode.n_coefs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", nargs="?", default=str(TRAIN), help="training speech (never the dev split)")
    ap.add_argument("--mode", type=int, required=True, help="a streaming mode id")
    ap.add_argument("--g", type=int, required=True, help="reference step index (the mode's typical step)")
    ap.add_argument("--files", type=int, default=48, help="clips to measure (one per speaker folder first)")
    args = ap.parse_args()
    mode = mode_by_id(args.mode)
    if mode not in VOIP_MODES:
        ap.error(f"mode {args.mode} is not a streaming mode")
    torch.set_num_threads(1)
    logmel = LogMel(stream_mel_config(resolve(None)))
    files = select_files(Path(args.folder), per_speaker=1)[: args.files]
    q = np.concatenate([packet_values(read(f), logmel, mode, args.g) for f in files])
    intra = np.round(16 * np.abs(q[:, 0]).mean(0)).astype(int)
    inter = np.round(16 * np.abs(np.diff(q, axis=1)).mean((0, 1))).astype(int)
    print(f"# mode {mode.id}: {len(files)} clips, {len(q)} packets of {mode.packet_ms:g} ms at g={args.g}")
    print(f"{mode.id}: ({args.g}, {tuple(intra.tolist())},\n     {tuple(inter.tolist())}),")


if __name__ == "__main__":
    main()
