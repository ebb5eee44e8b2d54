"""The .ldc container, raw packets and range coder: round trips, properties, every error path."""
import struct
import subprocess
import sys
import zlib

import numpy as np
from binascii import crc_hqx

import pytest
from hypothesis import given, settings, strategies as st

from bitstream import (
    FORMAT_VERSION, MAGIC, MAX_PAYLOAD, REPRESENTATIONS, BadMagicError, BitstreamError, BundleMismatchError,
    ChecksumError, Container, Header, MalformedError, Packet, RangeDecoder, RangeEncoder, RawPacket,
    TruncatedError, UnsupportedVersionError, check_bundle, info, pack_packet, read_file, read_header,
    unpack_packet, write_file,
)

BUNDLE = bytes.fromhex("0123456789abcdef")


def make_header(**kw) -> Header:
    base = dict(sample_rate=16000, mode_id=2, representation="mel", bundle_id=BUNDLE, frames_per_packet=4,
                num_samples=16000, num_packets=3, seed=42, decoder="vocos-small_2", source_rate=48000,
                source_channels=2)
    return Header(**{**base, **kw})


PAYLOADS = [b"\x00\x01\x02\x03", b"", bytes(range(200))]


@pytest.fixture
def good() -> bytes:
    return write_file(make_header(), PAYLOADS)


def header_len(h: Header) -> int:
    return len(h.to_bytes())


def reseal(data: bytes, hlen: int) -> bytes:
    """Recompute the header CRC after editing header bytes (to reach the field checks)."""
    body = data[: hlen - 4]
    return body + struct.pack(">I", zlib.crc32(body)) + data[hlen:]


# ------------------------------------------------------------------ round trips

def test_round_trip(good):
    c = read_file(good)
    assert isinstance(c, Container) and c.errors == [] and c.damaged == []
    assert c.header == make_header()
    assert [p.payload for p in c.packets] == PAYLOADS
    assert c.packets[2] == Packet(2, 2, PAYLOADS[2])
    h, off = read_header(good)
    assert h == make_header() and off == header_len(h) and good[:4] == MAGIC and good[4] == FORMAT_VERSION


def test_layout_offsets(good):
    h = make_header()
    assert good[5:7] == struct.pack(">H", 42 + len(h.decoder))
    assert struct.unpack_from(">I", good, 7)[0] == 16000
    assert good[13:21] == BUNDLE
    assert good[44] == len(h.decoder) and good[45:45 + len(h.decoder)] == h.decoder.encode()
    off = header_len(h)
    assert good[off:off + 2] == b"\x04\x00"  # varint length 4, seq 0


def test_seq_wraps_and_varint_sizes():
    payloads = [bytes([i % 7]) * (i % 3) for i in range(600)] + [b"z" * 127, b"y" * 128, b"w" * MAX_PAYLOAD]
    data = write_file(make_header(num_packets=len(payloads)), payloads)
    c = read_file(data)
    assert [p.payload for p in c.packets] == payloads
    assert [p.seq for p in c.packets[:600]] == [i % 256 for i in range(600)]


def test_write_rejects_bad_payloads():
    with pytest.raises(MalformedError, match="announces 3"):
        write_file(make_header(), PAYLOADS[:2])
    with pytest.raises(MalformedError, match="exceeds"):
        write_file(make_header(num_packets=1), [b"x" * (MAX_PAYLOAD + 1)])


@pytest.mark.parametrize("field, value", [
    ("sample_rate", 0), ("sample_rate", 2**32), ("mode_id", 256), ("mode_id", -1), ("representation", "wav"),
    ("bundle_id", b"short"), ("frames_per_packet", 0), ("frames_per_packet", 65536), ("num_samples", 2**64),
    ("num_packets", 2**32), ("seed", -1), ("decoder", ""), ("decoder", "a" * 33), ("decoder", "Vocos"),
    ("decoder", "vé"), ("source_rate", 2**32), ("source_channels", 256), ("mode_id", True),
])
def test_header_validation_names_field(field, value):
    with pytest.raises(MalformedError, match=field):
        make_header(**{field: value})


