import numpy as np
import pytest
import torch

from codec.audio import AudioInputError, prepare


def tone(rate, seconds=0.5):
    t = np.arange(int(rate * seconds)) / rate
    return (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


@pytest.mark.parametrize("rate", [8000, 16000, 22050, 44100, 48000])
def test_any_rate_becomes_16k(rate):
    x, channels = prepare(tone(rate), rate)
    assert x.dtype == np.float32 and channels == 1
    assert abs(len(x) - 8000) <= 1


def test_int16_scaled_like_float():
    f = tone(16000)
    i = (f * 32767).astype(np.int16)
    assert np.allclose(prepare(i, 16000)[0], f, atol=1e-4)


def test_channels_either_layout_and_torch():
    f = tone(48000)
    st = np.stack([f, f], axis=1)  # (samples, channels)
    a, ch = prepare(st, 48000)
    b, _ = prepare(torch.from_numpy(st.T.copy()), 48000)  # (channels, samples) torch
    c, _ = prepare(f, 48000)
    assert ch == 2 and np.allclose(a, c, atol=1e-6) and np.allclose(b, c, atol=1e-6)


@pytest.mark.parametrize("wav, rate, match", [
    (np.zeros(0, np.float32), 16000, "empty"),
    (np.array([0.0, np.nan], np.float32), 16000, "NaN"),
    (np.array([0.0, np.inf]), 16000, "NaN or infinite"),
    (np.zeros(10, np.complex64), 16000, "dtype"),
    (np.zeros((2, 2, 2), np.float32), 16000, "shape"),
    (np.zeros(10, np.float32), 0, "outside"),
    (np.zeros(10, np.float32), 10**9, "outside"),
    (np.zeros(10, np.float32), 44100.5, "integer"),
    (np.zeros(10, np.float32), "16k", "integer"),
    ("not audio", 16000, "dtype"),
])
def test_bad_input_named(wav, rate, match):
    with pytest.raises(AudioInputError, match=match):
        prepare(wav, rate)


# The dtype table (README, "Python API"): every dtype is read deliberately or refused by name.
FULL_SCALE = {  # dtype: (a sample value, the float it means)
    np.float16: (0.5, 0.5), np.float32: (0.5, 0.5), np.float64: (0.5, 0.5),
    np.int8: (-128, -1.0), np.int16: (16384, 0.5), np.int32: (-2**31, -1.0),
    np.uint8: (192, 0.5),  # unsigned 8-bit PCM (WAV) is centred on 128
}
TORCH_FULL_SCALE = {torch.float16: 0.5, torch.bfloat16: 0.5, torch.float32: 0.5, torch.float64: 0.5,
                    torch.int16: 16384, torch.int32: 2**30}


@pytest.mark.parametrize("dtype", list(FULL_SCALE))
def test_dtype_table_numpy(dtype):
    value, expected = FULL_SCALE[dtype]
    x, _ = prepare(np.full(100, value, dtype=dtype), 16000)
    assert x.dtype == np.float32 and np.allclose(x, expected)


@pytest.mark.parametrize("dtype", list(TORCH_FULL_SCALE))
def test_dtype_table_torch(dtype):
    x, _ = prepare(torch.full((100,), TORCH_FULL_SCALE[dtype], dtype=dtype), 16000)
    assert x.dtype == np.float32 and np.allclose(x, 0.5)


@pytest.mark.parametrize("wav, match", [
    (np.zeros(10, np.int64), "int64.*default integer.*astype"),  # 2^63 full scale would be silence
    (np.zeros(10, np.uint16), "uint16: not a PCM"),
    (np.zeros(10, np.uint32), "uint32: not a PCM"),
    (np.zeros(10, np.uint64), "uint64: not a PCM"),
    (np.zeros(10, bool), "dtype bool"),
    (np.zeros(10, np.complex128), "dtype complex128"),
    (torch.zeros(10, dtype=torch.int64), "int64"),
    (torch.zeros(10, dtype=torch.bool), "dtype bool"),
    (torch.zeros(10, dtype=torch.complex64), "dtype complex64"),
])
def test_dtype_table_refused(wav, match):
    with pytest.raises(AudioInputError, match=match):
        prepare(wav, 16000)


def test_stream_encoder_reads_the_same_table():
    import codec

    enc = codec.StreamEncoder(kbps=3)
    enc.push(torch.zeros(320, dtype=torch.bfloat16))
    with pytest.raises(AudioInputError, match="int64"):
        enc.push(np.zeros(320, np.int64))
