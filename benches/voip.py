"""VoIP bench: quality under packet loss (ldcodec streaming vs Opus with its PLC), per-packet
compute on one CPU thread, and memory over a long call.

    python benches/voip.py [--per-speaker 1] [--packet-ms 32 48]   # the held-out dev speakers
    python benches/voip.py --kbps 1.2 2 3 --packet-ms 64 --losses 0 # low rates, no loss rows
    python benches/voip.py ../shared/data/real/ljspeech --pattern 'LJ001-00(2[5-9]|3)'
    python benches/voip.py --memory-minutes 60 --no-quality   # resident memory over a 1-hour stream

Loss is simulated on the packet sequence with a fixed seed: random (each packet lost with
probability p) and bursty (a two-state Gilbert model, mean burst 3 packets, same average loss).
Opus runs at 6 kbps (its lowest useful rate), 20 ms frames, with ``opusdec --packet-loss``
(random loss only; opusdec cannot make bursts) and its built-in concealment. Floor and peer without
loss: the streaming vocoder on unquantised features (copy synthesis) and Codec2 3200 (and 1200 and 700C
when a rate below 3 kbps is measured). A rate a packet length cannot carry (below 3 kbps in 32 or
48 ms packets) is skipped.
"""
from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

import codec
from codec import peers
from codec.bundle import resolve
from codec.evaluate import DEV_SPLIT, read, select_files
from codec.floors import copy_synthesis
from codec.metrics import all_metrics
from codec.stream import stream_mel_config, stream_vocoder

LOSSES = (0.0, 0.05, 0.10, 0.20)


def lose(n: int, p: float, burst: bool, rng: np.random.Generator) -> np.ndarray:
    """Boolean mask of lost packets: independent, or Gilbert bursts of mean length 3."""
    if not burst:
        return rng.random(n) < p
    p_exit = 1 / 3
    p_enter = p * p_exit / max(1e-9, 1 - p)
    lost, state = np.zeros(n, bool), False
    for i in range(n):
        state = rng.random() < (1 - p_exit if state else p_enter)
        lost[i] = state
    return lost


def stream_encode(wav: np.ndarray, kbps: float, packet_ms: int, times: list | None = None) -> list[bytes]:
    """Encode in 20 ms pushes, as a sound card delivers audio; record per-push seconds in ``times``."""
    enc = codec.StreamEncoder(kbps, packet_ms=packet_ms)
    packets = []
    for i in range(0, len(wav), 320):
        t0 = time.perf_counter()
        packets += enc.push(wav[i:i + 320])
        if times is not None:
            times.append(time.perf_counter() - t0)
    return packets + enc.flush()


def stream_decode(packets, times: list | None = None) -> np.ndarray:
    dec = codec.StreamDecoder()
    out = []
    for p in packets:
        t0 = time.perf_counter()
        out.append(dec.push(p))
        if times is not None:
            times.append(time.perf_counter() - t0)
    return np.concatenate(out + [dec.flush()])


def opus_lossy(wav: np.ndarray, loss: float) -> np.ndarray:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        sf.write(tmp / "in.wav", wav, 16000, subtype="PCM_16")
        subprocess.run(["opusenc", "--quiet", "--bitrate", "6", "--speech", "--framesize", "20", tmp / "in.wav",
                        tmp / "enc.opus"], check=True, capture_output=True)
        subprocess.run(["opusdec", "--quiet", "--rate", "16000", "--packet-loss", str(round(loss * 100)),
                        tmp / "enc.opus", tmp / "out.wav"], check=True, capture_output=True)
        return sf.read(tmp / "out.wav", dtype="float32")[0]


def mean_metrics(wavs, outs) -> dict:
    rows = [all_metrics(w, o[: len(w)]) for w, o in zip(wavs, outs)]
    return {k: float(np.nanmean([r[k] for r in rows])) for k in ("pesq", "stoi")}


def quality(wavs: list[np.ndarray], configs: list[tuple[float, int]], losses=LOSSES) -> list[str]:
    lines = ["| system | loss | WB-PESQ | STOI | STOI drop |", "|---|---|---|---|---|"]
    b = resolve()
    m = mean_metrics(wavs, [copy_synthesis(w, stream_vocoder(b), stream_mel_config(b)) for w in wavs])
    lines.append(f"| copy synthesis (streaming vocoder, unquantised features) | none | {m['pesq']:.2f} "
                 f"| {m['stoi']:.3f} | |")
    if peers.available()["codec2"]:
        for rate in ("3200",) + (("1200", "700C") if min(k for k, _ in configs) < 3 else ()):
            m = mean_metrics(wavs, [peers.codec2(w, rate)[0] for w in wavs])
            lines.append(f"| Codec2 {rate} (no concealment) | none | {m['pesq']:.2f} | {m['stoi']:.3f} | |")
    for kbps, packet_ms in configs:
        coded = [stream_encode(w, kbps, packet_ms) for w in wavs]
        clean = mean_metrics(wavs, [stream_decode(c) for c in coded])
        for burst in (False, True):
            for p in [x for x in losses if x or not burst]:
                rng = np.random.default_rng(0)
                outs = []
                for c in coded:
                    mask = lose(len(c), p, burst, rng)
                    outs.append(stream_decode([None if m else x for x, m in zip(c, mask)]))
                m = mean_metrics(wavs, outs)
                kind = f"{p:.0%} {'bursts' if burst else 'random'}" if p else "none"
                lines.append(f"| ldcodec stream {kbps:g} kbps, {packet_ms} ms | {kind} | {m['pesq']:.2f} "
                             f"| {m['stoi']:.3f} | {clean['stoi'] - m['stoi']:+.3f} |")
    if peers.available()["opus"]:
        clean = None
        for p in losses:
            m = mean_metrics(wavs, [opus_lossy(w, p) for w in wavs])
            clean = clean or m
            lines.append(f"| Opus 6 kbps, 20 ms, PLC | {f'{p:.0%} random' if p else 'none'} | {m['pesq']:.2f} "
                         f"| {m['stoi']:.3f} | {clean['stoi'] - m['stoi']:+.3f} |")
    else:
        lines.append("\nNote: opusenc/opusdec not found: Opus skipped")
    return lines


