"""Public API: ``encode`` PCM → bytes, ``decode`` bytes → 16 kHz PCM, ``info`` bytes → header facts."""
from __future__ import annotations

import math
import os
import warnings
from pathlib import Path

import numpy as np
import torch

import bitstream
from bitstream import Header
from bitstream.modes import SAMPLE_RATE, Mode, check_kbps, check_layout, frames_for, mode_for
from bitstream.payload import encode_groups

from . import chunked, decoders, pitch, rate
from .audio import AudioInputError, load, prepare
from .bundle import BundleError, for_stream, resolve
from .mel_repr import mel_to_coefs

DAMAGE_HINT = "pass strict=False (ldcodec decode --allow-damaged) to decode the rest with damaged packets concealed"
CLI_DAMAGE_HINT = "decode with --allow-damaged to conceal the damaged packets and decode the rest"


class DamagedStreamWarning(UserWarning):
    """decode(strict=False) concealed packets that were damaged or missing."""


class RateWarning(UserWarning):
    """encode could not meet the requested kbps: the input is too short for the header and packet framing."""


class BundleWarning(UserWarning):
    """The bundle lacks the latent autoencoder a rate's ladder rung needs, so encode used the mel modes."""


WARNINGS = (DamagedStreamWarning, RateWarning, BundleWarning)  # what the CLI reports beside a file's result


def encode_mode(kbps: float, representation: str | None = None, bundle=None) -> Mode:
    """The mode :func:`encode` writes for ``kbps``: the ladder's rung, or ``representation``'s. A bundle
    without the latent autoencoder of that rung's layout (``Bundle.writing``) falls back from the
    ladder's latent rungs to the mel ones (:class:`BundleWarning`); asking it for ``representation="latent"``
    is a ``bundle.BundleError``."""
    mode = mode_for(kbps, representation)
    b = resolve(bundle)
    try:
        b.writing(mode)
    except BundleError as missing:
        if representation == "latent":
            raise BundleError(f"{missing}, so it cannot write latent streams at {float(kbps):g} kbps; "
                              f"use representation='mel'") from None
        mode = mode_for(kbps, "mel")
        warnings.warn(f"{missing}: {float(kbps):g} kbps uses the mel representation (mode {mode.id})",
                      BundleWarning, stacklevel=3)
    return mode


def _ldc_bytes(data) -> bytes:
    """An ``.ldc`` byte string (bytes-like), or a path (str / PathLike) to read it from."""
    if isinstance(data, (str, os.PathLike)):
        return Path(data).read_bytes()
    try:
        return bytes(memoryview(data))
    except TypeError:
        raise TypeError(f"expected the .ldc bytes or a path to a .ldc file, got {type(data).__name__}") from None


def encode(wav, sample_rate: int | None = None, kbps: float = 3.0, *, representation: str | None = None,
           bundle=None, seed: int = 0) -> bytes:
    """Encode speech to an ``.ldc`` byte string.

    ``wav``: numpy array or torch tensor, int or float PCM (dtypes: README "Python API"), shape
    (samples,) or (samples, channels) / (channels, samples), at ``sample_rate`` Hz (default 16000);
    or a path to an audio file (read with soundfile, at its own rate). ``kbps`` (0.3–6) is the target
    average rate: the rate control picks the finest quantiser whose file, header included, stays at
    or under it; an input too short for that (under ~0.1–2 s, depending on the rate) gets the
    coarsest one and a :class:`RateWarning`. ``representation`` ("mel" or "latent") overrides the
    ladder's choice (see :func:`encode_mode`).
    """
    kbps = check_kbps(kbps)
    b = resolve(bundle)
    mode = encode_mode(kbps, representation, b)
    b = b.writing(mode)  # for a latent mode, the latent generation of its layout
    bundle_id = b.stream_id(mode.representation)
    if not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**32:
        raise ValueError(f"seed must be an integer in [0, 2**32), got {seed!r}")
    if isinstance(wav, (str, os.PathLike)):
        path = wav
        wav, file_rate = load(path)
        if sample_rate not in (None, file_rate):
            raise AudioInputError(f"{path} is sampled at {file_rate} Hz, but sample_rate={sample_rate} was given "
                                  f"(leave it out for files)")
        sample_rate = file_rate
    sample_rate = SAMPLE_RATE if sample_rate is None else sample_rate
    x, source_channels = prepare(wav, sample_rate)
    mel, f0, voiced = chunked.analyse(x, b.mel_config)  # log-mel and pitch track, in blocks for long inputs
    with torch.inference_mode():
        if mode.representation == "latent":
            values = chunked.encode_latent(b.latent.encoder, mel)[0].T.numpy()
        else:
            values = mel_to_coefs(mel, mode.n_coefs, mode.decimation)[0].T.numpy()
    pitch_index, voiced = pitch.group(f0, voiced, mode.decimation)
    n_packets = math.ceil(len(values) / mode.groups_per_packet)
    hdr = Header(sample_rate=SAMPLE_RATE, mode_id=mode.id, representation=mode.representation,
                 bundle_id=bundle_id, frames_per_packet=mode.groups_per_packet, num_samples=len(x),
                 num_packets=n_packets, seed=int(seed), decoder=mode.default_decoder,
                 source_rate=int(sample_rate), source_channels=int(source_channels))

    def file_at(step_index: int) -> bytes:
        return bitstream.write_file(hdr, encode_groups(mode, values, pitch_index, voiced, step_index))

    seconds = len(x) / SAMPLE_RATE
    budget_bits = kbps * 1000 * seconds
    data = rate.fit(file_at, budget_bits / 8, mode.typical_g)[1]  # the finest step whose file fits
    if len(data) * 8 > budget_bits:  # even the coarsest step does not fit: header and framing dominate
        warnings.warn(f"{seconds:.3g} s of audio is too short for {kbps:g} kbps: the smallest file is {len(data)} "
                      f"bytes ({len(data) * 8 / seconds / 1000:.4g} kbps, header included); at {kbps:g} kbps that "
                      f"many bytes need at least {len(data) * 8 / (kbps * 1000):.2f} s", RateWarning, stacklevel=2)
    return data


