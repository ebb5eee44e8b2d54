"""Write the streaming golden vectors that are missing (the outputs are then FROZEN).

    python tests/vectors/make_stream_vectors.py

``STEM.pkts``: the raw packets ``codec.StreamEncoder(kbps=..., packet_ms=...)`` makes from 3 s of a
shipped test clip, each prefixed by its length (u16, big-endian); the JSON holds per packet its
mode, sequence number (raw packets of version 1 only), step index and the SHA-256 of its decoded
integer symbols.
``v1_stream_3000bps``: 48 ms packets (mode 16) from the first streaming release (1024-sample
front end); ``v1_stream_32ms_3000bps``: 32 ms packets (mode 18, low-latency front end);
``v1_stream_64ms_1200bps`` and ``v1_stream_64ms_3000bps``: 64 ms packets (modes 20 and 22).
``v2_stream_32ms_3000bps`` and ``v2_stream_64ms_1200bps``: raw packets of version 2 (no sequence
byte, CRC-8), modes 18 and 20.
"""
import argparse
import hashlib
import json
from pathlib import Path

import numpy as np

import bitstream

HERE = Path(__file__).parent
CLIP = HERE.parent / "data" / "LJ001-0029.flac"
STEMS = {HERE / "v1_stream_3000bps": (48, 3.0), HERE / "v1_stream_32ms_3000bps": (32, 3.0),
         HERE / "v1_stream_64ms_1200bps": (64, 1.2), HERE / "v1_stream_64ms_3000bps": (64, 3.0),
         HERE / "v2_stream_32ms_3000bps": (32, 3.0), HERE / "v2_stream_64ms_1200bps": (64, 1.2)}  # → (ms, kbps)


def split(blob: bytes) -> list[bytes]:
    packets, i = [], 0
    while i < len(blob):
        n = int.from_bytes(blob[i:i + 2], "big")
        packets.append(blob[i + 2:i + 2 + n])
        i += 2 + n
    return packets


def describe(packets: list[bytes]) -> list[dict]:
    out = []
    for p in packets:
        raw = bitstream.unpack_packet(p)
        g = bitstream.packet_groups(raw)
        symbols = np.concatenate([g.q.reshape(-1), g.pitch[g.voiced], g.voiced]).astype("<i8")
        out.append({"mode": raw.mode_id} | ({} if raw.seq is None else {"seq": raw.seq}) | {
            "g": int(g.g[0]), "bytes": len(p), "symbols_sha256": hashlib.sha256(symbols.tobytes()).hexdigest()})
    return out


def main() -> None:
    import soundfile as sf

    import codec

    argparse.ArgumentParser(description=__doc__).parse_args()
    wav, sr = sf.read(CLIP, dtype="float32")
    for stem, (packet_ms, kbps) in STEMS.items():
        if stem.with_suffix(".pkts").exists():
            print(f"{stem.name}.pkts exists: golden vectors are frozen")
            continue
        enc = codec.StreamEncoder(kbps=kbps, packet_ms=packet_ms, sample_rate=sr)
        packets = enc.push(wav[: 3 * sr]) + enc.flush()
        stem.with_suffix(".pkts").write_bytes(b"".join(len(p).to_bytes(2, "big") + p for p in packets))
        doc = {"kind": "stream", "format_version": bitstream.PACKET_VERSION, "file": stem.with_suffix(".pkts").name,
               "kbps": kbps, "packet_ms": packet_ms, "packets": describe(packets)}
        stem.with_suffix(".json").write_text(json.dumps(doc, indent=1) + "\n")
        print(f"wrote {stem}.pkts ({len(packets)} packets)")


if __name__ == "__main__":
    main()
