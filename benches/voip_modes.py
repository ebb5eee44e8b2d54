"""Which streaming mode serves a rate best: each rate coded with each mode forced (no loss), WB-PESQ / STOI.

    python benches/voip_modes.py 1.2:20 1.2:21 2:20 2:21 2.5:21 2.5:22     # KBPS:MODE pairs, dev speakers
    python benches/voip_modes.py --per-speaker 2 3:18 3:22

How the streaming ladder (``bitstream.modes.VOIP_LADDER`` and the modes' rate ranges) is decided: the mode
that measures best on the held-out dev speakers at a rate serves it. A mode is forced whatever its rate range
says, in its own packet duration; one thread.
"""
import argparse

import numpy as np
import torch

import codec
from bitstream.modes import VOIP_MODES, mode_by_id
from codec.evaluate import DEV_SPLIT, read, select_files
from codec.metrics import all_metrics


def forced(wav: np.ndarray, kbps: float, mode_id: int) -> np.ndarray:
    """``wav`` streamed at ``kbps`` in mode ``mode_id`` and decoded (16 kHz float32, ``len(wav)`` samples)."""
    mode = mode_by_id(mode_id)
    if mode not in VOIP_MODES:
        raise SystemExit(f"mode {mode_id} is not a streaming mode")
    enc = codec.StreamEncoder(kbps)  # then its mode swapped for the forced one, with that mode's packet budget
    enc.mode, enc.budget, enc._step_index = mode, kbps * mode.packet_ms / 8, mode.typical_g
    y = codec.decode_packets(enc.push(wav) + enc.flush())[: len(wav)]
    return np.pad(y, (0, len(wav) - len(y)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("pairs", nargs="+", metavar="KBPS:MODE")
    ap.add_argument("--per-speaker", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(1)
    wavs = [read(f) for f in select_files(DEV_SPLIT, per_speaker=args.per_speaker)]
    print(f"{len(wavs)} files from {DEV_SPLIT}\n\n| kbps | mode | WB-PESQ | STOI |\n|---|---|---|---|")
    for pair in args.pairs:
        kbps, mode_id = float(pair.split(":")[0]), int(pair.split(":")[1])
        m = [all_metrics(w, forced(w, kbps, mode_id)) for w in wavs]
        pesq, stoi = np.mean([x["pesq"] for x in m]), np.mean([x["stoi"] for x in m])
        print(f"| {kbps:g} | {mode_id} | {pesq:.2f} | {stoi:.3f} |", flush=True)


if __name__ == "__main__":
    main()
