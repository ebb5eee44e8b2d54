"""The mode ladder (SPEC §7–8): requested kbps → mode (representation, coded values per group, frame
rate, packets), and the frame/group/packet counts a header implies.

A mode fixes the bitstream layout; the encoder's rate control then picks the quantiser step
(per file) so that the achieved rate, counted from file bytes, lands at or under the request.
Each representation has its own storage modes (``MEL_MODES``, ``LATENT_MODES``); ``LADDER`` is
the default rung per rate, the one ``codec.encode`` uses unless asked for a representation;
``RETIRED_MODES`` are read, no longer written.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .container import REPRESENTATIONS, Header
from .errors import MalformedError

SAMPLE_RATE = 16000  # Hz of every decoded stream
HOP = 256  # samples per mel frame, fixed for every mode
FRAME_RATE = SAMPLE_RATE / HOP  # 62.5 Hz
MIN_KBPS, MAX_KBPS = 0.3, 6.0


@dataclass(frozen=True)
class Mode:
    """One rung of the ladder. ``decimation`` mel frames form one coded group of ``n_coefs`` values
    (cepstral coefficients for mel modes, latent channels for latent modes)."""

    id: int
    min_kbps: float
    max_kbps: float
    representation: str
    n_coefs: int
    decimation: int
    groups_per_packet: int
    typical_g: int  # step index the rate control usually settles on for speech (its search start)
    default_decoder: str = "direct"

    @property
    def group_rate(self) -> float:
        """Coded groups per second (Hz)."""
        return FRAME_RATE / self.decimation

    @property
    def packet_ms(self) -> float:
        return 1000.0 * self.groups_per_packet / self.group_rate

    @property
    def frames_per_packet(self) -> int:
        """Mel frames (16 ms each) a full packet covers."""
        return self.groups_per_packet * self.decimation

    @property
    def predictive(self) -> bool:
        """Whether packets code differences between groups (mel cepstra) or the values themselves (latents)."""
        return self.representation == "mel"


MEL_MODES: tuple[Mode, ...] = (
    Mode(0, 0.30, 0.45, "mel", n_coefs=8, decimation=5, groups_per_packet=32, typical_g=163),
    Mode(1, 0.45, 0.90, "mel", n_coefs=12, decimation=3, groups_per_packet=36, typical_g=146),
    Mode(2, 0.90, 2.00, "mel", n_coefs=20, decimation=2, groups_per_packet=32, typical_g=132),
    Mode(3, 2.00, 4.00, "mel", n_coefs=28, decimation=1, groups_per_packet=50, typical_g=117),
    Mode(4, 4.00, 6.00, "mel", n_coefs=48, decimation=1, groups_per_packet=50, typical_g=97),
)
# Latent modes: the latent of one of the bundle's latent autoencoders, the one whose channels and stride are the
# mode's ``n_coefs`` and ``decimation`` (``codec.Bundle.latent_for``): 16 channels at 12.5 Hz (one group = 5 mel
# frames) up to 0.75 kbps, 10 channels at 20.8 Hz (3 frames) from 0.75 to 1.3 kbps.
LATENT_MODES: tuple[Mode, ...] = (
    Mode(5, 0.30, 0.45, "latent", n_coefs=16, decimation=5, groups_per_packet=32, typical_g=195),
    Mode(6, 0.45, 0.75, "latent", n_coefs=16, decimation=5, groups_per_packet=32, typical_g=157),
    Mode(8, 0.75, 1.30, "latent", n_coefs=10, decimation=3, groups_per_packet=50, typical_g=154),
)
# Modes files of earlier releases use and no encoder writes any more: they decode as before.
# Mode 7: the 16-channel latent at 0.9–1.3 kbps, where it saturates (STOI ≈ 0.80); mode 8 took its rates.
RETIRED_MODES: tuple[Mode, ...] = (
    Mode(7, 0.90, 1.30, "latent", n_coefs=16, decimation=5, groups_per_packet=32, typical_g=120),
)
STORAGE_MODES = MEL_MODES + LATENT_MODES + RETIRED_MODES  # every file mode a reader knows
# Which rung serves a rate is the encoder's choice, made on the held-out dev speakers (docs/results.md):
# the 16-channel latent below 0.75 kbps (modes 5, 6: the higher neural MOS at about equal STOI), the 10-channel
# one from 0.75 to 1.3 kbps (mode 8: above the 16-channel one at 0.75 kbps and the cepstrum's mode 2 at 0.9 and
# 1.2 kbps on WB-PESQ, STOI, DNSMOS and DistillMOS), the cepstrum above. Any mode decodes whatever the ladder says.
LADDER: tuple[Mode, ...] = LATENT_MODES + MEL_MODES[2:]


# Streaming (VoIP) modes: raw packets (bitstream.pack_packet), each range-coded on its own. A packet's
# fixed cost (TOC, step index, CRC-8: 3 bytes; version-1 packets spent 5 with a sequence byte and a CRC-16)
# is 0.75 kbps at 32 ms and 0.375 at 64 ms; the shortest packets serve 3–6 kbps and rates from 1.2 kbps
# take 64 ms packets (80 ms latency).
# 32 ms (2 frames): the default from 3 kbps, 48 ms latency; 48 ms (3 frames): 64 ms latency; 64 ms:
# 4 frames from 3 kbps, 2 groups of 2 frames (31.25 Hz) below, where halving the frame rate measured better.
VOIP_MODES: tuple[Mode, ...] = (
    Mode(16, 3.00, 4.50, "mel", n_coefs=20, decimation=1, groups_per_packet=3, typical_g=130),
    Mode(17, 4.50, 6.00, "mel", n_coefs=32, decimation=1, groups_per_packet=3, typical_g=110),
    Mode(18, 3.00, 4.50, "mel", n_coefs=20, decimation=1, groups_per_packet=2, typical_g=144),
    Mode(19, 4.50, 6.00, "mel", n_coefs=32, decimation=1, groups_per_packet=2, typical_g=120),
    Mode(20, 1.20, 2.00, "mel", n_coefs=12, decimation=2, groups_per_packet=2, typical_g=153),
    Mode(21, 2.00, 3.00, "mel", n_coefs=20, decimation=2, groups_per_packet=2, typical_g=118),
    Mode(22, 3.00, 4.50, "mel", n_coefs=20, decimation=1, groups_per_packet=4, typical_g=125),
    Mode(23, 4.50, 6.00, "mel", n_coefs=32, decimation=1, groups_per_packet=4, typical_g=100),
)
VOIP_KBPS = (min(m.min_kbps for m in VOIP_MODES), max(m.max_kbps for m in VOIP_MODES))  # 1.2–6: the streaming range
PACKET_MS = (32, 48, 64)  # the packet durations streaming offers
# The default packet per rate: the shortest that serves it (32 ms from 3 kbps, 64 ms below).
VOIP_LADDER: tuple[Mode, ...] = tuple(sorted((m for m in VOIP_MODES if m.id in (18, 19, 20, 21)),
                                             key=lambda m: m.min_kbps))


def voip_kbps(packet_ms: int) -> tuple[float, float]:
    """The rates (kbps) streaming offers in packets of ``packet_ms``."""
    rungs = [m for m in VOIP_MODES if m.packet_ms == packet_ms]
    return min(m.min_kbps for m in rungs), max(m.max_kbps for m in rungs)


def check_kbps(kbps, streaming: bool = False) -> float:
    """``kbps`` as a float, or a ``ValueError`` naming the range: a real number (not a bool or a string)
    within [MIN_KBPS, MAX_KBPS], or with ``streaming`` within the streaming modes' ``VOIP_KBPS``."""
    lo, hi = VOIP_KBPS if streaming else (MIN_KBPS, MAX_KBPS)
    not_number = f"kbps must be a number{f' (streaming: {lo:g}–{hi:g} kbps)' if streaming else ''}, got {kbps!r}"
    if isinstance(kbps, (bool, np.bool_, str, bytes)):
        raise ValueError(not_number)
    try:
        k = float(kbps)
    except (TypeError, ValueError):
        raise ValueError(not_number) from None
    if lo <= k <= hi:
        return k
    if streaming:
        raise ValueError(f"streaming supports {lo:g}–{hi:g} kbps, got {k:g}; for other rates use codec.encode "
                         f"(storage modes, {MIN_KBPS:g}–{MAX_KBPS:g} kbps, long packets)")
    raise ValueError(f"kbps {kbps} is outside the supported range {MIN_KBPS}..{MAX_KBPS}")