headers = st.builds(
    Header,
    sample_rate=st.integers(1, 2**32 - 1), mode_id=st.integers(0, 255), representation=st.sampled_from(REPRESENTATIONS),
    bundle_id=st.binary(min_size=8, max_size=8), frames_per_packet=st.integers(1, 2**16 - 1),
    num_samples=st.integers(0, 2**64 - 1), num_packets=st.just(0), seed=st.integers(0, 2**32 - 1),
    decoder=st.from_regex(r"[a-z0-9_-]{1,32}", fullmatch=True), source_rate=st.integers(0, 2**32 - 1),
    source_channels=st.integers(0, 255),
)


@settings(max_examples=150, deadline=None)
@given(headers, st.lists(st.binary(max_size=300), max_size=20))
def test_property_file_round_trip(header, payloads):
    header = Header(**{**header.__dict__, "num_packets": len(payloads)})
    data = write_file(header, payloads)
    c = read_file(data)
    assert c.header == header and c.errors == []
    assert [(p.index, p.seq, p.payload) for p in c.packets] == [(i, i % 256, p) for i, p in enumerate(payloads)]
    assert info(data)["packets_ok"] == len(payloads)


@st.composite
def coded_segments(draw):
    """A list of (symbols, int freqs (shared or per-symbol), offset) segments."""
    segs = []
    for _ in range(draw(st.integers(1, 4))):
        alphabet = draw(st.integers(2, 40))
        n = draw(st.integers(0, 60))
        offset = draw(st.integers(-50, 50))
        shared = draw(st.booleans())
        seed = draw(st.integers(0, 2**32 - 1))
        rng = np.random.default_rng(seed)
        big = draw(st.sampled_from([3, 100, 2**16, 2**24]))
        freqs = rng.integers(1, big, size=(alphabet,) if shared else (n, alphabet), endpoint=True)
        symbols = rng.integers(0, alphabet, size=n) + offset
        segs.append((symbols, freqs, offset))
    return segs


@settings(max_examples=150, deadline=None)
@given(coded_segments(), st.booleans())
def test_property_range_coder_round_trip(segs, trim):
    enc = RangeEncoder()
    for symbols, freqs, offset in segs:
        enc.encode(symbols, freqs, offset)
    data = enc.finish(trim)
    assert trim or len(data) % 4 == 0
    dec = RangeDecoder(data)
    for symbols, freqs, offset in segs:
        out = dec.decode(freqs, n=len(symbols), offset=offset)
        assert out.dtype == np.int64 and np.array_equal(out, symbols)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 8), st.integers(0, 80), st.integers(0, 2**32 - 1))
def test_table_bank_with_rows_codes_like_gathered_tables(tables, n, seed):
    """``rows`` picks each symbol's table from a bank: the same bytes as passing ``bank[rows]``."""
    rng = np.random.default_rng(seed)
    bank = rng.integers(1, 2**16, size=(tables, 20), endpoint=True)
    rows, symbols = rng.integers(0, tables, size=n), rng.integers(-3, 17, size=n)
    a, b = RangeEncoder(), RangeEncoder()
    a.encode(symbols, bank, -3, rows)
    if n:
        b.encode(symbols, bank[rows], -3)
    data = a.finish()
    assert data == b.finish()
    assert np.array_equal(RangeDecoder(data).decode(bank, offset=-3, rows=rows), symbols)
    with pytest.raises(ValueError, match="rows"):
        RangeEncoder().encode([0], bank, rows=[tables])


def test_range_coder_compresses_skewed_symbols():
    freqs = np.array([1000] + [1] * 32)
    enc = RangeEncoder()
    enc.encode(np.zeros(4000, dtype=int), freqs)
    assert len(enc.finish()) <= 4000 * 0.0454 / 8 + 8  # entropy 0.0454 bit/symbol + coder overhead


