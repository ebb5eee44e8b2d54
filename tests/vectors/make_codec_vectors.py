"""Write codec-level golden vectors (run once per format change; the outputs are then FROZEN).

    python tests/vectors/make_codec_vectors.py [--force]

For each (rate, representation): ``v1_codec_[latent_]<bps>bps.ldc`` made by ``codec.encode`` from a
shipped test clip, and a JSON with the header, each packet's step index and the SHA-256 of its
decoded integer symbols (cepstral or latent integers, voiced pitch indices, voicing flags),
plus the SHA-256 of the full decode with the bundle named in the header.
"""
import argparse
import hashlib
import json
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

import bitstream
import codec
from codec.api import _check_layout
from codec.mel_repr import frames_for, groups_for
from codec.melcoder import decode_packet
from codec.modes import MEL_HOP

HERE = Path(__file__).parent
CLIP = HERE.parent / "data" / "LJ001-0029.flac"
VECTORS = ((0.3, "mel"), (3.0, "mel"), (0.3, "latent"))  # existing ones are kept


def describe(data: bytes) -> dict:
    """Everything a later reader must reproduce from ``data``."""
    c = bitstream.read_file(data)
    h = c.header
    mode = _check_layout(h)
    groups = groups_for(frames_for(h.num_samples, MEL_HOP), mode.decimation)
    packets = []
    for i, p in enumerate(c.packets):
        n = min(mode.groups_per_packet, groups - i * mode.groups_per_packet)
        q, g, pitch, voiced = decode_packet(p.payload, n, mode.n_coefs, predictive=mode.representation == "mel")
        symbols = np.concatenate([q.reshape(-1), pitch[voiced], voiced]).astype("<i8")
        packets.append({"g": int(g), "groups": n, "voiced": int(voiced.sum()),
                        "symbols_sha256": hashlib.sha256(symbols.tobytes()).hexdigest()})
    return {"kind": "codec", "format_version": 1, "header": {**bitstream.info(data), "errors": None},
            "packets": packets}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--force", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(1)
    wav, sr = sf.read(CLIP, dtype="float32")
    for kbps, representation in VECTORS:
        stem = HERE / f"v1_codec_{'latent_' if representation == 'latent' else ''}{round(kbps * 1000)}bps"
        if stem.with_suffix(".ldc").exists() and not args.force:
            print(f"{stem}.ldc exists: golden vectors are frozen (use --force only for a new format)")
            continue
        data = codec.encode(wav, sr, kbps=kbps, representation=representation)
        out, _ = codec.decode(data)
        doc = describe(data)
        doc.update(file=stem.with_suffix(".ldc").name, kbps=kbps,
                   decoded_sha256=hashlib.sha256(out.astype("<f4").tobytes()).hexdigest())
        stem.with_suffix(".ldc").write_bytes(data)
        stem.with_suffix(".json").write_text(json.dumps(doc, indent=1) + "\n")
        print(f"wrote {stem}.ldc ({len(data)} bytes)")


if __name__ == "__main__":
    main()
