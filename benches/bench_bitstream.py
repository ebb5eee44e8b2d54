"""Benchmarks of the torch-free bitstream layer (pytest-benchmark).

    python -m pytest benches/bench_bitstream.py --benchmark-enable -q

Also passes with ``--benchmark-disable`` (each function then runs once).
"""
import time

import numpy as np
import pytest

from bitstream import Header, RangeDecoder, RangeEncoder, read_file, write_file

N_SYMBOLS = 100_000
ALPHABET = 33


def _seconds(benchmark, fn, *args) -> float:
    """Median seconds per call from the benchmark, or one timed call when benchmarks are disabled."""
    stats = getattr(benchmark, "stats", None)
    if stats is not None:
        return stats.stats.median
    t = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t


def _symbols(per_symbol: bool) -> tuple[np.ndarray, np.ndarray]:
    """(symbols (N,), int freqs (33,) or (N, 33)) drawn from a peaked, Laplacian-like table."""
    rng = np.random.default_rng(0)
    base = np.round(4096 * np.exp(-np.abs(np.arange(ALPHABET) - 16) / 2.5)).astype(np.int64) + 1
    if not per_symbol:
        return rng.choice(ALPHABET, size=N_SYMBOLS, p=base / base.sum()), base
    freqs = base[None, :] + rng.integers(0, 512, size=(N_SYMBOLS, ALPHABET))
    cum = (freqs / freqs.sum(1, keepdims=True)).cumsum(1)
    return (cum < rng.random((N_SYMBOLS, 1))).sum(1).clip(0, ALPHABET - 1), freqs


def _encode(symbols, freqs) -> bytes:
    enc = RangeEncoder()
    enc.encode(symbols, freqs)
    return enc.finish()


def _report(benchmark, seconds: float, nbytes: int) -> None:
    benchmark.extra_info.update(symbols_per_s=round(N_SYMBOLS / seconds), compressed_MB_per_s=nbytes / seconds / 1e6,
                                bits_per_symbol=nbytes * 8 / N_SYMBOLS, seconds=seconds)
    print(f"\n{benchmark.name}: {N_SYMBOLS / seconds / 1e6:.2f} Msymbols/s, {nbytes / seconds / 1e6:.2f} MB/s "
          f"compressed, {nbytes * 8 / N_SYMBOLS:.3f} bit/symbol")


@pytest.mark.parametrize("per_symbol", [False, True], ids=["shared_table", "per_symbol_tables"])
def test_range_encode(benchmark, per_symbol):
    symbols, freqs = _symbols(per_symbol)
    data = benchmark(_encode, symbols, freqs)
    _report(benchmark, _seconds(benchmark, _encode, symbols, freqs), len(data))


@pytest.mark.parametrize("per_symbol", [False, True], ids=["shared_table", "per_symbol_tables"])
def test_range_decode(benchmark, per_symbol):
    symbols, freqs = _symbols(per_symbol)
    data = _encode(symbols, freqs)
    decode = lambda: RangeDecoder(data).decode(freqs, n=N_SYMBOLS)  # noqa: E731
    assert np.array_equal(benchmark(decode), symbols)
    _report(benchmark, _seconds(benchmark, decode), len(data))


HOUR = [(3600, 40), (180_000, 8)]  # 1 packet/s of 40 B; 50 packets/s of 8 B (≈ 3.5 kbit/s on disk)


def _hour(packets: int, size: int) -> tuple[Header, list[bytes]]:
    rng = np.random.default_rng(1)
    payloads = [bytes(p) for p in rng.integers(0, 256, size=(packets, size), dtype=np.uint8)]
    header = Header(sample_rate=16000, mode_id=1, representation="mel", bundle_id=b"\x00" * 8,
                    frames_per_packet=4, num_samples=16000 * 3600, num_packets=packets)
    return header, payloads


@pytest.mark.parametrize("packets, size", HOUR, ids=["3600x40B", "180000x8B"])
def test_write_file_hour(benchmark, packets, size):
    header, payloads = _hour(packets, size)
    data = benchmark(write_file, header, payloads)
    s = _seconds(benchmark, write_file, header, payloads)
    benchmark.extra_info.update(file_bytes=len(data), seconds=s, MB_per_s=len(data) / s / 1e6)
    print(f"\n{benchmark.name}: {len(data)} bytes in {s * 1e3:.1f} ms ({len(data) / s / 1e6:.1f} MB/s)")


@pytest.mark.parametrize("damage", [0.0, 0.01], ids=["clean", "1pct_damaged"])
@pytest.mark.parametrize("packets, size", HOUR, ids=["3600x40B", "180000x8B"])
def test_read_file_hour(benchmark, packets, size, damage):
    header, payloads = _hour(packets, size)
    data = bytearray(write_file(header, payloads))
    rng = np.random.default_rng(2)
    hits = rng.integers(100, len(data), size=int(damage * packets))
    for h in hits:
        data[h] ^= 0x5A
    data = bytes(data)
    read = lambda: read_file(data, strict=False)  # noqa: E731
    c = benchmark(read)
    assert len(c.damaged) <= 2 * len(hits) + 1 and (damage or not c.errors)
    s = _seconds(benchmark, read)
    benchmark.extra_info.update(file_bytes=len(data), seconds=s, packets_per_s=packets / s,
                                damaged=len(c.damaged))
    print(f"\n{benchmark.name}: parsed {packets} packets ({len(data)} bytes) in {s * 1e3:.1f} ms, "
          f"{len(c.damaged)} damaged")
