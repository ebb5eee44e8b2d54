"""Jitter buffer for VoIP: datagrams as they arrive (out of order, duplicated, late, lost) → one
packet (or None) per playout slot, in sequence order, for :class:`codec.StreamDecoder`.

    jb, dec = codec.JitterBuffer(), codec.StreamDecoder()
    jb.put(packet, now_s, seq)                         # whenever a packet arrives (now_s: your clock, s;
                                                       # seq: its number from the transport, e.g. RTP)
    while jb.due(now_s):                               # one slot per packet period once playout starts
        pcm = dec.push(jb.pop(now_s), in_order=True)   # None → the decoder conceals that slot

Deterministic: there is no clock inside, every method takes the caller's time in seconds (one clock
for arrivals and playout, e.g. ``time.monotonic()``). Playout runs on a fixed schedule: slot k is due
``period`` after slot k − 1, whatever arrives; a packet that comes after its slot was played is
counted ``late`` and dropped (the playout never waits for it, so it never drifts). The schedule starts
``initial_ms`` after the first packet arrives; from then on the depth (how long the fastest recent
packet waits before it plays) follows the measured jitter: the ``percentile`` of the recent packets'
delays (relative to the fastest) plus ``margin_ms``, clamped to [``min_ms``, ``max_ms``]. The buffer
deepens by inserting a concealed slot (``inserted``) and shrinks by skipping a missing packet's slot
or, when it is two periods too deep, at most once per ``shrink_every`` slots, by dropping one packet
(``dropped``): the decoder must take the slots as given (``StreamDecoder.push(..., in_order=True)``),
not conceal sequence gaps.

Sequence numbers come from the transport (a raw packet of version 2, ``bitstream/SPEC.md`` §2, has
none; RTP's are 16-bit) and wrap modulo 2^16 (version-1 packets' own byte, modulo 256): they are
unwrapped against the highest one seen, so reordering within half the cycle is told apart from
wrap-around. A jump of more than ``max_ms`` ahead (a restarted sender) resynchronises
the playout on the new numbers instead of concealing the gap slot by slot (a jump back reads as late
packets until the numbers pass the highest one played: use a new buffer for a new stream).
"""
from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

import bitstream
from bitstream.modes import VOIP_MODES, mode_by_id

_PLAYED, _LOST, _LATE, _DROPPED = range(4)
SEQ_MODULO = 1 << 16  # sequence numbers from the transport (RTP's are 16-bit)
V1_SEQ_MODULO = 256  # a version-1 raw packet's own sequence byte
_PAST = 1024  # slots whose fate (played, lost, late, dropped) is remembered, to tell late from duplicate
MAX_PENDING = 512  # packets waiting at most (16 s of 32 ms packets): a flood beyond it is dropped on arrival


@dataclass(frozen=True)
class JitterConfig:
    """Settings of a :class:`JitterBuffer` (times in ms, counts in packets)."""

    packet_ms: float | None = None  # playout period; None: the first packet's mode (32 or 48 ms)
    initial_ms: float = 40.0  # depth before enough delays are measured
    min_ms: float = 20.0  # the adaptive depth stays within [min_ms, max_ms]
    max_ms: float = 300.0
    percentile: float = 98.0  # of a full window of relative delays the depth covers (the rest arrive late)
    margin_ms: float = 10.0  # added to that percentile
    window: int = 128  # recent packets the delay statistics cover (4.1 s of 32 ms packets)
    warmup: int = 16  # packets measured before the depth adapts
    grow_every: int = 2  # at least this many slots between two inserted slots
    shrink_every: int = 16  # and between two dropped packets

    def __post_init__(self):
        if self.packet_ms is not None and not self.packet_ms > 0:
            raise ValueError(f"packet_ms must be positive (or None), got {self.packet_ms!r}")
        if not 0 <= self.min_ms <= self.max_ms:
            raise ValueError(f"need 0 <= min_ms <= max_ms, got {self.min_ms!r}, {self.max_ms!r}")
        if not 0 < self.percentile <= 100:
            raise ValueError(f"percentile must be in (0, 100], got {self.percentile!r}")
        if self.window < 2 or self.warmup < 1 or self.grow_every < 1 or self.shrink_every < 1:
            raise ValueError("window must be >= 2, warmup, grow_every and shrink_every >= 1")


