"""VoIP streaming: StreamEncoder/StreamDecoder round trips, rate modes, loss concealment, robustness."""
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import bitstream
import codec
from codec.metrics import all_metrics


def stream(wav, kbps=3.0, cbr=False, chunks=None, sample_rate=16000, packet_ms=32):
    """Push ``wav`` in random chunk sizes (or ``chunks``) → packets."""
    enc = codec.StreamEncoder(kbps, cbr=cbr, sample_rate=sample_rate, packet_ms=packet_ms)
    rng = np.random.default_rng(0)
    packets, i = [], 0
    while i < len(wav):
        n = chunks or int(rng.integers(1, 1500))
        packets += enc.push(wav[i:i + n])
        i += n
    return packets + enc.flush()


def play(packets, seqs=None):
    """Decode ``packets`` in order (``seqs``: their sequence numbers, as a transport would give them)."""
    dec = codec.StreamDecoder()
    seqs = [None] * len(packets) if seqs is None else seqs
    return np.concatenate([dec.push(p, seq=n) for p, n in zip(packets, seqs)] + [dec.flush()]), dec


@pytest.fixture(scope="module")
def talk(clip):
    """3 s of real speech: enough for every behaviour here, short enough to keep the suite fast."""
    return clip[:48000]


@pytest.fixture(scope="module")
def packets(talk):
    return stream(talk)


def test_stream_equals_offline_decode_of_the_same_packets(talk, packets):
    out, dec = play(packets)
    assert dec.lost == 0
    assert np.abs(out - codec.decode_packets(packets)).max() < 1e-4
    assert 0 <= len(out) - len(talk) < 2 * 256  # the last packet is padded to 32 ms


@pytest.mark.parametrize("kbps", [1.2, 2.5])
def test_64ms_packets_stream_equal_offline(talk, kbps):
    """64 ms packets of two groups of two frames (modes 20, 21) decode frame by frame
    to what the offline reference makes of them, and the last packet is padded to 64 ms."""
    packets = stream(talk, kbps, packet_ms=64)
    assert {bitstream.unpack_packet(p).mode_id for p in packets} == {20 if kbps < 2 else 21}
    out, dec = play(packets)
    assert dec.lost == 0 and np.abs(out - codec.decode_packets(packets)).max() < 1e-4
    assert 0 <= len(out) - len(talk) < 4 * 256


def test_chunking_does_not_change_packets(talk, packets):
    assert stream(talk, chunks=len(talk)) == packets
    assert stream(talk, chunks=160) == packets


@pytest.mark.parametrize("kbps, packet_ms", [(3.0, 32), (4.5, 32), (6.0, 32), (3.0, 48), (4.5, 48), (6.0, 48),
                                              (1.2, 64), (2.0, 64), (3.0, 64), (6.0, 64)])
def test_rates(talk, kbps, packet_ms):
    """VBR: the average over the call is at or under the rate; CBR: every packet is."""
    vbr = stream(talk, kbps, packet_ms=packet_ms)
    assert 0.85 * kbps <= sum(map(len, vbr)) * 8 / (len(vbr) * packet_ms) <= kbps
    budget = kbps * packet_ms / 8
    cbr = stream(talk, kbps, cbr=True, packet_ms=packet_ms)
    assert max(map(len, cbr)) <= budget
    mode = codec.modes.voip_mode_for(kbps, packet_ms)
    assert mode.packet_ms == packet_ms and all(bitstream.unpack_packet(p).mode_id == mode.id for p in cbr)


@pytest.mark.parametrize("packet_ms, pesq_floor, stoi_floor", [(32, 1.18, 0.73), (48, 1.24, 0.76)])
def test_quality_floor(clips, packet_ms, pesq_floor, stoi_floor):
    """The LJSpeech clips through the streaming path at 3 kbps, no loss (tests/data mean with the
    harmonic-prior stream vocoder: WB-PESQ 1.29 / 1.35, STOI 0.763 / 0.797 for 32 / 48 ms packets)."""
    m = [all_metrics(w, play(stream(w, packet_ms=packet_ms))[0][: len(w)]) for w in clips]
    pesq, stoi = np.mean([x["pesq"] for x in m]), np.mean([x["stoi"] for x in m])
    assert pesq >= pesq_floor and stoi >= stoi_floor, (pesq, stoi)


@pytest.mark.parametrize("kbps, packet_ms, pesq_floor, stoi_floor",
                         [(3.0, 32, 1.28, 0.76), (6.0, 32, 1.66, 0.84), (1.2, 64, 1.15, 0.63), (2.0, 64, 1.52, 0.76)])
