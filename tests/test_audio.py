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
