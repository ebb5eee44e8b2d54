"""Fine-tune the shipped vocoder on your own speech, then encode/decode with the new bundle.

    python examples/train_on_my_voice.py MY_SPEECH_DIR [--steps 2000] [--out my_bundle]

MY_SPEECH_DIR holds .wav/.flac files (any rate; a few minutes is enough to adapt to a voice).
Training resumes if interrupted (run the same command again). On a CPU, 2000 steps take about
10 minutes; pass --steps to trade time for quality. The new bundle gets the shipped add-ons that do
not depend on the vocoder (the latent autoencoder, mel2mel, lat2lat, the streaming vocoder), so
every rate and decoder works with it: `ldcodec encode ... --bundle my_bundle`, or
`LDCODEC_BUNDLE=my_bundle` for a whole app.
"""
import argparse
import shutil
from pathlib import Path

import numpy as np

import codec
from codec.bundle import resolve
from codec.train import export, vocoder


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("speech", type=Path)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--out", type=Path, default=Path("my_bundle"))
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    run = args.out.with_name(args.out.name + "_run")
    base = resolve().path
    vocoder.main(["--data", str(args.speech), "--init", str(base), "--out", str(run),
                  "--steps", str(args.steps), "--lr", "2e-4", "--threads", str(args.threads)])
    export.main([str(run / "last.safetensors"), str(args.out), "--name", args.out.name])
    for part in sorted(base.iterdir()):  # add-ons independent of the vocoder's weights: every latent generation
        if part.suffix in (".json", ".safetensors") and (part.stem.startswith(("latent", "lat2lat"))
                                                         or part.stem in ("mel2mel", "stream_vocoder")):
            shutil.copy(part, args.out / part.name)

    first = next(p for p in sorted(args.speech.rglob("*")) if p.suffix.lower() in {".wav", ".flac"})
    data = codec.encode(first, kbps=0.6, bundle=args.out)  # a path, at its own rate; 0.6 kbps: a latent mode
    out, _ = codec.decode(data, bundle=args.out)  # streams name their bundle; pass it to decode
    print(f"{first.name}: {len(data)} bytes, decoded {len(out) / 16000:.2f} s with bundle {args.out}, "
          f"peak {np.abs(out).max():.2f}")


if __name__ == "__main__":
    main()