def check_seq(seq, who: str) -> int | None:
    """A sequence number as an int modulo :data:`SEQ_MODULO` (None stays None); a clear TypeError otherwise."""
    if seq is None:
        return None
    if isinstance(seq, bool) or not isinstance(seq, (int, np.integer)):
        raise TypeError(f"{who}: seq must be an integer packet number, got {type(seq).__name__}")
    return int(seq) % SEQ_MODULO


def as_packet(packet, who: str) -> bytes:
    """``packet`` as bytes; a clear TypeError for anything that is not bytes-like (a str, a list)."""
    if isinstance(packet, (bytes, bytearray, memoryview)):
        return bytes(packet)
    raise TypeError(f"{who} takes one raw packet as bytes (or bytearray/memoryview), "
                    f"got {type(packet).__name__}")


class JitterBuffer:
    """Reorders packets by sequence number and releases one per playout slot (see the module doc).

    Counters: ``received`` (accepted in time), ``played`` and ``concealed`` (slots that returned a
    packet / None), ``lost`` (sequence numbers whose slot passed without them, and which have not
    turned up since), ``late`` (arrived after their slot; dropped), ``duplicates``, ``reordered``
    (arrived after a higher sequence number, still in time), ``damaged`` (not a valid VoIP packet),
    ``inserted`` / ``dropped`` (slots added / packets dropped to adapt the depth, or past ``MAX_PENDING``), ``resyncs``.
    """

    def __init__(self, config: JitterConfig | None = None, **settings):
        self.config = config or JitterConfig(**settings)
        if config is not None and settings:
            raise TypeError("give either a JitterConfig or keyword settings, not both")
        self._period: float | None = None  # s
        self._buf: dict[int, tuple[bytes, float]] = {}  # unwrapped sequence number → (packet, arrival s)
        self._past: dict[int, int] = {}  # played slots' fate (_PLAYED, _LOST, ...), for late vs duplicate
        self._next: int | None = None  # next unwrapped sequence number to play
        self._top: int | None = None  # highest unwrapped sequence number seen
        self._due: float | None = None  # when the next slot plays, s
        self._delays: deque[float] = deque(maxlen=self.config.window)  # arrival − seq × period, s
        self._transit: float | None = None
        self._jitter = 0.0  # RFC 3550 interarrival jitter estimate, s
        self._started = False  # a slot has been played
        self._modulo = SEQ_MODULO  # V1_SEQ_MODULO when the packets' own (version-1) byte numbers them
        self._since_grow = self._since_shrink = 0
        self.received = self.played = self.concealed = self.lost = self.late = 0
        self.duplicates = self.reordered = self.damaged = self.inserted = self.dropped = self.resyncs = 0

    # -- arrivals --------------------------------------------------------------------------------
    def put(self, packet, arrival_s: float, seq: int | None = None) -> bool:
        """Add one packet that arrived at ``arrival_s`` (s) with sequence number ``seq`` (from the
        transport; version-1 packets may omit it); True if it was kept for playout."""
        data = as_packet(packet, "JitterBuffer.put")
        seq = check_seq(seq, "JitterBuffer.put")
        try:
            raw = bitstream.unpack_packet(data)
            mode = mode_by_id(raw.mode_id)
        except (bitstream.BitstreamError, KeyError):
            mode = None
        if mode not in VOIP_MODES:  # damaged, or not a streaming packet: its slot will be concealed
            self.damaged += 1
            return False
        if seq is None:
            if raw.seq is None:
                raise ValueError("JitterBuffer.put: this packet (version 2) carries no sequence number: "
                                 "pass seq=, the transport's packet number (e.g. RTP's)")
            seq, self._modulo = raw.seq, V1_SEQ_MODULO
        if self._period is None:
            self._period = (self.config.packet_ms or mode.packet_ms) / 1000
        ext = self._unwrap(seq)
        if ext in self._buf or self._past.get(ext) in (_PLAYED, _LATE, _DROPPED):
            self.duplicates += 1
            return False
        late = self._next is not None and ext < self._next and self._started
        if not late and len(self._buf) >= MAX_PENDING:  # a sender far ahead of the playout: memory stays
            self.dropped += 1                              # bounded, and the flood skews no delay statistic
            return False
        self._measure(ext, float(arrival_s))
        if late:
            return self._late(ext)
        if self._top is not None and ext < self._top:
            self.reordered += 1
        self._top = ext if self._top is None else max(self._top, ext)
        self._buf[ext] = data, float(arrival_s)
        self.received += 1
        if self._next is None:  # the first packet starts the playout schedule
            self._due = float(arrival_s) + self.config.initial_ms / 1000
        self._next = ext if self._next is None else min(self._next, ext)  # before playout: the lowest
        return True

    def _late(self, ext: int) -> bool:
        if self._past.get(ext) == _LOST:
            self.lost -= 1
        self._past[ext] = _LATE
        self.late += 1
        return False

    def _unwrap(self, seq: int) -> int:
        """The unwrapped number nearest the playout position (which moves on through a long outage)."""
        if self._top is None:
            return seq
        ref = max(self._top, self._next)
        m = self._modulo
        delta = (seq - ref) % m
        return ref + (delta - m if delta >= m // 2 else delta)

    def _measure(self, ext: int, arrival_s: float) -> None:
        transit = arrival_s - ext * self._period  # the network delay, up to a constant
        if self._transit is not None:  # RFC 3550 §6.4.1: J += (|D| − J) / 16
            self._jitter += (abs(transit - self._transit) - self._jitter) / 16
        self._transit = transit
        self._delays.append(transit)

    # -- playout ---------------------------------------------------------------------------------
    @property
    def next_due_s(self) -> float | None:
        """When the next slot is due (s, the caller's clock); None until the first packet arrives."""
        return self._due

    def due(self, now_s: float) -> bool:
        """Whether a slot is due at ``now_s``: call :meth:`pop` while this is True."""
        return self._due is not None and now_s >= self._due

    @property
    def pending(self) -> int:
        """Packets waiting in the buffer (at the end of a call: pop until none are left)."""
        return len(self._buf)

    def pop(self, now_s: float) -> bytes | None:
        """Play the next slot: its packet, or None (lost, late, or a slot inserted to deepen the
        buffer) for the decoder to conceal. ``now_s`` (s): if the caller has fallen more than
        ``max_ms`` behind the schedule (a stall), the schedule restarts from ``now_s`` instead of
        bursting the missed slots out."""
        if self._next is None:
            return None  # nothing has arrived yet: nothing to play
        if now_s - self._due > self.config.max_ms / 1000:
            self._due = float(now_s)
        self._started = True
        self._since_grow, self._since_shrink = self._since_grow + 1, self._since_shrink + 1
        self._jump_gap()
        action = self._adapt()  # on the depth at this slot's time
        self._due += self._period
        if action == "grow":
            self.inserted += 1
            self.concealed += 1
            self._since_grow = 0
            return None
        if action == "shrink":
            self._skip()
        return self._play()

    def _play(self) -> bytes | None:
        packet, _ = self._buf.pop(self._next, (None, None))
        self._mark(self._next, _LOST if packet is None else _PLAYED)
        self._next += 1
        if packet is None:
            self.concealed += 1
        else:
            self.played += 1
        return packet

    def _mark(self, ext: int, fate: int) -> None:
        self._past[ext] = fate
        self.lost += fate == _LOST
        if len(self._past) > _PAST:  # keep the recent half
            self._past = {e: f for e, f in self._past.items() if e >= ext - _PAST // 2}

    def _skip(self) -> None:
        """Shrink by one slot: skip the next sequence number (missing: free; present: dropped)."""
        if self._next in self._buf:
            del self._buf[self._next]
            self._mark(self._next, _DROPPED)
            self.dropped += 1
            self._since_shrink = 0
        else:
            self._mark(self._next, _LOST)
        self._next += 1

    def _jump_gap(self) -> None:
        """A packet that would wait longer than max_ms for its slot (the slots before it are missing)
        means the sender's numbers jumped ahead, not that the packets between were lost: skip to it."""
        if self._next in self._buf or not self._buf:
            return
        first = min(self._buf)
        wait = self._due + (first - self._next) * self._period - self._buf[first][1]
        if wait > self.config.max_ms / 1000 + self._period:
            self.resyncs += 1
            self._next = first
            self._delays.clear()
            self._transit = None

    # -- depth -----------------------------------------------------------------------------------
    @property
    def depth_ms(self) -> float:
        """Current depth, ms: how long a packet with the smallest recent delay waits before it plays."""
        if self._next is None or not self._delays:
            return 0.0
        return 1000 * (self._due - self._next * self._period - min(self._delays))

    @property
    def target_ms(self) -> float:
        """The depth the buffer steers to, ms (``initial_ms`` until ``warmup`` packets are measured)."""
        cfg = self.config
        if len(self._delays) < cfg.warmup:
            return float(np.clip(cfg.initial_ms, cfg.min_ms, cfg.max_ms))
        d = np.sort(self._delays)  # the highest (100 − percentile) % of a full window may arrive late
        spread = d[max(0, len(d) - 1 - int((100 - cfg.percentile) / 100 * cfg.window))] - d[0]
        return float(np.clip(1000 * spread + cfg.margin_ms, cfg.min_ms, cfg.max_ms))

    @property
    def jitter_ms(self) -> float:
        """RFC 3550 interarrival jitter estimate, ms (informative; the depth uses the percentile)."""
        return 1000 * self._jitter

    def _adapt(self) -> str | None:
        """'grow' (insert a slot), 'shrink' (skip one) or None, for the slot being played."""
        cfg, P = self.config, self._period
        if len(self._delays) < cfg.warmup:
            return None
        depth, target = self.depth_ms, self.target_ms
        if depth < target and self._since_grow >= cfg.grow_every:
            return "grow"
        if (self._next + 1) in self._buf:  # shrinking keeps a packet to play now
            free = self._next not in self._buf and depth >= target + 1000 * P  # skip a missing packet
            drop = depth >= target + 2000 * P and self._since_shrink >= cfg.shrink_every
            if free or drop or depth > cfg.max_ms:
                return "shrink"
        return None

    def stats(self) -> dict:
        """The counters and the depth (ms) as a dict, for logs and reports."""
        keys = ("received", "played", "concealed", "lost", "late", "duplicates", "reordered", "damaged",
                "inserted", "dropped", "resyncs")
        return {k: getattr(self, k) for k in keys} | {
            "depth_ms": round(self.depth_ms, 1), "target_ms": round(self.target_ms, 1),
            "jitter_ms": round(self.jitter_ms, 1)}

    def replay(self, arrivals) -> "Iterator[bytes | None]":
        """Simulation and tests: (arrival time s, packet, seq) triples sorted by time (pairs for
        version-1 packets) → each playout slot's packet (None: conceal it) in order, every slot popped
        at its due time, until no packet is left."""
        arrivals, i = list(arrivals), 0
        while i < len(arrivals) or self.pending:
            due = self.next_due_s
            if i < len(arrivals) and (due is None or arrivals[i][0] <= due):
                arrival_s, packet, *seq = arrivals[i]
                self.put(packet, arrival_s, *seq)
                i += 1
            else:
                yield self.pop(due)
