"""Speed of encode and of each decoder, per mode, on one CPU thread (pytest-benchmark).

    python -m pytest benches/bench_codec.py --benchmark-enable

``extra_info`` holds the real-time factor ``rtf`` (processing seconds per second of audio) and its
inverse ``x_realtime``. Encode (the rate control included) should stay at or above 50× real time at
every rate.
"""
from pathlib import Path

import pytest
import soundfile as sf
import torch

import codec

CLIP = Path(__file__).parents[1] / "tests" / "data" / "LJ001-0028.flac"
RATES = [0.3, 0.6, 1.2, 3.0, 6.0]


@pytest.fixture(scope="module")
def wav():
    torch.set_num_threads(1)
    return sf.read(CLIP, dtype="float32")[0]


def _speed(benchmark, wav) -> None:
    if benchmark.stats:
        rtf = benchmark.stats["mean"] / (len(wav) / 16000)
        benchmark.extra_info.update(rtf=rtf, x_realtime=1 / rtf)


@pytest.mark.parametrize("kbps", RATES)
def test_encode(benchmark, wav, kbps):
    benchmark.pedantic(codec.encode, args=(wav,), kwargs={"kbps": kbps}, rounds=5, iterations=1, warmup_rounds=1)
    _speed(benchmark, wav)


@pytest.mark.parametrize("kbps, packet_ms", [(3.0, 32), (6.0, 32), (3.0, 48)])
def test_stream_encode(benchmark, wav, kbps, packet_ms):
    """StreamEncoder over the clip in 20 ms chunks (the same rate control, one packet at a time)."""
    def run():
        enc = codec.StreamEncoder(kbps=kbps, packet_ms=packet_ms)
        return [p for i in range(0, len(wav), 320) for p in enc.push(wav[i:i + 320])] + enc.flush()

    benchmark.pedantic(run, rounds=3, iterations=1, warmup_rounds=1)
    _speed(benchmark, wav)


@pytest.mark.parametrize("kbps", RATES)
def test_decode_direct(benchmark, wav, kbps):
    data = codec.encode(wav, kbps=kbps)
    benchmark.pedantic(codec.decode, args=(data,), kwargs={"decoder": "direct"}, rounds=5, iterations=1,
                       warmup_rounds=1)
    _speed(benchmark, wav)


@pytest.mark.parametrize("decoder, kbps", [("mel2mel", 1.2), ("lat2lat", 0.6)])
def test_decode_diffusion(benchmark, wav, decoder, kbps):
    """The diffusion decoders at their default 4 steps, on a stream of a mode they read."""
    data = codec.encode(wav, kbps=kbps, representation="mel" if decoder == "mel2mel" else "latent")
    benchmark.pedantic(codec.decode, args=(data,), kwargs={"decoder": decoder}, rounds=5, iterations=1,
                       warmup_rounds=1)
    _speed(benchmark, wav)
