"""Packet payload of the mel representation: quantised cepstral groups ↔ bytes.

Payload = step index ``g`` (u8; step = 2^((g - 128) / 16) in natural-log-mel units) followed
by range-coded residuals. Coefficients are quantised to integers ``q[t, k] = round(c / (step·w_k))``
and coded as closed-loop integer differences from the previous group of the same packet
(``r = clip(q[t] - q̂[t-1])``, ``q̂[-1] = 0``), so every packet decodes on its own.
"""
from __future__ import annotations

import numpy as np

from bitstream import MalformedError, RangeDecoder, RangeEncoder

from .entropy import MAX_RESIDUAL, decode_residuals, encode_tables


def step_size(g: int) -> float:
    """Quantiser step for step index ``g`` (0..255), natural-log-mel units."""
    return 2.0 ** ((g - 128) / 16)


def quantize(coefs: np.ndarray, weights: np.ndarray, g: int) -> np.ndarray:
    """(groups, K) float → (groups, K) int64."""
    return np.round(coefs / (step_size(g) * weights)).astype(np.int64)


def dequantize(q: np.ndarray, weights: np.ndarray, g: int) -> np.ndarray:
    return (q * (step_size(g) * weights)).astype(np.float32)


def _residuals(q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Closed-loop clipped differences → (residuals, reconstructed q), both (groups, K)."""
    res = np.empty_like(q)
    rec = np.empty_like(q)
    prev = np.zeros(q.shape[1], dtype=np.int64)
    for t in range(q.shape[0]):
        res[t] = np.clip(q[t] - prev, -MAX_RESIDUAL, MAX_RESIDUAL)
        prev = rec[t] = prev + res[t]
    return res, rec


def encode_packet(q: np.ndarray, g: int) -> tuple[bytes, np.ndarray]:
    """Quantised groups (groups, K) → (payload bytes, what the decoder will reconstruct)."""
    res, rec = _residuals(q)
    enc = RangeEncoder()
    enc.encode(res.reshape(-1), encode_tables(res), offset=-MAX_RESIDUAL)
    return bytes([g]) + enc.finish(), rec


def decode_packet(payload: bytes, groups: int, n_coefs: int) -> tuple[np.ndarray, int]:
    """Payload → (quantised groups (groups, K) int64, step index g)."""
    if len(payload) < 1:
        raise MalformedError("mel packet payload is empty")
    res = decode_residuals(RangeDecoder(payload[1:]), groups, n_coefs)
    return np.cumsum(res, axis=0), payload[0]