def mode_for(kbps: float, representation: str | None = None) -> Mode:
    """The rung whose [min_kbps, max_kbps) holds ``kbps`` (the top rung includes 6): from ``LADDER``,
    or from the modes of ``representation`` ("mel" or "latent") when given."""
    k = check_kbps(kbps)
    if representation is None:
        rungs = LADDER
    elif representation in REPRESENTATIONS:
        rungs = MEL_MODES if representation == "mel" else LATENT_MODES
    else:
        raise ValueError(f"representation must be one of {', '.join(REPRESENTATIONS)} (or None), "
                         f"got {representation!r}")
    if k > rungs[-1].max_kbps:
        raise ValueError(f"the {representation} representation covers {rungs[0].min_kbps:g}–{rungs[-1].max_kbps:g} "
                         f"kbps, not {kbps}")
    return next((m for m in rungs if k < m.max_kbps), rungs[-1])


def voip_mode_for(kbps: float, packet_ms: int | None = None) -> Mode:
    """The streaming mode for ``kbps`` (1.2–6) in packets of ``packet_ms`` (32, 48 or 64 ms; None: the
    default for the rate, ``VOIP_LADDER``). A rate the packet duration cannot carry is a ``ValueError``."""
    k = check_kbps(kbps, streaming=True)
    if packet_ms is None:
        rungs = list(VOIP_LADDER)
    elif isinstance(packet_ms, (int, np.integer)) and not isinstance(packet_ms, bool) and packet_ms in PACKET_MS:
        rungs = [m for m in VOIP_MODES if m.packet_ms == packet_ms]
        lo, hi = voip_kbps(packet_ms)
        if k < lo:
            longer = [ms for ms in PACKET_MS if voip_kbps(ms)[0] <= k]
            raise ValueError(f"{packet_ms} ms packets carry {lo:g}–{hi:g} kbps, not {k:g}: a packet's fixed bytes "
                             f"leave too little for speech; use packet_ms={longer[0]} (or leave packet_ms unset)")
    else:
        raise ValueError(f"packet_ms must be one of {', '.join(map(str, PACKET_MS))} (or None), got {packet_ms!r}")
    return next((m for m in rungs if k < m.max_kbps), rungs[-1])


