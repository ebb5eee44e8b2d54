"""Two VoIP endpoints over UDP on 127.0.0.1, with simulated loss and jitter; prints latency and quality.

    python examples/voip_loopback.py [AUDIO] [--kbps 3] [--packet-ms 32|48|64] [--loss 0.1] [--jitter-ms 30]
                                     [--late-ms 0] [--seconds S] [--cbr] [--seed 0]

The talker reads AUDIO (default: a shipped test clip) in 20 ms chunks at real-time pace, as a
sound card would deliver it, and sends each packet the StreamEncoder returns as one UDP datagram
behind a 2-byte sequence number (ldcodec packets carry none: RTP's header would carry it);
the network simulator drops packets at random and delays each by up to --jitter-ms (so some
arrive out of order), and one packet in the middle of the call by --late-ms more. The listener (a
network thread that timestamps each datagram, and a playout loop) puts every datagram into a
``codec.JitterBuffer`` (reordering, duplicates, late packets, a depth that adapts to the measured
jitter) and plays one slot per packet period into the StreamDecoder: a lost or late packet's slot
is concealed, and the call's audio lasts as long as the call.
Streaming runs at 1.2–6 kbps (64 ms packets below 3 kbps); other rates are refused with a message.
"""
import argparse
import queue
import socket
import threading
import time
from pathlib import Path

import numpy as np

import codec
from codec.audio import load, prepare

CLIP = Path(__file__).resolve().parent.parent / "tests" / "data" / "LJ001-0028.flac"
END = b""  # an empty datagram ends the call
SEQ_BYTES = 2  # the datagram's own header: the packet's sequence number (u16, big-endian), as in RTP
IDLE_S = 2.0  # the listener gives up when nothing arrives for this long (the talker is gone)


def talker(enc, wav, sr, args, sock, addr, encode_ms) -> int:
    """Encode ``wav`` at real-time pace and send the packets through the simulated network; → packets sent."""
    rng = np.random.default_rng(args.seed)
    period = enc.mode.packet_ms / 1000
    late_one = int(len(wav) / sr / 2 / period)  # the packet in the middle of the call gets --late-ms more
    chunk, start, network, n = sr // 50, time.monotonic(), [], 0  # network: (arrival time, n, packet)
    for i in range(0, len(wav) + chunk, chunk):
        time.sleep(max(0.0, start + i / sr - time.monotonic()))  # real-time pace
        t0 = time.perf_counter()
        packets = enc.push(wav[i:i + chunk]) if i < len(wav) else enc.flush()
        encode_ms.append((time.perf_counter() - t0) * 1000)
        now = time.monotonic()
        for p in packets:
            if rng.random() >= args.loss:
                delay = rng.uniform(0, args.jitter_ms / 1000) + (args.late_ms / 1000 if n == late_one else 0)
                network.append((now + delay, n, (n % 65536).to_bytes(SEQ_BYTES, "big") + p))
            n += 1
        network.sort()
        while network and network[0][0] <= now:
            sock.sendto(network.pop(0)[2], addr)
    for when, _, p in network:
        time.sleep(max(0.0, when - time.monotonic()))
        sock.sendto(p, addr)
    return n


def receiver(sock, inbox: queue.Queue) -> None:
    """Network thread: each datagram and its arrival time onto ``inbox`` as it comes, so that the time
    the listener spends decoding never delays the arrival times the jitter buffer measures."""
    sock.settimeout(IDLE_S)
    try:
        while True:
            data = sock.recv(2048)
            inbox.put((data, time.monotonic()))
            if data == END:
                return
    except OSError:  # nothing for IDLE_S (the talker is gone), or the socket was closed
        inbox.put((None, time.monotonic()))


def arrivals(inbox: queue.Queue, timeout: float) -> list:
    """What the receiver has queued: the first item waited for up to ``timeout`` s, then the rest."""
    got = []
    try:
        got.append(inbox.get(timeout=timeout) if timeout > 0 else inbox.get_nowait())
        while True:
            got.append(inbox.get_nowait())
    except queue.Empty:
        return got


