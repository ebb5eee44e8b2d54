"""The versioned ``.ldc`` container and raw VoIP packets (byte layout: ``SPEC.md``).

Pure standard library: ``zlib.crc32`` guards the header, ``binascii.crc_hqx``
(CRC-16/CCITT-FALSE) guards every file record (and version-1 raw packets), a CRC-8/AUTOSAR every
version-2 raw packet. Every reader raises only
:class:`~bitstream.errors.BitstreamError` subclasses, whatever bytes it is given,
and does work and allocation linear in the input size.
"""
from __future__ import annotations

import re
import struct
import zlib
from binascii import crc_hqx
from dataclasses import asdict, dataclass, field
from typing import Sequence

from .errors import (
    BadMagicError,
    BitstreamError,
    BundleMismatchError,
    ChecksumError,
    MalformedError,
    TruncatedError,
    UnsupportedVersionError,
)

FORMAT_VERSION = 1
SUPPORTED_VERSIONS = (1,)
PACKET_VERSION = 2  # the raw VoIP packet's layout (its TOC's top two bits): what pack_packet writes
SUPPORTED_PACKET_VERSIONS = (1, 2)
MAGIC = b"LDCF"
REPRESENTATIONS = ("mel", "latent")
MAX_PAYLOAD = 65535  # bytes per packet payload
MIN_RECORD = 4  # bytes: 1 length + 1 seq + 0 payload + 2 CRC
_MIN_RAW = {1: 4, 2: 2}  # bytes of a raw packet without payload: TOC (+ seq) + CRC

_PREAMBLE = struct.Struct(">4sBH")  # magic, version, header_len
# sample_rate, mode_id, representation, bundle_id, frames_per_packet, num_samples,
# num_packets, seed, source_rate, source_channels, decoder name length
_FIXED = struct.Struct(">IBB8sHQIIIBB")
_HEADER_MIN = _FIXED.size + 4  # header_len without the decoder name (42)
_DECODER_RE = re.compile(r"[a-z0-9_-]{1,32}")
_U8, _U16, _U32, _U64 = 0xFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFFFFFFFFFF


