"""Packet payload of both representations (SPEC §7–8): quantised groups (cepstra or latents) + pitch ↔ bytes.

Payload = step index ``g`` (u8; step = 2^((g - 128) / 16) in natural-log-mel units for the mel
representation, latent units for the latent one) followed by one range-coded stream of, in order:

1. residuals: values are quantised to integers ``q[t, k] = round(c / (step·w_k))`` and coded
   group by group; mel cepstra as closed-loop integer differences from the previous group of the
   same packet (``r = clip(q[t] - q̂[t-1])``, ``q̂[-1] = 0``), latents as themselves
   (``r = clip(q[t])``: the 12.5 Hz latent frames are nearly uncorrelated);
2. one voicing flag per group (Markov tables on the previous flag);
3. for each voiced group, its pitch index minus the previous voiced group's (the first one
   minus ``pitch.REF_INDEX``).

Every packet decodes on its own. Dequantisation (``values = q · step_size(g) · weights``) is here too, and
the checks that refuse what no encoder writes (SPEC §7, "Valid payloads"): a payload whose length is not
what its symbols take, a value beyond ``VALUE_LIMITS``, a pitch index off the grid.
"""
from __future__ import annotations

from functools import partial

import numpy as np

from .entropy import (
    MAX_RESIDUAL,
    PACKET_PRIORS,
    SCALED_PRIORS,
    FLAG_TABLES,
    decode_flags,
    decode_residuals,
    flag_rows,
    packet_prior,
    table_bank,
    table_rows,
)
from .errors import MalformedError
from .modes import Mode
from .pitch import N_LEVELS, REF_INDEX
from .rangecoder import RangeDecoder, RangeEncoder


# The largest magnitude of a coded value (before quantisation) an encoder writes, in the representation's
# units; encode_groups clips to it. mel: a cepstral coefficient of an 80-band log-mel within [-18, 8] nats
# (orthonormal DCT: |c_k| <= sqrt(80) * 13 = 116.3; the front end's floor is ln 1e-5 = -11.5 nats and a
# full-scale input stays under 4). latent: 128 latent units (the shipped autoencoders' LayerNorm + Linear
# output layer bounds theirs under 96 for any input).
VALUE_LIMITS = {"mel": 117.0, "latent": 128.0}
_VALUE_NAMES = {"mel": "cepstral coefficient", "latent": "latent channel"}


def step_size(g: int) -> float:
    """Quantiser step for step index ``g`` (0..255): natural-log-mel units (cepstra) or latent units."""
    return 2.0 ** ((g - 128) / 16)


def coef_weights(n_coefs: int) -> np.ndarray:
    """Relative quantiser step per cepstral coefficient (n_coefs,) float32: ``1 + k/8``."""
    return 1.0 + np.arange(n_coefs, dtype=np.float32) / np.float32(8)


def mode_weights(mode: Mode) -> np.ndarray:
    """Relative quantiser step per coded value (K,): coarser high quefrencies for mel, uniform for latents."""
    return coef_weights(mode.n_coefs) if mode.representation == "mel" else np.ones(mode.n_coefs, np.float32)


def mode_prior(mode: Mode):
    """Step index → the initial coder states of the mode's short packets (streaming modes), else None."""
    return partial(packet_prior, mode.id) if mode.id in PACKET_PRIORS or mode.id in SCALED_PRIORS else None


def quantize(coefs: np.ndarray, weights: np.ndarray, g: int, limit: float | None = None) -> np.ndarray:
    """(groups, K) float → (groups, K) int64; ``limit``: clip the values to ±limit first (``VALUE_LIMITS``)."""
    if limit is not None:
        coefs = np.clip(coefs, -np.float32(limit), np.float32(limit))
    return np.round(coefs / (step_size(g) * weights)).astype(np.int64)


STEP_SIZES = np.array([step_size(g) for g in range(256)])  # float64, indexed by g


