"""Export a training checkpoint's EMA vocoder as a shipped bundle folder.

    python -m codec.train.export runs/vocoder/last.safetensors codec/bundles/default --name ldc-mel-v1
    python -m codec.train.export runs/stream_vocoder/last.safetensors codec/bundles/default --addon stream_vocoder

``--addon NAME`` adds the vocoder to an existing bundle as ``NAME.json`` + ``NAME.safetensors``
(``stream_vocoder``: the streaming decoder's causal vocoder; ``mel2mel_vocoder``: the vocoder
the mel2mel decoder uses; ``direct_vocoder``: the one ``direct`` and ``lat2lat`` render with,
e.g. adversarially fine-tuned). Add-ons are outside the bundle id.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from safetensors import safe_open
from safetensors.torch import save_file

from ..bundle import kept_latents

ADDONS = ("stream_vocoder", "mel2mel_vocoder", "direct_vocoder")


def ema_weights(ckpt: Path) -> tuple[dict, int]:
    """(EMA weights in fp16, training step) of a checkpoint."""
    with safe_open(str(ckpt), "pt") as f:
        return {k[4:]: f.get_tensor(k).half().contiguous() for k in f.keys() if k.startswith("ema.")}, \
            int(f.metadata()["step"])


def addon(ckpt: Path, bundle: Path, name: str, prefix: str = "") -> None:
    """A checkpoint's EMA weights (those under ``prefix``, which is cut, e.g. ``"decoder."``) + its run's
    config → ``bundle/NAME.safetensors`` and ``bundle/NAME.json``."""
    weights, step = ema_weights(ckpt)
    weights = {k[len(prefix):]: v for k, v in weights.items() if k.startswith(prefix)}
    save_file(weights, str(bundle / f"{name}.safetensors"), metadata={"step": str(step)})
    config = json.loads((ckpt.parent / "config.json").read_text())
    config["steps_trained"] = step
    (bundle / f"{name}.json").write_text(json.dumps(config, indent=1) + "\n")
    print(f"exported {name} step {step} to {bundle}")


def retire_latent(bundle: Path) -> str | None:
    """Keep ``bundle``'s latent autoencoder as its next latent generation before a new one replaces it:
    ``latent.*`` → ``latent_vN.*``, and the models made for it, ``latent_decoder.*`` → ``latent_vN_decoder.*``,
    ``lat2lat.*`` → ``latent_vN_lat2lat.*``; streams written with it keep decoding. → ``latent_vN``, or
    None when the bundle has no latent autoencoder."""
    if not (bundle / "latent.safetensors").exists():
        return None
    kept = kept_latents(bundle)
    name = f"latent_v{int(kept[0][len('latent_v'):]) + 1 if kept else 1}"
    for old, new in (("latent", name), ("latent_decoder", f"{name}_decoder"), ("lat2lat", f"{name}_lat2lat")):
        for suffix in (".json", ".safetensors"):
            if (bundle / f"{old}{suffix}").exists():
                (bundle / f"{old}{suffix}").rename(bundle / f"{new}{suffix}")
    return name


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint")
    ap.add_argument("out")
    ap.add_argument("--name", default="ldc-mel-v1")
    ap.add_argument("--addon", choices=ADDONS, help="write the vocoder into the bundle OUT as this add-on")
    args = ap.parse_args(argv)
    ckpt, out = Path(args.checkpoint), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.addon:
        return addon(ckpt, out, args.addon)
    weights, step = ema_weights(ckpt)
    config = json.loads((ckpt.parent / "config.json").read_text())
    save_file(weights, str(out / "vocoder.safetensors"), metadata={"step": str(step)})
    config.update(name=args.name, format=1, vocoder_steps=step)
    (out / "config.json").write_text(json.dumps(config, indent=1) + "\n")
    print(f"exported step {step} to {out}")


if __name__ == "__main__":
    main()
