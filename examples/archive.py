"""Archive a folder tree of speech as .ldc files, verifying every file; re-runs skip finished work.

    python examples/archive.py SRC_DIR ARCHIVE_DIR [--kbps 1.5] [--restore RESTORED_DIR]

Each audio file SRC/a/b.wav becomes ARCHIVE/a/b.ldc. A file counts as done only when its .ldc
parses with every CRC intact (written to a temporary name, then renamed), so an interrupted run
resumes where it stopped and a damaged archive file is re-encoded. --restore decodes the archive
back to 16 kHz WAVs (again skipping what exists).
"""
import argparse
import os
from pathlib import Path

import soundfile as sf

import bitstream
import codec
from codec.audio import load


def verified(path: Path) -> bool:
    try:
        bitstream.read_file(path.read_bytes(), strict=True)
        return True
    except (OSError, bitstream.BitstreamError):
        return False


def atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".part")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("src", type=Path)
    ap.add_argument("archive", type=Path)
    ap.add_argument("--kbps", type=float, default=1.5)
    ap.add_argument("--restore", type=Path)
    args = ap.parse_args()

    sources = sorted(p for p in args.src.rglob("*") if p.suffix.lower() in {".wav", ".flac", ".ogg"})
    done = encoded = 0
    for src in sources:
        dst = (args.archive / src.relative_to(args.src)).with_suffix(".ldc")
        if verified(dst):
            done += 1
            continue
        wav, sr = load(src)
        atomic_write(dst, codec.encode(wav, sr, kbps=args.kbps))
        if not verified(dst):
            raise RuntimeError(f"{dst} does not read back intact (disk problem?)")
        encoded += 1
    print(f"archive: {encoded} encoded, {done} already done, {len(sources)} total")

    if args.restore:
        restored = 0
        for ldc in sorted(args.archive.rglob("*.ldc")):
            out = (args.restore / ldc.relative_to(args.archive)).with_suffix(".wav")
            if out.exists():
                continue
            wav, sr = codec.decode(ldc.read_bytes())  # strict: a damaged file raises, never half-restores
            out.parent.mkdir(parents=True, exist_ok=True)
            sf.write(out, wav, sr, subtype="PCM_16")
            restored += 1
        print(f"restore: {restored} decoded")


if __name__ == "__main__":
    main()