def test_trimmed_tail_saves_bytes():
    """finish(trim=True) drops the coder's spare tail bytes (the decoder pads them back)."""
    rng = np.random.default_rng(0)
    full = trimmed = 0
    for _ in range(50):
        freqs = rng.integers(1, 50, size=(12, 8))
        symbols = rng.integers(0, 8, size=12)
        enc = RangeEncoder()
        enc.encode(symbols, freqs)
        data = enc.finish(trim=True)
        full, trimmed = full + len(enc.finish()), trimmed + len(data)
        assert np.array_equal(RangeDecoder(data).decode(freqs), symbols)
    assert trimmed <= full - 50  # ~1.7 bytes per packet measured


# ------------------------------------------------------------------ error paths

def test_bad_magic(good):
    with pytest.raises(BadMagicError):
        read_file(b"RIFF" + good[4:])
    with pytest.raises(BadMagicError):
        read_header(b"xx")
    with pytest.raises(TruncatedError):
        read_header(b"")
    with pytest.raises(TruncatedError):
        read_header(MAGIC[:3])


def test_version_2_file_names_version(good):
    v2 = good[:4] + bytes([2]) + b"\xff" * 3  # a future file: nothing else is readable
    for data in (v2, good[:4] + b"\x02" + good[5:]):
        with pytest.raises(UnsupportedVersionError) as e:
            read_file(data, strict=False)
        assert e.value.version == 2 and e.value.supported == (1,) and "2" in str(e.value)
    with pytest.raises(UnsupportedVersionError):
        info(v2)


def test_truncated_header(good):
    hlen = header_len(make_header())
    for cut in (4, 5, 6, 7, 20, hlen - 1):
        with pytest.raises(TruncatedError):
            read_file(good[:cut], strict=False)


def test_header_crc(good):
    bad = bytearray(good)
    bad[12] ^= 0x01
    for strict in (True, False):
        with pytest.raises(ChecksumError):
            read_file(bytes(bad), strict=strict)
    with pytest.raises(ChecksumError):
        info(bytes(bad))


@pytest.mark.parametrize("offset, value, match", [
    (12, 7, "representation"), (21, 0, "frames_per_packet"), (7, 0, "sample_rate"), (45, ord("A"), "decoder"),
    (45, 0xE9, "ASCII"), (44, 3, "header_len"),
])
def test_header_field_values(good, offset, value, match):
    hlen = header_len(make_header())
    bad = bytearray(good)
    if offset == 21:
        bad[21:23] = b"\x00\x00"
    elif offset == 7:
        bad[7:11] = b"\x00\x00\x00\x00"
    else:
        bad[offset] = value
    with pytest.raises(MalformedError, match=match):
        read_file(reseal(bytes(bad), hlen), strict=False)


def test_header_len_too_small(good):
    bad = bytearray(good[:45])
    bad[5:7] = b"\x00\x06"
    with pytest.raises(MalformedError, match="header_len"):
        read_header(reseal(bytes(bad[:13]), 13))


def test_packet_crc(good):
    hlen = header_len(make_header())
    bad = bytearray(good)
    bad[hlen + 3] ^= 0x80  # payload byte of packet 0
    with pytest.raises(ChecksumError, match="packet 0"):
        read_file(bytes(bad))
    c = read_file(bytes(bad), strict=False)
    assert c.damaged == [0] and isinstance(c.errors[0], ChecksumError)
    assert [p.payload for p in c.packets[1:]] == PAYLOADS[1:]


def test_damaged_middle_packet_non_strict():
    payloads = [bytes([i]) * (10 + i) for i in range(12)]
    data = write_file(make_header(num_packets=12), payloads)
    rec5 = data.index(bytes([15, 5]) + bytes([5]) * 15)
    for mutate in (lambda b: b.__setitem__(rec5 + 4, 0xAA),            # payload byte
                   lambda b: b.__setitem__(rec5, 0x7F),                # length varint
                   lambda b: b.__setitem__(rec5 + 1, 9)):              # seq byte
        bad = bytearray(data)
        mutate(bad)
        with pytest.raises(BitstreamError):
            read_file(bytes(bad))
        c = read_file(bytes(bad), strict=False)
        assert c.damaged == [5] and len(c.errors) == 1
        assert all(c.packets[i] == Packet(i, i, payloads[i]) for i in range(12) if i != 5)


