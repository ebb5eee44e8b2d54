"""Quality bench: ldcodec at each rate beside its floors and peers, on the held-out dev speakers.

    python benches/quality.py                        # ../shared/data/real/dev, 3 files per speaker
    python benches/quality.py --per-speaker 0 --json dev.json          # every dev file
    python benches/quality.py ../shared/data/real/ljspeech --pattern 'LJ001-00(2[5-9]|3)'
    python benches/quality.py --kbps 0.3 0.6 --representation mel --representation latent \\
        --decoder direct --decoder lat2lat:4          # both representations, their decoders
    python benches/quality.py --kbps 0.6 3 6 --html report/      # + a listening page (report/index.html)
    python benches/quality.py --noisy ~/ldcodec-data/noisy_dev --per-speaker 1 --kbps 3   # the noisy dev set

One run, the same audio for every row: the floors (the uncoded input, whose no-reference MOS is the
ceiling of those columns; copy synthesis through each vocoder a decoder renders with; Griffin-Lim
on the same log-mel), ldcodec per rate, representation and decoder, and
Codec2 and Opus (skipped with a note when their CLI tools are missing). Real kbps is counted from
the encoded bytes (ldcodec: the whole .ldc file, header included; Codec2: the raw .c2 file; Opus:
the Ogg file). Metrics are means over files after aligning each decode to its reference
(codec.evaluate); "pause dB" is the energy a decoder adds where the reference pauses; "harmonics dB"
is how far the harmonics stand out of the spectrum at 1-4 kHz compared with the reference (0: as in
the reference; negative: smeared into noise; codec.metrics.harmonic_contrast_db); DNSMOS
(P.835 overall) and DistillMOS are no-reference neural MOS predictors, measured when installed
(``pip install -e '.[eval]'``). A second table splits the same numbers by speaker group, and
``--json`` keeps every file's row with its speaker; ``--html DIR`` writes a listening page
(codec.report) that plays every decode beside its numbers. RTF = processing seconds per second of audio
on one CPU thread; for the peers it is the whole encode+decode CLI run, booked as encode.

``--noisy DIR`` scores a noisy dev set (``benches/make_noisy_dev.py``, ``codec.noisy_dev``) instead: the
conditions of the first ``--per-speaker`` clips of each speaker; WB-PESQ, STOI and the other reference
metrics against the noisy input (what ``direct`` must stay faithful to), "STOI clean" against the clean
clip (what a restoring decoder should recover), neural MOS of each output; the "input (uncoded)" row
(always there) is the noisy input itself. Tables per SNR and per noise kind follow the overall one.
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

import codec
from codec import noisy_dev
from codec.evaluate import (DEV_SPLIT, System, codec_systems, evaluate, floor_systems, group_table, jsonable,
                            peer_systems, regroup, select_files, table)
from codec.metrics import mos_available
from codec.report import ListeningPage, check

KBPS = (0.3, 0.6, 1.2, 1.5, 3.0, 6.0)


def stream_system(kbps: float) -> System:
    """A row for the streaming path at ``kbps``: the whole clip pushed through StreamEncoder, every packet
    (the default length: 32 ms from 3 kbps, 64 ms below; none lost) through StreamDecoder; bytes = the
    packets' (no file header)."""
    def run(wav):
        enc = codec.StreamEncoder(kbps)
        packets = enc.push(wav) + enc.flush()
        dec = codec.StreamDecoder()
        out = np.concatenate([dec.push(p) for p in packets] + [dec.flush()])[: len(wav)]
        return out, sum(map(len, packets))

    return System(f"ldcodec streamed {kbps:g} kbps", "peer", kbps, run=run)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", nargs="?", default=str(DEV_SPLIT), help="audio folder (default: the dev split)")
    ap.add_argument("--pattern", help="regex on file names to select")
    ap.add_argument("--per-speaker", type=int, default=3, help="files per speaker folder (0: all)")
    ap.add_argument("--kbps", type=float, nargs="+", default=list(KBPS))
    ap.add_argument("--decoder", action="append",
                    help="ldcodec decoder spec(s) NAME or NAME:STEPS, e.g. mel2mel:8 (default: each mode's)")
    ap.add_argument("--representation", action="append", choices=("mel", "latent"),
                    help="encode with this representation where it covers the rate (repeatable; default: the ladder's)")
    ap.add_argument("--stream", type=float, nargs="+", default=[], metavar="KBPS",
                    help="also the streaming path (StreamEncoder → StreamDecoder, default packets, no loss) at "
                         "these rates")
    ap.add_argument("--no-peers", action="store_true")
    ap.add_argument("--no-floors", action="store_true")
    ap.add_argument("--no-mos", action="store_true", help="skip the neural MOS predictors (slow on CPU)")
    ap.add_argument("--json")
    ap.add_argument("--html", metavar="DIR", help="write a listening page (index.html, clips, pictures) here")
    ap.add_argument("--noisy", metavar="DIR", help="score this noisy dev set (benches/make_noisy_dev.py) instead of "
                                                  "FOLDER: STOI against the noisy input and against the clean clip")
    ap.add_argument("--html-seconds", type=float, default=10.0, metavar="S",
                    help="seconds of each clip the listening page plays and draws (default 10)")
    args = ap.parse_args(argv)
    if args.html:
        try:
            check(args.html, args.html_seconds)
        except ValueError as exc:
            ap.error(str(exc))
    torch.set_num_threads(1)

    if args.noisy:
        if args.html or args.pattern:
            ap.error("--html and --pattern are for a clean folder, not --noisy")
        return noisy_main(args)
    files = select_files(Path(args.folder), args.pattern, args.per_speaker or None)
    seconds = sum(sf.info(str(p)).duration for p in files)
    print(f"{len(files)} files, {seconds:.1f} s", file=sys.stderr)
    mos = [] if args.no_mos else mos_available()
    notes = [] if mos or args.no_mos else ["neural MOS skipped: pip install -e '.[eval]' (speechmos, distillmos)"]
    peers, missing = ([], ["peers skipped (--no-peers)"]) if args.no_peers else peer_systems()
    systems = ([] if args.no_floors else floor_systems()) \
        + codec_systems(args.kbps, args.decoder or [None], args.representation or [None]) \
        + [stream_system(k) for k in args.stream] + peers
    page = ListeningPage(args.html, files, args.html_seconds) if args.html else None
    results = evaluate(files, systems=systems, mos=mos, on_decode=page.add if page else None,
                       progress=lambda: print(".", end="", file=sys.stderr, flush=True))
    print(f"\n\n{len(files)} files, {seconds:.1f} s of speech from {args.folder}"
          + (f" (files matching {args.pattern!r})" if args.pattern else
             f" ({args.per_speaker} per speaker)" if args.per_speaker else "") + "\n")
    print(table(results))
    print("\nPer speaker group:\n")
    print(group_table(results))
    for n in notes + missing:
        print(f"\nNote: {n}")
    if page:
        command = shlex.join(["python", "benches/quality.py", *(sys.argv[1:] if argv is None else argv)])
        print(f"\nListening page: {page.write(results, command, notes + missing)}")
    if args.json:
        doc = {"files": [str(f) for f in files], "results": results}
        Path(args.json).write_text(json.dumps(jsonable(doc), indent=1))


