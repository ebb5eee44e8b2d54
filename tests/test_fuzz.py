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


# ---------------------------------------------------------------- CRC-valid mutants (the payload syntax)
#
# Packets whose CRCs pass but whose payload no encoder writes (SPEC §7, "Valid payloads"): the readers must
# refuse them (strict: MalformedError naming the packet; lenient: lost groups, errors naming them) or return
# only values an encoder could have coded, and the decoder must render anything that passes as finite samples
# within [-1, 1].

from bitstream import BadMagicError, MalformedError, read_groups  # noqa: E402
from bitstream.modes import STORAGE_MODES, frames_for, groups_for  # noqa: E402
from bitstream.payload import STEP_SIZES, VALUE_LIMITS, encode_groups, mode_weights  # noqa: E402


def coded(rng: np.random.Generator, mode, seconds: float, g: int | None = None, extreme: bool = False):
    """A valid file of ``mode``: random (or, with ``extreme``, ±limit) values → (bytes, header, payloads)."""
    n = int(seconds * 16000)
    groups = groups_for(frames_for(n), mode.decimation)
    limit = VALUE_LIMITS[mode.representation]
    if extreme:
        values = limit * rng.choice([-1.0, 1.0], size=(groups, mode.n_coefs))
    else:
        values = np.cumsum(rng.laplace(0, 0.3, (groups, mode.n_coefs)), axis=0) * rng.uniform(0.1, 40)
    pitch, voiced = rng.integers(0, 69, groups), rng.random(groups) < 0.6
    g = int(rng.integers(40, 256)) if g is None else g
    payloads = encode_groups(mode, values.astype(np.float32), pitch, voiced, g)
    header = Header(sample_rate=16000, mode_id=mode.id, representation=mode.representation, bundle_id=bytes(8),
                    frames_per_packet=mode.groups_per_packet, num_samples=n, num_packets=len(payloads))
    return write_file(header, payloads), header, payloads


def _reseal_field(data: bytes, offset: int, value: bytes) -> bytes:
    return reseal(data[:offset] + value + data[offset + len(value):])


def payload_mutants(r: random.Random, rng: np.random.Generator, files: list, per_kind: int):
    """Yield (kind, data, must_fail): CRC-valid files whose packets (or header fields) were changed."""
    for _ in range(per_kind):
        data, header, payloads = r.choice(files)
        n, i = len(payloads), r.randrange(len(payloads))
        rebuilt = lambda ps, h=header: write_file(h, ps)  # noqa: E731
        if n >= 3:  # the short last packet spliced into the middle, a full one moved to the end
            yield "last-to-middle", rebuilt(payloads[:1] + [payloads[-1]] + payloads[2:]), True
            yield "middle-to-end", rebuilt(payloads[:-1] + [payloads[1]]), True
        other = r.choice([f for f in files if f[1].mode_id == header.mode_id])[2]
        yield "swap", rebuilt(payloads[:i] + [r.choice(other)] + payloads[i + 1:]), False
        size = max(0, len(payloads[i]) + r.randint(-8, 8))
        yield "random", rebuilt(payloads[:i] + [rng.bytes(size)] + payloads[i + 1:]), False
        m = bytearray(payloads[i])
        for _ in range(r.randint(1, 4)):
            m[r.randrange(len(m))] ^= 1 << r.randrange(8)
        yield "flip", rebuilt(payloads[:i] + [bytes(m)] + payloads[i + 1:]), False
        cut = payloads[i][:r.randrange(len(payloads[i]))] if r.random() < 0.5 else payloads[i] + rng.bytes(4)
        yield "resize", rebuilt(payloads[:i] + [cut] + payloads[i + 1:]), (len(cut) - 1) % 4 != 0  # words whole
        yield "header", _reseal_field(data, r.choice([11, 12, 21, 23, 29]), bytes([r.randrange(256)])), False


def check_groups(groups) -> None:
    """Every group a reader returns as good holds values an encoder could code, and a pitch on the grid."""
    good = ~groups.lost
    weights = mode_weights(groups.mode).astype(np.float64)
    ceiling = VALUE_LIMITS[groups.mode.representation] + STEP_SIZES[groups.g][:, None] * weights
    assert (np.abs(groups.values.astype(np.float64)) <= ceiling * (1 + 1e-6))[good].all()
    assert ((groups.pitch >= 0) & (groups.pitch <= 68))[good].all()


