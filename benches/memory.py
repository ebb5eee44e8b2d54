"""Peak memory (RSS) of encoding and decoding long recordings, the CLI's way (file in, file out).

    python benches/memory.py                      # 1, 5 and 10 minutes at 3 kbps
    python benches/memory.py --minutes 1 30 --kbps 0.6

Each measurement runs in its own process (``codec.files.encode_file`` / ``decode_file``, one torch
thread) and reports its own peak resident set size (``resource.getrusage(RUSAGE_SELF).ru_maxrss``),
import and model loading included; the "baseline" row encodes and decodes 1 s, so the rows below it
show what the length adds. The input is the shipped test clips (``tests/data``) tiled to length, a
16 kHz 16-bit WAV.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

DATA = Path(__file__).parents[1] / "tests" / "data"
CHILD = """
import json, resource, sys, time
import torch
torch.set_num_threads(1)
from codec import files
what, src, dst, kbps = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
start = time.perf_counter()
if what == "encode":
    files.encode_file(src, dst, kbps=kbps)
else:
    files.decode_file(src, dst)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: kB
print(json.dumps({"peak_mib": peak / 2**20, "seconds": time.perf_counter() - start}))
"""


def speech(seconds: float) -> np.ndarray:
    """The test clips (16 kHz ones, mono) concatenated and tiled to ``seconds`` → float32 (samples,)."""
    clips = []
    for path in sorted(DATA.rglob("*.flac")):
        wav, rate = sf.read(path, dtype="float32", always_2d=True)
        if rate == 16000:
            clips.append(wav.mean(axis=1))
    tape = np.concatenate(clips)
    n = int(seconds * 16000)
    return np.tile(tape, n // len(tape) + 1)[:n]


def measure(what: str, src: Path, dst: Path, kbps: float) -> dict:
    """One encode or decode in a fresh process → {"peak_mib", "seconds"}."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", CHILD, what, str(src), str(dst), str(kbps)], env=env,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, nargs="+", default=[1, 5, 10], help="lengths to measure (min)")
    p.add_argument("--kbps", type=float, default=3.0)
    p.add_argument("--json", type=Path, help="also write the rows here")
    args = p.parse_args(argv)
    rows = []
    print("| length | encode peak (MiB) | encode (s) | decode peak (MiB) | decode (s) |\n|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for minutes in [1 / 60] + list(args.minutes):
            wav, ldc, out = (Path(tmp) / f"{minutes:g}.{s}" for s in ("wav", "ldc", "out.wav"))
            sf.write(wav, speech(minutes * 60), 16000, subtype="PCM_16")
            enc, dec = measure("encode", wav, ldc, args.kbps), measure("decode", ldc, out, args.kbps)
            label = "baseline (1 s)" if minutes < 1 / 30 else f"{minutes:g} min"
            rows.append({"minutes": minutes, "encode": enc, "decode": dec})
            print(f"| {label} | {enc['peak_mib']:.0f} | {enc['seconds']:.1f} | {dec['peak_mib']:.0f} | "
                  f"{dec['seconds']:.1f} |", flush=True)
            for f in (wav, ldc, out):
                f.unlink(missing_ok=True)
    if args.json:
        args.json.write_text(json.dumps({"kbps": args.kbps, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
