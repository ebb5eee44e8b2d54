"""Decoder plug-ins: a registry of names → classes that turn a dequantised stream into 16 kHz audio.

Every decoder starts from the same :class:`Coded` stream and owns the whole way to sound: its
representation → log-mel → *features* → waveform. Vocabulary used throughout ``codec``:
*features* are always the vocoder's input, (batch, n_mels + 2, frames) at 62.5 Hz: a log-mel (nats)
stacked with the two pitch rows; the coded *values* are what the stream quantised (cepstral
coefficients or latent channels); *step size* is the quantiser's (``Coded.step_size``) while
``steps`` is a diffusion decoder's count of Euler steps, its cost knob.

Built-in: ``direct`` (values straight to the vocoder), ``mel2mel`` and ``lat2lat`` (flow matching).
Third parties register a :class:`Decoder` subclass through the ``ldcodec.decoders`` entry-point group
(``name = "pkg.module:Class"``, see ``examples/plugin``). Every decoder, built-in or plug-in, loads its
own weights from the bundle with :meth:`codec.Bundle.addon`: the built-ins their vocoder
(:func:`vocoder_for`), the latent decoder (:func:`latent_decoder`) and their flow model
(``codec.mel2mel.load``, ``codec.lat2lat.load``).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from importlib.metadata import entry_points
from typing import ClassVar

import numpy as np
import torch

from bitstream import BitstreamError, Groups, Mode
from bitstream.modes import HOP, STORAGE_MODES

from . import chunked, lat2lat, mel2mel, pitch
from .bundle import BundleError, typed
from .conceal import conceal
from .latent import LatentConfig, LatentDecoder
from .mel_repr import SILENCE_LOGMEL, clamp_logmel, coefs_to_mel, silence_coefs, smooth_frames
from .vocoder_input import stack

ENTRY_POINT_GROUP = "ldcodec.decoders"
# Long losses are not rendered (:func:`render`): past the hold and the fade a lost run is silence. A run is cut
# when it is longer than KEEP + LEAD + MIN_GAP frames; the audio before it keeps KEEP of its frames (hold,
# fade from as high as 8 nats, the vocoder's context), the audio after it starts LEAD frames early (the
# context its onset needs), and the frames between are silence, never rendered.
KEEP_FRAMES, LEAD_FRAMES, MIN_GAP_FRAMES = 72, 48, 64


class DecoderError(BitstreamError):
    """The stream's header names a decoder that cannot decode it here: not installed (see
    :class:`MissingDecoderError`), or one that does not read the stream's representation."""


class MissingDecoderError(DecoderError):
    """The stream's header names a decoder this installation does not have, e.g. a plug-in not installed."""


@dataclass(frozen=True)
class Coded:
    """A dequantised stream: what every decoder starts from (batch 1).

    ``values`` (1, K, groups) float32: the coded values, dequantised — cepstral coefficients (mel
    modes, nats) or latent channels (latent modes); the groups of lost packets hold the last good
    group's values (silence's before any);
    ``step_size`` (groups,) float64: the quantiser step of each group's packet (same units);
    ``pitch`` (1, 2, frames) float32: the pitch rows of the features, [voicing, log2(F0 / 170 Hz)]
    at 62.5 Hz (``codec.pitch.features``), unvoiced over lost packets; ``mode``: the stream's ladder
    rung; ``seed``: the header's seed for generative decoders; ``concealed`` (frames,) bool: the
    frames of lost packets, or None when none was lost — pass it to :func:`features`, which
    replaces them by the stream decoder's hold-and-fade concealment (``codec.conceal``).
    """

    values: torch.Tensor
    step_size: np.ndarray
    pitch: torch.Tensor
    mode: Mode
    seed: int
    concealed: np.ndarray | None = None

    @property
    def frames(self) -> int:
        """Mel frames (62.5 Hz) the stream covers."""
        return self.pitch.shape[-1]

    def groups(self, start: int, stop: int) -> Coded:
        """The part of the stream from group ``start`` to group ``stop`` (exclusive), its frames with it."""
        d = self.mode.decimation
        f0, f1 = start * d, min(stop * d, self.frames)
        concealed = None if self.concealed is None else self.concealed[f0:f1]
        return replace(self, values=self.values[..., start:stop], step_size=self.step_size[start:stop],
                       pitch=self.pitch[..., f0:f1], concealed=concealed if concealed is not None and
                       concealed.any() else None)

    @classmethod
    def from_groups(cls, groups: Groups, bundle, seed: int, frames: int) -> Coded:
        """A stream's groups (``bitstream.read_groups``) → Coded over ``frames`` mel frames; lost
        groups hold the last good group's values (before any, the values of silence in ``bundle``'s
        representation), unvoiced, and their frames are marked ``concealed``."""
        values, concealed = groups.values.copy(), None
        if groups.lost.any():
            held = _silence(bundle, groups.mode)
            for i in range(len(values)):
                if groups.lost[i]:
                    values[i] = held
                else:
                    held = values[i]
            concealed = np.repeat(groups.lost, groups.mode.decimation)[:frames]
        rows = pitch.features(groups.pitch, groups.voiced, groups.mode.decimation, frames)
        return cls(torch.from_numpy(values.T.copy())[None], groups.step_size, torch.from_numpy(rows)[None],
                   groups.mode, seed, concealed)