def _hinted(exc: bitstream.BitstreamError, hint: str = DAMAGE_HINT) -> bitstream.BitstreamError:
    """``exc`` (a packet's damage) with the way to decode the rest anyway (``hint``) appended."""
    return type(exc)(f"{exc}; {hint}")


def decode(data, *, decoder: str | None = None, steps: int | None = None, bundle=None,
           strict: bool = True) -> tuple[np.ndarray, int]:
    """Decode an ``.ldc`` byte string (or a path to an ``.ldc`` file) → (float32 waveform (samples,), 16000).

    ``decoder`` overrides the stream's default (see ``ldcodec modes``); ``steps`` is the
    diffusion decoders' cost knob (Euler steps). With ``strict=True`` any damage raises a
    ``bitstream.BitstreamError``; with ``strict=False`` damaged or missing packets are concealed
    like the stream decoder's lost packets (the last good frame held for 32 ms, then faded out at
    ≈4 dB per 16 ms frame: ``codec.conceal``) and a :class:`DamagedStreamWarning` names them. Damage
    includes packets whose CRCs pass but whose payload no encoder writes (SPEC §7, "Valid payloads").
    Samples are always finite and within [-1, 1], whatever the bytes and the decoder.
    """
    return decode_bytes(_ldc_bytes(data), decoder, steps, bundle, strict)


def decode_bytes(data: bytes, decoder: str | None = None, steps: int | None = None, bundle=None,
                 strict: bool = True, hint: str = DAMAGE_HINT) -> tuple[np.ndarray, int]:
    """:func:`decode` of ``data`` (bytes); a strict error about a packet ends with ``hint`` (how to go on)."""
    header = bitstream.read_header(data)[0]  # header damage raises here: nothing to conceal
    mode = check_layout(header)  # a header that contradicts itself is malformed
    try:
        header, groups = bitstream.read_groups(data, strict=strict)
    except bitstream.BitstreamError as exc:  # strict: a packet's damage
        raise _hinted(exc, hint) from None
    b = for_stream(header.bundle_id, bundle, header.representation)
    if header.representation == "latent" and b.latent_layout != (mode.n_coefs, mode.decimation):
        channels, stride = b.latent_layout
        raise bitstream.MalformedError(
            f"mode {mode.id} codes {mode.n_coefs} latent channels per {mode.decimation} mel frames, but the latent "
            f"autoencoder the header names ({b.latent_name} of bundle {b.name}) makes {channels} per {stride}")
    cls = decoders.get(decoder or header.decoder, header.representation, from_header=not decoder)
    steps = decoders.check_steps(cls, steps)
    if groups.lost.any():
        lost = groups.lost_packets
        warnings.warn(f"concealed {len(lost)} damaged or missing packet(s) (last sound held, then faded): {lost}",
                      DamagedStreamWarning, stacklevel=3)
    coded = decoders.Coded.from_groups(groups, b, header.seed, frames_for(header.num_samples))
    wav = decoders.render(cls(b), coded, steps)
    out = np.zeros(header.num_samples, dtype=np.float32)
    n = min(len(wav), len(out))
    out[:n] = np.clip(np.nan_to_num(wav[:n], nan=0.0, posinf=1.0, neginf=-1.0), -1.0, 1.0)  # any decoder, any bytes
    return out, SAMPLE_RATE


def info(data) -> dict:
    """Header fields, achieved kbps (from the bytes), packet health and the mode; no model needed.
    ``data``: the ``.ldc`` bytes or a path to the file.

    What :func:`decode` refuses about the bytes, ``info`` reports: header damage and a header that
    contradicts its mode raise the same ``BitstreamError``; every damaged packet, including those whose
    CRCs pass but whose payload no encoder writes, is in ``damaged_packets`` with its error in ``errors``,
    as is a decoder named by the header that is not installed or cannot read the stream. Whether the
    bundle the stream names is at hand is not checked (no model is loaded)."""
    data = _ldc_bytes(data)
    facts = bitstream.info(data)  # header damage raises here
    header = bitstream.read_header(data)[0]
    mode = check_layout(header)
    errors: list = []
    try:
        decoders.get(header.decoder, header.representation, from_header=True)
    except decoders.DecoderError as exc:
        errors.append(exc)
    groups = bitstream.read_groups(data, strict=False, errors=errors)[1]
    lost = groups.lost_packets
    facts.update(packets_ok=header.num_packets - len(lost), packets_damaged=len(lost), damaged_packets=lost,
                 errors=[f"{type(e).__name__}: {e}" for e in errors])
    facts["mode"] = {"kbps_range": [mode.min_kbps, mode.max_kbps], "n_coefs": mode.n_coefs,
                     "group_rate_hz": mode.group_rate, "packet_ms": mode.packet_ms}
    return facts
