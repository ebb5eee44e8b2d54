"""Public API: ``encode`` PCM → bytes, ``decode`` bytes → 16 kHz PCM, ``info`` bytes → header facts."""
from __future__ import annotations

import math
import warnings

import numpy as np
import torch

import bitstream
from bitstream import Header
from bitstream.modes import SAMPLE_RATE, check_kbps, check_layout, frames_for, mode_by_id, mode_for
from bitstream.payload import encode_groups

from . import bundle as bundles
from . import decoders, pitch, rate
from .audio import prepare
from .features import LogMel
from .mel_repr import mel_to_coefs


class DamagedStreamWarning(UserWarning):
    """decode(strict=False) concealed packets that were damaged or missing."""


def encode(wav, sample_rate: int = SAMPLE_RATE, kbps: float = 3.0, *, representation: str | None = None,
           bundle=None, seed: int = 0) -> bytes:
    """Encode speech to an ``.ldc`` byte string.

    ``wav``: numpy array or torch tensor, int or float PCM, shape (samples,) or
    (samples, channels) / (channels, samples); any ``sample_rate`` (Hz). ``kbps`` (0.3–6) is the
    target average rate: the rate control picks the finest quantiser whose file, header included,
    stays at or under it. ``representation`` ("mel" or "latent") overrides the ladder's choice.
    """
    kbps = check_kbps(kbps)
    mode = mode_for(kbps, representation)
    b = bundles.resolve(bundle)
    bundle_id = b.stream_id(mode.representation)
    if not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**32:
        raise ValueError(f"seed must be an integer in [0, 2**32), got {seed!r}")
    x, source_channels = prepare(wav, sample_rate)
    frames = frames_for(len(x))
    padded = np.pad(x, (0, max(0, b.mel_config.n_fft - len(x))))  # the STFT needs one window of audio
    with torch.inference_mode():
        mel = LogMel(b.mel_config)(torch.from_numpy(padded)[None])[..., :frames]
        if mode.representation == "latent":
            values = b.latent.encoder(mel)[0].T.numpy()
        else:
            values = mel_to_coefs(mel, mode.n_coefs, mode.decimation)[0].T.numpy()
    pitch_index, voiced = pitch.group(*pitch.estimate(x), mode.decimation)
    n_packets = math.ceil(len(values) / mode.groups_per_packet)
    hdr = Header(sample_rate=SAMPLE_RATE, mode_id=mode.id, representation=mode.representation,
                 bundle_id=bundle_id, frames_per_packet=mode.groups_per_packet, num_samples=len(x),
                 num_packets=n_packets, seed=int(seed), decoder=mode.default_decoder,
                 source_rate=int(sample_rate), source_channels=int(source_channels))

    def file_at(g: int) -> bytes:
        return bitstream.write_file(hdr, encode_groups(mode, values, pitch_index, voiced, g))

    budget = kbps * 1000 * len(x) / SAMPLE_RATE / 8  # bytes
    return rate.fit(file_at, budget, mode.typical_g)[1]  # the finest step whose file fits


def decode(data: bytes, *, decoder: str | None = None, steps: int | None = None, bundle=None,
           strict: bool = True) -> tuple[np.ndarray, int]:
    """Decode an ``.ldc`` byte string → (float32 waveform (samples,), 16000).

    ``decoder`` overrides the stream's default (see ``ldcodec modes``); ``steps`` is the
    diffusion decoders' cost knob (Euler steps). With ``strict=True`` any damage raises a
    ``bitstream.BitstreamError``; with ``strict=False`` damaged or missing packets are
    concealed as silence and a :class:`DamagedStreamWarning` names them.
    """
    data = bytes(data)
    header = bitstream.read_header(data)[0]
    check_layout(header)  # before the bundle: a header that contradicts itself is malformed
    b = bundles.for_stream(header.bundle_id, bundle, header.representation)
    cls = decoders.get(decoder or header.decoder, header.representation)
    steps = decoders.check_steps(cls, steps)
    header, groups = bitstream.read_groups(data, strict=strict)
    if groups.lost.any():
        lost = groups.lost_packets
        warnings.warn(f"concealed {len(lost)} damaged or missing packet(s) as silence: {lost}",
                      DamagedStreamWarning, stacklevel=2)
    coded = decoders.Coded.from_groups(groups, b, header.seed, frames_for(header.num_samples))
    wav = cls(b).decode(coded, steps)
    out = np.zeros(header.num_samples, dtype=np.float32)
    out[: min(len(wav), len(out))] = wav[: len(out)]
    return out, SAMPLE_RATE


def info(data: bytes) -> dict:
    """Header fields, achieved kbps (from the bytes), packet health and the mode; no model needed."""
    facts = bitstream.info(bytes(data))
    try:
        mode = mode_by_id(facts["mode_id"])
        facts["mode"] = {"kbps_range": [mode.min_kbps, mode.max_kbps], "n_coefs": mode.n_coefs,
                         "group_rate_hz": mode.group_rate, "packet_ms": mode.packet_ms}
    except KeyError:
        facts["mode"] = None
    return facts