def noisy_main(args: argparse.Namespace) -> None:
    """``--noisy DIR``: the same rows on a noisy dev set, scored against the noisy input and the clean clip."""
    chosen = noisy_dev.select(args.noisy, args.per_speaker or None)
    files = [r["path"] for r in chosen]
    by_path = {r["path"]: r for r in chosen}
    seconds = sum(sf.info(str(p)).duration for p in files)
    print(f"{len(files)} noisy files, {seconds:.1f} s", file=sys.stderr)
    mos = [] if args.no_mos else mos_available()
    peers, missing = ([], ["peers skipped (--no-peers)"]) if args.no_peers else peer_systems()
    floors = floor_systems()
    systems = (floors if not args.no_floors else floors[:1]) \
        + codec_systems(args.kbps, args.decoder or [None], args.representation or [None]) \
        + [stream_system(k) for k in args.stream] + peers
    results = evaluate(files, systems=systems, mos=mos, clean_of=lambda p: by_path[p]["clean"],
                       group_of=lambda p: (by_path[p]["speaker"], f"{float(by_path[p]['snr_db']):g} dB SNR"),
                       progress=lambda: print(".", end="", file=sys.stderr, flush=True))
    kinds = {str(r["path"]): r["noise"] + (" + room" if r["rir"] else "") for r in chosen}
    print(f"\n\n{len(files)} noisy files ({len({r['clean'] for r in chosen})} clean clips, "
          f"{args.per_speaker or 'all'} per speaker), {seconds:.1f} s, from {args.noisy}\n")
    print("STOI and WB-PESQ against the noisy input; STOI clean against the clean clip; MOS of the output.\n")
    print(table(results))
    print("\nPer SNR:\n")
    print(group_table(results))
    print("\nPer noise kind:\n")
    print(group_table(regroup(results, lambda row: kinds[row["file"]])))
    for n in missing:
        print(f"\nNote: {n}")
    if args.json:
        doc = {"noisy": str(args.noisy), "files": [str(f) for f in files], "results": results}
        Path(args.json).write_text(json.dumps(jsonable(doc), indent=1))


if __name__ == "__main__":
    main()