def test_removed_region_resyncs():
    payloads = [bytes([i]) * 9 for i in range(10)]
    data = write_file(make_header(num_packets=10), payloads)
    r3 = data.index(bytes([9, 3]))
    r6 = data.index(bytes([9, 6]))
    c = read_file(data[:r3 + 5] + data[r6:], strict=False)
    assert c.damaged == [3, 4, 5]
    assert [p.payload for p in c.packets if p] == [payloads[i] for i in (0, 1, 2, 6, 7, 8, 9)]
    c = read_file(data[:r3] + data[r6:], strict=False)  # whole records gone: packet 6 is next and kept
    assert c.damaged == [3, 4, 5] and c.packets[6] == Packet(6, 6, payloads[6])
    assert isinstance(c.errors[0], MalformedError) and "sequence" in str(c.errors[0])


def test_every_damaged_packet_is_named():
    """info's errors name each damaged packet, not only the first of a damaged span."""
    payloads = [bytes([i]) * 9 for i in range(10)]
    data = write_file(make_header(num_packets=10), payloads)
    r3, r6 = data.index(bytes([9, 3])), data.index(bytes([9, 6]))
    d = info(data[:r3 + 5] + data[r6:])
    assert d["damaged_packets"] == [3, 4, 5] and d["packets_damaged"] == 3
    assert "packet 3 at byte" in d["errors"][0] and "packets 4..5: lost in the damaged bytes" in d["errors"][1]
    r8 = data.index(bytes([9, 8]))
    d = info(data[:r8 + 5] + b"\xff" * 6)  # no intact record after the damage: the rest is named too
    assert d["damaged_packets"] == [8, 9] and "packet 9: no intact record" in d["errors"][-1]


def test_empty_data_is_named_empty():
    with pytest.raises(TruncatedError, match=r"empty file \(0 bytes\)"):
        read_file(b"")


def test_truncated_tail(good):
    c = read_file(good[:-5], strict=False)
    assert c.damaged == [2] and isinstance(c.errors[-1], TruncatedError)
    with pytest.raises(TruncatedError):
        read_file(good[:-5])
    cut = good[: good.index(bytes([0xC8, 0x01, 0x02]))]  # ends cleanly after packet 1
    c = read_file(cut, strict=False)
    assert c.damaged == [2] and isinstance(c.errors[0], TruncatedError)


def test_extra_bytes(good):
    with pytest.raises(MalformedError, match="extra bytes"):
        read_file(good + b"\x00\x00")
    c = read_file(good + b"\x00\x00", strict=False)
    assert c.damaged == [] and isinstance(c.errors[0], MalformedError)


def test_hostile_num_packets():
    h = make_header(num_packets=2**32 - 1)
    data = h.to_bytes() + b"\x00\x00" * 10
    for strict in (True, False):
        with pytest.raises(MalformedError, match="announces"):
            read_file(data, strict=strict)


@pytest.mark.parametrize("varint", [b"\xff\xff\xff\x7f", b"\xff\xff\x7f", b"\x80\x00", b"\x84\x80\x04"])
def test_hostile_varint(varint):
    data = make_header(num_packets=1).to_bytes() + varint + b"\x00" * 8
    with pytest.raises(MalformedError, match="varint"):
        read_file(data)
    c = read_file(data, strict=False)
    assert c.damaged == [0] and isinstance(c.errors[0], MalformedError)


def test_huge_varint_past_end():
    data = make_header(num_packets=1).to_bytes() + b"\xff\xff\x03" + b"\x00" * 8
    with pytest.raises(TruncatedError):
        read_file(data)