def value_bound(mode: Mode, g: int) -> np.ndarray:
    """The largest |q| (K,) int64 a valid packet of ``mode`` holds at step index ``g``:
    ``floor(VALUE_LIMITS[representation] / (step_size(g) · weight_k)) + 1`` (SPEC §7, "Valid payloads")."""
    return np.floor(VALUE_LIMITS[mode.representation] / (STEP_SIZES[g] * mode_weights(mode))).astype(np.int64) + 1


def dequantize(q: np.ndarray, weights: np.ndarray, g) -> np.ndarray:
    """(groups, K) int, step index ``g`` (one, or one per group) → (groups, K) float32
    (float32 step × weight, then q times that in float64, rounded to float32)."""
    scale = STEP_SIZES[np.asarray(g)].astype(np.float32)[..., None] * weights
    return (q * scale).astype(np.float32)


def _residuals(q: np.ndarray, predictive: bool) -> tuple[np.ndarray, np.ndarray]:
    """Clipped closed-loop differences along the groups axis (or clipped values) → (residuals,
    reconstructed q), both shaped like ``q`` (..., groups, K); leading axes are separate packets."""
    if not predictive:
        res = np.clip(q, -MAX_RESIDUAL, MAX_RESIDUAL)
        return res, res
    res = np.diff(q, axis=-2, prepend=0)
    if not res.size or np.abs(res).max() <= MAX_RESIDUAL:
        return res, q  # nothing clipped: the closed loop tracks q exactly
    rec = np.empty_like(q)
    prev = np.zeros(q[..., 0, :].shape, dtype=np.int64)
    for t in range(q.shape[-2]):
        res[..., t, :] = np.clip(q[..., t, :] - prev, -MAX_RESIDUAL, MAX_RESIDUAL)
        prev = rec[..., t, :] = prev + res[..., t, :]
    return res, rec


def _payload(g: int, res: np.ndarray, rows: np.ndarray, pitch: np.ndarray, voiced: np.ndarray, trim: bool) -> bytes:
    """One packet's bytes: residuals (groups, K) under their table ``rows``, voicing, pitch steps."""
    flags = voiced.astype(np.int64)
    deltas = np.diff(pitch[voiced], prepend=REF_INDEX)[:, None]
    bank = table_bank()
    enc = RangeEncoder()
    enc.encode(res.reshape(-1), bank, -MAX_RESIDUAL, rows)
    enc.encode(flags, FLAG_TABLES, rows=flag_rows(flags))
    enc.encode(deltas.reshape(-1), bank, -MAX_RESIDUAL, table_rows(deltas))
    return bytes([g]) + enc.finish(trim)


def encode_packet(q: np.ndarray, g: int, pitch: np.ndarray, voiced: np.ndarray,
                  prior=None, predictive: bool = True, trim: bool = False) -> tuple[bytes, np.ndarray]:
    """Quantised groups (groups, K), pitch indices and voicing (groups,) → (payload bytes,
    the integers the decoder will reconstruct). ``prior``: step index → the mode's initial coder
    states (``entropy.packet_prior``; streaming modes only). ``predictive``: code differences between
    groups (mel) or the values themselves (latent). ``trim``: drop the coder's spare tail bytes
    (``RangeEncoder.finish``; streaming packets)."""
    res, rec = _residuals(q, predictive)
    return _payload(g, res, table_rows(res, prior(g) if prior else None), pitch, voiced, trim), rec


def decode_packet(payload: bytes, groups: int, n_coefs: int, prior=None,
                  predictive: bool = True) -> tuple[np.ndarray, int, np.ndarray, np.ndarray]:
    """Payload → (quantised groups (groups, K) int64, step index g, pitch (groups,), voiced (groups,)).

    Unvoiced groups repeat the last voiced pitch index (``REF_INDEX`` before the first). Raises
    :class:`MalformedError` unless the payload holds exactly the 32-bit words the range coder emits for
    the symbols it decodes (a short last word counts as whole), so a packet decoded as holding more or
    fewer groups than it was written with (e.g. a file's short last packet moved elsewhere) is refused."""
    if len(payload) < 1:
        raise MalformedError("payload is empty (not even the step index)")
    g, dec = payload[0], RangeDecoder(payload[1:])
    res = decode_residuals(dec, groups, n_coefs, prior(g) if prior else None)
    voiced = decode_flags(dec, groups).astype(bool)
    deltas = decode_residuals(dec, int(voiced.sum()), 1)[:, 0]
    values = np.concatenate([[REF_INDEX], REF_INDEX + np.cumsum(deltas)])
    pitch = values[np.cumsum(voiced)]  # the last voiced group's index so far
    _check_length(payload, groups, _payload(g, res, table_rows(res, prior(g) if prior else None), pitch, voiced,
                                            trim=False))
    return (np.cumsum(res, axis=0) if predictive else res), g, pitch, voiced


