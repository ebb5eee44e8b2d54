"""Could calls take their phase from Griffin-Lim within each packet? The streaming decoder's magnitude with
its own phase (the per-frame sinusoidal excitation) against real-time iterative spectrogram inversion
(RTISI, Zhu, Beauregard & Wyse 2007) with the packet as its only look-ahead, and against Griffin-Lim
over the whole call (the bound no causal decoder reaches).

    python benches/stream_phase.py                           # 3 kbps, 32 ms, the dev speakers
    python benches/stream_phase.py --calls copy 3:32 1.2:64 6:32 --iterations 4 8

RTISI here synthesises at hop 128 (the 512-point window overlapped 4×, the redundancy Griffin-Lim needs;
the magnitude and pitch rows interpolated geometrically / linearly within the packet, its last frame
held for the step after it, so no output sample waits for a later packet: the latency is unchanged),
starts from the sinusoidal excitation at that hop times the magnitude's minimum phase, and runs fast
Griffin-Lim over the packet's frames with every earlier sample fixed. "copy" is the streaming vocoder on
unquantised features cut into 2-frame packets. Means over files of WB-PESQ, STOI, DNSMOS and DistillMOS,
one CPU thread. A measurement only: nothing here is in the decoder.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

import codec
from codec.bundle import resolve
from codec.evaluate import DEV_SPLIT, read, select_files
from codec.excitation import sinusoidal_phase
from codec.floors import features
from codec.inversion import griffin_lim
from codec.metrics import all_metrics
from codec.stream import _Features, stream_mel_config, stream_vocoder

MOMENTUM = 0.99


def call_features(wav: np.ndarray, call: str, mel_cfg, n_mels: int) -> list[torch.Tensor]:
    """The decoder's features per packet: "copy" (unquantised, 2-frame packets) or "KBPS:PACKET_MS"."""
    if call == "copy":
        f = features(wav, mel_cfg)
        return list(torch.split(f, 2, dim=-1))
    kbps, packet_ms = call.split(":")
    enc = codec.StreamEncoder(kbps=float(kbps), packet_ms=int(packet_ms))
    packets, received = enc.push(wav) + enc.flush(), _Features(n_mels)
    return [block for p in packets for block in received.push(p)]


def upsample(x: torch.Tensor, blocks: list[int], geometric: bool) -> torch.Tensor:
    """(1, C, T) → (1, C, 2T): each frame and its midpoint toward the next frame of its packet (the
    packet's last frame held)."""
    out = []
    for seg in torch.split(x, blocks, dim=-1):
        nxt = torch.cat([seg[..., 1:], seg[..., -1:]], dim=-1)
        mid = (seg * nxt).sqrt() if geometric else (seg + nxt) / 2
        out.append(torch.stack([seg, mid], dim=-1).flatten(-2))
    return torch.cat(out, dim=-1)


