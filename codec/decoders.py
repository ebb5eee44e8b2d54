"""Decoder plug-ins: a registry of names → classes that turn dequantised features into 16 kHz audio.

Built-in: ``direct`` (features straight to the vocoder). Third parties register a class through
the ``ldcodec.decoders`` entry-point group (``name = "pkg.module:Class"``); the class follows
:class:`Decoder`. Diffusion decoders (``mel2mel``, ``lat2lat``) plug in the same way.
"""
from __future__ import annotations

from importlib.metadata import entry_points
from typing import ClassVar

import numpy as np
import torch

ENTRY_POINT_GROUP = "ldcodec.decoders"


class Decoder:
    """Base class. Subclasses set ``name``, ``representations`` and, if they have a cost knob,
    ``default_steps`` (diffusion/flow steps; None = no knob)."""

    name: ClassVar[str]
    representations: ClassVar[tuple[str, ...]]
    default_steps: ClassVar[int | None] = None

    def __init__(self, bundle):
        self.bundle = bundle

    def decode(self, features: torch.Tensor, steps: int | None, seed: int) -> np.ndarray:
        """Features (1, channels, frames) → float32 waveform (samples,) at 16 kHz."""
        raise NotImplementedError


class DirectDecoder(Decoder):
    """No diffusion: the dequantised log-mel goes straight to the bundle's vocoder (fast path)."""

    name = "direct"
    representations = ("mel",)

    def decode(self, features, steps, seed):
        with torch.inference_mode():
            return self.bundle.vocoder(features)[0].numpy()


BUILTIN: dict[str, type[Decoder]] = {DirectDecoder.name: DirectDecoder}


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