def vocoder_for(bundle, addon: str = "direct_vocoder"):
    """The vocoder a decoder renders with: ``bundle``'s vocoder add-on ``addon`` (``direct_vocoder``: ``direct``
    and ``lat2lat``; ``mel2mel_vocoder``: ``mel2mel``; e.g. fine-tuned for that decoder) if it ships one, else
    its reference vocoder (``Bundle.vocoder``)."""
    return bundle.vocoder_addon(addon) or bundle.vocoder


def latent_decoder(bundle):
    """The decoder that renders ``bundle``'s latent streams: its ``latent_decoder`` add-on (for a kept latent
    generation ``latent_vN_decoder``; e.g. adversarially fine-tuned: the encoder, what streams mean, stays
    in the autoencoder) if shipped, else the autoencoder's own; None without a latent autoencoder."""
    if bundle.latent is None:
        return None
    name = bundle.latent_addon("decoder")
    return bundle.addon(name, lambda c: LatentDecoder(typed(LatentConfig, c.get("latent"), f"{name}.json"))) \
        or bundle.latent.decoder


def _silence(bundle, mode: Mode) -> np.ndarray:
    """The coded values (K,) of a silent group: what a concealed packet holds."""
    if mode.representation == "mel":
        return silence_coefs(bundle.mel_config.n_mels, mode.n_coefs)
    with torch.inference_mode():
        silent = torch.full((1, bundle.mel_config.n_mels, mode.decimation), SILENCE_LOGMEL)
        return bundle.latent.encoder(silent)[0, :, 0].numpy()


def _extend(x: torch.Tensor, frames: int, fill: float) -> torch.Tensor:
    """(1, C, T) → (1, C, max(T, frames)), new frames set to ``fill``."""
    short = frames - x.shape[-1]
    return torch.cat([x, torch.full((1, x.shape[1], short), fill)], dim=-1) if short > 0 else x


def min_frames(vocoder) -> int:
    """The few frames ``vocoder``'s iSTFT needs at least: n_fft / hop + 1."""
    return vocoder.cfg.n_fft // vocoder.cfg.hop + 1


def _mask(concealed: np.ndarray, frames: int) -> np.ndarray:
    """``concealed`` (T,) bool cut or extended with False to ``frames``."""
    out = np.zeros(frames, bool)
    n = min(frames, len(concealed))
    out[:n] = concealed[:n]
    return out


def features(mel: torch.Tensor, rows: torch.Tensor, vocoder, concealed: np.ndarray | None = None) -> torch.Tensor:
    """Log-mel (1, n_mels, T) + pitch rows (1, 2, T) → features (1, n_mels + 2, max(T, min_frames)),
    the log-mel clamped to ``mel_repr.LOGMEL_RANGE`` (what a vocoder can render) and extended with silent,
    unvoiced frames for short streams. ``concealed`` (``Coded.concealed``):
    the frames of lost packets, replaced by the last good frame held, then faded (``codec.conceal``)."""
    frames = min_frames(vocoder)
    mel = clamp_logmel(mel)
    out = stack(_extend(mel, frames, SILENCE_LOGMEL), _extend(rows, frames, 0.0))
    if concealed is not None and concealed.any():
        out = conceal(out, _mask(concealed, out.shape[-1]), mel.shape[1])
    return out


def stream_mel(bundle, coded: Coded) -> torch.Tensor:
    """The log-mel (1, n_mels, frames) the dequantised values stand for: cepstra inverted, or the
    latent decoded by the bundle's :func:`latent_decoder` (no restoration)."""
    if coded.mode.representation == "latent":
        return chunked.decode_latent(latent_decoder(bundle), coded.values, coded.pitch,
                                     torch.from_numpy(coded.step_size)[None].float())
    return coefs_to_mel(coded.values, bundle.mel_config.n_mels, coded.mode.decimation, coded.frames)