def rtisi(mag: np.ndarray, phase: np.ndarray, hop: int, window: np.ndarray, blocks: list[int],
          iterations: int) -> np.ndarray:
    """Magnitude and unit phase (bins, frames) → samples: each packet's frames refined by fast Griffin-Lim
    against the samples of the packets before, then overlap-added for good."""
    n_fft = len(window)
    length = (mag.shape[1] - 1) * hop + n_fft
    ola, env, phase, a = np.zeros(length), np.zeros(length), phase.copy(), 0
    for m in blocks:
        span = slice(a * hop, (a + m - 1) * hop + n_fft)
        e = env[span].copy()
        for j in range(m):
            e[j * hop:j * hop + n_fft] += window ** 2
        e = np.where(e > 1e-11, e, 1.0)
        previous = None
        for _ in range(iterations):
            frames = np.fft.irfft(mag[:, a:a + m] * phase[:, a:a + m], n_fft, axis=0).T * window
            x = ola[span].copy()
            for j in range(m):
                x[j * hop:j * hop + n_fft] += frames[j]
            x /= e
            rebuilt = np.fft.rfft(np.stack([x[j * hop:j * hop + n_fft] for j in range(m)]) * window, axis=1).T
            target = rebuilt if previous is None else rebuilt - MOMENTUM / (1 + MOMENTUM) * previous
            phase[:, a:a + m] = target / np.maximum(np.abs(target), 1e-16)
            previous = rebuilt
        frames = np.fft.irfft(mag[:, a:a + m] * phase[:, a:a + m], n_fft, axis=0).T * window
        for j in range(m):
            ola[(a + j) * hop:(a + j) * hop + n_fft] += frames[j]
            env[(a + j) * hop:(a + j) * hop + n_fft] += window ** 2
        a += m
    return (ola / np.where(env > 1e-11, env, 1.0))[n_fft // 2:]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", nargs="?", default=str(DEV_SPLIT), help="audio folder (default: the dev split)")
    ap.add_argument("--per-speaker", type=int, default=1, help="files per speaker folder (0: all)")
    ap.add_argument("--calls", nargs="+", default=["3:32"], help="'copy' or KBPS:PACKET_MS")
    ap.add_argument("--iterations", type=int, nargs="+", default=[4, 8], help="RTISI iterations per packet")
    ap.add_argument("--offline", type=int, nargs="+", default=[8, 32], help="whole-call Griffin-Lim iterations")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    b = resolve()
    voc, mel_cfg = stream_vocoder(b).eval(), stream_mel_config(b)
    n_fft, hop, n_mels = voc.cfg.n_fft, voc.cfg.hop, voc.cfg.n_mels
    window = voc.head.window.double().numpy()
    rows: dict[tuple[str, str], list] = {}
    for path in select_files(Path(args.folder), per_speaker=args.per_speaker or None):
        wav = read(path)
        for call in args.calls:
            blocks = call_features(wav, call, mel_cfg, n_mels)
            f, sizes = torch.cat(blocks, dim=-1), [blk.shape[-1] for blk in blocks]
            with torch.inference_mode():
                spec = voc.spectrum(f)
                mag = upsample(spec.abs().double(), sizes, geometric=True)
                rows_up = upsample(f[:, n_mels:n_mels + 2].double(), sizes, geometric=False)
                start, _ = sinusoidal_phase(rows_up, n_fft, hop // 2, 16000, None, torch.Generator().manual_seed(0))
                start = (start * voc.envelope_phase(mag.float()))[0].to(torch.complex128).numpy()
                outs = {"sinusoidal (shipped)": torch.istft(spec, n_fft, hop, window=voc.head.window)[0].numpy()}
                for n in args.offline:  # the bound: every frame's neighbours known, no packets
                    outs[f"Griffin-Lim over the whole call, {n} iterations"] = griffin_lim(
                        mag.float(), torch.from_numpy(start)[None].to(torch.complex64), n, n_fft, hop // 2,
                        voc.head.window)[0].numpy()
            for n in args.iterations:
                outs[f"RTISI within the packet, {n} iterations"] = rtisi(
                    mag[0].numpy(), start, hop // 2, window, [2 * s for s in sizes], n)
            for name, y in outs.items():
                k = min(len(y), len(wav))
                m = all_metrics(wav[:k], np.clip(y[:k], -1, 1).astype(np.float32), mos=True)
                rows.setdefault((call, name), []).append(
                    [m["pesq"], m["stoi"], m.get("dnsmos", np.nan), m.get("distillmos", np.nan)])
        print(path.name, flush=True)
    print("| call | phase | WB-PESQ | STOI | DNSMOS | DistillMOS |\n|---|---|---|---|---|---|")
    for (call, name), values in rows.items():
        pesq, stoi, dns, distill = np.mean(values, axis=0)
        print(f"| {call} | {name} | {pesq:.2f} | {stoi:.3f} | {dns:.2f} | {distill:.2f} |")


if __name__ == "__main__":
    main()
