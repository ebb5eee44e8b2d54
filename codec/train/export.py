"""Export a training checkpoint's EMA vocoder as a shipped bundle folder.

    python -m codec.train.export runs/vocoder/last.safetensors codec/bundles/default --name ldc-mel-v1
    python -m codec.train.export runs/stream_vocoder/last.safetensors codec/bundles/default --stream

``--stream`` adds a causal vocoder to an existing bundle as ``stream_vocoder.*`` (an add-on:
the bundle id does not change).
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
    ap.add_argument("--stream", action="store_true", help="write the streaming vocoder add-on into OUT")
    args = ap.parse_args(argv)
    ckpt, out = Path(args.checkpoint), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with safe_open(str(ckpt), "pt") as f:
        step = int(f.metadata()["step"])
        weights = {k[4:]: f.get_tensor(k).half().contiguous() for k in f.keys() if k.startswith("ema.")}
    config = json.loads((ckpt.parent / "config.json").read_text())
    if args.stream:
        save_file(weights, str(out / "stream_vocoder.safetensors"), metadata={"step": str(step)})
        (out / "stream_vocoder.json").write_text(json.dumps({"vocoder": config["vocoder"], "steps_trained": step},
                                                            indent=1) + "\n")
        print(f"exported streaming vocoder step {step} to {out}")
        return
    save_file(weights, str(out / "vocoder.safetensors"), metadata={"step": str(step)})
    config.update(name=args.name, format=1, vocoder_steps=step)
    (out / "config.json").write_text(json.dumps(config, indent=1) + "\n")
    print(f"exported step {step} to {out}")


if __name__ == "__main__":
    main()