def mode_by_id(mode_id: int) -> Mode:
    for mode in STORAGE_MODES + VOIP_MODES:
        if mode.id == mode_id:
            return mode
    raise KeyError(mode_id)


def frames_for(samples: int) -> int:
    """Mel frames of a signal of ``samples`` at 16 kHz (centred STFT, hop 256)."""
    return samples // HOP + 1


def groups_for(frames: int, decimation: int) -> int:
    """Coded groups of ``decimation`` frames covering ``frames``."""
    return math.ceil(frames / decimation)


def check_layout(header: Header) -> Mode:
    """The header's mode, checked against its representation, packet count and sizes
    (``MalformedError`` when they disagree)."""
    try:
        mode = mode_by_id(header.mode_id)
    except KeyError:
        known = ", ".join(str(m.id) for m in sorted(STORAGE_MODES, key=lambda m: m.id))
        raise MalformedError(f"unknown mode id {header.mode_id} (this ldcodec's file modes: {known})") from None
    groups = groups_for(frames_for(header.num_samples), mode.decimation)
    if (header.representation != mode.representation or header.frames_per_packet != mode.groups_per_packet
            or header.num_packets != math.ceil(groups / mode.groups_per_packet)):
        raise MalformedError(f"header layout does not match mode {mode.id} "
                             f"({header.num_packets} packets of {header.frames_per_packet} groups for "
                             f"{header.num_samples} samples)")
    return mode
