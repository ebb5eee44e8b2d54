"""Archive a folder tree of speech as .ldc files, verifying every file; re-runs skip finished work.

    python examples/archive.py SRC_DIR ARCHIVE_DIR [--kbps 1.5] [--restore RESTORED_DIR]

Each audio file SRC/a/b.wav becomes ARCHIVE/a/b.ldc, written to a temporary name and renamed, then
read back with every CRC checked. A re-run skips the files already archived, provided they were
made with the same --kbps (an archive at another rate is refused, not mixed), and re-encodes any
that are missing or damaged. --restore decodes the archive back to 16 kHz WAVs (again skipping the
complete ones). `ldcodec encode SRC -o ARCHIVE --kbps 1.5 --resume` does the same from the shell.
"""
import argparse
from pathlib import Path

import bitstream
from codec import files


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("src", type=Path)
    ap.add_argument("archive", type=Path)
    ap.add_argument("--kbps", type=float, default=1.5)
    ap.add_argument("--restore", type=Path)
    args = ap.parse_args()

    # every (source, .ldc) pair, with the settings checked once against what the archive already holds
    tasks, settings = files.encode_plan([args.src], args.archive, args.kbps, resume=True)
    done = 0
    for src, dst in tasks:
        done += files.encode_file(src, dst, *settings).endswith("already done")
        bitstream.read_file(dst.read_bytes())  # strict: raises if the disk gave back other bytes
    print(f"archive: {len(tasks) - done} encoded, {done} already done, {len(tasks)} total")

    if args.restore:  # strict decoding: a damaged file raises, never half-restores
        tasks, settings = files.decode_plan([args.archive], args.restore, resume=True)
        restored = sum(not files.decode_file(src, dst, *settings).endswith("already done") for src, dst in tasks)
        print(f"restore: {restored} decoded")


if __name__ == "__main__":
    main()