def timing(wavs: list[np.ndarray], configs: list[tuple[float, int]]) -> list[str]:
    lines = ["| kbps | packet | encode per 20 ms push: mean / p99 | decode per packet: mean / p99 | RTF enc + dec "
             "| latency |", "|---|---|---|---|---|---|"]
    for kbps, packet_ms in configs:
        enc_t, dec_t, seconds = [], [], 0.0
        for w in wavs:
            packets = stream_encode(w, kbps, packet_ms, enc_t)
            stream_decode(packets, dec_t)
            seconds += len(w) / 16000
        e, d = np.array(enc_t) * 1000, np.array(dec_t) * 1000
        lines.append(f"| {kbps:g} | {packet_ms} ms | {e.mean():.2f} / {np.percentile(e, 99):.2f} ms "
                     f"| {d.mean():.2f} / {np.percentile(d, 99):.2f} ms | {(e.sum() + d.sum()) / 1000 / seconds:.3f} "
                     f"| {codec.StreamEncoder(kbps, packet_ms=packet_ms).latency_ms:.0f} ms |")
    return lines


def memory(minutes: int, wav: np.ndarray) -> list[str]:
    """Resident set size while a ``minutes``-long call (the clip looped) streams through both ends."""
    enc, dec = codec.StreamEncoder(3.0), codec.StreamDecoder()
    rss, t0 = [], time.time()
    for minute in range(minutes):
        for _ in range(0, 60 * 16000, len(wav)):
            for i in range(0, len(wav), 320):
                for p in enc.push(wav[i:i + 320]):
                    dec.push(p)
        rss.append(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        print(f"minute {minute + 1}: peak RSS {rss[-1]:.0f} MiB ({time.time() - t0:.0f} s)", file=sys.stderr)
    return [f"{minutes}-minute call: peak RSS after minute 1 {rss[0]:.0f} MiB, "
            f"after minute {minutes} {rss[-1]:.0f} MiB (growth {rss[-1] - rss[0]:+.0f} MiB)"]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", nargs="?", default=str(DEV_SPLIT),
                    help="speech for the quality and timing tables (default: the dev split)")
    ap.add_argument("--pattern", help="regex on file names to select")
    ap.add_argument("--per-speaker", type=int, default=1,
                    help="files per speaker folder (0: all; ignored with --pattern)")
    ap.add_argument("--no-quality", action="store_true", help="only the memory run (--memory-minutes)")
    ap.add_argument("--kbps", type=float, nargs="+", default=[3.0, 6.0])
    ap.add_argument("--packet-ms", type=int, nargs="+", default=[32], choices=codec.modes.PACKET_MS,
                    help="packet durations to measure (each with every --kbps)")
    ap.add_argument("--losses", type=float, nargs="+", default=list(LOSSES),
                    help="packet loss rates to simulate, random and bursty (0: none; default 0 0.05 0.1 0.2)")
    ap.add_argument("--memory-minutes", type=int, default=0, help="also run a call this long and report memory")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    clip = read(Path(__file__).parents[1] / "tests" / "data" / "LJ001-0028.flac")
    if not args.no_quality:
        files = select_files(Path(args.folder), args.pattern, args.per_speaker or None)
        wavs = [read(p) for p in files]
        print(f"{len(files)} files, {sum(map(len, wavs)) / 16000:.1f} s from {args.folder}"
              + (f" (matching {args.pattern!r})" if args.pattern else
                 f", {args.per_speaker} per speaker folder" if args.per_speaker else "") + "\n")
        configs = [(k, ms) for ms in args.packet_ms for k in args.kbps if k >= codec.modes.voip_kbps(ms)[0]]
        print("\n".join(quality(wavs, configs, args.losses)) + "\n")
        print("\n".join(timing(wavs, configs)) + "\n")
    if args.memory_minutes:
        print("\n".join(memory(args.memory_minutes, clip)))


if __name__ == "__main__":
    main()
