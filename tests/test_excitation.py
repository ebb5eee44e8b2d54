"""The F0-driven excitation behind the vocoder's phases: a band-limited pulse train with phase integrated from F0."""
from __future__ import annotations

import numpy as np
import torch

from codec.excitation import REF_HZ, TOP_HZ, excitation, harmonic, harmonic_comb, phase, upsample


def test_harmonics_at_multiples_of_f0_and_none_above_the_top():
    out, _ = harmonic(torch.full((1, 16000), 200.0), 16000)
    spec = np.abs(np.fft.rfft(out[0].numpy())) / 8000  # 1 Hz bins; unit-amplitude cosines → 1
    harmonics = np.arange(200, TOP_HZ + 1, 200).astype(int)
    assert np.allclose(spec[harmonics], 1.0, atol=1e-3)
    rest = np.ones_like(spec, bool)
    rest[harmonics] = False
    assert spec[rest].max() < 1e-3  # nothing between the harmonics, nothing above 7.8 kHz


def test_phase_continues_across_calls():
    f0 = torch.linspace(100, 300, 4000)[None]
    whole, _ = harmonic(f0, 16000)
    a, phase = harmonic(f0[:, :1234], 16000)
    b, _ = harmonic(f0[:, 1234:], 16000, phase)
    assert torch.allclose(torch.cat([a, b], -1), whole, atol=1e-3)


def test_excitation_follows_the_pitch_rows():
    frames, hop = 10, 256
    pitch_rows = torch.zeros(1, 2, frames)
    pitch_rows[0, 0, :5] = 1.0  # voiced, then unvoiced
    pitch_rows[0, 1] = 1.0  # one octave above 169.7 Hz
    harm, noise, _ = excitation(pitch_rows, hop, 16000, torch.Generator().manual_seed(0))
    assert harm.shape == noise.shape == (1, (frames - 1) * hop)
    assert harm[0, 5 * hop:].abs().max() == 0  # silent where unvoiced
    x = harm[0, :4 * hop].numpy()
    acf = [np.dot(x[:-lag], x[lag:]) for lag in range(20, 200)]
    assert abs(16000 / (20 + np.argmax(acf)) - 2 * REF_HZ) < 5  # a pulse every period of 339 Hz
    assert upsample(pitch_rows, hop).shape == (1, 2, (frames - 1) * hop)


def test_excitation_phase_advances_with_f0_at_each_harmonic():
    """A steady voiced 234.375 Hz (bin 15 of a 1024-point STFT): harmonic k's phase advances by
    2π·k·F0·hop / 16 kHz per frame, as sinusoidal synthesis does; the result is unit complex."""
    frames, hop, n_fft, f0 = 20, 256, 1024, 234.375
    pitch_rows = torch.stack([torch.ones(frames), torch.full((frames,), float(np.log2(f0 / REF_HZ)))])[None]
    out = phase(pitch_rows, n_fft, hop, 16000, torch.hann_window(n_fft), frames, torch.Generator().manual_seed(0))
    assert out.shape == (1, n_fft // 2 + 1, frames)
    assert torch.allclose(out.abs(), torch.ones(()), atol=1e-4)
    for k in (1, 2, 3):
        step = torch.angle(out[0, 15 * k, 6:14] * out[0, 15 * k, 5:13].conj()).numpy()
        expected = np.angle(np.exp(2j * np.pi * k * f0 * hop / 16000))
        assert np.allclose(np.angle(np.exp(1j * (step - expected))), 0, atol=0.05)


def test_harmonic_comb_is_the_windowed_pulse_train_power():
    """The comb is the 1024-point Hann STFT power of the pulse train at that F0, scaled to mean 1."""
    f0 = 150.0
    pitch_rows = torch.tensor([[[1.0] * 8, [float(np.log2(f0 / REF_HZ))] * 8]])
    comb = harmonic_comb(pitch_rows, 1024, 16000)[0, :, 4]
    assert comb.shape == (513,) and abs(comb.mean().item() - 1) < 0.02
    x, _ = harmonic(torch.full((1, 16000), f0), 16000)
    power = torch.stft(x, 1024, 256, window=torch.hann_window(1024), return_complex=True).abs()[0, :, 20] ** 2
    power = power / power[20:480].mean()
    assert torch.allclose(comb[:480], power[:480], atol=0.1)  # peaks up to 6.2, valleys 0
    assert comb[:8].max() < 0.01  # nothing below F0
