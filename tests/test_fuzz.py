"""Seeded fuzzing of the container readers: only BitstreamError ever escapes, and no damaged
bytes are ever returned as a good packet (every packet returned is one the writer wrote)."""
import os
import random
import struct
import zlib
from collections import Counter

import numpy as np

from bitstream import BitstreamError, Header, RangeEncoder, info, read_file, read_header, write_file
from bitstream.container import _record

SEED = int(os.environ.get("LDC_FUZZ_SEED", 20240611))
PER_KIND = int(os.environ.get("LDC_FUZZ_PER_KIND", 2000))
TABLE = np.array([1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 2048, 1024, 512, 256, 128, 64, 32,
                  16, 8, 4, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1])  # 33 symbols, peaked


def build(rng: np.random.Generator, n: int, mode: int, bundle: bytes) -> tuple[bytes, dict]:
    """A valid file of ``n`` range-coded packets → (bytes, {(index, payload)})."""
    payloads = []
    for _ in range(n):
        enc = RangeEncoder()
        enc.encode(rng.choice(33, size=int(rng.integers(0, 120)), p=TABLE / TABLE.sum()) - 16, TABLE, offset=-16)
        payloads.append(enc.finish())
    header = Header(sample_rate=16000, mode_id=mode, representation="mel", bundle_id=bundle, frames_per_packet=2,
                    num_samples=320 * n, num_packets=n, seed=mode, decoder="fuzz", source_rate=16000)
    return write_file(header, payloads), {(i, p) for i, p in enumerate(payloads)}


def record_starts(data: bytes) -> list[int]:
    """Byte offsets of the packet records."""
    pos, starts = read_header(data)[1], []
    for p in read_file(data).packets:
        starts.append(pos)
        pos += len(p.payload) + 4 + (len(p.payload) >= 128) + (len(p.payload) >= 16384)
    assert pos == len(data)
    return starts


def reseal(data: bytes) -> bytes:
    """Recompute the header CRC (so mutated header fields reach the value checks)."""
    end = 7 + struct.unpack_from(">H", data, 5)[0] if len(data) >= 7 else 0
    if end < 11 or end > len(data):
        return data
    return data[: end - 4] + struct.pack(">I", zlib.crc32(data[: end - 4])) + data[end:]


def mutants(r: random.Random, files: list, per_kind: int):
    """Yield (kind, data, allowed packets)."""
    for data, allowed, _ in files:  # truncation at every length
        for cut in range(len(data)):
            yield "truncate", data[:cut], allowed
    hostile = [b"\xff\xff\xff\x7f", b"\xff\xff\x03", b"\x80\x00", b"\xff\x7f", b"\x00", b"\x7f", b"\xff\xff\xff\xff"]
    for _ in range(per_kind):
        data, allowed, starts = r.choice(files)
        n = len(data)
        m = bytearray(data)
        m[r.randrange(n)] ^= 1 << r.randrange(8)
        yield "bitflip", bytes(m), allowed
        m = bytearray(data)
        for _ in range(r.randint(2, 12)):
            m[r.randrange(n)] ^= 1 << r.randrange(8)
        yield "multiflip", bytes(m), allowed
        m = bytearray(data)
        k = r.randrange(n)
        m[k:k + r.randint(1, 6)] = bytes(r.randrange(256) for _ in range(r.randint(1, 6)))
        yield "overwrite", bytes(m), allowed
        other, allowed2, _ = r.choice(files)
        yield "splice", data[:r.randrange(n)] + other[r.randrange(len(other)):], allowed | allowed2
        i, j = sorted(r.randrange(n + 1) for _ in range(2))
        yield "remove", data[:i] + data[j:], allowed
        k = r.randrange(n + 1)
        yield "duplicate", data[:k] + data[i:j] + data[k:], allowed
        if starts:
            s = r.choice(starts)
            v = r.choice(hostile) if r.random() < 0.7 else bytes(r.randrange(256) for _ in range(3))
            yield "varint", data[:s] + v + data[s + r.randint(0, 3):], allowed
        hdr = bytearray(data[:60])
        hdr[r.randrange(7, 44)] = r.randrange(256)
        yield "header", reseal(bytes(hdr) + data[60:]), allowed
        yield "garbage", bytes(r.randrange(256) for _ in range(r.randint(0, 200))), set()
        junk = bytes(r.randrange(256) for _ in range(r.randint(0, 300)))
        yield "garbage-body", data[:r.randint(0, 70)] + junk, allowed


def test_fuzz_readers():
    rng, r = np.random.default_rng(SEED), random.Random(SEED)
    files = []
    for n, mode in ((0, 1), (1, 2), (5, 3), (12, 4), (40, 5)):
        data, allowed = build(rng, n, mode, bytes([mode]) * 8)
        files.append((data, allowed, record_starts(data)))
    cases, raised, wrong, recovered = Counter(), 0, [], 0
    for kind, data, allowed in mutants(r, files, per_kind=PER_KIND):
        cases[kind] += 1
        for call in (lambda d=data: read_file(d), lambda d=data: info(d)):
            try:
                call()
            except BitstreamError:
                raised += 1
        try:
            c = read_file(data, strict=False)
        except BitstreamError:
            continue
        assert len(c.packets) == c.header.num_packets
        if kind == "bitflip":  # one flipped bit costs at most the packet it hits
            assert len(c.damaged) <= 1, data.hex()
        for p in c.packets:
            if p is not None:
                recovered += 1
                if (p.index, p.payload) not in allowed or p.seq != p.index % 256:
                    wrong.append((kind, p.index, data.hex()))
    total = sum(cases.values())
    print(f"fuzz: {total} cases {dict(cases)}, {raised} strict/info errors, {recovered} packets recovered, "
          f"{len(wrong)} wrong")
    assert total >= 5000
    assert not wrong, wrong[:3]


def test_hostile_bodies_finish():
    """Bodies built to keep the resync scanner busy are parsed in linear time, without error escape."""
    rng = np.random.default_rng(SEED)
    bodies = [b"\xff\xfe\x03" * 30000, bytes(90000), bytes(range(256)) * 350, rng.bytes(90000),
              b"".join(_record((i + 1) % 256, bytes(60000)) for i in range(2)),
              b"".join(_record(i % 256, rng.bytes(i % 300)) + b"\x01" for i in range(500))]
    for body in bodies:
        data = Header(16000, 1, "latent", b"\x00" * 8, 1, 16000, len(body) // 4).to_bytes() + body
        c = read_file(data, strict=False)
        assert c.errors and len(c.packets) == len(body) // 4