def _crc16(data) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no xor-out)."""
    return crc_hqx(data, 0xFFFF)


def _crc8_table(poly: int = 0x2F) -> tuple[int, ...]:
    table = []
    for byte in range(256):
        c = byte
        for _ in range(8):
            c = (c << 1 ^ poly if c & 0x80 else c << 1) & 0xFF
        table.append(c)
    return tuple(table)


_CRC8 = _crc8_table()


def _crc8(data) -> int:
    """CRC-8/AUTOSAR (poly 0x2F, init 0xFF, no reflection, xor-out 0xFF; check value 0xDF)."""
    c = 0xFF
    for b in bytes(data):
        c = _CRC8[c ^ b]
    return c ^ 0xFF


@dataclass(frozen=True)
class Header:
    """File header. Rates in Hz; ``num_samples`` counts samples at ``sample_rate``."""

    sample_rate: int
    mode_id: int
    representation: str
    bundle_id: bytes
    frames_per_packet: int
    num_samples: int
    num_packets: int
    seed: int = 0
    decoder: str = "default"
    source_rate: int = 0
    source_channels: int = 1

    def __post_init__(self) -> None:
        for name, lo, hi in (
            ("sample_rate", 1, _U32), ("mode_id", 0, _U8), ("frames_per_packet", 1, _U16),
            ("num_samples", 0, _U64), ("num_packets", 0, _U32), ("seed", 0, _U32),
            ("source_rate", 0, _U32), ("source_channels", 0, _U8),
        ):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
                raise MalformedError(f"header field {name}={v!r} outside [{lo}, {hi}]")
        if self.representation not in REPRESENTATIONS:
            raise MalformedError(f"header field representation={self.representation!r} not one of {REPRESENTATIONS}")
        if not isinstance(self.bundle_id, (bytes, bytearray)) or len(self.bundle_id) != 8:
            raise MalformedError(f"header field bundle_id={self.bundle_id!r} must be exactly 8 bytes")
        object.__setattr__(self, "bundle_id", bytes(self.bundle_id))
        if not isinstance(self.decoder, str) or not _DECODER_RE.fullmatch(self.decoder):
            raise MalformedError(f"header field decoder={self.decoder!r} must be 1..32 chars of [a-z0-9_-]")

    def to_bytes(self) -> bytes:
        """The encoded header, magic through CRC-32."""
        name = self.decoder.encode("ascii")
        body = _FIXED.pack(
            self.sample_rate, self.mode_id, REPRESENTATIONS.index(self.representation), self.bundle_id,
            self.frames_per_packet, self.num_samples, self.num_packets, self.seed, self.source_rate,
            self.source_channels, len(name),
        ) + name
        head = _PREAMBLE.pack(MAGIC, FORMAT_VERSION, len(body) + 4) + body
        return head + struct.pack(">I", zlib.crc32(head))


@dataclass(frozen=True)
class Packet:
    """One good packet: ``index`` in the file, ``seq == index % 256``, its payload bytes."""

    index: int
    seq: int
    payload: bytes


@dataclass
class Container:
    """A parsed file: ``packets[i]`` is None where packet i was damaged or missing."""

    header: Header
    packets: list[Packet | None]
    errors: list[BitstreamError] = field(default_factory=list)

    @property
    def damaged(self) -> list[int]:
        """Indices of packets that are missing or failed their checks."""
        return [i for i, p in enumerate(self.packets) if p is None]


@dataclass(frozen=True)
class RawPacket:
    """A raw VoIP packet: TOC version and mode, payload, and (version 1 only) its sequence byte.
    A version-2 packet carries no sequence number (``seq`` is None): the transport numbers packets."""

    version: int
    mode_id: int
    seq: int | None
    payload: bytes


# ---------------------------------------------------------------- writing

def _varint(n: int) -> bytes:
    """Unsigned LEB128 (minimal form)."""
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _record(seq: int, payload: bytes) -> bytes:
    body = bytes((seq,)) + payload
    return _varint(len(payload)) + body + _crc16(body).to_bytes(2, "big")


def _check_payload(who: str, payload) -> bytes:
    if not isinstance(payload, (bytes, bytearray, memoryview)):
        raise MalformedError(f"{who}: payload must be bytes, got {type(payload).__name__}")
    payload = bytes(payload)
    if len(payload) > MAX_PAYLOAD:
        raise MalformedError(f"{who}: payload of {len(payload)} bytes exceeds {MAX_PAYLOAD}")
    return payload


def write_file(header: Header, payloads: Sequence[bytes]) -> bytes:
    """Encode a whole ``.ldc`` file: header then one record per payload."""
    if len(payloads) != header.num_packets:
        raise MalformedError(f"header announces {header.num_packets} packets, got {len(payloads)} payloads")
    parts = [header.to_bytes()]
    parts += [_record(i & 0xFF, _check_payload(f"packet {i}", p)) for i, p in enumerate(payloads)]
    return b"".join(parts)


# ---------------------------------------------------------------- reading

def read_header(data: bytes) -> tuple[Header, int]:
    """Parse and verify the header → (header, byte offset where packet records start)."""
    data = bytes(data)
    if not data:
        raise TruncatedError("empty file (0 bytes)")
    if data[:4] != MAGIC:
        if len(data) < 4 and MAGIC.startswith(data):
            raise TruncatedError(f"{len(data)} bytes: too short for the magic")
        raise BadMagicError(f"not an ldcodec file: magic {data[:4].hex()} != {MAGIC.hex()}")
    if len(data) < 5:
        raise TruncatedError("file ends before the format version")
    if data[4] not in SUPPORTED_VERSIONS:
        raise UnsupportedVersionError(data[4], SUPPORTED_VERSIONS)
    if len(data) < _PREAMBLE.size:
        raise TruncatedError("file ends before the header length")
    header_len = _PREAMBLE.unpack_from(data)[2]
    end = _PREAMBLE.size + header_len
    if len(data) < end:
        raise TruncatedError(f"header of {header_len} bytes but only {len(data) - _PREAMBLE.size} follow")
    if header_len < _HEADER_MIN:
        raise MalformedError(f"header_len {header_len} below the minimum {_HEADER_MIN}")
    (crc,) = struct.unpack_from(">I", data, end - 4)
    if zlib.crc32(data[: end - 4]) != crc:
        raise ChecksumError("header CRC-32 mismatch: the header is damaged")
    (sr, mode, rep, bundle, fpp, ns, npk, seed, src_rate, src_ch, name_len) = _FIXED.unpack_from(data, _PREAMBLE.size)
    if header_len != _HEADER_MIN + name_len:
        raise MalformedError(f"header_len {header_len} does not match decoder name length {name_len}")
    if rep >= len(REPRESENTATIONS):
        raise MalformedError(f"header field representation index {rep} unknown")
    name_at = _PREAMBLE.size + _FIXED.size
    try:
        name = data[name_at: name_at + name_len].decode("ascii")
    except UnicodeDecodeError:
        raise MalformedError("header field decoder is not ASCII") from None
    header = Header(sr, mode, REPRESENTATIONS[rep], bundle, fpp, ns, npk, seed, name, src_rate, src_ch)
    return header, end


_TRUNC, _BADLEN = 1, 2  # _frame failure codes


def _frame(data: bytes, pos: int):
    """Frame the record at ``pos`` → (seq_at, payload_end, end) or a failure code (no CRC check)."""
    size, length, p = len(data), 0, pos
    for k in range(3):
        if p >= size:
            return _TRUNC
        b = data[p]
        p += 1
        length |= (b & 0x7F) << (7 * k)
        if b < 0x80:
            if k and not b:
                return _BADLEN  # non-minimal varint
            break
    else:
        return _BADLEN  # longer than 3 bytes
    if length > MAX_PAYLOAD:
        return _BADLEN
    end = p + length + 3
    return _TRUNC if end > size else (p, end - 2, end)


def _crc_ok(data: bytes, view: memoryview, seq_at: int, payload_end: int) -> bool:
    return _crc16(view[seq_at:payload_end]) == (data[payload_end] << 8 | data[payload_end + 1])


def _resync(data: bytes, view: memoryview, start: int, index: int, count: int, budget: list[int]):
    """First offset ≥ ``start`` holding a verified record of index ≥ ``index`` → (offset, index) or None.

    The caller failed to read packet ``index`` at ``start``, so a hit there has a later index.

    A candidate must pass its CRC and be confirmed: it ends the data exactly, or is followed
    by a valid record of the next index. ``budget`` (bytes of CRC work left) bounds the cost.
    """
    size = len(data)
    for o in range(start, size - MIN_RECORD + 1):
        f = _frame(data, o)
        if f.__class__ is int:
            continue
        seq_at, pend, end = f
        j = index + ((data[seq_at] - index) & 0xFF)
        if j >= count:
            continue
        checks = [(seq_at, pend)]
        if end != size:
            g = _frame(data, end)
            if g.__class__ is int or j + 1 >= count or data[g[0]] != (j + 1) & 0xFF:
                continue
            checks.append(g[:2])
        for s, e in checks:
            budget[0] -= e - s
        if budget[0] < 0:
            return None
        if all(_crc_ok(data, view, s, e) for s, e in checks):
            return o, j
    return None


def _packets(first: int, last: int) -> str:
    return f"packet {first}" if first == last else f"packets {first}..{last}"


def read_file(data: bytes, strict: bool = True) -> Container:
    """Parse a ``.ldc`` file. ``strict`` raises the first error; otherwise damaged or missing
    packets are None and their errors are listed. Header damage always raises."""
    data = bytes(data)
    header, pos = read_header(data)
    size, count = len(data), header.num_packets
    if count > (size - pos) // MIN_RECORD:
        raise MalformedError(
            f"header announces {count} packets but only {size - pos} bytes follow "
            f"(each record takes at least {MIN_RECORD}): hostile count or heavily truncated file")
    view = memoryview(data)
    packets: list[Packet | None] = [None] * count
    errors: list[BitstreamError] = []
    budget = [16 * size + (1 << 20)]
    i = 0
    while i < count:
        if pos >= size:
            err: BitstreamError = TruncatedError(f"file ends after packet {i - 1}: {_packets(i, count - 1)} missing")
            if strict:
                raise err
            errors.append(err)
            break
        end = pos + data[pos] + 4  # fast path: a good record with a 1-byte length
        if data[pos] < 0x80 and end <= size and data[pos + 1] == i & 0xFF and \
                crc_hqx(view[pos + 1: end - 2], 0xFFFF) == (data[end - 2] << 8 | data[end - 1]):
            packets[i] = Packet(i, i & 0xFF, data[pos + 2: end - 2])
            pos, i = end, i + 1
            continue
        f = _frame(data, pos)
        if f.__class__ is int:
            err = (TruncatedError(f"packet {i} at byte {pos}: record runs past the end of the file") if f == _TRUNC
                   else MalformedError(f"packet {i} at byte {pos}: invalid length varint"))
        elif data[f[0]] != i & 0xFF:
            err = MalformedError(f"packet {i} at byte {pos}: sequence byte {data[f[0]]}, expected {i & 0xFF}")
        elif not _crc_ok(data, view, f[0], f[1]):
            err = ChecksumError(f"packet {i} at byte {pos}: CRC-16 mismatch")
        else:
            packets[i] = Packet(i, i & 0xFF, data[f[0] + 1: f[1]])
            pos, i = f[2], i + 1
            continue
        if strict:
            raise err
        errors.append(err)
        found = _resync(data, view, pos, i, count, budget)  # pos itself may hold a later packet
        if found is None:
            if budget[0] < 0:
                errors.append(MalformedError("resynchronisation gave up: work budget exhausted"))
            if i + 1 < count:
                errors.append(MalformedError(f"{_packets(i + 1, count - 1)}: no intact record after byte {pos}"))
            pos = size
            break
        if found[1] > i + 1:  # every damaged packet gets its error
            errors.append(MalformedError(f"{_packets(i + 1, found[1] - 1)}: lost in the damaged bytes "
                                         f"{pos}..{found[0] - 1}"))
        pos, i = found
    if pos < size:
        err = MalformedError(f"{size - pos} extra bytes after the last packet (at byte {pos})")
        if strict:
            raise err
        errors.append(err)
    return Container(header, packets, errors)


def check_bundle(header: Header, bundle_id: bytes) -> None:
    """Raise :class:`BundleMismatchError` unless the file was encoded with ``bundle_id``."""
    if bytes(bundle_id) != header.bundle_id:
        raise BundleMismatchError(
            f"stream was encoded with bundle {header.bundle_id.hex()}, but bundle {bytes(bundle_id).hex()} was given")


def info(data: bytes) -> dict:
    """Summary of a file: header fields (bundle_id hex), size, duration (s), bitrate (kbit/s), damage."""
    c = read_file(data, strict=False)
    h = asdict(c.header)
    h["bundle_id"] = c.header.bundle_id.hex()
    duration = c.header.num_samples / c.header.sample_rate
    nbytes = len(data)
    damaged = len(c.damaged)
    return {
        "version": FORMAT_VERSION, **h, "file_bytes": nbytes, "duration_s": duration,
        "kbps": nbytes * 8 / duration / 1000 if duration > 0 else 0.0,
        "packets_ok": len(c.packets) - damaged, "packets_damaged": damaged, "damaged_packets": c.damaged,
        "errors": [f"{type(e).__name__}: {e}" for e in c.errors],
    }


# ---------------------------------------------------------------- raw VoIP packets

def pack_packet(mode_id: int, payload: bytes) -> bytes:
    """A version-2 raw packet: TOC (2 << 6 | mode_id) | payload | CRC-8 over both (SPEC §2).
    No sequence number: the transport (RTP, or the application's own framing) carries it."""
    if not 0 <= mode_id <= 63:
        raise MalformedError(f"mode_id {mode_id} outside [0, 63] for a raw packet")
    body = bytes((PACKET_VERSION << 6 | mode_id,)) + _check_payload("raw packet", payload)
    return body + bytes((_crc8(body),))


def unpack_packet(data: bytes) -> RawPacket:
    """Parse and verify a raw packet of any supported version (2: :func:`pack_packet`'s; 1: with
    its sequence byte and a CRC-16)."""
    data = bytes(data)
    if not data:
        raise TruncatedError("empty packet")
    version = data[0] >> 6
    if version not in SUPPORTED_PACKET_VERSIONS:
        raise UnsupportedVersionError(version, SUPPORTED_PACKET_VERSIONS)
    least = _MIN_RAW[version]
    if len(data) < least:
        raise TruncatedError(f"packet of {len(data)} bytes is shorter than the minimum {least}")
    if len(data) > MAX_PAYLOAD + least:
        raise MalformedError(f"packet of {len(data)} bytes exceeds the maximum {MAX_PAYLOAD + least}")
    if version == 1:
        if _crc16(data[:-2]) != int.from_bytes(data[-2:], "big"):
            raise ChecksumError("raw packet CRC-16 mismatch")
        return RawPacket(version, data[0] & 0x3F, data[1], data[2:-2])
    if _crc8(data[:-1]) != data[-1]:
        raise ChecksumError("raw packet CRC-8 mismatch")
    return RawPacket(version, data[0] & 0x3F, None, data[1:-1])