def test_quality_floor_on_unseen_speakers(kbps, packet_ms, pesq_floor, stoi_floor):
    """Three held-out dev speakers (tests/data/dev) through the streaming path, no loss (measured with
    32 ms packets 1.40 / 0.799 at 3 kbps, 1.81 / 0.874 at 6 kbps; with 64 ms packets 1.25 / 0.677 at
    1.2 kbps, 1.66 / 0.801 at 2 kbps; the streaming vocoder trained on synthetic voices scored 1.54 / 0.809
    at 6 kbps on the 12 dev speakers)."""
    clips = [sf.read(p, dtype="float32")[0] for p in sorted((Path(__file__).parent / "data" / "dev").glob("*.flac"))]
    assert len(clips) == 3
    m = [all_metrics(w, play(stream(w, kbps, packet_ms=packet_ms))[0][: len(w)]) for w in clips]
    pesq, stoi = np.mean([x["pesq"] for x in m]), np.mean([x["stoi"] for x in m])
    assert pesq >= pesq_floor and stoi >= stoi_floor, (pesq, stoi)


def test_loss_is_concealed_and_stream_recovers(packets):
    rng = np.random.default_rng(1)
    lossy = [None if rng.random() < 0.1 else p for p in packets]
    out, dec = play(lossy)
    assert dec.lost == sum(p is None for p in lossy) > 0
    assert np.isfinite(out).all() and len(out) == len(play(packets)[0])
    assert np.array_equal(out, codec.decode_packets(lossy).astype(np.float32)) or \
        np.abs(out - codec.decode_packets(lossy)).max() < 1e-4
    # a missing packet (a gap in the transport's sequence numbers, here across the 16-bit wrap) is the
    # same as an explicit None
    arrived = [(p, (65530 + i) % 65536) for i, p in enumerate(lossy) if p is not None]
    gapped, _ = play(*zip(*arrived))
    assert np.abs(gapped[: len(out)] - out[: len(gapped)]).max() < 1e-4
    # after the loss burst the decoder is back in step: the tail matches the lossless decode
    clean, _ = play(packets)
    last_loss = max(i for i, p in enumerate(lossy) if p is None)
    tail = (last_loss + 20) * 2 * 256
    if tail < len(out):
        assert np.abs(out[tail:] - clean[tail:]).max() < 1e-3


def test_concealment_keeps_intelligibility(clips):
    """10 % random loss costs at most 0.06 STOI on held-out speech (0.015 here)."""
    rng = np.random.default_rng(0)
    drops = []
    for w in clips:
        coded = stream(w)
        lossy = [None if rng.random() < 0.1 else p for p in coded]
        clean, lost = (all_metrics(w, play(c)[0][: len(w)])["stoi"] for c in (coded, lossy))
        drops.append(clean - lost)
    assert np.mean(drops) <= 0.06, drops


def test_damaged_late_and_duplicate_packets(packets):
    bad = bytearray(packets[5])
    bad[3] ^= 0x10  # CRC fails → concealed, never an exception
    seqs = list(range(len(packets)))
    mixed = packets[:5] + [bytes(bad)] + packets[6:10] + [packets[7]] + packets[10:]
    out, dec = play(mixed, seqs[:10] + [7] + seqs[10:])
    assert dec.lost == 1 and np.isfinite(out).all()
    assert len(out) == len(play(packets)[0])  # the duplicate added nothing


def test_sequence_numbers_from_the_transport(packets):
    """``seq`` is the transport's number: not an integer → a clear TypeError; a jump of more than 128
    packets is a restarted sender (nothing concealed), a smaller one a loss (concealed slot by slot)."""
    dec = codec.StreamDecoder()
    with pytest.raises(TypeError, match="seq"):
        dec.push(packets[0], seq=1.5)
    out, dec = play(packets[:6], [0, 1, 2, 5000, 5001, 5002])
    assert dec.lost == 0 and len(out) == len(play(packets[:6])[0])
    out, dec = play(packets[:6], [0, 1, 2, 12, 13, 14])
    assert dec.lost == 9


def test_any_input_rate_and_dtype(talk):
    from scipy.signal import resample_poly

    pcm48 = (resample_poly(talk, 3, 1) * 32767).astype(np.int16)
    out, _ = play(stream(np.stack([pcm48, pcm48], axis=1), sample_rate=48000))
    assert abs(len(out) - len(talk)) < 4 * 256 and np.isfinite(out).all()


