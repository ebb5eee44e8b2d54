"""ldcodec bitstream: the whole format, torch-free (numpy, constriction and the standard library only).

It holds the range coder (:mod:`bitstream.rangecoder`), the versioned ``.ldc`` container and
raw VoIP packets (:mod:`bitstream.container`), their one error family (:mod:`bitstream.errors`),
and the payload syntax: the mode ladder (:mod:`bitstream.modes`), the integer entropy tables
(:mod:`bitstream.entropy`), the pitch grid (:mod:`bitstream.pitch`), packet coding and
dequantisation (:mod:`bitstream.payload`), and a stream parsed down to its dequantised groups
(:mod:`bitstream.groups`). The byte-level format is specified in ``SPEC.md``.
Nothing here imports torch, so streams can be parsed, checked and dequantised without it.
"""
from .errors import (
    BadMagicError,
    BitstreamError,
    BundleMismatchError,
    ChecksumError,
    MalformedError,
    TruncatedError,
    UnsupportedVersionError,
)
from .rangecoder import RangeDecoder, RangeEncoder
from .container import (
    FORMAT_VERSION,
    MAGIC,
    MAX_PAYLOAD,
    PACKET_VERSION,
    REPRESENTATIONS,
    SUPPORTED_VERSIONS,
    SUPPORTED_PACKET_VERSIONS,
    Container,
    Header,
    Packet,
    RawPacket,
    check_bundle,
    info,
    pack_packet,
    read_file,
    read_header,
    unpack_packet,
    write_file,
)
from .modes import HOP, SAMPLE_RATE, Mode, mode_by_id
from .groups import Groups, packet_groups, read_groups

__all__ = [
    "BitstreamError", "TruncatedError", "BadMagicError", "UnsupportedVersionError", "ChecksumError",
    "BundleMismatchError", "MalformedError", "RangeEncoder", "RangeDecoder", "Header", "Packet",
    "Container", "RawPacket", "write_file", "read_file", "read_header", "info", "check_bundle",
    "pack_packet", "unpack_packet", "FORMAT_VERSION", "SUPPORTED_VERSIONS", "PACKET_VERSION",
    "SUPPORTED_PACKET_VERSIONS", "MAGIC", "MAX_PAYLOAD",
    "REPRESENTATIONS", "SAMPLE_RATE", "HOP", "Mode", "mode_by_id", "Groups", "read_groups", "packet_groups",
]
