"""The mode ladder, re-exported from the format layer where it lives (:mod:`bitstream.modes`)."""
from bitstream.modes import (  # noqa: F401
    LADDER,
    LATENT_MODES,
    MAX_KBPS,
    MEL_MODES,
    MIN_KBPS,
    PACKET_MS,
    REPRESENTATIONS,
    STORAGE_MODES,
    VOIP_LADDER,
    VOIP_MODES,
    Mode,
    check_kbps,
    mode_by_id,
    mode_for,
    voip_kbps,
    voip_mode_for,
)
