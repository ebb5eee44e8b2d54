"""Public API: ``encode`` PCM → bytes, ``decode`` bytes → 16 kHz PCM, ``info`` bytes → header facts."""
from __future__ import annotations

import math
import os
import warnings
from pathlib import Path

import numpy as np
import torch

import bitstream
from bitstream import Header, MalformedError

from . import bundle as bundles
from . import decoders, pitch
from .audio import SAMPLE_RATE, AudioInputError, load, prepare
from .conceal import conceal
from .features import LogMel
from .mel_repr import SILENCE_LOGMEL, coef_weights, coefs_to_mel, frames_for, groups_for, mel_to_coefs, silence_coefs
from .melcoder import decode_packet, dequantize, encode_packet, quantize, search_step, step_size
from .modes import MEL_HOP, STORAGE_MODES, Mode, check_kbps, mode_by_id, mode_for

DAMAGE_HINT = "pass strict=False (ldcodec decode --allow-damaged) to decode the rest with damaged packets concealed"


class DamagedStreamWarning(UserWarning):
    """decode(strict=False) concealed packets that were damaged or missing."""


class RateWarning(UserWarning):
    """encode could not meet the requested kbps: the input is too short for the header and packet framing."""


class BundleWarning(UserWarning):
    """The bundle lacks the latent autoencoder, so encode used the mel modes at a rate where the latent is the default."""


WARNINGS = (DamagedStreamWarning, RateWarning, BundleWarning)  # what the CLI reports beside a file's result


def encode_mode(kbps: float, representation: str | None = None, bundle=None) -> Mode:
    """The mode :func:`encode` writes for ``kbps``: the ladder's rung, or ``representation``'s. A bundle
    without the latent autoencoder falls back from the ladder's latent rungs to the mel ones
    (:class:`BundleWarning`); asking it for ``representation="latent"`` is a ``bundle.BundleError``."""
    mode = mode_for(kbps, representation)
    b = bundles.resolve(bundle)
    if mode.representation == "latent" and not b.has("latent"):
        if representation == "latent":
            raise bundles.BundleError(f"bundle {b.name} has no latent autoencoder (latent.safetensors), so it cannot "
                                      f"write latent streams; use representation='mel'")
        mode = mode_for(kbps, "mel")
        warnings.warn(f"bundle {b.name} has no latent autoencoder (latent.safetensors): {float(kbps):g} kbps uses "
                      f"the mel representation (mode {mode.id})", BundleWarning, stacklevel=3)
    return mode


def _ldc_bytes(data) -> bytes:
    """An ``.ldc`` byte string (bytes-like), or a path (str / PathLike) to read it from."""
    if isinstance(data, (str, os.PathLike)):
        return Path(data).read_bytes()
    try:
        return bytes(memoryview(data))
    except TypeError:
        raise TypeError(f"expected the .ldc bytes or a path to a .ldc file, got {type(data).__name__}") from None


def _weights(mode: Mode) -> np.ndarray:
    """Relative quantiser step per coded value (K,): coarser high quefrencies for mel, uniform for latents."""
    return coef_weights(mode.n_coefs).numpy() if mode.representation == "mel" else np.ones(mode.n_coefs, np.float32)


def _silence(b, mode: Mode) -> np.ndarray:
    """The coded values (K,) of a silent group: what a concealed packet holds."""
    if mode.representation == "mel":
        return silence_coefs(b.mel_config.n_mels, mode.n_coefs)
    with torch.inference_mode():
        return b.latent.encoder(torch.full((1, b.mel_config.n_mels, mode.decimation), SILENCE_LOGMEL))[0, :, 0].numpy()


def _packets(values: np.ndarray, pitch_index: np.ndarray, voiced: np.ndarray, mode: Mode, g: int) -> list[bytes]:
    """Quantise and code (groups, K) values and (groups,) pitch → packet payloads."""
    w = _weights(mode)
    payloads = []
    for start in range(0, len(values), mode.groups_per_packet):
        sl = slice(start, start + mode.groups_per_packet)
        payloads.append(encode_packet(quantize(values[sl], w, g), g, pitch_index[sl], voiced[sl],
                                      predictive=mode.representation == "mel")[0])
    return payloads


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
    b = bundles.resolve(bundle)
    mode = encode_mode(kbps, representation, b)
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
    frames = frames_for(len(x), MEL_HOP)
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

    seconds = len(x) / SAMPLE_RATE
    budget_bits = kbps * 1000 * seconds
    cache: dict[int, bytes] = {}

    def file_at(g: int) -> bytes:
        if g not in cache:
            cache[g] = bitstream.write_file(hdr, _packets(values, pitch_index, voiced, mode, g))
        return cache[g]

    def fits(g: int) -> bool:
        return len(file_at(g)) * 8 <= budget_bits

    data = file_at(search_step(fits, mode.typical_g))  # the finest step whose file fits
    if len(data) * 8 > budget_bits:  # even the coarsest step does not fit: header and framing dominate
        warnings.warn(f"{seconds:.3g} s of audio is too short for {kbps:g} kbps: the smallest file is {len(data)} "
                      f"bytes ({len(data) * 8 / seconds / 1000:.4g} kbps, header included); at {kbps:g} kbps that "
                      f"many bytes need at least {len(data) * 8 / (kbps * 1000):.2f} s", RateWarning, stacklevel=2)
    return data


