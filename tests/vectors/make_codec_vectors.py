"""Write codec-level golden vectors (run once per format change; the outputs are then FROZEN).

    python tests/vectors/make_codec_vectors.py [--force]

For each stem in ``VECTORS``: ``STEM.ldc`` made by ``codec.encode`` at its rate and representation from a
shipped test clip, and a JSON with the header, each packet's step index and the SHA-256 of its
decoded integer symbols (cepstral or latent integers, voiced pitch indices, voicing flags),
plus the SHA-256 of the full decode with the bundle named in the header.
"""
import argparse
import hashlib
import json
from pathlib import Path

import numpy as np

import bitstream

HERE = Path(__file__).parent
CLIP = HERE.parent / "data" / "LJ001-0029.flac"
# stem → (kbps, representation); existing ones are kept. v1_codec_latent_1200bps is mode 7 (retired: the
# 16-channel latent at 1.2 kbps, written by the release before mode 8), v1_codec_mode8_1200bps its successor.
VECTORS = {"v1_codec_300bps": (0.3, "mel"), "v1_codec_3000bps": (3.0, "mel"), "v1_codec_latent_300bps": (0.3, "latent"),
           "v1_codec_latent_1200bps": (1.2, "latent"), "v1_codec_mode8_1200bps": (1.2, "latent")}


def symbols_sha256(q: np.ndarray, pitch: np.ndarray, voiced: np.ndarray) -> str:
    """SHA-256 of a packet's decoded integers: values, voiced pitch indices, voicing flags."""
    return hashlib.sha256(np.concatenate([q.reshape(-1), pitch[voiced], voiced]).astype("<i8").tobytes()).hexdigest()


def describe(data: bytes) -> dict:
    """Everything a later reader must reproduce from ``data`` (torch-free: ``bitstream`` only)."""
    _, groups = bitstream.read_groups(data)
    per, packets = groups.mode.groups_per_packet, []
    for at in range(0, len(groups.q), per):
        rows = slice(at, at + per)
        voiced = groups.voiced[rows]
        packets.append({"g": int(groups.g[at]), "groups": len(voiced), "voiced": int(voiced.sum()),
                        "symbols_sha256": symbols_sha256(groups.q[rows], groups.pitch[rows], voiced)})
    return {"kind": "codec", "format_version": 1, "header": {**bitstream.info(data), "errors": None},
            "packets": packets}


def main() -> None:
    import soundfile as sf
    import torch

    import codec

    ap = argparse.ArgumentParser()
    ap.add_argument("--force", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(1)
    wav, sr = sf.read(CLIP, dtype="float32")
    for name, (kbps, representation) in VECTORS.items():
        stem = HERE / name
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