def _check_length(payload: bytes, groups: int, canonical: bytes) -> None:
    """``payload`` must take as many 32-bit words as ``canonical``, the coder's own bytes for its symbols."""
    given, needed = -(-(len(payload) - 1) // 4), (len(canonical) - 1) // 4
    if given != needed:
        raise MalformedError(
            f"payload length {len(payload)} bytes does not match its {groups} group(s): their symbols take "
            f"{needed} coder word(s), the payload holds {given} (a packet written for another position, such as "
            f"a file's short last packet, or a corrupt payload)")


def check_values(mode: Mode, q: np.ndarray, g: int, pitch: np.ndarray) -> None:
    """Raise :class:`MalformedError` naming the field, group and coefficient of the first value of a
    decoded packet that no encoder writes: ``|q| > value_bound(mode, g)``, or a pitch index off the grid."""
    bound = value_bound(mode, g)
    bad = np.argwhere(np.abs(q) > bound)
    if len(bad):
        t, k = (int(i) for i in bad[0])
        raise MalformedError(
            f"{_VALUE_NAMES[mode.representation]} {k} of group {t} is {int(q[t, k])} steps, beyond the ±{bound[k]} "
            f"a mode-{mode.id} encoder writes at step index {g} (|value| ≤ {VALUE_LIMITS[mode.representation]:g})")
    off = np.flatnonzero((pitch < 0) | (pitch >= N_LEVELS))
    if len(off):
        raise MalformedError(f"pitch index {int(pitch[off[0]])} of group {int(off[0])} is off the grid "
                             f"0..{N_LEVELS - 1}")


def encode_groups(mode: Mode, values: np.ndarray, pitch: np.ndarray, voiced: np.ndarray, g: int,
                  trim: bool = False) -> list[bytes]:
    """Values (n, K), pitch indices and voicing (n,) → the payloads of their packets
    (``mode.groups_per_packet`` groups each), quantised at step index ``g``. The same bytes as
    :func:`encode_packet` per packet (after clipping the values to ``VALUE_LIMITS``), with the residuals and
    table choices of all packets computed at once (the rate control calls this for several ``g``)."""
    per, n, k = mode.groups_per_packet, len(values), mode.n_coefs
    count = -(-n // per)
    q = np.zeros((count * per, k), np.int64)  # the last packet is padded; its padding is never coded
    q[:n] = quantize(values, mode_weights(mode), g, VALUE_LIMITS[mode.representation])
    res = _residuals(q.reshape(count, per, k), mode.predictive)[0]
    prior = mode_prior(mode)
    rows = table_rows(res, prior(g) if prior else None)
    out = []
    for i in range(count):
        m = min(per, n - i * per)
        sl = slice(i * per, i * per + m)
        out.append(_payload(g, res[i, :m], rows[i, :m * k], pitch[sl], voiced[sl], trim))
    return out


def decode_groups(mode: Mode, payload: bytes, n: int) -> tuple[np.ndarray, int, np.ndarray, np.ndarray]:
    """One payload of ``mode`` holding ``n`` groups → (q (n, K) int64, g, pitch (n,), voiced (n,)), checked
    (:func:`decode_packet`, :func:`check_values`): :class:`MalformedError` for what no encoder writes."""
    q, g, pitch, voiced = decode_packet(payload, n, mode.n_coefs, mode_prior(mode), mode.predictive)
    check_values(mode, q, g, pitch)
    return q, g, pitch, voiced