class Decoder:
    """Base class. Subclasses set ``name``, ``representations`` and, if they have a cost knob,
    ``default_steps`` (diffusion/flow steps; None = no knob), and implement :meth:`decode`.
    ``bundle`` is the :class:`codec.Bundle` the stream names; load extra weights with
    ``bundle.addon(name, build)`` (the built-ins do), the vocoder with :func:`vocoder_for`."""

    name: ClassVar[str]
    representations: ClassVar[tuple[str, ...]]
    default_steps: ClassVar[int | None] = None

    def __init__(self, bundle):
        self.bundle = bundle

    def decode(self, coded: Coded, steps: int | None) -> np.ndarray:
        """Dequantised stream → float32 waveform (samples,) at 16 kHz (trimmed to length by the caller)."""
        raise NotImplementedError


class DirectDecoder(Decoder):
    """No diffusion: the stream's log-mel (cepstra inverted and low-passed in time, or the latent decoded) goes to the
    bundle's vocoder (fast path)."""

    name = "direct"
    representations = ("mel", "latent")

    def decode(self, coded, steps):
        vocoder = vocoder_for(self.bundle)
        with torch.inference_mode():
            mel = stream_mel(self.bundle, coded)
            if coded.mode.representation == "mel":
                mel = smooth_frames(mel)
            return chunked.vocode(vocoder, features(mel, coded.pitch, vocoder, coded.concealed))


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
        self.model = mel2mel.load(bundle)
        if self.model is None:
            raise BundleError(f"bundle {bundle.name} has no mel2mel model (mel2mel.safetensors); use decoder='direct'")

    def decode(self, coded, steps):
        model, vocoder, mode = self.model, vocoder_for(self.bundle, "mel2mel_vocoder"), coded.mode
        n_mels = model.cfg.n_mels
        feats = features(stream_mel(self.bundle, coded), coded.pitch, vocoder, coded.concealed)
        step_size = np.repeat(coded.step_size, mode.decimation)[:coded.frames]  # per frame
        step_size = np.pad(step_size, (0, feats.shape[-1] - len(step_size)), mode="edge")
        rows = mel2mel.quantiser_rows(step_size, mode.n_coefs, mode.decimation, feats.shape[-1])
        generator = torch.Generator().manual_seed(coded.seed)
        with torch.inference_mode():
            mel = clamp_logmel(model.sample(torch.cat([feats, rows], dim=1), steps, generator))
            return chunked.vocode(vocoder, torch.cat([mel, feats[:, n_mels:]], dim=1))


class Lat2LatDecoder(Decoder):
    """Flow matching in the latent domain (``codec.lat2lat``), ``steps`` Euler steps, then the latent
    decoder and the vocoder. Noise seeded from the header, like mel2mel."""

    name = "lat2lat"
    representations = ("latent",)
    default_steps = 4

    def __init__(self, bundle):
        super().__init__(bundle)
        self.model = lat2lat.load(bundle)
        if self.model is None:
            name = bundle.latent_addon("lat2lat")
            raise BundleError(f"bundle {bundle.name} has no lat2lat model for its latent autoencoder "
                              f"{bundle.latent_name} ({name}.safetensors); use decoder='direct'")

    def decode(self, coded, steps):
        vocoder, d = vocoder_for(self.bundle), coded.mode.decimation
        step_size = torch.from_numpy(coded.step_size).float()
        generator = torch.Generator().manual_seed(coded.seed)
        with torch.inference_mode():
            concealment = None
            if coded.concealed is None:
                rows = _extend(coded.pitch, min_frames(vocoder), 0.0)
            else:  # lost packets: the stream's concealed features, whose pitch rows condition the restoration
                concealment = features(stream_mel(self.bundle, coded), coded.pitch, vocoder, coded.concealed)
                rows = concealment[:, self.bundle.latent.cfg.n_mels:]
            z = lat2lat.restore(self.model, coded.values, rows[..., :d * coded.values.shape[-1]], step_size, d, steps,
                        generator)
            mel = clamp_logmel(latent_decoder(self.bundle)(z, rows, step_size[None]))
            if concealment is not None:  # lost packets: the concealment, not the restored latent
                lost = torch.from_numpy(_mask(coded.concealed, mel.shape[-1]))
                mel[..., lost] = concealment[:, :mel.shape[1], :mel.shape[-1]][..., lost]
            return chunked.vocode(vocoder, torch.cat([mel, rows], dim=1))


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


