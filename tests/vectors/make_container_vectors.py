"""Write the v1 container golden vectors: ``v1_container.ldc`` + ``v1_container.json``.

Run once; the outputs are then FROZEN (the format must keep decoding them bit-exactly).
Refuses to overwrite existing vectors unless ``--force`` is given.

    python tests/vectors/make_container_vectors.py [--force]
"""
from __future__ import annotations

import argparse
import hashlib
import json
import re
from pathlib import Path

import numpy as np

from bitstream import FORMAT_VERSION, Header, RangeEncoder, write_file

HERE = Path(__file__).resolve().parent
NAME = f"v{FORMAT_VERSION}_container"
TABLES = {
    "peaked33": [1, 1, 1, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233, 377, 610, 377, 233, 144, 89, 55, 34, 21,
                 13, 8, 5, 3, 2, 1, 1, 1, 1],
    "flat4": [1, 1, 1, 1],
    "skewed2": [65000, 535],
}


def segments(rng: np.random.Generator, spec: list[tuple]) -> list[dict]:
    """spec: (table name, offset, n) shared-table runs, or ("rows", offset, n, alphabet) per-symbol tables."""
    out = []
    for kind, offset, n, *rest in spec:
        if kind == "rows":
            rows = rng.integers(1, 1 << 16, size=(n, rest[0]))
            p = rows / rows.sum(axis=1, keepdims=True)
            syms = np.array([rng.choice(rest[0], p=r) for r in p], dtype=np.int64) + offset
            out.append({"rows": rows.tolist(), "offset": offset, "symbols": syms.tolist()})
        else:
            t = np.array(TABLES[kind])
            syms = rng.choice(len(t), size=n, p=t / t.sum()) + offset
            out.append({"table": kind, "offset": offset, "symbols": syms.tolist()})
    return out


def encode(segs: list[dict]) -> bytes:
    enc = RangeEncoder()
    for s in segs:
        freqs = np.array(s["rows"] if "rows" in s else TABLES[s["table"]], dtype=np.int64)
        enc.encode(np.array(s["symbols"], dtype=np.int64), freqs, s["offset"])
    return enc.finish()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--force", action="store_true", help="overwrite frozen vectors (changes the format!)")
    args = ap.parse_args()
    ldc, js = HERE / f"{NAME}.ldc", HERE / f"{NAME}.json"
    if (ldc.exists() or js.exists()) and not args.force:
        raise SystemExit(f"{ldc.name} exists: golden vectors are frozen (use --force only for a new format)")
    rng = np.random.default_rng(1234)
    plan = [
        [("peaked33", -16, 40)],
        [],  # an empty packet
        [("peaked33", -16, 300), ("flat4", 0, 25), ("skewed2", 0, 64)],  # > 127 bytes: 2-byte varint
        [("rows", 3, 20, 5), ("peaked33", 0, 10)],
        [("skewed2", -1, 200), ("rows", -7, 12, 33)],
    ]
    packets = []
    for i, spec in enumerate(plan):
        segs = segments(rng, spec)
        packets.append({"index": i, "seq": i % 256, "payload_hex": encode(segs).hex(), "segments": segs})
    header = Header(sample_rate=24000, mode_id=5, representation="mel", bundle_id=bytes.fromhex("5eedc0dec0ffee01"),
                    frames_per_packet=4, num_samples=24000 * len(plan) * 4 // 50, num_packets=len(plan), seed=777,
                    decoder="vocos", source_rate=44100, source_channels=2)
    data = write_file(header, [bytes.fromhex(p["payload_hex"]) for p in packets])
    hdr = {**header.__dict__, "bundle_id": header.bundle_id.hex()}
    doc = {"kind": "container", "format_version": FORMAT_VERSION, "file": ldc.name,
           "sha256": hashlib.sha256(data).hexdigest(), "file_bytes": len(data), "header": hdr,
           "tables": TABLES, "packets": packets}
    ldc.write_bytes(data)
    text = json.dumps(doc, indent=1)
    text = re.sub(r"\[[-\d,\s]*\]", lambda m: "[" + ", ".join(m.group(0)[1:-1].split()).replace(",,", ",") + "]", text)
    js.write_text(text + "\n")
    print(f"wrote {ldc.name} ({len(data)} bytes) and {js.name}")


if __name__ == "__main__":
    main()
