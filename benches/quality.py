"""Quality bench: ldcodec at each rate against Codec2 and Opus, same files, one markdown table.

    python benches/quality.py ../shared/data/real/ljspeech --pattern 'LJ001-00(2[5-9]|3)' [--json out.json]

Real kbps is counted from the encoded bytes (ldcodec: whole .ldc file; Codec2: raw .c2 file;
Opus: Ogg file). Metrics are means over files after aligning each decode to its reference.
RTF = processing time / audio duration on one CPU thread (peers: whole CLI process).
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
import peers  # noqa: E402

import codec  # noqa: E402
from codec.audio import load, prepare  # noqa: E402
from codec.metrics import all_metrics  # noqa: E402

KBPS = (0.3, 0.6, 1.2, 1.5, 3.0, 6.0)
COLUMNS = ("kbps", "pesq", "stoi", "mel", "rtf_enc", "rtf_dec")


def clips(folder: str, pattern: str | None) -> list[tuple[str, np.ndarray]]:
    files = sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in {".wav", ".flac"})
    files = [p for p in files if not pattern or re.search(pattern, p.name)]
    return [(p.name, prepare(*load(p))[0]) for p in files]


def run_system(name: str, fn, data) -> dict:
    """fn(wav) → (decoded 16 kHz, n_bytes, enc_seconds, dec_seconds); returns mean metrics."""
    rows = []
    for _, wav in data:
        out, n_bytes, t_enc, t_dec = fn(wav)
        dur = len(wav) / 16000
        rows.append({"kbps": n_bytes * 8 / dur / 1000, **all_metrics(wav, out),
                     "rtf_enc": t_enc / dur, "rtf_dec": t_dec / dur})
    mean = {k: float(np.nanmean([r[k] for r in rows])) for k in rows[0]}
    print(f"  {name}: " + ", ".join(f"{k} {mean[k]:.3f}" for k in COLUMNS), file=sys.stderr, flush=True)
    return {"system": name, **mean}


def ldcodec_system(kbps: float, decoder: str | None):
    def fn(wav):
        t0 = time.perf_counter()
        data = codec.encode(wav, 16000, kbps=kbps)
        t1 = time.perf_counter()
        out, _ = codec.decode(data, decoder=decoder)
        return out, len(data), t1 - t0, time.perf_counter() - t1
    return fn


def peer_system(fn, arg):
    def run(wav):
        t0 = time.perf_counter()
        out, n_bytes = fn(wav, arg)
        return out, n_bytes, time.perf_counter() - t0, 0.0  # one process does both; time booked to encode
    return run


def table(results: list[dict]) -> str:
    lines = ["| system | real kbps | WB-PESQ | STOI | mel dist | RTF enc | RTF dec |", "|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['system']} | {r['kbps']:.2f} | {r['pesq']:.2f} | {r['stoi']:.3f} | {r['mel']:.3f} "
                     f"| {r['rtf_enc']:.3f} | {r['rtf_dec']:.3f} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder")
    ap.add_argument("--pattern", help="regex on file names to select")
    ap.add_argument("--kbps", type=float, nargs="+", default=list(KBPS))
    ap.add_argument("--decoder", action="append", help="ldcodec decoder(s) to bench (default: each mode's)")
    ap.add_argument("--no-peers", action="store_true")
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)

    data = clips(args.folder, args.pattern)
    seconds = sum(len(w) for _, w in data) / 16000
    print(f"{len(data)} files, {seconds:.1f} s", file=sys.stderr)
    results = []
    for kbps in args.kbps:
        for dec in args.decoder or [None]:
            results.append(run_system(f"ldcodec {kbps:g} kbps" + (f" {dec}" if dec else ""),
                                      ldcodec_system(kbps, dec), data))
    have = peers.available()
    notes = []
    if args.no_peers:
        notes.append("peers skipped (--no-peers)")
    else:
        for tool, ok in have.items():
            if not ok:
                notes.append(f"{tool} CLI not found: skipped")
        if have["codec2"]:
            results += [run_system(f"Codec2 {m}", peer_system(peers.codec2, m), data) for m in peers.CODEC2_MODES]
        if have["opus"]:
            results += [run_system(f"Opus {k} kbps", peer_system(peers.opus, k), data) for k in peers.OPUS_KBPS]
    print(f"\n{len(data)} files, {seconds:.1f} s of speech from {args.folder}"
          + (f" (files matching {args.pattern!r})" if args.pattern else "") + "\n")
    print(table(results))
    for n in notes:
        print(f"\nNote: {n}")
    if args.json:
        Path(args.json).write_text(json.dumps({"files": [n for n, _ in data], "results": results}, indent=1))


if __name__ == "__main__":
    main()