def test_bad_arguments():
    for kbps in (0.6, 1.1, 6.5):  # streaming's own range, not the storage modes' 0.3–6
        with pytest.raises(ValueError, match="streaming supports 1.2–6 kbps"):
            codec.StreamEncoder(kbps=kbps)
    for packet_ms in (32, 48):  # below 3 kbps only 64 ms packets leave room for speech
        with pytest.raises(ValueError, match="use packet_ms=64"):
            codec.StreamEncoder(kbps=2.9, packet_ms=packet_ms)
    for kbps in (True, "3", None):
        with pytest.raises(ValueError, match="kbps must be a number"):
            codec.StreamEncoder(kbps=kbps)
    assert codec.StreamEncoder(kbps=np.float32(6)).mode.id == 19
    with pytest.raises(ValueError, match="packet_ms"):
        codec.StreamEncoder(kbps=3, packet_ms=20)
    assert codec.StreamEncoder(kbps=3, packet_ms=48).latency_ms == 64
    low = codec.StreamEncoder(kbps=1.2)  # the default packet below 3 kbps: 64 ms, 80 ms latency
    assert low.mode.packet_ms == 64 and low.latency_ms == 80
    enc = codec.StreamEncoder(kbps=3)
    with pytest.raises(codec.AudioInputError):
        enc.push(np.zeros((2, 2, 2)))
    with pytest.raises(codec.AudioInputError):
        enc.push(np.array([np.nan], np.float32))
    assert enc.latency_ms == 48  # the budget for the default VoIP modes: ≤ 60 ms
    enc.flush()
    with pytest.raises(RuntimeError, match="flush"):
        enc.push(np.zeros(10, np.float32))


def test_buffers_stay_bounded():
    """20 s of noise in 1 s pushes: the encoder's and decoder's buffers stop growing after the start
    (benches/voip.py --memory-minutes 60 measures the process over an hour)."""
    enc, dec = codec.StreamEncoder(kbps=3), codec.StreamDecoder()
    rng = np.random.default_rng(0)
    sizes = []
    for _ in range(20):
        for p in enc.push(rng.normal(0, 0.05, 16000).astype(np.float32)):
            dec.push(p)
        sizes.append((len(enc._x), len(dec._ola)))
    assert max(sizes) == max(sizes[5:]) and max(s[0] for s in sizes) < 4096


def test_decoder_refuses_what_is_not_bytes(packets):
    dec = codec.StreamDecoder()
    for bad in ("str", [1, 2, 3], 7):
        with pytest.raises(TypeError, match="StreamDecoder.push takes one raw packet as bytes"):
            dec.push(bad)
    assert len(dec.push(bytearray(packets[0]))) and len(dec.push(memoryview(packets[1])))


def through_jitter_buffer(packets, delays, dup=()):
    """Packets sent every 32 ms, delayed by ``delays`` (s), some twice → a JitterBuffer → the decoder."""
    arrivals = sorted([(i * 0.032 + delays[i], p, i) for i, p in enumerate(packets)] +
                      [(i * 0.032 + delays[i] + 0.05, packets[i], i) for i in dup], key=lambda a: a[0])
    jb, dec = codec.JitterBuffer(), codec.StreamDecoder()
    out = [dec.push(p, in_order=True) for p in jb.replay(arrivals)]
    return np.concatenate(out + [dec.flush()]), jb, dec


def test_jitter_buffer_in_front_of_the_decoder(packets):
    """Reordered and duplicated packets within the buffer's depth decode exactly as the clean stream;
    one packet 200 ms late costs one concealed slot, and the call lasts as long as it was sent."""
    rng = np.random.default_rng(0)
    clean, _ = play(packets)
    delays = rng.uniform(0, 0.02, len(packets))
    delays[::5] += 0.03  # arrives after the next one
    out, jb, dec = through_jitter_buffer(packets, delays, dup=[3, 30, 60])
    assert jb.reordered > 0 and jb.duplicates == 3 and jb.late == jb.inserted == jb.dropped == 0
    assert dec.lost == 0 and len(out) == len(clean) and np.abs(out - clean).max() < 1e-4
    delays[40] += 0.2
    out, jb, dec = through_jitter_buffer(packets, delays)
    assert jb.late == 1 and dec.lost == jb.concealed <= 3
    assert abs(len(out) - len(clean)) <= 2 * 512 and np.isfinite(out).all()