def listener(inbox, packet_ms, out, decode_ms, stats) -> None:
    """Arrivals → jitter buffer → one decoder slot per packet period, until the call ends."""
    jb, dec = codec.JitterBuffer(packet_ms=packet_ms), codec.StreamDecoder()
    done = False
    try:
        while not done or jb.pending:
            due = jb.next_due_s
            for data, t in [] if done else arrivals(inbox, 2 * IDLE_S if due is None else due - time.monotonic()):
                if data is None:
                    raise TimeoutError(f"nothing received for {IDLE_S:g} s")
                if data == END:
                    done = True
                else:
                    jb.put(data[SEQ_BYTES:], t, seq=int.from_bytes(data[:SEQ_BYTES], "big"))
            now = time.monotonic()
            while jb.due(now) or (done and jb.pending):  # at the end, play out what is left at once
                t0 = time.perf_counter()
                out.append(dec.push(jb.pop(now), in_order=True))
                decode_ms.append((time.perf_counter() - t0) * 1000)
        out.append(dec.flush())
    except Exception as e:  # reported by main, never a hang
        stats["error"] = f"{type(e).__name__}: {e}"
    stats.update(jb.stats())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("audio", nargs="?", default=CLIP)
    ap.add_argument("--kbps", type=float, default=3.0, help="1.2–6 (streaming's range)")
    ap.add_argument("--packet-ms", type=int, choices=codec.modes.PACKET_MS,
                    help="packet length (default: 32 ms from 3 kbps, 64 ms below)")
    ap.add_argument("--loss", type=float, default=0.1, help="random packet loss probability")
    ap.add_argument("--jitter-ms", type=float, default=30.0, help="each packet is delayed 0..this")
    ap.add_argument("--late-ms", type=float, default=0.0, help="one packet mid-call is delayed this much more")
    ap.add_argument("--seconds", type=float, help="use only the first seconds of AUDIO")
    ap.add_argument("--cbr", action="store_true", help="constant bitrate (every packet within budget)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    wav, sr = load(args.audio)
    if args.seconds:
        wav = wav[: int(args.seconds * sr)]
    try:
        enc = codec.StreamEncoder(args.kbps, packet_ms=args.packet_ms, sample_rate=sr, cbr=args.cbr)
    except ValueError as e:
        ap.error(str(e))  # exits with the message (e.g. the streaming range), before any thread starts

    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    out, encode_ms, decode_ms, stats = [], [], [], {}
    inbox = queue.Queue()
    threading.Thread(target=receiver, args=(rx, inbox), daemon=True).start()
    thread = threading.Thread(target=listener, args=(inbox, args.packet_ms, out, decode_ms, stats), daemon=True)
    thread.start()
    try:
        sent = talker(enc, wav, sr, args, tx, rx.getsockname(), encode_ms)
    finally:
        tx.sendto(END, rx.getsockname())  # the listener ends even if the talker failed
        thread.join(timeout=len(wav) / sr + 10)
        tx.close()
        rx.close()
    if thread.is_alive() or "error" in stats:
        raise SystemExit(f"listener failed: {stats.get('error', 'still running')}")
    report(args, wav, sr, enc, sent, out, encode_ms, decode_ms, stats)


def report(args, wav, sr, enc, sent, out, encode_ms, decode_ms, stats) -> None:
    ref = prepare(wav, sr)[0]
    pcm = np.concatenate(out)
    print(f"call of {len(ref) / 16000:.1f} s at {args.kbps:g} kbps ({'CBR' if args.cbr else 'VBR'}), "
          f"{args.loss:.0%} loss, jitter up to {args.jitter_ms:g} ms" +
          (f", one packet {args.late_ms:g} ms late" if args.late_ms else ""))
    print(f"packets sent {sent}, played {stats['played']}, concealed {stats['concealed']} "
          f"(lost {stats['lost']}, late {stats['late']}); audio out {len(pcm) / 16000:.2f} s")
    print(f"jitter buffer: depth {stats['depth_ms']:.0f} ms (target {stats['target_ms']:.0f} ms), "
          f"reordered {stats['reordered']}, duplicates {stats['duplicates']}, "
          f"slots inserted {stats['inserted']}, packets dropped {stats['dropped']}")
    print(f"latency: codec {enc.latency_ms:.0f} ms + jitter buffer {stats['depth_ms']:.0f} ms "
          f"= {enc.latency_ms + stats['depth_ms']:.0f} ms mouth to ear (plus network and compute)")
    print(f"compute per 20 ms push: encode mean {np.mean(encode_ms):.2f} ms, "
          f"p99 {np.percentile(encode_ms, 99):.2f} ms; per {enc.mode.packet_ms:g} ms packet: "
          f"decode mean {np.mean(decode_ms):.2f} ms, p99 {np.percentile(decode_ms, 99):.2f} ms")
    try:
        from codec.metrics import all_metrics

        m = all_metrics(ref, np.pad(pcm, (0, max(0, len(ref) - len(pcm))))[: len(ref)])
        print(f"quality vs the input: WB-PESQ {m['pesq']:.2f}, STOI {m['stoi']:.3f}")
    except ImportError:
        print("quality: pip install 'ldcodec[eval]' for WB-PESQ/STOI")


if __name__ == "__main__":
    main()