def test_bundle_check(good):
    h = read_file(good).header
    check_bundle(h, BUNDLE)
    with pytest.raises(BundleMismatchError) as e:
        check_bundle(h, b"\xff" * 8)
    assert BUNDLE.hex() in str(e.value) and "ff" * 8 in str(e.value)


# ------------------------------------------------------------------ raw packets

def test_raw_packet_round_trip():
    for mode, payload in ((0, b""), (63, b"\x01" * 40), (17, bytes(range(256)))):
        p = pack_packet(mode, payload)
        assert p[0] >> 6 == 2 and p[0] & 63 == mode and len(p) == len(payload) + 2
        assert unpack_packet(p) == RawPacket(2, mode, None, payload)


def test_crc8_check_value():
    from bitstream.container import _crc8
    assert _crc8(b"123456789") == 0xDF  # CRC-8/AUTOSAR (SPEC §3)


def test_version_1_raw_packets_still_parse():
    """The first streaming release's layout: TOC (version 1), sequence byte, payload, CRC-16."""
    body = bytes((1 << 6 | 18, 200)) + b"hello"
    p = body + crc_hqx(body, 0xFFFF).to_bytes(2, "big")
    assert unpack_packet(p) == RawPacket(1, 18, 200, b"hello")
    with pytest.raises(ChecksumError, match="CRC-16"):
        unpack_packet(p[:-1] + bytes((p[-1] ^ 1,)))
    with pytest.raises(TruncatedError):
        unpack_packet(p[:3])


def test_raw_packet_errors():
    p = pack_packet(5, b"hello")
    with pytest.raises(TruncatedError):
        unpack_packet(b"")
    with pytest.raises(TruncatedError):
        unpack_packet(p[:1])
    with pytest.raises(UnsupportedVersionError) as e:
        unpack_packet(bytes([3 << 6 | 5]) + p[1:])
    assert e.value.version == 3
    with pytest.raises(UnsupportedVersionError):
        unpack_packet(b"\x05\x09")  # version 0
    for i in range(len(p)):  # every single-bit error is caught
        for bit in range(8):
            bad = bytearray(p)
            bad[i] ^= 1 << bit
            with pytest.raises((ChecksumError, UnsupportedVersionError)):
                unpack_packet(bytes(bad))
    with pytest.raises(MalformedError):
        pack_packet(64, b"")
    with pytest.raises(MalformedError, match="raw packet: payload must be bytes"):
        pack_packet(1, "text")


# ------------------------------------------------------------------ info and hygiene

def test_info_good_and_damaged(good):
    d = info(good)
    assert d["bundle_id"] == BUNDLE.hex() and d["decoder"] == "vocos-small_2" and d["representation"] == "mel"
    assert d["file_bytes"] == len(good) and d["duration_s"] == 1.0
    assert d["kbps"] == pytest.approx(len(good) * 8 / 1000)
    assert (d["packets_ok"], d["packets_damaged"], d["errors"]) == (3, 0, [])
    hlen = header_len(make_header())
    bad = bytearray(good)
    bad[hlen + 3] ^= 1
    d = info(bytes(bad))
    assert (d["packets_ok"], d["packets_damaged"]) == (2, 1)
    assert len(d["errors"]) == 1 and d["errors"][0].startswith("ChecksumError")
    assert info(write_file(make_header(num_samples=0, num_packets=0), []))["kbps"] == 0.0


def test_no_torch_import():
    code = "import sys, bitstream, bitstream.container, bitstream.rangecoder; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_resync_work_is_budgeted():
    from bitstream.container import _resync
    payloads = [bytes([i]) * 50 for i in range(6)]
    data = write_file(make_header(num_packets=6), payloads)
    start = data.index(bytes([50, 2]))
    assert _resync(data, memoryview(data), start + 1, 2, 6, [10**6]) == (data.index(bytes([50, 3])), 3)
    assert _resync(data, memoryview(data), start + 1, 2, 6, [60]) is None  # cannot afford two CRCs
