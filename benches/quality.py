"""Quality bench: ldcodec at each rate against Codec2 and Opus, same files, one markdown table.

    python benches/quality.py ../shared/data/real/ljspeech --pattern 'LJ001-00(2[5-9]|3)' [--json out.json]
    python benches/quality.py ... --kbps 0.3 0.6 --representation mel --representation latent \
        --decoder direct --decoder lat2lat:4          # both representations, their decoders

Real kbps is counted from the encoded bytes (ldcodec: the whole .ldc file, header included;
Codec2: the raw .c2 file; Opus: the Ogg file). Metrics are means over files after aligning each
decode to its reference (codec.evaluate); "pause dB" is the energy a decoder adds where the
reference pauses (frames 40 dB under its loudest), DNSMOS (P.835 overall, no reference) is
measured when ``speechmos`` is installed. RTF = processing seconds per second of audio on one CPU
thread; for the peers it is the whole encode+decode CLI run, booked as encode.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import re
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
import peers  # noqa: E402

from codec.evaluate import evaluate, jsonable, read  # noqa: E402
from codec.metrics import all_metrics  # noqa: E402

KBPS = (0.3, 0.6, 1.2, 1.5, 3.0, 6.0)


def peer_row(name: str, fn, arg, wavs: list[np.ndarray], mos: bool) -> dict:
    rows = []
    for wav in wavs:
        seconds = len(wav) / 16000
        t0 = time.perf_counter()
        out, n_bytes = fn(wav, arg)
        rtf = (time.perf_counter() - t0) / seconds  # before the metrics, which are not the codec's time
        rows.append({"real_kbps": n_bytes * 8 / seconds / 1000, **all_metrics(wav, out, mos),
                     "rtf_enc": rtf, "rtf_dec": 0.0})
    return {"system": name, **{m: float(np.nanmean([r[m] for r in rows])) for m in rows[0] if m != "file"}}


def table(results: list[dict]) -> str:
    mos = all("dnsmos" in r for r in results)
    lines = ["| system | real kbps | WB-PESQ | STOI | mel dist | pause dB |" + (" DNSMOS |" if mos else "")
             + " RTF enc | RTF dec |", "|---|---|---|---|---|---|" + ("---|" if mos else "") + "---|---|"]
    for r in results:
        lines.append(f"| {r['system']} | {r['real_kbps']:.2f} | {r['pesq']:.2f} | {r['stoi']:.3f} | {r['mel']:.3f} "
                     f"| {r['pause_db']:+.1f} |" + (f" {r['dnsmos']:.2f} |" if mos else "")
                     + f" {r['rtf_enc']:.3f} | {r['rtf_dec']:.3f} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder")
    ap.add_argument("--pattern", help="regex on file names to select")
    ap.add_argument("--kbps", type=float, nargs="+", default=list(KBPS))
    ap.add_argument("--decoder", action="append",
                    help="ldcodec decoder spec(s) NAME or NAME:STEPS, e.g. mel2mel:8 (default: each mode's)")
    ap.add_argument("--representation", action="append", choices=("mel", "latent"),
                    help="encode with this representation where it covers the rate (repeatable; default: the ladder's)")
    ap.add_argument("--no-peers", action="store_true")
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)

    files = sorted(p for p in Path(args.folder).rglob("*") if p.suffix.lower() in {".wav", ".flac"}
                   and (not args.pattern or re.search(args.pattern, p.name)))
    wavs = [read(p) for p in files]
    seconds = sum(len(w) for w in wavs) / 16000
    print(f"{len(files)} files, {seconds:.1f} s", file=sys.stderr)
    mos = importlib.util.find_spec("speechmos") is not None
    results = []
    for r in evaluate(files, args.kbps, args.decoder or [None], mos=mos, representations=args.representation or [None]):
        r.pop("rows")
        results.append({"system": f"ldcodec {r['kbps']:g} kbps {r['representation']} {r['decoder']}", **r})
    notes = [] if mos else ["DNSMOS skipped: pip install 'ldcodec[eval]' (speechmos, onnxruntime, librosa)"]
    have = peers.available()
    if args.no_peers:
        notes.append("peers skipped (--no-peers)")
    else:
        notes += [f"{tool} CLI not found: skipped" for tool, ok in have.items() if not ok]
        if have["codec2"]:
            results += [peer_row(f"Codec2 {m}", peers.codec2, m, wavs, mos) for m in peers.CODEC2_MODES]
        if have["opus"]:
            results += [peer_row(f"Opus {k} kbps", peers.opus, k, wavs, mos) for k in peers.OPUS_KBPS]
    print(f"\n{len(files)} files, {seconds:.1f} s of speech from {args.folder}"
          + (f" (files matching {args.pattern!r})" if args.pattern else "") + "\n")
    print(table(results))
    for n in notes:
        print(f"\nNote: {n}")
    if args.json:
        Path(args.json).write_text(json.dumps(jsonable({"files": [str(f) for f in files], "results": results}), indent=1))


if __name__ == "__main__":
    main()
