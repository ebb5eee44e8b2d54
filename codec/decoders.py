"""Decoder plug-ins: a registry of names → classes that turn dequantised features into 16 kHz audio.

Built-in: ``direct`` (features straight to the vocoder). Third parties register a class through
the ``ldcodec.decoders`` entry-point group (``name = "pkg.module:Class"``); the class follows
:class:`Decoder`. Diffusion decoders (``mel2mel``, ``lat2lat``) plug in the same way.
"""
from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import ClassVar

import numpy as np
import torch

from .bundle import BundleError
from .modes import STORAGE_MODES, Mode

ENTRY_POINT_GROUP = "ldcodec.decoders"


@dataclass(frozen=True)
class Coded:
    """What a stream carries, dequantised, ready for a decoder.

    ``features``: (1, n_mels + 2, frames) log-mel (nats) at 62.5 Hz stacked with [voicing, log-F0
    octaves] (for latent streams, the latent decoder's mel); ``step``: (frames,) quantiser step of
    each frame's packet (nats, or latent units); ``mode``: the stream's ladder rung; ``seed``: the
    header's seed for generative decoders; ``latent``: latent streams' dequantised latent
    (1, channels, groups) at 12.5 Hz, else None; ``concealed``: (frames,) bool, the frames of lost
    packets, whose ``features`` hold the concealment (``codec.conceal``), or None.
    """

    features: torch.Tensor
    step: np.ndarray
    mode: Mode
    seed: int
    latent: torch.Tensor | None = None
    concealed: np.ndarray | None = None


class Decoder:
    """Base class. Subclasses set ``name``, ``representations`` and, if they have a cost knob,
    ``default_steps`` (diffusion/flow steps; None = no knob)."""

    name: ClassVar[str]
    representations: ClassVar[tuple[str, ...]]
    default_steps: ClassVar[int | None] = None

    def __init__(self, bundle):
        self.bundle = bundle

    def decode(self, coded: Coded, steps: int | None) -> np.ndarray:
        """Dequantised stream → float32 waveform (samples,) at 16 kHz."""
        raise NotImplementedError


class DirectDecoder(Decoder):
    """No diffusion: the dequantised log-mel (or the latent decoder's mel) goes straight to the
    bundle's vocoder (fast path)."""

    name = "direct"
    representations = ("mel", "latent")

    def decode(self, coded, steps):
        with torch.inference_mode():
            return self.bundle.direct_vocoder(coded.features)[0].numpy()


class Mel2MelDecoder(Decoder):
    """Flow matching in the log-mel domain (``codec.mel2mel``), ``steps`` Euler steps, then the vocoder.

    The prior noise is drawn from a generator seeded with the header's seed, so a stream decodes
    to the same samples every time on one machine.
    """

    name = "mel2mel"
    representations = ("mel",)
    default_steps = 4

    def __init__(self, bundle):
        super().__init__(bundle)
        if bundle.mel2mel is None:
            raise BundleError(f"bundle {bundle.name} has no mel2mel model (mel2mel.safetensors); use decoder='direct'")

    def decode(self, coded, steps):
        from .mel2mel import quantiser_rows

        model = self.bundle.mel2mel
        n_mels = model.cfg.n_mels
        feats = coded.features
        rows = quantiser_rows(coded.step, coded.mode.n_coefs, coded.mode.decimation, feats.shape[-1])
        generator = torch.Generator().manual_seed(coded.seed)
        with torch.inference_mode():
            mel = model.sample(torch.cat([feats, rows], dim=1), steps, generator)
            return self.bundle.mel2mel_vocoder(torch.cat([mel, feats[:, n_mels:]], dim=1))[0].numpy()


class Lat2LatDecoder(Decoder):
    """Flow matching in the latent domain (``codec.lat2lat``), ``steps`` Euler steps, then the latent
    decoder and the vocoder. Noise seeded from the header, like mel2mel."""

    name = "lat2lat"
    representations = ("latent",)
    default_steps = 4

    def __init__(self, bundle):
        super().__init__(bundle)
        if bundle.lat2lat is None:
            raise BundleError(f"bundle {bundle.name} has no lat2lat model (lat2lat.safetensors); use decoder='direct'")

    def decode(self, coded, steps):
        from .lat2lat import restore

        d = coded.mode.decimation
        n_mels = self.bundle.latent.cfg.n_mels
        aux = coded.features[:, n_mels:]
        frames = d * coded.latent.shape[-1]
        group_step = torch.from_numpy(np.ascontiguousarray(coded.step[:frames:d])).float()
        generator = torch.Generator().manual_seed(coded.seed)
        with torch.inference_mode():
            z = restore(self.bundle.lat2lat, coded.latent, aux[..., :frames], group_step, d, steps, generator)
            mel = self.bundle.latent.decoder(z, aux, group_step[None])
            if coded.concealed is not None:  # lost packets: the concealment, not the restored latent
                lost = torch.from_numpy(coded.concealed[: mel.shape[-1]])
                mel[..., lost] = coded.features[:, :n_mels, : mel.shape[-1]][..., lost]
            return self.bundle.direct_vocoder(torch.cat([mel, aux], dim=1))[0].numpy()


BUILTIN: dict[str, type[Decoder]] = {cls.name: cls for cls in (DirectDecoder, Mel2MelDecoder, Lat2LatDecoder)}


def available() -> dict[str, type[Decoder]]:
    """All decoders: built-ins plus those registered through the entry-point group."""
    found = dict(BUILTIN)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in found:
            continue
        try:
            cls = ep.load()
        except Exception as exc:  # noqa: BLE001 - a broken plug-in must not break decoding
            raise ImportError(f"decoder plug-in {ep.name!r} ({ep.value}) failed to load: {exc}") from exc
        found[ep.name] = cls
    return found


def get(name: str, representation: str) -> type[Decoder]:
    """The decoder class called ``name``; a clear error if unknown or incompatible."""
    decoders = available()
    compatible = sorted(n for n, c in decoders.items() if representation in c.representations)
    if name not in decoders:
        raise ValueError(f"unknown decoder {name!r}; decoders for {representation!r} streams: {', '.join(compatible)}")
    if representation not in decoders[name].representations:
        raise ValueError(f"decoder {name!r} cannot decode {representation!r} streams; "
                         f"compatible decoders: {', '.join(compatible)}")
    return decoders[name]


def check_steps(cls: type[Decoder], steps) -> int | None:
    if steps is None:
        return cls.default_steps
    if cls.default_steps is None:
        raise ValueError(f"decoder {cls.name!r} has no steps knob (it is not a diffusion decoder)")
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or not 1 <= steps <= 1000:
        raise ValueError(f"steps must be an integer from 1 to 1000, got {steps!r}")
    return int(steps)


def check_spec(name: str | None, steps) -> None:
    """What can be checked of a decoder choice before seeing a stream: ``name`` is a known decoder
    (None: each mode's default) and ``steps`` suits it."""
    known = available()
    for n in [name] if name else sorted({m.default_decoder for m in STORAGE_MODES}):
        if n not in known:
            raise ValueError(f"unknown decoder {n!r}; decoders: {', '.join(sorted(known))}")
        check_steps(known[n], steps)