def unusable(cls: type[Decoder], bundle, mode: Mode) -> str | None:
    """Why decoder ``cls`` cannot decode the streams ``bundle`` writes in ``mode`` (it reads another representation,
    or the bundle lacks its model for them, e.g. the ``lat2lat`` of a latent generation), or None when it can.
    Builds the decoder once: its models load (and stay loaded) with the bundle."""
    if mode.representation not in cls.representations:
        return f"it cannot read {mode.representation} streams"
    try:
        cls(bundle.writing(mode))
    except BundleError as exc:
        return str(exc)
    return None


def get(name: str, representation: str, from_header: bool = False) -> type[Decoder]:
    """The decoder class called ``name``; a clear error if unknown or incompatible: a ``ValueError`` for a
    name the caller chose, a :class:`DecoderError` (a ``BitstreamError``) for one the stream's header names
    (``from_header``), :class:`MissingDecoderError` when it is not installed."""
    if name in BUILTIN and representation in BUILTIN[name].representations:
        return BUILTIN[name]  # a built-in wins over any plug-in of its name: no entry-point scan (8 ms)
    decoders = available()
    compatible = ", ".join(sorted(n for n, c in decoders.items() if representation in c.representations))
    if name not in decoders:
        if from_header:
            raise MissingDecoderError(
                f"the stream's header asks for decoder {name!r}, which is not installed: install the plug-in that "
                f"provides it (a package registering {name!r} in the {ENTRY_POINT_GROUP!r} entry-point group), or "
                f"choose another decoder for {representation!r} streams: {compatible}")
        raise ValueError(f"unknown decoder {name!r}; decoders for {representation!r} streams: {compatible}")
    if representation not in decoders[name].representations:
        what = f"the stream's header names decoder {name!r}, which" if from_header else f"decoder {name!r}"
        raise (DecoderError if from_header else ValueError)(
            f"{what} cannot decode {representation!r} streams; compatible decoders: {compatible}")
    return decoders[name]


def check_steps(cls: type[Decoder], steps) -> int | None:
    if steps is None:
        return cls.default_steps
    if cls.default_steps is None:
        raise ValueError(f"decoder {cls.name!r} has no steps knob (it is not a diffusion decoder)")
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or not 1 <= steps <= 1000:
        raise ValueError(f"steps must be an integer from 1 to 1000, got {steps!r}")
    return int(steps)


def _spans(coded: Coded) -> list[tuple[int, int]] | None:
    """The group ranges :func:`render` renders (the rest is silence), or None to render the whole stream."""
    if coded.concealed is None:
        return None
    d = coded.mode.decimation
    lost = coded.concealed[::d]  # per group
    n, keep, lead = len(lost), -(-KEEP_FRAMES // d), -(-LEAD_FRAMES // d)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], lost.astype(np.int8), [0]])))
    spans, start = [], 0
    for a, b in zip(edges[::2], edges[1::2]):
        cut0 = a + keep if a else 0  # nothing heard before the run: it is silence from its start
        cut1 = b - lead if b < n else n  # lost to the end: nothing follows
        if (cut1 - cut0) * d < MIN_GAP_FRAMES:
            continue
        if cut0 > start:
            spans.append((start, cut0))
        start = cut1
    if start < n:
        spans.append((start, n))
    return None if spans == [(0, n)] else spans


def render(decoder: Decoder, coded: Coded, steps: int | None) -> np.ndarray:
    """``decoder.decode(coded, steps)`` → float32 waveform at 16 kHz, with every long run of lost packets
    (longer than ``KEEP_FRAMES + LEAD_FRAMES + MIN_GAP_FRAMES`` frames) left silent instead of rendered: the
    parts around it are decoded separately, so a damaged stream costs work in proportion to what arrived."""
    spans = _spans(coded)
    if spans is None:
        return decoder.decode(coded, steps)
    out = np.zeros(coded.frames * HOP, np.float32)
    for g0, g1 in spans:
        wav = decoder.decode(coded.groups(g0, g1), steps)
        at = g0 * coded.mode.decimation * HOP
        n = max(0, min(len(wav), len(out) - at))
        out[at: at + n] = wav[:n]
    return out


def check_spec(name: str | None, steps) -> None:
    """What can be checked of a decoder choice before seeing a stream: ``name`` is a known decoder
    (None: each mode's default) and ``steps`` suits it."""
    known = available()
    for n in [name] if name else sorted({m.default_decoder for m in STORAGE_MODES}):
        if n not in known:
            raise ValueError(f"unknown decoder {n!r}; decoders: {', '.join(sorted(known))}")
        check_steps(known[n], steps)
