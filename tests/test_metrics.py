"""Metrics that need a known answer: harmonic contrast (how far harmonics stand out of the spectrum)."""
from __future__ import annotations

import math

import numpy as np
import torch

from codec.excitation import harmonic
from codec.metrics import harmonic_contrast_db


def test_harmonic_contrast_falls_when_noise_fills_between_harmonics():
    rng = np.random.default_rng(0)
    f0 = 150 * (1 + 0.05 * torch.sin(2 * math.pi * torch.arange(32000) / 16000))[None]  # a gentle vibrato
    voice = 0.1 * harmonic(f0, 16000)[0][0].numpy() / 50
    noise = rng.standard_normal(len(voice)).astype(np.float32)
    assert harmonic_contrast_db(voice, voice) == 0.0
    light, heavy = (harmonic_contrast_db(voice, voice + a * noise * voice.std()) for a in (0.1, 1.0))
    assert heavy < light < 0  # more noise between the harmonics, less contrast
    assert math.isnan(harmonic_contrast_db(noise * 0.1, noise * 0.1))  # nothing voiced
