"""Carry a training run to an accelerator and back: the same run, continued on whatever machine is lent.

A device call takes the checkout plus 64 MiB of carried paths and returns at most 8 files of 16 MiB, so:

    python -m codec.train.pack --data DIR ... --out .burst/data     # once: speech as Opus + pitch tracks
    python -m codec.train.burst pack ~/ldcodec-runs/phase .burst/run  # the run in transit (below)
    # on the device, in the checkout (bundle weights the run does not read moved out of it):
    python -m codec.train.vocoder --data .burst/data/librispeech ... --pitch-cache .burst/data/pitch_cache.npz \
        --out .burst/run --steps 200000 --batch 128 --minutes 7 --bf16 --save-every 1000
    python -m codec.train.burst split .burst/run $OUT              # the checkpoint in ≤ 15 MiB parts
    # back here:
    python -m codec.train.burst join FILES_AT ~/ldcodec-runs/phase   # the run resumes from the burst

``pack`` writes the transit copy: the weights in float32, the optimisers' moments in bfloat16 and no EMA
(it restarts from the weights on resume): a 2.8 M-parameter vocoder with its discriminators travels in
about 28 MB instead of 54. The run's ``config.json`` goes along, so the trainer resumes the model it
started without the bundle (``codec.train.vocoder`` reads it when ``OUT/last.safetensors`` exists).
"""
from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

CHECKPOINTS = ("last.safetensors", "discriminators.safetensors", "magnitude_discriminator.safetensors")
PART_BYTES = 15 * 2**20  # under the device tool's 16 MiB a returned file


def transit(src: Path, dst: Path) -> None:
    """A checkpoint (``codec.train.checkpoint``) → its transit copy: no ``ema.*``, ``opt.*`` moments in bf16."""
    tensors = load_file(str(src))
    with safe_open(str(src), "pt") as f:
        meta = f.metadata()
    small = {k: (v.to(torch.bfloat16) if k.startswith("opt.") and v.is_floating_point() and v.ndim else v)
             for k, v in tensors.items() if not k.startswith("ema.")}
    save_file(small, str(dst), metadata=meta)


def pack(run: Path, dest: Path) -> int:
    """``run``'s checkpoints as transit copies + its config.json in ``dest`` → bytes written."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in CHECKPOINTS:
        if (run / name).exists():
            transit(run / name, dest / name)
    shutil.copy(run / "config.json", dest / "config.json")
    return sum(p.stat().st_size for p in dest.iterdir())


def split(run: Path, out: Path, part_bytes: int = PART_BYTES) -> list[Path]:
    """``run``'s checkpoints and config.json cut into ``NAME.partK`` files of ≤ ``part_bytes`` in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    parts = []
    for name in (*CHECKPOINTS, "config.json"):
        if not (run / name).exists():
            continue
        data = (run / name).read_bytes()
        for k, start in enumerate(range(0, max(len(data), 1), part_bytes)):
            parts.append(out / f"{name}.part{k}")
            parts[-1].write_bytes(data[start:start + part_bytes])
    return parts


def join(parts_dir: Path, run: Path) -> list[str]:
    """``split``'s parts in ``parts_dir`` → whole files in ``run`` (replacing them atomically) → their names."""
    run.mkdir(parents=True, exist_ok=True)
    names = sorted({p.name.rsplit(".part", 1)[0] for p in parts_dir.glob("*.part*")})
    for name in names:
        parts = sorted(parts_dir.glob(f"{name}.part*"), key=lambda p: int(p.name.rsplit(".part", 1)[1]))
        tmp = run / f"{name}.joining"
        tmp.write_bytes(b"".join(p.read_bytes() for p in parts))
        tmp.replace(run / name)
    return names


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    for name, a, b in (("pack", "run", "dest"), ("split", "run", "out"), ("join", "parts", "run")):
        p = sub.add_parser(name)
        p.add_argument(a, type=Path)
        p.add_argument(b, type=Path)
    args = ap.parse_args(argv)
    if args.command == "pack":
        print(f"{args.dest}: {pack(args.run, args.dest) / 1e6:.1f} MB to carry")
    elif args.command == "split":
        print("\n".join(str(p) for p in split(args.run, args.out)))
    else:
        print(f"{args.run}: joined {', '.join(join(args.parts, args.run))}")


if __name__ == "__main__":
    main()
