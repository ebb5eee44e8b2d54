"""The one exception family of the bitstream package."""


class BitstreamError(ValueError):
    """Base class: the bytes are not a valid ldcodec stream (or not one we can read)."""


class TruncatedError(BitstreamError):
    """The data ends before a field or packet it announces."""


class BadMagicError(BitstreamError):
    """The data does not start with the ldcodec magic bytes."""


class UnsupportedVersionError(BitstreamError):
    """The format version is newer (or older) than this reader understands."""

    def __init__(self, version: int, supported: tuple[int, ...]):
        self.version = version
        self.supported = supported
        super().__init__(
            f"unsupported ldcodec format version {version} (this reader understands {', '.join(map(str, supported))})"
        )


class ChecksumError(BitstreamError):
    """A CRC does not match: the header or a packet is damaged."""


class BundleMismatchError(BitstreamError):
    """The stream was encoded with a different model bundle than the one given."""


class MalformedError(BitstreamError):
    """A field holds an impossible value (hostile length, unknown enum, bad payload)."""
