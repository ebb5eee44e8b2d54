"""Two VoIP endpoints over UDP on 127.0.0.1, with simulated loss and jitter; prints latency and quality.

    python examples/voip_loopback.py [AUDIO] [--kbps 3] [--packet-ms 32] [--loss 0.1] [--jitter-ms 30] [--cbr]

The talker reads AUDIO (default: a shipped test clip) in 20 ms chunks at real-time pace, as a
sound card would deliver it, and sends each packet the StreamEncoder returns as one UDP datagram;
the network simulator drops packets at random and delays each by up to --jitter-ms (so some
arrive out of order). The listener keeps a jitter buffer of --jitter-ms + 10 ms, plays one
packet every --packet-ms in sequence order, and hands the decoder None for a packet that is missing
at its play-out time (lost or late): the decoder conceals it. It stops when the talker is done.
"""
import argparse
import heapq
import socket
import threading
import time
from pathlib import Path

import numpy as np

import codec
from codec.audio import load, prepare

CLIP = Path(__file__).resolve().parent.parent / "tests" / "data" / "LJ001-0028.flac"
END = b""  # an empty datagram ends the call


def talker(wav, sr, args, sock, addr, encode_ms):
    enc = codec.StreamEncoder(args.kbps, packet_ms=args.packet_ms, sample_rate=sr, cbr=args.cbr)
    rng = np.random.default_rng(args.seed)
    chunk, start, network = sr // 50, time.monotonic(), []  # network: heap of (arrival time, n, packet)
    n = 0
    for i in range(0, len(wav) + chunk, chunk):
        time.sleep(max(0.0, start + i / sr - time.monotonic()))  # real-time pace
        t0 = time.perf_counter()
        packets = enc.push(wav[i:i + chunk]) if i < len(wav) else enc.flush()
        encode_ms.append((time.perf_counter() - t0) * 1000)
        now = time.monotonic()
        for p in packets:
            if rng.random() >= args.loss:
                heapq.heappush(network, (now + rng.uniform(0, args.jitter_ms / 1000), n, p))
            n += 1
        while network and network[0][0] <= now:
            sock.sendto(heapq.heappop(network)[2], addr)
    while network:
        time.sleep(max(0.0, network[0][0] - time.monotonic()))
        sock.sendto(heapq.heappop(network)[2], addr)
    sock.sendto(END, addr)
    return enc.latency_ms, enc.mode.packet_ms / 1000


def listener(sock, period, buffer_s, out, decode_ms, stats):
    dec = codec.StreamDecoder()
    waiting, seq, first, done = {}, 0, None, False
    while True:
        due = None if first is None else first + buffer_s + seq * period
        sock.settimeout(None if due is None else max(0.0, due - time.monotonic()))
        try:
            data = sock.recv(2048)
            if data == END:
                done = True
            else:
                first = first or time.monotonic()
                waiting[data[1]] = data  # byte 1 is the sequence number
                continue
        except (socket.timeout, BlockingIOError):  # nothing arrived before the next play-out
            pass
        if first is None:
            continue
        while time.monotonic() >= first + buffer_s + seq * period or done:  # play what is due
            packet = waiting.pop(seq % 256, None)
            waiting.pop((seq - 128) % 256, None)  # forget anything too late to matter
            t0 = time.perf_counter()
            out.append(dec.push(packet))
            decode_ms.append((time.perf_counter() - t0) * 1000)
            seq += 1
            if done and not waiting:
                out.append(dec.flush())
                stats.update(played=seq, concealed=dec.lost)
                return


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("audio", nargs="?", default=CLIP)
    ap.add_argument("--kbps", type=float, default=3.0)
    ap.add_argument("--packet-ms", type=int, default=32, choices=codec.modes.PACKET_MS)
    ap.add_argument("--loss", type=float, default=0.1, help="random packet loss probability")
    ap.add_argument("--jitter-ms", type=float, default=30.0, help="each packet is delayed 0..this")
    ap.add_argument("--cbr", action="store_true", help="constant bitrate (every packet within budget)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    wav, sr = load(args.audio)
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    buffer_s = (args.jitter_ms + 10) / 1000
    out, encode_ms, decode_ms, stats = [], [], [], {}
    period = args.packet_ms / 1000
    thread = threading.Thread(target=listener, args=(rx, period, buffer_s, out, decode_ms, stats))
    thread.start()
    latency_ms, _ = talker(wav, sr, args, tx, rx.getsockname(), encode_ms)
    thread.join()

    ref = prepare(wav, sr)[0]
    pcm = np.concatenate(out)[: len(ref)]
    print(f"call of {len(ref) / 16000:.1f} s at {args.kbps:g} kbps ({'CBR' if args.cbr else 'VBR'}), "
          f"{args.loss:.0%} loss, jitter up to {args.jitter_ms:g} ms")
    print(f"packets played {stats['played']}, concealed {stats['concealed']}")
    print(f"latency: codec {latency_ms:.0f} ms + jitter buffer {buffer_s * 1000:.0f} ms "
          f"= {latency_ms + buffer_s * 1000:.0f} ms mouth to ear (plus compute)")
    print(f"compute per 20 ms push: encode mean {np.mean(encode_ms):.2f} ms, "
          f"p99 {np.percentile(encode_ms, 99):.2f} ms; per {args.packet_ms} ms packet: "
          f"decode mean {np.mean(decode_ms):.2f} ms, p99 {np.percentile(decode_ms, 99):.2f} ms")
    try:
        from codec.metrics import all_metrics

        m = all_metrics(ref, pcm)
        print(f"quality vs the input: WB-PESQ {m['pesq']:.2f}, STOI {m['stoi']:.3f}")
    except ImportError:
        print("quality: pip install 'ldcodec[eval]' for WB-PESQ/STOI")


if __name__ == "__main__":
    main()
