"""Packet payload of both representations: quantised groups (cepstra or latents) + pitch ↔ bytes.

Payload = step index ``g`` (u8; step = 2^((g - 128) / 16) in natural-log-mel units for the mel
representation, latent units for the latent one) followed by one range-coded stream of, in order:

1. residuals: values are quantised to integers ``q[t, k] = round(c / (step·w_k))`` and coded
   group by group; mel cepstra as closed-loop integer differences from the previous group of the
   same packet (``r = clip(q[t] - q̂[t-1])``, ``q̂[-1] = 0``), latents as themselves
   (``r = clip(q[t])``: the 12.5 Hz latent frames are nearly uncorrelated);
2. one voicing flag per group (Markov tables on the previous flag);
3. for each voiced group, its pitch index minus the previous voiced group's (the first one
   minus ``pitch.REF_INDEX``).

Every packet decodes on its own.
"""
from __future__ import annotations

import numpy as np

from bitstream import MalformedError, RangeDecoder, RangeEncoder

from .entropy import MAX_RESIDUAL, decode_flags, decode_residuals, encode_tables, flag_tables
from .pitch import REF_INDEX


G_MIN, G_MAX = 48, 255  # step indices the rate control searches (steps 2^-5 … 2^7.9)


def search_step(fits, start: int) -> int:
    """Smallest step index g in [G_MIN, G_MAX] with ``fits(g)`` (size falls as g grows): gallop
    from ``start`` to a bracket, then bisect. G_MAX if nothing fits."""
    lo = hi = start
    step = 4
    if fits(hi):
        while hi > G_MIN:
            lo = max(G_MIN, hi - step)
            if not fits(lo):
                break
            hi, step = lo, step * 2
        else:
            return G_MIN
    else:
        while lo < G_MAX:
            hi = min(G_MAX, lo + step)
            if fits(hi):
                break
            lo, step = hi, step * 2
        else:
            return G_MAX
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if fits(mid):
            hi = mid
        else:
            lo = mid
    return hi


def step_size(g: int) -> float:
    """Quantiser step for step index ``g`` (0..255), natural-log-mel units."""
    return 2.0 ** ((g - 128) / 16)


def quantize(coefs: np.ndarray, weights: np.ndarray, g: int) -> np.ndarray:
    """(groups, K) float → (groups, K) int64."""
    return np.round(coefs / (step_size(g) * weights)).astype(np.int64)


def dequantize(q: np.ndarray, weights: np.ndarray, g: int) -> np.ndarray:
    return (q * (step_size(g) * weights)).astype(np.float32)


def _residuals(q: np.ndarray, predictive: bool) -> tuple[np.ndarray, np.ndarray]:
    """Clipped closed-loop differences (or clipped values) → (residuals, reconstructed q), both (groups, K)."""
    if not predictive:
        res = np.clip(q, -MAX_RESIDUAL, MAX_RESIDUAL)
        return res, res
    res = np.empty_like(q)
    rec = np.empty_like(q)
    prev = np.zeros(q.shape[1], dtype=np.int64)
    for t in range(q.shape[0]):
        res[t] = np.clip(q[t] - prev, -MAX_RESIDUAL, MAX_RESIDUAL)
        prev = rec[t] = prev + res[t]
    return res, rec


def encode_packet(q: np.ndarray, g: int, pitch: np.ndarray, voiced: np.ndarray,
                  prior=None, predictive: bool = True, trim: bool = False) -> tuple[bytes, np.ndarray]:
    """Quantised groups (groups, K), pitch indices and voicing (groups,) → (payload bytes,
    the integers the decoder will reconstruct). ``prior``: step index → the mode's initial coder
    states (``entropy.packet_prior``; streaming modes only). ``predictive``: code differences between
    groups (mel) or the values themselves (latent). ``trim``: drop the coder's spare tail bytes
    (``RangeEncoder.finish``; streaming packets)."""
    res, rec = _residuals(q, predictive)
    flags = voiced.astype(np.int64)
    steps = np.diff(pitch[voiced], prepend=REF_INDEX)[:, None]
    enc = RangeEncoder()
    enc.encode(res.reshape(-1), encode_tables(res, prior(g) if prior else None), offset=-MAX_RESIDUAL)
    enc.encode(flags, flag_tables(flags))
    enc.encode(steps.reshape(-1), encode_tables(steps), offset=-MAX_RESIDUAL)
    return bytes([g]) + enc.finish(trim), rec


def decode_packet(payload: bytes, groups: int, n_coefs: int, prior=None,
                  predictive: bool = True) -> tuple[np.ndarray, int, np.ndarray, np.ndarray]:
    """Payload → (quantised groups (groups, K) int64, step index g, pitch (groups,), voiced (groups,)).

    Unvoiced groups repeat the last voiced pitch index (``REF_INDEX`` before the first)."""
    if len(payload) < 1:
        raise MalformedError("mel packet payload is empty")
    dec = RangeDecoder(payload[1:])
    q = decode_residuals(dec, groups, n_coefs, prior(payload[0]) if prior else None)
    if predictive:
        q = np.cumsum(q, axis=0)
    voiced = decode_flags(dec, groups).astype(bool)
    steps = decode_residuals(dec, int(voiced.sum()), 1)[:, 0]
    values = np.concatenate([[REF_INDEX], REF_INDEX + np.cumsum(steps)])
    pitch = values[np.cumsum(voiced)]  # the last voiced group's index so far
    return q, payload[0], pitch, voiced