def _check_layout(header: Header) -> Mode:
    """The header's mode, checked against its own packet count and sizes."""
    try:
        mode = mode_by_id(header.mode_id)
    except KeyError:
        known = ", ".join(str(m.id) for m in STORAGE_MODES)
        raise MalformedError(f"unknown mode id {header.mode_id} (this ldcodec's file modes: {known})") from None
    groups = groups_for(frames_for(header.num_samples, MEL_HOP), mode.decimation)
    if (header.representation != mode.representation or header.frames_per_packet != mode.groups_per_packet
            or header.num_packets != math.ceil(groups / mode.groups_per_packet)):
        raise MalformedError(f"header layout does not match mode {mode.id} "
                             f"({header.num_packets} packets of {header.frames_per_packet} groups for "
                             f"{header.num_samples} samples)")
    return mode


def _hinted(exc: bitstream.BitstreamError) -> bitstream.BitstreamError:
    """``exc`` (a packet's damage) with the way to decode the rest anyway appended."""
    return type(exc)(f"{exc}; {DAMAGE_HINT}")


def decode(data, *, decoder: str | None = None, steps: int | None = None, bundle=None,
           strict: bool = True) -> tuple[np.ndarray, int]:
    """Decode an ``.ldc`` byte string (or a path to an ``.ldc`` file) → (float32 waveform (samples,), 16000).

    ``decoder`` overrides the stream's default (see ``ldcodec modes``); ``steps`` is the
    diffusion decoders' cost knob. With ``strict=True`` any damage raises a
    ``bitstream.BitstreamError``; with ``strict=False`` damaged or missing packets are concealed
    like the stream decoder's lost packets (the last good frame held for 32 ms, then faded out at
    ≈4 dB per 16 ms frame: ``codec.conceal``) and a :class:`DamagedStreamWarning` names them.
    """
    data = _ldc_bytes(data)
    container = bitstream.read_file(data, strict=False)  # header damage raises here: nothing to conceal
    if strict and container.errors:
        raise _hinted(container.errors[0])
    header = container.header
    mode = _check_layout(header)
    b = bundles.for_stream(header.bundle_id, bundle, header.representation)
    cls = decoders.get(decoder or header.decoder, header.representation)
    steps = decoders.check_steps(cls, steps)

    frames = frames_for(header.num_samples, MEL_HOP)
    groups = groups_for(frames, mode.decimation)
    w = _weights(mode)
    silence = _silence(b, mode)
    values, pitch_index, voiced, steps_g, lost = [], [], [], [], []
    for i, packet in enumerate(container.packets):
        n = min(mode.groups_per_packet, groups - i * mode.groups_per_packet)
        if packet is not None:
            try:
                q, g, p, v = decode_packet(packet.payload, n, mode.n_coefs, predictive=mode.representation == "mel")
                values.append(dequantize(q, w, g))
                pitch_index.append(p)
                voiced.append(v)
                steps_g.append(np.full(n, step_size(g)))
                continue
            except bitstream.BitstreamError as exc:
                if strict:
                    raise _hinted(exc) from None
        lost.append(i)
        values.append(np.tile(values[-1][-1] if values else silence, (n, 1)))  # held; faded below (conceal)
        pitch_index.append(np.full(n, pitch.REF_INDEX))
        voiced.append(np.zeros(n, bool))
        steps_g.append(np.full(n, step_size(mode.typical_g)))
    if lost:
        warnings.warn(f"concealed {len(lost)} damaged or missing packet(s) (last sound held, then faded): {lost}",
                      DamagedStreamWarning, stacklevel=2)
    coded = torch.from_numpy(np.concatenate(values).T.copy())[None]  # (1, K, groups)
    group_step = np.concatenate(steps_g)
    aux = torch.from_numpy(pitch.features(np.concatenate(pitch_index), np.concatenate(voiced), mode.decimation,
                                          frames))[None]
    latent = None
    if mode.representation == "latent":
        latent = coded
        with torch.inference_mode():
            mel = b.latent.decoder(latent, aux, torch.from_numpy(group_step)[None].float())
    else:
        mel = coefs_to_mel(coded, b.mel_config.n_mels, mode.decimation, frames)
    features = torch.cat([mel, aux], dim=1)
    short = b.mel_config.n_fft // MEL_HOP + 1 - frames  # the iSTFT needs a few frames
    if short > 0:
        pad = torch.zeros(1, features.shape[1], short)
        pad[:, : mel.shape[1]] = SILENCE_LOGMEL
        features = torch.cat([features, pad], dim=-1)
    concealed = None
    if lost:
        span = mode.groups_per_packet * mode.decimation  # mel frames per packet
        concealed = np.zeros(features.shape[-1], bool)
        for i in lost:
            concealed[i * span: min((i + 1) * span, frames)] = True
        features = conceal(features, concealed, mel.shape[1])
    step = np.repeat(group_step, mode.decimation)[:frames]
    step = np.pad(step, (0, features.shape[-1] - len(step)), mode="edge")
    wav = cls(b).decode(decoders.Coded(features, step, mode, header.seed, latent, concealed), steps)
    out = np.zeros(header.num_samples, dtype=np.float32)
    out[: min(len(wav), len(out))] = wav[: len(out)]
    return out, SAMPLE_RATE


def info(data) -> dict:
    """Header fields, achieved kbps (from the bytes), packet health and the mode; no model needed.
    ``data``: the ``.ldc`` bytes or a path to the file."""
    facts = bitstream.info(_ldc_bytes(data))
    try:
        mode = mode_by_id(facts["mode_id"])
        facts["mode"] = {"kbps_range": [mode.min_kbps, mode.max_kbps], "n_coefs": mode.n_coefs,
                         "group_rate_hz": mode.group_rate, "packet_ms": mode.packet_ms}
    except KeyError:
        facts["mode"] = None
    return facts