def test_fuzz_payloads_with_valid_crcs():
    rng, r = np.random.default_rng(SEED), random.Random(SEED)
    files = [coded(rng, mode, seconds) for mode in STORAGE_MODES for seconds in (0.4, 2.2, 6.0)]
    files += [coded(rng, mode, 6.0, g=48, extreme=True) for mode in STORAGE_MODES]
    for data, _, _ in files:  # every encoder output is valid, the extreme ones included
        check_groups(read_groups(data)[1])
    cases, refused = Counter(), Counter()
    for kind, data, must_fail in payload_mutants(r, rng, files, per_kind=max(20, PER_KIND // 40)):
        cases[kind] += 1
        try:
            check_groups(read_groups(data)[1])
        except BitstreamError as exc:
            refused[kind] += 1
            assert kind == "header" or str(exc).startswith("packet "), exc  # payload errors name the packet
        else:
            assert not must_fail, kind
        errors: list = []
        try:
            _, groups = read_groups(data, strict=False, errors=errors)
        except (MalformedError, BadMagicError) as exc:  # only a header that contradicts itself is fatal
            assert kind == "header", exc
            continue
        check_groups(groups)
        for p in groups.lost_packets:  # every concealed packet is named by an error
            assert any(f"packet {p}" in str(e) or f"packets {p}" in str(e) or ".." in str(e) for e in errors), p
    print(f"payload fuzz: {dict(cases)}, refused {dict(refused)}")
    assert refused["random"] >= 0.9 * cases["random"]  # random bytes almost never make a valid payload


def test_decoded_crc_valid_mutants_are_finite_and_within_full_scale(clip):
    """Real streams with spliced, random and extreme (valid) payloads: strict decoding raises a
    BitstreamError naming the packet, or returns finite samples within [-1, 1]; lenient decoding always
    does, and a valid payload of extreme values (every coefficient at the limit) renders too."""
    import warnings

    import codec

    rng = np.random.default_rng(SEED)
    for kbps, rep, seconds in ((1.5, None, 1.1), (3.0, None, 0.9), (6.0, None, 0.9), (0.6, "latent", 2.7),
                               (1.2, None, 2.7)):
        data = codec.encode(clip[: int(seconds * 16000)], 16000, kbps=kbps, representation=rep)
        c = read_file(data)
        h, ps = c.header, [p.payload for p in c.packets]
        mode = next(m for m in STORAGE_MODES if m.id == h.mode_id)
        extreme = coded(rng, mode, seconds, g=int(rng.integers(48, 120)), extreme=True)[2]
        assert len(ps) == 2
        mutants = {"last-to-first": [ps[-1]] + ps[1:],
                   "random": [rng.bytes(len(ps[0]))] + ps[1:],
                   "extreme": extreme}
        for kind, payloads in mutants.items():
            bad = write_file(h, payloads)
            try:
                out, _ = codec.decode(bad)
            except BitstreamError as exc:
                assert kind != "extreme" and str(exc).startswith("packet "), (kbps, kind, exc)
                if kind == "last-to-first":  # too short for the groups of packet 0: the words run out
                    assert str(exc).startswith(("packet 0: payload length", "packet 0: range decoder")), exc
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    out, _ = codec.decode(bad, strict=False)
            assert out.shape == (h.num_samples,) and np.isfinite(out).all(), (kbps, kind)
            assert np.abs(out).max() <= 1.0, (kbps, kind, np.abs(out).max())


def test_stream_decoder_renders_crc_valid_packets_finite_and_within_full_scale():
    """Raw packets whose CRCs pass: invalid payloads are lost packets, valid ones of extreme values render
    finite samples within [-1, 1] (the log-mel is clamped before the causal vocoder)."""
    import codec
    from bitstream import pack_packet
    from bitstream.modes import VOIP_MODES

    rng = np.random.default_rng(SEED)
    for mode in VOIP_MODES[2:]:
        dec, outs = codec.StreamDecoder(), []
        for seq in range(8):
            n = mode.groups_per_packet
            values = VALUE_LIMITS["mel"] * rng.choice([-1.0, 1.0], size=(n, mode.n_coefs))
            payload = encode_groups(mode, values.astype(np.float32), rng.integers(0, 69, n), rng.random(n) < 0.5,
                                    int(rng.integers(40, 130)), trim=True)[0]
            if seq % 4 == 3:  # random bytes: an invalid payload, concealed like a lost packet
                payload = rng.bytes(len(payload))
            outs.append(dec.push(pack_packet(mode.id, payload), seq=seq))
        out = np.concatenate(outs + [dec.flush()])
        assert dec.lost >= 2 and np.isfinite(out).all() and np.abs(out).max() <= 1.0, (mode.id, dec.lost)
