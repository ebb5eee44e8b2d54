"""Write the streaming golden vector (run once per format change; the outputs are then FROZEN).

    python tests/vectors/make_stream_vectors.py [--force]

``v1_stream_3000bps.pkts``: the raw packets ``codec.StreamEncoder(kbps=3)`` makes from 3 s of a
shipped test clip, each prefixed by its length (u16, big-endian); the JSON holds per packet its
mode, sequence number, step index and the SHA-256 of its decoded integer symbols.
"""
import argparse
import hashlib
import json
from pathlib import Path

import numpy as np
import soundfile as sf

import bitstream
import codec
from codec.entropy import PACKET_PRIORS
from codec.melcoder import decode_packet
from codec.modes import mode_by_id

HERE = Path(__file__).parent
CLIP = HERE.parent / "data" / "LJ001-0029.flac"
STEM = HERE / "v1_stream_3000bps"


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
        mode = mode_by_id(raw.mode_id)
        q, g, pitch, voiced = decode_packet(raw.payload, mode.groups_per_packet, mode.n_coefs, PACKET_PRIORS[mode.id])
        symbols = np.concatenate([q.reshape(-1), pitch[voiced], voiced]).astype("<i8")
        out.append({"mode": raw.mode_id, "seq": raw.seq, "g": int(g), "bytes": len(p),
                    "symbols_sha256": hashlib.sha256(symbols.tobytes()).hexdigest()})
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--force", action="store_true")
    args = ap.parse_args()
    if STEM.with_suffix(".pkts").exists() and not args.force:
        raise SystemExit(f"{STEM}.pkts exists: golden vectors are frozen (use --force only for a new format)")
    wav, sr = sf.read(CLIP, dtype="float32")
    enc = codec.StreamEncoder(kbps=3.0, sample_rate=sr)
    packets = enc.push(wav[: 3 * sr]) + enc.flush()
    STEM.with_suffix(".pkts").write_bytes(b"".join(len(p).to_bytes(2, "big") + p for p in packets))
    doc = {"kind": "stream", "format_version": 1, "file": STEM.with_suffix(".pkts").name, "kbps": 3.0,
           "packets": describe(packets)}
    STEM.with_suffix(".json").write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {STEM}.pkts ({len(packets)} packets)")


if __name__ == "__main__":
    main()
