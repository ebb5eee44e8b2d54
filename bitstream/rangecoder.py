"""Range coding of integer symbols under integer frequency tables (constriction glue).

Encoder and decoder must see bit-identical tables, so tables are *integer* arrays of
positive frequencies; the float64 probabilities handed to constriction are
``freqs / freqs.sum()``, an IEEE-exact division that every platform rounds the same
way, and constriction's (deterministic, ``perfect=False``) quantizer does the rest.

A symbol is an integer ``v`` in ``[offset, offset + alphabet)``; it is coded as index
``v - offset`` of its table row. Each :class:`RangeEncoder` produces one self-contained
byte string (coder state resets per packet). Tables are given as one table shared by all
symbols, one row per symbol, or a bank of tables with a row index per symbol (``rows``).
"""
from __future__ import annotations

import numpy as np
import constriction

from .errors import MalformedError

_FAMILY = constriction.stream.model.Categorical(perfect=False)


def _probabilities(freqs: np.ndarray) -> np.ndarray:
    """Integer table(s) ``(alphabet,)`` or ``(n, alphabet)`` → float64 rows summing to 1."""
    f = np.asarray(freqs)
    if f.dtype.kind not in "iu" or f.ndim not in (1, 2) or f.shape[-1] < 2 or (f <= 0).any():
        raise ValueError("frequency tables must be positive integers, shape (alphabet,) or (n, alphabet)")
    f = f.astype(np.float64)
    return f / f.sum(axis=-1, keepdims=True)


def _rows(p: np.ndarray, n: int, rows=None) -> np.ndarray:
    """Probabilities (n, alphabet) of ``n`` symbols from :func:`_probabilities` ``p``: shared, one row each, or
    ``p[rows]``."""
    if rows is not None:
        rows = np.asarray(rows).reshape(-1)
        if p.ndim != 2 or len(rows) != n or (n and (rows.min() < 0 or rows.max() >= p.shape[0])):
            raise ValueError(f"rows must index the {len(p)} tables of the bank, one per symbol ({n})")
        return p[rows]  # a gather: rows of a bank are divided once, not once per symbol
    if p.ndim == 1:
        p = np.broadcast_to(p, (n, p.shape[0]))
    elif p.shape[0] != n:
        raise ValueError(f"got {p.shape[0]} table rows for {n} symbols")
    return np.ascontiguousarray(p)


class RangeEncoder:
    """Collects symbols for one packet; :meth:`finish` returns its bytes."""

    def __init__(self) -> None:
        self._coder = constriction.stream.queue.RangeEncoder()
        self._coded: list[tuple[np.ndarray, np.ndarray]] = []  # (indices, probabilities), for finish(trim=True)

    def encode(self, symbols, freqs, offset: int = 0, rows=None) -> None:
        """Encode ``symbols`` (ints in ``[offset, offset+alphabet)``) under ``freqs``.

        ``freqs`` is one table ``(alphabet,)`` shared by all symbols, one row per symbol
        ``(n, alphabet)``, or with ``rows`` (n,) a bank ``(tables, alphabet)`` and each symbol's row
        in it (the same code as passing ``freqs[rows]``, without building it).
        """
        idx = np.asarray(symbols, dtype=np.int64).reshape(-1) - offset
        if idx.size == 0:
            return
        p = _rows(_probabilities(freqs), idx.size, rows)
        if idx.min() < 0 or idx.max() >= p.shape[1]:
            raise ValueError(f"symbol outside its alphabet [{offset}, {offset + p.shape[1]})")
        idx = idx.astype(np.int32)
        self._coder.encode(idx, _FAMILY, p)
        self._coded.append((idx, p))

    def finish(self, trim: bool = False) -> bytes:
        """The packet's bytes (big-endian 32-bit words of the range coder).

        ``trim``: end with fewer bytes where possible: the last word is replaced by the one with the
        most trailing zero bytes (rounded down or up) that still decodes every symbol, and those
        zero bytes are dropped (the decoder pads them back). Saves ~1.7 bytes per packet."""
        words = self._coder.get_compressed()
        if trim and len(words):
            words = words.copy()
            last = int(words[-1])
            for k in (3, 2, 1):
                unit = 256 ** k
                for word in (last // unit * unit, (last // unit + 1) * unit):
                    words[-1] = word % 2**32
                    if word < 2**32 and self._decodes(words):
                        return words.astype(">u4").tobytes()[:-k]
            words[-1] = last
        return words.astype(">u4").tobytes()

    def _decodes(self, words: np.ndarray) -> bool:
        dec = constriction.stream.queue.RangeDecoder(words)
        try:
            return all(np.array_equal(dec.decode(_FAMILY, p), idx) for idx, p in self._coded)
        except Exception:  # constriction rejects words it cannot decode
            return False


def _words(data: bytes) -> np.ndarray:
    """Payload bytes → u32 words; a short last word (``finish(trim=True)``) is padded with zero bytes."""
    data = bytes(data) + bytes(-len(data) % 4)
    return np.frombuffer(data, dtype=">u4").astype(np.uint32)


class RangeDecoder:
    """Decodes symbols from one packet's bytes, in the order they were encoded."""

    def __init__(self, data: bytes) -> None:
        self._coder = constriction.stream.queue.RangeDecoder(_words(data))
        self._last: tuple[np.ndarray, np.ndarray] | None = None  # (table or bank, its probabilities)

    def decode(self, freqs, n: int | None = None, offset: int = 0, rows=None) -> np.ndarray:
        """Decode ``n`` symbols (``n`` defaults to the number of table rows, or of ``rows``) → int64
        array. ``freqs`` and ``rows`` as in :meth:`RangeEncoder.encode`."""
        f = np.asarray(freqs)
        if n is None:
            if rows is not None:
                n = np.size(rows)
            elif f.ndim != 2:
                raise ValueError("n is required with a single shared table")
            else:
                n = f.shape[0]
        if n == 0:
            return np.zeros(0, dtype=np.int64)
        if self._last is None or self._last[0] is not f:  # a bank used group after group is divided once
            self._last = (f, _probabilities(f))
        p = _rows(self._last[1], n, rows)
        try:
            idx = self._coder.decode(_FAMILY, p)
        except Exception as exc:  # constriction raises on exhausted/invalid data
            raise MalformedError(f"range decoder failed: {exc}") from None
        return idx.astype(np.int64) + offset
