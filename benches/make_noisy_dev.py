"""Build the noisy dev set (codec.noisy_dev) from the clean dev split, deterministically.

    python benches/make_noisy_dev.py                                   # → ~/ldcodec-data/noisy_dev
    python benches/make_noisy_dev.py --dev ../shared/data/real/dev --noise ../shared/data/noise \\
        --out ~/ldcodec-data/noisy_dev --seed 0
    python benches/quality.py --noisy ~/ldcodec-data/noisy_dev --per-speaker 1 --kbps 3

Every clip at 0/5/10/20 dB SNR (noise kind drawn per condition: real recordings of the noise folder's
dev split, babble of other dev speakers, pink, non-stationary; ~30 % in a room). The same seed and
inputs give the same bytes. The output stays outside the repository (corpus audio is not committed);
keep its README.md and NOISE_LICENSES.md (attribution) with it.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from codec import noisy_dev
from codec.evaluate import DEV_SPLIT

NOISE = DEV_SPLIT.parents[1] / "noise"  # ../shared/data/noise


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dev", default=str(DEV_SPLIT), help="clean dev folder (default: %(default)s)")
    ap.add_argument("--noise", default=str(NOISE) if NOISE.is_dir() else None,
                    help="noise folder, its dev split is used (default: %(default)s; none: synthetic only)")
    ap.add_argument("--out", default=str(Path.home() / "ldcodec-data" / "noisy_dev"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--snr", type=float, nargs="+", default=list(noisy_dev.SNRS), help="SNRs, dB")
    args = ap.parse_args(argv)
    t0 = time.time()
    rows = noisy_dev.build(args.dev, args.out, args.noise, args.seed, tuple(args.snr),
                           progress=lambda clip: print(".", end="", file=sys.stderr, flush=True))
    print(f"\n{len(rows)} noisy files in {args.out} ({time.time() - t0:.0f} s); manifest {args.out}/index.tsv")


if __name__ == "__main__":
    main()
