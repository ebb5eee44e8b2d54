"""A stream parsed down to its coded groups: the integers of every packet and their dequantised values.

This is the whole format as a torch-free tool sees it (SPEC §7–8): ``read_groups(data)`` turns an
``.ldc`` file into one row per coded group, ``packet_groups(packet)`` does the same for one raw
VoIP packet. What the values mean as sound (cepstra → log-mel, latent → log-mel, pitch → vocoder
rows) and how a lost packet is concealed belong to the decoders in ``codec``.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from .container import Header, RawPacket, read_file, unpack_packet
from .errors import BitstreamError, MalformedError
from .modes import VOIP_MODES, Mode, check_layout, frames_for, groups_for, mode_by_id
from .payload import STEP_SIZES, decode_groups, dequantize, mode_weights
from .pitch import REF_INDEX


@dataclass(frozen=True)
class Groups:
    """Coded groups of a stream, in order (``n`` groups, ``K = mode.n_coefs`` values each).

    ``q`` (n, K) int64: quantised values (mel modes: cepstral coefficients; latent modes: latent
    channels); ``g`` (n,) int64: step index of each group's packet; ``pitch`` (n,) int64: pitch grid
    index (held over unvoiced groups); ``voiced`` (n,) bool; ``lost`` (n,) bool: the group's packet was
    missing or damaged, so its row holds placeholders (q 0, g ``mode.typical_g``, pitch ``REF_INDEX``,
    unvoiced) for the decoder to conceal.
    """

    mode: Mode
    q: np.ndarray
    g: np.ndarray
    pitch: np.ndarray
    voiced: np.ndarray
    lost: np.ndarray

    @cached_property
    def values(self) -> np.ndarray:
        """Dequantised values (n, K) float32: ``q · step_size(g) · weight_k`` (SPEC §7–8)."""
        return dequantize(self.q, mode_weights(self.mode), self.g)

    @cached_property
    def step_size(self) -> np.ndarray:
        """Quantiser step of each group (n,) float64: ``2^((g − 128)/16)``."""
        return STEP_SIZES[self.g]

    @property
    def lost_packets(self) -> list[int]:
        """Indices of the packets whose groups are placeholders."""
        per = self.mode.groups_per_packet
        return sorted({int(i) // per for i in np.flatnonzero(self.lost)})


def _placeholder(mode: Mode, n: int) -> tuple:
    return (np.zeros((n, mode.n_coefs), np.int64), np.full(n, mode.typical_g, np.int64),
            np.full(n, REF_INDEX, np.int64), np.zeros(n, bool), np.ones(n, bool))


def _decoded(mode: Mode, payload: bytes, n: int, whole_words: bool = False) -> tuple:
    """One payload's groups as columns of :class:`Groups`; ``whole_words``: a file packet's (SPEC §6)."""
    if whole_words and payload and (len(payload) - 1) % 4:
        raise MalformedError(f"payload length {len(payload)} bytes: a file packet holds the step index and whole "
                             f"32-bit coder words")
    q, g, pitch, voiced = decode_groups(mode, payload, n)
    return q, np.full(n, g, np.int64), pitch.astype(np.int64), voiced, np.zeros(n, bool)


def _concat(mode: Mode, parts: list[tuple]) -> Groups:
    if not parts:
        return Groups(mode, *_placeholder(mode, 0))
    return Groups(mode, *(np.concatenate(column) for column in zip(*parts)))


def read_groups(data: bytes, strict: bool = True, errors: list | None = None) -> tuple[Header, Groups]:
    """Parse an ``.ldc`` file → (header, its groups). ``strict`` raises the first
    :class:`~bitstream.BitstreamError` (a packet's names the packet); otherwise damaged or missing packets,
    and packets whose payload is invalid (SPEC §7, "Valid payloads"), become ``lost`` groups, and
    ``errors`` (a list, if given) receives every error, the container's first, then the payloads'."""
    container = read_file(bytes(data), strict=strict)
    header = container.header
    mode = check_layout(header)
    groups = groups_for(frames_for(header.num_samples), mode.decimation)
    parts, bad = [], []
    for i, packet in enumerate(container.packets):
        n = min(mode.groups_per_packet, groups - i * mode.groups_per_packet)
        if packet is not None:
            try:
                parts.append(_decoded(mode, packet.payload, n, whole_words=True))
                continue
            except BitstreamError as exc:
                err = type(exc)(f"packet {i}: {exc}")
                if strict:
                    raise err from None
                bad.append(err)
        parts.append(_placeholder(mode, n))
    if errors is not None:
        errors += container.errors + bad
    return header, _concat(mode, parts)


def packet_groups(packet: bytes | RawPacket) -> Groups:
    """One raw VoIP packet (SPEC §2) → its groups. Raises :class:`~bitstream.BitstreamError` when
    it is damaged or not of a streaming mode."""
    raw = packet if isinstance(packet, RawPacket) else unpack_packet(packet)
    try:
        mode = mode_by_id(raw.mode_id)
    except KeyError:
        raise MalformedError(f"raw packet of unknown mode {raw.mode_id}") from None
    if mode not in VOIP_MODES:
        raise MalformedError(f"raw packet of mode {mode.id}, which is not a streaming mode")
    try:
        return _concat(mode, [_decoded(mode, raw.payload, mode.groups_per_packet)])
    except BitstreamError as exc:
        where = f"mode {mode.id}" + ("" if raw.seq is None else f", seq {raw.seq}")
        raise type(exc)(f"raw packet ({where}): {exc}") from None
