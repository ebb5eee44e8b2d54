"""An ldcodec decoder plug-in in one file: ``smooth`` filters the stream's log-mel over time with
its own small model (one learned FIR filter per mel band) before the vocoder.

    pip install -e examples/plugin                         # registers it (pyproject.toml entry point)
    cp -r "$(python -c 'import codec.bundle as b; print(b.shipped_bundles()[0])')" my_bundle
    python examples/plugin/ldc_smooth.py my_bundle         # writes its weights into that bundle folder
    wav, sr = codec.decode(data, decoder="smooth", bundle="my_bundle")

``my_bundle`` is a model bundle folder (``config.json``, the vocoder's weights and add-ons; ``codec.bundle``):
a copy of the shipped one has its id, so it decodes every stream the shipped one does. Add-ons go into such
a copy, never into the installed package (a reinstall would drop them).

The whole plug-in contract: subclass :class:`codec.Decoder`, give it a ``name`` and the
``representations`` it reads, turn the dequantised :class:`codec.Coded` stream into 16 kHz audio,
and load weights from the bundle with :meth:`codec.Bundle.addon` (``smooth.json`` +
``smooth.safetensors``). Add-ons are outside the bundle id, so adding them orphans no stream and
a copy of the shipped bundle with them still decodes every stream the shipped one does. The
taps written here are set by hand; a real plug-in would train them like ``codec.train`` does.
"""
from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn

import codec
from codec.bundle import SHIPPED, typed
from codec.decoders import features, stream_mel, vocoder_for

ADDON = "smooth"


@dataclass(frozen=True)
class SmoothConfig:
    n_mels: int = 80
    kernel: int = 5  # frames (16 ms each)


class MelSmoother(nn.Module):
    """One FIR filter over frames per mel band (depthwise convolution): (1, n_mels, T) → (1, n_mels, T)."""

    def __init__(self, cfg: SmoothConfig):
        super().__init__()
        self.conv = nn.Conv1d(cfg.n_mels, cfg.n_mels, cfg.kernel, padding=cfg.kernel // 2, groups=cfg.n_mels,
                              padding_mode="replicate")

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return self.conv(mel)


class SmoothDecoder(codec.Decoder):
    """The stream's log-mel (cepstra inverted or latent decoded), filtered over time, then the vocoder."""

    name = "smooth"
    representations = ("mel", "latent")

    def __init__(self, bundle: codec.Bundle):
        super().__init__(bundle)
        self.smoother = bundle.addon(ADDON, lambda c: MelSmoother(typed(SmoothConfig, c.get(ADDON, {}), "smooth.json")))
        if self.smoother is None:
            raise codec.BundleError(f"bundle {bundle.name} has no {ADDON}.safetensors: {_add_it(bundle.path)}")

    def decode(self, coded: codec.Coded, steps: int | None):
        vocoder = vocoder_for(self.bundle)  # the vocoder `direct` renders with
        with torch.inference_mode():
            mel = self.smoother(stream_mel(self.bundle, coded))
            return vocoder(features(mel, coded.pitch, vocoder, coded.concealed))[0].numpy()


def _add_it(path: Path) -> str:
    """How to add the weights to the bundle in folder ``path``: into a copy when it is a shipped one."""
    if Path(path).resolve().is_relative_to(SHIPPED.resolve()):
        return (f"copy that bundle to a folder of your own (cp -r {path} my_bundle), add the weights there "
                f"(python examples/plugin/ldc_smooth.py my_bundle) and decode with it (--bundle my_bundle, "
                f"or bundle='my_bundle')")
    return f"add them with python examples/plugin/ldc_smooth.py {path}"


def export(bundle: Path, taps=(0.05, 0.2, 0.5, 0.2, 0.05), cfg: SmoothConfig = SmoothConfig()) -> None:
    """Write the add-on into the bundle folder ``bundle`` (a :class:`codec.BundleError` naming it unless it
    holds a bundle): the same ``taps`` (summing to 1) for every band."""
    codec.Bundle.load(bundle)  # a folder that is not a bundle (or does not exist) is refused by name
    model = MelSmoother(cfg)
    with torch.no_grad():
        model.conv.weight.copy_(torch.tensor(taps, dtype=torch.float32).expand(cfg.n_mels, 1, cfg.kernel))
        model.conv.bias.zero_()
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(Path(bundle) / f"{ADDON}.safetensors"))
    (Path(bundle) / f"{ADDON}.json").write_text(json.dumps({ADDON: asdict(cfg)}, indent=1) + "\n")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bundle", type=Path, help="bundle folder to add smooth.json + smooth.safetensors to (a copy of "
                                              "the shipped bundle, see above)")
    try:
        export(ap.parse_args().bundle)
    except codec.BundleError as exc:
        ap.exit(1, f"ldc_smooth: error: {exc}\n")
