"""Export a training checkpoint's EMA vocoder as a shipped bundle folder.

    python -m codec.train.export runs/vocoder/last.safetensors codec/bundles/default --name ldc-mel-v1
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from safetensors import safe_open
from safetensors.torch import save_file


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint")
    ap.add_argument("out")
    ap.add_argument("--name", default="ldc-mel-v1")
    args = ap.parse_args(argv)
    ckpt, out = Path(args.checkpoint), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with safe_open(str(ckpt), "pt") as f:
        step = int(f.metadata()["step"])
        weights = {k[4:]: f.get_tensor(k).half().contiguous() for k in f.keys() if k.startswith("ema.")}
    save_file(weights, str(out / "vocoder.safetensors"), metadata={"step": str(step)})
    config = json.loads((ckpt.parent / "config.json").read_text())
    config.update(name=args.name, format=1, vocoder_steps=step)
    (out / "config.json").write_text(json.dumps(config, indent=1) + "\n")
    print(f"exported step {step} to {out}")


if __name__ == "__main__":
    main()
