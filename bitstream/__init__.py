"""ldcodec bitstream: the torch-free layer (numpy, constriction and the standard library only).

It holds the range coder (:mod:`bitstream.rangecoder`), the versioned ``.ldc`` container and
raw VoIP packets (:mod:`bitstream.container`) and their one error family
(:mod:`bitstream.errors`). The byte-level format is specified in ``SPEC.md``.
Nothing here imports torch, so streams can be parsed and inspected without it.
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
    REPRESENTATIONS,
    SUPPORTED_VERSIONS,
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

__all__ = [
    "BitstreamError", "TruncatedError", "BadMagicError", "UnsupportedVersionError", "ChecksumError",
    "BundleMismatchError", "MalformedError", "RangeEncoder", "RangeDecoder", "Header", "Packet",
    "Container", "RawPacket", "write_file", "read_file", "read_header", "info", "check_bundle",
    "pack_packet", "unpack_packet", "FORMAT_VERSION", "SUPPORTED_VERSIONS", "MAGIC", "MAX_PAYLOAD",
    "REPRESENTATIONS",
]
